"""Turn a planned reminder into the words the client reads, in their language and tone.

Every sentence lives once per language in ``templates/lang/<language>.j2``; the layouts
``email/body.txt.j2``, ``email/body.html.j2``, ``email/subject.txt.j2`` and
``sms/message.txt.j2`` arrange them. Amounts and dates are formatted by babel for the
client's language and country: a Dutch client reads "€ 1.430,00" and "5 november 2026", a
French one "1 430,00 €" and "5 novembre 2026".

Templates autoescape HTML, and a template that names a variable the context lacks fails
loudly (StrictUndefined), so a letter to a client never has a blank. A user may override
any template from a folder of their own (``[templates] folder`` in kindly.toml); those run
in Jinja2's sandbox, in a worker process with a time, memory and output budget
(:mod:`plugin.compose.sandbox`), and :func:`check_overrides` rejects, at load time, an
override that uses a variable Kindly does not provide, naming the file, line and name.
Kindly's own templates, part of its code, run here without the sandbox
(:mod:`plugin.compose.templates`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.lists import format_list

from plugin.compose.epc_qr import epc_qr_png
from plugin.compose.formatting import (
    _day_and_month,
    babel_locale,
    format_date,
    format_money,
    without_bidi_controls,
)
from plugin.compose.sms_text import SegmentCount, count_segments, to_gsm7
from plugin.compose.templates import (
    CONTEXT_VARIABLES,
    bundled_environment,
    render_with,
    templates_dir,
)
from plugin.config.locales import babel_locale_name
from plugin.config.settings import Settings, appointment_signature_in, signature_in
from plugin.core.claims import Claims, LetterClaims, reminder_claims
from plugin.core.decisions import PlannedReminder
from plugin.core.model import Appointment, Customer, Invoice
from plugin.core.money import Money
from plugin.core.vocabulary import LANGUAGES, Formality, Language
from plugin.errors import ConfigError, TemplateProblem

__all__ = [
    "CONTEXT_VARIABLES",
    "Attachment",
    "RenderedMessage",
    "RenderedSms",
    "check_overrides",
    "format_date",
    "format_money",
    "letter_and_charges",
    "letter_pdf",
    "note_locale",
    "render_appointment",
    "render_appointment_sms",
    "render_letter",
    "render_reminder",
    "render_sms",
    "templates_dir",
]

QR_CID = "epc-qr@kindly"


def _render(settings: Settings, context: dict[str, Any], *names: str) -> list[str]:
    """Render templates that share one context: Kindly's own here, a user's own in the
    worker that holds them to their budget (:mod:`plugin.compose.sandbox`)."""
    if settings.templates is None:
        return render_with(bundled_environment(), context, names)
    from plugin.compose.sandbox import user_templates

    return user_templates(settings.templates, settings.template_budget).render(context, names)


def check_overrides(settings: Settings) -> list[str]:
    """Check the user's template folder; return the templates it overrides.

    Raises:
        ConfigError: a template is no template of Kindly's, is not UTF-8 text, does not
            compile, or uses a variable Kindly does not provide; names file and line.
    """
    if settings.templates is None:
        return []
    from plugin.compose.sandbox import user_templates

    if not settings.templates.is_dir():
        raise ConfigError(
            f"{settings.where}: field 'templates.folder': {settings.templates} does not exist"
        )
    return user_templates(settings.templates, settings.template_budget).check()


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    text: str
    language: str
    html: str | None = None
    #: A SEPA transfer QR code (PNG), shown inline in the HTML, for EUR reminders.
    qr_png: bytes | None = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)
    #: The charges it claims, as written in it (see reminder_charges); empty if none.
    charges: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderedSms:
    text: str
    language: str
    count: SegmentCount
    transliterated: bool
    #: The charges it claims, as written in it; empty if none.
    charges: Mapping[str, str] = field(default_factory=dict)


#: A greeting for someone whose salutation and name parts are unknown uses the full name.
NO_CONTACT: Mapping[str, str | None] = {"salutation": None, "given_name": None, "family_name": None}


def _contact(customer: Customer, language: str) -> Mapping[str, str | None]:
    """The contact person's salutation and name parts, for greetings (review M1).

    With only a full name on file, an informal greeting still says the given name alone
    ("Beste Sanne," not "Beste Sanne de Vries,"): the first word, or in Vietnamese, where
    the given name comes last, the last ("Chào anh Minh")."""
    given = customer.given_name
    if not given and customer.contact_name:
        words = [w for w in customer.contact_name.split() if not w.endswith(".")]
        if len(words) > 1:
            given = words[-1] if language == "vi" else words[0]
    return {
        "salutation": customer.salutation,
        "given_name": without_bidi_controls(given) if given else None,
        "family_name": (
            without_bidi_controls(customer.family_name) if customer.family_name else None
        ),
    }


def _invoice_row(invoice: Invoice, locale: str) -> dict[str, Any]:
    return {
        "number": without_bidi_controls(invoice.number),
        "issue_date": format_date(invoice.issue_date, locale),
        "due_date": format_date(invoice.due_date, locale),
        "total": format_money(invoice.total, locale),
        "amount_due": format_money(invoice.amount_due, locale),
        # The invoice's total is worth saying only when part of it was paid.
        "part_paid": invoice.amount_due != invoice.total,
        "online_url": invoice.online_url,
        "reference": without_bidi_controls(invoice.reference or invoice.number),
    }


def _context(
    reminder: PlannedReminder, settings: Settings, locale: str, **extra: Any
) -> dict[str, Any]:
    invoices = [_invoice_row(invoice, locale) for invoice in reminder.invoices]
    lead_ids = {invoice.id for invoice in reminder.lead_invoices}
    lead = [
        row
        for row, invoice in zip(invoices, reminder.invoices, strict=True)
        if invoice.id in lead_ids
    ]
    newer = [
        row
        for row, invoice in zip(invoices, reminder.invoices, strict=True)
        if invoice.id not in lead_ids
    ]
    reminded = [reminder.reminded_on[i] for i in lead_ids if i in reminder.reminded_on]
    lead_total = sum(
        (invoice.amount_due for invoice in reminder.lead_invoices), Money.zero(reminder.currency)
    )
    return {
        "language": reminder.language,
        # The words are chosen by the stage's wording (its template), which a policy of the
        # user's own names for each of its stages.
        "stage": reminder.template or reminder.stage,
        "tone": reminder.tone,
        "formal": reminder.formality != "informal",
        "greeting_name": reminder.customer.greeting_name,
        "contact": _contact(reminder.customer, reminder.language),
        "customer": reminder.customer,
        "company": settings.company,
        "company_address": _address_in(settings, locale),
        "signature": signature_in(settings.company, reminder.language),
        "bank": settings.bank,
        "invoices": invoices,
        "count": len(invoices),
        "total_due": format_money(reminder.amount_due, locale),
        # A consolidated reminder keeps each invoice's history (issue 17): the stage's
        # words are about the invoices that went through the stages before it ("lead");
        # newer ones are "also now due".
        "lead_invoices": lead,
        "lead_count": len(lead),
        "lead_total": format_money(lead_total, locale),
        "lead_numbers": format_list(
            [str(row["number"]) for row in lead], locale=babel_locale(locale)
        ),
        "also_due": newer,
        # Every newer invoice was reminded of before: "also still unpaid", not "now also
        # overdue" (the review: a final notice announced again an invoice named before).
        "also_reminded": bool(newer)
        and all(
            invoice.id in reminder.reminded_on
            for invoice in reminder.invoices
            if invoice.id not in lead_ids
        ),
        "also_count": len(newer),
        "last_reminded": format_date(max(reminded), locale) if reminded else None,
        # One earlier reminder or more: "our reminder of ..." or "our reminders, the last ...".
        "reminders_before": max((reminder.reminders_before.get(i, 0) for i in lead_ids), default=0),
        "payment_reference": ", ".join(str(row["reference"]) for row in invoices),
        "next_step_date": (
            format_date(reminder.next_step_date, locale) if reminder.next_step_date else None
        ),
        "attachments": [],
        "qr_cid": None,
        # "letter" for a printed letter: its words say "this letter", an e-mail's "this e-mail".
        "channel": reminder.channel,
        "charges": None,
        # What the message asks the client to pay: the total with charges, when claimed.
        "amount_to_pay": format_money(reminder.amount_due, locale),
        "charged": False,
        "charged_with": "",
        **extra,
    }


def reminder_charges(
    reminder: PlannedReminder, settings: Settings, on: date, locale: str
) -> dict[str, str] | None:
    """The charges a reminder claims (:func:`plugin.core.claims.reminder_claims`), as the
    client's language writes them; None if none. The reminder log keeps this dict."""
    return _written(reminder_claims(reminder, settings, on), locale)


