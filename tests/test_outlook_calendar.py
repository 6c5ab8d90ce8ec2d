"""The Outlook (Microsoft Graph) calendar connector against a fake Graph on loopback: the
calendar and HTTP contracts, then what is Outlook's own."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from integrations.base import CALENDAR_STATE
from integrations.calendars.outlook import OutlookCalendar, OutlookCalendarSettings
from integrations.oauth import Token, TokenVault
from plugin.core.model import AppointmentStatus
from plugin.state.store import Store
from tests.calendar_reader import Bookmarked
from tests.contract import (
    CalendarHarness,
    EventSpec,
    FakeTime,
    Guest,
    HttpHarness,
    calendar_contract,
    harness_factory,
    http_contract,
)
from tests.fakes.graph_calendar import FakeGraphCalendar

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# -- the contracts ----------------------------------------------------------------------------


class OutlookOnFake:
    """An OutlookCalendar on a started fake Graph, with a token that the fake accepts."""

    def __init__(self, folder: Path, page_size: int) -> None:
        self.fake = FakeGraphCalendar(page_size=page_size)
        self.fake.start()
        self.store = Store.open(f"sqlite:///{folder / 'state.sqlite3'}")
        vault = TokenVault(self.store, "outlook", Fernet.generate_key(), clock=lambda: NOW)
        vault.save(Token(self.fake.access_token, "outlook-refresh", NOW + timedelta(hours=1)))
        self.renewed: list[str] = []
        self.time = FakeTime()
        self.calendar = OutlookCalendar(
            OutlookCalendarSettings(api_url=self.fake.url),
            vault,
            self.renew,
            sleep=self.time.sleep,
        )

    def renew(self, token: Token) -> Token:
        self.renewed.append(token.refresh_token)
        return Token(self.fake.access_token, token.refresh_token, NOW + timedelta(hours=1))

    def put(self, event_id: str, start: datetime, end: datetime, **fields: Any) -> None:
        def stamp(moment: datetime) -> dict[str, str]:
            text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")
            return {"dateTime": text, "timeZone": "UTC"}

        self.fake.put(
            {
                "id": event_id,
                "subject": f"Meeting {event_id}",
                "type": "singleInstance",
                "start": stamp(start),
                "end": stamp(end),
                "isAllDay": False,
                "isCancelled": False,
                **fields,
            }
        )

    def put_event(self, spec: EventSpec) -> None:
        """The event kind as Graph holds it: a series master whose occurrences calendarView
        lists, its exceptions put under their occurrences' ids."""
        from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

        windows = {iana: name for name, iana in WINDOWS_TO_OLSON.items()}

        def stamp(value: date | datetime) -> dict[str, str]:
            if isinstance(value, datetime):
                value = value.astimezone(UTC)
                return {"dateTime": f"{value:%Y-%m-%dT%H:%M:%S}.0000000", "timeZone": "UTC"}
            return {"dateTime": f"{value:%Y-%m-%d}T00:00:00.0000000", "timeZone": "UTC"}

        def attendee(guest: Guest) -> dict[str, object]:
            return {
                "type": "resource" if guest.role in ("room", "resource") else "required",
                "emailAddress": {"name": guest.name, "address": guest.email},
                "status": {"response": "organizer" if guest.role == "organiser" else "none"},
            }

        event: dict[str, Any] = {
            "id": spec.id,
            "subject": spec.title,
            "type": "singleInstance",
            "start": stamp(spec.start),
            "end": stamp(spec.end),
            "isAllDay": not isinstance(spec.start, datetime),
            "isCancelled": False,
            "attendees": [attendee(guest) for guest in spec.guests],
        }
        if isinstance(spec.start, datetime):
            event["originalStartTimeZone"] = windows.get(str(spec.start.tzinfo), "UTC")
        if spec.broken:
            event["start"] = {"dateTime": "2026-11-31T10:00:00.0000000", "timeZone": "UTC"}
        if spec.only_occurrence_of is not None:
            # The series is the organiser's: this calendar holds the one occurrence.
            event.update(
                type="exception",
                seriesMasterId=f"{spec.id}-master",
                originalStart=spec.only_occurrence_of.astimezone(UTC).isoformat(),
            )
        if spec.repeats > 1:
            event.update(
                type="seriesMaster",
                recurrence={
                    "pattern": {"type": "daily", "interval": 1},
                    "range": {"type": "numbered", "numberOfOccurrences": spec.repeats},
                },
            )
        self.fake.put(event)
        occurrences = list(self.fake.occurrences(event)) if spec.repeats > 1 else []
        for index, (begin, finish) in spec.moved.items():
            moved = {**occurrences[index], "type": "exception"}
            self.fake.put({**moved, "start": stamp(begin), "end": stamp(finish)})
        for index in spec.cancelled:
            self.fake.delete(occurrences[index]["id"])

    def close(self) -> None:
        self.store.close()
        self.fake.stop()


