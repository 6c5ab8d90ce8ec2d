"""Kindly's own state: synced records, sync bookmarks, the reminder log and settings.

SQLAlchemy Core on SQLite by default (a file under the user's data directory) or on
PostgreSQL when given a URL. The schema is owned by Alembic migrations in
``plugin/state/migrations``; opening a store brings it to the newest revision.

Times are stored as ISO 8601 text in UTC: sortable, portable between the two databases, and
read back as timezone-aware datetimes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

try:
    import fcntl
except ImportError:  # not on Windows: there an SQLite store's mutex spans one process
    fcntl = None  # type: ignore[assignment]

from plugin.core.codec import from_jsonable, to_jsonable
from plugin.core.model import (
    Appointment,
    CreditNote,
    Customer,
    Invoice,
    LedgerSnapshot,
    Note,
    Payment,
    PromiseToPay,
)
from plugin.core.vocabulary import LogStatus
from plugin.errors import StoreError
from plugin.state.tables import (
    WORKSPACE_LENGTH,
    bookmarks,
    metadata,
    records,
    reminders,
    scheduled_runs,
    settings,
    settings_documents,
)

# ``metadata`` is the schema the migrations must make (tests/test_migrations.py).
__all__ = [
    "Delivered",
    "ReminderRecord",
    "SettingsDocument",
    "SnapshotChanges",
    "Store",
    "check_workspace",
    "default_store_url",
    "metadata",
    "settings_version",
]

MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration in MIGRATIONS; tests/test_migrations.py keeps the two in step.
SCHEMA_REVISION = "0008"

#: The bookmark that keeps a sync's left-out records beside its snapshot.
_LEFT_OUT = "left_out"

# Which snapshot field holds which record type, and the name it is stored under.
_SNAPSHOT_KINDS: tuple[tuple[str, type[Any]], ...] = (
    ("customers", Customer),
    ("invoices", Invoice),
    ("payments", Payment),
    ("credit_notes", CreditNote),
    ("promises", PromiseToPay),
    ("appointments", Appointment),
    ("notes", Note),
)


#: Entries a new try may take up again: a new address, or a gateway back up.
RETRIED = (LogStatus.DEFERRED, LogStatus.FAILED)


def default_store_url() -> str:
    """SQLite in the user's data directory (platformdirs), created on first use."""
    from platformdirs import user_data_path

    folder = user_data_path("kindly", appauthor=False, ensure_exists=True)
    return f"sqlite:///{folder / 'kindly.sqlite3'}"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times stored by Kindly must carry a time zone")
    return moment.astimezone(UTC).isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


#: A stored record's text: keys sorted, so that the same record is always the same text.
_record_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def _record_id(kind: str, index: int, value: Any) -> str:
    record_id = getattr(value, "id", None)
    if isinstance(record_id, str):
        return record_id
    if kind == "promises":
        return f"{value.invoice_id}@{value.recorded_on.isoformat()}#{index}"
    return str(index)


@dataclass(frozen=True, slots=True)
class SnapshotChanges:
    """What a sync changed in the stored copy: (kind, record id) pairs."""

    added: list[tuple[str, str]]
    changed: list[tuple[str, str]]
    removed: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.added) + len(self.changed) + len(self.removed)


@dataclass(frozen=True, slots=True)
class ReminderRecord:
    """One row of the reminder log."""

    key: str
    source: str
    customer_id: str
    invoice_ids: tuple[str, ...]
    invoice_numbers: tuple[str, ...]
    stage: str
    channel: str
    recipient: str
    amount: str
    currency: str
    status: LogStatus
    planned_at: datetime
    sent_at: datetime | None = None
    note_written_at: datetime | None = None
    message_id: str | None = None
    detail: str | None = None
    #: The stage each invoice reached, when it differs from ``stage``.
    invoice_stages: Mapping[str, str] = field(default_factory=dict)
    #: The charges it claimed, as written in it ("interest", "reminder_fee", "total", ...).
    charges: Mapping[str, str] = field(default_factory=dict)
    #: When a sender set out to write its note (not yet marked written: it may be there
    #: in part, so the next try looks first).
    note_claimed_at: datetime | None = None

    @property
    def reminder_fee(self) -> bool:
        # Every reminder claiming charges lists the fee, empty when there is none.
        return bool(self.charges.get("reminder_fee"))


class SettingsDocument(NamedTuple):
    """A workspace's kindly.toml, held in the database."""

    text: str
    version: str
    changed_at: datetime


def settings_version(text: str) -> str:
    """What a page remembers of the settings it showed: a digest of their text (the same
    digest as of a kindly.toml's bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Delivered(NamedTuple):
    """A message's outcome, logged with the next hand-over: sent, or unconfirmed."""

    key: str
    at: datetime
    message_id: str | None
    detail: str
    status: LogStatus = LogStatus.SENT


_MARK_SENT = (
    reminders.update()
    .where(reminders.c.workspace == sa.bindparam("w"), reminders.c.key == sa.bindparam("k"))
    .values(
        status=sa.bindparam("status"),
        sent_at=sa.bindparam("sent_at"),
        message_id=sa.bindparam("message_id"),
        detail=sa.bindparam("detail"),
    )
)