def _written(claims: Claims | LetterClaims | None, locale: str) -> dict[str, str] | None:
    if claims is None:
        return None
    if isinstance(claims, LetterClaims):
        return {
            "on": format_date(claims.on, locale),
            "letter_deadline": format_date(claims.deadline, locale),
            "letter_costs": format_money(claims.costs, locale),
            "letter_principal": format_money(claims.principal, locale),
        }
    return {
        "on": format_date(claims.on, locale),
        "interest": format_money(claims.interest, locale),
        "compensation": format_money(claims.compensation, locale) if claims.compensation else "",
        "costs": format_money(claims.costs, locale) if claims.costs is not None else "",
        "reminder_fee": format_money(claims.reminder_fee, locale) if claims.reminder_fee else "",
        "pay_by": format_date(claims.pay_by, locale) if claims.pay_by else "",
        "total": format_money(claims.total, locale),
        "total_amount": str(claims.total.amount),
        # What the interest is, under which law, at what rate and since when (review M6).
        "interest_kind": claims.interest_kind,
        "jurisdiction": claims.jurisdiction,
        "interest_basis": claims.interest_basis or "",
        # Read abroad, a law's abbreviation says nothing, or another thing: "BW" is
        # Baden-Württemberg to a German (the native re-check of issue 17).
        "interest_basis_abroad": _spelled_out(claims.interest_basis or ""),
        "interest_from": format_date(claims.interest_from, locale) if claims.interest_from else "",
        "interest_from_each": "1" if claims.interest_from_each else "",
        "rate": _rates(claims.rates, locale),
        "rate_count": str(len(claims.rates)),
        "letter_deadline": "",
        "letter_costs": "",
        "letter_principal": "",
    }


