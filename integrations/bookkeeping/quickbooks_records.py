"""What QuickBooks Online's JSON records mean, as Kindly's model: customers, invoices,
credit memos and payments (the entity schemas in ../shared/specs/quickbooks/).

Pure functions, no I/O: :mod:`integrations.bookkeeping.quickbooks` reads the records and
hands them here. Money is read as Decimal straight from the JSON, never through float. A
record that cannot be read raises :class:`integrations.http.FatalError` naming the field,
which the sync turns into a warning about that record alone.

QuickBooks has no invoice status: an invoice with a ``Balance`` is open, one without is
paid, and a voided one keeps its number with every amount zeroed. A ``Payment`` settles
invoices line by line; a line may be paid in cash or by a credit memo applied in the same
payment: either way the invoice was settled by that much that day, so each invoice line
is one Kindly payment (its id is the payment's and the invoice's).
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
    moment,
    postal_address,
    required_text,
)
from integrations.http import FatalError
from integrations.sync import iso_stamp
from plugin.config.locales import default_language, default_timezone
from plugin.core.model import CreditNote, Customer, Invoice, InvoiceStatus, Payment
from plugin.core.money import Money
from plugin.core.vocabulary import LANGUAGES

__all__ = [
    "credit_note",
    "customer",
    "invoice",
    "is_deleted",
    "payment_id_prefix",
    "payments",
    "updated",
]

_amount = partial(amount, "QuickBooks")
_text = partial(required_text, "QuickBooks")
#: QuickBooks names countries as people write them ("USA", "United States", "UK").
_COUNTRY_WORDS = {"USA": "US", "U.S.A.": "US", "U.S.": "US", "UNITED STATES": "US", "UK": "GB"}


def _currency(record: Mapping[str, Any], home: str) -> str:
    ref = record.get("CurrencyRef") or {}
    return str(ref.get("value") or home).upper()


def _ref(record: Mapping[str, Any], field: str) -> str:
    return _text(record.get(field) or {}, "value")


def _day(record: Mapping[str, Any], field: str, default: Any = None) -> Any:
    return day("QuickBooks", record.get(field), field, default)


def updated(record: Mapping[str, Any]) -> str | None:
    """When QuickBooks last changed the record, as a bookmark's stamp."""
    found = moment((record.get("MetaData") or {}).get("LastUpdatedTime"))
    return iso_stamp(found) if found else None


def is_deleted(record: Mapping[str, Any]) -> bool:
    """A change-data-capture stub of a deleted record."""
    return str(record.get("status") or "").lower() == "deleted"


def _country(address: Mapping[str, Any]) -> str | None:
    text = " ".join(str(address.get("Country") or "").split())
    return _COUNTRY_WORDS.get(text.upper()) or country_code(text)


def customer(record: Mapping[str, Any], company_country: str) -> Customer:
    """A customer as a client; its country from its billing address, else the company's.
    QuickBooks keeps no language: the country's, unless a client setting says otherwise."""
    customer_id = _text(record, "Id")
    address = record.get("BillAddr") or {}
    country = _country(address) or company_country
    emails = [
        part.strip()
        for part in str((record.get("PrimaryEmailAddr") or {}).get("Address") or "").split(",")
    ]
    phones = [
        " ".join(str((record.get(field) or {}).get("FreeFormNumber") or "").split())
        for field in ("Mobile", "PrimaryPhone")
    ]
    given = str(record.get("GivenName") or "").strip() or None
    family = str(record.get("FamilyName") or "").strip() or None
    language = default_language(country)
    name = str(record.get("CompanyName") or record.get("DisplayName") or "").strip()
    type_name = str((record.get("CustomerTypeRef") or {}).get("name") or "").strip()
    return Customer(
        id=customer_id,
        name=name or customer_id,
        contact_name=" ".join(part for part in (given, family) if part) or None,
        given_name=given,
        family_name=family,
        emails=tuple(dict.fromkeys(e for e in emails if looks_like_email(e))),
        phones=tuple(dict.fromkeys(p for p in phones if p)),
        language=language if language in LANGUAGES else "en",
        country=country,
        timezone=default_timezone(country) or "UTC",
        # The customer type is where a bookkeeper can set a client's reminders inside
        # QuickBooks ("Reminders: firm"), as Xero's contact groups.
        tags=frozenset({type_name} if type_name else ()),
        address=postal_address(
            [str(address.get(f"Line{n}") or "") for n in range(1, 6)],
            city=str(address.get("City") or ""),
            postal_code=str(address.get("PostalCode") or ""),
            region=str(address.get("CountrySubDivisionCode") or ""),
            country=str(address.get("Country") or ""),
        ),
    )


def invoice(record: Mapping[str, Any], home_currency: str) -> Invoice:
    invoice_id = _text(record, "Id")
    currency = _currency(record, home_currency)
    issued = _day(record, "TxnDate")
    total = _amount(record, "TotalAmt")
    balance = _amount(record, "Balance")
    voided = total == 0 and "void" in str(record.get("PrivateNote") or "").lower()
    status = (
        InvoiceStatus.VOIDED
        if voided
        else InvoiceStatus.OPEN
        if balance > 0
        else InvoiceStatus.PAID
    )
    try:
        return Invoice(
            id=invoice_id,
            number=str(record.get("DocNumber") or invoice_id),
            customer_id=_ref(record, "CustomerRef"),
            issue_date=issued,
            due_date=_day(record, "DueDate", default=issued),
            total=Money.of(total, currency),
            amount_due=Money.of(balance, currency),
            status=status,
            online_url=str(record.get("InvoiceLink") or "") or None,
        )
    except ValueError as exc:
        raise FatalError(f"QuickBooks invoice {invoice_id}: {exc}") from None


def credit_note(record: Mapping[str, Any], home_currency: str) -> CreditNote:
    """A credit memo. What of it was applied is counted with the payment that applied it
    (see the module's description), so it carries no allocations of its own."""
    return CreditNote(
        id=_text(record, "Id"),
        number=str(record.get("DocNumber") or record.get("Id")),
        customer_id=_ref(record, "CustomerRef"),
        date=_day(record, "TxnDate"),
        total=Money.of(_amount(record, "TotalAmt"), _currency(record, home_currency)),
    )


def payment_id_prefix(payment_id: str) -> str:
    return f"{payment_id}:"


def payments(record: Mapping[str, Any], home_currency: str) -> list[Payment]:
    """One Kindly payment per invoice a QuickBooks payment settles (in cash or with a
    credit memo applied in it), identified by both ids."""
    payment_id = _text(record, "Id")
    currency = _currency(record, home_currency)
    on = _day(record, "TxnDate")
    settled: dict[str, Decimal] = {}
    for line in record.get("Line") or []:
        line_amount = _amount(line, "Amount")
        for linked in line.get("LinkedTxn") or []:
            if linked.get("TxnType") == "Invoice" and line_amount > 0:
                invoice_id = _text(linked, "TxnId")
                settled[invoice_id] = settled.get(invoice_id, Decimal(0)) + line_amount
    reference = str(record.get("PaymentRefNum") or "") or None
    return [
        Payment(
            id=payment_id_prefix(payment_id) + invoice_id,
            invoice_id=invoice_id,
            date=on,
            amount=Money.of(paid, currency),
            reference=reference,
        )
        for invoice_id, paid in settled.items()
    ]
