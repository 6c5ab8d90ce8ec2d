"""The pipeline: `kindly sync`, `plan`, `send`, `run` and `history`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from plugin.app.cli.base import (
    AT_OPTION,
    REVIEW_OPTIONS,
    AppContext,
    _fail,
    _parse_at,
    cli,
    company_zone,
)
from plugin.app.cli.output import (
    INCOMPLETE,
    _approved,
    _print_plan,
    _print_platform_reminders,
    _print_send,
    _print_sync,
    _report_held,
    _run_and_report,
    _send_with_progress,
    _sync_with_progress,
    _wait_for,
    incomplete,
    plan_as_json,
    printable,
    shown,
)
from plugin.errors import PlatformRemindersOn

if TYPE_CHECKING:
    pass


@cli.command()
@AT_OPTION
@click.pass_obj
def sync(app: AppContext, at: str | None) -> None:
    """Read the accounting system and keep an up-to-date copy."""
    short = False
    for kindly in app.workspaces():
        snapshot = _sync_with_progress(kindly, _parse_at(at, company_zone(kindly)), app.console())
        _print_sync(app.console(), kindly, snapshot)
        short = short or bool(kindly.warnings)
    if short:
        sys.exit(INCOMPLETE)


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
    result = kindly.plan(_parse_at(at, company_zone(kindly)))
    if client is not None:
        if client not in kindly.snapshot().customers_by_id:
            _fail(
                f"no client {client!r} in {kindly.source.location}",
                "`kindly clients` lists the clients and their ids.",
            )
        result = result.for_client(client)
    left_out = kindly.left_out()
    if as_json:
        platform_reminders = kindly.platform_reminders()
        planned = plan_as_json(result) | {
            "left_out": list(left_out),
            "platform_reminders": platform_reminders,
            "held": bool(platform_reminders) and not kindly.settings.beside_platform_reminders,
        }
        click.echo(json.dumps(planned, ensure_ascii=False, indent=2))
    else:
        _print_plan(app.console(), result, explain=explain)
        _print_platform_reminders(app.console(), kindly)
        for line in left_out:
            app.console().print(f"[yellow]Not read in the last sync:[/] {shown(line)}")
    if left_out:
        # The plan serves everyone but them: a script must not take it for complete.
        sys.exit(INCOMPLETE)


WAIT_OPTION = click.option(
    "--wait",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="If another Kindly is sending for this organisation, wait this long for it to "
    "finish (default: [delivery] wait, else stop at once and say so).",
)


@cli.command()
@AT_OPTION
@REVIEW_OPTIONS[0]
@REVIEW_OPTIONS[1]
@WAIT_OPTION
@click.pass_obj
def send(app: AppContext, at: str | None, review: bool, yes: bool, wait: float | None) -> None:
    """Send the reminders that are due, after re-checking the invoices they name.

    With --review, shows the batch first and asks; --yes answers for scripts. One send
    at a time works on an organisation: a second one waits (--wait) or stops at once.
    """
    console = app.console()
    short = held = False
    for kindly in app.workspaces():
        now = _parse_at(at, company_zone(kindly))
        plan = kindly.plan(now)
        if review:
            _print_plan(console, plan, explain=False)
            _print_platform_reminders(console, kindly)
            if not _approved(plan, yes):
                continue
        try:
            result = _send_with_progress(kindly, plan, now, console, wait)
        except PlatformRemindersOn as exc:
            # This organisation waits for the user's choice; the others send.
            _report_held(console, exc)
            held = True
            continue
        _print_send(console, kindly, result)
        short = short or incomplete(result)
    if held:
        sys.exit(PlatformRemindersOn.exit_code)
    if short:
        sys.exit(INCOMPLETE)


@cli.command()
@AT_OPTION
@REVIEW_OPTIONS[0]
@REVIEW_OPTIONS[1]
@WAIT_OPTION
@click.pass_obj
def run(app: AppContext, at: str | None, review: bool, yes: bool, wait: float | None) -> None:
    """Sync, plan, send and write notes back, in one go."""
    short = held = False
    for kindly in app.workspaces():
        try:
            result = _run_and_report(
                kindly,
                _parse_at(at, company_zone(kindly)),
                app.console(),
                review=review,
                yes=yes,
                wait=wait,
            )
        except PlatformRemindersOn as exc:
            _report_held(app.console(), exc)
            held = True
            continue
        # Records left out of the sync count too: the run did not serve them.
        short = short or bool(kindly.warnings) or (result is not None and incomplete(result))
    if held:
        sys.exit(PlatformRemindersOn.exit_code)
    if short:
        sys.exit(INCOMPLETE)


@cli.command()
@click.argument("keys", nargs=-1)
@click.option(
    "--all-unconfirmed", is_flag=True, help="Every unconfirmed reminder of this organisation."
)
@WAIT_OPTION
@click.pass_obj
def resend(
    app: AppContext, keys: tuple[str, ...], all_unconfirmed: bool, wait: float | None
) -> None:
    """Send unconfirmed reminders again on the next send or run.

    A reminder is unconfirmed when the connection ended after it was handed over and
    before the server answered: it most likely arrived, so Kindly never sends it twice by
    itself. Check the mail server's log first; then give the keys (or their first
    characters) that `kindly history --unconfirmed` shows for those that did not arrive.
    """
    from plugin.core.vocabulary import LogStatus

    kindly = app.workspace()
    if all_unconfirmed:
        keys = tuple(
            r.key
            for r in kindly.store.reminders(kindly.source_id, statuses=(LogStatus.UNCONFIRMED,))
        )
    elif not keys:
        _fail("name the reminders to send again", "Give their keys, or --all-unconfirmed.", 2)
    if not keys:
        click.echo("No reminder is unconfirmed.")
        return
    chosen = kindly.resend(list(keys), _parse_at(None), wait=_wait_for(kindly, wait))
    for record in chosen:
        click.echo(
            printable(
                f"{record.key[:12]}  {record.customer_id}  {record.stage} by {record.channel} "
                f"to {record.recipient}: goes again on the next send"
            )
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Restore the log from Kindly's notes in the accounting system (after losing the store).",
)
@click.option(
    "--unconfirmed",
    "only_unconfirmed",
    is_flag=True,
    help="Only reminders whose delivery was never confirmed (see `kindly resend`).",
)
@AT_OPTION
@click.pass_obj
def history(
    app: AppContext, as_json: bool, rebuild: bool, only_unconfirmed: bool, at: str | None
) -> None:
    """List the reminders Kindly has sent, and those it could not deliver or confirm."""
    from plugin.core.codec import to_jsonable
    from plugin.core.vocabulary import LogStatus

    kindly = app.workspace()
    if rebuild:
        rebuilt = kindly.rebuild_history(_parse_at(at, company_zone(kindly)))
        click.echo(
            f"Restored {rebuilt.restored} reminders from the notes in "
            f"{kindly.source.location}; the next run sends none of them again."
        )
        if rebuilt.stopped is not None:
            click.echo(
                f"Not finished: {rebuilt.clients_left} clients' invoices are still to be read "
                f"({rebuilt.stopped}). Do not send before it is done: run `kindly history "
                "--rebuild` again once the allowance is back (after midnight UTC); it carries "
                "on where it stopped.",
                err=True,
            )
    records = kindly.store.reminders(
        kindly.source_id, statuses=(LogStatus.UNCONFIRMED,) if only_unconfirmed else None
    )
    if as_json:
        click.echo(json.dumps(to_jsonable(records), ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"Reminders sent from {shown(kindly.source.location)}")
    for column in (
        "Key",
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
            record.key[:12],
            f"{record.sent_at:%Y-%m-%d %H:%M}" if record.sent_at else "-",
            shown(record.customer_id),
            shown(", ".join(record.invoice_numbers)),
            shown(record.stage),
            record.channel,
            shown(record.amount),
            _status_shown(record.status),
            "written"
            if record.note_written_at
            else ("pending" if kindly.source.writes_notes else "in Kindly only"),
        )
    console = app.console()
    if not records:
        console.print(
            "No reminder is unconfirmed." if only_unconfirmed else "Nothing has been sent yet."
        )
        return
    console.print(table)
    unconfirmed = sum(1 for r in records if r.status is LogStatus.UNCONFIRMED)
    if unconfirmed:
        console.print(
            f"[yellow]{unconfirmed} unconfirmed[/]: handed to the server, whose answer never "
            "came. They most likely arrived; check the server's log, then `kindly resend "
            "KEY` sends any that did not."
        )


def _status_shown(status: str) -> str:
    """The log's status as the table shows it: unconfirmed stands out."""
    return {
        "unconfirmed": "[yellow]unconfirmed[/]",
        "failed": "[red]failed[/]",
        "handing_over": "[yellow]handing over[/]",
    }.get(status, status)
