"""The fake Fiken itself, over HTTP: its answers against Fiken's OpenAPI file, OAuth with
rotating refresh tokens and revocation, paging headers, date-granular filters, one request
at a time, PDFs, sending, attachments, Fiken's own reminders, faults, and companies kept
apart."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import requests
import yaml

from tests.fakes.fiken import FakeFiken, Fault, Sent

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs" / "fiken"
SPEC_FILE = SPECS / "fiken-api-v2.yaml"
REDIRECT = "http://127.0.0.1:8765/oauth/callback"
ISSUED = date(2026, 10, 1)
DUE = date(2026, 10, 31)
PAGING_HEADERS = (
    "Fiken-Api-Page",
    "Fiken-Api-Page-Size",
    "Fiken-Api-Page-Count",
    "Fiken-Api-Result-Count",
)


@pytest.fixture
def fake() -> Iterator[FakeFiken]:
    server = FakeFiken()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def token(fake: FakeFiken) -> str:
    return str(fake.issue_tokens()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api(
    fake: FakeFiken,
    token: str,
    path: str,
    method: str = "GET",
    *,
    company: str | None = None,
    json: Any = None,
    **params: str,
) -> requests.Response:
    """``path`` under ``/api/v2/companies/{company}/`` (``/companies`` and ``/user`` as
    they are when ``path`` starts with ``/``)."""
    base = fake.endpoints()["api_url"]
    url = (
        base + path
        if path.startswith("/")
        else f"{base}/companies/{company or fake.company}/{path}"
    )
    return requests.request(
        method, url, params=params, json=json, headers=bearer(token), timeout=10
    )


def rows(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    return body


def one(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def renew(fake: FakeFiken) -> str:
    """A new access token: one lasts 24 hours, and ``next_day`` moves the clock that far."""
    return str(fake.issue_tokens()["access_token"])


def basic(client_id: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def client_auth(fake: FakeFiken) -> dict[str, str]:
    return basic(fake.client_id, fake.client_secret)


def authorize(fake: FakeFiken, **params: str) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": fake.client_id,
        "redirect_uri": REDIRECT,
        "state": "st-1",
        **params,
    }
    response = requests.get(
        fake.endpoints()["authorize_url"],
        params={k: v for k, v in query.items() if v},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}


def token_request(fake: FakeFiken, form: dict[str, str]) -> requests.Response:
    return requests.post(
        fake.endpoints()["token_url"], data=form, headers=client_auth(fake), timeout=10
    )


def refresh(fake: FakeFiken, refresh_token: str) -> requests.Response:
    return token_request(fake, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def no_floats(value: Any) -> None:
    """Fiken's amounts are whole øre: a float anywhere is wrong."""
    assert not isinstance(value, float), value
    if isinstance(value, dict):
        for each in value.values():
            no_floats(each)
    elif isinstance(value, list):
        for each in value:
            no_floats(each)


