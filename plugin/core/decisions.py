"""What the planners decide, as data: the reminders to send, the items skipped, and why.

Both planners (:mod:`plugin.core.planning` for invoices, :mod:`plugin.core.appointments`
for calendar events) return these types; the run, the CLI and the store read only them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from plugin.core.behaviour import PaymentBehaviour
from plugin.core.model import Appointment, Attendee, Customer, CustomerKind, Invoice, Payment
from plugin.core.money import Money
from plugin.core.policy import AppointmentRule, Behaviour
from plugin.core.vocabulary import ChannelName, Formality, Language, Tone

__all__ = [
    "DECISIONS",
    "MESSAGE_CHANNELS",
    "REASONS",
    "WRITTEN_CHANNELS",
    "AppointmentSkip",
    "Plan",
    "PlannedAppointment",
    "PlannedReminder",
    "Reason",
    "SentReminder",
    "Skip",
    "recipients_for",
    "reminder_key",
]


#: Every reason code the planner gives, for documentation and for tests.
REASONS = {
    "draft": "a draft has not been sent to the client",
    "disputed": "the client disputes the invoice",
    "on_hold": "the invoice is on hold",
    "excluded": "the client or invoice is excluded from reminders",
    "paused": "reminders are paused until a date",
    "promised": "a promise to pay is running",
    "not_due_yet": "the next stage is not due yet",
    "sequence_complete": "every stage was sent; a person follows up",
    "below_minimum": "the amount is under the minimum for its currency",
    "no_channel": "no channel can reach the client",
    "too_soon": "the client had a message on this channel within the gap",
    "outside_send_window": "outside the send window on the client's clock",
    "changed_since_sync": "the invoice changed in the accounting system since the sync",
}


#: Channels that put a message in front of the client (a task does not).
MESSAGE_CHANNELS: frozenset[ChannelName] = frozenset({"email", "sms", "letter"})


#: Channels a Norwegian reminder fee may be claimed in (INKF §1-2: a written reminder).
WRITTEN_CHANNELS: frozenset[ChannelName] = frozenset({"email", "letter"})


@dataclass(frozen=True, slots=True)
class SentReminder:
    """A reminder that went out, as the log (or the accounting system's notes) remembers it."""

    key: str
    customer_id: str
    invoice_ids: tuple[str, ...]
    stage: str
    channel: str
    sent_at: datetime
    #: The stage each invoice reached; absent invoices reached ``stage``.
    invoice_stages: Mapping[str, str] = field(default_factory=dict)
    #: Whether it charged a Norwegian reminder fee (which limits the fees after it).
    reminder_fee: bool = False

    def stage_of(self, invoice_id: str) -> str:
        return self.invoice_stages.get(invoice_id, self.stage)


@dataclass(frozen=True, slots=True)
class PlannedReminder:
    key: str
    source: str
    customer: Customer
    invoices: tuple[Invoice, ...]
    stage: str
    channel: ChannelName
    recipients: tuple[str, ...]
    language: Language
    tone: Tone
    template: str = ""
    charges: bool = False
    invoice_stages: Mapping[str, str] = field(default_factory=dict)
    behaviour: Behaviour = Behaviour.UNKNOWN
    why: tuple[Reason, ...] = ()
    #: When the next stage would follow if this one goes unanswered (for "pay by" dates).
    next_step_date: date | None = None
    formality: Formality = "formal"
    #: Business or consumer, as resolved (the law on charges differs).
    debtor: CustomerKind | None = None
    #: Norway: this reminder adds a reminder fee (purregebyr) and gives 14 days to pay.
    reminder_fee: bool = False
    #: Payments on its invoices, when it claims charges: interest ran on the paid part
    #: until the day it was paid.
    payments: tuple[Payment, ...] = ()
    #: The channels to try, in order, if this one fails for good.
    fallbacks: tuple[ChannelName, ...] = ()
    #: The day (on the client's clock) of the last message about each invoice; an invoice
    #: absent here was never written about. The words say "we wrote to you on ..." (issue 17).
    reminded_on: Mapping[str, date] = field(default_factory=dict)
    #: How many messages each invoice had before this one: the words say "despite our
    #: reminder of ..." after one, "despite our reminders, the last on ..." after more.
    reminders_before: Mapping[str, int] = field(default_factory=dict)
    #: Invoices of a consolidated reminder whose own stage claims no charges: a newly
    #: overdue invoice beside one that reached the final notice bears none yet.
    uncharged: frozenset[str] = frozenset()

    def on_channel(self, channel: ChannelName) -> PlannedReminder:
        """The same reminder sent another way: its own key, so each is sent once."""
        return replace(
            self,
            channel=channel,
            recipients=recipients_for(self.customer, channel) or (),
            key=reminder_key(
                self.source, self.customer.id, self.invoice_stages, self.stage, channel
            ),
            fallbacks=self.fallbacks[self.fallbacks.index(channel) + 1 :]
            if channel in self.fallbacks
            else (),
        )

    @property
    def currency(self) -> str:
        return self.invoices[0].currency

    @property
    def amount_due(self) -> Money:
        return sum((invoice.amount_due for invoice in self.invoices), Money.zero(self.currency))

    @property
    def is_task(self) -> bool:
        return self.channel == "task"

    @property
    def lead_invoices(self) -> tuple[Invoice, ...]:
        """The invoices at the reminder's own stage: those that went through the stages
        before it. The others are newer and only "also now due"; the stage's consequences,
        deadline and charges are not theirs."""
        lead = tuple(i for i in self.invoices if self.stage_of(i.id) == self.stage)
        return lead or self.invoices

    @property
    def newer_invoices(self) -> tuple[Invoice, ...]:
        return tuple(i for i in self.invoices if self.stage_of(i.id) != self.stage)

    @property
    def charged_invoices(self) -> tuple[Invoice, ...]:
        return tuple(i for i in self.invoices if i.id not in self.uncharged)

    def stage_of(self, invoice_id: str) -> str:
        return self.invoice_stages.get(invoice_id, self.stage)


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason behind a decision: a code for programs, a sentence for people."""

    code: str
    text: str

    def __str__(self) -> str:
        return self.text


#: Codes of the reasons a reminder goes out.
DECISIONS = {
    "stage_due": "the invoice's next stage is due",
    "promise_broken": "a promise to pay passed unpaid, so the next stage is due at once",
    "consolidated": "several invoices share one reminder at the most advanced stage",
    "behaviour": "the client's payment behaviour shaped the timing or tone",
    "reminder_fee": "the reminder carries a Norwegian reminder fee (purregebyr)",
    "no_reminder_fee": "the reminder claims charges but no Norwegian reminder fee may be added",
}


@dataclass(frozen=True, slots=True)
class Skip:
    """An open item that gets no reminder now, and why."""

    customer_id: str
    invoice_id: str
    code: str
    reason: str
    #: When the item is expected to be due, if the planner knows.
    next_date: date | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    at: datetime
    reminders: tuple[PlannedReminder, ...]
    skips: tuple[Skip, ...]
    behaviour: Mapping[str, PaymentBehaviour] = field(default_factory=dict)
    #: Appointment reminders due (plugin.core.appointments), planned beside the invoices.
    appointments: tuple[PlannedAppointment, ...] = ()
    appointment_skips: tuple[AppointmentSkip, ...] = ()

    def for_client(self, client_id: str) -> Plan:
        return Plan(
            self.at,
            tuple(r for r in self.reminders if r.customer.id == client_id),
            tuple(s for s in self.skips if s.customer_id == client_id),
            {k: v for k, v in self.behaviour.items() if k == client_id},
            tuple(a for a in self.appointments if a.appointment.customer_id == client_id),
        )


def recipients_for(customer: Customer, channel: str) -> tuple[str, ...] | None:
    """Who a channel reaches for this client; None when the ledger lacks what it needs."""
    if channel == "email":
        return customer.emails or None
    if channel in ("sms", "phone"):
        return customer.phones or None
    if channel == "letter":
        return ("\n".join(customer.address),) if customer.address else None
    if channel == "task":
        return ()
    return None


def reminder_key(
    source: str, customer_id: str, invoice_ids: Iterable[str], stage: str, channel: str
) -> str:
    """Deterministic: the same reminder always gets the same key, so it is sent once."""
    material = "\x1f".join([source, customer_id, ",".join(sorted(invoice_ids)), stage, channel])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class PlannedAppointment:
    key: str
    source: str
    appointment: Appointment
    attendee: Attendee
    rule: AppointmentRule
    channel: ChannelName
    recipient: str
    #: Who the attendee is, as a client to greet in their language and time zone.
    customer: Customer
    formality: Formality = "formal"
    why: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class AppointmentSkip:
    appointment_id: str
    attendee: str
    code: str
    reason: str
    next_date: datetime | None = None
