"""A run lease per organisation: one `kindly send` at a time works on its reminders.

The lease has an owner (this host, this process and when the process started) and an
expiry the holder renews while it works. What decides that a holder is gone is never the
clock:

- On PostgreSQL the lease is a session advisory lock, held on a connection of its own for
  the whole run. The server releases it the moment the holder's connection ends, however
  the process ended. The ``leases`` row only tells a waiting sender who is in its way.
- On SQLite (one machine: SQLite files are not shared between machines) the row is the
  lease, taken under the database's write lock. A holder is gone when its process is: no
  such process, a zombie, or another process that reuses its number (the start time
  differs), or the machine restarted since (the boot id differs). A holder on another
  machine is never taken over; the message names it.

Only the holder recovers what an interrupted run left (plugin/run.py): entries another
sender is working on are never mistaken for a crash.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from plugin.errors import BusyError, StoreError
from plugin.state.tables import leases

__all__ = ["Holder", "Lease", "LeaseLost", "hold"]

#: How long a lease lasts without renewal: longer than the longest wait RFC 5321 allows
#: for one SMTP reply (10 minutes), so a slow server never lets it lapse.
TERM = timedelta(minutes=15)
#: How often a waiting sender looks again.
POLL_SECONDS = 0.2


class LeaseLost(StoreError):
    """The lease is no longer this process's: it must stop sending at once."""


@dataclass(frozen=True)
class Holder:
    owner: str
    host: str
    pid: int
    process_started: str | None
    acquired_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        if not self.owner:
            return "it has only just started"
        return f"process {self.pid} on {self.host}, since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC"


#: A PostgreSQL holder whose row is not written yet.
UNKNOWN_HOLDER = Holder(
    "", "", 0, None, datetime.min.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)
)


def _boot_id() -> str:
    """This boot of the machine (its first characters: they fit the column and suffice)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def _process_started(pid: int) -> str | None:
    """The boot and the start time of process ``pid`` (Linux), which a reused pid lacks."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    return f"{_boot_id()}:{fields[19]}"


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] == "Z"


def holder_gone(holder: Holder) -> bool:
    """Whether the process that took the lease has ended (SQLite's rule; see above)."""
    if holder.host != socket.gethostname():
        return False  # another machine's process cannot be looked at from here
    if holder.process_started and holder.process_started.split(":")[0] != _boot_id():
        return True  # the machine restarted since
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it runs, as another user
    if _zombie(holder.pid):
        return True  # killed, not yet reaped by its parent
    now_started = _process_started(holder.pid)
    return bool(holder.process_started and now_started and now_started != holder.process_started)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _holder(row: sa.Row[tuple[str, str, int, str | None, str, str]] | None) -> Holder | None:
    if row is None:
        return None
    owner, host, pid, started, acquired, expires = row
    return Holder(
        owner,
        host,
        pid,
        started,
        datetime.fromisoformat(acquired),
        datetime.fromisoformat(expires),
    )


_COLUMNS = (
    leases.c.owner,
    leases.c.host,
    leases.c.pid,
    leases.c.process_started,
    leases.c.acquired_at,
    leases.c.expires_at,
)


