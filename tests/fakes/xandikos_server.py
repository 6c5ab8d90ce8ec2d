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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

from tests.fakes.radicale_server import USER, CalDAVTestServer, Recorder, _Quiet


def _bounded(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Xandikos reads a request body to its end; wsgiref's input never ends on a kept-alive
    connection, so it is handed exactly Content-Length bytes (the Recorder's own requests
    pass here too: the set-up calls it does not read)."""

    def call(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))
        return app(environ, start_response)

    return call


class XandikosServer(CalDAVTestServer):
    """Xandikos checks no password; its calendars are under the principal's home."""

    home = f"/{USER}/calendars/"


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
