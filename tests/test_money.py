"""Money is exact, in one currency, rounded to that currency's minor unit; and docs run."""

from __future__ import annotations

import doctest
import importlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.core.codec import from_jsonable, to_jsonable
from plugin.core.money import CurrencyMismatch, Money


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1.005", "EUR", "1.01"),  # half up, not to even
        ("1.004", "EUR", "1.00"),
        ("0.5", "JPY", "1"),
        ("1234567.5", "VND", "1234568"),
        ("1.0005", "KWD", "1.001"),
        ("-2.345", "GBP", "-2.35"),
        (7, "NOK", "7.00"),
    ],
)
def test_rounding_to_the_minor_unit(amount: str | int, currency: str, expected: str) -> None:
    money = Money.of(amount, currency)
    assert money.amount == Decimal(expected)
    assert str(money.amount) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "error"),
    [
        (1.5, "EUR", TypeError),
        (True, "EUR", TypeError),
        ("NaN", "EUR", ValueError),
        ("Infinity", "EUR", ValueError),
        ("abc", "EUR", ValueError),
        ("1", "XYZ", ValueError),
        ("1", "eur", ValueError),
        ("1", "EURO", ValueError),
    ],
)
def test_what_money_refuses(amount: object, currency: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        Money.of(amount, currency)  # type: ignore[arg-type]


def test_arithmetic_stays_in_one_currency() -> None:
    a, b = Money.of("10.10", "EUR"), Money.of("0.95", "EUR")
    assert a + b == Money.of("11.05", "EUR")
    assert a - b == Money.of("9.15", "EUR")
    assert -b == Money.of("-0.95", "EUR")
    assert b * 3 == Money.of("2.85", "EUR")
    assert Money.of("0.10", "EUR") * Decimal("0.333") == Money.of("0.03", "EUR")
    assert b < a and a >= b and not a < b
    nok = Money.of("1", "NOK")
    for operation in (lambda: a + nok, lambda: a - nok, lambda: a < nok, lambda: a >= nok):
        with pytest.raises(CurrencyMismatch):
            operation()


currencies = st.sampled_from(["EUR", "GBP", "NOK", "VND", "JPY", "KWD"])
amounts = st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, places=4)


@given(amounts, amounts, currencies)
def test_addition_is_exact(x: Decimal, y: Decimal, currency: str) -> None:
    a, b = Money.of(x, currency), Money.of(y, currency)
    digits = {"EUR": 2, "GBP": 2, "NOK": 2, "VND": 0, "JPY": 0, "KWD": 3}[currency]
    assert a.amount.as_tuple().exponent == -digits
    assert (a + b) - b == a
    assert a + b == b + a
    assert from_jsonable(Money, to_jsonable(a)) == a


@pytest.mark.parametrize(
    "module",
    [
        "plugin.core.money",
        "plugin.core.codec",
        "plugin.core.model",
        "plugin.core.businessdays",
        "plugin.compose.sms_text",
    ],
)
def test_module_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0
    assert result.failed == 0
