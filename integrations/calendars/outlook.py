"""Outlook calendars through Microsoft Graph: calendarView with delta.

The first read asks ``/me/calendarView/delta`` for the window from a day ago to the horizon
(occurrences of recurring events come expanded), follows ``@odata.nextLink`` to the end and
keeps the ``@odata.deltaLink``. Later reads call that link and get only what changed:
changed events whole, removed ones as ``{"@removed": …, "id": …}``. The window is fixed by
the first call, so a new one is started once it no longer reaches the horizon, or when
Graph answers 410 (the delta state is gone). Times are asked for in UTC
(``Prefer: outlook.timezone="UTC"``).

OAuth as for Xero (integrations.oauth): Graph rotates refresh tokens too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.base import Capability
from integrations.calendars.base import CalendarApiSettings, OAuthCalendar, OAuthCalendarSection
from integrations.calendars.base import zone as zone_named
from integrations.http import FatalError
from integrations.pagination import NextLink, Page, paginate
from plugin.core.model import Appointment, AppointmentStatus, Attendee

__all__ = ["OutlookCalendar", "OutlookCalendarSettings", "graph_event_to_appointment"]

API_URL = "https://graph.microsoft.com/v1.0"
SCOPES = ("offline_access", "Calendars.Read")


@dataclass(frozen=True)
class OutlookCalendarSettings:
    api_url: str = API_URL
    timezone: str = "UTC"  # for all-day events
    horizon_days: int = 14
    page_size: int = 100


class OutlookCalendar(OAuthCalendar):
    name: ClassVar[str] = "outlook"
    title: ClassVar[str] = "Outlook"
    platform: ClassVar[str] = "Outlook"
    api_title: ClassVar[str | None] = "Microsoft Graph"
    oauth_scopes: ClassVar[tuple[str, ...]] = SCOPES
    endpoints: ClassVar[Mapping[str, str]] = {
        "authorize_url": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "token_url": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "api_url": API_URL,
    }
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.INCREMENTAL})
    settings: OutlookCalendarSettings

    @classmethod
    def headers(cls, settings: CalendarApiSettings) -> Mapping[str, str]:
        page_size = settings.page_size if isinstance(settings, OutlookCalendarSettings) else 100
        return {
            "Accept": "application/json",
            "Prefer": f'outlook.timezone="UTC", odata.maxpagesize={page_size}',
        }

    @classmethod
    def make_settings(cls, section: OAuthCalendarSection, timezone: str) -> OutlookCalendarSettings:
        return OutlookCalendarSettings(
            api_url=cls.endpoint(section, "api_url") or API_URL,
            timezone=timezone,
            horizon_days=section.horizon_days,
        )

    def __repr__(self) -> str:
        return "OutlookCalendar()"

    @property
    def location(self) -> str:
        return "the Outlook calendar"

    @property
    def source_id(self) -> str:
        return "calendar:outlook"

    def read(
        self, now: datetime, state: Mapping[str, Any]
    ) -> tuple[tuple[Appointment, ...], dict[str, Any]]:
        events: dict[str, dict[str, Any]] = dict(state.get("events", {}))
        horizon = now + timedelta(days=self.settings.horizon_days)
        window_end = state.get("window_end")
        link = state.get("delta_link")
        if link is None or window_end is None or datetime.fromisoformat(window_end) < horizon:
            link, events = None, {}
        try:
            changed, link, window_end = self._delta(link, now, horizon, window_end)
        except FatalError as exc:
            if exc.status != 410:
                raise
            events = {}
            changed, link, window_end = self._delta(None, now, horizon, None)
        for item in changed:
            if "@removed" in item:
                events.pop(str(item["id"]), None)
            else:
                events[str(item["id"])] = item
        zone_info = zone_named(self.settings.timezone)
        found, keep = self.in_window(
            events, now, lambda item: graph_event_to_appointment(item, zone_info)
        )
        return found, {"delta_link": link, "window_end": window_end, "events": keep}

    def _delta(
        self, link: str | None, now: datetime, horizon: datetime, window_end: str | None
    ) -> tuple[list[dict[str, Any]], str | None, str | None]:
        params: dict[str, Any] | None = None
        if link is None:
            # A new window, a week beyond the horizon so that it lasts a while.
            end = horizon + timedelta(days=7)
            window_end = end.isoformat()
            link = f"{self.settings.api_url}/me/calendarView/delta"
            params = {
                "startDateTime": (now - timedelta(days=1)).astimezone(UTC).isoformat(),
                "endDateTime": end.astimezone(UTC).isoformat(),
            }
        first = link

        def fetch(next_link: str | None) -> Page[dict[str, Any]]:
            # The next and delta links carry their own query; the first call has ours.
            url, query = (next_link, None) if next_link else (first, params)
            data = self.http.request("GET", url, params=query).json()
            return Page(data.get("value", []), data)

        pages = paginate(NextLink(), fetch)
        items = list(pages)
        # The last page hands out the link the next sync reads the changes from.
        assert pages.last_page is not None
        return items, pages.last_page.body.get("@odata.deltaLink"), window_end


def event_zone(name: object) -> ZoneInfo | None:
    """The zone an event was made in: Graph names it as Windows does ("W. Europe Standard
    Time") or by its IANA name. Kept on the appointment, so that an attendee who is no
    client is reminded on the event's clock (issue 18: such attendees got UTC)."""
    if not isinstance(name, str) or not name:
        return None
    from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

    try:
        return ZoneInfo(WINDOWS_TO_OLSON.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        return None  # a custom zone ("tzone://Microsoft/Custom"): the times stay in UTC


def _when(value: Mapping[str, Any], zone: ZoneInfo, all_day: bool) -> datetime:
    moment = datetime.fromisoformat(str(value["dateTime"])[:26])
    if all_day:
        return moment.replace(tzinfo=zone)
    named = str(value.get("timeZone") or "UTC")
    return moment.replace(tzinfo=UTC if named == "UTC" else zone_named(named))


def graph_event_to_appointment(item: Mapping[str, Any], zone: ZoneInfo) -> Appointment | None:
    if not item.get("start") or not item.get("end") or item.get("type") == "seriesMaster":
        return None  # the series itself: its occurrences come on their own
    all_day = bool(item.get("isAllDay"))
    start = _when(item["start"], zone, all_day)
    end = _when(item["end"], zone, all_day)
    own = None if all_day else event_zone(item.get("originalStartTimeZone"))
    if own is not None:
        start, end = start.astimezone(own), end.astimezone(own)
    attendees = tuple(
        Attendee(
            name=(a.get("emailAddress") or {}).get("name"),
            email=(a.get("emailAddress") or {}).get("address"),
        )
        for a in item.get("attendees", [])
        if a.get("type") != "resource"
        and (a.get("status") or {}).get("response") not in ("declined", "organizer")
    )
    online = (item.get("onlineMeeting") or {}).get("joinUrl")
    return Appointment(
        id=str(item["id"]),
        title=str(item.get("subject") or "(no title)"),
        start=start,
        end=max(end, start),
        attendees=attendees,
        location=(item.get("location") or {}).get("displayName") or None,
        online_url=online,
        status=AppointmentStatus.CANCELLED
        if item.get("isCancelled")
        else (
            AppointmentStatus.TENTATIVE
            if item.get("showAs") == "tentative"
            else AppointmentStatus.CONFIRMED
        ),
        all_day=all_day,
        calendar="Outlook",
        description=item.get("bodyPreview") or None,
    )
