"""The charges a message claims say what they are, under which law, at what rate and over
which days; a rate agreed in the contract is never called statutory (issue 17, review M6)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from plugin.compose.formatting import format_money
from plugin.compose.render import render_reminder
from plugin.config.settings import Company, Settings
from plugin.core.decisions import PlannedReminder, reminder_key
from plugin.core.model import Customer, CustomerKind, Invoice
from plugin.core.money import Money
from plugin.core.policy import ChargeSettings
from plugin.core.vocabulary import Language

ON = date(2026, 12, 1)


def _final(language: Language, country: str, currency: str) -> PlannedReminder:
    customer = Customer(
        id="C1",
        name="Client Co",
        emails=("ada@client.example",),
        language=language,
        country=country,
        timezone="Europe/Amsterdam",
        kind=CustomerKind.BUSINESS,
    )
    invoice = Invoice(
        id="I1",
        number="NS-1",
        customer_id="C1",
        issue_date=date(2026, 9, 1),
        due_date=date(2026, 10, 1),
        total=Money.of("10000", currency),
        amount_due=Money.of("10000", currency),
    )
    return PlannedReminder(
        key=reminder_key("ledger", "C1", ["I1"], "final", "email"),
        source="ledger",
        customer=customer,
        invoices=(invoice,),
        stage="final",
        channel="email",
        recipients=customer.emails,
        language=language,
        tone="firm",
        template="final",
        charges=True,
        debtor=CustomerKind.BUSINESS,
        next_step_date=date(2026, 12, 15),
    )


def _settings(jurisdiction: str, contract_rate: Decimal | None = None) -> Settings:
    return Settings(
        company=Company(name="Creditor", email="ar@creditor.example", country=jurisdiction),
        charges=ChargeSettings(jurisdiction=jurisdiction, contract_rate=contract_rate),
    )


@pytest.mark.parametrize(
    ("language", "country", "currency", "jurisdiction", "line"),
    [
        (
            "nl",
            "NL",
            "EUR",
            "NL",
            "- Wettelijke handelsrente (art. 6:119a BW), {rate} per jaar, "
            "van 2 oktober 2026 tot en met 1 december 2026: ",
        ),
        (
            "de",
            "DE",
            "EUR",
            "DE",
            "- Verzugszinsen (§ 288 Abs. 2 BGB), {rate} p. a., "
            "vom 2. Oktober 2026 bis 1. Dezember 2026: ",
        ),
        (
            "fr",
            "FR",
            "EUR",
            "FR",
            "- Pénalités de retard (art. L441-10 du Code de commerce), au taux annuel de {rate}, "
            "du 2 octobre 2026 au 1 décembre 2026\u00a0: ",
        ),
        (
            "en",
            "GB",
            "GBP",
            "GB",
            "- Statutory interest (Late Payment of Commercial Debts (Interest) Act 1998) at "
            "{rate} a year from 2 October 2026 to 1 December 2026: ",
        ),
        (
            "en",
            "IE",
            "EUR",
            "IE",
            "- Statutory interest (European Communities (Late Payment in Commercial "
            "Transactions) Regulations 2012) at {rate} a year from 2 October 2026 to "
            "1 December 2026: ",
        ),
        (
            "nb",
            "NO",
            "NOK",
            "NO",
            "- Forsinkelsesrente (forsinkelsesrenteloven), {rate} per år, "
            "fra 2. oktober 2026 til 1. desember 2026: ",
        ),
    ],
)
def test_statutory_interest_names_its_law_rate_and_period(
    language: Language, country: str, currency: str, jurisdiction: str, line: str
) -> None:
    from plugin.core.claims import Claims, reminder_claims

    reminder = _final(language, country, currency)
    settings = _settings(jurisdiction)
    claims = reminder_claims(reminder, settings, ON)
    assert isinstance(claims, Claims) and len(claims.rates) == 1
    text = render_reminder(reminder, settings, on=ON).text
    (rate,) = claims.rates
    written = {
        "en": f"{rate.normalize():f}%",
        "nl": f"{rate.normalize():f}%".replace(".", ","),
    }.get(language, f"{rate.normalize():f}\u00a0%".replace(".", ","))
    assert line.format(rate=written) in text


def test_a_contract_rate_is_never_called_statutory() -> None:
    """Review M6: with a contract rate the Vietnamese text said "theo quy định của pháp
    luật chúng tôi có quyền tính thêm" (the law entitles us)."""
    reminder = _final("vi", "VN", "VND")
    settings = _settings("VN", contract_rate=Decimal(12))
    text = render_reminder(reminder, settings, on=ON).text
    assert "pháp luật" not in text
    # The basis is said once, on the interest line, not again in the sentence before it.
    assert text.count("theo thỏa thuận trong hợp đồng") == 1
    assert "- Lãi chậm trả theo thỏa thuận trong hợp đồng, lãi suất 12%/năm, từ ngày " in text
    english = render_reminder(_final("en", "VN", "VND"), settings, on=ON).text
    assert "Statutory" not in english and "the law entitles" not in english
    assert "- Interest at the agreed rate at 12% a year from " in english


