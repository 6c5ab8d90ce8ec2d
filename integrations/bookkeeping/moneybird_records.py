"""What Moneybird's JSON records mean, as Kindly's model: contacts, sales invoices (credit
invoices among them) and the payments inside each invoice.

Pure functions, no I/O: :mod:`integrations.bookkeeping.moneybird` reads the records and
hands them here. Amounts come as decimal strings ("121.0") and are read as Decimal, never
through float. A record that cannot be read raises :class:`integrations.http.FatalError`
naming the field, which the sync turns into a warning about that record alone.

A credit invoice is a sales invoice with negative totals and ``original_sales_invoice_id``
set; crediting the original is recorded as a payment on it, so what is still owed is the
original's ``total_unpaid``. An invoice's ``state`` says where it stands: ``draft`` and
``scheduled`` were not sent, ``pending_payment`` has a direct debit on its way (the
reminder waits), ``uncollectible`` was written off.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import partial
from typing import Any

from integrations.fields import (
    amount,
    country_code,
    day,
    looks_like_email,
    postal_address,
    required_text,
)
from integrations.http import FatalError
from plugin.config.locales import default_language, default_timezone
from plugin.core.model import (
    CreditNote,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceStatus,
    Payment,
)
from plugin.core.money import Money
from plugin.core.vocabulary import LANGUAGES, Language

__all__ = [
    "credit_note",
    "customer",
    "invoice",
    "is_credit_invoice",
    "language_of",
    "payments",
]

_amount = partial(amount, "Moneybird")
_text = partial(required_text, "Moneybird")

NOT_SENT = frozenset({"draft", "scheduled"})
#: A direct debit is being collected: money is on its way, so no reminder now.
ON_ITS_WAY = frozenset({"pending_payment"})
WRITTEN_OFF = frozenset({"uncollectible"})


def _day(record: Mapping[str, Any], field: str, default: Any = None) -> Any:
    return day("Moneybird", record.get(field), field, default)


def language_of(code: Any) -> Language | None:
    """Kindly's language for Moneybird's code ("nl", "nl-be", "en", "de"), if it speaks it."""
    text = str(code or "").strip().lower()[:2]
    return next((language for language in LANGUAGES if language == text), None)


def customer(
    record: Mapping[str, Any], company_country: str, language: Language | None = None
) -> Customer:
    """A contact as a client. Moneybird keeps no language on a contact: ``language`` is
    the one its invoices are written in, else the country's."""
    contact_id = _text(record, "id")
    country = country_code(str(record.get("country") or "").strip()) or company_country
    company = str(record.get("company_name") or "").strip()
    given = str(record.get("firstname") or "").strip() or None
    family = str(record.get("lastname") or "").strip() or None
    person = " ".join(part for part in (given, family) if part) or None
    attention = str(record.get("send_invoices_to_attention") or "").strip() or None
    addresses = str(record.get("send_invoices_to_email") or record.get("email") or "")
    emails = [e.strip() for e in addresses.replace(";", ",").split(",")]
    phone = " ".join(str(record.get("phone") or "").split())
    return Customer(
        id=contact_id,
        name=company or person or contact_id,
        contact_name=attention or person,
        given_name=given,
        family_name=family,
        emails=tuple(dict.fromkeys(e for e in emails if looks_like_email(e))),
        phones=(phone,) if phone else (),
        language=language or default_language(country),
        country=country,
        timezone=default_timezone(country) or "UTC",
        # No company name: a person, whom the law protects as a consumer.
        kind=CustomerKind.BUSINESS if company else CustomerKind.CONSUMER,
        address=postal_address(
            [str(record.get("address1") or ""), str(record.get("address2") or "")],
            city=str(record.get("city") or ""),
            postal_code=str(record.get("zipcode") or ""),
            region="",
            country=str(record.get("country") or ""),
        ),
    )


def is_credit_invoice(record: Mapping[str, Any]) -> bool:
    return bool(record.get("original_sales_invoice_id")) or _amount(
        record, "total_price_incl_tax"
    ) < Decimal(0)


def _status(record: Mapping[str, Any], due: Decimal) -> InvoiceStatus:
    state = str(record.get("state") or "").lower()
    if state in NOT_SENT:
        return InvoiceStatus.DRAFT
    if state in WRITTEN_OFF:
        return InvoiceStatus.VOIDED
    return InvoiceStatus.OPEN if due > 0 else InvoiceStatus.PAID


def invoice(record: Mapping[str, Any]) -> Invoice:
    """A sales invoice: what is owed is ``total_unpaid``; its number is ``invoice_id``
    (a draft has none yet)."""
    invoice_id = _text(record, "id")
    currency = str(record.get("currency") or "EUR").upper()
    issued = _day(record, "invoice_date")
    total = _amount(record, "total_price_incl_tax")
    due = max(Decimal(0), min(_amount(record, "total_unpaid"), total))
    state = str(record.get("state") or "").lower()
    try:
        return Invoice(
            id=invoice_id,
            number=str(record.get("invoice_id") or "").strip() or f"draft {invoice_id[-6:]}",
            customer_id=_text(record, "contact_id"),
            issue_date=issued,
            due_date=_day(record, "due_date", default=issued),
            total=Money.of(total, currency),
            amount_due=Money.of(due, currency),
            status=_status(record, due),
            online_url=str(record.get("url") or "").strip() or None,
            reference=str(record.get("payment_reference") or "").strip() or None,
            on_hold=state in ON_ITS_WAY or bool(record.get("paused")),
        )
    except ValueError as exc:
        raise FatalError(f"Moneybird invoice {invoice_id}: {exc}") from None


def credit_note(record: Mapping[str, Any]) -> CreditNote:
    """A credit invoice (Moneybird writes its totals below zero)."""
    note_id = _text(record, "id")
    return CreditNote(
        id=note_id,
        number=str(record.get("invoice_id") or "").strip() or f"credit {note_id[-6:]}",
        customer_id=_text(record, "contact_id"),
        date=_day(record, "invoice_date"),
        total=Money.of(
            abs(_amount(record, "total_price_incl_tax")),
            str(record.get("currency") or "EUR").upper(),
        ),
    )


def payments(record: Mapping[str, Any]) -> list[Payment]:
    """The payments inside a sales invoice (``payments[]``), in the invoice's currency."""
    invoice_id = _text(record, "id")
    currency = str(record.get("currency") or "EUR").upper()
    found = []
    for entry in record.get("payments") or []:
        if not isinstance(entry, Mapping):
            continue
        paid = _amount(entry, "price")
        if paid <= 0:
            continue
        found.append(
            Payment(
                id=_text(entry, "id"),
                invoice_id=invoice_id,
                date=_day(entry, "payment_date"),
                amount=Money.of(paid, currency),
                reference=str(entry.get("transaction_identifier") or "").strip() or None,
            )
        )
    return found
