"""The `kindly` command.

Only click is imported at start-up; everything else is imported inside the command that
needs it, so `kindly --help` answers at once. Errors a user can act on are printed as one
line plus a hint; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from plugin import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from plugin.planning import Plan
    from plugin.run import Kindly, SendResult

__all__ = ["cli", "main"]


@dataclass
class AppContext:
    config: Path
    debug: bool
    organisation: str | None = None

    def console(self) -> Console:
        from rich.console import Console

        return Console(highlight=False)

    def workspace(self) -> Kindly:
        return open_workspace(self.config, self.organisation)

    def workspaces(self) -> list[Kindly]:
        return open_workspaces(self.config, self.organisation)


def open_workspaces(config: Path, organisation: str | None = None) -> list[Kindly]:
    """Settings, store and connectors for the kindly.toml at ``config``: one per source."""
    from plugin.connections import open_calendar, open_sources
    from plugin.run import Kindly
    from plugin.settings import load_settings
    from plugin.store import Store

    settings = load_settings(config)
    if settings.templates is not None:
        from plugin.render import check_overrides

        check_overrides(settings)
    store = Store.open(os.environ.get("KINDLY_STORE_URL") or settings.store_url)
    calendar = open_calendar(settings, store)
    return [
        Kindly(settings, store, source, calendar)
        for source in open_sources(settings, store, organisation)
    ]


def open_workspace(config: Path, organisation: str | None = None) -> Kindly:
    """The one source a command looks at; with several organisations, --org chooses."""
    from plugin.errors import ConfigError

    workspaces = open_workspaces(config, organisation)
    if len(workspaces) > 1:
        names = ", ".join(repr(k.source.location) for k in workspaces)
        raise ConfigError(
            f"several organisations are connected ({names})",
            hint="Choose one with --org NAME (or KINDLY_ORG).",
        )
    return workspaces[0]


CONNECTION_SCOPE = "connection:"


def _fail(message: str, hint: str | None, code: int = 1) -> NoReturn:
    click.secho(f"Error: {message}", fg="red", err=True)
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    sys.exit(code)


class KindlyGroup(click.Group):
    """Turns known errors into one clear line; shows tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        from plugin.errors import KindlyError

        try:
            return super().invoke(ctx)
        except KindlyError as exc:
            if _debugging(ctx):
                raise
            _fail(str(exc), exc.hint)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", "Run the command again; it continues where it stopped.", 130)
        except Exception as exc:
            if _debugging(ctx):
                raise
            _fail(
                f"unexpected {type(exc).__name__}: {exc}",
                "Run again with --debug for the traceback, and please report it.",
                2,
            )


def _debugging(ctx: click.Context) -> bool:
    obj = ctx.obj
    return bool(getattr(obj, "debug", False)) or os.environ.get("KINDLY_DEBUG") == "1"


def _parse_at(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date and time such as 2026-12-01T10:00", param_hint="--at"
        ) from None
    # A time without a zone means the local time of this computer.
    return moment if moment.tzinfo else moment.astimezone()


AT_OPTION = click.option(
    "--at",
    "at",
    metavar="DATETIME",
    help="Act as if it were this moment (ISO 8601, e.g. 2026-12-01T10:00). Default: now.",
)
REVIEW_OPTIONS = (
    click.option("--review", is_flag=True, help="Show the batch and ask before sending."),
    click.option("--yes", is_flag=True, help="With --review: send without asking (scripts)."),
)


@click.group(cls=KindlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="KINDLY_CONFIG",
    default="kindly.toml",
    show_default=True,
    help="Settings file (also KINDLY_CONFIG).",
)
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.option(
    "--org",
    envvar="KINDLY_ORG",
    metavar="NAME",
    help="With several organisations connected: the one to use (also KINDLY_ORG).",
)
@click.version_option(__version__, prog_name="kindly")
@click.pass_context
def cli(ctx: click.Context, config: Path, debug: bool, org: str | None) -> None:
    """Kindly sends tactful payment reminders for the invoices in your accounting tool.

    Start with `kindly demo` to see it work on sample data, or `kindly init` to set up
    your own company. Then: `kindly sync`, `kindly plan`, `kindly send` (or `kindly run`
    for all three) and `kindly history`.
    """
    ctx.obj = AppContext(config=config, debug=debug, organisation=org)


