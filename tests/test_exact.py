"""The Exact Online connector against a fake Exact Online on loopback: the bookkeeping and
HTTP contracts, then mapping, the sync endpoints and the receivables list, ten-minute
tokens renewed sparingly, notes on the account, and the webhook's HashCode."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from integrations.bookkeeping.exact import ExactOnlineConnector, ExactOnlineSettings
from integrations.oauth import Token
from plugin.core.model import InvoiceStatus, Note
from plugin.core.money import Money
from plugin.errors import KindlyError
from tests.contract import (
    BookkeepingHarness,
    HttpHarness,
    bookkeeping_contract,
    harness_factory,
    http_contract,
)
from tests.exact_harness import ExactHarness, connect_to_fake, seed_small_division
from tests.fakes.exact import FakeExactOnline, Fault, odata_date

# -- the contracts ----------------------------------------------------------------------------


def exact_body(content: dict[str, object], key: str) -> bytes:
    """A webhook as Exact sends it: ``HashCode`` is the upper-case hex HMAC-SHA256 of the
    ``Content`` object's text as sent."""
    text = json.dumps(content, separators=(",", ":"))
    code = hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest().upper()
    return f'{{"Content":{text},"HashCode":"{code}"}}'.encode()


def _secrets(harness: ExactHarness) -> list[str]:
    token = harness.vault.load()
    assert token is not None
    return [token.access_token, token.refresh_token, harness.fake.client_secret]


@harness_factory(
    ExactOnlineConnector,
    lacks={
        "idempotent notes": "Exact Online takes no idempotency key: the run keeps a repeat "
        "out by writing with write_notes(check=...), which looks on the account first",
        "signature header": "Exact Online signs inside the body (HashCode over Content): "
        "test_the_hash_code_covers_the_content_as_it_arrived checks it",
        "several events a request": "Exact Online's webhook names one record a request",
    },
)
def exact_harness(folder: Path) -> Iterator[BookkeepingHarness]:
    """Exact with the small division: three accounts, five invoices (four open)."""
    fake = FakeExactOnline()
    fake.start()
    seed_small_division(fake)
    fake.tick(minutes=5)
    exact = connect_to_fake(fake, folder)

    def copies(note_id: str) -> int:
        marker = f"[kindly {note_id.removeprefix('kindly-')} "
        return sum(marker in str(n.get("Notes")) for n in fake.notes.values())

    def webhook_body(own: Sequence[tuple[str, str]], foreign: Sequence[tuple[str, str]]) -> bytes:
        # Exact sends one event a request: the first of this division's, else another's.
        kind, key, division = (
            (*own[0], fake.division) if own else (*foreign[0], 7654321) if foreign else ("", "", 0)
        )
        content = {
            "Topic": kind, "ClientId": fake.client_id, "Division": division, "Action": "Update",
            "Key": key, "ExactOnlineEndpoint": f"{fake.url}/api/v1/{division}/x",
            "EventCreatedOn": "2026-11-22T09:00:00",
        }  # fmt: skip
        return exact_body(content, "contract-webhook-key-0123456789")

    try:
        yield BookkeepingHarness(
            connector=exact.connector,
            source_name=fake.division_name,
            secrets=lambda: _secrets(exact),
            copies=copies,
            change_invoice=lambda invoice_id: fake.update_invoice(
                invoice_id, PaymentReference="CHANGED"
            ),
            delete_invoice=lambda invoice_id: fake.delete_invoice(invoice_id),
            calls=fake.api_calls,
            served=lambda: sum(fake.served),
            # Accounts, invoices and deletions from their bookmarks, and what is open.
            unchanged_sync_calls=4,
            webhook_body=webhook_body,
        )
    finally:
        exact.store.close()
        fake.stop()


