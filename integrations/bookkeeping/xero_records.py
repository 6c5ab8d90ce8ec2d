"""What Xero's JSON records mean, as Kindly's model: contacts, invoices, the promises to
pay noted on them, credit notes with their allocations, and payments.

Pure functions, no I/O: :mod:`integrations.bookkeeping.xero` reads the records and hands
them here. Money is read as Decimal straight from the JSON, never through float. A record
that cannot be read raises :class:`integrations.http.FatalError` naming the field, which
the sync turns into a warning about that record alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
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
from plugin.core.model import (
    CreditAllocation,
    CreditNote,
    Customer,
    Invoice,
    InvoiceStatus,
    Payment,
    PromiseToPay,
)
from plugin.core.money import Money
from plugin.core.vocabulary import LANGUAGES

__all__ = ["credit_note", "customer", "invoice", "iso_moment", "no_credit", "payment", "promise"]

STATUS = {
    "DRAFT": InvoiceStatus.DRAFT,
    "SUBMITTED": InvoiceStatus.DRAFT,  # awaiting approval: not sent to the client yet
    "AUTHORISED": InvoiceStatus.OPEN,
    "PAID": InvoiceStatus.PAID,
    "VOIDED": InvoiceStatus.VOIDED,
}
_amount = partial(amount, "Xero")
_text = partial(required_text, "Xero")


def _name_part(value: object) -> str | None:
    return str(value).strip() or None if value else None


def customer(record: Mapping[str, Any], company_country: str) -> Customer:
    """A contact as a client; its country from its address, else the company's."""
    contact_id = _text(record, "ContactID")
    country = _country(record.get("Addresses") or []) or company_country
    emails = [str(record.get("EmailAddress") or "").strip()]
    people = record.get("ContactPersons") or []
    emails += [str(p.get("EmailAddress") or "").strip() for p in people if p.get("IncludeInEmails")]
    first = " ".join(
        part for part in (record.get("FirstName"), record.get("LastName")) if part
    ).strip()
    groups = frozenset(
        str(g.get("Name")) for g in record.get("ContactGroups") or [] if g.get("Name")
    )
    language = default_language(country)
    return Customer(
        id=contact_id,
        name=str(record.get("Name") or contact_id),
        contact_name=first or None,
        given_name=_name_part(record.get("FirstName")),
        family_name=_name_part(record.get("LastName")),
        emails=tuple(dict.fromkeys(e for e in emails if looks_like_email(e))),
        phones=_phones(record.get("Phones") or []),
        language=language if language in LANGUAGES else "en",
        country=country,
        timezone=default_timezone(country) or "UTC",
        tags=groups,
        address=_address(record.get("Addresses") or []),
    )


def invoice(record: Mapping[str, Any]) -> Invoice:
    invoice_id = _text(record, "InvoiceID")
    currency = str(record.get("CurrencyCode") or "EUR")
    issued = _day(record, "Date")
    try:
        return Invoice(
            id=invoice_id,
            number=str(record.get("InvoiceNumber") or invoice_id[:8]),
            customer_id=_text(record.get("Contact") or {}, "ContactID"),
            issue_date=issued,
            due_date=_day(record, "DueDate", default=issued),
            total=Money.of(_amount(record, "Total"), currency),
            amount_due=Money.of(_amount(record, "AmountDue"), currency),
            status=STATUS.get(str(record.get("Status")), InvoiceStatus.VOIDED),
            reference=str(record.get("Reference") or "") or None,
        )
    except ValueError as exc:
        raise FatalError(f"Xero invoice {invoice_id}: {exc}") from None


def promise(record: Mapping[str, Any]) -> PromiseToPay | None:
    # Xero's "expected payment date" is where a bookkeeper notes a promise to pay (R22).
    if not record.get("ExpectedPaymentDate"):
        return None
    updated = moment(record.get("UpdatedDateUTC"))
    return PromiseToPay(
        invoice_id=_text(record, "InvoiceID"),
        promised_date=_day(record, "ExpectedPaymentDate"),
        recorded_on=updated.date() if updated else _day(record, "Date"),
    )


