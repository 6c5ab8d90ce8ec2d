"""A real CalDAV server (Radicale) in this process, on loopback, with calendars to fill.

Radicale answers every request; a thin WSGI layer in front of it (:class:`Recorder`) counts
the calls Kindly makes (the test's own set-up calls are marked and left out), answers the
next ones with faults on demand, and counts the events each REPORT answer carries. With
``password`` set, Radicale checks it (htpasswd, no delay after a wrong one);
:meth:`RadicaleServer.change_password` changes it on the server.
"""

from __future__ import annotations

import base64
import collections
import gzip
import io
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from xml.etree import ElementTree

USER, PASSWORD = "anouk", "calendar-password"
#: Marks the test's own requests (filling calendars), which the recorder does not count.
SETUP_HEADER = "X-Kindly-Test-Setup"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Recorder:
    """WSGI middleware: Kindly's calls counted by method, faults on demand, and the number
    of events (``DAV:response`` elements) each REPORT answer carried."""

    app: Callable[..., Iterable[bytes]]
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Answers to give before any other, as (status, headers): 429s, 5xx, 401, 403.
    faults: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    #: Events (changes) in each REPORT answer that lists them, in order.
    served: list[int] = field(default_factory=list)
    #: Events in each calendar-multiget answer: the data of events listed before.
    fetched: list[int] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("HTTP_" + SETUP_HEADER.upper().replace("-", "_")):
            return self.app(environ, start_response)
        method = str(environ["REQUEST_METHOD"])
        self.calls[method] += 1
        if self.faults:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"].read(length)  # read the request, answer the fault
            status, headers = self.faults.pop(0)
            body = b"injected fault"
            start_response(
                f"{status} {HTTPStatus(status).phrase}",
                [
                    ("Content-Type", "text/plain"),
                    ("Content-Length", str(len(body))),
                    *headers.items(),
                ],
            )
            return [body]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request_body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(request_body)
        answered: list[tuple[str, dict[str, str]]] = []

        def remember(status: str, headers: Any, *rest: Any) -> Any:
            answered.append((status, {name.lower(): value for name, value in headers}))
            return start_response(status, headers, *rest)

        body = b"".join(self.app(environ, remember))
        if method == "REPORT" and answered and answered[0][0].startswith("207"):
            text = body
            if answered[0][1].get("content-encoding") == "gzip":
                text = gzip.decompress(body)
            tree = ElementTree.fromstring(text)
            count = len(tree.findall("{DAV:}response"))
            (self.fetched if b"calendar-multiget" in request_body else self.served).append(count)
        return [body]


@dataclass
class CalDAVTestServer:
    """A real CalDAV server on loopback behind a :class:`Recorder`, and the test's own
    requests to fill it (marked, so the recorder leaves them out)."""

    server: WSGIServer
    root: str
    recorder: Recorder
    #: Where the user's calendars are, under the root.
    home: ClassVar[str] = f"/{USER}/"

    @property
    def calls(self) -> int:
        """The calls Kindly made (the test's own set-up calls left out)."""
        return sum(self.recorder.calls.values())

    def calendar_url(self, name: str) -> str:
        return f"{self.root}{self.home}{name}/"

    def _credentials(self) -> dict[str, str]:
        return {}

    def _send(self, method: str, url: str, body: bytes = b"", **headers: str) -> int:
        request = urllib.request.Request(url, data=body or None, method=method)
        request.add_header(SETUP_HEADER, "1")
        for name, value in {**self._credentials(), **headers}.items():
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


@dataclass
class RadicaleServer(CalDAVTestServer):
    #: The password Radicale checks (None: it checks none).
    password: str | None = None
    htpasswd: Path | None = None

    def change_password(self, password: str) -> None:
        """The user changes the password on the server: the old one stops working."""
        assert self.htpasswd is not None, "started without a password"
        self.htpasswd.write_text(f"{USER}:{password}\n", encoding="utf-8")
        self.password = password

    def _credentials(self) -> dict[str, str]:
        token = base64.b64encode(f"{USER}:{self.password or PASSWORD}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


def start_radicale(folder: Path, *, password: str | None = None) -> RadicaleServer:
    """Radicale on loopback; with ``password``, it checks USER's password (htpasswd)."""
    import radicale.config
    from radicale.app import Application

    auth: dict[str, str] = {"type": "none"}
    htpasswd = None
    if password is not None:
        htpasswd = folder / "htpasswd"
        htpasswd.write_text(f"{USER}:{password}\n", encoding="utf-8")
        auth = {
            "type": "htpasswd",
            "htpasswd_filename": str(htpasswd),
            "htpasswd_encryption": "plain",
            "delay": "0",  # no pause after a wrong password: tests do not wait
        }
    config = radicale.config.load()
    config.update(
        {"storage": {"filesystem_folder": str(folder / "collections")}, "auth": auth},
        "test",
        privileged=True,
    )
    recorder = Recorder(Application(config))
    server = make_server("127.0.0.1", 0, recorder, handler_class=_Quiet)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return RadicaleServer(
        server, f"http://127.0.0.1:{server.server_port}", recorder, password, htpasswd
    )


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
