"""The EPC069-12 "SEPA credit transfer" QR code that banking apps scan, for euro reminders."""

from __future__ import annotations

import io
from collections.abc import Mapping

from plugin.config.settings import Settings
from plugin.core.decisions import PlannedReminder
from plugin.core.money import Money

__all__ = ["QR_SCALE", "epc_qr_payload", "epc_qr_png"]

#: Pixels a module: a code of 45 modules and its quiet zone is 212 pixels square.
QR_SCALE = 4


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
    import zxingcpp
    from PIL import Image

    # zxing-cpp (compiled) encodes it and scores the eight masks for the easiest to scan
    # in a quarter of the time segno (pure Python) took with one mask fixed; the bytes go
    # in byte mode without an ECI, as the guideline wants (tests decode it back).
    code = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    modules = code.to_image(scale=1, add_quiet_zones=True)
    height, width = modules.shape
    # zxing's Image is a buffer of one byte a pixel; its type stub does not say so.
    pixels = bytes(modules)  # type: ignore[call-overload]
    image = Image.frombuffer("L", (width, height), pixels, "raw", "L", 0, 1)
    # Whole modules as black or white pixels: scaled without smoothing, one bit a pixel.
    image = image.convert("1", dither=Image.Dither.NONE).resize(
        (width * QR_SCALE, height * QR_SCALE), Image.Resampling.NEAREST
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
