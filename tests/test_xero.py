"""The Xero connector against a fake Xero on loopback: the bookkeeping and HTTP contracts,
then mapping, sync, write-back, OAuth and what else is Xero's own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from integrations.bookkeeping.xero import XeroConnector, verify_webhook
from integrations.http import AuthError, RetriableError
from integrations.oauth import Token, TokenVault
from plugin.core.model import CustomerKind, InvoiceStatus, Note
from plugin.core.money import Money
from plugin.state.store import Store
from tests.contract import (
    BookkeepingHarness,
    HttpHarness,
    bookkeeping_contract,
    harness_factory,
    http_contract,
)
from tests.fakes.xero import FakeXero, Fault
from tests.xero_harness import XeroHarness, connect_to_fake, seed_small_ledger

# -- the contracts ----------------------------------------------------------------------------


def xero_signature(body: bytes, key: str) -> str:
    """``x-xero-signature``: base64(HMAC-SHA256(raw body, webhook key))."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def xero_token_secrets(harness: XeroHarness) -> list[str]:
    token = harness.vault.load()
    assert token is not None
    return [token.access_token, token.refresh_token]


@harness_factory(XeroConnector)
def xero_harness(folder: Path) -> Iterator[BookkeepingHarness]:
    """Xero with the small ledger: three clients, five invoices (four open)."""
    fake = FakeXero()
    fake.start()
    xero = connect_to_fake(fake, folder)
    seed_small_ledger(fake)
    # Kindly syncs a while after the records were entered: a bookmark a minute behind
    # Xero's clock then lies after them (the overlap the connector keeps).
    fake.tick(minutes=5)

    def webhook_body(own: Sequence[tuple[str, str]], foreign: Sequence[tuple[str, str]]) -> bytes:
        def event(kind: str, record_id: str, tenant: str) -> dict[str, object]:
            return {
                "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{record_id}",
                "resourceId": record_id,
                "eventDateUtc": "2026-11-22T09:00:00.000",
                "eventType": "UPDATE",
                "eventCategory": kind,
                "tenantId": tenant,
                "tenantType": "ORGANISATION",
            }

        other = "0f000000-0000-0000-0000-00000000000f"
        events = [event(k, i, fake.tenant_id) for k, i in own]
        events += [event(k, i, other) for k, i in foreign]
        return json.dumps(
            {"events": events, "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "X"}
        ).encode()

    def copies(note_id: str) -> int:
        marker = f"[kindly {note_id.removeprefix('kindly-')} "
        return sum(marker in r["Details"] for records in fake.history.values() for r in records)

    try:
        yield BookkeepingHarness(
            connector=xero.connector,
            source_name="Noordlicht Studio",
            secrets=lambda: xero_token_secrets(xero),
            copies=copies,
            change_invoice=lambda invoice_id: fake.update_invoice(invoice_id, Status="VOIDED"),
            delete_invoice=lambda invoice_id: fake.update_invoice(invoice_id, Status="DELETED"),
            calls=fake.api_calls,
            served=lambda: sum(fake.served),
            # Contacts, invoices, credit notes and payments: one empty page each.
            unchanged_sync_calls=4,
            signature_header="x-xero-signature",
            sign=xero_signature,
            webhook_body=webhook_body,
        )
    finally:
        xero.store.close()
        fake.stop()


@harness_factory(XeroConnector)
def xero_http_harness(folder: Path) -> Iterator[HttpHarness]:
    fake = FakeXero()
    fake.start()
    xero = connect_to_fake(fake, folder)
    contact = fake.add_contact("Paging Client")

    def seed(count: int) -> None:
        for n in range(count):
            fake.add_invoice(
                contact, f"P-{n:05d}", "10.00", issued=date(2026, 6, 1), due=date(2026, 7, 1)
            )

    def fail(status: int, headers: dict[str, str], times: int) -> None:
        body = {"Title": "Error", "Detail": "injected"}
        fake.fail_next("/api.xro/2.0/Contacts", *[Fault(status, headers, body)] * times)

    def point_at(url: str) -> None:
        xero.connector.settings = replace(xero.connector.settings, api_url=url)

    try:
        yield HttpHarness(
            connector=xero.connector,
            time=xero.time,
            seed=seed,
            fail_list_call=fail,
            revoke_access=fake.expire_access_tokens,
            refreshes=lambda: fake.refreshes,
            list_calls=lambda: fake.calls["GET /api.xro/2.0/Invoices"],
            point_at=point_at,
            secrets=lambda: xero_token_secrets(xero),
            page_size=1000,
            read=lambda: len(xero.connector.read_snapshot().invoices),
        )
    finally:
        xero.store.close()
        fake.stop()


TestXeroContract = bookkeeping_contract(xero_harness)
TestXeroHttp = http_contract(xero_http_harness)

# -- Xero's own -------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeXero]:
    server = FakeXero()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def xero(fake: FakeXero, tmp_path: Path) -> Iterator[XeroHarness]:
    harness = connect_to_fake(fake, tmp_path)
    yield harness
    harness.store.close()


def test_a_sync_maps_xero_records_onto_the_model(xero: XeroHarness) -> None:
    seeded = seed_small_ledger(xero.fake)
    snapshot = xero.connector.read_snapshot()
    customers = snapshot.customers_by_id
    ada = customers[seeded["ada"]["ContactID"]]
    assert (ada.name, ada.contact_name, ada.country, ada.language) == (
        "Ada Vermeer",
        "Ada Vermeer",
        "NL",
        "nl",
    )
    # Xero's FirstName and LastName give the informal and the formal greeting.
    assert (ada.given_name, ada.family_name, ada.salutation) == ("Ada", "Vermeer", None)
    assert ada.timezone == "Europe/Amsterdam"
    assert ada.emails == ("ada@client.example",)
    assert ada.phones == ("+31 612345678",)
    # Laid out as PostNL expects; the country line is the letter's, for mail abroad.
    assert ada.address == ("Prinsengracht 263", "1016 GV AMSTERDAM")
    assert "Reminders: firm" in ada.tags
    assert customers[seeded["olav"]["ContactID"]].country == "NO"
    assert customers[seeded["cleo"]["ContactID"]].country == "FR"
    invoices = snapshot.invoices_by_id
    a1 = invoices[seeded["a1"]["InvoiceID"]]
    assert (a1.number, a1.issue_date, a1.due_date) == (
        "INV-0001",
        date(2026, 9, 1),
        date(2026, 10, 1),
    )
    assert a1.total == Money.of("1210.00", "EUR") and a1.status is InvoiceStatus.OPEN
    assert isinstance(a1.total.amount, Decimal)
    a2 = invoices[seeded["a2"]["InvoiceID"]]
    assert a2.amount_due == Money.of("300.00", "EUR")
    (payment,) = snapshot.payments
    assert (payment.invoice_id, payment.amount, payment.date) == (
        a2.id,
        Money.of("200.00", "EUR"),
        date(2026, 11, 2),
    )
    assert invoices[seeded["o1"]["InvoiceID"]].currency == "NOK"
    assert invoices[seeded["draft"]["InvoiceID"]].status is InvoiceStatus.DRAFT
    (credit,) = snapshot.credit_notes
    assert credit.allocations[0].invoice_id == seeded["c1"]["InvoiceID"]
    assert invoices[seeded["c1"]["InvoiceID"]].amount_due == Money.of("50.00", "EUR")
    # Xero's expected payment date is a promise to pay.
    (promise,) = snapshot.promises
    assert (promise.invoice_id, promise.promised_date) == (
        seeded["o1"]["InvoiceID"],
        date(2026, 12, 2),
    )


def test_contact_groups_set_tone_language_kind_and_pause(xero: XeroHarness) -> None:
    groups = xero.connector.group_settings()
    assert groups["Reminders: firm"].tone == "firm"
    assert groups["Reminders: off"].excluded is True
    assert groups["Language: nl"].language == "nl"
    assert groups["Kind: consumer"].kind is CustomerKind.CONSUMER


def test_group_prefixes_are_settings(fake: FakeXero, tmp_path: Path) -> None:
    harness = connect_to_fake(
        fake, tmp_path, group_prefixes={"reminders": "Aanmaningen", "language": "Taal"}
    )
    groups = harness.connector.group_settings()
    assert groups["Aanmaningen: friendly"].tone == "friendly"
    assert groups["Taal: de"].language == "de"
    assert "Reminders: firm" not in groups


def test_full_then_incremental_sync_makes_the_fewest_calls(xero: XeroHarness) -> None:
    fake = xero.fake
    seeded = seed_small_ledger(fake)
    for n in range(2300):  # three pages of invoices at 1,000 a page
        fake.add_invoice(
            seeded["cleo"], f"BULK-{n:05d}", "10.00", issued=date(2026, 6, 1), due=date(2026, 7, 1)
        )
    full = xero.connector.sync(None, {})
    assert len(full.snapshot.invoices) == 2305
    calls = xero.connector.http.calls
    assert calls["GET /api.xro/2.0/Invoices"] == 3
    assert sum(calls.values()) == 6, calls  # contacts, 3 invoice pages, credit notes, payments
    assert set(full.bookmarks) == {"Contacts", "Invoices", "CreditNotes", "Payments"}

    # Nothing changed: four calls, each answered with an empty page.
    calls.clear()
    same = xero.connector.sync(full.snapshot, full.bookmarks)
    assert sum(calls.values()) == 4
    assert same.snapshot.invoices == full.snapshot.invoices

    # A payment, a voided invoice, a deleted one and a new contact: only those come back.
    calls.clear()
    fake.add_payment(seeded["a1"], "1210.00", date(2026, 11, 20))
    fake.update_invoice(seeded["c1"]["InvoiceID"], Status="VOIDED")
    fake.update_invoice(seeded["draft"]["InvoiceID"], Status="DELETED")
    newcomer = fake.add_contact("Dora Schmidt", Addresses=[{"Country": "Germany"}])
    changed = xero.connector.sync(same.snapshot, same.bookmarks)
    assert sum(calls.values()) == 4
    invoices = changed.snapshot.invoices_by_id
    assert invoices[seeded["a1"]["InvoiceID"]].status is InvoiceStatus.PAID
    assert invoices[seeded["c1"]["InvoiceID"]].status is InvoiceStatus.VOIDED
    assert seeded["draft"]["InvoiceID"] not in invoices
    assert changed.snapshot.customers_by_id[newcomer["ContactID"]].country == "DE"
    assert len(changed.snapshot.payments) == 2
    assert changed.bookmarks["Invoices"] > same.bookmarks["Invoices"]


def test_a_fresh_read_asks_for_the_named_invoices_only(xero: XeroHarness) -> None:
    seeded = seed_small_ledger(xero.fake)
    ids = [seeded["a1"]["InvoiceID"], seeded["o1"]["InvoiceID"]]
    xero.fake.add_payment(seeded["a1"], "1210.00", date(2026, 11, 21))
    xero.connector.http.calls.clear()
    fresh = xero.connector.read_invoices(ids)
    assert {i.id for i in fresh} == set(ids)
    assert {i.id: i.status for i in fresh}[ids[0]] is InvoiceStatus.PAID
    assert sum(xero.connector.http.calls.values()) == 1


def test_notes_go_to_the_invoices_and_the_contact_once(xero: XeroHarness) -> None:
    seeded = seed_small_ledger(xero.fake)
    a1, a2 = seeded["a1"]["InvoiceID"], seeded["a2"]["InvoiceID"]
    note = Note(
        id="kindly-0123456789abcdef0123456789abcdef",
        created_at=xero.fake.clock,
        text="Kindly sent the second reminder by e-mail to ada@client.example.",
        customer_id=seeded["ada"]["ContactID"],
        invoice_ids=(a1, a2),
        reminder_key="0123456789abcdef0123456789abcdef",
        stage="second",
        channel="email",
    )
    assert xero.connector.existing_note_ids([note]) == set()
    xero.connector.write_note(note)
    xero.connector.write_note(note)  # a retry after a lost answer: Idempotency-Key
    for target in (a1, a2, seeded["ada"]["ContactID"]):
        (record,) = xero.fake.history[target]
        assert record["Details"].startswith("Kindly sent the second reminder")
        assert record["Details"].endswith("[kindly 0123456789abcdef0123456789abcdef second email]")
    assert xero.connector.existing_note_ids([note]) == {note.id}
    # History is rebuilt from Xero: the note comes back with its key, stage and channel.
    (back,) = xero.connector.read_notes()
    assert (back.reminder_key, back.stage, back.channel) == (note.reminder_key, "second", "email")
    assert set(back.invoice_ids) == {a1, a2}


def test_a_note_only_partly_written_is_finished_on_every_record_once(
    xero: XeroHarness,
) -> None:
    """One History PUT of three fails: the note is not written; the next try looks on each
    record and writes only where it is missing."""
    from tests.fakes.xero import API

    seeded = seed_small_ledger(xero.fake)
    a1, a2 = seeded["a1"]["InvoiceID"], seeded["a2"]["InvoiceID"]
    ada = seeded["ada"]["ContactID"]

    def note(key: str, *invoices: str) -> Note:
        return Note(
            id=f"kindly-{key}",
            created_at=xero.fake.clock,
            text="Kindly sent the first reminder by e-mail to ada@client.example.",
            customer_id=ada,
            invoice_ids=invoices,
            reminder_key=key,
            stage="first",
            channel="email",
        )

    both, first_only = note("a" * 32, a1, a2), note("b" * 32, a1)
    xero.fake.fail_next(f"{API}/Invoices/{a2}/History", Fault(400, body={"Message": "busy"}))
    results = xero.connector.write_notes([both, first_only])
    assert results[first_only.id] is None
    reason = results[both.id]
    assert reason is not None and a2 in reason
    # One PUT a record, carrying every note of the batch for it.
    assert xero.fake.calls[f"PUT {API}/Invoices/{a1}/History"] == 1
    assert len(xero.fake.history[a1]) == 2

    again = xero.connector.write_notes([both], check={both.id})
    assert again == {both.id: None}
    for target, expected in ((a1, 2), (a2, 1), (ada, 2)):
        details = [r["Details"] for r in xero.fake.history[target]]
        assert len(details) == expected, (target, details)
        assert sum("a" * 32 in d for d in details) == 1, "each record holds the note once"
    assert xero.fake.calls[f"PUT {API}/Invoices/{a1}/History"] == 1, "not written there again"
    assert xero.fake.calls[f"PUT {API}/Invoices/{a2}/History"] == 2


def test_online_link_pdf_and_xero_email(xero: XeroHarness) -> None:
    seeded = seed_small_ledger(xero.fake)
    invoice = xero.connector.read_invoices([seeded["a1"]["InvoiceID"]])[0]
    url = xero.connector.online_invoice_url(invoice)
    assert url is not None and url.startswith("https://in.xero.example/")
    pdf = xero.connector.invoice_pdf(invoice)
    assert pdf is not None and pdf.startswith(b"%PDF") and b"INV-0001" in pdf
    xero.connector.email_invoice(invoice)
    assert xero.fake.emailed == [invoice.id]


# -- OAuth ------------------------------------------------------------------------------------


def test_an_expiring_token_is_refreshed_first_and_the_rotated_one_kept(xero: XeroHarness) -> None:
    seed_small_ledger(xero.fake)
    before = xero.vault.load()
    assert before is not None
    xero.fake.tick(minutes=27)  # within five minutes of expiry
    xero.connector.read_snapshot()
    after = xero.vault.load()
    assert after is not None and after.refresh_token != before.refresh_token
    assert xero.fake.refreshes == 1
    assert before.refresh_token not in xero.fake.refresh_tokens, "Xero rotated it"
    # Saved encrypted: nothing of the token is readable in the store.
    raw = xero.store.get_setting(f"secret:xero:{xero.fake.tenant_id}", "token")
    assert after.refresh_token not in raw and after.access_token not in raw


def test_a_refused_token_is_renewed_once_and_the_call_repeated(xero: XeroHarness) -> None:
    seed_small_ledger(xero.fake)
    xero.fake.expire_access_tokens()  # revoked early: the 401 comes before the expiry
    snapshot = xero.connector.read_snapshot()
    assert snapshot.invoices and xero.fake.refreshes == 1


def test_a_dead_refresh_token_says_connect_again(xero: XeroHarness) -> None:
    xero.fake.refresh_tokens.clear()
    xero.fake.expire_access_tokens()
    with pytest.raises(AuthError) as caught:
        xero.connector.read_snapshot()
    assert "kindly connect xero" in (caught.value.hint or "")


def test_two_processes_refreshing_at_once_refresh_once(fake: FakeXero, tmp_path: Path) -> None:
    first = connect_to_fake(fake, tmp_path)
    # A second process: its own handle on the same store file, the same key.
    second = connect_to_fake(fake, tmp_path / "other")
    other_store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    second.connector.vault = second.connector.bearer.vault = TokenVault(
        other_store, first.vault.name, first.key, clock=lambda: fake.clock
    )
    fake.tick(minutes=29)
    results: list[Token] = []
    errors: list[BaseException] = []

    def refresh(harness: XeroHarness) -> None:
        try:
            results.append(harness.connector.bearer.token())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(h,)) for h in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert fake.refreshes == 1, "the second waited for the lock and used the new token"
    assert results[0].access_token == results[1].access_token
    stored = first.vault.load()
    assert stored is not None and stored.refresh_token in fake.refresh_tokens


