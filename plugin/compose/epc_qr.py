"""The EPC069-12 "SEPA credit transfer" QR code that banking apps scan, for euro reminders."""

from __future__ import annotations

import io
from collections.abc import Mapping

from plugin.config.settings import Settings
from plugin.core.decisions import PlannedReminder
from plugin.core.money import Money

__all__ = ["EPC_QR_MASK", "epc_qr_payload", "epc_qr_png"]


EPC_QR_MASK = 2


def epc_qr_payload(
    reminder: PlannedReminder, settings: Settings, reference: str, amount: Money | None = None
) -> bytes | None:
    """The EPC069-12 "SEPA credit transfer" text banking apps read, for EUR only.

    Bytes, in the character set its third line names: segno picks the smallest one the
    names and reference fit in.
    """
    bank = settings.bank
    amount = amount if amount is not None else reminder.amount_due
    if amount.currency != "EUR" or not bank.iban or not Money.of("0.01", "EUR") <= amount:
        return None
    if amount.amount > 999_999_999:
        return None
    from segno.helpers import _make_epc_qr_data  # type: ignore[attr-defined]

    # segno's own validation of the EPC fields (lengths, IBAN, BIC, amount), without the
    # QR code: make_epc_qr has no way to fix the mask (see epc_qr_png).
    data = _make_epc_qr_data(
        (bank.account_holder or settings.company.name)[:70],
        bank.iban.replace(" ", ""),
        amount.amount,
        reference[:140],
        None,
        bank.bic,
        None,
        None,
    )
    return bytes(data)


def epc_qr_png(
    reminder: PlannedReminder,
    settings: Settings,
    reference: str,
    charges: Mapping[str, str] | None = None,
) -> bytes | None:
    """The EPC QR code as a PNG: error correction M, as the EPC guideline requires.

    With charges claimed, the code asks for the total the reminder states, charges included.
    """
    amount = None
    if charges and charges.get("total_amount"):
        amount = Money.of(charges["total_amount"], reminder.currency)
    payload = epc_qr_payload(reminder, settings, reference, amount)
    if payload is None:
        return None
    import segno

    # Any of the eight masks is valid; choosing one instead of scoring all eight makes
    # the code five times faster to build (7 ms to 1.3 ms), and phones read it as well.
    code = segno.make_qr(payload, error="m", boost_error=False, mask=EPC_QR_MASK)
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=4, border=2)
    return buffer.getvalue()