@harness_factory(ExactOnlineConnector)
def exact_http_harness(folder: Path) -> Iterator[HttpHarness]:
    fake = FakeExactOnline()
    fake.start()
    account = fake.add_account("Paging Account")
    exact = connect_to_fake(fake, folder)
    path = f"/api/v1/{fake.division}/sync/SalesInvoice/SalesInvoices"

    def seed(count: int) -> None:
        for n in range(count):
            fake.add_invoice(
                account, 50000 + n, "10.00", issued=date(2026, 6, 1), due=date(2026, 7, 1)
            )
        # Seeding moved the fake's clock past the token's ten minutes: a fresh grant.
        exact.vault.save(_fresh(fake))

    def fail(status: int, headers: dict[str, str], times: int) -> None:
        body = {"error": {"code": "", "message": {"lang": "", "value": "injected"}}}
        fake.fail_next(path, *[Fault(status, headers, body)] * times)

    def point_at(url: str) -> None:
        exact.connector.settings = replace(exact.connector.settings, api_url=url)

    try:
        yield HttpHarness(
            connector=exact.connector,
            time=exact.time,
            seed=seed,
            fail_list_call=fail,
            revoke_access=fake.expire_access_tokens,
            refreshes=lambda: fake.refreshes,
            list_calls=lambda: fake.calls[f"GET {path}"],
            point_at=point_at,
            secrets=lambda: _secrets(exact),
            page_size=1000,
            read=lambda: len(
                exact.connector._since(
                    "sync/SalesInvoice/SalesInvoices", "InvoiceID,Timestamp", None
                )
            ),
        )
    finally:
        exact.store.close()
        fake.stop()


def _fresh(fake: FakeExactOnline) -> Token:
    return Token.from_response(fake.issue_tokens(), fake.clock)


TestExactContract = bookkeeping_contract(exact_harness)
TestExactHttp = http_contract(exact_http_harness)

# -- Exact's own --------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeExactOnline]:
    server = FakeExactOnline()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def seeded(fake: FakeExactOnline) -> dict[str, dict[str, object]]:
    made = seed_small_division(fake)
    fake.tick(minutes=5)
    return made


@pytest.fixture
def exact(fake: FakeExactOnline, seeded: object, tmp_path: Path) -> Iterator[ExactHarness]:
    harness = connect_to_fake(fake, tmp_path)
    yield harness
    harness.store.close()


def test_a_sync_maps_exact_records_onto_the_model(
    exact: ExactHarness, seeded: dict[str, dict[str, object]]
) -> None:
    snapshot = exact.connector.read_snapshot()
    customers = snapshot.customers_by_id
    ada = customers[str(seeded["ada"]["ID"])]
    assert (ada.name, ada.language, ada.country) == ("Bakkerij Ada", "nl", "NL")
    assert ada.emails == ("ada@bakkerij.example",) and ada.phones == ("+31 20 555 0101",)
    assert ada.address == ("Prinsengracht 263", "1016 GV AMSTERDAM")
    assert customers[str(seeded["karl"]["ID"])].language == "de"
    invoices = {i.number: i for i in snapshot.invoices}
    assert invoices["1001"].amount_due == Money.of("1210.00", "EUR")
    assert invoices["1001"].status is InvoiceStatus.OPEN
    # What is open comes from the receivables list: 1002 paid in part, 1005 paid.
    assert invoices["1002"].amount_due == Money.of("300.00", "EUR")
    assert invoices["1005"].status is InvoiceStatus.PAID
    (credit,) = snapshot.credit_notes
    assert (credit.number, credit.total) == ("1006", Money.of("20.00", "EUR"))


def test_a_payment_changes_no_invoice_in_exact_and_the_next_sync_sees_it(
    exact: ExactHarness, seeded: dict[str, dict[str, object]]
) -> None:
    first = exact.connector.sync(None, {})
    exact.fake.pay(seeded["a1"], "1210.00")
    calls = exact.fake.api_calls()
    later = exact.connector.sync(first.snapshot, first.bookmarks)
    assert exact.fake.api_calls() - calls == 4
    paid = {i.number: i for i in later.snapshot.invoices}["1001"]
    assert paid.status is InvoiceStatus.PAID
    # And right before sending, the fresh re-read sees it too.
    (fresh,) = exact.connector.read_invoices([str(seeded["a1"]["InvoiceID"])])
    assert fresh.status is InvoiceStatus.PAID


