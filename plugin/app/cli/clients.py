"""`kindly clients` and `kindly clients set`: each client's settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from plugin.app.cli.base import (
    AT_OPTION,
    AppContext,
    _fail,
    _parse_at,
    cli,
)
from plugin.core.vocabulary import FORMALITIES, LANGUAGES, TONES

if TYPE_CHECKING:
    from plugin.run import Kindly


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

    from plugin.app.cli.output import shown

    table = Table(title=f"Clients in {shown(kindly.source.location)}")
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
            shown(f"{row['name']} ({row['id']})"),
            row["language"],
            row["tone"],
            ", ".join(row["channels"]),
            shown(row["policy"]),
            shown(state),
            shown(f"{row['behaviour']}: {row['behaviour_detail']}"),
        )
    app.console().print(table)


def client_rows(kindly: Kindly) -> list[dict[str, Any]]:
    from plugin.core.behaviour import classify, payment_behaviour
    from plugin.core.planning import settings_for

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
                # The effective minimum per currency: below it, no reminder.
                "minimum": {code: str(m.amount) for code, m in sorted(resolved.minimum.items())},
                "behaviour": str(classify(paid, policy.behaviour)),
                "behaviour_detail": paid.describe() if paid else "no paid invoices yet",
                "sources": dict(resolved.sources),
            }
        )
    return rows


@clients.command("set")
@click.argument("client")
@click.option("--tone", type=click.Choice(TONES))
@click.option("--language", type=click.Choice(LANGUAGES))
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
    type=click.Choice(FORMALITIES),
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
    from plugin.app.client_settings import ClientSettingError, change_client

    kindly = app.workspace()
    snapshot = kindly.snapshot()
    if client not in snapshot.customers_by_id:
        _fail(
            f"no client {client!r} in {kindly.source.location}",
            "`kindly clients` lists the clients and their ids.",
        )
    values = {name: value for name, value in options.items() if value is not None}
    if not values and not reset and not resume:
        _fail("nothing to change", "Give an option such as --tone firm; see --help.")
    try:
        change_client(kindly, client, values, datetime.now(UTC), reset=reset, resume=resume)
    except ClientSettingError as exc:
        raise click.BadParameter(str(exc), param_hint="--" + exc.field.replace("_", "-")) from None
    kindly = app.workspace()
    (row,) = [r for r in client_rows(kindly) if r["id"] == client]
    from plugin.app.cli.output import shown

    console = app.console()
    console.print(
        shown(
            f"{row['name']} ({client}): tone {row['tone']}, language {row['language']}, "
            f"channels {', '.join(row['channels'])}, policy {row['policy']}"
            + (", excluded" if row["excluded"] else "")
            + (f", paused until {row['pause_until']}" if row["pause_until"] else "")
        )
    )
    if resume and row["pause_until"]:
        console.print(
            f"[yellow]Still paused[/] by the {row['sources']['pause_until']} setting "
            "(kindly.toml); change it there."
        )


@clients.command("promise")
@click.argument("client")
@click.argument("invoice")
@click.option("--until", metavar="DATE", help="The day the client promised to pay by.")
@click.option("--amount", metavar="AMOUNT", help="What they promised, if not all that is due.")
@click.option("--note", metavar="TEXT", help="What was said, shown in plans.")
@click.option("--forget", is_flag=True, help="Forget a promise recorded with this command.")
@AT_OPTION
@click.pass_obj
def clients_promise(
    app: AppContext,
    client: str,
    invoice: str,
    until: str | None,
    amount: str | None,
    note: str | None,
    forget: bool,
    at: str | None,
) -> None:
    """Record a promise to pay: no reminder for INVOICE until then; a broken promise
    brings the firmer reminder. INVOICE is its number or id."""
    from plugin.app.client_settings import ClientSettingError, promise_for

    kindly = app.workspace()
    now = _parse_at(at)
    if forget:
        matching = [
            p
            for p in kindly.kept_promises()
            if invoice in (p.invoice_id, _number(kindly, p.invoice_id))
        ]
        if not matching:
            _fail(f"no promise recorded in Kindly for {invoice!r}", "Nothing was changed.")
        kindly.forget_promise(matching[0].invoice_id)
        click.echo(f"Forgot the promise for {invoice}.")
        return
    if until is None:
        raise click.UsageError("--until DATE is needed (or --forget)")
    try:
        promise = promise_for(kindly, client, invoice, until, amount, note, now)
    except ClientSettingError as exc:
        raise click.BadParameter(str(exc), param_hint=exc.field) from None
    kindly.keep_promise(promise, now)
    what = f" ({promise.amount})" if promise.amount else ""
    click.echo(f"Recorded: {invoice}{what} promised by {promise.promised_date.isoformat()}.")


def _number(kindly: Kindly, invoice_id: str) -> str:
    found = kindly.snapshot().invoices_by_id.get(invoice_id)
    return str(found.number) if found else invoice_id
