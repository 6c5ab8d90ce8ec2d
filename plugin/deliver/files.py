"""The outbox: a folder that receives one complete .eml file per reminder.

The demo's default channel and a safe one for a first real run: each message is a complete
RFC 5322 file a mail client opens as is. A message's file name comes from the reminder's
key, and files are written atomically (temporary file, then rename), so a retry after a
crash replaces the same file instead of adding a second copy.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from plugin.compose.email_message import ReminderEmail
from plugin.core.decisions import PlannedReminder

__all__ = ["Outbox"]


class Outbox:
    """A folder that receives one .eml file per reminder."""

    channel = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, customer_id: str, stage: str, key: str) -> Path:
        safe_customer = "".join(c if c.isalnum() or c in "-_" else "_" for c in customer_id)
        return self.folder / f"{safe_customer}-{stage}-{key[:12]}.eml"

    def deliver(self, reminder: PlannedReminder, message: ReminderEmail) -> Path:
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
