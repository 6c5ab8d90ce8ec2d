"""A consolidated reminder keeps each invoice's own history (issue 17, HIGH-2).

A client with an invoice at its final notice and one that fell due last week gets one
message. It must not say "despite our earlier reminders" of the new one, nor threaten
collection over it, nor charge it; it names the new one as "also now due", says when we
wrote about the old one, and asks for one amount throughout.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from plugin.compose.formatting import format_date, format_money
from plugin.compose.render import (
    letter_and_charges,
    render_reminder,
    render_sms,
)
from plugin.config.locales import babel_locale_name
from plugin.config.settings import Bank, Company, Defaults, Settings
from plugin.core.businessdays import SendWindow
from plugin.core.claims import Claims, reminder_claims
from plugin.core.decisions import PlannedReminder, SentReminder
from plugin.core.model import Customer, CustomerKind, Invoice, LedgerSnapshot
from plugin.core.money import Money
from plugin.core.planning import plan_reminders
from plugin.core.policy import DEFAULT_POLICY, ChargeSettings, Policy, default_formality
from plugin.core.vocabulary import LANGUAGES, Language, Tone

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TODAY = date(2026, 12, 1)
SECOND_SENT = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)
COUNTRY = {"en": "GB", "nl": "NL", "fr": "FR", "nb": "NO", "de": "DE", "vi": "VN"}
# Words that belong to the final notice's history and consequence, per language: the
# newer invoice's number must never stand in the sentence that holds them.
HISTORY_WORDS = {
    "en": "earlier reminders",
    "nl": "eerdere herinneringen",
    "de": "bisherigen Erinnerungen",
    "fr": "précédents rappels",
    "nb": "tidligere påminnelser",
    "vi": "nhiều lần nhắc",
}
ALSO_DUE = {
    "en": "this invoice is now also overdue",
    "nl": "is inmiddels ook deze factuur vervallen",
    "de": "ist inzwischen auch diese Rechnung fällig",
    "fr": "Par ailleurs, la facture suivante est arrivée à échéance",
    "nb": "I tillegg har denne fakturaen forfalt",
    "vi": "hóa đơn sau cũng đã đến hạn thanh toán",
}
COLLECTION = {
    "en": "collection agency",
    "nl": "incassobureau",
    "de": "Inkassounternehmen",
    "fr": "organisme spécialisé",
    "nb": "sendt til inkasso",
    "vi": "công ty thu hồi nợ",
}


def _settings() -> Settings:
    policy: Policy = replace(DEFAULT_POLICY, send_window=SendWindow(always=True))
    return Settings(
        company=Company(
            name="Creditor B.V.",
            email="ar@creditor.example",
            country="NL",
            phone="+31 20 555 0100",
        ),
        defaults=Defaults(charges=True),
        policies={"default": policy},
        charges=ChargeSettings(jurisdiction="NL"),
        bank=Bank(iban="NL91ABNA0417164300", bic="ABNANL2A", account_holder="Creditor B.V."),
    )


def _client(language: Language) -> Customer:
    return Customer(
        id="C1",
        name="Client Co",
        contact_name="Ada Client",
        emails=("ada@client.example",),
        phones=("+31 6 5550 1234",),
        language=language,
        country=COUNTRY[language],
        timezone="Europe/Amsterdam",
        kind=CustomerKind.BUSINESS,
        address=("Street 1", "1000 AA City"),
    )


def _invoice(iid: str, number: str, due: date, amount: str) -> Invoice:
    return Invoice(
        id=iid,
        number=number,
        customer_id="C1",
        issue_date=due - timedelta(days=30),
        due_date=due,
        total=Money.of(amount, "EUR"),
        amount_due=Money.of(amount, "EUR"),
    )


OLD = _invoice("I1", "NS-0101", date(2026, 10, 1), "1000.00")
NEW = _invoice("I2", "NS-0165", date(2026, 11, 25), "500.00")


def _planned(language: Language, tone: Tone | None = None) -> PlannedReminder:
    """Plan, as `kindly run` does, for a client whose old invoice had its first and
    second reminder and whose new one fell due a few days ago."""
    history = (
        SentReminder("k1", "C1", ("I1",), "first", "email", datetime(2026, 10, 6, 9, tzinfo=UTC)),
        SentReminder("k2", "C1", ("I1",), "second", "email", SECOND_SENT),
    )
    snapshot = LedgerSnapshot(customers=(_client(language),), invoices=(OLD, NEW))
    plan = plan_reminders(
        snapshot,
        _settings(),
        history,
        now=NOW,
        source="ledger",
        channels_available=("email", "sms", "letter", "task"),
    )
    (reminder,) = plan.reminders
    reminder = replace(reminder, formality=default_formality(language))
    return replace(reminder, tone=tone) if tone else reminder


def test_the_planner_keeps_each_invoices_stage_history_and_charges() -> None:
    reminder = _planned("en")
    assert reminder.stage == "final"
    assert dict(reminder.invoice_stages) == {"I1": "final", "I2": "first"}
    assert dict(reminder.reminded_on) == {"I1": date(2026, 11, 17)}
    assert reminder.uncharged == frozenset({"I2"})
    assert [i.id for i in reminder.lead_invoices] == ["I1"]
    assert [i.id for i in reminder.newer_invoices] == ["I2"]
    claims = reminder_claims(reminder, _settings(), TODAY)
    assert isinstance(claims, Claims)
    # Interest and costs are on the old invoice alone; the total asks for both.
    assert claims.principal == Money.of("1000.00", "EUR")
    alone = reminder_claims(
        replace(reminder, invoices=(OLD,), invoice_stages={"I1": "final"}, uncharged=frozenset()),
        _settings(),
        TODAY,
    )
    assert isinstance(alone, Claims)
    assert claims.interest == alone.interest and claims.costs == alone.costs
    assert claims.total == alone.total + NEW.amount_due


def test_a_note_before_the_due_date_is_not_folded_into_a_reminder() -> None:
    policy = replace(DEFAULT_POLICY, send_window=SendWindow(always=True))
    policy = replace(
        policy,
        stages=tuple(
            replace(stage, enabled=True) if stage.name == "courtesy" else stage
            for stage in policy.stages
        ),
    )
    coming = _invoice("I3", "NS-0170", TODAY + timedelta(days=2), "300.00")
    snapshot = LedgerSnapshot(customers=(_client("en"),), invoices=(OLD, coming))
    plan = plan_reminders(
        snapshot,
        replace(_settings(), policies={"default": policy}),
        (),
        now=NOW,
        source="ledger",
        channels_available=("email", "task"),
    )
    assert sorted((r.stage, tuple(i.id for i in r.invoices)) for r in plan.reminders) == [
        ("courtesy", ("I3",)),
        ("first", ("I1",)),
    ]


def _opening(text: str) -> str:
    """The paragraph after the greeting: where the stage's history is told."""
    return text.split("\n\n")[1]


