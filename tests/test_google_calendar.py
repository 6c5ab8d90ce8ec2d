"""The Google Calendar connector against a fake Google on loopback: the calendar and HTTP
contracts, then what is Google's own."""

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
from integrations.calendars.google import GoogleCalendar, GoogleCalendarSettings
from integrations.oauth import Token, TokenVault
from plugin.core.model import AppointmentStatus
from plugin.state.store import Store
from tests.calendar_reader import Bookmarked
from tests.contract import (
    CalendarHarness,
    EventSpec,
    FakeTime,
    HttpHarness,
    calendar_contract,
    harness_factory,
    http_contract,
)
from tests.fakes.google_calendar import FakeGoogleCalendar

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# -- the contracts ----------------------------------------------------------------------------


class GoogleOnFake:
    """A GoogleCalendar on a started fake, with a token that the fake accepts."""

    def __init__(self, folder: Path, page_size: int) -> None:
        self.fake = FakeGoogleCalendar(page_size=page_size)
        self.fake.start()
        self.store = Store.open(f"sqlite:///{folder / 'state.sqlite3'}")
        vault = TokenVault(self.store, "google", Fernet.generate_key(), clock=lambda: NOW)
        vault.save(Token(self.fake.access_token, "google-refresh", NOW + timedelta(hours=1)))
        self.renewed: list[str] = []
        self.time = FakeTime()
        self.calendar = GoogleCalendar(
            GoogleCalendarSettings(api_url=self.fake.url), vault, self.renew, sleep=self.time.sleep
        )

    def renew(self, token: Token) -> Token:
        # Google keeps the same refresh token.
        self.renewed.append(token.refresh_token)
        return Token(self.fake.access_token, token.refresh_token, NOW + timedelta(hours=1))

    def put(self, event_id: str, start: datetime, end: datetime) -> None:
        self.fake.put(
            {
                "kind": "calendar#event",
                "id": event_id,
                "status": "confirmed",
                "summary": f"Meeting {event_id}",
                "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": end.isoformat(), "timeZone": "UTC"},
            }
        )

    def put_event(self, spec: EventSpec) -> None:
        """The event kind as Google holds it: a series with its exceptions as instances."""

        def when(value: date | datetime) -> dict[str, str]:
            if isinstance(value, datetime):
                return {"dateTime": value.isoformat(), "timeZone": str(value.tzinfo)}
            return {"date": value.isoformat()}

        def instance_id(original: datetime) -> str:
            return f"{spec.id}_{original.astimezone(UTC):%Y%m%dT%H%M%SZ}"

        roles: dict[str, dict[str, object]] = {
            "organiser": {"organizer": True, "responseStatus": "accepted"},
            "room": {"resource": True},
            "resource": {"resource": True},
            "guest": {"responseStatus": "needsAction"},
        }
        event: dict[str, Any] = {
            "kind": "calendar#event",
            "id": spec.id,
            "iCalUID": f"{spec.id}@google.com",
            "status": "confirmed",
            "summary": spec.title,
            "start": when(spec.start),
            "end": when(spec.end),
            "attendees": [
                {"email": g.email, "displayName": g.name, **roles[g.role]} for g in spec.guests
            ],
        }
        if spec.broken:
            event["start"] = {"dateTime": "2026-11-31T10:00:00+00:00", "timeZone": "Europe/London"}
        if spec.only_occurrence_of is not None:
            event["id"] = instance_id(spec.only_occurrence_of)
            event["recurringEventId"] = spec.id
            event["originalStartTime"] = when(spec.only_occurrence_of)
        if spec.repeats > 1:
            event["recurrence"] = [f"RRULE:FREQ=DAILY;COUNT={spec.repeats}"]
        self.fake.put(event)
        assert isinstance(spec.start, datetime) or not (spec.moved or spec.cancelled)
        for index, (begin, finish) in spec.moved.items():
            original = spec.start + timedelta(days=index)
            assert isinstance(original, datetime)
            exception = {**event, "start": when(begin), "end": when(finish)}
            del exception["recurrence"]
            self.fake.put(
                {
                    **exception,
                    "id": instance_id(original),
                    "recurringEventId": spec.id,
                    "originalStartTime": when(original),
                }
            )
        for index in spec.cancelled:
            original = spec.start + timedelta(days=index)
            assert isinstance(original, datetime)
            self.fake.put(
                {
                    "id": instance_id(original),
                    "status": "cancelled",
                    "recurringEventId": spec.id,
                    "originalStartTime": when(original),
                }
            )

    def close(self) -> None:
        self.store.close()
        self.fake.stop()