# -- webhooks ---------------------------------------------------------------------------------


def test_webhook_signatures_are_checked_in_constant_time() -> None:
    body = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"X"}'
    key = "webhook-key-from-the-developer-portal"
    signature = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    assert verify_webhook(body, signature, key)
    assert not verify_webhook(body + b" ", signature, key)
    assert not verify_webhook(body, None, key)
    assert not verify_webhook(body, signature, "")
    assert not verify_webhook(body, "ünïcode-signature", key), "a wrong signature, not an error"


def test_the_token_never_shows_in_a_repr(xero: XeroHarness) -> None:
    token = xero.vault.load()
    assert token is not None
    for text in (repr(token), repr(xero.connector), repr(xero.vault), repr(xero.connector.app)):
        assert token.access_token not in text and token.refresh_token not in text
    assert timedelta(0) < token.expires_at - xero.fake.clock


def test_a_sync_keeps_within_the_calls_allowed_a_minute(fake: FakeXero, tmp_path: Path) -> None:
    from integrations.http import CallBudget

    harness = connect_to_fake(fake, tmp_path)
    budget = CallBudget(per_minute=3, clock=harness.time.monotonic, sleep=harness.time.sleep)
    harness.connector.http.budget = budget
    contact = fake.add_contact("Busy Client")
    for n in range(4001):  # five pages of invoices: eight calls in all
        fake.add_invoice(contact, f"B-{n}", "1.00", issued=date(2026, 1, 1), due=date(2026, 2, 1))
    moments: list[float] = []
    original = budget.before_call

    def noting(method: str = "GET") -> None:
        original(method)
        moments.append(harness.time.now)

    budget.before_call = noting  # type: ignore[method-assign]
    assert len(harness.connector.read_snapshot().invoices) == 4001
    assert len(moments) == 8
    for start in moments:
        assert sum(1 for m in moments if start <= m < start + 60) <= 3
    harness.store.close()


