"""Business days and send windows, per country, from the `holidays` library.

A business day is a weekday that is not a public holiday in the client's country. A
reminder "3 business days after the due date" for a Norwegian client skips Norwegian
holidays; a send window of 09:00-17:00 is read on the client's own clock.

    >>> from datetime import date
    >>> norway = business_calendar("NO")
    >>> norway.add_business_days(date(2026, 5, 15), 1)    # Friday; Monday 18th is a weekday
    datetime.date(2026, 5, 18)
    >>> norway.add_business_days(date(2026, 12, 23), 2)   # Christmas and Boxing Day are off
    datetime.date(2026, 12, 28)

Everything is pure and cached: planning 100,000 invoices asks the same few questions many
times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["BusinessCalendar", "SendWindow", "business_calendar"]


class BusinessCalendar:
    """Weekends and the public holidays of one country (weekends only if it is unknown)."""

    def __init__(self, country: str) -> None:
        import holidays

        self.country = country
        self._holidays: Any
        try:
            self._holidays = holidays.country_holidays(country)
            self.knows_holidays = True
        except NotImplementedError:
            self._holidays = {}
            self.knows_holidays = False

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.country!r})"

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def holiday_name(self, day: date) -> str | None:
        name = self._holidays.get(day) if self.knows_holidays else None
        return str(name) if name else None

    @lru_cache(maxsize=65536)  # noqa: B019 - one instance per country, kept for the process
    def add_business_days(self, day: date, count: int) -> date:
        """``count`` business days after ``day`` (before it, for a negative count)."""
        step = 1 if count >= 0 else -1
        remaining = abs(count)
        while remaining:
            day += timedelta(days=step)
            if self.is_business_day(day):
                remaining -= 1
        return day

    @lru_cache(maxsize=65536)  # noqa: B019
    def next_business_day(self, day: date) -> date:
        """``day`` itself if it is a business day, else the next one."""
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day


@cache
def business_calendar(country: str) -> BusinessCalendar:
    return BusinessCalendar(country)


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Hours on business days when a reminder may arrive, on the recipient's clock."""

    start: time = time(9, 0)
    end: time = time(17, 0)
    #: No window at all: any hour of any day (the demo uses it so it always shows something).
    always: bool = False

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError("send_window: the start must be before the end")

    @classmethod
    def parse(cls, text: str) -> SendWindow:
        """``"09:00-17:00"``, or ``"always"``."""
        if text.strip() == "always":
            return cls(always=True)
        try:
            start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
        except ValueError:
            raise ValueError(f"send_window: {text!r} is not like 09:00-17:00") from None
        return cls(start, end)

    def next_opening(self, now: datetime, timezone: str, country: str) -> datetime | None:
        """None if the window is open at ``now``, else when it next opens (aware)."""
        if self.always:
            return None
        calendar = business_calendar(country)
        local = now.astimezone(ZoneInfo(timezone))
        day = local.date()
        if calendar.is_business_day(day):
            if self.start <= local.time() < self.end:
                return None
            if local.time() < self.start:
                return datetime.combine(day, self.start, tzinfo=local.tzinfo)
        opening_day = calendar.next_business_day(day + timedelta(days=1))
        return datetime.combine(opening_day, self.start, tzinfo=ZoneInfo(timezone))
