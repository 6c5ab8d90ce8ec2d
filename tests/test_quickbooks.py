"""The QuickBooks Online connector against a fake QuickBooks on loopback: the bookkeeping
and HTTP contracts, then mapping, change data capture, notes as attachables, the company
from the sign-in's redirect, and the webhooks' two bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from integrations.bookkeeping.quickbooks import QuickBooksConnector
from integrations.oauth import Token
from plugin.core.model import InvoiceStatus
from plugin.core.money import Money
from tests.contract import (
    BookkeepingHarness,
    HttpHarness,
    bookkeeping_contract,
    harness_factory,
    http_contract,
)
from tests.fakes.quickbooks import FakeQuickBooks, Fault
from tests.quickbooks_harness import QuickBooksHarness, connect_to_fake, seed_small_company

# -- the contracts ----------------------------------------------------------------------------


def intuit_signature(body: bytes, key: str) -> str:
    """``intuit-signature``: base64(HMAC-SHA256(raw body, verifier token))."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def _secrets(harness: QuickBooksHarness) -> list[str]:
    token = harness.vault.load()
    assert token is not None
    return [token.access_token, token.refresh_token, harness.fake.client_secret]


def legacy_body(
    realm: str, own: Sequence[tuple[str, str]], other: str, foreign: Sequence[tuple[str, str]]
) -> bytes:
    def notification(realm_id: str, events: Sequence[tuple[str, str]]) -> dict[str, object]:
        return {
            "realmId": realm_id,
            "dataChangeEvent": {
                "entities": [
                    {"name": kind, "id": record, "operation": "Update",
                     "lastUpdated": "2026-11-22T09:00:00.000Z"}
                    for kind, record in events
                ]
            },
        }  # fmt: skip

    notifications = [notification(realm, own)] if own else []
    if foreign:
        notifications.append(notification(other, foreign))
    return json.dumps({"eventNotifications": notifications}).encode()


@harness_factory(QuickBooksConnector)
def quickbooks_harness(folder: Path) -> Iterator[BookkeepingHarness]:
    """QuickBooks with the small company: three customers, five invoices (four open)."""
    fake = FakeQuickBooks()
    fake.start()
    qbo = connect_to_fake(fake, folder)
    seed_small_company(fake)
    # Kindly syncs a while after the records were entered.
    fake.tick(minutes=5)

    def copies(note_id: str) -> int:
        marker = f"[kindly {note_id.removeprefix('kindly-')} "
        return sum(marker in str(a.get("Note")) for a in fake.attachables.values())

    try:
        yield BookkeepingHarness(
            connector=qbo.connector,
            source_name=fake.company_name,
            secrets=lambda: _secrets(qbo),
            copies=copies,
            change_invoice=lambda invoice_id: fake.update_invoice(invoice_id, Balance=0),
            delete_invoice=lambda invoice_id: fake.delete("Invoice", invoice_id),
            calls=fake.api_calls,
            served=lambda: sum(fake.served),
            # One change-data-capture call brings every entity's changes.
            unchanged_sync_calls=1,
            signature_header="intuit-signature",
            sign=intuit_signature,
            webhook_body=lambda own, foreign: legacy_body(
                fake.realm_id, own, "1234567890", foreign
            ),
        )
    finally:
        qbo.store.close()
        fake.stop()


@harness_factory(QuickBooksConnector)
def quickbooks_http_harness(folder: Path) -> Iterator[HttpHarness]:
    fake = FakeQuickBooks()
    fake.start()
    qbo = connect_to_fake(fake, folder)
    customer = fake.add_customer("Paging Customer")
    query_path = f"/v3/company/{fake.realm_id}/query"

    def seed(count: int) -> None:
        for n in range(count):
            fake.add_invoice(
                customer, f"P-{n:05d}", "10.00", issued=date(2026, 6, 1), due=date(2026, 7, 1)
            )

    def fail(status: int, headers: dict[str, str], times: int) -> None:
        body = {"Fault": {"Error": [{"Message": "injected", "code": "0"}], "type": "SERVICE"}}
        fake.fail_next(query_path, *[Fault(status, headers, body)] * times)

    def point_at(url: str) -> None:
        qbo.connector.settings = replace(qbo.connector.settings, api_url=url)

    try:
        yield HttpHarness(
            connector=qbo.connector,
            time=qbo.time,
            seed=seed,
            fail_list_call=fail,
            revoke_access=fake.expire_access_tokens,
            refreshes=lambda: fake.refreshes,
            list_calls=lambda: fake.calls[f"GET {query_path}"],
            point_at=point_at,
            secrets=lambda: _secrets(qbo),
            page_size=1000,
            # The invoices, as a sync reads them: a page of 1,000 a query.
            read=lambda: len(qbo.connector._all("Invoice")),
        )
    finally:
        qbo.store.close()
        fake.stop()


