"""The fake Exact Online itself, over HTTP: OAuth with refresh tokens that rotate without
grace, the token, Accept and division checks, the sync endpoints and their Timestamps,
OData paging and ``$filter``, receivables, communication notes, rate limits per division
and faults on demand."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.fakes.exact import (
    ENTITY_ACCOUNTS,
    ENTITY_SALES_INVOICES,
    FakeExactOnline,
    Fault,
    odata_date,
)

REDIRECT = "http://127.0.0.1:8765/oauth/callback"
ISSUED = date(2026, 10, 1)
DUE = date(2026, 10, 31)
SYNC_INVOICES = "sync/SalesInvoice/SalesInvoices"
INVOICE_SELECT = "InvoiceID,InvoiceNumber,AmountFC,InvoiceTo"


@pytest.fixture
def fake() -> Iterator[FakeExactOnline]:
    server = FakeExactOnline()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def token(fake: FakeExactOnline) -> str:
    return str(fake.issue_tokens()["access_token"])


def api(
    fake: FakeExactOnline,
    token: str,
    path: str,
    method: str = "GET",
    *,
    division: int | None = None,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
) -> requests.Response:
    """``path`` under ``/api/v1/{division}/`` (``current/Me`` as it is)."""
    where = path if path == "current/Me" else f"{division or fake.division}/{path}"
    return requests.request(
        method,
        f"{fake.endpoints()['api_url']}/{where}",
        params=params,
        json=body,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=10,
    )


def follow(url: str, token: str) -> requests.Response:
    return requests.get(
        url,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=10,
    )


def rows(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json(parse_float=Decimal)["d"]["results"])


def every_page(first: requests.Response, token: str) -> tuple[list[dict[str, Any]], int]:
    """Every row following ``__next``, and how many pages it took."""
    answer = first
    found: list[dict[str, Any]] = []
    pages = 0
    while True:
        assert answer.status_code == 200, answer.text
        page = answer.json(parse_float=Decimal)["d"]
        found.extend(page["results"])
        pages += 1
        if "__next" not in page:
            return found, pages
        answer = follow(page["__next"], token)


def message(response: requests.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == ""
    assert body["error"]["message"]["lang"] == ""
    return str(body["error"]["message"]["value"])


def basic(client_id: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def authorize(fake: FakeExactOnline, state: str = "st-1") -> dict[str, str]:
    response = requests.get(
        fake.endpoints()["authorize_url"],
        params={
            "client_id": fake.client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "state": state,
            "code_challenge": "ignored",
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}


def refresh(fake: FakeExactOnline, refresh_token: str) -> requests.Response:
    return requests.post(
        fake.endpoints()["token_url"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
        },
        timeout=10,
    )


# -- OAuth ------------------------------------------------------------------------------------


def test_endpoints(fake: FakeExactOnline) -> None:
    assert fake.endpoints() == {
        "authorize_url": f"{fake.url}/api/oauth2/auth",
        "token_url": f"{fake.url}/api/oauth2/token",
        "revoke_url": "",
        "api_url": f"{fake.url}/api/v1",
    }


def test_the_authorize_redirect_carries_code_and_state(fake: FakeExactOnline) -> None:
    answer = authorize(fake, state="xyz")
    assert answer["state"] == "xyz"
    assert answer["code"] in fake.codes
    assert "!" in answer["code"]  # as Exact's codes: it came URL-encoded
    refused = requests.get(
        fake.endpoints()["authorize_url"],
        params={"client_id": "someone-else", "redirect_uri": REDIRECT, "response_type": "code"},
        allow_redirects=False,
        timeout=10,
    )
    assert refused.status_code == 400
    assert len(fake.codes) == 1


def test_the_code_is_exchanged_with_form_or_basic_credentials(fake: FakeExactOnline) -> None:
    url = fake.endpoints()["token_url"]
    form = {"grant_type": "authorization_code", "redirect_uri": REDIRECT}
    in_body = {**form, "client_id": fake.client_id, "client_secret": fake.client_secret}
    # A wrong secret, in the form or as Basic, is not this client.
    for data, headers in (
        ({**in_body, "client_secret": "nope"}, {}),
        ({**form}, basic(fake.client_id, "nope")),
        ({**form}, {}),
    ):
        wrong = requests.post(
            url, data={**data, "code": authorize(fake)["code"]}, headers=headers, timeout=10
        )
        assert wrong.status_code == 400
        assert wrong.json() == {"error": "invalid_client"}
    code = authorize(fake)["code"]
    granted = requests.post(url, data={**in_body, "code": code}, timeout=10)
    assert granted.status_code == 200
    tokens = granted.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == "600"  # a string, as Exact sends it
    assert tokens["access_token"] in fake.access_tokens
    assert tokens["refresh_token"] in fake.refresh_tokens
    assert api(fake, tokens["access_token"], "current/Me").status_code == 200
    # A code is good once.
    again = requests.post(url, data={**in_body, "code": code}, timeout=10)
    assert again.json() == {"error": "invalid_grant"}
    # HTTP Basic does as well as the form.
    code = authorize(fake)["code"]
    by_basic = requests.post(
        url,
        data={**form, "code": code},
        headers=basic(fake.client_id, fake.client_secret),
        timeout=10,
    )
    assert by_basic.status_code == 200
    assert by_basic.json()["expires_in"] == "600"
    # A code lasts 3 minutes of the fake clock, for its own redirect URI.
    late = authorize(fake)["code"]
    elsewhere = authorize(fake)["code"]
    fake.tick(minutes=3)
    assert requests.post(url, data={**in_body, "code": late}, timeout=10).status_code == 400
    other = {**in_body, "code": elsewhere, "redirect_uri": "http://127.0.0.1:1/x"}
    assert requests.post(url, data=other, timeout=10).status_code == 400
    assert fake.token_calls == 8


def test_issue_tokens_gives_a_grant_like_the_token_endpoint(fake: FakeExactOnline) -> None:
    tokens = fake.issue_tokens()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == "600"
    assert api(fake, tokens["access_token"], "current/Me").status_code == 200
    assert fake.token_calls == 0


def test_a_refresh_rotates_and_the_old_token_is_refused_at_once(fake: FakeExactOnline) -> None:
    first = fake.issue_tokens()
    rotated = refresh(fake, first["refresh_token"])
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["expires_in"] == "600"
    assert fake.refreshes == 1
    # No grace: the one just used is done with, even a second later.
    old = refresh(fake, first["refresh_token"])
    assert old.status_code == 400
    assert old.json() == {"error": "invalid_grant"}
    assert api(fake, second["access_token"], "current/Me").status_code == 200
    assert refresh(fake, second["refresh_token"]).status_code == 200
    assert refresh(fake, "never-issued").status_code == 400
    assert (fake.refreshes, fake.token_calls) == (2, 4)


def test_a_lost_refresh_answer_locks_the_client_out(fake: FakeExactOnline) -> None:
    first = fake.issue_tokens()["refresh_token"]
    fake.lose_token_answers = 1
    with pytest.raises(requests.ConnectionError):
        refresh(fake, first)
    assert fake.refreshes == 1  # done on the server all the same
    assert refresh(fake, first).status_code == 400  # and the old token is gone with it
    assert fake.token_calls == 2


def test_unused_refresh_tokens_end_after_30_days(fake: FakeExactOnline) -> None:
    tokens = fake.issue_tokens()
    fake.tick(minutes=30 * 24 * 60)
    assert refresh(fake, tokens["refresh_token"]).status_code == 400


def test_an_expired_access_token_gets_401(fake: FakeExactOnline, token: str) -> None:
    assert api(fake, token, "current/Me").status_code == 200
    fake.tick(seconds=599)
    assert api(fake, token, "current/Me").status_code == 200
    fake.tick(seconds=1)  # 600 s of the fake clock
    late = api(fake, token, "current/Me")
    assert late.status_code == 401
    assert late.headers["WWW-Authenticate"].startswith("Bearer")
    assert "expired" in message(late)
    assert "X-RateLimit-Remaining" not in late.headers
    fresh = str(fake.issue_tokens()["access_token"])
    assert api(fake, fresh, "current/Me").status_code == 200
    fake.expire_access_tokens()
    assert api(fake, fresh, "current/Me").status_code == 401
    assert api(fake, "", "current/Me").status_code == 401


def test_json_must_be_asked_for(fake: FakeExactOnline, token: str) -> None:
    url = f"{fake.endpoints()['api_url']}/current/Me"
    bare = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bare.status_code == 406
    assert "Accept: application/json" in message(bare)
    fake.require_json_accept = False
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).ok


# -- Me, divisions, faults --------------------------------------------------------------------


def test_me_and_divisions(fake: FakeExactOnline, token: str) -> None:
    me = rows(api(fake, token, "current/Me", params={"$select": "CurrentDivision"}))
    assert len(me) == 1
    assert me[0]["CurrentDivision"] == 1234567
    assert set(me[0]) == {"__metadata", "CurrentDivision"}
    whole = rows(api(fake, token, "current/Me"))[0]
    assert whole["FullName"] == "Anouk Visser"
    assert whole["UserID"] == fake.user_id
    divisions = rows(api(fake, token, "system/Divisions", params={"$select": "Code,Description"}))
    assert [(d["Code"], d["Description"]) for d in divisions] == [
        (1234567, "Noordlicht Studio B.V."),
        (7654321, "Noordlicht Holding"),
    ]
    full = rows(api(fake, token, "system/Divisions"))
    assert {(d["Currency"], d["Country"]) for d in full} == {("EUR", "NL")}
    seen_there = rows(api(fake, token, "system/Divisions", division=7654321))
    assert [{**d, "__metadata": None} for d in seen_there] == [
        {**d, "__metadata": None} for d in full
    ]
    assert fake.calls["GET /api/v1/current/Me"] == 2
    assert fake.api_calls() == 5


def test_a_division_the_user_may_not_see_gets_403(fake: FakeExactOnline, token: str) -> None:
    for division in (999, 1234568):
        refused = api(fake, token, "system/Divisions", division=division)
        assert refused.status_code == 403
        assert str(division) in message(refused)
    assert api(fake, token, "system/Divisions").status_code == 200


def test_unknown_endpoints_and_records_are_404(fake: FakeExactOnline, token: str) -> None:
    assert api(fake, token, "crm/Nothing").status_code == 404
    missing = api(fake, token, "crm/Accounts(guid'00000000-0000-0000-0000-000000000001')")
    assert missing.status_code == 404
    assert "does not exist" in message(missing)


def test_faults_come_on_demand_and_a_carried_out_one_still_writes(
    fake: FakeExactOnline, token: str
) -> None:
    ada = fake.add_account("Ada Lovelace BV")
    prefix = f"/api/v1/{fake.division}/activities/CommunicationNotes"
    fake.fail_next(prefix, Fault(503), Fault(429, headers={"Retry-After": "2"}))
    assert api(fake, token, "activities/CommunicationNotes").status_code == 503
    throttled = api(fake, token, "activities/CommunicationNotes")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert api(fake, token, "activities/CommunicationNotes").status_code == 200
    fake.fail_next(prefix, Fault(504, carry_out=True))
    note = {"Account": ada["ID"], "Subject": "Reminder", "Notes": "Sent"}
    lost = api(fake, token, "activities/CommunicationNotes", "POST", body=note)
    assert lost.status_code == 504
    assert len(fake.notes) == 1  # made all the same


# -- the sync endpoints -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [SYNC_INVOICES, "sync/CRM/Accounts", "sync/Deleted"])
def test_sync_endpoints_refuse_without_select(fake: FakeExactOnline, token: str, path: str) -> None:
    refused = api(fake, token, path, params={"$filter": "Timestamp gt 0L"})
    assert refused.status_code == 400
    assert "$select" in message(refused)
    assert rows(api(fake, token, path, params={"$select": "Timestamp"})) == []


def test_sync_pages_2500_invoices_in_1000s_with_every_id_once(
    fake: FakeExactOnline, token: str
) -> None:
    ada = fake.add_account("Ada Lovelace BV")
    for n in range(2500):
        fake.add_invoice(ada, 26000 + n, "10.00", issued=ISSUED, due=DUE)
    # Each change moves the fake clock a second: the fixture's token is long gone.
    assert api(fake, token, "current/Me").status_code == 401
    token = str(fake.issue_tokens()["access_token"])
    first = api(
        fake, token, SYNC_INVOICES, params={"$select": INVOICE_SELECT, "$filter": "Timestamp gt 0L"}
    )
    page = first.json()["d"]
    assert len(page["results"]) == 1000
    nxt = page["__next"]
    assert nxt.startswith(f"{fake.url}/api/v1/{fake.division}/{SYNC_INVOICES}?")
    assert "$skiptoken=" in nxt
    found, pages = every_page(first, token)
    assert pages == 3
    assert fake.served == [1000, 1000, 500]
    ids = [row["InvoiceID"] for row in found]
    assert len(ids) == 2500
    assert set(ids) == set(fake.invoices)
    stamps = [row["Timestamp"] for row in found]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 2500
    assert stamps[0] > 2**32  # an int64
    for row in found:
        assert set(row) == {"__metadata", *INVOICE_SELECT.split(","), "Timestamp"}
    assert found[0]["AmountFC"] == Decimal("10.00")


def test_timestamp_gt_gives_only_later_rows(fake: FakeExactOnline, token: str) -> None:
    ada = fake.add_account("Ada Lovelace BV")
    first = fake.add_invoice(ada, 1001, "121.00", issued=ISSUED, due=DUE)
    second = fake.add_invoice(ada, 1002, "60.50", issued=ISSUED, due=DUE)
    mark = second["Timestamp"]
    assert first["Timestamp"] < mark
    assert (
        rows(
            api(
                fake,
                token,
                SYNC_INVOICES,
                params={"$select": "InvoiceID", "$filter": f"Timestamp gt {mark}L"},
            )
        )
        == []
    )
    modified = first["Modified"]
    changed = fake.update_invoice(first["InvoiceID"], YourRef="PO-7")
    assert changed["Timestamp"] > mark
    assert changed["Modified"] != modified
    later = rows(
        api(
            fake,
            token,
            SYNC_INVOICES,
            params={"$select": "InvoiceID,YourRef", "$filter": f"Timestamp gt {mark}L"},
        )
    )
    assert [(r["InvoiceID"], r["YourRef"]) for r in later] == [(first["InvoiceID"], "PO-7")]
    assert later[0]["Timestamp"] == changed["Timestamp"]
    # Accounts have their own rows, on the same Timestamp sequence.
    accounts = rows(
        api(
            fake,
            token,
            "sync/CRM/Accounts",
            params={"$select": "ID,Name,Email,Code,Language", "$filter": "Timestamp gt 0L"},
        )
    )
    assert [(a["Name"], a["Email"], a["Language"]) for a in accounts] == [
        ("Ada Lovelace BV", "ada@client.example", "NL")
    ]
    assert accounts[0]["Code"] == "               C01"
    assert accounts[0]["Timestamp"] < first["Timestamp"]


def test_the_sync_filter_is_parsed_not_guessed(fake: FakeExactOnline, token: str) -> None:
    select = {"$select": "InvoiceID"}
    for bad, named in (
        ("Timestamp gt '5'", "System.String"),
        ("Timestamp gt", "ends too soon"),
        ("substringof('x', Description)", "substringof"),
        ("Stamp gt 1L", "Stamp"),
        ("Timestamp gt 1L;", ";"),
        ("not Timestamp gt 1L", "not"),
    ):
        refused = api(fake, token, SYNC_INVOICES, params={**select, "$filter": bad})
        assert refused.status_code == 400, bad
        assert named in message(refused), bad
    assert (
        api(
            fake, token, SYNC_INVOICES, params={**select, "$top": "5", "$inlinecount": "allpages"}
        ).status_code
        == 400
    )


def test_sync_deleted_after_delete_invoice(fake: FakeExactOnline, token: str) -> None:
    ada = fake.add_account("Ada Lovelace BV")
    first = fake.add_invoice(ada, 1001, "121.00", issued=ISSUED, due=DUE)
    fake.add_invoice(ada, 1002, "60.50", issued=ISSUED, due=DUE)
    before = fake.book().timestamp
    assert len(fake.receivables) == 2
    gone = fake.delete_invoice(first["InvoiceID"])
    assert first["InvoiceID"] not in fake.invoices
    assert [r["InvoiceNumber"] for r in fake.receivables.values()] == [1002]
    deleted = rows(
        api(
            fake,
            token,
            "sync/Deleted",
            params={
                "$select": "EntityKey,EntityType,DeletedDate",
                "$filter": f"Timestamp gt {before}L",
            },
        )
    )
    assert len(deleted) == 1
    assert deleted[0]["EntityKey"] == first["InvoiceID"]
    assert deleted[0]["EntityType"] == ENTITY_SALES_INVOICES == 13
    assert deleted[0]["Timestamp"] == gone["Timestamp"] > before
    assert deleted[0]["DeletedDate"] == odata_date(fake.clock)
    fake.delete_account(ada["ID"])
    kinds = rows(
        api(
            fake,
            token,
            "sync/Deleted",
            params={"$select": "EntityType", "$filter": "EntityType eq 2"},
        )
    )
    assert [k["EntityType"] for k in kinds] == [ENTITY_ACCOUNTS]
    # The invoice is no longer among the invoices either.
    left = rows(api(fake, token, SYNC_INVOICES, params={"$select": "InvoiceNumber"}))
    assert [r["InvoiceNumber"] for r in left] == [1002]


# -- the REST endpoints -----------------------------------------------------------------------


def test_receivables_list_pages_of_60(fake: FakeExactOnline, token: str) -> None:
    ada = fake.add_account("Ada Lovelace BV")
    for n in range(125):
        fake.add_invoice(ada, 2000 + n, "10.00", issued=ISSUED, due=DUE, YourRef=f"PO-{n}")
    fake.add_invoice(ada, 3000, "50.00", issued=ISSUED, due=DUE, open_amount="0")  # paid
    fake.add_credit_note(ada, 3001, "20.00", issued=ISSUED)
    first = api(
        fake,
        token,
        "read/financial/ReceivablesList",
        params={"$select": "HID,InvoiceNumber,Amount,YourRef"},
    )
    nxt = first.json()["d"]["__next"]
    assert "$skiptoken=60" in nxt
    found, pages = every_page(first, token)
    assert pages == 3
    assert fake.served == [60, 60, 6]
    assert len({r["HID"] for r in found}) == 126
    by_number = {r["InvoiceNumber"]: r for r in found}
    assert 3000 not in by_number
    assert by_number[2007]["Amount"] == Decimal("10.00")
    assert by_number[2007]["YourRef"] == "PO-7"
    assert by_number[3001]["Amount"] == Decimal("-20.00")
    whole = rows(
        api(
            fake,
            token,
            "read/financial/ReceivablesList",
            params={"$filter": "InvoiceNumber eq 3001"},
        )
    )
    assert whole[0]["AccountId"] == ada["ID"]
    assert whole[0]["CurrencyCode"] == "EUR"
    assert whole[0]["DueDate"] == odata_date(ISSUED)


def test_pay_lowers_and_removes_receivables(fake: FakeExactOnline, token: str) -> None:
    ada = fake.add_account("Ada Lovelace BV")
    invoice = fake.add_invoice(ada, 1001, "121.00", issued=ISSUED, due=DUE, open_amount="100.00")
    credit = fake.add_credit_note(ada, 1002, "30", issued=ISSUED)
    assert credit["Type"] == 8021
    assert credit["AmountFC"] == Decimal("-30")
    assert invoice["Type"] == 8020
    stamp, modified = invoice["Timestamp"], invoice["Modified"]

    def open_amounts() -> dict[int, Decimal]:
        found = rows(
            api(
                fake,
                token,
                "read/financial/ReceivablesList",
                params={"$select": "InvoiceNumber,Amount"},
            )
        )
        return {r["InvoiceNumber"]: r["Amount"] for r in found}

    assert open_amounts() == {1001: Decimal("100.00"), 1002: Decimal("-30")}
    fake.pay(invoice, "40.00")
    fake.pay(credit, "10")
    assert open_amounts() == {1001: Decimal("60.00"), 1002: Decimal("-20")}
    fake.pay(invoice, "60.00")
    assert open_amounts() == {1002: Decimal("-20")}
    # The invoice itself is as it was: a payment is not a change of the invoice.
    assert (invoice["Timestamp"], invoice["Modified"]) == (stamp, modified)
    assert invoice["AmountFC"] == Decimal("121.00")
    with pytest.raises(ValueError, match="nothing open"):
        fake.pay(invoice, "1")
    with pytest.raises(ValueError, match="more than is open"):
        fake.pay(credit, "21")


def test_sales_invoices_by_id_joined_with_or(fake: FakeExactOnline, token: str) -> None:
    ada = fake.add_account("Ada Lovelace BV")
    made = [fake.add_invoice(ada, 1000 + n, "10.00", issued=ISSUED, due=DUE) for n in range(70)]
    mandatory = api(fake, token, "salesinvoice/SalesInvoices")
    assert mandatory.status_code == 400
    assert "$filter" in message(mandatory)
    wanted = [made[3], made[40]]
    text = " or ".join(f"InvoiceID eq guid'{i['InvoiceID'].upper()}'" for i in wanted)
    found = rows(api(fake, token, "salesinvoice/SalesInvoices", params={"$filter": text}))
    assert sorted(r["InvoiceNumber"] for r in found) == [1003, 1040]
    assert "Timestamp" not in found[0]  # only the sync endpoints know it
    assert found[0]["InvoiceDate"] == "/Date(1790812800000)/"
    assert found[0]["__metadata"]["uri"].endswith(f"SalesInvoices(guid'{found[0]['InvoiceID']}')")
    many = rows(
        api(
            fake,
            token,
            "salesinvoice/SalesInvoices",
            params={"$filter": f"(InvoiceTo eq guid'{ada['ID']}')", "$select": "InvoiceID"},
        )
    )
    assert len(many) == 60
    assert set(many[0]) == {"__metadata", "InvoiceID"}
    everything, pages = every_page(
        api(
            fake,
            token,
            "salesinvoice/SalesInvoices",
            params={"$filter": f"InvoiceTo eq guid'{ada['ID']}'"},
        ),
        token,
    )
    assert (len({r["InvoiceID"] for r in everything}), pages) == (70, 2)
    not_a_guid = api(
        fake, token, "salesinvoice/SalesInvoices", params={"$filter": "InvoiceID eq 'abc'"}
    )
    assert not_a_guid.status_code == 400
    assert "System.Guid" in message(not_a_guid)
    timestamp = api(
        fake,
        token,
        "salesinvoice/SalesInvoices",
        params={"$filter": "InvoiceNumber eq 1003", "$select": "Timestamp"},
    )
    assert timestamp.status_code == 400


def test_one_account_by_its_key(fake: FakeExactOnline, token: str) -> None:
    ada = fake.add_account("Ada Lovelace BV", Phone="+31 6 1234 5678")
    answer = api(fake, token, f"crm/Accounts(guid'{ada['ID']}')")
    assert answer.status_code == 200
    record = answer.json()["d"]
    assert "results" not in record
    assert (record["ID"], record["Name"], record["Phone"]) == (ada["ID"], ada["Name"], ada["Phone"])
    assert (record["Status"], record["IsSales"], record["Country"]) == ("C", True, "NL")
    assert record["Modified"] == ada["Modified"]
    picked = api(
        fake, token, f"crm/Accounts(guid'{ada['ID']}')", params={"$select": "Name"}
    ).json()["d"]
    assert set(picked) == {"__metadata", "Name"}


def test_communication_notes_post_and_read_back(fake: FakeExactOnline, token: str) -> None:
    ada = fake.add_account("Ada Lovelace BV")
    bob = fake.add_account("Bob Bouwer")
    path = "activities/CommunicationNotes"
    moment = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    body = {
        "Account": ada["ID"],
        "Subject": "Reminder 1",
        "Notes": "Sent by Kindly",
        "Date": odata_date(moment),
    }
    made = api(fake, token, path, "POST", body=body)
    assert made.status_code == 201
    note = made.json()["d"]
    assert (note["Account"], note["Subject"], note["Notes"]) == (
        ada["ID"],
        "Reminder 1",
        "Sent by Kindly",
    )
    assert note["Date"] == odata_date(moment)
    assert note["Created"] == odata_date(fake.clock)
    assert note["ID"] in fake.notes
    # No idempotency key in Exact: the same post again is a second note.
    assert api(fake, token, path, "POST", body=body).status_code == 201
    iso = {"Account": bob["ID"], "Subject": "Hello", "Date": "2026-11-22T10:00:00Z"}
    assert api(fake, token, path, "POST", body=iso).json()["d"]["Date"] == odata_date(
        datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    )
    for_ada = rows(
        api(
            fake,
            token,
            path,
            params={
                "$filter": f"Account eq guid'{ada['ID']}'",
                "$select": "Account,Subject,Notes,Created",
            },
        )
    )
    assert [n["Subject"] for n in for_ada] == ["Reminder 1", "Reminder 1"]
    assert len({n["__metadata"]["uri"] for n in for_ada}) == 2
    assert len(rows(api(fake, token, path))) == 3
    # Refused: an unknown account, a missing account or subject, a field Exact lacks.
    for bad, named in (
        ({"Account": "00000000-0000-0000-0000-000000000001", "Subject": "x"}, "does not exist"),
        ({"Subject": "x"}, "Account"),
        ({"Account": ada["ID"], "Notes": "x"}, "Subject"),
        ({"Account": ada["ID"], "Subject": "x", "Body": "x"}, "Body"),
        ({"Account": ada["ID"], "Subject": "x", "Date": "soon"}, "Date"),
    ):
        refused = api(fake, token, path, "POST", body=bad)
        assert refused.status_code == 400, bad
        assert named in message(refused), bad
    assert len(fake.notes) == 3


def test_communication_notes_page_by_60(fake: FakeExactOnline, token: str) -> None:
    ada = fake.add_account("Ada Lovelace BV")
    path = "activities/CommunicationNotes"
    # Past the minutely budget: the fake minute moves on now and then.
    for n in range(61):
        if n == 50:
            fake.tick(minutes=1)
        assert api(fake, token, path, "POST", body={"Account": ada["ID"], "Subject": f"n{n}"}).ok
    fake.tick(minutes=1)
    first = api(fake, token, path)
    assert "$skiptoken=guid'" in first.json()["d"]["__next"]
    found, pages = every_page(first, token)
    assert (len({n["ID"] for n in found}), pages) == (61, 2)


def test_shuffled_pages_hold_the_same_rows_in_another_order(
    fake: FakeExactOnline, token: str
) -> None:
    ada = fake.add_account("Ada Lovelace BV")
    for n in range(60):
        fake.add_invoice(ada, 1000 + n, "10.00", issued=ISSUED, due=DUE)
    fake.shuffle_pages = True
    found = rows(api(fake, token, SYNC_INVOICES, params={"$select": "InvoiceID"}))
    stamps = [r["Timestamp"] for r in found]
    assert sorted(stamps) == [i["Timestamp"] for i in fake.invoices.values()]
    assert stamps != sorted(stamps)


# -- rate limits and divisions ----------------------------------------------------------------


def test_rate_limit_headers_count_down_and_the_61st_call_in_a_minute_is_429(
    fake: FakeExactOnline, token: str
) -> None:
    first = api(fake, token, "system/Divisions")
    headers = first.headers
    assert headers["X-RateLimit-Limit"] == "5000"
    assert headers["X-RateLimit-Remaining"] == "4999"
    assert headers["X-RateLimit-Reset"] == str(
        int(datetime(2026, 11, 23, tzinfo=UTC).timestamp() * 1000)
    )
    assert headers["X-RateLimit-Minutely-Limit"] == "60"
    assert headers["X-RateLimit-Minutely-Remaining"] == "59"
    assert headers["X-RateLimit-Minutely-Reset"] == str(
        int(datetime(2026, 11, 22, 9, 1, tzinfo=UTC).timestamp() * 1000)
    )
    # Errors count too.
    assert api(fake, token, "crm/Nothing").headers["X-RateLimit-Minutely-Remaining"] == "58"
    with requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        url = f"{fake.endpoints()['api_url']}/{fake.division}/system/Divisions"
        answers = [session.get(url, timeout=10) for _ in range(58)]
    assert {a.status_code for a in answers} == {200}
    assert [int(a.headers["X-RateLimit-Minutely-Remaining"]) for a in answers] == list(
        range(57, -1, -1)
    )
    assert answers[-1].headers["X-RateLimit-Remaining"] == "4940"
    throttled = api(fake, token, "system/Divisions")
    assert throttled.status_code == 429
    assert message(throttled)
    assert {k for k in throttled.headers if k.startswith("X-RateLimit")} == {
        "X-RateLimit-Minutely-Limit",
        "X-RateLimit-Minutely-Remaining",
        "X-RateLimit-Minutely-Reset",
    }
    assert throttled.headers["X-RateLimit-Minutely-Remaining"] == "0"
    # The other division has its own allowance.
    assert api(fake, token, "system/Divisions", division=7654321).status_code == 200
    fake.tick(seconds=59)
    assert api(fake, token, "system/Divisions").status_code == 429
    fake.tick(seconds=1)
    again = api(fake, token, "system/Divisions")
    assert again.status_code == 200
    assert again.headers["X-RateLimit-Minutely-Remaining"] == "59"
    assert again.headers["X-RateLimit-Remaining"] == "4939"
    assert fake.day_remaining == 4939


def test_the_days_allowance_runs_out_and_comes_back_at_midnight(
    fake: FakeExactOnline, token: str
) -> None:
    fake.day_remaining = 1
    last = api(fake, token, "system/Divisions")
    assert last.status_code == 200
    assert last.headers["X-RateLimit-Remaining"] == "0"
    spent = api(fake, token, "system/Divisions")
    assert spent.status_code == 429
    assert spent.headers["X-RateLimit-Remaining"] == "0"
    assert fake.book(7654321).day_remaining == 5000
    fake.tick(minutes=15 * 60)  # past midnight UTC
    token = str(fake.issue_tokens()["access_token"])
    fresh = api(fake, token, "system/Divisions")
    assert fresh.status_code == 200
    assert fresh.headers["X-RateLimit-Remaining"] == "4999"


def test_divisions_keep_records_apart(fake: FakeExactOnline, token: str) -> None:
    holding = 7654321
    ada = fake.add_account("Ada Lovelace BV")
    hugo = fake.add_account("Hugo Holding", division=holding)
    fake.add_invoice(ada, 1001, "121.00", issued=ISSUED, due=DUE)
    other = fake.add_invoice(hugo, 1001, "999.00", issued=ISSUED, due=DUE, division=holding)
    assert other["Division"] == holding
    with pytest.raises(KeyError):
        fake.add_invoice(hugo, 1002, "1", issued=ISSUED, due=DUE)  # not in the main division
    select = {"$select": "InvoiceID,AmountFC", "$filter": "Timestamp gt 0L"}
    main = rows(api(fake, token, SYNC_INVOICES, params=select))
    theirs = rows(api(fake, token, SYNC_INVOICES, division=holding, params=select))
    assert [r["AmountFC"] for r in main] == [Decimal("121.00")]
    assert [(r["InvoiceID"], r["AmountFC"]) for r in theirs] == [
        (other["InvoiceID"], Decimal("999.00"))
    ]
    # Each division counts its own Timestamps.
    assert main[0]["Timestamp"] == theirs[0]["Timestamp"]
    assert api(fake, token, f"crm/Accounts(guid'{hugo['ID']}')").status_code == 404
    assert (
        api(fake, token, f"crm/Accounts(guid'{hugo['ID']}')", division=holding).status_code == 200
    )
    receivables = rows(api(fake, token, "read/financial/ReceivablesList", division=holding))
    assert [r["Amount"] for r in receivables] == [Decimal("999.00")]
    note = {"Account": hugo["ID"], "Subject": "x"}
    assert api(fake, token, "activities/CommunicationNotes", "POST", body=note).status_code == 400
    assert (
        api(
            fake, token, "activities/CommunicationNotes", "POST", body=note, division=holding
        ).status_code
        == 201
    )
    assert (len(fake.notes), len(fake.book(holding).notes)) == (0, 1)
