"""Setting up: `kindly init`, `connect`, `disconnect`, `secret-key` and the demo."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from plugin.app.cli.base import (
    AT_OPTION,
    CONNECTION_SCOPE,
    AppContext,
    _fail,
    _parse_at,
    cli,
    open_workspace,
)
from plugin.app.cli.output import (
    _run_and_report,
)

if TYPE_CHECKING:
    pass


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
    from plugin.config.initconfig import write_settings_file

    if target.exists() and not force:
        _fail(f"{target} already exists", "Use --force to replace it, or --path for another file.")
    write_settings_file(target, answers)
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
    help="Xero without a browser: a refresh token (also KINDLY_XERO_REFRESH_TOKEN).",
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
    """Connect a source: `kindly connect ledger FOLDER`, `xero`, `google` or `outlook`.

    A ledger is read and checked whole first, and kept only if it is sound. Xero opens the
    browser to sign in (or takes --refresh-token on a server), lists the organisations you
    allowed and keeps them; with several, --org picks one.
    """
    from integrations.registry import bookkeeping_connector_class
    from plugin.config.settings import load_settings
    from plugin.state.store import Store

    settings = load_settings(app.config)
    store = Store.open(os.environ.get("KINDLY_STORE_URL") or settings.store_url)
    console = app.console()
    if connector in ("google", "outlook"):
        import webbrowser

        from plugin.app.wiring import connect_calendar

        if settings.calendar is None or settings.calendar.kind != connector:
            _fail(
                f"kindly.toml does not name {connector} as the calendar",
                f'Add [calendar] type = "{connector}" and client_id = "…" to {app.config}.',
            )
        platform = connect_calendar(
            settings,
            store,
            refresh_token=refresh_token,
            open_browser=(lambda url: None) if no_browser else webbrowser.open,
            say=click.echo,
        )
        console.print(f"Connected {platform}: appointments are read at every sync.")
        return
    bookkeeping_connector_class(connector)  # an unknown name is refused with the known ones
    if connector == "xero":
        import webbrowser

        from plugin.app.wiring import connect_xero

        tenants = connect_xero(
            settings,
            store,
            refresh_token=refresh_token,
            organisation=app.organisation,
            open_browser=(lambda url: None) if no_browser else webbrowser.open,
            say=click.echo,
        )
        names = ", ".join(f"[bold]{t.name}[/]" for t in tenants)
        console.print(f"Connected Xero: {names}.")
        if settings.connector != "xero":
            console.print(
                f'[yellow]Note:[/] set connector = "xero" in {app.config} to sync from Xero.'
            )
        return
    from integrations.bookkeeping.ledger import LocalLedger

    if location is None:
        _fail("which folder holds the ledger?", "Run: kindly connect ledger FOLDER")
    folder = location.resolve()
    snapshot = LocalLedger(folder).read_snapshot()
    store.set_setting(CONNECTION_SCOPE + "ledger", "path", str(folder), _parse_at(at))
    console.print(
        f"Connected the ledger in [bold]{folder}[/]: {len(snapshot.customers)} "
        f"clients, {len(snapshot.invoices)} invoices."
    )
    if settings.ledger_path is not None and settings.ledger_path != folder:
        console.print(
            f"[yellow]Note:[/] {settings.source} names another ledger "
            f"({settings.ledger_path}) and wins; remove its [ledger] path to use "
            "this one."
        )


@cli.command()
@click.argument("connector", type=click.Choice(("ledger", "xero")))
@click.pass_obj
def disconnect(app: AppContext, connector: str) -> None:
    """Forget a connection; for Xero, revoke Kindly's access there too."""
    from plugin.config.settings import load_settings
    from plugin.state.store import Store

    settings = load_settings(app.config)
    store = Store.open(os.environ.get("KINDLY_STORE_URL") or settings.store_url)
    if connector == "xero":
        from plugin.app.wiring import disconnect_xero

        count = disconnect_xero(settings, store)
        click.echo(f"Disconnected Xero ({count} organisation(s)); Kindly's access is revoked.")
        return
    store.delete_setting(CONNECTION_SCOPE + "ledger", "path")
    click.echo("Forgot the connected ledger folder.")


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
@AT_OPTION
@click.pass_obj
def demo(app: AppContext, workspace: Path, outbox: Path, reset: bool, at: str | None) -> None:
    """Run Kindly end to end on a bundled demo ledger: sync, plan, send to ./outbox."""
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