def test_the_norwegian_compensation_says_the_reminder_fee_is_taken_off() -> None:
    """The review's check: "Kompensasjon … 822,00 kr" beside "Purregebyr: 38,00 kr" read
    as both charged in full; the § 3a compensation is offset against the fee."""
    from dataclasses import replace

    from plugin.core.claims import Claims, reminder_claims

    reminder = replace(_final("nb", "NO", "NOK"), reminder_fee=True)
    settings = _settings("NO")
    claims = reminder_claims(reminder, settings, ON)
    assert isinstance(claims, Claims) and claims.compensation and claims.reminder_fee
    text = render_reminder(reminder, settings, on=ON).text
    (line,) = [row for row in text.splitlines() if "(fratrukket purregebyret)" in row]
    assert line.startswith("- ") and line.endswith(format_money(claims.compensation, "nb_NO"))


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "a year from each invoice’s due date to 1 December 2026: "),
        ("nl", "per jaar, vanaf de vervaldatum van elke factuur tot en met 1 december 2026: "),
    ],
)
def test_interest_on_several_invoices_runs_from_each_ones_due_date(
    language: Language, words: str
) -> None:
    """The review's check: one "from 15 November" for invoices due on different days."""
    from dataclasses import replace

    reminder = _final(language, "GB" if language == "en" else "NL", "EUR")
    (first,) = reminder.invoices
    later = replace(first, id="I2", number="NS-2", due_date=date(2026, 10, 20))
    reminder = replace(reminder, invoices=(first, later))
    text = render_reminder(reminder, _settings("NL"), on=ON).text
    assert words in text


def test_an_irish_final_notice_claims_the_banded_compensation() -> None:
    """Issue 19: Ireland had no jurisdiction of its own and fell back to a flat EUR 40."""
    reminder = _final("en", "IE", "EUR")
    text = render_reminder(reminder, _settings("IE"), on=ON).text
    # EUR 10,000: the top band of S.I. 580/2012 reg. 6, EUR 100.
    assert "Fixed compensation for recovery costs: €100.00" in text


def test_a_dutch_company_claims_no_euro_costs_on_a_claim_in_pounds() -> None:
    from plugin.core.claims import Claims, reminder_claims

    reminder = _final("en", "GB", "GBP")
    claims = reminder_claims(reminder, _settings("NL"), ON)
    assert isinstance(claims, Claims)
    assert claims.costs is None
    assert "Collection costs" not in render_reminder(reminder, _settings("NL"), on=ON).text


SMS_WITH_CHARGES = {
    "nl": "incl. rente en kosten)",
    "de": "inkl. Zinsen und Kosten)",
    "fr": "tous frais compris)",
    "en": "incl. interest and costs)",
    "nb": "inkl. renter og kostnader)",
}