def test_a_sync_stops_before_the_day_allowance_runs_out(xero: XeroHarness) -> None:
    from integrations.http import RetriableError

    seed_small_ledger(xero.fake)
    xero.fake.day_remaining = 52  # 51 left after the first call: 50 are kept back
    with pytest.raises(RetriableError, match="daily call allowance"):
        xero.connector.read_snapshot()
    assert xero.fake.api_calls() == 2


def test_an_invoice_whose_contact_was_not_listed_still_has_a_client(xero: XeroHarness) -> None:
    ghost = {"ContactID": "5b1a0000-0000-0000-0000-000000000001", "Name": "Ghost Ltd"}
    xero.fake.add_invoice(
        ghost, "INV-0666", "100.00", issued=date(2026, 9, 1), due=date(2026, 10, 1)
    )
    snapshot = xero.connector.read_snapshot()
    (invoice,) = snapshot.invoices
    customer = snapshot.customers_by_id[invoice.customer_id]
    assert customer.name == "Ghost Ltd" and customer.country == "NL"


def test_an_invoice_e_mail_is_never_sent_twice(xero: XeroHarness) -> None:
    from integrations.http import RetriableError

    seeded = seed_small_ledger(xero.fake)
    invoice = xero.connector.read_invoices([seeded["a1"]["InvoiceID"]])[0]
    xero.fake.fail_after_email = 1  # Xero sends it, but the answer is a 504
    xero.connector.email_invoice(invoice, "k1")
    # Retried with the same Idempotency-Key: Xero answers, and does not send it again.
    assert xero.fake.emailed == [invoice.id] and len(xero.time.sleeps) == 1
    # Without a key, a POST whose answer got lost is not repeated at all.
    xero.fake.fail_after_email = 1
    url = f"{xero.connector.settings.api_url}/Invoices/{invoice.id}/Email"
    with pytest.raises(RetriableError):
        xero.connector.http.request("POST", url, json={})
    assert xero.fake.emailed == [invoice.id, invoice.id] and len(xero.time.sleeps) == 1


