"""Decide which reminders are due: a pure function of the ledger, settings, history and now.

This is the foundation's first, simple rule; the planning-core issue replaces it with the
full policy engine. It already keeps the promises that engine must keep:

* only open, approved invoices with something owed, not disputed or on hold;
* the first reminder ``first_reminder_after_days`` after the due date, in the client's
  own calendar day (its time zone);
* one reminder per client and currency, listing all of that client's overdue invoices;
* never the same stage twice for an invoice (``history`` is what was actually sent);
* every open invoice it does not remind gets a reason code and a sentence.

No clock, no network, no disk: ``now`` and everything else are arguments.

    >>> plan = plan_reminders(snapshot, settings, history=(), now=now, source="ledger")
    >>> [(r.customer.id, [i.number for i in r.invoices]) for r in plan.reminders]  # doctest: +SKIP
    [('C01', ['NS-0104', 'NS-0110'])]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from plugin.model import Customer, Invoice, InvoiceStatus, LedgerSnapshot
from plugin.money import Money
from plugin.settings import Settings

__all__ = [
    "FIRST_STAGE",
    "Plan",
    "PlannedReminder",
    "SentReminder",
    "Skip",
    "plan_reminders",
    "recheck",
    "reminder_key",
]

FIRST_STAGE = "first"


@dataclass(frozen=True, slots=True)
class SentReminder:
    """A reminder that went out, as the log (or the accounting system's notes) remembers it."""

    key: str
    customer_id: str
    invoice_ids: tuple[str, ...]
    stage: str
    channel: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class PlannedReminder:
    key: str
    source: str
    customer: Customer
    invoices: tuple[Invoice, ...]
    stage: str
    channel: str
    recipients: tuple[str, ...]
    language: str
    tone: str

    @property
    def currency(self) -> str:
        return self.invoices[0].currency

    @property
    def amount_due(self) -> Money:
        return sum((invoice.amount_due for invoice in self.invoices), Money.zero(self.currency))


@dataclass(frozen=True, slots=True)
class Skip:
    """An open item that gets no reminder now, and why."""

    customer_id: str
    invoice_id: str
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    at: datetime
    reminders: tuple[PlannedReminder, ...]
    skips: tuple[Skip, ...]


def reminder_key(
    source: str, customer_id: str, invoice_ids: Iterable[str], stage: str, channel: str
) -> str:
    """Deterministic: the same reminder always gets the same key, so it is sent once."""
    material = "\x1f".join([source, customer_id, ",".join(sorted(invoice_ids)), stage, channel])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def _local_today(now: datetime, customer: Customer) -> date:
    return now.astimezone(ZoneInfo(customer.timezone)).date()


def plan_reminders(
    snapshot: LedgerSnapshot,
    settings: Settings,
    history: Sequence[SentReminder],
    *,
    now: datetime,
    source: str,
) -> Plan:
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    reminded = {(invoice_id, sent.stage) for sent in history for invoice_id in sent.invoice_ids}
    skips: list[Skip] = []
    due_now: dict[tuple[str, str], list[Invoice]] = {}
    customers = snapshot.customers_by_id
    promises = snapshot.promises_by_invoice
    offset = timedelta(days=settings.policy.first_reminder_after_days)

    for invoice in sorted(snapshot.invoices, key=lambda i: (i.customer_id, i.due_date, i.number)):
        customer = customers[invoice.customer_id]
        client = settings.client(customer.id)
        today = _local_today(now, customer)

        def skip(code: str, reason: str, invoice: Invoice = invoice) -> None:
            skips.append(Skip(invoice.customer_id, invoice.id, code, reason))

        if invoice.status is InvoiceStatus.DRAFT:
            skip("draft", "a draft has not been sent to the client")
        elif invoice.status is InvoiceStatus.VOIDED:
            skip("voided", "the invoice was voided")
        elif not invoice.is_open:
            skip("paid", "nothing is owed")
        elif invoice.disputed:
            skip("disputed", "the client disputes this invoice; sort that out first")
        elif invoice.on_hold:
            skip("on_hold", "the invoice is on hold")
        elif client.excluded:
            skip("excluded", "this client is excluded from reminders")
        elif client.pause_until is not None and client.pause_until >= today:
            why = f": {client.pause_reason}" if client.pause_reason else ""
            skip("paused", f"reminders are paused until {client.pause_until.isoformat()}{why}")
        elif invoice.due_date + offset > today:
            skip(
                "not_due_yet",
                f"the first reminder is due on {(invoice.due_date + offset).isoformat()}",
            )
        elif any(p.promised_date >= today for p in promises.get(invoice.id, ())):
            latest = max(p.promised_date for p in promises[invoice.id])
            skip("promised", f"the client promised to pay by {latest.isoformat()}")
        elif (invoice.id, FIRST_STAGE) in reminded:
            skip("already_reminded", "the first reminder was already sent")
        else:
            due_now.setdefault((customer.id, invoice.currency), []).append(invoice)

    reminders: list[PlannedReminder] = []
    for (customer_id, currency), invoices in sorted(due_now.items()):
        customer = customers[customer_id]
        client = settings.client(customer_id)
        owed = sum((i.amount_due for i in invoices), Money.zero(currency))
        minimum = settings.policy.minimum.get(currency)
        if minimum is not None and owed < minimum:
            for invoice in invoices:
                skips.append(
                    Skip(
                        customer_id,
                        invoice.id,
                        "below_minimum",
                        f"{owed} is under the minimum of {minimum}",
                    )
                )
            continue
        channels = client.channels or settings.policy.channels
        if "email" not in channels or not customer.emails:
            reason = (
                "the client has no e-mail address"
                if "email" in channels
                else "only e-mail is available yet, and this client's channels exclude it"
            )
            for invoice in invoices:
                skips.append(Skip(customer_id, invoice.id, "no_channel", reason))
            continue
        invoice_ids = tuple(invoice.id for invoice in invoices)
        reminders.append(
            PlannedReminder(
                key=reminder_key(source, customer_id, invoice_ids, FIRST_STAGE, "email"),
                source=source,
                customer=customer,
                invoices=tuple(invoices),
                stage=FIRST_STAGE,
                channel="email",
                recipients=customer.emails,
                language=client.language or customer.language,
                tone=client.tone or settings.policy.tone,
            )
        )
    return Plan(at=now, reminders=tuple(reminders), skips=tuple(skips))


def recheck(plan: Plan, fresh: LedgerSnapshot) -> tuple[Plan, tuple[Skip, ...]]:
    """Drop reminders whose invoices changed since the sync (R3, D4).

    ``fresh`` is the accounting system read again right before sending. A reminder goes
    out only if every invoice it names is still open with the same amount due, due date
    and state; otherwise it is dropped and the next run plans from the new facts.
    """
    kept: list[PlannedReminder] = []
    dropped: list[Skip] = []
    fresh_invoices = fresh.invoices_by_id
    for reminder in plan.reminders:
        changed = [
            invoice
            for invoice in reminder.invoices
            if (now := fresh_invoices.get(invoice.id)) is None
            or not now.is_open
            or now.disputed
            or now.on_hold
            or now.amount_due != invoice.amount_due
            or now.due_date != invoice.due_date
        ]
        if changed:
            numbers = ", ".join(invoice.number for invoice in changed)
            dropped.extend(
                Skip(
                    reminder.customer.id,
                    invoice.id,
                    "changed_since_sync",
                    f"{numbers} changed in the accounting system since the sync; not sent",
                )
                for invoice in reminder.invoices
            )
        else:
            kept.append(reminder)
    return Plan(plan.at, tuple(kept), plan.skips + tuple(dropped)), tuple(dropped)
