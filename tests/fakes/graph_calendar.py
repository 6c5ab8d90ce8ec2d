"""A fake Microsoft Graph calendar on loopback: calendarView/delta with next and delta links.

The first call (with startDateTime and endDateTime) returns the events in that window,
``page_size`` to a page behind ``@odata.nextLink``, and ends with an ``@odata.deltaLink``.
Calling the delta link returns what changed since: changed events whole, deleted ones as
``{"@removed": {"reason": "deleted"}, "id": …}``. Delta tokens in ``expired`` get 410
with ``syncStateNotFound``. ``served`` counts the events (and removals) each answer carried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
                for key, (version, event) in sorted(self.events.items(), key=lambda kv: kv[1][0])
                if version > since
            ]
            offset = 0
        else:
            if "$skiptoken" not in query and not (
                "startDateTime" in query and "endDateTime" in query
            ):
                return 400, {"error": {"code": "ErrorInvalidParameter"}}
            items = [
                event
                for _, (version, event) in sorted(self.events.items(), key=lambda kv: kv[1][0])
                if event is not None
            ]
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
