"""Every channel, language, tone and stage renders a complete, correct, safe reminder."""

from __future__ import annotations

import email
import email.message
import email.policy
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import TypedDict
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin.compose.email_message import ReminderEmail, build_email, message_bytes
from plugin.compose.epc_qr import epc_qr_payload
from plugin.compose.formatting import format_date, format_money, without_bidi_controls
from plugin.compose.render import (
    Attachment,
    RenderedMessage,
    check_overrides,
    render_reminder,
    render_sms,
)
from plugin.compose.sms_text import to_gsm7
from plugin.config.settings import Settings
from plugin.core.decisions import PlannedReminder, reminder_key
from plugin.core.model import Customer, Invoice, LedgerSnapshot
from plugin.core.money import Money
from plugin.core.policy import default_formality
from plugin.core.vocabulary import LANGUAGES, Formality, Language, Tone
from plugin.deliver.channels import pdf_file_name
from plugin.errors import ConfigError, TemplateProblem

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
COUNTRY = {"en": "GB", "nl": "NL", "fr": "FR", "nb": "NO", "de": "DE", "vi": "VN"}
CURRENCY = {"en": "GBP", "nl": "EUR", "fr": "EUR", "nb": "NOK", "de": "EUR", "vi": "VND"}
LOCALE = {"en": "en_GB", "nl": "nl_NL", "fr": "fr_FR", "nb": "nb_NO", "de": "de_DE", "vi": "vi_VN"}
STAGES = ("courtesy", "first", "second", "final")
TONES: tuple[Tone, ...] = ("friendly", "neutral", "firm")
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
ENGLISH_WORDS = re.compile(
    r"\b(Dear|invoice|reminder|outstanding|Thank you|regards|due|please|paid)\b", re.I
)
PAY_BY = date(2026, 12, 6)