#: The hand-over: from "sending" (the claim), or "handing over" again when the server
#: answered the end of the message with "try again" and the same sender retries it.
_HAND_OVER = (
    reminders.update()
    .where(
        reminders.c.workspace == sa.bindparam("w"),
        reminders.c.key == sa.bindparam("k"),
        reminders.c.status.in_((LogStatus.SENDING, LogStatus.HANDING_OVER)),
    )
    .values(status=LogStatus.HANDING_OVER, charges=sa.bindparam("charges"))
)

#: Takes up a deferred or failed entry again, every field anew; parameters "new_<column>".
_RETRY = (
    reminders.update()
    .where(
        reminders.c.workspace == sa.bindparam("new_workspace"),
        reminders.c.key == sa.bindparam("new_key"),
        reminders.c.status.in_(RETRIED),
    )
    .values(
        {
            column: sa.bindparam(f"new_{column.name}")
            for column in reminders.c
            if column.name
            not in (
                "workspace",
                "key",
                "sent_at",
                "note_written_at",
                "note_claimed_at",
                "message_id",
            )
        }
        # note_claimed_at stays: a note of an earlier try may be there (a reminder sent
        # again on request keeps its note id), so the next note looks first.
        | {
            reminders.c.sent_at: None,
            reminders.c.note_written_at: None,
            reminders.c.message_id: None,
        }
    )
)


def _insert_if_new(engine: Engine) -> Any:
    """INSERT that does nothing (rowcount 0) when the key is logged already."""
    return (
        _dialect_insert(engine.dialect.name)(reminders)
        .on_conflict_do_nothing(index_elements=["workspace", "key"])
        .returning(reminders.c.key)
    )


def _reminder_from_row(row: sa.RowMapping) -> ReminderRecord:
    planned_at = _moment(row["planned_at"])
    assert planned_at is not None
    return ReminderRecord(
        key=row["key"],
        source=row["source"],
        customer_id=row["customer_id"],
        invoice_ids=tuple(json.loads(row["invoice_ids"])),
        invoice_numbers=tuple(json.loads(row["invoice_numbers"])),
        stage=row["stage"],
        channel=row["channel"],
        recipient=row["recipient"],
        amount=row["amount"],
        currency=row["currency"],
        status=LogStatus(row["status"]),
        planned_at=planned_at,
        sent_at=_moment(row["sent_at"]),
        note_written_at=_moment(row["note_written_at"]),
        message_id=row["message_id"],
        detail=row["detail"],
        invoice_stages=json.loads(row["invoice_stages"]) if row["invoice_stages"] else {},
        charges=json.loads(row["charges"]) if row["charges"] else {},
        note_claimed_at=_moment(row["note_claimed_at"]),
    )


#: The engines (connection pools) of a process that serves many workspaces, by URL: see
#: ``Store.open(shared=True)``.
_SHARED_ENGINES: dict[str, Engine] = {}
_SHARED_LOCK = threading.Lock()

#: The mutexes of an in-memory store, which no other process can open.
_PROCESS_MUTEXES: dict[str, threading.Lock] = {}


def check_workspace(name: str) -> str:
    """A workspace's name as the store keeps it, or ValueError saying what is wrong."""
    if len(name) > WORKSPACE_LENGTH or not _WORKSPACE_NAME.fullmatch(name):
        raise ValueError(
            f"a workspace name is up to {WORKSPACE_LENGTH} letters, digits, '.', '-' or '_' "
            f"(not {name[: WORKSPACE_LENGTH + 1]!r})"
        )
    return name


_WORKSPACE_NAME = re.compile(r"[A-Za-z0-9._-]*")


