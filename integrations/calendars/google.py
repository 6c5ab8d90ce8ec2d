"""Google Calendar (API v3): events.list with sync tokens, a full resync on 410 Gone.

The first read lists the calendar's events from a day ago on (``singleEvents=true``, so
recurring events come expanded), 2,500 to a page; its last page hands out a
``nextSyncToken``. Later reads pass that token and get only what changed since, cancelled
events included (``status: cancelled``); Google answers 410 when the token is too old, and
the calendar is then read in full again. Events and the token are kept as the calendar's bookmark,
so a sync costs one call when nothing changed.

OAuth as for Xero (integrations.oauth): Google's refresh tokens do not rotate, which the
vault handles the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from integrations.base import Capability, ConnectorSettings
from integrations.calendars.base import OAuthCalendar, OAuthCalendarSection
from integrations.calendars.base import zone as zone_named
from integrations.http import FatalError
from integrations.pagination import NextToken, Page, paginate
from plugin.core.model import Appointment, AppointmentStatus, Attendee

__all__ = ["GoogleCalendar", "GoogleCalendarSettings", "google_event_to_appointment"]

API_URL = "https://www.googleapis.com/calendar/v3"
PAGE_SIZE = 2500
SCOPES = ("https://www.googleapis.com/auth/calendar.events.readonly",)


@dataclass(frozen=True)
class GoogleSection(OAuthCalendarSection):
    """[calendar] type = "google": Google Calendar (kindly connect google)."""

    calendar_id: str = field(
        default="primary",
        metadata={
            "schema": {"minLength": 1, "description": "Google: the calendar (default: primary)"}
        },
    )


@dataclass(frozen=True)
class GoogleCalendarSettings:
    calendar_id: str = "primary"
    api_url: str = API_URL
    timezone: str = "UTC"  # for all-day events
    horizon_days: int = 14


class GoogleCalendar(OAuthCalendar):
    name: ClassVar[str] = "google"
    title: ClassVar[str] = "Google Calendar"
    platform: ClassVar[str] = "Google"
    oauth_scopes: ClassVar[tuple[str, ...]] = SCOPES
    endpoints: ClassVar[Mapping[str, str]] = {
        "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "revoke_url": "https://oauth2.googleapis.com/revoke",
        "api_url": API_URL,
    }
    # Google gives a refresh token only when asked for offline access, with consent.
    extra_authorization: ClassVar[tuple[tuple[str, str], ...]] = (
        ("access_type", "offline"),
        ("prompt", "consent"),
    )
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.INCREMENTAL})
    settings_type: ClassVar[type[ConnectorSettings]] = GoogleSection
    settings: GoogleCalendarSettings

    @classmethod
    def make_settings(cls, section: OAuthCalendarSection, timezone: str) -> GoogleCalendarSettings:
        assert isinstance(section, GoogleSection)
        return GoogleCalendarSettings(
            calendar_id=section.calendar_id,
            api_url=cls.endpoint(section, "api_url") or API_URL,
            timezone=timezone,
            horizon_days=section.horizon_days,
        )

    def __repr__(self) -> str:
        return f"GoogleCalendar({self.settings.calendar_id!r})"

    @property
    def location(self) -> str:
        return f"Google Calendar {self.settings.calendar_id}"

    @property
    def source_id(self) -> str:
        return f"calendar:google:{self.settings.calendar_id}"

    def read(
        self, now: datetime, state: Mapping[str, Any]
    ) -> tuple[tuple[Appointment, ...], dict[str, Any]]:
        events: dict[str, dict[str, Any]] = dict(state.get("events", {}))
        token = state.get("sync_token")
        try:
            changed, token = self._list(token, now)
        except FatalError as exc:
            if exc.status != 410:
                raise
            # The sync token expired: read the calendar in full again.
            events, (changed, token) = {}, self._list(None, now)
        for item in changed:
            events[str(item["id"])] = item
        zone_info = zone_named(self.settings.timezone)
        found, keep = self.in_window(
            events,
            now,
            lambda item: google_event_to_appointment(item, zone_info, self.settings.calendar_id),
        )
        return found, {"sync_token": token, "events": keep}

    def _list(
        self, sync_token: str | None, now: datetime
    ) -> tuple[list[dict[str, Any]], str | None]:
        url = (
            f"{self.settings.api_url}/calendars/{quote(self.settings.calendar_id, safe='')}/events"
        )
        params: dict[str, Any] = {"singleEvents": "true", "maxResults": PAGE_SIZE}
        if sync_token:
            params["syncToken"] = sync_token
        else:
            params["timeMin"] = (now - timedelta(days=1)).astimezone(UTC).isoformat()
            params["showDeleted"] = "true"

        def fetch(page_token: str | None) -> Page[dict[str, Any]]:
            query = dict(params, pageToken=page_token) if page_token else params
            data = self.http.request("GET", url, params=query).json()
            return Page(data.get("items", []), data)

        pages = paginate(NextToken(), fetch)
        items = list(pages)
        # The last page hands out the token the next sync starts from.
        assert pages.last_page is not None
        return items, pages.last_page.body.get("nextSyncToken")


def _when(value: Mapping[str, Any], zone: ZoneInfo) -> tuple[datetime, bool]:
    if value.get("dateTime"):
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if value.get("timeZone"):
            moment = moment.astimezone(zone_named(str(value["timeZone"])))
        return moment, False
    day = date.fromisoformat(str(value["date"]))
    return datetime.combine(day, time(0), tzinfo=zone), True


def google_event_to_appointment(
    item: Mapping[str, Any], zone: ZoneInfo, calendar: str
) -> Appointment | None:
    """One event of events.list as an appointment; None for what cannot be one."""
    if not item.get("start") or not item.get("end"):
        return None  # a cancelled event arrives with little more than its id
    start, all_day = _when(item["start"], zone)
    end, _ = _when(item["end"], zone)
    attendees = tuple(
        Attendee(name=a.get("displayName"), email=a.get("email"))
        for a in item.get("attendees", [])
        # Not the organiser, nor the calendar's owner, nor a room or a resource (issue 18).
        if not a.get("organizer")
        and not a.get("self")
        and not a.get("resource")
        and a.get("responseStatus") != "declined"
    )
    link = item.get("hangoutLink")
    for entry in (item.get("conferenceData") or {}).get("entryPoints", []):
        if entry.get("entryPointType") == "video":
            link = entry.get("uri")
    status = {
        "cancelled": AppointmentStatus.CANCELLED,
        "tentative": AppointmentStatus.TENTATIVE,
    }.get(str(item.get("status")), AppointmentStatus.CONFIRMED)
    # One instance of a series (its id is Google's own per instance): the .ics names the
    # calendar's event by the series' iCalUID and the instance's original start.
    original = item.get("originalStartTime") if item.get("recurringEventId") else None
    return Appointment(
        id=str(item["id"]),
        title=str(item.get("summary") or "(no title)"),
        start=start,
        end=max(end, start),
        attendees=attendees,
        location=item.get("location"),
        online_url=link,
        status=status,
        all_day=all_day,
        calendar=calendar,
        description=item.get("description"),
        series_uid=(str(item.get("iCalUID") or "") or None) if original else None,
        recurrence_id=_when(original, zone)[0] if original else None,
    )
