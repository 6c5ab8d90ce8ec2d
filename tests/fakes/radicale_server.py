"""A real CalDAV server (Radicale) in this process, on loopback, with calendars to fill."""

from __future__ import annotations

import base64
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

USER, PASSWORD = "anouk", "calendar-password"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class RadicaleServer:
    server: WSGIServer
    root: str

    def calendar_url(self, name: str) -> str:
        return f"{self.root}/{USER}/{name}/"

    def _send(self, method: str, url: str, body: bytes = b"", **headers: str) -> int:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(url, data=body or None, method=method)
        request.add_header("Authorization", f"Basic {token}")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def make_calendar(self, name: str, display_name: str) -> str:
        url = self.calendar_url(name)
        body = (
            '<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
            f"<D:displayname>{display_name}</D:displayname></D:prop></D:set></C:mkcalendar>"
        ).encode()
        status = self._send("MKCALENDAR", url, body, Content_Type="application/xml")
        assert status == 201, status
        return url

    def put_event(self, calendar: str, uid: str, ics: str) -> None:
        status = self._send(
            "PUT",
            f"{self.calendar_url(calendar)}{uid}.ics",
            ics.encode(),
            Content_Type="text/calendar; charset=utf-8",
        )
        assert status in (201, 204), status

    def delete_event(self, calendar: str, uid: str) -> None:
        assert self._send("DELETE", f"{self.calendar_url(calendar)}{uid}.ics") in (200, 204)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_radicale(folder: Path) -> RadicaleServer:
    import radicale
    import radicale.config

    config = radicale.config.load()
    config.update(
        {"storage": {"filesystem_folder": str(folder / "collections")}, "auth": {"type": "none"}},
        "test",
        privileged=True,
    )
    server = make_server("127.0.0.1", 0, radicale.Application(config), handler_class=_Quiet)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return RadicaleServer(server, f"http://127.0.0.1:{server.server_port}")


def event(
    uid: str,
    summary: str,
    start: str,
    end: str,
    *,
    tzid: str = "Europe/Amsterdam",
    extra: str = "",
) -> str:
    """A VCALENDAR with one VEVENT; start and end as 20261124T100000 in ``tzid``."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kindly tests//EN\r\n"
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261120T090000Z\r\n"
        f"DTSTART;TZID={tzid}:{start}\r\nDTEND;TZID={tzid}:{end}\r\n"
        f"SUMMARY:{summary}\r\n{extra}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
