"""CalDAV calendars (RFC 4791): Nextcloud, iCloud, Fastmail, Radicale and others.

Over the shared HTTP module, with icalendar for the events; not the ``caldav`` package,
whose 3.x releases replace urllib3 under requests.

- **Discovery** (RFC 6764, 5397): the URL may be the server, a principal, a calendar home
  or one calendar; ``current-user-principal`` then ``calendar-home-set`` lead to the
  calendars, each a collection whose resource type includes ``C:calendar``.
- **Reading**: a ``calendar-query`` REPORT for events overlapping the window (by default
  from a day ago to two weeks ahead), then recurring events expanded here, with dateutil's
  rrule, honouring EXDATE and the instances a RECURRENCE-ID moved or cancelled.
- **Events to appointments**: start and end with their time zone (floating times and
  all-day events on the calendar's zone), location, the online-meeting link (URL, or a
  link in the location or description), attendees (name and e-mail from ATTENDEE; a phone
  number from the description's "Phone:"/"Tel:" line), cancelled and tentative events.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, ClassVar, Self
from urllib.parse import urljoin
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from integrations.base import (
    CalendarConnector,
    Capability,
    ConnectorSettings,
    ConnectRequest,
    Workspace,
)
from integrations.http import FatalError, HttpClient
from plugin.config.locales import default_timezone
from plugin.core.model import Appointment, AppointmentStatus, Attendee

__all__ = ["CalDAVCalendar", "CalDAVSettings", "events_to_appointments"]

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
NS = {"d": DAV, "c": CALDAV}
PASSWORD_VARIABLE = "KINDLY_CALDAV_PASSWORD"  # noqa: S105 (a variable name)
_PHONE = re.compile(
    r"(?im)^\s*(?:phone|tel|telefoon|téléphone|telefon|điện thoại)\s*[:：]\s*(\+?[\d ()./-]{6,})"
)
_LINK = re.compile(r"https://[^\s<>\"']+")
#: A sync token the server no longer accepts (RFC 6578 3.2, DAV:valid-sync-token): 403 by
#: the RFC, 409 by some servers, 412 by Xandikos.
INVALID_TOKEN = frozenset({403, 409, 412})
#: The answers of a server that does not offer sync-collection on a calendar.
NOT_OFFERED = frozenset({400, 403, 404, 405, 415, 501})
MULTIGET_BATCH = 100
#: An UNTIL given as an instant ("20270129T000000Z"), for an all-day series read as dates.
_UNTIL_INSTANT = re.compile(r"UNTIL=(\d{8})T\d{6}Z?")


@dataclass(frozen=True)
class CalDAVSettings:
    url: str
    username: str | None = None
    password: str | None = None
    #: Only these calendars (display names or paths); empty: all.
    calendars: tuple[str, ...] = ()
    horizon_days: int = 14
    timezone: str = "UTC"  # for floating times and all-day events

    def __repr__(self) -> str:
        return f"CalDAVSettings(url={self.url!r}, username={self.username!r})"


@dataclass(frozen=True)
class CalDAVSection(ConnectorSettings):
    """[calendar] type = "caldav": Nextcloud, iCloud, Fastmail, Radicale (the password only
    in KINDLY_CALDAV_PASSWORD)."""

    url: str = field(
        metadata={
            "schema": {
                "pattern": "^https?://",
                "description": "The server, the principal, the calendar home or one calendar",
            }
        }
    )
    username: str | None = field(default=None, metadata={"schema": {"minLength": 1}})
    calendars: tuple[str, ...] = field(
        default=(),
        metadata={"schema": {"description": "Only these calendars (display names); default: all"}},
    )
    horizon_days: int = field(
        default=14,
        metadata={"schema": {"minimum": 1, "maximum": 90, "description": "How far ahead to read"}},
    )


@dataclass(frozen=True)
class _Calendar:
    href: str
    name: str


class CalDAVCalendar(CalendarConnector):
    name: ClassVar[str] = "caldav"
    title: ClassVar[str] = "CalDAV"
    auth: ClassVar[str] = "basic"
    settings_type: ClassVar[type[ConnectorSettings]] = CalDAVSection
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.INCREMENTAL})
    secret_variables: ClassVar[Mapping[str, str]] = {PASSWORD_VARIABLE: "the CalDAV password"}

    @classmethod
    def open(cls, workspace: Workspace) -> Self:
        section = cls.settings_of(workspace.settings)
        assert isinstance(section, CalDAVSection)
        return cls(
            CalDAVSettings(
                url=section.url,
                username=section.username,
                password=os.environ.get(PASSWORD_VARIABLE),
                calendars=section.calendars,
                horizon_days=section.horizon_days,
                timezone=default_timezone(workspace.settings.company.country) or "UTC",
            ),
        )

    @classmethod
    def connect(cls, workspace: Workspace, request: ConnectRequest) -> str:
        return (
            "CalDAV needs no sign-in: [calendar] url and username in kindly.toml, and the "
            f"password in {PASSWORD_VARIABLE}, are all it takes."
        )

    def __init__(self, settings: CalDAVSettings, http: HttpClient | None = None) -> None:
        self.settings = settings
        self.http = http or HttpClient(
            "CalDAV",
            secrets=lambda: [settings.password or ""],
            # CalDAV has no `kindly connect`: its credentials are a setting and a variable.
            refused_hint=f"Check [calendar] username in kindly.toml and the password in "
            f"{PASSWORD_VARIABLE}.",
        )

    def __repr__(self) -> str:
        return f"CalDAVCalendar({self.settings.url!r})"

    @property
    def location(self) -> str:
        return f"the calendars at {self.settings.url}"

    def _call(self, method: str, url: str, body: str, depth: str) -> ElementTree.Element:
        auth = None
        if self.settings.username:
            auth = (self.settings.username, self.settings.password or "")
        response = self.http.request(
            method,
            url,
            data=body.encode("utf-8"),
            headers={"Depth": depth, "Content-Type": "application/xml; charset=utf-8"},
            auth=auth,
            ok=(207,),
        )
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import fromstring

        try:
            # defusedxml: no entity expansion, no external entities, whatever the server sends.
            tree: ElementTree.Element = fromstring(response.body)
        except (ElementTree.ParseError, DefusedXmlException) as exc:
            raise FatalError(f"CalDAV: {url} answered XML that cannot be read: {exc}") from None
        return tree

    def _propfind(self, url: str, props: str, depth: str = "0") -> ElementTree.Element:
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="{DAV}" '
            f'xmlns:c="{CALDAV}"><d:prop>{props}</d:prop></d:propfind>'
        )
        return self._call("PROPFIND", url, body, depth)

    def calendars(self) -> list[_Calendar]:
        """The calendars at the configured URL, found the RFC 6764 / 5397 way."""
        url = self.settings.url
        found = self._collections(url, depth="0")
        if found:
            return found  # the URL is a calendar itself
        principal = self._href(
            self._propfind(url, "<d:current-user-principal/>"), "d:current-user-principal"
        )
        home_at = urljoin(url, principal) if principal else url
        home = self._href(self._propfind(home_at, "<c:calendar-home-set/>"), "c:calendar-home-set")
        calendars = self._collections(urljoin(url, home or home_at), depth="1")
        wanted = set(self.settings.calendars)
        if wanted:
            calendars = [c for c in calendars if c.name in wanted or c.href in wanted]
        return calendars

    def _collections(self, url: str, depth: str) -> list[_Calendar]:
        tree = self._propfind(url, "<d:resourcetype/><d:displayname/>", depth)
        found = []
        for response in tree.findall("d:response", NS):
            href = response.findtext("d:href", default="", namespaces=NS)
            if response.find(".//d:resourcetype/c:calendar", NS) is None:
                continue
            name = response.findtext(".//d:displayname", default="", namespaces=NS) or href
            found.append(_Calendar(urljoin(url, href), name))
        return found

    @staticmethod
    def _href(tree: ElementTree.Element, prop: str) -> str | None:
        node = tree.find(f".//{prop}/d:href", NS)
        return node.text.strip() if node is not None and node.text else None

    @property
    def source_id(self) -> str:
        where = self.settings.url
        # The store names a source in 200 characters; a long address is named by its hash.
        if len(where) > 160:
            where = hashlib.sha256(where.encode()).hexdigest()[:32]
        return f"calendar:caldav:{where}"

    def read(
        self, now: datetime, state: Mapping[str, Any]
    ) -> tuple[tuple[Appointment, ...], dict[str, Any]]:
        """Events overlapping [now - 1 day, now + horizon] in every calendar, expanded;
        the state holds each calendar's sync token and events (by href)."""
        start = now - timedelta(days=1)
        end = now + timedelta(days=self.settings.horizon_days)
        known = state.get("calendars", {})
        # Discovery is kept with the tokens, for the URL and calendars it was made for: a
        # sync with nothing changed is then one request a calendar, not five (issue 18).
        looked_for = {"url": self.settings.url, "calendars": list(self.settings.calendars)}
        cached = state.get("discovered") if state.get("discovered_for") == looked_for else None
        calendars = (
            [_Calendar(str(c["href"]), str(c["name"])) for c in cached]
            if cached
            else self.calendars()
        )
        found: list[Appointment] = []
        kept: dict[str, Any] = {}
        for calendar in calendars:
            try:
                synced = self._synced(calendar, known.get(calendar.href, {}))
                texts = (
                    self._query(calendar, start, end)
                    if synced is None
                    else list(synced["items"].values())
                )
            except FatalError as exc:
                if cached and exc.status in (404, 410):
                    # A calendar moved or was removed since: find them again.
                    return self.read(now, {"calendars": known})
                raise
            if synced is not None:
                kept[calendar.href] = synced
            found.extend(
                events_to_appointments(
                    texts, start, end, calendar.name, self.settings.timezone, self.skip
                )
            )
        return tuple(found), {
            "calendars": kept,
            "discovered": [{"href": c.href, "name": c.name} for c in calendars],
            "discovered_for": looked_for,
        }

    def _synced(self, calendar: _Calendar, state: Mapping[str, Any]) -> dict[str, Any] | None:
        """The calendar's events by RFC 6578 sync-collection: all of them the first time,
        then only what changed since the sync token. None if the server does not do it."""
        token, items = str(state.get("token", "")), dict(state.get("items", {}))
        try:
            tree = self._call("REPORT", calendar.href, _sync_body(token), "0")
        except FatalError as exc:
            if token and exc.status in INVALID_TOKEN:
                # The token is no longer valid (DAV:valid-sync-token): start over, and
                # where the server no longer offers sync at all, query the window.
                token, items = "", {}
                try:
                    tree = self._call("REPORT", calendar.href, _sync_body(token), "0")
                except FatalError as again:
                    if again.status in NOT_OFFERED:
                        return None
                    raise
            elif exc.status in NOT_OFFERED:
                return None  # not offered: a calendar-query for the window instead
            else:
                raise
        missing = []
        for response in tree.findall("d:response", NS):
            href = response.findtext("d:href", default="", namespaces=NS)
            status = " ".join(node.text or "" for node in response.findall("d:status", NS))
            if " 404 " in f" {status} ":
                items.pop(href, None)
                continue
            data = response.findtext(".//c:calendar-data", default="", namespaces=NS)
            if data:
                items[href] = data
            elif href:
                # RFC 6578 lets a server leave the data out (Xandikos does): fetch it.
                missing.append(href)
        items.update(self._multiget(calendar, missing))
        new_token = tree.findtext("d:sync-token", default="", namespaces=NS)
        return {"token": new_token, "items": items}

    def _multiget(self, calendar: _Calendar, hrefs: list[str]) -> dict[str, str]:
        """The events at these hrefs (RFC 4791 calendar-multiget), a hundred a request."""
        found: dict[str, str] = {}
        for first in range(0, len(hrefs), MULTIGET_BATCH):
            wanted = "".join(
                f"<d:href>{escape(href)}</d:href>" for href in hrefs[first : first + MULTIGET_BATCH]
            )
            body = (
                f'<?xml version="1.0" encoding="utf-8"?><c:calendar-multiget xmlns:d="{DAV}" '
                f'xmlns:c="{CALDAV}"><d:prop><d:getetag/><c:calendar-data/></d:prop>'
                f"{wanted}</c:calendar-multiget>"
            )
            tree = self._call("REPORT", calendar.href, body, "1")
            for response in tree.findall("d:response", NS):
                href = response.findtext("d:href", default="", namespaces=NS)
                data = response.findtext(".//c:calendar-data", default="", namespaces=NS)
                if href and data:
                    found[href] = data
        return found

    def _query(self, calendar: _Calendar, start: datetime, end: datetime) -> list[str]:
        stamp = "%Y%m%dT%H%M%SZ"
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><c:calendar-query xmlns:d="{DAV}" '
            f'xmlns:c="{CALDAV}"><d:prop><d:getetag/><c:calendar-data/></d:prop>'
            '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
            f'<c:time-range start="{start.astimezone(UTC):{stamp}}" '
            f'end="{end.astimezone(UTC):{stamp}}"/>'
            "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"
        )
        tree = self._call("REPORT", calendar.href, body, "1")
        return [
            node.text
            for node in tree.findall(".//c:calendar-data", NS)
            if node is not None and node.text
        ]


