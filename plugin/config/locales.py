"""Defaults that follow from a country, and the babel locale a message is written in.

CLDR (through babel) knows which language a country most likely speaks and which time
zones it has, so a ledger row that names only a country still gets a sensible language and,
where the country has one zone, its time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from plugin.core.vocabulary import LANGUAGES, Language, one_of

__all__ = ["babel_locale_name", "default_language", "default_timezone"]


@lru_cache(maxsize=256)
def default_language(country: str) -> Language:
    """The language Kindly writes in for a country when nothing says otherwise."""
    from babel import Locale, UnknownLocaleError

    try:
        likely = Locale.parse(f"und_{country}").language
    except (UnknownLocaleError, ValueError):
        return "en"
    return one_of(LANGUAGES, likely, "language") if likely in LANGUAGES else "en"


@lru_cache(maxsize=256)
def default_timezone(country: str) -> str | None:
    """The country's time zone if all its zones keep the same clock, else None.

    Germany lists Berlin and Büsingen, which never differ, so Berlin it is; the United
    States spans six offsets, so a record there must name its zone.
    """
    from babel.core import get_global

    zones = get_global("territory_zones").get(country, [])
    if not zones:
        return None
    # Winter and summer of one year show whether the zones ever tell a different time.
    samples = [datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC)]
    clocks = {
        tuple(moment.astimezone(ZoneInfo(zone)).utcoffset() for moment in samples) for zone in zones
    }
    return zones[0] if len(clocks) == 1 else None


@lru_cache(maxsize=256)
def babel_locale_name(language: str, country: str) -> str:
    """``nl`` + ``BE`` gives ``nl_BE``: the country's own conventions for a language spoken
    there. A language that is not the country's own is written as at home: English to a
    Dutch client reads "€595.00" and "2 December 2026", not CLDR's ``en_NL`` "€ 595,00"
    (issue 17: Dutch figures in English prose). English at home is British English, as
    Kindly's European users write it."""
    from babel import Locale, UnknownLocaleError
    from babel.languages import get_official_languages

    if language in get_official_languages(country, de_facto=True):
        try:
            return str(Locale.parse(f"{language}_{country}"))
        except (UnknownLocaleError, ValueError):
            pass
    return "en_GB" if language == "en" else str(Locale.parse(language))
