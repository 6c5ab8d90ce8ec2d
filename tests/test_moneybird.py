"""The Moneybird connector against a fake Moneybird on loopback: the bookkeeping and HTTP
contracts, then mapping, the synchronization endpoints, notes on every invoice, the PDF
behind a redirect, Moneybird's own e-mail, its own reminders, and signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from integrations.bookkeeping.moneybird import MoneybirdConnector
from plugin.core.model import CustomerKind, InvoiceStatus, Note
from plugin.core.money import Money
from plugin.core.vocabulary import DeliveryStatus
from tests.contract import (
    BookkeepingHarness,
    HttpHarness,
    bookkeeping_contract,
    harness_factory,
    http_contract,
)
from tests.fakes.moneybird import FakeMoneybird, Fault
from tests.moneybird_harness import (
    MoneybirdHarness,
    connect_to_fake,
    fresh_token,
    seed_small_administration,
)

# -- the contracts ----------------------------------------------------------------------------


def _secrets(harness: MoneybirdHarness) -> list[str]:
    token = harness.vault.load()
    assert token is not None
    return [token.access_token, token.refresh_token, harness.fake.client_secret]


def _signature(fake: FakeMoneybird, body: bytes, key: str) -> str:
    moment = int(fake.clock.timestamp())
    digest = hmac.new(key.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


@harness_factory(
    MoneybirdConnector,
    lacks={
        "idempotent notes": "Moneybird takes no idempotency key: the run keeps a repeat out "
        "by writing with write_notes(check=...), which looks on each invoice first",
        "several events a request": "Moneybird's webhook names one record a push",
    },
)
def moneybird_harness(folder: Path) -> Iterator[BookkeepingHarness]:
    """Moneybird with the small administration: three contacts, five sent invoices."""
    fake = FakeMoneybird()
    fake.start()
    seed_small_administration(fake)
    fake.tick(minutes=5)
    moneybird = connect_to_fake(fake, folder)

    def copies(note_id: str) -> int:
        marker = f"[kindly {note_id.removeprefix('kindly-')} "
        return sum(marker in str(n.get("note")) for n in fake.notes.values())

    def webhook_body(own: Sequence[tuple[str, str]], foreign: Sequence[tuple[str, str]]) -> bytes:
        # One event a push: the first of this administration's, else another's.
        other = next(a for a in fake.administrations if a != fake.administration)
        kind, key, administration = (
            (*own[0], fake.administration) if own else (*foreign[0], other) if foreign
            else ("", "", "")
        )  # fmt: skip
        payload = {
            "administration_id": administration, "webhook_id": "1", "webhook_token": "t",
            "entity_type": kind, "entity_id": key, "state": "open",
            "action": "sales_invoice_updated", "entity": {},
        }  # fmt: skip
        return json.dumps(payload, separators=(",", ":")).encode()

    try:
        yield BookkeepingHarness(
            connector=moneybird.connector,
            source_name=fake.book().name,
            secrets=lambda: _secrets(moneybird),
            copies=copies,
            change_invoice=lambda invoice_id: fake.update_invoice(
                invoice_id, payment_reference="CHANGED"
            ),
            delete_invoice=lambda invoice_id: fake.delete_invoice(invoice_id),
            calls=fake.api_calls,
            served=lambda: sum(fake.served),
            # The synchronization lists of contacts and of invoices.
            unchanged_sync_calls=2,
            signature_header="Moneybird-Signature",
            sign=lambda body, key: _signature(fake, body, key),
            webhook_body=webhook_body,
        )
    finally:
        moneybird.store.close()
        fake.stop()


@harness_factory(MoneybirdConnector)
def moneybird_http_harness(folder: Path) -> Iterator[HttpHarness]:
    fake = FakeMoneybird()
    fake.start()
    contact = fake.add_contact("Paging B.V.")
    moneybird = connect_to_fake(fake, folder)
    path = f"/api/v2/{fake.administration}/sales_invoices.json"

    def seed(count: int) -> None:
        for n in range(count):
            fake.add_invoice(
                contact, 50000 + n, "10.00", issued=date(2026, 6, 1), due=date(2026, 7, 1)
            )
        # Seeding moved the fake's clock past the token's hour: a fresh grant.
        moneybird.vault.save(fresh_token(fake))

    def fail(status: int, headers: dict[str, str], times: int) -> None:
        fake.fail_next(path, *[Fault(status, headers, b"Retry later")] * times)

    def point_at(url: str) -> None:
        moneybird.connector.settings = replace(moneybird.connector.settings, api_url=url)

    try:
        yield HttpHarness(
            connector=moneybird.connector,
            time=moneybird.time,
            seed=seed,
            fail_list_call=fail,
            revoke_access=fake.expire_access_tokens,
            refreshes=lambda: fake.refreshes,
            list_calls=lambda: fake.calls[f"GET {path}"],
            point_at=point_at,
            secrets=lambda: _secrets(moneybird),
            page_size=100,
            read=lambda: len(list(moneybird.connector._pages("sales_invoices.json", {}))),
        )
    finally:
        moneybird.store.close()
        fake.stop()


TestMoneybirdContract = bookkeeping_contract(moneybird_harness)
TestMoneybirdHttp = http_contract(moneybird_http_harness)

# -- Moneybird's own --------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeMoneybird]:
    server = FakeMoneybird()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def seeded(fake: FakeMoneybird) -> dict[str, dict[str, object]]:
    made = seed_small_administration(fake)
    fake.tick(minutes=5)
    return made


@pytest.fixture
def moneybird(fake: FakeMoneybird, seeded: object, tmp_path: Path) -> Iterator[MoneybirdHarness]:
    harness = connect_to_fake(fake, tmp_path)
    yield harness
    harness.store.close()


def test_a_sync_maps_moneybird_records_onto_the_model(
    moneybird: MoneybirdHarness, seeded: dict[str, dict[str, object]]
) -> None:
    snapshot = moneybird.connector.read_snapshot()
    customers = snapshot.customers_by_id
    ada = customers[str(seeded["ada"]["id"])]
    assert (ada.name, ada.contact_name, ada.language, ada.kind) == (
        "Bakkerij Ada B.V.", "Ada Vermeer", "nl", CustomerKind.BUSINESS,
    )  # fmt: skip
    assert ada.emails == ("facturen@bakkerij.example",), "the invoice address first"
    assert ada.address == ("Prinsengracht 263", "1016 GV AMSTERDAM")
    # No language on a Moneybird contact: Karl's invoices are in German.
    assert customers[str(seeded["karl"]["id"])].language == "de"
    sam = customers[str(seeded["sam"]["id"])]
    assert (sam.name, sam.kind) == ("Sam de Vries", CustomerKind.CONSUMER)
    invoices = {i.number: i for i in snapshot.invoices}
    assert set(invoices) == {"2026-1001", "2026-1002", "2026-1003", "2026-1004", "2026-1005"}
    assert invoices["2026-1002"].amount_due == Money.of("300.00", "EUR")
    assert invoices["2026-1005"].status is InvoiceStatus.PAID
    # A direct debit on its way: open, but no reminder now.
    assert invoices["2026-1004"].on_hold and invoices["2026-1004"].is_open
    assert invoices["2026-1001"].online_url and "moneybird" in invoices["2026-1001"].online_url
    (credit,) = snapshot.credit_notes
    assert credit.total == Money.of("50.00", "EUR")
    assert {p.amount for p in snapshot.payments} == {
        Money.of("200.00", "EUR"), Money.of("40.00", "EUR"),
    }  # fmt: skip


def test_after_the_first_sync_only_what_moved_is_fetched(
    moneybird: MoneybirdHarness, seeded: dict[str, dict[str, object]]
) -> None:
    fake, connector = moneybird.fake, moneybird.connector
    first = connector.sync(None, {})
    assert fake.api_calls() == 2, "contacts and invoices: one page each"
    fake.pay(seeded["a1"], "1210.00", on=date(2026, 11, 22))
    fake.delete_invoice(str(seeded["k1"]["id"]))
    calls = fake.api_calls()
    later = connector.sync(first.snapshot, first.bookmarks)
    # The two id-and-version lists, then the one invoice that moved.
    assert fake.api_calls() - calls == 3
    assert fake.calls[f"POST /api/v2/{fake.administration}/sales_invoices/synchronization.json"]
    invoices = {i.number: i for i in later.snapshot.invoices}
    assert invoices["2026-1001"].status is InvoiceStatus.PAID
    assert "2026-1003" not in invoices, "an id no longer listed was deleted"
    assert any(p.invoice_id == str(seeded["a1"]["id"]) for p in later.snapshot.payments)
    # And right before sending, the fresh re-read sees the payment too.
    (fresh,) = connector.read_invoices([str(seeded["a1"]["id"])])
    assert fresh.status is InvoiceStatus.PAID


def test_a_note_goes_on_every_invoice_it_names_once(
    moneybird: MoneybirdHarness, seeded: dict[str, dict[str, object]]
) -> None:
    fake, connector = moneybird.fake, moneybird.connector
    a1, a2 = str(seeded["a1"]["id"]), str(seeded["a2"]["id"])
    note = Note(
        id="kindly-" + "cd" * 16, created_at=fake.clock,
        text="Kindly sent the first reminder by e-mail.", customer_id=str(seeded["ada"]["id"]),
        invoice_ids=(a1, a2), reminder_key="cd" * 16, stage="first", channel="email",
    )  # fmt: skip
    # The second invoice's note fails: the note is not written, and the next try (in
    # doubt) finishes it without a second copy on the first.
    fake.fail_next(f"/api/v2/{fake.administration}/sales_invoices/{a2}/notes", Fault(500))
    assert connector.write_notes([note])[note.id]
    assert connector.write_notes([note], check={note.id}) == {note.id: None}
    on = [str(n["entity_id"]) for n in fake.notes.values() if "[kindly cd" in str(n["note"])]
    assert sorted(on) == sorted([a1, a2])
    (back,) = [n for n in connector.read_notes() if n.id == note.id]
    assert set(back.invoice_ids) == {a1, a2} and back.stage == "first"


def test_the_pdf_comes_through_a_redirect_that_never_gets_the_token(
    moneybird: MoneybirdHarness, seeded: dict[str, dict[str, object]]
) -> None:
    invoices = {i.number: i for i in moneybird.connector.read_snapshot().invoices}
    pdf = moneybird.connector.invoice_pdf(invoices["2026-1001"])
    assert pdf is not None and pdf.startswith(b"%PDF")
    token = moneybird.vault.load()
    assert token is not None
    downloads = [k for k in moneybird.fake.calls if k.startswith("GET /downloads/")]
    assert downloads, "the download host was asked"
    assert moneybird.connector._downloads().session.headers.get("Authorization") is None


def test_moneybird_sends_its_own_reminder_and_a_lost_answer_is_in_doubt(
    moneybird: MoneybirdHarness, seeded: dict[str, dict[str, object]]
) -> None:
    fake, connector = moneybird.fake, moneybird.connector
    assert connector.has_mailer and not connector.mailer_idempotent
    invoices = {i.number: i for i in connector.read_snapshot().invoices}
    sent = connector.email_invoice(invoices["2026-1001"], "ab" * 16)
    assert sent.status is DeliveryStatus.SENT
    (reminder,) = fake.reminders_sent
    assert list(reminder.sales_invoice_ids) == [str(seeded["a1"]["id"])]
    assert reminder.delivery_method == "Email" and not fake.sent
    fake.fail_next(
        f"/api/v2/{fake.administration}/sales_invoices/send_reminders",
        Fault(502, carry_out=True, drop=True),
    )
    lost = connector.email_invoice(invoices["2026-1003"], "cd" * 16)
    assert lost.status is DeliveryStatus.UNCONFIRMED
    assert len(fake.reminders_sent) == 2, "done once, not asked again"


def test_moneybird_can_send_the_invoice_again_instead(
    fake: FakeMoneybird, seeded: dict[str, dict[str, object]], tmp_path: Path
) -> None:
    harness = connect_to_fake(fake, tmp_path, platform_mail="invoice")
    try:
        invoices = {i.number: i for i in harness.connector.read_snapshot().invoices}
        sent = harness.connector.email_invoice(invoices["2026-1001"], "ab" * 16)
        assert sent.status is DeliveryStatus.SENT
        assert [s.invoice_id for s in fake.sent] == [str(seeded["a1"]["id"])]
        assert not fake.reminders_sent
    finally:
        harness.store.close()


def test_moneybirds_own_automatic_reminders_are_seen(moneybird: MoneybirdHarness) -> None:
    assert moneybird.connector.platform_reminders() == []
    moneybird.fake.enable_automatic_reminders()
    (said,) = moneybird.connector.platform_reminders()
    assert "Moneybird" in said and "workflow" in said


def test_webhooks_are_subscribed_once_their_secret_kept_and_signatures_checked(
    moneybird: MoneybirdHarness, seeded: dict[str, dict[str, object]]
) -> None:
    fake, connector = moneybird.fake, moneybird.connector
    url = "https://kindly.example/webhooks/moneybird"
    secret = connector.subscribe(url)
    assert secret
    assert connector.subscribe(url) is None, "one subscription however often"
    assert len(fake.webhooks) == 1
    body, headers = fake.signed_webhook(
        fake.administration, str(seeded["a1"]["id"]), "sales_invoice_updated"
    )
    assert connector.verify_webhook(body, headers, secret)
    # Kindly keeps one secret per administration: the body says which.
    keyring = json.dumps({fake.administration: secret, "1": "other"})
    assert connector.verify_webhook(body, headers, keyring)
    assert connector.webhook_records(body) == [("SalesInvoice", str(seeded["a1"]["id"]))]
    # The same push again, even under another Idempotency-Key, is the same event.
    replayed = {**headers, "Idempotency-Key": "another"}
    assert connector.webhook_event_ids(body, replayed) == connector.webhook_event_ids(body, headers)
    # Replayed six minutes later: refused.
    fake.clock += timedelta(minutes=6)
    assert not connector.verify_webhook(body, headers, secret)
    assert connector.unsubscribe(url) == 1 and fake.webhooks == {}


def test_an_invoice_that_cannot_be_read_keeps_its_copy_and_is_asked_for_again(
    moneybird: MoneybirdHarness, seeded: dict[str, dict[str, object]]
) -> None:
    fake, connector = moneybird.fake, moneybird.connector
    first = connector.sync(None, {})
    a1 = str(seeded["a1"]["id"])
    before = first.snapshot.invoices_by_id[a1]
    # An edit Kindly cannot read (a due date before the invoice date): the copy stays.
    fake.update_invoice(a1, due_date="2026-08-01")
    odd = connector.sync(first.snapshot, first.bookmarks)
    assert odd.snapshot.invoices_by_id[a1] == before
    assert any(a1 in warning for warning in odd.warnings)
    # Put right in Moneybird: the next sync fetches it again although its version did not
    # move since the odd one.
    fake.update_invoice(a1, due_date="2026-10-15")
    fixed = connector.sync(odd.snapshot, odd.bookmarks)
    assert fixed.snapshot.invoices_by_id[a1].due_date == date(2026, 10, 15)


def test_a_contact_changed_without_its_invoices_keeps_its_language(
    moneybird: MoneybirdHarness, seeded: dict[str, dict[str, object]]
) -> None:
    fake, connector = moneybird.fake, moneybird.connector
    first = connector.sync(None, {})
    karl = str(seeded["karl"]["id"])
    assert first.snapshot.customers_by_id[karl].language == "de"
    fake.update_contact(karl, phone="+49 30 1234567")
    later = connector.sync(first.snapshot, first.bookmarks)
    assert later.snapshot.customers_by_id[karl].language == "de"
    # Archived in Moneybird while it still owes: still a client Kindly knows.
    fake.update_contact(karl, archived=True)
    archived = connector.sync(later.snapshot, later.bookmarks)
    assert karl in archived.snapshot.customers_by_id


def test_calls_keep_within_moneybirds_window_as_its_headers_say(
    moneybird: MoneybirdHarness, seeded: dict[str, dict[str, object]]
) -> None:
    """A window of 6 calls (Moneybird's is 150 in five minutes): when RateLimit-Remaining
    says none is left, Kindly waits until RateLimit-Reset and never meets a 429."""
    from integrations.bookkeeping.moneybird import MoneybirdBudget
    from tests.contract.harness import FakeTime

    fake = moneybird.fake
    fake.rate_limit = 6
    pace = FakeTime()
    refused: list[int] = []
    answer = fake._rate_answer

    def counted(*args: object) -> object:
        found = answer(*args)  # type: ignore[arg-type]
        if found[0] is not None:
            refused.append(1)
        return found

    def wait(seconds: float) -> None:
        pace.sleep(seconds)
        fake.tick(seconds=seconds)

    moneybird.connector.http.budget = MoneybirdBudget(
        clock=pace.monotonic, sleep=wait, wall_clock=lambda: fake.clock.timestamp()
    )
    setattr(fake, "_rate_answer", counted)  # noqa: B010
    invoice = str(seeded["a1"]["id"])
    for _ in range(20):
        assert len(moneybird.connector.read_invoices([invoice])) == 1
    assert refused == [], "no call met a 429"
    # 20 calls at 6 a window: three waits for the window to reset, none longer than one.
    assert len(pace.sleeps) == 3 and all(0 < s <= 300 for s in pace.sleeps)


def test_the_administrations_of_one_token_share_one_budget(
    fake: FakeMoneybird, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    from integrations.bookkeeping.moneybird import MoneybirdBudget
    from integrations.bookkeeping.oauth_platform import Tenant
    from integrations.workspace import Workspace
    from plugin.config.settings import load_settings
    from plugin.state.store import Store
    from tests.test_moneybird_cli import write_config

    monkeypatch.setenv("KINDLY_SECRET_KEY", Fernet.generate_key().decode())
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    try:
        workspace = Workspace(
            load_settings(write_config(tmp_path, fake)), store, lambda: fake.clock
        )
        MoneybirdConnector.token_vault(workspace).save(fresh_token(fake))
        tenants = [Tenant(book_id, book.name) for book_id, book in fake.administrations.items()]
        MoneybirdConnector._keep(workspace, tenants, None)
        first, second = MoneybirdConnector.open(workspace)
        assert isinstance(first.http.budget, MoneybirdBudget)
        assert first.http.budget is second.http.budget
    finally:
        store.close()


def test_on_workers_the_limit_is_counted_per_token_not_for_every_workspace(
    fake: FakeMoneybird, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker counts Moneybird's 150 calls in five minutes per connection: the
    administrations of one token share a count, another workspace's token has its own
    (a thousand workspaces on Moneybird are not squeezed into one app-wide budget)."""
    from cryptography.fernet import Fernet

    from integrations.bookkeeping.oauth_platform import Tenant
    from integrations.workspace import Workspace
    from plugin.config.settings import load_settings
    from plugin.state.store import Store
    from tests.test_moneybird_cli import write_config

    monkeypatch.setenv("KINDLY_SECRET_KEY", Fernet.generate_key().decode())
    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    keys = []
    for name in ("alpha", "beta"):
        store = Store.open(url, name)
        try:
            workspace = Workspace(
                load_settings(write_config(tmp_path, fake)), store, lambda: fake.clock
            )
            MoneybirdConnector.token_vault(workspace).save(fresh_token(fake))
            tenants = [Tenant(i, book.name) for i, book in fake.administrations.items()]
            MoneybirdConnector._keep(workspace, tenants, None)
            first, second = MoneybirdConnector.open(workspace)
            assert first.limit_rules() == second.limit_rules()
            ((key, calls, seconds),) = first.limit_rules()
            assert (calls, seconds) == (150, 300) and ":token:" in key
            keys.append(key)
        finally:
            store.close()
    assert keys[0] != keys[1]