def _sync_body(token: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="{DAV}" '
        f'xmlns:c="{CALDAV}"><d:sync-token>{escape(token)}</d:sync-token>'
        "<d:sync-level>1</d:sync-level><d:prop><d:getetag/><c:calendar-data/></d:prop>"
        "</d:sync-collection>"
    )


def events_to_appointments(
    calendars: Iterable[str],
    start: datetime,
    end: datetime,
    calendar_name: str,
    zone_name: str,
    skip: Callable[[str], None] | None = None,
) -> Iterator[Appointment]:
    """The events in these iCalendar texts that overlap [start, end), recurrences expanded.

    An event that cannot be read is left out and named to ``skip`` (its UID and
    calendar): one bad event never stops the others, nor any invoice reminder (issue 18).
    Without ``skip``, it raises FatalError.
    """
    from zoneinfo import ZoneInfo

    from icalendar import Calendar

    def bad(uid: str, exc: Exception) -> None:
        why = f"CalDAV: the event {uid} in {calendar_name} is left out: {exc}"
        if skip is None:
            raise FatalError(why) from None
        skip(why)

    zone = ZoneInfo(zone_name)
    for text in calendars:
        try:
            parsed = Calendar.from_ical(text)
        except ValueError as exc:
            found = re.search(r"(?m)^UID:(.+)$", text)
            bad(found.group(1).strip() if found else "(no UID)", exc)
            continue
        events = list(parsed.walk("VEVENT"))
        masters = [e for e in events if e.get("RECURRENCE-ID") is None]
        try:
            overrides = {
                _moment(e.decoded("RECURRENCE-ID"), zone): e
                for e in events
                if e.get("RECURRENCE-ID") is not None
            }
        except (ValueError, TypeError, KeyError) as exc:
            bad(str(events[0].get("UID") or "(no UID)") if events else "(no UID)", exc)
            continue
        # An invitation to one occurrence only: the resource holds the instance without
        # its series (issue 18: it was ignored). Each is an event of its own.
        mastered = {str(master.get("UID") or "") for master in masters}
        orphans = [
            e
            for e in events
            if e.get("RECURRENCE-ID") is not None and str(e.get("UID") or "") not in mastered
        ]
        for orphan in orphans:
            try:
                begin = _moment(orphan.decoded("DTSTART"), zone)
                finish = begin + _length(orphan, begin, zone)
                if begin < end and finish > start:
                    yield _appointment(orphan, begin, finish, calendar_name, orphan, instance=True)
            except (ValueError, TypeError, KeyError, OverflowError) as exc:
                bad(str(orphan.get("UID") or "(no UID)"), exc)
        for master in masters:
            try:
                # A whole series is read before any of it is kept: half a series is worse
                # than none.
                series = [
                    _appointment(event, begin, finish, calendar_name, master)
                    for begin, finish, event in _instances(master, overrides, start, end, zone)
                ]
            except (ValueError, TypeError, KeyError, OverflowError) as exc:
                bad(str(master.get("UID") or "(no UID)"), exc)
                continue
            yield from series