_LAW_NAMES = {" BW": " Burgerlijk Wetboek", " BGB": " Bürgerliches Gesetzbuch"}


def _spelled_out(basis: str) -> str:
    for short, full in _LAW_NAMES.items():
        if basis.endswith(short):
            return basis[: -len(short)] + full
    return basis


def _rates(rates: tuple[Decimal, ...], locale: str) -> str:
    """Yearly rates as the reader writes them: "10.15%", "10,15 %", "8 % og 10,15 %"."""
    from babel.numbers import format_percent

    written = [
        format_percent(rate / 100, locale=babel_locale(locale), decimal_quantization=False)
        for rate in rates
    ]
    return format_list(written, locale=babel_locale(locale)) if written else ""


def _claim(
    context: dict[str, Any],
    reminder: PlannedReminder,
    settings: Settings,
    on: date,
    locale: str,
) -> date | None:
    """Put the reminder's charges into ``context``; return the day it asks payment by.

    One amount throughout (issue 17): with charges claimed, what the message asks for,
    in the text, the SMS and the QR code, is their total, not the invoices' principal. And
    one deadline: the later of the stage's and the one a reminder fee must give.
    """
    claims = reminder_claims(reminder, settings, on)
    context["charges"] = _written(claims, locale)
    pay_by = reminder.next_step_date
    if isinstance(claims, LetterClaims):
        # The Dutch 14-day letter's term is the legal one: the SMS and the e-mail of the
        # same reminder name that day, not the stage's own (M8).
        pay_by = claims.deadline
        context["next_step_date"] = format_date(pay_by, locale)
    if isinstance(claims, Claims):
        context["amount_to_pay"] = format_money(claims.total, locale)
        context["charged"] = True
        context["charged_with"] = _charged_with(claims)
        if claims.pay_by is not None and pay_by is not None and claims.pay_by > pay_by:
            pay_by = claims.pay_by
            context["next_step_date"] = format_date(pay_by, locale)
    return pay_by


def _charged_with(claims: Claims) -> str:
    """What a total in an SMS holds beside the invoices: "interest", "costs" or
    "charges" (both). Beside one invoice's number, a bare total reads as that invoice's
    amount (the native check of issue 17)."""
    costs = any(
        part is not None and part.amount
        for part in (claims.compensation, claims.costs, claims.reminder_fee)
    )
    if claims.interest.amount and costs:
        return "charges"
    return "costs" if costs else "interest"


