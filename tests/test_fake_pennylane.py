"""The fake Pennylane itself, over HTTP on loopback. It checks the answers' field names and
types: always against small JSON Schemas written here from docs/research/pennylane-api.md,
and against Pennylane's published contract when a local copy is at hand (nothing is
fetched). It also checks cursor paging, the changelogs (start_date on the first page only,
operations, four weeks kept), OAuth with rotating refresh tokens, PKCE and revocation, one
company per token, the rate limit and its 429, the public PDF link without a token,
send_by_email and its 409, statuses that follow the clock and the money, and faults."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import requests

from tests.fakes.pennylane import (
    API,
    FakePennylane,
    Fault,
    Sent,
    amount_text,
    encode,
    iso,
)

#: A local copy of docs/api/contract/2026-09-30/operations.json from Davidslv/pennylane_client
#: (Pennylane's reference, machine-made); the test never downloads it.
CONTRACT_FILE = Path(
    os.environ.get("KINDLY_PENNYLANE_CONTRACT")
    or Path(__file__).resolve().parents[2] / "shared" / "specs" / "pennylane" / "operations.json"
)
REDIRECT = "http://127.0.0.1:8765/oauth/callback"
ISSUED = date(2026, 10, 1)
DUE = date(2026, 10, 31)  # before the fake's today (2026-11-23): late
LATER = date(2026, 12, 15)  # after it: upcoming

# -- the shapes, written from the research notes ------------------------------------------

STR: dict[str, Any] = {"type": "string"}
BOOL: dict[str, Any] = {"type": "boolean"}
ID: dict[str, Any] = {"type": "integer"}
AMOUNT: dict[str, Any] = {"type": "string", "pattern": r"^-?\d+\.\d{2}$"}
DECIMAL: dict[str, Any] = {"type": "string", "pattern": r"^\d+(\.\d+)?$"}
DATE: dict[str, Any] = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
TIME: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$",
}
LANGUAGE: dict[str, Any] = {"enum": ["fr_FR", "en_GB", "de_DE", "es_ES"]}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Any], *optional: str) -> dict[str, Any]:
    """An object with exactly these fields (all required unless named optional)."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


LINK = obj({"url": STR})
REF = obj({"id": ID, "url": STR})
BARE_REF = obj({"id": ID})
ADDRESS = obj({"address": STR, "postal_code": STR, "city": STR, "country_alpha2": STR})
INVOICE_STATUS = {
    "enum": [
        "archived",
        "incomplete",
        "cancelled",
        "paid",
        "partially_paid",
        "partially_cancelled",
        "upcoming",
        "late",
        "draft",
        "credit_note",
        "proforma",
        "shipping_order",
        "purchasing_order",
        "estimate_pending",
        "estimate_accepted",
        "estimate_invoiced",
        "estimate_denied",
    ]
}
PAYMENT_STATUS = {
    "enum": [
        "initiated",
        "pending",
        "emitted",
        "found",
        "not_found",
        "aborted",
        "error",
        "refunded",
        "prepared",
        "pending_customer_approval",
        "pending_submission",
        "submitted",
        "confirmed",
        "paid_out",
        "cancelled",
        "customer_approval_denied",
        "failed",
        "charged_back",
        "resubmission_requested",
    ]
}
INVOICE = obj(
    {
        "id": ID,
        "label": nullable(STR),
        "invoice_number": STR,
        "external_reference": STR,
        "customer": nullable(REF),
        "date": nullable(DATE),
        "deadline": nullable(DATE),
        "created_at": TIME,
        "updated_at": TIME,
        "archived_at": nullable(TIME),
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "amount": AMOUNT,
        "currency_amount": AMOUNT,
        "currency_amount_before_tax": AMOUNT,
        "currency_tax": AMOUNT,
        "tax": AMOUNT,
        "exchange_rate": DECIMAL,
        "remaining_amount_with_tax": nullable(AMOUNT),
        "remaining_amount_without_tax": nullable(AMOUNT),
        "discount": obj({"type": {"enum": ["absolute", "relative"]}, "value": STR}),
        "paid": BOOL,
        "draft": BOOL,
        "status": INVOICE_STATUS,
        "language": LANGUAGE,
        "credited_invoice": nullable(REF),
        "public_file_url": nullable(STR),
        "filename": nullable(STR),
        "factur_x": BOOL,
        "schematron_validation_status": nullable({"enum": ["pending", "valid", "invalid"]}),
        "invoice_lines": LINK,
        "invoice_line_sections": LINK,
        "payments": LINK,
        "matched_transactions": LINK,
        "appendices": LINK,
        "categories": LINK,
        "custom_header_fields": LINK,
        "installments": nullable(LINK),
        "payment_method_ledger_account": nullable(REF),
        "transaction_reference": nullable({"type": "object"}),
        "billing_subscription": nullable(BARE_REF),
        "quote": nullable(BARE_REF),
        "customer_invoice_template": nullable(BARE_REF),
        "ledger_entry": BARE_REF,
        "e_invoicing": nullable({"type": "object"}),
        "purchase_order_reference": nullable(STR),
        "sales_order_reference": nullable(STR),
        "special_mention": nullable(STR),
        "pdf_invoice_free_text": STR,
        "pdf_invoice_subject": STR,
        "pdf_description": nullable(STR),
    }
)
CUSTOMER_FIELDS: dict[str, Any] = {
    "id": ID,
    "name": STR,
    "billing_iban": nullable(STR),
    "payment_conditions": {
        "enum": [
            "upon_receipt",
            "custom",
            "7_days",
            "15_days",
            "30_days",
            "30_days_end_of_month",
            "45_days",
            "45_days_end_of_month",
            "60_days",
        ]
    },
    "recipient": STR,
    "phone": STR,
    "reference": nullable(STR),
    "notes": nullable(STR),
    "ledger_account": nullable(BARE_REF),
    "emails": {"type": "array", "items": STR},
    "billing_address": ADDRESS,
    "delivery_address": ADDRESS,
    "billing_language": LANGUAGE,
    "external_reference": STR,
    "mandates": LINK,
    "pro_account_mandates": LINK,
    "contacts": LINK,
    "created_at": TIME,
    "updated_at": TIME,
}
CUSTOMER = {
    "oneOf": [
        obj(
            {
                **CUSTOMER_FIELDS,
                "customer_type": {"const": "company"},
                "vat_number": STR,
                "reg_no": STR,
            }
        ),
        obj(
            {
                **CUSTOMER_FIELDS,
                "customer_type": {"const": "individual"},
                "first_name": STR,
                "last_name": STR,
            }
        ),
    ]
}
PAYMENT = obj(
    {
        "id": ID,
        "label": STR,
        "currency": nullable(STR),
        "currency_amount": AMOUNT,
        "status": PAYMENT_STATUS,
        "created_at": TIME,
        "updated_at": TIME,
    }
)
CHANGE = obj(
    {
        "id": ID,
        "operation": {"enum": ["insert", "update", "delete"]},
        "processed_at": TIME,
        "updated_at": TIME,
        "created_at": TIME,
    }
)
ME = obj(
    {
        "user": nullable(
            obj(
                {
                    "id": ID,
                    "first_name": STR,
                    "last_name": STR,
                    "email": STR,
                    "locale": {"enum": ["fr", "en", "de"]},
                }
            )
        ),
        "company": obj({"id": ID, "name": STR, "reg_no": STR, "accounting_logic": STR}),
        "scopes": {"type": "array", "items": STR},
    }
)
ERROR = obj({"error": STR, "status": ID})


