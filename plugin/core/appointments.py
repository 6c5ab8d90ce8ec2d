"""Which appointment reminders are due: pure, like the invoice planner (no clock, no I/O).

The policy is a list of rules such as "24 hours before by e-mail" and "2 hours before by
SMS" (R1, R18, R19), with quiet hours on the attendee's clock. For each attendee of each
upcoming event, a rule is due from its lead time before the start until the next, shorter
rule takes over: a reminder that could only go out late is left to the next rule rather
than sent in a burst with it. Nothing goes out for a cancelled or past event.

A reminder's key includes the event's start: a moved event gets fresh reminders, and one
planned for the old time can no longer be sent (its key is not planned again). It also
includes how often the event moved (:func:`track_moves`), so that one moved away and back
to its old time is reminded afresh too: the client was told of the move in between.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from plugin.core.decisions import AppointmentSkip, PlannedAppointment, Reason
from plugin.core.model import Appointment, AppointmentStatus, Attendee, Customer, LedgerSnapshot
from plugin.core.policy import (
    DEFAULT_APPOINTMENT_POLICY,
    AppointmentPolicy,
    AppointmentRule,
    default_formality,
    parse_rule,
)
from plugin.core.vocabulary import ChannelName, Formality, Language

__all__ = [
    "DEFAULT_APPOINTMENT_POLICY",
    "AppointmentPolicy",
    "AppointmentRule",
    "AppointmentSkip",
    "PlannedAppointment",
    "parse_rule",
    "plan_appointments",
    "track_moves",
]

#: How long an event that left the calendar is remembered, should it come back.
REMEMBERED = timedelta(days=90)


def appointment_key(
    source: str, appointment: Appointment, address: str, rule: AppointmentRule, channel: str
) -> str:
    material = "\x1f".join(
        [
            source,
            "appointment",
            appointment.id,
            appointment.start.isoformat(),
            address.lower(),
            str(int(rule.before.total_seconds())),
            channel,
            # Only once moved, so that the keys of reminders already sent stay as they were.
            *([f"moved {appointment.moves}"] if appointment.moves else []),
        ]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def track_moves(
    appointments: Iterable[Appointment], known: Mapping[str, Any], now: datetime
) -> tuple[tuple[Appointment, ...], dict[str, Any]]:
    """The appointments with their ``moves`` counted, and what to remember for next time.

    ``known`` is what the last call returned: each event's id -> its start (None once it
    left the calendar), its moves, and when it was last seen. An event seen at another
    start than before has moved; one that left the calendar counts a move too, so that
    should it come back at its old time it is reminded afresh (issue 18). Events not seen
    for REMEMBERED are forgotten.
    """
    stamp = now.isoformat()
    memory = {
        key: value
        for key, value in known.items()
        if datetime.fromisoformat(value["seen"]) >= now - REMEMBERED
    }
    counted = []
    for appointment in appointments:
        before = memory.get(appointment.id)
        start = appointment.start.isoformat()
        # One back from elsewhere (start None) counted its move when it left.
        moved = before is not None and before["start"] not in (None, start)
        moves = (before["moves"] if before else 0) + moved
        memory[appointment.id] = {"start": start, "moves": moves, "seen": stamp}
        counted.append(replace(appointment, moves=moves) if moves else appointment)
    for key, value in memory.items():
        if value["seen"] != stamp and value["start"] is not None:
            memory[key] = {**value, "start": None, "moves": value["moves"] + 1}
    return tuple(counted), memory


@dataclass
class _Context:
    snapshot: LedgerSnapshot
    now: datetime
    source: str
    channels_available: frozenset[str]
    sent: frozenset[str]
    default_language: Language
    default_country: str
    #: How each client is addressed (formal or informal), as its settings say.
    formality_of: Callable[[Customer], Formality] | None = None
    planned: list[PlannedAppointment] = field(default_factory=list)
    skips: list[AppointmentSkip] = field(default_factory=list)


def plan_appointments(
    snapshot: LedgerSnapshot,
    *,
    now: datetime,
    source: str,
    sent_keys: Iterable[str],
    channels_available: Iterable[ChannelName],
    policies: Mapping[str, AppointmentPolicy] | None = None,
    default_language: Language = "en",
    default_country: str = "GB",
    formality_of: Callable[[Customer], Formality] | None = None,
) -> tuple[tuple[PlannedAppointment, ...], tuple[AppointmentSkip, ...]]:
    """The appointment reminders due at ``now``; ``policies`` by calendar ("" is the default).

    ``formality_of`` says how a client is addressed (its settings); an attendee who is no
    client, and every one without it, gets the language's usual form.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    chosen = dict(policies or {})
    default = chosen.get("", DEFAULT_APPOINTMENT_POLICY)
    context = _Context(
        snapshot,
        now,
        source,
        frozenset(channels_available),
        frozenset(sent_keys),
        default_language,
        default_country,
        formality_of,
    )
    for appointment in snapshot.appointments:
        policy = chosen.get(appointment.calendar or "", default)
        _plan_one(context, appointment, policy)
    return tuple(context.planned), tuple(context.skips)


