"""iCalendar files: the event attached to an appointment reminder (RFC 5545, via icalendar)."""

from __future__ import annotations

from datetime import UTC, datetime

from plugin.core.model import Appointment, AppointmentStatus

__all__ = ["event_ics"]


def event_ics(appointment: Appointment, now: datetime) -> bytes:
    """A VCALENDAR with the one event, for a calendar app to show or add."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//Kindly//kindly-reminders//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    # The same UID as the calendar's own event where it came from one: apps then show it
    # as that event rather than a copy.
    uid = appointment.series_uid or appointment.id
    event.add("uid", uid if "@" in uid else f"{uid}@kindly")
    event.add("dtstamp", now)
    if appointment.recurrence_id is not None:
        # One occurrence of the calendar's series: its UID and which occurrence it is.
        if appointment.all_day:
            event.add("recurrence-id", appointment.recurrence_id.date())
        else:
            event.add("recurrence-id", appointment.recurrence_id.astimezone(UTC))
    if appointment.all_day:
        event.add("dtstart", appointment.start.date())
        event.add("dtend", appointment.end.date())
    else:
        # In UTC: the zone's name may not have survived the store (an offset did), and
        # every calendar app shows UTC times on its own clock.
        event.add("dtstart", appointment.start.astimezone(UTC))
        event.add("dtend", appointment.end.astimezone(UTC))
    event.add("summary", appointment.title)
    if appointment.location:
        event.add("location", appointment.location)
    if appointment.online_url:
        event.add("url", appointment.online_url)
    event.add(
        "status",
        "CANCELLED" if appointment.status is AppointmentStatus.CANCELLED else "CONFIRMED",
    )
    calendar.add_component(event)
    return bytes(calendar.to_ical())
