"""The fake Moneybird itself, over HTTP: its answers against the response schemas of
Moneybird's OpenAPI file (../shared/specs/moneybird/openapi.yml, OAS 3.1, so JSON Schema
2020-12), and its behaviour: OAuth with expiring access tokens and refresh tokens that
do not rotate, paging by the Link header, the synchronization endpoints and their 100 ids,
rate limits per administration, the PDF's 302, signed webhooks, states that follow the
clock and the payments, administrations kept apart, and faults on demand."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import requests
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.fakes.moneybird import (
    API,
    WEBHOOK_EVENTS,
    WEBHOOK_GROUPS,
    FakeMoneybird,
    Fault,
    Reminder,
    Sending,
)

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs" / "moneybird"
SPEC_FILE = SPECS / "openapi.yml"
EVENTS_FILE = SPECS / "webhook_events.md"
needs_spec = pytest.mark.skipif(
    not SPEC_FILE.exists(),
    reason=f"Moneybird's OpenAPI file is not there ({SPEC_FILE}): ../shared/specs is absent",
)
SPEC_URI = "urn:moneybird:openapi"
REDIRECT = "http://127.0.0.1:8765/oauth/callback"
HOOK_URL = "https://kindly.example/webhooks/moneybird"
ISSUED = date(2026, 11, 1)
DUE = date(2026, 11, 15)  # before the fake's today (2026-11-22): late
LATER = date(2026, 12, 6)  # after it: open

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
FORMATS = jsonschema.FormatChecker()


# jsonschema checks "date-time" only with an optional package; Moneybird's times are
# RFC 3339, so a plain pattern does.
@FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or RFC3339.fullmatch(value) is not None


# -- the spec ------------------------------------------------------------------------------


@functools.cache
def spec() -> dict[str, Any]:
    import yaml

    # The file is 2.4 MB: libyaml's loader reads it in a second, the pure one in many.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_FILE.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=loader)
    return loaded


@functools.cache
def registry() -> Registry[Any]:
    # The whole document is one resource, so "#/components/schemas/..." inside any schema
    # resolves against it.
    empty: Registry[Any] = Registry()
    whole: Registry[Any] = empty.with_resource(SPEC_URI, DRAFT202012.create_resource(spec()))
    return whole


def pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def validator(path: str, method: str, where: tuple[str, ...]) -> jsonschema.Draft202012Validator:
    assert path in spec()["paths"], f"{path} is not in the spec"
    target = SPEC_URI + "#" + pointer("paths", path, method, *where, "schema")
    return jsonschema.Draft202012Validator(
        {"$ref": target}, registry=registry(), format_checker=FORMATS
    )


def _assert_valid(checker: jsonschema.Draft202012Validator, payload: Any, what: str) -> None:
    errors = sorted(checker.iter_errors(payload), key=lambda e: list(e.absolute_path))
    shown = "\n".join(f"  at {list(e.absolute_path)}: {e.message[:300]}" for e in errors[:8])
    assert not errors, f"{what} does not match the spec:\n{shown}"


def check(path: str, method: str, payload: Any, status: str = "200") -> None:
    """``payload`` is what the spec's ``path``/``method`` answers with ``status``."""
    where = ("responses", status, "content", "application/json")
    _assert_valid(validator(path, method, where), payload, f"{method.upper()} {path} {status}")


def check_request(path: str, method: str, body: Any) -> None:
    """``body`` is a request body the spec's ``path``/``method`` takes."""
    where = ("requestBody", "content", "application/*")
    _assert_valid(validator(path, method, where), body, f"the body of {method.upper()} {path}")


# -- the fake and a client -----------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeMoneybird]:
    server = FakeMoneybird()
    server.start()
    yield server
    server.stop()