def listing(item: dict[str, Any]) -> dict[str, Any]:
    return obj(
        {"items": {"type": "array", "items": item}, "has_more": BOOL, "next_cursor": nullable(STR)}
    )


def problems(schema: dict[str, Any], payload: Any) -> list[str]:
    checker = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    found = sorted(checker.iter_errors(payload), key=lambda e: list(e.absolute_path))
    return [f"at {list(e.absolute_path)}: {e.message[:200]}" for e in found]


def conforms(schema: dict[str, Any], payload: Any, what: str) -> None:
    found = problems(schema, payload)
    assert not found, f"{what} is not in Pennylane's shape:\n" + "\n".join(found[:8])


# -- the fake and a client -------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakePennylane]:
    server = FakePennylane()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def token(fake: FakePennylane) -> str:
    return str(fake.issue_tokens()["access_token"])


def call(
    fake: FakePennylane,
    token: str | None,
    path: str,
    method: str = "GET",
    *,
    json_body: Any = None,
    **params: str,
) -> requests.Response:
    """``path`` under the API (``/customers``), with the bearer ``token`` (None: none)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.request(
        method,
        fake.endpoints()["api_url"] + path,
        params=params,
        json=json_body,
        headers=headers,
        timeout=10,
    )


def ok(response: requests.Response) -> Any:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def refused(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    conforms(ERROR, body, f"a {status}")
    return body


def filtered(*terms: tuple[str, str, Any]) -> str:
    return json.dumps([{"field": f, "operator": o, "value": v} for f, o, v in terms])


def walk(fake: FakePennylane, token: str, path: str, **params: str) -> list[list[Any]]:
    """Every page of a cursor list: the ids of each page."""
    pages: list[list[Any]] = []
    cursor = ""
    while True:
        page = ok(call(fake, token, path, **params, **({"cursor": cursor} if cursor else {})))
        pages.append([item["id"] for item in page["items"]])
        assert page["has_more"] is (page["next_cursor"] is not None)
        if not page["has_more"]:
            return pages
        cursor = page["next_cursor"]


def ledger(fake: FakePennylane) -> dict[str, dict[str, Any]]:
    """A customer of each kind, a late invoice, an upcoming one, a credit note and a draft."""
    firm = fake.add_customer("Boulangerie Dupont")
    person = fake.add_customer("Jeanne Moreau", kind="individual", billing_language="en_GB")
    late = fake.add_invoice(firm, 7, "120.00", issued=ISSUED, due=DUE)
    upcoming = fake.add_invoice(person, 8, 240, issued=ISSUED, due=LATER)
    credit = fake.add_credit_note(late, "20.00", issued=date(2026, 11, 2))
    draft = fake.add_draft(firm, "60.00")
    return {
        "firm": firm,
        "person": person,
        "late": late,
        "upcoming": upcoming,
        "credit": credit,
        "draft": draft,
    }


def authorize(fake: FakePennylane, **params: str) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": fake.client_id,
        "redirect_uri": REDIRECT,
        "scope": "customers:readonly customer_invoices:all",
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


def token_request(fake: FakePennylane, **form: str) -> requests.Response:
    client = {"client_id": fake.client_id, "client_secret": fake.client_secret}
    return requests.post(fake.endpoints()["token_url"], data={**client, **form}, timeout=10)


def exchange(fake: FakePennylane, code: str, **extra: str) -> requests.Response:
    return token_request(
        fake, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, **extra
    )


def refresh(fake: FakePennylane, refresh_token: str) -> requests.Response:
    return token_request(fake, grant_type="refresh_token", refresh_token=refresh_token)


# -- shapes ----------------------------------------------------------------------------------


def test_answers_have_pennylanes_fields_and_types(fake: FakePennylane, token: str) -> None:
    books = ledger(fake)
    fake.pay(books["upcoming"], "40.00", on=date(2026, 11, 20))
    fake.add_invoice(books["firm"], 9, "99.99", issued=ISSUED, due=LATER, currency="USD")
    conforms(ME, ok(call(fake, token, "/me")), "GET /me")
    customers = ok(call(fake, token, "/customers"))
    conforms(listing(CUSTOMER), customers, "GET /customers")
    assert {c["customer_type"] for c in customers["items"]} == {"company", "individual"}
    conforms(CUSTOMER, ok(call(fake, token, f"/customers/{books['person']['id']}")), "a person")
    invoices = ok(call(fake, token, "/customer_invoices"))
    conforms(listing(INVOICE), invoices, "GET /customer_invoices")
    assert {i["status"] for i in invoices["items"]} >= {"credit_note", "draft", "upcoming"}
    for name in ("late", "credit", "draft"):
        shown = ok(call(fake, token, f"/customer_invoices/{books[name]['id']}"))
        conforms(INVOICE, shown, f"the {name} invoice")
    payments = ok(call(fake, token, f"/customer_invoices/{books['upcoming']['id']}/payments"))
    conforms(listing(PAYMENT), payments, "the payments")
    assert len(payments["items"]) == 1
    for resource in ("customer_invoices", "customers"):
        changes = ok(call(fake, token, f"/changelogs/{resource}"))
        conforms(listing(CHANGE), changes, f"the {resource} changelog")
        assert changes["items"]


def test_the_shape_check_catches_a_wrong_answer(fake: FakePennylane, token: str) -> None:
    books = ledger(fake)
    shown = ok(call(fake, token, f"/customer_invoices/{books['late']['id']}"))
    assert not problems(INVOICE, shown)
    for broken in (
        {**shown, "amount": 120},  # a number, not a decimal string
        {**shown, "amount": "120"},  # not two places
        {**shown, "date": "2026-10-01T00:00:00Z"},  # a time, not a date
        {**shown, "pdf": "x"},  # a field Pennylane does not have
        {k: v for k, v in shown.items() if k != "deadline"},  # a field missing
        {**shown, "customer": {"id": "42", "url": "u"}},  # an id as text
    ):
        assert problems(INVOICE, broken)


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    if not CONTRACT_FILE.is_file():
        pytest.skip(
            f"Pennylane's contract is not here ({CONTRACT_FILE}): put a copy of "
            "docs/api/contract/2026-09-30/operations.json from Davidslv/pennylane_client "
            "there (or name it in KINDLY_PENNYLANE_CONTRACT); this test never fetches it"
        )
    loaded: dict[str, Any] = json.loads(CONTRACT_FILE.read_text(encoding="utf-8"))
    return loaded


def as_json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: ``nullable: true`` admits null."""
    if isinstance(node, list):
        return [as_json_schema(each) for each in node]
    if not isinstance(node, dict):
        return node
    out = {key: as_json_schema(value) for key, value in node.items()}
    if out.pop("nullable", False) is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def contract_schema(contract: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found = [
        op
        for op in contract["operations"]
        if op["method"] == method and op["path"] == f"{API}{path}"
    ]
    assert found, f"{method} {path} is not in the contract"
    schema = found[0]["responses"]["200"]["content"]["application/json"]["schema"]
    converted: dict[str, Any] = as_json_schema(schema)
    return converted


def test_answers_match_the_published_contract(
    fake: FakePennylane, token: str, contract: dict[str, Any]
) -> None:
    books = ledger(fake)
    fake.pay(books["upcoming"], "40.00", on=date(2026, 11, 20))
    fake.delete_invoice(books["draft"]["id"])
    late = books["late"]["id"]
    answers = {
        "/me": "/me",
        "/customers": "/customers",
        "/customers/{id}": f"/customers/{books['person']['id']}",
        "/customer_invoices": "/customer_invoices",
        "/customer_invoices/{id}": f"/customer_invoices/{books['credit']['id']}",
        "/customer_invoices/{customer_invoice_id}/payments": (
            f"/customer_invoices/{books['upcoming']['id']}/payments"
        ),
        "/changelogs/customer_invoices": "/changelogs/customer_invoices",
        "/changelogs/customers": "/changelogs/customers",
    }
    for template, path in answers.items():
        conforms(contract_schema(contract, "GET", template), ok(call(fake, token, path)), path)
    single = contract_schema(contract, "GET", "/customer_invoices/{id}")
    conforms(single, ok(call(fake, token, f"/customer_invoices/{late}")), "the late invoice")
    conforms(single, ok(call(fake, token, f"/customer_invoices/{books['upcoming']['id']}")), "")


def test_the_encoder_and_the_helpers_refuse_floats(fake: FakePennylane) -> None:
    firm = fake.add_customer("Boulangerie Dupont")
    a_float: Any = 10.5  # what a careless test would pass; the types forbid it
    with pytest.raises(TypeError):
        encode({"items": [{"amount": 1.5}]})
    with pytest.raises(TypeError):
        fake.add_invoice(firm, 1, a_float, issued=ISSUED, due=DUE)
    invoice = fake.add_invoice(firm, 2, "10.50", issued=ISSUED, due=DUE)
    with pytest.raises(TypeError):
        fake.pay(invoice, a_float, on=ISSUED)
    with pytest.raises(TypeError):
        fake.add_customer("Typo SARL", email="x@y.example")  # Pennylane says "emails"
    with pytest.raises(TypeError):
        fake.update_invoice(invoice["id"], remaining_amount_with_tax="0.00")
    assert amount_text("-0") == "0.00" and amount_text(Decimal("12.5")) == "12.50"


# -- cursor paging -------------------------------------------------------------------------


def test_cursor_paging_walks_every_row_once(fake: FakePennylane, token: str) -> None:
    firm = fake.add_customer("Boulangerie Dupont")
    made = [fake.add_invoice(firm, n, 100 + n, issued=ISSUED, due=DUE)["id"] for n in range(25)]
    first = ok(call(fake, token, "/customer_invoices"))
    assert len(first["items"]) == 20 and first["has_more"] is True  # the default limit
    pages = walk(fake, token, "/customer_invoices", limit="7")
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [i for p in pages for i in p] == sorted(made, reverse=True)  # -id: newest first
    ascending = walk(fake, token, "/customer_invoices", limit="10", sort="id")
    assert [i for p in ascending for i in p] == made
    by_date = walk(fake, token, "/customer_invoices", limit="100", sort="-date")
    assert len(by_date[0]) == 25
    assert fake.served[-1] == 25
    # A row made between two pages does not shift the pages (keyset, not offset).
    page = ok(call(fake, token, "/customer_invoices", limit="5", sort="id"))
    fake.add_invoice(firm, 99, 5, issued=ISSUED, due=DUE)
    rest = ok(call(fake, token, "/customer_invoices", sort="id", cursor=page["next_cursor"]))
    assert [i["id"] for i in rest["items"]][:2] == made[5:7]


def test_the_cursor_carries_neither_filter_nor_sort(fake: FakePennylane, token: str) -> None:
    firm = fake.add_customer("Boulangerie Dupont")
    other = fake.add_customer("Café Martin")
    mine = [fake.add_invoice(firm, n, 10, issued=ISSUED, due=DUE)["id"] for n in range(1, 4)]
    theirs = [fake.add_invoice(other, n, 10, issued=ISSUED, due=DUE)["id"] for n in range(4, 7)]
    only_firm = filtered(("customer_id", "eq", firm["id"]))
    page = ok(call(fake, token, "/customer_invoices", limit="1", sort="id", filter=only_firm))
    assert [i["id"] for i in page["items"]] == mine[:1]
    cursor = page["next_cursor"]
    again = ok(call(fake, token, "/customer_invoices", sort="id", filter=only_firm, cursor=cursor))
    assert [i["id"] for i in again["items"]] == mine[1:]
    # Without the filter, page 2 is no longer filtered (as Pennylane warns).
    forgot = ok(call(fake, token, "/customer_invoices", sort="id", cursor=cursor))
    assert [i["id"] for i in forgot["items"]] == mine[1:] + theirs
    # Without the sort, page 2 follows the default -id from the cursor's position.
    unsorted = ok(call(fake, token, "/customer_invoices", cursor=cursor))
    assert unsorted["items"] == []


def test_limits_cursors_sorts_and_filters_are_checked(fake: FakePennylane, token: str) -> None:
    fake.add_customer("Boulangerie Dupont")
    for params in (
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"sort": "deadline"},
        {"filter": "{not json"},
        {"filter": filtered(("status", "eq", "late"))},  # no status filter in Pennylane
        {"filter": filtered(("draft", "gt", "true"))},
        {"filter": filtered(("id", "in", "12"))},
    ):
        refused(call(fake, token, "/customer_invoices", **params), 400)
    assert ok(call(fake, token, "/customers", limit="100"))["items"]
    customers_cursor = ok(call(fake, token, "/customers", limit="1"))
    fake.add_customer("Café Martin")
    cursor = ok(call(fake, token, "/customers", limit="1"))["next_cursor"]
    assert customers_cursor["has_more"] is False and cursor is not None
    refused(call(fake, token, "/customer_invoices", cursor=cursor), 400)  # another list's


