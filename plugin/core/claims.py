"""What a reminder claims on top of the amount due, as money: interest, compensation,
collection costs and the Norwegian reminder fee, summed over its invoices (R21, R26).

Pure, like the planner: the day to count to is an argument. Rendering only formats what
this returns (:func:`plugin.compose.render.reminder_charges`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from plugin.core.charges import (
    Debtor,
    calculate,
    charges_jurisdiction,
    nl_collection_costs,
    nl_consumer_letter_applies,
    nl_consumer_letter_deadline_in,
    no_reminder_fee,
)
from plugin.core.decisions import PlannedReminder
from plugin.core.money import Money
from plugin.core.policy import PlanningSettings

__all__ = ["Claims", "LetterClaims", "reminder_claims"]


@dataclass(frozen=True, slots=True)
class Claims:
    """The charges one reminder claims, counted to ``on``; ``total`` includes what is due."""

    on: date
    interest: Money
    total: Money
    compensation: Money | None = None
    costs: Money | None = None
    reminder_fee: Money | None = None
    #: Pay by this day, when a reminder fee gives 14 days to pay.
    pay_by: date | None = None


@dataclass(frozen=True, slots=True)
class LetterClaims:
    """The Dutch 14-day letter to a consumer (6:96 lid 6 BW): free of charge itself, it
    names the costs that will be owed if the debt is not paid by ``deadline``."""

    on: date
    deadline: date
    costs: Money


def reminder_claims(
    reminder: PlannedReminder, settings: PlanningSettings, on: date
) -> Claims | LetterClaims | None:
    """The charges a reminder claims, summed over its invoices; None if none.

    Interest runs from each invoice's due date on what was owed then: a part paid late
    bears interest until the day it was paid, what is still owed until ``on``. Amounts
    credited are taken as never owed. Dutch collection costs are on the claim as a whole.
    """
    if not reminder.charges:
        return None
    code = charges_jurisdiction(settings.charges.jurisdiction, settings.company.country)
    debtor = Debtor((reminder.debtor or reminder.customer.kind).value)
    currency = reminder.currency
    interest, compensation = Money.zero(currency), Money.zero(currency)
    for invoice in reminder.invoices:
        late = [
            (payment.date, payment.amount)
            for payment in reminder.payments
            if payment.invoice_id == invoice.id and invoice.due_date < payment.date <= on
        ]
        principal = sum((amount for _, amount in late), invoice.amount_due)
        if principal > invoice.total:
            # Payments the ledger cannot reconcile with the invoice: claim only on what
            # is owed now rather than on a guess.
            principal, late = invoice.amount_due, []
        result = calculate(
            code,
            debtor,
            principal,
            due=invoice.due_date,
            on=max(on, invoice.due_date),
            payments=late,
            contract_rate=settings.charges.contract_rate,
        )
        interest = interest + result.interest
        if result.compensation is not None and result.compensation.currency == currency:
            compensation = compensation + result.compensation
    if nl_consumer_letter_applies(code, debtor):
        return LetterClaims(
            on,
            nl_consumer_letter_deadline_in(on),
            nl_collection_costs(reminder.amount_due, settings.charges.vat_on_costs),
        )
    costs: Money | None = None
    if code == "NL":
        costs = nl_collection_costs(reminder.amount_due, settings.charges.vat_on_costs)
    fee: Money | None = None
    if reminder.reminder_fee and currency == "NOK":
        # One fee per reminder, however many invoices it names: the cautious reading.
        fee, _ = no_reminder_fee(on)
        # The §3a compensation is offset against the fee: the larger of the two applies.
        compensation = max(compensation - fee, Money.zero(currency))
    if not interest.is_positive and not compensation.is_positive and costs is None and not fee:
        return None
    zero = Money.zero(currency)
    return Claims(
        on=on,
        interest=interest,
        total=reminder.amount_due + interest + compensation + (costs or zero) + (fee or zero),
        compensation=compensation if compensation.is_positive else None,
        costs=costs,
        reminder_fee=fee,
        pay_by=on + timedelta(days=14) if fee is not None else None,
    )
