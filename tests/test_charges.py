"""Statutory charges: worked examples per jurisdiction, each with its source.

Expected amounts are written out as the statute's arithmetic (rate x days / 365 on the
principal), independently of how plugin.core.charges splits and merges periods.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TypedDict

import pytest
from click.testing import CliRunner

from plugin.app.cli import cli
from plugin.core.charges import (
    RateTable,
    calculate,
    nl_collection_costs,
    nl_consumer_letter_deadline,
    uk_fixed_sum,
)
from plugin.core.money import Money

D = Decimal


def cents(value: Decimal) -> Decimal:
    return value.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def simple(principal: str, *periods: tuple[str, int]) -> Decimal:
    """Sum of rounded period interests: (rate %, days) each at actual/365."""
    return sum((cents(D(principal) * D(rate) / 100 * days / 365) for rate, days in periods), D(0))


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


# -- EU (Directive 2011/7/EU, legal-rules.md §1): ECB MRO on 1 Jan / 1 Jul + 8 ----------


@pytest.mark.parametrize(
    ("due", "on", "expected"),
    [
        # 2025 H1: MRO 3.15 -> 11.15 %; 2025-03-01 .. 2025-03-31 = 31 days
        ("2025-02-28", "2025-03-31", simple("1000", ("11.15", 31))),
        # across 1 Jul 2025: 11.15 % to 30 Jun (30 days), 10.15 % from 1 Jul (31 days)
        ("2025-05-31", "2025-07-31", simple("1000", ("11.15", 30), ("10.15", 31))),
        # a whole year 2024 (a leap year: 366 days, actual/365): 12.50 % H1, 12.25 % H2
        ("2023-12-31", "2024-12-31", simple("1000", ("12.50", 182), ("12.25", 184))),
        # the due day itself earns nothing
        ("2025-03-31", "2025-03-31", D(0)),
        # one day
        ("2026-03-01", "2026-03-02", simple("1000", ("10.15", 1))),
    ],
)
def test_eu_directive_interest(due: str, on: str, expected: Decimal) -> None:
    result = calculate(
        "EU", "business", eur("1000"), due=date.fromisoformat(due), on=date.fromisoformat(on)
    )
    assert result.interest.amount == expected
    assert result.compensation == eur("40")  # art. 6: EUR 40 per invoice


def test_eu_directive_is_for_businesses_only() -> None:
    result = calculate("EU", "consumer", eur("1000"), due=date(2025, 1, 1), on=date(2025, 6, 1))
    assert result.interest_lines == () and result.compensation is None
    assert any("businesses only" in note for note in result.notes)


# -- Netherlands (6:119a / 6:119 BW, WIK; legal-rules.md §2) ----------------------------


def test_nl_business_rate_change_inside_the_period() -> None:
    # handelsrente 10.15 % (2026 H1), 10.40 % (2026 H2, unverified)
    result = calculate("NL", "business", eur("2750"), due=date(2026, 1, 15), on=date(2026, 11, 22))
    assert [line.days for line in result.interest_lines] == [166, 145]
    assert result.interest.amount == simple("2750", ("10.15", 166), ("10.40", 145))
    assert result.costs == eur("400.00") and result.costs_chargeable  # 375 + 25
    assert any("not verified" in warning for warning in result.warnings)


def test_nl_compounds_after_each_full_year() -> None:
    # 6:119a lid 3: after a year the interest is added to the principal.
    result = calculate("NL", "business", eur("10000"), due=date(2024, 3, 31), on=date(2025, 6, 30))
    first_year = simple("10000", ("12.50", 91), ("12.25", 184), ("11.15", 90))
    assert result.interest_lines[3].start == date(2025, 4, 1)
    assert result.interest_lines[3].base.amount == D("10000") + first_year
    second = simple(str(D("10000") + first_year), ("11.15", 91))
    assert result.interest.amount == first_year + second


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("100", "40.00"),  # 15 % = 15, raised to the EUR 40 floor
        ("266.67", "40.00"),  # 15 % = 40.0005 -> 40.00
        ("2500", "375.00"),
        ("5000", "625.00"),  # 375 + 250
        ("10000", "875.00"),  # + 250
        ("200000", "2775.00"),  # + 1,900
        ("1000000", "6775.00"),  # + 4,000: exactly the cap
        ("5000000", "6775.00"),  # capped
    ],
)
def test_nl_wik_scale_floor_and_cap(principal: str, expected: str) -> None:
    # Besluit vergoeding buitengerechtelijke incassokosten (Stb. 2012, 141) art. 2
    assert nl_collection_costs(eur(principal)) == eur(expected)


def test_nl_wik_vat_only_when_stated() -> None:
    assert nl_collection_costs(eur("2500"), D("21")) == eur("453.75")


def test_nl_consumer_costs_only_after_the_fourteen_day_letter() -> None:
    # HR 25-11-2016 (ECLI:NL:HR:2016:2704): 14 days from the day after receipt; receipt
    # on the 2nd day after posting, not counting Sundays, Mondays or holidays.
    posted = date(2026, 3, 6)  # Friday -> Saturday 7 (1), Tuesday 10 (2): received
    assert nl_consumer_letter_deadline(posted) == date(2026, 3, 24)
    before = calculate(
        "NL",
        "consumer",
        eur("1500"),
        due=date(2026, 2, 1),
        on=date(2026, 3, 24),
        letter_posted=posted,
    )
    after = calculate(
        "NL",
        "consumer",
        eur("1500"),
        due=date(2026, 2, 1),
        on=date(2026, 3, 25),
        letter_posted=posted,
    )
    assert not before.costs_chargeable and after.costs_chargeable
    assert after.costs == eur("225.00")
    assert after.total - before.total > eur("225.00")
    # consumers pay the (lower) wettelijke rente: 4 % in 2026 H1
    assert after.interest.amount == simple("1500", ("4", 52))


def test_nl_partial_payment_part_way() -> None:
    # EUR 5,000 due 31 Jan 2026, EUR 3,000 paid on 1 Apr: interest on 5,000 for Feb-Mar
    # (59 days), on 2,000 from 1 Apr to 30 Apr (30 days); costs on what is still owed.
    result = calculate(
        "NL",
        "business",
        eur("5000"),
        due=date(2026, 1, 31),
        on=date(2026, 4, 30),
        payments=[(date(2026, 4, 1), eur("3000"))],
    )
    assert result.outstanding == eur("2000")
    assert result.interest.amount == simple("5000", ("10.15", 59)) + simple("2000", ("10.15", 30))
    assert result.costs == eur("300.00")


# -- Germany (§§ 247, 286, 288 BGB; legal-rules.md §3) ---------------------------------


@pytest.mark.parametrize(
    ("debtor", "due", "on", "periods"),
    [
        ("business", "2026-02-27", "2026-03-31", [("10.27", 32)]),  # 1.27 + 9
        ("consumer", "2026-02-27", "2026-03-31", [("6.27", 32)]),  # 1.27 + 5
        ("business", "2026-06-15", "2026-07-15", [("10.27", 15), ("10.52", 15)]),
        ("consumer", "2026-06-15", "2026-07-15", [("6.27", 15), ("6.52", 15)]),
        ("business", "2024-02-28", "2024-03-01", [("12.62", 2)]),  # 3.62 + 9; leap day
    ],
)
def test_de_interest(debtor: str, due: str, on: str, periods: list[tuple[str, int]]) -> None:
    result = calculate(
        "DE", debtor, eur("5000"), due=date.fromisoformat(due), on=date.fromisoformat(on)
    )
    assert result.interest.amount == simple("5000", *periods)
    assert (result.compensation == eur("40")) == (debtor == "business")  # §288(5)


# -- France (C. com. L441-10, D441-5; C. civ. 1231-6; legal-rules.md §5) ---------------


@pytest.mark.parametrize(
    ("due", "on", "periods"),
    [
        ("2026-01-31", "2026-03-02", [("12.15", 30)]),  # MRO 2.15 + 10
        ("2025-06-30", "2025-07-10", [("12.15", 10)]),  # 2025 H2: 2.15 + 10
        ("2025-06-20", "2025-07-10", [("13.15", 10), ("12.15", 10)]),  # 3.15 -> 2.15
        ("2024-12-31", "2025-01-01", [("13.15", 1)]),
        ("2026-06-30", "2026-07-30", [("12.40", 30)]),  # unverified 2.40
    ],
)
def test_fr_business_penalties(due: str, on: str, periods: list[tuple[str, int]]) -> None:
    result = calculate(
        "FR", "business", eur("8000"), due=date.fromisoformat(due), on=date.fromisoformat(on)
    )
    assert result.interest.amount == simple("8000", *periods)
    assert result.compensation == eur("40")


def test_fr_consumer_owes_the_taux_legal_from_the_demand_only() -> None:
    without = calculate("FR", "consumer", eur("8000"), due=date(2026, 1, 31), on=date(2026, 3, 31))
    assert without.interest_lines == () and without.compensation is None
    demanded = calculate(
        "FR",
        "consumer",
        eur("8000"),
        due=date(2026, 1, 31),
        on=date(2026, 3, 31),
        demand=date(2026, 3, 2),
    )
    # taux légal "autres cas" 2.62 % (creditor is a business), 2 Mar .. 31 Mar = 30 days
    assert demanded.interest.amount == simple("8000", ("2.62", 30))


# -- Belgium (Law of 2 August 2002 art. 5; legal-rules.md §3) ---------------------------


@pytest.mark.parametrize(
    ("due", "on", "periods"),
    [
        ("2025-01-31", "2025-03-02", [("11.5", 30)]),  # 3.15 + 8 = 11.15 -> 11.5
        ("2026-01-31", "2026-03-02", [("10.5", 30)]),  # 2.15 + 8 = 10.15 -> 10.5
        ("2024-07-31", "2024-08-30", [("12.5", 30)]),  # 4.25 + 8 = 12.25 -> 12.5
        ("2024-01-31", "2024-03-01", [("12.5", 30)]),  # 4.50 + 8 = 12.5 stays
        ("2026-06-30", "2026-07-30", [("10.5", 30)]),  # 2.40 + 8 = 10.40 -> 10.5
    ],
)
def test_be_business_rate_rounded_up(due: str, on: str, periods: list[tuple[str, int]]) -> None:
    result = calculate(
        "BE", "business", eur("3000"), due=date.fromisoformat(due), on=date.fromisoformat(on)
    )
    assert result.interest.amount == simple("3000", *periods)
    assert result.compensation == eur("40")


def test_be_consumer_legal_rate() -> None:
    result = calculate("BE", "consumer", eur("3000"), due=date(2026, 1, 31), on=date(2026, 3, 2))
    assert result.interest.amount == simple("3000", ("4.5", 30))
    assert result.compensation is None


# -- Norway (forsinkelsesrenteloven §§ 2, 3, 3a; inkassoforskriften; legal-rules.md §4) --


@pytest.mark.parametrize(
    ("debtor", "due", "on", "periods", "compensation"),
    [
        ("business", "2025-01-31", "2025-03-02", [("12.50", 30)], "470"),
        ("business", "2025-06-30", "2025-07-30", [("12.25", 30)], "470"),
        ("consumer", "2026-01-31", "2026-03-02", [("12.00", 30)], None),
        ("business", "2025-12-01", "2026-01-30", [("12.25", 30), ("12.00", 30)], "460"),
        ("business", "2026-07-01", "2026-07-31", [("12.25", 30)], "430"),
    ],
)
def test_no_interest_and_compensation(
    debtor: str, due: str, on: str, periods: list[tuple[str, int]], compensation: str | None
) -> None:
    result = calculate(
        "NO",
        debtor,
        Money.of("20000", "NOK"),
        due=date.fromisoformat(due),
        on=date.fromisoformat(on),
    )
    assert result.interest.amount == simple("20000", *periods)
    expected = Money.of(compensation, "NOK") if compensation else None
    assert result.compensation == expected


def test_no_compensation_is_offset_against_reminder_fees() -> None:
    # 2026 sats NOK 750: a 1/20 fee is 37.50, rounded to 38; two fees 76; §3a NOK 460.
    result = calculate(
        "NO",
        "business",
        Money.of("20000", "NOK"),
        due=date(2026, 1, 31),
        on=date(2026, 3, 31),
        reminder_fees=3,
    )
    assert result.costs == Money.of("76", "NOK")
    assert result.compensation == Money.of("384", "NOK")  # the larger of the two applies
    assert any("at most two" in note for note in result.notes)


# -- United Kingdom (Late Payment of Commercial Debts (Interest) Act 1998; §6) ---------


@pytest.mark.parametrize(
    ("debt", "fixed"),
    [("999.99", "40"), ("1000", "70"), ("9999.99", "70"), ("10000", "100"), ("50", "40")],
)
def test_uk_fixed_sum_bands(debt: str, fixed: str) -> None:
    # s.5A: less than £1,000: £40; £1,000 to £9,999.99: £70; £10,000 or more: £100
    assert uk_fixed_sum(Money.of(debt, "GBP")) == Money.of(fixed, "GBP")


def test_uk_rate_is_fixed_for_the_whole_debt() -> None:
    # Relevant day 31 Dec 2025 is in H2 2025: Bank Rate on 30 Jun 2025, 4.25 + 8 = 12.25 %,
    # kept after the cut to 3.75 % (s.4(2)). 1 Jan .. 30 Jun 2026 = 181 days.
    result = calculate(
        "GB", "business", Money.of("12000", "GBP"), due=date(2025, 12, 31), on=date(2026, 6, 30)
    )
    assert {line.rate for line in result.interest_lines} == {D("12.25")}
    assert result.interest.amount == simple("12000", ("12.25", 181))
    assert result.compensation == Money.of("100", "GBP")
    consumer = calculate(
        "GB", "consumer", Money.of("12000", "GBP"), due=date(2025, 12, 31), on=date(2026, 6, 30)
    )
    assert consumer.interest_lines == () and consumer.compensation is None


# -- Vietnam (Civil Code art. 357, 468; legal-rules.md §7) ----------------------------


class Agreement(TypedDict, total=False):
    """What the contract says about interest: calculate()'s keyword arguments."""

    contract_rate: Decimal | None
    rate_agreed: bool


