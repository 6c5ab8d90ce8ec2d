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
    charges_jurisdiction,
    ie_compensation,
    nl_collection_costs,
    nl_consumer_letter_deadline,
    no_reminder_fee,
    uk_fixed_sum,
)
from plugin.core.money import Money

D = Decimal


def cents(value: Decimal) -> Decimal:
    return value.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def simple(principal: str, *periods: tuple[str, int]) -> Decimal:
    """The interest of the periods, (rate %, days) each at actual/365, rounded once."""
    return cents(sum((D(principal) * D(rate) / 100 * days / 365 for rate, days in periods), D(0)))


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
    # Art. 6: EUR 40 per invoice, owed once interest runs (art. 6(1) with art. 3(3)): not
    # on the due date itself (issue 19).
    assert result.compensation == (eur("40") if on != due else None)


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
    # The year's interest, rounded once, is added: 1,204.11.
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
    # EUR 5,000 due 31 Jan 2026, EUR 3,000 paid on 1 Apr: interest on 5,000 from 1 Feb up
    # to and including the day of payment (60 days: art. 6:119a(1) BW, "tot en met de dag
    # waarop de schuldenaar de geldsom heeft voldaan"), on 2,000 from 2 Apr to 30 Apr (29
    # days); costs on what is still owed.
    result = calculate(
        "NL",
        "business",
        eur("5000"),
        due=date(2026, 1, 31),
        on=date(2026, 4, 30),
        payments=[(date(2026, 4, 1), eur("3000"))],
    )
    assert result.outstanding == eur("2000")
    exact = D(5000) * D("10.15") / 100 * 60 / 365 + D(2000) * D("10.15") / 100 * 29 / 365
    assert result.interest.amount == cents(exact) == D("99.55")
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


def test_be_consumer_legal_rate_from_the_formal_notice() -> None:
    # A consumer owes interest at the legal rate (4.5 % in 2026) from the formal notice
    # (ingebrekestelling, art. 1153 oud BW), not from the due date (issue 19): notice of
    # 10 Feb, on 2 Mar: 21 days.
    due, on = date(2026, 1, 31), date(2026, 3, 2)
    result = calculate("BE", "consumer", eur("3000"), due=due, on=on, demand=date(2026, 2, 10))
    assert result.interest.amount == simple("3000", ("4.5", 21))
    assert result.compensation is None
    without = calculate("BE", "consumer", eur("3000"), due=due, on=on)
    assert without.interest_lines == ()
    assert any("formal notice" in note for note in without.notes)


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
    # Due 30 Sep 2025: interest runs from 1 Oct 2025, so the reference day is 30 Jun 2025
    # (SI 2002/1675 art. 4): Bank Rate 4.25 + 8 = 12.25 %, kept after the cut to 3.75 %
    # (s.4(2)). 1 Oct 2025 .. 30 Jun 2026 = 273 days.
    result = calculate(
        "GB", "business", Money.of("12000", "GBP"), due=date(2025, 9, 30), on=date(2026, 6, 30)
    )
    assert {line.rate for line in result.interest_lines} == {D("12.25")}
    assert result.interest.amount == simple("12000", ("12.25", 273))
    assert result.compensation == Money.of("100", "GBP")
    consumer = calculate(
        "GB", "consumer", Money.of("12000", "GBP"), due=date(2025, 9, 30), on=date(2026, 6, 30)
    )
    assert consumer.interest_lines == () and consumer.compensation is None


@pytest.mark.parametrize(
    ("due", "reference", "rate"),
    [
        # Interest runs from 1 Jan 2026: the reference day is that 31 Dec 2025 itself,
        # Bank Rate 3.75 after the cut of 18 Dec 2025: 11.75 % (issue 19: it took 30 Jun).
        ("2025-12-31", "31 Dec 2025", "11.75"),
        # Interest runs from 31 Dec 2025: the reference day is the 30 Jun before: 12.25 %.
        ("2025-12-30", "30 Jun 2025", "12.25"),
        # Due 30 Jun 2025, interest from 1 Jul: the reference day is that 30 Jun: 12.25 %.
        ("2025-06-30", "30 Jun 2025", "12.25"),
        # Due 29 Jun 2025, interest from 30 Jun: the 31 Dec 2024 before it: 4.75 + 8.
        ("2025-06-29", "31 Dec 2024", "12.75"),
    ],
)
def test_uk_reference_day_is_the_one_before_interest_runs(
    due: str, reference: str, rate: str
) -> None:
    # SI 2002/1675 art. 4: Bank Rate at the close of 30 June (for interest that starts to
    # run from 1 July to 31 December) or 31 December (from 1 January to 30 June).
    result = calculate(
        "GB",
        "business",
        Money.of("5000", "GBP"),
        due=date.fromisoformat(due),
        on=date.fromisoformat(due) + (date(2026, 3, 1) - date(2026, 2, 1)),
    )
    (line,) = result.interest_lines
    assert line.rate == D(rate), reference
    assert line.days == 28
    assert result.interest.amount == simple("5000", (rate, 28))