def render_reminder(
    reminder: PlannedReminder,
    settings: Settings,
    attachments: Iterable[Attachment] = (),
    on: date | None = None,
) -> RenderedMessage:
    """The e-mail: subject, plain text, HTML, the QR code and attachments.

    ``on`` is the day the reminder goes out: statutory charges are worked out to it.
    """
    locale = babel_locale_name(reminder.language, reminder.customer.country)
    files = tuple(attachments)
    context = _context(
        reminder, settings, locale, attachments=[a.filename for a in files], channel="email"
    )
    if on is not None:
        _claim(context, reminder, settings, on, locale)
    qr = epc_qr_png(reminder, settings, context["payment_reference"], context["charges"])
    context["qr_cid"] = QR_CID if qr else None
    subject, text, html = _render(
        settings, context, "email/subject.txt.j2", "email/body.txt.j2", "email/body.html.j2"
    )
    # One line only: a subject is a header, and a header must not break.
    subject = _said(" ".join(subject.split()), "email/subject.txt.j2", context)
    _said(text, "email/body.txt.j2", context)
    return RenderedMessage(
        subject, text, reminder.language, html, qr, files, context["charges"] or {}
    )


def render_letter(reminder: PlannedReminder, settings: Settings, on: date) -> str:
    """A printable A4 letter (HTML) dated ``on``, with the client's address for a window."""
    return letter_and_charges(reminder, settings, on)[0]


def letter_and_charges(
    reminder: PlannedReminder, settings: Settings, on: date
) -> tuple[str, Mapping[str, str]]:
    """The letter (HTML), and the charges it claims as written in it (empty if none): the
    letter channel logs them, as the e-mail's and the SMS's are."""
    import base64

    locale = babel_locale_name(reminder.language, reminder.customer.country)
    context = _context(reminder, settings, locale, channel="letter")
    _claim(context, reminder, settings, on, locale)
    qr = epc_qr_png(reminder, settings, context["payment_reference"], context["charges"])
    context["qr_data_uri"] = (
        "data:image/png;base64," + base64.b64encode(qr).decode("ascii") if qr else None
    )
    context["letter_date"] = format_date(on, locale)
    context["letter_place"] = settings.company.city or ""
    context["destination_country"] = _destination_country(reminder.customer.country, settings)
    return _render(settings, context, "letter/letter.html.j2")[0], context["charges"] or {}


@dataclass(frozen=True, slots=True)
class LetterPdf:
    content: bytes
    pages: int


def letter_pdf(html: str) -> LetterPdf:
    """The letter as a PDF to print (WeasyPrint), with its number of A4 pages.

    Nothing is fetched while it is made: the letter's only image, the QR code, is inside it
    (a data: URL), and a user's own template must not make a letter read a file or a URL.
    """
    import weasyprint

    document = weasyprint.HTML(string=html, url_fetcher=_inside_only()).render()
    return LetterPdf(document.write_pdf(), len(document.pages))


def _inside_only() -> Any:
    import weasyprint

    if hasattr(weasyprint, "URLFetcher"):  # WeasyPrint 66 and later
        return weasyprint.URLFetcher(allowed_protocols={"data"})
    fetch = weasyprint.default_url_fetcher

    def data_only(url: str, *args: Any, **kwargs: Any) -> Any:
        if not url.startswith("data:"):
            raise ValueError(f"a letter loads nothing from outside it: {url[:60]}")
        return fetch(url, *args, **kwargs)

    return data_only


def _destination_country(country: str, settings: Settings) -> str | None:
    """The last line of a window address abroad: the country in capitals, as its own
    language names it and, where that differs, in English, so that both the sending and
    the receiving post read it ("NORGE / NORWAY"); None for a letter within the country."""
    if not country or country == (settings.company.country or country):
        return None
    english = babel_locale("en").territories.get(country)
    names = [name.upper() for name in (_own_country_name(country), english) if name]
    return " / ".join(dict.fromkeys(names)) if names else country