@pytest.mark.parametrize(
    ("kwargs", "rate"),
    [
        (Agreement(contract_rate=D("12")), "12"),
        (Agreement(contract_rate=D("36")), "20"),  # capped at 20 % a year
        (Agreement(rate_agreed=True), "10"),  # agreed but not stated: half the cap
        (Agreement(contract_rate=D("20")), "20"),
        (Agreement(contract_rate=D("0.5")), "0.5"),
    ],
)
def test_vn_agreed_rates(kwargs: Agreement, rate: str) -> None:
    result = calculate(
        "VN",
        "business",
        Money.of("100000000", "VND"),
        due=date(2026, 1, 31),
        on=date(2026, 3, 2),
        **kwargs,
    )
    expected = (D("100000000") * D(rate) / 100 * 30 / 365).quantize(D(1), ROUND_HALF_UP)
    assert result.interest.amount == expected
    assert result.compensation is None


def test_vn_without_agreement_charges_nothing_and_says_why() -> None:
    result = calculate(
        "VN", "business", Money.of("100000000", "VND"), due=date(2026, 1, 31), on=date(2026, 3, 2)
    )
    assert result.interest_lines == ()
    assert any("Commercial Law art. 306" in note for note in result.notes)


# -- rate tables, warnings and the command ----------------------------------------------


