"""The fake QuickBooks Online itself, over HTTP: OAuth with rolling refresh tokens, the realm
and token checks, the query language and its paging, CDC, writes with ``requestid``,
throttling, and the records' field names against Intuit's XSD."""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.fakes.quickbooks import FakeQuickBooks, Fault

ROOT = Path(__file__).resolve().parents[1]
SPECS = Path(os.environ.get("KINDLY_SPECS", ROOT.parent / "shared" / "specs"))
FINANCE_XSD = SPECS / "quickbooks" / "Finance.xsd"
REDIRECT = "http://127.0.0.1:8765/oauth/callback"
SCOPE = "com.intuit.quickbooks.accounting"
ISSUED = date(2026, 10, 1)
DUE = date(2026, 10, 31)


@pytest.fixture
def fake() -> Iterator[FakeQuickBooks]:
    server = FakeQuickBooks()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def token(fake: FakeQuickBooks) -> str:
    return str(fake.issue_tokens()["access_token"])


def basic(client_id: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def client_auth(fake: FakeQuickBooks) -> dict[str, str]:
    return basic(fake.client_id, fake.client_secret)


def api(
    fake: FakeQuickBooks,
    token: str,
    path: str,
    method: str = "GET",
    *,
    realm: str | None = None,
    headers: dict[str, str] | None = None,
    **params: str,
) -> requests.Response:
    return requests.request(
        method,
        f"{fake.endpoints()['api_url']}/{realm or fake.realm_id}/{path}",
        params={**params, "minorversion": "75"},
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            **(headers or {}),
        },
        timeout=10,
    )


def query(fake: FakeQuickBooks, token: str, text: str) -> dict[str, Any]:
    response = api(fake, token, "query", query=text)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json(parse_float=Decimal)
    assert "time" in answer
    return dict(answer["QueryResponse"])


def refresh(fake: FakeQuickBooks, refresh_token: str) -> requests.Response:
    return requests.post(
        fake.endpoints()["token_url"],
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=client_auth(fake),
        timeout=10,
    )