def _instances(
    master: Any,
    overrides: dict[datetime, Any],
    start: datetime,
    end: datetime,
    zone: tzinfo,
) -> Iterator[tuple[datetime, datetime, Any]]:
    first = _moment(master.decoded("DTSTART"), zone)
    length = _length(master, first, zone)
    if master.get("RRULE") is None:
        if first < end and first + length > start:
            yield first, first + length, master
        return
    rules, on_the_wall = _series(master, first, zone)

    def wall(moment: datetime) -> datetime:
        return moment.astimezone(zone).replace(tzinfo=None) if on_the_wall else moment

    def aware(moment: datetime) -> datetime:
        return moment.replace(tzinfo=zone) if on_the_wall else moment

    def moved(override: Any) -> tuple[datetime, datetime, Any] | None:
        begin = _moment(override.decoded("DTSTART"), zone)
        finish = begin + _length(override, begin, zone)
        return (begin, finish, override) if begin < end and finish > start else None

    moments = [aware(m) for m in rules.between(wall(start - length), wall(end), inc=True)]
    for moment in moments:
        override = overrides.get(moment)
        if override is None:
            yield moment, moment + length, master
        elif (instance := moved(override)) is not None:  # moved out of the window: not now
            yield instance
    # An occurrence moved into the window from a day beyond it (issue 18: never read).
    listed = set(moments)
    for recurrence, override in overrides.items():
        if recurrence in listed:
            continue
        occurs = rules.after(wall(recurrence) - timedelta(seconds=1), inc=True)
        if occurs == wall(recurrence) and (instance := moved(override)) is not None:
            yield instance