def test_every_rate_table_has_sources_and_ordered_dates() -> None:
    for name in (
        "ecb_mro",
        "nl_handelsrente",
        "nl_wettelijke_rente",
        "de_basiszinssatz",
        "fr_taux_legal_other",
        "fr_taux_legal_private_creditor",
        "be_legal_rate",
        "no_forsinkelsesrente",
        "no_par3a_compensation",
        "no_inkassosats",
        "uk_bank_rate",
    ):
        table = RateTable.load(name)
        assert table.rows, name
        assert all(row.source for row in table.rows), name
        starts = [row.start for row in table.rows]
        assert starts == sorted(starts) and len(set(starts)) == len(starts), name


def test_a_period_without_a_published_rate_warns() -> None:
    result = calculate("NL", "business", eur("1000"), due=date(2026, 12, 1), on=date(2027, 2, 1))
    assert any(
        "no nl_handelsrente rate is published after 2026-12-31" in w for w in result.warnings
    )
    with pytest.raises(ValueError, match="table starts on"):
        calculate("NL", "business", eur("1000"), due=date(2010, 1, 1), on=date(2010, 2, 1))


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown jurisdiction"):
        calculate("XX", "business", eur("1"), due=date(2026, 1, 1), on=date(2026, 2, 1))
    with pytest.raises(ValueError, match="before the due date"):
        calculate("NL", "business", eur("1"), due=date(2026, 2, 1), on=date(2026, 1, 1))
    with pytest.raises(ValueError, match="more than the principal"):
        calculate(
            "NL",
            "business",
            eur("1"),
            due=date(2026, 1, 1),
            on=date(2026, 2, 1),
            payments=[(date(2026, 1, 5), eur("2"))],
        )


