"""Setting up: `kindly init`, `connect`, `disconnect`, `secret-key` and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from integrations.base import Connector

from plugin.app.cli.base import (
    AT_OPTION,
    AppContext,
    _fail,
    _parse_at,
    cli,
    open_workspace,
)
from plugin.app.cli.output import (
    _run_and_report,
)


@cli.command()
@click.option(
    "--path",
    "target",
    type=click.Path(path_type=Path, dir_okay=False),
    default="kindly.toml",
    show_default=True,
    help="Where to write the settings.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--company-name", prompt="Company name")
@click.option("--email", prompt="E-mail address reminders come from")
@click.option("--reply-to", prompt="Reply-to address (empty: the same)", default="")
@click.option("--website", prompt="Website", default="")
@click.option("--phone", prompt="Phone", default="")
@click.option("--fax", prompt="Fax", default="")
@click.option("--address", prompt="Postal address (lines separated by ' | ')", default="")
@click.option("--country", prompt="Country (ISO code, e.g. NL)", default="NL")
@click.option("--account-holder", prompt="Bank account holder", default="")
@click.option("--iban", prompt="IBAN", default="")
@click.option("--bic", prompt="BIC", default="")
@click.option("--ledger", prompt="Folder of your ledger files", default="ledger")
def init(target: Path, force: bool, **answers: str) -> None:
    """Ask for your company, contact and bank details and write a commented kindly.toml."""
    from plugin.app.wiring import settings_schema
    from plugin.config.initconfig import write_settings_file

    if target.exists() and not force:
        _fail(f"{target} already exists", "Use --force to replace it, or --path for another file.")
    write_settings_file(target, answers, settings_schema)
    click.echo(
        f"Wrote {target}. Check it, put your ledger files in {answers['ledger']!r} "
        "(docs/ledger-format.md), then run `kindly sync` and `kindly plan`."
    )


@cli.command()
@click.argument("connector")
@click.argument("location", type=click.Path(path_type=Path, file_okay=False), required=False)
@click.option(
    "--refresh-token",
    metavar="TOKEN",
    help="Without a browser (on a server): a refresh token (also the connector's "
    "refresh-token variable, docs/connectors.md).",
)
@click.option("--no-browser", is_flag=True, help="Print the sign-in address, do not open it.")
@AT_OPTION
@click.pass_obj
def connect(
    app: AppContext,
    connector: str,
    location: Path | None,
    refresh_token: str | None,
    no_browser: bool,
    at: str | None,
) -> None:
    """Connect a source: `kindly connect ledger FOLDER`, `xero`, `google`, `outlook`, ...

    A ledger is read and checked whole first, and kept only if it is sound. A platform
    opens the browser to sign in (or takes --refresh-token on a server); Xero then lists
    the organisations you allowed and keeps them; with several, --org picks one.
    `docs/connectors.md` lists every connector.
    """
    import webbrowser

    from integrations.base import ConnectorKind, ConnectRequest
    from plugin.app.wiring import calendar_name, load_settings, open_store, workspace_for

    cls = _connector_named(connector)
    settings = load_settings(app.config)
    if cls.kind is ConnectorKind.CALENDAR and calendar_name(settings) != connector:
        _fail(
            f"kindly.toml does not name {connector} as the calendar",
            f'Add [calendar] type = "{connector}" to {app.config}, with its settings '
            "(docs/calendars.md).",
        )
    workspace = workspace_for(settings, open_store(settings), app.organisation)
    request = ConnectRequest(
        at=_parse_at(at) if at is not None else None,
        location=location,
        refresh_token=refresh_token,
        open_browser=(lambda url: None) if no_browser else webbrowser.open,
        say=click.echo,
    )
    app.console().print(cls.connect(workspace, request))


@cli.command()
@click.argument("connector")
@click.pass_obj
def disconnect(app: AppContext, connector: str) -> None:
    """Forget a connection; where the platform allows it, revoke Kindly's access there too."""
    from plugin.app.wiring import load_settings, open_store, workspace_for

    cls = _connector_named(connector)
    settings = load_settings(app.config)
    click.echo(cls.disconnect(workspace_for(settings, open_store(settings), app.organisation)))


def _connector_named(name: str) -> type[Connector]:
    """The connector ``name`` on the command line; a usage error naming the known ones."""
    from integrations.registry import connector_class
    from plugin.errors import ConfigError

    try:
        return connector_class(name)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="CONNECTOR") from None


@cli.command("secret-key")
def secret_key_command() -> None:
    """Print a new key for KINDLY_SECRET_KEY, which encrypts connection tokens."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@cli.command()
@click.option(
    "--workspace",
    type=click.Path(path_type=Path, file_okay=False),
    default="kindly-demo",
    show_default=True,
    help="Where the demo keeps its copy of the ledger, its settings and its store.",
)
@click.option(
    "--outbox",
    type=click.Path(path_type=Path, file_okay=False),
    default="outbox",
    show_default=True,
    help="Where reminders are written, on first set-up.",
)
@click.option("--reset", is_flag=True, help="Throw the demo workspace away and start over.")
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Then serve the web app on the demo workspace, until Ctrl+C.",
)
@click.option("--port", default=8765, show_default=True, type=int, help="The web app's port.")
@AT_OPTION
@click.pass_obj
def demo(
    app: AppContext,
    workspace: Path,
    outbox: Path,
    reset: bool,
    serve: bool,
    port: int,
    at: str | None,
) -> None:
    """Run Kindly end to end on a bundled demo ledger: sync, plan, send to ./outbox; then
    serve the web app on it (--no-serve: stop after the run, for scripts)."""
    from plugin.app.demo import create_demo_workspace, reset_demo

    now = _parse_at(at)
    folder = workspace
    console = app.console()
    if reset:
        reset_demo(folder)
    config = folder / "kindly.toml"
    if not config.exists():
        create_demo_workspace(folder, outbox, now)
        console.print(f"Set up the demo workspace in [bold]{folder}[/]")
    else:
        console.print(f"Continuing the demo workspace in [bold]{folder}[/] (--reset starts over)")
    kindly = open_workspace(config)
    _run_and_report(kindly, now, console)
    if not serve:
        return
    import secrets
    from datetime import UTC, datetime

    from plugin.app.cli.web import serve as serve_web
    from plugin.app.web.accounts import Accounts

    # A fresh password each time: the demo's account signs in only while it is served.
    password = secrets.token_urlsafe(12)
    Accounts(kindly.store).add(DEMO_ACCOUNT, password, ["*"], datetime.now(UTC))
    kindly.store.close()
    fixed = at is not None
    serve_web(
        config,
        "127.0.0.1",
        port,
        None,
        # With --at, the app's "now" is that moment too, as the run's was.
        clock=(lambda: now) if fixed else None,
        sign_in=(DEMO_ACCOUNT, password),
    )


#: The account `kindly demo` signs the web app in with.
DEMO_ACCOUNT = "demo"
