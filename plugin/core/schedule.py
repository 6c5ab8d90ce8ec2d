"""When each organisation runs by itself: soon after its clients' send windows open.

Pure: no clock, no I/O. An organisation's clients live in one or more *zones*: a time
zone, a country (whose business days count) and the send window their policy gives. Each
zone has one *tick* a day: the window's opening on a business day of that country, plus
a short delay (a reminder should not arrive at the very minute the window opens, and the
sync before it takes a moment). A zone whose window is "always" ticks every day at
00:00 plus the delay, local time.

A run is due for a zone when its latest tick at or before now is later than the last
tick done for it. However many ticks were missed (workers down for three days), only the
latest is due: a run catches up once, not once per missed day.

    >>> from datetime import UTC, datetime
    >>> oslo = Zone("Europe/Oslo", "NO", SendWindow.parse("09:00-17:00"))
    >>> [t.day.isoformat() for t in due_ticks([oslo], {}, datetime(2026, 12, 2, 9, 0, tzinfo=UTC))]
    ['2026-12-02']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from plugin.core.businessdays import SendWindow, business_calendar
from plugin.core.model import LedgerSnapshot

if TYPE_CHECKING:
    from plugin.core.policy import PlanningSettings

__all__ = ["DELAY", "Tick", "Zone", "due_ticks", "latest_tick", "next_tick", "zones_of"]

#: How long after a window opens its organisation runs.
DELAY = timedelta(minutes=5)
#: How far back a tick is looked for: more than any run of holidays and weekends.
LOOKBACK_DAYS = 21


@dataclass(frozen=True, slots=True)
class Zone:
    """Where some of an organisation's clients are: their clock, their country's business
    days, and the send window their policy gives them."""

    timezone: str
    country: str
    window: SendWindow

    @property
    def key(self) -> str:
        """Names the zone in the store: ``Europe/Oslo|NO|09:00-17:00``."""
        hours = (
            "always" if self.window.always else f"{self.window.start:%H:%M}-{self.window.end:%H:%M}"
        )
        return f"{self.timezone}|{self.country}|{hours}"

    @classmethod
    def from_key(cls, key: str) -> Zone:
        timezone, country, hours = key.split("|")
        return cls(timezone, country, SendWindow.parse(hours))


@dataclass(frozen=True, slots=True)
class Tick:
    """One zone's run of one local day, at ``at`` (aware)."""

    zone: Zone
    day: date
    at: datetime

    @property
    def key(self) -> str:
        return f"{self.zone.key}|{self.day.isoformat()}"


def _tick_on(zone: Zone, day: date, delay: timedelta) -> Tick | None:
    """The zone's tick on its local ``day``; None on a day it does not run."""
    if not zone.window.always and not business_calendar(zone.country).is_business_day(day):
        return None
    opening = time(0, 0) if zone.window.always else zone.window.start
    at = datetime.combine(day, opening, tzinfo=ZoneInfo(zone.timezone)) + delay
    return Tick(zone, day, at)


def latest_tick(zone: Zone, now: datetime, delay: timedelta = DELAY) -> Tick | None:
    """The zone's last tick at or before ``now`` (None if none in three weeks)."""
    today = now.astimezone(ZoneInfo(zone.timezone)).date()
    for back in range(LOOKBACK_DAYS + 1):
        tick = _tick_on(zone, today - timedelta(days=back), delay)
        if tick is not None and tick.at <= now:
            return tick
    return None


def next_tick(zone: Zone, now: datetime, delay: timedelta = DELAY) -> Tick | None:
    """The zone's first tick after ``now`` (None if none in three weeks)."""
    today = now.astimezone(ZoneInfo(zone.timezone)).date()
    for ahead in range(LOOKBACK_DAYS + 1):
        tick = _tick_on(zone, today + timedelta(days=ahead), delay)
        if tick is not None and tick.at > now:
            return tick
    return None


def due_ticks(
    zones: Iterable[Zone],
    done: Mapping[str, date],
    now: datetime,
    delay: timedelta = DELAY,
) -> list[Tick]:
    """The ticks due at ``now``: for each zone its latest tick, unless that day's (or a
    later one's) run is done already (``done``: the last day done, by zone key)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    due = []
    for zone in dict.fromkeys(zones):
        tick = latest_tick(zone, now, delay)
        last = done.get(zone.key)
        if tick is not None and (last is None or last < tick.day):
            due.append(tick)
    return sorted(due, key=lambda tick: (tick.at, tick.zone.key))


def zones_of(snapshot: LedgerSnapshot, settings: PlanningSettings) -> set[Zone]:
    """The zones of the clients with something open (an invoice not paid), each with the
    send window of the policy their settings give them."""
    from plugin.core.planning import settings_for

    owing = {invoice.customer_id for invoice in snapshot.invoices if invoice.is_open}
    zones = set()
    for customer in snapshot.customers:
        if customer.id in owing:
            policy = settings.policies[settings_for(settings, customer).policy]
            zones.add(Zone(customer.timezone, customer.country, policy.send_window))
    return zones
