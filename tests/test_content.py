"""Every message Kindly can write, read for the facts a credit controller must give (issue 17).

Every language, stage, tone, formality and channel, for a client with two invoices (one
part paid) and, at the final notice, statutory charges. Each e-mail is checked for the
required facts (R4-R11, R23, R26, R29), one amount throughout (text, HTML, QR code, SMS,
letter), punctuation, no template leftovers and no English in the other languages; each
SMS for its limit; each letter for its one A4 page (the whole matrix of letters is
``exhaustive``: a PDF takes a tenth of a second; the default run prints one per language
and stage).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from plugin.compose.formatting import format_date, format_money
from plugin.compose.render import (
    letter_and_charges,
    letter_pdf,
    render_reminder,
    render_sms,
)
from plugin.compose.templates import bundled_environment
from plugin.config.locales import babel_locale_name
from plugin.config.settings import Settings, load_settings
from plugin.core.claims import Claims, reminder_claims
from plugin.core.decisions import PlannedReminder, reminder_key
from plugin.core.model import Customer, CustomerKind, Invoice
from plugin.core.money import Money
from plugin.core.policy import ChargeSettings
from plugin.core.vocabulary import FORMALITIES, LANGUAGES, TONES, Formality, Language, Tone
from tests.test_render import ENGLISH_WORDS, StrictHTML, assert_punctuated

COUNTRY = {"en": "GB", "nl": "NL", "fr": "FR", "nb": "NO", "de": "DE", "vi": "VN"}
STAGES = ("courtesy", "first", "second", "final")
ON = date(2026, 12, 2)
PAY_BY = date(2026, 12, 16)
SMS_LIMIT = 160


def _reminder(language: Language, stage: str, tone: Tone, formality: Formality) -> PlannedReminder:
    customer = Customer(
        id="C1",
        name="Horizon Trading Company International",
        contact_name="Alexandra Montgomery-Whitfield",
        emails=("accounts@horizon.example",),
        phones=("+31 6 5550 1234",),
        language=language,
        country=COUNTRY[language],
        timezone="Europe/Amsterdam",
        kind=CustomerKind.BUSINESS,
        address=("Kinkerstraat 112", "1053 ED Amsterdam"),
        salutation="ms",
        given_name="Alexandra",
        family_name="Montgomery-Whitfield",
    )
    future = stage == "courtesy"
    invoices = (
        Invoice(
            id="I1",
            number="NS-2026-0133",
            customer_id="C1",
            issue_date=date(2026, 12, 1) if future else date(2026, 9, 15),
            due_date=date(2026, 12, 5) if future else date(2026, 10, 15),
            total=Money.of("24750.00", "EUR"),
            amount_due=Money.of("14750.00", "EUR"),
            online_url="https://pay.noordlicht.example/invoice/NS-2026-0133",
        ),
        Invoice(
            id="I2",
            number="NS-2026-0149",
            customer_id="C1",
            issue_date=date(2026, 12, 1) if future else date(2026, 10, 4),
            due_date=date(2026, 12, 5) if future else date(2026, 11, 3),
            total=Money.of("1315.00", "EUR"),
            amount_due=Money.of("1315.00", "EUR"),
            online_url="https://pay.noordlicht.example/invoice/NS-2026-0149",
        ),
    )
    return PlannedReminder(
        key=reminder_key("ledger", "C1", ["I1", "I2"], stage, "email"),
        source="ledger",
        customer=customer,
        invoices=invoices,
        stage=stage,
        channel="email",
        recipients=customer.emails,
        language=language,
        tone="friendly" if stage == "courtesy" else "firm" if stage == "final" else tone,
        template=stage,
        next_step_date=PAY_BY if stage in ("second", "final") else None,
        formality=formality,
        charges=stage == "final",
        debtor=CustomerKind.BUSINESS,
    )


@pytest.fixture(scope="module")
def settings(demo_template: Path) -> Settings:
    """The demo company (address, phone, fax, website, IBAN), claiming charges."""
    loaded = load_settings(demo_template / "kindly.toml")
    return replace(
        loaded,
        defaults=replace(loaded.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NL"),
    )


def _words(reminder: PlannedReminder, settings: Settings, locale: str, macro: str) -> str:
    """A sentence as the language file has it for this message (its own wording, whatever
    a native review makes of it): the facts are checked, not the phrasing."""
    from plugin.compose.render import _context

    context = _context(reminder, settings, locale, channel="email")
    module = bundled_environment().get_template(f"lang/{reminder.language}.j2").make_module(context)
    return " ".join(str(getattr(module, macro)()).split())


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.mark.parametrize("formality", FORMALITIES)
@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_gives_the_facts_and_one_amount(
    language: Language, stage: str, tone: Tone, formality: Formality, settings: Settings
) -> None:
    reminder = _reminder(language, stage, tone, formality)
    locale = babel_locale_name(language, COUNTRY[language])
    message = render_reminder(reminder, settings, on=ON)
    text = " ".join(message.text.split())
    assert message.html is not None
    parser = StrictHTML()
    parser.feed(message.html)
    parser.close()
    visible = " ".join("".join(parser.text).split())

    # R9: the purpose, plainly, in the subject; R11: the person, by name.
    assert message.subject and "\n" not in message.subject
    assert "Montgomery-Whitfield" in text or "Alexandra" in text
    # R10, R6: each invoice's number, due date and what is still owed; its total where
    # part was paid; the invoice online.
    for invoice in reminder.invoices:
        for fact in (
            invoice.number,
            format_date(invoice.due_date, locale),
            format_money(invoice.amount_due, locale),
            str(invoice.online_url),
        ):
            assert " ".join(fact.split()) in text, fact
    assert " ".join(format_money(Money.of("24750.00", "EUR"), locale).split()) in text
    # R8: every way to reach us; R29: how to pay; R7, R23: a reply or a call is welcome.
    company, bank = settings.company, settings.bank
    reply_to = company.reply_to or company.email
    for way in (reply_to, company.website, company.phone, company.fax, bank.iban):
        assert way and way.replace(" ", "") in text.replace(" ", ""), way
    for line in company.address[:-1]:
        assert line in text
    # R4: our records may be out of date; thanks if already paid.
    assert _words(reminder, settings, locale, "already_paid") in text
    # R26: what is expected, by when; one amount throughout.
    claims = reminder_claims(reminder, settings, ON)
    if stage == "final":
        assert isinstance(claims, Claims)
        to_pay = claims.total
        assert message.charges["total_amount"] == str(to_pay.amount)
    else:
        to_pay = reminder.amount_due
    written = " ".join(format_money(to_pay, locale).split())
    assert written in text and written in visible
    if stage in ("second", "final"):
        assert format_date(PAY_BY, locale) in text
    assert message.qr_png is not None
    sms = render_sms(replace(reminder, channel="sms"), settings, on=ON)
    assert _digits(written) in _digits(sms.text), sms.text
    # SMS: within one part, with the sender and a way to act.
    assert sms.count.fits(SMS_LIMIT), (sms.text, sms.count)
    # Clean: no template leftovers, punctuation right, no English in other languages.
    for part in (message.subject, text, visible, sms.text):
        assert "{{" not in part and "{%" not in part and "None" not in part
        assert_punctuated(part)
    if language != "en":
        # "due" is French too ("la somme due").
        own = r"|\bdue\b" if language == "fr" else ""
        leftover = ENGLISH_WORDS.search(
            re.sub(
                r"https://\S+|E-mail|Email|[\w.-]+@[\w.-]+" + own, "", f"{message.subject} {text}"
            )
        )
        assert leftover is None, leftover


def _letter_pages(
    language: Language, stage: str, tone: Tone, formality: Formality, settings: Settings
) -> None:
    reminder = replace(_reminder(language, stage, tone, formality), channel="letter")
    page, charges = letter_and_charges(reminder, settings, ON)
    claims = reminder_claims(reminder, settings, ON)
    locale = babel_locale_name(language, COUNTRY[language])
    if isinstance(claims, Claims):
        assert charges["total_amount"] == str(claims.total.amount)
        assert format_money(claims.total, locale) in page
    assert letter_pdf(page).pages == 1


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_letter_takes_one_page(language: Language, stage: str, settings: Settings) -> None:
    _letter_pages(language, stage, "neutral", "formal", settings)


@pytest.mark.exhaustive
@pytest.mark.parametrize("formality", FORMALITIES)
@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_letter_in_every_tone_and_formality_takes_one_page(
    language: Language, stage: str, tone: Tone, formality: Formality, settings: Settings
) -> None:
    _letter_pages(language, stage, tone, formality, settings)
