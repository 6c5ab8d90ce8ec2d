"""What a contract can drive: one dataclass per suite, and the factory that makes one.

A connector's test file writes a *harness factory*, a generator that starts the fake
platform in a folder, yields the harness, and stops it::

    @harness_factory(XeroConnector)
    def xero_harness(folder: Path) -> Iterator[BookkeepingHarness]:
        fake = FakeXero()
        fake.start()
        ...
        yield BookkeepingHarness(connector=..., ...)
        fake.stop()

and hands it to a generator (``TestXeroContract = bookkeeping_contract(xero_harness)``).
The factory names the connector class, so the generator knows its ``capabilities`` and
``auth`` before any fake starts; what the connector does not do beyond its capabilities
(it does not page, it asks only once) is said in ``lacks``, with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from integrations.base import (
    BookkeepingConnector,
    CalendarConnector,
    Connector,
    SmsGatewayConnector,
)

__all__ = [
    "TRAITS",
    "BookkeepingHarness",
    "CalendarHarness",
    "EventSpec",
    "FakeTime",
    "Guest",
    "HarnessFactory",
    "HttpHarness",
    "SmsGatewayHarness",
    "harness_factory",
]

H = TypeVar("H")

#: What a connector may lack beyond its capabilities, for ``harness_factory(lacks=...)``.
TRAITS = frozenset(
    {
        "paging",  # it reads in one answer: no paging case
        "retries",  # it asks once and leaves a failure to the next run
        "idempotent notes",  # writing the same note twice keeps two
        "signature header",  # its webhooks are signed inside the body, not in a header
        "several events a request",  # a webhook request names one record
    }
)


@dataclass
class FakeTime:
    """Monotonic seconds that move only when Kindly sleeps: backoff runs without waiting."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@dataclass(frozen=True)
class HarnessFactory(Generic[H]):
    """Makes a harness in a folder (a context manager); names the connector class."""

    connector_class: type[Connector]
    make: Callable[[Path], Iterator[H]]
    #: Trait (one of TRAITS) -> why the connector lacks it: the reason of the skip.
    lacks: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.lacks) - TRAITS
        if unknown:
            raise ValueError(f"unknown traits {sorted(unknown)}; known: {sorted(TRAITS)}")

    def __call__(self, folder: Path) -> contextlib.AbstractContextManager[H]:
        return contextlib.contextmanager(self.make)(folder)

    @property
    def name(self) -> str:
        return self.connector_class.__name__


def harness_factory(
    connector_class: type[Connector], *, lacks: Mapping[str, str] | None = None
) -> Callable[[Callable[[Path], Iterator[H]]], HarnessFactory[H]]:
    """Decorate a harness generator: ``@harness_factory(XeroConnector)``."""

    def wrap(make: Callable[[Path], Iterator[H]]) -> HarnessFactory[H]:
        return HarnessFactory(connector_class, make, dict(lacks or {}))

    return wrap


@dataclass
class BookkeepingHarness:
    """A bookkeeping connector on its platform, seeded with a few clients and invoices
    (two of them open at least)."""

    connector: BookkeepingConnector
    #: Text the connector's repr names its source by (a folder, an organisation).
    source_name: str
    #: The secrets it holds (tokens, keys): never in a repr.
    secrets: Callable[[], Sequence[str]] = list

    # -- NOTES -----------------------------------------------------------------------------
    #: How many records on the platform carry this note id (on every invoice and client
    #: it is written to): a repeated write must not add to them.
    copies: Callable[[str], int] | None = None

    # -- INCREMENTAL -----------------------------------------------------------------------
    #: Change this invoice on the platform (a status, an amount).
    change_invoice: Callable[[str], object] | None = None
    #: Delete this invoice on the platform.
    delete_invoice: Callable[[str], object] | None = None
    #: The calls the platform has answered so far.
    calls: Callable[[], int] | None = None
    #: The records the platform's list answers have carried so far.
    served: Callable[[], int] | None = None
    #: What a sync costs when nothing changed.
    unchanged_sync_calls: int | None = None

    # -- WEBHOOKS --------------------------------------------------------------------------
    #: The header the platform signs its webhooks in.
    signature_header: str | None = None
    #: The signature of this body under this key, as the platform computes it.
    sign: Callable[[bytes, str], str] | None = None
    #: A webhook body naming these (kind, id) records of the connector's own organisation,
    #: and these of another organisation.
    webhook_body: Callable[[Sequence[tuple[str, str]], Sequence[tuple[str, str]]], bytes] | None = (
        None
    )


