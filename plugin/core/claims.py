"""What a reminder claims on top of the amount due, as money: interest, compensation,
collection costs and the Norwegian reminder fee, summed over its invoices (R21, R26).

Pure, like the planner: the day to count to is an argument. Rendering only formats what
this returns (:func:`plugin.compose.render.reminder_charges`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from plugin.core.charges import (
    CONTRACT_BASES,
    INTEREST_LAW,
    Debtor,
    InterestLine,
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

__all__ = ["INTEREST_BASIS", "Claims", "InterestKind", "LetterClaims", "reminder_claims"]

InterestKind = Literal["commercial", "consumer", "contract"]

#: The statute each jurisdiction's interest runs under, for the debtor's kind: written in
#: the message beside the rate (review M6).
INTEREST_BASIS = INTEREST_LAW


@dataclass(frozen=True, slots=True)
class Claims:
    """The charges one reminder claims, counted to ``on``; ``total`` includes what is due."""

    on: date
    interest: Money
    total: Money
    #: What the charges are on: the invoices at a stage that claims them (issue 17).
    principal: Money
    compensation: Money | None = None
    costs: Money | None = None
    reminder_fee: Money | None = None
    #: Pay by this day, when a reminder fee gives 14 days to pay.
    pay_by: date | None = None
    #: What the interest is (review M6): "commercial" (the statutory rate between
    #: businesses: wettelijke handelsrente), "consumer" (the statutory rate for consumers:
    #: wettelijke rente), or "contract" (a rate agreed in the contract, never statutory).
    interest_kind: InterestKind = "commercial"
    #: The statute it runs under ("art. 6:119a BW"), None for a contractual rate.
    interest_basis: str | None = None
    #: From when it runs, where that is one day for all its invoices (else None, and
    #: ``interest_from_each``: from each invoice's own due date), and its yearly rates.
    interest_from: date | None = None
    interest_from_each: bool = False
    rates: tuple[Decimal, ...] = ()
    #: The law the charges follow ("NL", "FR", …): its own terms name them.
    jurisdiction: str = ""


@dataclass(frozen=True, slots=True)
class LetterClaims:
    """The Dutch 14-day letter to a consumer (6:96 lid 6 BW): free of charge itself, it
    names the costs that will be owed if the debt is not paid by ``deadline``."""

    on: date
    deadline: date
    costs: Money
    #: What the letter's term is for: the invoices that went through the earlier stages.
    principal: Money


def reminder_claims(
    reminder: PlannedReminder, settings: PlanningSettings, on: date
) -> Claims | LetterClaims | None:
    """The charges a reminder claims, summed over its invoices at a stage that claims
    them (not the newer invoices a consolidated reminder names as also due); None if none.

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
    lines: list[InterestLine] = []
    starts: set[date] = set()
    charged = reminder.charged_invoices
    principal_due = sum((invoice.amount_due for invoice in charged), Money.zero(currency))
    for invoice in charged:
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
        own = [line for line in result.interest_lines if line.amount.is_positive]
        lines.extend(own)
        if own:
            starts.add(min(line.start for line in own))
        if result.compensation is not None and result.compensation.currency == currency:
            compensation = compensation + result.compensation
    # The Dutch collection costs are a scale in euros, which Kindly converts to no other
    # currency: none on a claim in pounds or dong (the language review: "₫ 6.775").
    in_euros = currency == "EUR"
    if nl_consumer_letter_applies(code, debtor) and in_euros:
        return LetterClaims(
            on,
            nl_consumer_letter_deadline_in(on),
            nl_collection_costs(principal_due, settings.charges.vat_on_costs),
            principal_due,
        )
    costs: Money | None = None
    if code == "NL" and in_euros:
        costs = nl_collection_costs(principal_due, settings.charges.vat_on_costs)
    fee: Money | None = None
    if reminder.reminder_fee and currency == "NOK":
        # One fee per reminder, however many invoices it names: the cautious reading.
        fee, _ = no_reminder_fee(on)
        # The §3a compensation is offset against the fee: the larger of the two applies.
        compensation = max(compensation - fee, Money.zero(currency))
    if not interest.is_positive and not compensation.is_positive and costs is None and not fee:
        return None
    zero = Money.zero(currency)
    contractual = any(line.basis.startswith(CONTRACT_BASES) for line in lines)
    kind: InterestKind = (
        "contract" if contractual else "consumer" if debtor is Debtor.CONSUMER else "commercial"
    )
    return Claims(
        on=on,
        interest=interest,
        total=reminder.amount_due + interest + compensation + (costs or zero) + (fee or zero),
        principal=principal_due,
        compensation=compensation if compensation.is_positive else None,
        costs=costs,
        reminder_fee=fee,
        pay_by=on + timedelta(days=14) if fee is not None else None,
        interest_kind=kind,
        jurisdiction=code,
        interest_basis=None if contractual else INTEREST_BASIS.get((code, debtor.value)),
        # One period for all, or "from each invoice's due date" (the review: one date for
        # several invoices named a day before some of them were due).
        interest_from=next(iter(starts)) if len(starts) == 1 else None,
        interest_from_each=len(starts) > 1,
        rates=tuple(dict.fromkeys(line.rate for line in sorted(lines, key=lambda i: i.start))),
    )