def test_ten_minute_tokens_are_renewed_in_their_last_half_minute_only(
    exact: ExactHarness,
) -> None:
    refreshes = exact.fake.refreshes
    exact.connector.read_snapshot()
    exact.fake.clock += timedelta(minutes=9)
    exact.connector.read_snapshot()
    assert exact.fake.refreshes == refreshes, "nine minutes in: the token still serves"
    exact.fake.clock += timedelta(seconds=40)
    exact.connector.read_snapshot()
    assert exact.fake.refreshes == refreshes + 1
    assert ExactOnlineConnector.refresh_margin == timedelta(seconds=30)


def test_the_days_allowance_is_read_from_exacts_headers(exact: ExactHarness) -> None:
    exact.fake.day_remaining = 1234
    exact.connector.read_snapshot()
    allowance = exact.connector.allowance()
    assert allowance is not None and allowance["day"] < 1234 and allowance["minute"] < 60


def test_a_note_goes_on_the_account_naming_its_invoices(
    exact: ExactHarness, seeded: dict[str, dict[str, object]]
) -> None:
    snapshot = exact.connector.read_snapshot()
    invoices = {i.number: i for i in snapshot.invoices}
    note = Note(
        id="kindly-" + "cd" * 16, created_at=exact.fake.clock,
        text="Kindly sent the first reminder by e-mail.", customer_id=invoices["1001"].customer_id,
        invoice_ids=(invoices["1001"].id, invoices["1002"].id), reminder_key="cd" * 16,
        stage="first", channel="email",
    )  # fmt: skip
    assert exact.connector.write_notes([note]) == {note.id: None}
    (written,) = exact.fake.notes.values()
    assert written["Subject"] == "Kindly: 1001, 1002"
    assert str(written["Account"]) == str(seeded["ada"]["ID"])
    (back,) = [n for n in exact.connector.read_notes() if n.id == note.id]
    assert back.invoice_ids == note.invoice_ids
    # In doubt after a crash: looked for on the account first, not written twice.
    assert exact.connector.write_notes([note], check={note.id}) == {note.id: None}
    assert len(exact.fake.notes) == 1


def test_the_hash_code_covers_the_content_as_it_arrived(exact: ExactHarness) -> None:
    key = "webhook-secret"
    content = {
        "Topic": "SalesInvoices", "ClientId": "x", "Division": exact.fake.division,
        "Action": "Update", "Key": "11111111-2222-3333-4444-555555555555",
        "ExactOnlineEndpoint": "https://x/api", "EventCreatedOn": "2026-11-22T09:00:00",
    }  # fmt: skip
    body = exact_body(content, key)
    connector = exact.connector
    assert connector.verify_webhook(body, {}, key)
    assert connector.webhook_records(body) == [
        ("SalesInvoices", "11111111-2222-3333-4444-555555555555")
    ]
    # The same content with other spacing is other text: its HashCode no longer matches.
    respaced = body.replace(b'"Topic":"SalesInvoices"', b'"Topic": "SalesInvoices"')
    assert not connector.verify_webhook(respaced, {}, key)
    assert not connector.verify_webhook(body, {}, "another-secret")
    assert not connector.verify_webhook(b"not json", {}, key)
    other = exact_body({**content, "Division": 7654321}, key)
    assert connector.webhook_records(other) == []


def test_the_site_gives_the_addresses() -> None:
    settings = ExactOnlineSettings(client_id="x", site="be")
    assert settings.authorize_url == "https://start.exactonline.be/api/oauth2/auth"
    assert settings.api_url == "https://start.exactonline.be/api/v1"
    assert ExactOnlineSettings(client_id="x").token_url.startswith("https://start.exactonline.nl")