# -- init ------------------------------------------------------------------------------


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
    from plugin.initconfig import write_settings_file

    if target.exists() and not force:
        _fail(f"{target} already exists", "Use --force to replace it, or --path for another file.")
    write_settings_file(target, answers)
    click.echo(
        f"Wrote {target}. Check it, put your ledger files in {answers['ledger']!r} "
        "(docs/ledger-format.md), then run `kindly sync` and `kindly plan`."
    )


# -- connect -----------------------------------------------------------------------------


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
    from plugin.settings import load_settings
    from plugin.store import Store

    settings = load_settings(app.config)
    store = Store.open(os.environ.get("KINDLY_STORE_URL") or settings.store_url)
    console = app.console()
    if connector in ("google", "outlook"):
        import webbrowser

        from plugin.connections import connect_calendar

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

        from plugin.connections import connect_xero

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
    from integrations.ledger import LocalLedger

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
    from plugin.settings import load_settings
    from plugin.store import Store

    settings = load_settings(app.config)
    store = Store.open(os.environ.get("KINDLY_STORE_URL") or settings.store_url)
    if connector == "xero":
        from plugin.connections import disconnect_xero

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


# -- demo ------------------------------------------------------------------------------


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
    from integrations.demo import create_demo_workspace, reset_demo

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


# -- sync / plan / send / run ----------------------------------------------------------


@cli.command()
@AT_OPTION
@click.pass_obj
def sync(app: AppContext, at: str | None) -> None:
    """Read the accounting system and keep an up-to-date copy."""
    for kindly in app.workspaces():
        snapshot = _sync_with_progress(kindly, _parse_at(at), app.console())
        _print_sync(app.console(), kindly, snapshot)


@cli.command()
@AT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--explain", is_flag=True, help="Also list every open invoice not reminded, and why.")
@click.pass_obj
@click.argument("client", required=False)
def plan(app: AppContext, at: str | None, as_json: bool, explain: bool, client: str | None) -> None:
    """Show which reminders would go out now, and why others would not.

    With CLIENT (a client id), only that client.
    """
    kindly = app.workspace()
    result = kindly.plan(_parse_at(at))
    if client is not None:
        if client not in kindly.snapshot().customers_by_id:
            _fail(
                f"no client {client!r} in {kindly.source.location}",
                "`kindly clients` lists the clients and their ids.",
            )
        result = result.for_client(client)
    if as_json:
        click.echo(json.dumps(plan_as_json(result), ensure_ascii=False, indent=2))
        return
    _print_plan(app.console(), result, explain=explain)


@cli.command()
@AT_OPTION
@REVIEW_OPTIONS[0]
@REVIEW_OPTIONS[1]
@click.pass_obj
def send(app: AppContext, at: str | None, review: bool, yes: bool) -> None:
    """Send the reminders that are due, after re-checking the invoices they name.

    With --review, shows the batch first and asks; --yes answers for scripts.
    """
    now = _parse_at(at)
    console = app.console()
    for kindly in app.workspaces():
        plan = kindly.plan(now)
        if review:
            _print_plan(console, plan, explain=False)
            if not _approved(plan, yes):
                continue
        result = _send_with_progress(kindly, plan, now, console)
        _print_send(console, kindly, result)


def _approved(plan: Plan, yes: bool) -> bool:
    """Ask before a reviewed batch goes out; --yes answers for scripts."""
    if not plan.reminders or yes:
        return True
    try:
        approved = click.confirm(f"Send these {len(plan.reminders)} reminders?", default=False)
    except click.Abort:  # no one to answer (a script, a closed stdin)
        _fail("--review asks before sending, and no answer came", "Add --yes in scripts.", 2)
    if approved:
        return True
    click.echo("Nothing was sent.")
    return False