def test_invoice_and_customer_filters(fake: FakePennylane, token: str) -> None:
    books = ledger(fake)

    def ids(path: str, *terms: tuple[str, str, Any]) -> set[int]:
        page = ok(call(fake, token, path, filter=filtered(*terms)))
        return {item["id"] for item in page["items"]}

    every = {books[k]["id"] for k in ("late", "upcoming", "credit", "draft")}
    assert ids("/customer_invoices", ("credit_note", "eq", "true")) == {books["credit"]["id"]}
    assert ids("/customer_invoices", ("draft", "eq", True)) == {books["draft"]["id"]}
    wanted = [books["late"]["id"], books["upcoming"]["id"]]
    assert ids("/customer_invoices", ("id", "in", wanted)) == set(wanted)
    assert ids("/customer_invoices", ("id", "not_in", [str(i) for i in wanted])) == every - set(
        wanted
    )
    assert ids("/customer_invoices", ("customer_id", "eq", str(books["person"]["id"]))) == {
        books["upcoming"]["id"]
    }
    assert ids("/customer_invoices", ("date", "gteq", "2026-11-01")) == {books["credit"]["id"]}
    assert ids("/customer_invoices", ("invoice_number", "eq", "F20260007")) == {books["late"]["id"]}
    assert ids("/customers", ("customer_type", "eq", "individual")) == {books["person"]["id"]}
    assert ids("/customers", ("name", "start_with", "boul")) == {books["firm"]["id"]}