def test_classifications_are_a_clients_groups_and_kindly_writes_them_back(
    exact: ExactHarness, seeded: dict[str, dict[str, object]]
) -> None:
    fake, connector = exact.fake, exact.connector
    firm = fake.add_classification("Reminders: firm", category="Kindly", slot=3)
    gentle = fake.add_classification("Reminders: gentle", category="Kindly", slot=3)
    dutch = fake.add_classification("Language: nl", category="Taal", slot=5)
    ada, karl = str(seeded["ada"]["ID"]), str(seeded["karl"]["ID"])
    fake.classify(ada, firm)
    fake.classify(ada, dutch)
    first = connector.sync(None, {})
    assert first.snapshot.customers_by_id[ada].tags == {"Reminders: firm", "Language: nl"}
    assert first.snapshot.customers_by_id[karl].tags == frozenset()
    assert connector.group_settings()["Reminders: firm"].tone == "firm"
    # Kindly's value written to Exact: the slot of the classification's category, and a
    # group being left in another slot is cleared.
    connector.put_in_group(ada, "Reminders: gentle", leaving=["Reminders: firm", "Language: nl"])
    account = fake.accounts[ada]
    assert (account["Classification3"], account["Classification5"]) == (gentle["ID"], None)
    later = connector.sync(first.snapshot, first.bookmarks)
    assert later.snapshot.customers_by_id[ada].tags == {"Reminders: gentle"}
    # Asked for again: nothing to change, so no PUT.
    puts = sum(n for call, n in fake.calls.items() if call.startswith("PUT "))
    connector.put_in_group(ada, "Reminders: gentle")
    assert sum(n for call, n in fake.calls.items() if call.startswith("PUT ")) == puts
    # A classification Exact does not have is not made up: the message says where to make it.
    with pytest.raises(KindlyError, match="no account classification 'Reminders: off'") as caught:
        connector.put_in_group(karl, "Reminders: off")
    assert "Classifications" in (caught.value.hint or "")


def test_a_division_without_classifications_costs_no_call_for_them(exact: ExactHarness) -> None:
    exact.connector.sync(None, {})
    assert not any("AccountClassifications" in call for call in exact.fake.calls)


def test_the_invoice_pdf_is_the_one_exact_printed(
    exact: ExactHarness, seeded: dict[str, dict[str, object]]
) -> None:
    invoices = {i.number: i for i in exact.connector.read_snapshot().invoices}
    calls = exact.fake.api_calls()
    pdf = exact.connector.invoice_pdf(invoices["1001"])
    assert pdf is not None and pdf.startswith(b"%PDF") and b"invoice 1001" in pdf
    assert exact.fake.api_calls() - calls == 2, "the document and its attachments; then the file"
    # An attachment address on another host never gets the token.
    (attachment,) = [
        a
        for a in exact.fake.book().attachments.values()
        if b"1003" in exact.fake.book().files[a["ID"]]
    ]
    attachment["Url"] = "https://elsewhere.example/docs/SysAttachment.aspx?ID=x&_Division_=1"
    assert exact.connector.invoice_pdf(invoices["1003"]) is None


