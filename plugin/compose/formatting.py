"""Amounts and dates as the client's language and country write them, through babel.

A Dutch client reads "€ 1.430,00" and "5 november 2026", a French one "1 430,00 €" and
"5 novembre 2026". babel is slow for the thousands of amounts a batch writes, so each
currency's style is read off babel once and checked against it (see ``_currency_style``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from plugin.core.money import Money

if TYPE_CHECKING:
    import babel

__all__ = ["babel_locale", "format_date", "format_money", "without_bidi_controls"]


# Controls that make text read the other way: "Invoice \u202eFDP.exe" shows as
# "Invoice exe.PDF". An invoice number or a reference has no use for them.
_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def without_bidi_controls(text: str) -> str:
    return _BIDI_CONTROLS.sub("", text)


@cache
def babel_locale(name: str) -> babel.Locale:
    """Parsed once per process: babel parses a locale name anew on every call it is given."""
    import babel

    return babel.Locale.parse(name)


def format_money(amount: Money, locale: str) -> str:
    """The amount as the locale writes it: "€ 1.234,56" in nl_NL, "1 234,56 €" in fr_FR."""
    style = _currency_style(amount.currency, locale)
    if style is None:
        from babel.numbers import format_currency

        written = format_currency(amount.amount, amount.currency, locale=babel_locale(locale))
        return _as_written(str(written), locale)
    return style.write(amount.amount)


_LETTER_AND_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def _as_written(written: str, locale: str) -> str:
    """babel's amount as a native writes it.

    CLDR's currency spacing, which babel leaves out: a currency written as letters is
    kept apart from the digits by a no-break space ("NOK 850.88", not "NOK850.88"). And
    the few symbols no native reader uses: French CLDR's "£GB" is "£" on a French
    invoice (the native check of issue 17), while its "$US" is what French writes.
    """
    spaced = _LETTER_AND_DIGIT.sub("\u00a0", written)
    for cldr, native in _NATIVE_SYMBOLS.get(locale.partition("_")[0], ()):
        spaced = spaced.replace(cldr, native)
    return spaced


_NATIVE_SYMBOLS: dict[str, tuple[tuple[str, str], ...]] = {"fr": (("£GB", "£"),)}


@dataclass(frozen=True, slots=True)
class _CurrencyStyle:
    """How a locale writes amounts of one currency, read off babel once.

    babel looks up the pattern, the symbols and the currency's digits anew for every
    amount: 20 µs each, the larger part of building a reminder's context. Only what
    babel's pattern yields is kept here, and ``_currency_style`` keeps a style only when it
    writes its test amounts as babel does.
    """

    before: str
    after: str
    negative_before: str
    negative_after: str
    group: str
    decimal: str
    quantum: Decimal
    first_group: int
    other_groups: int

    def write(self, value: Decimal) -> str:
        whole, _, fraction = f"{abs(value).quantize(self.quantum):f}".partition(".")
        groups = []
        size = self.first_group
        while len(whole) > size:
            groups.append(whole[-size:])
            whole = whole[:-size]
            size = self.other_groups
        groups.append(whole)
        number = self.group.join(reversed(groups))
        if fraction:
            number += self.decimal + fraction
        if value.is_signed():
            return self.negative_before + number + self.negative_after
        return self.before + number + self.after


_STYLE_CHECKS = ("0", "0.5", "7", "1234", "12345.678", "1234567.891", "999999999.995")


@lru_cache(maxsize=256)
def _currency_style(currency: str, locale: str) -> _CurrencyStyle | None:
    from babel.numbers import (
        format_currency,
        get_currency_precision,
        get_decimal_symbol,
        get_group_symbol,
    )

    babel_loc = babel_locale(locale)
    pattern = babel_loc.currency_formats["standard"]
    if pattern.scale or pattern.exp_prec or "@" in pattern.pattern or pattern.int_prec[0] > 1:
        return None
    digits = int(get_currency_precision(currency))
    decimal_symbol = str(get_decimal_symbol(babel_loc))
    one = "1" + (decimal_symbol + "0" * digits if digits else "")
    before, found, after = _as_written(
        str(format_currency(1, currency, locale=babel_loc)), locale
    ).partition(one)
    negative_before, negative_found, negative_after = _as_written(
        str(format_currency(-1, currency, locale=babel_loc)), locale
    ).partition(one)
    if not (found and negative_found):
        return None
    style = _CurrencyStyle(
        before,
        after,
        negative_before,
        negative_after,
        str(get_group_symbol(babel_loc)),
        decimal_symbol,
        Decimal(1).scaleb(-digits),
        pattern.grouping[0],
        pattern.grouping[1],
    )
    for text in _STYLE_CHECKS:
        for value in (Decimal(text), -Decimal(text)):
            ours = style.write(value)
            if ours == _as_written(str(format_currency(value, currency, locale=babel_loc)), locale):
                continue
            # babel reads text between two apostrophes as a quoted literal and drops
            # them, after putting the symbols in: where the group symbol is "'" (the
            # Swiss locales), an amount with two separators comes out ungrouped, "CHF
            # 1234567.89". It agrees with us on the same amount written without groups.
            ungrouped = _as_written(
                str(format_currency(value, currency, locale=babel_loc, group_separator=False)),
                locale,
            )
            if style.group != "'" or ours.replace("'", "") != ungrouped:
                return None
    return style


def format_date(day: date, locale: str, style: str = "long") -> str:
    # A datetime is a date too, and two for the same instant in different zones are equal
    # keys to a cache though their days may differ: only its own calendar day goes in.
    if isinstance(day, datetime):
        day = day.date()
    return _format_day(day, locale, style)


@lru_cache(maxsize=4096)
def _format_day(day: date, locale: str, style: str) -> str:
    """Kept: a batch of reminders names the same few due dates and pay-by dates again and
    again, and babel takes as long to write a date as Jinja2 takes for a paragraph."""
    from babel.dates import format_date as babel_format_date

    pattern = _NATIVE_DATE_PATTERNS.get((locale.partition("_")[0], style), style)
    return str(babel_format_date(day, format=pattern, locale=babel_locale(locale)))


#: Where CLDR's pattern is not what a native writes: Vietnamese "25 tháng 9 năm 2026", not
#: CLDR's "25 tháng 9, 2026" (the language review). The templates put "ngày" before it.
_NATIVE_DATE_PATTERNS = {
    ("vi", "long"): "d 'tháng' M 'năm' y",
    ("vi", "full"): "EEEE, 'ngày' d 'tháng' M 'năm' y",
}


def _day_and_month(day: date, locale: str) -> str:
    """The shortest clear date for an SMS about a recent due date: 1/10, 1.10., 1-10."""
    from babel.dates import format_skeleton

    return str(format_skeleton("dM", day, locale=babel_locale(locale)))
