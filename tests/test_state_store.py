"""Kindly's state store on real SQLite and, where one runs, real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from plugin.core.model import (
    Appointment,
    Attendee,
    CreditAllocation,
    CreditNote,
    Customer,
    CustomerKind,
    Invoice,
    LedgerSnapshot,
    Note,
    Payment,
    PromiseToPay,
)
from plugin.core.money import Money
from plugin.core.vocabulary import LogStatus
from plugin.errors import StoreError
from plugin.state.store import SCHEMA_REVISION, ReminderRecord, Store

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    yield opened
    opened.close()


def snapshot() -> LedgerSnapshot:
    oslo = timezone(timedelta(hours=1))
    return LedgerSnapshot(
        customers=(
            Customer(
                "C1",
                "Công ty TNHH Sen Vàng",
                contact_name="Nguyễn Thị Lan",
                emails=("a@x.example", "b@x.example"),
                language="vi",
                country="VN",
                timezone="Asia/Ho_Chi_Minh",
                tags=frozenset({"vip", "asia"}),
                address=("12 Nguyễn Huệ", "TP HCM"),
            ),
            Customer(
                "C2",
                "Müller & Söhne",
                language="de",
                country="DE",
                timezone="Europe/Berlin",
                kind=CustomerKind.CONSUMER,
            ),
        ),
        invoices=(
            Invoice(
                "I1",
                "NS-1",
                "C1",
                date(2026, 1, 1),
                date(2026, 1, 31),
                Money.of("150000000", "VND"),
                Money.of("50000000", "VND"),
                online_url="https://pay.example/1",
                reference="NS-1",
            ),
            Invoice(
                "I2",
                "NS-2",
                "C2",
                date(2026, 2, 1),
                date(2026, 2, 1),
                Money.of("19.99", "EUR"),
                Money.of("19.99", "EUR"),
                disputed=True,
            ),
        ),
        payments=(Payment("P1", "I1", date(2026, 2, 2), Money.of("100000000", "VND")),),
        credit_notes=(
            CreditNote(
                "N1",
                "CN-1",
                "C2",
                date(2026, 2, 3),
                Money.of("5.00", "EUR"),
                (CreditAllocation("I2", Money.of("2.50", "EUR"), date(2026, 2, 4)),),
            ),
        ),
        promises=(PromiseToPay("I2", date(2026, 3, 1), date(2026, 2, 20), note="called"),),
        appointments=(
            Appointment(
                "A1",
                "Review",
                datetime(2026, 3, 1, 10, tzinfo=oslo),
                datetime(2026, 3, 1, 11, tzinfo=oslo),
                attendees=(Attendee("Lan", "a@x.example", "+84 28 5555 0123"),),
                customer_id="C1",
            ),
        ),
        notes=(Note("kindly-1", AT, "sent", "C1", ("I1",), "k1", "first", "email"),),
    )


def test_a_new_database_is_migrated_to_the_newest_schema(store: Store, store_url: str) -> None:
    assert store.schema_revision() == SCHEMA_REVISION
    again = Store.open(store_url)
    assert again.schema_revision() == SCHEMA_REVISION
    again.close()


def test_snapshots_round_trip_exactly(store: Store) -> None:
    assert store.load_snapshot("ledger") is None
    original = snapshot()
    store.replace_snapshot("ledger", original, AT)
    loaded = store.load_snapshot("ledger")
    assert loaded is not None
    for kind in (
        "customers",
        "invoices",
        "payments",
        "credit_notes",
        "promises",
        "appointments",
        "notes",
    ):
        assert sorted(getattr(loaded, kind), key=repr) == sorted(
            getattr(original, kind), key=repr
        ), kind
    assert loaded.appointments[0].start.utcoffset() == timedelta(hours=1)
    assert loaded.invoices_by_id["I2"].total.amount == original.invoices[1].total.amount
    # Another source is kept apart.
    assert store.load_snapshot("xero:other") is None


def test_replacing_a_snapshot_removes_what_is_gone_and_is_all_or_nothing(store: Store) -> None:
    store.replace_snapshot("ledger", snapshot(), AT)
    smaller = LedgerSnapshot(customers=snapshot().customers[:1])
    store.replace_snapshot("ledger", smaller, AT)
    loaded = store.load_snapshot("ledger")
    assert loaded is not None
    assert [c.id for c in loaded.customers] == ["C1"]
    assert loaded.invoices == ()

    class Unstorable:
        id = "X"

    broken = LedgerSnapshot(customers=snapshot().customers, invoices=(Unstorable(),))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.replace_snapshot("ledger", broken, AT)
    kept = store.load_snapshot("ledger")
    assert kept is not None
    assert [c.id for c in kept.customers] == ["C1"]


def stored_rows(store: Store, source: str) -> dict[tuple[str, str], tuple[str, str]]:
    from plugin.state.tables import records

    query = sa.select(records.c.kind, records.c.record_id, records.c.data, records.c.synced_at)
    with store.engine.connect() as connection:
        return {
            (kind, record_id): (data, synced_at)
            for kind, record_id, data, synced_at in connection.execute(
                query.where(records.c.source == source)
            )
        }


def test_a_sync_writes_only_the_records_that_changed(store: Store) -> None:
    first = store.replace_snapshot("ledger", snapshot(), AT)
    assert (len(first.added), first.changed, first.removed) == (9, [], [])
    before = stored_rows(store, "ledger")
    later = AT + timedelta(hours=1)
    original = snapshot()
    changed = replace(
        original,
        # I1 is paid, I2 is gone, and a payment is new.
        invoices=(replace(original.invoices[0], amount_due=Money.of("0", "VND")),),
        payments=(*original.payments, Payment("P2", "I1", date(2026, 3, 1), Money.of("1", "VND"))),
    )
    changes = store.replace_snapshot("ledger", changed, later)
    assert changes.added == [("payments", "P2")]
    assert changes.changed == [("invoices", "I1")]
    assert changes.removed == [("invoices", "I2")]
    after = stored_rows(store, "ledger")
    # What did not change keeps the time it was first stored, and its very text.
    untouched = before.keys() - {("invoices", "I1"), ("invoices", "I2")}
    assert {key: after[key] for key in untouched} == {key: before[key] for key in untouched}
    assert after["invoices", "I1"][1] == after["payments", "P2"][1] == later.isoformat()
    assert store.load_snapshot("ledger") is not None
    again = store.replace_snapshot("ledger", changed, later + timedelta(hours=1))
    assert len(again) == 0
    assert stored_rows(store, "ledger") == after


def _sync_repeatedly(url: str, start: Any, seen: Any, which: int) -> None:
    store = Store.open(url)
    original = snapshot()
    start.wait()
    for round_number in range(50):
        # Two versions of the ledger, written in turn by two processes at once.
        invoices = original.invoices[: 1 + (round_number + which) % 2]
        store.replace_snapshot("ledger", LedgerSnapshot(invoices=invoices), AT)
    store.close()
    seen.put(which)


def test_two_syncs_of_one_source_at_once_each_write_a_whole_snapshot(store_url: str) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    Store.open(store_url).close()
    start, seen = context.Event(), context.Queue()
    workers = [
        context.Process(target=_sync_repeatedly, args=(store_url, start, seen, n))
        for n in (0, 1, 2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0, "a sync failed beside another"
    assert sorted(seen.get(timeout=5) for _ in workers) == [0, 1, 2]
    store = Store.open(store_url)
    loaded = store.load_snapshot("ledger")
    store.close()
    assert loaded is not None
    assert [i.id for i in loaded.invoices] in (["I1"], ["I1", "I2"])


def test_bookmarks_and_settings(store: Store) -> None:
    assert store.get_bookmark("xero:1", "invoices") is None
    store.set_bookmark("xero:1", "invoices", "2026-11-01T00:00:00Z", AT)
    store.set_bookmark("xero:1", "invoices", "2026-11-22T00:00:00Z", AT)
    assert store.get_bookmark("xero:1", "invoices") == "2026-11-22T00:00:00Z"
    store.set_setting("client:C_1", "tone", "firm", AT)
    store.set_setting("client:C%1", "tone", "neutral", AT)
    store.set_setting("client:C_1", "channels", ["email", "sms"], AT)
    assert store.get_setting("client:C_1", "channels") == ["email", "sms"]
    # "_" and "%" in a prefix match literally, not as LIKE wildcards.
    assert store.settings_in("client:C_") == {
        "client:C_1": {"tone": "firm", "channels": ["email", "sms"]}
    }
    store.delete_setting("client:C_1", "tone")
    assert store.settings_in("client:C_1") == {"client:C_1": {"channels": ["email", "sms"]}}


def record(key: str = "k1", **changes: object) -> ReminderRecord:
    base = {
        "key": key,
        "source": "ledger",
        "customer_id": "C1",
        "invoice_ids": ("I1", "I2"),
        "invoice_numbers": ("NS-1", "NS-2"),
        "stage": "second",
        "channel": "email",
        "recipient": "a@x.example",
        "amount": "€ 10,00",
        "currency": "EUR",
        "status": "sending",
        "planned_at": AT,
        "invoice_stages": {"I1": "second", "I2": "first"},
    }
    base.update(changes)
    return ReminderRecord(**base)  # type: ignore[arg-type]


def test_the_reminder_log(store: Store) -> None:
    assert store.record_intent(record()) is True
    assert store.record_intent(record()) is False, "a key is logged once"
    store.record_intent(record("k2", source="xero:1"))
    store.record_intent(record("k3"))
    sent_at = datetime(2026, 11, 22, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    store.mark_sent("k1", sent_at, "<m@x>", "outbox/k1.eml")
    store.mark_note_written("k1", AT)
    store.mark_failed("k3", "mailbox full")
    k1 = store.reminder("k1")
    assert k1 is not None
    assert (k1.status, k1.message_id, k1.detail) == ("sent", "<m@x>", "outbox/k1.eml")
    assert k1.sent_at == sent_at and k1.sent_at.tzinfo is not None
    assert k1.invoice_stages == {"I1": "second", "I2": "first"}
    assert k1.invoice_numbers == ("NS-1", "NS-2")
    assert k1.charges == {} and not k1.reminder_fee
    fee = {"reminder_fee": "38,00\xa0kr", "total": "5\xa0038,00\xa0kr"}
    store.record_intent(record("k4", charges=fee))
    k4 = store.reminder("k4")
    assert k4 is not None and k4.charges == fee and k4.reminder_fee
    assert [r.key for r in store.reminders("ledger")] == ["k1", "k3", "k4"]
    assert [r.key for r in store.reminders(statuses=(LogStatus.FAILED,))] == ["k3"]
    store.forget_intent("k1")  # only an intent still "sending" can be forgotten
    assert store.reminder("k1") is not None
    store.forget_intent("k2")
    assert store.reminder("k2") is None
    with pytest.raises(StoreError):
        store.mark_sent("nope", AT, None, "")
    with pytest.raises(ValueError, match="time zone"):
        store.record_intent(record("k4", planned_at=datetime(2026, 11, 22, 10)))


def test_two_handles_on_one_file_see_each_other(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    first, second = Store.open(url), Store.open(url)
    first.set_bookmark("ledger", "snapshot", "x", AT)
    assert second.get_bookmark("ledger", "snapshot") == "x"
    first.close()
    second.close()


def test_bad_urls_are_clear_errors_without_passwords() -> None:
    with pytest.raises(StoreError) as unknown:
        Store.open("nosuchdb://x")
    assert unknown.value.hint
    with pytest.raises(StoreError) as unreachable:
        Store.open("postgresql+psycopg://kindly:s3cret-pw@127.0.0.1:1/kindly")
    assert "s3cret-pw" not in str(unreachable.value)
    assert "***" in str(unreachable.value)


def test_repr_hides_the_password() -> None:
    store = Store(sa.create_engine("postgresql+psycopg://kindly:s3cret-pw@127.0.0.1/kindly"))
    assert "s3cret-pw" not in repr(store)


def test_a_new_sqlite_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    # It holds clients' data and (encrypted) connection tokens.
    path = tmp_path / "kindly.sqlite3"
    Store.open(f"sqlite:///{path}").close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_reminder_claiming_charges_without_a_fee_did_not_charge_one() -> None:
    """The log keeps the charges as written, the fee empty when none was added: only a
    written fee counts (it holds the next stage back 14 days, INKF §1-2)."""
    from datetime import UTC, datetime

    from plugin.core.vocabulary import LogStatus

    def record(fee: str) -> ReminderRecord:
        return ReminderRecord(
            key="k",
            source="s",
            customer_id="C1",
            invoice_ids=("I1",),
            invoice_numbers=("1",),
            stage="final",
            channel="email",
            recipient="a@b.example",
            amount="€ 1,00",
            currency="EUR",
            status=LogStatus.SENT,
            planned_at=datetime(2026, 11, 1, tzinfo=UTC),
            charges={"interest": "€ 0,10", "reminder_fee": fee, "total": "€ 1,10"},
        )

    assert not record("").reminder_fee
    assert record("kr 35,00").reminder_fee


def test_a_mutex_has_one_holder_among_every_session(store: Store, store_url: str) -> None:
    """While one holds the mutex, another session (another process's) cannot take it;
    once let go, it can: PostgreSQL's advisory lock, or the lock file beside SQLite's."""
    import fcntl
    import hashlib

    name = "fiken:requests"
    digest = hashlib.sha256(name.encode()).digest()

    def free_elsewhere() -> bool:
        if store.engine.dialect.name == "postgresql":
            key = int.from_bytes(digest[:8], "big", signed=True)
            other = sa.create_engine(store_url)
            try:
                with other.connect() as connection:
                    taken = connection.execute(
                        sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
                    ).scalar()
                    if taken:
                        connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    return bool(taken)
            finally:
                other.dispose()
        lock_file = f"{store.engine.url.database}.{digest.hex()[:16]}.lock"
        with open(lock_file, "a+b") as handle:  # another open file: another holder
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(handle, fcntl.LOCK_UN)
            return True

    with store.mutex(name):
        assert not free_elsewhere()
    assert free_elsewhere()