def test_customers_of_both_kinds(fake: FakePennylane, token: str) -> None:
    books = ledger(fake)
    firm = ok(call(fake, token, f"/customers/{books['firm']['id']}"))
    assert firm["customer_type"] == "company" and firm["name"] == "Boulangerie Dupont"
    assert firm["emails"] == ["compta@boulangerie-dupont.example"]
    assert firm["billing_language"] == "fr_FR" and "first_name" not in firm
    assert firm["billing_address"]["country_alpha2"] == "FR"
    person = ok(call(fake, token, f"/customers/{books['person']['id']}"))
    assert (person["first_name"], person["last_name"]) == ("Jeanne", "Moreau")
    assert person["billing_language"] == "en_GB" and "reg_no" not in person
    assert ok(call(fake, token, f"/customer_invoices/{books['upcoming']['id']}"))["language"] == (
        "en_GB"
    )
    refused(call(fake, token, "/customers/999"), 404)
    refused(call(fake, token, "/customers/abc"), 404)
    with pytest.raises(TypeError):
        fake.add_customer("Paul Durand", kind="individual", reg_no="123")


# -- statuses and money ---------------------------------------------------------------------


def test_status_follows_the_clock_and_the_payments(fake: FakePennylane, token: str) -> None:
    firm = fake.add_customer("Boulangerie Dupont")
    soon = fake.today + timedelta(days=1)
    invoice = fake.add_invoice(firm, 1, "120.00", issued=ISSUED, due=soon)
    path = f"/customer_invoices/{invoice['id']}"
    before = ok(call(fake, token, path))
    assert (before["status"], before["paid"], before["remaining_amount_with_tax"]) == (
        "upcoming",
        False,
        "120.00",
    )
    logged = len(ok(call(fake, token, "/changelogs/customer_invoices"))["items"])
    fake.tick(days=2)
    token = str(fake.issue_tokens()["access_token"])  # a day passed: the first one ended
    after = ok(call(fake, token, path))
    assert after["status"] == "late"
    # Turning late is not a change: neither updated_at nor the changelog moves.
    assert after["updated_at"] == before["updated_at"]
    assert len(ok(call(fake, token, "/changelogs/customer_invoices"))["items"]) == logged
    fake.pay(invoice, "20.00", on=fake.today)
    part = ok(call(fake, token, path))
    assert (part["status"], part["remaining_amount_with_tax"]) == ("partially_paid", "100.00")
    assert part["remaining_amount_without_tax"] == "83.33"
    fake.partially_paid_status = False
    assert ok(call(fake, token, path))["status"] == "late"
    fake.pay(invoice, "1.00", on=fake.today, status="pending")  # not received yet
    assert ok(call(fake, token, path))["remaining_amount_with_tax"] == "100.00"
    with pytest.raises(ValueError, match="left"):
        fake.pay(invoice, "100.01", on=fake.today)
    fake.pay(invoice, "100.00", on=fake.today)
    paid = ok(call(fake, token, path))
    assert (paid["status"], paid["paid"], paid["remaining_amount_with_tax"]) == (
        "paid",
        True,
        "0.00",
    )
    listed = ok(call(fake, token, path + "/payments", sort="id"))["items"]
    assert [(p["currency_amount"], p["status"]) for p in listed] == [
        ("20.00", "paid_out"),
        ("1.00", "pending"),
        ("100.00", "paid_out"),
    ]
    assert listed[0]["created_at"] == iso(
        fake.clock.replace(hour=11, minute=0, second=0, microsecond=0)
    )


