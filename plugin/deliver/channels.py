"""The ways a reminder leaves Kindly, behind one small interface the send loop uses.

Each channel composes its content, delivers it, and says afterwards what happened:

- ``sent``: delivered (or handed to a server that took responsibility for it);
- ``permanent``: this way will not work for this client (a refused address, a bounce the
  server reports at once, an invalid number): the reminder falls back to the client's next
  channel (R24), and the bookkeeper is told in the note;
- ``temporary``: try again on the next run (a busy mailbox, a gateway that is down);
- ``unconfirmed``: a crash or a dropped connection came after the content was handed
  over, so it most likely went: counted as sent, never sent twice, and said so.

``hand_over`` is called at the last moment before the content leaves: the send loop records
it, so that after a crash it knows whether the other side may have the message.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from plugin.compose.email_message import ReminderEmail, build_email, message_id_for
from plugin.compose.render import (
    Attachment,
    letter_and_charges,
    letter_pdf,
    render_reminder,
    render_sms,
)
from plugin.config.settings import Settings
from plugin.core.decisions import PlannedReminder
from plugin.core.vocabulary import DeliveryStatus, EmailVia, Settlement
from plugin.deliver.files import Outbox
from plugin.errors import KindlyError
from plugin.ports import HandOver, LedgerSource, Outcome, SmsGateway

if TYPE_CHECKING:
    from plugin.deliver.smtp import SmtpMailer
    from plugin.state.store import ReminderRecord

__all__ = ["Channel", "Composed", "channels_for", "invoice_attachments", "pdf_file_name"]


@dataclass(frozen=True)
class Composed:
    """What a channel will send: its payload, and the charges the reminder states."""

    #: The e-mail, the text of an SMS, a letter's PDF, or nothing (the platform or a person
    #: sends).
    payload: ReminderEmail | str | bytes | None
    charges: dict[str, str]

    @property
    def email(self) -> ReminderEmail:
        assert isinstance(self.payload, ReminderEmail), "an e-mail channel composes an e-mail"
        return self.payload

    @property
    def text(self) -> str:
        assert isinstance(self.payload, str), "an SMS is text"
        return self.payload

    @property
    def document(self) -> bytes:
        assert isinstance(self.payload, bytes), "a letter is a PDF"
        return self.payload


class Channel(Protocol):
    #: The planner's channel this serves: "email", "sms", "letter" or "task".
    channel: str
    #: How: "outbox", "smtp", "platform", the SMS gateway's name, "letters" or "note".
    via: str

    def compose(self, reminder: PlannedReminder, now: datetime) -> Composed: ...

    def deliver(
        self, reminder: PlannedReminder, composed: Composed, hand_over: HandOver
    ) -> Outcome: ...

    def settle(self, record: ReminderRecord) -> Settlement:
        """After a crash that came after ``hand_over``: whether the other side has it."""
        ...

    def close(self) -> None: ...


# Characters a mail client would read as a folder, a header as the end of a line, or a
# reader as text running the other way.
_NOT_IN_FILE_NAMES = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069/\\\\:]+"
)


def pdf_file_name(invoice_number: str, taken: Collection[str] = ()) -> str:
    """The attachment's name: the invoice number as the platform writes it, "2026/17"
    becoming "2026-17.pdf"; "2026-17-2.pdf" if the e-mail already holds a "2026-17.pdf"
    (a mail client saving both would keep only one)."""
    stem = _NOT_IN_FILE_NAMES.sub("-", invoice_number).strip(" .-") or "invoice"
    name, copy = f"{stem}.pdf", 1
    while name in taken:
        copy += 1
        name = f"{stem}-{copy}.pdf"
    return name


def invoice_attachments(source: LedgerSource, reminder: PlannedReminder) -> list[Attachment]:
    """The PDFs of the reminder's invoices the accounting system has (R6, R20)."""
    pdfs: list[Attachment] = []
    for invoice in reminder.invoices:
        content = source.invoice_pdf(invoice)
        if content is not None:
            taken = {pdf.filename for pdf in pdfs}
            pdfs.append(Attachment(pdf_file_name(invoice.number, taken), content))
    return pdfs