class Lease:
    """Held by this process until released; renew it while working."""

    def __init__(
        self, engine: Engine, name: str, lock: Connection | None, workspace: str = ""
    ) -> None:
        self.engine = engine
        self.name = name
        self.workspace = workspace
        self.owner = uuid.uuid4().hex
        #: PostgreSQL: the connection holding the advisory lock, and the lock's number.
        self._lock = lock
        self.lock_key = 0
        self._renewed = time.monotonic()

    def __repr__(self) -> str:
        return f"Lease({self.name!r}, owner={self.owner[:8]})"

    def mine(self) -> sa.ColumnElement[bool]:
        """The lease's row: its name in its workspace."""
        return sa.and_(leases.c.workspace == self.workspace, leases.c.name == self.name)

    def _row(self, now: datetime) -> dict[str, object]:
        return {
            "owner": self.owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "process_started": _process_started(os.getpid()),
            "acquired_at": _iso(now),
            "expires_at": _iso(now + TERM),
        }

    def write(self, connection: Connection) -> None:
        row = self._row(datetime.now(UTC))
        updated = connection.execute(leases.update().where(self.mine()).values(**row))
        if updated.rowcount == 0:
            connection.execute(
                leases.insert().values(workspace=self.workspace, name=self.name, **row)
            )

    def renew(self, *, every: float = 60.0) -> None:
        """Push the expiry on (at most once per ``every`` seconds); LeaseLost if not ours."""
        if time.monotonic() - self._renewed < every:
            return
        with self.engine.begin() as connection:
            renewed = connection.execute(
                leases.update()
                .where(self.mine(), leases.c.owner == self.owner)
                .values(expires_at=_iso(datetime.now(UTC) + TERM))
            )
        if renewed.rowcount != 1:
            raise LeaseLost(
                f"the run lease {self.name} was taken over by another sender",
                hint="This run stopped; the other sender goes on with the reminders.",
            )
        self._renewed = time.monotonic()

    def release(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(leases.delete().where(self.mine(), leases.c.owner == self.owner))
        if self._lock is not None:
            try:
                self._lock.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.lock_key}
                )
            finally:
                self._lock.close()
                self._lock = None


def _lock_key(name: str) -> int:
    """A signed 64-bit number for PostgreSQL's advisory lock on ``name``."""
    digest = hashlib.blake2b(f"kindly-lease:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _try_sqlite(engine: Engine, lease: Lease) -> Holder | None:
    """Take the lease row unless a live holder has it; that holder, or None if taken."""
    with engine.connect() as connection:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            holder = _holder(connection.execute(sa.select(*_COLUMNS).where(lease.mine())).first())
            if holder is not None and not holder_gone(holder):
                connection.exec_driver_sql("ROLLBACK")
                return holder
            lease.write(connection)
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")
    return None


def _try_postgres(engine: Engine, lease: Lease) -> Holder | None:
    lock = engine.connect()
    try:
        # Advisory locks are per database: the schema keeps two Kindlys in one apart.
        schema = lock.execute(sa.text("SELECT current_schema()")).scalar_one()
        scoped = f"{lease.workspace}/{lease.name}" if lease.workspace else lease.name
        lease.lock_key = _lock_key(f"{schema}/{scoped}")
        taken = lock.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": lease.lock_key}
        ).scalar_one()
        # The session lock outlives the transaction; end it so the connection sits idle.
        lock.commit()
    except BaseException:
        lock.close()
        raise
    if not taken:
        lock.close()
        with engine.begin() as connection:
            row = connection.execute(sa.select(*_COLUMNS).where(lease.mine())).first()
        # The row is written just after the lock is taken: a moment may come between.
        return _holder(row) or UNKNOWN_HOLDER
    lease._lock = lock
    with engine.begin() as connection:
        lease.write(connection)
    return None


@contextmanager
def hold(
    engine: Engine,
    name: str,
    *,
    workspace: str = "",
    wait: float = 0.0,
    on_wait: Callable[[Holder], None] | None = None,
    doing: str = "sending for this organisation",
    hint: str = (
        "Nothing was sent by this run. It goes on by itself; run this command "
        "again once it has finished, or give --wait SECONDS to wait for it."
    ),
) -> Iterator[Lease]:
    """Hold the lease ``name`` for the block; wait up to ``wait`` seconds for another holder.

    Raises BusyError naming the holder, and what it is ``doing``, when it is still held
    after ``wait``. ``on_wait`` is told once, when this process starts waiting.
    """
    lease = Lease(engine, name, None, workspace)
    attempt = _try_postgres if engine.dialect.name == "postgresql" else _try_sqlite
    deadline = time.monotonic() + wait
    told = False
    while True:
        holder = attempt(engine, lease)
        if holder is None:
            break
        if time.monotonic() >= deadline:
            raise BusyError(f"another Kindly is {doing} ({holder.describe()})", hint=hint)
        if not told and on_wait is not None:
            on_wait(holder)
            told = True
        time.sleep(POLL_SECONDS)
    try:
        yield lease
    finally:
        lease.release()