def test_kindly_charges_prints_every_rate_and_period() -> None:
    runner = CliRunner()
    args = [
        "charges",
        "--jurisdiction",
        "NL",
        "--debtor",
        "business",
        "--principal",
        "2750",
        "--currency",
        "EUR",
        "--due",
        "2026-01-15",
        "--on",
        "2026-11-22",
    ]
    table = runner.invoke(cli, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    for text in (
        "2026-01-16",
        "2026-06-30",
        "10.15%",
        "10.40%",
        "240.56 EUR",
        "400.00 EUR",
        "3390.56 EUR",
        "not verified",
    ):
        assert text in table.output, text
    data = json.loads(runner.invoke(cli, [*args, "--json"]).output)
    assert data["interest"] == {"amount": "240.56", "currency": "EUR"}
    assert [line["days"] for line in data["interest_lines"]] == [166, 145]
    assert data["costs_chargeable"] is True
    bad = runner.invoke(
        cli,
        [
            "charges",
            "--jurisdiction",
            "ZZ",
            "--principal",
            "1",
            "--currency",
            "EUR",
            "--due",
            "2026-01-01",
        ],
    )
    assert bad.exit_code == 1 and "unknown jurisdiction" in bad.output


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--principal", "1e400"], "--principal"),
        (["--principal", "9" * 30], "--principal"),
        (["--contract-rate", "1e999999"], "--contract-rate"),
        (["--contract-rate", "-50"], "--contract-rate"),  # D17: interest below nothing
        (["--vat-on-costs", "-100"], "--vat-on-costs"),
        (["--reminder-fees", "-5"], "--reminder-fees"),
        (["--payment", "2026-02-01:1e400"], "--payment"),
        # D15d: the ends of the calendar.
        (["--due", "9999-12-31", "--on", "9999-12-31"], "'--due': '9999-12-31' is outside"),
        (["--on", "9999-12-31"], "'--on': '9999-12-31' is outside the years"),
        (["--payment", "0001-01-01:5"], "--payment: '0001-01-01' is outside"),
        (["--payment", "2026-02-30:5"], "--payment: '2026-02-30' is not a day"),
        (["--letter-posted", "9999-12-31"], "'--letter-posted': '9999-12-31' is outside"),
        # A typo is not rounded away.
        (["--principal", "2750.001"], "2750.001 has more decimals than EUR has (2)"),
        (["--currency", "EUX"], "--currency"),
    ],
)
def test_charges_refuse_numbers_it_cannot_compute(arguments: list[str], words: str) -> None:
    """D16, D17: a usage error naming the option, never an unexpected crash."""
    from plugin.app.cli import cli

    base = ["charges", "--jurisdiction", "NL", "--principal", "2750", "--currency", "EUR"]
    base += ["--due", "2026-01-15", "--on", "2026-06-01"]
    result = CliRunner().invoke(cli, [*base, *arguments])
    assert result.exit_code == 2, result.output
    assert words in result.output and "unexpected" not in result.output


def test_a_fixed_sum_in_another_currency_is_a_clear_error() -> None:
    """D16: GB's pounds on a euro invoice cannot be added; it says so."""
    from plugin.app.cli import cli

    arguments = ["charges", "--jurisdiction", "GB", "--principal", "2750", "--currency", "EUR"]
    arguments += ["--due", "2026-01-15", "--on", "2026-06-01"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1, result.output
    assert "unexpected" not in result.output and "EUR" in result.output