def test_exact_e_mails_a_processed_invoice_and_says_when_it_could_not(
    exact: ExactHarness, seeded: dict[str, dict[str, object]]
) -> None:
    from plugin.core.vocabulary import DeliveryStatus

    connector = exact.connector
    assert connector.has_mailer and not connector.mailer_idempotent
    invoices = {i.number: i for i in connector.read_snapshot().invoices}
    outcome = connector.email_invoice(invoices["1001"], "ab" * 16)
    assert outcome.status is DeliveryStatus.SENT
    assert exact.fake.book().mailed == [(seeded["a1"]["InvoiceID"], "ada@bakkerij.example")]
    # No address at Exact: a 201 all the same, with EmailCreationError: it failed for good.
    exact.fake.update_account(str(seeded["karl"]["ID"]), Email="")
    failed = connector.email_invoice(invoices["1003"], "cd" * 16)
    assert failed.status is DeliveryStatus.PERMANENT and "no e-mail address" in failed.detail
    # An answer lost after Exact did it: in doubt, not asked for again.
    exact.fake.fail_next(
        f"/api/v1/{exact.fake.division}/salesinvoice/PrintedSalesInvoices",
        Fault(502, carry_out=True, drop=True),
    )
    lost = connector.email_invoice(invoices["1002"], "ef" * 16)
    assert lost.status is DeliveryStatus.UNCONFIRMED
    assert len(exact.fake.book().mailed) == 2


def test_an_invoice_entered_but_not_processed_is_not_reminded(
    exact: ExactHarness, seeded: dict[str, dict[str, object]]
) -> None:
    entered = exact.fake.add_invoice(
        seeded["karl"], 1010, "75.00", issued=date(2026, 10, 1), due=date(2026, 10, 15),
        open_amount="0", Status=20, StatusDescription="Open",
    )  # fmt: skip
    invoices = {i.id: i for i in exact.connector.read_snapshot().invoices}
    assert invoices[str(entered["InvoiceID"])].status is InvoiceStatus.DRAFT


def test_webhook_subscriptions_are_made_once_and_ended(
    exact: ExactHarness,
) -> None:
    url = "https://kindly.example/webhooks/exactonline"
    connector = exact.connector
    assert connector.subscribe(url) == ["Accounts", "SalesInvoices", "FinancialTransactions"]
    assert connector.subscribe(url) == [], "a second connect makes no second subscription"
    book = exact.fake.book()
    assert sorted(s["Topic"] for s in book.subscriptions.values()) == [
        "Accounts", "FinancialTransactions", "SalesInvoices",
    ]  # fmt: skip
    assert connector.unsubscribe(url) == 3
    assert book.subscriptions == {}


def test_a_moved_division_or_two_months_apart_reads_everything_again(
    exact: ExactHarness, seeded: dict[str, dict[str, object]]
) -> None:
    fake, connector = exact.fake, exact.connector
    first = connector.sync(None, {})
    full = fake.api_calls()
    # The next day: one call more, to see whether Exact moved the division.
    fake.clock += timedelta(days=1)
    calls = fake.api_calls()
    nothing = connector.sync(first.snapshot, first.bookmarks)
    assert fake.api_calls() - calls == 4 + 1
    # Moved: every Timestamp starts again, lower than the bookmarks; an invoice changed
    # after it would not show from them, so the sync reads it all.
    fake.clock += timedelta(days=1)
    fake.move_division()
    fake.update_invoice(str(seeded["k1"]["InvoiceID"]), DueDate=odata_date(date(2026, 11, 30)))
    calls = fake.api_calls()
    moved = connector.sync(nothing.snapshot, nothing.bookmarks)
    assert fake.api_calls() - calls == 1 + full
    due = {i.number: i.due_date for i in moved.snapshot.invoices}["1003"]
    assert due == date(2026, 11, 30)
    # The day after, the move is older than the last sync: incremental again.
    fake.clock += timedelta(days=1)
    calls = fake.api_calls()
    after = connector.sync(moved.snapshot, moved.bookmarks)
    assert fake.api_calls() - calls == 4 + 1
    # Deleted, then no sync for two months: Exact no longer lists the deletion, so the
    # sync reads everything and the invoice is gone all the same.
    fake.delete_invoice(str(seeded["c1"]["InvoiceID"]))
    fake.clock += timedelta(days=61)
    exact.vault.save(_fresh(fake))  # (the user connected again: refresh tokens last 30 days)
    later = connector.sync(after.snapshot, after.bookmarks)
    assert "1004" not in {i.number for i in later.snapshot.invoices}
