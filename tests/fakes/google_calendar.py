"""A fake Google Calendar API v3 on loopback: events.list with paging and sync tokens.

Events are held as the API's JSON. Each change bumps a version; a list hands out
``nextSyncToken`` on its last page, and a later list with that token returns only what
changed since (cancelled events as ``{"id", "status": "cancelled"}``). A recurring event
(``recurrence``) is listed as its instances, as with ``singleEvents=true``: ids
``<id>_<start in UTC>`` (``<id>_<date>`` all day) with ``recurringEventId`` and
``originalStartTime``; an event put under an instance's id is that instance's exception
(moved, or cancelled), and one whose series the calendar does not hold (an invitation to
one occurrence) is listed as it is. Tokens in
``expired`` get 410 Gone, as Google answers for an invalid sync token. ``page_size``
overrides maxResults to exercise paging. ``served`` counts the events each answer carried.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from tests.fakes.http_server import base_url, serve, stop


@dataclass
class FakeGoogleCalendar:
    access_token: str = "google-access-token"
    events: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    version: int = 0
    expired: set[str] = field(default_factory=set)
    page_size: int | None = None
    calls: list[str] = field(default_factory=list)
    #: Events in each events.list answer, in order.
    served: list[int] = field(default_factory=list)
    #: Tokens revoked at /revoke (Google revokes the grant, refresh token and all).
    revoked: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    #: Answers to give before any other, as (status, headers): 429s, 5xx.
    faults: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def put(self, event: dict[str, Any]) -> None:
        self.version += 1
        self.events[event["id"]] = (self.version, event)

    def cancel(self, event_id: str) -> None:
        self.version += 1
        self.events[event_id] = (self.version, {"id": event_id, "status": "cancelled"})

    def start(self) -> str:
        def handle(
            method: str, path: str, headers: dict[str, str], body: bytes
        ) -> tuple[int, Any, dict[str, str]]:
            if self.faults and method == "GET":
                status, headers_out = self.faults.pop(0)
                return status, {"error": {"code": status, "message": "injected"}}, headers_out
            if method == "POST" and urlsplit(path).path.endswith("/revoke"):
                form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
                self.revoked.append(form.get("token", ""))
                if form.get("token") == self.refresh_token:
                    self.refresh_token = ""  # the grant is gone: no more access tokens
                status, payload = 200, dict[str, Any]()
            elif method == "POST":
                form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
                status, payload = self.token(form)
            else:
                status, payload = self.handle(path, headers)
            return status, payload, {}

        self.server = serve(handle)
        return self.url

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{base_url(self.server)}/calendar/v3"

    def stop(self) -> None:
        stop(self.server)

    def calendar_section(self) -> str:
        """kindly.toml's [calendar] for Google Calendar served by this fake."""
        root = self.url.removesuffix("/calendar/v3")
        return f"""
[calendar]
type = "google"
client_id = "kindly-google-client"
token_url = "{root}/token"
revoke_url = "{root}/revoke"
api_url = "{self.url}"
"""

    refresh_token: str = "google-refresh"

    def token(self, form: dict[str, str]) -> tuple[int, Any]:
        """The token endpoint: Google's refresh tokens do not rotate, so none comes back."""
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("refresh_token") != self.refresh_token
        ):
            return 400, {"error": "invalid_grant"}
        return 200, {
            "access_token": self.access_token,
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/calendar.events.readonly",
        }

    def handle(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        parts = urlsplit(path)
        self.calls.append(parts.path)
        if headers.get("Authorization") != f"Bearer {self.access_token}":
            return 401, {"error": {"code": 401, "message": "Invalid Credentials"}}
        segments = [unquote(s) for s in parts.path.split("/")]
        if segments[-1] != "events":
            return 404, {"error": {"code": 404, "message": "Not Found"}}
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        token = query.get("syncToken")
        if token is not None and ("timeMin" in query or "timeMax" in query):
            return 400, {"error": {"code": 400, "message": "syncToken with timeMin"}}
        if token in self.expired:
            return 410, {"error": {"code": 410, "message": "Sync token is no longer valid"}}
        since = int(token.removeprefix("st-")) if token else 0
        items = [
            event
            for version, event in sorted(self.listed(), key=lambda pair: pair[0])
            if version > since and (token or event.get("status") != "cancelled")
        ]
        size = self.page_size or int(query.get("maxResults", 250))
        offset = int(query.get("pageToken", 0))
        page = items[offset : offset + size]
        self.served.append(len(page))
        body: dict[str, Any] = {"kind": "calendar#events", "items": page}
        if offset + size < len(items):
            body["nextPageToken"] = str(offset + size)
        else:
            body["nextSyncToken"] = f"st-{self.version}"
        return 200, body

    def listed(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(version, event) as events.list with singleEvents=true shows the calendar."""
        series = {key for key, (_, event) in self.events.items() if event.get("recurrence")}
        for key, (version, event) in self.events.items():
            if key in series:
                yield from self.instances(version, event)
            elif event.get("recurringEventId") not in series:
                yield version, event

    def instances(
        self, version: int, master: dict[str, Any]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """A series' instances, each replaced by its exception where one was put."""
        begins, ends = master["start"], master["end"]
        all_day = "date" in begins
        if all_day:
            first: date | datetime = date.fromisoformat(begins["date"])
            length = date.fromisoformat(ends["date"]) - first
            dtstart = datetime.combine(first, datetime.min.time())
        else:
            dtstart = datetime.fromisoformat(begins["dateTime"]).astimezone(
                ZoneInfo(begins.get("timeZone") or "UTC")
            )
            length = datetime.fromisoformat(ends["dateTime"]) - dtstart
        (rule,) = [line for line in master["recurrence"] if line.startswith("RRULE:")]
        for moment in rrulestr(rule.removeprefix("RRULE:"), dtstart=dtstart):
            if all_day:
                day = moment.date()
                instance_id = f"{master['id']}_{day:%Y%m%d}"
                when = {
                    "start": {"date": day.isoformat()},
                    "end": {"date": (day + length).isoformat()},
                }
                original = {"date": day.isoformat()}
            else:
                instance_id = f"{master['id']}_{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"
                zone = begins.get("timeZone") or "UTC"
                when = {
                    "start": {"dateTime": moment.isoformat(), "timeZone": zone},
                    "end": {"dateTime": (moment + length).isoformat(), "timeZone": zone},
                }
                original = {"dateTime": moment.isoformat(), "timeZone": zone}
            own = self.events.get(instance_id)
            if own is not None:
                yield max(version, own[0]), own[1]
                continue
            instance = {k: v for k, v in master.items() if k != "recurrence"}
            yield (
                version,
                {
                    **instance,
                    **when,
                    "id": instance_id,
                    "recurringEventId": master["id"],
                    "originalStartTime": original,
                    "iCalUID": master.get("iCalUID", f"{master['id']}@google.com"),
                },
            )
