"""What the commands print: the sync, the plan (as a table or JSON) and the send."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from plugin.app.cli.base import _fail

if TYPE_CHECKING:
    from rich.console import Console

    from plugin.core.decisions import Plan, PlannedReminder
    from plugin.errors import KindlyError
    from plugin.run import Kindly, SendResult
    from plugin.state.leases import Holder


# C0 and C1 controls but tab and line feed (ESC starts a terminal's escape sequences), and
# the bidirectional controls that make text read the other way.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(value: object) -> str:
    """Data from the accounting system, safe for a terminal: controls become "\ufffd"."""
    return _CONTROLS.sub("\ufffd", str(value))


def shown(value: object) -> str:
    """Data for rich: printable, and its brackets escaped so they are never markup.

    Client names, invoice numbers and reasons come from the accounting system; a name
    such as "Data [/path] BV" would otherwise be read as a closing tag (and stop the
    command), "[link=…]" as a hyperlink, and an ESC as the start of a terminal command.
    """
    from rich.markup import escape

    return escape(printable(value))


def plan_as_json(result: Plan) -> dict[str, Any]:
    from plugin.core.codec import to_jsonable

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
    kindly: Kindly,
    now: datetime,
    console: Console,
    *,
    review: bool = False,
    yes: bool = True,
    wait: float | None = None,
) -> SendResult | None:
    """Sync, plan, send and report; the send's result (None if the review said no)."""
    snapshot = _sync_with_progress(kindly, now, console)
    _print_sync(console, kindly, snapshot)
    result = kindly.plan(now)
    _print_plan(console, result, explain=False)
    _print_platform_reminders(console, kindly)
    if review and not _approved(result, yes):
        return None
    sent = _send_with_progress(kindly, result, now, console, wait)
    _print_send(console, kindly, sent)
    return sent


def _wait_for(kindly: Kindly, wait: float | None) -> float:
    """--wait, else [delivery] wait."""
    return kindly.settings.send_wait if wait is None else wait


def _send_with_progress(
    kindly: Kindly, result: Plan, now: datetime, console: Console, wait: float | None = None
) -> SendResult:
    from rich.progress import Progress

    seconds = _wait_for(kindly, wait)

    def waiting(holder: Holder) -> None:
        # On stderr: a script reading the summary from stdout is not disturbed.
        click.echo(
            f"Another Kindly is sending for this organisation ({holder.describe()}); "
            f"waiting up to {seconds:g} s for it to finish.",
            err=True,
        )

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Sending", total=len(result.reminders))
        return kindly.send(
            result,
            now,
            progress=lambda _reminder: progress.advance(task),
            wait=seconds,
            on_wait=waiting,
        )


def _print_sync(console: Console, kindly: Kindly, snapshot: Any) -> None:
    open_count = sum(1 for _ in snapshot.open_invoices())
    console.print(
        f"Synced {shown(kindly.source.location)}: {len(snapshot.customers)} clients, "
        f"{len(snapshot.invoices)} invoices ({open_count} open), {len(snapshot.payments)} "
        f"payments, {len(snapshot.credit_notes)} credit notes, "
        f"{len(snapshot.appointments)} appointments."
    )
    changes = kindly.sync_changes
    if changes is not None:
        console.print(
            f"Since the last sync: {len(changes.added)} new, {len(changes.changed)} changed, "
            f"{len(changes.removed)} gone."
        )
    for warning in kindly.warnings:
        console.print(f"[yellow]Not read:[/] {shown(warning)}")
    if kindly.restored_by_sync:
        console.print(
            f"Took up {kindly.restored_by_sync} reminders into the log from Kindly's notes "
            "in the accounting system: they went out before and are not sent again."
        )


def _numbers_with_stages(reminder: PlannedReminder) -> str:
    """The invoices' numbers, each with its own stage where the message consolidates
    invoices at different stages ("NS-0133 (second), NS-0165 (first)")."""
    if len(set(reminder.invoice_stages.values())) <= 1:
        return ", ".join(invoice.number for invoice in reminder.invoices)
    return ", ".join(
        f"{invoice.number} ({reminder.invoice_stages.get(invoice.id, reminder.stage)})"
        for invoice in reminder.invoices
    )


def _print_platform_reminders(console: Console, kindly: Kindly) -> None:
    """Say so when the accounting system sends reminders itself, and what Kindly does."""
    found = kindly.platform_reminders()
    if not found:
        return
    title = shown(kindly.source.title)
    for line in found:
        console.print(f"[yellow]{title} sends reminders itself:[/] {shown(line)}")
    if kindly.settings.beside_platform_reminders:
        console.print(
            "Kindly sends its reminders beside them ([delivery] beside_platform_reminders)."
        )
    else:
        console.print(
            "[bold]Kindly sends nothing while they are on[/], so that no client is chased "
            "twice: turn them off there, or set [delivery] beside_platform_reminders = true."
        )


def _report_held(console: Console, exc: KindlyError) -> None:
    """A send this organisation holds back, said as the CLI says an error."""
    console.print(f"[red]Nothing sent:[/] {shown(str(exc))}")
    if exc.hint:
        console.print(f"[dim]Hint:[/] {shown(exc.hint)}")