def authorize(fake: FakeQuickBooks, state: str = "st-1") -> dict[str, str]:
    response = requests.get(
        fake.endpoints()["authorize_url"],
        params={
            "response_type": "code",
            "client_id": fake.client_id,
            "redirect_uri": REDIRECT,
            "scope": SCOPE,
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


def small_ledger(fake: FakeQuickBooks) -> dict[str, dict[str, Any]]:
    ada = fake.add_customer("Ada Lovelace Ltd")
    bob = fake.add_customer("Bob Builder", CurrencyRef={"value": "EUR", "name": "Euro"})
    first = fake.add_invoice(ada, "1001", "362.07", issued=ISSUED, due=DUE)
    second = fake.add_invoice(ada, "1002", "100.00", issued=ISSUED, due=DUE)
    third = fake.add_invoice(bob, "1003", "50", issued=ISSUED, due=DUE, currency="EUR")
    return {"ada": ada, "bob": bob, "first": first, "second": second, "third": third}


# -- OAuth ----------------------------------------------------------------------------------


def test_the_authorize_redirect_carries_code_state_and_realm(fake: FakeQuickBooks) -> None:
    answer = authorize(fake, state="xyz")
    assert answer["state"] == "xyz"
    assert answer["realmId"] == fake.realm_id
    assert answer["code"] in fake.codes


def test_the_authorize_page_refuses_another_client_or_no_accounting_scope(
    fake: FakeQuickBooks,
) -> None:
    base = {"response_type": "code", "redirect_uri": REDIRECT, "state": "s"}
    for params in (
        {**base, "client_id": "someone-else", "scope": SCOPE},
        {**base, "client_id": fake.client_id, "scope": "openid email"},
    ):
        response = requests.get(
            fake.endpoints()["authorize_url"], params=params, allow_redirects=False, timeout=10
        )
        assert response.status_code == 400
    assert fake.codes == {}


def test_the_code_is_exchanged_with_basic_client_auth_only(fake: FakeQuickBooks) -> None:
    code = authorize(fake)["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    url = fake.endpoints()["token_url"]
    # The client in the form (client_secret_post) or a wrong secret: not this client.
    in_form = {**form, "client_id": fake.client_id, "client_secret": fake.client_secret}
    refused = requests.post(url, data=in_form, timeout=10)
    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid_client"}
    wrong = requests.post(url, data=form, headers=basic(fake.client_id, "nope"), timeout=10)
    assert wrong.status_code == 401
    # A wrong redirect URI does not take the code either.
    elsewhere = {**form, "redirect_uri": "http://127.0.0.1:1/other"}
    assert requests.post(url, data=elsewhere, headers=client_auth(fake), timeout=10).json() == {
        "error": "invalid_grant"
    }
    granted = requests.post(url, data=form, headers=client_auth(fake), timeout=10)
    assert granted.status_code == 200
    tokens = granted.json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["x_refresh_token_expires_in"] == 8726400
    assert tokens["access_token"] in fake.access_tokens
    assert tokens["refresh_token"] in fake.refresh_tokens
    assert api(fake, tokens["access_token"], f"companyinfo/{fake.realm_id}").status_code == 200
    # A code is good once.
    again = requests.post(url, data=form, headers=client_auth(fake), timeout=10)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant"}


def test_a_refresh_rolls_the_token_and_the_old_one_works_for_a_day(
    fake: FakeQuickBooks,
) -> None:
    first = fake.issue_tokens()["refresh_token"]
    rolled = refresh(fake, first)
    assert rolled.status_code == 200
    second = rolled.json()["refresh_token"]
    assert second != first
    assert fake.refreshes == 1
    assert api(fake, rolled.json()["access_token"], "companyinfo/" + fake.realm_id).ok
    fake.tick(minutes=23 * 60)
    assert refresh(fake, first).status_code == 200  # within 24 hours of the fake clock
    fake.tick(minutes=61)
    late = refresh(fake, first)
    assert late.status_code == 400
    assert late.json() == {"error": "invalid_grant"}
    assert refresh(fake, second).status_code == 200  # the latest one works on
    assert refresh(fake, "qrt-never-issued").status_code == 400
    assert fake.refreshes == 3


def test_a_refresh_needs_the_client_and_a_lost_answer_is_lost(fake: FakeQuickBooks) -> None:
    first = fake.issue_tokens()["refresh_token"]
    url = fake.endpoints()["token_url"]
    form = {"grant_type": "refresh_token", "refresh_token": first}
    assert requests.post(url, data=form, timeout=10).status_code == 401
    fake.lose_token_answers = 1
    with pytest.raises(requests.ConnectionError):
        refresh(fake, first)
    assert fake.refreshes == 1  # done on the server all the same
    assert refresh(fake, first).status_code == 200  # the client retries with what it has


def test_revoking_a_token_ends_its_grant(fake: FakeQuickBooks) -> None:
    tokens = fake.issue_tokens()
    other = fake.issue_tokens()
    url = fake.endpoints()["revoke_url"]
    assert (
        requests.post(url, json={"token": tokens["refresh_token"]}, timeout=10).status_code == 401
    )
    answer = requests.post(
        url, json={"token": tokens["refresh_token"]}, headers=client_auth(fake), timeout=10
    )
    assert answer.status_code == 200
    assert refresh(fake, tokens["refresh_token"]).status_code == 400
    assert api(fake, tokens["access_token"], f"companyinfo/{fake.realm_id}").status_code == 401
    assert api(fake, other["access_token"], f"companyinfo/{fake.realm_id}").status_code == 200
    form = requests.post(
        url, data={"token": other["access_token"]}, headers=client_auth(fake), timeout=10
    )
    assert form.status_code == 200
    assert other["refresh_token"] not in fake.refresh_tokens


# -- the realm, the token, throttling and faults ----------------------------------------------


def test_an_expired_or_unknown_token_gets_401(fake: FakeQuickBooks, token: str) -> None:
    path = f"companyinfo/{fake.realm_id}"
    assert api(fake, token, path).status_code == 200
    fake.tick(minutes=61)  # access tokens last an hour
    late = api(fake, token, path)
    assert late.status_code == 401
    assert late.json()["fault"]["error"][0]["code"] == "3200"
    assert late.json()["fault"]["type"] == "AUTHENTICATION"
    assert "WWW-Authenticate" in late.headers
    fresh = str(fake.issue_tokens()["access_token"])
    assert api(fake, fresh, path).status_code == 200
    fake.expire_access_tokens()
    assert api(fake, fresh, path).status_code == 401
    assert api(fake, "", path).status_code == 401


def test_another_realm_gets_403(fake: FakeQuickBooks, token: str) -> None:
    answer = api(fake, token, "companyinfo/123", realm="123")
    assert answer.status_code == 403
    error = answer.json()["Fault"]["Error"][0]
    assert (error["Message"], error["code"]) == ("ApplicationAuthorizationFailed", "003100")
    info = api(fake, token, f"companyinfo/{fake.realm_id}")
    assert info.json()["CompanyInfo"]["CompanyName"] == "Noordlicht Inc."
    assert fake.api_calls() == 2
    assert fake.calls[f"GET /v3/company/{fake.realm_id}/companyinfo/{fake.realm_id}"] == 1


def test_the_501st_call_in_a_fake_minute_is_throttled(fake: FakeQuickBooks, token: str) -> None:
    path = f"companyinfo/{fake.realm_id}"
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        url = f"{fake.endpoints()['api_url']}/{fake.realm_id}/{path}"
        statuses = [session.get(url, timeout=10).status_code for _ in range(500)]
    assert set(statuses) == {200}
    throttled = api(fake, token, path)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "60"
    error = throttled.json()["Fault"]["Error"][0]
    assert (error["Message"], error["code"]) == ("ThrottleExceeded", "003001")
    fake.tick(seconds=59)
    assert api(fake, token, path).status_code == 429
    fake.tick(seconds=1)
    assert api(fake, token, path).status_code == 200
    assert fake.api_calls() == 503


def test_faults_come_on_demand_and_a_carried_out_one_still_writes(
    fake: FakeQuickBooks, token: str
) -> None:
    ledger = small_ledger(fake)
    prefix = f"/v3/company/{fake.realm_id}/query"
    fake.fail_next(prefix, Fault(503, body={"Fault": {"type": "SERVICE"}}), Fault(429))
    assert api(fake, token, "query", query="select * from Invoice").status_code == 503
    assert api(fake, token, "query", query="select * from Invoice").status_code == 429
    assert api(fake, token, "query", query="select * from Invoice").status_code == 200
    fake.fail_next(f"/v3/company/{fake.realm_id}/invoice/", Fault(504, carry_out=True))
    invoice_id = ledger["first"]["Id"]
    lost = requests.post(
        f"{fake.endpoints()['api_url']}/{fake.realm_id}/invoice/{invoice_id}/send",
        params={"requestid": "send-1"},
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert lost.status_code == 504
    assert fake.sent_invoices == [(invoice_id, "ada@client.example")]


# -- the query language -----------------------------------------------------------------------


def test_paging_2500_invoices_gives_every_id_once(fake: FakeQuickBooks, token: str) -> None:
    ada = fake.add_customer("Ada Lovelace Ltd")
    for n in range(2500):
        fake.add_invoice(ada, f"INV-{n}", "10.00", issued=ISSUED, due=DUE)
    assert query(fake, token, "select count(*) from Invoice") == {"totalCount": 2500}
    seen: list[str] = []
    start = 1
    while True:
        text = f"SELECT * FROM Invoice ORDERBY Id STARTPOSITION {start} MAXRESULTS 1000"
        page = query(fake, token, text)
        rows = page.get("Invoice", [])
        if rows:
            assert page["startPosition"] == start
            assert page["maxResults"] == len(rows)
        seen.extend(row["Id"] for row in rows)
        if len(rows) < 1000:
            break
        start += 1000
    assert len(seen) == 2500
    assert set(seen) == set(fake.invoices)
    assert seen == sorted(seen, key=int)
    assert fake.served == [1000, 1000, 500]


def test_shuffled_pages_hold_the_same_rows_in_another_order(
    fake: FakeQuickBooks, token: str
) -> None:
    ada = fake.add_customer("Ada Lovelace Ltd")
    for n in range(60):
        fake.add_invoice(ada, f"INV-{n}", "10.00", issued=ISSUED, due=DUE)
    fake.shuffle_pages = True
    pages = [
        [
            row["Id"]
            for row in query(fake, token, f"select * from Invoice STARTPOSITION {s} MAXRESULTS 30")[
                "Invoice"
            ]
        ]
        for s in (1, 31)
    ]
    assert sorted(pages[0], key=int) == [str(n) for n in range(1, 31)]
    assert sorted(pages[1], key=int) == [str(n) for n in range(31, 61)]
    assert pages[0] != sorted(pages[0], key=int)


def test_an_empty_answer_has_no_entity_key(fake: FakeQuickBooks, token: str) -> None:
    assert query(fake, token, "select * from Payment STARTPOSITION 1 MAXRESULTS 1000") == {}
    small_ledger(fake)
    assert "Invoice" in query(fake, token, "select * from Invoice")
    assert query(fake, token, "select * from Invoice STARTPOSITION 4 MAXRESULTS 10") == {}
    assert query(fake, token, "select count(*) from CreditMemo") == {"totalCount": 0}


def test_where_last_updated_and_id_in(fake: FakeQuickBooks, token: str) -> None:
    ledger = small_ledger(fake)
    mark = ledger["second"]["MetaData"]["LastUpdatedTime"]
    text = f"select * from Invoice where MetaData.LastUpdatedTime > '{mark}' MAXRESULTS 1000"
    assert [r["Id"] for r in query(fake, token, text)["Invoice"]] == [ledger["third"]["Id"]]
    fake.tick(minutes=5)
    fake.update_invoice(ledger["first"]["Id"], PrivateNote="Called")
    changed = query(fake, token, text)["Invoice"]
    assert [r["Id"] for r in changed] == [ledger["first"]["Id"], ledger["third"]["Id"]]
    assert changed[0]["SyncToken"] == "1"
    assert changed[0]["PrivateNote"] == "Called"
    ids = f"'{ledger['third']['Id']}', '{ledger['first']['Id']}', '999'"
    wanted = f"select * from Invoice where Id in ({ids})"
    assert [r["DocNumber"] for r in query(fake, token, wanted)["Invoice"]] == ["1001", "1003"]
    both = f"select * from Invoice where Id in ('1', '2') and MetaData.LastUpdatedTime > '{mark}'"
    assert [r["Id"] for r in query(fake, token, both)["Invoice"]] == ["1"]
    posted = requests.post(
        f"{fake.endpoints()['api_url']}/{fake.realm_id}/query",
        data=both,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/text"},
        timeout=10,
    )
    assert [r["Id"] for r in posted.json()["QueryResponse"]["Invoice"]] == ["1"]
    utc = "select * from Customer where MetaData.LastUpdatedTime > '2026-11-22T09:00:01Z'"
    assert [r["DisplayName"] for r in query(fake, token, utc)["Customer"]] == ["Bob Builder"]


@pytest.mark.parametrize(
    "text",
    [
        "select * from Invoice MAXRESULTS 1001",
        "select * from Invoice STARTPOSITION 0",
        "select * from Bill",
        "select Id from Invoice",
        "select * from Invoice where TotalAmt > '5'",
        "select * from Invoice where MetaData.LastUpdatedTime > 'yesterday'",
        "delete from Invoice",
    ],
)
def test_other_queries_are_refused(fake: FakeQuickBooks, token: str, text: str) -> None:
    answer = api(fake, token, "query", query=text)
    assert answer.status_code == 400
    assert answer.json()["Fault"]["type"] == "ValidationFault"
    assert answer.json()["Fault"]["Error"][0]["code"] == "4000"


def test_amounts_are_exact_json_numbers(fake: FakeQuickBooks, token: str) -> None:
    small_ledger(fake)
    answer = api(fake, token, "query", query="select * from Invoice where Id in ('1')")
    assert b'"TotalAmt":362.07' in answer.content
    row = answer.json(parse_float=Decimal)["QueryResponse"]["Invoice"][0]
    assert row["TotalAmt"] == row["Balance"] == Decimal("362.07")
    assert row["CustomerRef"] == {"value": "1", "name": "Ada Lovelace Ltd"}
    assert row["BillEmail"] == {"Address": "ada@client.example"}
    assert row["MetaData"]["LastUpdatedTime"] == "2026-11-22T09:00:03+00:00"


# -- payments and change data capture ---------------------------------------------------------


def test_a_payment_with_credit_lowers_the_balances(fake: FakeQuickBooks, token: str) -> None:
    ledger = small_ledger(fake)
    memo = fake.add_credit_memo(ledger["ada"], "CM-1", "30.00", on=ISSUED)
    payment = fake.add_payment(
        ledger["ada"],
        [(ledger["first"], "362.07"), (ledger["second"], "40.00")],
        credits=[(memo, "30.00")],
        on=date(2026, 11, 20),
        reference="wire 77",
    )
    assert payment["TotalAmt"] == Decimal("372.07")
    read = api(fake, token, f"payment/{payment['Id']}").json(parse_float=Decimal)["Payment"]
    assert [(line["Amount"], line["LinkedTxn"][0]["TxnType"]) for line in read["Line"]] == [
        (Decimal("362.07"), "Invoice"),
        (Decimal("40.00"), "Invoice"),
        (Decimal("30.00"), "CreditMemo"),
    ]
    assert read["PaymentRefNum"] == "wire 77"
    assert fake.invoices[ledger["first"]["Id"]]["Balance"] == 0
    assert fake.invoices[ledger["second"]["Id"]]["Balance"] == Decimal("60.00")
    assert fake.invoices[ledger["first"]["Id"]]["LinkedTxn"] == [
        {"TxnId": payment["Id"], "TxnType": "Payment"}
    ]
    assert memo["RemainingCredit"] == memo["Balance"] == 0
    assert memo["SyncToken"] == "1"
    with pytest.raises(ValueError, match="balance"):
        fake.add_payment(ledger["ada"], [(ledger["second"], "60.01")], on=ISSUED)


def test_cdc_gives_changes_and_deleted_stubs(fake: FakeQuickBooks, token: str) -> None:
    ledger = small_ledger(fake)
    since = fake.tick(minutes=1).isoformat()
    fake.tick(minutes=1)
    fake.update_invoice(ledger["second"]["Id"], DueDate="2026-12-15")
    fake.delete("Invoice", ledger["third"]["Id"])
    payment = fake.add_payment(ledger["ada"], [(ledger["first"], "10")], on=ISSUED)
    answer = api(
        fake, token, "cdc", entities="Invoice,Payment,CreditMemo,Customer", changedSince=since
    )
    assert answer.status_code == 200
    parts = answer.json()["CDCResponse"][0]["QueryResponse"]
    by_entity = {
        name: rows for part in parts for name, rows in part.items() if isinstance(rows, list)
    }
    assert set(by_entity) == {"Invoice", "Payment"}
    invoices = by_entity["Invoice"]
    assert [(r["Id"], r.get("status")) for r in invoices] == [
        (ledger["second"]["Id"], None),
        (ledger["third"]["Id"], "Deleted"),
        (ledger["first"]["Id"], None),
    ]
    assert set(invoices[1]) == {"Id", "status", "MetaData"}
    assert [r["Id"] for r in by_entity["Payment"]] == [payment["Id"]]
    assert {} in parts  # nothing changed: CreditMemo, Customer
    assert fake.served == [4]
    # Strictly after: from the last change on, nothing.
    newest = invoices[-1]["MetaData"]["LastUpdatedTime"]
    later = api(fake, token, "cdc", entities="Invoice", changedSince=newest).json()
    assert later["CDCResponse"][0]["QueryResponse"] == [{}]
    assert ledger["third"]["Id"] not in fake.invoices


def test_cdc_looks_back_30_days_at_most(fake: FakeQuickBooks, token: str) -> None:
    old = (fake.clock - timedelta(days=30, seconds=1)).isoformat()
    refused = api(fake, token, "cdc", entities="Invoice", changedSince=old)
    assert refused.status_code == 400
    assert "more than 30 days ago" in refused.json()["Fault"]["Error"][0]["Detail"]
    edge = (fake.clock - timedelta(days=30)).isoformat()
    assert api(fake, token, "cdc", entities="Invoice", changedSince=edge).status_code == 200
    assert api(fake, token, "cdc", entities="Bill", changedSince=edge).status_code == 400


def test_cdc_gives_at_most_1000_of_an_entity_the_oldest_first(
    fake: FakeQuickBooks, token: str
) -> None:
    since = fake.clock.isoformat()
    ada = fake.add_customer("Ada Lovelace Ltd")
    for n in range(1001):
        fake.add_invoice(ada, f"INV-{n}", "1", issued=ISSUED, due=DUE)
    parts = api(fake, token, "cdc", entities="Customer,Invoice", changedSince=since).json()
    customers, invoices = parts["CDCResponse"][0]["QueryResponse"]
    assert len(customers["Customer"]) == 1
    assert len(invoices["Invoice"]) == 1000
    assert invoices["Invoice"][-1]["Id"] == "1000"
    rest = api(
        fake,
        token,
        "cdc",
        entities="Invoice",
        changedSince=invoices["Invoice"][-1]["MetaData"]["LastUpdatedTime"],
    ).json()
    assert [r["Id"] for r in rest["CDCResponse"][0]["QueryResponse"][0]["Invoice"]] == ["1001"]


# -- reading one, writing ---------------------------------------------------------------------


def test_an_invoice_its_pdf_and_a_missing_one(fake: FakeQuickBooks, token: str) -> None:
    ledger = small_ledger(fake)
    invoice_id = ledger["first"]["Id"]
    one = api(fake, token, f"invoice/{invoice_id}").json()
    assert one["Invoice"]["DocNumber"] == "1001"
    for response in (
        api(fake, token, f"invoice/{invoice_id}/pdf", headers={"Accept": "application/pdf"}),
        api(fake, token, f"invoice/{invoice_id}", headers={"Accept": "application/pdf"}),
    ):
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.content == b"%PDF-1.4 fake invoice 1001"
    missing = api(fake, token, "invoice/999")
    assert missing.status_code == 400
    assert missing.json()["Fault"]["Error"][0]["code"] == "610"


def post(
    fake: FakeQuickBooks, token: str, path: str, body: Any, **params: str
) -> requests.Response:
    return requests.post(
        f"{fake.endpoints()['api_url']}/{fake.realm_id}/{path}",
        params={**params, "minorversion": "75"},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_an_attachable_is_posted_once_per_requestid(fake: FakeQuickBooks, token: str) -> None:
    ledger = small_ledger(fake)
    body = {
        "Note": "Reminder sent [kindly:n1]",
        "AttachableRef": [
            {
                "EntityRef": {"type": "Invoice", "value": ledger["first"]["Id"]},
                "IncludeOnSend": False,
            },
            {
                "EntityRef": {"type": "Customer", "value": ledger["ada"]["Id"]},
                "IncludeOnSend": False,
            },
        ],
    }
    first = post(fake, token, "attachable", body, requestid="note-n1")
    assert first.status_code == 200
    made = first.json()["Attachable"]
    assert made["Note"] == body["Note"]
    assert made["SyncToken"] == "0"
    assert made["AttachableRef"] == body["AttachableRef"]
    again = post(fake, token, "attachable", body, requestid="note-n1")
    assert again.json()["Attachable"] == made
    assert len(fake.attachables) == 1
    assert post(fake, token, "attachable", body, requestid="note-n2").status_code == 200
    assert len(fake.attachables) == 2
    listed = query(fake, token, "select * from Attachable STARTPOSITION 1 MAXRESULTS 1000")
    assert [a["Id"] for a in listed["Attachable"]] == ["1", "2"]


@pytest.mark.parametrize(
    "body",
    [
        {"AttachableRef": []},
        {"Note": "", "AttachableRef": []},
        {"Note": "x", "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": "999"}}]},
        {"Note": "x", "AttachableRef": [{"EntityRef": {"type": "Vendor", "value": "1"}}]},
    ],
)
def test_an_attachable_needs_a_note_and_known_records(
    fake: FakeQuickBooks, token: str, body: dict[str, Any]
) -> None:
    small_ledger(fake)
    answer = post(fake, token, "attachable", body, requestid="bad")
    assert answer.status_code == 400
    assert answer.json()["Fault"]["type"] == "ValidationFault"
    assert fake.attachables == {}
    assert "bad" not in fake.requestids


def test_sending_an_invoice_is_idempotent_by_requestid(fake: FakeQuickBooks, token: str) -> None:
    ledger = small_ledger(fake)
    invoice_id = ledger["second"]["Id"]

    def send(requestid: str, **params: str) -> requests.Response:
        return requests.post(
            f"{fake.endpoints()['api_url']}/{fake.realm_id}/invoice/{invoice_id}/send",
            params={"requestid": requestid, **params},
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
            },
            data=b"",
            timeout=10,
        )

    sent = send("send-1", sendTo="accounts@ada.example")
    assert sent.status_code == 200
    invoice = sent.json()["Invoice"]
    assert invoice["EmailStatus"] == "EmailSent"
    assert invoice["DeliveryInfo"]["DeliveryType"] == "Email"
    assert invoice["BillEmail"] == {"Address": "accounts@ada.example"}
    assert send("send-1", sendTo="accounts@ada.example").json() == sent.json()
    assert fake.sent_invoices == [(invoice_id, "accounts@ada.example")]
    assert send("send-2").status_code == 200  # to BillEmail
    assert fake.sent_invoices[-1] == (invoice_id, "accounts@ada.example")
    assert len(fake.sent_invoices) == 2


def test_a_sparse_update_needs_the_current_sync_token(fake: FakeQuickBooks, token: str) -> None:
    ledger = small_ledger(fake)
    invoice_id = ledger["first"]["Id"]
    change = {"Id": invoice_id, "SyncToken": "0", "sparse": True, "PrivateNote": "Called"}
    updated = post(fake, token, "invoice", change)
    assert updated.status_code == 200
    assert updated.json()["Invoice"]["SyncToken"] == "1"
    assert fake.invoices[invoice_id]["PrivateNote"] == "Called"
    assert fake.invoices[invoice_id]["TotalAmt"] == Decimal("362.07")
    stale = post(fake, token, "invoice", {**change, "PrivateNote": "Again"})
    assert stale.status_code == 400
    assert stale.json()["Fault"]["Error"][0]["code"] == "5010"
    assert fake.invoices[invoice_id]["PrivateNote"] == "Called"


# -- the field names against Intuit's XSD -----------------------------------------------------


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


class Schema:
    """The complex types of an XSD and the files it includes, namespaces ignored."""

    def __init__(self, entry: Path) -> None:
        self.types: dict[str, ET.Element] = {}
        self._load(entry, set())

    def _load(self, path: Path, seen: set[Path]) -> None:
        if path in seen or not path.exists():
            return
        seen.add(path)
        for child in ET.parse(path).getroot():
            tag = _local(child.tag)
            location = child.get("schemaLocation")
            if tag in ("include", "import") and location:
                self._load(path.parent / location, seen)
            elif tag == "complexType" and child.get("name"):
                self.types.setdefault(str(child.get("name")), child)

    def members(self, type_name: str) -> dict[str, tuple[str, str | None]]:
        """Name -> (kind, type) of every element and attribute of ``type_name`` and its base
        types (``<xs:extension base=...>``); a simple content is the JSON ``value``."""
        found: dict[str, tuple[str, str | None]] = {}

        def walk(node: ET.Element) -> None:
            for child in node:
                tag = _local(child.tag)
                name = child.get("name") or _local(child.get("ref", ""))
                if tag == "element":
                    typed = child.get("type")
                    found.setdefault(name, ("element", _local(typed) if typed else None))
                elif tag == "attribute":
                    found.setdefault(name, ("attribute", None))
                elif tag != "annotation":
                    if tag == "simpleContent":
                        found.setdefault("value", ("value", None))
                    base = _local(child.get("base", ""))
                    if tag in ("extension", "restriction") and base in self.types:
                        for key, value in self.members(base).items():
                            found.setdefault(key, value)
                    walk(child)

        walk(self.types[type_name])
        return found

    def misfits(self, type_name: str, record: dict[str, Any], where: str, top: bool) -> list[str]:
        """Fields of ``record`` that ``type_name`` does not define (at the top, elements only),
        looking into the fields whose type is a complex type too."""
        members = self.members(type_name)
        wrong: list[str] = []
        for key, value in record.items():
            member = members.get(key)
            if member is None or (top and member[0] != "element"):
                wrong.append(f"{where}.{key}")
                continue
            inner = member[1]
            if inner in self.types:
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, dict):
                        wrong += self.misfits(inner, item, f"{where}.{key}", top=False)
        return wrong


