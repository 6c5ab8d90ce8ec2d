"""A fake Microsoft Graph calendar on loopback: calendarView/delta with next and delta links.

The first call (with startDateTime and endDateTime) returns the events in that window,
``page_size`` to a page behind ``@odata.nextLink``, and ends with an ``@odata.deltaLink``.
Calling the delta link returns what changed since: changed events whole, deleted ones as
``{"@removed": {"reason": "deleted"}, "id": …}``. Delta tokens in ``expired`` get 410
with ``syncStateNotFound``. ``served`` counts the events (and removals) each answer carried.

A series (``type: seriesMaster`` with a daily or weekly ``recurrence`` of a number of
occurrences) is never listed itself, as in calendarView: its occurrences are, with ids
``<id>_occ_<date>``, ``seriesMasterId`` and ``originalStart``. An event put under an
occurrence's id is its exception (``type: exception``), and deleting that id cancels the
occurrence, which delta then lists as removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.http_server import base_url, serve, stop


@dataclass
class FakeGraphCalendar:
    access_token: str = "graph-access-token"
    events: dict[str, tuple[int, dict[str, Any] | None]] = field(default_factory=dict)
    version: int = 0
    expired: set[str] = field(default_factory=set)
    page_size: int = 2
    calls: int = 0
    #: Events and removals in each answer, in order.
    served: list[int] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    #: Answers to give before any other, as (status, headers): 429s, 5xx.
    faults: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def put(self, event: dict[str, Any]) -> None:
        self.version += 1
        self.events[event["id"]] = (self.version, event)

    def delete(self, event_id: str) -> None:
        self.version += 1
        self.events[event_id] = (self.version, None)

    def start(self) -> str:
        def handle(
            method: str, path: str, headers: dict[str, str], body: bytes
        ) -> tuple[int, Any, dict[str, str]]:
            if self.faults and method == "GET":
                status, headers_out = self.faults.pop(0)
                return status, {"error": {"code": status, "message": "injected"}}, headers_out
            status, payload = self.handle(path, headers)
            return status, payload, {}

        self.server = serve(handle)
        return self.url

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{base_url(self.server)}/v1.0"

    def stop(self) -> None:
        stop(self.server)

    def handle(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        self.calls += 1
        if headers.get("Authorization") != f"Bearer {self.access_token}":
            return 401, {"error": {"code": "InvalidAuthenticationToken"}}
        parts = urlsplit(path)
        if parts.path != "/v1.0/me/calendarView/delta":
            return 404, {"error": {"code": "ResourceNotFound"}}
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if "$deltatoken" in query:
            token = query["$deltatoken"]
            if token in self.expired:
                return 410, {"error": {"code": "syncStateNotFound", "message": "Resync"}}
            since = int(token.removeprefix("v"))
            items = [
                event if event is not None else {"@removed": {"reason": "deleted"}, "id": key}
                for key, version, event in self.listed()
                if version > since
            ]
            offset = 0
        else:
            if "$skiptoken" not in query and not (
                "startDateTime" in query and "endDateTime" in query
            ):
                return 400, {"error": {"code": "ErrorInvalidParameter"}}
            items = [event for _, _, event in self.listed() if event is not None]
            offset = int(query.get("$skiptoken", 0))
        # Changes come in one page here; the first read is paged.
        size = len(items) if "$deltatoken" in query else self.page_size
        page = items[offset : offset + size]
        self.served.append(len(page))
        body: dict[str, Any] = {"value": page}
        base = f"{self.url}/me/calendarView/delta"
        if offset + self.page_size < len(items) and "$deltatoken" not in query:
            body["@odata.nextLink"] = f"{base}?{urlencode({'$skiptoken': offset + self.page_size})}"
        else:
            body["@odata.deltaLink"] = f"{base}?{urlencode({'$deltatoken': f'v{self.version}'})}"
        return 200, body

    def listed(self) -> list[tuple[str, int, dict[str, Any] | None]]:
        """(id, version, event or None for a removal) as calendarView shows the calendar,
        in the order of change."""
        series = {
            key
            for key, (_, event) in self.events.items()
            if event is not None and event.get("type") == "seriesMaster"
        }
        rows: list[tuple[str, int, dict[str, Any] | None]] = []
        occurrences = {
            occurrence["id"]
            for key in series
            for occurrence in self.occurrences(self.events[key][1] or {})
        }
        for key, (version, event) in self.events.items():
            if key in series:
                assert event is not None
                for occurrence in self.occurrences(event):
                    own = self.events.get(occurrence["id"])
                    if own is None:
                        rows.append((occurrence["id"], version, occurrence))
                    else:
                        rows.append((occurrence["id"], max(version, own[0]), own[1]))
            elif key not in occurrences:
                rows.append((key, version, event))
        return sorted(rows, key=lambda row: row[1])

    @staticmethod
    def occurrences(master: dict[str, Any]) -> Iterator[dict[str, Any]]:
        pattern, extent = master["recurrence"]["pattern"], master["recurrence"]["range"]
        step = timedelta(days={"daily": 1, "weekly": 7}[pattern["type"]] * pattern["interval"])

        def moment(value: dict[str, str]) -> datetime:
            return datetime.fromisoformat(value["dateTime"][:19]).replace(tzinfo=UTC)

        first, length = moment(master["start"]), moment(master["end"]) - moment(master["start"])
        for index in range(extent["numberOfOccurrences"]):
            begin = first + index * step
            yield {
                **{k: v for k, v in master.items() if k != "recurrence"},
                "id": f"{master['id']}_occ_{begin:%Y%m%d}",
                "type": "occurrence",
                "seriesMasterId": master["id"],
                "originalStart": begin.isoformat().replace("+00:00", "Z"),
                "start": {"dateTime": f"{begin:%Y-%m-%dT%H:%M:%S}.0000000", "timeZone": "UTC"},
                "end": {
                    "dateTime": f"{begin + length:%Y-%m-%dT%H:%M:%S}.0000000",
                    "timeZone": "UTC",
                },
            }