def _address_in(settings: Settings, locale: str) -> tuple[str, ...]:
    """The company's address, its country line in the reader's language: "Nederland" is
    "Netherlands" to an English client and "Hà Lan" to a Vietnamese one (M3)."""
    company = settings.company
    lines = company.address
    if not lines or not company.country:
        return lines
    if lines[-1].strip().upper() not in _country_names(company.country):
        return lines
    written = babel_locale(locale).territories.get(company.country) or lines[-1]
    return (*lines[:-1], written)


@cache
def _own_country_name(country: str) -> str | None:
    """The country's name in its own main language ("Norge", "Việt Nam")."""
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(f"und_{country}").territories.get(country)
    except (UnknownLocaleError, ValueError):
        return None


@cache
def _country_names(country: str) -> frozenset[str]:
    """Every way an address line may name ``country``, in capitals: its code, its own
    name, and its name in English and in each language Kindly writes."""
    names = {country.upper(), (_own_country_name(country) or country).upper()}
    for language in ("en", *LANGUAGES):
        name = babel_locale(language).territories.get(country)
        if name:
            names.add(name.upper())
    return frozenset(names)


def _zone_name(zone: ZoneInfo, name: str, language: Language, locale: str) -> str:
    """A clock as the reader's language names it in a parenthesis: by its city where CLDR's
    names read like a form ("London time", "heure de Londres", "Ortszeit London",
    "London-tid"; the review: "(British Time)", "(heure : Viêt Nam)", "(Vietnam
    (Ortszeit))", "(tidssone for Storbritannia)"), by CLDR's name where it reads well
    ("Britse tijd", "giờ Việt Nam"); never its database id ("Europe/Amsterdam")."""
    from babel.dates import get_timezone_location, get_timezone_name

    try:
        city = str(get_timezone_location(zone, locale=babel_locale(locale), return_city=True))
        if language == "en":
            return f"{city} time"
        if language == "fr":
            return f"heure d’{city}" if city[:1] in "AEIOUYÉÈÂÎÔ" else f"heure de {city}"
        if language == "de":
            return f"Ortszeit {city}"
        if language == "nb":
            return f"{city}-tid" if " " not in city else f"tid i {city}"
        named = str(
            get_timezone_name(zone, "long", locale=babel_locale(locale), zone_variant="generic")
        )
        # Inside a sentence the Vietnamese name takes no capital ("giờ Việt Nam").
        return named[:1].lower() + named[1:] if language == "vi" else named
    except (LookupError, ValueError):
        return name


def _hours(start: datetime, end: datetime, language: Language, locale: str) -> str:
    """From when to when, as each language writes a time of day (the language review):
    "14:00–15:30", "14:00–15:30 Uhr", "de 14 h à 15 h 30", "kl. 14.00–15.30"."""
    from babel.dates import format_time

    if language == "fr":

        def french(moment: datetime) -> str:
            return f"{moment.hour} h" + (f" {moment.minute:02d}" if moment.minute else "")

        return f"de {french(start)} à {french(end)}"
    if language == "nb":
        return f"kl. {start:%H.%M}–{end:%H.%M}"
    span = "–".join(format_time(t, "short", locale=babel_locale(locale)) for t in (start, end))
    return f"{span} Uhr" if language == "de" else span


