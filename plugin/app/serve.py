"""`kindly serve`: a small WSGI app that takes the platforms' webhooks.

Each bookkeeping connector with webhooks declares its route and the variable holding its
key (``integrations.base.Webhook``); the app serves those routes. A request is verified
first (the connector checks the platform's signature, an HMAC of the raw body with the
webhook key) and only then parsed. The answer must come quickly (Xero: five seconds): 401
for a wrong signature, 200 otherwise, with an empty body. That is also the whole of Xero's
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from integrations.webhooks import WebhookEvent, WebhookRejected, receive
from plugin.app.wiring import connector_of

if TYPE_CHECKING:
    from plugin.run import Kindly

__all__ = ["WebhookRoute", "make_app", "make_server"]

log = logging.getLogger("kindly.serve")

MAX_BODY = 1_000_000
#: How long an event is remembered: the same event again within it starts no sync.
REPLAY_WINDOW = timedelta(hours=24)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class SyncWorker:
    """Runs the syncs webhooks ask for, one at a time, away from the requests: Xero wants
    its answer within five seconds, and a burst of events for one organisation is one
    sync, not one each."""

    def __init__(self, run: Callable[[str], None]) -> None:
        self._run = run
        self._pending: list[str] = []
        self._running = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="kindly-sync", daemon=True)
        self._thread.start()

    def submit(self, tenants: Iterable[str]) -> None:
        with self._wake:
            for tenant in tenants:
                if tenant not in self._pending:
                    self._pending.append(tenant)
            self._wake.notify()

    def idle(self, timeout: float) -> bool:
        """Wait until every sync asked for has been run or handed on (at most ``timeout``
        seconds): whether it is so. For an orderly stop, and for tests."""
        with self._wake:
            return self._wake.wait_for(
                lambda: not self._pending and not self._running, timeout=timeout
            )

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                tenant = self._pending.pop(0)
                self._running = True
            try:
                self._run(tenant)
            finally:
                with self._wake:
                    self._running = False
                    self._wake.notify_all()


@dataclass(frozen=True)
class WebhookRoute:
    """One platform's webhook path: its key (or how to read it at each request, for a
    platform whose key Kindly keeps in its store from the moment it subscribes), and the
    workspaces by source id."""

    key: str | Callable[[], str | None] = field(repr=False)
    workspaces: Mapping[str, Kindly] = field(default_factory=dict)


def make_app(
    routes: Mapping[str, WebhookRoute],
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    synced: Callable[[str], None] = lambda source_id: None,
    queued: Callable[[list[str]], None] = lambda source_ids: None,
    hand_off: Callable[[str], None] | None = None,
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app: a webhook path -> the route serving it. ``synced`` is told each
    source id synced, ``queued`` the source ids each request queued (tests look). With
    ``hand_off``, a source's sync is handed to it (the workers' queue) instead of run
    here."""
    everyone = {
        source_id: kindly
        for route in routes.values()
        for source_id, kindly in route.workspaces.items()
    }

    def sync_source(source_id: str) -> None:
        kindly = everyone.get(source_id)
        if kindly is None:
            log.warning("webhook for a source that is not connected: %s", source_id)
            return
        try:
            kindly.sync(clock())
        except Exception:  # a webhook must never take the server down
            log.exception("sync after a webhook failed for %s", source_id)
            return
        synced(source_id)

    def hand_over(source_id: str) -> None:
        assert hand_off is not None
        if source_id not in everyone:
            log.warning("webhook for a source that is not connected: %s", source_id)
            return
        try:
            hand_off(source_id)
        except Exception:  # the queue down must not stop every later webhook
            log.exception("the sync of %s could not be queued", source_id)

    worker = SyncWorker(hand_over if hand_off is not None else sync_source)
    seen: dict[str, datetime] = {}
    seen_lock = threading.Lock()

    def first_seen(source_id: str, event_ids: list[str]) -> bool:
        """Whether any of these events is new for this source within the window (and
        remember them); true for events without an identity, which cannot be told apart.
        Per source: two workspaces on one organisation get the same events, and each
        syncs."""
        if not event_ids:
            return True
        now = clock()
        with seen_lock:
            for seen_key, when in list(seen.items()):
                if now - when > REPLAY_WINDOW:
                    del seen[seen_key]
            new = [e for e in event_ids if f"{source_id}\n{e}" not in seen]
            for event_id in new:
                seen[f"{source_id}\n{event_id}"] = now
        return bool(new)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/health" and method == "GET":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        route = routes.get(path)
        if route is None:
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
        try:
            body = environ["wsgi.input"].read(length) if length else b""
        except OSError:  # TimeoutError included: the client stopped sending mid-body
            start_response("408 Request Timeout", [("Content-Length", "0")])
            return []
        if len(body) < length:
            start_response("400 Bad Request", [("Content-Length", "0")])
            return []
        headers = {
            name[5:].replace("_", "-").lower(): value
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        # The connector knows its platform's signature and which records an event names.
        connectors = {
            source_id: connector_of(k.source) for source_id, k in route.workspaces.items()
        }
        first = next(iter(connectors.values()))

        def events_of(raw: bytes) -> list[WebhookEvent]:
            return [
                WebhookEvent(kind, record_id, source_id, {})
                for source_id, connector in connectors.items()
                for kind, record_id in connector.webhook_records(raw)
            ]

        if first.is_handshake(body, headers):
            # The platform checks that the address answers before it subscribes it.
            start_response("200 OK", [("Content-Length", "0")])
            return []
        key = (route.key() if callable(route.key) else route.key) or ""
        try:
            events = receive(body, headers, key, verify=first.verify_webhook, parse=events_of)
        except WebhookRejected:
            start_response("401 Unauthorized", [("Content-Length", "0")])
            return []
        # A replay (or the platform's repeat) of events seen already starts no sync.
        named = [
            source_id
            for source_id in dict.fromkeys(event.tenant for event in events if event.tenant)
            if first_seen(source_id, connectors[source_id].webhook_event_ids(body, headers))
        ]
        start_response("200 OK", [("Content-Length", "0")])
        # Empty for the intent-to-receive handshake; otherwise synced after answering.
        queued(named)
        worker.submit(named)
        return []

    app.syncs = worker  # type: ignore[attr-defined]
    return app


def make_server(
    host: str,
    port: int,
    app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
    *,
    timeout: float = 10.0,
) -> Any:
    """A threading WSGI server for ``app``, quiet, dropping a client that stops sending
    for ``timeout`` seconds (the app answers 408 when that happens mid-body)."""
    import socketserver
    from wsgiref import simple_server

    class QuietHandler(simple_server.WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    QuietHandler.timeout = timeout

    class ThreadingServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
        daemon_threads = True

    return simple_server.make_server(
        host, port, app, server_class=ThreadingServer, handler_class=QuietHandler
    )