def reminder_for(
    language: Language,
    count: int,
    stage: str = "first",
    tone: Tone = "friendly",
    amount: str = "1234.5",
    url_length: int = 30,
) -> PlannedReminder:
    currency = CURRENCY[language]
    customer = Customer(
        id="C9",
        name="Client & Co <b>",
        contact_name="Ada<script>alert(1)</script> Vermeer",
        emails=("ada@client.example",),
        phones=("+31 6 5550 1234",),
        language=language,
        country=COUNTRY[language],
        timezone="Europe/Amsterdam",
    )
    invoices = tuple(
        Invoice(
            id=f"I{n}",
            number=f"NS-2026-{10000 + n}",
            customer_id="C9",
            issue_date=date(2026, 9, n),
            due_date=date(2026, 10, n),
            total=Money.of("99999999999", currency),
            amount_due=Money.of(amount, currency),
            online_url="https://pay.example/" + "x" * (url_length - 20),
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
        channel="email",
        recipients=customer.emails,
        language=language,
        tone=tone,
        template=stage,
        next_step_date=PAY_BY,
        formality=default_formality(language),
    )


class StrictHTML(HTMLParser):
    """Fails on unbalanced tags; collects the visible text."""

    VOID = frozenset({"br", "img", "meta", "hr", "input", "link"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler attribute {name}"
            if (
                name in ("src", "href")
                and value
                and not value.startswith(("cid:", "mailto:", "data:image/png;base64,"))
            ):
                assert value.startswith("https://"), f"external resource {value}"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> in {self.stack}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1] == "style"):
            self.text.append(data)


# A sentence stop after a date that ends in one (14.11. in German and Norwegian), a stop
# or comma after a space, a stop or comma after a comma. French puts a space before : ;
# ! and ?, so those are not in it; "B.V., " is right.
PUNCTUATION_SLIP = re.compile(r"(?<!\.)\.\.(?!\.)|\s[.,](?!\d)|,[.,]")


def assert_punctuated(text: str) -> None:
    slip = PUNCTUATION_SLIP.search(text)
    assert slip is None, (
        f"{slip.group()!r} in {text[max(0, slip.start() - 40) : slip.end() + 20]!r}"
    )


@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_complete_email_in_every_language_tone_and_stage(
    language: Language, count: int, stage: str, tone: Tone, demo_settings: Settings
) -> None:
    reminder = reminder_for(language, count, stage, tone)
    rendered = render_reminder(reminder, demo_settings)
    locale = LOCALE[language]
    html = StrictHTML()
    assert rendered.html is not None
    html.feed(rendered.html)
    html.close()
    assert html.stack == [], f"unclosed {html.stack}"
    visible = " ".join(" ".join(html.text).split())
    for text in (rendered.text, visible):
        for invoice in reminder.invoices:
            assert invoice.number in text
            assert format_date(invoice.due_date, locale) in text
            assert format_date(invoice.issue_date, locale) in text
            assert " ".join(format_money(invoice.amount_due, locale).split()) in " ".join(
                text.split()
            )
        assert (ALREADY_ARRANGED if stage == "courtesy" else ALREADY_PAID)[language] in text
        company = demo_settings.company
        for detail in (
            company.name,
            company.reply_to,
            company.website,
            company.phone,
            company.fax,
            *company.address[:-1],
        ):
            assert detail and detail in text
        # The country line in the reader's language (M3): "Nederland" is "Netherlands".
        country = {"en": "Netherlands", "nl": "Nederland", "fr": "Pays-Bas",
                   "nb": "Nederland", "de": "Niederlande", "vi": "Hà Lan"}[language]  # fmt: skip
        assert company.address[-1] == "Nederland" and country in text
        assert language in ("nl", "nb") or "Nederland" not in text
        assert demo_settings.bank.iban and demo_settings.bank.iban in text
        if stage in ("second", "final"):
            assert format_date(PAY_BY, locale) in text, "the pay-by date is named"
        assert "{{" not in text and "{%" not in text and "}}" not in text
        assert_punctuated(text)
    assert_punctuated(rendered.subject)
    assert "Ada<script>alert(1)</script>" in rendered.text  # plain text shows it as written
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "\n\n\n" not in rendered.text, "template whitespace left empty lines"
    assert rendered.subject and "\n" not in rendered.subject
    assert reminder.invoices[0].number in rendered.subject or str(count) in rendered.subject
    if language != "en":
        for text in (rendered.text, visible, rendered.subject):
            found = ENGLISH_WORDS.search(text.replace("E-mail", "").replace("Website", ""))
            assert found is None, found
    # The EPC QR code is there for euro reminders, and only for them.
    assert (rendered.qr_png is not None) == (CURRENCY[language] == "EUR")
    if rendered.qr_png:
        assert rendered.qr_png.startswith(b"\x89PNG")
        assert html.images == ["cid:epc-qr@kindly"]


def test_the_tone_changes_the_words_not_the_facts(demo_settings: Settings) -> None:
    texts = {
        tone: render_reminder(reminder_for("nl", 1, "first", tone), demo_settings).text
        for tone in TONES
    }
    assert len(set(texts.values())) == 3
    for text in texts.values():
        assert "NS-2026-10001" in text and ALREADY_PAID["nl"] in text
    assert "Graag herinneren wij u eraan" in texts["friendly"]
    assert "Volgens onze administratie" in texts["neutral"]
    assert "betaald moeten zijn" in texts["firm"]


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
def test_amounts_are_written_the_local_way(language: Language, expected: str) -> None:
    amount = Money.of("1234.50", CURRENCY[language])
    assert format_money(amount, LOCALE[language]) == expected


@pytest.mark.parametrize(
    ("language", "country", "locale"),
    [
        ("nl", "BE", "nl_BE"),
        ("fr", "BE", "fr_BE"),
        ("de", "CH", "de_CH"),
        ("en", "IE", "en_IE"),
        ("en", "US", "en_US"),
        ("nb", "NO", "nb_NO"),
        # Not the country's own language: written as at home (issue 17: "€ 595,00 is
        # outstanding" in English to a Dutch client).
        ("en", "NL", "en_GB"),
        ("en", "VN", "en_GB"),
        ("fr", "NL", "fr"),
        ("de", "NO", "de"),
    ],
)
def test_a_language_keeps_its_own_figures_outside_its_countries(
    language: str, country: str, locale: str
) -> None:
    from plugin.config.locales import babel_locale_name

    assert babel_locale_name(language, country) == locale


def test_english_to_a_dutch_client_writes_english_figures(demo_settings: Settings) -> None:
    reminder = reminder_for("nl", 1)
    english = replace(reminder, language="en")
    text = render_reminder(english, demo_settings, on=reminder.invoices[0].due_date).text
    assert re.search(r"€[\d,]+\.\d\d", text), text
    assert not re.search(r"€\s[\d.]+,\d\d", text)


# Locales Kindly writes in, and a few with other habits: Indian grouping (en_IN), Swiss
# apostrophes (de_CH), the currency after the number (fr_CA) or before it with a space.
MONEY_LOCALES = [
    "en_GB", "en_US", "en_IE", "en_IN", "nl_NL", "nl_BE", "fr_FR", "fr_BE", "fr_CH",
    "fr_CA", "nb_NO", "de_DE", "de_AT", "de_CH", "vi_VN", "nl", "de",
]  # fmt: skip
MONEY_CURRENCIES = ["EUR", "GBP", "NOK", "VND", "USD", "CHF", "JPY", "KWD", "INR", "SEK"]


def test_a_currency_code_stands_apart_from_the_digits() -> None:
    """The native check: "NOK850.88" and "VND86,500,000" in English."""
    assert format_money(Money.of("850.88", "NOK"), "en_GB") == "NOK\u00a0850.88"
    assert format_money(Money.of("-850.88", "NOK"), "en_GB") == "-NOK\u00a0850.88"
    assert format_money(Money.of("850.88", "GBP"), "en_GB") == "£850.88"


@pytest.mark.parametrize("locale", ["fr_FR", "fr_BE", "fr_CH", "fr"])
def test_french_writes_the_pound_as_french_invoices_do(locale: str) -> None:
    """CLDR's "£GB" is not what a French reader meets; its "$US" is (the native check)."""
    assert format_money(Money.of("850.88", "GBP"), locale).endswith("850,88\u00a0£")
    assert format_money(Money.of("1234567.5", "GBP"), locale).endswith("567,50\u00a0£")
    assert format_money(Money.of("850.88", "USD"), locale).endswith("850,88\u00a0$US")


@settings(max_examples=300, deadline=None)
@given(
    locale=st.sampled_from(MONEY_LOCALES),
    currency=st.sampled_from(MONEY_CURRENCIES),
    units=st.integers(min_value=-(10**13), max_value=10**13),
    places=st.integers(min_value=0, max_value=3),
)
def test_amounts_are_written_as_babel_writes_them(
    locale: str, currency: str, units: int, places: int
) -> None:
    from babel.numbers import format_currency

    amount = Money.of(Decimal(units).scaleb(-places), currency)
    ours = format_money(amount, locale)
    if locale.endswith("_CH") and ours.count("'") >= 2:
        # babel drops apostrophe pairs as quotes (next test): the same but for the groups.
        ungrouped = format_currency(amount.amount, currency, locale=locale, group_separator=False)
        assert ours.replace("'", "") == ungrouped.replace("£GB", "£")
    else:
        babel = str(format_currency(amount.amount, currency, locale=locale))
        # CLDR's currency spacing, which babel leaves out: a code of letters stands apart
        # from the digits ("NOK 850.88").
        spaced = re.sub(r"([A-Z]{2,})(\d)", "\\1\u00a0\\2", babel)
        # And French's pound as French invoices write it (the test above).
        assert ours == (spaced.replace("£GB", "£") if locale.startswith("fr") else spaced)


@pytest.mark.parametrize(
    ("locale", "amount", "written"),
    [
        ("de_CH", "1234567.89", "CHF\xa01'234'567.89"),
        ("fr_CH", "1234567890", "1'234'567'890,00\xa0CHF"),
        ("de_CH", "-1234567.89", "CHF-1'234'567.89"),
        ("de_CH", "1234.50", "CHF\xa01'234.50"),
    ],
)
def test_swiss_amounts_of_a_million_keep_their_apostrophes(
    locale: str, amount: str, written: str
) -> None:
    # babel 2.19 writes "CHF 1234567.89": after putting the group symbol "'" in, it reads
    # the text between two of them as a quoted literal and drops the quotes.
    assert format_money(Money.of(amount, "CHF"), locale) == written


def test_email_is_a_complete_message_with_parts_and_headers(demo_settings: Settings) -> None:
    reminder = reminder_for("nl", 2)
    pdf = Attachment("NS-2026-10001.pdf", b"%PDF-1.7 test")
    message = build_email(
        reminder, render_reminder(reminder, demo_settings, [pdf]), demo_settings, NOW
    )
    parsed = email.message_from_bytes(message_bytes(message), policy=email.policy.default)
    for header in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID", "Content-Language"):
        assert parsed[header], header
    assert parsed["Content-Language"] == "nl"
    assert parsed["To"].addresses[0].addr_spec == "ada@client.example"
    assert parsed["Message-ID"] == f"<kindly.{reminder.key}@noordlicht.example>"
    types = [part.get_content_type() for part in parsed.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
    ]
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "NS-2026-10001.pdf"
    assert attachment.get_content() == b"%PDF-1.7 test"
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None and "bijgevoegd" in plain.get_content()


def test_non_ascii_names_subjects_and_file_names_survive_the_trip(
    demo_settings: Settings,
) -> None:
    reminder = reminder_for("vi", 1, "final", tone="firm")
    reminder = replace(reminder, customer=replace(reminder.customer, contact_name="Nguyễn Thị Hà"))
    company = replace(demo_settings.company, name="Noordlicht Stüdio")
    settings = replace(demo_settings, company=company)
    pdf = Attachment("Hóa đơn NS-2026-10001.pdf", b"%PDF-1.7 test")
    rendered = render_reminder(reminder, settings, [pdf])
    raw = message_bytes(build_email(reminder, rendered, settings, NOW))
    assert raw.isascii(), "headers and bodies are encoded for any mail server"
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == rendered.subject
    assert parsed["From"].addresses[0].display_name == "Noordlicht Stüdio"
    assert parsed["To"].addresses[0].display_name == "Nguyễn Thị Hà"
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "Hóa đơn NS-2026-10001.pdf"
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None and plain.get_content() == rendered.text


def read_back(raw: bytes) -> email.message.EmailMessage:
    """``raw`` parsed by the standard library, which must find no defect anywhere in it."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    for part in parsed.walk():
        assert part.defects == [], part.defects
        for name, value in part.items():
            assert not getattr(value, "defects", ()), (name, value.defects)
    return parsed


def assert_written_for_any_server(message: ReminderEmail, longest: int = 76) -> None:
    raw = message_bytes(message)
    assert raw.isascii(), "headers and bodies are encoded for any mail server"
    assert max(len(line) for line in raw.split(b"\n")) <= longest
    smtp = message_bytes(message, "\r\n")
    assert smtp == raw.replace(b"\n", b"\r\n")
    assert b"\n" not in smtp.replace(b"\r\n", b"") and b"\r" not in raw


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_part_reads_back_as_it_was_rendered(
    language: Language, demo_settings: Settings
) -> None:
    # Kindly writes the MIME text itself: the standard library's parser must find every
    # header and part as rendered, with no defect, and every line short.
    reminder = reminder_for(language, 3, "final")
    pdf = Attachment("NS-2026-10001.pdf", b"%PDF-1.7 " + bytes(range(256)) * 8)
    rendered = render_reminder(reminder, demo_settings, [pdf])
    message = build_email(reminder, rendered, demo_settings, NOW)
    assert_written_for_any_server(message)
    parsed = read_back(message_bytes(message, "\r\n"))
    assert parsed["Subject"] == rendered.subject
    assert parsed["Content-Language"] == language
    assert parsed["X-Kindly-Reminder"] == f"final; key={reminder.key}"
    assert parsed["Date"].datetime == NOW
    assert parsed["Reply-To"].addresses[0].addr_spec == demo_settings.company.reply_to
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html
    images = [part for part in parsed.walk() if part.get_content_type() == "image/png"]
    if rendered.qr_png is None:
        assert images == []
    else:
        (image,) = images
        assert image.get_content() == rendered.qr_png
        assert image["Content-ID"] == "<sepa-qr>" or image["Content-ID"].startswith("<")
        assert image.get_content_disposition() == "inline"
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_content() == pdf.content


header_letters = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"
)
header_text = st.text(header_letters, max_size=300)


# The settings are frozen: one for every example.
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    subject=header_text,
    company=header_text.filter(str.strip),
    contact=header_text,
    text=st.text(max_size=400),
    file_name=st.one_of(header_text, st.text(header_letters, min_size=300, max_size=400)).filter(
        str.strip
    ),
)
def test_any_subject_name_text_and_file_name_reads_back_whole(
    demo_settings: Settings, subject: str, company: str, contact: str, text: str, file_name: str
) -> None:
    reminder = reminder_for("en", 1)
    reminder = replace(reminder, customer=replace(reminder.customer, contact_name=contact))
    settings = replace(demo_settings, company=replace(demo_settings.company, name=company))
    pdf = Attachment(file_name, b"%PDF")
    rendered = RenderedMessage(
        subject=subject, text=text, language="en", html=text, attachments=(pdf,)
    )
    message = build_email(reminder, rendered, settings, NOW)
    # A word of hundreds of letters cannot be folded; RFC 5322's hard limit still holds.
    assert_written_for_any_server(message, longest=998)
    parsed = read_back(message_bytes(message, "\r\n"))
    # The parser drops the spaces an ASCII header's text starts with.
    written = without_bidi_controls(subject)
    assert parsed["Subject"] in (written, written.lstrip(" "))
    (sender,) = parsed["From"].addresses
    # The parser keeps no white space around an unquoted name's words, and Python 3.11's
    # keeps the folding between two encoded words of a name, which RFC 2047 says to drop
    # (test_a_long_name_in_vietnamese_is_split_into_short_encoded_words reads it exactly).
    assert (letters(sender.display_name), sender.addr_spec) == (
        letters(company),
        demo_settings.company.email,
    )
    (recipient,) = parsed["To"].addresses
    assert recipient.addr_spec == "ada@client.example"
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None
    line_ends = text.replace("\r\n", "\n").replace("\r", "\n")
    assert plain.get_content().replace("\r\n", "\n") == line_ends
    (attachment,) = list(parsed.iter_attachments())
    assert spaced(attachment.get_filename() or "") == spaced(file_name)
    assert attachment.get_content() == b"%PDF"


def spaced(text: str) -> str:
    return " ".join(text.split())


def letters(text: str) -> str:
    return "".join(text.split())


def test_long_headers_are_still_folded_and_read_back_whole(demo_settings: Settings) -> None:
    name = "Noordlicht Studio and Partners for Design, Illustration and Typography B.V."
    settings = replace(demo_settings, company=replace(demo_settings.company, name=name))
    reminder = reminder_for("en", 1)
    rendered = render_reminder(reminder, settings)
    raw = message_bytes(build_email(reminder, rendered, settings, NOW))
    head = raw.split(b"\n\n", 1)[0]
    assert max(len(line) for line in head.split(b"\n")) <= 78
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"].addresses[0].display_name == name
    html = parsed.get_body(preferencelist=("html",))
    assert html is not None and html.get_content() == rendered.html


def test_a_long_name_in_vietnamese_is_split_into_short_encoded_words(
    demo_settings: Settings,
) -> None:
    from email.header import decode_header, make_header

    company_name = "Công ty TNHH Thương mại và Dịch vụ Kỹ thuật Số Việt Nam, Chi nhánh Hà Nội"
    contact = "Nguyễn Thị Phương Thảo, Phòng Kế toán và Tài chính Doanh nghiệp"
    settings = replace(demo_settings, company=replace(demo_settings.company, name=company_name))
    reminder = reminder_for("vi", 1)
    customer = replace(reminder.customer, contact_name=contact)
    recipients = ("ketoan@khachhang.example", "giamdoc@khachhang.example")
    reminder = replace(reminder, customer=customer, recipients=recipients)
    raw = message_bytes(build_email(reminder, render_reminder(reminder, settings), settings, NOW))
    head = raw.split(b"\n\n", 1)[0].decode("ascii")
    assert max(len(line) for line in head.split("\n")) <= 78
    # RFC 2047: no encoded word over 75 characters.
    assert max(len(word) for word in re.findall(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=", head)) <= 75
    parsed = email.message_from_bytes(raw)
    sender = str(make_header(decode_header(parsed["From"])))
    assert sender == f"{company_name} <{settings.company.email}>"
    to = str(make_header(decode_header(parsed["To"])))
    assert to == f"{customer.greeting_name} <{recipients[0]}>, {recipients[1]}"


# Python's email package splits header text wherever str.splitlines does, not only at CR
# and LF; a file separator in a long name once made the folder write a line of its own.
@pytest.mark.parametrize(
    "line_break", ["\r\n", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1e", "\u2028"]
)
@pytest.mark.parametrize("padding", ["", " and Partners for Design, Illustration and Typography"])
def test_a_name_with_a_line_break_cannot_add_a_header(
    line_break: str, padding: str, demo_settings: Settings
) -> None:
    reminder = reminder_for("en", 1)
    evil = replace(
        reminder.customer, contact_name=f"Ada{padding}{line_break}Bcc: thief@evil.example"
    )
    reminder = replace(reminder, customer=evil)
    with pytest.raises(ValueError, match="line break or control character"):
        build_email(reminder, render_reminder(reminder, demo_settings), demo_settings, NOW)


def test_an_attachment_name_cannot_break_the_headers(demo_settings: Settings) -> None:
    reminder = reminder_for("en", 1)
    rendered = render_reminder(reminder, demo_settings, [Attachment("INV\x1cBcc: x.pdf", b"%PDF")])
    with pytest.raises(ValueError, match="file name holds a line break"):
        build_email(reminder, rendered, demo_settings, NOW)


@pytest.mark.parametrize(
    ("number", "file_name"),
    [
        ("INV-001", "INV-001.pdf"),
        ("2026/17", "2026-17.pdf"),
        ("F\x1c\r\n9", "F-9.pdf"),
        ("..", "invoice.pdf"),
    ],
)
def test_invoice_pdfs_are_named_after_a_safe_form_of_the_number(
    number: str, file_name: str
) -> None:
    assert pdf_file_name(number) == file_name


def test_two_invoices_in_one_email_get_two_file_names() -> None:
    taken = {pdf_file_name("2026/17")}
    assert pdf_file_name("2026-17", taken) == "2026-17-2.pdf"
    taken.add("2026-17-2.pdf")
    assert pdf_file_name("2026:17", taken) == "2026-17-3.pdf"
    # Text that runs the other way cannot make "gpj.exe" look like the end of the name.
    assert pdf_file_name("INV\u202egpj.exe") == "INV-gpj.exe.pdf"


# -- SMS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sms_fits_with_worst_case_values(
    language: Language, count: int, stage: str, demo_settings: Settings
) -> None:
    company = replace(demo_settings.company, sms_sender="Noordlicht Studio BV")
    settings = replace(demo_settings, company=company)
    # Realistic worst cases for a small business: a 20-letter sender, a 13-character
    # invoice number, seven-figure amounts (ten digits of dong) and a 35-character pay link.
    amount = "9999999999" if language == "vi" else "9999999.99"
    reminder = reminder_for(language, count, stage, amount=amount, url_length=35)
    sms = render_sms(reminder, settings, limit=160)
    assert sms.count.fits(160), (sms.text, sms.count)
    assert_punctuated(sms.text)
    assert reminder.invoices[0].number in sms.text or str(count) in sms.text
    assert "{{" not in sms.text
    if count == 1 and stage != "final":
        url = reminder.invoices[0].online_url
        assert url is not None and url in sms.text
    # Two parts, and no transliteration: every language but Vietnamese stays in GSM-7, and
    # Vietnamese with its marks needs UCS-2, where two parts hold 134 letters, less than
    # a pay link leaves; it keeps its marks whenever they fit.
    never = "auto" if language == "vi" else "never"
    roomy = render_sms(reminder, settings, limit=320, transliterate=never)
    assert roomy.count.fits(320), (roomy.text, roomy.count)
    if language in ("en", "nl", "de", "nb", "fr"):
        assert roomy.count.encoding == "GSM-7", roomy.text


@pytest.mark.parametrize("formality", ["formal", "informal"])
@pytest.mark.parametrize("tone", ["friendly", "neutral", "firm"])
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sms_fits_one_part_even_with_a_long_company_name(
    language: Language, stage: str, tone: Tone, formality: Formality, demo_settings: Settings
) -> None:
    """Issue 17, HIGH-3: no sms_sender, so the company's legal name (long) is the sender;
    large amounts; one and three invoices. Each fits 160 units, keeps a way to act, and
    says "transliterated" only when a letter changed."""
    company = replace(
        demo_settings.company, name="Noordlicht Creative Studio Amsterdam B.V.", sms_sender=None
    )
    settings = replace(demo_settings, company=company)
    amount = "9999999999" if language == "vi" else "9999999.99"
    for count in (1, 3):
        reminder = replace(
            reminder_for(language, count, stage, tone, amount=amount, url_length=40),
            formality=formality,
        )
        sms = render_sms(reminder, settings, limit=160)
        assert sms.count.fits(160), (sms.text, sms.count)
        assert sms.count.segments == 1
        assert "{{" not in sms.text and "::" not in sms.text
        assert sms.text.startswith("Noordlicht"), sms.text
        if count == 1:
            url = reminder.invoices[0].online_url
            assert url is not None and url in sms.text, sms.text
            assert reminder.invoices[0].number in sms.text
        elif company.phone:
            assert company.phone in sms.text, sms.text
        # Shortening comes first: only Vietnamese (UCS-2, 70 units) is ever transliterated,
        # and then a letter did change.
        assert sms.transliterated == (language == "vi"), sms.text
        if sms.transliterated:
            assert to_gsm7(sms.text) == sms.text


def test_vietnamese_sms_keeps_its_accents_when_it_can(demo_settings: Settings) -> None:
    reminder = replace(
        reminder_for("vi", 1, "second", amount="250000", url_length=20),
        invoices=tuple(replace(i, online_url=None) for i in reminder_for("vi", 1).invoices),
    )
    short = replace(demo_settings, company=replace(demo_settings.company, sms_sender="NS"))
    sms = render_sms(reminder, short, limit=320)
    assert not sms.transliterated and "thanh toán" in sms.text
    forced = render_sms(reminder, short, limit=320, transliterate="always")
    assert forced.transliterated and "thanh toan" in forced.text and "á" not in forced.text


# -- the user's own templates --------------------------------------------------------------


def test_a_users_template_folder_overrides_kindlys(demo_settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "my-templates" / "lang"
    folder.mkdir(parents=True)
    from plugin.compose.render import templates_dir

    original = (templates_dir() / "lang" / "en.j2").read_text(encoding="utf-8")
    (folder / "en.j2").write_text(
        original.replace("Thank you for your business.", "Thanks, the Noordlicht team."),
        encoding="utf-8",
    )
    settings = replace(demo_settings, templates=tmp_path / "my-templates")
    assert check_overrides(settings) == ["lang/en.j2"]
    text = render_reminder(reminder_for("en", 1), settings).text
    assert "Thanks, the Noordlicht team." in text
    assert "Thank you for your business." not in text
    # Other languages still come from Kindly.
    assert ALREADY_PAID["nl"] in render_reminder(reminder_for("nl", 1), settings).text


def test_an_override_may_use_t_or_import_the_wording_itself(
    demo_settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "my-templates" / "email"
    folder.mkdir(parents=True)
    # Written before Kindly handed templates the wording as t: it imports it itself.
    (folder / "subject.txt.j2").write_text(
        '{% import "lang/" ~ language ~ ".j2" as words with context %}'
        "[{{ customer.id }}] {{ words.subject() }}\n",
        encoding="utf-8",
    )
    (folder / "body.txt.j2").write_text(
        "{{ t.greeting() }}\n\n{{ t.already_paid() }}\n", encoding="utf-8"
    )
    settings = replace(demo_settings, templates=tmp_path / "my-templates")
    assert check_overrides(settings) == ["email/body.txt.j2", "email/subject.txt.j2"]
    reminder = reminder_for("nl", 1)
    rendered = render_reminder(reminder, settings)
    kindlys = render_reminder(reminder, demo_settings)
    assert rendered.subject == f"[{reminder.customer.id}] {kindlys.subject}"
    assert rendered.text.startswith(kindlys.text.split("\n")[0])
    assert ALREADY_PAID["nl"] in rendered.text


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("email/body.txt.j2", "Hello {{ custmer.name }}\n", "line 1: unknown variable 'custmer'"),
        ("email/body.txt.j2", "Hello\n{% if x %}\n", "line"),
        ("email/nonsense.txt.j2", "Hi\n", "no template 'email/nonsense.txt.j2'"),
    ],
)
def test_a_broken_override_is_refused_when_loaded(
    demo_settings: Settings, tmp_path: Path, name: str, content: str, words: str
) -> None:
    path = tmp_path / "mine" / name
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    settings = replace(demo_settings, templates=tmp_path / "mine")
    with pytest.raises(ConfigError) as caught:
        check_overrides(settings)
    assert str(path) in str(caught.value)
    assert words in str(caught.value)


def test_overrides_run_in_the_sandbox(demo_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "mine" / "email" / "subject.txt.j2"
    path.parent.mkdir(parents=True)
    path.write_text("{{ customer.__class__.__mro__ }}\n", encoding="utf-8")
    settings = replace(demo_settings, templates=tmp_path / "mine")
    with pytest.raises(TemplateProblem, match=rf"{path}, line 1: access to attribute '__class__'"):
        render_reminder(reminder_for("en", 1), settings)


NOTE_WORDS = {
    "en": ("first reminder", "e-mail", "invoices"),
    "nl": ("eerste herinnering", "e-mail", "facturen"),
    "fr": ("premier rappel", "e-mail", "les factures"),
    "nb": ("første påminnelse", "e-post", "fakturaene"),
    "de": ("erste Zahlungserinnerung", "E-Mail", "die Rechnungen"),
    "vi": ("thư nhắc lần một", "email", "các hóa đơn"),
}


class NoteDetails(TypedDict):
    """What render_note needs besides the stage and the channel."""

    recipient: str
    invoice_numbers: tuple[str, ...]
    amount: str
    settings: Settings
    sent_at: datetime


@pytest.mark.parametrize("language", LANGUAGES)
def test_notes_are_in_the_companys_language(language: Language, demo_settings: Settings) -> None:
    from plugin.compose.render import render_note

    settings = replace(demo_settings, company=replace(demo_settings.company, language=language))
    common = NoteDetails(
        recipient="ap@client.example",
        invoice_numbers=("NS-1", "NS-2"),
        amount="€ 10,00",
        settings=settings,
        sent_at=datetime(2026, 11, 22, 9, 30, tzinfo=UTC),
    )
    note = render_note(stage="first", channel="email", **common)
    for word in NOTE_WORDS[language]:
        assert word in note, (word, note)
    assert "NS-1, NS-2" in note and "€ 10,00" in note and "ap@client.example" in note
    assert "10:30" in note  # sent at 09:30 UTC: 10:30 in Amsterdam, the company's zone
    handoff = render_note(stage="handoff", channel="task", **common)
    assert "NS-1, NS-2" in handoff and handoff != note
    if language != "en":
        assert not ENGLISH_WORDS.search(note.replace("Kindly", ""))


@pytest.mark.parametrize(
    ("language", "formality", "present", "absent"),
    [
        ("nl", "formal", ["Heeft u inmiddels betaald", "U kunt het bedrag"], [" je "]),
        ("nl", "informal", ["Heb je inmiddels betaald", "Je kunt het bedrag"], [" u ", "U kunt"]),
        ("de", "formal", ["Guten Tag", "Sollten Sie", "Mit freundlichen Grüßen"], [" du "]),
        (
            "de",
            "informal",
            ["Hallo", "Falls du", "Antworte einfach", "Viele Grüße"],
            [" Sie ", "Ihnen"],
        ),
        ("nb", "formal", ["Hei", "Har du allerede betalt"], [" De ", " Dem "]),
        ("nb", "informal", ["Hei", "Har du allerede betalt"], [" De "]),
        ("vi", "formal", ["Kính gửi Quý khách", "Quý khách có thể"], ["anh/chị"]),
        ("vi", "informal", ["Chào", "Bạn có thể"], ["Quý khách", "anh/chị", "Anh/chị"]),
    ],
)
def test_formal_and_informal_address(
    language: Language,
    formality: Formality,
    present: list[str],
    absent: list[str],
    demo_settings: Settings,
) -> None:
    for stage in STAGES:
        reminder = replace(reminder_for(language, 2, stage), formality=formality)
        rendered = render_reminder(reminder, demo_settings)
        text = rendered.text
        if stage == "first":
            for words in present:
                assert words in text, (words, stage)
        for words in absent:
            assert words not in text, (words, stage)
        assert rendered.html is not None
        for words in absent:
            assert words not in rendered.html, (words, stage)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_printable_letter(language: Language, stage: str, demo_settings: Settings) -> None:
    from plugin.compose.render import render_letter

    reminder = reminder_for(language, 2, stage)
    reminder = replace(
        reminder, customer=replace(reminder.customer, address=("Storgata 1", "0184 Oslo"))
    )
    letter = render_letter(reminder, demo_settings, date(2026, 11, 22))
    page = StrictHTML()
    page.feed(letter)
    page.close()
    assert page.stack == []
    visible = " ".join(" ".join(page.text).split())
    assert "Storgata 1" in visible and "0184 Oslo" in visible
    # "Amsterdam, le 22 novembre 2026", "Amsterdam, ngày 22 tháng 11 năm 2026".
    dated = {"fr": "le ", "vi": "ngày "}.get(language, "")
    assert f"Amsterdam, {dated}{format_date(date(2026, 11, 22), LOCALE[language])}" in visible
    for invoice in reminder.invoices:
        assert invoice.number in visible
    assert (ALREADY_ARRANGED if stage == "courtesy" else ALREADY_PAID)[language] in visible
    assert "&lt;script&gt;" in letter and "<script>" not in letter
    assert ("data:image/png;base64," in letter) == (CURRENCY[language] == "EUR")
    assert_punctuated(visible)


APPOINTMENT_WORDS = {
    "en": ("Reminder", "When:", "Where:", "cancel"),
    "nl": ("Herinnering", "Wanneer:", "Waar:", "afzeggen"),
    "fr": ("Rappel", "Quand\u00a0:", "Où\u00a0:", "annuler"),
    "nb": ("Påminnelse", "Når:", "Hvor:", "avlyse"),
    "de": ("Erinnerung", "Wann:", "Wo:", "absagen"),
    "vi": ("Nhắc lịch hẹn", "Thời gian:", "Địa điểm:", "hủy"),
}


class Addressee(TypedDict):
    """Whom render_appointment and render_appointment_sms write to, and as whom."""

    name: str
    language: Language
    country: str
    timezone: str
    settings: Settings


@pytest.mark.parametrize("all_day", [False, True])
@pytest.mark.parametrize("language", LANGUAGES)
def test_appointment_reminders_in_every_language(
    language: Language, all_day: bool, demo_settings: Settings
) -> None:
    from zoneinfo import ZoneInfo

    from plugin.compose.render import render_appointment, render_appointment_sms
    from plugin.core.model import Appointment

    # 09:00 in Amsterdam is 15:00 in Ho Chi Minh City: the attendee reads their own clock.
    start = datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    appointment = Appointment(
        "A1",
        "Kick-off <website>",
        start,
        start.replace(hour=10, minute=30),
        location="Prinsengracht 263, Amsterdam",
        online_url="https://meet.example/kick-off",
        all_day=all_day,
    )
    zone = "Asia/Ho_Chi_Minh" if language == "vi" else "Europe/Amsterdam"
    common = Addressee(
        name="Ada",
        language=language,
        country=COUNTRY[language],
        timezone=zone,
        settings=demo_settings,
    )
    mail = render_appointment(appointment, **common)
    for word in APPOINTMENT_WORDS[language]:
        assert word in mail.text or word in mail.subject, word
    assert "Kick-off <website>" in mail.text
    assert "Prinsengracht 263, Amsterdam" in mail.text and "meet.example" in mail.text
    assert demo_settings.company.phone and demo_settings.company.phone in mail.text
    if not all_day:
        # The reader's clock, as their language writes a time of day.
        hours = {
            "vi": "15:00–16:30, Thứ Ba",
            "fr": "de 9 h à 10 h 30",
            "nb": "kl. 09.00–10.30",
            "de": "09:00–10:30 Uhr",
        }
        assert hours.get(language, "09:00–10:30") in mail.text
        # The clock as the reader's language names it, never its database id, and only
        # where it is not the event's own (M4).
        assert "Europe/" not in mail.text and "Asia/" not in mail.text
        if language == "vi":
            assert "(giờ Việt Nam)" in mail.text
        else:
            assert "Midden-Europese tijd" not in mail.text and "(" not in mail.text
        in_london: Addressee = {**common, "timezone": "Europe/London"}
        abroad = render_appointment(appointment, **in_london)
        named = {"nl": "(Britse tijd)", "de": "(Ortszeit London)", "en": "(London time)"}
        assert named.get(language, "") in abroad.text
    assert "{{" not in mail.text and "\n\n\n" not in mail.text
    if language != "en":
        assert not ENGLISH_WORDS.search(mail.text.replace("E-mail", "").replace("Kick-off", ""))
    # A complete e-mail with the payment reminders' look (issue 17): the HTML part says
    # what the text says, escaped, with nothing fetched from outside.
    assert mail.html is not None
    parser = StrictHTML()
    parser.feed(mail.html)
    parser.close()
    assert parser.stack == []
    visible = " ".join("".join(parser.text).split())
    assert "Kick-off <website>" in visible and "<website>" not in mail.html
    assert " ".join(mail.text.split("\n\n")[1].split()) in visible
    assert 'href="https://meet.example/kick-off"' in mail.html
    sms = render_appointment_sms(appointment, **common)
    assert sms.count.fits(160), sms.text
    assert "Kick-off" in sms.text
    for text in (mail.subject, mail.text, sms.text):
        assert_punctuated(text)


@pytest.mark.parametrize(
    ("language", "zone", "written"),
    [
        ("nb", "Europe/Oslo", "kl. 11.00–12.00 (London-tid)"),
        ("en", "Europe/Amsterdam", "11:00–12:00 (London time)"),
        ("fr", "Europe/Paris", "de 11 h à 12 h (heure de Londres)"),
        ("de", "Europe/Berlin", "11:00–12:00 Uhr (Ortszeit London)"),
        ("nl", "Europe/Amsterdam", "11:00–12:00 (Britse tijd)"),
        (
            "vi",
            "Asia/Ho_Chi_Minh",
            "11:00–12:00, Thứ Hai, ngày 7 tháng 12 năm 2026 (giờ Vương quốc Anh)",
        ),
    ],
)
def test_a_meeting_at_a_place_is_on_the_places_clock(
    language: Language, zone: str, written: str, demo_settings: Settings
) -> None:
    """The review: a client in Oslo at 11:00 in London read "kl. 12.00–13.00 (tidssone for
    Sentral-Europa)" under "Hvor: 5 Park Row, London", and the SMS "7.12. 12:00"."""
    from zoneinfo import ZoneInfo

    from plugin.compose.render import render_appointment, render_appointment_sms
    from plugin.core.model import Appointment

    start = datetime(2026, 12, 7, 11, 0, tzinfo=ZoneInfo("Europe/London"))
    review = Appointment(
        "A6", "Quarterly review", start, start.replace(hour=12), location="5 Park Row, London"
    )
    common = Addressee(
        name="Kari", language=language, country=COUNTRY[language], timezone=zone,
        settings=demo_settings,
    )  # fmt: skip
    mail = render_appointment(review, **common)
    assert written in " ".join(mail.text.split()), mail.text
    sms = render_appointment_sms(review, **common)
    clock = written[written.index("(") :]
    from plugin.compose.sms_text import to_gsm7

    assert clock in sms.text or to_gsm7(clock, all_accents=True) in sms.text, sms.text
    assert sms.count.fits(160), sms.text
    # A client on the place's own clock reads the time as it is, with no clock named.
    in_london: Addressee = {**common, "timezone": "Europe/London"}
    local = render_appointment(review, **in_london)
    assert clock not in local.text