@dataclass
class HttpHarness:
    """One HTTP connector on its fake platform, in terms the contract can drive."""

    connector: Any
    #: The clock its HTTP client sleeps on (None: it never sleeps, it asks once).
    time: FakeTime | None
    #: Put this many records on the platform.
    seed: Callable[[int], None]
    #: Answer the next calls (the first call of ``read``) with (status, headers), times.
    fail_list_call: Callable[[int, dict[str, str], int], None]
    #: Make the credentials the connector holds stop working on the platform.
    revoke_access: Callable[[], None]
    #: The calls of ``read``'s list made so far (for paging and asked-once counts).
    list_calls: Callable[[], int]
    #: Point the connector at another address (a misbehaving server).
    point_at: Callable[[str], None]
    #: Every secret the connector holds or sends.
    secrets: Callable[[], Sequence[str]]
    #: Read what the connector reads in a sync (or send one message): how many came through.
    read: Callable[[], int]
    #: Records a full page holds (with "paging").
    page_size: int = 0
    #: Token refreshes so far (OAuth).
    refreshes: Callable[[], int] = lambda: 0


@dataclass(frozen=True)
class Guest:
    """Someone on an event, as the platform marks them."""

    email: str
    name: str | None = None
    role: Literal["guest", "organiser", "room", "resource"] = "guest"


@dataclass(frozen=True)
class EventSpec:
    """An event of one of the kinds every calendar must read alike (issue 18), said once
    for all platforms; each harness writes it in its platform's own form.

    Times carry the event's own zone (a ZoneInfo); dates make an all-day event.
    """

    id: str
    start: datetime | date
    end: datetime | date
    title: str = "Meeting"
    guests: tuple[Guest, ...] = ()
    #: A daily series of this many occurrences (1: a single event).
    repeats: int = 1
    #: Occurrence (by index) -> where it was moved to: (start, end).
    moved: Mapping[int, tuple[datetime, datetime]] = field(default_factory=dict)
    #: Occurrences (by index) cancelled.
    cancelled: frozenset[int] = frozenset()
    #: The calendar holds only this occurrence of another calendar's series, which
    #: started at this time in it: an invitation to that occurrence alone.
    only_occurrence_of: datetime | None = None
    #: The platform holds it, but it cannot be read (a rule or a time that is no time).
    broken: bool = False


@dataclass
class CalendarHarness:
    """A calendar connector on its platform, empty at first; events are put by id."""

    calendar: CalendarConnector
    now: datetime
    #: How far ahead the connector reads.
    horizon: timedelta
    #: Add an event, or move it: (id, start, end).
    put: Callable[[str, datetime, datetime], None]
    #: Cancel an event (it stays in the calendar, cancelled, where the platform keeps it).
    cancel: Callable[[str], None]
    #: Delete an event.
    delete: Callable[[str], None]
    #: The platform forgets the sync state these bookmarks hold (a token expires); the
    #: bookmarks to sync with next.
    expire: Callable[[Mapping[str, str]], dict[str, str]]
    #: The calls the platform has answered so far.
    calls: Callable[[], int]
    #: The events (and removals) the platform's answers have carried so far.
    served: Callable[[], int]
    #: Whether a cancelled event comes back, marked cancelled (else it is gone).
    cancelled_stays: bool
    #: What a sync costs when nothing changed, and after a few changes.
    unchanged_calls: int
    changed_calls: int
    #: What a sync costs when the platform forgot its state, with ``events`` in the calendar.
    expired_calls: Callable[[int], int]
    #: Put an event of one of the kinds every calendar must read alike.
    put_event: Callable[[EventSpec], None] | None = None
    #: What the connector names the calendar by in a warning about a bad event.
    calendar_name: str = ""


@dataclass
class SmsGatewayHarness:
    """An SMS gateway on its fake."""

    gateway: SmsGatewayConnector
    #: The same gateway with another token.
    with_token: Callable[[str], SmsGatewayConnector]
    #: The token the gateway holds.
    token: str
    #: (to, text) of every message the gateway accepted.
    accepted: Callable[[], list[tuple[str, str]]]
    #: Answer the next call with this status.
    fail_next: Callable[[int], None]
    #: The calls the gateway has answered.
    calls: Callable[[], int]
    #: Point the gateway at another address (a misbehaving server).
    point_at: Callable[[str], None]
    #: A number the gateway accepts, and one it refuses as undeliverable.
    number: str = "+31612345678"
    refused_number: str = "+31612340000"
