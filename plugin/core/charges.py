"""Statutory interest, fixed compensation and collection costs, per jurisdiction (R21).

After the due date a creditor may charge interest and a fixed compensation; Kindly works them
out only where the creditor opts in, and shows every rate and period it used. The rates are
dated rows with their source in ``plugin/core/data/rates/*.csv`` (see legal-rules.md); a row whose
figure is not verified says so, and a calculation that runs past the last published row warns.

    >>> from datetime import date
    >>> result = calculate("NL", "business", Money.of("2750", "EUR"),
    ...                    due=date(2026, 1, 15), on=date(2026, 11, 22))
    >>> str(result.interest), str(result.costs)
    ('240.56 EUR', '400.00 EUR')

Conventions: simple interest by day, actual/365 (the usual convention; the statutes do not
fix it, see legal-rules.md), from the day after the due date up to and including the day of
the calculation, split wherever the rate changes. The interest is rounded once, to the
currency's minor unit: each line is what it adds to the rounded running total, so the lines
add up to the total however the period is cut. A payment still bears interest on the day
it is made ("tot en met de dag waarop de schuldenaar de geldsom heeft voldaan", art.
6:119a(1) BW) and reduces the principal from the next day; with ``allocation="costs_first"``
it settles the fixed compensation and costs, then the interest, before the principal (art.
6:44 BW, § 367 BGB, art. 1343-1 C. civ.). The fixed compensation is owed only once interest
runs, from the day after the due date.

Everything here is pure: no clock, no disk beyond reading the packaged rate tables once.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources

from plugin.core.money import Money

__all__ = [
    "ALLOCATIONS",
    "DAY_COUNT",
    "INTEREST_LAW",
    "JURISDICTIONS",
    "Charges",
    "Debtor",
    "InterestLine",
    "RateRow",
    "RateTable",
    "calculate",
    "charges_jurisdiction",
    "ie_compensation",
    "nl_collection_costs",
    "nl_consumer_letter_applies",
    "nl_consumer_letter_deadline",
    "nl_consumer_letter_deadline_in",
    "uk_fixed_sum",
]

DAYS_IN_YEAR = Decimal(365)
HUNDRED = Decimal(100)


class Debtor(enum.StrEnum):
    BUSINESS = "business"
    CONSUMER = "consumer"


#: What each jurisdiction code means; "EU" is any euro state without rules of its own here.
JURISDICTIONS = {
    "EU": "EU Late Payment Directive 2011/7/EU: ECB rate + 8, EUR 40 (businesses only)",
    "NL": "Netherlands: handelsrente / wettelijke rente, compounded yearly; WIK costs",
    "BE": "Belgium: ECB rate + 8 rounded up to a half point; EUR 40; legal rate for consumers",
    "DE": "Germany: Basiszinssatz + 9 (businesses) or + 5 (consumers); EUR 40",
    "FR": "France: ECB rate + 10 and EUR 40 between businesses; taux légal for consumers",
    "NO": "Norway: forsinkelsesrente for all; the §3a compensation from businesses",
    "GB": "United Kingdom: Bank Rate + 8, fixed per debt; £40/£70/£100 (businesses only)",
    "IE": "Ireland: ECB rate + 8, fixed per debt; EUR 40/70/100 (businesses only)",
    "VN": "Vietnam: the agreed rate, at most 20% a year; 10% when agreed but not stated",
    "OTHER": "Elsewhere: a contractual rate, or none",
}


#: The statute each jurisdiction's interest runs under, by the debtor's kind, as the law
#: cites itself: shown beside each period's rate and written in the messages (review M6).
INTEREST_LAW: dict[tuple[str, str], str] = {
    ("NL", "business"): "art. 6:119a BW",
    ("NL", "consumer"): "art. 6:119 BW",
    ("DE", "business"): "§ 288 Abs. 2 BGB",
    ("DE", "consumer"): "§ 288 Abs. 1 BGB",
    ("FR", "business"): "art. L441-10 du Code de commerce",
    ("FR", "consumer"): "art. 1231-6 du Code civil",
    ("BE", "business"): "wet van 2 augustus 2002 / loi du 2 août 2002",
    ("BE", "consumer"): "wet van 5 mei 1865 / loi du 5 mai 1865",
    ("NO", "business"): "forsinkelsesrenteloven",
    ("NO", "consumer"): "forsinkelsesrenteloven",
    ("GB", "business"): "Late Payment of Commercial Debts (Interest) Act 1998",
    ("IE", "business"): "European Communities (Late Payment in Commercial Transactions) "
    "Regulations 2012",
    ("EU", "business"): "Directive 2011/7/EU",
}

#: How days are counted in every jurisdiction here (the statutes do not fix it).
DAY_COUNT = "actual/365"

#: How a partial payment is applied: to the principal (the default), or to the fixed
#: compensation and costs first, then the interest, then the principal.
ALLOCATIONS = {
    "principal": "payments reduce the principal (the default)",
    "costs_first": "payments settle costs, then interest, then the principal "
    "(art. 6:44 BW, § 367 BGB, art. 1343-1 C. civ.)",
}


@dataclass(frozen=True, slots=True)
class RateRow:
    start: date
    value: Decimal
    verified: bool
    source: str
    #: When the figure was last checked against its source (None: never re-read).
    checked: date | None = None


@dataclass(frozen=True)
class RateTable:
    """A dated series: each row holds from its start until the next row starts."""

    name: str
    rows: tuple[RateRow, ...]
    months_per_row: int = 6  # how long the last row is known to hold

    @classmethod
    @cache
    def load(cls, name: str, months_per_row: int = 6) -> RateTable:
        text = resources.files("plugin.core").joinpath(f"data/rates/{name}.csv").read_text("utf-8")
        rows = []
        for number, record in enumerate(csv.DictReader(text.splitlines()), start=2):
            try:
                rows.append(
                    RateRow(
                        start=date.fromisoformat(record["from"]),
                        value=Decimal(record["rate"]),
                        verified=record["verified"] == "yes",
                        source=record["source"],
                        checked=(
                            date.fromisoformat(record["checked"]) if record.get("checked") else None
                        ),
                    )
                )
            except (KeyError, ValueError, ArithmeticError) as exc:
                raise ValueError(f"rate table {name}.csv, line {number}: {exc}") from None
        rows.sort(key=lambda row: row.start)
        return cls(name, tuple(rows), months_per_row)

    @property
    def checked(self) -> date | None:
        """The last day any of its figures was checked against its source."""
        return max((row.checked for row in self.rows if row.checked), default=None)

    @property
    def known_until(self) -> date:
        """The last day the newest row is known to hold."""
        last = self.rows[-1].start
        month = last.month - 1 + self.months_per_row
        return date(last.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)

    def row_at(self, day: date) -> RateRow | None:
        current = None
        for row in self.rows:
            if row.start > day:
                break
            current = row
        return current

    def starts_between(self, first: date, last: date) -> list[date]:
        return [row.start for row in self.rows if first < row.start <= last]


def _half_year_start(day: date) -> date:
    return date(day.year, 1 if day.month <= 6 else 7, 1)


def _half_years_between(first: date, last: date) -> list[date]:
    starts = []
    day = _half_year_start(first)
    while day <= last:
        if day > first:
            starts.append(day)
        day = date(day.year + (day.month == 7), 1 if day.month == 7 else 7, 1)
    return starts


@dataclass(frozen=True, slots=True)
class InterestLine:
    start: date
    end: date  # inclusive
    base: Money
    rate: Decimal  # percent a year
    amount: Money
    basis: str  # how the rate was made, and from which row
    verified: bool
    #: The statute the interest runs under ("art. 6:119a BW"); empty for an agreed rate.
    law: str = ""
    day_count: str = DAY_COUNT

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class Charges:
    jurisdiction: str
    debtor: Debtor
    principal: Money
    outstanding: Money
    due: date
    on: date
    interest_lines: tuple[InterestLine, ...]
    compensation: Money | None
    compensation_basis: str | None
    costs: Money | None
    costs_basis: str | None
    costs_chargeable: bool
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: How payments were applied (a key of ALLOCATIONS), and what they settled of the
    #: compensation and costs, and of the interest, before the principal.
    allocation: str = "principal"
    paid_to_costs: Money | None = None
    paid_to_interest: Money | None = None

    @property
    def interest(self) -> Money:
        """The interest that ran, before any payment settled part of it."""
        return sum((line.amount for line in self.interest_lines), Money.zero(self.currency))

    @property
    def currency(self) -> str:
        return self.principal.currency

    @property
    def total(self) -> Money:
        """What the debtor owes with every charge that may be charged now, less what the
        payments settled of the charges."""
        total = self.outstanding + self.interest
        if self.compensation is not None:
            total = total + self.compensation
        if self.costs is not None and self.costs_chargeable:
            total = total + self.costs
        for settled in (self.paid_to_costs, self.paid_to_interest):
            if settled is not None:
                total = total - settled
        return total


@dataclass
class _Rates:
    """The rate a jurisdiction charges on a day, and the warnings that came up."""

    warnings: list[str] = field(default_factory=list)
    warned: set[str] = field(default_factory=set)

    def lookup(self, table: RateTable, day: date) -> RateRow:
        row = table.row_at(day)
        if row is None:
            raise ValueError(
                f"no {table.name} rate is known for {day.isoformat()}; the table starts on "
                f"{table.rows[0].start.isoformat()}"
            )
        if day > table.known_until and table.name not in self.warned:
            self.warned.add(table.name)
            self.warnings.append(
                f"no {table.name} rate is published after {table.known_until.isoformat()}; "
                f"the {row.value}% from {row.start.isoformat()} was used for later days"
            )
        if not row.verified and f"{table.name}@{row.start}" not in self.warned:
            self.warned.add(f"{table.name}@{row.start}")
            self.warnings.append(
                f"the {table.name} rate of {row.value}% from {row.start.isoformat()} is not "
                f"verified: {row.source}"
            )
        return row


def _ceil_half(value: Decimal) -> Decimal:
    return (value * 2).to_integral_value(rounding=ROUND_CEILING) / 2


def uk_fixed_sum(debt: Money) -> Money:
    """Late Payment of Commercial Debts (Interest) Act 1998 s.5A: £40, £70 or £100."""
    return _banded(debt, "GBP")


def ie_compensation(debt: Money) -> Money:
    """S.I. 580/2012 reg. 6: EUR 40 below EUR 1,000, EUR 70 below EUR 10,000, else 100."""
    return _banded(debt, "EUR")


def _banded(debt: Money, currency: str) -> Money:
    if debt.amount < 1000:
        return Money.of(40, currency)
    if debt.amount < 10000:
        return Money.of(70, currency)
    return Money.of(100, currency)


def nl_collection_costs(principal: Money, vat_percent: Decimal | None = None) -> Money:
    """The WIK scale (Besluit vergoeding buitengerechtelijke incassokosten, art. 2).

    15% of the first 2,500, 10% of the next 2,500, 5% of the next 5,000, 1% of the next
    190,000, 0.5% of the rest; at least EUR 40, at most EUR 6,775. VAT is added only when the
    creditor cannot reclaim it and says so (art. 2(3)).
    """
    h = principal.amount
    tiers = (
        (Decimal("0.15"), Decimal(0), Decimal(2500)),
        (Decimal("0.10"), Decimal(2500), Decimal(5000)),
        (Decimal("0.05"), Decimal(5000), Decimal(10000)),
        (Decimal("0.01"), Decimal(10000), Decimal(200000)),
    )
    fee = sum(
        (share * max(Decimal(0), min(h, upper) - lower) for share, lower, upper in tiers),
        Decimal(0),
    )
    fee += Decimal("0.005") * max(Decimal(0), h - Decimal(200000))
    fee = min(max(fee, Decimal(40)), Decimal(6775))
    if vat_percent:
        fee = fee * (1 + vat_percent / HUNDRED)
    return Money(fee, principal.currency)


def nl_consumer_letter_deadline(posted: date, holidays: Iterable[date] = ()) -> date:
    """The last day to pay after a Dutch 14-dagenbrief posted on ``posted``.

    Courts take the letter as received on the second day after posting, not counting
    Sundays, Mondays or public holidays; the 14 days run from the day after receipt
    (HR 25-11-2016, ECLI:NL:HR:2016:2704). Costs may be charged from the next day.
    """
    off = set(holidays)
    received, counted = posted, 0
    while counted < 2:
        received += timedelta(days=1)
        if received.weekday() not in (6, 0) and received not in off:
            counted += 1
    return received + timedelta(days=14)


#: Euro states without rules of their own here: the Late Payment Directive applies.
_EURO_AREA = frozenset(
    {"AT", "CY", "EE", "ES", "FI", "GR", "HR", "IT", "LT", "LU", "LV", "MT", "PT", "SI", "SK"}
)


#: How long a reminder fee counts towards the two allowed (INKF §1-2: it resets after six
#: months).
NO_FEE_MEMORY = timedelta(days=183)
#: The least time between a fee reminder and the next fee, and the deadline the fee
#: reminder must give (INKF §1-2).
NO_FEE_DAYS = 14


#: Since this day a reminder fee and an inkassovarsel fee are each 1/20 of the inkassosats.
NO_FRACTIONS_SINCE = date(2020, 10, 1)


def no_reminder_fee(on: date, rates: _Rates | None = None) -> tuple[Money, str]:
    """The Norwegian purregebyr on a sending day: 1/20 of the inkassosats, in whole kroner.

    Returns the fee and how it was reached. 1/20 of NOK 750 is 37.50; the figure creditors
    use is NOK 38 (legal-rules.md §4, marked unverified), so halves round up.
    """
    rates = rates if rates is not None else _Rates()
    sats = rates.lookup(RateTable.load("no_inkassosats", 12), on)
    # 1/20 for a purring and an inkassovarsel alike since 1 October 2020 (INKF §1-2 as
    # amended then: legal-rules.md §4, "fractions since 1 Oct 2020"); 1/10 before (NOK 70).
    share = 20 if on >= NO_FRACTIONS_SINCE else 10
    fee = (sats.value / share).to_integral_value(rounding=ROUND_HALF_UP)
    return Money.of(fee, "NOK"), f"1/{share} of the inkassosats NOK {sats.value} (INKF §1-2)"


def no_fee_allowed(
    due_dates: Iterable[date], today: date, earlier_fees: Sequence[date]
) -> tuple[bool, str]:
    """Whether a reminder sent ``today`` may carry a Norwegian reminder fee, and why.

    ``earlier_fees`` are the days earlier fee reminders for the same invoices went out.
    Pure: the planner calls it.
    """
    latest_due = max(due_dates)
    if today < latest_due + timedelta(days=NO_FEE_DAYS):
        return False, (
            "no reminder fee yet: one may be charged from 14 days after the due date, "
            f"{(latest_due + timedelta(days=NO_FEE_DAYS)).isoformat()} (INKF §1-2)"
        )
    recent = sorted(day for day in earlier_fees if day > today - NO_FEE_MEMORY)
    if len(recent) >= 2:
        return False, "no reminder fee: two were charged in the last six months (INKF §1-2)"
    if recent and today <= recent[-1] + timedelta(days=NO_FEE_DAYS):
        return False, (
            f"no reminder fee: the deadline of the fee reminder of {recent[-1].isoformat()} "
            "has not passed (INKF §1-2)"
        )
    ordinal = "a second" if recent else "a"
    return True, f"{ordinal} reminder fee of 1/20 of the inkassosats (INKF §1-2)"


def charges_jurisdiction(configured: str | None, country: str) -> str:
    """The law the company's charges follow: as configured, else its country's."""
    if configured:
        return configured
    if country in ("NL", "BE", "DE", "FR", "NO", "GB", "IE", "VN"):
        return country
    return "EU" if country in _EURO_AREA else "OTHER"


def nl_consumer_letter_applies(jurisdiction: str, debtor: Debtor) -> bool:
    """A Dutch consumer owes collection costs only after a 14-day letter (6:96 lid 6 BW)."""
    return jurisdiction == "NL" and debtor is Debtor.CONSUMER


def nl_consumer_letter_deadline_in(sent: date) -> date:
    """The deadline of a 14-day letter sent on ``sent``, with Dutch public holidays."""
    from plugin.core.businessdays import business_calendar

    calendar = business_calendar("NL")
    window = [sent + timedelta(days=n) for n in range(1, 15)]
    return nl_consumer_letter_deadline(
        sent, [day for day in window if calendar.holiday_name(day) is not None]
    )


def calculate(
    jurisdiction: str,
    debtor: Debtor | str,
    principal: Money,
    *,
    due: date,
    on: date,
    payments: Sequence[tuple[date, Money]] = (),
    letter_posted: date | None = None,
    demand: date | None = None,
    contract_rate: Decimal | None = None,
    rate_agreed: bool = False,
    vat_on_costs: Decimal | None = None,
    reminder_fees: int = 0,
    allocation: str = "principal",
) -> Charges:
    """The charges on one invoice of ``principal`` due on ``due``, as they stand on ``on``.

    Args:
        payments: partial payments, each bearing interest on its day and reducing the
            principal from the next.
        letter_posted: NL consumers: when the 14-day letter was posted.
        demand: FR and BE consumers: the formal notice (mise en demeure, ingebrekestelling)
            from which interest runs.
        contract_rate: the agreed rate (VN, or where no statute applies).
        rate_agreed: VN: interest was agreed but no rate stated (10% applies).
        vat_on_costs: NL: VAT to add to the collection costs, only when stated.
        reminder_fees: NO: how many 1/20 reminder fees (purregebyr) were charged.
        allocation: how payments are applied, a key of ALLOCATIONS.
    """
    code = jurisdiction.upper()
    if code not in JURISDICTIONS:
        raise ValueError(
            f"unknown jurisdiction {jurisdiction!r}; known: {', '.join(JURISDICTIONS)}"
        )
    if allocation not in ALLOCATIONS:
        raise ValueError(f"unknown allocation {allocation!r}; known: {', '.join(ALLOCATIONS)}")
    kind = Debtor(debtor)
    if on < due:
        raise ValueError("the calculation day is before the due date")
    currency = principal.currency
    paid = sorted(payments, key=lambda item: item[0])
    for day, amount in paid:
        if amount.currency != currency:
            raise ValueError(
                f"a payment on {day.isoformat()} is in {amount.currency}, not {currency}"
            )
    rates = _Rates()
    notes: list[str] = []

    start = due + timedelta(days=1)
    if code in ("FR", "BE") and kind is Debtor.CONSUMER:
        # A consumer owes interest at the legal rate only from a formal notice: a mise en
        # demeure (C. civ. 1231-6), an ingebrekestelling (art. 1153 oud BW).
        word = "mise en demeure" if code == "FR" else "formal notice (ingebrekestelling)"
        if demand is None:
            notes.append(f"no interest: a consumer owes it only from a {word} (--demand)")
            start = on + timedelta(days=1)
        else:
            start = max(start, demand)
    rate_for = _rate_function(code, kind, due, rates, contract_rate, rate_agreed, notes)
    law = INTEREST_LAW.get((code, kind.value), "")

    # Owed once interest runs, from the day after the due date (issue 19: it was claimed
    # on the due date itself).
    compensation, compensation_basis = _compensation(code, kind, principal, due, rates)
    if compensation is not None and on <= due:
        notes.append(
            f"the fixed compensation ({compensation}) is owed from "
            f"{(due + timedelta(days=1)).isoformat()}, once interest runs"
        )
        compensation, compensation_basis = None, None
    letter_deadline = (
        nl_consumer_letter_deadline(letter_posted) if letter_posted is not None else None
    )

    def costs_owed(day: date, outstanding: Money) -> Money | None:
        """The collection costs or fees on ``outstanding``, and whether owed on ``day``."""
        if code == "NL" and currency == "EUR":
            owed = kind is Debtor.BUSINESS or (
                letter_deadline is not None and day > letter_deadline
            )
            return nl_collection_costs(outstanding, vat_on_costs) if owed else None
        if code == "NO" and reminder_fees:
            fee, _ = no_reminder_fee(day, rates)
            return Money.of(fee.amount * min(reminder_fees, 2), "NOK")
        return None

    # Payments: to the principal, or first to what is owed besides it (the allocation).
    to_principal: list[tuple[date, Money]] = []
    to_interest: list[tuple[date, Money]] = []
    paid_to_costs, paid_to_interest = Money.zero(currency), Money.zero(currency)
    for day, amount in paid:
        if day > on:
            continue
        if allocation == "costs_first" and day > due:
            fixed = (compensation or Money.zero(currency)) + (
                costs_owed(day, principal) or Money.zero(currency)
            )
            settled = min(amount, max(fixed - paid_to_costs, Money.zero(currency)))
            paid_to_costs, amount = paid_to_costs + settled, amount - settled
            ran = _interest_lines(
                code, principal, to_principal, start, day, rate_for, rates, to_interest
            )
            accrued = sum((line.amount for line in ran), Money.zero(currency))
            settled = min(amount, max(accrued - paid_to_interest, Money.zero(currency)))
            paid_to_interest, amount = paid_to_interest + settled, amount - settled
            if settled.is_positive:
                to_interest.append((day, settled))
        if amount.is_positive:
            to_principal.append((day, amount))
    outstanding = principal - sum((amount for _, amount in to_principal), Money.zero(currency))
    if outstanding.amount < 0:
        raise ValueError("the payments are more than the principal")
    lines = [
        replace(line, law=law if not line.basis.startswith(CONTRACT_BASES) else "")
        for line in _interest_lines(
            code, principal, to_principal, start, on, rate_for, rates, to_interest
        )
    ]

    costs, costs_basis, chargeable = None, None, False
    if code == "NL" and currency != "EUR":
        # The WIK scale is in euros (EUR 40 to 6,775): Kindly converts no currencies
        # (the language review: "Buitengerechtelijke incassokosten: ₫ 6.775").
        notes.append(
            f"no collection costs: the WIK scale is in euros and the claim is in {currency}"
        )
    elif code == "NL":
        # With payments settling costs first the costs stay those on the whole claim.
        on_what = principal if allocation == "costs_first" else outstanding
        costs = nl_collection_costs(on_what, vat_on_costs)
        costs_basis = "WIK scale on the principal (Stb. 2012, 141 art. 2)"
        if vat_on_costs:
            costs_basis += f", plus {vat_on_costs}% VAT as stated"
        if kind is Debtor.BUSINESS:
            chargeable = True
        elif letter_deadline is None:
            notes.append("collection costs only after a 14-day letter (6:96 lid 6 BW): none sent")
        else:
            assert letter_posted is not None
            chargeable = on > letter_deadline
            notes.append(
                f"14-day letter posted {letter_posted.isoformat()}: payment was due by "
                f"{letter_deadline.isoformat()}; costs "
                + (
                    "apply"
                    if chargeable
                    else f"apply from {(letter_deadline + timedelta(days=1)).isoformat()}"
                )
            )
    if code == "NO" and reminder_fees:
        fee, fee_basis = no_reminder_fee(on, rates)
        costs = Money.of(fee.amount * min(reminder_fees, 2), "NOK")
        costs_basis = f"{min(reminder_fees, 2)} reminder fee(s) of {fee_basis}"
        chargeable = True
        if reminder_fees > 2:
            notes.append("at most two reminder fees may be charged (inkassoforskriften §1-2)")
        if compensation is not None and costs is not None:
            # §3a is offset against the fees: the larger of the two applies (INKF §1-5).
            compensation = max(compensation - costs, Money.zero("NOK"))
            compensation_basis = f"{compensation_basis}, less the reminder fees"
    if allocation != "principal" and paid:
        notes.append(f"payments applied: {ALLOCATIONS[allocation]}")
    return Charges(
        jurisdiction=code,
        debtor=kind,
        principal=principal,
        outstanding=outstanding,
        due=due,
        on=on,
        interest_lines=tuple(lines),
        compensation=compensation,
        compensation_basis=compensation_basis,
        costs=costs,
        costs_basis=costs_basis,
        costs_chargeable=chargeable,
        warnings=tuple(rates.warnings),
        notes=tuple(notes),
        allocation=allocation,
        paid_to_costs=paid_to_costs if allocation == "costs_first" else None,
        paid_to_interest=paid_to_interest if allocation == "costs_first" else None,
    )


#: How the explanation of a rate agreed in the contract begins (see _rate_function): such
#: interest is contractual, and a message must never call it statutory.
CONTRACT_BASES = ("agreed rate ", "10%: interest agreed")


def _rate_function(
    code: str,
    kind: Debtor,
    due: date,
    rates: _Rates,
    contract_rate: Decimal | None,
    rate_agreed: bool,
    notes: list[str],
) -> Callable[[date], tuple[Decimal, str, bool]] | None:
    """How the yearly rate on a day is made, as (percent, explanation, verified)."""
    business = kind is Debtor.BUSINESS

    def table(
        name: str,
        plus: Decimal = Decimal(0),
        label: str = "",
        months: int = 6,
        rounding: Callable[[Decimal], Decimal] | None = None,
    ) -> Callable[[date], tuple[Decimal, str, bool]]:
        def rate(day: date) -> tuple[Decimal, str, bool]:
            row = rates.lookup(RateTable.load(name, months), day)
            value = row.value + plus
            if rounding is not None:
                value = rounding(value)
            extra = f" + {plus}" if plus else ""
            how = f"{label or name} {row.value}%{extra} (from {row.start.isoformat()})"
            if rounding is not None:
                how += ", rounded up to a half point"
            return value, how, row.verified

        return rate

    if code == "EU":
        if business:
            return table("ecb_mro", Decimal(8), "ECB rate")
        notes.append("no statutory interest: the Late Payment Directive covers businesses only")
        return None
    if code == "NL":
        return (
            table("nl_handelsrente", label="handelsrente")
            if business
            else table("nl_wettelijke_rente", label="wettelijke rente")
        )
    if code == "DE":
        return table("de_basiszinssatz", Decimal(9 if business else 5), "Basiszinssatz")
    if code == "FR":
        if business:
            return table("ecb_mro", Decimal(10), "ECB rate")
        return table("fr_taux_legal_other", label="taux légal")
    if code == "BE":
        if business:
            return table("ecb_mro", Decimal(8), "ECB rate", rounding=_ceil_half)
        return table("be_legal_rate", label="legal rate", months=12)
    if code == "NO":
        return table("no_forsinkelsesrente", label="forsinkelsesrente")
    if code == "GB":
        if not business:
            notes.append("no statutory interest: the 1998 Act covers business debts only")
            return None
        # One rate for the whole debt, plus 8 (s.4(2)): Bank Rate on the reference day, 31
        # December or 30 June, whichever comes before the day interest starts to run (SI
        # 2002/1675 art. 4). The table's rows start on the half-year of that day, so a debt
        # due on 30 June (interest from 1 July) takes 30 June's rate (issue 19: it took the
        # 31 December before).
        runs_from = due + timedelta(days=1)
        fixed, how, verified = table("uk_bank_rate", Decimal(8), "Bank Rate")(runs_from)
        return lambda _day: (fixed, how + ", fixed for the whole debt", verified)
    if code == "IE":
        if not business:
            notes.append(
                "no statutory interest: the 2012 Regulations cover commercial transactions only"
            )
            return None
        # One rate for the whole debt: the ECB rate in force on the first day of the
        # half-year of the relevant payment date, plus 8 (S.I. 580/2012 reg. 2 and 5;
        # DETE: "only one rate will apply to a late payment").
        fixed, how, verified = table("ecb_mro", Decimal(8), "ECB rate")(due)
        return lambda _day: (fixed, how + ", fixed for the whole debt", verified)
    if code == "VN":
        cap = Decimal(20)
        if contract_rate is not None:
            if contract_rate > cap:
                notes.append(
                    f"the agreed {contract_rate}% is capped at 20% (Civil Code art. 468(1))"
                )
            value = min(contract_rate, cap)
            return lambda _day: (value, f"agreed rate {value}%", True)
        if rate_agreed:
            return lambda _day: (
                Decimal(10),
                "10%: interest agreed without a rate (Civil Code art. 468(2))",
                True,
            )
        notes.append(
            "no interest: none was agreed; for a commercial debt give the average market "
            "rate as --contract-rate (Commercial Law art. 306)"
        )
        return None
    if contract_rate is not None:
        value = contract_rate
        return lambda _day: (value, f"agreed rate {value}%", True)
    notes.append("no statutory interest here; give an agreed rate with --contract-rate")
    return None


def _interest_lines(
    code: str,
    principal: Money,
    payments: Sequence[tuple[date, Money]],
    start: date,
    on: date,
    rate_for: Callable[[date], tuple[Decimal, str, bool]] | None,
    rates: _Rates,
    interest_settled: Sequence[tuple[date, Money]] = (),
) -> list[InterestLine]:
    """The interest from ``start`` to ``on`` in lines; ``interest_settled`` is interest a
    payment settled on a day, which is then not added to the principal at a year's end."""
    if rate_for is None or start > on:
        return []
    currency = principal.currency
    anniversaries = set()
    if code == "NL":
        # Interest is added to the principal after each full year (6:119 lid 2, 6:119a lid 3).
        year = 1
        while (anniversary := _add_years(start, year)) <= on:
            anniversaries.add(anniversary)
            year += 1

    # A payment bears interest on its own day and lowers the principal from the next
    # (6:119a(1) BW: "tot en met de dag waarop ... voldaan"; issue 19: it stopped a day early).
    def lowered_from(day: date) -> date:
        return day + timedelta(days=1)

    boundaries = {start}
    boundaries.update(_half_years_between(start, on))
    boundaries.update(lowered_from(day) for day, _ in payments if start < lowered_from(day) <= on)
    boundaries.update(anniversaries)
    ordered = sorted(boundaries)
    # Periods of one rate on one amount: (first, last, base, rate, how, verified).
    periods: list[tuple[date, date, Money, Decimal, str, bool]] = []
    # Rounded once: each line is what it adds to the rounded running total, so that the
    # lines add up to the total however the period is cut (issue 19).
    exact = Decimal(0)
    running = Money.zero(currency)
    capitalised = Money.zero(currency)
    at_last_anniversary = settled_before = Money.zero(currency)
    lines: list[InterestLine] = []
    for index, first in enumerate(ordered):
        last = ordered[index + 1] - timedelta(days=1) if index + 1 < len(ordered) else on
        if first in anniversaries:
            settled = sum(
                (amount for day, amount in interest_settled if day < first),
                Money.zero(currency),
            )
            # What ran and was not paid since the last year's end is added to the principal.
            capitalised = capitalised + (running - at_last_anniversary)
            capitalised = capitalised - (settled - settled_before)
            at_last_anniversary, settled_before = running, settled
        paid = sum(
            (amount for day, amount in payments if lowered_from(day) <= first),
            Money.zero(currency),
        )
        base = principal - paid + capitalised
        if not base.is_positive:
            continue
        rate, how, verified = rate_for(first)
        days = Decimal((last - first).days + 1)
        part = base.amount * rate / HUNDRED * days / DAYS_IN_YEAR
        previous = periods[-1] if periods else None
        if (
            previous is not None
            and previous[2:5] == (base, rate, how)
            and previous[1] + timedelta(days=1) == first
            and first not in anniversaries
        ):
            # The same rate on the same amount: one line, not two.
            exact += part
            total = Money(exact, currency)
            merged = lines[-1]
            lines[-1] = replace(merged, end=last, amount=merged.amount + (total - running))
            periods[-1] = (previous[0], last, base, rate, how, verified)
            running = total
            continue
        exact += part
        total = Money(exact, currency)
        lines.append(InterestLine(first, last, base, rate, total - running, how, verified))
        periods.append((first, last, base, rate, how, verified))
        running = total
    return lines


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def _compensation(
    code: str, kind: Debtor, principal: Money, due: date, rates: _Rates
) -> tuple[Money | None, str | None]:
    if kind is not Debtor.BUSINESS:
        return None, None
    if code in ("EU", "DE", "FR", "BE"):
        if principal.currency != "EUR":
            return None, None
        basis = {
            "EU": "EUR 40 fixed compensation (Directive 2011/7/EU art. 6)",
            "DE": "EUR 40 Pauschale (§288(5) BGB)",
            "FR": "EUR 40 indemnité forfaitaire pour frais de recouvrement (C. com. D441-5)",
            "BE": "EUR 40 fixed compensation (Law of 2 August 2002, art. 6)",
        }[code]
        return Money.of(40, "EUR"), basis
    if code == "GB":
        return uk_fixed_sum(principal), "fixed sum by the size of the debt (1998 Act s.5A)"
    if code == "IE":
        if principal.currency != "EUR":
            return None, None
        return ie_compensation(
            principal
        ), "compensation by the size of the debt (S.I. 580/2012 reg. 6)"
    if code == "NO":
        row = rates.lookup(RateTable.load("no_par3a_compensation"), due)
        return Money(
            row.value, "NOK"
        ), f"forsinkelsesrenteloven §3a, NOK {row.value} at the due date"
    return None, None