@dataclass
class Api:
    fake: FakeMoneybird
    token: str

    def __call__(
        self,
        path: str,
        method: str = "GET",
        *,
        administration: str | None = None,
        **options: Any,
    ) -> requests.Response:
        """``path`` under ``/api/v2/{administration}/`` (``administrations.json`` as is)."""
        where = path
        if path != "administrations.json":
            where = f"{administration or self.fake.administration}/{path}"
        return self.get(f"{self.fake.endpoints()['api_url']}/{where}", method, **options)

    def renew(self) -> None:
        """A fresh access token (after the clock moved past the last one's hour)."""
        self.token = str(self.fake.issue_tokens()["access_token"])

    def get(self, url: str, method: str = "GET", **options: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        return requests.request(method, url, headers=headers, timeout=10, **options)


@pytest.fixture
def api(fake: FakeMoneybird) -> Api:
    return Api(fake, str(fake.issue_tokens()["access_token"]))


def other(fake: FakeMoneybird) -> str:
    """The second administration."""
    return next(key for key in fake.administrations if key != fake.administration)


@dataclass
class Ledger:
    contact: dict[str, Any]
    person: dict[str, Any]
    archived: dict[str, Any]
    open: dict[str, Any]
    late: dict[str, Any]
    partly_paid: dict[str, Any]
    paid: dict[str, Any]
    dollars: dict[str, Any]
    credited: dict[str, Any]
    credit: dict[str, Any]
    draft: dict[str, Any]

    def invoices(self) -> list[dict[str, Any]]:
        return [
            self.open,
            self.late,
            self.partly_paid,
            self.paid,
            self.dollars,
            self.credited,
            self.credit,
            self.draft,
        ]


@pytest.fixture
def ledger(fake: FakeMoneybird, api: Api) -> Ledger:
    """One of each: contacts (a company, a person, an archived one) and invoices 2026-0001
    to -0007 (open, late, partly paid, paid, in dollars, credited, its credit invoice) and a
    draft; the open and the late one with a note."""
    contact = fake.add_contact("Bakkerij de Vries")
    person = fake.add_contact(
        "", company_name=None, firstname="Sanne", lastname="Jansen", email="sanne@example.nl"
    )
    archived = fake.add_contact("Oude Klant")
    fake.update_contact(archived["id"], archived=True)
    open_one = fake.add_invoice(contact, 1, "121", issued=ISSUED, due=LATER, reference="X")
    late = fake.add_invoice(contact, 2, "60.5", issued=ISSUED, due=DUE)
    partly = fake.add_invoice(person, 3, "242", issued=ISSUED, due=DUE)
    fake.pay(partly, "42", on=date(2026, 11, 20), reference="NL12 BANK 0001")
    paid = fake.add_invoice(person, 4, "363", issued=ISSUED, due=DUE)
    fake.pay(paid, "363", on=date(2026, 11, 10))
    dollars = fake.add_invoice(
        contact, 5, "1000", issued=ISSUED, due=LATER, currency="USD", language="en"
    )
    credited = fake.add_invoice(person, 6, "90.75", issued=ISSUED, due=DUE)
    credit = fake.add_credit_invoice(credited, "90.75", issued=date(2026, 11, 20), settle=True)
    draft = fake.add_draft(contact, "99.99")
    for invoice in (open_one, late):
        note = {"note": {"note": "Herinnering 1 verstuurd door Kindly", "todo": False}}
        api(f"sales_invoices/{invoice['id']}/notes.json", "POST", json=note).raise_for_status()
    return Ledger(
        contact, person, archived, open_one, late, partly, paid, dollars, credited, credit, draft
    )


# -- against the spec ----------------------------------------------------------------------


@needs_spec
def test_administrations_answer_as_the_spec_says(fake: FakeMoneybird, api: Api) -> None:
    listed = api("administrations.json").json()
    check("/administrations{format}", "get", listed)
    assert [a["id"] for a in listed] == list(fake.administrations)
    assert {(a["language"], a["currency"], a["country"], a["time_zone"]) for a in listed} == {
        ("nl", "EUR", "NL", "Europe/Amsterdam")
    }


@needs_spec
def test_contacts_answer_as_the_spec_says(fake: FakeMoneybird, api: Api, ledger: Ledger) -> None:
    listed = api("contacts.json", params={"include_archived": "true"}).json()
    check("/{administration_id}/contacts{format}", "get", listed)
    assert len(listed) == 3
    one = api(f"contacts/{ledger.contact['id']}.json").json()
    check("/{administration_id}/contacts/{id}{format}", "get", one)
    assert "language" not in one  # Moneybird keeps the language on the invoice
    missing = api("contacts/123.json")
    assert missing.status_code == 404
    check("/{administration_id}/contacts/{id}{format}", "get", missing.json(), "404")
    versions = api("contacts/synchronization.json").json()
    check("/{administration_id}/contacts/synchronization{format}", "get", versions)
    body = {"ids": [row["id"] for row in versions]}
    check_request("/{administration_id}/contacts/synchronization{format}", "post", body)
    full = api("contacts/synchronization.json", "POST", json=body).json()
    check("/{administration_id}/contacts/synchronization{format}", "post", full)
    assert sorted(c["id"] for c in full) == sorted(body["ids"])


@needs_spec
def test_sales_invoices_answer_as_the_spec_says(
    fake: FakeMoneybird, api: Api, ledger: Ledger
) -> None:
    listed = api("sales_invoices.json", params={"filter": "state:all,period:this_year"}).json()
    check("/{administration_id}/sales_invoices{format}", "get", listed)
    assert {i["id"] for i in listed} == {i["id"] for i in ledger.invoices()}
    for invoice in ledger.invoices():
        one = api(f"sales_invoices/{invoice['id']}.json").json()
        check("/{administration_id}/sales_invoices/{id}{format}", "get", one)
    found = api(f"sales_invoices/find_by_invoice_id/{ledger.late['invoice_id']}.json").json()
    check(
        "/{administration_id}/sales_invoices/find_by_invoice_id/{invoice_id}{format}", "get", found
    )
    refused = api("sales_invoices.json", params={"per_page": "101"})
    assert refused.status_code == 400
    check("/{administration_id}/sales_invoices{format}", "get", refused.json(), "400")
    versions = api("sales_invoices/synchronization.json").json()
    check("/{administration_id}/sales_invoices/synchronization{format}", "get", versions)
    body = {"ids": [row["id"] for row in versions]}
    check_request("/{administration_id}/sales_invoices/synchronization{format}", "post", body)
    full = api("sales_invoices/synchronization.json", "POST", json=body).json()
    check("/{administration_id}/sales_invoices/synchronization{format}", "post", full)
    assert len(full) == len(ledger.invoices())


@needs_spec
def test_a_note_answers_as_the_spec_says(fake: FakeMoneybird, api: Api, ledger: Ledger) -> None:
    path = "/{administration_id}/sales_invoices/{sales_invoice_id}/notes{format}"
    body = {"note": {"note": "Kindly stuurde herinnering 2", "todo": False}}
    check_request(path, "post", body)
    made = api(f"sales_invoices/{ledger.open['id']}/notes.json", "POST", json=body)
    assert made.status_code == 201
    check(path, "post", made.json(), "201")
    blank = api(f"sales_invoices/{ledger.open['id']}/notes.json", "POST", json={"note": {}})
    assert blank.status_code == 422
    check(path, "post", blank.json(), "422")
    on_contact = api(f"contacts/{ledger.contact['id']}/notes.json", "POST", json=body)
    assert on_contact.status_code == 201
    check(
        "/{administration_id}/contacts/{contact_id}/notes{format}", "post", on_contact.json(), "201"
    )


@needs_spec
def test_a_webhook_answers_as_the_spec_says(fake: FakeMoneybird, api: Api, ledger: Ledger) -> None:
    path = "/{administration_id}/webhooks{format}"
    body = {"url": HOOK_URL, "enabled_events": ["sales_invoice_state_changed", "contact"]}
    check_request(path, "post", body)
    made = api("webhooks.json", "POST", json=body)
    assert made.status_code == 201
    check(path, "post", made.json(), "201")
    check(path, "get", api("webhooks.json").json())
    refused = api("webhooks.json", "POST", json={"enabled_events": []})
    assert refused.status_code == 400
    check(path, "post", refused.json(), "400")
    payload, _ = fake.signed_webhook(fake.administration, ledger.paid, "payment_registered")
    check("/{administration_id}/sales_invoices/{id}{format}", "get", json.loads(payload)["entity"])


@needs_spec
def test_a_workflow_answers_as_the_spec_says(fake: FakeMoneybird, api: Api) -> None:
    fake.enable_automatic_reminders()
    listed = api("workflows.json").json()
    check("/{administration_id}/workflows{format}", "get", listed)
    one = api(f"workflows/{listed[0]['id']}.json").json()
    check("/{administration_id}/workflows/{id}{format}", "get", one)


@needs_spec
def test_sending_answers_as_the_spec_says(fake: FakeMoneybird, api: Api, ledger: Ledger) -> None:
    path = "/{administration_id}/sales_invoices/{id}/send_invoice{format}"
    body = {"sales_invoice_sending": {"delivery_method": "Email", "email_address": "a@b.nl"}}
    check_request(path, "patch", body)
    sent = api(f"sales_invoices/{ledger.draft['id']}/send_invoice.json", "PATCH", json=body)
    assert sent.status_code == 200
    check(path, "patch", sent.json())
    reminders = {
        "sales_invoice_reminders": [
            {
                "contact_id": ledger.contact["id"],
                "workflow_id": ledger.late["workflow_id"],
                "document_style_id": ledger.late["document_style_id"],
                "identity_id": ledger.late["identity_id"],
                "sales_invoice_ids": [ledger.open["id"]],
            }
        ]
    }
    check_request("/{administration_id}/sales_invoices/send_reminders{format}", "post", reminders)


@needs_spec
def test_the_webhook_events_are_moneybirds() -> None:
    text = EVENTS_FILE.read_text(encoding="utf-8")
    events = set(re.findall(r"^\| ([a-z_]+) \|", text, re.MULTILINE))
    groups = set(re.findall(r"^- `([a-z_]+)`", text, re.MULTILINE))
    assert events >= WEBHOOK_EVENTS, sorted(WEBHOOK_EVENTS - events)
    assert groups >= WEBHOOK_GROUPS, sorted(WEBHOOK_GROUPS - groups)


# -- paging and synchronization ------------------------------------------------------------


def test_pages_follow_the_link_header(fake: FakeMoneybird, api: Api) -> None:
    made = [fake.add_contact(f"Klant {n}") for n in range(7)]
    response = first = api("contacts.json", params={"per_page": 3})
    sizes, seen = [], []
    while True:
        assert response.status_code == 200
        sizes.append(len(response.json()))
        seen += [row["id"] for row in response.json()]
        following = response.links.get("next")
        if following is None:
            break
        response = api.get(following["url"])
    assert sizes == [3, 3, 1]
    assert seen == [c["id"] for c in made]
    assert "prev" not in first.links and "prev" in response.links
    whole = api("contacts.json")  # 50 a page unless asked
    assert len(whole.json()) == 7 and "Link" not in whole.headers
    assert api("contacts.json", params={"page": 4, "per_page": 3}).json() == []
    too_many = api("contacts.json", params={"per_page": 101})
    assert too_many.status_code == 400
    assert too_many.json()["error"] == "per_page does not have a valid value"
    assert api("contacts.json", params={"page": 0}).status_code == 400


def test_synchronization_takes_at_most_100_ids(fake: FakeMoneybird, api: Api) -> None:
    contacts = [fake.add_contact(f"Klant {n}") for n in range(101)]
    ids = [c["id"] for c in contacts]
    listed = api("contacts/synchronization.json").json()
    assert {row["id"]: row["version"] for row in listed} == {
        c["id"]: c["version"] for c in contacts
    }
    hundred = api("contacts/synchronization.json", "POST", json={"ids": ids[:100]}).json()
    assert sorted(c["id"] for c in hundred) == sorted(ids[:100])
    # As the spec says: "Returns a maximum of 100 contacts, even if more ids are provided."
    more = api("contacts/synchronization.json", "POST", json={"ids": ids})
    assert more.status_code == 200 and len(more.json()) == 100
    assert ids[100] not in {c["id"] for c in more.json()}
    fake.refuse_too_many_ids = True
    assert api("contacts/synchronization.json", "POST", json={"ids": ids}).status_code == 400
    missing = api("sales_invoices/synchronization.json", "POST", json={})
    assert missing.status_code == 400
    assert missing.json() == {"error": "Ids is required", "symbolic": {"ids": "required"}}


def test_a_deleted_invoice_leaves_the_synchronization_list(
    fake: FakeMoneybird, api: Api, ledger: Ledger
) -> None:
    before = {row["id"] for row in api("sales_invoices/synchronization.json").json()}
    assert ledger.late["id"] in before
    fake.delete_invoice(ledger.late["id"])
    after = {row["id"] for row in api("sales_invoices/synchronization.json").json()}
    assert after == before - {ledger.late["id"]}
    gone = api(f"sales_invoices/{ledger.late['id']}.json")
    assert gone.status_code == 404
    assert gone.json() == {"error": "record not found", "symbolic": {"id": "not_found"}}
    fetched = api("sales_invoices/synchronization.json", "POST", json={"ids": [ledger.late["id"]]})
    assert fetched.json() == []


def test_versions_move_with_every_change(fake: FakeMoneybird, api: Api, ledger: Ledger) -> None:
    def versions() -> dict[str, int]:
        rows = api("sales_invoices/synchronization.json").json()
        return {row["id"]: row["version"] for row in rows}

    before = versions()
    api(
        f"sales_invoices/{ledger.open['id']}/notes.json",
        "POST",
        json={"note": {"note": "Kindly", "todo": False}},
    )
    fake.pay(ledger.dollars, "10", on=date(2026, 11, 22))
    after = versions()
    moved = {key for key in before if after[key] != before[key]}
    assert moved == {ledger.open["id"], ledger.dollars["id"]}
    assert all(after[key] > before[key] for key in moved)
    contact_before = api(f"contacts/{ledger.contact['id']}.json").json()["version"]
    fake.update_contact(ledger.contact["id"], email="nieuw@bakkerij.example")
    shown = api(f"contacts/{ledger.contact['id']}.json").json()
    assert shown["version"] > contact_before and shown["email"] == "nieuw@bakkerij.example"


# -- states, payments, credit invoices -----------------------------------------------------


def test_the_state_follows_the_clock_and_the_payments(fake: FakeMoneybird, api: Api) -> None:
    contact = fake.add_contact("Bakkerij de Vries")
    invoice = fake.add_invoice(contact, 9, "121", issued=ISSUED, due=date(2026, 11, 25))
    assert invoice["state"] == "open" and invoice["invoice_id"] == "2026-0009"
    first_version = invoice["version"]
    fake.tick(days=3)  # the 25th: due today, not yet late
    api.renew()
    assert api(f"sales_invoices/{invoice['id']}.json").json()["state"] == "open"
    fake.tick(days=1)
    api.renew()
    shown = api(f"sales_invoices/{invoice['id']}.json").json()
    assert shown["state"] == "late" and shown["version"] > first_version
    payment = fake.pay(invoice, "21", on=date(2026, 11, 26), reference="TRX-1")
    shown = api(f"sales_invoices/{invoice['id']}.json").json()
    assert (shown["state"], shown["total_paid"], shown["total_unpaid"]) == ("late", "21.0", "100.0")
    assert shown["payments"] == [payment]
    assert (
        payment["transaction_identifier"] == "TRX-1" and payment["invoice_type"] == "SalesInvoice"
    )
    with pytest.raises(ValueError, match="more than is open"):
        fake.pay(invoice, "100.01", on=date(2026, 11, 26))
    fake.pay(invoice, "100", on=date(2026, 11, 27))
    shown = api(f"sales_invoices/{invoice['id']}.json").json()
    assert (shown["state"], shown["total_unpaid"], shown["paid_at"]) == (
        "paid",
        "0.0",
        "2026-11-27",
    )
    assert [e["action"] for e in shown["events"]][-2:] == [
        "payment_registered",
        "sales_invoice_state_changed_to_paid",
    ]


def test_a_credit_invoice_has_negative_totals_and_its_original(
    fake: FakeMoneybird, api: Api
) -> None:
    contact = fake.add_contact("Bakkerij de Vries")
    original = fake.add_invoice(contact, 1, "363", issued=ISSUED, due=DUE)
    credit = fake.add_credit_invoice(original, "121", issued=date(2026, 11, 20))
    shown = api(f"sales_invoices/{credit['id']}.json").json()
    assert shown["original_sales_invoice_id"] == original["id"]
    assert (shown["total_price_incl_tax"], shown["total_unpaid"], shown["state"]) == (
        "-121.0",
        "-121.0",
        "open",
    )
    assert shown["invoice_id"] == "2026-0002"  # the next number of the year
    settled = fake.add_credit_invoice(original, "242", issued=date(2026, 11, 21), settle=True)
    shown = api(f"sales_invoices/{settled['id']}.json").json()
    assert (shown["state"], shown["total_paid"]) == ("paid", "-242.0")
    first = api(f"sales_invoices/{original['id']}.json").json()
    assert (first["total_unpaid"], first["state"]) == ("121.0", "late")
    assert first["payments"][0]["credit_invoice_id"] == settled["id"]
    with pytest.raises(ValueError, match="is open"):
        fake.add_credit_invoice(original, "200", issued=date(2026, 11, 21), settle=True)


def test_amounts_are_exact_decimal_strings(fake: FakeMoneybird, api: Api) -> None:
    contact = fake.add_contact("Bakkerij de Vries")
    invoice = fake.add_invoice(contact, 1, "100.10", issued=ISSUED, due=LATER)
    fake.pay(invoice, "0.1", on=ISSUED)

    def no_floats(text: str) -> Any:
        raise AssertionError(f"a JSON number with a fraction: {text}")

    shown = json.loads(api(f"sales_invoices/{invoice['id']}.json").text, parse_float=no_floats)
    assert shown["total_price_incl_tax"] == "100.1"
    assert shown["total_price_excl_tax"] == "82.73"
    assert (shown["total_paid"], shown["total_unpaid"]) == ("0.1", "100.0")
    assert shown["payments"][0]["price"] == "0.1"
    with pytest.raises(TypeError):
        fake.add_invoice(contact, 2, 1.5, issued=ISSUED, due=LATER)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no language"):
        fake.add_contact("Taalschool", language="de")


def test_filters_pick_states_periods_and_changes(
    fake: FakeMoneybird, api: Api, ledger: Ledger
) -> None:
    old = fake.add_invoice(ledger.contact, 90, "50", issued=date(2025, 6, 1), due=date(2025, 7, 1))

    def listed(filter_text: str | None) -> set[str]:
        params = {} if filter_text is None else {"filter": filter_text}
        answer = api("sales_invoices.json", params=params)
        assert answer.status_code == 200, answer.text
        return {row["id"] for row in answer.json()}

    # No filter: Moneybird's default, this year only.
    assert listed(None) == {i["id"] for i in ledger.invoices()}
    # A filter replaces the defaults: without a period every year counts.
    due = {ledger.open["id"], ledger.late["id"], ledger.partly_paid["id"], ledger.dollars["id"]}
    assert listed("state:open|late") == due | {old["id"]}
    assert listed("state:open|late,period:this_year") == due
    assert listed("state:open") == {ledger.open["id"], ledger.dollars["id"]}
    assert listed("period:202501..202512") == {old["id"]}
    assert listed("state:draft") == {ledger.draft["id"]}
    assert listed(f"state:all,contact_id:{ledger.person['id']}") == {
        ledger.partly_paid["id"],
        ledger.paid["id"],
        ledger.credited["id"],
        ledger.credit["id"],
    }
    since = fake.clock
    fake.update_invoice(ledger.open["id"], reference="Project Y")
    assert listed(f"updated_after:{since.isoformat()}") == {ledger.open["id"]}
    changed = fake.invoices[ledger.open["id"]]["updated_at"]
    assert listed(f"updated_after:{changed}") == set()  # exclusive
    wrong = api("sales_invoices.json", params={"filter": "state:lost"})
    assert wrong.status_code == 400
    assert wrong.json()["symbolic"] == {"filter": "invalid"}
    open_ended = api("sales_invoices.json", params={"filter": "period:20260101.."})
    assert open_ended.json() == {"error": "Period must have both a start and end date"}
    synced = api("sales_invoices/synchronization.json", params={"filter": "state:paid"}).json()
    assert {row["id"] for row in synced} == {
        ledger.paid["id"],
        ledger.credited["id"],
        ledger.credit["id"],
    }


def test_archived_contacts_only_on_request(fake: FakeMoneybird, api: Api, ledger: Ledger) -> None:
    plain = {row["id"] for row in api("contacts.json").json()}
    assert plain == {ledger.contact["id"], ledger.person["id"]}
    everyone = {
        row["id"] for row in api("contacts.json", params={"include_archived": "true"}).json()
    }
    assert everyone == plain | {ledger.archived["id"]}
    assert api(f"contacts/{ledger.archived['id']}.json").status_code == 404
    synced = {row["id"] for row in api("contacts/synchronization.json").json()}
    assert synced == plain
    searched = api("contacts.json", params={"query": "sanne"}).json()
    assert [row["id"] for row in searched] == [ledger.person["id"]]


# -- notes and sending ---------------------------------------------------------------------


def test_notes_join_their_invoice_and_are_not_idempotent(
    fake: FakeMoneybird, api: Api, ledger: Ledger
) -> None:
    body = {"note": {"note": "Kindly: herinnering 2 verstuurd", "todo": False}}
    path = f"sales_invoices/{ledger.late['id']}/notes.json"
    first, second = api(path, "POST", json=body).json(), api(path, "POST", json=body).json()
    assert first["id"] != second["id"]
    assert (first["entity_id"], first["entity_type"]) == (ledger.late["id"], "SalesInvoice")
    assert (first["todo"], first["user_id"]) == (False, fake.user_id)
    shown = api(f"sales_invoices/{ledger.late['id']}.json").json()
    assert [n["id"] for n in shown["notes"]][-2:] == [first["id"], second["id"]]
    assert fake.notes[first["id"]]["note"] == "Kindly: herinnering 2 verstuurd"
    on_contact = api(f"contacts/{ledger.person['id']}/notes.json", "POST", json=body).json()
    assert on_contact["entity_type"] == "Contact"
    assert api(f"contacts/{ledger.person['id']}.json").json()["notes"][-1] == on_contact
    assert api("sales_invoices/123/notes.json", "POST", json=body).status_code == 404


def test_sending_an_invoice_and_reminders(fake: FakeMoneybird, api: Api, ledger: Ledger) -> None:
    sent = api(
        f"sales_invoices/{ledger.draft['id']}/send_invoice.json",
        "PATCH",
        json={"sales_invoice_sending": {"delivery_method": "Email"}},
    ).json()
    assert sent["invoice_id"] == "2026-0008" and sent["state"] == "open"
    by_post = api(
        f"sales_invoices/{ledger.open['id']}/send_invoice.json",
        "PATCH",
        json={"sales_invoice_sending": {"delivery_method": "Pigeon"}},
    )
    assert by_post.status_code == 400
    assert (sent["invoice_date"], sent["sent_at"], sent["draft_id"]) == (
        "2026-11-22",
        "2026-11-22",
        None,
    )
    assert fake.sent == [Sending(ledger.draft["id"], "Email", "bakkerij@client.example")]
    fake.update_contact(ledger.person["id"], email="", send_invoices_to_email="")
    nowhere = api(f"sales_invoices/{ledger.partly_paid['id']}/send_invoice.json", "PATCH", json={})
    assert nowhere.status_code == 422
    assert nowhere.json()["error"] == {"email_address": ["can't be blank"]}
    entry = {
        "contact_id": ledger.contact["id"],
        "workflow_id": ledger.late["workflow_id"],
        "document_style_id": ledger.late["document_style_id"],
        "identity_id": ledger.late["identity_id"],
        "sales_invoice_ids": [ledger.open["id"], ledger.dollars["id"]],
    }
    done = api(
        "sales_invoices/send_reminders.json", "POST", json={"sales_invoice_reminders": [entry]}
    )
    assert done.status_code == 200
    assert fake.reminders_sent == [
        Reminder(
            ledger.contact["id"],
            (ledger.open["id"], ledger.dollars["id"]),
            "Email",
            "bakkerij@client.example",
            fake.workflows[ledger.late["workflow_id"]]["steps"][1]["reminder_text"],
        )
    ]
    shown = api(f"sales_invoices/{ledger.open['id']}.json").json()
    assert (shown["state"], shown["reminder_count"]) == ("reminded", 1)
    paid = {**entry, "contact_id": ledger.person["id"], "sales_invoice_ids": [ledger.paid["id"]]}
    refused = api(
        "sales_invoices/send_reminders.json", "POST", json={"sales_invoice_reminders": [paid]}
    )
    assert refused.status_code == 422 and len(fake.reminders_sent) == 1
    lacking = {k: v for k, v in entry.items() if k != "identity_id"}
    assert (
        api(
            "sales_invoices/send_reminders.json",
            "POST",
            json={"sales_invoice_reminders": [lacking]},
        ).status_code
        == 400
    )


def test_workflows_show_whether_moneybird_sends_reminders(
    fake: FakeMoneybird, api: Api, ledger: Ledger
) -> None:
    def invoice_workflow(administration: str | None = None) -> dict[str, Any]:
        listed = api("workflows.json", administration=administration).json()
        found: list[dict[str, Any]] = [
            w for w in listed if w["type"] == "InvoiceWorkflow" and w["default"]
        ]
        assert len(found) == 1
        return found[0]

    before = invoice_workflow()
    assert ledger.open["workflow_id"] == before["id"]
    assert not any(step["reminder_auto_send"] for step in before["steps"])
    fake.enable_automatic_reminders()
    after = invoice_workflow()
    assert [step["reminder_auto_send"] for step in after["steps"]] == [False, True, True, True]
    assert not any(s["reminder_auto_send"] for s in invoice_workflow(other(fake))["steps"])


# -- the PDF -------------------------------------------------------------------------------


def test_the_pdf_is_a_302_to_a_short_lived_link_without_the_token(
    fake: FakeMoneybird, api: Api, ledger: Ledger
) -> None:
    path = f"sales_invoices/{ledger.late['id']}/download_pdf.json"
    moved = api(path, allow_redirects=False)
    assert moved.status_code == 302
    location = moved.headers["Location"]
    assert location.startswith(f"{fake.url}/downloads/")
    pdf = requests.get(location, timeout=10)  # no Authorization: the download host wants none
    assert pdf.status_code == 200
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-1.4") and b"2026-0002" in pdf.content
    fake.tick(seconds=31)
    assert requests.get(location, timeout=10).status_code == 404
    followed = api(path)
    assert followed.content.startswith(b"%PDF-1.4")
    assert api("sales_invoices/123/download_pdf.json", allow_redirects=False).status_code == 404


# -- webhooks ------------------------------------------------------------------------------


def test_a_signed_webhook_is_as_moneybird_pushes_it(
    fake: FakeMoneybird, api: Api, ledger: Ledger
) -> None:
    made = api("webhooks.json", "POST", json={"url": HOOK_URL, "enabled_events": ["payment"]})
    assert made.status_code == 201
    hook = made.json()
    assert len(hook["secret"]) == 64 and hook["token"]
    assert "secret" not in api("webhooks.json").json()[0]
    body, headers = fake.signed_webhook(
        fake.administration, ledger.paid, "sales_invoice_state_changed_to_paid"
    )
    fields = dict(part.split("=", 1) for part in headers["Moneybird-Signature"].split(","))
    assert fields["t"] == str(int(fake.clock.timestamp()))
    signed = f"{fields['t']}.".encode() + body
    expected = hmac.new(hook["secret"].encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    tampered = hmac.new(hook["secret"].encode(), signed + b" ", hashlib.sha256).hexdigest()
    assert fields["v1"] != tampered
    assert uuid.UUID(headers["Idempotency-Key"]).version == 4
    payload = json.loads(body)
    assert list(payload) == [
        "administration_id",
        "webhook_id",
        "webhook_token",
        "entity_type",
        "entity_id",
        "state",
        "action",
        "entity",
    ]
    assert (payload["webhook_id"], payload["webhook_token"]) == (hook["id"], hook["token"])
    assert (payload["entity_type"], payload["state"]) == ("SalesInvoice", "paid")
    assert payload["entity"] == api(f"sales_invoices/{ledger.paid['id']}.json").json()
    push = functools.partial(fake.signed_webhook, fake.administration, ledger.paid)
    again = push("payment_registered")[1]
    retried = push("payment_registered", idempotency_key=headers["Idempotency-Key"])[1]
    assert again["Idempotency-Key"] != headers["Idempotency-Key"]
    assert retried["Idempotency-Key"] == headers["Idempotency-Key"]
    contact_body, _ = fake.signed_webhook(fake.administration, ledger.contact, "contact_changed")
    assert json.loads(contact_body)["entity_type"] == "Contact"
    with pytest.raises(LookupError):
        fake.signed_webhook(other(fake), ledger.paid, "payment_registered")
    assert api(f"webhooks/{hook['id']}.json", "DELETE").status_code == 204
    assert api("webhooks.json").json() == []


def test_webhooks_refuse_what_moneybird_refuses(fake: FakeMoneybird, api: Api) -> None:
    removed = api("webhooks.json", "POST", json={"url": HOOK_URL, "events": ["contact"]})
    assert removed.status_code == 400 and removed.json()["symbolic"] == {"events": "removed"}
    typo = api("webhooks.json", "POST", json={"url": HOOK_URL, "enabled_events": ["invoice_paid"]})
    assert typo.status_code == 400
    fake.unreachable_webhook_urls.add(HOOK_URL)
    assert api("webhooks.json", "POST", json={"url": HOOK_URL}).status_code == 400
    assert api("webhooks/123.json", "DELETE").status_code == 404


# -- OAuth ---------------------------------------------------------------------------------


def _authorize(fake: FakeMoneybird, **extra: str) -> dict[str, list[str]]:
    answer = requests.get(
        fake.endpoints()["authorize_url"],
        params={
            "client_id": fake.client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "sales_invoices settings",
            "state": "s-42",
            **extra,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


def _token(fake: FakeMoneybird, **form: str) -> requests.Response:
    data = {"client_id": fake.client_id, "client_secret": fake.client_secret, **form}
    return requests.post(fake.endpoints()["token_url"], data=data, timeout=10)


def _administrations(fake: FakeMoneybird, token: str) -> requests.Response:
    return Api(fake, token)("administrations.json")


def test_a_token_expires_and_refreshes_without_rotating(fake: FakeMoneybird) -> None:
    query = _authorize(fake)
    assert query["state"] == ["s-42"]
    code = query["code"][0]
    granted = _token(fake, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert granted.status_code == 200
    token = granted.json()
    assert (token["token_type"], token["expires_in"], token["scope"]) == (
        "bearer",
        3600,
        "sales_invoices settings",
    )
    assert token["created_at"] == int(fake.clock.timestamp())
    twice = _token(fake, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert twice.status_code == 400 and twice.json()["error"] == "invalid_grant"
    assert _administrations(fake, token["access_token"]).status_code == 200
    fake.tick(minutes=61)
    expired = _administrations(fake, token["access_token"])
    assert expired.status_code == 401 and "expired" in expired.json()["error"]
    for _ in range(2):  # the same refresh token, again and again
        renewed = _token(fake, grant_type="refresh_token", refresh_token=token["refresh_token"])
        assert renewed.status_code == 200
        assert renewed.json()["refresh_token"] == token["refresh_token"]
        assert _administrations(fake, renewed.json()["access_token"]).status_code == 200
    assert (fake.refreshes, fake.token_calls) == (2, 4)
    fake.expire_access_tokens()
    assert _administrations(fake, renewed.json()["access_token"]).status_code == 401


def test_rotating_refresh_tokens_end_the_one_used(fake: FakeMoneybird) -> None:
    fake.rotate_refresh_tokens = True
    grant = fake.issue_tokens()
    renewed = _token(fake, grant_type="refresh_token", refresh_token=grant["refresh_token"])
    assert renewed.status_code == 200
    assert renewed.json()["refresh_token"] != grant["refresh_token"]
    old = _token(fake, grant_type="refresh_token", refresh_token=grant["refresh_token"])
    assert old.status_code == 400
    newer = _token(fake, grant_type="refresh_token", refresh_token=renewed.json()["refresh_token"])
    assert newer.status_code == 200


def test_codes_clients_scopes_and_revocation(fake: FakeMoneybird) -> None:
    late_code = _authorize(fake)["code"][0]
    fake.tick(minutes=10)
    stale = _token(fake, grant_type="authorization_code", code=late_code, redirect_uri=REDIRECT)
    assert stale.status_code == 400
    code = _authorize(fake)["code"][0]
    wrong = _token(
        fake,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        client_secret="guessed",
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    elsewhere = _token(
        fake, grant_type="authorization_code", code=_authorize(fake)["code"][0], redirect_uri="x"
    )
    assert elsewhere.status_code == 400
    fake.consent = False
    assert _authorize(fake)["error"] == ["access_denied"]
    fake.consent = True
    assert _authorize(fake, scope="everything")["error"] == ["invalid_scope"]
    narrow = str(fake.issue_tokens("sales_invoices")["access_token"])
    assert Api(fake, narrow)("sales_invoices.json").status_code == 200
    refused = Api(fake, narrow)("webhooks.json")
    assert refused.status_code == 401 and refused.json()["error"].startswith("No access to")
    assert Api(fake, "made-up")("contacts.json").status_code == 401
    grant = fake.issue_tokens()
    revoked = requests.post(
        fake.endpoints()["revoke_url"],
        data={
            "token": grant["access_token"],
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
        },
        timeout=10,
    )
    assert revoked.status_code == 200
    assert _administrations(fake, grant["access_token"]).status_code == 401
    again = _token(fake, grant_type="refresh_token", refresh_token=grant["refresh_token"])
    assert again.status_code == 400


def test_tokens_need_not_expire() -> None:
    fake = FakeMoneybird(tokens_expire=False)
    fake.start()
    try:
        grant = fake.issue_tokens()
        assert "expires_in" not in grant
        fake.tick(days=60)
        assert _administrations(fake, grant["access_token"]).status_code == 200
    finally:
        fake.stop()


# -- rate limits ---------------------------------------------------------------------------


def test_rate_limit_headers_and_the_429(fake: FakeMoneybird, api: Api) -> None:
    first = api("contacts.json")
    reset = int(fake.clock.timestamp()) + 300
    assert (
        first.headers["RateLimit-Limit"],
        first.headers["RateLimit-Remaining"],
        first.headers["RateLimit-Reset"],
    ) == ("150", "149", str(reset))
    for _ in range(149):
        last = api("sales_invoices.json")
    assert last.status_code == 200 and last.headers["RateLimit-Remaining"] == "0"
    over = api("webhooks.json")
    assert over.status_code == 429 and over.text == "Retry later"
    assert over.headers["Retry-After"] == str(reset)
    assert over.headers["RateLimit-Remaining"] == "0"
    assert fake.rate_remaining() == 0
    elsewhere = api("contacts.json", administration=other(fake))
    assert elsewhere.status_code == 200 and elsewhere.headers["RateLimit-Remaining"] == "149"
    fake.retry_after_seconds = True
    fake.tick(minutes=1)
    assert api("contacts.json").headers["Retry-After"] == "240"
    fake.tick(minutes=4)
    again = api("contacts.json")
    assert again.status_code == 200 and again.headers["RateLimit-Remaining"] == "149"
    fake.spend_rate_limit(148)
    assert api("contacts.json").headers["RateLimit-Remaining"] == "0"


# -- administrations kept apart ------------------------------------------------------------


def test_administrations_are_kept_apart(fake: FakeMoneybird, api: Api) -> None:
    holding = other(fake)
    mine = fake.add_contact("Bakkerij de Vries")
    theirs = fake.add_contact("Holding Klant", administration=holding)
    invoice = fake.add_invoice(theirs, 1, "50", issued=ISSUED, due=DUE)
    assert invoice["administration_id"] == holding
    assert fake.book(holding).invoices == {invoice["id"]: invoice} and fake.invoices == {}
    assert {c["id"] for c in api("contacts.json").json()} == {mine["id"]}
    assert api(f"contacts/{theirs['id']}.json").status_code == 404
    assert api(f"sales_invoices/{invoice['id']}.json").status_code == 404
    assert api("sales_invoices/synchronization.json").json() == []
    by_id = api("sales_invoices/synchronization.json", "POST", json={"ids": [invoice["id"]]})
    assert by_id.json() == []
    note = {"note": {"note": "x", "todo": False}}
    assert api(f"sales_invoices/{invoice['id']}/notes.json", "POST", json=note).status_code == 404
    shown = api(f"sales_invoices/{invoice['id']}.json", administration=holding).json()
    assert shown["administration_id"] == holding and shown["contact"]["id"] == theirs["id"]
    with pytest.raises(KeyError):
        fake.add_invoice(mine, 2, "10", issued=ISSUED, due=DUE, administration=holding)
    unknown = api("contacts.json", administration="123")
    assert unknown.status_code == 404


# -- faults, counts, shuffling -------------------------------------------------------------


def test_faults_on_demand_and_the_counts(fake: FakeMoneybird, api: Api, ledger: Ledger) -> None:
    prefix = f"{API}/{fake.administration}/sales_invoices"
    fake.fail_next(prefix, Fault(503, body={"error": "down"}), Fault(429, {"Retry-After": "7"}))
    failed = api("sales_invoices.json")
    assert (failed.status_code, failed.json()) == (503, {"error": "down"})
    throttled = api("sales_invoices.json")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert api("sales_invoices.json").status_code == 200
    notes_path = f"sales_invoices/{ledger.paid['id']}/notes.json"
    fake.fail_next(prefix, Fault(502, carry_out=True, drop=True))
    with pytest.raises(requests.ConnectionError):
        api(notes_path, "POST", json={"note": {"note": "lost answer", "todo": False}})
    assert [n["note"] for n in fake.invoices[ledger.paid["id"]]["notes"]] == ["lost answer"]
    assert fake.calls[f"GET {prefix}.json"] == 3
    assert fake.calls[f"POST {API}/{fake.administration}/{notes_path}"] == 1
    api_before = fake.api_calls()
    api("contacts.json")
    assert fake.api_calls() == api_before + 1


def test_shuffled_pages_hold_the_same_rows(fake: FakeMoneybird, api: Api) -> None:
    for n in range(20):
        fake.add_contact(f"Klant {n}")

    def pages() -> list[list[str]]:
        return [
            [c["id"] for c in api("contacts.json", params={"page": p, "per_page": 10}).json()]
            for p in (1, 2)
        ]

    plain = pages()
    fake.shuffle_pages = True
    mixed = pages()
    assert [sorted(page) for page in mixed] == [sorted(page) for page in plain]
    assert mixed != plain