@cli.command()
@AT_OPTION
@REVIEW_OPTIONS[0]
@REVIEW_OPTIONS[1]
@click.pass_obj
def run(app: AppContext, at: str | None, review: bool, yes: bool) -> None:
    """Sync, plan, send and write notes back, in one go."""
    for kindly in app.workspaces():
        _run_and_report(kindly, _parse_at(at), app.console(), review=review, yes=yes)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Restore the log from Kindly's notes in the accounting system (after losing the store).",
)
@AT_OPTION
@click.pass_obj
def history(app: AppContext, as_json: bool, rebuild: bool, at: str | None) -> None:
    """List the reminders Kindly has sent."""
    from plugin.codec import to_jsonable

    kindly = app.workspace()
    if rebuild:
        restored = kindly.rebuild_history(_parse_at(at))
        click.echo(
            f"Restored {restored} reminders from the notes in {kindly.source.location}; "
            "the next run sends none of them again."
        )
    records = kindly.store.reminders(kindly.source_id)
    if as_json:
        click.echo(json.dumps(to_jsonable(records), ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"Reminders sent from {kindly.source.location}")
    for column in (
        "Sent (UTC)",
        "Client",
        "Invoices",
        "Stage",
        "Channel",
        "Amount",
        "Status",
        "Note",
    ):
        table.add_column(column)
    for record in records:
        table.add_row(
            f"{record.sent_at:%Y-%m-%d %H:%M}" if record.sent_at else "-",
            record.customer_id,
            ", ".join(record.invoice_numbers),
            record.stage,
            record.channel,
            record.amount,
            record.status,
            "written" if record.note_written_at else "pending",
        )
    console = app.console()
    console.print(table if records else "Nothing has been sent yet.")


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

    from plugin.errors import ConfigError
    from plugin.serve import WEBHOOK_KEY_VARIABLE, make_app

    key = os.environ.get(WEBHOOK_KEY_VARIABLE)
    if not key:
        raise ConfigError(
            f"{WEBHOOK_KEY_VARIABLE} is not set",
            hint="Copy the webhook key from your app at developer.xero.com into it.",
        )
    workspaces = {k.source.source_id.removeprefix("xero:"): k for k in app.workspaces()}
    if not any(k.source.webhook_path for k in workspaces.values()):
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


# -- preview -----------------------------------------------------------------------------


@cli.command()
@click.argument("client")
@click.option(
    "--invoice",
    "invoice_ids",
    multiple=True,
    metavar="ID",
    help="An invoice to include (repeat for more). Default: the client's open ones.",
)
@click.option(
    "--stage",
    type=click.Choice(("courtesy", "first", "second", "final")),
    help="Default: the stage the plan would send, else first.",
)
@click.option("--tone", type=click.Choice(TONE_CHOICES := ("friendly", "neutral", "firm")))
@click.option("--language", type=click.Choice(("en", "nl", "fr", "nb", "de", "vi")))
@click.option("--formality", type=click.Choice(("formal", "informal")))
@click.option(
    "--channel", type=click.Choice(("email", "sms", "letter")), default="email", show_default=True
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to a file instead: .eml for the whole e-mail, .html for its HTML.",
)
@AT_OPTION
@click.pass_obj
def preview(
    app: AppContext,
    client: str,
    invoice_ids: tuple[str, ...],
    stage: str | None,
    tone: str | None,
    language: str | None,
    formality: str | None,
    channel: str,
    output: Path | None,
    at: str | None,
) -> None:
    """Show the reminder a client would get, as it would be sent."""
    from dataclasses import replace
    from datetime import timedelta

    from plugin.delivery import build_email, message_bytes
    from plugin.planning import PlannedReminder, reminder_key, settings_for
    from plugin.render import render_reminder, render_sms

    kindly = app.workspace()
    now = _parse_at(at)
    snapshot = kindly.snapshot()
    customer = snapshot.customers_by_id.get(client)
    if customer is None:
        _fail(
            f"no client {client!r} in {kindly.source.location}",
            "`kindly clients` lists the clients and their ids.",
        )
    if invoice_ids:
        unknown = [i for i in invoice_ids if i not in snapshot.invoices_by_id]
        if unknown:
            _fail(f"no invoice {unknown[0]!r} in {kindly.source.location}", None)
        invoices = tuple(snapshot.invoices_by_id[i] for i in invoice_ids)
    else:
        invoices = tuple(i for i in snapshot.invoices if i.customer_id == client and i.is_open)
    if not invoices:
        _fail(f"{customer.name} has no open invoices", "Name one with --invoice ID.")
    if len({i.currency for i in invoices}) > 1:
        _fail(
            "the invoices are in different currencies; a reminder has one",
            "Pick invoices in one currency with --invoice.",
        )
    planned = next((r for r in kindly.plan(now).reminders if r.customer.id == client), None)
    resolved = settings_for(kindly.settings, customer)
    chosen_stage = stage or (planned.stage if planned else "first")
    next_step = planned.next_step_date if planned and planned.stage == chosen_stage else None
    stages = [s.name for s in kindly.settings.policies[resolved.policy].active_stages]
    if next_step is None and chosen_stage in stages[:-1]:
        # As if the reminder went out now: the pay-by date is when the next stage would.
        following = kindly.settings.policies[resolved.policy].active_stages[
            stages.index(chosen_stage) + 1
        ]
        if following.anchor.value == "previous":
            next_step = now.date() + timedelta(days=following.days)
    reminder = PlannedReminder(
        key=reminder_key(kindly.source_id, client, [i.id for i in invoices], chosen_stage, channel),
        source=kindly.source_id,
        customer=customer,
        invoices=invoices,
        stage=chosen_stage,
        channel=channel,
        recipients={"email": customer.emails, "sms": customer.phones}.get(
            channel, ("\n".join(customer.address),)
        ),
        language=language or resolved.language,
        tone=tone or (planned.tone if planned and not stage else resolved.tone),
        template=chosen_stage,
        next_step_date=next_step,
        formality=formality or resolved.formality,
        charges=any(
            s.name == chosen_stage and s.charges
            for s in kindly.settings.policies[resolved.policy].stages
        )
        and resolved.charges,
        debtor=resolved.kind,
    )
    console = app.console()
    if channel == "sms":
        sms = render_sms(
            reminder,
            kindly.settings,
            limit=kindly.settings.sms_limit,
            transliterate=kindly.settings.sms_transliterate,
        )
        console.print(sms.text, markup=False, highlight=False)
        fits = "fits" if sms.count.fits(kindly.settings.sms_limit) else "does NOT fit"
        console.print(
            f"[dim]{sms.count.encoding}, {sms.count.units} units, "
            f"{sms.count.segments} segment(s); {fits} the limit of "
            f"{kindly.settings.sms_limit}"
            + (", transliterated" if sms.transliterated else "")
            + "[/]"
        )
        return
    if channel == "letter":
        from plugin.render import render_letter

        if output is None:
            _fail("a letter is a printable page", "Give --output letter.html, then print it.")
        output.write_text(render_letter(reminder, kindly.settings, now.date()), encoding="utf-8")
        console.print(f"Wrote {output}")
        return
    rendered = render_reminder(reminder, kindly.settings, on=now.date())
    if output is None:
        console.print(f"[bold]Subject:[/] {rendered.subject}", highlight=False)
        console.print(rendered.text, markup=False, highlight=False)
        return
    if output.suffix == ".html":
        assert rendered.html is not None
        output.write_text(rendered.html, encoding="utf-8")
    else:
        output.write_bytes(
            message_bytes(build_email(replace(reminder), rendered, kindly.settings, now))
        )
    console.print(f"Wrote {output}")


# -- charges -----------------------------------------------------------------------------


def _payment(value: str) -> tuple[str, str]:
    day, _, amount = value.partition(":")
    if not amount:
        raise click.BadParameter(
            f"{value!r} is not DATE:AMOUNT, e.g. 2026-03-01:500", param_hint="--payment"
        )
    return day, amount


@cli.command()
@click.option(
    "--jurisdiction", required=True, metavar="CODE", help="EU, NL, BE, DE, FR, NO, GB, VN or OTHER."
)
@click.option(
    "--debtor", type=click.Choice(("business", "consumer")), default="business", show_default=True
)
@click.option("--principal", required=True, metavar="AMOUNT", help="What the invoice asks.")
@click.option("--currency", required=True, metavar="CODE")
@click.option("--due", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), metavar="DATE")
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="DATE",
    help="The day to calculate for. Default: today.",
)
@click.option(
    "--payment",
    "payments",
    multiple=True,
    metavar="DATE:AMOUNT",
    help="A partial payment (repeat for more).",
)
@click.option(
    "--letter-posted",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="DATE",
    help="NL consumers: when the 14-day letter was posted.",
)
@click.option(
    "--demand",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="DATE",
    help="FR consumers: the date of the mise en demeure.",
)
@click.option("--contract-rate", metavar="PERCENT", help="An agreed yearly rate.")
@click.option("--rate-agreed", is_flag=True, help="VN: interest was agreed without a rate.")
@click.option(
    "--vat-on-costs",
    metavar="PERCENT",
    help="NL: VAT on collection costs, only if you cannot reclaim it and say so.",
)
@click.option("--reminder-fees", type=int, default=0, help="NO: reminder fees charged so far.")
@click.option("--json", "as_json", is_flag=True, help="Print the breakdown as JSON.")
@click.pass_obj
def charges(
    app: AppContext,
    jurisdiction: str,
    debtor: str,
    principal: str,
    currency: str,
    due: datetime,
    on: datetime | None,
    payments: tuple[str, ...],
    letter_posted: datetime | None,
    demand: datetime | None,
    contract_rate: str | None,
    rate_agreed: bool,
    vat_on_costs: str | None,
    reminder_fees: int,
    as_json: bool,
) -> None:
    """Statutory interest, compensation and costs on one invoice, with every rate used."""
    from decimal import Decimal, InvalidOperation

    from plugin.charges import calculate
    from plugin.money import Money

    def number(value: str | None, hint: str) -> Decimal | None:
        if value is None:
            return None
        try:
            return Decimal(value)
        except InvalidOperation:
            raise click.BadParameter(f"{value!r} is not a number", param_hint=hint) from None

    try:
        amount = Money.of(principal, currency.upper())
        paid = []
        for item in payments:
            day, value = _payment(item)
            paid.append(
                (
                    datetime.strptime(day, "%Y-%m-%d").date(),  # noqa: DTZ007
                    Money.of(value, currency.upper()),
                )
            )
        result = calculate(
            jurisdiction,
            debtor,
            amount,
            due=due.date(),
            on=(on or datetime.now(UTC)).date(),
            payments=paid,
            letter_posted=letter_posted.date() if letter_posted else None,
            demand=demand.date() if demand else None,
            contract_rate=number(contract_rate, "--contract-rate"),
            rate_agreed=rate_agreed,
            vat_on_costs=number(vat_on_costs, "--vat-on-costs"),
            reminder_fees=reminder_fees,
        )
    except ValueError as exc:
        _fail(str(exc), "See `kindly charges --help`.")
    if as_json:
        from plugin.codec import to_jsonable

        data = to_jsonable(result)
        data.update(interest=to_jsonable(result.interest), total=to_jsonable(result.total))
        for line, raw in zip(result.interest_lines, data["interest_lines"], strict=True):
            raw["days"] = line.days
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    console = app.console()
    table = Table(
        title=f"{result.jurisdiction}, {result.debtor} debtor, "
        f"due {result.due.isoformat()}, on {result.on.isoformat()}"
    )
    for column in ("", "From", "To", "Days", "On", "Rate", "Amount", "Basis"):
        table.add_column(column)
    table.add_row(
        "Principal",
        "",
        "",
        "",
        "",
        "",
        str(result.outstanding),
        f"of {result.principal}" if result.outstanding != result.principal else "",
    )
    for line in result.interest_lines:
        table.add_row(
            "Interest",
            line.start.isoformat(),
            line.end.isoformat(),
            str(line.days),
            str(line.base),
            f"{line.rate}%",
            str(line.amount),
            line.basis + ("" if line.verified else " (not verified)"),
        )
    if len(result.interest_lines) > 1:
        table.add_row("Interest, total", "", "", "", "", "", str(result.interest), "")
    if result.compensation is not None:
        table.add_row(
            "Compensation",
            "",
            "",
            "",
            "",
            "",
            str(result.compensation),
            result.compensation_basis or "",
        )
    if result.costs is not None:
        table.add_row(
            "Costs",
            "",
            "",
            "",
            "",
            "",
            str(result.costs) + ("" if result.costs_chargeable else " (not yet)"),
            result.costs_basis or "",
        )
    table.add_row("Total", "", "", "", "", "", str(result.total), "")
    console.print(table)
    for note in result.notes:
        console.print(f"Note: {note}")
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {warning}")