TestQuickBooksContract = bookkeeping_contract(quickbooks_harness)
TestQuickBooksHttp = http_contract(quickbooks_http_harness)

# -- QuickBooks' own ----------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeQuickBooks]:
    server = FakeQuickBooks()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def qbo(fake: FakeQuickBooks, tmp_path: Path) -> Iterator[QuickBooksHarness]:
    harness = connect_to_fake(fake, tmp_path)
    yield harness
    harness.store.close()


def test_a_sync_maps_quickbooks_records_onto_the_model(qbo: QuickBooksHarness) -> None:
    seeded = seed_small_company(qbo.fake)
    snapshot = qbo.connector.read_snapshot()
    customers = snapshot.customers_by_id
    ada = customers[seeded["ada"]["Id"]]
    assert (ada.name, ada.contact_name, ada.given_name, ada.family_name) == (
        "Ada's Bakery LLC",
        "Ada Lovelace",
        "Ada",
        "Lovelace",
    )
    assert (ada.country, ada.language) == ("US", "en")
    # QuickBooks may hold several addresses in one field, separated by commas.
    assert ada.emails == ("ada@bakery.example", "books@bakery.example")
    assert ada.phones == ("(650) 555-3311",)
    # Laid out as the US Postal Service expects.
    assert ada.address == ("4581 Finch St.", "BAYSHORE, CA 94326")
    assert ada.tags == frozenset({"Reminders: firm"})
    bo = customers[seeded["bo"]["Id"]]
    assert bo.country == "GB" and bo.address[-1] == "SE10 9NF"
    invoices = snapshot.invoices_by_id
    a1 = invoices[seeded["a1"]["Id"]]
    assert (a1.number, a1.issue_date, a1.due_date, a1.status) == (
        "1001",
        date(2026, 9, 1),
        date(2026, 10, 1),
        InvoiceStatus.OPEN,
    )
    assert a1.total == Money.of("1210.00", "USD")
    assert invoices[seeded["a2"]["Id"]].amount_due == Money.of("300.00", "USD")
    assert invoices[seeded["b1"]["Id"]].total == Money.of("950.00", "GBP")
    # The credit memo applied in a payment settles that much of the invoice, that day.
    c1 = invoices[seeded["c1"]["Id"]]
    assert c1.status is InvoiceStatus.OPEN and c1.amount_due == Money.of("50.00", "USD")
    assert invoices[seeded["void"]["Id"]].status is InvoiceStatus.VOIDED
    by_invoice = {p.invoice_id: p for p in snapshot.payments}
    assert by_invoice[seeded["a2"]["Id"]].amount == Money.of("200.00", "USD")
    assert by_invoice[c1.id].date == date(2026, 11, 6)
    assert by_invoice[c1.id].amount == Money.of("30.00", "USD")
    (memo,) = snapshot.credit_notes
    assert (memo.number, memo.total) == ("CM-1", Money.of("30.00", "USD"))


def test_after_the_first_sync_one_cdc_call_brings_the_changes(qbo: QuickBooksHarness) -> None:
    seeded = seed_small_company(qbo.fake)
    qbo.fake.tick(minutes=5)
    first = qbo.connector.sync(None, {})
    full_calls = qbo.fake.api_calls()
    assert full_calls == 4, "one query per entity for a small company"
    qbo.fake.tick(minutes=5)
    qbo.fake.add_payment(
        seeded["ada"], [(seeded["a1"], "1210.00")], on=date(2026, 11, 22), reference="WIRE"
    )
    qbo.fake.delete("Invoice", seeded["b1"]["Id"])
    qbo.fake.tick(minutes=5)
    later = qbo.connector.sync(first.snapshot, first.bookmarks)
    assert qbo.fake.api_calls() - full_calls == 1
    invoices = later.snapshot.invoices_by_id
    assert invoices[seeded["a1"]["Id"]].status is InvoiceStatus.PAID
    assert seeded["b1"]["Id"] not in invoices
    assert any(p.reference == "WIRE" for p in later.snapshot.payments)


