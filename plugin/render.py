"""Turn a planned reminder into the words the client reads, in their language.

Templates are Jinja2 files under ``templates/<channel>/<language>/<stage>.<part>.j2``.
Amounts and dates are formatted by babel for the client's language and country, so a Dutch
client reads "€ 1.430,00" and "5 november 2026", a French one "1 430,00 €" and
"5 novembre 2026". A template that names a variable the context lacks fails loudly
(StrictUndefined) instead of leaving a blank in a letter to a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from plugin.locales import babel_locale_name
from plugin.money import Money
from plugin.planning import PlannedReminder
from plugin.settings import Settings

__all__ = ["RenderedMessage", "format_date", "format_money", "render_reminder", "templates_dir"]


def templates_dir() -> Path:
    """Where the bundled templates are."""
    here = Path(__file__).resolve().parent
    # A wheel carries them inside the package; an editable install runs from the source
    # tree, where they sit at the top of the repository (design card D7).
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("Kindly's templates are missing from this installation")


@cache
def _environment(folder: Path) -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def format_money(amount: Money, locale: str) -> str:
    from babel.numbers import format_currency

    return str(format_currency(amount.amount, amount.currency, locale=locale))


def format_date(day: date, locale: str) -> str:
    from babel.dates import format_date as babel_format_date

    return str(babel_format_date(day, format="long", locale=locale))


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    text: str
    language: str


def render_reminder(reminder: PlannedReminder, settings: Settings) -> RenderedMessage:
    locale = babel_locale_name(reminder.language, reminder.customer.country)
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
    context = {
        "greeting_name": reminder.customer.greeting_name,
        "customer": reminder.customer,
        "company": settings.company,
        "bank": settings.bank,
        "invoices": invoices,
        "count": len(invoices),
        "total_due": format_money(reminder.amount_due, locale),
        "payment_reference": ", ".join(str(row["reference"]) for row in invoices),
        "tone": reminder.tone,
        "stage": reminder.stage,
        "next_step_date": (
            format_date(reminder.next_step_date, locale) if reminder.next_step_date else None
        ),
    }
    env = _environment(templates_dir())
    base = f"{reminder.channel}/{reminder.language}/{reminder.template or reminder.stage}"
    subject = env.get_template(f"{base}.subject.j2").render(context).strip()
    text = env.get_template(f"{base}.txt.j2").render(context)
    # One line only: a subject is a header, and a header must not break.
    subject = " ".join(subject.split())
    return RenderedMessage(subject=subject, text=text, language=reminder.language)