def test_a_daily_limit_waits_for_the_next_run_and_leaves_writes_the_reserve(
    xero: XeroHarness,
) -> None:
    from integrations.http import RetriableError

    seeded = seed_small_ledger(xero.fake)
    xero.fake.day_remaining = 52
    with pytest.raises(RetriableError, match="kept back for notes") as caught:
        xero.connector.read_snapshot()
    assert caught.value.later and xero.time.sleeps == [], "no retries within the run"
    note = Note(
        id="kindly-00000000000000000000000000000001",
        created_at=xero.fake.clock,
        text="Kindly sent the first reminder.",
        customer_id=seeded["ada"]["ContactID"],
        invoice_ids=(seeded["a1"]["InvoiceID"],),
        reminder_key="00000000000000000000000000000001",
        stage="first",
        channel="email",
    )
    xero.connector.write_note(note)  # writes may use the reserve
    assert xero.fake.history[seeded["a1"]["InvoiceID"]]
    # A new day (UTC) brings a new allowance.
    budget = xero.connector.http.budget
    assert budget is not None
    budget.today = lambda: "2099-01-01"
    xero.fake.day_remaining = 5000
    assert xero.connector.read_snapshot().invoices


@pytest.mark.parametrize(
    "headers", [{"Retry-After": "3600"}, {"Retry-After": "5", "X-Rate-Limit-Problem": "day"}]
)
def test_a_long_wait_is_left_to_the_next_run(xero: XeroHarness, headers: dict[str, str]) -> None:
    from integrations.http import RetriableError
    from tests.fakes.xero import Fault

    xero.fake.fail_next("/api.xro/2.0/Contacts", Fault(429, headers, {"Title": "limit"}))
    with pytest.raises(RetriableError) as caught:
        xero.connector.read_snapshot()
    assert caught.value.later and xero.time.sleeps == []