def customer_with_invoice(
    fake: FakeFiken, number: int = 10001, gross: int = 125000, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    contact = fake.add_contact("Ola Nordmann", organizationNumber="987654321")
    invoice = fake.add_invoice(contact, number, gross, issued=ISSUED, due=DUE, **fields)
    return contact, invoice


# -- the OpenAPI file ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_FILE.is_file():
        pytest.skip(f"Fiken's OpenAPI file is not at {SPEC_FILE} (../shared/specs is absent)")
    loaded = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def as_json_schema(node: Any) -> Any:
    """An OAS 3.0 schema as JSON Schema: ``nullable: true`` becomes a ``null`` type, and an
    object that lists its properties takes no others (the spec leaves that open; closing it
    makes a misspelt or invented field name in the fake fail)."""
    if isinstance(node, list):
        return [as_json_schema(each) for each in node]
    if not isinstance(node, dict):
        return node
    out = {key: as_json_schema(value) for key, value in node.items()}
    if out.get("nullable") is True and isinstance(out.get("type"), str):
        del out["nullable"]
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") == "object"
        and isinstance(out.get("properties"), dict)
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


def operation(spec: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    found: dict[str, Any] = spec["paths"][path][method]["responses"]["200"]
    return found


def validator(spec: dict[str, Any], path: str, method: str = "get") -> jsonschema.Validator:
    """The response schema of ``method path`` (200, JSON), its $refs resolved in the
    document."""
    schema = operation(spec, path, method)["content"]["application/json"]["schema"]
    root = {**as_json_schema(schema), "components": as_json_schema(spec["components"])}
    jsonschema.Draft202012Validator.check_schema(root)
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def check(spec: dict[str, Any], path: str, response: requests.Response) -> Any:
    """The answer's body, once it has passed its operation's response schema (and has no
    float); a list answer must carry the paging headers the spec declares for it."""
    assert response.status_code == 200, response.text
    body = response.json()
    no_floats(body)
    errors = sorted(validator(spec, path).iter_errors(body), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    for header in operation(spec, path).get("headers", {}):
        assert header in response.headers, header
    return body


def test_the_schema_check_catches_what_breaks_the_spec(spec: dict[str, Any]) -> None:
    invoices = validator(spec, "/companies/{companySlug}/invoices/{invoiceId}")
    assert not list(invoices.iter_errors({"invoiceId": 1, "gross": 100, "issueDate": "2026-10-01"}))
    assert list(invoices.iter_errors({"gross": "100.00"}))
    assert list(invoices.iter_errors({"issueDate": "01.10.2026"}))
    assert list(invoices.iter_errors({"grossAmount": 100}))
    assert list(invoices.iter_errors({"sale": {"settled": "yes"}}))
    contact = validator(spec, "/companies/{companySlug}/contacts/{contactId}")
    assert not list(contact.iter_errors({"name": "Kari", "language": None}))
    assert list(contact.iter_errors({"language": "NORWEGIAN"}))  # name is required


def test_companies_and_user_match_the_spec(
    fake: FakeFiken, token: str, spec: dict[str, Any]
) -> None:
    companies = check(spec, "/companies", api(fake, token, "/companies"))
    assert [c["slug"] for c in companies] == ["fjordlys-design-as", "nordlys-demo-as"]
    assert all(c["hasApiAccess"] is True for c in companies)
    assert {c["testCompany"] for c in companies} == {True, False}
    assert all(set(c) >= {"name", "organizationNumber", "vatType", "address"} for c in companies)
    company = check(
        spec, "/companies/{companySlug}", api(fake, token, f"/companies/{fake.company}")
    )
    assert company == companies[0]
    user = check(spec, "/user", api(fake, token, "/user"))
    assert user["name"] == fake.user


def test_contacts_match_the_spec(fake: FakeFiken, token: str, spec: dict[str, Any]) -> None:
    kari = fake.add_contact("Kari Hansen", language="ENGLISH", organizationNumber="912345678")
    fake.add_contact("Per Berg", language=None, email=None)
    found = check(spec, "/companies/{companySlug}/contacts", api(fake, token, "contacts"))
    assert [c["name"] for c in found] == ["Kari Hansen", "Per Berg"]
    assert found[1]["language"] is None
    assert "email" not in found[1]
    shown = check(
        spec,
        "/companies/{companySlug}/contacts/{contactId}",
        api(fake, token, f"contacts/{kari['contactId']}"),
    )
    assert shown == found[0]
    assert shown["language"] == "ENGLISH"
    assert shown["customer"] is True and shown["inactive"] is False
    assert shown["lastModifiedDate"] == shown["createdDate"] == fake.today.isoformat()
    assert isinstance(shown["customerNumber"], int)
    assert shown["address"]["country"] == "Norge"


def test_invoices_match_the_spec(fake: FakeFiken, token: str, spec: dict[str, Any]) -> None:
    _, invoice = customer_with_invoice(fake, yourReference="PO-77")
    fake.pay(invoice, 25000, on=date(2026, 10, 20))
    fake.add_invoice(
        fake.add_contact("Nils Dahl"), 10002, 99900, issued=ISSUED, due=DUE, currency="EUR"
    )
    found = check(spec, "/companies/{companySlug}/invoices", api(fake, token, "invoices"))
    assert [i["invoiceNumber"] for i in found] == [10001, 10002]
    shown = check(
        spec,
        "/companies/{companySlug}/invoices/{invoiceId}",
        api(fake, token, f"invoices/{invoice['invoiceId']}"),
    )
    assert shown == found[0]
    assert (shown["gross"], shown["net"], shown["vat"]) == (125000, 100000, 25000)
    assert shown["yourReference"] == "PO-77"
    assert shown["sale"]["outstandingBalance"] == 100000
    assert shown["sale"]["totalPaid"] == 25000
    assert shown["sale"]["settled"] is False
    assert shown["customer"]["name"] == "Ola Nordmann"
    assert shown["invoicePdf"]["downloadUrl"].startswith(fake.url)
    assert shown["kid"].isdigit()
    assert found[1]["currency"] == "EUR"
    assert found[1]["grossInNok"] == 1148850


def test_credit_notes_match_the_spec(fake: FakeFiken, token: str, spec: dict[str, Any]) -> None:
    _, invoice = customer_with_invoice(fake)
    note = fake.add_credit_note(invoice, 25000, issued=date(2026, 10, 5))
    found = check(spec, "/companies/{companySlug}/creditNotes", api(fake, token, "creditNotes"))
    shown = check(
        spec,
        "/companies/{companySlug}/creditNotes/{creditNoteId}",
        api(fake, token, f"creditNotes/{note['creditNoteId']}"),
    )
    assert found == [shown]
    assert shown["creditNoteNumber"] == 10001
    assert shown["associatedInvoiceId"] == invoice["invoiceId"]
    assert shown["settled"] is True
    assert shown["creditNotePdf"]["downloadUrl"].startswith(fake.url)
    credited = one(api(fake, token, f"invoices/{invoice['invoiceId']}"))
    assert credited["associatedCreditNotes"] == [note["creditNoteId"]]
    assert credited["sale"]["outstandingBalance"] == 100000


def test_payments_and_sales_match_the_spec(
    fake: FakeFiken, token: str, spec: dict[str, Any]
) -> None:
    _, invoice = customer_with_invoice(fake)
    first = fake.pay(invoice, 25000, on=date(2026, 10, 20))
    fake.pay(invoice, 100000, on=date(2026, 10, 25))
    sale_id = fake.sale(invoice)["saleId"]
    payments = check(
        spec,
        "/companies/{companySlug}/sales/{saleId}/payments",
        api(fake, token, f"sales/{sale_id}/payments"),
    )
    assert [p["amount"] for p in payments] == [25000, 100000]
    # A NOK payment: the spec gives amountInNok, currency and fee to foreign ones only.
    assert set(payments[0]) == {"paymentId", "date", "account", "amount"}
    shown = check(
        spec,
        "/companies/{companySlug}/sales/{saleId}/payments/{paymentId}",
        api(fake, token, f"sales/{sale_id}/payments/{first['paymentId']}"),
    )
    assert shown == payments[0]
    sale = check(
        spec, "/companies/{companySlug}/sales/{saleId}", api(fake, token, f"sales/{sale_id}")
    )
    assert sale["settled"] is True
    assert sale["settledDate"] == "2026-10-25"
    assert sale["outstandingBalance"] == 0
    assert sale["salePayments"] == payments


def test_a_foreign_payment_carries_nok_currency_and_fee(
    fake: FakeFiken, token: str, spec: dict[str, Any]
) -> None:
    contact = fake.add_contact("Anna Svensson")
    invoice = fake.add_invoice(contact, 10001, 50000, issued=ISSUED, due=DUE, currency="EUR")
    fake.pay(invoice, 20000, on=date(2026, 10, 10), fee_ore=1500)
    sale_id = fake.sale(invoice)["saleId"]
    payments = check(
        spec,
        "/companies/{companySlug}/sales/{saleId}/payments",
        api(fake, token, f"sales/{sale_id}/payments"),
    )
    assert payments[0]["currency"] == "EUR"
    assert payments[0]["amountInNok"] == 230000
    assert payments[0]["fee"] == 1500
    sale = one(api(fake, token, f"sales/{sale_id}"))
    assert (sale["totalPaid"], sale["totalPaidInCurrency"]) == (230000, 20000)
    assert sale["outstandingBalance"] == 30000


def test_attachment_lists_match_the_spec(fake: FakeFiken, token: str, spec: dict[str, Any]) -> None:
    _, invoice = customer_with_invoice(fake)
    fake.remind(invoice)
    attachments = check(
        spec,
        "/companies/{companySlug}/invoices/{invoiceId}/attachments",
        api(fake, token, f"invoices/{invoice['invoiceId']}/attachments"),
    )
    assert [a["type"] for a in attachments] == ["reminder"]


# -- OAuth -----------------------------------------------------------------------------------


def test_endpoints(fake: FakeFiken) -> None:
    assert fake.endpoints() == {
        "authorize_url": f"{fake.url}/oauth/authorize",
        "token_url": f"{fake.url}/oauth/token",
        "revoke_url": f"{fake.url}/oauth/revoke",
        "api_url": f"{fake.url}/api/v2",
    }


def test_the_authorize_redirect_carries_code_and_state(fake: FakeFiken) -> None:
    answer = authorize(fake, state="st-42")
    assert answer["state"] == "st-42"
    assert answer["code"]


def test_authorize_without_state_or_with_a_refusal_redirects_an_error(fake: FakeFiken) -> None:
    assert authorize(fake, state="")["error"] == "invalid_request"
    fake.deny_consent = True
    answer = authorize(fake)
    assert answer["error"] == "access_denied"
    assert "code" not in answer


def test_the_code_is_exchanged_once_with_basic_credentials(fake: FakeFiken) -> None:
    code = authorize(fake)["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    in_the_form = requests.post(
        fake.endpoints()["token_url"],
        data={**form, "client_id": fake.client_id, "client_secret": fake.client_secret},
        timeout=10,
    )
    assert in_the_form.status_code == 401
    assert in_the_form.json()["error"] == "invalid_client"
    granted = token_request(fake, form)
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert api(fake, body["access_token"], "/companies").status_code == 200
    again = token_request(fake, form)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert fake.token_calls == 3


def test_a_refresh_rotates_and_the_old_token_is_refused(fake: FakeFiken) -> None:
    grant = fake.issue_tokens()
    renewed = refresh(fake, grant["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.json()
    assert fresh["refresh_token"] != grant["refresh_token"]
    assert api(fake, fresh["access_token"], "/companies").status_code == 200
    stale = refresh(fake, grant["refresh_token"])
    assert stale.status_code == 400
    assert stale.json()["error"] == "invalid_grant"
    assert refresh(fake, fresh["refresh_token"]).status_code == 200
    assert fake.refreshes == 2


def test_without_rotation_the_same_refresh_token_comes_back(fake: FakeFiken) -> None:
    fake.rotate_refresh_tokens = False
    grant = fake.issue_tokens()
    first = refresh(fake, grant["refresh_token"]).json()
    assert first["refresh_token"] == grant["refresh_token"]
    assert refresh(fake, grant["refresh_token"]).status_code == 200


def test_revoke_ends_the_grant(fake: FakeFiken) -> None:
    grant = fake.issue_tokens()
    other = refresh(fake, grant["refresh_token"]).json()
    revoked = requests.post(
        fake.endpoints()["revoke_url"], headers=bearer(other["access_token"]), timeout=10
    )
    assert revoked.status_code == 200
    assert api(fake, other["access_token"], "/companies").status_code == 401
    assert api(fake, grant["access_token"], "/companies").status_code == 401
    assert refresh(fake, other["refresh_token"]).status_code == 400


def test_the_api_wants_a_live_bearer_token(fake: FakeFiken, token: str) -> None:
    anonymous = requests.get(fake.endpoints()["api_url"] + "/companies", timeout=10)
    assert anonymous.status_code == 401
    assert api(fake, "made-up", "/companies").status_code == 401
    assert api(fake, token, "/companies").status_code == 200
    fake.tick(minutes=24 * 60)
    assert api(fake, token, "/companies").status_code == 401
    again = str(fake.issue_tokens()["access_token"])
    fake.expire_access_tokens()
    assert api(fake, again, "/companies").status_code == 401


# -- companies, paging, filters --------------------------------------------------------------


def test_an_unknown_company_is_refused(fake: FakeFiken, token: str) -> None:
    response = api(fake, token, "invoices", company="not-mine")
    assert response.status_code == 403
    assert api(fake, token, "nothing-here").status_code == 404


def test_companies_keep_their_records_apart(fake: FakeFiken, token: str) -> None:
    _, mine = customer_with_invoice(fake)
    other = fake.add_contact("Siri Lund", company="nordlys-demo-as")
    theirs = fake.add_invoice(other, 10001, 5000, issued=ISSUED, due=DUE)
    assert fake.book("nordlys-demo-as").invoices == {theirs["invoiceId"]: theirs}
    assert [i["invoiceId"] for i in rows(api(fake, token, "invoices"))] == [mine["invoiceId"]]
    there = rows(api(fake, token, "invoices", company="nordlys-demo-as"))
    assert [i["invoiceId"] for i in there] == [theirs["invoiceId"]]
    assert api(fake, token, f"invoices/{theirs['invoiceId']}").status_code == 404
    assert api(fake, token, f"contacts/{other['contactId']}").status_code == 404
    with pytest.raises(KeyError):
        fake.add_invoice(other, 10002, 5000, issued=ISSUED, due=DUE, company=fake.company)


def test_lists_page_from_0_with_fikens_headers(fake: FakeFiken, token: str) -> None:
    contact = fake.add_contact("Ola Nordmann")
    made = [
        fake.add_invoice(contact, 10001 + n, 1000 + n, issued=ISSUED, due=DUE)["invoiceId"]
        for n in range(60)
    ]
    seen: list[int] = []
    sizes = []
    for page in range(3):
        response = api(fake, token, "invoices", page=str(page), pageSize="25")
        sizes.append(len(rows(response)))
        seen.extend(i["invoiceId"] for i in rows(response))
        assert response.headers["Fiken-Api-Page"] == str(page)
        assert response.headers["Fiken-Api-Page-Size"] == "25"
        assert response.headers["Fiken-Api-Page-Count"] == "3"
        assert response.headers["Fiken-Api-Result-Count"] == "60"
    assert sizes == [25, 25, 10]
    assert seen == made
    past = api(fake, token, "invoices", page="3", pageSize="25")
    assert rows(past) == []
    assert past.headers["Fiken-Api-Page-Count"] == "3"
    default = api(fake, token, "invoices")
    assert len(rows(default)) == 25
    assert default.headers["Fiken-Api-Page-Size"] == "25"
    big = api(fake, token, "invoices", pageSize="100")
    assert len(rows(big)) == 60
    assert big.headers["Fiken-Api-Page-Count"] == "1"
    assert api(fake, token, "invoices", pageSize="101").status_code == 400
    assert api(fake, token, "invoices", page="-1").status_code == 400
    empty = api(fake, token, "creditNotes")
    assert rows(empty) == []
    assert [empty.headers[h] for h in PAGING_HEADERS] == ["0", "25", "0", "0"]
    assert fake.served[-1] == 0


def test_shuffled_pages_hold_the_same_rows_in_another_order(fake: FakeFiken, token: str) -> None:
    contact = fake.add_contact("Ola Nordmann")
    for n in range(25):
        fake.add_invoice(contact, 10001 + n, 1000, issued=ISSUED, due=DUE)
    plain = [i["invoiceId"] for i in rows(api(fake, token, "invoices"))]
    fake.shuffle_pages = True
    mixed = [i["invoiceId"] for i in rows(api(fake, token, "invoices"))]
    assert sorted(mixed) == plain
    assert mixed != plain


def test_last_modified_is_a_date_and_its_filters_take_the_whole_day(
    fake: FakeFiken, token: str
) -> None:
    _, old = customer_with_invoice(fake)
    day = fake.next_day()
    token = renew(fake)
    _, first = customer_with_invoice(fake, 10002)
    fake.tick(minutes=90)
    second = fake.add_invoice(fake.add_contact("Liv Strand"), 10003, 4000, issued=ISSUED, due=DUE)
    fake.update_invoice(first["invoiceId"], yourReference="changed later the same day")
    today = day.date().isoformat()
    assert first["lastModifiedDate"] == second["lastModifiedDate"] == today

    def ids(**params: str) -> list[int]:
        return [i["invoiceId"] for i in rows(api(fake, token, "invoices", **params))]

    assert ids(lastModifiedGe=today) == [first["invoiceId"], second["invoiceId"]]
    assert ids(lastModified=today) == [first["invoiceId"], second["invoiceId"]]
    assert ids(lastModifiedGt=today) == []
    assert ids(lastModifiedLt=today) == [old["invoiceId"]]
    assert ids(lastModifiedLe=today) == [old["invoiceId"], first["invoiceId"], second["invoiceId"]]
    shown = one(api(fake, token, f"invoices/{first['invoiceId']}"))
    assert shown["lastModifiedDate"] == today
    assert shown["createdDate"] == today
    assert api(fake, token, "invoices", lastModifiedGe=f"{today}T00:00:00").status_code == 400
    contacts = rows(api(fake, token, "contacts", lastModifiedGe=today))
    assert [c["name"] for c in contacts] == ["Ola Nordmann", "Liv Strand"]


def test_a_payment_moves_last_modified_to_the_fake_clocks_day(fake: FakeFiken, token: str) -> None:
    _, invoice = customer_with_invoice(fake)
    created = invoice["lastModifiedDate"]
    fake.next_day()
    fake.next_day()
    token = renew(fake)
    fake.pay(invoice, 125000, on=date(2026, 11, 1))
    shown = one(api(fake, token, f"invoices/{invoice['invoiceId']}"))
    assert shown["lastModifiedDate"] == fake.today.isoformat() != created
    assert shown["sale"]["lastModifiedDate"] == fake.today.isoformat()
    assert shown["sale"]["settled"] is True
    assert shown["sale"]["settledDate"] == "2026-11-01"
    assert shown["sale"]["paymentDate"] == "2026-11-01"
    found = rows(api(fake, token, "invoices", lastModifiedGe=fake.today.isoformat()))
    assert [i["invoiceId"] for i in found] == [invoice["invoiceId"]]
    with pytest.raises(ValueError, match="open"):
        fake.pay(invoice, 1, on=date(2026, 11, 2))


def test_invoice_filters_settled_customer_and_issue_date(fake: FakeFiken, token: str) -> None:
    ola, first = customer_with_invoice(fake)
    kari = fake.add_contact("Kari Hansen")
    second = fake.add_invoice(kari, 10002, 5000, issued=date(2026, 10, 15), due=DUE)
    fake.pay(second, 5000, on=date(2026, 10, 20))

    def numbers(**params: str) -> list[int]:
        return [i["invoiceNumber"] for i in rows(api(fake, token, "invoices", **params))]

    assert numbers(settled="true") == [10002]
    assert numbers(settled="false") == [10001]
    assert numbers(customerId=str(ola["contactId"])) == [10001]
    assert numbers(issueDateGt="2026-10-01") == [10002]
    assert numbers(issueDateGe="2026-10-01", issueDateLt="2026-10-15") == [10001]
    assert numbers(invoiceNumber="10002") == [10002]
    assert first["invoiceNumber"] == 10001
    assert api(fake, token, "invoices", settled="ja").status_code == 400
    assert numbers(unknownFilter="x") == [10001, 10002]
    assert fake.ignored_params[-1] == (
        f"/api/v2/companies/{fake.company}/invoices",
        "unknownFilter",
    )


def test_contact_filters_and_sorting(fake: FakeFiken, token: str) -> None:
    first = fake.add_contact("Ola Nordmann")
    fake.add_contact("Lev Leverandør", customer=False, supplier=True)
    fake.add_contact("Gammel Kunde", inactive=True)
    fake.next_day()
    token = renew(fake)
    fake.update_contact(first["contactId"], email="ola@ny.example")

    def names(**params: str) -> list[str]:
        return [c["name"] for c in rows(api(fake, token, "contacts", **params))]

    assert names(customer="true") == ["Ola Nordmann", "Gammel Kunde"]
    assert names(customer="true", inactive="false") == ["Ola Nordmann"]
    assert names(sortBy="lastModified desc")[0] == "Ola Nordmann"
    assert names(sortBy="createdDate desc") == ["Gammel Kunde", "Lev Leverandør", "Ola Nordmann"]
    assert names(email="ola@ny.example") == ["Ola Nordmann"]
    assert api(fake, token, "contacts", sortBy="name asc").status_code == 400


def test_credit_note_filters(fake: FakeFiken, token: str) -> None:
    ola, invoice = customer_with_invoice(fake)
    fake.pay(invoice, 125000, on=date(2026, 10, 3))
    fake.next_day()
    token = renew(fake)
    refund = fake.add_credit_note(invoice, 5000, issued=date(2026, 11, 23))
    # The invoice was paid: Fiken owes the customer, the credit note stays open.
    assert refund["settled"] is False
    today = fake.today.isoformat()
    found = rows(api(fake, token, "creditNotes", settled="false", customerId=str(ola["contactId"])))
    assert [n["creditNoteId"] for n in found] == [refund["creditNoteId"]]
    assert len(rows(api(fake, token, "creditNotes", lastModifiedGe=today))) == 1
    assert rows(api(fake, token, "creditNotes", lastModifiedGt=today)) == []
    fake.credit_note_modified_filter = False
    assert len(rows(api(fake, token, "creditNotes", lastModifiedGt=today))) == 1


def test_patch_moves_the_due_date_and_keeps_the_original(fake: FakeFiken, token: str) -> None:
    _, invoice = customer_with_invoice(fake)
    url = f"invoices/{invoice['invoiceId']}"
    answer = api(fake, token, url, "PATCH", json={"newDueDate": "2026-11-15"})
    assert answer.status_code == 200
    assert answer.headers["Location"].endswith(url)
    shown = one(api(fake, token, url))
    assert (shown["dueDate"], shown["originalDueDate"]) == ("2026-11-15", "2026-10-31")
    assert shown["sale"]["dueDate"] == "2026-11-15"
    assert api(fake, token, url, "PATCH", json={"invoiceText": "x"}).status_code == 400


# -- one request at a time -------------------------------------------------------------------


def test_a_request_while_another_is_in_flight_gets_429(fake: FakeFiken, token: str) -> None:
    hold = fake.hold_next("/api/v2/companies")
    answers: dict[str, requests.Response] = {}

    def first() -> None:
        answers["first"] = api(fake, token, "contacts")

    worker = threading.Thread(target=first)
    worker.start()
    try:
        assert hold.arrived.wait(10)
        overlapping = api(fake, token, "/companies")
        assert overlapping.status_code == 429
        assert overlapping.json()["error"] == "too_many_requests"
        # Another user's token is not held up by this one.
        someone = str(fake.issue_tokens(user="Per Hansen")["access_token"])
        assert api(fake, someone, "/companies").status_code == 200
    finally:
        hold.release.set()
        worker.join(10)
    assert answers["first"].status_code == 200
    assert api(fake, token, "/companies").status_code == 200
    assert fake.in_flight[fake.user] == 0


def test_strict_rate_refuses_the_fifth_request_in_a_fake_second(
    fake: FakeFiken, token: str
) -> None:
    fake.strict_rate = True
    statuses = [api(fake, token, "/companies").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    fake.tick()
    assert api(fake, token, "/companies").status_code == 200


# -- PDFs, sending, attachments --------------------------------------------------------------


def test_the_invoice_pdf_comes_to_a_bearer_token(fake: FakeFiken, token: str) -> None:
    _, invoice = customer_with_invoice(fake)
    pdf = one(api(fake, token, f"invoices/{invoice['invoiceId']}"))["invoicePdf"]
    assert pdf["type"] == "invoice"
    download = requests.get(pdf["downloadUrl"], headers=bearer(token), timeout=10)
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.content.startswith(b"%PDF-1.4")
    assert requests.get(pdf["downloadUrl"], timeout=10).status_code == 401
    browser = requests.get(
        pdf["downloadUrlWithFikenNormalUserCredentials"], headers=bearer(token), timeout=10
    )
    assert browser.status_code == 401


def send_body(invoice: dict[str, Any], *methods: str, **fields: Any) -> dict[str, Any]:
    return {
        "invoiceId": invoice["invoiceId"],
        "method": list(methods),
        "includeDocumentAttachments": True,
        **fields,
    }


def test_sending_records_what_went_where(fake: FakeFiken, token: str) -> None:
    contact = fake.add_contact("Ola Nordmann")
    invoice = fake.add_invoice(contact, 10001, 5000, issued=ISSUED, due=DUE)
    body = send_body(invoice, "email", recipientEmail="regnskap@ola.example", message="Hei")
    answer = api(fake, token, "invoices/send", "POST", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.content == b""
    assert fake.sent == [Sent(invoice["invoiceId"], ("email",), "regnskap@ola.example")]
    # Sending again sends again: there is no idempotency.
    api(fake, token, "invoices/send", "POST", json=send_body(invoice, "sms", "email"))
    assert fake.sent[-1] == (invoice["invoiceId"], ("sms", "email"), "91234567")
    assert fake.book().deliveries[-1]["via"] == "sms"


def test_a_method_the_customer_cannot_receive_is_refused(fake: FakeFiken, token: str) -> None:
    person = fake.add_contact("Ola Nordmann", address={"country": "Sverige"})
    invoice = fake.add_invoice(person, 10001, 5000, issued=ISSUED, due=DUE)
    for methods, words in (
        (("ehf",), "organization number"),
        (("efaktura",), "eFaktura"),
        (("letter",), "Norway"),
    ):
        refused = api(fake, token, "invoices/send", "POST", json=send_body(invoice, *methods))
        assert refused.status_code == 400
        assert words in refused.json()["error_description"]
    assert fake.sent == []
    firm = fake.add_contact("Bygg AS", organizationNumber="987654321")
    business = fake.add_invoice(firm, 10002, 5000, issued=ISSUED, due=DUE)
    sent = api(fake, token, "invoices/send", "POST", json=send_body(business, "auto"))
    assert sent.status_code == 200, sent.text
    assert fake.sent == [(business["invoiceId"], ("auto",), "987654321")]
    assert fake.book().deliveries[-1]["via"] == "ehf"


def test_a_send_request_is_checked_as_the_spec_says(fake: FakeFiken, token: str) -> None:
    _, invoice = customer_with_invoice(fake)
    for body in (
        {"invoiceId": invoice["invoiceId"], "method": ["email"]},
        send_body(invoice, "fax"),
        send_body(invoice, "email", sendCopyToSelf=True),
        send_body(invoice, "email", emailSendOption="pigeon"),
        {**send_body(invoice, "email"), "invoiceId": 1},
    ):
        assert api(fake, token, "invoices/send", "POST", json=body).status_code == 400, body
    as_form = requests.post(
        f"{fake.endpoints()['api_url']}/companies/{fake.company}/invoices/send",
        data={"invoiceId": str(invoice["invoiceId"])},
        headers=bearer(token),
        timeout=10,
    )
    assert as_form.status_code == 415
    assert fake.sent == []


def test_a_credit_note_is_sent_too(fake: FakeFiken, token: str) -> None:
    _, invoice = customer_with_invoice(fake)
    note = fake.add_credit_note(invoice, 5000, issued=ISSUED)
    body = {"creditNoteId": note["creditNoteId"], "method": ["email"]}
    body["includeDocumentAttachments"] = False
    assert api(fake, token, "creditNotes/send", "POST", json=body).status_code == 200
    assert fake.book().sent_credit_notes == [
        (note["creditNoteId"], ("email",), "ola@kunde.example")
    ]


def post_file(
    fake: FakeFiken, token: str, path: str, fields: dict[str, str], content: bytes
) -> requests.Response:
    return requests.post(
        f"{fake.endpoints()['api_url']}/companies/{fake.company}/{path}",
        data=fields,
        files={"file": ("upload.pdf", content, "application/pdf")},
        headers=bearer(token),
        timeout=10,
    )


def test_an_invoice_attachment_goes_in_and_comes_back(fake: FakeFiken, token: str) -> None:
    _, invoice = customer_with_invoice(fake)
    path = f"invoices/{invoice['invoiceId']}/attachments"
    content = b"%PDF-1.4\n% a note from Kindly\n%%EOF\n"
    created = post_file(fake, token, path, {"filename": "kindly-note.pdf"}, content)
    assert created.status_code == 201, created.text
    assert created.content == b""
    location = created.headers["Location"]
    shown = one(api(fake, token, f"invoices/{invoice['invoiceId']}"))["attachments"]
    assert [(a["identifier"], a["type"]) for a in shown] == [("kindly-note.pdf", "unspecified")]
    assert shown[0]["downloadUrl"] == location
    back = requests.get(location, headers=bearer(token), timeout=10)
    assert back.content == content
    assert back.headers["Content-Type"] == "application/pdf"
    assert fake.attachments[0]["content"] == content
    # No idempotency: the same post twice makes two.
    assert post_file(fake, token, path, {"filename": "kindly-note.pdf"}, content).status_code == 201
    assert len(rows(api(fake, token, path))) == 2


def test_attachments_are_refused_as_the_spec_says(fake: FakeFiken, token: str) -> None:
    _, invoice = customer_with_invoice(fake)
    path = f"invoices/{invoice['invoiceId']}/attachments"
    # The spec gives an invoice attachment filename and file only.
    extra = post_file(fake, token, path, {"filename": "a.pdf", "attachToSale": "true"}, b"x")
    assert extra.status_code == 400
    assert "attachToSale" in extra.json()["error_description"]
    assert post_file(fake, token, path, {"filename": "a.docx"}, b"x").status_code == 400
    assert post_file(fake, token, path, {}, b"x").status_code == 400
    as_json = api(fake, token, path, "POST", json={"filename": "a.pdf"})
    assert as_json.status_code == 415
    assert fake.attachments == []


def test_contact_and_sale_attachments(fake: FakeFiken, token: str) -> None:
    contact, invoice = customer_with_invoice(fake)
    created = post_file(
        fake,
        token,
        f"contacts/{contact['contactId']}/attachments",
        {"filename": "avtale.pdf", "comment": "Betalingsavtale"},
        b"%PDF-1.4 avtale",
    )
    assert created.status_code == 201, created.text
    documents = one(api(fake, token, f"contacts/{contact['contactId']}"))["documents"]
    assert [(d["identifier"], d["comment"]) for d in documents] == [
        ("avtale.pdf", "Betalingsavtale")
    ]
    sale_path = f"sales/{fake.sale(invoice)['saleId']}/attachments"
    neither = {"filename": "kvittering.png", "attachToPayment": "false"}
    assert post_file(fake, token, sale_path, neither, b"png").status_code == 400
    receipt = {"filename": "kvittering.png", "attachToPayment": "true"}
    assert post_file(fake, token, sale_path, receipt, b"png").status_code == 201
    assert [a["identifier"] for a in rows(api(fake, token, sale_path))] == ["kvittering.png"]


def test_fikens_own_reminders_show_as_reminder_attachments(fake: FakeFiken, token: str) -> None:
    _, overdue = customer_with_invoice(fake)
    paid = fake.add_invoice(fake.add_contact("Kari Hansen"), 10002, 5000, issued=ISSUED, due=DUE)
    fake.pay(paid, 5000, on=DUE)
    modified = one(api(fake, token, f"invoices/{overdue['invoiceId']}"))["lastModifiedDate"]
    fake.next_day()
    token = renew(fake)
    assert rows(api(fake, token, f"invoices/{overdue['invoiceId']}/attachments")) == []
    fake.auto_reminders = True
    fake.next_day()
    fake.next_day()
    token = renew(fake)
    reminders = rows(api(fake, token, f"invoices/{overdue['invoiceId']}/attachments"))
    assert [a["type"] for a in reminders] == ["reminder"]
    shown = one(api(fake, token, f"invoices/{overdue['invoiceId']}"))
    assert shown["lastModifiedDate"] == modified
    assert rows(api(fake, token, f"invoices/{paid['invoiceId']}/attachments")) == []
    pdf = requests.get(reminders[0]["downloadUrl"], headers=bearer(token), timeout=10)
    assert pdf.content.startswith(b"%PDF-1.4")


# -- faults and counts -----------------------------------------------------------------------


def test_faults_come_on_demand_and_a_carried_out_one_still_writes(
    fake: FakeFiken, token: str
) -> None:
    _, invoice = customer_with_invoice(fake)
    prefix = f"/api/v2/companies/{fake.company}/invoices"
    fake.fail_next(prefix, Fault(503), Fault(429, headers={"Retry-After": "2"}))
    assert api(fake, token, "invoices").status_code == 503
    throttled = api(fake, token, "invoices")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
    assert api(fake, token, "invoices").status_code == 200
    fake.fail_next(prefix, Fault(504, carry_out=True, drop=True))
    with pytest.raises(requests.ConnectionError):
        api(fake, token, "invoices/send", "POST", json=send_body(invoice, "email"))
    assert len(fake.sent) == 1
    fake.fail_next(prefix, Fault(500, carry_out=True))
    assert (
        api(fake, token, "invoices/send", "POST", json=send_body(invoice, "email")).status_code
        == 500
    )
    assert len(fake.sent) == 2
    assert fake.calls[f"GET {prefix}"] == 3
    assert fake.calls[f"POST {prefix}/send"] == 2
    assert fake.api_calls() == 5


def test_helpers_take_whole_ore_only(fake: FakeFiken) -> None:
    contact = fake.add_contact("Ola Nordmann")
    with pytest.raises(TypeError):
        fake.add_invoice(contact, 10001, 1250.0, issued=ISSUED, due=DUE)  # type: ignore[arg-type]
    invoice = fake.add_invoice(contact, 10001, 999, issued=ISSUED, due=DUE, vat=0)
    assert (invoice["net"], invoice["vat"]) == (999, 0)
    with pytest.raises(TypeError):
        fake.pay(invoice, 9.5, on=DUE)  # type: ignore[arg-type]
    assert fake.today + timedelta(days=1) == fake.next_day().date()
