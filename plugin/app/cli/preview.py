"""`kindly preview`: the reminder a client would get, as it would be sent."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from plugin.app.cli.base import (
    AT_OPTION,
    AppContext,
    _fail,
    _parse_at,
    cli,
    company_zone,
)
from plugin.core.vocabulary import CHANNELS, FORMALITIES, LANGUAGES, TONES, one_of

if TYPE_CHECKING:
    from rich.console import Console

    from plugin.core.decisions import Plan, PlannedReminder
    from plugin.run import Kindly


@cli.command()
@click.argument("client")
@click.option(
    "--invoice",
    "invoice_ids",
    multiple=True,
    metavar="ID",
    help="The reminder naming this invoice (repeat for more). "
    "Default: every reminder due for the client, else the next one.",
)
@click.option(
    "--stage",
    metavar="STAGE",
    help="A stage of the client's policy, e.g. second. Default: the stage the plan sends.",
)
@click.option("--tone", type=click.Choice(TONES))
@click.option("--language", type=click.Choice(LANGUAGES))
@click.option("--formality", type=click.Choice(FORMALITIES))
@click.option(
    "--channel",
    type=click.Choice(("email", "sms", "letter")),
    help="Default: the channel the planner chooses for the client.",
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
    channel: str | None,
    output: Path | None,
    at: str | None,
) -> None:
    """Show the reminder a client would get, as `kindly send` would send it.

    When the plan at --at holds reminders for CLIENT, shows exactly those. When it holds
    none, shows the reminder as the plan would send it on the day it becomes due, with
    that day's dates and history, and says so. Otherwise (--stage, --invoice, or no such
    day), shows the reminder the client would get next, for the invoices whose next stage
    comes first, made by the planner with the rules that hold it back at that moment (not
    due yet, too soon, outside the send window, under the minimum, paused) set aside; a
    line first says which of them held it back. --tone, --language, --formality and
    --channel change only how it is written and sent.
    """
    from dataclasses import replace

    from plugin.app.cli.output import shown
    from plugin.core.planning import preview_reminders

    kindly = app.workspace()
    now = _parse_at(at, company_zone(kindly))
    snapshot = kindly.snapshot()
    customer = snapshot.customers_by_id.get(client)
    if customer is None:
        _fail(
            f"no client {client!r} in {kindly.source.location}",
            "`kindly clients` lists the clients and their ids.",
        )
    unknown = [i for i in invoice_ids if i not in snapshot.invoices_by_id]
    if unknown:
        _fail(f"no invoice {unknown[0]!r} in {kindly.source.location}", None)

    plan = kindly.plan(now)
    reminders = _planned_for(plan, client, invoice_ids, stage)
    if not reminders and not invoice_ids and stage is None:
        # Nothing goes now: show the reminder as it would go on the day it is due, with
        # that day's dates and history (the review, M7: a preview at 2 December wrote
        # "was due on 12 December" of a reminder that goes on the 14th).
        later, looked = now, plan
        ahead: tuple[PlannedReminder, ...] = ()
        # A day may still hold it back (a send window, a weekend): look a few days on.
        for _ in range(7):
            next_day = _next_day(looked, client, later, company_zone(kindly))
            if next_day is None:
                break
            later, looked = next_day, kindly.plan(next_day)
            ahead = _planned_for(looked, client, invoice_ids, stage)
            if ahead:
                break
        if ahead:
            held = dict.fromkeys(skip.reason for skip in plan.skips if skip.customer_id == client)
            app.console().print(
                f"[dim]Nothing goes to {shown(customer.name)} at "
                f"{now:%Y-%m-%d %H:%M %Z} ({shown('; '.join(held))}); this is the reminder "
                f"as it would go on {later:%Y-%m-%d}.[/]",
                highlight=False,
                soft_wrap=True,
            )
            reminders, now = ahead, later
    if not reminders:
        try:
            reminders = preview_reminders(
                snapshot,
                kindly.settings,
                kindly.history(),
                now=now,
                source=kindly.source_id,
                client_id=client,
                invoice_ids=invoice_ids,
                stage=stage,
                channels_available=kindly.channels_available,
            )
        except ValueError as exc:
            _fail(str(exc), f"`kindly plan {client} --explain` shows what the planner decides.")
    # A stage the policy sends as a task has no wording for the client in any language.
    tasks = [reminder for reminder in reminders if reminder.is_task]
    reminders = tuple(reminder for reminder in reminders if not reminder.is_task)
    if not reminders:
        _fail(
            f"the {tasks[0].stage} stage hands {customer.name} to a person: a task, not a message",
            "Preview another stage with --stage.",
        )
    if channel is not None:
        reminders = tuple(
            reminder
            if reminder.channel == channel
            else reminder.on_channel(one_of(CHANNELS, channel, "channel"))
            for reminder in reminders
        )
    if output is not None and len(reminders) > 1:
        choices = "; ".join(
            ", ".join(invoice.id for invoice in reminder.invoices) for reminder in reminders
        )
        _fail(
            f"{customer.name} has {len(reminders)} reminders and --output writes one",
            f"Pick one with --invoice ID ({choices}).",
        )
    console = app.console()
    for task in tasks:
        numbers = ", ".join(invoice.number for invoice in task.invoices)
        console.print(
            f"[dim]Also planned: the {task.stage} stage of {shown(numbers)}, "
            "a task for a person.[/]",
            highlight=False,
            soft_wrap=True,
        )
    for number, reminder in enumerate(reminders):
        if len(reminders) > 1:
            if number:
                console.print()
            numbers = ", ".join(invoice.number for invoice in reminder.invoices)
            console.print(
                f"[bold]{shown(numbers)}[/] ({reminder.stage}, {reminder.channel})",
                highlight=False,
            )
        worded = replace(
            reminder,
            tone=one_of(TONES, tone, "tone") if tone else reminder.tone,
            language=one_of(LANGUAGES, language, "language") if language else reminder.language,
            formality=(
                one_of(FORMALITIES, formality, "formality") if formality else reminder.formality
            ),
        )
        _show(kindly, console, worded, now, output)


def _next_day(plan: Plan, client: str, now: datetime, zone: str | None) -> datetime | None:
    """The first later day the plan says one of the client's invoices becomes due, at the
    same hour on the company's clock; None if it names none."""
    days = [
        skip.next_date
        for skip in plan.skips
        if skip.customer_id == client and skip.next_date and skip.next_date > now.date()
    ]
    if not days:
        return None
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(zone)) if zone else now
    return datetime.combine(min(days), local.timetz()).astimezone(now.tzinfo)