def test_one_odd_record_does_not_stop_the_sync(xero: XeroHarness) -> None:
    seeded = seed_small_ledger(xero.fake)
    xero.fake.add_credit_note(seeded["cleo"], "CN-0000", "0.00", date(2026, 11, 7))
    odd = xero.fake.add_invoice(
        seeded["ada"], "INV-ODD", "10.00", issued=date(2026, 11, 1), due=date(2026, 12, 1)
    )
    xero.fake.update_invoice(odd["InvoiceID"], CurrencyCode="XXQ")  # no such currency
    note = xero.fake.add_credit_note(
        seeded["ada"], "CN-0002", "20.00", date(2026, 11, 8), allocate_to=[(seeded["a2"], "5.00")]
    )
    note["Allocations"].append(
        {"Amount": 50.0, "IsDeleted": True, "Invoice": {"InvoiceID": seeded["a1"]["InvoiceID"]}}
    )
    synced = xero.connector.sync(None, {})
    snapshot = synced.snapshot
    assert {i.number for i in snapshot.invoices} >= {"INV-0001", "INV-0002", "INV-0003"}
    assert "INV-ODD" not in {i.number for i in snapshot.invoices}
    (warning,) = synced.warnings
    assert odd["InvoiceID"] in warning and "XXQ" in warning
    numbers = {n.number: n for n in snapshot.credit_notes}
    assert "CN-0000" not in numbers, "an empty credit note is no credit"
    assert [a.amount for a in numbers["CN-0002"].allocations] == [Money.of("5.00", "EUR")]


