"""What the core needs from the outside world, as protocols the core owns.

Connectors in ``integrations/`` implement these; :mod:`plugin.run` and the delivery
channels use only these, never a connector. The composition root (:mod:`plugin.app`)
decides which connector stands behind each port.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from plugin.core.model import Appointment, Invoice, LedgerSnapshot, Note
from plugin.core.policy import Overrides
from plugin.core.vocabulary import DeliveryStatus

__all__ = [
    "CalendarSource",
    "CalendarSync",
    "LedgerSource",
    "Outcome",
    "SmsGateway",
    "SyncResult",
]


@dataclass(frozen=True)
class Outcome:
    """What became of one message on one channel."""

    status: DeliveryStatus
    detail: str
    message_id: str | None = None


@dataclass(frozen=True)
class SyncResult:
    """One sync of an accounting system: the whole snapshot as it is now."""

    snapshot: LedgerSnapshot
    #: Incremental-sync bookmarks to keep with this snapshot (resource -> value).
    bookmarks: Mapping[str, str] = field(default_factory=dict)
    #: Records that could not be read, one sentence each; they kept their previous version.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CalendarSync:
    """One read of a calendar: the appointments ahead, and where to read on from."""

    appointments: tuple[Appointment, ...]
    bookmarks: Mapping[str, str] = field(default_factory=dict)
    #: The events left out because they could not be read, each named.
    warnings: tuple[str, ...] = ()


class LedgerSource(Protocol):
    """An accounting system, as the run uses it (integrations.base.BookkeepingConnector)."""

    #: Told (resource, records read so far) during a long sync, for a progress display.
    progress: Callable[[str, int], None] | None

    @property
    def title(self) -> str: ...
    @property
    def source_id(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def has_mailer(self) -> bool: ...
    @property
    def writes_notes(self) -> bool:
        """Whether the platform keeps Kindly's notes at all."""
        ...

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        """Bring ``previous`` up to date (all or nothing)."""
        ...

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]: ...
    def write_note(self, note: Note) -> None: ...
    def write_notes(
        self, notes: Sequence[Note], *, check: Collection[str] = ()
    ) -> Mapping[str, str | None]:
        """Write a batch of notes, each once on every record it belongs to.

        Per note id: None once it is there (written now, or found), else why it is not.
        Notes whose ids are in ``check`` may be there already, wholly or in part (an
        earlier try was cut short): look on each record before writing to it.
        """
        ...

    def read_notes(self, among: Sequence[Invoice] | None = None) -> tuple[Note, ...]:
        """Kindly's notes; with ``among``, only those on these invoices (a platform that
        keeps notes per invoice then reads just those)."""
        ...

    def existing_note_ids(self, notes: Iterable[Note]) -> set[str]: ...
    def invoice_pdf(self, invoice: Invoice) -> bytes | None: ...
    def put_in_group(self, customer_id: str, group: str, leaving: Collection[str] = ()) -> None:
        """Write a client's setting to the platform as its client group (say a contact group)."""
        ...

    def allowance(self) -> Mapping[str, int] | None:
        """Calls left of the platform's allowance this "minute" and "day", as last said."""
        ...

    def platform_reminders(self) -> list[str]:
        """The payment reminders the platform sends by itself, one sentence each."""
        ...

    def online_invoice_url(self, invoice: Invoice) -> str | None: ...
    def group_settings(self) -> Mapping[str, Overrides]: ...

    def email_invoice(self, invoice: Invoice, reference: str | None = None) -> Outcome:
        """Have the platform e-mail the invoice itself; a failure comes back as an outcome."""
        ...

    def email_holdup(self, invoices: Sequence[Invoice]) -> Outcome | None:
        """Why the platform cannot e-mail all of these invoices now; None when it can."""
        ...

    @property
    def mailer_idempotent(self) -> bool:
        """Whether asking the platform's mailer again after a lost answer cannot e-mail
        twice (it takes an idempotency key)."""
        ...


class CalendarSource(Protocol):
    """A calendar the appointments come from (integrations.calendars)."""

    @property
    def source_id(self) -> str:
        """Names it in the store, where its bookmarks are kept with the snapshot."""
        ...

    @property
    def location(self) -> str: ...

    def sync(self, now: datetime, bookmarks: Mapping[str, str]) -> CalendarSync:
        """The appointments ahead, read on from ``bookmarks`` (the last sync's)."""
        ...


class HandOver(Protocol):
    """Called by a channel at the last moment before the content leaves (see plugin.run)."""

    def __call__(self) -> None: ...

    def take_back(self) -> None:
        """The other side refused it after all ("try again"): nothing was delivered."""
        ...


class SmsGateway(Protocol):
    """Sends one text to one number (integrations.sms)."""

    @property
    def name(self) -> str: ...

    def send(
        self, number: str, text: str, reference: str, hand_over: Callable[[], None]
    ) -> Outcome: ...

    def close(self) -> None: ...