# -- clients -----------------------------------------------------------------------------

LANGUAGE_CHOICES = ("en", "nl", "fr", "nb", "de", "vi")


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the clients as JSON.")
@click.pass_context
def clients(ctx: click.Context, as_json: bool) -> None:
    """List clients with their settings and payment behaviour.

    `kindly clients set CLIENT ...` changes a client's settings.
    """
    if ctx.invoked_subcommand is not None:
        return
    app: AppContext = ctx.obj
    kindly = app.workspace()
    rows = client_rows(kindly)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"Clients in {kindly.source.location}")
    for column in ("Client", "Language", "Tone", "Channels", "Policy", "Reminders", "Pays"):
        table.add_column(column)
    for row in rows:
        if row["excluded"]:
            state = "excluded"
        elif row["pause_until"]:
            state = f"paused until {row['pause_until']}"
        else:
            state = "on" + ("" if row["consolidate"] else ", one per invoice")
        table.add_row(
            f"{row['name']} ({row['id']})",
            row["language"],
            row["tone"],
            ", ".join(row["channels"]),
            row["policy"],
            state,
            f"{row['behaviour']}: {row['behaviour_detail']}",
        )
    app.console().print(table)


def client_rows(kindly: Kindly) -> list[dict[str, Any]]:
    from plugin.behaviour import classify, payment_behaviour
    from plugin.planning import settings_for

    snapshot = kindly.snapshot()
    behaviour = payment_behaviour(snapshot)
    rows = []
    for customer in sorted(snapshot.customers, key=lambda c: c.id):
        resolved = settings_for(kindly.settings, customer)
        policy = kindly.settings.policies[resolved.policy]
        paid = behaviour.get(customer.id)
        rows.append(
            {
                "id": customer.id,
                "name": customer.name,
                "kind": str(resolved.kind),
                "language": resolved.language,
                "tone": resolved.tone,
                "channels": list(resolved.channels),
                "policy": resolved.policy,
                "pause_until": resolved.pause_until.isoformat() if resolved.pause_until else None,
                "pause_reason": resolved.pause_reason,
                "excluded": resolved.excluded,
                "consolidate": resolved.consolidate,
                "formality": resolved.formality,
                "behaviour": str(classify(paid, policy.behaviour)),
                "behaviour_detail": paid.describe() if paid else "no paid invoices yet",
                "sources": dict(resolved.sources),
            }
        )
    return rows


