"""What the receivables look like and what the reminders did, pure: the figures behind
`kindly report` and the web app's pictures.

- **Ageing:** each open invoice's amount due by how long it is overdue on a day (not yet
  due, 1-30, 31-60, 61-90, over 90 days), per currency: amounts of different currencies
  are never added.
- **Reminders per week:** the reminders that went out, by the Monday of their week and
  their stage.
- **Days to pay after each stage:** for every invoice paid in full after a reminder, the
  days from the last reminder before its payment to the payment, by that reminder's
  stage; and how many invoices a stage reminded of are still open.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from plugin.core.model import InvoiceStatus, LedgerSnapshot
from plugin.core.money import Money

__all__ = [
    "AGE_BUCKETS",
    "Reminded",
    "StageEffect",
    "ageing",
    "days_to_pay",
    "paid_on",
    "reminders_per_week",
    "totals",
]

#: The age buckets, in order; the bounds are days past the due date.
AGE_BUCKETS = ("not_due", "1_30", "31_60", "61_90", "over_90")


def _bucket(days_overdue: int) -> str:
    if days_overdue <= 0:
        return "not_due"
    if days_overdue <= 30:
        return "1_30"
    if days_overdue <= 60:
        return "31_60"
    if days_overdue <= 90:
        return "61_90"
    return "over_90"


def ageing(snapshot: LedgerSnapshot, on: date) -> dict[str, dict[str, Money]]:
    """Open receivables per currency and age bucket on ``on`` (every bucket present)."""
    result: dict[str, dict[str, Money]] = {}
    for invoice in snapshot.invoices:
        if not invoice.is_open:
            continue
        buckets = result.setdefault(
            invoice.currency,
            {name: Money.zero(invoice.currency) for name in AGE_BUCKETS},
        )
        name = _bucket((on - invoice.due_date).days)
        buckets[name] = buckets[name] + invoice.amount_due
    return dict(sorted(result.items()))


def paid_on(snapshot: LedgerSnapshot) -> dict[str, date]:
    """The day each invoice paid in full got its last payment (or credit)."""
    last: dict[str, date] = {}
    for payment in snapshot.payments:
        if payment.invoice_id not in last or payment.date > last[payment.invoice_id]:
            last[payment.invoice_id] = payment.date
    for note in snapshot.credit_notes:
        for allocation in note.allocations:
            day = allocation.date or note.date
            if allocation.invoice_id not in last or day > last[allocation.invoice_id]:
                last[allocation.invoice_id] = day
    paid = {i.id for i in snapshot.invoices if i.status is InvoiceStatus.PAID}
    return {invoice_id: day for invoice_id, day in last.items() if invoice_id in paid}


@dataclass(frozen=True, slots=True)
class Reminded:
    """One reminder that went out: its stage, the day, and the invoices it named."""

    stage: str
    sent_on: date
    invoice_ids: tuple[str, ...]


def reminders_per_week(sent: Iterable[Reminded]) -> dict[date, dict[str, int]]:
    """Reminders per week (keyed by its Monday) and stage, oldest week first."""
    weeks: dict[date, dict[str, int]] = {}
    for reminder in sent:
        monday = reminder.sent_on - timedelta(days=reminder.sent_on.weekday())
        stages = weeks.setdefault(monday, {})
        stages[reminder.stage] = stages.get(reminder.stage, 0) + 1
    return dict(sorted(weeks.items()))


@dataclass(frozen=True)
class StageEffect:
    """What followed the reminders of one stage."""

    stage: str
    #: Invoices paid in full after a reminder of this stage, this one the last before.
    paid: int = 0
    #: Invoices this stage reminded of that are still open.
    open: int = 0
    #: Days from this stage's reminder to the payment, one per paid invoice.
    days: tuple[int, ...] = field(default=(), repr=False)

    @property
    def median_days(self) -> Decimal | None:
        return Decimal(str(statistics.median(self.days))) if self.days else None

    @property
    def average_days(self) -> Decimal | None:
        if not self.days:
            return None
        return (Decimal(sum(self.days)) / len(self.days)).quantize(Decimal("0.1"))


def days_to_pay(
    sent: Iterable[Reminded], snapshot: LedgerSnapshot, stages: Iterable[str] = ()
) -> dict[str, StageEffect]:
    """Per stage (those in ``stages`` first, in that order, then the others as met)."""
    paid = paid_on(snapshot)
    open_ids = {i.id for i in snapshot.invoices if i.is_open}
    reminded: dict[str, list[Reminded]] = {}
    for reminder in sent:
        for invoice_id in reminder.invoice_ids:
            reminded.setdefault(invoice_id, []).append(reminder)
    days: dict[str, list[int]] = {stage: [] for stage in stages}
    still_open: dict[str, int] = dict.fromkeys(stages, 0)
    for invoice_id, reminders in reminded.items():
        reminders.sort(key=lambda r: r.sent_on)
        if invoice_id in open_ids:
            last = reminders[-1].stage
            still_open[last] = still_open.get(last, 0) + 1
            days.setdefault(last, [])
            continue
        day = paid.get(invoice_id)
        if day is None:
            continue  # voided, or not in the ledger any more
        before = [r for r in reminders if r.sent_on <= day]
        if not before:
            continue  # paid before any reminder reached it
        last_reminder = before[-1]
        days.setdefault(last_reminder.stage, []).append((day - last_reminder.sent_on).days)
        still_open.setdefault(last_reminder.stage, 0)
    return {
        stage: StageEffect(stage, len(found), still_open.get(stage, 0), tuple(sorted(found)))
        for stage, found in days.items()
    }


def totals(buckets: Mapping[str, Money]) -> Money:
    """All of one currency's buckets together."""
    values = list(buckets.values())
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total