@pytest.mark.parametrize(
    ("language", "online", "in_person"),
    [
        ("en", "We look forward to speaking with you.", "We look forward to seeing you."),
        ("nl", "Wij spreken u graag op", "Wij zien u graag op"),
        ("nb", "Vi ser frem til å snakke med deg.", "Vi ser frem til å møte deg."),
        ("vi", "Rất mong được trao đổi với", "Rất mong được gặp"),
    ],
)
def test_a_meeting_online_is_not_looked_forward_to_as_a_visit(
    language: Language, online: str, in_person: str, demo_settings: Settings
) -> None:
    """The review: "We look forward to seeing you." for a video call (only French adapted);
    and the Norwegian SMS wrote "3.12. 09:00" where Norwegian writes "kl. 09.00"."""
    from zoneinfo import ZoneInfo

    from plugin.compose.render import render_appointment, render_appointment_sms
    from plugin.core.model import Appointment

    start = datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    call = Appointment(
        "A1", "Call", start, start.replace(hour=10), online_url="https://meet.example/x"
    )
    visit = replace(call, online_url=None, location="Prinsengracht 263, Amsterdam")
    common = Addressee(
        name="Ada", language=language, country=COUNTRY[language], timezone="Europe/Amsterdam",
        settings=demo_settings,
    )  # fmt: skip
    assert online in render_appointment(call, **common).text
    assert in_person in render_appointment(visit, **common).text
    if language == "nb":
        assert "3.12. kl. 09.00" in render_appointment_sms(visit, **common).text


