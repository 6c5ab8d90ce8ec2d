"""Turn a planned reminder into the words the client reads, in their language and tone.

Every sentence lives once per language in ``templates/lang/<language>.j2``; the layouts
``email/body.txt.j2``, ``email/body.html.j2``, ``email/subject.txt.j2`` and
``sms/message.txt.j2`` arrange them. Amounts and dates are formatted by babel for the
client's language and country: a Dutch client reads "€ 1.430,00" and "5 november 2026", a
French one "1 430,00 €" and "5 novembre 2026".

Templates autoescape HTML, and a template that names a variable the context lacks fails
loudly (StrictUndefined), so a letter to a client never has a blank. A user may override
any template from a folder of their own (``[templates] folder`` in kindly.toml); those run
in Jinja2's sandbox, and :func:`check_overrides` rejects, at load time, an override that
uses a variable Kindly does not provide, naming the file, line and name. Kindly's own
templates, part of its code, run without the sandbox, which would otherwise check every
attribute they read (a third of the time spent in them).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from plugin.compose.epc_qr import epc_qr_png
from plugin.compose.formatting import _day_and_month, babel_locale, format_date, format_money
from plugin.compose.sms_text import SegmentCount, count_segments, to_gsm7
from plugin.config.locales import babel_locale_name
from plugin.config.settings import Settings
from plugin.core.claims import LetterClaims, reminder_claims
from plugin.core.decisions import PlannedReminder
from plugin.core.model import Appointment
from plugin.core.vocabulary import Formality, Language
from plugin.errors import ConfigError

if TYPE_CHECKING:
    pass

__all__ = [
    "CONTEXT_VARIABLES",
    "Attachment",
    "RenderedMessage",
    "RenderedSms",
    "check_overrides",
    "format_date",
    "format_money",
    "render_appointment",
    "render_appointment_sms",
    "render_letter",
    "render_reminder",
    "render_sms",
    "templates_dir",
]

#: Everything a template may use. An override that names anything else is refused.
CONTEXT_VARIABLES = frozenset(
    {
        "language", "stage", "tone", "greeting_name", "customer", "company", "bank",
        "invoices", "count", "total_due", "payment_reference", "next_step_date",
        "attachments", "qr_cid", "sender", "sms_due_date", "sms_pay_by", "sms_link",
        "channel", "recipient", "sent_at", "numbers", "amount", "formal",
        "letter_date", "letter_place", "qr_data_uri", "appointment", "charges",
        "reason", "fallback", "t",
    }
)  # fmt: skip
QR_CID = "epc-qr@kindly"


@cache
def templates_dir() -> Path:
    """Where the bundled templates are."""
    package = Path(__file__).resolve().parent.parent
    # A wheel carries them inside the package; an editable install runs from the source
    # tree, where they sit at the top of the repository (design card D7).
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("Kindly's templates are missing from this installation")


def _templates(settings: Settings) -> Any:
    """The Jinja2 environment for these settings' templates."""
    return _environment(settings.templates)


@lru_cache(maxsize=8)
def _environment(user_folder: Path | None) -> Any:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    class BundledEnvironment(jinja2.Environment):
        def getattr(self, obj: Any, attribute: str) -> Any:
            # Kindly's templates read dicts (invoice rows, labels, charges) with a dot, which
            # Jinja2 tries as an attribute first: an AttributeError raised and caught on
            # each of a hundred reads per e-mail. Ours name no key that is a dict method.
            if type(obj) is dict and attribute in obj:
                return obj[attribute]
            return super().getattr(obj, attribute)

    bundled = jinja2.FileSystemLoader(str(templates_dir()))
    loader: jinja2.BaseLoader = bundled
    kind: type[jinja2.Environment] = BundledEnvironment
    if user_folder is not None:
        # A user's template is code we did not write: it may read only what it is given.
        kind = SandboxedEnvironment
        loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(user_folder)), bundled])
    environment = kind(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        bytecode_cache=_bytecode_cache(),
    )
    # A macro imported into an HTML template returns its text marked safe, though the
    # wording files are plain text holding client data; "|text" unmarks it, so the HTML
    # template escapes it like any other value.
    environment.filters["text"] = _as_plain_text
    return environment


def _bytecode_cache() -> Any:
    """Compiled templates kept in the user's cache folder between runs.

    Compiling the six languages' wording costs about 0.4 s in every process that renders;
    Jinja2 checks each cached entry against its template's source, so an edited template
    (the user's own included) is compiled afresh. Without a writable cache folder, none.
    """
    import jinja2
    from platformdirs import user_cache_path

    folder = user_cache_path("kindly", appauthor=False) / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


