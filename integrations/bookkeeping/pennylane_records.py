"""What Pennylane's JSON records mean, as Kindly's model: customers (companies and
individuals), customer invoices (credit notes among them) and the payments of an invoice.

Pure functions, no I/O: :mod:`integrations.bookkeeping.pennylane` reads the records and
hands them here. Pennylane writes every amount as a decimal string ("230.32"):
:func:`decimal` reads one exactly, never through float, and refuses anything else. A
record that cannot be read raises :class:`integrations.http.FatalError` naming the field,
which the sync turns into a warning about that record alone.

A credit note is a customer invoice too: its ``status`` is ``credit_note``, it names the
invoice it credits in ``credited_invoice`` and its amounts are below zero. What an invoice
still owes is its ``remaining_amount_with_tax``; ``paid`` says nothing is. Drafts
(``draft``) were not sent, and quotes, proformas and orders share the collection's status
list without being invoices: Kindly reads none of them. ``cancelled`` and ``archived``
invoices are written off; ``incomplete`` ones (imported, still "à traiter" in Pennylane)
are held back as not sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from integrations.fields import (
    country_code,
    day,
    looks_like_email,
    moment,
    postal_address,
    required_text,
)
from integrations.http import FatalError
from plugin.config.locales import default_language, default_timezone
from plugin.core.model import (
    CreditAllocation,
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
    "customer_id",
    "decimal",
    "invoice",
    "is_credit_note",
    "is_read",
    "language_of",
    "payments",
    "pdf_link",
    "read",
    "shows_money_paid",
]

_text = partial(required_text, "Pennylane")

#: Statuses of the customer-invoice collection that are no invoice a client owes on.
NOT_INVOICES = frozenset(
    {
        "proforma",
        "shipping_order",
        "purchasing_order",
        "estimate_pending",
        "estimate_accepted",
        "estimate_invoiced",
        "estimate_denied",
    }
)
WRITTEN_OFF = frozenset({"cancelled", "archived"})
#: Imported and not yet complete: Pennylane itself reminds none of these.
NOT_SENT = frozenset({"incomplete"})
#: Where Pennylane's companies keep their books: its days are French days.
PARIS = ZoneInfo("Europe/Paris")
#: Payment statuses that mean the money came in; the others failed, were refunded, or
#: are still on their way.
RECEIVED = frozenset({"found", "confirmed", "paid_out"})


def decimal(record: Mapping[str, Any], field: str) -> Decimal | None:
    """An amount Pennylane writes as a decimal string, exactly; None when it is null.

    A float or a bool is refused rather than read: Pennylane sends strings (and Kindly
    reads JSON numbers as Decimal), so one means the record is not what we think it is.
    """
    value = record.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise FatalError(f"Pennylane record: field {field!r} is not an amount ({value!r})")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except ArithmeticError:
        number = Decimal("NaN")
    if not number.is_finite():
        raise FatalError(f"Pennylane record: field {field!r} is not an amount ({value!r})")
    return number


def _total(record: Mapping[str, Any]) -> Decimal:
    """The amount with tax in the invoice's own currency (``currency_amount``); ``amount``
    is the same in euros, so it stands in only for an invoice in euros."""
    found = decimal(record, "currency_amount")
    if found is None and _currency(record) == "EUR":
        found = decimal(record, "amount")
    if found is None:
        raise FatalError(
            f"Pennylane invoice {record.get('id')}: field 'currency_amount' holds no amount "
            f"in {_currency(record)}"
        )
    return found


def _currency(record: Mapping[str, Any]) -> str:
    return str(record.get("currency") or "EUR").strip().upper()


def _day(record: Mapping[str, Any], field: str, default: date | None = None) -> date:
    return day("Pennylane", record.get(field), field, default)


def _status(record: Mapping[str, Any]) -> str:
    return str(record.get("status") or "").strip().lower()


def language_of(code: Any) -> Language | None:
    """Kindly's language for Pennylane's ``billing_language`` (fr_FR, en_GB, de_DE, es_ES);
    None for one Kindly does not write (Spanish), which leaves it to the country."""
    text = str(code or "").strip().lower().replace("-", "_").split("_")[0]
    return next((language for language in LANGUAGES if language == text), None)


def customer(record: Mapping[str, Any], company_country: str) -> Customer:
    """A customer as a client. Pennylane says which kind it is (``customer_type``): a
    company is a business, an individual a person, whom the law protects as a consumer."""
    customer_id = _text(record, "id")
    address = record.get("billing_address")
    if not isinstance(address, Mapping):
        address = {}
    written_country = str(address.get("country_alpha2") or "").strip()
    country = country_code(written_country) or company_country
    given = str(record.get("first_name") or "").strip() or None
    family = str(record.get("last_name") or "").strip() or None
    person = " ".join(part for part in (given, family) if part) or None
    individual = str(record.get("customer_type") or "").strip().lower() == "individual"
    # A company's invoices go to the attention of its ``recipient``, whom Kindly greets.
    recipient = str(record.get("recipient") or "").strip() or None
    name = str(record.get("name") or "").strip() or person or customer_id
    emails = [str(e or "").strip() for e in record.get("emails") or [] if isinstance(e, str)]
    phone = " ".join(str(record.get("phone") or "").split())
    return Customer(
        id=customer_id,
        name=name,
        contact_name=person if individual else recipient,
        given_name=given,
        family_name=family,
        emails=tuple(dict.fromkeys(e for e in emails if looks_like_email(e))),
        phones=(phone,) if phone else (),
        language=language_of(record.get("billing_language")) or default_language(country),
        country=country,
        timezone=default_timezone(country) or "UTC",
        kind=CustomerKind.CONSUMER if individual else CustomerKind.BUSINESS,
        address=postal_address(
            str(address.get("address") or "").splitlines(),
            city=str(address.get("city") or ""),
            postal_code=str(address.get("postal_code") or ""),
            region="",
            country=written_country,
        ),
    )


def is_read(record: Mapping[str, Any]) -> bool:
    """Whether Kindly reads the record at all: not a draft, and an invoice or a credit
    note, not a quote, a proforma or an order."""
    return not record.get("draft") and _status(record) not in NOT_INVOICES | {"draft"}


def is_credit_note(record: Mapping[str, Any]) -> bool:
    credited = record.get("credited_invoice")
    if _status(record) == "credit_note" or (isinstance(credited, Mapping) and credited):
        return True
    return _total(record) < 0


def customer_id(record: Mapping[str, Any]) -> str:
    """The customer the invoice is addressed to (``customer.id``)."""
    named = record.get("customer")
    if not isinstance(named, Mapping) or named.get("id") is None:
        raise FatalError(f"Pennylane invoice {record.get('id')}: it names no customer")
    return str(named["id"])


def _owed(record: Mapping[str, Any], total: Decimal) -> Decimal:
    """What is still owed, between nothing and the total: nothing once ``paid``, else
    ``remaining_amount_with_tax`` (all of it where Pennylane leaves that null)."""
    if record.get("paid") or _status(record) == "paid":
        return Decimal(0)
    remaining = decimal(record, "remaining_amount_with_tax")
    if remaining is None:
        remaining = total
    return max(Decimal(0), min(remaining, total))


def invoice(record: Mapping[str, Any]) -> Invoice:
    """A customer invoice: its number is ``invoice_number``, its days ``date`` and
    ``deadline``, and what is owed ``remaining_amount_with_tax``."""
    invoice_id = _text(record, "id")
    currency = _currency(record)
    issued = _day(record, "date")
    total = _total(record)
    due = _owed(record, total)
    state = _status(record)
    if state in WRITTEN_OFF or record.get("archived_at"):
        status = InvoiceStatus.VOIDED
    elif state in NOT_SENT:
        status = InvoiceStatus.DRAFT
    else:
        status = InvoiceStatus.OPEN if due > 0 else InvoiceStatus.PAID
    try:
        return Invoice(
            id=invoice_id,
            number=str(record.get("invoice_number") or "").strip() or invoice_id,
            customer_id=customer_id(record),
            issue_date=issued,
            due_date=_day(record, "deadline", default=issued),
            total=Money.of(total, currency),
            amount_due=Money.of(due, currency),
            status=status,
        )
    except ValueError as exc:
        raise FatalError(f"Pennylane invoice {invoice_id}: {exc}") from None


def payments(record: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[Payment]:
    """The payments of an invoice (``customer_invoices/{id}/payments``) whose money came
    in, in the invoice's currency (``currency_amount``), on the day Pennylane gives (else
    the day it recorded them)."""
    invoice_id = _text(record, "id")
    currency = _currency(record)
    found = []
    for entry in rows:
        state = str(entry.get("status") or "").strip().lower()
        if state and state not in RECEIVED:
            continue
        paid = decimal(entry, "currency_amount")
        if paid is None:
            paid = decimal(entry, "amount")
        if paid is None or paid <= 0:
            continue
        found.append(
            Payment(
                id=_text(entry, "id"),
                invoice_id=invoice_id,
                date=_payment_day(entry),
                amount=Money.of(paid, currency),
            )
        )
    return found


def _payment_day(entry: Mapping[str, Any]) -> date:
    """The day a payment came in: its ``date``, else when Pennylane recorded it, as a day
    in France (a payment at 00:30 in Paris is on that day, not the UTC one before)."""
    for field in ("date", "created_at"):
        text = str(entry.get(field) or "").strip()
        if len(text) == 10:
            return _day(entry, field)
        when = moment(text)
        if when is not None:
            return when.astimezone(PARIS).date()
    raise FatalError(f"Pennylane payment {entry.get('id')}: field 'date' holds no date")


def credit_note(record: Mapping[str, Any]) -> CreditNote:
    """A credit note (its amounts below zero). What of it is used is set off against the
    invoice it names (``credited_invoice``): all of it, less what it still has left
    (``remaining_amount_with_tax``)."""
    note_id = _text(record, "id")
    currency = _currency(record)
    total = abs(_total(record))
    issued = _day(record, "date")
    credited = record.get("credited_invoice")
    target = str(credited.get("id") or "") if isinstance(credited, Mapping) else ""
    left = abs(decimal(record, "remaining_amount_with_tax") or Decimal(0))
    used = max(Decimal(0), total - left)
    allocations: tuple[CreditAllocation, ...] = ()
    if target and used > 0:
        allocations = (CreditAllocation(target, Money.of(used, currency), issued),)
    try:
        return CreditNote(
            id=note_id,
            number=str(record.get("invoice_number") or "").strip() or note_id,
            customer_id=customer_id(record),
            date=issued,
            total=Money.of(total, currency),
            allocations=allocations,
        )
    except ValueError as exc:
        raise FatalError(f"Pennylane credit note {note_id}: {exc}") from None


def read(record: Mapping[str, Any]) -> Invoice | CreditNote | None:
    """What a record of the customer-invoice collection is to Kindly: an invoice, a
    credit note, or nothing it reads (a draft, a quote, a proforma, an order)."""
    if not is_read(record):
        return None
    return credit_note(record) if is_credit_note(record) else invoice(record)


def shows_money_paid(read: Invoice) -> bool:
    """Whether the invoice shows money paid, so that its payments are worth a call: it
    owes less than its total. (A credit note set off against it lowers what it owes too;
    that call then finds no payment.)"""
    return read.amount_due < read.total


def pdf_link(record: Mapping[str, Any]) -> str | None:
    """The invoice's PDF (``public_file_url``): public, valid 30 minutes, and null until
    Pennylane has made the file."""
    link = str(record.get("public_file_url") or "").strip()
    return link or None
