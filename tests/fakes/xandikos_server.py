"""A second real CalDAV server (Xandikos) in this process, on loopback.

Xandikos differs from Radicale where it matters to a client: it answers a
``sync-collection`` with hrefs and ETags but no ``calendar-data`` (RFC 6578 allows it),
and refuses a stale sync token with 412. The same :class:`Recorder` as Radicale's counts
Kindly's calls and injects faults. Xandikos checks no password; the user is its one
principal, ``/anouk``.
"""

from __future__ import annotations

import io
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from tests.fakes.radicale_server import SETUP_HEADER, USER, Recorder, _Quiet


def _bounded(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Xandikos reads a request body to its end; wsgiref's input never ends on a kept-alive
    connection, so it is handed exactly Content-Length bytes (the Recorder's own requests
    pass here too: the set-up calls it does not read)."""

    def call(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))
        return app(environ, start_response)

    return call


@dataclass
class XandikosServer:
    server: WSGIServer
    root: str
    recorder: Recorder

    @property
    def calls(self) -> int:
        return sum(self.recorder.calls.values())

    def calendar_url(self, name: str) -> str:
        return f"{self.root}/{USER}/calendars/{name}/"

    def _send(self, method: str, url: str, body: bytes = b"", **headers: str) -> int:
        request = urllib.request.Request(url, data=body or None, method=method)
        request.add_header(SETUP_HEADER, "1")
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


def start_xandikos(folder: Path) -> XandikosServer:
    from xandikos.web import SingleUserFilesystemBackend, XandikosApp

    backend = SingleUserFilesystemBackend(str(folder / "xandikos"))
    principal = f"/{USER}"
    backend._mark_as_principal(principal)  # type: ignore[no-untyped-call]
    (folder / "xandikos").mkdir(parents=True, exist_ok=True)
    backend.create_principal(principal, create_defaults=False)  # type: ignore[no-untyped-call]
    recorder = Recorder(_bounded(XandikosApp(backend, current_user_principal=principal)))
    server = make_server("127.0.0.1", 0, recorder, handler_class=_Quiet)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return XandikosServer(server, f"http://127.0.0.1:{server.server_port}", recorder)
