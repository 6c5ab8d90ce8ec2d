"""Every language renders a complete, correctly formatted first reminder."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from plugin.delivery import build_email
from plugin.model import LANGUAGES, Customer, Invoice
from plugin.money import Money
from plugin.planning import PlannedReminder, reminder_key
from plugin.render import format_date, format_money, render_reminder
from plugin.settings import Settings

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
COUNTRY = {"en": "GB", "nl": "NL", "fr": "FR", "nb": "NO", "de": "DE", "vi": "VN"}
CURRENCY = {"en": "GBP", "nl": "EUR", "fr": "EUR", "nb": "NOK", "de": "EUR", "vi": "VND"}
# The sentence that our records may be out of date (R4), in each language.
ALREADY_PAID = {
    "en": "If you have already paid",
    "nl": "Heeft u inmiddels betaald?",
    "fr": "Si vous avez déjà effectué ce règlement",
    "nb": "Har du allerede betalt",
    "de": "Sollten Sie die Zahlung bereits veranlasst haben",
    "vi": "Nếu Quý khách đã thanh toán",
}
# Before the due date: "if you have already arranged payment".
ALREADY_ARRANGED = {
    "en": "If you have already arranged payment",
    "nl": "Heeft u de betaling al in gang gezet?",
    "fr": "Si vous avez déjà procédé au règlement",
    "nb": "Har du allerede satt i gang betalingen",
    "de": "Sollten Sie die Zahlung bereits veranlasst haben",
    "vi": "Nếu Quý khách đã sắp xếp thanh toán",
}
ENGLISH_WORDS = re.compile(r"\b(Dear|invoice|reminder|outstanding|Thank you|regards|due)\b")


def reminder_for(language: str, count: int, stage: str = "first") -> PlannedReminder:
    currency = CURRENCY[language]
    customer = Customer(
        id="C9",
        name="Client & Co <b>",
        contact_name="Ada <script>",
        emails=("ada@client.example",),
        language=language,
        country=COUNTRY[language],
        timezone="Europe/Amsterdam",
    )
    invoices = tuple(
        Invoice(
            id=f"I{n}",
            number=f"NS-{1000 + n}",
            customer_id="C9",
            issue_date=date(2026, 9, n),
            due_date=date(2026, 10, n),
            total=Money.of("1234567.5", currency),
            amount_due=Money.of("1234.5", currency),
            online_url=f"https://pay.example/NS-{1000 + n}",
        )
        for n in range(1, count + 1)
    )
    ids = [i.id for i in invoices]
    return PlannedReminder(
        key=reminder_key("ledger", "C9", ids, stage, "email"),
        source="ledger",
        customer=customer,
        invoices=invoices,
        stage=stage,
        template=stage,
        next_step_date=date(2026, 12, 6),
        channel="email",
        recipients=customer.emails,
        language=language,
        tone="friendly",
    )


@pytest.mark.parametrize("stage", ["courtesy", "first", "second", "final"])
@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_complete_reminder_in_every_language(
    language: str, count: int, stage: str, demo_settings: Settings
) -> None:
    reminder = reminder_for(language, count, stage)
    rendered = render_reminder(reminder, demo_settings)
    locale = {
        "en": "en_GB",
        "nl": "nl_NL",
        "fr": "fr_FR",
        "nb": "nb_NO",
        "de": "de_DE",
        "vi": "vi_VN",
    }[language]
    text = rendered.text
    for invoice in reminder.invoices:
        assert invoice.number in text
        assert format_date(invoice.due_date, locale) in text
        assert format_date(invoice.issue_date, locale) in text
        assert format_money(invoice.amount_due, locale) in text
        assert invoice.online_url and invoice.online_url in text
    assert format_money(reminder.amount_due, locale) in text
    assert (ALREADY_ARRANGED if stage == "courtesy" else ALREADY_PAID)[language] in text
    if stage in ("second", "final"):
        assert format_date(date(2026, 12, 6), locale) in text, "the pay-by date is named"
    company = demo_settings.company
    for detail in (
        company.name,
        company.reply_to,
        company.website,
        company.phone,
        company.fax,
        *company.address,
    ):
        assert detail and detail in text
    assert demo_settings.bank.iban and demo_settings.bank.iban in text
    assert "Ada <script>" in text  # plain text: shown as written, not mangled
    assert "{{" not in text and "{%" not in text and "}}" not in text
    assert "\n\n\n" not in text, "template whitespace left empty lines"
    assert rendered.subject and "\n" not in rendered.subject
    assert reminder.invoices[0].number in rendered.subject or str(count) in rendered.subject
    if language != "en":
        assert not ENGLISH_WORDS.search(text.replace("E-mail", "").replace("Website", "")), (
            ENGLISH_WORDS.search(text)
        )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("nl", "€\xa01.234,50"),
        ("fr", "1\u202f234,50\xa0€"),
        ("nb", "1\xa0234,50\xa0kr"),
        ("de", "1.234,50\xa0€"),
        ("vi", "1.235\xa0₫"),
        ("en", "£1,234.50"),
    ],
)
def test_amounts_are_written_the_local_way(language: str, expected: str) -> None:
    locale = {
        "nl": "nl_NL",
        "fr": "fr_FR",
        "nb": "nb_NO",
        "de": "de_DE",
        "vi": "vi_VN",
        "en": "en_GB",
    }[language]
    amount = Money.of("1234.50", CURRENCY[language])
    assert format_money(amount, locale).replace("\u00a0", "\xa0") == expected


def test_email_has_every_header_and_parses_back(demo_settings: Settings) -> None:
    reminder = reminder_for("nl", 2)
    message = build_email(reminder, render_reminder(reminder, demo_settings), demo_settings, NOW)
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    for header in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID", "Content-Language"):
        assert parsed[header], header
    assert parsed["Content-Language"] == "nl"
    assert parsed["To"].addresses[0].addr_spec == "ada@client.example"
    assert parsed["Message-ID"] == f"<kindly.{reminder.key}@noordlicht.example>"
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None and "NS-1001" in body.get_content()


def test_a_name_with_a_line_break_cannot_add_a_header(demo_settings: Settings) -> None:
    reminder = reminder_for("en", 1)
    evil = replace(reminder.customer, contact_name="Ada\r\nBcc: thief@evil.example")
    reminder = replace(reminder, customer=evil)
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        build_email(reminder, render_reminder(reminder, demo_settings), demo_settings, NOW)