@pytest.mark.parametrize(
    ("language", "country", "currency"),
    [("nl", "NL", "EUR"), ("de", "DE", "EUR"), ("fr", "FR", "EUR"), ("en", "GB", "GBP"),
     ("nb", "NO", "NOK")],
)  # fmt: skip
def test_a_final_sms_says_its_total_holds_the_charges(
    language: Language, country: str, currency: str
) -> None:
    """The native check: "Rechnung NS-1 (EUR 10.245,31) offen" reads as that invoice's
    amount. The one amount stays, and says what it holds beside the invoice."""
    from dataclasses import replace

    from plugin.compose.render import render_sms
    from plugin.core.claims import Claims, reminder_claims

    reminder = replace(_final(language, country, currency), channel="sms")
    settings = _settings(country)
    claims = reminder_claims(reminder, settings, ON)
    assert isinstance(claims, Claims)
    sms = render_sms(reminder, settings, on=ON)
    locale = {"en": "en_GB", "nb": "nb_NO"}.get(language, f"{language}_{country}")
    total = format_money(claims.total, locale).replace("\u00a0", " ").replace("\u202f", " ")
    assert f"({total} {SMS_WITH_CHARGES[language]}" in sms.text, sms.text
    assert format_money(reminder.invoices[0].amount_due, locale) not in sms.text
    assert sms.count.fits(160), sms.text


def test_an_sms_without_charges_says_nothing_of_them() -> None:
    from dataclasses import replace

    from plugin.compose.render import render_sms

    reminder = replace(_final("de", "DE", "EUR"), channel="sms", charges=False)
    sms = render_sms(reminder, _settings("DE"), on=ON)
    assert "(10.000,00 €) offen" in sms.text, sms.text
    assert "inkl." not in sms.text


SMS_HOLDS = {
    "nl": "incl. rente en kosten",
    "de": "inkl. Zinsen und Kosten",
    "fr": "frais inclus",
    "en": "incl. interest and costs",
    "nb": "inkl. renter og kostnader",
}


@pytest.mark.parametrize(
    ("language", "country", "currency"),
    [("nl", "NL", "EUR"), ("de", "DE", "EUR"), ("fr", "FR", "EUR"), ("en", "GB", "GBP"),
     ("nb", "NO", "NOK")],
)  # fmt: skip
def test_a_final_sms_with_charges_and_a_pay_link_fits_one_part(
    language: Language, country: str, currency: str
) -> None:
    """The native re-check of issue 17: a single-invoice final notice with its charges and
    the invoice's pay link went out in two parts in French (172 units), Dutch (165) and
    German (161). Compact, it fits one, and the total still says what it holds."""
    from dataclasses import replace

    from plugin.compose.render import render_sms

    reminder = replace(_final(language, country, currency), channel="sms")
    invoice = replace(
        reminder.invoices[0],
        number="NS-0138",
        online_url="https://pay.noordlicht.example/invoice/NS-0138",
    )
    reminder = replace(reminder, invoices=(invoice,))
    settings = _settings(country)
    company = replace(settings.company, name="Noordlicht Studio B.V.", sms_sender=None)
    sms = render_sms(reminder, replace(settings, company=company), on=ON)
    assert sms.count.fits(160), (sms.text, sms.count)
    assert SMS_HOLDS[language] in sms.text, sms.text
    link = "https://pay.noordlicht.example/invoice/NS-0138"
    assert "NS-0138" in sms.text and sms.text.rstrip().endswith(link)


@pytest.mark.parametrize(
    ("language", "country", "named"),
    [
        ("de", "DE", "Verzugszinsen nach niederländischem Recht (art. 6:119a Burgerlijk Wetboek)"),
        ("fr", "FR", "Intérêts de retard selon le droit néerlandais (art. 6:119a Burgerlijk"),
        ("en", "GB", "Statutory interest under Dutch law (art. 6:119a Burgerlijk Wetboek)"),
        ("nb", "NO", "Forsinkelsesrente etter nederlandsk lov (art. 6:119a Burgerlijk Wetboek)"),
        ("vi", "VN", "theo quy định của pháp luật Hà Lan (art. 6:119a Burgerlijk Wetboek)"),
        ("nl", "NL", "Wettelijke handelsrente (art. 6:119a BW)"),
    ],
)  # fmt: skip
def test_the_law_of_another_country_is_named_as_such(
    language: Language, country: str, named: str
) -> None:
    """The native re-check of issue 17: a German reader of a Dutch creditor's notice read
    "(art. 6:119a BW)", and "BW" is Baden-Württemberg to a German."""
    text = render_reminder(_final(language, country, "EUR"), _settings("NL"), on=ON).text
    assert named in text, text
