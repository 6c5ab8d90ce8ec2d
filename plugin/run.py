"""The one place that composes I/O: sync, plan, re-check, send, write back.

Everything here is ordered so that a crash at any point is recovered by the next run
without a duplicate and without losing a reminder:

1. the intent is logged before the message is written;
2. the message is written atomically under a name derived from the reminder's key;
3. the log says "sent" once the message exists;
4. the note goes to the accounting system, which is checked first for a note with the same
   id, and the log says so once it is there.

A run that finds an intent without an outcome looks for the message: if it exists, the
reminder was sent; if not, the intent is dropped and the reminder is planned afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from jinja2 import TemplateError

from integrations.base import BookkeepingConnector
from plugin.delivery import Outbox, build_email, message_id_for
from plugin.errors import KindlyError
from plugin.locales import babel_locale_name
from plugin.model import LedgerSnapshot, Note
from plugin.planning import Plan, PlannedReminder, SentReminder, Skip, plan_reminders, recheck
from plugin.policy import Overrides
from plugin.render import Attachment, format_money, render_note, render_reminder
from plugin.settings import Settings
from plugin.store import ReminderRecord, Store

__all__ = ["CHANNELS_AVAILABLE", "Kindly", "LedgerSource", "SendResult"]

#: The channels this release can deliver; the planner falls back past the others (R24).
CHANNELS_AVAILABLE = ("email", "task")


#: What the core needs from a bookkeeping connector.
LedgerSource = BookkeepingConnector


@dataclass
class SendResult:
    sent: list[tuple[PlannedReminder, Path | None]] = field(default_factory=list)
    failed: list[tuple[PlannedReminder, str]] = field(default_factory=list)
    dropped: tuple[Skip, ...] = ()
    recovered: int = 0
    notes_written: int = 0
    notes_pending: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)


def note_text(record: ReminderRecord, settings: Settings) -> str:
    """What the bookkeeper reads next to the invoice, in the company's language."""
    assert record.sent_at is not None
    return render_note(
        stage=record.stage,
        channel=record.channel,
        recipient=record.recipient,
        sent_at=record.sent_at,
        invoice_numbers=record.invoice_numbers,
        amount=record.amount,
        settings=settings,
    )


def client_overrides(store: Store) -> dict[str, Overrides]:
    from plugin.settings import overrides_from_data

    return {
        scope.removeprefix(CLIENT_SCOPE): overrides_from_data(values)
        for scope, values in store.settings_in(CLIENT_SCOPE).items()
    }


CLIENT_SCOPE = "client:"
#: The intent's detail while the accounting system is e-mailing a reminder itself.
PLATFORM_MAIL = "via platform"


def note_id(key: str) -> str:
    return f"kindly-{key}"


