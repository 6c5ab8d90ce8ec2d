"""The Fiken connector against a fake Fiken on loopback: the bookkeeping and HTTP contracts,
then amounts in øre, languages, credit notes and payments, the day-granular incremental
sync, Fiken's page count, rotating refresh tokens, one request at a time and four a
second, fresh reads, the PDF, Fiken's own sending, and notes kept in Kindly only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.bookkeeping import fiken as fiken_module
from integrations.bookkeeping import fiken_records as records
from integrations.bookkeeping.fiken import FikenConnector
from integrations.http import AuthError, FatalError, HttpClient
from integrations.oauth import Token
from plugin.core.model import CustomerKind, InvoiceStatus, Note
from plugin.core.money import Money
from plugin.core.vocabulary import DeliveryStatus
from plugin.ports import SyncResult
from tests.contract import (
    BookkeepingHarness,
    HttpHarness,
    bookkeeping_contract,
    harness_factory,
    http_contract,
)
from tests.fakes.fiken import FakeFiken, Fault
from tests.fiken_harness import (
    FikenHarness,
    connect_to_fake,
    delete_sale,
    open_company,
    seed_small_company,
)

Seeded = dict[str, dict[str, Any]]

# -- the contracts ----------------------------------------------------------------------------


def _secrets(harness: FikenHarness) -> list[str]:
    token = harness.vault.load()
    assert token is not None
    return [token.access_token, token.refresh_token, harness.fake.client_secret]


@harness_factory(FikenConnector)
def fiken_harness(folder: Path) -> Iterator[BookkeepingHarness]:
    """Fiken with the small company, seeded the day before the connector first reads it."""
    fake = FakeFiken()
    fake.start()
    seed_small_company(fake)
    fake.next_day()
    fiken = connect_to_fake(fake, folder)
    try:
        yield BookkeepingHarness(
            connector=fiken.connector,
            source_name=str(fake.book().info["name"]),
            secrets=lambda: _secrets(fiken),
            change_invoice=lambda invoice_id: fake.update_invoice(
                int(invoice_id), dueDate=fake.today + timedelta(days=30)
            ),
            # Fiken deletes no invoice: its sale is flagged deleted (and reversed).
            delete_invoice=lambda invoice_id: delete_sale(fake, invoice_id),
            calls=fake.api_calls,
            served=lambda: sum(fake.served),
            # Contacts, invoices and credit notes changed since the last sync's day.
            unchanged_sync_calls=3,
        )
    finally:
        fiken.store.close()
        fake.stop()


@harness_factory(FikenConnector)
def fiken_http_harness(folder: Path) -> Iterator[HttpHarness]:
    fake = FakeFiken()
    fake.start()
    contact = fake.add_contact("Sidevis AS")
    fiken = connect_to_fake(fake, folder)
    path = f"/api/v2/companies/{fake.company}/invoices"

    def seed(count: int) -> None:
        for n in range(count):
            fake.add_invoice(
                contact, 50000 + n, 1000, issued=date(2026, 6, 1), due=date(2026, 7, 1)
            )

    def fail(status: int, headers: dict[str, str], times: int) -> None:
        fake.fail_next(path, *[Fault(status, headers, b"Retry later")] * times)

    def point_at(url: str) -> None:
        fiken.connector.settings = replace(fiken.connector.settings, api_url=url)

    try:
        yield HttpHarness(
            connector=fiken.connector,
            time=fiken.time,
            seed=seed,
            fail_list_call=fail,
            revoke_access=fake.expire_access_tokens,
            refreshes=lambda: fake.refreshes,
            list_calls=lambda: fake.calls[f"GET {path}"],
            point_at=point_at,
            secrets=lambda: _secrets(fiken),
            page_size=100,
            read=lambda: len(list(fiken.connector._pages("invoices", {}))),
        )
    finally:
        fiken.store.close()
        fake.stop()


TestFikenContract = bookkeeping_contract(fiken_harness)
TestFikenHttp = http_contract(fiken_http_harness)

# -- Fiken's own ------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeFiken]:
    server = FakeFiken()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def seeded(fake: FakeFiken) -> Seeded:
    made = seed_small_company(fake)
    fake.next_day()
    return made


@pytest.fixture
def fiken(fake: FakeFiken, seeded: object, tmp_path: Path) -> Iterator[FikenHarness]:
    harness = connect_to_fake(fake, tmp_path)
    yield harness
    harness.store.close()


def _id(record: dict[str, Any], key: str) -> str:
    return str(record[key])


def test_a_sync_maps_fiken_records_onto_the_model(fiken: FikenHarness, seeded: Seeded) -> None:
    snapshot = fiken.connector.read_snapshot()
    customers = snapshot.customers_by_id
    fjell = customers[_id(seeded["fjell"], "contactId")]
    assert (fjell.name, fjell.contact_name, fjell.language, fjell.kind) == (
        "Fjellvann Bakeri AS", "Ingrid Fjell", "nb", CustomerKind.BUSINESS,
    )  # fmt: skip
    assert fjell.emails == ("faktura@fjellvann.example", "ingrid@fjellvann.example")
    assert (fjell.country, fjell.timezone) == ("NO", "Europe/Oslo")
    assert fjell.address == ("Kirkeveien 7", "0368 OSLO")
    berlin = customers[_id(seeded["berlin"], "contactId")]
    assert (berlin.language, berlin.country, berlin.kind) == ("en", "DE", CustomerKind.BUSINESS)
    ola = customers[_id(seeded["ola"], "contactId")]
    # No language on the contact: Norway's.
    assert (ola.language, ola.kind) == ("nb", CustomerKind.CONSUMER)
    greta = customers[_id(seeded["greta"], "contactId")]
    assert (greta.language, greta.country) == ("de", "DE"), "Germany's, from 'Tyskland'"
    invoices = {i.number: i for i in snapshot.invoices}
    assert set(invoices) == {"10001", "10002", "10003", "10004", "10005", "10006"}
    first = invoices["10001"]
    assert first.total == first.amount_due == Money.of("12345.67", "NOK")
    assert first.reference == seeded["a1"]["kid"] and first.status is InvoiceStatus.OPEN
    assert (first.issue_date, first.due_date) == (date(2026, 10, 1), date(2026, 10, 31))
    assert invoices["10002"].amount_due == Money.of("3000.00", "NOK")
    # In euros, and 100.00 of it credited.
    assert invoices["10003"].total == Money.of("999.50", "EUR")
    assert invoices["10003"].amount_due == Money.of("899.50", "EUR")
    assert invoices["10005"].status is InvoiceStatus.PAID
    assert invoices["10005"].amount_due == Money.of("0", "NOK")
    (credit,) = snapshot.credit_notes
    assert (credit.number, credit.total) == ("10001", Money.of("100.00", "EUR"))
    assert credit.customer_id == berlin.id
    (allocation,) = credit.allocations
    assert allocation.invoice_id == invoices["10003"].id
    assert allocation.amount == credit.total
    payments = {(p.invoice_id, p.amount, p.date) for p in snapshot.payments}
    assert payments == {
        (invoices["10002"].id, Money.of("2000.00", "NOK"), date(2026, 11, 2)),
        (invoices["10005"].id, Money.of("400.00", "NOK"), date(2026, 10, 1)),
    }


def test_amounts_in_ore_are_read_exactly() -> None:
    assert records.ore({"gross": 1}, "gross") == Decimal("0.01")
    assert records.ore({"gross": 123456789012345678}, "gross") == Decimal("1234567890123456.78")
    assert records.ore({"gross": Decimal(1050)}, "gross") == Decimal("10.50")
    assert records.ore({"gross": "99950"}, "gross") == Decimal("999.50")
    assert records.ore({}, "gross") == Decimal(0)
    for odd in (10.5, Decimal("10.5"), True, "ten", [1]):
        with pytest.raises(FatalError, match="gross"):
            records.ore({"gross": odd}, "gross")


def test_languages_are_fikens_two_else_the_countrys() -> None:
    assert records.language_of("NORWEGIAN") == "nb"
    assert records.language_of("english") == "en"
    assert records.language_of("SWEDISH") is None and records.language_of(None) is None
    contact = {"contactId": 7, "name": "Lisa Ek", "address": {"country": "Sverige"}}
    # Sweden's language is not one Kindly writes: English.
    assert records.customer(contact, "NO").language == "en"
    contact["language"] = "NORWEGIAN"
    assert records.customer(contact, "NO").language == "nb"


def test_a_credit_note_that_gave_back_more_than_was_open_allocates_nothing() -> None:
    note = {
        "creditNoteId": 9, "creditNoteNumber": 10002, "gross": 50000, "currency": "NOK",
        "issueDate": "2026-11-20", "settled": False, "associatedInvoiceId": 8,
        "customer": {"contactId": 3, "name": "Ola Nordmann"},
    }  # fmt: skip
    read = records.credit_note(note)
    assert (read.total, read.allocations) == (Money.of("500.00", "NOK"), ())
    note["settled"] = True
    (allocation,) = records.credit_note(note).allocations
    assert (allocation.invoice_id, allocation.date) == ("8", date(2026, 11, 20))


def test_the_sync_reads_its_last_day_again_so_two_changes_that_day_are_both_seen(
    fiken: FikenHarness, seeded: Seeded
) -> None:
    fake, connector = fiken.fake, fiken.connector
    first = connector.sync(None, {})
    assert fake.api_calls() == 3, "contacts, invoices, credit notes: one page each"
    assert first.bookmarks == {"since": fake.today.isoformat()}
    # Two changes later the same day: Fiken dates both with the day the sync read.
    fake.tick(minutes=90)
    fake.pay(seeded["a1"], 1234567, on=fake.today)
    fake.tick(minutes=60)
    fake.update_invoice(seeded["o1"]["invoiceId"], dueDate=date(2026, 12, 31))
    calls = fake.api_calls()
    second = connector.sync(first.snapshot, first.bookmarks)
    assert fake.api_calls() - calls == 3, "the payment came inside the invoice's sale"
    invoices = {i.number: i for i in second.snapshot.invoices}
    assert invoices["10001"].status is InvoiceStatus.PAID
    assert invoices["10004"].due_date == date(2026, 12, 31)
    assert any(p.invoice_id == invoices["10001"].id for p in second.snapshot.payments)
    # The same day once more: those two are read again, and change nothing.
    served = sum(fake.served)
    third = connector.sync(second.snapshot, second.bookmarks)
    assert sum(fake.served) - served == 2
    assert third.snapshot == second.snapshot
    # The next day, nothing changed: the last sync's day is read once more, then nothing.
    fake.next_day()
    calls, served = fake.api_calls(), sum(fake.served)
    fourth = connector.sync(third.snapshot, third.bookmarks)
    assert (fake.api_calls() - calls, sum(fake.served) - served) == (3, 2)
    assert fourth.bookmarks == {"since": fake.today.isoformat()}
    calls, served = fake.api_calls(), sum(fake.served)
    fifth = connector.sync(fourth.snapshot, fourth.bookmarks)
    assert (fake.api_calls() - calls, sum(fake.served) - served) == (3, 0)
    assert fifth.snapshot == fourth.snapshot == third.snapshot


def test_a_bookmark_it_cannot_read_reads_everything(fiken: FikenHarness) -> None:
    first = fiken.connector.sync(None, {})
    served = sum(fiken.fake.served)
    again = fiken.connector.sync(first.snapshot, {"since": "yesterday"})
    assert sum(fiken.fake.served) - served == 4 + 6 + 1
    assert again.snapshot == first.snapshot


def test_payments_are_asked_per_sale_only_where_the_sale_does_not_list_them(
    fiken: FikenHarness, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, connector = fiken.fake, fiken.connector
    listed = connector.read_snapshot().payments
    shown = fake._sale

    def without_payments(book: Any, sale: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in shown(book, sale).items() if k != "salePayments"}

    monkeypatch.setattr(fake, "_sale", without_payments)
    calls = fake.api_calls()
    first = connector.sync(None, {})
    # The three lists, and the payments of the two sales with money paid.
    assert fake.api_calls() - calls == 3 + 2
    assert sum(n for k, n in fake.calls.items() if k.endswith("/payments")) == 2
    assert set(first.snapshot.payments) == set(listed)
    fake.next_day()
    calls = fake.api_calls()
    fake.pay(seeded["o1"], 30000, on=fake.today)
    later = connector.sync(first.snapshot, first.bookmarks)
    assert fake.api_calls() - calls == 3 + 1, "only the invoice whose sale changed"
    assert len(later.snapshot.payments) == 3

    # One sale whose payments cannot be read stops nothing else: a warning names it.
    fake.next_day()
    fake.pay(seeded["o1"], 10000, on=fake.today)
    fake.pay(seeded["g1"], 5050, on=fake.today)
    sale = fake.sale(seeded["o1"])["saleId"]
    fake.fail_next(f"/api/v2/companies/{fake.company}/sales/{sale}/payments", Fault(404))
    odd = connector.sync(later.snapshot, later.bookmarks)
    assert any("payments not read" in warning for warning in odd.warnings)
    assert {p.invoice_id for p in odd.snapshot.payments} >= {str(seeded["g1"]["invoiceId"])}


def test_a_credit_note_filter_an_older_fiken_ignores_costs_rows_not_correctness(
    fiken: FikenHarness,
) -> None:
    fiken.fake.credit_note_modified_filter = False
    first = fiken.connector.sync(None, {})
    fiken.fake.next_day()
    calls, served = fiken.fake.api_calls(), sum(fiken.fake.served)
    again = fiken.connector.sync(first.snapshot, first.bookmarks)
    assert (fiken.fake.api_calls() - calls, sum(fiken.fake.served) - served) == (3, 1)
    assert again.snapshot == first.snapshot


def test_paging_stops_at_fikens_page_count(fake: FakeFiken, tmp_path: Path) -> None:
    contact = fake.add_contact("Sidevis AS")
    for n in range(200):
        fake.add_invoice(contact, 20000 + n, 1000, issued=date(2026, 6, 1), due=date(2026, 7, 1))
    fiken = connect_to_fake(fake, tmp_path)
    try:
        snapshot = fiken.connector.read_snapshot()
        assert len(snapshot.invoices) == 200
        # Two full pages and a count of two: no call for a third, empty one.
        assert fake.calls[f"GET /api/v2/companies/{fake.company}/invoices"] == 2
        assert 0 not in fake.served[1:3]
    finally:
        fiken.store.close()


def test_a_refresh_rotates_the_refresh_token_and_the_connector_keeps_working(
    fiken: FikenHarness,
) -> None:
    fake, connector = fiken.fake, fiken.connector
    before = fiken.vault.load()
    assert before is not None
    connector.read_snapshot()
    fake.next_day()  # the access token's day is over
    connector.read_snapshot()
    after = fiken.vault.load()
    assert after is not None and fake.refreshes == 1
    assert after.refresh_token != before.refresh_token, "the one Fiken handed out is kept"
    with pytest.raises(AuthError):
        connector.app.refresh(HttpClient("Fiken"), before, fake.clock)
    fake.next_day()
    connector.read_snapshot()
    assert fake.refreshes == 2, "the kept one renews again"


def test_the_sign_ins_code_is_exchanged_with_the_apps_secret(fiken: FikenHarness) -> None:
    import requests

    fake = fiken.fake
    app = FikenConnector.oauth_app(fiken.connector.settings, fake.client_secret)
    redirect = "http://127.0.0.1:8719/callback"
    state, verifier = app.new_state_and_verifier()
    answer = requests.get(
        app.authorization_url(redirect, state, verifier), allow_redirects=False, timeout=10
    )
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == [state]
    token = app.exchange(HttpClient("Fiken"), query["code"][0], redirect, verifier, fake.clock)
    assert token.access_token in fake.access_tokens
    assert token.expires_at == fake.clock + timedelta(seconds=86400)


def test_the_token_endpoint_wants_the_apps_secret_as_basic_auth(fiken: FikenHarness) -> None:
    token = fiken.vault.load()
    assert token is not None
    settings = fiken.connector.settings
    without = FikenConnector.oauth_app(settings, None)
    with pytest.raises(AuthError, match="401"):
        without.refresh(HttpClient("Fiken"), token, fiken.fake.clock)
    renewed = FikenConnector.oauth_app(settings, fiken.fake.client_secret).refresh(
        HttpClient("Fiken"), token, fiken.fake.clock
    )
    assert renewed.refresh_token != token.refresh_token


def test_revoking_names_the_grant_by_its_access_token(fiken: FikenHarness) -> None:
    fake = fiken.fake
    app = FikenConnector.oauth_app(fiken.connector.settings, fake.client_secret)
    live = Token.from_response(fake.issue_tokens(), fake.clock)
    app.revoke(HttpClient("Fiken"), live)
    assert fake.revocations == 1 and live.refresh_token not in fake.refresh_tokens
    # An access token past its day is renewed once, then the grant is ended with it.
    stale = Token.from_response(fake.issue_tokens(), fake.clock)
    fake.expire_access_tokens()
    app.revoke(HttpClient("Fiken"), stale)
    assert fake.revocations == 2 and fake.refreshes == 1
    assert len(fake.grants) == 1, "only the connector's own grant is left"


def test_the_companies_are_the_slugs(fiken: FikenHarness) -> None:
    token = fiken.vault.load()
    assert token is not None
    found = FikenConnector.list_tenants(fiken.connector.settings, HttpClient("Fiken"), token)
    assert [(t.tenant_id, t.name) for t in found] == [
        ("fjordlys-design-as", "Fjordlys Design AS"), ("nordlys-demo-as", "Nordlys Demo AS"),
    ]  # fmt: skip


class WatchedLock:
    """A lock that says when someone had to wait for it."""

    def __init__(self) -> None:
        self.inner = threading.RLock()
        self.contended = threading.Event()

    def __enter__(self) -> None:
        if not self.inner.acquire(blocking=False):
            self.contended.set()
            self.inner.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.inner.release()


def test_two_companies_of_one_user_never_have_requests_in_flight_together(
    fiken: FikenHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fiken.fake
    watched = WatchedLock()
    monkeypatch.setattr(fiken_module, "ONE_AT_A_TIME", watched)
    other = open_company(fiken, "nordlys-demo-as")
    results: dict[str, object] = {}

    def sync(name: str, harness: FikenHarness) -> None:
        try:
            results[name] = harness.connector.sync(None, {})
        except Exception as exc:  # the test says which, below
            results[name] = exc

    # The first company's first request stays in flight until the second has asked.
    hold = fake.hold_next(f"/api/v2/companies/{fake.company}/")
    first = threading.Thread(target=sync, args=("first", fiken))
    second = threading.Thread(target=sync, args=("second", other))
    first.start()
    try:
        assert hold.arrived.wait(10)
        second.start()
        assert watched.contended.wait(10), "the second company's request waited its turn"
    finally:
        hold.release.set()
        first.join(10)
        if second.is_alive() or second.ident is not None:
            second.join(10)
    assert isinstance(results["first"], SyncResult), results["first"]
    assert isinstance(results["second"], SyncResult), results["second"]
    # A request that overlapped would have been answered 429 and waited out.
    assert fiken.time.sleeps == other.time.sleeps == []
    assert fake.api_calls() == 3 + 3


def test_no_more_than_four_calls_go_out_in_a_second(fake: FakeFiken, tmp_path: Path) -> None:
    contact = fake.add_contact("Sidevis AS")
    for n in range(250):
        fake.add_invoice(contact, 30000 + n, 1000, issued=date(2026, 6, 1), due=date(2026, 7, 1))
    fake.strict_rate = True  # a fifth request in one second of the fake's clock: 429
    fiken = connect_to_fake(fake, tmp_path)
    try:
        assert len(fiken.connector.read_snapshot().invoices) == 250
        # Contacts, three pages of invoices, credit notes; none refused and waited out.
        assert fake.api_calls() == 5 and fiken.time.sleeps == []
        # Each call holds Fiken's mutex a quarter of a second from its start, so that
        # the next call, of this process or another, goes no sooner: the last one too.
        assert fiken.pace.sleeps == [0.25] * 5
    finally:
        fiken.store.close()


def test_a_fresh_read_costs_the_fewest_calls(fiken: FikenHarness, seeded: Seeded) -> None:
    fake, connector = fiken.fake, fiken.connector
    connector.read_snapshot()
    a1, a2, o1 = (_id(seeded[k], "invoiceId") for k in ("a1", "a2", "o1"))
    calls = fake.api_calls()
    (one,) = connector.read_invoices([a1])
    assert one.id == a1 and fake.api_calls() - calls == 1, "one invoice: by its id"
    calls = fake.api_calls()
    assert {i.id for i in connector.read_invoices([a1, a2, o1])} == {a1, a2, o1}
    assert fake.api_calls() - calls == 1, "several: the list of unsettled invoices"
    # One of them paid since: it is not on that list, and is read by its id.
    fake.pay(seeded["a1"], 1234567, on=fake.today)
    calls = fake.api_calls()
    fresh = {i.id: i for i in connector.read_invoices([a1, a2, o1])}
    assert fake.api_calls() - calls == 2
    assert fresh[a1].status is InvoiceStatus.PAID and fresh[o1].is_open
    assert connector.read_invoices(["999999999"]) == ()


def test_the_pdf_is_fetched_with_the_token_from_fikens_own_host(
    fiken: FikenHarness, seeded: Seeded
) -> None:
    fake, connector = fiken.fake, fiken.connector
    invoices = {i.number: i for i in connector.read_snapshot().invoices}
    calls = fake.api_calls()
    pdf = connector.invoice_pdf(invoices["10001"])
    assert pdf is not None and pdf.startswith(b"%PDF") and b"faktura 10001" in pdf
    assert fake.api_calls() - calls == 1, "the link came with the sync"
    assert any(k.startswith("GET /api/v2/files/") for k in fake.calls)
    # A connector that has not read the invoice reads it first.
    other = open_company(fiken, fake.company)
    calls = fake.api_calls()
    assert other.connector.invoice_pdf(invoices["10002"]) is not None
    assert fake.api_calls() - calls == 2
    # A link elsewhere never gets the token.
    connector._pdf_links[invoices["10003"].id] = "https://files.example.com/10003.pdf"
    calls = fake.api_calls()
    assert connector.invoice_pdf(invoices["10003"]) is None
    assert fake.api_calls() == calls


def test_fiken_sends_the_invoice_and_a_lost_answer_is_in_doubt(
    fiken: FikenHarness, seeded: Seeded
) -> None:
    fake, connector = fiken.fake, fiken.connector
    assert connector.has_mailer and not connector.mailer_idempotent
    invoices = {i.number: i for i in connector.read_snapshot().invoices}
    sent = connector.email_invoice(invoices["10001"], "ab" * 16)
    assert sent.status is DeliveryStatus.SENT
    assert [(s.invoice_id, s.methods) for s in fake.sent] == [
        (seeded["a1"]["invoiceId"], ("email",))
    ]
    assert fake.book().deliveries[0]["request"]["includeDocumentAttachments"] is False
    fake.fail_next(
        f"/api/v2/companies/{fake.company}/invoices/send", Fault(502, carry_out=True, drop=True)
    )
    lost = connector.email_invoice(invoices["10002"], "cd" * 16)
    assert lost.status is DeliveryStatus.UNCONFIRMED
    assert len(fake.sent) == 2, "done once, not asked again"
    # A client Fiken has no e-mail address for: refused, the next channel goes.
    fake.update_contact(seeded["ola"]["contactId"], email=None)
    refused = connector.email_invoice(invoices["10004"], "ef" * 16)
    assert refused.status is DeliveryStatus.PERMANENT and "e-mail" in refused.detail
    assert len(fake.sent) == 2


def test_fiken_may_send_by_ehf_to_a_business_as_kindly_toml_says(
    fake: FakeFiken, seeded: Seeded, tmp_path: Path
) -> None:
    harness = connect_to_fake(fake, tmp_path, send_methods=("ehf",))
    try:
        invoices = {i.number: i for i in harness.connector.read_snapshot().invoices}
        # A business with an organisation number takes EHF.
        sent = harness.connector.email_invoice(invoices["10001"], "ab" * 16)
        assert sent.status is DeliveryStatus.SENT
        assert [s.methods for s in fake.sent] == [("ehf",)]
        # A person has none: Fiken refuses, and the reminder falls back.
        refused = harness.connector.email_invoice(invoices["10004"], "cd" * 16)
        assert refused.status is DeliveryStatus.PERMANENT
    finally:
        harness.store.close()


def test_notes_stay_in_kindlys_history_and_nothing_is_asked(
    fiken: FikenHarness, seeded: Seeded
) -> None:
    from integrations.base import Capability

    fake, connector = fiken.fake, fiken.connector
    assert Capability.NOTES not in connector.capabilities
    note = Note(
        id="kindly-" + "cd" * 16, created_at=fake.clock,
        text="Kindly sent the first reminder by e-mail.",
        customer_id=_id(seeded["fjell"], "contactId"),
        invoice_ids=(_id(seeded["a1"], "invoiceId"),), reminder_key="cd" * 16, stage="first",
        channel="email",
    )  # fmt: skip
    calls = fake.api_calls()
    assert connector.write_notes([note], check={note.id}) == {note.id: None}
    connector.write_note(note)
    assert connector.read_notes() == () and connector.existing_note_ids([note]) == set()
    assert fake.api_calls() == calls and fake.attachments == []


def test_fikens_own_reminders_are_seen_by_the_documents_they_leave(
    fiken: FikenHarness, seeded: Seeded
) -> None:
    assert fiken.connector.platform_reminders() == []
    fiken.fake.remind(seeded["a1"])
    (said,) = fiken.connector.platform_reminders()
    assert "10001" in said and "Purring" in said
    # A reminder on an invoice paid since counts no more: nobody is chasing it.
    fiken.fake.pay(seeded["a1"], 1234567, on=date(2026, 11, 22))
    assert fiken.connector.platform_reminders() == []


def test_the_oauth_app_never_shows_its_secret(fiken: FikenHarness) -> None:
    app = fiken.connector.app
    assert fiken.fake.client_secret not in repr(app) and fiken.fake.client_secret not in str(app)