def test_credit_notes_live_in_the_same_collection(fake: FakePennylane, token: str) -> None:
    firm = fake.add_customer("Boulangerie Dupont")
    whole = fake.add_invoice(firm, 1, "120.00", issued=ISSUED, due=DUE)
    part = fake.add_invoice(firm, 2, "100.00", issued=ISSUED, due=LATER, currency="USD")
    full_note = fake.add_credit_note(whole, "120.00", issued=date(2026, 11, 2))
    shown = ok(call(fake, token, f"/customer_invoices/{full_note['id']}"))
    assert shown["status"] == "credit_note" and shown["invoice_number"] == "AV20260001"
    assert (shown["amount"], shown["currency_amount"]) == ("-120.00", "-120.00")
    assert shown["credited_invoice"]["id"] == whole["id"]
    assert shown["credited_invoice"]["url"].endswith(f"{API}/customer_invoices/{whole['id']}")
    cancelled = ok(call(fake, token, f"/customer_invoices/{whole['id']}"))
    assert (cancelled["status"], cancelled["remaining_amount_with_tax"]) == ("cancelled", "0.00")
    assert cancelled["credited_invoice"] is None
    fake.add_credit_note(part, "30", issued=date(2026, 11, 3))
    partly = ok(call(fake, token, f"/customer_invoices/{part['id']}"))
    assert (partly["status"], partly["remaining_amount_with_tax"]) == (
        "partially_cancelled",
        "70.00",
    )
    assert (partly["currency_amount"], partly["amount"], partly["exchange_rate"]) == (
        "100.00",
        "92.00",
        "0.92",
    )
    assert ok(call(fake, token, f"/customer_invoices/{full_note['id']}/payments"))["items"] == []


# -- changelogs ------------------------------------------------------------------------------


def test_changelogs_list_inserts_updates_and_deletes_oldest_first(
    fake: FakePennylane, token: str
) -> None:
    books = ledger(fake)
    fake.pay(books["upcoming"], "40.00", on=fake.today)
    fake.update_invoice(books["late"]["id"], label="Pain et viennoiseries")
    fake.delete_invoice(books["draft"]["id"])
    fake.update_customer(books["firm"]["id"], emails=["factures@dupont.example"])
    items = ok(call(fake, token, "/changelogs/customer_invoices", limit="1000"))["items"]
    seen = [(i["id"], i["operation"]) for i in items]
    assert seen == [
        (books["late"]["id"], "insert"),
        (books["upcoming"]["id"], "insert"),
        (books["credit"]["id"], "insert"),
        (books["late"]["id"], "update"),  # the credit note took off its remaining amount
        (books["draft"]["id"], "insert"),
        (books["upcoming"]["id"], "update"),  # the payment
        (books["late"]["id"], "update"),
        (books["draft"]["id"], "delete"),
    ]
    stamps = [i["processed_at"] for i in items]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    refused(call(fake, token, f"/customer_invoices/{books['draft']['id']}"), 404)
    shown = ok(call(fake, token, f"/customer_invoices/{books['late']['id']}"))
    assert (
        shown["label"] == "Pain et viennoiseries" and shown["updated_at"] == items[6]["updated_at"]
    )
    customers = ok(call(fake, token, "/changelogs/customers"))["items"]
    assert [(c["id"], c["operation"]) for c in customers] == [
        (books["firm"]["id"], "insert"),
        (books["person"]["id"], "insert"),
        (books["firm"]["id"], "update"),
    ]


def test_changelog_start_date_goes_on_the_first_page_only(fake: FakePennylane, token: str) -> None:
    firm = fake.add_customer("Boulangerie Dupont")
    made = [fake.add_invoice(firm, n, 10, issued=ISSUED, due=DUE) for n in range(1, 6)]
    everything = ok(call(fake, token, "/changelogs/customer_invoices"))["items"]
    mark = everything[1]["processed_at"]
    first = ok(call(fake, token, "/changelogs/customer_invoices", start_date=mark, limit="2"))
    # Inclusive: the change at start_date itself comes back.
    assert [i["id"] for i in first["items"]] == [made[1]["id"], made[2]["id"]]
    assert first["has_more"] is True
    cursor = first["next_cursor"]
    both = call(fake, token, "/changelogs/customer_invoices", start_date=mark, cursor=cursor)
    refused(both, 400)
    rest = ok(call(fake, token, "/changelogs/customer_invoices", cursor=cursor, limit="2"))
    assert [i["id"] for i in rest["items"]] == [made[3]["id"], made[4]["id"]]
    assert (rest["has_more"], rest["next_cursor"]) == (False, None)
    for bad in ("2026-11-23", "yesterday", "2026-11-23T08:00:00"):  # not RFC 3339 times
        refused(call(fake, token, "/changelogs/customer_invoices", start_date=bad), 400)
    refused(call(fake, token, "/changelogs/customer_invoices", limit="1001"), 400)
    assert ok(call(fake, token, "/changelogs/customers", limit="1000"))["has_more"] is False


