"""The core's vocabulary: what a ledger and a calendar hold, as frozen values.

Connectors map platform data onto these types; planning, rendering and delivery read
only these. Nothing here does I/O or reads a clock, and every value checks itself when it
is built, so a bad record fails where it is read, not three steps later in a template.

    >>> from datetime import date
    >>> inv = Invoice(id="I1", number="2026-001", customer_id="C1",
    ...               issue_date=date(2026, 1, 2), due_date=date(2026, 2, 1),
    ...               total=Money.of("100", "EUR"), amount_due=Money.of("40", "EUR"))
    >>> inv.is_open, inv.amount_paid
    (True, Money('60.00', 'EUR'))
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugin.core.money import Money
from plugin.core.vocabulary import LANGUAGES, SALUTATIONS, Language, Salutation

__all__ = [
    "LANGUAGES",
    "Appointment",
    "AppointmentStatus",
    "Attendee",
    "CreditAllocation",
    "CreditNote",
    "Customer",
    "CustomerKind",
    "Invoice",
    "InvoiceStatus",
    "LedgerSnapshot",
    "Note",
    "Payment",
    "PromiseToPay",
]


def _require(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{field_name}: {message}")


def _require_aware(value: datetime, field_name: str) -> None:
    _require(
        value.tzinfo is not None and value.utcoffset() is not None,
        field_name,
        "must carry a time zone",
    )


def _require_text(value: str, field_name: str) -> None:
    _require(isinstance(value, str) and bool(value.strip()), field_name, "must not be empty")


def _require_currency(amount: Money, currency: str, field_name: str) -> None:
    _require(
        amount.currency == currency,
        field_name,
        f"is in {amount.currency}, but the record is in {currency}",
    )


class CustomerKind(enum.StrEnum):
    """Business or consumer: the law treats them differently (interest, fees, letters)."""

    BUSINESS = "business"
    CONSUMER = "consumer"


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"  # approved and sent; may be partly paid
    PAID = "paid"
    VOIDED = "voided"


class AppointmentStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Customer:
    """A client of the creditor: who gets the reminder and how to address them."""

    id: str
    name: str  # the organisation, or the person for a consumer
    contact_name: str | None = None  # the person to greet
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    language: Language = "en"
    country: str = "GB"  # ISO 3166-1 alpha-2
    timezone: str = "UTC"  # IANA name
    kind: CustomerKind = CustomerKind.BUSINESS
    tags: frozenset[str] = frozenset()
    address: tuple[str, ...] = ()
    #: The contact person's parts, where the ledger or the platform has them: greetings
    #: follow each language's convention ("Dear Mr Hughes", "Hallo Katrin", "Chào chị Lan").
    salutation: Salutation | None = None
    given_name: str | None = None
    family_name: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.id, "id")
        _require_text(self.name, "name")
        _require(
            self.salutation is None or self.salutation in SALUTATIONS,
            "salutation",
            f"must be one of {', '.join(SALUTATIONS)}",
        )
        _require(self.language in LANGUAGES, "language", f"must be one of {', '.join(LANGUAGES)}")
        _require(
            len(self.country) == 2 and self.country.isalpha() and self.country.isupper(),
            "country",
            "must be a two-letter ISO 3166 code such as NL",
        )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: "Europe" names a folder of the time zone database, and a name of
            # thousands of characters is too long for a file name.
            shown = self.timezone if len(self.timezone) <= 60 else self.timezone[:60] + "…"
            raise ValueError(f"timezone: {shown!r} is not an IANA time zone") from None
        for email in self.emails:
            _require(
                "@" in email and not any(c in email for c in "\r\n "),
                "emails",
                f"{email!r} is not an e-mail address",
            )
        for phone in self.phones:
            _require(not any(c in phone for c in "\r\n"), "phones", f"{phone!r} is not a number")

    @property
    def greeting_name(self) -> str:
        parts = " ".join(part for part in (self.given_name, self.family_name) if part)
        return self.contact_name or parts or self.name


@dataclass(frozen=True, slots=True)
class Invoice:
    """A sales invoice as the accounting system reports it; ``amount_due`` is what is owed."""

    id: str
    number: str
    customer_id: str
    issue_date: date
    due_date: date
    total: Money
    amount_due: Money
    status: InvoiceStatus = InvoiceStatus.OPEN
    online_url: str | None = None
    reference: str | None = None  # the payment reference the debtor should quote
    disputed: bool = False
    on_hold: bool = False

    def __post_init__(self) -> None:
        _require_text(self.id, "id")
        _require_text(self.number, "number")
        _require_text(self.customer_id, "customer_id")
        _require(self.due_date >= self.issue_date, "due_date", "is before the issue date")
        _require_currency(self.amount_due, self.currency, "amount_due")
        _require(self.total.amount >= 0, "total", "must not be negative (use a credit note)")
        _require(self.amount_due.amount >= 0, "amount_due", "must not be negative")
        _require(self.amount_due <= self.total, "amount_due", "is more than the invoice total")

    @property
    def currency(self) -> str:
        return self.total.currency

    @property
    def amount_paid(self) -> Money:
        """Paid or credited so far."""
        return self.total - self.amount_due

    @property
    def is_open(self) -> bool:
        """Approved and still owing something."""
        return self.status is InvoiceStatus.OPEN and self.amount_due.is_positive


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    invoice_id: str
    date: date
    amount: Money
    reference: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.id, "id")
        _require_text(self.invoice_id, "invoice_id")
        _require(self.amount.is_positive, "amount", "must be more than zero")


@dataclass(frozen=True, slots=True)
class CreditAllocation:
    """Part of a credit note set off against one invoice."""

    invoice_id: str
    amount: Money
    date: date | None = None

    def __post_init__(self) -> None:
        _require_text(self.invoice_id, "invoice_id")
        _require(self.amount.is_positive, "amount", "must be more than zero")


@dataclass(frozen=True, slots=True)
class CreditNote:
    id: str
    number: str
    customer_id: str
    date: date
    total: Money
    allocations: tuple[CreditAllocation, ...] = ()

    def __post_init__(self) -> None:
        _require_text(self.id, "id")
        _require_text(self.number, "number")
        _require_text(self.customer_id, "customer_id")
        _require(self.total.is_positive, "total", "must be more than zero")
        allocated = Money.zero(self.currency)
        for allocation in self.allocations:
            _require_currency(allocation.amount, self.currency, "allocations.amount")
            allocated = allocated + allocation.amount
        _require(allocated <= self.total, "allocations", "allocate more than the credit note total")

    @property
    def currency(self) -> str:
        return self.total.currency

    @property
    def remaining_credit(self) -> Money:
        return self.total - sum((a.amount for a in self.allocations), Money.zero(self.currency))


@dataclass(frozen=True, slots=True)
class PromiseToPay:
    """The client said they would pay by ``promised_date`` (R22)."""

    invoice_id: str
    promised_date: date
    recorded_on: date
    amount: Money | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.invoice_id, "invoice_id")


@dataclass(frozen=True, slots=True)
class Attendee:
    name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Appointment:
    """A calendar event someone should be reminded of (R1)."""

    id: str
    title: str
    start: datetime
    end: datetime
    attendees: tuple[Attendee, ...] = ()
    customer_id: str | None = None
    location: str | None = None
    online_url: str | None = None
    status: AppointmentStatus = AppointmentStatus.CONFIRMED
    all_day: bool = False
    #: The calendar it comes from: policies can differ per calendar.
    calendar: str | None = None
    description: str | None = None
    #: The event's own time zone by name ("Europe/Oslo"): a stored time keeps only its
    #: offset, and an attendee who is no client is reminded on the event's clock.
    timezone: str | None = None
    #: For one occurrence of a series: the calendar's UID of the series and the start the
    #: occurrence had in it (RECURRENCE-ID), so that an .ics names the calendar's event.
    series_uid: str | None = None
    recurrence_id: datetime | None = None
    #: How often Kindly has seen it move, or leave the calendar and come back: its
    #: reminders' keys name it, so that an event moved away and back is reminded afresh.
    moves: int = 0

    def __post_init__(self) -> None:
        _require_text(self.id, "id")
        _require_text(self.title, "title")
        _require_aware(self.start, "start")
        if self.timezone is None and isinstance(getattr(self.start.tzinfo, "key", None), str):
            object.__setattr__(self, "timezone", self.start.tzinfo.key)  # type: ignore[union-attr]
        _require_aware(self.end, "end")
        _require(self.end >= self.start, "end", "is before the start")


@dataclass(frozen=True, slots=True)
class Note:
    """What Kindly wrote back to the accounting system about a reminder it sent."""

    id: str
    created_at: datetime
    text: str
    customer_id: str
    invoice_ids: tuple[str, ...] = ()
    reminder_key: str | None = None
    stage: str | None = None
    channel: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.id, "id")
        _require_aware(self.created_at, "created_at")
        _require_text(self.text, "text")


@dataclass(frozen=True)
class LedgerSnapshot:
    """Everything one sync read from one accounting system, indexed for planning."""

    customers: tuple[Customer, ...] = ()
    invoices: tuple[Invoice, ...] = ()
    payments: tuple[Payment, ...] = ()
    credit_notes: tuple[CreditNote, ...] = ()
    promises: tuple[PromiseToPay, ...] = ()
    appointments: tuple[Appointment, ...] = ()
    notes: tuple[Note, ...] = field(default=())

    @cached_property
    def customers_by_id(self) -> Mapping[str, Customer]:
        return {customer.id: customer for customer in self.customers}

    @cached_property
    def invoices_by_id(self) -> Mapping[str, Invoice]:
        return {invoice.id: invoice for invoice in self.invoices}

    @cached_property
    def promises_by_invoice(self) -> Mapping[str, tuple[PromiseToPay, ...]]:
        return _group(self.promises, lambda promise: promise.invoice_id)

    def open_invoices(self) -> Iterable[Invoice]:
        return (invoice for invoice in self.invoices if invoice.is_open)


_T = TypeVar("_T")


def _group(items: Iterable[_T], key: Callable[[_T], str]) -> dict[str, tuple[_T, ...]]:
    grouped: dict[str, list[_T]] = {}
    for item in items:
        grouped.setdefault(key(item), []).append(item)
    return {k: tuple(v) for k, v in grouped.items()}
