"""What holds for statutory charges in every jurisdiction, on many random dates (issue 19).

- No days late: no interest and no compensation.
- Interest never falls as the period grows.
- Where the rate changes, the period is split exactly there: no line holds two rates.
- Cut at any day, the lines up to that day are what a calculation to that day gives: the
  running interest, rounded once to the cent, so the parts add up to the whole.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.core.charges import JURISDICTIONS, RateTable, calculate
from plugin.core.money import Money

CURRENCY = {"GB": "GBP", "NO": "NOK", "VN": "VND"}
#: The tables whose rows each rate follows, by jurisdiction and debtor: a line must not
#: hold two of their rows. GB and IE fix one rate per debt; VN and OTHER an agreed one.
TABLES = {
    ("EU", "business"): "ecb_mro",
    ("NL", "business"): "nl_handelsrente",
    ("NL", "consumer"): "nl_wettelijke_rente",
    ("DE", "business"): "de_basiszinssatz",
    ("DE", "consumer"): "de_basiszinssatz",
    ("FR", "business"): "ecb_mro",
    ("FR", "consumer"): "fr_taux_legal_other",
    ("BE", "business"): "ecb_mro",
    ("BE", "consumer"): "be_legal_rate",
    ("NO", "business"): "no_forsinkelsesrente",
    ("NO", "consumer"): "no_forsinkelsesrente",
}
FIRST = date(2025, 1, 1)  # every table has rows from here on
LAST = date(2026, 12, 31)


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str, Money, date, date]:
    jurisdiction = draw(st.sampled_from(sorted(JURISDICTIONS)))
    debtor = draw(st.sampled_from(["business", "consumer"]))
    units = draw(st.integers(min_value=1, max_value=10**9))
    currency = CURRENCY.get(jurisdiction, "EUR")
    principal = Money.of(Decimal(units) / 100, currency)
    due = draw(st.dates(min_value=FIRST, max_value=LAST - timedelta(days=1)))
    on = draw(st.dates(min_value=due, max_value=LAST))
    return jurisdiction, debtor, principal, due, on


def _calculate(
    jurisdiction: str, debtor: str, principal: Money, due: date, on: date
) -> tuple[Money, Money | None, list[tuple[date, date, Money, Decimal, Money]]]:
    result = calculate(
        jurisdiction,
        debtor,
        principal,
        due=due,
        on=on,
        # Interest from the formal notice where the law wants one, and an agreed rate
        # where no statute gives one: so that every jurisdiction charges something.
        demand=due + timedelta(days=1),
        contract_rate=Decimal("9.5") if jurisdiction in ("VN", "OTHER") else None,
    )
    lines = [(i.start, i.end, i.base, i.rate, i.amount) for i in result.interest_lines]
    return result.interest, result.compensation, lines


@settings(max_examples=300, deadline=None)
@given(cases())
def test_no_days_late_no_interest_and_no_compensation(
    case: tuple[str, str, Money, date, date],
) -> None:
    jurisdiction, debtor, principal, due, _ = case
    interest, compensation, lines = _calculate(jurisdiction, debtor, principal, due, due)
    assert not interest and compensation is None and lines == []


@settings(max_examples=300, deadline=None)
@given(cases(), st.integers(min_value=1, max_value=400))
def test_interest_never_falls_as_the_period_grows(
    case: tuple[str, str, Money, date, date], more: int
) -> None:
    jurisdiction, debtor, principal, due, on = case
    later = min(on + timedelta(days=more), LAST)
    shorter, _, _ = _calculate(jurisdiction, debtor, principal, due, on)
    longer, _, _ = _calculate(jurisdiction, debtor, principal, due, later)
    assert shorter <= longer


@settings(max_examples=300, deadline=None)
@given(cases())
def test_a_rate_change_splits_the_period_exactly_at_its_day(
    case: tuple[str, str, Money, date, date],
) -> None:
    jurisdiction, debtor, principal, due, on = case
    _, _, lines = _calculate(jurisdiction, debtor, principal, due, on)
    name = TABLES.get((jurisdiction, debtor))
    if name is None:
        assert len({rate for *_, rate, _amount in lines}) <= 1, "one rate for the debt"
        return
    changes = [row.start for row in RateTable.load(name).rows]
    for start, end, *_ in lines:
        assert not [day for day in changes if start < day <= end], (start, end)
    for (_, end, _, rate, _), (start, _, _, next_rate, _) in pairwise(lines):
        assert start == end + timedelta(days=1), "no day left out or counted twice"
        if rate != next_rate:
            assert start in changes or start.day == 1, start


@settings(max_examples=300, deadline=None)
@given(cases(), st.data())
def test_cut_at_any_day_the_parts_add_up_to_the_whole(
    case: tuple[str, str, Money, date, date], data: st.DataObject
) -> None:
    jurisdiction, debtor, principal, due, on = case
    whole, _, lines = _calculate(jurisdiction, debtor, principal, due, on)
    assert sum((amount for *_, amount in lines), Money.zero(principal.currency)) == whole
    cut = data.draw(st.dates(min_value=due, max_value=on))
    part, _, _ = _calculate(jurisdiction, debtor, principal, due, cut)
    # The whole's lines, cut at that day: base x rate x days / 365, summed exactly and
    # rounded once, by the currency's minor unit.
    running = Decimal(0)
    for start, end, base, rate, _ in lines:
        days = (min(end, cut) - start).days + 1
        if days > 0:
            running += base.amount * rate / 100 * days / 365
    assert part == Money(running, principal.currency)