@harness_factory(GoogleCalendar)
def google_http_harness(folder: Path) -> Iterator[HttpHarness]:
    google = GoogleOnFake(folder, page_size=3)
    fake, count = google.fake, {"n": 0}

    def seed(number: int) -> None:
        for _ in range(number):
            count["n"] += 1
            start = NOW + timedelta(days=1, minutes=count["n"])
            google.put(f"ev{count['n']}", start, start + timedelta(hours=1))

    def point_at(url: str) -> None:
        google.calendar.settings = replace(google.calendar.settings, api_url=url)

    def revoke() -> None:
        fake.access_token = "a-new-access-token"

    try:
        yield HttpHarness(
            connector=google.calendar,
            time=google.time,
            seed=seed,
            fail_list_call=lambda status, headers, times: fake.faults.extend(
                [(status, headers)] * times
            ),
            revoke_access=revoke,
            refreshes=lambda: len(google.renewed),
            list_calls=lambda: len(fake.calls),
            point_at=point_at,
            secrets=lambda: [fake.access_token, "google-refresh"],
            page_size=3,
            read=lambda: len(google.calendar.appointments(NOW)),
        )
    finally:
        google.close()


@harness_factory(GoogleCalendar)
def google_calendar_harness(folder: Path) -> Iterator[CalendarHarness]:
    google = GoogleOnFake(folder, page_size=2)
    fake = google.fake

    def expire(bookmarks: Mapping[str, str]) -> dict[str, str]:
        fake.expired.add(json.loads(bookmarks[CALENDAR_STATE])["sync_token"])
        return dict(bookmarks)

    try:
        yield CalendarHarness(
            calendar=google.calendar,
            now=NOW,
            horizon=timedelta(days=google.calendar.settings.horizon_days),
            put=google.put,
            # Google lists a cancelled or deleted event as {"id", "status": "cancelled"}.
            cancel=fake.cancel,
            delete=fake.cancel,
            expire=expire,
            calls=lambda: len(fake.calls),
            served=lambda: sum(fake.served),
            cancelled_stays=False,
            unchanged_calls=1,
            changed_calls=2,  # four changes, two to a page
            expired_calls=lambda events: 1 + -(-events // 2),  # the 410, then every page
            put_event=google.put_event,
            calendar_name="Google Calendar primary",
        )
    finally:
        google.close()


TestGoogleCalendarContract = calendar_contract(google_calendar_harness)
TestGoogleHttp = http_contract(google_http_harness)

# -- Google's own -----------------------------------------------------------------------------


def google_event(event_id: str, start: str, end: str, **fields: object) -> dict[str, object]:
    return {
        "kind": "calendar#event",
        "id": event_id,
        "status": "confirmed",
        "summary": f"Meeting {event_id}",
        "start": {"dateTime": start, "timeZone": "Europe/Amsterdam"},
        "end": {"dateTime": end, "timeZone": "Europe/Amsterdam"},
        "attendees": [
            {"email": "me@noordlicht.example", "self": True, "organizer": True},
            {"email": "ada@client.example", "displayName": "Ada", "responseStatus": "accepted"},
            {"email": "no@client.example", "responseStatus": "declined"},
        ],
        **fields,
    }


@pytest.fixture
def fake() -> Iterator[FakeGoogleCalendar]:
    server = FakeGoogleCalendar()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def calendar(fake: FakeGoogleCalendar, tmp_path: Path) -> Iterator[Bookmarked]:
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    vault = TokenVault(store, "google", Fernet.generate_key(), clock=lambda: NOW)
    vault.save(Token(fake.access_token, "google-refresh", NOW + timedelta(hours=1)))

    def refresh(token: Token) -> Token:
        raise AssertionError("no refresh expected")

    yield Bookmarked(
        GoogleCalendar(
            GoogleCalendarSettings(api_url=fake.url, timezone="Europe/Amsterdam"), vault, refresh
        )
    )
    store.close()


def test_full_then_incremental_then_a_full_resync_on_410(
    fake: FakeGoogleCalendar, calendar: Bookmarked
) -> None:
    fake.page_size = 2
    for n in range(5):
        fake.put(
            google_event(
                f"e{n}",
                f"2026-11-2{4 + n % 3}T10:00:00+01:00",
                f"2026-11-2{4 + n % 3}T11:00:00+01:00",
            )
        )
    found = {a.id: a for a in calendar.appointments(NOW)}
    assert set(found) == {f"e{n}" for n in range(5)}
    assert len(fake.calls) == 3, "three pages"
    e0 = found["e0"]
    assert [a.email for a in e0.attendees] == ["ada@client.example"], "not me, not who declined"
    assert e0.start == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    # Nothing changed: one call, the same events.
    fake.calls.clear()
    assert {a.id for a in calendar.appointments(NOW)} == set(found)
    assert len(fake.calls) == 1

    # A moved event, a cancelled one, a new one: only those come back, and are applied.
    fake.put(google_event("e1", "2026-11-30T15:00:00+01:00", "2026-11-30T16:00:00+01:00"))
    fake.cancel("e2")
    fake.put(
        google_event(
            "e9",
            "2026-11-25T08:00:00+01:00",
            "2026-11-25T08:30:00+01:00",
            hangoutLink="https://meet.google.com/abc-defg-hij",
            status="tentative",
        )
    )
    fake.calls.clear()
    changed = {a.id: a for a in calendar.appointments(NOW)}
    assert len(fake.calls) == 2, "three changes, two to a page"
    assert set(changed) == {"e0", "e1", "e3", "e4", "e9"}
    assert changed["e1"].start == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    assert changed["e9"].online_url == "https://meet.google.com/abc-defg-hij"
    assert changed["e9"].status is AppointmentStatus.TENTATIVE

    # The token expires: Google answers 410, and the calendar is read in full again.
    state = calendar.state
    fake.expired.add(state["sync_token"])
    fake.calls.clear()
    again = {a.id for a in calendar.appointments(NOW)}
    assert again == set(changed)
    assert len(fake.calls) == 1 + 3, "the 410, then three pages"


def test_all_day_events_and_past_ones(fake: FakeGoogleCalendar, calendar: Bookmarked) -> None:
    fake.put(
        {
            "id": "day",
            "status": "confirmed",
            "summary": "Open day",
            "start": {"date": "2026-11-26"},
            "end": {"date": "2026-11-27"},
        }
    )
    fake.put(google_event("old", "2026-11-01T10:00:00+01:00", "2026-11-01T11:00:00+01:00"))
    found = {a.id: a for a in calendar.appointments(NOW)}
    assert set(found) == {"day"}
    assert found["day"].all_day and str(found["day"].start.tzinfo) == "Europe/Amsterdam"


def test_a_refused_token_is_renewed(fake: FakeGoogleCalendar, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite3'}")
    vault = TokenVault(store, "google", Fernet.generate_key(), clock=lambda: NOW)
    vault.save(Token("revoked-token", "google-refresh", NOW + timedelta(hours=1)))
    renewed: list[str] = []

    def refresh(token: Token) -> Token:
        renewed.append(token.refresh_token)
        # Google keeps the same refresh token.
        return Token(fake.access_token, token.refresh_token, NOW + timedelta(hours=1))

    calendar = GoogleCalendar(GoogleCalendarSettings(api_url=fake.url), vault, refresh)
    fake.put(google_event("e0", "2026-11-24T10:00:00+01:00", "2026-11-24T11:00:00+01:00"))
    assert [a.id for a in calendar.appointments(NOW)] == ["e0"]
    assert renewed == ["google-refresh"]
    store.close()


def test_connect_google_and_its_events_are_planned(
    fake: FakeGoogleCalendar, demo_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from plugin.app.cli import cli

    monkeypatch.setenv("KINDLY_SECRET_KEY", Fernet.generate_key().decode())
    config = demo_workspace / "kindly.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + fake.calendar_section(), encoding="utf-8"
    )
    fake.put(
        {
            **google_event("g1", "2026-11-23T10:00:00+01:00", "2026-11-23T11:00:00+01:00"),
            "attendees": [
                {"email": "administratie@bakkerijvandijk.example", "displayName": "Marieke"}
            ],
        }
    )
    # An event Google holds that cannot be read: named, and nothing else stops (issue 18).
    fake.put(google_event("bad", "2026-11-31T10:00:00+01:00", "2026-11-31T11:00:00+01:00"))
    runner = CliRunner()
    base = ["--config", str(config)]
    connected = runner.invoke(
        cli, [*base, "connect", "google", "--refresh-token", "google-refresh"]
    )
    assert connected.exit_code == 0, connected.output
    assert "Connected Google" in connected.output
    at = ["--at", "2026-11-22T14:00:00+01:00"]
    synced = runner.invoke(cli, [*base, "sync", *at])
    # Synced, with something left out: the exit code says so (INCOMPLETE).
    assert synced.exit_code == 3, synced.output
    assert "the event bad in Google Calendar primary is left out" in " ".join(synced.output.split())
    planned = runner.invoke(cli, [*base, "plan", "--json", *at])
    import json

    assert json.loads(planned.output)["reminders"], "the invoice reminders go on"
    appointments = json.loads(planned.output)["appointments"]
    assert [a["appointment_id"] for a in appointments if a["appointment_id"] == "g1"] == ["g1"]
    (g1,) = [a for a in appointments if a["appointment_id"] == "g1"]
    assert g1["language"] == "nl", "linked to the client C01 by the attendee's e-mail"