def test_a_bookmark_older_than_change_data_capture_reads_everything(
    qbo: QuickBooksHarness,
) -> None:
    seed_small_company(qbo.fake)
    qbo.fake.tick(minutes=5)
    first = qbo.connector.sync(None, {})
    qbo.fake.clock += timedelta(days=31)
    calls = qbo.fake.api_calls()
    again = qbo.connector.sync(first.snapshot, first.bookmarks)
    assert qbo.fake.api_calls() - calls == 4, "a full read, not a CDC QuickBooks refuses"
    assert again.snapshot.invoices_by_id == first.snapshot.invoices_by_id


def test_a_note_is_one_attachable_on_each_invoice_and_the_customer(
    qbo: QuickBooksHarness,
) -> None:
    from plugin.core.model import Note

    seeded = seed_small_company(qbo.fake)
    snapshot = qbo.connector.read_snapshot()
    a1, a2 = (snapshot.invoices_by_id[seeded[k]["Id"]] for k in ("a1", "a2"))
    note = Note(
        id="kindly-" + "ab" * 16,
        created_at=qbo.fake.clock,
        text="Kindly sent the first reminder by e-mail.",
        customer_id=a1.customer_id,
        invoice_ids=(a1.id, a2.id),
        reminder_key="ab" * 16,
        stage="first",
        channel="email",
    )
    calls = qbo.fake.api_calls()
    assert qbo.connector.write_notes([note]) == {note.id: None}
    assert qbo.fake.api_calls() - calls == 1
    (attachable,) = qbo.fake.attachables.values()
    refs = {(r["EntityRef"]["type"], r["EntityRef"]["value"]) for r in attachable["AttachableRef"]}
    assert refs == {("Invoice", a1.id), ("Invoice", a2.id), ("Customer", a1.customer_id)}
    # The invoice's own PrivateNote, the bookkeeper's, is left alone.
    assert "Kindly" not in str(qbo.fake.invoices[a1.id].get("PrivateNote") or "")
    # Posted again (an answer lost): QuickBooks answers the same requestid once.
    assert qbo.connector.write_notes([note]) == {note.id: None}
    assert len(qbo.fake.attachables) == 1
    (back,) = [n for n in qbo.connector.read_notes() if n.id == note.id][:1]
    assert back.invoice_ids[0] in (a1.id, a2.id)


def test_the_company_comes_from_the_sign_ins_redirect(fake: FakeQuickBooks, tmp_path: Path) -> None:
    from integrations.http import HttpClient
    from integrations.oauth import with_granted

    tokens = Token.from_response(fake.issue_tokens(), fake.clock)
    settings = connect_to_fake(fake, tmp_path).connector.settings
    granted = with_granted(tokens, {"code": "x", "state": "y", "realmId": fake.realm_id})
    assert granted.granted == {"realmId": fake.realm_id}
    assert "realmId" not in granted.to_json(), "what the redirect said is not kept"
    (tenant,) = QuickBooksConnector.list_tenants(settings, HttpClient("QuickBooks"), granted)
    assert (tenant.tenant_id, tenant.name) == (fake.realm_id, fake.company_name)
    # A refresh token handed in on a server: the company is named in kindly.toml.
    named = replace(settings, tenants=(fake.realm_id,))
    (again,) = QuickBooksConnector.list_tenants(named, HttpClient("QuickBooks"), tokens)
    assert again.tenant_id == fake.realm_id
    from plugin.errors import ConfigError

    with pytest.raises(ConfigError, match="did not say which company"):
        QuickBooksConnector.list_tenants(settings, HttpClient("QuickBooks"), tokens)


def test_cloudevents_webhooks_name_their_own_companys_records(qbo: QuickBooksHarness) -> None:
    realm = qbo.fake.realm_id

    def event(event_id: str, kind: str, record: str, company: str) -> dict[str, object]:
        return {
            "specversion": "1.0",
            "id": event_id,
            "source": "intuit.test",
            "type": f"qbo.{kind}.updated.v1",
            "time": "2026-11-22T09:00:00Z",
            "intuitentityid": record,
            "intuitaccountid": company,
            "data": {},
        }

    body = json.dumps(
        [event("e-1", "invoice", "130", realm), event("e-2", "payment", "77", "999")]
    ).encode()
    assert qbo.connector.webhook_records(body) == [("Invoice", "130")]
    assert qbo.connector.webhook_event_ids(body) == ["e-1"]
    key = "verifier-token"
    headers = {"intuit-signature": intuit_signature(body, key)}
    assert qbo.connector.verify_webhook(body, headers, key)
    assert not qbo.connector.verify_webhook(body + b" ", headers, key)


