"""Money: an exact amount in one currency, rounded to that currency's minor unit.

    >>> Money.of("1234.565", "EUR")
    Money('1234.57', 'EUR')
    >>> Money.of("1234567.4", "VND")      # the dong has no minor unit
    Money('1234567', 'VND')
    >>> Money.of("10", "EUR") + Money.of("5", "NOK")
    Traceback (most recent call last):
    ...
    plugin.core.money.CurrencyMismatch: cannot combine EUR and NOK

Floats are refused: 0.1 has no exact binary form, and a reminder must state what the
ledger says to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache

__all__ = ["CurrencyMismatch", "Money", "minor_unit_digits", "total"]


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


@cache
def minor_unit_digits(currency: str) -> int:
    """Digits after the decimal point for an ISO 4217 currency (EUR 2, VND 0, KWD 3).

    Raises:
        ValueError: the code is not an ISO 4217 currency.
    """
    # babel carries the CLDR currency data; importing it lazily keeps `kindly --help` fast.
    from babel.numbers import get_currency_precision, is_currency

    if not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
        raise ValueError(f"currency {currency!r} is not a three-letter ISO 4217 code")
    if not is_currency(currency):
        raise ValueError(f"currency {currency!r} is not an ISO 4217 code")
    return int(get_currency_precision(currency))


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, float):
        raise TypeError("money amounts must be Decimal, int or str, never float")
    if isinstance(value, bool):
        raise TypeError("a bool is not an amount")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    else:
        raise TypeError(f"cannot make an amount from {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    return result


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency; always rounded half-up to the currency's minor unit."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        digits = minor_unit_digits(self.currency)
        exact = _to_decimal(self.amount)
        rounded = exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        object.__setattr__(self, "amount", rounded)

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        return cls(_to_decimal(amount), currency)

    @classmethod
    def exact(cls, amount: Decimal | int | str, currency: str) -> Money:
        """``amount`` in ``currency``, refused (ValueError) if it has more decimals than the
        currency has: a person's "5.001" euro is a typo, never to be rounded silently."""
        value = _to_decimal(amount)
        digits = minor_unit_digits(currency)
        if value != value.quantize(Decimal(1).scaleb(-digits)):
            raise ValueError(f"{amount!s} has more decimals than {currency} has ({digits})")
        return cls(value, currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        return Money(self.amount * _to_decimal(factor), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __bool__(self) -> bool:
        return bool(self.amount)

    @property
    def is_positive(self) -> bool:
        return self.amount > 0

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def __repr__(self) -> str:
        return f"Money('{self.amount}', '{self.currency}')"


def total(amounts: list[Money] | tuple[Money, ...], currency: str) -> Money:
    """Sum amounts that must all be in ``currency`` (an empty list sums to zero)."""
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