def test_changelogs_keep_four_weeks(fake: FakePennylane) -> None:
    firm = fake.add_customer("Boulangerie Dupont")
    old = fake.add_invoice(firm, 1, 10, issued=ISSUED, due=DUE)
    fake.tick(days=27)
    recent = fake.add_invoice(firm, 2, 10, issued=ISSUED, due=DUE)
    token = str(fake.issue_tokens()["access_token"])
    kept = ok(call(fake, token, "/changelogs/customer_invoices"))["items"]
    assert [i["id"] for i in kept] == [old["id"], recent["id"]]
    fake.tick(days=2)
    token = str(fake.issue_tokens()["access_token"])
    kept = ok(call(fake, token, "/changelogs/customer_invoices"))["items"]
    assert [i["id"] for i in kept] == [recent["id"]]
    customers = ok(call(fake, token, "/changelogs/customers"))["items"]
    assert customers == []
    too_old = iso(fake.clock - timedelta(weeks=4, seconds=1))
    refused(call(fake, token, "/changelogs/customer_invoices", start_date=too_old), 422)
    just_in = iso(fake.clock - timedelta(weeks=4) + timedelta(seconds=1))
    ok(call(fake, token, "/changelogs/customer_invoices", start_date=just_in))


# -- OAuth -------------------------------------------------------------------------------------


def test_endpoints(fake: FakePennylane) -> None:
    ends = fake.endpoints()
    assert set(ends) == {"authorize_url", "token_url", "revoke_url", "api_url"}
    assert ends["api_url"].endswith("/api/external/v2")
    assert ends["api_url"].startswith("http://127.0.0.1:")
    assert ends["token_url"].endswith("/oauth/token")
    assert len(fake.companies) == 2 and fake.company in fake.companies


def test_authorize_redirects_with_code_and_state_or_an_error(fake: FakePennylane) -> None:
    answer = authorize(fake)
    assert answer["state"] == "st-1" and answer["code"]
    assert authorize(fake, scope="")["error"] == "invalid_scope"
    assert authorize(fake, scope="everything")["error"] == "invalid_scope"
    assert authorize(fake, response_type="token")["error"] == "unsupported_response_type"
    fake.deny_consent = True
    assert authorize(fake) == {"error": "access_denied", "state": "st-1"}
    wrong = requests.get(
        fake.endpoints()["authorize_url"],
        params={"client_id": "someone-else", "redirect_uri": REDIRECT, "response_type": "code"},
        allow_redirects=False,
        timeout=10,
    )
    assert wrong.status_code == 400