@clients.command("set")
@click.argument("client")
@click.option("--tone", type=click.Choice(TONE_CHOICES))
@click.option("--language", type=click.Choice(LANGUAGE_CHOICES))
@click.option("--channels", metavar="LIST", help="In order of preference, e.g. email,sms.")
@click.option("--policy", metavar="NAME", help="default, or a policy from [policies].")
@click.option(
    "--pause-until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="DATE",
    help="No reminders up to and including this day.",
)
@click.option("--pause-reason", metavar="TEXT", help="Why, shown in plans and history.")
@click.option("--resume", is_flag=True, help="Lift a pause made with this command.")
@click.option(
    "--exclude/--include",
    "excluded",
    default=None,
    help="Never remind this client / remind it again.",
)
@click.option("--kind", type=click.Choice(("business", "consumer")))
@click.option(
    "--formality",
    type=click.Choice(("formal", "informal")),
    help="Formal (u, Sie, De) or informal (je, du) address.",
)
@click.option(
    "--consolidate/--per-invoice",
    "consolidate",
    default=None,
    help="One reminder for all overdue invoices, or one per invoice.",
)
@click.option("--reset", is_flag=True, help="Forget every setting made with this command.")
@click.pass_obj
def clients_set(app: AppContext, /, client: str, reset: bool, resume: bool, **options: Any) -> None:
    """Change a client's reminder settings.

    Settings made here win over kindly.toml for this client; `--reset` forgets them.
    """
    from plugin.run import CLIENT_SCOPE

    kindly = app.workspace()
    snapshot = kindly.snapshot()
    if client not in snapshot.customers_by_id:
        _fail(
            f"no client {client!r} in {kindly.source.location}",
            "`kindly clients` lists the clients and their ids.",
        )
    values: dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name == "pause_until":
            value = value.date().isoformat()
        elif name == "channels":
            value = [part.strip() for part in value.split(",") if part.strip()]
            unknown = [c for c in value if c not in ("email", "sms", "letter", "phone", "task")]
            if unknown or not value:
                raise click.BadParameter(
                    f"unknown channel {unknown[0] if unknown else '(none)'}; "
                    "choose from email, sms, letter, phone, task",
                    param_hint="--channels",
                )
        elif name == "policy" and value not in kindly.settings.policies:
            known = ", ".join(sorted(kindly.settings.policies))
            raise click.BadParameter(f"no policy {value!r} (known: {known})", param_hint="--policy")
        values[name] = value
    if not values and not reset and not resume:
        _fail("nothing to change", "Give an option such as --tone firm; see --help.")
    scope = CLIENT_SCOPE + client
    now = datetime.now(UTC)
    store = kindly.store
    if reset:
        for key in store.settings_in(scope).get(scope, {}):
            store.delete_setting(scope, key)
    if resume:
        store.delete_setting(scope, "pause_until")
        store.delete_setting(scope, "pause_reason")
    for key, value in values.items():
        store.set_setting(scope, key, value, now)
    kindly = app.workspace()
    (row,) = [r for r in client_rows(kindly) if r["id"] == client]
    console = app.console()
    console.print(
        f"{row['name']} ({client}): tone {row['tone']}, language {row['language']}, "
        f"channels {', '.join(row['channels'])}, policy {row['policy']}"
        + (", excluded" if row["excluded"] else "")
        + (f", paused until {row['pause_until']}" if row["pause_until"] else "")
    )
    if resume and row["pause_until"]:
        console.print(
            f"[yellow]Still paused[/] by the {row['sources']['pause_until']} setting "
            "(kindly.toml); change it there."
        )


