"""The appointment planner, rule by rule (pure: every case is a clock and a ledger)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import TypedDict, Unpack
from zoneinfo import ZoneInfo

import pytest

from plugin.core.appointments import (
    AppointmentPolicy,
    AppointmentSkip,
    PlannedAppointment,
    parse_rule,
    plan_appointments,
    track_moves,
)
from plugin.core.model import Appointment, AppointmentStatus, Attendee, Customer, LedgerSnapshot
from plugin.core.vocabulary import ChannelName, Language

OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 12, 3, 14, 0, tzinfo=OSLO)
KARI = Attendee(name="Kari Nordmann", email="kari@example.test", phone="+47 412 34 567")
CLIENT = Customer(
    id="C06",
    name="Fjord Bygg AS",
    contact_name="Kari Nordmann",
    emails=("kari@example.test",),
    phones=("+47 412 34 567",),
    language="nb",
    country="NO",
    timezone="Europe/Oslo",
)


def snapshot(*appointments: Appointment) -> LedgerSnapshot:
    return LedgerSnapshot(customers=(CLIENT,), appointments=appointments)


def meeting(**changes: object) -> Appointment:
    base = Appointment(
        id="APT-1",
        title="Workshop",
        start=START,
        end=START + timedelta(hours=2),
        attendees=(KARI,),
        customer_id="C06",
        location="Storgata 21, Oslo",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


class PlanOptions(TypedDict, total=False):
    """What plan() passes on to plan_appointments as it is."""

    policies: Mapping[str, AppointmentPolicy] | None
    default_language: Language
    default_country: str


def plan(
    at: datetime,
    *appointments: Appointment,
    sent: tuple[str, ...] = (),
    channels: tuple[ChannelName, ...] = ("email", "sms", "task"),
    **kw: Unpack[PlanOptions],
) -> tuple[tuple[PlannedAppointment, ...], tuple[AppointmentSkip, ...]]:
    return plan_appointments(
        snapshot(*(appointments or (meeting(),))),
        now=at,
        source="ledger",
        sent_keys=sent,
        channels_available=channels,
        **kw,
    )


def test_a_day_before_by_email_two_hours_before_by_sms() -> None:
    planned, skips = plan(START - timedelta(hours=30))
    assert planned == () and [s.code for s in skips] == ["not_due_yet"]
    assert skips[0].next_date == START - timedelta(hours=24)

    (email,) = plan(START - timedelta(hours=23))[0]
    assert (email.channel, email.recipient, email.rule.label) == (
        "email",
        "kari@example.test",
        "24h email",
    )
    assert email.customer.language == "nb" and email.customer.timezone == "Europe/Oslo"

    (sms,) = plan(START - timedelta(minutes=90))[0]
    assert (sms.channel, sms.recipient) == ("sms", "+47 412 34 567")
    assert sms.key != email.key


def test_a_reminder_that_could_only_go_late_is_left_to_the_next_rule() -> None:
    # Planned only at 90 minutes before: the day-before e-mail is not sent late.
    planned, _ = plan(START - timedelta(minutes=90))
    assert [p.rule.label for p in planned] == ["2h sms"]


def test_what_was_sent_is_not_sent_again() -> None:
    (email,) = plan(START - timedelta(hours=23))[0]
    assert plan(START - timedelta(hours=22), sent=(email.key,))[0] == ()


def test_nothing_for_cancelled_or_past_events() -> None:
    cancelled = meeting(status=AppointmentStatus.CANCELLED)
    planned, skips = plan(START - timedelta(hours=23), cancelled)
    assert planned == () and [s.code for s in skips] == ["cancelled"]
    assert plan(START + timedelta(minutes=1))[0] == ()


def test_a_moved_event_gets_a_fresh_reminder_and_the_old_one_is_dead() -> None:
    (first,) = plan(START - timedelta(hours=23))[0]
    moved = meeting(start=START + timedelta(days=1), end=START + timedelta(days=1, hours=2))
    (fresh,) = plan(START + timedelta(hours=1), moved, sent=(first.key,))[0]
    assert fresh.key != first.key and fresh.appointment.start == moved.start
    # Planned at the old time again, the old key cannot come back: the event is elsewhere.
    assert all(p.key != first.key for p in plan(START - timedelta(hours=23), moved)[0])


def test_an_event_moved_away_and_back_gets_a_fresh_reminder() -> None:
    """Issue 18 (low): moved away and back to its old time, an event got no fresh reminder
    (its key was the one already sent); the client had heard of the move in between."""
    at = START - timedelta(hours=23)
    seen, memory = track_moves([meeting()], {}, at)
    (first,) = plan(at, *seen)[0]
    later = START - timedelta(hours=22)
    away = meeting(start=START + timedelta(days=1), end=START + timedelta(days=1, hours=2))
    seen, memory = track_moves([away], memory, later)
    assert seen[0].moves == 1
    back = START - timedelta(hours=21)
    seen, memory = track_moves([meeting()], memory, back)
    (fresh,) = plan(back, *seen, sent=(first.key,))[0]
    assert fresh.key != first.key and fresh.appointment.start == START
    # Seen again where it is: no move, and the reminder sent is not sent again.
    seen, memory = track_moves([meeting()], memory, back + timedelta(minutes=5))
    assert seen[0].moves == 2
    assert plan(back, *seen, sent=(first.key, fresh.key))[0] == ()


def test_an_event_that_left_the_calendar_and_came_back_counts_as_moved() -> None:
    at = START - timedelta(days=3)
    _, memory = track_moves([meeting()], {}, at)
    _, memory = track_moves([], memory, at + timedelta(hours=1))
    (returned,), memory = track_moves([meeting()], memory, at + timedelta(hours=2))
    assert returned.moves == 1
    # One not seen for three months is forgotten: back then, it is a new event.
    _, memory = track_moves([], memory, at + timedelta(hours=3))
    assert track_moves([], memory, at + timedelta(days=91))[1] == {}


def test_quiet_hours_on_the_attendees_clock() -> None:
    late = datetime(2026, 12, 2, 22, 30, tzinfo=OSLO)  # 15.5 h before: the e-mail is due
    planned, skips = plan(late)
    assert planned == ()
    (quiet,) = [s for s in skips if s.code == "quiet_hours"]
    assert quiet.next_date == datetime(2026, 12, 3, 8, 0, tzinfo=OSLO)
    relaxed = {"": AppointmentPolicy(quiet_start=None, quiet_end=None)}
    assert len(plan(late, policies=relaxed)[0]) == 1


def test_without_a_phone_the_sms_rule_uses_email() -> None:
    no_phone = meeting(attendees=(replace(KARI, phone=None),))
    (planned,) = plan(START - timedelta(minutes=90), no_phone)[0]
    assert planned.channel == "email"
    (only_email,) = plan(START - timedelta(minutes=90), channels=("email", "task"))[0]
    assert only_email.channel == "email"


def test_policies_per_calendar() -> None:
    work = meeting(calendar="Work")
    policies = {"Work": AppointmentPolicy(rules=(parse_rule("48h email"),), quiet_end=time(7))}
    (planned,) = plan(START - timedelta(hours=47), work, policies=policies)[0]
    assert planned.rule.label == "2d email"


@pytest.mark.parametrize("text", ["24 email", "2h fax", "h sms", ""])
def test_rules_that_make_no_sense_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a rule"):
        parse_rule(text)


@pytest.mark.parametrize("text", ["1000000d email", "99999999999d email", "367d sms"])
def test_rules_before_the_calendar_begins_are_refused(text: str) -> None:
    """D15c: a rule far enough ahead overflowed the date at plan, or the int at load."""
    with pytest.raises(ValueError, match="more than 366 days before the appointment"):
        parse_rule(text)
    assert parse_rule("366d email").before == timedelta(days=366)


def test_an_attendee_who_is_not_the_client_gets_the_defaults() -> None:
    guest = Attendee(name="Ola", email="ola@elsewhere.test")
    two = meeting(attendees=(KARI, guest))
    planned = plan(START - timedelta(hours=23), two, default_language="en", default_country="GB")[0]
    by_address = {p.recipient: p.customer for p in planned}
    assert by_address["kari@example.test"].language == "nb"
    assert by_address["ola@elsewhere.test"].language == "en"
    assert by_address["ola@elsewhere.test"].timezone == "Europe/Oslo", "the event's own zone"


def test_an_attendee_who_cannot_be_a_client_is_skipped_and_the_others_planned() -> None:
    """D6: a calendar's bad address for one attendee stops nobody else's reminder."""
    bad = Attendee(name="M", email="not-an-address")
    event = meeting(attendees=(bad, KARI), customer_id=None)
    planned, skips = plan(START - timedelta(hours=23), event)
    assert [p.recipient for p in planned] == ["kari@example.test"]
    (skipped,) = [s for s in skips if s.code == "bad_attendee"]
    assert skipped.attendee == "not-an-address" and "cannot be reminded" in skipped.reason


def test_the_clients_salutation_goes_only_to_the_clients_own_contact() -> None:
    """The greeting's salutation and names are the client's contact's (issue 17): another
    person from the same client is greeted by their own name alone."""
    known = replace(CLIENT, salutation="ms", given_name="Kari", family_name="Nordmann")
    colleague = Attendee(name="Ola Hansen", email="kari@example.test")
    planned, _ = plan_appointments(
        LedgerSnapshot(
            customers=(known,),
            appointments=(meeting(), meeting(id="APT-2", attendees=(colleague,))),
        ),
        now=START - timedelta(hours=23),
        source="ledger",
        sent_keys=(),
        channels_available=("email", "task"),
    )
    by_appointment = {p.appointment.id: p.customer for p in planned if p.channel == "email"}
    kari, ola = by_appointment["APT-1"], by_appointment["APT-2"]
    assert (kari.salutation, kari.given_name, kari.family_name) == ("ms", "Kari", "Nordmann")
    assert (ola.salutation, ola.given_name, ola.greeting_name) == (None, None, "Ola Hansen")


def test_an_attendee_is_the_client_whatever_the_capitals_of_the_address() -> None:
    """Issue 18 (low): "Kari@Example.test" in the calendar is kari@example.test."""
    shouting = Attendee(name="Kari Nordmann", email="KARI@Example.TEST")
    two = meeting(attendees=(shouting, Attendee(name="Ola", email="ola@elsewhere.test")))
    planned = plan(START - timedelta(hours=23), two, default_language="en", default_country="GB")[0]
    by_address = {p.recipient: p.customer for p in planned}
    assert by_address["KARI@Example.TEST"].id == "C06"


def test_an_attendees_clock_survives_the_store() -> None:
    """Issue 18: a stored time keeps its offset, not its zone; an attendee who is no client
    was then reminded in UTC, and quiet hours counted in UTC."""
    from plugin.core.codec import from_jsonable, to_jsonable

    guest = Attendee(name="Ola", email="ola@elsewhere.test")
    stored = from_jsonable(LedgerSnapshot, to_jsonable(snapshot(meeting(attendees=(guest,)))))
    (kept,) = stored.appointments
    assert kept.timezone == "Europe/Oslo"
    planned, _ = plan_appointments(
        stored,
        now=START - timedelta(hours=23),
        source="ledger",
        sent_keys=(),
        channels_available=("email", "task"),
    )
    assert {p.customer.timezone for p in planned} == {"Europe/Oslo"}


def test_a_clients_informal_setting_holds_for_its_appointment_reminders() -> None:
    """Issue 18 (low): a client set to "je"/"du" got "u"/"Sie" in appointment reminders."""
    guest = Attendee(name="Ola", email="ola@elsewhere.test")
    planned, _ = plan_appointments(
        snapshot(meeting(attendees=(KARI, guest))),
        now=START - timedelta(hours=23),
        source="ledger",
        sent_keys=(),
        channels_available=("email", "task"),
        default_language="de",
        default_country="DE",
        formality_of=lambda customer: "informal",
    )
    by_address = {p.recipient: p.formality for p in planned}
    assert by_address == {"kari@example.test": "informal", "ola@elsewhere.test": "formal"}