def test_a_payment_is_kept_even_before_its_invoice_arrives(xero: XeroHarness) -> None:
    seed_small_ledger(xero.fake)
    first = xero.connector.sync(None, {})
    # A payment on an invoice the snapshot does not hold (created between two reads).
    ghost = {"InvoiceID": "6a000000-0000-0000-0000-000000000001", "InvoiceNumber": "INV-LATE"}
    payment: dict[str, Any] = {
        "PaymentID": "6b000000-0000-0000-0000-000000000001",
        "Date": "/Date(1795219200000+0000)/",
        "Amount": 40.0,
        "Status": "AUTHORISED",
        "PaymentType": "ACCRECPAYMENT",
        "Invoice": {**ghost, "CurrencyCode": "EUR"},
        "UpdatedDateUTC": "/Date(1795219200000+0000)/",
    }
    xero.fake.payments[payment["PaymentID"]] = payment
    xero.fake.tick(minutes=5)
    payment["UpdatedDateUTC"] = f"/Date({int(xero.fake.clock.timestamp() * 1000)}+0000)/"
    later = xero.connector.sync(first.snapshot, first.bookmarks)
    assert payment["PaymentID"] in {p.id for p in later.snapshot.payments}


def test_xeros_records_map_onto_the_model_without_a_server() -> None:
    """The mapping is pure: Xero's JSON in, Kindly's model out, no call made."""
    from decimal import Decimal

    from integrations.bookkeeping import xero_records
    from integrations.http import FatalError
    from plugin.core.model import InvoiceStatus

    contact = {
        "ContactID": "c1",
        "Name": "Thistle & Rose Ltd",
        "EmailAddress": "ap@thistle.example",
        "Addresses": [
            {"AddressType": "POBOX", "AddressLine1": "1 High St", "City": "Leeds", "Country": "UK"}
        ],
        "Phones": [{"PhoneType": "MOBILE", "PhoneCountryCode": "44", "PhoneNumber": "7700 900123"}],
    }
    customer = xero_records.customer(contact, "NL")
    assert (customer.country, customer.language, customer.timezone) == ("GB", "en", "Europe/London")
    assert customer.phones == ("+44 7700 900123",)
    assert customer.address == ("1 High St", "LEEDS")
    invoice = xero_records.invoice(
        {
            "InvoiceID": "i1",
            "InvoiceNumber": "INV-1",
            "Contact": {"ContactID": "c1"},
            "Date": "/Date(1767225600000+0000)/",
            "DueDate": "/Date(1769904000000+0000)/",
            "Total": Decimal("120.00"),
            "AmountDue": Decimal("20.00"),
            "Status": "AUTHORISED",
            "CurrencyCode": "GBP",
        }
    )
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 1, 1), date(2026, 2, 1))
    assert invoice.amount_due == Money.of("20.00", "GBP")
    assert invoice.status is InvoiceStatus.OPEN
    with pytest.raises(FatalError, match="InvoiceID"):
        xero_records.invoice({"Total": "1.00"})


