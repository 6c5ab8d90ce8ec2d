"""Phone numbers as gateways want them: E.164, checked with phonenumbers."""

from __future__ import annotations

__all__ = ["e164"]


def e164(raw: str, country: str) -> str | None:
    """``raw`` in E.164 (+31612345678), read as a number of ``country`` when it has no
    country code; None when it is not a valid number."""
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, country.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