# -- Ireland (S.I. 580/2012, European Communities (Late Payment in Commercial
# Transactions) Regulations 2012) ----------------------------------------------------


def test_ie_interest_is_the_ecb_rate_plus_8_fixed_for_the_debt() -> None:
    # Reg. 2 and 5: the ECB main refinancing rate in force on the first day of the
    # half-year, + 8 points; DETE's guidance: "only one rate will apply to a late payment".
    # Due 15 Jun 2026 (2026 H1: 2.15 % -> 10.15 %), on 14 Aug 2026: 60 days, and the 2.40 %
    # of 1 Jul is not applied to this debt.
    result = calculate("IE", "business", eur("5000"), due=date(2026, 6, 15), on=date(2026, 8, 14))
    (line,) = result.interest_lines
    assert (line.rate, line.days) == (D("10.15"), 60)
    assert result.interest.amount == simple("5000", ("10.15", 60)) == D("83.42")
    assert line.law.startswith("European Communities (Late Payment")
    # Reg. 6: EUR 70 for a debt from EUR 1,000 to less than EUR 10,000.
    assert result.compensation == eur("70")
    assert result.total == eur("5153.42")
    consumer = calculate("IE", "consumer", eur("5000"), due=date(2026, 6, 15), on=date(2026, 8, 14))
    assert consumer.interest_lines == () and consumer.compensation is None
    assert charges_jurisdiction(None, "IE") == "IE"


@pytest.mark.parametrize(
    ("debt", "fixed"),
    [("999.99", "40"), ("1000", "70"), ("9999.99", "70"), ("10000", "100")],
)
def test_ie_compensation_bands(debt: str, fixed: str) -> None:
    # S.I. 580/2012 reg. 6(1): EUR 40 below 1,000; 70 from 1,000 below 10,000; 100 above.
    assert ie_compensation(eur(debt)) == eur(fixed)


def test_kindly_charges_knows_ireland() -> None:
    args = ["charges", "--jurisdiction", "IE", "--principal", "12000", "--currency", "EUR"]
    args += ["--due", "2026-01-31", "--on", "2026-03-02", "--json"]
    data = json.loads(CliRunner().invoke(cli, args).output)
    assert data["compensation"] == {"amount": "100.00", "currency": "EUR"}
    assert data["interest"] == {"amount": str(simple("12000", ("10.15", 30))), "currency": "EUR"}


# -- what holds everywhere ----------------------------------------------------------------


@pytest.mark.parametrize("jurisdiction", ["EU", "DE", "FR", "BE", "NO", "GB", "IE"])
def test_the_fixed_compensation_is_owed_only_once_interest_runs(jurisdiction: str) -> None:
    # Directive 2011/7/EU art. 6(1): the fixed sum is owed "where interest for late
    # payment becomes payable", from the day after the due date (art. 3(3)); the UK's s.5A
    # and Norway's § 3a likewise follow the interest. On the due date itself: nothing.
    currency = {"GB": "GBP", "NO": "NOK"}.get(jurisdiction, "EUR")
    due = date(2026, 3, 31)
    amount = Money.of("2000", currency)
    on_due = calculate(jurisdiction, "business", amount, due=due, on=due)
    assert on_due.compensation is None and on_due.interest_lines == ()
    assert any("once interest runs" in note for note in on_due.notes)
    next_day = calculate(jurisdiction, "business", amount, due=due, on=date(2026, 4, 1))
    assert next_day.compensation is not None and next_day.compensation.is_positive
    assert [line.days for line in next_day.interest_lines] == [1]


def test_belgian_legal_rate_of_2024_is_known() -> None:
    # The legal rate of 2024 (5.75 %) was missing: a period over 2024 stopped with an
    # error. Formal notice 1 Nov 2024, on 31 Jan 2025: 61 days at 5.75 %, 31 at 4.5 %.
    result = calculate(
        "BE",
        "consumer",
        eur("2000"),
        due=date(2024, 10, 1),
        on=date(2025, 1, 31),
        demand=date(2024, 11, 1),
    )
    assert [(line.rate, line.days) for line in result.interest_lines] == [
        (D("5.75"), 61),
        (D("4.5"), 31),
    ]
    assert result.interest.amount == simple("2000", ("5.75", 61), ("4.5", 31))
    assert any("not verified" in warning for warning in result.warnings)