def _appointment_context(
    appointment: Appointment,
    name: str,
    language: Language,
    country: str,
    timezone: str,
    formality: Formality,
    settings: Settings,
) -> dict[str, Any]:
    from babel.dates import format_time

    locale = babel_locale_name(language, country)
    reader = ZoneInfo(timezone)
    from plugin.config.locales import default_timezone

    event_zone = _event_zone(appointment, default_timezone(settings.company.country))
    # A meeting at a place is held on the place's clock: a client in Oslo at 11:00 in
    # London reads 11:00 (London time), not 12:00 (the review). One online, or without a
    # place, is on the reader's own clock.
    at_a_place = bool(appointment.location) and not appointment.online_url
    zone = event_zone if at_a_place and event_zone is not None else reader
    start, end = appointment.start.astimezone(zone), appointment.end.astimezone(zone)
    if appointment.all_day:
        # An all-day event is a date, not an instant: Friday 4 December is the 4th on
        # every clock (it read "Thursday, 3 December" to a client in London).
        start = appointment.start
    day = format_date(start.date(), locale, "full")
    if appointment.all_day:
        when = day
        short_when = _day_and_month(start.date(), locale)
    else:
        start_time = format_time(start, "short", locale=babel_locale(locale))
        hours = _hours(start, end, language, locale)
        # Vietnamese says the time before the day ("07:00–08:00, Thứ Năm, ngày 3 …").
        when = f"{hours}, {day}" if language == "vi" else f"{day}, {hours}"
        # Norwegian writes the time of day "kl. 09.00" in an SMS too (the review).
        start_time = f"kl. {start:%H.%M}" if language == "nb" else start_time
        short_when = f"{_day_and_month(start.date(), locale)} {start_time}"
        # The clock is named only where the reader's and the event's differ (a Vietnamese
        # client online at a meeting set in Amsterdam: "giờ Việt Nam"; a client in Oslo
        # at a meeting in London: "London-tid"); a client on the event's clock reads the
        # time as it is (review M4).
        compare = reader if zone is not reader else event_zone
        other = appointment.start.astimezone(compare) if compare else appointment.start
        if start.utcoffset() != other.utcoffset():
            clock = _zone_name(zone, str(zone.key), language, locale)
            when = f"{when} ({clock})"
            short_when = f"{short_when} ({clock})"
    return {
        "language": language,
        "formal": formality != "informal",
        "greeting_name": name,
        "contact": NO_CONTACT,
        "channel": "email",
        "company": settings.company,
        "company_address": _address_in(settings, locale),
        "signature": appointment_signature_in(settings.company, language),
        "sender": settings.company.sms_sender or settings.company.name,
        "appointment": {
            "title": appointment.title,
            "date": format_date(start.date(), locale),
            "when": when,
            "short_when": short_when,
            "location": appointment.location,
            "online_url": appointment.online_url,
            # Met online only: "speaking with you", not "seeing you" (the review).
            "online": bool(appointment.online_url) and not appointment.location,
        },
    }


def _event_zone(appointment: Appointment, company_zone: str | None = None) -> ZoneInfo | None:
    """The zone the event was set in, by its name where the calendar gave one.

    A calendar (or a ledger) that gives only an offset names no zone; an event whose
    offset is the company's own at that moment is taken to be on the company's clock (a
    meeting at the office), not moved to the reader's (the native re-check of issue 17)."""
    if appointment.timezone:
        try:
            return ZoneInfo(appointment.timezone)
        except (KeyError, ValueError):
            return None
    zone = appointment.start.tzinfo
    if isinstance(zone, ZoneInfo):
        return zone
    offset = appointment.start.utcoffset()
    # The place's city, where the zone database knows it ("5 Park Row, London"), then
    # the company's own clock; each only when its offset is the event's at that moment.
    candidates = [*_zones_named_in(appointment.location or ""), company_zone]
    for name in candidates:
        if name and appointment.start.astimezone(ZoneInfo(name)).utcoffset() == offset:
            return ZoneInfo(name)
    return None


@cache
def _zone_cities() -> dict[str, str]:
    """The zone database's cities ("london" -> "Europe/London")."""
    import zoneinfo

    return {
        name.rsplit("/", 1)[1].replace("_", " ").lower(): name
        for name in sorted(zoneinfo.available_timezones())
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/"))
    }


def _zones_named_in(location: str) -> list[str]:
    words = " ".join(re.split(r"[^\w]+", location.lower()))
    return [zone for city, zone in _zone_cities().items() if f" {city} " in f" {words} "]


def render_appointment(
    appointment: Appointment,
    *,
    name: str,
    language: Language,
    country: str,
    timezone: str,
    settings: Settings,
    formality: Formality = "formal",
    person: Customer | None = None,
) -> RenderedMessage:
    """The e-mail reminding an attendee of an appointment, on the attendee's clock (R1, R7).

    ``person``: the attendee as a client, whose salutation and names the greeting uses.
    """
    context = _appointment_context(
        appointment, name, language, country, timezone, formality, settings
    )
    if person is not None:
        context["contact"] = _contact(person, language)
    subject, text, html = _render(
        settings,
        context,
        "appointment/subject.txt.j2",
        "appointment/body.txt.j2",
        "appointment/body.html.j2",
    )
    subject = _said(" ".join(subject.split()), "appointment/subject.txt.j2", context)
    # A complete e-mail, as a payment reminder is: text and HTML, the .ics beside them.
    return RenderedMessage(subject, text, language, html)