@harness_factory(OutlookCalendar)
def outlook_http_harness(folder: Path) -> Iterator[HttpHarness]:
    outlook = OutlookOnFake(folder, page_size=3)
    fake, count = outlook.fake, {"n": 0}

    def seed(number: int) -> None:
        for _ in range(number):
            count["n"] += 1
            start = NOW + timedelta(days=1, minutes=count["n"])
            outlook.put(f"ev{count['n']}", start, start + timedelta(hours=1))

    def point_at(url: str) -> None:
        outlook.calendar.settings = replace(outlook.calendar.settings, api_url=url)

    def revoke() -> None:
        fake.access_token = "a-new-access-token"

    try:
        yield HttpHarness(
            connector=outlook.calendar,
            time=outlook.time,
            seed=seed,
            fail_list_call=lambda status, headers, times: fake.faults.extend(
                [(status, headers)] * times
            ),
            revoke_access=revoke,
            refreshes=lambda: len(outlook.renewed),
            list_calls=lambda: fake.calls,
            point_at=point_at,
            secrets=lambda: [fake.access_token, "outlook-refresh"],
            page_size=3,
            read=lambda: len(outlook.calendar.appointments(NOW)),
        )
    finally:
        outlook.close()


@harness_factory(OutlookCalendar)
def outlook_calendar_harness(folder: Path) -> Iterator[CalendarHarness]:
    outlook = OutlookOnFake(folder, page_size=2)
    fake = outlook.fake

    def cancel(event_id: str) -> None:
        _, event = fake.events[event_id]
        assert event is not None
        fake.put({**event, "isCancelled": True})

    def expire(bookmarks: Mapping[str, str]) -> dict[str, str]:
        link = json.loads(bookmarks[CALENDAR_STATE])["delta_link"]
        fake.expired.add(link.rsplit("=", 1)[1])
        return dict(bookmarks)

    try:
        yield CalendarHarness(
            calendar=outlook.calendar,
            now=NOW,
            horizon=timedelta(days=outlook.calendar.settings.horizon_days),
            put=outlook.put,
            cancel=cancel,  # Graph keeps a cancelled event, with isCancelled
            delete=fake.delete,
            expire=expire,
            calls=lambda: fake.calls,
            served=lambda: sum(fake.served),
            cancelled_stays=True,
            unchanged_calls=1,
            changed_calls=1,  # the delta link: every change in one answer
            expired_calls=lambda events: 1 + -(-events // 2),  # the 410, then every page
            put_event=outlook.put_event,
            calendar_name="the Outlook calendar",
        )
    finally:
        outlook.close()


TestOutlookCalendarContract = calendar_contract(outlook_calendar_harness)
TestOutlookHttp = http_contract(outlook_http_harness)

# -- Outlook's own ----------------------------------------------------------------------------


def graph_event(event_id: str, start: str, end: str, **fields: object) -> dict[str, object]:
    return {
        "id": event_id,
        "subject": f"Meeting {event_id}",
        "type": "singleInstance",
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"},
        "isAllDay": False,
        "isCancelled": False,
        "location": {"displayName": "Prinsengracht 263"},
        "attendees": [
            {
                "type": "required",
                "emailAddress": {"name": "Ada", "address": "ada@client.example"},
                "status": {"response": "accepted"},
            },
            {
                "type": "resource",
                "emailAddress": {"name": "Room 1", "address": "room1@noordlicht.example"},
                "status": {"response": "accepted"},
            },
        ],
        **fields,
    }


@pytest.fixture
def fake() -> Iterator[FakeGraphCalendar]:
    server = FakeGraphCalendar()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outlook(fake: FakeGraphCalendar, tmp_path: Path) -> Iterator[Bookmarked]:
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    vault = TokenVault(store, "outlook", Fernet.generate_key(), clock=lambda: NOW)
    vault.save(Token(fake.access_token, "graph-refresh", NOW + timedelta(hours=1)))
    yield Bookmarked(
        OutlookCalendar(OutlookCalendarSettings(api_url=fake.url), vault, lambda token: token)
    )
    store.close()


def test_delta_reads_everything_then_only_changes(
    fake: FakeGraphCalendar, outlook: Bookmarked
) -> None:
    for n in range(5):
        fake.put(
            graph_event(
                f"e{n}",
                f"2026-11-2{4 + n % 3}T09:00:00.0000000",
                f"2026-11-2{4 + n % 3}T10:00:00.0000000",
            )
        )
    found = {a.id: a for a in outlook.appointments(NOW)}
    assert set(found) == {f"e{n}" for n in range(5)}
    assert fake.calls == 3, "two events a page: three pages"
    e0 = found["e0"]
    assert e0.start == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert [a.email for a in e0.attendees] == ["ada@client.example"], "rooms are not reminded"

    fake.calls = 0
    assert {a.id for a in outlook.appointments(NOW)} == set(found)
    assert fake.calls == 1, "nothing changed: one call"

    fake.put(
        graph_event(
            "e1",
            "2026-11-30T14:00:00.0000000",
            "2026-11-30T15:00:00.0000000",
            isOnlineMeeting=True,
            onlineMeeting={"joinUrl": "https://teams.example/l/meetup-join/abc"},
        )
    )
    fake.delete("e2")
    fake.put(
        graph_event(
            "e3", "2026-11-25T09:00:00.0000000", "2026-11-25T10:00:00.0000000", isCancelled=True
        )
    )
    fake.calls = 0
    changed = {a.id: a for a in outlook.appointments(NOW)}
    assert fake.calls == 1
    assert set(changed) == {"e0", "e1", "e3", "e4"}
    assert changed["e1"].online_url == "https://teams.example/l/meetup-join/abc"
    assert changed["e3"].status is AppointmentStatus.CANCELLED

    state = outlook.state
    fake.expired.add(state["delta_link"].rsplit("=", 1)[1])
    fake.calls = 0
    assert {a.id for a in outlook.appointments(NOW)} == set(changed)
    assert fake.calls == 1 + 2, "410, then the window read again in two pages"


def test_a_new_window_when_the_old_one_no_longer_reaches_the_horizon(
    fake: FakeGraphCalendar, outlook: Bookmarked
) -> None:
    fake.put(graph_event("e0", "2026-11-24T09:00:00.0000000", "2026-11-24T10:00:00.0000000"))
    outlook.appointments(NOW)
    fake.calls = 0
    outlook.appointments(NOW + timedelta(days=10))
    assert fake.calls == 1, "the window (horizon + a week) still reaches"
    fake.calls = 0
    outlook.appointments(NOW + timedelta(days=9, hours=1) + timedelta(days=1))
    outlook_state = outlook.state
    assert datetime.fromisoformat(outlook_state["window_end"]) > NOW + timedelta(days=24)