@pytest.mark.parametrize(
    ("language", "opening"),
    [
        ("nb", "Vi har ennå ikke mottatt betaling for fakturaene nedenfor – kanskje har"),
        ("vi", "Có lẽ thư nhắc trước của chúng tôi đã bị thất lạc hoặc bị sót: theo sổ sách"),
    ],
)
def test_a_second_reminder_says_what_is_unpaid_before_guessing_why(
    language: Language, opening: str, demo_settings: Settings
) -> None:
    """The review: "Kanskje har meldingen vår … blitt oversett, for vi har ennå ikke
    mottatt betaling" and "có thể thư nhắc … đã bị bỏ sót, vì …" gave the unpaid invoices
    as the reason for the guess."""
    reminder = reminder_for(language, 2, stage="second")
    text = " ".join(render_reminder(reminder, demo_settings).text.split())
    assert opening in text, text


@pytest.mark.parametrize("stage", STAGES)
def test_every_demo_client_in_every_channel_and_tone(
    stage: str, demo_settings: Settings, demo_snapshot: LedgerSnapshot
) -> None:
    from plugin.compose.render import render_letter
    from plugin.core.planning import settings_for

    rendered = 0
    for customer in demo_snapshot.customers:
        by_currency: dict[str, list[Invoice]] = {}
        for invoice in demo_snapshot.invoices:
            if invoice.customer_id == customer.id and invoice.is_open:
                by_currency.setdefault(invoice.currency, []).append(invoice)
        resolved = settings_for(demo_settings, customer)
        for invoices in by_currency.values():
            for tone in TONES:
                reminder = PlannedReminder(
                    key="k",
                    source="ledger",
                    customer=customer,
                    invoices=tuple(invoices),
                    stage=stage,
                    channel="email",
                    recipients=customer.emails,
                    language=resolved.language,
                    tone=tone,
                    template=stage,
                    next_step_date=PAY_BY,
                    formality=resolved.formality,
                )
                locale = LOCALE[resolved.language].split("_")[0]
                mail = render_reminder(reminder, demo_settings)
                letter = render_letter(reminder, demo_settings, date(2026, 11, 22))
                sms = render_sms(reminder, demo_settings)
                for invoice in invoices:
                    assert invoice.number in mail.text and invoice.number in letter
                    assert mail.html is not None and invoice.number in mail.html
                assert sms.count.fits(160), sms.text
                assert "{{" not in mail.text + letter + sms.text, locale
                rendered += 1
    assert rendered >= 30


