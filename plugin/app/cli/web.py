"""`kindly web` (the web app) and `kindly users add` (who may sign in to it)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from plugin.app.cli.base import AppContext, _fail, cli, workspace_configs, workspaces_option

#: The variable a password may come in, for scripts (a prompt otherwise).
PASSWORD_VARIABLE = "KINDLY_WEB_PASSWORD"  # noqa: S105 (a variable name)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--public-url",
    metavar="URL",
    help="Where users reach the app (https makes the session cookie Secure).",
)
@click.option(
    "--queue",
    is_flag=True,
    help='Hand "Sync now" to the workers (kindly worker, KINDLY_BROKER_URL).',
)
@click.option(
    "--schedule",
    is_flag=True,
    help="Also run each organisation by itself, soon after its clients' send windows "
    "open on business days, as the workers' scheduler does (one machine, no cron).",
)
@workspaces_option("to serve at /w/NAME/ beside the others (one address for many)")
@click.pass_obj
def web(
    app: AppContext,
    host: str,
    port: int,
    public_url: str | None,
    queue: bool,
    schedule: bool,
    extra: tuple[str, ...],
) -> None:
    """Serve Kindly's web app: the plan, review and send, the clients' settings.

    Sign in with an account made by `kindly users add`. Listens on 127.0.0.1 unless told
    otherwise; put a TLS proxy in front of it for other machines. With --workspace, one
    address serves many workspaces, each under /w/ and its name.
    """
    places = workspace_configs(app, extra)
    stop = None
    if schedule:
        from plugin.app.scheduling import start_scheduler

        stop = start_scheduler(places)
        click.echo("Runs each organisation when its clients' send windows open.")
    try:
        serve(app.config if not extra else None, host, port, public_url, queue=queue, many=places)
    finally:
        if stop is not None:
            stop.set()


def serve(
    config: str | Path | None,
    host: str,
    port: int,
    public_url: str | None,
    *,
    clock: Callable[[], datetime] | None = None,
    sign_in: tuple[str, str] | None = None,
    queue: bool = False,
    many: list[str] | None = None,
) -> None:
    """Serve the web app for ``config`` until Ctrl+C (None: every workspace of ``many``,
    each at /w/NAME/); ``sign_in``: an account to print."""
    from flask import Flask
    from werkzeug.serving import make_server

    from plugin.app.web import create_app

    def configure(application: Flask) -> None:
        if queue:
            from plugin.app.cli.workers import workers_module

            application.config["KINDLY_QUEUE"] = workers_module().queue_web_sync()

    application: Any
    if config is None:
        from plugin.app.web.many import ManyWorkspaces

        application = ManyWorkspaces(
            many or [], public_url=public_url, clock=clock, configure=configure
        )
    else:
        application = create_app(config, public_url=public_url, clock=clock)
        configure(application)
    try:
        server = make_server(host, port, application, threaded=True)
    except OSError as exc:
        _fail(
            f"cannot listen on {host}:{port} ({exc.strerror})",
            "Another program uses that port: choose another with --port.",
        )
    shown = public_url or f"http://{host}:{server.server_port}/"
    click.echo(f"Kindly's web app on {shown} (Ctrl+C stops)", nl=True)
    if config is None:
        click.echo(f"Each workspace at {shown.rstrip('/')}/w/NAME/")
    if sign_in is not None:
        click.echo(f"Sign in as {sign_in[0]} with the password {sign_in[1]}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("Note: reachable from other machines; use TLS in front of it.")
    sys.stdout.flush()
    try:
        # werkzeug's server ends on Ctrl+C by itself (it takes the KeyboardInterrupt).
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    click.echo("Stopped the web app.")


@cli.group()
def users() -> None:
    """Who may sign in to the web app."""


@users.command("add")
@click.argument("name")
@click.option(
    "--org",
    "organisations",
    multiple=True,
    metavar="NAME",
    help="An organisation the account may see (repeat); default: all.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help=f"Read the password from standard input (or set {PASSWORD_VARIABLE}).",
)
@click.pass_obj
def users_add(
    app: AppContext, name: str, organisations: tuple[str, ...], password_stdin: bool
) -> None:
    """Make an account for the web app, or give one a new password."""
    from plugin.app.web.accounts import Accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = os.environ.get(PASSWORD_VARIABLE) or click.prompt(
            "Password", hide_input=True, confirmation_prompt=True
        )
    workspaces = app.workspaces()
    allowed = ["*"]
    if organisations:
        by_name = {k.source.location: k.source_id for k in workspaces}
        by_name.update({k.source_id: k.source_id for k in workspaces})
        unknown = [o for o in organisations if o not in by_name]
        if unknown:
            _fail(
                f"no organisation {unknown[0]!r}",
                "Known: " + ", ".join(repr(k.source.location) for k in workspaces),
            )
        allowed = [by_name[o] for o in organisations]
    try:
        Accounts(workspaces[0].store).add(name, password, allowed, datetime.now(UTC))
    except ValueError as exc:
        _fail(str(exc), None)
    click.echo(f"Account {name} can sign in to `kindly web`.")
