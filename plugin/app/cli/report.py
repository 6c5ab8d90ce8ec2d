"""`kindly report ageing` and `kindly report effect`: the receivables by age, and what
the reminders did. The web app draws the same figures."""

from __future__ import annotations

import json
from typing import Any

import click

from plugin.app.cli.base import AT_OPTION, AppContext, _parse_at, cli, company_zone

AGE_HEADINGS = {
    "not_due": "not yet due",
    "1_30": "1-30 days",
    "31_60": "31-60 days",
    "61_90": "61-90 days",
    "over_90": "over 90 days",
}


@cli.group()
def report() -> None:
    """Figures: open receivables by age, and what the reminders did."""


def _synced(app: AppContext) -> Any:
    from plugin.app.cli.base import _fail

    kindly = app.workspace()
    if kindly.store.get_bookmark(kindly.source_id, "snapshot") is None:
        _fail(f"{kindly.source.location} is not synced yet", "Run `kindly sync` first.")
    return kindly


@report.command("ageing")
@click.option("--json", "as_json", is_flag=True, help="As JSON, amounts as strings.")
@AT_OPTION
@click.pass_obj
def ageing_command(app: AppContext, as_json: bool, at: str | None) -> None:
    """Open receivables by how long they are overdue, per currency, on a day."""
    from rich.table import Table

    from plugin.app.reports import ageing_figures
    from plugin.compose.formatting import format_money
    from plugin.compose.render import note_locale
    from plugin.core.money import Money

    kindly = _synced(app)
    on = _parse_at(at, company_zone(kindly)).date()
    figures = ageing_figures(kindly, on)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    locale = note_locale(kindly.settings)
    table = Table(title=f"Open receivables by age on {on.isoformat()}")
    table.add_column("currency")
    for name in figures["buckets"]:
        table.add_column(AGE_HEADINGS[name], justify="right")
    table.add_column("total", justify="right")
    for currency, row in figures["currencies"].items():
        cells = [row["buckets"][name] for name in figures["buckets"]] + [row["total"]]
        table.add_row(currency, *(format_money(Money.of(c, currency), locale) for c in cells))
    if not figures["currencies"]:
        click.echo("Nothing is open.")
        return
    app.console().print(table)


@report.command("effect")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.pass_obj
def effect_command(app: AppContext, as_json: bool) -> None:
    """Reminders sent per week and stage; how many days clients took to pay after each."""
    from rich.table import Table

    from plugin.app.reports import effect_figures

    kindly = _synced(app)
    figures = effect_figures(kindly)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    console = app.console()
    weeks = Table(title="Reminders sent per week")
    stages = sorted({stage for week in figures["weeks"] for stage in week["stages"]})
    weeks.add_column("week of")
    for stage in stages:
        weeks.add_column(stage, justify="right")
    for week in figures["weeks"]:
        weeks.add_row(week["week"], *(str(week["stages"].get(s, 0)) for s in stages))
    console.print(weeks if figures["weeks"] else "No reminder has gone out yet.")
    paid = Table(title="Days to pay after each stage (the last reminder before payment)")
    for heading in ("stage", "paid after it", "still open", "median days", "average days"):
        paid.add_column(heading, justify="left" if heading == "stage" else "right")
    for row in figures["days_to_pay"]:
        paid.add_row(
            row["stage"],
            str(row["paid"]),
            str(row["open"]),
            row["median_days"] or "-",
            row["average_days"] or "-",
        )
    console.print(paid)
