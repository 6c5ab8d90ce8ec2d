"""What Fiken's JSON records mean, as Kindly's model: contacts, invoices with their sale
and its payments, and credit notes.

Pure functions, no I/O: :mod:`integrations.bookkeeping.fiken` reads the records and hands
them here. Fiken writes every amount as a whole number of hundredths ("cents", øre for
NOK, whatever the currency, its description says): :func:`ore` turns one into a Decimal
exactly (divided by 100, never through float), and :class:`~plugin.core.money.Money` then
holds it in the currency's own minor unit. A record that cannot be read raises
:class:`integrations.http.FatalError` naming the field, which the sync turns into a
warning about that record alone.

An invoice in Fiken was issued (drafts live apart, under ``invoices/drafts``); where it
stands is its ``sale``: ``outstandingBalance`` is what is owed, ``settled`` says nothing
is (paid, credited, or marked settled by hand), ``writeOff`` that a loss was booked, and
``deleted`` that the sale was reversed. A credit note names the invoice it credits
(``associatedInvoiceId``), and crediting lowers that invoice's ``outstandingBalance``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

from integrations.fields import country_code, day, looks_like_email, postal_address, required_text
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
from plugin.core.vocabulary import Language

__all__ = [
    "credit_note",
    "customer",
    "invoice",
    "is_deleted",
    "language_of",
    "ore",
    "payments",
    "payments_missing",
    "pdf_link",
    "sale_id",
]

_text = partial(required_text, "Fiken")

#: Fiken's two document languages, as a contact names them.
LANGUAGES: Mapping[str, Language] = {"NORWEGIAN": "nb", "ENGLISH": "en"}


def ore(record: Mapping[str, Any], field: str) -> Decimal:
    """An amount Fiken gives in hundredths, exactly: 123457 is 1234.57; absent is zero.

    A float, a bool or a fraction of a hundredth is refused rather than rounded: Fiken
    never sends one, so it means the record is not what we think it is.
    """
    value = record.get(field)
    if value is None:
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise FatalError(f"Fiken record: field {field!r} is not a whole amount ({value!r})")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except ArithmeticError:
        number = Decimal("NaN")
    if not number.is_finite() or number != number.to_integral_value():
        raise FatalError(f"Fiken record: field {field!r} is not a whole amount ({value!r})")
    return number.scaleb(-2)


def _day(record: Mapping[str, Any], field: str, default: Any = None) -> Any:
    return day("Fiken", record.get(field), field, default)


def _currency(record: Mapping[str, Any]) -> str:
    return str(record.get("currency") or "NOK").strip().upper()


def _sale(record: Mapping[str, Any]) -> Mapping[str, Any]:
    sale = record.get("sale")
    if not isinstance(sale, Mapping):
        raise FatalError(f"Fiken invoice {record.get('invoiceId')}: it carries no sale")
    return sale


def language_of(value: Any) -> Language | None:
    """Kindly's language for a contact's ``language`` (NORWEGIAN, ENGLISH); None for
    anything else, which leaves it to the country."""
    return LANGUAGES.get(str(value or "").strip().upper())


def customer(record: Mapping[str, Any], company_country: str) -> Customer:
    """A contact as a client. An organisation number (or a contact person) makes it a
    business; without either it is a person, whom the law protects as a consumer."""
    contact_id = _text(record, "contactId")
    address = record.get("address")
    if not isinstance(address, Mapping):
        address = {}
    written_country = str(address.get("country") or "").strip()
    # Fiken keeps the country as the user wrote it ("Norge", "Tyskland").
    country = country_code(written_country) or company_country
    people = [p for p in record.get("contactPerson") or [] if isinstance(p, Mapping)]
    person = next((str(p.get("name") or "").strip() for p in people if p.get("name")), None)
    emails = [str(record.get("email") or "")] + [str(p.get("email") or "") for p in people]
    # phoneNumber is write-only in Fiken's description: it may never come back.
    phones = [str(record.get("phoneNumber") or "")]
    phones += [str(p.get("phoneNumber") or "") for p in people]
    business = bool(str(record.get("organizationNumber") or "").strip() or people)
    return Customer(
        id=contact_id,
        name=str(record.get("name") or "").strip() or contact_id,
        contact_name=person or None,
        emails=tuple(dict.fromkeys(e.strip() for e in emails if looks_like_email(e.strip()))),
        phones=tuple(dict.fromkeys(" ".join(p.split()) for p in phones if p.strip())),
        language=language_of(record.get("language")) or default_language(country),
        country=country,
        timezone=default_timezone(country) or "UTC",
        kind=CustomerKind.BUSINESS if business else CustomerKind.CONSUMER,
        address=postal_address(
            [str(address.get("streetAddress") or ""), str(address.get("streetAddressLine2") or "")],
            city=str(address.get("city") or ""),
            postal_code=str(address.get("postCode") or ""),
            region="",
            country=written_country,
        ),
    )


def is_deleted(record: Mapping[str, Any]) -> bool:
    """Whether the invoice's sale was deleted: Fiken keeps it, reversed and flagged, and
    Kindly treats the invoice as gone."""
    sale = record.get("sale")
    return isinstance(sale, Mapping) and bool(sale.get("deleted"))


def invoice(record: Mapping[str, Any]) -> Invoice:
    """An invoice: what is owed is its sale's ``outstandingBalance`` (nothing once the sale
    is ``settled``); its number is ``invoiceNumber`` and the KID what the client quotes."""
    invoice_id = _text(record, "invoiceId")
    currency = _currency(record)
    sale = _sale(record)
    issued = _day(record, "issueDate")
    total = ore(record, "gross")
    settled = bool(sale.get("settled"))
    due = Decimal(0) if settled else max(Decimal(0), min(ore(sale, "outstandingBalance"), total))
    if sale.get("writeOff"):
        status = InvoiceStatus.VOIDED
    else:
        status = InvoiceStatus.OPEN if due > 0 else InvoiceStatus.PAID
    customer_record = record.get("customer")
    if not isinstance(customer_record, Mapping):
        raise FatalError(f"Fiken invoice {invoice_id}: it names no customer")
    try:
        return Invoice(
            id=invoice_id,
            number=str(record.get("invoiceNumber") or "").strip() or invoice_id,
            customer_id=_text(customer_record, "contactId"),
            issue_date=issued,
            due_date=_day(record, "dueDate", default=issued),
            total=Money.of(total, currency),
            amount_due=Money.of(due, currency),
            status=status,
            reference=str(record.get("kid") or "").strip() or None,
        )
    except ValueError as exc:
        raise FatalError(f"Fiken invoice {invoice_id}: {exc}") from None


def payments_missing(record: Mapping[str, Any]) -> bool:
    """Whether the invoice's sale shows money paid without listing the payments, so that
    ``sales/{saleId}/payments`` has to be asked (Fiken's description puts them in the
    sale, as ``salePayments``)."""
    sale = _sale(record)
    listed = sale.get("salePayments")
    if isinstance(listed, list) and listed:
        return False
    totals = [name for name in ("totalPaidInCurrency", "totalPaid") if sale.get(name) is not None]
    if totals:
        # A credit lowers what is owed too: only money paid says there are payments.
        return any(ore(sale, name) > 0 for name in totals)
    if isinstance(listed, list):
        return False  # an empty list, and no totals to say otherwise
    owed = ore(sale, "outstandingBalance")
    return bool(sale.get("settled")) or owed < ore(record, "gross")


def sale_id(record: Mapping[str, Any]) -> str:
    return _text(_sale(record), "saleId")


def payments(
    record: Mapping[str, Any], listed: Sequence[Mapping[str, Any]] | None = None
) -> list[Payment]:
    """The payments of an invoice's sale, in the invoice's currency (``amount``; a
    foreign-currency payment also says ``amountInNok``): those ``listed`` when they were
    asked for apart, else the sale's ``salePayments``."""
    invoice_id = _text(record, "invoiceId")
    currency = _currency(record)
    rows = listed if listed is not None else _sale(record).get("salePayments") or []
    found = []
    for entry in rows:
        if not isinstance(entry, Mapping):
            continue
        paid = ore(entry, "amount")
        if paid <= 0:
            continue
        found.append(
            Payment(
                id=_text(entry, "paymentId"),
                invoice_id=invoice_id,
                date=_day(entry, "date"),
                amount=Money.of(paid, currency),
            )
        )
    return found