class _EmailComposer:
    channel = "email"

    def __init__(self, settings: Settings, source: LedgerSource) -> None:
        self.settings = settings
        self.source = source

    def compose(self, reminder: PlannedReminder, now: datetime) -> Composed:
        pdfs = invoice_attachments(self.source, reminder)
        rendered = render_reminder(reminder, self.settings, pdfs, on=now.date())
        return Composed(build_email(reminder, rendered, self.settings, now), dict(rendered.charges))

    def close(self) -> None:
        pass


class EmailToOutbox(_EmailComposer):
    via = "outbox"

    def __init__(self, settings: Settings, source: LedgerSource) -> None:
        super().__init__(settings, source)
        self.outbox = Outbox(settings.outbox)

    def deliver(
        self, reminder: PlannedReminder, composed: Composed, hand_over: HandOver
    ) -> Outcome:
        hand_over()
        try:
            path = self.outbox.deliver(reminder, composed.email)
        except OSError as exc:
            folder = self.outbox.folder
            return Outcome(
                DeliveryStatus.TEMPORARY, f"could not write to {folder}: {exc.strerror or exc}"
            )
        return Outcome(DeliveryStatus.SENT, str(path), message_id_for(reminder, self.settings))

    def settle(self, record: ReminderRecord) -> Settlement:
        # The file is written atomically: there or not, never half.
        path = self.outbox.path_for(record.customer_id, record.stage, record.key)
        return Settlement.SENT if path.exists() else Settlement.RESEND


class EmailBySmtp(_EmailComposer):
    via = "smtp"

    def __init__(self, settings: Settings, source: LedgerSource, mailer: SmtpMailer) -> None:
        super().__init__(settings, source)
        self.mailer = mailer

    def deliver(
        self, reminder: PlannedReminder, composed: Composed, hand_over: HandOver
    ) -> Outcome:
        data = composed.email.as_bytes("\r\n")
        outcome = self.mailer.send(
            data,
            self.settings.company.email,
            list(reminder.recipients),
            hand_over,
            taken_back=hand_over.take_back,
        )
        return Outcome(outcome.status, outcome.detail, message_id_for(reminder, self.settings))

    def settle(self, record: ReminderRecord) -> Settlement:
        return Settlement.UNCONFIRMED

    def close(self) -> None:
        self.mailer.close()


class EmailByPlatform:
    """The accounting system e-mails the invoices itself, with its own template."""

    channel = "email"
    via = "platform"

    def __init__(self, source: LedgerSource) -> None:
        self.source = source

    def compose(self, reminder: PlannedReminder, now: datetime) -> Composed:
        return Composed(None, {})

    def deliver(
        self, reminder: PlannedReminder, composed: Composed, hand_over: HandOver
    ) -> Outcome:
        if not self.source.has_mailer:
            return Outcome(DeliveryStatus.PERMANENT, f"{self.source.title} cannot e-mail invoices")
        held = self.source.email_holdup(reminder.invoices)
        if held is not None:
            return held
        hand_over()
        sent: list[str] = []
        for invoice in reminder.invoices:
            try:
                outcome = self.source.email_invoice(invoice, reminder.key)
            except KindlyError as exc:
                if not sent:
                    raise  # nothing went: the channel stops, the reminder waits
                # Some went: the reminder must not be given back to go again in full.
                outcome = Outcome(DeliveryStatus.PERMANENT, str(exc))
            if outcome.status is DeliveryStatus.SENT:
                sent.append(invoice.number)
                continue
            if sent and (
                not self.source.mailer_idempotent or outcome.status is DeliveryStatus.PERMANENT
            ):
                # Some went: sending the reminder again would e-mail those twice (without
                # an idempotency key), and failing it would send a letter about them too.
                # A person decides.
                return Outcome(
                    DeliveryStatus.UNCONFIRMED,
                    f"{', '.join(sent)} e-mailed by {self.source.title}, but then "
                    f"{outcome.detail}; the rest was not sent",
                )
            return outcome
        return Outcome(DeliveryStatus.SENT, f"e-mailed by {self.source.title}")

    def settle(self, record: ReminderRecord) -> Settlement:
        return Settlement.UNCONFIRMED

    def close(self) -> None:
        pass


