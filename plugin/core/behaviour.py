"""How each client pays (R25): from the ledger's history, pure.

For every invoice a client has paid in full, the day of its last payment against the due
date says how late it was. From those: the number paid, the share paid late, the average
days late and the last payment. A policy's behaviour rules turn that into a label:
reliable clients get a later first reminder and the friendly tone, chronic late payers an
earlier one and the firm tone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from plugin.core.model import InvoiceStatus, LedgerSnapshot
from plugin.core.policy import Behaviour, BehaviourRules

__all__ = ["PaymentBehaviour", "classify", "payment_behaviour"]


@dataclass(frozen=True, slots=True)
class PaymentBehaviour:
    paid_invoices: int = 0
    paid_late: int = 0
    total_days_late: int = 0
    last_payment: date | None = None

    @property
    def share_late(self) -> float:
        return self.paid_late / self.paid_invoices if self.paid_invoices else 0.0

    @property
    def average_days_late(self) -> float:
        return self.total_days_late / self.paid_invoices if self.paid_invoices else 0.0

    def describe(self) -> str:
        if not self.paid_invoices:
            return "no paid invoices yet"
        last = f", last payment {self.last_payment.isoformat()}" if self.last_payment else ""
        return (
            f"{self.paid_invoices} paid, {self.share_late:.0%} late, "
            f"{self.average_days_late:.1f} days late on average{last}"
        )


def payment_behaviour(snapshot: LedgerSnapshot) -> Mapping[str, PaymentBehaviour]:
    """Per client id; clients with no payments are absent."""
    last_paid: dict[str, date] = {}
    for payment in snapshot.payments:
        previous = last_paid.get(payment.invoice_id)
        if previous is None or payment.date > previous:
            last_paid[payment.invoice_id] = payment.date
    counts: dict[str, list[int]] = {}
    latest: dict[str, date] = {}
    paid_status = InvoiceStatus.PAID
    for invoice in snapshot.invoices:
        paid_on = last_paid.get(invoice.id)
        if paid_on is None:
            continue
        customer = invoice.customer_id
        known = latest.get(customer)
        if known is None or paid_on > known:
            latest[customer] = paid_on
        if invoice.status is not paid_status:
            continue
        days_late = (paid_on - invoice.due_date).days
        row = counts.get(customer)
        if row is None:
            row = counts[customer] = [0, 0, 0]
        row[0] += 1
        if days_late > 0:
            row[1] += 1
            row[2] += days_late
    customers = set(counts) | set(latest)
    result = {}
    for customer in customers:
        paid, late, days_late = counts.get(customer, [0, 0, 0])
        result[customer] = PaymentBehaviour(paid, late, days_late, latest.get(customer))
    return result


def classify(behaviour: PaymentBehaviour | None, rules: BehaviourRules) -> Behaviour:
    if behaviour is None or behaviour.paid_invoices < rules.min_history:
        return Behaviour.UNKNOWN
    if (
        behaviour.share_late >= rules.chronic_min_share_late
        or behaviour.average_days_late >= rules.chronic_min_days_late
    ):
        return Behaviour.CHRONIC
    if (
        behaviour.share_late <= rules.reliable_max_share_late
        and behaviour.average_days_late <= rules.reliable_max_days_late
    ):
        return Behaviour.RELIABLE
    return Behaviour.USUAL
