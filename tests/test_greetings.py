"""Greetings follow each language's convention for the formality and the channel (review M1).

"Dear Oliver Hughes," and "Guten Tag Katrin Müller," read like a mail merge; a native
credit controller writes "Dear Mr Hughes," and "Sehr geehrte Frau Müller," when the
salutation is known, the given name in the informal register, and a neutral form when
nothing is known.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from plugin.compose.render import letter_and_charges, render_reminder
from plugin.config.settings import Company, Settings
from plugin.core.decisions import PlannedReminder, reminder_key
from plugin.core.model import Customer, Invoice
from plugin.core.money import Money
from plugin.core.vocabulary import Formality, Language, Salutation

SETTINGS = Settings(company=Company(name="Creditor B.V.", email="ar@creditor.example"))


def _reminder(
    language: Language,
    formality: Formality,
    salutation: Salutation | None,
    given: str | None,
    family: str | None,
    contact_name: str | None,
) -> PlannedReminder:
    customer = Customer(
        id="C1",
        name="Client Co",
        contact_name=contact_name,
        emails=("ada@client.example",),
        language=language,
        country="NL",
        timezone="Europe/Amsterdam",
        salutation=salutation,
        given_name=given,
        family_name=family,
        address=("Street 1", "1000 AA City"),
    )
    invoice = Invoice(
        id="I1",
        number="NS-1",
        customer_id="C1",
        issue_date=date(2026, 9, 1),
        due_date=date(2026, 10, 1),
        total=Money.of("100", "EUR"),
        amount_due=Money.of("100", "EUR"),
    )
    return PlannedReminder(
        key=reminder_key("ledger", "C1", ["I1"], "first", "email"),
        source="ledger",
        customer=customer,
        invoices=(invoice,),
        stage="first",
        channel="email",
        recipients=customer.emails,
        language=language,
        tone="friendly",
        template="first",
        formality=formality,
    )


Person = tuple[Salutation | None, str | None, str | None, str | None]
KNOWN: Person = ("ms", "Katrin", "van Dijk", "Katrin van Dijk")
MALE: Person = ("mr", "Oliver", "Hughes", "Oliver Hughes")
UNKNOWN: Person = (None, None, None, "Katrin van Dijk")
NAME_PARTS_ONLY: Person = (None, "Lan", "Nguyễn Thị", None)


@pytest.mark.parametrize(
    ("language", "formality", "person", "email", "letter"),
    [
        ("en", "formal", MALE, "Dear Mr Hughes,", "Dear Mr Hughes,"),
        ("en", "informal", MALE, "Dear Oliver,", "Dear Oliver,"),
        ("en", "formal", UNKNOWN, "Dear Katrin van Dijk,", "Dear Katrin van Dijk,"),
        ("nl", "formal", KNOWN, "Geachte mevrouw Van Dijk,", "Geachte mevrouw Van Dijk,"),
        ("nl", "formal", MALE, "Geachte heer Hughes,", "Geachte heer Hughes,"),
        ("nl", "informal", KNOWN, "Beste Katrin,", "Beste Katrin,"),
        ("nl", "formal", UNKNOWN, "Beste Katrin van Dijk,", "Geachte Katrin van Dijk,"),
        ("de", "formal", KNOWN, "Sehr geehrte Frau van Dijk,", "Sehr geehrte Frau van Dijk,"),
        ("de", "formal", MALE, "Sehr geehrter Herr Hughes,", "Sehr geehrter Herr Hughes,"),
        ("de", "informal", KNOWN, "Hallo Katrin,", "Hallo Katrin,"),
        ("de", "formal", UNKNOWN, "Guten Tag Katrin van Dijk,", "Sehr geehrte Damen und Herren,"),
        ("fr", "formal", KNOWN, "Bonjour Madame van Dijk,", "Madame,"),
        ("fr", "formal", MALE, "Bonjour Monsieur Hughes,", "Monsieur,"),
        ("fr", "formal", UNKNOWN, "Bonjour Katrin van Dijk,", "Madame, Monsieur,"),
        ("nb", "formal", KNOWN, "Hei Katrin van Dijk,", "Hei Katrin van Dijk,"),
        ("nb", "informal", KNOWN, "Hei Katrin,", "Hei Katrin,"),
        ("vi", "formal", KNOWN, "Kính gửi Bà Katrin van Dijk,", "Kính gửi Bà Katrin van Dijk,"),
        ("vi", "formal", UNKNOWN, "Kính gửi Quý khách Katrin van Dijk,", None),
        ("vi", "informal", ("ms", "Lan", "Nguyễn Thị", None), "Chào chị Lan,", "Chào chị Lan,"),
        ("vi", "informal", ("mr", "Minh", "Trần Văn", None), "Chào anh Minh,", None),
        ("vi", "informal", NAME_PARTS_ONLY, "Chào Lan,", None),
    ],
)
def test_the_greeting_follows_the_language_formality_and_channel(
    language: Language,
    formality: Formality,
    person: tuple[Salutation | None, str | None, str | None, str | None],
    email: str,
    letter: str | None,
) -> None:
    reminder = _reminder(language, formality, *person)
    text = render_reminder(reminder, SETTINGS).text
    assert text.splitlines()[0] == email
    if letter is not None:
        page, _ = letter_and_charges(
            replace(reminder, channel="letter"), SETTINGS, date(2026, 12, 1)
        )
        assert f"<p>{letter}</p>" in page


def test_the_informal_vietnamese_pronoun_follows_the_salutation() -> None:
    """ "anh/chị" to a named person reads like a form; "chị" when she is known to be one."""
    text = render_reminder(
        _reminder("vi", "informal", "ms", "Lan", "Nguyễn Thị", None), SETTINGS
    ).text
    assert "anh/chị" not in text and " chị " in text


def test_a_french_letter_closes_with_the_formula_that_repeats_the_greeting() -> None:
    reminder = replace(_reminder("fr", "formal", *KNOWN), channel="letter")
    page, _ = letter_and_charges(reminder, SETTINGS, date(2026, 12, 1))
    assert "Veuillez agréer, Madame, l’expression de nos salutations distinguées." in page


def test_name_parts_alone_make_the_full_name() -> None:
    customer = _reminder("en", "formal", *NAME_PARTS_ONLY).customer
    assert customer.greeting_name == "Lan Nguyễn Thị"


def test_an_appointment_reminder_greets_the_client_as_a_payment_reminder_does() -> None:
    from datetime import UTC, datetime

    from plugin.compose.render import render_appointment
    from plugin.core.model import Appointment

    person = _reminder("de", "formal", *KNOWN).customer
    start = datetime(2026, 12, 8, 13, tzinfo=UTC)
    appointment = Appointment("A1", "Workshop", start, start.replace(hour=14))
    mail = render_appointment(
        appointment,
        name=person.greeting_name,
        language="de",
        country="DE",
        timezone="Europe/Berlin",
        settings=SETTINGS,
        person=person,
    )
    assert mail.text.splitlines()[0] == "Sehr geehrte Frau van Dijk,"
