"""The pipeline: `kindly sync`, `plan`, `send`, `run` and `history`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from plugin.app.cli.base import (
    AT_OPTION,
    REVIEW_OPTIONS,
    AppContext,
    _fail,
    _parse_at,
    cli,
)
from plugin.app.cli.output import (
    _approved,
    _print_plan,
    _print_send,
    _print_sync,
    _run_and_report,
    _send_with_progress,
    _sync_with_progress,
    plan_as_json,
)

if TYPE_CHECKING:
    pass


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
    from plugin.core.codec import to_jsonable

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
