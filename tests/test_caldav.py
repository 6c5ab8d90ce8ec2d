"""The CalDAV connector against a real CalDAV server (Radicale) on loopback: the calendar
and HTTP contracts, then what is CalDAV's own."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from integrations.base import CALENDAR_STATE
from integrations.calendars.caldav import CalDAVCalendar, CalDAVSettings
from integrations.http import HttpClient
from plugin.core.model import AppointmentStatus
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
from tests.fakes.radicale_server import (
    PASSWORD,
    USER,
    CalDAVTestServer,
    RadicaleServer,
    event,
    start_radicale,
)
from tests.fakes.xandikos_server import start_xandikos

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=AMS)

# -- the contracts ----------------------------------------------------------------------------


def utc_event(uid: str, start: datetime, end: datetime, extra: str = "") -> str:
    """A VCALENDAR with one event "Meeting <uid>", its times in UTC."""

    def utc(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kindly tests//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261120T090000Z\r\n"
        f"DTSTART:{utc(start)}\r\nDTEND:{utc(end)}\r\nSUMMARY:Meeting {uid}\r\n{extra}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def ics_of(spec: EventSpec) -> str:
    """The iCalendar text a CalDAV client would PUT for this event kind."""

    def when(name: str, value: date | datetime) -> str:
        if isinstance(value, datetime):
            return f"{name};TZID={value.tzinfo}:{value:%Y%m%dT%H%M%S}\r\n"
        return f"{name};VALUE=DATE:{value:%Y%m%d}\r\n"

    people = ""
    for guest in spec.guests:
        cn = f";CN={guest.name}" if guest.name else ""
        if guest.role == "organiser":
            # Calendars list the organiser among the attendees too, in other capitals.
            people += f"ORGANIZER{cn}:mailto:{guest.email}\r\n"
            people += f"ATTENDEE;ROLE=CHAIR{cn}:mailto:{guest.email.upper()}\r\n"
        elif guest.role in ("room", "resource"):
            people += f"ATTENDEE;CUTYPE={guest.role.upper()}{cn}:mailto:{guest.email}\r\n"
        else:
            people += f"ATTENDEE{cn}:mailto:{guest.email}\r\n"
    head = f"BEGIN:VEVENT\r\nUID:{spec.id}\r\nDTSTAMP:20261120T090000Z\r\nSUMMARY:{spec.title}\r\n"
    main = head + when("DTSTART", spec.start) + when("DTEND", spec.end) + people
    if spec.broken:
        main += "RRULE:FREQ=WEEKLY;UNTIL=20270129\r\n"  # a DATE UNTIL on a timed series
    if spec.only_occurrence_of is not None:
        main += when("RECURRENCE-ID", spec.only_occurrence_of)
    if spec.repeats > 1:
        main += f"RRULE:FREQ=DAILY;COUNT={spec.repeats}\r\n"
        assert isinstance(spec.start, datetime)
        for index in sorted(spec.cancelled):
            main += when("EXDATE", spec.start + timedelta(days=index))
    events = [main]
    for index, (begin, finish) in spec.moved.items():
        assert isinstance(spec.start, datetime)
        original = when("RECURRENCE-ID", spec.start + timedelta(days=index))
        events.append(head + original + when("DTSTART", begin) + when("DTEND", finish) + people)
    body = "".join(f"{event}END:VEVENT\r\n" for event in events)
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kindly tests//EN\r\n{body}END:VCALENDAR\r\n"
    )


class CalDAVOnRadicale:
    """A CalDAVCalendar on Radicale (which checks the password), one calendar "work"."""

    def __init__(self, folder: Path) -> None:
        self.radicale = start_radicale(folder, password=PASSWORD)
        self.radicale.make_calendar("work", "Work")
        settings = CalDAVSettings(url=f"{self.radicale.root}/", username=USER, password=PASSWORD)
        self.time = FakeTime()
        # Its own client, as CalDAVCalendar makes it, but sleeping on the test's clock.
        http = HttpClient(
            "CalDAV", secrets=lambda: [settings.password or ""], sleep=self.time.sleep
        )
        self.calendar = CalDAVCalendar(settings, http)

    def put(self, uid: str, start: datetime, end: datetime, extra: str = "") -> None:
        self.radicale.put_event("work", uid, utc_event(uid, start, end, extra))


@harness_factory(CalDAVCalendar, lacks={"paging": "CalDAV answers a sync-collection in one"})
def caldav_http_harness(folder: Path) -> Iterator[HttpHarness]:
    caldav = CalDAVOnRadicale(folder)
    radicale, count = caldav.radicale, {"n": 0}

    def seed(number: int) -> None:
        for _ in range(number):
            count["n"] += 1
            start = NOW + timedelta(days=1, minutes=count["n"])
            caldav.put(f"ev{count['n']}", start, start + timedelta(hours=1))

    def point_at(url: str) -> None:
        caldav.calendar.settings = replace(caldav.calendar.settings, url=url)

    def secrets() -> list[str]:
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return [PASSWORD, basic]

    try:
        yield HttpHarness(
            connector=caldav.calendar,
            time=caldav.time,
            seed=seed,
            fail_list_call=lambda status, headers, times: radicale.recorder.faults.extend(
                [(status, headers)] * times
            ),
            # The password is changed on the server: the one Kindly holds stops working.
            revoke_access=lambda: radicale.change_password("a-new-calendar-password"),
            list_calls=lambda: radicale.calls,
            point_at=point_at,
            secrets=secrets,
            read=lambda: len(caldav.calendar.appointments(NOW)),
        )
    finally:
        radicale.stop()


@harness_factory(CalDAVCalendar)
def caldav_calendar_harness(folder: Path) -> Iterator[CalendarHarness]:
    caldav = CalDAVOnRadicale(folder)
    radicale = caldav.radicale

    def cancel(uid: str) -> None:
        start = NOW + timedelta(days=2)  # where it was does not matter: it is cancelled
        caldav.put(uid, start, start + timedelta(hours=1), "STATUS:CANCELLED\r\n")

    def expire(bookmarks: Mapping[str, str]) -> dict[str, str]:
        state = json.loads(bookmarks[CALENDAR_STATE])
        for calendar in state["calendars"].values():
            calendar["token"] = "http://radicale.org/ns/sync/0000"  # one it never gave
        return {**bookmarks, CALENDAR_STATE: json.dumps(state)}

    try:
        yield CalendarHarness(
            calendar=caldav.calendar,
            now=NOW,
            horizon=timedelta(days=caldav.calendar.settings.horizon_days),
            put=caldav.put,
            cancel=cancel,
            delete=lambda uid: radicale.delete_event("work", uid),
            expire=expire,
            calls=lambda: radicale.calls,
            served=lambda: sum(radicale.recorder.served),
            cancelled_stays=True,
            # One sync-collection REPORT: the discovery (the URL, the principal, the home,
            # its calendars) is kept from the first sync (issue 18: at most 2).
            unchanged_calls=1,
            changed_calls=1,
            # The refused token, then the calendar in full: two REPORTs.
            expired_calls=lambda events: 2,
            put_event=lambda spec: radicale.put_event("work", spec.id, ics_of(spec)),
            calendar_name="Work",
        )
    finally:
        radicale.stop()


TestCalDAVCalendarContract = calendar_contract(caldav_calendar_harness)


@harness_factory(CalDAVCalendar)
def caldav_on_xandikos_harness(folder: Path) -> Iterator[CalendarHarness]:
    """The same contract on a second real server, Xandikos (issue 18): it sends no event
    data in a sync-collection, and refuses a stale token with 412."""
    xandikos = start_xandikos(folder)
    xandikos.make_calendar("work", "Work")
    calendar = CalDAVCalendar(CalDAVSettings(url=f"{xandikos.root}/"))

    def put(uid: str, start: datetime, end: datetime, extra: str = "") -> None:
        xandikos.put_event("work", uid, utc_event(uid, start, end, extra))

    def cancel(uid: str) -> None:
        start = NOW + timedelta(days=2)
        put(uid, start, start + timedelta(hours=1), "STATUS:CANCELLED\r\n")

    def expire(bookmarks: Mapping[str, str]) -> dict[str, str]:
        state = json.loads(bookmarks[CALENDAR_STATE])
        for known in state["calendars"].values():
            known["token"] = "0000000000000000000000000000000000000000"  # one it never gave
        return {**bookmarks, CALENDAR_STATE: json.dumps(state)}

    try:
        yield CalendarHarness(
            calendar=calendar,
            now=NOW,
            horizon=timedelta(days=calendar.settings.horizon_days),
            put=put,
            cancel=cancel,
            delete=lambda uid: xandikos.delete_event("work", uid),
            expire=expire,
            calls=lambda: xandikos.calls,
            served=lambda: sum(xandikos.recorder.served),
            cancelled_stays=True,
            # The discovery is kept from the first sync: one sync-collection.
            unchanged_calls=1,
            # The sync-collection, then one calendar-multiget for the changed events.
            changed_calls=2,
            # The refused token, the calendar in full, and a multiget for its events.
            expired_calls=lambda events: 3 if events else 2,
            put_event=lambda spec: xandikos.put_event("work", spec.id, ics_of(spec)),
            calendar_name="Work",
        )
    finally:
        xandikos.stop()


TestCalDAVOnXandikosContract = calendar_contract(caldav_on_xandikos_harness)
TestCalDAVHttp = http_contract(caldav_http_harness)

# -- CalDAV's own -----------------------------------------------------------------------------


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[RadicaleServer]:
    server = start_radicale(tmp_path)
    yield server
    server.stop()


def connector(radicale: RadicaleServer, **changes: object) -> CalDAVCalendar:
    settings = CalDAVSettings(
        url=f"{radicale.root}/", username=USER, password=PASSWORD, timezone="Europe/Amsterdam"
    )
    for name, value in changes.items():
        settings = CalDAVSettings(**{**settings.__dict__, name: value})
    return CalDAVCalendar(settings)


def test_discovery_finds_the_calendars(radicale: RadicaleServer) -> None:
    radicale.make_calendar("work", "Work")
    radicale.make_calendar("home", "Home")
    names = sorted(c.name for c in connector(radicale).calendars())
    assert names == ["Home", "Work"]
    assert [c.name for c in connector(radicale, calendars=("Work",)).calendars()] == ["Work"]
    # A calendar's own URL works too.
    direct = connector(radicale, url=radicale.calendar_url("work"))
    assert [c.name for c in direct.calendars()] == ["Work"]


def test_events_become_appointments(radicale: RadicaleServer) -> None:
    radicale.make_calendar("work", "Work")
    radicale.put_event(
        "work",
        "kickoff",
        event(
            "kickoff@noordlicht",
            "Kick-off website",
            "20261124T100000",
            "20261124T113000",
            extra=(
                "LOCATION:Prinsengracht 263\\, Amsterdam\r\n"
                "ATTENDEE;CN=Marieke van Dijk;PARTSTAT=ACCEPTED:mailto:marieke@example.test\r\n"
                "ATTENDEE;CN=Declined Person;PARTSTAT=DECLINED:mailto:no@example.test\r\n"
                "DESCRIPTION:Agenda attached.\\nPhone: +31 6 1234 5678\r\n"
            ),
        ),
    )
    radicale.put_event(
        "work",
        "call",
        event(
            "call@noordlicht",
            "Video call",
            "20261125T150000",
            "20261125T153000",
            tzid="Europe/Oslo",
            extra="DESCRIPTION:Join at https://meet.example/abc\r\nSTATUS:CANCELLED\r\n",
        ),
    )
    radicale.put_event(
        "work", "later", event("later@noordlicht", "Far away", "20270301T100000", "20270301T110000")
    )
    found = {a.id: a for a in connector(radicale).appointments(NOW)}
    assert set(found) == {"kickoff@noordlicht", "call@noordlicht"}, "outside the window: skipped"
    kickoff = found["kickoff@noordlicht"]
    assert kickoff.start == datetime(2026, 11, 24, 10, 0, tzinfo=AMS)
    assert kickoff.end - kickoff.start == timedelta(minutes=90)
    assert kickoff.location == "Prinsengracht 263, Amsterdam"
    assert kickoff.calendar == "Work"
    (marieke,) = kickoff.attendees
    assert (marieke.name, marieke.email, marieke.phone) == (
        "Marieke van Dijk",
        "marieke@example.test",
        "+31 6 1234 5678",
    )
    call = found["call@noordlicht"]
    assert call.status is AppointmentStatus.CANCELLED
    assert call.online_url == "https://meet.example/abc"
    assert call.start.utcoffset() == timedelta(hours=1) and str(call.start.tzinfo) == "Europe/Oslo"


def test_recurring_events_are_expanded_with_exceptions(radicale: RadicaleServer) -> None:
    radicale.make_calendar("work", "Work")
    weekly = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kindly tests//EN\r\n"
        "BEGIN:VEVENT\r\nUID:weekly@noordlicht\r\nDTSTAMP:20261101T090000Z\r\n"
        "DTSTART;TZID=Europe/Amsterdam:20261102T090000\r\n"
        "DTEND;TZID=Europe/Amsterdam:20261102T093000\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=10\r\nSUMMARY:Weekly check-in\r\n"
        "EXDATE;TZID=Europe/Amsterdam:20261130T090000\r\n"
        "ATTENDEE;CN=Ada:mailto:ada@example.test\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:weekly@noordlicht\r\nDTSTAMP:20261101T090000Z\r\n"
        "RECURRENCE-ID;TZID=Europe/Amsterdam:20261123T090000\r\n"
        "DTSTART;TZID=Europe/Amsterdam:20261123T140000\r\n"
        "DTEND;TZID=Europe/Amsterdam:20261123T143000\r\n"
        "SUMMARY:Weekly check-in (moved)\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    radicale.put_event("work", "weekly", weekly)
    found = sorted(connector(radicale).appointments(NOW), key=lambda a: a.start)
    starts = [a.start.astimezone(AMS).strftime("%m-%d %H:%M") for a in found]
    # From a day ago to two weeks ahead: the 23rd moved to 14:00, the 30th skipped.
    assert starts == ["11-23 14:00", "12-07 09:00"]
    assert found[0].title == "Weekly check-in (moved)"
    assert len({a.id for a in found}) == 2, "each instance its own id"


def test_a_wrong_password_is_an_auth_error(tmp_path: Path) -> None:
    from integrations.http import AuthError

    server = start_radicale(tmp_path, password=PASSWORD)
    try:
        wrong = CalDAVCalendar(
            CalDAVSettings(url=f"{server.root}/", username=USER, password="nope-nope")
        )
        with pytest.raises(AuthError) as caught:
            wrong.calendars()
        assert "nope-nope" not in str(caught.value)
        # Issue 18 (low): it suggested `kindly connect caldav`, which does not exist.
        assert caught.value.hint and "KINDLY_CALDAV_PASSWORD" in caught.value.hint
        assert "kindly connect" not in caught.value.hint
    finally:
        server.stop()


def test_appointment_reminders_end_to_end_from_radicale_to_smtp(
    radicale: RadicaleServer, demo_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    from icalendar import Calendar

    from plugin.app.cli import open_workspaces
    from tests.fakes.smtp import start_smtp

    smtp = start_smtp(tmp_path)
    monkeypatch.setenv("KINDLY_CALDAV_PASSWORD", PASSWORD)
    try:
        config = demo_workspace / "kindly.toml"
        text = config.read_text(encoding="utf-8").replace(
            "[delivery]\n", '[delivery]\nemail_via = "smtp"\n', 1
        )
        # The demo sends at any hour; this test wants quiet nights.
        text = re.sub(
            r"(?m)^quiet_hours = .*$",
            'reminders = ["24h email", "2h sms"]\nquiet_hours = "22:00-07:00"',
            text,
        )
        text += (
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\nretry_wait = 0\n'
            f'\n[calendar]\nurl = "{radicale.root}/"\nusername = "{USER}"\n'
        )
        config.write_text(text, encoding="utf-8")
        radicale.make_calendar("studio", "Studio")
        marieke = "ATTENDEE;CN=Marieke van Dijk:mailto:administratie@bakkerijvandijk.example\r\n"
        radicale.put_event(
            "studio",
            "review",
            event(
                "review@ns", "Ontwerpreview", "20261125T100000", "20261125T110000", extra=marieke
            ),
        )
        radicale.put_event(
            "studio",
            "moved",
            event("moved@ns", "Fotoshoot", "20261125T140000", "20261125T160000", extra=marieke),
        )
        radicale.put_event(
            "studio",
            "off",
            event(
                "off@ns",
                "Afgezegd overleg",
                "20261125T120000",
                "20261125T130000",
                extra=marieke + "STATUS:CANCELLED\r\n",
            ),
        )
        # A broken event beside them: left out and named; nothing else stops (issue 18).
        radicale.put_event("studio", "broken-rule", BROKEN)
        at = datetime(2026, 11, 24, 15, 0, tzinfo=AMS)  # within 24 h of the review and shoot
        (kindly,) = open_workspaces(config)
        kindly.sync(at)
        assert [w for w in kindly.left_out() if "broken-rule" in w and "Studio" in w]
        plan = kindly.plan(at)
        assert plan.reminders, "the invoice reminders are planned as ever"
        studio = [p for p in plan.appointments if p.appointment.calendar == "Studio"]
        assert sorted(p.appointment.title for p in studio) == [
            "Fotoshoot",
            "Ontwerpreview",
        ]
        (planned,) = [p for p in plan.appointments if p.appointment.title == "Ontwerpreview"]
        assert planned.customer.id == "C01" and planned.customer.language == "nl"
        assert [s.code for s in plan.appointment_skips if s.appointment_id == "off@ns"] == [
            "cancelled"
        ]
        sent = kindly.send(plan, at)
        assert not sent.failed and not sent.deferred, (sent.failed, sent.deferred)
        invites = [
            m
            for m in smtp.received
            if "Ontwerpreview" in m.message["Subject"] or "Fotoshoot" in m.message["Subject"]
        ]
        assert len(invites) == 2, [m.message["Subject"] for m in smtp.received]
        review = next(m.message for m in invites if "Ontwerpreview" in m.message["Subject"])
        body = review.get_body(preferencelist=("plain",))
        assert body is not None and "Ontwerpreview" in body.get_content()
        # Text and HTML, as a payment reminder has (issue 17), and the invitation beside.
        html = review.get_body(preferencelist=("html",))
        assert html is not None and "Ontwerpreview" in html.get_content()
        (ics,) = [a for a in review.iter_attachments() if a.get_content_type() == "text/calendar"]
        parsed = Calendar.from_ical(ics.get_content())
        (vevent,) = parsed.walk("VEVENT")
        assert vevent.decoded("DTSTART") == datetime(2026, 11, 25, 10, 0, tzinfo=AMS)

        # The shoot moves to the next day; the review stays. A later run sends only a fresh
        # reminder for the shoot's new time, and nothing for the old one.
        radicale.put_event(
            "studio",
            "moved",
            event("moved@ns", "Fotoshoot", "20261126T140000", "20261126T160000", extra=marieke),
        )
        later = datetime(2026, 11, 25, 15, 0, tzinfo=AMS)
        (kindly,) = open_workspaces(config)
        kindly.sync(later)
        second = kindly.plan(later)
        assert [
            p.appointment.start for p in second.appointments if p.appointment.calendar == "Studio"
        ] == [datetime(2026, 11, 26, 14, 0, tzinfo=AMS)]
        kindly.send(second, later)
        shoots = [m for m in smtp.received if "Fotoshoot" in m.message["Subject"]]
        assert len(shoots) == 2

        # Moved away and back to the time already reminded of: the client heard of the
        # move in between, so the shoot is reminded of afresh (issue 18), once.
        def move_shoot(day: str, at: datetime) -> None:
            shoot = event("moved@ns", "Fotoshoot", f"{day}T140000", f"{day}T160000", extra=marieke)
            radicale.put_event("studio", "moved", shoot)
            (kindly,) = open_workspaces(config)
            kindly.sync(at)
            kindly.send(kindly.plan(at), at)

        move_shoot("20261128", later + timedelta(hours=1))
        move_shoot("20261126", later + timedelta(hours=2))
        move_shoot("20261126", later + timedelta(hours=3))
        shoots = [m for m in smtp.received if "Fotoshoot" in m.message["Subject"]]
        assert len(shoots) == 3
        assert not any("Afgezegd" in m.message["Subject"] for m in smtp.received)
        # And nothing twice.
        (kindly,) = open_workspaces(config)
        kindly.sync(later)
        assert [p for p in kindly.plan(later).appointments if p.appointment.calendar] == []
    finally:
        smtp.stop()


def test_sync_collection_reads_only_what_changed(radicale: RadicaleServer, tmp_path: Path) -> None:
    radicale.make_calendar("work", "Work")
    for uid, day in (("a", "24"), ("b", "25")):
        radicale.put_event(
            "work",
            uid,
            event(f"{uid}@ns", f"Meeting {uid}", f"202611{day}T100000", f"202611{day}T110000"),
        )
    calendar = Bookmarked(
        CalDAVCalendar(CalDAVSettings(url=f"{radicale.root}/", username=USER, password=PASSWORD))
    )
    assert {a.id for a in calendar.appointments(NOW)} == {"a@ns", "b@ns"}
    state = calendar.state["calendars"][radicale.calendar_url("work")]
    assert state["token"] and len(state["items"]) == 2
    # One moved, one deleted, one added: the next sync brings just those three changes.
    radicale.put_event(
        "work", "a", event("a@ns", "Meeting a", "20261126T100000", "20261126T110000")
    )
    radicale.delete_event("work", "b")
    radicale.put_event(
        "work", "c", event("c@ns", "Meeting c", "20261127T100000", "20261127T110000")
    )
    found = {a.id: a for a in calendar.appointments(NOW)}
    assert set(found) == {"a@ns", "c@ns"}
    assert found["a@ns"].start == datetime(2026, 11, 26, 10, 0, tzinfo=AMS)
    # An unknown token (a server that forgot it) starts over rather than failing.
    stale = calendar.state
    stale["calendars"][radicale.calendar_url("work")]["token"] = "http://radicale.org/ns/sync/0000"
    calendar.state = stale
    assert {a.id for a in calendar.appointments(NOW)} == {"a@ns", "c@ns"}


@pytest.fixture(params=["radicale", "xandikos"])
def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CalDAVTestServer]:
    """Radicale and Xandikos: the same events read alike from both (issue 18)."""
    server = start_radicale(tmp_path) if request.param == "radicale" else start_xandikos(tmp_path)
    yield server
    server.stop()


ALL_DAY_WEEKLY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kindly tests//EN\r\nBEGIN:VEVENT\r\n"
    "UID:weekly-all-day\r\nDTSTAMP:20261120T090000Z\r\n"
    "DTSTART;VALUE=DATE:20261127\r\nDTEND;VALUE=DATE:20261128\r\n"
    "RRULE:FREQ=WEEKLY;UNTIL=20270129\r\nSUMMARY:Stand-up day\r\n"
    "ATTENDEE;CN=Kari:mailto:kari@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
# A timed series whose UNTIL is a date, which RFC 5545 forbids and both servers store.
BROKEN = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kindly tests//EN\r\nBEGIN:VEVENT\r\n"
    "UID:broken-rule\r\nDTSTAMP:20261120T090000Z\r\n"
    "DTSTART;TZID=Europe/Amsterdam:20261124T100000\r\n"
    "DTEND;TZID=Europe/Amsterdam:20261124T110000\r\n"
    "RRULE:FREQ=WEEKLY;UNTIL=20270129\r\nSUMMARY:Broken\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_a_bad_event_is_left_out_and_named_and_all_day_series_are_dates(
    any_server: CalDAVTestServer,
) -> None:
    """Issue 18: an all-day weekly event with a DATE UNTIL crashed every run, and one bad
    event stopped every reminder; now the series is read as dates and the bad one named."""
    any_server.make_calendar("work", "Work")
    any_server.put_event("work", "weekly-all-day", ALL_DAY_WEEKLY)
    any_server.put_event("work", "broken-rule", BROKEN)
    any_server.put_event(
        "work", "ok", event("ok", "Kick-off", "20261124T100000", "20261124T110000")
    )
    settings = CalDAVSettings(
        url=f"{any_server.root}/", username=USER, password=PASSWORD, timezone="Europe/Amsterdam"
    )
    calendar = CalDAVCalendar(settings)
    synced = calendar.sync(NOW, {})
    by_title: dict[str, list[datetime]] = {}
    for appointment in synced.appointments:
        by_title.setdefault(appointment.title, []).append(appointment.start)
    assert by_title["Kick-off"] == [datetime(2026, 11, 24, 10, 0, tzinfo=AMS)]
    # From a day ago to two weeks on: 27 November, 4 December.
    assert [day.date().isoformat() for day in sorted(by_title["Stand-up day"])] == [
        "2026-11-27",
        "2026-12-04",
    ]
    assert "Broken" not in by_title
    (warning,) = synced.warnings
    assert "broken-rule" in warning and "Work" in warning
    # A later sync goes on from the token, and still names the bad event.
    again = calendar.sync(NOW, synced.bookmarks)
    assert len(again.appointments) == len(synced.appointments) and len(again.warnings) == 1


def test_the_calendars_are_found_again_when_one_is_gone(radicale: RadicaleServer) -> None:
    """Discovery is kept between syncs (issue 18); a calendar removed since sends Kindly
    to look again, and a change of the settings does too."""
    radicale.make_calendar("work", "Work")
    radicale.put_event("work", "a", event("a@x", "Kick-off", "20261124T100000", "20261124T110000"))
    calendar = connector(radicale)
    first = calendar.sync(NOW, {})
    before = radicale.calls
    assert [a.title for a in calendar.sync(NOW, first.bookmarks).appointments] == ["Kick-off"]
    assert radicale.calls - before == 1, "one REPORT, no discovery"
    assert radicale._send("DELETE", radicale.calendar_url("work")) in (200, 204)
    radicale.make_calendar("studio", "Studio")
    radicale.put_event("studio", "b", event("b@x", "Review", "20261125T100000", "20261125T110000"))
    again = calendar.sync(NOW, first.bookmarks)
    assert [a.title for a in again.appointments] == ["Review"]
    only_work = connector(radicale, calendars=("Work",))
    assert only_work.sync(NOW, again.bookmarks).appointments == ()


def test_an_occurrence_moved_into_the_window_and_an_invitation_to_one_occurrence(
    any_server: CalDAVTestServer,
) -> None:
    """Issue 18: an occurrence moved into the reminder window from a day beyond it was
    never read, nor was a resource holding only one occurrence of a series (an invitation
    to that occurrence alone)."""
    any_server.make_calendar("work", "Work")
    series = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kindly tests//EN\r\n"
        "BEGIN:VEVENT\r\nUID:weekly@x\r\nDTSTAMP:20261101T090000Z\r\n"
        "DTSTART;TZID=Europe/Amsterdam:20261102T090000\r\n"
        "DTEND;TZID=Europe/Amsterdam:20261102T093000\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=10\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:weekly@x\r\nDTSTAMP:20261101T090000Z\r\n"
        "RECURRENCE-ID;TZID=Europe/Amsterdam:20261214T090000\r\n"
        "DTSTART;TZID=Europe/Amsterdam:20261201T140000\r\n"
        "DTEND;TZID=Europe/Amsterdam:20261201T143000\r\n"
        "SUMMARY:Weekly (brought forward)\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    any_server.put_event("work", "weekly", series)
    only_one = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kindly tests//EN\r\n"
        "BEGIN:VEVENT\r\nUID:their-series@elsewhere\r\nDTSTAMP:20261101T090000Z\r\n"
        "RECURRENCE-ID;TZID=Europe/Amsterdam:20261125T100000\r\n"
        "DTSTART;TZID=Europe/Amsterdam:20261125T100000\r\n"
        "DTEND;TZID=Europe/Amsterdam:20261125T110000\r\n"
        "SUMMARY:Their planning this week\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    any_server.put_event("work", "one", only_one)
    settings = CalDAVSettings(
        url=f"{any_server.root}/", username=USER, password=PASSWORD, timezone="Europe/Amsterdam"
    )
    found = sorted(CalDAVCalendar(settings).appointments(NOW), key=lambda a: a.start)
    shown = [(a.title, a.start.astimezone(AMS).strftime("%m-%d %H:%M")) for a in found]
    assert shown == [
        ("Weekly", "11-23 09:00"),
        ("Their planning this week", "11-25 10:00"),
        ("Weekly", "11-30 09:00"),
        ("Weekly (brought forward)", "12-01 14:00"),
        ("Weekly", "12-07 09:00"),
    ]
    assert found[1].id.startswith("their-series@elsewhere#")
    # The .ics names the calendar's own event: the series' UID and which occurrence.
    from icalendar import Calendar

    from plugin.compose.ics import event_ics

    (vevent,) = Calendar.from_ical(event_ics(found[3], NOW)).walk("VEVENT")
    assert str(vevent["UID"]) == "weekly@x"
    assert vevent.decoded("RECURRENCE-ID") == datetime(2026, 12, 14, 8, 0, tzinfo=UTC)
