"""`kindly charges`: statutory interest, compensation and costs on one invoice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import click

from plugin.app.cli.base import (
    AppContext,
    CalendarDay,
    _fail,
    cli,
)


def _payment(value: str) -> tuple[str, str]:
    day, _, amount = value.partition(":")
    if not amount:
        raise click.BadParameter(
            f"{value!r} is not DATE:AMOUNT, e.g. 2026-03-01:500", param_hint="--payment"
        )
    return day, amount


@cli.command()
@click.option(
    "--jurisdiction",
    required=True,
    metavar="CODE",
    help="EU, NL, BE, DE, FR, NO, GB, IE, VN or OTHER.",
)
@click.option(
    "--debtor", type=click.Choice(("business", "consumer")), default="business", show_default=True
)
@click.option("--principal", required=True, metavar="AMOUNT", help="What the invoice asks.")
@click.option("--currency", required=True, metavar="CODE")
@click.option("--due", required=True, type=CalendarDay(), metavar="DATE")
@click.option(
    "--on",
    "on",
    type=CalendarDay(),
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
    type=CalendarDay(),
    metavar="DATE",
    help="NL consumers: when the 14-day letter was posted.",
)
@click.option(
    "--demand",
    type=CalendarDay(),
    metavar="DATE",
    help="FR and BE consumers: the date of the formal notice (mise en demeure, "
    "ingebrekestelling), from which interest runs.",
)
@click.option(
    "--allocation",
    type=click.Choice(("principal", "costs_first")),
    default="principal",
    show_default=True,
    help="How payments are applied: to the principal, or to the compensation and costs, "
    "then the interest, then the principal (6:44 BW, § 367 BGB, 1343-1 C. civ.).",
)
@click.option("--contract-rate", metavar="PERCENT", help="An agreed yearly rate.")
@click.option("--rate-agreed", is_flag=True, help="VN: interest was agreed without a rate.")
@click.option(
    "--vat-on-costs",
    metavar="PERCENT",
    help="NL: VAT on collection costs, only if you cannot reclaim it and say so.",
)
@click.option(
    "--reminder-fees",
    type=click.IntRange(0, 100),
    default=0,
    help="NO: reminder fees charged so far.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the breakdown as JSON.")
@click.pass_obj
def charges(
    app: AppContext,
    jurisdiction: str,
    debtor: str,
    principal: str,
    currency: str,
    due: date,
    on: date | None,
    payments: tuple[str, ...],
    letter_posted: date | None,
    demand: date | None,
    contract_rate: str | None,
    rate_agreed: bool,
    vat_on_costs: str | None,
    reminder_fees: int,
    allocation: str,
    as_json: bool,
) -> None:
    """Statutory interest, compensation and costs on one invoice, with every rate used."""
    from decimal import Decimal, InvalidOperation

    from plugin.core.charges import calculate
    from plugin.core.money import Money

    def number(value: str | None, hint: str, most: int) -> Decimal | None:
        """A rate or a share in percent: a number from 0 to ``most``."""
        if value is None:
            return None
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise click.BadParameter(f"{value!r} is not a number", param_hint=hint) from None
        if not parsed.is_finite() or not 0 <= parsed <= most:
            raise click.BadParameter(
                f"{value!r} is not a percentage from 0 to {most}", param_hint=hint
            )
        return parsed

    def money(value: str, hint: str) -> Money:
        """An amount above zero and below 10^15 units, exact in the currency."""
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise click.BadParameter(f"{value!r} is not an amount", param_hint=hint) from None
        if not parsed.is_finite() or not 0 < parsed < 10**15:
            raise click.BadParameter(
                f"{value!r} is not an amount above 0 and below 10^15", param_hint=hint
            )
        try:
            return Money.exact(parsed, currency.upper())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=hint) from None

    from plugin.core.money import minor_unit_digits

    try:
        minor_unit_digits(currency.upper())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--currency") from None
    try:
        amount = money(principal, "--principal")
        paid = []
        for item in payments:
            day, value = _payment(item)
            try:
                paid_on = CalendarDay().convert(day, None, None)
            except click.BadParameter as exc:
                raise click.BadParameter(exc.message, param_hint="--payment") from None
            paid.append((paid_on, money(value, "--payment")))
        result = calculate(
            jurisdiction,
            debtor,
            amount,
            due=due,
            on=on or datetime.now(UTC).date(),
            payments=paid,
            letter_posted=letter_posted,
            demand=demand,
            contract_rate=number(contract_rate, "--contract-rate", 1000),
            rate_agreed=rate_agreed,
            vat_on_costs=number(vat_on_costs, "--vat-on-costs", 100),
            reminder_fees=reminder_fees,
            allocation=allocation,
        )
        # Summed here, inside the check: a fixed sum in another currency than the
        # principal (GB's pounds on a euro invoice) cannot be added.
        result.total  # noqa: B018
    except (ValueError, ArithmeticError) as exc:
        _fail(str(exc), "See `kindly charges --help`.")
    if as_json:
        from plugin.core.codec import to_jsonable

        data = to_jsonable(result)
        data.update(interest=to_jsonable(result.interest), total=to_jsonable(result.total))
        for line, raw in zip(result.interest_lines, data["interest_lines"], strict=True):
            # Each period with its rate, the law it runs under and how days are counted.
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
            line.basis
            + ("" if line.verified else " (not verified)")
            + (f"; {line.law}" if line.law else "")
            + f"; {line.day_count}",
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
    for label, settled in (
        ("Paid to charges", result.paid_to_costs),
        ("Paid to interest", result.paid_to_interest),
    ):
        if settled is not None and settled.is_positive:
            table.add_row(label, "", "", "", "", "", f"-{settled}", "payments applied first")
    table.add_row("Total", "", "", "", "", "", str(result.total), "")
    console.print(table)
    for note in result.notes:
        console.print(f"Note: {note}")
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {warning}")