def _plan_one(context: _Context, appointment: Appointment, policy: AppointmentPolicy) -> None:
    def skip(who: str, code: str, reason: str, next_date: datetime | None = None) -> None:
        context.skips.append(AppointmentSkip(appointment.id, who, code, reason, next_date))

    if appointment.status is AppointmentStatus.CANCELLED:
        skip("", "cancelled", "the event was cancelled")
        return
    if appointment.start <= context.now:
        return  # past events are not open items: nothing to explain
    rules = sorted(policy.rules, key=lambda rule: rule.before, reverse=True)
    for attendee in appointment.attendees:
        who = attendee.email or attendee.phone or attendee.name or "?"
        try:
            customer = _as_customer(context, appointment, attendee)
        except ValueError as exc:
            # One attendee's bad address stops nobody else's reminder.
            skip(who, "bad_attendee", f"this attendee cannot be reminded: {exc}")
            continue
        for index, rule in enumerate(rules):
            due_from = appointment.start - rule.before
            until = (
                appointment.start - rules[index + 1].before
                if index + 1 < len(rules)
                else appointment.start
            )
            if context.now < due_from:
                skip(who, "not_due_yet", f"{rule.label}: due {due_from.isoformat()}", due_from)
                break
            if context.now >= until:
                continue  # a later, shorter rule has taken over
            channel, recipient = _reach(context, attendee, rule.channel)
            if channel is None or recipient is None:
                skip(who, "no_channel", f"{rule.label}: no e-mail address or valid phone")
                continue
            zone = ZoneInfo(customer.timezone)
            opens = _quiet_until(context.now.astimezone(zone), policy)
            if opens is not None:
                if opens >= until:
                    skip(who, "quiet_hours", f"{rule.label}: quiet hours last past its window")
                else:
                    skip(
                        who,
                        "quiet_hours",
                        f"{rule.label}: quiet hours until {opens.isoformat()}",
                        opens,
                    )
                continue
            key = appointment_key(context.source, appointment, recipient, rule, channel)
            if key in context.sent:
                continue
            why = Reason(
                "appointment_due",
                f"{rule.label}: {appointment.title} starts {appointment.start.isoformat()}",
            )
            context.planned.append(
                PlannedAppointment(
                    key=key,
                    source=context.source,
                    appointment=appointment,
                    attendee=attendee,
                    rule=rule,
                    channel=channel,
                    recipient=recipient,
                    customer=customer,
                    # The client's own setting (issue 18: informal clients got the
                    # formal register in appointment reminders).
                    formality=(
                        context.formality_of(customer)
                        if context.formality_of and customer.id in context.snapshot.customers_by_id
                        else default_formality(customer.language)
                    ),
                    why=(why,),
                )
            )


def _reach(
    context: _Context, attendee: Attendee, wanted: ChannelName
) -> tuple[ChannelName | None, str | None]:
    """The rule's channel if it can reach the attendee, else the other one (R24)."""
    messages: tuple[ChannelName, ...] = ("email", "sms")
    order = [wanted, *(channel for channel in messages if channel != wanted)]
    for channel in order:
        if channel not in context.channels_available:
            continue
        if channel == "email" and attendee.email:
            return channel, attendee.email
        if channel == "sms" and attendee.phone:
            return channel, attendee.phone
    return None, None


def _quiet_until(local: datetime, policy: AppointmentPolicy) -> datetime | None:
    """When quiet hours end, if ``local`` falls in them; None otherwise."""
    start, end = policy.quiet_start, policy.quiet_end
    if start is None or end is None or start == end:
        return None
    moment = local.time()
    overnight = start > end
    inside = (moment >= start or moment < end) if overnight else (start <= moment < end)
    if not inside:
        return None
    day = local.date() + timedelta(days=1) if overnight and moment >= start else local.date()
    return datetime.combine(day, end, tzinfo=local.tzinfo)


def _as_customer(context: _Context, appointment: Appointment, attendee: Attendee) -> Customer:
    """The attendee as a client: the linked client's language and clock when it is them."""
    linked = (
        context.snapshot.customers_by_id.get(appointment.customer_id)
        if appointment.customer_id
        else None
    )
    if linked is not None and (
        # E-mail addresses are matched without regard to capitals (calendars write them
        # as typed: "Kari@Example.test").
        (attendee.email and attendee.email.lower() in {e.lower() for e in linked.emails})
        or (attendee.phone and attendee.phone in linked.phones)
        or len(appointment.attendees) == 1
    ):
        from dataclasses import replace

        someone_else = bool(attendee.name) and attendee.name != linked.greeting_name
        return replace(
            linked,
            contact_name=attendee.name or linked.contact_name,
            # The salutation and name parts are the client's contact's: not another
            # attendee's from the same client.
            salutation=None if someone_else else linked.salutation,
            given_name=None if someone_else else linked.given_name,
            family_name=None if someone_else else linked.family_name,
            emails=(attendee.email,) if attendee.email else linked.emails,
            phones=(attendee.phone,) if attendee.phone else linked.phones,
        )
    timezone = appointment.timezone or "UTC"
    return Customer(
        id=f"attendee:{(attendee.email or attendee.phone or appointment.id).lower()}",
        name=attendee.name or attendee.email or attendee.phone or "?",
        contact_name=attendee.name,
        emails=(attendee.email,) if attendee.email else (),
        phones=(attendee.phone,) if attendee.phone else (),
        language=context.default_language,
        country=context.default_country,
        timezone=timezone,
    )