def credit_note(record: Mapping[str, Any]) -> CreditNote:
    """A credit note. Set off in full against the invoice it names once Fiken calls it
    ``settled``; one that is not gave back more than was open, and how much of it went
    to the invoice Fiken does not say, so it carries no allocation."""
    note_id = _text(record, "creditNoteId")
    currency = _currency(record)
    total = Money.of(abs(ore(record, "gross")), currency)
    issued = _day(record, "issueDate")
    customer_record = record.get("customer")
    if not isinstance(customer_record, Mapping):
        raise FatalError(f"Fiken credit note {note_id}: it names no customer")
    credited = str(record.get("associatedInvoiceId") or "").strip()
    allocations: tuple[CreditAllocation, ...] = ()
    if credited and record.get("settled") and total.is_positive:
        allocations = (CreditAllocation(invoice_id=credited, amount=total, date=issued),)
    try:
        return CreditNote(
            id=note_id,
            number=str(record.get("creditNoteNumber") or "").strip() or note_id,
            customer_id=_text(customer_record, "contactId"),
            date=issued,
            total=total,
            allocations=allocations,
        )
    except ValueError as exc:
        raise FatalError(f"Fiken credit note {note_id}: {exc}") from None


def pdf_link(record: Mapping[str, Any]) -> str | None:
    """Where the invoice's PDF is fetched with the API's bearer token."""
    pdf = record.get("invoicePdf")
    link = str(pdf.get("downloadUrl") or "").strip() if isinstance(pdf, Mapping) else ""
    return link or None
