"""Phone numbers as gateways want them: E.164, checked with phonenumbers."""

from __future__ import annotations

__all__ = ["e164", "phone_problem"]


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


def phone_problem(raw: str, country: str) -> str | None:
    """Why ``raw`` cannot be a phone number (read as one of ``country`` when it has no
    country code), or None. Lenient on purpose: a number of a range newer than the
    library's tables passes here and is checked again when an SMS is sent."""
    import phonenumbers
    from phonenumbers import ValidationResult

    try:
        number = phonenumbers.parse(raw, country.upper())
    except phonenumbers.NumberParseException:
        return "there is no phone number in it"
    reason = phonenumbers.is_possible_number_with_reason(number)
    return {
        ValidationResult.IS_POSSIBLE: None,
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY: None,
        ValidationResult.INVALID_COUNTRY_CODE: "no country has that calling code",
        ValidationResult.TOO_SHORT: "too short for a phone number",
        ValidationResult.TOO_LONG: "too long for a phone number",
    }.get(reason, "no phone number has that length")