class SmsByGateway:
    channel = "sms"

    def __init__(self, settings: Settings, gateway: SmsGateway) -> None:
        self.settings = settings
        self.gateway = gateway
        self.via = gateway.name

    def compose(self, reminder: PlannedReminder, now: datetime) -> Composed:
        sms = render_sms(
            reminder,
            self.settings,
            limit=self.settings.sms_limit,
            transliterate=self.settings.sms_transliterate,
            on=now.date(),
        )
        if not sms.count.fits(self.settings.sms_limit):
            # Never sent as more parts than the gateway was told to allow (and paid for).
            raise ValueError(
                f"the SMS needs {sms.count.units} units even shortened, more than the limit "
                f"of {self.settings.sms_limit}; set [company] sms_sender to a shorter name, "
                "or [sms] limit = 320 for two parts"
            )
        return Composed(sms.text, dict(sms.charges))

    def deliver(
        self, reminder: PlannedReminder, composed: Composed, hand_over: HandOver
    ) -> Outcome:
        from plugin.deliver.phones import e164

        numbers = []
        for raw in reminder.recipients:
            number = e164(raw, reminder.customer.country)
            if number is not None:
                numbers.append(number)
        if not numbers:
            shown = ", ".join(reminder.recipients) or "none"
            return Outcome(DeliveryStatus.PERMANENT, f"no valid mobile number ({shown})")
        return self.gateway.send(numbers[0], composed.text, reminder.key, hand_over)

    def settle(self, record: ReminderRecord) -> Settlement:
        return Settlement.UNCONFIRMED

    def close(self) -> None:
        self.gateway.close()


class LetterToFolder:
    """A printable letter (HTML, A4, address in the window) for a person to print and post."""

    channel = "letter"
    via = "letters"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.outbox.parent / "letters"

    def path_for(self, customer_id: str, stage: str, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in customer_id)
        return self.folder / f"{safe}-{stage}-{key[:12]}.pdf"

    def compose(self, reminder: PlannedReminder, now: datetime) -> Composed:
        page, claimed = letter_and_charges(reminder, self.settings, now.date())
        return Composed(letter_pdf(page).content, dict(claimed))

    def deliver(
        self, reminder: PlannedReminder, composed: Composed, hand_over: HandOver
    ) -> Outcome:
        hand_over()
        target = self.path_for(reminder.customer.id, reminder.stage, reminder.key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".printing-")
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(composed.document)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            return Outcome(
                DeliveryStatus.TEMPORARY, f"could not write the letter: {exc.strerror or exc}"
            )
        return Outcome(DeliveryStatus.SENT, f"letter to print and post: {target}")

    def settle(self, record: ReminderRecord) -> Settlement:
        path = self.path_for(record.customer_id, record.stage, record.key)
        # Letters written before they were PDFs were HTML pages.
        there = path.exists() or path.with_suffix(".html").exists()
        return Settlement.SENT if there else Settlement.RESEND

    def close(self) -> None:
        pass


class TaskNote:
    """A hand-off or a call to make: the note in the accounting system is the task."""

    channel = "task"
    via = "note"

    def compose(self, reminder: PlannedReminder, now: datetime) -> Composed:
        return Composed(None, {})

    def deliver(
        self, reminder: PlannedReminder, composed: Composed, hand_over: HandOver
    ) -> Outcome:
        hand_over()
        return Outcome(DeliveryStatus.SENT, "task for a person")

    def settle(self, record: ReminderRecord) -> Settlement:
        return Settlement.SENT

    def close(self) -> None:
        pass


def channels_for(
    settings: Settings,
    source: LedgerSource,
    sms_gateway: Callable[[], SmsGateway] | None = None,
) -> dict[str, Channel]:
    """The channels these settings make available, by the planner's channel name."""
    email: Channel
    if settings.email_via == EmailVia.SMTP:
        from plugin.deliver.smtp import SmtpMailer

        if settings.smtp is None:
            from plugin.errors import ConfigError

            raise ConfigError('[delivery] email_via = "smtp" needs an [smtp] section with the host')
        email = EmailBySmtp(settings, source, SmtpMailer(settings.smtp))
    elif settings.email_via == EmailVia.PLATFORM:
        email = EmailByPlatform(source)
    else:
        email = EmailToOutbox(settings, source)
    found: dict[str, Channel] = {
        "email": email,
        "letter": LetterToFolder(settings),
        "task": TaskNote(),
    }
    if sms_gateway is not None:
        found["sms"] = SmsByGateway(settings, sms_gateway())
    return found