def test_the_code_is_exchanged_once_with_the_client_in_the_form(fake: FakePennylane) -> None:
    code = authorize(fake)["code"]
    basic = requests.post(
        fake.endpoints()["token_url"],
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(fake.client_id, fake.client_secret),
        timeout=10,
    )
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"
    wrong = token_request(
        fake, grant_type="authorization_code", code=code, redirect_uri=REDIRECT + "/x"
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert exchange(fake, code).status_code == 400  # a code goes at its first use
    code = authorize(fake)["code"]
    tokens = ok(exchange(fake, code))
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 86400
    assert tokens["scope"] == "customers:readonly customer_invoices:all"
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert exchange(fake, code).status_code == 400
    late_code = authorize(fake)["code"]
    fake.tick(minutes=11)
    assert exchange(fake, late_code).status_code == 400
    assert fake.token_calls == 6
    assert ok(call(fake, str(tokens["access_token"]), "/me"))["company"]["id"] == fake.company


def test_a_code_challenge_once_given_is_required(fake: FakePennylane) -> None:
    verifier = "kindly-" + "v" * 50
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    code = authorize(fake, code_challenge=challenge, code_challenge_method="S256")["code"]
    assert exchange(fake, code).status_code == 400  # no verifier
    code = authorize(fake, code_challenge=challenge, code_challenge_method="S256")["code"]
    assert exchange(fake, code, code_verifier="wrong").status_code == 400
    code = authorize(fake, code_challenge=challenge, code_challenge_method="S256")["code"]
    assert exchange(fake, code, code_verifier=verifier).status_code == 200
    odd = authorize(fake, code_challenge=challenge, code_challenge_method="S512")
    assert odd["error"] == "invalid_request"


def test_a_refresh_rotates_and_ends_the_old_pair(fake: FakePennylane) -> None:
    first = fake.issue_tokens()
    old_access, old_refresh = str(first["access_token"]), str(first["refresh_token"])
    ok(call(fake, old_access, "/me"))
    second = ok(refresh(fake, old_refresh))
    assert second["refresh_token"] != old_refresh and second["access_token"] != old_access
    assert fake.refreshes == 1
    assert refresh(fake, old_refresh).json()["error"] == "invalid_grant"  # the used one
    assert "invalid" in refused(call(fake, old_access, "/me"), 401)["error"]
    new_access = str(second["access_token"])
    assert ok(call(fake, new_access, "/me"))["company"]["id"] == fake.company
    third = ok(refresh(fake, str(second["refresh_token"])))
    refused(call(fake, new_access, "/me"), 401)
    ok(call(fake, str(third["access_token"]), "/me"))
    assert fake.refreshes == 2
    fake.tick(days=91)
    assert refresh(fake, str(third["refresh_token"])).status_code == 400  # 90 days
    assert fake.refreshes == 2


def test_revoke_ends_the_pair(fake: FakePennylane) -> None:
    tokens = fake.issue_tokens()
    other = fake.issue_tokens()
    form = {"client_id": fake.client_id, "client_secret": fake.client_secret}
    wrong = requests.post(
        fake.endpoints()["revoke_url"],
        data={**form, "client_secret": "nope", "token": tokens["refresh_token"]},
        timeout=10,
    )
    assert wrong.status_code == 401
    done = requests.post(
        fake.endpoints()["revoke_url"], data={**form, "token": tokens["refresh_token"]}, timeout=10
    )
    assert (done.status_code, done.content) == (200, b"")
    assert fake.revoked == [tokens["refresh_token"]]
    refused(call(fake, str(tokens["access_token"]), "/me"), 401)
    assert refresh(fake, str(tokens["refresh_token"])).status_code == 400
    ok(call(fake, str(other["access_token"]), "/me"))  # another grant goes on
    by_access = requests.post(
        fake.endpoints()["revoke_url"], data={**form, "token": other["access_token"]}, timeout=10
    )
    assert by_access.status_code == 200
    assert refresh(fake, str(other["refresh_token"])).status_code == 400


def test_the_api_wants_a_live_bearer_token(fake: FakePennylane, token: str) -> None:
    missing = call(fake, None, "/customers")
    refused(missing, 401)
    assert "ratelimit-limit" not in missing.headers
    assert "invalid_token" in missing.headers["WWW-Authenticate"]
    refused(call(fake, "made-up", "/customers"), 401)
    ok(call(fake, token, "/customers"))
    fake.expire_access_tokens()
    assert refused(call(fake, token, "/customers"), 401)["error"] == "The access token expired"
    refused(call(fake, fresh(fake), "/nothing-here"), 404)


def fresh(fake: FakePennylane, company: int | None = None, **kwargs: str) -> str:
    return str(fake.issue_tokens(company, **kwargs)["access_token"])


def test_each_resource_wants_its_scope(fake: FakePennylane) -> None:
    books = ledger(fake)
    reader = fresh(fake, scope="customer_invoices:readonly")
    ok(call(fake, reader, "/me"))  # no scope needed
    ok(call(fake, reader, "/customer_invoices"))
    ok(call(fake, reader, "/changelogs/customer_invoices"))
    assert "customers:readonly" in refused(call(fake, reader, "/customers"), 403)["error"]
    refused(call(fake, reader, "/changelogs/customers"), 403)
    send = f"/customer_invoices/{books['late']['id']}/send_by_email"
    refused(call(fake, reader, send, "POST"), 403)
    assert fake.sent == []
    assert ok(call(fake, reader, "/me"))["scopes"] == ["customer_invoices:readonly"]


def test_one_company_per_token(fake: FakePennylane, token: str) -> None:
    other = next(c for c in fake.companies if c != fake.company)
    mine = ledger(fake)
    guest = fake.add_customer("Client Lyon", company=other)
    theirs = fake.add_invoice(guest, 1, "50.00", issued=ISSUED, due=DUE)
    assert theirs["id"] not in fake.invoices and theirs["id"] in fake.book(other).invoices
    fake.consent_company = other
    tokens = ok(exchange(fake, authorize(fake)["code"]))
    other_token = str(tokens["access_token"])
    assert ok(call(fake, other_token, "/me"))["company"] == {
        "id": other,
        "name": fake.book(other).name,
        "reg_no": fake.book(other).reg_no,
        "accounting_logic": "FR_PCG",
    }
    seen = ok(call(fake, other_token, "/customer_invoices"))["items"]
    assert [i["id"] for i in seen] == [theirs["id"]]
    refused(call(fake, other_token, f"/customer_invoices/{mine['late']['id']}"), 404)
    refused(call(fake, token, f"/customer_invoices/{theirs['id']}"), 404)
    refused(call(fake, token, f"/customers/{guest['id']}"), 404)
    assert ok(call(fake, token, "/me"))["company"]["id"] == fake.company
    # A refresh stays with the grant's company.
    again = ok(refresh(fake, str(tokens["refresh_token"])))
    assert ok(call(fake, str(again["access_token"]), "/me"))["company"]["id"] == other
    assert ok(call(fake, fresh(fake, other), "/me"))["company"]["id"] == other
    with pytest.raises(KeyError):
        fake.add_invoice(guest, 2, 10, issued=ISSUED, due=DUE, company=fake.company)


def test_me_may_have_no_user(fake: FakePennylane, token: str) -> None:
    assert ok(call(fake, token, "/me"))["user"]["email"] == fake.user["email"]
    fake.user_on_me = False
    shown = ok(call(fake, token, "/me"))
    assert shown["user"] is None
    conforms(ME, shown, "GET /me without a user")


# -- rate limit -------------------------------------------------------------------------------


def test_rate_limit_headers_and_the_429(fake: FakePennylane, token: str) -> None:
    reset = str(math.ceil((fake.clock + timedelta(seconds=5)).timestamp()))
    remaining = []
    for _ in range(25):
        answer = call(fake, token, "/me")
        assert answer.status_code == 200
        assert (answer.headers["ratelimit-limit"], answer.headers["ratelimit-reset"]) == (
            "25",
            reset,
        )
        assert "retry-after" not in answer.headers
        remaining.append(int(answer.headers["ratelimit-remaining"]))
    assert remaining == list(range(24, -1, -1))
    over = call(fake, token, "/customers")
    assert over.status_code == 429
    assert over.text == "Rate limit exceeded. Please retry in 5 seconds."
    assert (over.headers["retry-after"], over.headers["ratelimit-remaining"]) == ("5", "0")
    assert over.headers["ratelimit-reset"] == reset
    elsewhere = call(fake, fresh(fake), "/me")  # the limit is per token
    assert elsewhere.headers["ratelimit-remaining"] == "24"
    fake.tick(seconds=2)
    assert call(fake, token, "/me").headers["retry-after"] == "3"
    fake.tick(seconds=3)
    again = call(fake, token, "/me")
    assert again.status_code == 200 and again.headers["ratelimit-remaining"] == "24"
    missing = call(fake, token, "/customers/999")
    assert missing.status_code == 404 and missing.headers["ratelimit-remaining"] == "23"


# -- the PDF and sending ---------------------------------------------------------------------


def test_the_public_pdf_link_needs_no_token_and_lasts_30_minutes(
    fake: FakePennylane, token: str
) -> None:
    books = ledger(fake)
    shown = ok(call(fake, token, f"/customer_invoices/{books['late']['id']}"))
    link = shown["public_file_url"]
    assert link.startswith(fake.url + "/public/invoice/pdf?encrypted_id=")
    assert shown["filename"] == "Facture F20260007.pdf"
    pdf = requests.get(link, timeout=10)  # no Authorization header
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-1.4")
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert "ratelimit-limit" not in pdf.headers
    fake.tick(minutes=29)
    assert requests.get(link, timeout=10).status_code == 200
    fake.tick(minutes=1)
    assert requests.get(link, timeout=10).status_code == 404
    again = ok(call(fake, token, f"/customer_invoices/{books['late']['id']}"))["public_file_url"]
    assert again != link and requests.get(again, timeout=10).status_code == 200
    fake.pdf_generating = True
    pending = ok(call(fake, token, f"/customer_invoices/{books['late']['id']}"))
    assert (pending["public_file_url"], pending["filename"]) == (None, None)


def test_send_by_email_and_its_409(fake: FakePennylane, token: str) -> None:
    books = ledger(fake)
    late = books["late"]["id"]
    path = f"/customer_invoices/{late}/send_by_email"
    fake.pdf_generating = True
    busy = call(fake, token, path, "POST")
    assert "generated" in refused(busy, 409)["error"]
    assert fake.sent == []
    fake.pdf_generating = False
    done = call(fake, token, path, "POST")
    assert (done.status_code, done.content) == (204, b"")
    assert fake.sent == [Sent(late, ("compta@boulangerie-dupont.example",))]
    chosen = call(fake, token, path, "POST", json_body={"recipients": ["a@b.example"]})
    assert chosen.status_code == 204
    assert fake.sent[-1] == Sent(late, ("a@b.example",))
    refused(call(fake, token, path, "POST", json_body={"recipients": "a@b.example"}), 400)
    refused(call(fake, token, path, "POST", json_body=["a@b.example"]), 400)
    draft = f"/customer_invoices/{books['draft']['id']}/send_by_email"
    refused(call(fake, token, draft, "POST"), 422)
    fake.update_customer(books["firm"]["id"], emails=[])
    refused(call(fake, token, path, "POST"), 422)
    refused(call(fake, token, "/customer_invoices/1/send_by_email", "POST"), 404)
    assert len(fake.sent) == 2


# -- faults, counts, shuffling, helpers ------------------------------------------------------


def test_faults_on_demand_and_the_counts(fake: FakePennylane, token: str) -> None:
    books = ledger(fake)
    prefix = f"{API}/customer_invoices"
    fake.fail_next(
        prefix, Fault(503, body={"error": "down", "status": 503}), Fault(429, {"retry-after": "7"})
    )
    failed = call(fake, token, "/customer_invoices")
    assert (failed.status_code, failed.json()) == (503, {"error": "down", "status": 503})
    throttled = call(fake, token, "/customer_invoices")
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "7")
    served_before = list(fake.served)
    assert call(fake, token, "/customer_invoices").status_code == 200
    assert fake.served == [*served_before, 4]
    send = f"/customer_invoices/{books['late']['id']}/send_by_email"
    fake.fail_next(prefix, Fault(502, carry_out=True, drop=True))
    with pytest.raises(requests.ConnectionError):
        call(fake, token, send, "POST")
    assert fake.sent == [Sent(books["late"]["id"], ("compta@boulangerie-dupont.example",))]
    assert fake.calls[f"GET {prefix}"] == 3
    assert fake.calls[f"POST {API}{send}"] == 1
    before = fake.api_calls()
    call(fake, token, "/me")
    requests.get(fake.endpoints()["authorize_url"], allow_redirects=False, timeout=10)
    assert fake.api_calls() == before + 1
    fake.fail_next("/oauth/token", Fault(500))
    assert refresh(fake, "whatever").status_code == 500
    assert fake.token_calls == 1 and fake.refreshes == 0