# -- output ----------------------------------------------------------------------------


def plan_as_json(result: Plan) -> dict[str, Any]:
    from plugin.codec import to_jsonable

    return {
        "at": result.at.isoformat(),
        "reminders": [
            {
                "key": reminder.key,
                "customer_id": reminder.customer.id,
                "customer": reminder.customer.name,
                "invoices": [invoice.number for invoice in reminder.invoices],
                "invoice_ids": [invoice.id for invoice in reminder.invoices],
                "amount_due": to_jsonable(reminder.amount_due),
                "stage": reminder.stage,
                "channel": reminder.channel,
                "recipients": list(reminder.recipients),
                "language": reminder.language,
                "tone": reminder.tone,
                "template": reminder.template,
                "charges": reminder.charges,
                "invoice_stages": dict(reminder.invoice_stages),
                "behaviour": str(reminder.behaviour),
                "why": [{"code": r.code, "text": r.text} for r in reminder.why],
            }
            for reminder in result.reminders
        ],
        "skips": [to_jsonable(skip) for skip in result.skips],
        "appointments": [
            {
                "key": planned.key,
                "appointment_id": planned.appointment.id,
                "title": planned.appointment.title,
                "start": planned.appointment.start.isoformat(),
                "recipient": planned.recipient,
                "channel": planned.channel,
                "rule": planned.rule.label,
                "language": planned.customer.language,
                "why": [{"code": r.code, "text": r.text} for r in planned.why],
            }
            for planned in result.appointments
        ],
        "appointment_skips": [to_jsonable(skip) for skip in result.appointment_skips],
        "behaviour": {
            client_id: {
                **to_jsonable(behaviour),
                "share_late": behaviour.share_late,
                "average_days_late": behaviour.average_days_late,
            }
            for client_id, behaviour in sorted(result.behaviour.items())
        },
    }