@pytest.mark.parametrize("tone", ["friendly", "neutral", "firm"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_final_notice_tells_each_invoices_own_story(language: Language, tone: Tone) -> None:
    reminder = _planned(language, tone)
    settings = _settings()
    locale = babel_locale_name(language, COUNTRY[language])
    message = render_reminder(reminder, settings, on=TODAY)
    text = message.text
    opening = _opening(text)
    assert HISTORY_WORDS[language] in opening
    assert OLD.number in opening and NEW.number not in opening
    # We say when we last wrote about the old invoice.
    assert format_date(date(2026, 11, 17), locale) in opening
    # The new one is named as also due, with its own line, after the old one's.
    assert ALSO_DUE[language] in text
    assert text.index(OLD.number) < text.index(ALSO_DUE[language]) < text.index(NEW.number)
    # The consequence names the old invoice alone.
    consequence = next(p for p in text.split("\n\n") if COLLECTION[language] in p)
    assert OLD.number in consequence and NEW.number not in consequence
    # One amount: the text, the HTML, the QR code and the SMS ask for the same total, and
    # it is both invoices plus the charges on the old one.
    claims = reminder_claims(reminder, settings, TODAY)
    assert isinstance(claims, Claims)
    total = format_money(claims.total, locale)
    assert total in consequence
    assert message.html is not None and total in message.html
    # The QR code is made from what the message logs as its charges' total.
    assert message.charges["total_amount"] == str(claims.total.amount)
    sms = render_sms(replace(reminder, channel="sms"), settings, on=TODAY)
    assert re.sub(r"\D", "", total) in re.sub(r"\D", "", sms.text)
    assert sms.count.segments == 1
    letter, _charges = letter_and_charges(replace(reminder, channel="letter"), settings, TODAY)
    assert total in letter and ALSO_DUE[language] in letter


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_final_notice_of_one_history_reads_as_before(language: Language) -> None:
    """Without newer invoices nothing is "also due", and the consequence is general."""
    reminder = _planned(language)
    alone = replace(
        reminder, invoices=(OLD,), invoice_stages={"I1": "final"}, uncharged=frozenset()
    )
    text = render_reminder(alone, _settings(), on=TODAY).text
    assert ALSO_DUE[language] not in text
    assert NEW.number not in text
    assert COLLECTION[language] in text


def test_a_dutch_14_day_letter_with_a_newer_invoice_asks_for_one_total() -> None:
    """The review's check after the fixes: the consumer letter asked "het openstaande
    bedrag van € 595,00 voor factuur NS-0140" beside "Totaal openstaand: € 715,00" and a
    QR code of 715. One total is asked by the letter's day; the costs it names are on the
    invoice that went through the stages before."""
    reminder = _planned("nl")
    consumer = replace(reminder.customer, kind=CustomerKind.CONSUMER)
    reminder = replace(reminder, customer=consumer, debtor=CustomerKind.CONSUMER)
    settings = _settings()
    message = render_reminder(reminder, settings, on=TODAY)
    text = " ".join(message.text.split())
    total = " ".join(format_money(OLD.amount_due + NEW.amount_due, "nl_NL").split())
    assert f"het openstaande bedrag van {total} te betalen binnen 14 dagen" in text
    assert re.search(r"incassokosten verschuldigd van € [\d.,]+ voor factuur NS-0101", text)
    assert message.charges["letter_principal"].replace("\xa0", " ") == "€ 1.000,00"


def test_a_preview_at_a_chosen_stage_keeps_the_newer_invoices_own_history() -> None:
    """The review's check: `kindly preview C01 --stage final` put a one-day-overdue invoice
    at the final notice and threatened collection over it."""
    from plugin.core.planning import preview_reminders

    history = (
        SentReminder("k1", "C1", ("I1",), "first", "email", datetime(2026, 10, 6, 9, tzinfo=UTC)),
    )
    snapshot = LedgerSnapshot(customers=(_client("en"),), invoices=(OLD, NEW))
    (reminder,) = preview_reminders(
        snapshot,
        _settings(),
        history,
        now=NOW,
        source="ledger",
        client_id="C1",
        stage="final",
    )
    assert reminder.stage == "final"
    assert dict(reminder.invoice_stages) == {"I1": "final", "I2": "first"}
    text = render_reminder(reminder, _settings(), on=TODAY).text
    consequence = next(p for p in text.split("\n\n") if COLLECTION["en"] in p)
    assert OLD.number in consequence and NEW.number not in consequence


ONE_REMINDER = {
    "en": "despite our reminder of 17 November 2026, invoice NS-0101",
    "nl": "ondanks onze herinnering van 17 november 2026 hebben wij de betaling van factuur",
    "de": "Trotz unserer Erinnerung vom 17. November 2026 haben wir für die Rechnung NS-0101",
    "fr": "Malgré notre rappel du 17 novembre 2026, la facture NS-0101",
    "nb": "Til tross for vår påminnelse av 17. november 2026 er faktura NS-0101",
    "vi": "mặc dù chúng tôi đã nhắc vào ngày 17 tháng 11 năm 2026, hóa đơn NS-0101",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_final_notice_after_one_reminder_speaks_of_that_one(language: Language) -> None:
    """A final notice after a single reminder (a policy without a second stage, or a
    preview at the final stage) said "despite our earlier reminders, the last on ..."."""
    reminder = _planned(language)
    once = replace(
        reminder,
        invoices=(OLD,),
        invoice_stages={"I1": "final"},
        uncharged=frozenset(),
        reminders_before={"I1": 1},
    )
    text = " ".join(_opening(render_reminder(once, _settings(), on=TODAY).text).split())
    assert ONE_REMINDER[language] in text, text
    assert HISTORY_WORDS[language] not in text
    assert reminder.reminders_before == {"I1": 2}
    twice = " ".join(_opening(render_reminder(reminder, _settings(), on=TODAY).text).split())
    assert HISTORY_WORDS[language] in twice


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_consolidated_final_sms_fits_with_long_numbers_and_name(language: Language) -> None:
    """The review: a French final notice by SMS took 162 units ("Noordlicht : dernière
    relance, facture NS-0135 + 1 autre (5 970,00 €) impayées. Merci de régler au plus tard
    le 14/01…"). Last of all, the invoices are named by their number alone."""
    reminder = _planned(language, "firm")
    long_numbers = tuple(
        replace(invoice, number=f"NS-2026-{invoice.number}-A") for invoice in reminder.invoices
    )
    reminder = replace(reminder, invoices=long_numbers, channel="sms")
    settings = replace(
        _settings(), company=replace(_settings().company, name="Noordlicht Studio Amsterdam B.V.")
    )
    sms = render_sms(reminder, settings, on=TODAY)
    assert sms.count.segments == 1, (sms.count, sms.text)


def test_a_norwegian_inkassovarsel_names_only_the_invoices_it_warns_of() -> None:
    """The review: "Inkassovarsel: 4 ubetalte fakturaer" while the § 9 warning covered
    two; the newer invoices are only reminded of."""
    message = render_reminder(_planned("nb"), _settings(), on=TODAY)
    assert message.subject == "Inkassovarsel: faktura NS-0101"


ALSO_STILL_OPEN = {
    "en": "In addition, this invoice is also still unpaid:",
    "nl": "Daarnaast staat ook deze factuur nog open:",
    "de": "Außerdem ist auch diese Rechnung noch offen:",
    "fr": "La facture suivante reste également impayée\u00a0:",
    "nb": "Også denne fakturaen er fortsatt ubetalt:",
    "vi": "Ngoài ra, hóa đơn sau vẫn chưa được thanh toán:",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_newer_invoice_reminded_before_is_still_open_not_newly_due(language: Language) -> None:
    """The review: the final notice of 31 December announced an invoice named on 17
    December as newly due again ("Par ailleurs … également arrivée à échéance")."""
    reminder = _planned(language)
    reminded = replace(reminder, reminded_on={**reminder.reminded_on, "I2": date(2026, 11, 20)})
    text = render_reminder(reminded, _settings(), on=TODAY).text
    assert ALSO_STILL_OPEN[language] in text, text
    assert ALSO_DUE[language] not in text


def test_a_consolidated_sms_of_several_lead_invoices_counts_them_all() -> None:
    """The native check: "2 facturen + 2 andere (€ 3.375,00)" where a native writes
    "4 facturen"; "+ 1 andere" reads well only after a single invoice number."""
    reminder = _planned("nl", "firm")
    older = replace(OLD, id="I0", number="NS-0099")
    several = replace(
        reminder,
        invoices=(older, *reminder.invoices),
        invoice_stages={**reminder.invoice_stages, "I0": "final"},
        channel="sms",
    )
    text = render_sms(several, _settings(), on=TODAY).text
    assert "3 facturen" in text and "andere" not in text, text
    single = render_sms(replace(reminder, channel="sms"), _settings(), on=TODAY).text
    assert "factuur NS-0101 + 1 andere" in single, single


FUTURE = _invoice("I3", "NS-0170", date(2026, 12, 11), "250.00")


def _preview(history: tuple[SentReminder, ...], stage: str) -> PlannedReminder:
    from plugin.core.planning import preview_reminders

    snapshot = LedgerSnapshot(customers=(_client("en"),), invoices=(OLD, NEW, FUTURE))
    (reminder,) = preview_reminders(
        snapshot, _settings(), history, now=NOW, source="ledger", client_id="C1", stage=stage
    )
    return reminder


def test_a_preview_at_a_chosen_stage_puts_it_on_the_invoices_that_went_furthest() -> None:
    """The native check: `preview C01 --stage second` put the second reminder on an invoice
    due ten days later and never reminded, because its own next stage came first."""
    sent = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    history = (SentReminder("k1", "C1", ("I1", "I2"), "first", "email", sent),)
    reminder = _preview(history, "second")
    assert [i.id for i in reminder.invoices] == ["I1", "I2"]
    assert dict(reminder.invoice_stages) == {"I1": "second", "I2": "second"}
    text = " ".join(render_reminder(reminder, _settings(), on=TODAY).text.split())
    assert "NS-0170" not in text and "1 December 2026" in text


def test_a_final_notice_with_no_reminder_before_tells_no_history() -> None:
    """A preview at the final stage (or a policy whose only stage is the final notice)
    said "despite our earlier reminders" of an invoice never reminded."""
    reminder = _preview((), "final")
    assert [i.id for i in reminder.invoices] == ["I1", "I2"], "due now; NS-0170 is not"
    text = " ".join(render_reminder(reminder, _settings(), on=TODAY).text.split())
    assert "This is our final notice: the invoices below are still unpaid." in text
    assert "despite" not in text and "NS-0170" not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_first_final_notice_reads_without_a_history_in_every_language(
    language: Language,
) -> None:
    reminder = _planned(language)
    alone = replace(
        reminder,
        invoices=(OLD,),
        invoice_stages={"I1": "final"},
        uncharged=frozenset(),
        reminded_on={},
        reminders_before={},
    )
    opening = " ".join(_opening(render_reminder(alone, _settings(), on=TODAY).text).split())
    assert HISTORY_WORDS[language] not in opening and OLD.number in opening, opening
    assert ONE_REMINDER[language].split(" 17")[0] not in opening, opening


CONSEQUENCE = {
    "en": "to avoid collection",
    "nl": "om incasso te voorkomen",
    "de": "um ein Inkassoverfahren zu vermeiden",
    "fr": "pour éviter un recouvrement",
    "nb": "for å unngå inkasso",
    "vi": "sau do se chuyen thu hoi no",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_final_notice_by_sms_says_what_follows_when_it_fits(language: Language) -> None:
    """The native check: a single invoice's final SMS named no consequence."""
    reminder = _planned(language)
    alone = replace(
        reminder, invoices=(OLD,), invoice_stages={"I1": "final"}, uncharged=frozenset()
    )
    sms = render_sms(replace(alone, channel="sms"), _settings(), on=TODAY)
    assert sms.count.segments == 1
    from plugin.compose.sms_text import to_gsm7

    assert to_gsm7(CONSEQUENCE[language], all_accents=True) in to_gsm7(
        sms.text, all_accents=True
    ), sms.text


def test_a_dutch_final_notice_to_a_business_names_interest_and_costs() -> None:
    """The review (nl, optional): a final notice to a business without charges claimed
    did not say that statutory commercial interest and collection costs would be owed."""
    reminder = replace(_planned("nl"), charges=False, invoices=(OLD,))
    reminder = replace(reminder, invoice_stages={"I1": "final"}, uncharged=frozenset())
    text = " ".join(render_reminder(reminder, _settings(), on=TODAY).text.split())
    assert "en bent u bovendien de wettelijke handelsrente en incassokosten verschuldigd." in text
    consumer = replace(reminder, customer=replace(reminder.customer, kind=CustomerKind.CONSUMER))
    assert "handelsrente" not in render_reminder(consumer, _settings(), on=TODAY).text
