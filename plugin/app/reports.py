"""The figures of `kindly report` and of the web app's pictures, from one workspace: its
last snapshot and its reminder log, handed to the pure functions of plugin.core.reports."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from plugin.core.reports import (
    AGE_BUCKETS,
    Reminded,
    ageing,
    days_to_pay,
    reminders_per_week,
    totals,
)
from plugin.core.vocabulary import APPOINTMENT_STAGE, LogStatus

if TYPE_CHECKING:
    from plugin.run import Kindly

__all__ = ["ageing_figures", "effect_figures", "sent_reminders"]

#: Reminders that reached the client, or may have: what the effect is measured on.
WENT_OUT = (LogStatus.SENT, LogStatus.UNCONFIRMED)


def sent_reminders(kindly: Kindly, customer_id: str | None = None) -> list[Reminded]:
    return [
        Reminded(record.stage, record.sent_at.date(), tuple(record.invoice_ids))
        for record in kindly.store.reminders(kindly.source_id, statuses=WENT_OUT)
        if record.sent_at is not None
        and record.stage != APPOINTMENT_STAGE
        and (customer_id is None or record.customer_id == customer_id)
    ]


def ageing_figures(kindly: Kindly, on: date) -> dict[str, Any]:
    """Open receivables by age on ``on``, per currency, with each currency's total."""
    per_currency = ageing(kindly.snapshot(), on)
    return {
        "on": on.isoformat(),
        "buckets": list(AGE_BUCKETS),
        "currencies": {
            currency: {
                "buckets": {name: str(money.amount) for name, money in buckets.items()},
                "total": str(totals(buckets).amount),
            }
            for currency, buckets in per_currency.items()
        },
    }


def effect_figures(kindly: Kindly) -> dict[str, Any]:
    """Reminders per week and stage, and the days clients took to pay after each stage."""
    sent = sent_reminders(kindly)
    stages = [stage.name for stage in kindly.settings.policies["default"].stages]
    effects = days_to_pay(sent, kindly.snapshot(), stages)
    return {
        "weeks": [
            {"week": monday.isoformat(), "stages": counts}
            for monday, counts in reminders_per_week(sent).items()
        ],
        "days_to_pay": [
            {
                "stage": effect.stage,
                "paid": effect.paid,
                "open": effect.open,
                "median_days": str(effect.median_days) if effect.median_days is not None else None,
                "average_days": (
                    str(effect.average_days) if effect.average_days is not None else None
                ),
            }
            for effect in effects.values()
        ],
    }