def _sync_with_progress(kindly: Kindly, now: datetime, console: Console) -> Any:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"Reading {kindly.source.location}")

        def show(resource: str, count: int) -> None:
            progress.update(task, description=f"Reading {resource}: {count:,}")

        kindly.source.progress = show
        try:
            return kindly.sync(now)
        finally:
            kindly.source.progress = None


def _run_and_report(
    kindly: Kindly, now: datetime, console: Console, *, review: bool = False, yes: bool = True
) -> None:
    snapshot = _sync_with_progress(kindly, now, console)
    _print_sync(console, kindly, snapshot)
    result = kindly.plan(now)
    _print_plan(console, result, explain=False)
    if review and not _approved(result, yes):
        return
    sent = _send_with_progress(kindly, result, now, console)
    _print_send(console, kindly, sent)


def _send_with_progress(
    kindly: Kindly, result: Plan, now: datetime, console: Console
) -> SendResult:
    from rich.progress import Progress

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Sending", total=len(result.reminders))
        return kindly.send(result, now, progress=lambda _reminder: progress.advance(task))


def _print_sync(console: Console, kindly: Kindly, snapshot: Any) -> None:
    open_count = sum(1 for _ in snapshot.open_invoices())
    console.print(
        f"Synced {kindly.source.location}: {len(snapshot.customers)} clients, "
        f"{len(snapshot.invoices)} invoices ({open_count} open), {len(snapshot.payments)} "
        f"payments, {len(snapshot.credit_notes)} credit notes, "
        f"{len(snapshot.appointments)} appointments."
    )
    for warning in getattr(kindly.source, "warnings", ()):
        console.print(f"[yellow]Not read:[/] {warning}")


