"""`kindly serve`: take the accounting system's webhooks and sync what they name."""

from __future__ import annotations

import os
from collections.abc import Callable

import click

from plugin.app.cli.base import (
    AppContext,
    cli,
)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8720, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--queue",
    is_flag=True,
    help="Hand each sync to the workers (kindly worker, KINDLY_BROKER_URL) instead of "
    "running it here.",
)
@click.pass_obj
def serve(app: AppContext, host: str, port: int, queue: bool) -> None:
    """Take the accounting system's webhooks and sync what they name.

    Needs the platform's webhook key in its variable (Xero: KINDLY_XERO_WEBHOOK_KEY, from
    its developer portal; docs/connectors.md lists them). Listens on 127.0.0.1 unless told
    otherwise; put a TLS proxy in front for the internet.
    """
    from integrations.base import BookkeepingConnector, ConnectorKind
    from integrations.registry import connector_class
    from plugin.app.serve import WebhookRoute, make_app, make_server
    from plugin.app.wiring import load_settings
    from plugin.errors import ConfigError

    settings = load_settings(app.config)
    webhook = connector_class(settings.connector, ConnectorKind.BOOKKEEPING).webhook
    if webhook is None:
        raise ConfigError("the connected accounting system sends no webhooks")
    missing = ConfigError(f"{webhook.key_variable} is not set", hint=webhook.key_hint or None)
    if not webhook.kept_in_store and not os.environ.get(webhook.key_variable):
        raise missing
    workspaces = {kindly.source_id: kindly for kindly in app.workspaces()}
    if not workspaces:
        raise ConfigError("no organisation is connected to take webhooks for")
    platform = connector_class(settings.connector, ConnectorKind.BOOKKEEPING)
    assert issubclass(platform, BookkeepingConnector)
    store = next(iter(workspaces.values())).store
    key: str | Callable[[], str | None]
    if webhook.kept_in_store:
        # Read at each request: `kindly connect` may subscribe (and keep the key) while
        # this runs, and the platform checks the address before it hands the key out.
        key = lambda: platform.webhook_key(store)  # noqa: E731
        if not key():
            click.echo(
                "No webhook is subscribed yet: run `kindly connect` with the webhook address "
                "set; this server answers the platform's check meanwhile."
            )
    else:
        key = platform.webhook_key(store) or ""
        if not key:
            raise missing
    routes = {webhook.path: WebhookRoute(key, workspaces)}
    hand_off: Callable[[str], None] | None = None
    if queue:
        from plugin.app.cli.workers import workers_module

        workers = workers_module()
        config = str(app.config.resolve())

        def hand_off(source_id: str) -> None:
            workers.queue_sync(config, source_id)

    server = make_server(host, port, make_app(routes, hand_off=hand_off))
    for path in routes:
        click.echo(f"Listening on http://{host}:{server.server_port}{path} (Ctrl+C stops)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("Note: reachable from other machines; use TLS in front of it.")
    try:
        server.serve_forever()
    finally:
        server.server_close()
