"""The contract every calendar connector passes: ``calendar_contract(factory)``.

The events from a day ago to the horizon come back, and nothing outside it. With
``Capability.INCREMENTAL``: a sync from the bookmarks of the last one costs a fixed number
of calls when nothing changed and brings nothing; after a move, a cancellation, a deletion
and a new event it brings only those four (counted at the platform) and applies them; and
when the platform has forgotten the sync state (Google or Graph 410, an invalid CalDAV
sync-token) it starts over and reads on from there.

With the harness's ``put_event``, the event kinds every calendar must read alike (issue 18):
an all-day event is its date; a series in another zone keeps the zone, with a moved
occurrence at its new time under the id it had, and a cancelled one gone; organisers,
rooms and resources are nobody to remind; an invitation to one occurrence alone is an event;
and an event that cannot be read is left out and named while the others are read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest

from integrations.base import Capability
from plugin.core.model import Appointment, AppointmentStatus
from plugin.ports import CalendarSync

from .generate import lacks_capability, suite
from .harness import CalendarHarness, EventSpec, Guest, HarnessFactory

__all__ = ["CalendarContract", "calendar_contract"]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
#: The events' own zone: not the company's, nor UTC.
LONDON = ZoneInfo("Europe/London")


def _by_id(result: CalendarSync) -> dict[str, Appointment]:
    found = {a.id: a for a in result.appointments}
    assert len(found) == len(result.appointments), "each appointment once"
    return found


class CalendarKindsContract:
    """The event kinds every calendar must read alike (issue 18); run by CalendarContract."""

    @staticmethod
    def _at(cal: CalendarHarness, days: int, hour: int, minute: int = 0) -> datetime:
        """``days`` after the harness's today, at this time in London."""
        day = (cal.now + days * DAY).date()
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON)

    @staticmethod
    def _put(cal: CalendarHarness, event: EventSpec) -> None:
        if cal.put_event is None:
            pytest.skip("the harness writes no event kinds (put_event)")
        cal.put_event(event)

    def test_an_all_day_event_is_its_date(self, cal: CalendarHarness) -> None:
        day = (cal.now + 3 * DAY).date()
        self._put(cal, EventSpec("open-day", day, day + DAY, title="Open day"))
        (found,) = cal.calendar.sync(cal.now, {}).appointments
        assert found.all_day and found.title == "Open day"
        assert (found.start.date(), found.end.date()) == (day, day + DAY)

    def test_a_series_keeps_its_zone_and_its_moved_and_cancelled_occurrences(
        self, cal: CalendarHarness
    ) -> None:
        first = self._at(cal, 1, 10)
        series = EventSpec("daily", first, first + HOUR / 2, title="Stand-up", repeats=4)
        self._put(cal, series)
        before = cal.calendar.sync(cal.now, {})
        ids = {a.start: a.id for a in before.appointments}
        assert sorted(ids) == [first + n * DAY for n in range(4)]
        assert len(set(ids.values())) == 4, "each occurrence its own id"
        assert {a.timezone for a in before.appointments} == {"Europe/London"}
        moved = self._at(cal, 2, 15)
        changed = EventSpec(
            "daily",
            first,
            first + HOUR / 2,
            title="Stand-up",
            repeats=4,
            moved={1: (moved, moved + HOUR)},
            cancelled=frozenset({2}),
        )
        self._put(cal, changed)
        after = cal.calendar.sync(cal.now, before.bookmarks)
        live = {
            a.start: a for a in after.appointments if a.status is not AppointmentStatus.CANCELLED
        }
        assert sorted(live) == [first, moved, first + 3 * DAY]
        assert live[moved].end == moved + HOUR
        # An occurrence keeps its id where it moves: a fresh reminder is a matter of its
        # time, not of a new event.
        assert live[moved].id == ids[first + DAY]
        assert {a.timezone for a in live.values()} == {"Europe/London"}
        assert live[moved].start.utcoffset() == timedelta(0), "London's own clock in winter"

    def test_organisers_rooms_and_resources_are_nobody_to_remind(
        self, cal: CalendarHarness
    ) -> None:
        start = self._at(cal, 1, 14)
        people = (
            Guest("anouk@noordlicht.example", "Anouk", "organiser"),
            Guest("room1@noordlicht.example", "Room 1", "room"),
            Guest("beamer@noordlicht.example", "Beamer", "resource"),
            Guest("kari@example.test", "Kari"),
        )
        self._put(cal, EventSpec("review", start, start + HOUR, guests=people))
        (meeting,) = cal.calendar.sync(cal.now, {}).appointments
        assert [(a.name, a.email) for a in meeting.attendees] == [("Kari", "kari@example.test")]

    def test_an_invitation_to_one_occurrence_alone_is_an_event(self, cal: CalendarHarness) -> None:
        start = self._at(cal, 2, 10)
        self._put(
            cal,
            EventSpec(
                "their-series",
                start,
                start + HOUR,
                title="Their planning",
                only_occurrence_of=start,
            ),
        )
        (one,) = cal.calendar.sync(cal.now, {}).appointments
        assert (one.title, one.start, one.end) == ("Their planning", start, start + HOUR)

    def test_a_bad_event_is_left_out_and_named_and_the_others_are_read(
        self, cal: CalendarHarness
    ) -> None:
        start = self._at(cal, 1, 11)
        self._put(cal, EventSpec("unreadable", start, start + HOUR, broken=True))
        cal.put("fine", start, start + HOUR)
        first = cal.calendar.sync(cal.now, {})
        assert [a.id for a in first.appointments] == ["fine"]
        (warning,) = first.warnings
        assert "unreadable" in warning and cal.calendar_name in warning
        # Named again at the next read, until it is mended or gone.
        again = cal.calendar.sync(cal.now, first.bookmarks)
        assert [a.id for a in again.appointments] == ["fine"] and len(again.warnings) == 1