def _print_plan(console: Console, result: Plan, *, explain: bool) -> None:
    from collections import Counter
    from zoneinfo import ZoneInfo

    from rich.table import Table

    from plugin.locales import babel_locale_name
    from plugin.render import format_money

    if result.reminders:
        table = Table(title=f"Reminders due at {result.at:%Y-%m-%d %H:%M %Z}")
        for column in ("Client", "Invoices", "Outstanding", "Stage", "Channel", "Language", "Tone"):
            table.add_column(column)
        for reminder in result.reminders:
            locale = babel_locale_name(reminder.language, reminder.customer.country)
            table.add_row(
                f"{reminder.customer.name} ({reminder.customer.id})",
                ", ".join(invoice.number for invoice in reminder.invoices),
                format_money(reminder.amount_due, locale),
                reminder.stage,
                reminder.channel,
                reminder.language,
                reminder.tone,
            )
        console.print(table)
    else:
        console.print("No reminders are due.")
    if result.appointments:
        upcoming = Table(title="Appointment reminders due")
        for column in ("Event", "Starts", "To", "Channel", "Rule", "Language"):
            upcoming.add_column(column)
        for planned in result.appointments:
            zone = planned.customer.timezone
            upcoming.add_row(
                planned.appointment.title,
                f"{planned.appointment.start.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}",
                planned.recipient,
                planned.channel,
                planned.rule.label,
                planned.customer.language,
            )
        console.print(upcoming)
    counts = Counter(skip.code for skip in result.skips)
    if counts:
        summary = ", ".join(
            f"{count} {code.replace('_', ' ')}" for code, count in sorted(counts.items())
        )
        console.print(f"Not reminded: {summary}.")
    if explain:
        for reminder in result.reminders:
            console.print(
                f"[bold]{reminder.customer.id}[/] {reminder.stage} by {reminder.channel}, "
                f"tone {reminder.tone}:"
            )
            for reason in reminder.why:
                console.print(f"  - [dim]{reason.code}[/] {reason.text}")
        if result.skips:
            console.print("[bold]Not reminded[/]")
        for skip in result.skips:
            console.print(
                f"  {skip.customer_id} {skip.invoice_id}: [dim]{skip.code}[/] {skip.reason}"
            )
        for client_id, behaviour in sorted(result.behaviour.items()):
            console.print(f"  {client_id} pays: {behaviour.describe()}")


def _print_send(console: Console, kindly: Kindly, result: SendResult) -> None:
    from collections import Counter

    from rich.table import Table

    by_stage = Counter((reminder.stage, reminder.channel) for reminder, _ in result.sent)
    if result.sent:
        parts = ", ".join(
            f"{count} {stage} by {channel}" for (stage, channel), count in sorted(by_stage.items())
        )
        console.print(f"[green]Sent {len(result.sent)} reminders[/] ({parts})")
        used = sorted({reminder.channel for reminder, _ in result.sent})
        for name in used:
            console.print(f"  {name}: {_where(kindly, name)}")
    else:
        console.print("Sent nothing new.")
    if result.failed or result.deferred:
        table = Table(title="Not delivered")
        for column in ("Client", "Stage", "Channel", "", "Why"):
            table.add_column(column)
        for label, entries in (("failed", result.failed), ("next run", result.deferred)):
            for reminder, reason in entries:
                table.add_row(
                    reminder.customer.name, reminder.stage, reminder.channel, label, reason
                )
        console.print(table)
    if result.recovered:
        console.print(f"Recovered {result.recovered} reminders an interrupted run had sent.")
    for skip in result.dropped:
        console.print(f"[yellow]Not sent[/] {skip.customer_id} {skip.invoice_id}: {skip.reason}")
    console.print(f"Notes written back to {kindly.source.location}: {result.notes_written}")
    for key, reason in result.notes_pending:
        console.print(
            f"[yellow]Note pending[/] for reminder {key[:12]}: {reason} (retried on the next run)"
        )


def _where(kindly: Kindly, channel_name: str) -> str:
    channel = kindly.channels[channel_name]
    settings = kindly.settings
    if channel.via == "outbox":
        return f"written to {settings.outbox}"
    if channel.via == "smtp" and settings.smtp is not None:
        return f"sent through {settings.smtp.host}:{settings.smtp.port}"
    if channel.via == "letters":
        return f"letters to print and post in {settings.outbox.parent / 'letters'}"
    if channel.via == "note":
        return f"tasks noted in {kindly.source.location}"
    return f"sent through {channel.via}"


def main() -> None:
    cli(prog_name="kindly")


if __name__ == "__main__":  # pragma: no cover
    main()