def _planned_for(
    plan: Plan, client: str, invoice_ids: tuple[str, ...], stage: str | None
) -> tuple[PlannedReminder, ...]:
    """What `kindly send` would send the client now, if that is what was asked for."""
    reminders = [r for r in plan.reminders if r.customer.id == client]
    if invoice_ids:
        wanted = set(invoice_ids)
        reminders = [r for r in reminders if wanted & {invoice.id for invoice in r.invoices}]
        # A preview of invoices the plan leaves out is not the plan's reminder.
        if not wanted <= {invoice.id for r in reminders for invoice in r.invoices}:
            return ()
    if stage is not None and any(r.stage != stage for r in reminders):
        return ()
    return tuple(reminders)


def _show(
    kindly: Kindly, console: Console, reminder: PlannedReminder, now: datetime, output: Path | None
) -> None:
    from plugin.app.cli.output import printable, shown
    from plugin.compose.email_message import build_email, message_bytes
    from plugin.compose.render import letter_pdf, render_letter, render_reminder, render_sms
    from plugin.core.decisions import REASONS
    from plugin.core.vocabulary import EmailVia
    from plugin.deliver.channels import invoice_attachments

    held = [reason.text for reason in reminder.why if reason.code in REASONS]
    if held:
        console.print(
            f"[dim]Not sent at {now:%Y-%m-%d %H:%M %Z}: {shown('; '.join(held))}. "
            "This is the reminder the client would get next.[/]",
            highlight=False,
            soft_wrap=True,
        )
    settings = kindly.settings
    if reminder.channel == "sms":
        sms = render_sms(
            reminder,
            settings,
            limit=settings.sms_limit,
            transliterate=settings.sms_transliterate,
            on=now.date(),
        )
        console.print(printable(sms.text), markup=False, highlight=False)
        fits = "fits" if sms.count.fits(settings.sms_limit) else "does NOT fit"
        console.print(
            f"[dim]{sms.count.encoding}, {sms.count.units} units, "
            f"{sms.count.segments} segment(s); {fits} the limit of "
            f"{settings.sms_limit}" + (", transliterated" if sms.transliterated else "") + "[/]"
        )
        return
    if reminder.channel == "letter":
        if output is None:
            _fail("a letter is a printable page", "Give --output letter.html, then print it.")
        page = render_letter(reminder, settings, now.date())
        if output.suffix.lower() == ".pdf":
            _write_private(output, letter_pdf(page).content)
        else:
            _write_private(output, page.encode("utf-8"))
        console.print(f"Wrote {output}")
        return
    if settings.email_via == EmailVia.PLATFORM:
        console.print(
            f"[dim]{shown(kindly.source.title)} e-mails this reminder itself, with its own "
            "template; this is the e-mail Kindly would write instead.[/]",
            highlight=False,
            soft_wrap=True,
        )
    # As the e-mail channel composes it: with the online links and the invoice PDFs.
    reminder = kindly.with_online_links(reminder)
    pdfs = invoice_attachments(kindly.source, reminder)
    rendered = render_reminder(reminder, settings, pdfs, on=now.date())
    if output is None:
        console.print(f"[bold]Subject:[/] {shown(rendered.subject)}", highlight=False)
        console.print(printable(rendered.text), markup=False, highlight=False)
        return
    if output.suffix == ".html":
        assert rendered.html is not None
        _write_private(output, rendered.html.encode("utf-8"))
    else:
        _write_private(output, message_bytes(build_email(reminder, rendered, settings, now)))
    console.print(f"Wrote {output}")


def _write_private(path: Path, content: bytes) -> None:
    """Write a preview file readable by its owner only, as the outbox's e-mails are: it
    holds a client's name, address and what they owe. A file already there keeps its mode."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
    except OSError as exc:
        _fail(
            f"cannot write {path}: {exc.strerror}",
            "Give --output a file in a folder you can write.",
        )