def _series(master: Any, first: datetime, zone: tzinfo) -> tuple[Any, bool]:
    """The series' occurrences as dateutil reads them, and whether they are wall-clock
    dates: an all-day series is one of dates (RFC 5545: its UNTIL is then a DATE), so that
    UNTIL=20270129 is the 29th wherever the reader is (it failed: "UNTIL values must be
    specified in UTC")."""
    from dateutil.rrule import rruleset, rrulestr

    text = master.get("RRULE").to_ical().decode()
    on_the_wall = not isinstance(master.decoded("DTSTART"), datetime)
    rules = rruleset()
    if on_the_wall:
        text = _UNTIL_INSTANT.sub(r"UNTIL=\1", text)
        rules.rrule(rrulestr(text, dtstart=first.replace(tzinfo=None), forceset=False))  # type: ignore[arg-type]
    else:
        # dateutil wants the rule's UNTIL in the zone of DTSTART; iCalendar gives it in UTC.
        rules.rrule(rrulestr(text, dtstart=first, ignoretz=False, forceset=False))  # type: ignore[arg-type]
    for excluded in _dates(master.get("EXDATE"), zone):
        rules.exdate(excluded.replace(tzinfo=None) if on_the_wall else excluded)
    return rules, on_the_wall


def _dates(value: Any, zone: tzinfo) -> Iterator[datetime]:
    if value is None:
        return
    for item in value if isinstance(value, list) else [value]:
        for entry in item.dts:
            yield _moment(entry.dt, zone)


