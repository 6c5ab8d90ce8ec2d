"""The Pennylane connector against a fake Pennylane on loopback: the bookkeeping and HTTP
contracts, then decimal strings, languages, companies and individuals, credit notes and
payments, the sync by change logs (and a bookmark past their four weeks), rotating token
pairs, the token endpoint's form, one company per token, the rate limit, fresh reads, the
public PDF, Pennylane's own e-mail, and notes kept in Kindly only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.base import Capability
from integrations.bookkeeping import pennylane_records as records
from integrations.bookkeeping.pennylane import PennylaneConnector
from integrations.http import AuthError, FatalError, HttpClient
from integrations.oauth import Token
from plugin.core.model import CustomerKind, InvoiceStatus, LedgerSnapshot, Note
from plugin.core.money import Money
from plugin.core.vocabulary import DeliveryStatus
from tests.contract import (
    BookkeepingHarness,
    HttpHarness,
    bookkeeping_contract,
    harness_factory,
    http_contract,
)
from tests.fakes.pennylane import API, PUBLIC_PDF_PATH, TOKEN_PATH, FakePennylane, Fault, Sent
from tests.pennylane_harness import (
    PennylaneHarness,
    connect_to_fake,
    fresh_token,
    seed_small_company,
)

Seeded = dict[str, dict[str, Any]]

# -- the contracts ----------------------------------------------------------------------------


def _secrets(harness: PennylaneHarness) -> list[str]:
    token = harness.vault.load()
    assert token is not None
    return [token.access_token, token.refresh_token, harness.fake.client_secret]


@harness_factory(PennylaneConnector)
def pennylane_harness(folder: Path) -> Iterator[BookkeepingHarness]:
    """Pennylane with the small company, seeded a quarter of an hour before the connector
    first reads it (outside the ten minutes the first sync's bookmark goes back)."""
    fake = FakePennylane()
    fake.start()
    seed_small_company(fake)
    fake.tick(minutes=15)
    pennylane = connect_to_fake(fake, folder)
    try:
        yield BookkeepingHarness(
            connector=pennylane.connector,
            source_name=fake.book().name,
            secrets=lambda: _secrets(pennylane),
            change_invoice=lambda invoice_id: fake.update_invoice(
                int(invoice_id), deadline=fake.today + timedelta(days=30)
            ),
            delete_invoice=lambda invoice_id: fake.delete_invoice(int(invoice_id)),
            calls=fake.api_calls,
            served=lambda: sum(fake.served),
            # The two change logs, customers and customer invoices.
            unchanged_sync_calls=2,
        )
    finally:
        pennylane.store.close()
        fake.stop()


@harness_factory(PennylaneConnector)
def pennylane_http_harness(folder: Path) -> Iterator[HttpHarness]:
    fake = FakePennylane()
    fake.start()
    customer = fake.add_customer("Pagination SAS")
    pennylane = connect_to_fake(fake, folder)
    path = f"{API}/customer_invoices"

    def seed(count: int) -> None:
        for n in range(count):
            fake.add_invoice(
                customer, 5000 + n, "10.00", issued=date(2026, 6, 1), due=date(2026, 7, 1)
            )

    def fail(status: int, headers: dict[str, str], times: int) -> None:
        fake.fail_next(path, *[Fault(status, headers, b"Retry later")] * times)

    def point_at(url: str) -> None:
        pennylane.connector.settings = replace(pennylane.connector.settings, api_url=url)

    try:
        yield HttpHarness(
            connector=pennylane.connector,
            time=pennylane.time,
            seed=seed,
            fail_list_call=fail,
            revoke_access=fake.expire_access_tokens,
            refreshes=lambda: fake.refreshes,
            list_calls=lambda: fake.calls[f"GET {path}"],
            point_at=point_at,
            secrets=lambda: _secrets(pennylane),
            page_size=100,
            read=lambda: len(list(pennylane.connector._pages("customer_invoices", {}))),
        )
    finally:
        pennylane.store.close()
        fake.stop()


TestPennylaneContract = bookkeeping_contract(pennylane_harness)
TestPennylaneHttp = http_contract(pennylane_http_harness)

# -- Pennylane's own --------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakePennylane]:
    server = FakePennylane()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def seeded(fake: FakePennylane) -> Seeded:
    made = seed_small_company(fake)
    fake.tick(minutes=15)
    return made


@pytest.fixture
def pennylane(fake: FakePennylane, seeded: object, tmp_path: Path) -> Iterator[PennylaneHarness]:
    harness = connect_to_fake(fake, tmp_path)
    yield harness
    harness.store.close()


def _id(record: dict[str, Any]) -> str:
    return str(record["id"])


def _same_records(one: LedgerSnapshot, other: LedgerSnapshot) -> None:
    """The same records, whatever their order."""
    assert one.customers_by_id == other.customers_by_id
    assert one.invoices_by_id == other.invoices_by_id
    assert {p.id: p for p in one.payments} == {p.id: p for p in other.payments}
    assert {n.id: n for n in one.credit_notes} == {n.id: n for n in other.credit_notes}


def test_a_sync_maps_pennylane_records_onto_the_model(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    snapshot = pennylane.connector.read_snapshot()
    customers = snapshot.customers_by_id
    dupont = customers[_id(seeded["dupont"])]
    assert (dupont.name, dupont.contact_name, dupont.language, dupont.kind) == (
        "Boulangerie Dupont SARL", "Marie Dupont", "fr", CustomerKind.BUSINESS,
    )  # fmt: skip
    assert dupont.emails == ("factures@dupont.example", "marie@dupont.example")
    assert dupont.phones == ("+33 1 42 00 00 01",)
    assert (dupont.country, dupont.timezone) == ("FR", "Europe/Paris")
    assert dupont.address == ("12 rue de la Paix", "75002 PARIS")
    berlin = customers[_id(seeded["berlin"])]
    assert (berlin.language, berlin.country, berlin.kind) == ("en", "DE", CustomerKind.BUSINESS)
    assert berlin.address == ("Unter den Linden 5", "10117 BERLIN")
    lucie = customers[_id(seeded["lucie"])]
    assert (lucie.name, lucie.kind, lucie.language) == (
        "Lucie Bernard", CustomerKind.CONSUMER, "fr",
    )  # fmt: skip
    assert (lucie.given_name, lucie.family_name) == ("Lucie", "Bernard")
    pablo = customers[_id(seeded["pablo"])]
    # Spanish is not a language Kindly writes: his country's, German.
    assert (pablo.language, pablo.country, pablo.kind) == ("de", "DE", CustomerKind.CONSUMER)
    invoices = {i.number: i for i in snapshot.invoices}
    assert set(invoices) == {f"F2026000{n}" for n in range(1, 7)}, "no draft, no credit note"
    first = invoices["F20260001"]
    assert first.total == first.amount_due == Money.of("1234.56", "EUR")
    assert (first.issue_date, first.due_date) == (date(2026, 10, 1), date(2026, 10, 31))
    assert first.status is InvoiceStatus.OPEN and first.customer_id == dupont.id
    assert invoices["F20260002"].amount_due == Money.of("300.00", "EUR")
    # 100.00 of it credited.
    assert invoices["F20260003"].amount_due == Money.of("899.50", "EUR")
    assert invoices["F20260005"].status is InvoiceStatus.PAID
    assert invoices["F20260005"].amount_due == Money.of("0", "EUR")
    (credit,) = snapshot.credit_notes
    assert (credit.number, credit.total, credit.customer_id) == (
        "AV20260001", Money.of("100.00", "EUR"), berlin.id,
    )  # fmt: skip
    (allocation,) = credit.allocations
    assert (allocation.invoice_id, allocation.amount) == (invoices["F20260003"].id, credit.total)
    payments = {(p.invoice_id, p.amount, p.date) for p in snapshot.payments}
    assert payments == {
        (invoices["F20260002"].id, Money.of("200.00", "EUR"), date(2026, 11, 2)),
        (invoices["F20260005"].id, Money.of("40.00", "EUR"), date(2026, 10, 1)),
    }


def test_amounts_are_decimal_strings_read_exactly() -> None:
    assert records.decimal({"a": "0.01"}, "a") == Decimal("0.01")
    assert records.decimal({"a": "1234567890123456.78"}, "a") == Decimal("1234567890123456.78")
    assert records.decimal({"a": "-50.00"}, "a") == Decimal("-50.00")
    assert records.decimal({"a": Decimal("10.50")}, "a") == Decimal("10.50")
    assert records.decimal({"a": None}, "a") is None and records.decimal({}, "a") is None
    for odd in (10.5, True, "ten", "NaN", "Infinity", [1]):
        with pytest.raises(FatalError, match="'a'"):
            records.decimal({"a": odd}, "a")
    # 0.1 + 0.2 in binary floating point is not 0.3; three decimal strings add up exactly.
    parts = [records.decimal({"a": text}, "a") for text in ("0.10", "0.20")]
    assert sum(p for p in parts if p is not None) == Decimal("0.30")


def test_an_amount_that_is_no_decimal_string_is_one_records_warning(
    pennylane: PennylaneHarness, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = pennylane.fake
    shown = fake._invoice_json
    odd = seeded["l1"]["id"]

    def with_a_float(book: Any, invoice: dict[str, Any]) -> dict[str, Any]:
        answer = shown(book, invoice)
        # What a client reading JSON numbers as floats would get: not Pennylane's string.
        return {**answer, "currency_amount": 80} if invoice["id"] == odd else answer

    monkeypatch.setattr(fake, "_invoice_json", with_a_float)
    result = pennylane.connector.sync(None, {})
    assert str(odd) in result.snapshot.invoices_by_id, "an integer is a whole amount"
    monkeypatch.setattr(
        fake,
        "_invoice_json",
        lambda book, invoice: (
            {**shown(book, invoice), "currency_amount": True}
            if invoice["id"] == odd
            else shown(book, invoice)
        ),
    )
    result = pennylane.connector.sync(None, {})
    assert str(odd) not in result.snapshot.invoices_by_id
    (warning,) = result.warnings
    assert str(odd) in warning and "currency_amount" in warning
    assert len(result.snapshot.invoices) == 5, "the others are read"


def test_languages_are_pennylanes_else_the_countrys() -> None:
    assert [records.language_of(code) for code in ("fr_FR", "en_GB", "de_DE", "es_ES")] == [
        "fr", "en", "de", None,
    ]  # fmt: skip
    assert records.language_of(None) is None and records.language_of("") is None
    belgian = {
        "id": 7, "name": "Brasserie Anvers", "customer_type": "company",
        "billing_address": {"address": "Meir 1", "postal_code": "2000", "city": "Antwerpen",
                            "country_alpha2": "BE"},
    }  # fmt: skip
    assert records.customer(belgian, "FR").language == "nl", "no language: Belgium's"
    assert records.customer({**belgian, "billing_language": "fr_FR"}, "FR").language == "fr"
    nowhere = {"id": 8, "name": "Sans Adresse SAS", "billing_language": "es_ES"}
    found = records.customer(nowhere, "FR")
    assert (found.country, found.language) == ("FR", "fr"), "the company's own country"


def test_individuals_are_consumers_and_companies_businesses() -> None:
    person = {
        "id": 9, "customer_type": "individual", "name": "", "first_name": "Jeanne",
        "last_name": "Moreau", "emails": ["jeanne@example.fr", "not an address"],
    }  # fmt: skip
    found = records.customer(person, "FR")
    assert (found.name, found.contact_name, found.kind) == (
        "Jeanne Moreau", "Jeanne Moreau", CustomerKind.CONSUMER,
    )  # fmt: skip
    assert found.emails == ("jeanne@example.fr",)
    company = {"id": 10, "customer_type": "company", "name": "Durand SA", "recipient": ""}
    made = records.customer(company, "FR")
    assert (made.kind, made.contact_name) == (CustomerKind.BUSINESS, None)


def test_drafts_quotes_and_proformas_are_not_read_and_cancelled_ones_are_written_off(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake = pennylane.fake
    lucie = seeded["lucie"]
    issued, due = date(2026, 11, 1), date(2026, 12, 1)
    proforma = fake.add_invoice(lucie, 7, "60.00", issued=issued, due=due, status="proforma")
    imported = fake.add_invoice(lucie, 8, "70.00", issued=issued, due=due, status="incomplete")
    archived = fake.add_invoice(lucie, 9, "90.00", issued=issued, due=due, status="archived")
    dollars = fake.add_invoice(lucie, 10, "123.45", issued=issued, due=due, currency="USD")
    snapshot = pennylane.connector.read_snapshot()
    invoices = snapshot.invoices_by_id
    assert _id(seeded["draft"]) not in invoices and _id(proforma) not in invoices
    assert invoices[_id(imported)].status is InvoiceStatus.DRAFT, "held back: not sent"
    assert invoices[_id(archived)].status is InvoiceStatus.VOIDED
    # The amount in the invoice's own currency (``amount`` is in euros).
    assert invoices[_id(dollars)].total == Money.of("123.45", "USD")
    # Credited in full: Pennylane calls it cancelled, and nothing is owed.
    fake.add_credit_note(seeded["l1"], "80.00", issued=date(2026, 11, 20))
    again = pennylane.connector.read_snapshot().invoices_by_id[_id(seeded["l1"])]
    assert (again.status, again.amount_due) == (InvoiceStatus.VOIDED, Money.of("0", "EUR"))


def test_a_credit_note_larger_than_what_was_left_sets_off_what_it_used(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake = pennylane.fake
    # 300.00 was left on F20260002: 300.00 of the 400.00 is used, 100.00 stays credit.
    fake.add_credit_note(seeded["a2"], "400.00", issued=date(2026, 11, 21))
    snapshot = pennylane.connector.read_snapshot()
    (note,) = [n for n in snapshot.credit_notes if n.total == Money.of("400.00", "EUR")]
    (allocation,) = note.allocations
    assert (allocation.invoice_id, allocation.amount) == (
        _id(seeded["a2"]), Money.of("300.00", "EUR"),
    )  # fmt: skip
    assert note.remaining_credit == Money.of("100.00", "EUR")
    settled = snapshot.invoices_by_id[_id(seeded["a2"])]
    assert settled.amount_due == Money.of("0", "EUR") and not settled.is_open


def test_payments_count_only_when_the_money_came_in() -> None:
    invoice = {"id": 5, "currency": "EUR"}
    rows = [
        {"id": 1, "currency_amount": "20.00", "status": "paid_out",
         "created_at": "2026-11-02T11:00:00.000000Z"},
        {"id": 2, "currency_amount": "30.00", "status": "pending",
         "created_at": "2026-11-03T11:00:00.000000Z"},
        {"id": 3, "currency_amount": "40.00", "status": "charged_back",
         "created_at": "2026-11-04T11:00:00.000000Z"},
        {"id": 4, "currency_amount": "15.50", "status": "found",
         "created_at": "2026-11-05T23:30:00.000000Z"},
    ]  # fmt: skip
    found = records.payments(invoice, rows)
    # 23:30 UTC on the 5th is half past midnight on the 6th in Paris: the 6th, as the
    # company sees it.
    assert [(p.id, p.amount, p.date) for p in found] == [
        ("1", Money.of("20.00", "EUR"), date(2026, 11, 2)),
        ("4", Money.of("15.50", "EUR"), date(2026, 11, 6)),
    ]
    # A day Pennylane gives as a day is that day.
    dated = [{"id": 6, "currency_amount": "5.00", "status": "paid_out", "date": "2026-11-07",
              "created_at": "2026-11-09T10:00:00Z"}]  # fmt: skip
    assert [p.date for p in records.payments(invoice, dated)] == [date(2026, 11, 7)]


def test_after_the_first_sync_the_change_logs_name_what_to_fetch(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    fake.shuffle_pages = True
    first = connector.sync(None, {})
    # Customers, invoices, and the payments of the three invoices that show money paid
    # (F20260002 and F20260005 paid, F20260003 credited in part).
    assert fake.api_calls() == 5
    assert sum(n for key, n in fake.calls.items() if key.endswith("/payments")) == 3
    calls, served = fake.api_calls(), sum(fake.served)
    unchanged = connector.sync(first.snapshot, first.bookmarks)
    assert (fake.api_calls() - calls, sum(fake.served) - served) == (2, 0)
    assert unchanged.snapshot == first.snapshot
    # A payment, a change, a deletion, and a customer's new address, later that day.
    fake.tick(minutes=90)
    fake.pay(seeded["a1"], "1234.56", on=fake.today)
    fake.update_invoice(seeded["l1"]["id"], deadline=date(2026, 12, 31))
    fake.delete_invoice(seeded["p1"]["id"])
    fake.update_customer(seeded["lucie"]["id"], emails=["lucie.bernard@client.example"])
    calls, served = fake.api_calls(), sum(fake.served)
    later = connector.sync(unchanged.snapshot, unchanged.bookmarks)
    # The two logs, the one customer, the two invoices in one call, and the payments of
    # the one that was paid.
    assert fake.api_calls() - calls == 5
    assert sum(fake.served) - served == 1 + 2 + 1
    invoices = {i.number: i for i in later.snapshot.invoices}
    assert invoices["F20260001"].status is InvoiceStatus.PAID
    assert invoices["F20260004"].due_date == date(2026, 12, 31)
    assert "F20260006" not in invoices, "deleted in Pennylane"
    assert any(p.invoice_id == _id(seeded["a1"]) for p in later.snapshot.payments)
    lucie = later.snapshot.customers_by_id[_id(seeded["lucie"])]
    assert lucie.emails == ("lucie.bernard@client.example",)
    _same_records(later.snapshot, connector.sync(None, {}).snapshot)
    # Read on at once: the log gives those changes again (its start is inclusive), and
    # none is fetched a second time.
    calls, served = fake.api_calls(), sum(fake.served)
    again = connector.sync(later.snapshot, later.bookmarks)
    assert (fake.api_calls() - calls, sum(fake.served) - served) == (2, 0)
    assert again.snapshot == later.snapshot
    # A day on, nothing changed: two calls still.
    fake.tick(days=1)
    calls = fake.api_calls()
    quiet = connector.sync(again.snapshot, again.bookmarks)
    assert fake.api_calls() - calls == 2 and quiet.snapshot == again.snapshot


def test_a_payment_made_since_shows_with_one_call_for_its_list(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    first = connector.sync(None, {})
    fake.tick(minutes=5)
    payment = fake.pay(seeded["l1"], "30.00", on=fake.today, status="confirmed")
    calls = fake.api_calls()
    later = connector.sync(first.snapshot, first.bookmarks)
    assert fake.api_calls() - calls == 2 + 1 + 1
    (read,) = [p for p in later.snapshot.payments if p.id == _id(payment)]
    assert (read.invoice_id, read.amount) == (_id(seeded["l1"]), Money.of("30.00", "EUR"))
    assert later.snapshot.invoices_by_id[_id(seeded["l1"])].amount_due == Money.of("50.00", "EUR")


def test_a_bookmark_older_than_four_weeks_reads_everything(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    first = connector.sync(None, {})
    fake.delete_invoice(seeded["p1"]["id"])
    fake.tick(days=29)  # the log no longer holds the deletion
    calls = fake.api_calls()
    later = connector.sync(first.snapshot, first.bookmarks)
    assert fake.api_calls() - calls == 5, "customers, invoices, three lists of payments"
    assert not any("/changelogs/" in key for key in fake.calls), "a log that old is not asked"
    assert _id(seeded["p1"]) not in later.snapshot.invoices_by_id
    assert len(later.snapshot.invoices) == 5
    assert later.bookmarks != first.bookmarks, "read on from now"
    calls_now = fake.api_calls()
    connector.sync(later.snapshot, later.bookmarks)
    assert fake.api_calls() - calls_now == 2


def test_a_quiet_company_keeps_its_bookmark_within_four_weeks(
    pennylane: PennylaneHarness,
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    result = connector.sync(None, {})
    # Nothing changes for six weeks, synced every three: the bookmark moves on anyway.
    for _ in range(2):
        fake.tick(days=21)
        calls = fake.api_calls()
        result = connector.sync(result.snapshot, result.bookmarks)
        assert fake.api_calls() - calls == 2, "the two logs, not everything again"


def test_a_bookmark_pennylane_refuses_as_too_old_reads_everything(
    pennylane: PennylaneHarness,
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    first = connector.sync(None, {})
    fake.fail_next(f"{API}/changelogs/customers", Fault(422))
    calls, served = fake.api_calls(), sum(fake.served)
    again = connector.sync(first.snapshot, first.bookmarks)
    assert fake.api_calls() - calls == 1 + 5
    assert sum(fake.served) - served == sum(fake.served[:5])
    _same_records(again.snapshot, first.snapshot)


def test_a_bookmark_it_cannot_read_reads_everything(pennylane: PennylaneHarness) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    first = connector.sync(None, {})
    calls = fake.api_calls()
    broken = {**first.bookmarks, "customers": "yesterday"}
    again = connector.sync(first.snapshot, broken)
    assert fake.api_calls() - calls == 5
    _same_records(again.snapshot, first.snapshot)


def test_the_first_syncs_filter_goes_with_every_page(fake: FakePennylane, tmp_path: Path) -> None:
    customer = fake.add_customer("Pagination SAS")
    fake.add_draft(customer, "12.00")  # the oldest: on page 2, were the filter dropped
    for n in range(150):
        fake.add_invoice(customer, 7000 + n, "10.00", issued=date(2026, 6, 1), due=date(2026, 7, 1))
    pennylane = connect_to_fake(fake, tmp_path)
    try:
        assert len(pennylane.connector.read_snapshot().invoices) == 150
        assert fake.calls[f"GET {API}/customer_invoices"] == 2
        assert fake.served[1:] == [100, 50], "no draft came"
    finally:
        pennylane.store.close()


def test_a_refresh_rotates_the_pair_and_the_old_one_is_refused(
    pennylane: PennylaneHarness,
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    before = pennylane.vault.load()
    assert before is not None
    connector.read_snapshot()
    fake.tick(days=1)  # the access token's 24 hours are over
    connector.read_snapshot()
    after = pennylane.vault.load()
    assert after is not None and fake.refreshes == 1
    assert (after.access_token, after.refresh_token) != (before.access_token, before.refresh_token)
    assert after.refresh_token in fake.refresh_tokens, "the vault kept the new pair"
    with pytest.raises(AuthError):
        connector.app.refresh(HttpClient("Pennylane"), before, fake.clock)
    # A 401 mid-read renews once with the kept pair, which retires it in turn.
    fake.expire_access_tokens()
    assert len(connector.read_snapshot().invoices) == 6
    assert fake.refreshes == 2
    newest = pennylane.vault.load()
    assert newest is not None and newest.refresh_token != after.refresh_token
    old_access = requests.get(
        f"{fake.url}{API}/me",
        headers={"Authorization": f"Bearer {after.access_token}"},
        timeout=10,
    )
    assert old_access.status_code == 401


def test_the_token_endpoint_gets_the_client_in_the_form(
    pennylane: PennylaneHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = pennylane.fake
    token = pennylane.vault.load()
    assert token is not None
    settings = pennylane.connector.settings
    without = PennylaneConnector.oauth_app(settings, None)
    with pytest.raises(AuthError, match="401"):
        without.refresh(HttpClient("Pennylane"), token, fake.clock)
    seen: list[dict[str, str]] = []
    route = fake._route

    def watch(method: str, path: str, query: Any, headers: dict[str, str], body: bytes) -> Any:
        if path == TOKEN_PATH:
            seen.append(headers)
        return route(method, path, query, headers, body)

    monkeypatch.setattr(fake, "_route", watch)
    app = PennylaneConnector.oauth_app(settings, fake.client_secret)
    renewed = app.refresh(HttpClient("Pennylane"), token, fake.clock)
    assert renewed.refresh_token != token.refresh_token
    assert renewed.expires_at == fake.clock + timedelta(hours=24)
    (headers,) = seen
    assert "authorization" not in headers, "one way to authenticate: the form"


def test_the_sign_ins_code_is_exchanged_for_one_company(pennylane: PennylaneHarness) -> None:
    fake = pennylane.fake
    other = next(book for book in fake.companies.values() if book.id != fake.company)
    fake.consent_company = other.id
    app = PennylaneConnector.oauth_app(pennylane.connector.settings, fake.client_secret)
    redirect = "http://127.0.0.1:8719/callback"
    state, verifier = app.new_state_and_verifier()
    answer = requests.get(
        app.authorization_url(redirect, state, verifier), allow_redirects=False, timeout=10
    )
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == [state]
    token = app.exchange(HttpClient("Pennylane"), query["code"][0], redirect, verifier, fake.clock)
    assert set(token.scope.split()) == {"customers:readonly", "customer_invoices:readonly"}
    found = PennylaneConnector.list_tenants(
        pennylane.connector.settings, HttpClient("Pennylane"), token
    )
    assert [(t.tenant_id, t.name) for t in found] == [(str(other.id), other.name)]


def test_the_company_is_the_one_me_names(pennylane: PennylaneHarness) -> None:
    fake = pennylane.fake
    token = pennylane.vault.load()
    assert token is not None
    settings = pennylane.connector.settings
    found = PennylaneConnector.list_tenants(settings, HttpClient("Pennylane"), token)
    assert [(t.tenant_id, t.name) for t in found] == [(str(fake.company), "Atelier Lumière SAS")]
    fake.user_on_me = False  # as for a company's own API token
    assert PennylaneConnector.list_tenants(settings, HttpClient("Pennylane"), token) == found


def test_revoking_ends_the_pair_with_the_client_in_the_form(pennylane: PennylaneHarness) -> None:
    fake = pennylane.fake
    app = PennylaneConnector.oauth_app(pennylane.connector.settings, fake.client_secret)
    live = fresh_token(fake)
    app.revoke(HttpClient("Pennylane"), live)
    assert fake.revoked == [live.refresh_token, live.access_token]
    assert live.refresh_token not in fake.refresh_tokens
    assert live.access_token not in fake.access_tokens
    with pytest.raises(AuthError):
        app.refresh(HttpClient("Pennylane"), live, fake.clock)
    held = pennylane.vault.load()
    assert held is not None and held.refresh_token in fake.refresh_tokens, "only that grant"


def test_calls_keep_under_pennylanes_rate_limit(fake: FakePennylane, tmp_path: Path) -> None:
    customer = fake.add_customer("Acompte SARL")
    for n in range(42):
        invoice = fake.add_invoice(
            customer, 8000 + n, "100.00", issued=date(2026, 10, 1), due=date(2026, 11, 1)
        )
        fake.pay(invoice, "10.00", on=date(2026, 10, 15))
    pennylane = connect_to_fake(fake, tmp_path)
    try:
        snapshot = pennylane.connector.read_snapshot()
        assert len(snapshot.payments) == 42
        # Customers, invoices, 42 lists of payments: 20 calls, a wait for the next five
        # seconds, 20 more, a wait, the last 4. Pennylane allows 25: it refused none (no
        # Retry-After was waited for).
        assert fake.api_calls() == 44
        assert pennylane.pace.sleeps == [5.0, 5.0] and pennylane.time.sleeps == []
    finally:
        pennylane.store.close()


def test_no_call_left_in_pennylanes_window_waits_for_the_next(
    fake: FakePennylane, tmp_path: Path
) -> None:
    customer = fake.add_customer("Acompte SARL")
    for n in range(12):
        invoice = fake.add_invoice(
            customer, 8100 + n, "100.00", issued=date(2026, 10, 1), due=date(2026, 11, 1)
        )
        fake.pay(invoice, "10.00", on=date(2026, 10, 15))
    fake.rate_limit = 5  # another client of the same token used the rest
    pennylane = connect_to_fake(fake, tmp_path)
    try:
        assert len(pennylane.connector.read_snapshot().payments) == 12
        # ratelimit-remaining said 0 after every fifth call: the next waited a window.
        assert pennylane.pace.sleeps == [5.0, 5.0]
        assert pennylane.time.sleeps == [], "no 429 to wait out"
    finally:
        pennylane.store.close()


def test_a_429_is_waited_out_as_retry_after_says(pennylane: PennylaneHarness) -> None:
    fake = pennylane.fake
    fake.fail_next(
        f"{API}/customers",
        Fault(429, {"retry-after": "3", "ratelimit-remaining": "0"}, b"Rate limit exceeded."),
    )
    assert len(pennylane.connector.read_snapshot().customers) == 4
    assert 3 in pennylane.time.sleeps


def test_a_fresh_read_costs_one_call(pennylane: PennylaneHarness, seeded: Seeded) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    wanted = [_id(seeded[k]) for k in ("a1", "a2", "l1")]
    odd = [_id(seeded["credit"]), _id(seeded["draft"]), "999999999", "not-an-id"]
    calls = fake.api_calls()
    fresh = connector.read_invoices(wanted + odd)
    assert sorted(i.id for i in fresh) == sorted(wanted)
    assert fake.api_calls() - calls == 1
    fake.pay(seeded["a1"], "1234.56", on=fake.today)
    (paid,) = connector.read_invoices([_id(seeded["a1"])])
    assert paid.status is InvoiceStatus.PAID
    calls = fake.api_calls()
    assert connector.read_invoices([]) == () and fake.api_calls() == calls


def test_the_pdf_is_fetched_fresh_and_without_our_token(
    pennylane: PennylaneHarness, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    invoices = {i.number: i for i in connector.read_snapshot().invoices}
    seen: list[dict[str, str]] = []
    route = fake._route

    def watch(method: str, path: str, query: Any, headers: dict[str, str], body: bytes) -> Any:
        if path == PUBLIC_PDF_PATH:
            seen.append(headers)
        return route(method, path, query, headers, body)

    monkeypatch.setattr(fake, "_route", watch)
    calls = fake.api_calls()
    pdf = connector.invoice_pdf(invoices["F20260001"])
    assert pdf is not None and pdf.startswith(b"%PDF") and b"F20260001" in pdf
    assert fake.api_calls() - calls == 1, "the invoice, for a link good 30 minutes"
    (headers,) = seen
    assert "authorization" not in headers
    token = pennylane.vault.load()
    assert token is not None and token.access_token not in str(headers)
    # While Pennylane is still making the file there is no link: no PDF, nothing fetched.
    fake.pdf_generating = True
    assert connector.invoice_pdf(invoices["F20260002"]) is None
    assert len(seen) == 1


def test_pennylane_sends_the_invoice_and_a_lost_answer_is_in_doubt(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    assert connector.has_mailer and not connector.mailer_idempotent
    invoices = {i.number: i for i in connector.read_snapshot().invoices}
    sent = connector.email_invoice(invoices["F20260001"], "ab" * 16)
    assert sent.status is DeliveryStatus.SENT
    assert fake.sent == [
        Sent(seeded["a1"]["id"], ("factures@dupont.example", "marie@dupont.example"))
    ]
    # The PDF is still being made: 409, tried again on the next run.
    fake.pdf_generating = True
    waiting = connector.email_invoice(invoices["F20260002"], "cd" * 16)
    assert waiting.status is DeliveryStatus.TEMPORARY and "409" in waiting.detail
    assert len(fake.sent) == 1
    fake.pdf_generating = False
    path = f"{API}/customer_invoices/{seeded['a2']['id']}/send_by_email"
    fake.fail_next(path, Fault(502, carry_out=True, drop=True))
    lost = connector.email_invoice(invoices["F20260002"], "cd" * 16)
    assert lost.status is DeliveryStatus.UNCONFIRMED
    assert len(fake.sent) == 2 and fake.calls[f"POST {path}"] == 2, "done once, not asked again"
    # A customer Pennylane has no e-mail address for: refused, the next channel goes.
    fake.update_customer(seeded["lucie"]["id"], emails=[])
    refused = connector.email_invoice(invoices["F20260004"], "ef" * 16)
    assert refused.status is DeliveryStatus.PERMANENT and "e-mail" in refused.detail
    assert len(fake.sent) == 2


def test_notes_stay_in_kindlys_history_and_nothing_is_asked(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    assert Capability.NOTES not in connector.capabilities and not connector.writes_notes
    assert Capability.ONLINE_LINK not in connector.capabilities
    assert Capability.WEBHOOKS not in connector.capabilities and connector.webhook is None
    note = Note(
        id="kindly-" + "cd" * 16, created_at=fake.clock,
        text="Kindly sent the first reminder by e-mail.", customer_id=_id(seeded["dupont"]),
        invoice_ids=(_id(seeded["a1"]),), reminder_key="cd" * 16, stage="first",
        channel="email",
    )  # fmt: skip
    calls = fake.api_calls()
    assert connector.write_notes([note], check={note.id}) == {note.id: None}
    connector.write_note(note)
    assert connector.read_notes() == () and connector.existing_note_ids([note]) == set()
    assert fake.api_calls() == calls


def test_pennylanes_own_reminders_cannot_be_seen(pennylane: PennylaneHarness) -> None:
    calls = pennylane.fake.api_calls()
    assert pennylane.connector.platform_reminders() == []
    assert pennylane.fake.api_calls() == calls, "nothing in the API to ask"


def test_a_connector_on_another_company_reads_that_company_only(
    fake: FakePennylane, seeded: Seeded, tmp_path: Path
) -> None:
    other = next(book for book in fake.companies.values() if book.id != fake.company)
    customer = fake.add_customer("Cabinet Voisin", company=other.id)
    fake.add_invoice(
        customer, 1, "75.00", issued=date(2026, 11, 2), due=date(2026, 12, 2), company=other.id
    )
    pennylane = connect_to_fake(fake, tmp_path, company=other.id)
    try:
        snapshot = pennylane.connector.read_snapshot()
        assert [c.name for c in snapshot.customers] == ["Cabinet Voisin"]
        assert [i.total for i in snapshot.invoices] == [Money.of("75.00", "EUR")]
        assert pennylane.connector.source_id == f"pennylane:{other.id}"
    finally:
        pennylane.store.close()


def test_a_token_is_never_in_a_repr(pennylane: PennylaneHarness) -> None:
    token = pennylane.vault.load()
    assert isinstance(token, Token)
    text = repr(pennylane.connector) + repr(pennylane.connector.app)
    for secret in _secrets(pennylane):
        assert secret not in text


# -- what must not go wrong (a review of the connector) ---------------------------------------


def _spoil(
    fake: FakePennylane, monkeypatch: pytest.MonkeyPatch, invoice_id: int, **fields: Any
) -> Any:
    """Pennylane answers ``fields`` in the invoice ``invoice_id`` from now on; the
    returned function takes it back."""
    shown = fake._invoice_json

    def spoilt(book: Any, invoice: dict[str, Any]) -> dict[str, Any]:
        answer = shown(book, invoice)
        return {**answer, **fields} if invoice["id"] == invoice_id else answer

    monkeypatch.setattr(fake, "_invoice_json", spoilt)
    return lambda: monkeypatch.setattr(fake, "_invoice_json", shown)


def test_a_server_error_after_send_by_email_leaves_it_in_doubt(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    """A 500 or a 502 may come after Pennylane sent the e-mail: never asked again."""
    fake, connector = pennylane.fake, pennylane.connector
    invoices = {i.number: i for i in connector.read_snapshot().invoices}
    for status, number in ((500, "F20260001"), (502, "F20260002")):
        invoice_id = invoices[number].id
        path = f"{API}/customer_invoices/{invoice_id}/send_by_email"
        fake.fail_next(path, Fault(status, carry_out=True))
        outcome = connector.email_invoice(invoices[number], "ab" * 16)
        assert outcome.status is DeliveryStatus.UNCONFIRMED, status
        assert fake.calls[f"POST {path}"] == 1, "not asked again"
    assert len(fake.sent) == 2
    # A 503 says the request was not taken up: the next run sends it.
    path = f"{API}/customer_invoices/{invoices['F20260004'].id}/send_by_email"
    fake.fail_next(path, Fault(503))
    later = connector.email_invoice(invoices["F20260004"], "cd" * 16)
    assert later.status is DeliveryStatus.TEMPORARY and len(fake.sent) == 2


def test_a_reminder_of_several_invoices_waits_for_every_pdf(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    invoices = {i.number: i for i in connector.read_snapshot().invoices}
    both = [invoices["F20260001"], invoices["F20260002"]]
    calls = fake.api_calls()
    assert connector.email_holdup(both) is None
    assert fake.api_calls() - calls == 1, "both asked in one call"
    fake.pdf_pending = {seeded["a2"]["id"]}
    held = connector.email_holdup(both)
    assert held is not None and held.status is DeliveryStatus.TEMPORARY
    assert "F20260002" in held.detail and "F20260001" not in held.detail
    assert connector.email_holdup([invoices["F20260001"]]) is None, "one: its own 409 says it"
    # The question itself failing (even a 404) sent nothing and refused nothing: later.
    fake.fail_next(f"{API}/customer_invoices", Fault(404))
    failed = connector.email_holdup(both)
    assert failed is not None and failed.status is DeliveryStatus.TEMPORARY


def test_an_unreadable_invoice_holds_back_its_own_fresh_read_alone(
    pennylane: PennylaneHarness, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    _spoil(fake, monkeypatch, seeded["a1"]["id"], currency_amount="douze")
    wanted = [_id(seeded[k]) for k in ("a1", "a2", "l1")]
    fresh = connector.read_invoices(wanted)
    assert sorted(i.id for i in fresh) == sorted(wanted[1:])


def test_a_record_that_could_not_be_read_is_asked_for_again(
    pennylane: PennylaneHarness, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    first = connector.sync(None, {})
    fake.tick(minutes=5)
    fake.update_invoice(seeded["l1"]["id"], deadline=date(2026, 12, 31))
    mend = _spoil(fake, monkeypatch, seeded["l1"]["id"], currency_amount=None, currency="USD")
    spoilt = connector.sync(first.snapshot, first.bookmarks)
    (warning,) = spoilt.warnings
    assert _id(seeded["l1"]) in warning and "currency_amount" in warning
    held = spoilt.snapshot.invoices_by_id[_id(seeded["l1"])]
    assert held.due_date == date(2026, 11, 14), "its previous copy stays"
    # Pennylane's answer is mended, with no change logged: asked for again all the same.
    mend()
    fake.tick(days=1)
    calls = fake.api_calls()
    mended = connector.sync(spoilt.snapshot, spoilt.bookmarks)
    assert not mended.warnings and fake.api_calls() - calls == 2 + 1
    assert mended.snapshot.invoices_by_id[_id(seeded["l1"])].due_date == date(2026, 12, 31)
    calls = fake.api_calls()
    connector.sync(mended.snapshot, mended.bookmarks)
    assert fake.api_calls() - calls == 2, "and then no more"


def test_a_credit_note_reads_its_invoice_again_whatever_the_log_says(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    first = connector.sync(None, {})
    fake.credit_logs_invoice = False  # only the credit note's insert is logged
    fake.tick(minutes=5)
    credit = fake.add_credit_note(seeded["a1"], "234.56", issued=fake.today)
    calls = fake.api_calls()
    later = connector.sync(first.snapshot, first.bookmarks)
    # The logs, the credit note, the invoice it credits, and that invoice's payments
    # (it now shows less owed than its total).
    assert fake.api_calls() - calls == 2 + 1 + 1 + 1
    owed = later.snapshot.invoices_by_id[_id(seeded["a1"])].amount_due
    assert owed == Money.of("1000.00", "EUR")
    assert _id(credit) in {n.id for n in later.snapshot.credit_notes}
    # The credit note deleted: its invoice owes all again.
    fake.tick(minutes=5)
    fake.delete_invoice(credit["id"])
    fake.invoices[seeded["a1"]["id"]]["_credited"] = "0"
    again = connector.sync(later.snapshot, later.bookmarks)
    assert again.snapshot.invoices_by_id[_id(seeded["a1"])].amount_due == Money.of("1234.56", "EUR")
    assert _id(credit) not in {n.id for n in again.snapshot.credit_notes}


def test_a_payment_list_that_fails_holds_back_that_invoice_alone(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    first = connector.sync(None, {})
    fake.tick(minutes=5)
    fake.pay(seeded["a1"], "34.56", on=fake.today)
    fake.pay(seeded["l1"], "30.00", on=fake.today)
    fake.fail_next(f"{API}/customer_invoices/{seeded['a1']['id']}/payments", Fault(404))
    later = connector.sync(first.snapshot, first.bookmarks)
    (warning,) = later.warnings
    assert "F20260001" in warning and "404" in warning
    paid_by = {p.invoice_id for p in later.snapshot.payments}
    assert _id(seeded["l1"]) in paid_by and _id(seeded["a1"]) not in paid_by
    fake.tick(minutes=5)
    mended = connector.sync(later.snapshot, later.bookmarks)
    assert not mended.warnings and _id(seeded["a1"]) in {
        p.invoice_id for p in mended.snapshot.payments
    }


def test_a_change_logged_without_its_time_is_still_read(
    pennylane: PennylaneHarness, seeded: Seeded
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    first = connector.sync(None, {})
    fake.tick(minutes=5)
    fake.update_invoice(seeded["l1"]["id"], deadline=date(2026, 12, 24))
    entry = fake.book().changes["customer_invoices"][-1]
    entry["processed_at"] = None
    later = connector.sync(first.snapshot, first.bookmarks)
    assert later.snapshot.invoices_by_id[_id(seeded["l1"])].due_date == date(2026, 12, 24)


def test_a_fast_clock_does_not_carry_the_bookmark_past_pennylanes(
    fake: FakePennylane, seeded: Seeded, tmp_path: Path
) -> None:
    """Our clock an hour ahead of Pennylane's: the bookmark follows Pennylane's (its
    Date header), and a change made after the first sync is seen."""
    pennylane = connect_to_fake(fake, tmp_path)
    try:
        connector = pennylane.connector
        connector.clock = lambda: fake.clock + timedelta(hours=1)
        first = connector.sync(None, {})
        fake.tick(minutes=5)
        fake.update_invoice(seeded["l1"]["id"], deadline=date(2026, 12, 20))
        later = connector.sync(first.snapshot, first.bookmarks)
        assert later.snapshot.invoices_by_id[_id(seeded["l1"])].due_date == date(2026, 12, 20)
    finally:
        pennylane.store.close()


def test_the_pdf_follows_its_link_to_storage_and_the_link_is_never_shown(
    pennylane: PennylaneHarness, seeded: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    fake, connector = pennylane.fake, pennylane.connector
    invoices = {i.number: i for i in connector.read_snapshot().invoices}
    fake.pdf_via_storage = True
    caplog.set_level("DEBUG", logger="kindly")
    pdf = connector.invoice_pdf(invoices["F20260001"])
    assert pdf is not None and b"F20260001" in pdf
    keys = list(fake.public_files)
    assert keys and not any(key in caplog.text for key in keys)
    assert "signature=***" in caplog.text, "the storage link was followed, its signature not shown"
    # A link that has ended: the error names the host and path, not the key.
    fake.fail_next("/storage", Fault(410, body=b"Gone"))
    with pytest.raises(FatalError) as failed:
        connector.invoice_pdf(invoices["F20260002"])
    assert "410" in str(failed.value)
    assert not any(key in str(failed.value) for key in fake.public_files)
    assert "encrypted_id=%2A%2A%2A" in str(failed.value) or "encrypted_id=***" in str(failed.value)


def test_an_invoice_in_dollars_without_its_own_amount_is_not_read_in_euros() -> None:
    record = {"id": 9, "currency": "USD", "amount": "100.00", "date": "2026-11-01",
              "deadline": "2026-12-01", "customer": {"id": 1}}  # fmt: skip
    with pytest.raises(FatalError, match="currency_amount"):
        records.invoice(record)
    euros = {**record, "currency": "EUR"}
    assert records.invoice(euros).total == Money.of("100.00", "EUR")