def test_a_401_after_another_process_renewed_uses_its_token_without_renewing(
    xero: XeroHarness,
) -> None:
    """The call went out with the old token; while it was refused, another process renewed
    it. Compared with the token actually sent, the stored one is new: use it, renew none."""
    from tests.fakes.xero import API

    seed_small_ledger(xero.fake)

    def another_process_renews() -> None:
        xero.vault.save(Token.from_response(xero.fake.issue_tokens(), xero.fake.clock))

    xero.fake.fail_next(f"{API}/Invoices", Fault(401, before=another_process_renews))
    xero.connector.read_snapshot()
    assert xero.fake.calls["POST /connect/token"] == 0, "no second renewal"


def test_a_429_from_the_token_endpoint_is_waited_for(xero: XeroHarness) -> None:
    seed_small_ledger(xero.fake)
    xero.fake.tick(minutes=27)  # within five minutes of expiry: renewed first
    xero.fake.fail_next("/connect/token", Fault(429, headers={"Retry-After": "20"}))
    xero.connector.read_snapshot()
    assert xero.fake.refreshes == 1
    assert 20 in xero.time.sleeps, "waited as long as the token endpoint asked"


def test_a_lost_answer_to_a_renewal_is_recovered_with_the_same_refresh_token(
    xero: XeroHarness,
) -> None:
    """Xero rotated the refresh token and the answer was lost: the old one is taken for 30
    minutes more (Xero's documented grace), so it is asked again at once."""
    seed_small_ledger(xero.fake)
    before = xero.vault.load()
    assert before is not None
    xero.fake.tick(minutes=27)
    xero.fake.lose_token_answers = 1
    xero.connector.read_snapshot()
    after = xero.vault.load()
    assert after is not None and after.refresh_token != before.refresh_token
    assert xero.fake.refreshes == 2
    assert after.refresh_token in xero.fake.refresh_tokens, "the newest one is kept"