def test_shuffled_pages_hold_the_same_rows(fake: FakePennylane, token: str) -> None:
    for n in range(12):
        fake.add_customer(f"Client {n:02d}")

    def pages() -> list[list[int]]:
        return walk(fake, token, "/customers", limit="6")

    plain = pages()
    fake.shuffle_pages = True
    mixed = [pages() for _ in range(4)]
    assert all([sorted(p) for p in each] == [sorted(p) for p in plain] for each in mixed)
    assert any(each != plain for each in mixed)
    changes = ok(call(fake, token, "/changelogs/customers"))["items"]
    assert [c["processed_at"] for c in changes] == sorted(c["processed_at"] for c in changes)


def test_helpers_pin_change_and_delete(fake: FakePennylane, token: str) -> None:
    books = ledger(fake)
    late = books["late"]["id"]
    fake.update_invoice(late, status="archived")
    assert ok(call(fake, token, f"/customer_invoices/{late}"))["status"] == "archived"
    fake.update_invoice(late, status=None, deadline=LATER, amount="150.00")
    shown = ok(call(fake, token, f"/customer_invoices/{late}"))
    assert (shown["status"], shown["deadline"], shown["currency_amount"]) == (
        "partially_cancelled",
        "2026-12-15",
        "150.00",
    )
    assert shown["remaining_amount_with_tax"] == "130.00"
    fake.update_customer(books["person"]["id"], billing_language="de_DE")
    assert ok(call(fake, token, f"/customers/{books['person']['id']}"))["billing_language"] == (
        "de_DE"
    )
    with pytest.raises(ValueError, match="billing_language"):
        fake.update_customer(books["person"]["id"], billing_language="nl_NL")
    gone = fake.delete_invoice(books["upcoming"]["id"])
    assert gone["id"] not in fake.invoices
    refused(call(fake, token, f"/customer_invoices/{gone['id']}/payments"), 404)