class CalendarContract(CalendarKindsContract):
    factory: ClassVar[HarnessFactory[CalendarHarness]]

    @pytest.fixture
    def cal(self, tmp_path: Path) -> Iterator[CalendarHarness]:
        with self.factory(tmp_path) as made:
            yield made

    @staticmethod
    def _seed(cal: CalendarHarness, count: int = 5) -> dict[str, tuple[datetime, datetime]]:
        """``count`` events over the coming days, e0 onwards: id -> (start, end)."""
        times = {}
        for n in range(count):
            start = cal.now + timedelta(days=1 + n % 3, hours=n)
            cal.put(f"e{n}", start, start + HOUR)
            times[f"e{n}"] = (start, start + HOUR)
        return times

    def test_events_in_the_window_come_back(self, cal: CalendarHarness) -> None:
        times = self._seed(cal)
        result = cal.calendar.sync(cal.now, {})
        found = _by_id(result)
        assert set(found) == set(times)
        for event_id, (start, end) in times.items():
            assert (found[event_id].start, found[event_id].end) == (start, end)
            assert found[event_id].status is AppointmentStatus.CONFIRMED
        assert result.bookmarks, "something to read on from"
        assert {a.id for a in cal.calendar.appointments(cal.now)} == set(times)

    def test_nothing_outside_the_horizon(self, cal: CalendarHarness) -> None:
        now, horizon = cal.now, cal.now + cal.horizon
        cal.put("over", now - timedelta(days=3), now - timedelta(days=3) + HOUR)
        cal.put("yesterday", now - 12 * HOUR, now - 11 * HOUR)
        cal.put("soon", now + HOUR, now + 2 * HOUR)
        cal.put("edge", horizon - 2 * HOUR, horizon - HOUR)
        cal.put("beyond", horizon + timedelta(days=1), horizon + timedelta(days=1) + HOUR)
        first = cal.calendar.sync(now, {})
        assert set(_by_id(first)) == {"yesterday", "soon", "edge"}
        # Moved past the horizon: no longer ahead.
        cal.put("soon", horizon + timedelta(days=2), horizon + timedelta(days=2) + HOUR)
        later = cal.calendar.sync(now, first.bookmarks)
        assert set(_by_id(later)) == {"yesterday", "edge"}

    def test_an_unchanged_calendar_syncs_in_fixed_calls_and_brings_nothing(
        self, cal: CalendarHarness
    ) -> None:
        self._seed(cal)
        first = cal.calendar.sync(cal.now, {})
        calls, served = cal.calls(), cal.served()
        again = cal.calendar.sync(cal.now, first.bookmarks)
        assert _by_id(again) == _by_id(first)
        assert cal.calls() - calls == cal.unchanged_calls
        assert cal.served() - served == 0, "nothing changed: nothing sent"

    def test_a_sync_after_changes_brings_only_them_and_applies_them(
        self, cal: CalendarHarness
    ) -> None:
        self._seed(cal)
        first = cal.calendar.sync(cal.now, {})
        before = _by_id(first)
        moved = cal.now + timedelta(days=4, hours=3)
        cal.put("e1", moved, moved + 2 * HOUR)
        cal.cancel("e2")
        cal.delete("e3")
        added = cal.now + timedelta(days=2, hours=5)
        cal.put("e9", added, added + HOUR)
        calls, served = cal.calls(), cal.served()
        later = cal.calendar.sync(cal.now, first.bookmarks)
        assert cal.served() - served == 4, "the four changes, not the whole calendar"
        assert cal.calls() - calls == cal.changed_calls
        found = _by_id(later)
        assert (found["e1"].start, found["e1"].end) == (moved, moved + 2 * HOUR)
        if cal.cancelled_stays:
            assert found["e2"].status is AppointmentStatus.CANCELLED
        else:
            assert "e2" not in found
        assert "e3" not in found
        assert found["e9"].start == added
        assert {i: found[i] for i in ("e0", "e4")} == {i: before[i] for i in ("e0", "e4")}
        # Read on from the new bookmarks: the changes are not brought again.
        served = cal.served()
        again = cal.calendar.sync(cal.now, later.bookmarks)
        assert _by_id(again) == found and cal.served() == served

    def test_an_expired_sync_state_starts_over(self, cal: CalendarHarness) -> None:
        times = self._seed(cal)
        first = cal.calendar.sync(cal.now, {})
        start = cal.now + timedelta(days=2, hours=7)
        cal.put("e5", start, start + HOUR)  # a change the lost state would have carried
        marks: Mapping[str, str] = cal.expire(first.bookmarks)
        calls, served = cal.calls(), cal.served()
        fresh = cal.calendar.sync(cal.now, marks)
        assert set(_by_id(fresh)) == {*times, "e5"}
        assert cal.served() - served == len(times) + 1, "the whole calendar, read again"
        assert cal.calls() - calls == cal.expired_calls(len(times) + 1)
        assert dict(fresh.bookmarks) != dict(marks)
        # And reads on from the new state.
        calls, served = cal.calls(), cal.served()
        again = cal.calendar.sync(cal.now, fresh.bookmarks)
        assert _by_id(again) == _by_id(fresh)
        assert cal.calls() - calls == cal.unchanged_calls and cal.served() == served


def calendar_contract(factory: HarnessFactory[CalendarHarness]) -> type:
    """The calendar contract for ``factory``'s connector, as a test class: assign it to a
    ``Test...`` name in the connector's test file."""
    incremental = lacks_capability(factory.connector_class, Capability.INCREMENTAL)
    skip = {
        "test_an_unchanged_calendar_syncs_in_fixed_calls_and_brings_nothing": incremental,
        "test_a_sync_after_changes_brings_only_them_and_applies_them": incremental,
        "test_an_expired_sync_state_starts_over": incremental,
    }
    return suite(CalendarContract, factory, skip=skip)