def render_appointment_sms(
    appointment: Appointment,
    *,
    name: str,
    language: Language,
    country: str,
    timezone: str,
    settings: Settings,
    formality: Formality = "formal",
    limit: int = 160,
    transliterate: str = "auto",
) -> RenderedSms:
    context = _appointment_context(
        appointment, name, language, country, timezone, formality, settings
    )
    template = "appointment/sms.txt.j2"
    sms = _finished_sms(_render(settings, context, template)[0], language, limit, transliterate)
    # Too long with everything in it: leave out the place (the e-mail has it), then
    # shorten the title, until the message fits its limit.
    details = context["appointment"]
    if not sms.count.fits(limit) and details["location"]:
        details["location"] = None
        sms = _finished_sms(_render(settings, context, template)[0], language, limit, transliterate)
    title = str(details["title"])
    while not sms.count.fits(limit) and len(title) > 12:
        title = title[: max(12, len(title) - 8)].rstrip(" ,.;:-")
        details["title"] = title + "..."
        sms = _finished_sms(_render(settings, context, template)[0], language, limit, transliterate)
    return sms


def note_locale(settings: Settings) -> str:
    """The company's own locale: notes in the accounting system and the reminder log
    write amounts as the company does ("€ 1.850,00", "£1,850.00"), whatever the
    client's language (the review: a Dutch note read "£1,850.00 openstaand")."""
    from plugin.config.locales import default_language

    company = settings.company
    return babel_locale_name(company.language or default_language(company.country), company.country)


def render_note(
    *,
    stage: str,
    channel: str,
    recipient: str,
    sent_at: datetime,
    invoice_numbers: tuple[str, ...],
    amount: str,
    settings: Settings,
    reason: str | None = None,
    fallback: str | None = None,
    unconfirmed: bool = False,
) -> str:
    """The note written on the invoice in the accounting system, in the company's language.

    With ``reason``, the note says the reminder could not be delivered, and ``fallback``
    names the channel tried next, if any. ``unconfirmed``: it was handed over and the
    answer never came.
    """
    from babel.dates import format_datetime

    from plugin.config.locales import default_language, default_timezone

    company = settings.company
    language = company.language or default_language(company.country)
    locale = note_locale(settings)
    zone = default_timezone(company.country) or "UTC"
    context = {
        "language": language,
        "formal": True,
        "contact": NO_CONTACT,
        "stage": stage,
        "channel": channel,
        "recipient": recipient,
        "sent_at": format_datetime(
            sent_at, "medium", tzinfo=ZoneInfo(zone), locale=babel_locale(locale)
        ),
        "count": len(invoice_numbers),
        "numbers": ", ".join(invoice_numbers),
        "amount": amount,
        "reason": reason.rstrip(".") if reason else None,
        "fallback": fallback,
        "unconfirmed": unconfirmed,
    }
    return " ".join(_render(settings, context, "notes/note.txt.j2")[0].split())