def _render(env: Any, context: dict[str, Any], *names: str) -> list[str]:
    """Render templates that share one context, with ``t``: the wording of its language.

    ``t`` is ``lang/<language>.j2`` bound to the context, built once for all of them:
    building it (some thirty macros) costs more than rendering a template that uses it.
    """
    module = env.get_template(f"lang/{context['language']}.j2").make_module(context)
    shared = {**context, "t": module}
    return [env.get_template(name).render(shared) for name in names]


def _as_plain_text(value: object) -> str:
    return str.__str__(str(value))


def check_overrides(settings: Settings) -> list[str]:
    """Check the user's template folder; return the templates it overrides.

    Raises:
        ConfigError: a template does not parse, or uses a variable Kindly does not provide.
    """
    if settings.templates is None:
        return []
    import jinja2
    from jinja2 import meta, nodes

    folder = settings.templates
    if not folder.is_dir():
        raise ConfigError(f"the template folder {folder} does not exist")
    env = _templates(settings)
    bundled = {p.relative_to(templates_dir()).as_posix() for p in templates_dir().rglob("*.j2")}
    overridden = []
    for path in sorted(folder.rglob("*.j2")):
        name = path.relative_to(folder).as_posix()
        if name not in bundled:
            raise ConfigError(
                f"{path}: Kindly has no template {name!r} to override",
                hint="Copy the file you want to change from Kindly's templates folder.",
            )
        source = path.read_text(encoding="utf-8")
        try:
            tree = env.parse(source, name=name, filename=str(path))
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"{path}, line {exc.lineno}: {exc.message}") from None
        unknown = meta.find_undeclared_variables(tree) - CONTEXT_VARIABLES
        if unknown:
            first = sorted(unknown)[0]
            line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == first), 1)
            known = ", ".join(sorted(CONTEXT_VARIABLES))
            raise ConfigError(
                f"{path}, line {line}: unknown variable {first!r}",
                hint=f"Templates can use: {known}.",
            )
        overridden.append(name)
    return overridden


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


def _context(
    reminder: PlannedReminder, settings: Settings, locale: str, **extra: Any
) -> dict[str, Any]:
    invoices = [
        {
            "number": invoice.number,
            "issue_date": format_date(invoice.issue_date, locale),
            "due_date": format_date(invoice.due_date, locale),
            "total": format_money(invoice.total, locale),
            "amount_due": format_money(invoice.amount_due, locale),
            "online_url": invoice.online_url,
            "reference": invoice.reference or invoice.number,
        }
        for invoice in reminder.invoices
    ]
    return {
        "language": reminder.language,
        # The words are chosen by the stage's wording (its template), which a policy of the
        # user's own names for each of its stages.
        "stage": reminder.template or reminder.stage,
        "tone": reminder.tone,
        "formal": reminder.formality != "informal",
        "greeting_name": reminder.customer.greeting_name,
        "customer": reminder.customer,
        "company": settings.company,
        "bank": settings.bank,
        "invoices": invoices,
        "count": len(invoices),
        "total_due": format_money(reminder.amount_due, locale),
        "payment_reference": ", ".join(str(row["reference"]) for row in invoices),
        "next_step_date": (
            format_date(reminder.next_step_date, locale) if reminder.next_step_date else None
        ),
        "attachments": [],
        "qr_cid": None,
        "charges": None,
        **extra,
    }


def reminder_charges(
    reminder: PlannedReminder, settings: Settings, on: date, locale: str
) -> dict[str, str] | None:
    """The charges a reminder claims (:func:`plugin.core.claims.reminder_claims`), as the
    client's language writes them; None if none. The reminder log keeps this dict."""
    claims = reminder_claims(reminder, settings, on)
    if claims is None:
        return None
    if isinstance(claims, LetterClaims):
        return {
            "on": format_date(claims.on, locale),
            "letter_deadline": format_date(claims.deadline, locale),
            "letter_costs": format_money(claims.costs, locale),
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
        "letter_deadline": "",
        "letter_costs": "",
    }


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
    context = _context(reminder, settings, locale, attachments=[a.filename for a in files])
    if on is not None:
        context["charges"] = reminder_charges(reminder, settings, on, locale)
    qr = epc_qr_png(reminder, settings, context["payment_reference"], context["charges"])
    context["qr_cid"] = QR_CID if qr else None
    env = _templates(settings)
    subject, text, html = _render(
        env, context, "email/subject.txt.j2", "email/body.txt.j2", "email/body.html.j2"
    )
    # One line only: a subject is a header, and a header must not break.
    subject = " ".join(subject.split())
    return RenderedMessage(
        subject, text, reminder.language, html, qr, files, context["charges"] or {}
    )