def credit_note(record: Mapping[str, Any]) -> CreditNote:
    currency = str(record.get("CurrencyCode") or "EUR")
    allocations = tuple(
        CreditAllocation(
            invoice_id=_text(item.get("Invoice") or {}, "InvoiceID"),
            amount=Money.of(_amount(item, "Amount"), currency),
            date=_day(item, "Date") if item.get("Date") else None,
        )
        for item in record.get("Allocations") or []
        if Decimal(str(item.get("Amount") or 0)) > 0 and not item.get("IsDeleted")
    )
    return CreditNote(
        id=_text(record, "CreditNoteID"),
        number=str(record.get("CreditNoteNumber") or record["CreditNoteID"][:8]),
        customer_id=_text(record.get("Contact") or {}, "ContactID"),
        date=_day(record, "Date"),
        total=Money.of(_amount(record, "Total"), currency),
        allocations=allocations,
    )


def payment(record: Mapping[str, Any]) -> Payment:
    invoice = record.get("Invoice") or {}
    currency = str(invoice.get("CurrencyCode") or record.get("CurrencyCode") or "EUR")
    return Payment(
        id=_text(record, "PaymentID"),
        invoice_id=_text(invoice, "InvoiceID"),
        date=_day(record, "Date"),
        amount=Money.of(_amount(record, "Amount"), currency),
        reference=str(record.get("Reference") or "") or None,
    )


def no_credit(record: Mapping[str, Any]) -> bool:
    """Voided, deleted, draft or empty."""
    return record.get("Status") not in ("AUTHORISED", "PAID") or _amount(record, "Total") <= 0


def iso_moment(value: Any) -> str | None:
    # RFC 3339 with its offset, as the API description asks of If-Modified-Since.
    found = moment(value)
    return iso_stamp(found) if found else None


def _day(record: Mapping[str, Any], field: str, default: date | None = None) -> date:
    # Xero's dates are calendar days sent as midnight UTC; the *String twin is plain ISO.
    return day("Xero", record.get(f"{field}String") or record.get(field), field, default)


def _phones(phones: list[Mapping[str, Any]]) -> tuple[str, ...]:
    found = []
    for phone in sorted(phones, key=lambda p: p.get("PhoneType") != "MOBILE"):
        number = str(phone.get("PhoneNumber") or "").strip()
        if not number:
            continue
        parts = [phone.get("PhoneCountryCode"), phone.get("PhoneAreaCode"), number]
        text = " ".join(str(p).strip() for p in parts if p)
        if phone.get("PhoneCountryCode") and not text.startswith("+"):
            text = "+" + text
        found.append(" ".join(text.replace("\r", " ").replace("\n", " ").split()))
    return tuple(dict.fromkeys(found))


def _postal(addresses: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    usable = [a for a in addresses if a.get("AddressLine1") or a.get("City") or a.get("Country")]
    usable.sort(key=lambda a: a.get("AddressType") != "POBOX")
    return usable[0] if usable else None


def _address(addresses: list[Mapping[str, Any]]) -> tuple[str, ...]:
    """The postal address as the destination country's post expects it (see
    :func:`integrations.fields.postal_address`)."""
    postal = _postal(addresses)
    if postal is None:
        return ()
    return postal_address(
        [str(postal.get(f"AddressLine{n}") or "") for n in range(1, 5)],
        city=str(postal.get("City") or ""),
        postal_code=str(postal.get("PostalCode") or ""),
        region=str(postal.get("Region") or ""),
        country=str(postal.get("Country") or ""),
    )


def _country(addresses: list[Mapping[str, Any]]) -> str | None:
    """An ISO code from Xero's free-text country ("Netherlands", "NL", "Nederland")."""
    postal = _postal(addresses)
    return country_code(str(postal.get("Country") or "")) if postal else None
