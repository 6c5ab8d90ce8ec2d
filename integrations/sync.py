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
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from integrations.http import FatalError
from plugin.core.model import LedgerSnapshot

__all__ = ["Merge", "advanced_bookmark", "iso_stamp"]

log = logging.getLogger("kindly.sync")
T = TypeVar("T")

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


def iso_stamp(moment: datetime) -> str:
    """A bookmark's time: RFC 3339 in UTC, to the second (sorts as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
