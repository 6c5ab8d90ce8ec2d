"""Build the e-mail for a reminder and deliver it; for now to an outbox folder of .eml files.

The outbox is the demo's default channel and a safe one for a first real run: each message
is a complete RFC 5322 file a mail client opens as is. A message's file name comes from the
reminder's key, and files are written atomically (temporary file, then rename), so a retry
after a crash replaces the same file instead of adding a second copy.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from plugin.planning import PlannedReminder
from plugin.render import QR_CID, RenderedMessage
from plugin.settings import Settings

__all__ = ["Outbox", "build_email", "message_id_for"]


def message_id_for(reminder: PlannedReminder, settings: Settings) -> str:
    """The same reminder always carries the same Message-ID, so receivers can drop a repeat."""
    domain = settings.company.email.rpartition("@")[2]
    return f"<kindly.{reminder.key}@{domain}>"


def build_email(
    reminder: PlannedReminder, rendered: RenderedMessage, settings: Settings, at: datetime
) -> EmailMessage:
    company = settings.company
    message = EmailMessage()
    # The email package refuses CR or LF inside a header value, so a customer name or
    # subject cannot smuggle in a header of its own.
    message["From"] = formataddr((company.name, company.email))
    message["To"] = ", ".join(
        formataddr((reminder.customer.greeting_name if i == 0 else "", address))
        for i, address in enumerate(reminder.recipients)
    )
    message["Reply-To"] = company.reply_to or company.email
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = message_id_for(reminder, settings)
    message["X-Kindly-Reminder"] = f"{reminder.stage}; key={reminder.key}"
    message.set_content(rendered.text, charset="utf-8")
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html", charset="utf-8")
        if rendered.qr_png is not None:
            html_part = message.get_body(preferencelist=("html",))
            assert html_part is not None
            html_part.add_related(
                rendered.qr_png, "image", "png", cid=f"<{QR_CID}>", filename="sepa-qr.png"
            )
    for attachment in rendered.attachments:
        maintype, subtype = attachment.mime_type.split("/", 1)
        message.add_attachment(attachment.content, maintype, subtype, filename=attachment.filename)
    # Last, because set_content and add_alternative replace the Content-* headers.
    message["Content-Language"] = rendered.language
    return message


class Outbox:
    """A folder that receives one .eml file per reminder."""

    channel = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, customer_id: str, stage: str, key: str) -> Path:
        safe_customer = "".join(c if c.isalnum() or c in "-_" else "_" for c in customer_id)
        return self.folder / f"{safe_customer}-{stage}-{key[:12]}.eml"

    def deliver(self, reminder: PlannedReminder, message: EmailMessage) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path_for(reminder.customer.id, reminder.stage, reminder.key)
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".sending-", suffix=".eml")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(message.as_bytes())
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target