class Store:
    """A handle on the state database, bound to one workspace: every statement it makes
    reads and writes that workspace's rows only. Every method runs in its own transaction.
    """

    def __init__(self, engine: Engine, workspace: str = "", *, shared: bool = False) -> None:
        self.engine = engine
        self.workspace = check_workspace(workspace)
        #: The engine serves other workspaces' stores too: closing this one keeps it.
        self._shared = shared

    def __repr__(self) -> str:
        # The URL may hold a database password; repr shows it masked.
        url = self.engine.url.render_as_string(hide_password=True)
        if self.workspace:
            return f"Store({url!r}, workspace={self.workspace!r})"
        return f"Store({url!r})"

    @property
    def identity(self) -> str:
        """The database (its URL without the password) and the workspace: what tells this
        workspace's store from every other's that shares the workers' Redis."""
        url = self.engine.url.render_as_string(hide_password=True)
        return hashlib.sha256(f"{url}\n{self.workspace}".encode()).hexdigest()[:24]

    def in_workspace(self, workspace: str) -> Store:
        """The same database, bound to another workspace (sharing this one's connections:
        close only one of them)."""
        return Store(self.engine, workspace, shared=True)

    def workspaces(self) -> list[str]:
        """Every workspace that keeps something in this database (for operators: a store
        bound to one workspace reads nothing else of the others)."""
        query = sa.union(*(sa.select(table.c.workspace) for table in metadata.sorted_tables))
        with self._begin() as connection:
            return sorted(str(name) for name in connection.execute(query).scalars())

    @classmethod
    def open(cls, url: str | None = None, workspace: str = "", *, shared: bool = False) -> Store:
        """Connect, creating the SQLite file if needed, and migrate to the newest schema.

        ``shared``: a process serving many workspaces (a worker) keeps one engine per
        database server for all of them, connected and migrated once; closing a store
        keeps it. Not for SQLite, which opens a file in no time: a worker serving a
        thousand SQLite workspaces would hold a thousand files open.
        """
        check_workspace(workspace)
        url = url or default_store_url()
        if shared and not url.startswith("sqlite"):
            with _SHARED_LOCK:
                engine = _SHARED_ENGINES.get(url)
                if engine is None:
                    engine = cls.open(url).engine
                    _SHARED_ENGINES[url] = engine
            return cls(engine, workspace, shared=True)
        try:
            engine = sa.create_engine(url, future=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise StoreError(
                f"cannot use the store URL {_masked(url)}: {exc}",
                hint="Give an SQLAlchemy URL such as sqlite:///kindly.sqlite3 or "
                "postgresql+psycopg://user@host/db (pip install 'kindly-reminders[postgres]').",
            ) from None
        if engine.dialect.name == "sqlite":
            _tune_sqlite(engine)
            database = engine.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                # The store holds connection tokens (encrypted) and clients' data: only the
                # user may read it.
                Path(database).touch(mode=0o600, exist_ok=True)
                os.chmod(database, 0o600)
        store = cls(engine, workspace)
        try:
            store._migrate_when_free()
        except sa.exc.OperationalError as exc:
            raise StoreError(
                f"cannot open the store {_masked(url)}: {exc.orig}",
                hint="Check that the database server runs and the URL is right.",
            ) from None
        return store

    def _migrate_when_free(self) -> None:
        """Migrate; on SQLite, try again while processes that create one new store file
        at once still find it locked. Under load one in about 150 such starts failed
        with "database is locked" although the busy timeout had not run out: SQLite does
        not wait in every case (a file still being switched to WAL, for one)."""
        attempts = 5 if self.engine.dialect.name == "sqlite" else 1
        for attempt in range(1, attempts + 1):
            try:
                self.migrate()
                return
            except sa.exc.OperationalError as exc:
                if attempt == attempts or "locked" not in str(exc.orig):
                    raise
                self.engine.dispose()
                time.sleep(0.05 * attempt)

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at, or None for a new database."""
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(
                sa.text("SELECT version_num FROM alembic_version")
            ).scalar_one_or_none()

    def migrate(self) -> None:
        """Bring the schema to the newest revision; any number of processes at once.

        The migration runs under a lock (an advisory lock on PostgreSQL, the write lock
        on SQLite, taken before anything is read) and looks at the revision again once
        it holds it: a process that waited finds the work done.
        """
        # Alembic costs a tenth of a second to import; every command opens the store, and
        # almost always finds it current, so look before loading Alembic.
        if self.schema_revision() == SCHEMA_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._migration_lock() as connection:
            current = (
                connection.execute(
                    sa.text("SELECT version_num FROM alembic_version")
                ).scalar_one_or_none()
                if sa.inspect(connection).has_table("alembic_version")
                else None
            )
            if current == SCHEMA_REVISION:
                return
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def _migration_lock(self) -> Iterator[Connection]:
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as connection:
                # Released with the transaction; the number names Kindly's migrations.
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(7134101)"))
                yield connection
            return
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as connection:
                # The write lock first: a second process waits here (busy timeout) rather
                # than read an empty schema and create the same tables.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    connection.exec_driver_sql("ROLLBACK")
                    raise
                connection.exec_driver_sql("COMMIT")
            return
        with self.engine.begin() as connection:
            yield connection

    def close(self) -> None:
        if not self._shared:
            self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    # -- synced records ----------------------------------------------------------------

    def replace_snapshot(
        self,
        source: str,
        snapshot: LedgerSnapshot,
        synced_at: datetime,
        marks: Mapping[str, str] | None = None,
        *,
        other_marks: Mapping[str, Mapping[str, str]] | None = None,
        left_out: Sequence[str] = (),
    ) -> SnapshotChanges:
        """Make the stored copy of ``source`` equal ``snapshot``, all at once.

        Only what changed is written: a record whose stored text is the same is left as it
        is (its ``synced_at`` says since when the copy has held that version), so a sync
        that finds little new writes little. ``marks`` are the connector's
        incremental-sync bookmarks as of this snapshot, and ``other_marks`` those of other
        sources read into it (a calendar), by source; they are saved in the same
        transaction, so they never run ahead of the records. ``left_out`` says which
        records the sync could not read (see :meth:`left_out`).
        """
        stamp = _iso(synced_at)
        wanted = {
            (kind, _record_id(kind, index, value)): _record_json(to_jsonable(value))
            for kind, _type in _SNAPSHOT_KINDS
            for index, value in enumerate(getattr(snapshot, kind))
        }
        this_source = (records.c.workspace == self.workspace) & (records.c.source == source)
        with self._begin() as connection:
            # The snapshot's bookmark first: a write that makes a second sync of the same
            # source wait here (SQLite's write lock, PostgreSQL's row lock) until this one
            # commits, so that it compares with what this one wrote.
            for resource, value in (("snapshot", stamp), (_LEFT_OUT, json.dumps(list(left_out)))):
                _upsert(
                    connection,
                    bookmarks,
                    {"workspace": self.workspace, "source": source, "resource": resource},
                    {"value": value, "updated_at": stamp},
                )
            stored = {
                (str(kind), str(record_id)): str(data)
                for kind, record_id, data in connection.execute(
                    sa.select(records.c.kind, records.c.record_id, records.c.data).where(
                        this_source
                    )
                )
            }
            changes = SnapshotChanges(
                added=[key for key in wanted if key not in stored],
                changed=[key for key, data in wanted.items() if stored.get(key, data) != data],
                removed=[key for key in stored if key not in wanted],
            )
            keyed = this_source & (records.c.kind == sa.bindparam("k"))
            keyed &= records.c.record_id == sa.bindparam("r")
            if changes.removed:
                connection.execute(
                    records.delete().where(keyed), [{"k": k, "r": r} for k, r in changes.removed]
                )
            if changes.changed:
                connection.execute(
                    records.update()
                    .where(keyed)
                    .values(data=sa.bindparam("d"), synced_at=sa.bindparam("s")),
                    [{"k": k, "r": r, "d": wanted[k, r], "s": stamp} for k, r in changes.changed],
                )
            if changes.added:
                connection.execute(
                    records.insert(),
                    [
                        {
                            "workspace": self.workspace,
                            "source": source,
                            "kind": kind,
                            "record_id": record_id,
                            "data": wanted[kind, record_id],
                            "synced_at": stamp,
                        }
                        for kind, record_id in changes.added
                    ],
                )
            for owner, owned in [(source, marks or {}), *(other_marks or {}).items()]:
                for resource, value in owned.items():
                    _upsert(
                        connection,
                        bookmarks,
                        {"workspace": self.workspace, "source": owner, "resource": resource},
                        {"value": value, "updated_at": stamp},
                    )
        return changes

    def bookmarks_of(self, source: str) -> dict[str, str]:
        """Every bookmark of ``source`` but the snapshot's own."""
        query = sa.select(bookmarks.c.resource, bookmarks.c.value).where(
            bookmarks.c.workspace == self.workspace,
            bookmarks.c.source == source,
            bookmarks.c.resource.not_in(("snapshot", _LEFT_OUT)),
        )
        with self._begin() as connection:
            return {str(resource): str(value) for resource, value in connection.execute(query)}

    def left_out(self, source: str) -> tuple[str, ...]:
        """What the last sync of ``source`` could not read and left out, one line each
        naming the file, record and field: plans made from the copy do not serve them."""
        value = self.get_bookmark(source, _LEFT_OUT)
        return tuple(json.loads(value)) if value else ()

    def load_snapshot(self, source: str) -> LedgerSnapshot | None:
        """The stored copy of ``source``, or None if it was never synced."""
        query = (
            sa.select(records.c.kind, records.c.data)
            .where(records.c.workspace == self.workspace, records.c.source == source)
            .order_by(records.c.kind, records.c.record_id)
        )
        by_kind: dict[str, list[Any]] = {kind: [] for kind, _type in _SNAPSHOT_KINDS}
        types = dict(_SNAPSHOT_KINDS)
        with self._begin() as connection:
            for kind, data in connection.execute(query):
                by_kind[kind].append(from_jsonable(types[kind], json.loads(data)))
        if self.get_bookmark(source, "snapshot") is None:
            return None
        return LedgerSnapshot(**{kind: tuple(values) for kind, values in by_kind.items()})

    # -- bookmarks ---------------------------------------------------------------------

    def get_bookmark(self, source: str, resource: str) -> str | None:
        query = sa.select(bookmarks.c.value).where(
            bookmarks.c.workspace == self.workspace,
            bookmarks.c.source == source,
            bookmarks.c.resource == resource,
        )
        with self._begin() as connection:
            return connection.execute(query).scalar_one_or_none()

    def set_bookmark(self, source: str, resource: str, value: str, at: datetime) -> None:
        with self._begin() as connection:
            _upsert(
                connection,
                bookmarks,
                {"workspace": self.workspace, "source": source, "resource": resource},
                {"value": value, "updated_at": _iso(at)},
            )

    # -- reminder log --------------------------------------------------------------------

    def _row(self, record: ReminderRecord) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "key": record.key,
            "source": record.source,
            "customer_id": record.customer_id,
            "invoice_ids": json.dumps(list(record.invoice_ids)),
            "invoice_numbers": json.dumps(list(record.invoice_numbers), ensure_ascii=False),
            "stage": record.stage,
            "channel": record.channel,
            "recipient": record.recipient,
            "amount": record.amount,
            "currency": record.currency,
            "status": LogStatus.SENDING,
            "planned_at": _iso(record.planned_at),
            "detail": record.detail,
            "invoice_stages": json.dumps(dict(record.invoice_stages)) or None,
            "charges": json.dumps(dict(record.charges), ensure_ascii=False)
            if record.charges
            else None,
        }

    def record_intent(self, record: ReminderRecord) -> bool:
        """Log an entry restored from elsewhere (a note in the accounting system).

        False if its key is logged already, unless an earlier try was deferred or failed:
        then the entry is taken up again.
        """
        return record.key in self.claim([record])

    def claim(self, records: Sequence[ReminderRecord]) -> set[str]:
        """Claim reminders for sending, in one transaction; the keys this call claimed.

        Each claim is one conditional statement: a new entry is inserted unless its key
        exists, and an existing one is taken up again only from a state a new try may start
        from (deferred, failed). A reminder is this sender's only if its statement changed
        a row: a read and then a write would let two senders both see "deferred" and both
        send. Claimed entries are "sending": nothing has left yet.
        """
        if not records:
            return set()
        claimed: set[str] = set()
        # In key order: two claims of overlapping batches then wait for each other's
        # rows in the same order, and never deadlock (PostgreSQL).
        rows = [self._row(record) for record in sorted(records, key=lambda r: r.key)]
        with self._begin() as connection:
            # One statement for the batch; RETURNING names the rows that went in (psycopg
            # reports no row count for an INSERT that did nothing on conflict).
            claimed.update(connection.execute(_insert_if_new(self.engine), rows).scalars().all())
            for row in rows:
                if row["key"] in claimed:
                    continue
                retried = connection.execute(
                    _RETRY, {f"new_{name}": value for name, value in row.items()}
                )
                if retried.rowcount == 1:
                    claimed.add(row["key"])
        return claimed

    def restore(self, records: Sequence[ReminderRecord]) -> set[str]:
        """Log entries known to have gone out (a note in the accounting system says so),
        each as it is (sent, its note written), in one statement: a key logged already,
        in any state, is left as it is. The keys this call logged.

        One statement, not a claim and then updates: a sender recovering an interrupted
        run deletes the "sending" entries it finds, and would take a claim made here."""
        if not records:
            return set()
        rows = [
            self._row(record)
            | {
                "status": record.status,
                "sent_at": _iso(record.sent_at) if record.sent_at else None,
                "note_written_at": _iso(record.note_written_at) if record.note_written_at else None,
            }
            for record in sorted(records, key=lambda r: r.key)
        ]
        with self._begin() as connection:
            return set(connection.execute(_insert_if_new(self.engine), rows).scalars().all())

    def release(self, keys: Iterable[str]) -> None:
        """Give back claims that were never handed over (the run stopped before them)."""
        with self._begin() as connection:
            connection.execute(
                reminders.delete().where(
                    reminders.c.workspace == self.workspace,
                    reminders.c.key.in_(list(keys)),
                    reminders.c.status == LogStatus.SENDING,
                )
            )

    def hand_over(
        self,
        key: str,
        sent: Iterable[Delivered] = (),
        *,
        charges: Mapping[str, str] | None = None,
    ) -> bool:
        """Log, in one transaction, that claimed ``key`` is leaving now (and earlier ones went).

        This is the one write the send loop makes per message, right before the content
        leaves (for SMTP: before the final dot): from here on, after a crash, the other
        side may have it. ``sent`` are outcomes not yet logged, saved in the same commit.
        False if the entry is not this sender's claim (never claimed, or sent already).
        """
        with self._begin() as connection:
            self._apply_sent(connection, sent)
            taken = connection.execute(
                _HAND_OVER,
                {
                    "w": self.workspace,
                    "k": key,
                    "charges": json.dumps(dict(charges), ensure_ascii=False) if charges else None,
                },
            )
            return taken.rowcount == 1

    def take_back(self, key: str) -> None:
        """The server refused the message after it was handed over: nothing was delivered."""
        with self._begin() as connection:
            connection.execute(
                reminders.update()
                .where(
                    reminders.c.workspace == self.workspace,
                    reminders.c.key == key,
                    reminders.c.status == LogStatus.HANDING_OVER,
                )
                .values(status=LogStatus.SENDING)
            )

    def record_outcome(
        self,
        record: ReminderRecord,
        status: LogStatus,
        detail: str,
        sent: Iterable[Delivered] = (),
    ) -> None:
        """Log a reminder that did not go ("failed" or "deferred"), whether or not it was
        handed over, with any outcomes not yet logged."""
        row = self._row(record) | {"status": status, "detail": detail}
        with self._begin() as connection:
            self._apply_sent(connection, sent)
            updated = connection.execute(
                reminders.update()
                .where(reminders.c.workspace == self.workspace, reminders.c.key == record.key)
                .values(**{k: v for k, v in row.items() if k not in ("workspace", "key")})
            )
            if updated.rowcount == 0:
                connection.execute(reminders.insert().values(**row))

    def mark_sent_many(self, sent: Iterable[Delivered]) -> None:
        with self._begin() as connection:
            self._apply_sent(connection, sent)

    def _apply_sent(self, connection: Connection, sent: Iterable[Delivered]) -> None:
        rows = [
            {
                "w": self.workspace,
                "k": outcome.key,
                "status": outcome.status,
                "sent_at": _iso(outcome.at),
                "message_id": outcome.message_id,
                "detail": outcome.detail,
            }
            for outcome in sent
        ]
        if rows:
            connection.execute(_MARK_SENT, rows)

    def mark_sent(
        self,
        key: str,
        at: datetime,
        message_id: str | None,
        detail: str,
        *,
        status: LogStatus = LogStatus.SENT,
    ) -> None:
        """Log that a reminder went (or, ``status`` unconfirmed, most likely went)."""
        self._update(key, status=status, sent_at=_iso(at), message_id=message_id, detail=detail)

    def mark_failed(self, key: str, reason: str) -> None:
        """Failed for good on its channel: a note tells the bookkeeper."""
        self._update(key, status=LogStatus.FAILED, detail=reason)

    def mark_note_written(self, key: str, at: datetime) -> None:
        self._update(key, note_written_at=_iso(at))

    def claim_notes(self, keys: Iterable[str], at: datetime) -> None:
        """Say, in one transaction, that the notes of these reminders are being written.

        Only notes not yet written and not claimed before: a note claimed earlier and never
        marked written keeps its claim, which tells the writer to look before writing.
        """
        with self._begin() as connection:
            connection.execute(
                reminders.update()
                .where(
                    reminders.c.workspace == self.workspace,
                    reminders.c.key.in_(list(keys)),
                    reminders.c.note_written_at.is_(None),
                    reminders.c.note_claimed_at.is_(None),
                )
                .values(note_claimed_at=_iso(at))
            )

    def mark_notes_written(self, keys: Iterable[str], at: datetime) -> None:
        """Log, in one transaction, that these reminders' notes are in the accounting system."""
        with self._begin() as connection:
            connection.execute(
                reminders.update()
                .where(reminders.c.workspace == self.workspace, reminders.c.key.in_(list(keys)))
                .values(note_written_at=_iso(at))
            )

    def forget_intent(self, key: str) -> None:
        """Drop an intent whose message was never written, so it is planned afresh."""
        with self._begin() as connection:
            connection.execute(
                reminders.delete().where(
                    reminders.c.workspace == self.workspace,
                    reminders.c.key == key,
                    reminders.c.status.in_((LogStatus.SENDING, LogStatus.HANDING_OVER)),
                )
            )

    def _update(self, key: str, **values: Any) -> None:
        with self._begin() as connection:
            result = connection.execute(
                reminders.update()
                .where(reminders.c.workspace == self.workspace, reminders.c.key == key)
                .values(**values)
            )
            if result.rowcount != 1:
                raise StoreError(f"the reminder log has no entry {key}")

    def logged(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` the reminder log holds, in whatever state."""
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        with self._begin() as connection:
            # A few hundred at a time: SQLite takes a limited number of parameters.
            for first in range(0, len(wanted), 500):
                query = sa.select(reminders.c.key).where(
                    reminders.c.workspace == self.workspace,
                    reminders.c.key.in_(wanted[first : first + 500]),
                )
                found.update(connection.execute(query).scalars())
        return found

    def reminder(self, key: str) -> ReminderRecord | None:
        with self._begin() as connection:
            row = (
                connection.execute(
                    sa.select(reminders).where(
                        reminders.c.workspace == self.workspace, reminders.c.key == key
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _reminder_from_row(row)

    def reminders(
        self, source: str | None = None, *, statuses: Iterable[LogStatus] | None = None
    ) -> list[ReminderRecord]:
        query = (
            sa.select(reminders)
            .where(reminders.c.workspace == self.workspace)
            .order_by(reminders.c.planned_at, reminders.c.key)
        )
        if source is not None:
            query = query.where(reminders.c.source == source)
        if statuses is not None:
            query = query.where(reminders.c.status.in_(list(statuses)))
        with self._begin() as connection:
            rows = connection.execute(query).mappings().all()
        return [_reminder_from_row(row) for row in rows]

    # -- settings --------------------------------------------------------------------------

    def get_setting(self, scope: str, key: str) -> Any:
        with self._begin() as connection:
            return _get_setting(connection, self.workspace, scope, key)

    def set_setting(self, scope: str, key: str, value: Any, at: datetime) -> None:
        with self._begin() as connection:
            _set_setting(connection, self.workspace, scope, key, value, at)

    # -- scheduled runs ----------------------------------------------------------------

    def claim_run(
        self, source: str, zone: str, day: str, now: datetime, *, stale_after: float
    ) -> bool:
        """Claim the run of ``source`` for ``zone`` on local ``day``: True for the one
        caller that gets it. One conditional statement: a new row, or one whose claim is
        older than ``stale_after`` seconds and not done (the queue lost it)."""
        stamp = _iso(now)
        stale = _iso(now - timedelta(seconds=stale_after))
        table = scheduled_runs
        dialect_insert = _dialect_insert(self.engine.dialect.name)
        statement = (
            dialect_insert(table)
            .values(workspace=self.workspace, source=source, zone=zone, day=day, claimed_at=stamp)
            .on_conflict_do_update(
                index_elements=["workspace", "source", "zone", "day"],
                set_={"claimed_at": stamp},
                where=sa.and_(table.c.done_at.is_(None), table.c.claimed_at < stale),
            )
            .returning(table.c.day)
        )
        with self._begin() as connection:
            return connection.execute(statement).first() is not None

    def cover_runs(
        self, source: str, runs: Sequence[tuple[str, str]], now: datetime, detail: str
    ) -> None:
        """Count the runs (zone, local day) as done: a run of the organisation served
        every zone whose tick had come (it sends whatever is in its clients' windows)."""
        if not runs:
            return
        stamp = _iso(now)
        dialect_insert = _dialect_insert(self.engine.dialect.name)
        statement = dialect_insert(scheduled_runs).on_conflict_do_update(
            index_elements=["workspace", "source", "zone", "day"],
            set_={"done_at": stamp, "detail": detail},
            where=scheduled_runs.c.done_at.is_(None),
        )
        rows = [
            {"workspace": self.workspace, "source": source, "zone": zone, "day": day,
             "claimed_at": stamp,
             "done_at": stamp, "detail": detail}
            for zone, day in runs
        ]  # fmt: skip
        with self._begin() as connection:
            connection.execute(statement, rows)

    def runs_done(self, source: str) -> dict[str, date]:
        """The last local day run, by zone, for ``source``."""
        with self._begin() as connection:
            rows = connection.execute(
                sa.select(scheduled_runs.c.zone, sa.func.max(scheduled_runs.c.day))
                .where(
                    scheduled_runs.c.workspace == self.workspace,
                    scheduled_runs.c.source == source,
                    scheduled_runs.c.done_at.is_not(None),
                )
                .group_by(scheduled_runs.c.zone)
            ).all()
        return {zone: date.fromisoformat(day) for zone, day in rows}

    def scheduled(self, source: str | None = None) -> list[sa.RowMapping]:
        """The scheduled runs (of ``source``), newest first: for `kindly status`."""
        query = (
            sa.select(scheduled_runs)
            .where(scheduled_runs.c.workspace == self.workspace)
            .order_by(scheduled_runs.c.claimed_at.desc())
        )
        if source is not None:
            query = query.where(scheduled_runs.c.source == source)
        with self._begin() as connection:
            return list(connection.execute(query).mappings())

    @contextmanager
    def mutex(self, name: str) -> Iterator[None]:
        """One holder at a time of ``name`` among every process using this store, for a
        moment (a platform that takes one request at a time per user): PostgreSQL's
        advisory lock, a file lock beside an SQLite file, a lock of this process's for an
        in-memory store. It waits as long as the holder holds it."""
        # A workspace of its own keeps the names earlier Kindlys locked (an upgrade while
        # one runs); a shared store's workspaces never lock each other's.
        scoped = f"{self.workspace}/{name}" if self.workspace else name
        digest = hashlib.sha256(scoped.encode()).digest()
        if self.engine.dialect.name == "postgresql":
            key = int.from_bytes(digest[:8], "big", signed=True)
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
                try:
                    yield
                finally:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()
            return
        database = self.engine.url.database
        if not database or database == ":memory:" or fcntl is None:
            with _PROCESS_MUTEXES.setdefault(f"{database}|{digest.hex()}", threading.Lock()):
                yield
            return
        lock_file = Path(f"{database}.{digest.hex()[:16]}.lock")
        with lock_file.open("a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def lease(self, name: str, *, wait: float, doing: str) -> AbstractContextManager[object]:
        """Hold the lease ``name`` (an owner and an expiry, not a transaction) for a
        change of several steps that calls out between them, so two processes never make
        it at once; wait up to ``wait`` seconds for another holder (BusyError after)."""
        from plugin.state.leases import hold

        return hold(
            self.engine,
            name,
            workspace=self.workspace,
            wait=wait,
            doing=doing,
            hint="Run this command again once the other has finished.",
        )

    @contextmanager
    def exclusive(self, name: str) -> Iterator[Transaction]:
        """A transaction holding the lock ``name``: a second holder waits until it commits.

        The lock is a row that the transaction updates first: PostgreSQL then blocks other
        writers of that row, SQLite every other writer (for up to the busy timeout). What
        the transaction writes is committed as the lock is released.
        """
        stamp = {"value": "null", "updated_at": _iso(datetime.now(UTC))}
        try:
            with self._begin() as connection:
                connection.execute(
                    settings.insert().values(
                        workspace=self.workspace, scope=LOCK_SCOPE, key=name, **stamp
                    )
                )
        except sa.exc.IntegrityError:
            pass  # the lock row exists already
        try:
            with self._begin() as connection:
                connection.execute(
                    settings.update()
                    .where(
                        settings.c.workspace == self.workspace,
                        settings.c.scope == LOCK_SCOPE,
                        settings.c.key == name,
                    )
                    .values(**stamp)
                )
                yield Transaction(connection, self.workspace)
        except sa.exc.OperationalError as exc:
            raise StoreError(
                f"the store is busy ({name} is held by another Kindly): {exc.orig}",
                hint="Another kindly command is renewing a connection; run this one again.",
            ) from None

    def take_setting(self, scope: str, key: str) -> Any:
        """The setting, deleted as it is read: of two processes taking it at once, one gets
        it and the other None (the delete that removed the row is the claim)."""
        with self._begin() as connection:
            value = _get_setting(connection, self.workspace, scope, key)
            gone = connection.execute(
                settings.delete().where(*_setting_is(self.workspace, scope, key))
            )
            return value if gone.rowcount == 1 else None

    def delete_setting(self, scope: str, key: str) -> None:
        with self._begin() as connection:
            connection.execute(settings.delete().where(*_setting_is(self.workspace, scope, key)))

    def settings_in(self, scope_prefix: str) -> dict[str, dict[str, Any]]:
        """All settings whose scope starts with the prefix, as {scope: {key: value}}."""
        query = sa.select(settings.c.scope, settings.c.key, settings.c.value).where(
            settings.c.workspace == self.workspace,
            settings.c.scope.startswith(scope_prefix, autoescape=True),
        )
        result: dict[str, dict[str, Any]] = {}
        with self._begin() as connection:
            for scope, key, value in connection.execute(query):
                result.setdefault(scope, {})[key] = json.loads(value)
        return result

    # -- the workspace's settings, held here instead of in a kindly.toml ---------------------

    def settings_document(self) -> SettingsDocument | None:
        """The settings this workspace keeps in the database, or None (it has a file)."""
        query = sa.select(
            settings_documents.c.text, settings_documents.c.version, settings_documents.c.changed_at
        ).where(settings_documents.c.workspace == self.workspace)
        with self._begin() as connection:
            row = connection.execute(query).one_or_none()
        if row is None:
            return None
        return SettingsDocument(row.text, row.version, datetime.fromisoformat(row.changed_at))

    def save_settings_document(
        self, text: str, at: datetime, *, seen: str | None, replace: bool = False
    ) -> str | None:
        """Keep ``text`` as this workspace's settings and return its version; None where
        what is held is not what ``seen`` names (someone else's change came first).

        ``seen``: the version the change started from (None: only where nothing is held
        yet); ``replace``: whatever is held. One conditional statement decides: of two
        changes made from the same version, one is saved."""
        version = settings_version(text)
        values = {"text": text, "version": version, "changed_at": _iso(at)}
        mine = settings_documents.c.workspace == self.workspace
        for _attempt in range(2):
            if replace or seen is not None:
                condition = mine if replace else sa.and_(mine, settings_documents.c.version == seen)
                with self._begin() as connection:
                    updated = connection.execute(
                        settings_documents.update().where(condition).values(**values)
                    )
                if updated.rowcount == 1:
                    return version
                if not replace:
                    return None
            try:
                with self._begin() as connection:
                    connection.execute(
                        settings_documents.insert().values(workspace=self.workspace, **values)
                    )
                return version
            except sa.exc.IntegrityError:
                # Another process saved the first document meanwhile.
                if not replace:
                    return None
        return None

    def forget_settings_document(self) -> bool:
        """Remove the settings held for this workspace (its rows stay); True if there were."""
        with self._begin() as connection:
            deleted = connection.execute(
                settings_documents.delete().where(settings_documents.c.workspace == self.workspace)
            )
        return bool(deleted.rowcount)

    def workspaces_with_settings(self) -> list[str]:
        """Every workspace of this database whose settings are held here (for the scheduler
        and the workers: a store bound to one workspace reads nothing else of the others)."""
        query = sa.select(settings_documents.c.workspace).order_by(settings_documents.c.workspace)
        with self._begin() as connection:
            return [str(name) for name in connection.execute(query).scalars()]


LOCK_SCOPE = "lock:"


class Transaction:
    """Settings read and written inside one transaction (see Store.exclusive)."""

    def __init__(self, connection: Connection, workspace: str) -> None:
        self._connection = connection
        self._workspace = workspace

    def get_setting(self, scope: str, key: str) -> Any:
        return _get_setting(self._connection, self._workspace, scope, key)

    def set_setting(self, scope: str, key: str, value: Any, at: datetime) -> None:
        _set_setting(self._connection, self._workspace, scope, key, value, at)


def _setting_is(workspace: str, scope: str, key: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (settings.c.workspace == workspace, settings.c.scope == scope, settings.c.key == key)


def _get_setting(connection: Connection, workspace: str, scope: str, key: str) -> Any:
    query = sa.select(settings.c.value).where(*_setting_is(workspace, scope, key))
    value = connection.execute(query).scalar_one_or_none()
    return None if value is None else json.loads(value)


def _set_setting(
    connection: Connection, workspace: str, scope: str, key: str, value: Any, at: datetime
) -> None:
    _upsert(
        connection,
        settings,
        {"workspace": workspace, "scope": scope, "key": key},
        {"value": json.dumps(value, ensure_ascii=False), "updated_at": _iso(at)},
    )


def _upsert(
    connection: Connection, table: sa.Table, keys: dict[str, Any], values: dict[str, Any]
) -> None:
    """Insert the row of ``keys`` or update it, in one statement.

    An UPDATE and then an INSERT where it found nothing lets two processes both insert
    the same new key on PostgreSQL, and the second fails (a test of two syncs at once).
    """
    statement = _dialect_insert(connection.dialect.name)(table).values(**keys, **values)
    connection.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=values))


def _dialect_insert(dialect: str) -> Any:
    """The INSERT with ON CONFLICT of the store's database (SQLite or PostgreSQL)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _tune_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # The busy timeout makes a second process wait for the lock instead of failing at
        # once; it comes first, because switching a new file to WAL takes that lock too
        # (six processes creating one store at once failed with "database is locked").
        # WAL lets `kindly plan` read while `kindly send` writes.
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _masked(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unreadable URL)"