def test_a_throttled_query_waits_and_carries_on(qbo: QuickBooksHarness) -> None:
    seed_small_company(qbo.fake)
    body = {"Fault": {"Error": [{"Message": "ThrottleExceeded", "code": "003001"}]}}
    # Told how long, and (as QuickBooks mostly answers) not told: it waits, then asks again.
    qbo.fake.fail_next(
        f"/v3/company/{qbo.fake.realm_id}/query",
        Fault(429, {"Retry-After": "60"}, body),
        Fault(429, {}, body),
    )
    snapshot = qbo.connector.read_snapshot()
    assert len(snapshot.invoices) == 5
    assert qbo.time.sleeps[0] == 60 and len(qbo.time.sleeps) == 2


def test_the_pay_link_is_asked_for_where_the_company_takes_online_payment(
    qbo: QuickBooksHarness,
) -> None:
    seeded = seed_small_company(qbo.fake)
    invoice = qbo.connector.read_snapshot().invoices_by_id[seeded["a1"]["Id"]]
    link = qbo.connector.online_invoice_url(invoice)
    assert link == f"https://connect.intuit.example/t/{qbo.fake.realm_id}/inv/{invoice.id}"
    qbo.fake.online_payments = False
    assert qbo.connector.online_invoice_url(invoice) is None


def test_notes_go_thirty_to_a_batch_and_one_refused_leaves_the_others(
    qbo: QuickBooksHarness,
) -> None:
    from plugin.core.model import Note

    seeded = seed_small_company(qbo.fake)
    invoice = qbo.connector.read_snapshot().invoices_by_id[seeded["a1"]["Id"]]

    def note(n: int, invoice_id: str = invoice.id) -> Note:
        key = f"{n:032x}"
        return Note(
            id=f"kindly-{key}", created_at=qbo.fake.clock, text="Kindly sent a reminder.",
            customer_id=invoice.customer_id, invoice_ids=(invoice_id,), reminder_key=key,
            stage="first", channel="email",
        )  # fmt: skip

    notes = [note(n) for n in range(31)] + [note(99, "999999")]  # no such invoice
    calls = qbo.fake.api_calls()
    results = qbo.connector.write_notes(notes)
    assert qbo.fake.api_calls() - calls == 2, "32 notes: a batch of 30 and one of 2"
    assert [n.id for n in notes if results[n.id] is not None] == [notes[-1].id]
    assert "QuickBooks:" in str(results[notes[-1].id])
    assert len(qbo.fake.attachables) == 31
    # The same batch again (its answer lost): QuickBooks answers the requestid once.
    again = qbo.connector.write_notes(notes[:30])
    assert set(again.values()) == {None} and len(qbo.fake.attachables) == 31


def test_a_customer_type_is_written_back_and_a_missing_one_is_not_made_up(
    qbo: QuickBooksHarness,
) -> None:
    from plugin.errors import KindlyError

    seeded = seed_small_company(qbo.fake)
    fake, connector = qbo.fake, qbo.connector
    gentle = fake.add_customer_type("Reminders: gentle")
    ada = str(seeded["ada"]["Id"])
    connector.put_in_group(ada, "Reminders: gentle", leaving=["Reminders: firm"])
    assert fake.customers[ada]["CustomerTypeRef"] == {"value": gentle["Id"], "name": gentle["Name"]}
    snapshot = connector.read_snapshot()
    assert snapshot.customers_by_id[ada].tags == {"Reminders: gentle"}
    # Right already: nothing is written.
    posts = fake.calls["POST /v3/company/" + fake.realm_id + "/customer"]
    connector.put_in_group(ada, "Reminders: gentle")
    assert fake.calls["POST /v3/company/" + fake.realm_id + "/customer"] == posts
    with pytest.raises(KindlyError, match="no customer type 'Reminders: off'") as caught:
        connector.put_in_group(ada, "Reminders: off")
    assert "Customer types" in (caught.value.hint or "")
    # A name with a quote is quoted in the query, not cut short.
    fake.add_customer_type("Kind: O'Brien's")
    connector.put_in_group(ada, "Kind: O'Brien's")
    assert fake.customers[ada]["CustomerTypeRef"]["name"] == "Kind: O'Brien's"
