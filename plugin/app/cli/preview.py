"""`kindly preview`: the reminder a client would get, as it would be sent."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from plugin.app.cli.base import (
    AT_OPTION,
    AppContext,
    _fail,
    _parse_at,
    cli,
)
from plugin.core.model import LANGUAGES
from plugin.core.policy import TONES

if TYPE_CHECKING:
    pass


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
@click.option("--tone", type=click.Choice(TONES))
@click.option("--language", type=click.Choice(LANGUAGES))
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

    from plugin.compose.email_message import build_email, message_bytes
    from plugin.compose.render import render_reminder, render_sms
    from plugin.core.decisions import PlannedReminder, reminder_key
    from plugin.core.planning import settings_for

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
        from plugin.compose.render import render_letter

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