def test_the_field_names_are_intuits(fake: FakeQuickBooks, token: str) -> None:
    if not FINANCE_XSD.exists():
        pytest.skip(f"Intuit's Finance.xsd is not at {FINANCE_XSD} (set KINDLY_SPECS)")
    schema = Schema(FINANCE_XSD)
    ledger = small_ledger(fake)
    fake.add_customer(
        "Cleo Corp",
        CompanyName="Cleo Corp",
        GivenName="Cleo",
        FamilyName="Patra",
        Title="Ms",
        PrimaryPhone={"FreeFormNumber": "+1 555 0100"},
        Mobile={"FreeFormNumber": "+1 555 0101"},
        BillAddr={
            "Line1": "1 Main St",
            "Line2": "Suite 2",
            "Line3": "c/o Accounts",
            "Line4": "Floor 3",
            "Line5": "Desk 4",
            "City": "Springfield",
            "CountrySubDivisionCode": "IL",
            "PostalCode": "62701",
            "Country": "US",
        },
        CustomerTypeRef={"value": "2", "name": "Retail"},
        Notes="Pays late",
    )
    fake.update_invoice(ledger["second"]["Id"], PrivateNote="Called")
    memo = fake.add_credit_memo(ledger["ada"], "CM-1", "30", on=ISSUED)
    fake.add_payment(
        ledger["ada"], [(ledger["first"], "40")], credits=[(memo, "30")], on=ISSUED, reference="r"
    )
    fake.delete("Invoice", ledger["third"]["Id"])
    note = {
        "Note": "Reminder",
        "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": ledger["first"]["Id"]}}],
    }
    assert post(fake, token, "attachable", note).status_code == 200
    sent = requests.post(
        f"{fake.endpoints()['api_url']}/{fake.realm_id}/invoice/{ledger['first']['Id']}/send",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert sent.status_code == 200
    problems: list[str] = []
    checked: set[str] = set()
    for entity in ("Customer", "Invoice", "CreditMemo", "Payment", "Attachable"):
        rows = query(fake, token, f"select * from {entity} MAXRESULTS 1000")[entity]
        for row in rows:
            problems += schema.misfits(entity, row, entity, top=True)
            checked |= {f"{entity}.{key}" for key in row}
    info = api(fake, token, f"companyinfo/{fake.realm_id}").json()["CompanyInfo"]
    problems += schema.misfits("CompanyInfo", info, "CompanyInfo", top=True)
    since = (fake.clock - timedelta(days=1)).isoformat()
    cdc = api(fake, token, "cdc", entities="Invoice", changedSince=since).json()
    stubs = [r for r in cdc["CDCResponse"][0]["QueryResponse"][0]["Invoice"] if "status" in r]
    assert len(stubs) == 1
    problems += schema.misfits("Invoice", stubs[0], "deleted Invoice", top=False)
    assert problems == []
    # The check saw the fields it is about.
    for name in (
        "Customer.BillAddr",
        "Customer.CustomerTypeRef",
        "Invoice.DeliveryInfo",
        "Invoice.PrivateNote",
        "CreditMemo.RemainingCredit",
        "Payment.UnappliedAmt",
        "Payment.PaymentRefNum",
        "Attachable.AttachableRef",
    ):
        assert name in checked
    assert schema.misfits("Invoice", {"Total": 1, "Email": "x"}, "Invoice", top=True) == [
        "Invoice.Total",
        "Invoice.Email",
    ]
