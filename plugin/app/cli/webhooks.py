"""`kindly serve`: take the accounting system's webhooks and sync what they name."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from plugin.app.cli.base import AppContext, cli, workspace_configs, workspaces_option


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8720, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--queue",
    is_flag=True,
    help="Hand each sync to the workers (kindly worker, KINDLY_BROKER_URL) instead of "
    "running it here.",
)
@workspaces_option("to take webhooks for (one platform app's webhooks reach one address)")
@click.pass_obj
def serve(app: AppContext, host: str, port: int, queue: bool, extra: tuple[str, ...]) -> None:
    """Take the accounting system's webhooks and sync what they name.

    Needs the platform's webhook key in its variable (Xero: KINDLY_XERO_WEBHOOK_KEY, from
    its developer portal; docs/connectors.md lists them). Listens on 127.0.0.1 unless told
    otherwise; put a TLS proxy in front for the internet.
    """
    from plugin.app.serve import make_server

    configs = workspace_configs(app, extra)
    wsgi, routes = webhook_app(configs, app.organisation, queue=queue)
    server = make_server(host, port, wsgi)
    for path in routes:
        click.echo(f"Listening on http://{host}:{server.server_port}{path} (Ctrl+C stops)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("Note: reachable from other machines; use TLS in front of it.")
    try:
        server.serve_forever()
    finally:
        server.server_close()


def webhook_app(
    configs: Sequence[str | Path],
    organisation: str | None = None,
    *,
    queue: bool = False,
    via: Any = None,
) -> tuple[Any, Mapping[str, Any]]:
    """The webhook server's app for the workspaces of ``configs`` (kindly.toml files,
    folders of them, or settings held in the database: db:NAME, db:), all on one
    platform, and its routes. With ``queue``, each sync is handed to the workers (on
    ``via``, a Celery app, by default the workers'). A source of several workspaces is
    named "config|source": two workspaces connected to one organisation are both synced.
    The app's ``syncs`` runs or hands on the syncs."""
    from integrations.base import BookkeepingConnector, ConnectorKind
    from integrations.registry import connector_class
    from plugin.app.cli.base import open_workspaces
    from plugin.app.serve import WebhookRoute, make_app
    from plugin.app.wiring import load_settings, workspace_files
    from plugin.errors import ConfigError

    files = workspace_files([str(c) for c in configs])
    if not files:
        raise ConfigError("no workspace (kindly.toml) to take webhooks for")
    platforms = {load_settings(path).connector for path in files}
    if len(platforms) > 1:
        raise ConfigError(
            f"the workspaces use several accounting systems ({', '.join(sorted(platforms))})",
            hint="Run one kindly serve per platform: each platform's webhooks have their "
            "own address and key.",
        )
    platform = connector_class(platforms.pop(), ConnectorKind.BOOKKEEPING)
    assert issubclass(platform, BookkeepingConnector)
    webhook = platform.webhook
    if webhook is None:
        raise ConfigError("the connected accounting system sends no webhooks")
    if webhook.kept_in_store and len(files) > 1:
        raise ConfigError(
            f"{platform.title} gives each workspace a webhook key of its own",
            hint="Run one kindly serve per workspace for it.",
        )
    missing = ConfigError(f"{webhook.key_variable} is not set", hint=webhook.key_hint or None)
    if not webhook.kept_in_store and not os.environ.get(webhook.key_variable):
        raise missing
    many = len(files) > 1
    if many:
        from plugin.app.wiring import share_connections

        # The workspaces of one database share its connections, not one pool each.
        share_connections()
    workspaces = {
        (f"{path}|{kindly.source_id}" if many else kindly.source_id): kindly
        for path in files
        for kindly in open_workspaces(path, organisation)
    }
    if not workspaces:
        raise ConfigError("no organisation is connected to take webhooks for")
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

        def hand_off(named: str) -> None:
            config, _, source_id = named.rpartition("|") if many else (files[0], "", named)
            workers.queue_sync(config, source_id, via=via)

    return make_app(routes, hand_off=hand_off), routes
