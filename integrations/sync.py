"""Incremental sync: the previous snapshot brought up to date with what changed.

A platform that can list "what changed since" (Xero's If-Modified-Since, QuickBooks' CDC,
Exact's Modified filter, Moneybird's synchronization endpoints) hands back changed and
deleted records; :class:`Merge` puts them over the previous snapshot by id. A record that
cannot be read keeps its previous version (or stays out), with a warning naming it: one
odd record must not stop the whole organisation's sync. The warnings travel as data, in
:class:`plugin.ports.SyncResult`.

The bookmarks (what to ask "since" next time) are saved with the snapshot, in the same
transaction, by the run: a connector returns them and never writes them itself.
:func:`advanced_bookmark` moves one forward the safe way.

    >>> merge = Merge("Acme", None)
    >>> merge.read("invoice", "I1", lambda: int("x"))  # an unreadable record
    >>> merge.warnings
    ["Acme invoice I1: invalid literal for int() with base 10: 'x'; kept as it was"]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from integrations.http import FatalError
from plugin.core.model import LedgerSnapshot

__all__ = ["Merge", "advanced_bookmark", "iso_stamp", "stamp_before"]

log = logging.getLogger("kindly.sync")
T = TypeVar("T")


class _Record(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=_Record)

#: What reading a platform's record may raise when the record is odd.
UNREADABLE = (ValueError, ArithmeticError, KeyError, TypeError, FatalError)


class Merge:
    """The previous snapshot's records by id, with the changes put in or taken out."""

    def __init__(self, platform: str, previous: LedgerSnapshot | None) -> None:
        base = previous or LedgerSnapshot()
        self.platform = platform
        self.customers = {c.id: c for c in base.customers}
        self.invoices = {i.id: i for i in base.invoices}
        self.payments = {p.id: p for p in base.payments}
        self.credit_notes = {n.id: n for n in base.credit_notes}
        # One promise per invoice: a newer one replaces it.
        self.promises = {p.invoice_id: p for p in base.promises}
        #: Records that could not be read, one sentence each.
        self.warnings: list[str] = []

    def read(self, kind: str, record_id: object, read: Callable[[], T]) -> T | None:
        """``read()``, or None with a warning when the record cannot be read."""
        try:
            return read()
        except UNREADABLE as exc:
            self.warnings.append(f"{self.platform} {kind} {record_id}: {exc}; kept as it was")
            return None

    def apply(
        self,
        kind: str,
        table: dict[str, R],
        records: Iterable[Mapping[str, Any]],
        *,
        id_field: str,
        read: Callable[[Mapping[str, Any]], R],
        gone: Callable[[Mapping[str, Any]], bool] = lambda record: False,
    ) -> set[str]:
        """Each changed record put into ``table`` by its id, or taken out when ``gone``
        (deleted, voided) says so; the ids of those that could not be read (their
        previous copy stays), for the next sync to ask for again."""
        unread: set[str] = set()
        for record in records:
            record_id = str(record.get(id_field) or "")
            if gone(record):
                table.pop(record_id, None)
                continue
            value = self.read(kind, record_id or "?", partial(read, record))
            if value is not None:
                table[value.id] = value
            elif record_id:
                unread.add(record_id)
        return unread

    def snapshot(self) -> LedgerSnapshot:
        for message in self.warnings:
            log.warning("%s", message)
        return LedgerSnapshot(
            customers=tuple(self.customers.values()),
            invoices=tuple(self.invoices.values()),
            payments=tuple(self.payments.values()),
            credit_notes=tuple(self.credit_notes.values()),
            promises=tuple(self.promises.values()),
        )


def each_readable(
    platform: str,
    kind: str,
    rows: Iterable[Mapping[str, Any]],
    read: Callable[[Mapping[str, Any]], T | None],
    *,
    id_field: str = "id",
) -> list[T]:
    """Each row read, skipping those that read as None; one that cannot be read is left
    out with a warning, not the others. For the fresh re-check before sending: an invoice
    left out there holds back its reminder alone."""
    found: list[T] = []
    for row in rows:
        try:
            value = read(row)
        except UNREADABLE as exc:
            log.warning("%s %s %s: %s; its reminder waits", platform, kind, row.get(id_field), exc)
            continue
        if value is not None:
            found.append(value)
    return found


def iso_stamp(moment: datetime) -> str:
    """A bookmark's time: RFC 3339 in UTC, to the second (sorts as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp_before(stamp: str, seconds: int = 1) -> str:
    """An :func:`iso_stamp` ``seconds`` earlier (a stamp it cannot read stays as it is)."""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return iso_stamp(moment - timedelta(seconds=seconds))


def advanced_bookmark(
    since: str | None,
    changed_at: Iterable[str],
    server_now: str | None,
    *,
    settle: timedelta = timedelta(seconds=60),
) -> str | None:
    """The newest change seen, but never past ``settle`` before the server's own clock.

    Paging through records while they change can shift one past a page boundary unseen,
    while a later page moves the bookmark beyond it: holding the bookmark a little behind
    the server's clock makes the next sync ask for that stretch again (merged by id).
    Stamps are :func:`iso_stamp` text.
    """
    newest = max((stamp for stamp in changed_at if stamp), default=since)
    if since is not None and newest is not None and newest < since:
        newest = since
    if server_now is not None and newest is not None:
        ceiling = iso_stamp(datetime.fromisoformat(server_now.replace("Z", "+00:00")) - settle)
        if newest > ceiling:
            newest = max(ceiling, since) if since else ceiling
    return newest