def _moment(value: date | datetime, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value, time(0), tzinfo=zone)


def _length(event: Any, begin: datetime, zone: tzinfo) -> timedelta:
    if event.get("DTEND") is not None:
        return _moment(event.decoded("DTEND"), zone) - begin
    if event.get("DURATION") is not None:
        duration: timedelta = event.decoded("DURATION")
        return duration
    all_day = not isinstance(event.decoded("DTSTART"), datetime)
    return timedelta(days=1) if all_day else timedelta(0)


def _appointment(
    event: Any,
    begin: datetime,
    finish: datetime,
    calendar_name: str,
    master: Any,
    *,
    instance: bool = False,
) -> Appointment:
    uid = str(master.get("UID") or "")
    description = str(event.get("DESCRIPTION") or "")
    location = str(event.get("LOCATION") or "") or None
    status = str(event.get("STATUS") or "CONFIRMED").upper()
    link = event.get("URL") or event.get("X-GOOGLE-CONFERENCE")
    if link is None:
        found = _LINK.search(f"{location or ''} {description}")
        link = found.group(0) if found else None
    phone = _PHONE.search(description)
    attendees: list[Attendee] = []
    organiser = str(event.get("ORGANIZER") or "").lower()
    for value in _as_list(event.get("ATTENDEE")):
        if organiser and str(value).lower() == organiser:
            continue  # the organiser, listed among the attendees as calendars often do
        params = getattr(value, "params", {})
        if str(params.get("PARTSTAT", "")).upper() == "DECLINED":
            continue  # not coming: no reminder
        if str(params.get("ROLE", "")).upper() in ("NON-PARTICIPANT", "CHAIR"):
            continue  # an observer, or the organiser (who set the meeting up)
        if str(params.get("CUTYPE", "")).upper() in ("ROOM", "RESOURCE"):
            continue  # a meeting room or a projector reads no reminders
        address = str(value)
        email = address[7:] if address.lower().startswith("mailto:") else None
        attendees.append(
            Attendee(
                name=str(params.get("CN")) if params.get("CN") else None,
                email=email,
                phone=phone.group(1).strip() if phone and len(attendees) == 0 else None,
            )
        )
    instance = instance or master.get("RRULE") is not None
    # On the series' own clock, as its unmoved occurrences are, whatever zone the
    # RECURRENCE-ID was written in: the same occurrence gets the same id.
    series_zone = _moment(master.decoded("DTSTART"), begin.tzinfo or UTC).tzinfo
    recurrence = (
        _moment(event.decoded("RECURRENCE-ID"), begin.tzinfo or UTC).astimezone(series_zone)
        if event.get("RECURRENCE-ID") is not None
        else begin
    )
    return Appointment(
        # An occurrence is named by where the series put it, so that it keeps its id when
        # it moves (issue 18: moved away and back, it got no fresh reminder).
        id=f"{uid}#{recurrence.isoformat()}" if instance else uid,
        title=str(event.get("SUMMARY") or "(no title)"),
        start=begin,
        end=max(finish, begin),
        attendees=tuple(attendees),
        location=location,
        online_url=str(link) if link else None,
        status={
            "CANCELLED": AppointmentStatus.CANCELLED,
            "TENTATIVE": AppointmentStatus.TENTATIVE,
        }.get(status, AppointmentStatus.CONFIRMED),
        all_day=not isinstance(event.decoded("DTSTART"), datetime),
        calendar=calendar_name,
        description=description or None,
        series_uid=uid if instance else None,
        recurrence_id=recurrence if instance else None,
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