class Kindly:
    """One workspace: its settings, its state store and its accounting system."""

    def __init__(self, settings: Settings, store: Store, source: LedgerSource) -> None:
        # Settings made with `kindly clients set` live in the store and win over kindly.toml.
        settings = settings.with_client_overrides(client_overrides(store))
        # Groups the accounting system holds (say "Reminders: firm" in Xero) yield to groups
        # of the same name in kindly.toml.
        platform_groups = dict(source.group_settings())
        if platform_groups:
            settings = replace(settings, groups={**platform_groups, **settings.groups})
        self.settings = settings
        self.store = store
        self.source = source
        self.outbox = Outbox(settings.outbox)

    @property
    def source_id(self) -> str:
        return self.source.source_id

    # -- sync ----------------------------------------------------------------------------

    def sync(self, now: datetime) -> LedgerSnapshot:
        """Read the accounting system and keep a copy; all or nothing."""
        marks = self.store.bookmarks_of(self.source_id)
        previous = self.store.load_snapshot(self.source_id) if marks else None
        result = self.source.sync(previous, marks)
        snapshot = result.snapshot
        self._check_settings_against(snapshot)
        self.store.replace_snapshot(self.source_id, snapshot, now, result.bookmarks)
        return snapshot

    def _check_settings_against(self, snapshot: LedgerSnapshot) -> None:
        unknown = sorted(set(self.settings.clients) - set(snapshot.customers_by_id))
        if unknown:
            where = self.settings.source or "kindly.toml"
            raise KindlyError(
                f"{where}: field 'clients.{unknown[0]}' names a client that is not in "
                f"{self.source.location}",
                hint="Use the client's id from the accounting system, or remove that section.",
            )

    def snapshot(self) -> LedgerSnapshot:
        snapshot = self.store.load_snapshot(self.source_id)
        if snapshot is None:
            raise KindlyError(
                "nothing has been synced yet", hint="Run `kindly sync` (or `kindly run`) first."
            )
        return snapshot

    # -- plan ----------------------------------------------------------------------------

    def history(self) -> list[SentReminder]:
        return [
            SentReminder(
                key=record.key,
                customer_id=record.customer_id,
                invoice_ids=record.invoice_ids,
                stage=record.stage,
                channel=record.channel,
                sent_at=record.sent_at,
                invoice_stages=record.invoice_stages,
                reminder_fee=record.reminder_fee,
            )
            for record in self.store.reminders(self.source_id, statuses=("sent",))
            if record.sent_at is not None
        ]

    def plan(self, now: datetime) -> Plan:
        return plan_reminders(
            self.snapshot(),
            self.settings,
            self.history(),
            now=now,
            source=self.source_id,
            channels_available=CHANNELS_AVAILABLE,
        )

    # -- send ----------------------------------------------------------------------------

    def send(
        self,
        plan: Plan,
        now: datetime,
        *,
        progress: Callable[[PlannedReminder], None] | None = None,
    ) -> SendResult:
        result = SendResult()
        result.recovered = self._recover_interrupted(now)
        # Re-read the accounting system right before sending (R3): a client who paid since
        # the sync must not get a reminder.
        wanted = sorted({invoice.id for r in plan.reminders for invoice in r.invoices})
        fresh = LedgerSnapshot(invoices=self.source.read_invoices(wanted) if wanted else ())
        plan, result.dropped = recheck(plan, fresh)
        for reminder in plan.reminders:
            self._send_one(reminder, now, result)
            if progress is not None:
                progress(reminder)
        self._write_pending_notes(now, result)
        return result

    def _send_one(self, reminder: PlannedReminder, now: datetime, result: SendResult) -> None:
        existing = self.store.reminder(reminder.key)
        if existing is not None and existing.status == "sent":
            return
        message = None
        charges: Mapping[str, str] = {}
        by_platform = reminder.channel == "email" and self.settings.email_via == "platform"
        if by_platform and not self.source.has_mailer:
            result.failed.append(
                (reminder, f"{self.source.title} cannot e-mail invoices ([delivery] email_via)")
            )
            return
        if not reminder.is_task and not by_platform:
            try:
                reminder = self._with_online_links(reminder)
                pdfs = [
                    Attachment(f"{invoice.number}.pdf", content)
                    for invoice in reminder.invoices
                    if (content := self.source.invoice_pdf(invoice)) is not None
                ]
                rendered = render_reminder(reminder, self.settings, pdfs, on=now.date())
                message = build_email(reminder, rendered, self.settings, now)
                charges = rendered.charges
            except (ValueError, LookupError, OSError, TemplateError) as exc:
                # Logged as failed with its reason; the next run tries again.
                result.failed.append((reminder, f"could not compose the message: {exc}"))
                return
        locale = babel_locale_name(reminder.language, reminder.customer.country)
        self.store.record_intent(
            ReminderRecord(
                key=reminder.key,
                source=reminder.source,
                customer_id=reminder.customer.id,
                invoice_ids=tuple(invoice.id for invoice in reminder.invoices),
                invoice_numbers=tuple(invoice.number for invoice in reminder.invoices),
                stage=reminder.stage,
                channel=reminder.channel,
                recipient=", ".join(reminder.recipients),
                amount=format_money(reminder.amount_due, locale),
                currency=reminder.currency,
                status="sending",
                planned_at=now,
                invoice_stages=reminder.invoice_stages,
                charges=charges,
                detail=PLATFORM_MAIL if by_platform else None,
            )
        )
        if by_platform:
            self._send_by_platform(reminder, now, result)
            return
        if message is None:
            # A hand-off is a task for a person: the note in the accounting system is it.
            self.store.mark_sent(reminder.key, now, None, detail="task for a person")
            result.sent.append((reminder, None))
            return
        try:
            path = self.outbox.deliver(reminder, message)
        except OSError as exc:
            reason = f"could not write to the outbox {self.outbox.folder}: {exc.strerror or exc}"
            self.store.mark_failed(reminder.key, reason)
            result.failed.append((reminder, reason))
            return
        self.store.mark_sent(
            reminder.key, now, message_id_for(reminder, self.settings), detail=str(path)
        )
        result.sent.append((reminder, path))

    def _send_by_platform(
        self, reminder: PlannedReminder, now: datetime, result: SendResult
    ) -> None:
        """The accounting system e-mails each invoice with its own template (Xero's Email)."""
        from integrations.http import HttpError

        for invoice in reminder.invoices:
            try:
                self.source.email_invoice(invoice)
            except HttpError as exc:
                reason = f"{self.source.title} could not e-mail {invoice.number}: {exc}"
                self.store.mark_failed(reminder.key, reason)
                result.failed.append((reminder, reason))
                return
        self.store.mark_sent(reminder.key, now, None, detail=f"e-mailed by {self.source.title}")
        result.sent.append((reminder, None))

    def _with_online_links(self, reminder: PlannedReminder) -> PlannedReminder:
        # Platforms hand out the client's view of an invoice on request, not in the sync.
        invoices = tuple(
            invoice
            if invoice.online_url
            else replace(invoice, online_url=self.source.online_invoice_url(invoice))
            for invoice in reminder.invoices
        )
        return replace(reminder, invoices=invoices)

    def _recover_interrupted(self, now: datetime) -> int:
        """Settle intents a crashed run left behind: sent if the message exists, else forgotten."""
        recovered = 0
        for record in self.store.reminders(self.source_id, statuses=("sending",)):
            if record.detail == PLATFORM_MAIL:
                # Whether the platform sent it before the crash cannot be told from here:
                # counted as sent, so the client never gets it twice, and said so.
                self.store.mark_sent(
                    record.key, now, None, detail="e-mailed by the platform (unconfirmed)"
                )
                recovered += 1
                continue
            path = self.outbox.path_for(record.customer_id, record.stage, record.key)
            if record.channel == "task" or path.exists():
                self.store.mark_sent(record.key, now, None, detail=f"{path} (recovered)")
                recovered += 1
            else:
                self.store.forget_intent(record.key)
        return recovered

    def _write_pending_notes(self, now: datetime, result: SendResult) -> None:
        pending = [
            record
            for record in self.store.reminders(self.source_id, statuses=("sent",))
            if record.note_written_at is None
        ]
        if not pending:
            return
        notes = {
            record.key: Note(
                id=note_id(record.key),
                created_at=now,
                text=note_text(record, self.settings),
                customer_id=record.customer_id,
                invoice_ids=record.invoice_ids,
                reminder_key=record.key,
                stage=record.stage,
                channel=record.channel,
            )
            for record in pending
        }
        already_there = self.source.existing_note_ids(notes.values())
        for record in pending:
            note = notes[record.key]
            if note.id not in already_there:
                try:
                    self.source.write_note(note)
                except (OSError, KindlyError) as exc:
                    result.notes_pending.append((record.key, str(exc)))
                    continue
                result.notes_written += 1
            self.store.mark_note_written(record.key, now)