def test_a_lost_answer_past_the_grace_period_says_to_connect_again(xero: XeroHarness) -> None:
    seed_small_ledger(xero.fake)
    xero.fake.tick(minutes=27)
    xero.fake.lose_token_answers = 2  # the repeat is lost too: the run cannot go on
    with pytest.raises(RetriableError) as first:
        xero.connector.read_snapshot()
    assert "again later" in (first.value.hint or "")
    xero.fake.tick(minutes=45)  # the next run, after Xero's 30 minutes
    with pytest.raises(AuthError) as caught:
        xero.connector.read_snapshot()
    assert "kindly connect xero" in (caught.value.hint or "")
    assert "no longer accepts" in str(caught.value)


def test_a_full_last_page_costs_no_call_for_an_empty_one(
    xero: XeroHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Xero says how many pages there are: five invoices at five a page are one call."""
    import integrations.bookkeeping.xero as xero_module
    from tests.fakes.xero import API

    seed_small_ledger(xero.fake)
    assert len(xero.fake.invoices) == 5
    monkeypatch.setattr(xero_module, "PAGE_SIZE", 5)
    snapshot = xero.connector.read_snapshot()
    assert len(snapshot.invoices) == 5
    assert xero.fake.calls[f"GET {API}/Invoices"] == 1


@pytest.mark.parametrize(
    ("fields", "lines"),
    [
        (
            {"City": "London", "PostalCode": "SE10 9NF", "Country": "United Kingdom"},
            ("12 Park Row", "LONDON", "SE10 9NF"),
        ),
        (
            {"City": "Paris", "PostalCode": "75009", "Country": "France"},
            ("12 Park Row", "75009 PARIS"),
        ),
        (
            {"City": "Springfield", "Region": "IL", "PostalCode": "62701", "Country": "US"},
            ("12 Park Row", "SPRINGFIELD, IL 62701"),
        ),
        (
            {"City": "Oslo", "PostalCode": "0184", "Country": "Norge"},
            ("12 Park Row", "0184 OSLO"),
        ),
        # A country Kindly cannot name keeps Xero's own text, as it was typed.
        (
            {"City": "Atlantis", "PostalCode": "1", "Country": "Atlantis"},
            ("12 Park Row", "1 Atlantis", "Atlantis"),
        ),
    ],
)
def test_addresses_are_laid_out_as_the_destination_post_expects(
    fields: dict[str, str], lines: tuple[str, ...]
) -> None:
    """Issue 17: a letter abroad must be deliverable; each country's post has its order."""
    from integrations.bookkeeping import xero_records

    contact = {
        "ContactID": "c1",
        "Name": "Client",
        "Addresses": [{"AddressType": "POBOX", "AddressLine1": "12 Park Row", **fields}],
    }
    assert xero_records.customer(contact, "NL").address == lines
