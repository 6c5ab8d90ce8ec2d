"""What Exact Online's OData records mean, as Kindly's model: accounts, sales invoices and
credit notes, and what is still open of each (the receivables list).

Pure functions, no I/O: :mod:`integrations.bookkeeping.exact` reads the records and hands
them here. Money is read as Decimal straight from the JSON, never through float. A record
that cannot be read raises :class:`integrations.http.FatalError` naming the field, which
the sync turns into a warning about that record alone.

Exact keeps what is owed apart from the invoice: a payment is a financial transaction, and
the invoice record never changes when one comes in. What is still open of an invoice is
its line in the receivables list (by invoice number); an invoice without one is paid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from plugin.core.model import CreditNote, Customer, Invoice, InvoiceStatus
from plugin.core.money import Money
from plugin.core.vocabulary import LANGUAGES

__all__ = [
    "CREDIT_NOTE_TYPES",
    "INVOICE_TYPES",
    "credit_note",
    "customer",
    "invoice",
    "open_amounts",
]

#: Sales invoice types: an invoice, a direct invoice; a credit note, a direct credit note.
INVOICE_TYPES = frozenset({8020, 8023})
CREDIT_NOTE_TYPES = frozenset({8021, 8024})
#: Sales invoice status: 10 draft, 20 open (entered, not yet processed: not booked, not
#: sent, so not in the receivables), 50 processed (printed or sent, and booked).
NOT_SENT = frozenset({10, 20})

_amount = partial(amount, "Exact Online")
_text = partial(required_text, "Exact Online")


def _day(record: Mapping[str, Any], field: str, default: Any = None) -> Any:
    return day("Exact Online", record.get(field), field, default)


def customer(
    record: Mapping[str, Any],
    company_country: str,
    classifications: Mapping[str, str] | None = None,
) -> Customer:
    """An account as a client; its language as Exact keeps it, else its country's; its
    classifications (``classifications``: description by lower-case id) as its groups,
    where a bookkeeper sets a client's reminders inside Exact ("Reminders: firm")."""
    account_id = _text(record, "ID")
    country = country_code(str(record.get("Country") or "").strip()) or company_country
    language = str(record.get("Language") or "").strip().lower()[:2]
    if language not in LANGUAGES:
        language = default_language(country)
    emails = [e.strip() for e in str(record.get("Email") or "").replace(";", ",").split(",")]
    phone = " ".join(str(record.get("Phone") or "").split())
    named = classifications or {}
    slots = (str(record.get(f"Classification{n}") or "").lower() for n in range(1, 9))
    return Customer(
        id=account_id,
        name=str(record.get("Name") or "").strip() or account_id,
        emails=tuple(dict.fromkeys(e for e in emails if looks_like_email(e))),
        phones=(phone,) if phone else (),
        language=language if language in LANGUAGES else "en",
        country=country,
        timezone=default_timezone(country) or "UTC",
        tags=frozenset(named[slot] for slot in slots if slot in named),
        address=postal_address(
            [str(record.get(f"AddressLine{n}") or "") for n in range(1, 4)],
            city=str(record.get("City") or ""),
            postal_code=str(record.get("Postcode") or ""),
            region=str(record.get("State") or ""),
            country=str(record.get("Country") or ""),
        ),
    )


def _number(record: Mapping[str, Any]) -> str:
    return str(record.get("InvoiceNumber") or "").strip()


def open_amounts(rows: Sequence[Mapping[str, Any]]) -> dict[str, Decimal]:
    """What is still open per invoice number, from the receivables list's lines."""
    found: dict[str, Decimal] = {}
    for row in rows:
        number = _number(row)
        if number:
            found[number] = found.get(number, Decimal(0)) + _amount(row, "Amount")
    return found


def invoice(record: Mapping[str, Any], open_amount: Decimal | None) -> Invoice:
    """A sales invoice; ``open_amount`` is its line in the receivables list (None: none,
    so nothing is open)."""
    invoice_id = _text(record, "InvoiceID")
    currency = str(record.get("Currency") or "EUR").upper()
    issued = _day(record, "InvoiceDate")
    total = _amount(record, "AmountFC")
    due = max(Decimal(0), min(open_amount or Decimal(0), total))
    if int(record.get("Status") or 0) in NOT_SENT:
        status = InvoiceStatus.DRAFT
    else:
        status = InvoiceStatus.OPEN if due > 0 else InvoiceStatus.PAID
    try:
        return Invoice(
            id=invoice_id,
            number=_number(record) or invoice_id[:8],
            customer_id=_text(record, "InvoiceTo"),
            issue_date=issued,
            due_date=_day(record, "DueDate", default=issued),
            total=Money.of(total, currency),
            amount_due=Money.of(due, currency),
            status=status,
            reference=str(record.get("PaymentReference") or "").strip() or None,
        )
    except ValueError as exc:
        raise FatalError(f"Exact Online invoice {invoice_id}: {exc}") from None


def credit_note(record: Mapping[str, Any]) -> CreditNote:
    """A sales credit note (Exact writes its amount below zero)."""
    return CreditNote(
        id=_text(record, "InvoiceID"),
        number=_number(record) or str(record.get("InvoiceID"))[:8],
        customer_id=_text(record, "InvoiceTo"),
        date=_day(record, "InvoiceDate"),
        total=Money.of(abs(_amount(record, "AmountFC")), str(record.get("Currency") or "EUR")),
    )
