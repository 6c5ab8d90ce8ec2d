"""`kindly serve`: a small WSGI app that takes the platforms' webhooks.

Xero posts to ``/webhooks/xero``. Every request is signed (``x-xero-signature``, an HMAC of
the raw body with the app's webhook key). The answer must come within five seconds: 401
for a wrong signature, 200 otherwise, with an empty body. That is also the whole of the
"intent to receive" handshake, which sends correctly and wrongly signed requests with no
events. The sync the events call for runs in a worker thread after the answer: an
incremental sync of each organisation named (several events for one organisation make
one sync), which fetches the records changed since the last one, those in the events
among them.

It listens on 127.0.0.1 unless told otherwise: put a TLS-terminating proxy in front to take
webhooks from the internet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from plugin.app.wiring import connector_of

if TYPE_CHECKING:
    from plugin.run import Kindly

__all__ = ["WEBHOOK_KEY_VARIABLE", "make_app"]

log = logging.getLogger("kindly.serve")

WEBHOOK_KEY_VARIABLE = "KINDLY_XERO_WEBHOOK_KEY"
MAX_BODY = 1_000_000

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class SyncWorker:
    """Runs the syncs webhooks ask for, one at a time, away from the requests: Xero wants
    its answer within five seconds, and a burst of events for one organisation is one
    sync, not one each."""

    def __init__(self, run: Callable[[str], None]) -> None:
        self._run = run
        self._pending: list[str] = []
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="kindly-sync", daemon=True)
        self._thread.start()

    def submit(self, tenants: Iterable[str]) -> None:
        with self._wake:
            for tenant in tenants:
                if tenant not in self._pending:
                    self._pending.append(tenant)
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                tenant = self._pending.pop(0)
            self._run(tenant)


def make_app(
    workspaces: Mapping[str, Kindly],
    webhook_key: str,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    synced: Callable[[str], None] = lambda tenant: None,
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app. ``workspaces`` maps a Xero tenant id to its Kindly workspace."""

    def sync_tenant(tenant: str) -> None:
        kindly = workspaces.get(tenant)
        if kindly is None:
            log.warning("webhook for an organisation that is not connected: %s", tenant)
            return
        try:
            kindly.sync(clock())
        except Exception:  # a webhook must never take the server down
            log.exception("sync after a webhook failed for %s", tenant)
            return
        synced(tenant)

    worker = SyncWorker(sync_tenant)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/health" and method == "GET":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path != "/webhooks/xero":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if method != "POST":
            start_response("405 Method Not Allowed", [("Allow", "POST")])
            return []
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            start_response("413 Content Too Large", [])
            return []
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            name[5:].replace("_", "-").lower(): value
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        # The connector knows its platform's signature and which records an event names.
        sources = [connector_of(kindly.source) for kindly in workspaces.values()]
        if not sources or not sources[0].verify_webhook(body, headers, webhook_key):
            start_response("401 Unauthorized", [("Content-Length", "0")])
            return []
        tenants = [
            tenant
            for tenant, kindly in workspaces.items()
            if connector_of(kindly.source).webhook_records(body)
        ]
        start_response("200 OK", [("Content-Length", "0")])
        # Empty for the intent-to-receive handshake; otherwise synced after answering.
        worker.submit(tenants)
        return []

    return app
