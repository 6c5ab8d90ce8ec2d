"""The HTTP plumbing of the fake platforms: a threaded server on loopback around one
``handle(method, path, headers, body)`` function that returns (status, payload, headers).

A payload that is bytes is sent as is; anything else as JSON, written by ``encode`` (a
platform with exact decimal amounts gives its own). A 204 or 304 goes out without a body.
The payload :data:`DROP` sends nothing at all: the connection closes before an answer (a
request carried out whose answer is lost on the way). A ``Date`` among the headers
replaces the real clock's (a fake with a clock of its own).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handle = Callable[[str, str, dict[str, str], bytes], tuple[int, Any, dict[str, str]]]
#: The payload of an answer that never comes: the connection is closed instead.
DROP = object()


def _json(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def serve(handle: Handle, encode: Callable[[Any], bytes] = _json) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        fake_date: str | None = None

        def log_message(self, *args: Any) -> None:
            pass

        def date_time_string(self, timestamp: float | None = None) -> str:
            return self.fake_date or super().date_time_string(timestamp)

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload, headers = handle(self.command, self.path, dict(self.headers), body)
            if payload is DROP:
                self.close_connection = True
                return
            data = payload if isinstance(payload, bytes) else encode(payload)
            if status in (204, 304):
                data = b""
            # A fake with a clock of its own says its time in the Date header.
            self.fake_date = next((v for k, v in headers.items() if k.lower() == "date"), None)
            headers = {k: v for k, v in headers.items() if k.lower() != "date"}
            self.send_response(status)
            headers = {"Content-Type": "application/json", **headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


def base_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def stop(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