@pytest.mark.parametrize("language", LANGUAGES)
def test_charges_are_stated_plainly_when_claimed(
    language: Language, demo_settings: Settings
) -> None:
    from plugin.core.model import CustomerKind
    from plugin.core.policy import ChargeSettings

    settings = replace(
        demo_settings,
        defaults=replace(demo_settings.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NL"),
    )
    base = reminder_for(language, 2, "final")
    claimed = replace(base, charges=True, debtor=CustomerKind.BUSINESS)
    on = date(2026, 11, 22)
    text = render_reminder(claimed, settings, on=on).text
    html = render_reminder(claimed, settings, on=on).html or ""
    from plugin.compose.render import reminder_charges

    charges = reminder_charges(claimed, settings, on, LOCALE[language])
    assert charges is not None
    for value in (charges["interest"], charges["costs"], charges["total"]):
        assert " ".join(value.split()) in " ".join(text.split())
        assert value.replace("\xa0", " ") in html.replace("&nbsp;", " ").replace("\xa0", " ")
    assert format_date(on, LOCALE[language]) in text
    # Not claimed: not a word about charges.
    plain = render_reminder(base, settings, on=on).text
    assert charges["total"] not in plain
    # A Dutch consumer owes collection costs only after a 14-day letter: the final notice
    # becomes that letter, naming its term (from the day after receipt) and the costs.
    consumer = replace(claimed, debtor=CustomerKind.CONSUMER)
    letter = reminder_charges(consumer, settings, on, LOCALE[language])
    assert letter is not None
    if CURRENCY[language] != "EUR":
        # The costs are a scale in euros: none on a claim in pounds, kroner or dong, and
        # so no letter to announce them.
        assert not letter.get("letter_deadline") and not letter.get("costs")
        return
    # Sunday 22 Nov: received Wednesday 25 (Tue, Wed count), paid by 9 December.
    assert letter["letter_deadline"] == format_date(date(2026, 12, 9), LOCALE[language])
    consumer_text = " ".join(render_reminder(consumer, settings, on=on).text.split())
    assert letter["letter_deadline"] in consumer_text
    assert " ".join(letter["letter_costs"].split()) in consumer_text
    assert "14" in consumer_text


@pytest.mark.parametrize("stage", ["second", "final"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_reminder_with_charges_asks_for_one_amount_throughout(
    language: Language, stage: str, demo_settings: Settings
) -> None:
    """Issue 17, HIGH-1: the charges come first, and the demand, the SMS and the QR code
    ask for their total; the invoices' principal appears only where it is the principal
    (the opening and the table), never as what to pay."""
    from plugin.compose.render import reminder_charges
    from plugin.core.model import CustomerKind
    from plugin.core.policy import ChargeSettings

    settings = replace(
        demo_settings,
        defaults=replace(demo_settings.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NL"),
    )
    claimed = replace(
        reminder_for(language, 2, stage),
        charges=True,
        debtor=CustomerKind.BUSINESS,
        next_step_date=date(2026, 12, 6),
    )
    on = date(2026, 11, 22)
    charges = reminder_charges(claimed, settings, on, LOCALE[language])
    assert charges is not None
    total, principal = charges["total"], format_money(claimed.amount_due, LOCALE[language])
    rendered = render_reminder(claimed, settings, on=on)
    flat = " ".join(rendered.text.split())
    # The demand follows the charges' total line and asks for that total, by one date.
    (_, demand) = flat.split(" ".join(total.split()), 1)
    assert " ".join(total.split()) in demand, demand
    assert " ".join(principal.split()) not in demand, demand
    assert format_date(date(2026, 12, 6), LOCALE[language]) in demand
    html = (rendered.html or "").replace("&nbsp;", " ").replace("\xa0", " ")
    assert html.count(total.replace("\xa0", " ")) >= 2  # the charges' total, and the demand
    sms = render_sms(claimed, settings, on=on, limit=320)
    assert " ".join(total.split()) in " ".join(sms.text.split()), sms.text
    assert " ".join(principal.split()) not in " ".join(sms.text.split()), sms.text
    assert sms.charges["total"] == total
    # The QR code: test_the_qr_code_asks_for_the_total_with_charges.


def test_the_sepa_qr_code_carries_the_amount_iban_and_reference(demo_settings: Settings) -> None:
    reminder = reminder_for("nl", 2, amount="1234.5")
    payload = epc_qr_payload(reminder, demo_settings, "NS-2026-10001 NS-2026-10002")
    assert payload is not None
    lines = payload.split(b"\n")
    assert lines[:4] == [b"BCD", b"002", lines[2], b"SCT"]
    charset = {b"1": "utf-8", b"2": "iso-8859-1"}[lines[2]]
    iban = (demo_settings.bank.iban or "").replace(" ", "").encode()
    assert lines[6] == iban
    assert lines[7] == b"EUR2469"
    assert lines[-1].decode(charset) == "NS-2026-10001 NS-2026-10002"
    assert epc_qr_payload(reminder_for("en", 1), demo_settings, "NS-1") is None, "GBP: no QR"


@pytest.mark.parametrize(
    "holder", ["Noordlicht Studio B.V.", "Zoë & Søren Ørsted", "Công ty Ánh Sáng"]
)
def test_the_qr_code_scans_back_to_its_payload(demo_settings: Settings, holder: str) -> None:
    """Decoded by a real reader (zxing-cpp): the exact payload, in byte mode without an ECI
    (as EPC069-12 wants), error correction M, whichever character set the names need."""
    import io

    import zxingcpp
    from PIL import Image

    from plugin.compose.epc_qr import epc_qr_png

    settings = replace(demo_settings, bank=replace(demo_settings.bank, account_holder=holder))
    reminder = reminder_for("nl", 2, amount="1234.5")
    png = epc_qr_png(reminder, settings, "NS-2026-10001")
    payload = epc_qr_payload(reminder, settings, "NS-2026-10001")
    assert png is not None and payload is not None
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "1"
    (scanned,) = zxingcpp.read_barcodes(image)
    assert scanned.format == zxingcpp.BarcodeFormat.QRCode
    assert scanned.bytes == payload
    assert (scanned.ec_level, scanned.symbology_identifier) == ("M", "]Q1")
    assert (
        payload.split(b"\n")[5].decode({b"1": "utf-8", b"2": "iso-8859-1"}[payload.split(b"\n")[2]])
        == holder
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_norwegian_reminder_fee_is_a_line_of_its_own_with_14_days_to_pay(
    language: Language, demo_settings: Settings
) -> None:
    from plugin.compose.render import reminder_charges
    from plugin.core.model import CustomerKind
    from plugin.core.policy import ChargeSettings

    settings = replace(
        demo_settings,
        defaults=replace(demo_settings.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NO"),
    )
    base = reminder_for(language, 1, "final", amount="5000")
    nok = tuple(
        replace(i, total=Money.of("5000", "NOK"), amount_due=Money.of("5000", "NOK"))
        for i in base.invoices
    )
    consumer = replace(
        base, invoices=nok, charges=True, reminder_fee=True, debtor=CustomerKind.CONSUMER
    )
    on = date(2026, 11, 22)
    charges = reminder_charges(consumer, settings, on, LOCALE[language])
    assert charges is not None
    # 1/20 of the 2026 inkassosats of NOK 750, rounded to whole kroner (legal-rules.md §4).
    assert charges["reminder_fee"] == format_money(Money.of("38", "NOK"), LOCALE[language])
    assert charges["pay_by"] == format_date(date(2026, 12, 6), LOCALE[language])
    rendered = render_reminder(consumer, settings, on=on)
    text = " ".join(rendered.text.split())
    for value in (charges["reminder_fee"], charges["pay_by"], charges["total"]):
        assert " ".join(value.split()) in text
    assert rendered.charges["reminder_fee"] == charges["reminder_fee"]
    html = (rendered.html or "").replace("&nbsp;", " ").replace("\xa0", " ")
    assert charges["pay_by"].replace("\xa0", " ") in html
    # A business owes the EUR 40 compensation in NOK (§3a) instead: the fee is offset
    # against it, so the two together are the larger one, not their sum.
    business = replace(consumer, debtor=CustomerKind.BUSINESS)
    with_fee = reminder_charges(business, settings, on, LOCALE[language])
    without_fee = reminder_charges(replace(business, reminder_fee=False), settings, on, "en_GB")
    assert with_fee is not None and without_fee is not None
    assert with_fee["total_amount"] == without_fee["total_amount"]


def test_the_qr_code_asks_for_the_total_with_charges(demo_settings: Settings) -> None:
    from plugin.compose.epc_qr import epc_qr_png
    from plugin.compose.render import reminder_charges
    from plugin.core.model import CustomerKind
    from plugin.core.policy import ChargeSettings

    settings = replace(
        demo_settings,
        defaults=replace(demo_settings.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NL"),
    )
    claimed = replace(reminder_for("nl", 1, "final"), charges=True, debtor=CustomerKind.BUSINESS)
    on = date(2026, 11, 22)
    charges = reminder_charges(claimed, settings, on, "nl_NL")
    assert charges is not None
    total = Money.of(charges["total_amount"], "EUR")
    assert total > claimed.amount_due
    payload = epc_qr_payload(claimed, settings, "NS-2026-10001", total)
    assert payload is not None and f"EUR{total.amount}".encode() in payload
    rendered = render_reminder(claimed, settings, on=on)
    assert rendered.qr_png == epc_qr_png(claimed, settings, "NS-2026-10001", charges)
    assert rendered.qr_png != epc_qr_png(claimed, settings, "NS-2026-10001")


def test_interest_in_a_reminder_counts_a_late_part_payment_until_its_day(
    demo_settings: Settings,
) -> None:
    from plugin.compose.render import reminder_charges
    from plugin.core.charges import calculate
    from plugin.core.model import CustomerKind, Payment
    from plugin.core.policy import ChargeSettings

    settings = replace(
        demo_settings,
        defaults=replace(demo_settings.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NL"),
    )
    base = reminder_for("en", 1, "final")
    (invoice,) = base.invoices
    invoice = replace(invoice, total=Money.of("1000", "EUR"), amount_due=Money.of("400", "EUR"))
    paid = Payment("P1", invoice.id, date(2026, 11, 1), Money.of("600", "EUR"))
    claimed = replace(
        base, invoices=(invoice,), charges=True, debtor=CustomerKind.BUSINESS, payments=(paid,)
    )
    on = date(2026, 12, 15)
    expected = calculate(
        "NL",
        "business",
        Money.of("1000", "EUR"),
        due=invoice.due_date,
        on=on,
        payments=[(paid.date, paid.amount)],
    )
    charges = reminder_charges(claimed, settings, on, "en_GB")
    assert charges is not None
    assert charges["interest"] == format_money(expected.interest, "en_GB")
    # Without the payment, interest only on the 400 still owed: less.
    unknown = reminder_charges(replace(claimed, payments=()), settings, on, "en_GB")
    assert unknown is not None
    assert Money.of(unknown["total_amount"], "EUR") < Money.of(charges["total_amount"], "EUR")
    # A payment the invoice cannot hold (more than was ever owed) is not guessed with.
    odd = replace(paid, amount=Money.of("900", "EUR"))
    guarded = reminder_charges(replace(claimed, payments=(odd,)), settings, on, "en_GB")
    assert guarded == unknown


@pytest.mark.parametrize("language", LANGUAGES)
def test_appointment_sms_fits_with_a_long_title_and_link(
    language: Language, demo_settings: Settings
) -> None:
    from zoneinfo import ZoneInfo

    from plugin.compose.render import render_appointment_sms
    from plugin.core.model import Appointment

    start = datetime(2026, 12, 24, 16, 45, tzinfo=ZoneInfo("Europe/Amsterdam"))
    appointment = Appointment(
        "A2",
        "Jaarlijkse evaluatie huisstijl, website en drukwerk 2027",  # 56 characters
        start,
        start.replace(hour=18),
        location="Grote vergaderzaal, Prinsengracht 263-267, 1016 GV Amsterdam",
        online_url="https://meet.noordlicht.example/evaluatie-2027",
    )
    company = replace(demo_settings.company, sms_sender="Noordlicht Studio BV")
    settings = replace(demo_settings, company=company)
    sms = render_appointment_sms(
        appointment,
        name="Marieke",
        language=language,
        country=COUNTRY[language],
        timezone="Europe/Amsterdam",
        settings=settings,
    )
    assert sms.count.fits(160), (len(sms.text), sms.text)
    assert "{{" not in sms.text
    assert "Jaarlijkse evaluatie" in sms.text, "the title, shortened if need be, stays"
    assert "+31 20 555 0100" in sms.text, "how to move or cancel stays"


def test_a_moment_is_written_as_the_day_it_is_on_its_own_clock() -> None:
    # The same instant, equal as datetimes, falls on two different days.
    late_in_amsterdam = datetime(2026, 12, 1, 23, 30, tzinfo=ZoneInfo("Europe/Amsterdam"))
    same_moment_in_utc = late_in_amsterdam.astimezone(UTC)
    assert late_in_amsterdam == same_moment_in_utc
    assert format_date(late_in_amsterdam, "en_GB") == "1 December 2026"
    assert format_date(same_moment_in_utc, "en_GB") == "1 December 2026"
    assert (
        format_date(late_in_amsterdam.astimezone(ZoneInfo("Asia/Tokyo")), "en_GB")
        == "2 December 2026"
    )


def test_a_stage_of_the_users_own_is_written_in_the_words_of_its_template(
    demo_settings: Settings,
) -> None:
    """A policy may call a stage "nudge": it reads as the stage whose words it borrows."""
    from plugin.compose.render import render_reminder

    borrowed = render_reminder(reminder_for("en", 1, "first"), demo_settings)
    nudge = render_reminder(
        replace(reminder_for("en", 1, "first"), stage="nudge", template="first"), demo_settings
    )
    assert nudge.subject == borrowed.subject != ""
    assert nudge.text == borrowed.text


def test_a_stage_without_words_is_refused_when_the_settings_are_read(tmp_path: Path) -> None:
    from plugin.config.settings import parse_settings
    from plugin.errors import ConfigError

    def with_stages(*stages: dict[str, object], templates: bool = False) -> None:
        data: dict[str, object] = {
            "company": {"name": "Acme", "email": "ar@acme.example"},
            "policies": {"quick": {"stages": list(stages)}},
        }
        if templates:
            (tmp_path / "mine").mkdir(exist_ok=True)
            data["templates"] = {"folder": "mine"}
        parse_settings(data, source=tmp_path / "kindly.toml")

    nudge = {"name": "nudge", "after": "due", "days": 1}
    with pytest.raises(ConfigError, match=r"stages\.0\.template.*'nudge'.*first"):
        with_stages(nudge)
    # "handoff" has words for the task to a person, none for a message to the client.
    with pytest.raises(ConfigError, match=r"stages\.0\.template.*'handoff'"):
        with_stages({"name": "handoff", "after": "due", "days": 1})
    with_stages({**nudge, "template": "first"})
    # A task is never worded; a folder of one's own templates may word the stage.
    with_stages(
        nudge | {"template": "first"},
        {"name": "agency", "after": "previous", "days": 7, "channels": ["task"]},
    )
    with_stages(nudge, templates=True)


def test_an_invoice_number_cannot_turn_the_subject_around(demo_settings: Settings) -> None:
    """D10: bidirectional controls from an invoice number do not reach the Subject."""
    reminder = reminder_for("en", 1)
    (invoice,) = reminder.invoices
    reminder = replace(reminder, invoices=(replace(invoice, number="Invoice \u202eFDP.exe"),))
    message = build_email(reminder, render_reminder(reminder, demo_settings), demo_settings, NOW)
    parsed = email.message_from_bytes(message_bytes(message), policy=email.policy.default)
    subject = str(parsed["Subject"])
    assert "\u202e" not in subject and "Invoice FDP.exe" in subject
    # Nor the text, the HTML or the SMS (found by an independent check of the review).
    rendered = render_reminder(reminder, demo_settings)
    for part in (rendered.text, rendered.html or "", render_sms(reminder, demo_settings).text):
        assert "\u202e" not in part and "Invoice FDP.exe" in part


def test_transliterated_is_said_only_when_a_letter_changed(demo_settings: Settings) -> None:
    """The review: the preview said "transliterated" of a text already in GSM-7."""
    english = render_sms(reminder_for("en", 1), demo_settings, transliterate="always")
    assert not english.transliterated
    vietnamese = render_sms(reminder_for("vi", 1), demo_settings, transliterate="always")
    assert vietnamese.transliterated


@pytest.mark.parametrize(
    ("language", "line"),
    [
        ("fr", "FRANCE"),
        ("nb", "NORGE / NORWAY"),
        ("de", "DEUTSCHLAND / GERMANY"),
        ("vi", "VIỆT NAM / VIETNAM"),
        ("en", "UNITED KINGDOM"),
        ("nl", None),
    ],
)
def test_a_letter_abroad_ends_its_address_with_the_country(
    language: Language, line: str | None, demo_settings: Settings
) -> None:
    """Issue 17, HIGH-4: a posted letter to a client abroad is deliverable."""
    from plugin.compose.render import render_letter

    reminder = reminder_for(language, 1, "second")
    customer = replace(reminder.customer, address=("12 Main Street", "Some Town"))
    letter = render_letter(replace(reminder, customer=customer), demo_settings, date(2026, 12, 2))
    window = letter.split('<div class="window">', 1)[1].split("</div>\n<p", 1)[0]
    if line is None:
        assert window.rstrip().endswith("Some Town<br>"), window
    else:
        assert window.rstrip().endswith(f"Some Town<br>{line}<br>"), window
    # An address that already names the country is not given it twice.
    if line is not None:
        named = replace(customer, address=("12 Main Street", "Some Town", line.split(" / ")[0]))
        again = render_letter(replace(reminder, customer=named), demo_settings, date(2026, 12, 2))
        assert again.count(line.split(" / ")[0]) == 1


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_invoice_total_is_named_only_when_part_was_paid(
    language: Language, demo_settings: Settings
) -> None:
    """Issue 17, M2: "£1,850.00 outstanding of £1,850.00" said the amount twice."""
    word = {
        "en": "(invoice total", "nl": "(factuurbedrag", "fr": "(montant de la facture",
        "de": "(Rechnungsbetrag", "nb": "(fakturabeløp", "vi": "(giá trị hóa đơn:",
    }[language]  # fmt: skip
    part_paid = reminder_for(language, 1)  # 1,234.50 left of 99,999,999,999
    text = " ".join(render_reminder(part_paid, demo_settings).text.split())
    total = " ".join(format_money(part_paid.invoices[0].total, LOCALE[language]).split())
    assert f"{word} {total})" in text, text
    (invoice,) = part_paid.invoices
    unpaid = replace(part_paid, invoices=(replace(invoice, total=invoice.amount_due),))
    assert word not in render_reminder(unpaid, demo_settings).text


def test_the_dutch_14_day_letter_says_what_it_is_and_keeps_its_term_everywhere(
    demo_settings: Settings,
) -> None:
    """Issue 17, M8: its e-mail said "deze brief"; its SMS gave a date two days earlier than
    the legal term; the QR caption said "uw" in a "je" message."""
    from plugin.compose.render import reminder_charges, render_letter
    from plugin.core.model import CustomerKind
    from plugin.core.policy import ChargeSettings

    settings = replace(
        demo_settings,
        defaults=replace(demo_settings.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NL"),
    )
    reminder = replace(
        reminder_for("nl", 1, "final"),
        charges=True,
        debtor=CustomerKind.CONSUMER,
        next_step_date=date(2026, 12, 6),
        formality="informal",
    )
    on = date(2026, 11, 22)
    charges = reminder_charges(reminder, settings, on, "nl_NL")
    assert charges is not None and charges["letter_deadline"] == "9 december 2026"
    rendered = render_reminder(reminder, settings, on=on)
    assert "deze e-mail ontvangt" in rendered.text and "deze brief" not in rendered.text
    assert "Scan met je bankapp" in (rendered.html or "")
    assert "deze brief ontvangt" in render_letter(reminder, settings, on)
    sms = render_sms(reminder, settings, on=on)
    assert "uiterlijk 9-12" in sms.text and "6-12" not in sms.text, sms.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_letter_of_up_to_eight_invoices_is_one_a4_page(
    language: Language, demo_settings: Settings
) -> None:
    """Issue 17, M9: a one-invoice letter spilled onto a second page. The final notice with
    charges, the longest letter, counted in the PDF that is printed."""
    from plugin.compose.render import letter_pdf, render_letter
    from plugin.core.model import CustomerKind
    from plugin.core.policy import ChargeSettings

    settings = replace(
        demo_settings,
        defaults=replace(demo_settings.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NL"),
    )
    for count in (1, 8):
        reminder = replace(
            reminder_for(language, count, "final", url_length=60),
            charges=True,
            debtor=CustomerKind.BUSINESS,
            next_step_date=date(2026, 12, 16),
        )
        customer = replace(
            reminder.customer, address=("Kinkerstraat 112", "1053 ED Amsterdam", "Building C")
        )
        page = render_letter(replace(reminder, customer=customer), settings, date(2026, 12, 2))
        pdf = letter_pdf(page)
        assert pdf.content.startswith(b"%PDF-")
        assert pdf.pages == 1, (language, count, pdf.pages)


def test_a_letter_fetches_nothing_from_outside(demo_settings: Settings, tmp_path: Path) -> None:
    """A user's own letter template cannot put a local file or a URL's content into a PDF."""
    from plugin.compose.render import letter_pdf

    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for letters")
    page = f'<html><body><img src="file://{secret}"><img src="http://127.0.0.1:9/x.png">Hi</body></html>'
    assert letter_pdf(page).pages == 1  # rendered without them, and without an error


#: Words that reproach ("despite our earlier message"): for the firm tone only.
REPROACHFUL = {
    "en": ("despite", "still not"),
    "nl": ("ondanks",),
    "fr": ("malgré",),
    "de": ("trotz",),
    "nb": ("til tross",),
    "vi": ("mặc dù",),
}


@pytest.mark.parametrize("formality", ["formal", "informal"])
@pytest.mark.parametrize("stage", ["courtesy", "first", "second"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_friendly_or_neutral_reminder_never_reproaches(
    language: Language, stage: str, formality: Formality, demo_settings: Settings
) -> None:
    """Issue 17, M5: the friendly second reminder was harsher than the neutral one."""
    for tone in ("friendly", "neutral"):
        for count in (1, 2):
            reminder = replace(reminder_for(language, count, stage, tone), formality=formality)
            rendered = render_reminder(reminder, demo_settings)
            text = f"{rendered.subject}\n{rendered.text}".lower()
            for word in REPROACHFUL[language]:
                assert word not in text, (tone, word, text[:400])


def test_a_signature_per_language(demo_settings: Settings) -> None:
    """Issue 17, M3: the Dutch role signed every language's reminder."""
    assert demo_settings.company.signatures["en"] == "Anouk Visser, accounts receivable"
    roles: dict[Language, str] = {
        "en": "accounts receivable",
        "de": "Buchhaltung",
        "nl": "debiteurenbeheer",
    }
    for language, role in roles.items():
        text = render_reminder(reminder_for(language, 1), demo_settings).text
        assert f"Anouk Visser, {role}" in text
        assert language == "nl" or "debiteurenbeheer" not in text


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_an_sms_has_no_double_colon(
    language: Language, stage: str, demo_settings: Settings
) -> None:
    """Issue 17, a low: "Noordlicht Studio B.V.: herinnering: factuur …"."""
    text = render_sms(reminder_for(language, 1, stage), demo_settings).text
    head = text.split("(", 1)[0]  # the sender and the label, before the amount
    assert head.count(":") <= 1, text


@pytest.mark.parametrize("count", [1, 2])
def test_the_norwegian_final_notice_is_an_inkassovarsel(
    count: int, demo_settings: Settings
) -> None:
    """Issue 17: inkassoloven § 9 asks the warning to say so, give the deadline, and say
    that the claim goes to collection, with its costs, if it is not paid by then."""
    reminder = replace(reminder_for("nb", count, stage="final", tone="firm"), formality="informal")
    message = render_reminder(reminder, demo_settings)
    assert message.subject.startswith("Inkassovarsel: ")
    assert "Dette er et inkassovarsel etter inkassoloven § 9" in message.text
    assert (
        f"senest {format_date(PAY_BY, LOCALE['nb'])}. Dersom beløpet ikke er betalt innen "
        "fristen, vil kravet bli sendt til inkasso, og du kan bli ansvarlig for "
        "inkassokostnader." in message.text
    )
    assert "inkassovarsel" in render_sms(replace(reminder, channel="sms"), demo_settings).text


def test_appointment_reminders_are_not_signed_by_the_accounts_department(
    demo_settings: Settings, tmp_path: Path
) -> None:
    """Review M3: "Anouk Visser, debiteurenbeheer" signed a design review. By default the
    company signs; `[company] appointment_signature` names someone, per language or not."""
    from plugin.compose.render import render_appointment
    from plugin.config.settings import load_settings
    from plugin.core.model import Appointment

    start = datetime(2026, 12, 8, 13, 0, tzinfo=UTC)
    appointment = Appointment("A1", "Design review", start, start.replace(hour=14))

    def signed(settings: Settings, language: Language) -> str:
        mail = render_appointment(
            appointment,
            name="Ada",
            language=language,
            country=COUNTRY[language],
            timezone="Europe/Amsterdam",
            settings=settings,
        )
        return mail.text

    assert demo_settings.company.signatures or demo_settings.company.signature
    assert "Anouk Visser" not in signed(demo_settings, "nl")
    config = tmp_path / "kindly.toml"
    config.write_text(
        '[company]\nname = "Studio"\nemail = "hi@studio.example"\n'
        'appointment_signature = { en = "Anouk, studio", nl = "Anouk, studio (NL)" }\n',
        encoding="utf-8",
    )
    per_language = load_settings(config)
    assert "Anouk, studio (NL)\nStudio" in signed(per_language, "nl")
    assert "Anouk, studio\nStudio" in signed(per_language, "de")
    config.write_text(
        '[company]\nname = "Studio"\nemail = "hi@studio.example"\n'
        'appointment_signature = "Sam, front desk"\n',
        encoding="utf-8",
    )
    assert "Sam, front desk\nStudio" in signed(load_settings(config), "fr")


def test_an_all_day_event_is_its_date_on_every_clock(demo_settings: Settings) -> None:
    """Issue 18: an all-day event on Friday 4 December, read on the calendar's Amsterdam
    clock, went to a client in London as "Thursday, 3 December 2026"."""
    from zoneinfo import ZoneInfo

    from plugin.compose.render import render_appointment
    from plugin.core.model import Appointment

    start = datetime(2026, 12, 4, 0, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    appointment = Appointment("A1", "Studio day", start, start.replace(day=5), all_day=True)
    mail = render_appointment(
        appointment,
        name="Ada",
        language="en",
        country="GB",
        timezone="Europe/London",
        settings=demo_settings,
    )
    assert "Friday, 4 December 2026" in mail.text and "3 December" not in mail.text


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "are overdue, the oldest since"),
        ("nl", "zijn vervallen, de oudste op"),
        ("de", "fällig, die älteste seit"),
        ("fr", "échues, la plus ancienne le"),
        ("nb", "er forfalt, den eldste"),
        ("vi", "HD cu nhat han"),
    ],
)
def test_a_first_sms_for_several_invoices_gives_the_oldest_due_date_as_such(
    language: Language, words: str, demo_settings: Settings
) -> None:
    """The review's check: "3 invoices (£6,340.00) were due 17/10" said of one due 12 Dec."""
    reminder = replace(reminder_for(language, 3, "first"), channel="sms")
    assert words in render_sms(reminder, demo_settings).text


@pytest.mark.parametrize(
    ("language", "contact", "greeting"),
    [
        ("nl", "Sanne de Vries", "Beste Sanne,"),
        ("de", "Katrin Müller", "Hallo Katrin,"),
        ("en", "Dr. Oliver Hughes", "Dear Oliver,"),
    ],
)
def test_an_informal_greeting_says_the_given_name_of_a_full_name(
    language: Language, contact: str, greeting: str, demo_settings: Settings
) -> None:
    """The native re-check of issue 17: a client with only a full name on file got
    "Beste Sanne de Vries,"; a native writes "Beste Sanne,"."""
    reminder = reminder_for(language, 1, "first")
    customer = replace(reminder.customer, contact_name=contact, given_name=None)
    informal = replace(reminder, customer=customer, formality="informal")
    assert render_reminder(informal, demo_settings).text.startswith(greeting)


def test_a_german_letter_to_nobody_in_particular_opens_formally(
    demo_settings: Settings,
) -> None:
    reminder = reminder_for("de", 1, "first")
    customer = replace(reminder.customer, salutation=None, family_name=None)
    from plugin.compose.render import render_letter

    letter = render_letter(
        replace(reminder, customer=customer, channel="letter"), demo_settings, PAY_BY
    )
    assert "Sehr geehrte Damen und Herren," in letter and "Guten Tag" not in letter


def test_a_meeting_at_the_office_given_as_an_offset_is_on_the_offices_clock(
    demo_settings: Settings,
) -> None:
    """The native re-check of issue 17: the ledger gives meetings as times with an offset
    only; one at the Amsterdam office at 16:00 (+01:00) was told to a London client as
    "15:00–16:00 (London time)". Its offset is the company's: it is on Amsterdam's clock."""
    from datetime import timedelta, timezone

    from plugin.compose.render import render_appointment
    from plugin.core.model import Appointment

    start = datetime(2026, 12, 8, 16, 0, tzinfo=timezone(timedelta(hours=1)))
    meeting = Appointment(
        "A7", "Studio visit", start, start + timedelta(hours=1),
        location="Prinsengracht 263, Amsterdam",
    )  # fmt: skip
    mail = render_appointment(
        meeting, name="Oliver", language="en", country="GB", timezone="Europe/London",
        settings=demo_settings,
    )  # fmt: skip
    text = " ".join(mail.text.split())
    assert "16:00–17:00 (Amsterdam time)" in text, text


def test_a_meeting_in_a_city_the_zone_database_knows_is_on_that_citys_clock(
    demo_settings: Settings,
) -> None:
    """The native re-check: a meeting in London given as 11:00+00:00 was told to a client
    in Oslo as "kl. 12.00–13.00 (Oslo-tid)"; a native expects London's clock."""
    from datetime import timedelta

    from plugin.compose.render import render_appointment
    from plugin.core.model import Appointment

    start = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    meeting = Appointment(
        "A8", "Kvartalsmøte", start, start + timedelta(hours=1), location="5 Park Row, London"
    )
    mail = render_appointment(
        meeting, name="Kari", language="nb", country="NO", timezone="Europe/Oslo",
        settings=demo_settings,
    )  # fmt: skip
    assert "kl. 11.00–12.00 (London-tid)" in " ".join(mail.text.split()), mail.text


def test_an_address_beyond_ascii_is_refused_in_plain_words(demo_settings: Settings) -> None:
    """Found by the Exact Online end-to-end test: "chloé@client.example" failed with
    "'ascii' codec can't encode character" while the message was composed."""
    reminder = reminder_for("fr", 1, "first")
    reminder = replace(reminder, recipients=("chloé@client.example",))
    with pytest.raises(ValueError, match="beyond ASCII; Kindly cannot send to such an address"):
        build_email(reminder, render_reminder(reminder, demo_settings), demo_settings, NOW)