def test_payments_may_settle_costs_and_interest_before_the_principal() -> None:
    # Art. 6:44 BW: a payment goes to the costs, then the interest, then the principal.
    # EUR 1,000 due 31 Jan 2026; EUR 500 paid on 2 Mar 2026: WIK costs 150.00, interest
    # 1 Feb - 2 Mar (30 days at 10.15 %) 8.34, the rest, 341.66, to the principal.
    due, on = date(2026, 1, 31), date(2026, 3, 31)
    payment = [(date(2026, 3, 2), eur("500"))]
    first = calculate(
        "NL", "business", eur("1000"), payments=payment, allocation="costs_first", due=due, on=on
    )
    assert first.paid_to_costs == eur("150.00") and first.paid_to_interest == eur("8.34")
    assert first.outstanding == eur("658.34")
    exact = D(1000) * D("10.15") / 100 * 30 / 365 + D("658.34") * D("10.15") / 100 * 29 / 365
    assert first.interest.amount == cents(exact)
    assert first.costs == eur("150.00")  # on the claim as a whole
    assert first.total == first.outstanding + first.interest - first.paid_to_interest
    assert any("art. 6:44 BW" in note for note in first.notes)
    # By default a payment goes to the principal, and the costs are on what is left.
    default = calculate("NL", "business", eur("1000"), payments=payment, due=due, on=on)
    assert default.paid_to_costs is None and default.outstanding == eur("500.00")
    assert default.costs == eur("75.00")
    with pytest.raises(ValueError, match="unknown allocation"):
        calculate("NL", "business", eur("1000"), allocation="interest_last", due=due, on=on)


def test_german_payment_goes_to_the_flat_fee_then_interest_then_principal() -> None:
    # § 367(1) BGB: costs, then interest, then the principal; the EUR 40 Pauschale of
    # § 288(5) counts as costs. EUR 5,000 due 31 Jan 2026; EUR 100 paid on 2 Mar 2026:
    # 40 to the Pauschale, interest 1 Feb - 2 Mar (30 days at 1.27 + 9 = 10.27 %) 42.21,
    # the remaining 17.79 to the principal.
    result = calculate(
        "DE",
        "business",
        eur("5000"),
        due=date(2026, 1, 31),
        on=date(2026, 3, 2),
        payments=[(date(2026, 3, 2), eur("100"))],
        allocation="costs_first",
    )
    assert result.paid_to_costs == eur("40.00")
    assert (
        result.paid_to_interest
        == eur("42.21")
        == Money(D(5000) * D("10.27") / 100 * 30 / 365, "EUR")
    )
    assert result.outstanding == eur("4982.21")
    assert result.total == eur("4982.21")


@pytest.mark.parametrize(
    ("on", "fee"),
    [(date(2020, 9, 30), "70"), (date(2020, 10, 1), "35"), (date(2026, 1, 1), "38")],
)
def test_norwegian_reminder_fee_is_a_twentieth_since_october_2020(on: date, fee: str) -> None:
    # INKF § 1-2: since 1 Oct 2020 a reminder fee and an inkassovarsel fee are each 1/20
    # of the inkassosats (NOK 700: 35; NOK 750 from 2026: 37.50, charged as 38); 1/10
    # (NOK 70) before.
    assert no_reminder_fee(on)[0] == Money.of(fee, "NOK")


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
        # Each table says when its figures were last checked against their sources.
        assert table.checked is not None, name
        assert all(row.checked is None or row.verified for row in table.rows), name
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
    # Every period with its rate, its legal basis and the day count used (issue 19).
    for line in data["interest_lines"]:
        assert line["rate"] and line["basis"].startswith("handelsrente")
        assert (line["law"], line["day_count"]) == ("art. 6:119a BW", "actual/365")
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


def test_dutch_collection_costs_are_never_claimed_in_another_currency() -> None:
    # The WIK scale is in euros (Besluit vergoeding buitengerechtelijke incassokosten art.
    # 2: EUR 40 to 6,775); Kindly converts no currency. The language review found
    # "Buitengerechtelijke incassokosten: ₫ 6.775" on a debt of 107 million dong.
    result = calculate(
        "NL", "business", Money.of("107000000", "VND"), due=date(2026, 10, 1), on=date(2026, 12, 1)
    )
    assert result.costs is None and not result.costs_chargeable
    assert any("WIK scale is in euros" in note for note in result.notes)
    assert result.interest.is_positive, "the statutory interest runs in any currency"