def render_sms(
    reminder: PlannedReminder,
    settings: Settings,
    *,
    limit: int = 160,
    transliterate: str = "auto",
    on: date | None = None,
) -> RenderedSms:
    """The SMS. ``transliterate``: "never", "always", or "auto" (only when it would not fit).

    ``on`` is the day it goes out: with charges claimed, it names their total, as the
    e-mail and the letter of the same reminder do.
    """
    locale = babel_locale_name(reminder.language, reminder.customer.country)
    single = reminder.invoices[0] if len(reminder.invoices) == 1 else None
    link = f" {single.online_url}" if single and single.online_url else ""
    context = _context(
        reminder,
        settings,
        locale,
        sender=settings.company.sms_sender or settings.company.name,
        sms_due_date=_day_and_month(reminder.invoices[0].due_date, locale),
        sms_link=link,
    )
    pay_by = reminder.next_step_date
    if on is not None:
        pay_by = _claim(context, reminder, settings, on, locale)
    context["sms_pay_by"] = _day_and_month(pay_by, locale) if pay_by else ""
    # Shortened step by step until it fits (issue 17): the thanks go, then the sender's
    # legal form, then the sender's name is cut to what an SMS sender id holds. Letters
    # outside GSM-7 are changed only when no shortening in the original letters fits.
    steps: list[dict[str, Any]] = [
        {"sms_brief": False, "sms_compact": False},
        {"sms_brief": True, "sms_compact": False},
    ]
    sender = str(context["sender"])
    short = _without_legal_form(sender)
    if short != sender:
        steps.append({"sms_brief": True, "sms_compact": False, "sender": short})
    if len(short) > SENDER_ID_LENGTH:
        steps.append(
            {"sms_brief": True, "sms_compact": False, "sender": _cut_words(short, SENDER_ID_LENGTH)}
        )
    if context["also_count"]:
        # Last, the invoices by their number alone: "2 factures" instead of "facture
        # NS-0135 + 1 autre" (the review: a French final notice of 162 units).
        steps.append(
            {
                **steps[-1],
                "lead_count": context["count"],
                "lead_invoices": context["invoices"],
                "also_count": 0,
                "also_due": [],
            }
        )
    # Then the final notice in its compact form (the review's: one invoice with its
    # charges, 161 to 174 units): the same facts, fewer words around them.
    steps.append({**steps[-1], "sms_compact": True})
    if context["charged_with"] and context["count"] > 1:
        # Beside a count of invoices, not one invoice's number, the total cannot be read
        # as one invoice's amount: what it holds may go when nothing else makes room.
        steps.append({**steps[-1], "charged_with": ""})
    passes = ["never", "always"] if transliterate == "auto" else [transliterate]
    sms = None
    for letters in passes:
        for step in steps:
            (rendered,) = _render(settings, context | step, "sms/message.txt.j2")
            text = _said(rendered, "sms/message.txt.j2", context)
            sms = _finished_sms(text, reminder.language, limit, letters)
            if sms.count.fits(limit):
                return replace(sms, charges=context["charges"] or {})
    assert sms is not None
    return replace(sms, charges=context["charges"] or {})


#: Characters of an alphanumeric SMS sender id; a name cut to it is still recognised.
SENDER_ID_LENGTH = 11
_LEGAL_FORM = re.compile(
    r"[\s,]+(b\.?v\.?|n\.?v\.?|gmbh|ag|kg|ug|as|asa|ltd\.?|limited|llc|inc\.?|plc|"
    r"s\.?a\.?r\.?l\.?|s\.?a\.?s\.?|s\.?a\.?|co\.?|bvba|sprl|oy|ab)$",
    re.IGNORECASE,
)


def _without_legal_form(name: str) -> str:
    """ "Noordlicht Studio B.V." as a client says it: "Noordlicht Studio"."""
    shorter = _LEGAL_FORM.sub("", name).strip()
    if shorter.lower().startswith("công ty tnhh "):
        shorter = shorter[len("công ty tnhh ") :]
    return shorter or name


def _cut_words(name: str, length: int) -> str:
    """Whole words of ``name`` up to ``length`` characters (the first word at least)."""
    words = name.split()
    kept = words[0]
    for word in words[1:]:
        if len(kept) + 1 + len(word) > length:
            break
        kept = f"{kept} {word}"
    return kept


def _said(text: str, template: str, context: dict[str, Any]) -> str:
    """``text``, unless the template wrote nothing: a stage a user's policy names that no
    wording has words for (D20) would otherwise send an empty subject or message."""
    if text.strip():
        return text
    stage = f" for the stage {context['stage']!r}" if context.get("stage") else ""
    raise TemplateProblem(
        f"{template} writes nothing{stage} in {context['language']!r}",
        hint=f"Give that stage its words in your own lang/{context['language']}.j2, or set "
        "the stage's template to one Kindly has words for (first, second, final).",
    )


def _finished_sms(rendered: str, language: str, limit: int, transliterate: str) -> RenderedSms:
    """One line, counted; in GSM-7 letters when asked, or when it would not fit otherwise."""
    # Babel's narrow and no-break spaces (1 234,56 €) would force UCS-2 for nothing.
    text = " ".join(rendered.replace("\u00a0", " ").replace("\u202f", " ").split())
    count = count_segments(text)
    changed = False
    if transliterate == "always" or (transliterate == "auto" and not count.fits(limit)):
        written = to_gsm7(text, all_accents=language == "vi")
        # Said only when a letter changed: the preview said "transliterated" of a text
        # already in GSM-7.
        changed = written != text
        text = written
        count = count_segments(text)
    return RenderedSms(text, language, count, changed)