def render_letter(reminder: PlannedReminder, settings: Settings, on: date) -> str:
    """A printable A4 letter (HTML) dated ``on``, with the client's address for a window."""
    import base64

    locale = babel_locale_name(reminder.language, reminder.customer.country)
    context = _context(reminder, settings, locale)
    context["charges"] = reminder_charges(reminder, settings, on, locale)
    qr = epc_qr_png(reminder, settings, context["payment_reference"], context["charges"])
    context["qr_data_uri"] = (
        "data:image/png;base64," + base64.b64encode(qr).decode("ascii") if qr else None
    )
    context["letter_date"] = format_date(on, locale)
    context["letter_place"] = settings.company.city or ""
    env = _templates(settings)
    return _render(env, context, "letter/letter.html.j2")[0]


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
    zone = ZoneInfo(timezone)
    start, end = appointment.start.astimezone(zone), appointment.end.astimezone(zone)
    day = format_date(start.date(), locale, "full")
    if appointment.all_day:
        when = day
        short_when = _day_and_month(start.date(), locale)
    else:
        start_time = format_time(start, "short", locale=babel_locale(locale))
        hours = f"{start_time}–{format_time(end, 'short', locale=babel_locale(locale))}"
        when = f"{day}, {hours} ({timezone})"
        short_when = f"{_day_and_month(start.date(), locale)} {start_time}"
    return {
        "language": language,
        "formal": formality != "informal",
        "greeting_name": name,
        "company": settings.company,
        "sender": settings.company.sms_sender or settings.company.name,
        "appointment": {
            "title": appointment.title,
            "date": format_date(start.date(), locale),
            "when": when,
            "short_when": short_when,
            "location": appointment.location,
            "online_url": appointment.online_url,
        },
    }


def render_appointment(
    appointment: Appointment,
    *,
    name: str,
    language: Language,
    country: str,
    timezone: str,
    settings: Settings,
    formality: Formality = "formal",
) -> RenderedMessage:
    """The e-mail reminding an attendee of an appointment, on the attendee's clock (R1, R7)."""
    context = _appointment_context(
        appointment, name, language, country, timezone, formality, settings
    )
    env = _templates(settings)
    subject, text = _render(env, context, "appointment/subject.txt.j2", "appointment/body.txt.j2")
    subject = " ".join(subject.split())
    return RenderedMessage(subject, text, language)


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
    env = _templates(settings)
    template = "appointment/sms.txt.j2"
    sms = _finished_sms(_render(env, context, template)[0], language, limit, transliterate)
    # Too long with everything in it: leave out the place (the e-mail has it), then
    # shorten the title, until the message fits its limit.
    details = context["appointment"]
    if not sms.count.fits(limit) and details["location"]:
        details["location"] = None
        sms = _finished_sms(_render(env, context, template)[0], language, limit, transliterate)
    title = str(details["title"])
    while not sms.count.fits(limit) and len(title) > 12:
        title = title[: max(12, len(title) - 8)].rstrip(" ,.;:-")
        details["title"] = title + "..."
        sms = _finished_sms(_render(env, context, template)[0], language, limit, transliterate)
    return sms


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
    locale = babel_locale_name(language, company.country)
    zone = default_timezone(company.country) or "UTC"
    context = {
        "language": language,
        "formal": True,
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
    env = _templates(settings)
    return " ".join(_render(env, context, "notes/note.txt.j2")[0].split())


def render_sms(
    reminder: PlannedReminder,
    settings: Settings,
    *,
    limit: int = 160,
    transliterate: str = "auto",
) -> RenderedSms:
    """The SMS. ``transliterate``: "never", "always", or "auto" (only when it would not fit)."""
    locale = babel_locale_name(reminder.language, reminder.customer.country)
    single = reminder.invoices[0] if len(reminder.invoices) == 1 else None
    link = f" {single.online_url}" if single and single.online_url else ""
    pay_by = reminder.next_step_date
    context = _context(
        reminder,
        settings,
        locale,
        sender=settings.company.sms_sender or settings.company.name,
        sms_due_date=_day_and_month(reminder.invoices[0].due_date, locale),
        sms_pay_by=_day_and_month(pay_by, locale) if pay_by else "",
        sms_link=link,
    )
    env = _templates(settings)
    (rendered,) = _render(env, context, "sms/message.txt.j2")
    return _finished_sms(rendered, reminder.language, limit, transliterate)


def _finished_sms(rendered: str, language: str, limit: int, transliterate: str) -> RenderedSms:
    """One line, counted; in GSM-7 letters when asked, or when it would not fit otherwise."""
    # Babel's narrow and no-break spaces (1 234,56 €) would force UCS-2 for nothing.
    text = " ".join(rendered.replace("\u00a0", " ").replace("\u202f", " ").split())
    count = count_segments(text)
    changed = False
    if transliterate == "always" or (transliterate == "auto" and not count.fits(limit)):
        text = to_gsm7(text, all_accents=language == "vi")
        count = count_segments(text)
        changed = True
    return RenderedSms(text, language, count, changed)
