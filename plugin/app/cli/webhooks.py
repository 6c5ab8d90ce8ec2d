"""`kindly serve`: take the accounting system's webhooks and sync what they name."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from plugin.app.cli.base import (
    AppContext,
    cli,
)

if TYPE_CHECKING:
    pass


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8720, show_default=True, type=int, help="Port to listen on.")
@click.pass_obj
def serve(app: AppContext, host: str, port: int) -> None:
    """Take the accounting system's webhooks and sync what they name (Xero).

    Needs KINDLY_XERO_WEBHOOK_KEY, the webhook key from Xero's developer portal. Listens on
    127.0.0.1 unless told otherwise; put a TLS proxy in front for the internet.
    """
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from plugin.app.serve import WEBHOOK_KEY_VARIABLE, make_app
    from plugin.app.wiring import connector_of
    from plugin.errors import ConfigError

    key = os.environ.get(WEBHOOK_KEY_VARIABLE)
    if not key:
        raise ConfigError(
            f"{WEBHOOK_KEY_VARIABLE} is not set",
            hint="Copy the webhook key from your app at developer.xero.com into it.",
        )
    workspaces = {k.source.source_id.removeprefix("xero:"): k for k in app.workspaces()}
    if not any(connector_of(k.source).webhook_path for k in workspaces.values()):
        raise ConfigError("the connected accounting system sends no webhooks")

    class QuietHandler(WSGIRequestHandler):
        # A client that stops sending mid-request is dropped, not waited for.
        timeout = 10

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    server = make_server(
        host,
        port,
        make_app(workspaces, key),
        server_class=ThreadingServer,
        handler_class=QuietHandler,
    )
    click.echo(f"Listening on http://{host}:{server.server_port}/webhooks/xero (Ctrl+C stops)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("Note: reachable from other machines; use TLS in front of it.")
    try:
        server.serve_forever()
    finally:
        server.server_close()