def _print_plan(console: Console, result: Plan, *, explain: bool) -> None:
    from collections import Counter
    from zoneinfo import ZoneInfo

    from rich.table import Table

    from plugin.compose.formatting import format_money
    from plugin.config.locales import babel_locale_name

    if result.reminders:
        table = Table(title=f"Reminders due at {result.at:%Y-%m-%d %H:%M %Z}")
        for column in ("Client", "Invoices", "Outstanding", "Stage", "Channel", "Language", "Tone"):
            table.add_column(column)
        for reminder in result.reminders:
            locale = babel_locale_name(reminder.language, reminder.customer.country)
            table.add_row(
                shown(f"{reminder.customer.name} ({reminder.customer.id})"),
                shown(_numbers_with_stages(reminder)),
                format_money(reminder.amount_due, locale),
                shown(reminder.stage),
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
                shown(planned.appointment.title),
                f"{planned.appointment.start.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}",
                shown(planned.recipient),
                planned.channel,
                shown(planned.rule.label),
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
                f"[bold]{shown(reminder.customer.id)}[/] {shown(reminder.stage)} by "
                f"{reminder.channel}, tone {reminder.tone}:"
            )
            for reason in reminder.why:
                console.print(f"  - {shown(reason.text)} [dim]({reason.code})[/]")
        if result.skips:
            console.print("[bold]Not reminded[/]")
        for skip in result.skips:
            # The code after the words: "paused until …" read "paused paused until …".
            console.print(
                f"  {shown(skip.customer_id)} {shown(skip.invoice_id)}: {shown(skip.reason)} "
                f"[dim]({skip.code})[/]"
            )
        for client_id, behaviour in sorted(result.behaviour.items()):
            console.print(f"  {shown(client_id)} pays: {shown(behaviour.describe())}")


def _print_send(console: Console, kindly: Kindly, result: SendResult) -> None:
    from collections import Counter

    from rich.table import Table

    by_stage = Counter((reminder.stage, reminder.channel) for reminder, _ in result.sent)
    if result.sent:
        parts = ", ".join(
            f"{count} {shown(stage)} by {channel}"
            for (stage, channel), count in sorted(by_stage.items())
        )
        console.print(f"[green]Sent {len(result.sent)} reminders[/] ({parts})")
        used = sorted({reminder.channel for reminder, _ in result.sent})
        for name in used:
            console.print(f"  {name}: {shown(_where(kindly, name))}")
    else:
        console.print("Sent nothing new.")
    if result.failed or result.deferred:
        table = Table(title="Not delivered")
        for column in ("Client", "Stage", "Channel", "", "Why"):
            table.add_column(column)
        for label, entries in (("failed", result.failed), ("next run", result.deferred)):
            for reminder, reason in entries:
                table.add_row(
                    shown(reminder.customer.name),
                    shown(reminder.stage),
                    reminder.channel,
                    label,
                    shown(reason),
                )
        console.print(table)
    if result.unconfirmed or result.recovered_unconfirmed:
        table = Table(title="Unconfirmed: handed over, the answer never came")
        for column in ("Key", "Client", "Stage", "Channel", "Why"):
            table.add_column(column)
        for reminder, reason in result.unconfirmed:
            table.add_row(
                reminder.key[:12],
                shown(reminder.customer.name),
                shown(reminder.stage),
                reminder.channel,
                shown(reason),
            )
        for record in result.recovered_unconfirmed:
            table.add_row(
                record.key[:12],
                shown(record.customer_id),
                shown(record.stage),
                record.channel,
                "an interrupted run handed it over; no answer came",
            )
        console.print(table)
        console.print(
            "They most likely arrived and are not sent again by themselves. Check the "
            "server's log, then `kindly resend KEY` for any that did not."
        )
    if result.recovered:
        console.print(
            f"Recovered {result.recovered} reminders an interrupted run had delivered "
            "(found in the outbox or letters folder)."
        )
    for skip in result.dropped:
        console.print(
            f"[yellow]Not sent[/] {shown(skip.customer_id)} {shown(skip.invoice_id)}: "
            f"{shown(skip.reason)}"
        )
    if kindly.source.writes_notes:
        console.print(
            f"Notes written back to {shown(kindly.source.location)}: {result.notes_written}"
        )
    else:
        console.print(
            f"Notes: {shown(kindly.source.title)} keeps none; the history stays in Kindly."
        )
    for key, reason in result.notes_pending:
        console.print(
            f"[yellow]Note pending[/] for reminder {key[:12]}: {shown(reason)} "
            "(retried on the next run)"
        )
    console.print(
        f"Sent {len(result.sent)}, deferred {len(result.deferred)}, failed "
        f"{len(result.failed)}, unconfirmed "
        f"{len(result.unconfirmed) + len(result.recovered_unconfirmed)}."
    )
    if result.stopped is not None:
        raise result.stopped


#: The exit status of a send or run that finished with reminders not delivered (failed,
#: deferred or unconfirmed) or notes not written back: a cron job can tell (docs/exit-codes).
INCOMPLETE = 3


def incomplete(result: SendResult) -> bool:
    """Whether some of the batch did not get through, or was not noted."""
    return bool(
        result.failed
        or result.deferred
        or result.unconfirmed
        or result.recovered_unconfirmed
        or result.notes_pending
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
