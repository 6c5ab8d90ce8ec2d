"""The one place that composes I/O: sync, plan, re-check, send, write back.

Everything here is ordered so that a crash at any point is recovered by the next run
without a duplicate, and nothing is logged as sent that did not go (docs/delivery.md has
the whole state machine against the SMTP dialogue):

1. ``send`` holds the organisation's run lease: one sender at a time, and only the holder
   recovers what an interrupted run left;
2. reminders are claimed ("sending") a hundred at a time, before anything leaves;
3. the hand-over ("handing_over") is logged just before the content leaves (for SMTP,
   before the final dot), with the previous message's outcome;
4. the outcome ("sent", "unconfirmed", "deferred", "failed") is logged with the next
   hand-over, or at the end of the batch;
5. notes are claimed, written in batches (each looked for first if an earlier try may
   have written it) and logged as written.

A claim found after a crash never left: it is planned afresh. A hand-over found after a
crash is asked of its channel: a file is there or not; a server's answer is unknown, so
the reminder is "unconfirmed", never sent twice by itself.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from jinja2 import TemplateError

from plugin.compose.email_message import build_email
from plugin.compose.formatting import format_money
from plugin.compose.ics import event_ics
from plugin.compose.render import Attachment, note_locale, render_note
from plugin.config.settings import Settings
from plugin.core.appointments import track_moves
from plugin.core.decisions import Plan, PlannedAppointment, PlannedReminder, SentReminder, Skip
from plugin.core.model import Appointment, Invoice, LedgerSnapshot, Note, PromiseToPay
from plugin.core.money import Money
from plugin.core.planning import plan_reminders, recheck, settings_for
from plugin.core.policy import Overrides
from plugin.core.vocabulary import (
    APPOINTMENT_STAGE,
    GONE_OUT,
    ChannelName,
    DeliveryStatus,
    EmailVia,
    LogStatus,
    Settlement,
)
from plugin.deliver.channels import Channel, Composed, EmailBySmtp, channels_for
from plugin.deliver.crash import crash_point
from plugin.errors import KindlyError, PlatformRemindersOn
from plugin.ports import CalendarSource, LedgerSource, Outcome, SmsGateway
from plugin.state.leases import Holder, Lease, hold
from plugin.state.store import Delivered, ReminderRecord, SnapshotChanges, Store

#: The calendar's bookmark that remembers where each event was (track_moves).
MOVES = "moves"

__all__ = ["Kindly", "Rebuilt", "SendResult", "available_channels"]

log = logging.getLogger(__name__)


def available_channels(settings: Settings) -> tuple[ChannelName, ...]:
    """The channels these settings can deliver; the planner falls back past others (R24)."""
    found: list[ChannelName] = ["email", "letter", "task"]
    if settings.sms_gateway is not None:
        found.append("sms")
    return tuple(found)


#: Reminders claimed in one transaction, ahead of sending them.
CLAIM_BATCH = 100
#: Clients whose notes a history rebuild reads at a time, and where it keeps its place.
REBUILD_BATCH = 20
REBUILD_BOOKMARK = "rebuild"
#: The rebuild's place before its first batch: before every client id.
REBUILD_STARTED = "\x00"
#: Notes written back in one batch: one store transaction, one call or fsync where the
#: accounting system allows it.
NOTE_BATCH = 100


@dataclass(frozen=True)
class Rebuilt:
    """What `kindly history --rebuild` restored, and what is left for the next one."""

    restored: int
    #: Clients whose invoices' notes are still to be read (0: all read).
    clients_left: int
    #: Why it stopped early (the platform's daily allowance), if it did.
    stopped: str | None = None


@dataclass
class SendResult:
    sent: list[tuple[PlannedReminder, str]] = field(default_factory=list)
    #: Handed over, and the answer never came: most likely delivered, never sent twice
    #: by itself (`kindly resend` sends it again on request).
    unconfirmed: list[tuple[PlannedReminder, str]] = field(default_factory=list)
    #: Failed for good on that channel (after any fallback was tried).
    failed: list[tuple[PlannedReminder, str]] = field(default_factory=list)
    #: Failed for now: the next run tries again.
    deferred: list[tuple[PlannedReminder, str]] = field(default_factory=list)
    dropped: tuple[Skip, ...] = ()
    #: Reminders an interrupted run had handed over: found delivered (a file that is there).
    recovered: int = 0
    #: ... and those whose delivery nothing can confirm (SMTP, SMS, a platform's mailer).
    recovered_unconfirmed: list[ReminderRecord] = field(default_factory=list)
    #: Why a channel (a refused login or token) or the whole run (a lost lease) stopped
    #: before the end, if one did: reported after the summary, with a non-zero exit.
    stopped: KindlyError | None = None
    notes_written: int = 0
    notes_pending: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)


def note_text(record: ReminderRecord, settings: Settings, fallback: str | None = None) -> str:
    """What the bookkeeper reads next to the invoice, in the company's language."""
    return render_note(
        stage=record.stage,
        channel=record.channel,
        recipient=record.recipient,
        sent_at=record.sent_at or record.planned_at,
        invoice_numbers=record.invoice_numbers,
        amount=record.amount,
        settings=settings,
        reason=record.detail if record.status is LogStatus.FAILED else None,
        fallback=fallback,
    )


class _AlreadySent(Exception):
    """Raised inside a channel's hand-over when the log says the reminder went already."""


def lease_name(source_id: str) -> str:
    """The run lease of an organisation: its source, shortened to fit when very long."""
    import hashlib

    name = f"send:{source_id}"
    if len(name) <= 200:
        return name
    return f"send:{source_id[:120]}#{hashlib.sha256(source_id.encode()).hexdigest()[:32]}"


class _Unlogged:
    """Outcomes not logged yet: saved in the commit of the next hand-over made by the same
    sender (the send loop, or one SMTP connection of it), or at the end."""

    def __init__(self) -> None:
        self.items: list[Delivered] = []

    def take(self) -> list[Delivered]:
        items, self.items = self.items, []
        return items

    def put_back(self, items: list[Delivered]) -> None:
        self.items = items + self.items


class _HandOver:
    """The send loop's side of a hand-over: logs it, with the outcomes not yet logged."""

    def __init__(self, kindly: Kindly, key: str, charges: dict[str, str], unlogged: _Unlogged):
        self.kindly = kindly
        self.key = key
        self.charges = charges
        self.unlogged = unlogged
        self.refused = False

    def __call__(self) -> None:
        sent = self.unlogged.take()
        try:
            with self.kindly._writing:
                taken = self.kindly.store.hand_over(self.key, sent, charges=self.charges)
        except BaseException:
            self.unlogged.put_back(sent)  # not logged: kept for the next
            raise
        crash_point("handed_over")
        if not taken:
            self.refused = True
            raise _AlreadySent

    def take_back(self) -> None:
        with self.kindly._writing:
            self.kindly.store.take_back(self.key)


def _delivered(key: str, at: datetime, outcome: Outcome) -> Delivered | None:
    """The log entry of a message that went (or may have), to be saved with the sender's
    next hand-over; None for one that did not go."""
    if outcome.status is DeliveryStatus.SENT:
        return Delivered(key, at, outcome.message_id, outcome.detail)
    if outcome.status is DeliveryStatus.UNCONFIRMED:
        return Delivered(key, at, outcome.message_id, outcome.detail, LogStatus.UNCONFIRMED)
    return None


@dataclass
class _Handed:
    """What an SMTP lane did with one message, for the send loop to account for."""

    reminder: PlannedReminder
    record: ReminderRecord
    composed: Composed
    outcome: Outcome | None = None
    #: The channel stopped ([`SmtpError`]): nothing was taken.
    stopped: KindlyError | None = None
    #: The log said it went already (another sender's).
    already: bool = False
    #: The lane failed unexpectedly: raised by the loop once accounted for.
    failure: BaseException | None = None


class _SmtpLanes:
    """More SMTP connections for one send ([smtp] connections): the send loop claims and
    composes, each lane takes a composed message and delivers it on its own connection,
    committing its hand-over before the final dot with its own outcomes not yet logged,
    exactly as the loop does with one connection. The loop accounts for what each lane did
    (the summary, a failure's log entry, the fallback channel). The lanes overlap what the
    loop waits for (the server's answers, the fsync of each hand-over) with composing.

    Every e-mail of the send goes through the lanes while they are open (a fallback to
    e-mail too), so the server never sees more connections than asked for."""

    #: Seconds a lane waits for work before it looks whether the send is ending.
    LOOK_EVERY = 0.2

    def __init__(self, kindly: Kindly, count: int, now: datetime) -> None:
        import queue
        import threading

        from plugin.deliver.smtp import SmtpMailer

        smtp = kindly.settings.smtp
        assert smtp is not None
        self.kindly = kindly
        self.now = now
        # Bounded: the loop composes a few messages ahead of the lanes, not the whole run.
        self.work: queue.Queue[_Handed] = queue.Queue(maxsize=count * 2)
        self.done: queue.Queue[_Handed] = queue.Queue()
        self.waiting = 0
        #: Set when a lane meets an answer that stops the channel, or the send stops: the
        #: lanes take no message further (what they hold is settled first).
        self.stopped: KindlyError | None = None
        self._ending = threading.Event()
        #: Lanes still taking messages (one the server turns away leaves the rest to these).
        self.working = count
        self._counting = threading.Lock()
        self.lanes = [
            threading.Thread(
                target=self._lane,
                args=(EmailBySmtp(kindly.settings, kindly.source, SmtpMailer(smtp)),),
                name=f"smtp-{n}",
                daemon=True,
            )
            for n in range(count)
        ]
        for lane in self.lanes:
            lane.start()

    def put(self, handed: _Handed) -> None:
        self.work.put(handed)
        self.waiting += 1

    def finished(self, *, wait: bool) -> list[_Handed]:
        """What the lanes have done since asked last; with ``wait``, all that was put."""
        import queue

        found: list[_Handed] = []
        while self.waiting:
            try:
                found.append(self.done.get(block=wait))
            except queue.Empty:
                break
            self.waiting -= 1
        return found

    def close(self) -> list[_Handed]:
        """Every message put settled, then every lane ended; what they did since asked."""
        found = self.finished(wait=True)
        self._end()
        return found

    def abort(self, why: KindlyError) -> list[_Handed]:
        """The send stops: the lanes settle the message each is delivering (a message never
        stops half-way), take no other, and end; what they did. Messages never taken stay
        claimed, to be given back with the send's other claims."""
        self.stopped = self.stopped or why
        self._end()
        return self._drain()

    def _end(self) -> None:
        self._ending.set()
        for lane in self.lanes:
            lane.join()

    def _drain(self) -> list[_Handed]:
        import queue

        found = []
        while True:
            try:
                found.append(self.done.get_nowait())
            except queue.Empty:
                return found

    def _lane(self, channel: EmailBySmtp) -> None:
        import queue

        unlogged = _Unlogged()
        try:
            while True:
                try:
                    handed = self.work.get(timeout=self.LOOK_EVERY)
                except queue.Empty:
                    if self._ending.is_set():
                        return
                    continue
                try:
                    self._deliver(channel, handed, unlogged)
                except BaseException as exc:  # the loop raises it once accounted for
                    handed.failure = exc
                if channel.mailer.resting and handed.outcome is not None and self._retire():
                    # The server turns this connection away for now (too many at once,
                    # say): nothing was handed over, and the message goes to another
                    # lane, which may be let in. The send is not ending: it waits for it.
                    handed.outcome = None
                    self.work.put(handed)
                    return
                self.done.put(handed)
        finally:
            channel.close()
            try:
                with self.kindly._writing:
                    self.kindly.store.mark_sent_many(unlogged.take())
            except Exception:  # the loop's own last write meets the same trouble and says so
                log.exception("the last outcomes of an SMTP connection could not be logged")

    def _retire(self) -> bool:
        """Whether this lane may stop taking messages: not the last one working."""
        with self._counting:
            if self.working > 1:
                self.working -= 1
                return True
            return False

    def _deliver(self, channel: EmailBySmtp, handed: _Handed, unlogged: _Unlogged) -> None:
        if self.stopped is not None:
            handed.stopped = self.stopped
            return
        reminder, composed = handed.reminder, handed.composed
        crash_point("intent")
        hand_over = _HandOver(self.kindly, reminder.key, composed.charges, unlogged)
        try:
            handed.outcome = channel.deliver(reminder, composed, hand_over)
        except _AlreadySent:
            handed.already = True
            return
        except KindlyError as exc:
            self.stopped = self.stopped or exc
            handed.stopped = exc
            return
        if hand_over.refused:
            handed.already = True
            return
        logged = _delivered(reminder.key, self.now, handed.outcome)
        if logged is not None:
            unlogged.items.append(logged)


def client_overrides(store: Store) -> dict[str, Overrides]:
    from plugin.config.settings import overrides_from_data

    return {
        scope.removeprefix(CLIENT_SCOPE): overrides_from_data(values)
        for scope, values in store.settings_in(CLIENT_SCOPE).items()
    }


CLIENT_SCOPE = "client:"
#: Where the promises to pay recorded in Kindly are kept: this and the source id.
PROMISE_SCOPE = "promise:"
#: What the platform last said is left of its call allowance, by source id.
ALLOWANCE_SCOPE = "allowance"
#: The payment reminders the platform sends by itself, by source id, and when looked at.
PLATFORM_REMINDERS_SCOPE = "platform_reminders"


def promise_to_data(promise: PromiseToPay) -> dict[str, Any]:
    return {
        "promised_date": promise.promised_date.isoformat(),
        "recorded_on": promise.recorded_on.isoformat(),
        "amount": str(promise.amount.amount) if promise.amount else None,
        "currency": promise.amount.currency if promise.amount else None,
        "note": promise.note,
    }


def promise_from_data(invoice_id: str, value: Mapping[str, Any]) -> PromiseToPay:
    amount = value.get("amount")
    return PromiseToPay(
        invoice_id=invoice_id,
        promised_date=date.fromisoformat(value["promised_date"]),
        recorded_on=date.fromisoformat(value["recorded_on"]),
        amount=Money.of(amount, value["currency"]) if amount else None,
        note=value.get("note"),
    )


def note_id(key: str, failed: bool = False) -> str:
    """A reminder's note: one when it went out, another when it could not be delivered."""
    return f"kindly-{key}-failed" if failed else f"kindly-{key}"


class Kindly:
    """One workspace: its settings, its state store and its accounting system."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        source: LedgerSource,
        calendar: CalendarSource | None = None,
        sms_gateway: Callable[[], SmsGateway] | None = None,
    ) -> None:
        self.calendar = calendar
        #: Builds the SMS gateway when a reminder first needs it (it wants a token).
        self.sms_gateway = sms_gateway
        #: Records the last sync could not read, one sentence each.
        self.warnings: tuple[str, ...] = ()
        #: Reminders the last sync took up into the log from Kindly's notes it read.
        self.restored_by_sync = 0
        #: What the last sync added, changed and removed in the stored copy.
        self.sync_changes: SnapshotChanges | None = None
        self.store = store
        self.source = source
        #: kindly.toml's settings, before the store's and the platform's are laid over them.
        self.file_settings = settings
        self.settings = self._effective(settings)
        self._channels: dict[str, Channel] | None = None
        #: A send's writes to the store, one at a time: with more SMTP connections, SQLite
        #: would otherwise make the others sleep in its busy handler.
        self._writing = threading.Lock()

    def _effective(self, settings: Settings) -> Settings:
        # Settings made with `kindly clients set` live in the store and win over kindly.toml.
        settings = settings.with_client_overrides(client_overrides(self.store))
        # Groups the accounting system holds (say a contact group "Reminders: firm") yield
        # to groups of the same name in kindly.toml.
        platform_groups = dict(self.source.group_settings())
        if platform_groups:
            settings = replace(settings, groups={**platform_groups, **settings.groups})
        return settings

    def reread_client_settings(self) -> None:
        """Take the clients' own settings from the store again, after they changed."""
        self.settings = self._effective(self.file_settings)

    @property
    def channels(self) -> dict[str, Channel]:
        """The delivery channels the settings make available (set up on first use)."""
        if self._channels is None:
            self._channels = channels_for(self.settings, self.source, self.sms_gateway)
        return self._channels

    @property
    def channels_available(self) -> tuple[ChannelName, ...]:
        # SMS only where a gateway was handed in: the planner must not plan what no
        # channel can send.
        found = available_channels(self.settings)
        return found if self.sms_gateway is not None else tuple(c for c in found if c != "sms")

    @property
    def source_id(self) -> str:
        return self.source.source_id

    # -- sync ----------------------------------------------------------------------------

    def sync(self, now: datetime) -> LedgerSnapshot:
        """Read the accounting system (and the calendar) and keep a copy; all or nothing.

        Each source's bookmarks are saved in the same transaction as the snapshot, so
        they never run ahead of what was kept."""
        marks = self.store.bookmarks_of(self.source_id)
        previous = self.store.load_snapshot(self.source_id) if marks else None
        try:
            result = self.source.sync(previous, marks)
        finally:
            # Also after a failed sync: an allowance used up is then what the user needs.
            self.keep_allowance(now)
        self.warnings = result.warnings
        snapshot, other_marks = result.snapshot, {}
        if self.calendar is not None:
            calendar_marks = self.store.bookmarks_of(self.calendar.source_id)
            calendar = self.calendar.sync(now, calendar_marks)
            # A bad event is left out and named, like a bad ledger record.
            self.warnings = (*self.warnings, *calendar.warnings)
            appointments, moves = track_moves(
                calendar.appointments, json.loads(calendar_marks.get(MOVES) or "{}"), now
            )
            snapshot = self._with_calendar(snapshot, appointments)
            other_marks[self.calendar.source_id] = {
                **calendar.bookmarks,
                MOVES: json.dumps(moves, sort_keys=True),
            }
        self._check_settings_against(snapshot)
        self.sync_changes = self.store.replace_snapshot(
            self.source_id,
            snapshot,
            now,
            result.bookmarks,
            other_marks=other_marks,
            left_out=self.warnings,
        )
        # Kindly's own notes in the accounting system name reminders that went out: a log
        # that lacks them (a lost or new store) takes them up, or the run sends them again.
        self.restored_by_sync = self._restore(snapshot.notes, snapshot)
        self._look_at_platform_reminders(now)
        return snapshot

    def _look_at_platform_reminders(self, now: datetime) -> None:
        """Ask the platform whether it sends reminders itself: in every sync while it does
        (so that turning them off is seen at once), else once a day (one call)."""
        kept = self.store.get_setting(PLATFORM_REMINDERS_SCOPE, self.source_id) or {}
        checked = str(kept.get("checked_at") or "")
        if not kept.get("found") and checked[:10] == now.date().isoformat():
            return
        try:
            found = list(self.source.platform_reminders())
        except (KindlyError, OSError) as exc:
            self.keep_allowance(now)
            # What was known stays: a failed look is no reason to think them off.
            self.warnings = (
                *self.warnings,
                f"could not see whether {self.source.title} sends reminders itself: {exc}",
            )
            return
        self.store.set_setting(
            PLATFORM_REMINDERS_SCOPE,
            self.source_id,
            {"found": found, "checked_at": now.isoformat()},
            now,
        )
        self.keep_allowance(now)

    def platform_reminders(self) -> list[str]:
        """The payment reminders the accounting system sends by itself, as the last sync
        saw them (one sentence each); empty when none."""
        kept = self.store.get_setting(PLATFORM_REMINDERS_SCOPE, self.source_id) or {}
        return [str(line) for line in kept.get("found") or []]

    def check_platform_reminders(self) -> None:
        """Refuse to send while the platform sends reminders itself, unless the user chose
        to send both."""
        found = self.platform_reminders()
        if found and not self.settings.beside_platform_reminders:
            raise PlatformRemindersOn(
                f"{self.source.title} sends payment reminders itself: " + " ".join(found)
            )

    def keep_allowance(self, now: datetime) -> None:
        """Keep what the platform last said is left of its call allowance, for the
        connections page; nothing where it said nothing."""
        left = self.source.allowance()
        if left:
            self.store.set_setting(
                ALLOWANCE_SCOPE, self.source_id, {**left, "read_at": now.isoformat()}, now
            )

    def allowance(self) -> dict[str, Any] | None:
        """The call allowance kept by :meth:`keep_allowance`, with when it was read."""
        value = self.store.get_setting(ALLOWANCE_SCOPE, self.source_id)
        return dict(value) if value else None

    def left_out(self) -> tuple[str, ...]:
        """The records the last sync could not read (named), which no plan serves."""
        return self.store.left_out(self.source_id)

    def _with_calendar(
        self, snapshot: LedgerSnapshot, appointments: tuple[Appointment, ...]
    ) -> LedgerSnapshot:
        """The snapshot with the calendar's events added, linked to their clients."""
        by_email = {
            email.lower(): customer.id
            for customer in snapshot.customers
            for email in customer.emails
        }
        events = tuple(
            appointment
            if appointment.customer_id
            else replace(
                appointment,
                customer_id=next(
                    (
                        by_email[a.email.lower()]
                        for a in appointment.attendees
                        if a.email and a.email.lower() in by_email
                    ),
                    None,
                ),
            )
            for appointment in appointments
        )
        return replace(snapshot, appointments=snapshot.appointments + events)

    def _check_settings_against(self, snapshot: LedgerSnapshot) -> None:
        unknown = sorted(set(self.settings.clients) - set(snapshot.customers_by_id))
        if unknown and self.warnings:
            # Records were left out of this sync: the client may be one of them.
            where = self.settings.where
            self.warnings += tuple(
                f"{where}: field 'clients.{client}' names a client not read this time"
                for client in unknown
            )
            return
        if unknown:
            where = self.settings.where
            raise KindlyError(
                f"{where}: field 'clients.{unknown[0]}' names a client that is not in "
                f"{self.source.location}",
                hint="Use the client's id from the accounting system, or remove that section.",
            )

    def snapshot(self) -> LedgerSnapshot:
        """The last sync's copy of the ledger, with the promises to pay recorded in Kindly
        (`kindly clients promise`, the web app) beside the ledger's own."""
        snapshot = self.store.load_snapshot(self.source_id)
        if snapshot is None:
            raise KindlyError(
                "nothing has been synced yet", hint="Run `kindly sync` (or `kindly run`) first."
            )
        kept = self.kept_promises()
        if kept:
            snapshot = replace(snapshot, promises=(*snapshot.promises, *kept))
        return snapshot

    def kept_promises(self) -> tuple[PromiseToPay, ...]:
        """The promises to pay recorded in Kindly for this source, by invoice."""
        scope = PROMISE_SCOPE + self.source_id
        return tuple(
            promise_from_data(invoice_id, value)
            for invoice_id, value in sorted(self.store.settings_in(scope).get(scope, {}).items())
        )

    def keep_promise(self, promise: PromiseToPay, now: datetime) -> None:
        self.store.set_setting(
            PROMISE_SCOPE + self.source_id, promise.invoice_id, promise_to_data(promise), now
        )

    def forget_promise(self, invoice_id: str) -> None:
        self.store.delete_setting(PROMISE_SCOPE + self.source_id, invoice_id)

    # -- plan ----------------------------------------------------------------------------

    def history(self, records: list[ReminderRecord] | None = None) -> list[SentReminder]:
        """What went out for invoices, from the log (or the sent ``records`` given)."""
        if records is None:
            records = self.store.reminders(self.source_id, statuses=GONE_OUT)
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
            for record in records
            if record.sent_at is not None and record.stage != APPOINTMENT_STAGE
        ]

    def plan(self, now: datetime) -> Plan:
        from plugin.config.locales import default_language
        from plugin.core.appointments import plan_appointments

        snapshot = self.snapshot()
        sent_records = self.store.reminders(self.source_id, statuses=GONE_OUT)
        invoices = plan_reminders(
            snapshot,
            self.settings,
            self.history(sent_records),
            now=now,
            source=self.source_id,
            channels_available=self.channels_available,
        )
        company = self.settings.company
        sent = {r.key for r in sent_records if r.stage == APPOINTMENT_STAGE}
        appointments, skips = plan_appointments(
            snapshot,
            now=now,
            source=self.source_id,
            sent_keys=sent,
            channels_available=self.channels_available,
            policies=self.settings.appointment_policies,
            default_language=company.language or default_language(company.country),
            default_country=company.country,
            formality_of=lambda customer: settings_for(self.settings, customer).formality,
        )
        return replace(invoices, appointments=appointments, appointment_skips=skips)

    # -- send ----------------------------------------------------------------------------

    def send(
        self,
        plan: Plan,
        now: datetime,
        *,
        progress: Callable[[PlannedReminder], None] | None = None,
        wait: float = 0.0,
        on_wait: Callable[[Holder], None] | None = None,
        lease: Lease | None = None,
    ) -> SendResult:
        """Send the plan's reminders and write their notes, holding the organisation's lease.

        A second sender for the same organisation waits up to ``wait`` seconds for this one
        to finish, then gives up with BusyError (nothing sent). ``on_wait`` is told who is
        in the way when waiting starts. With ``lease`` (from :meth:`holding`), the caller
        holds it already: around its sync and plan too.
        """
        self.check_platform_reminders()
        if lease is not None:
            return self._send_holding(lease, plan, now, progress)
        with self.holding(wait=wait, on_wait=on_wait) as held:
            return self._send_holding(held, plan, now, progress)

    def holding(
        self, *, wait: float = 0.0, on_wait: Callable[[Holder], None] | None = None
    ) -> AbstractContextManager[Lease]:
        """The organisation's run lease, for a whole run (sync, plan and send): one run
        per organisation at a time, in any process on any machine."""
        return hold(
            self.store.engine,
            lease_name(self.source_id),
            workspace=self.store.workspace,
            wait=wait,
            on_wait=on_wait,
        )

    def _check_history_complete(self) -> None:
        """Refuse to send while a history rebuild is half done: the reminders of clients
        whose notes are not read yet would go out a second time."""
        if self.store.get_bookmark(self.source_id, REBUILD_BOOKMARK):
            raise KindlyError(
                f"the reminder history of {self.source.location} is being rebuilt from its "
                "notes and is not complete: sending now could repeat reminders",
                hint="Run `kindly history --rebuild` until it says it is done, then send.",
            )

    def _send_holding(
        self,
        lease: Lease,
        plan: Plan,
        now: datetime,
        progress: Callable[[PlannedReminder], None] | None,
    ) -> SendResult:
        self._check_history_complete()
        result = SendResult()
        # Only the lease holder gets here: whatever is half-way is an interrupted run's.
        self._recover_interrupted(now, result)
        # Re-read the accounting system right before sending (R3): a client who paid since
        # the sync must not get a reminder.
        wanted = sorted({invoice.id for r in plan.reminders for invoice in r.invoices})
        fresh = LedgerSnapshot(invoices=self.source.read_invoices(wanted) if wanted else ())
        plan, result.dropped = recheck(plan, fresh)
        self._logged = {r.key: r for r in self.store.reminders(self.source_id)}
        self._unlogged = _Unlogged()
        self._claimed: set[str] = set()
        #: The log entry of each reminder claimed, by key (built once, at the claim).
        self._records: dict[str, ReminderRecord] = {}
        #: Channels that cannot go on in this run (a refused login), and why.
        self._broken: dict[str, KindlyError] = {}
        lanes = self._smtp_lanes(plan, now)
        try:
            reminders = plan.reminders
            for start in range(0, len(reminders), CLAIM_BATCH):
                lease.renew()
                batch = reminders[start : start + CLAIM_BATCH]
                self._claim([r for r in batch if self._may_send(r) is None], now)
                for reminder in batch:
                    if self._send_with_fallback(reminder, now, result, lanes) and progress:
                        progress(reminder)
                    if lanes is not None:
                        done = lanes.finished(wait=False)
                        self._account_for_lanes(done, now, result, progress, lanes)
            if lanes is not None:
                done, lanes = lanes.close(), None
                self._account_for_lanes(done, now, result, progress, None)
            for appointment in plan.appointments:
                self._send_appointment(appointment, now, result)
        except KindlyError as exc:
            # The run cannot go on (a lost lease): what went is logged and noted below;
            # the caller reports the error after the summary.
            result.stopped = exc
        finally:
            if lanes is not None:
                # Stopped early: the messages in the lanes are settled and accounted for
                # before anything here is given back (a claim released under a lane would
                # be lost); no fallback is tried now.
                try:
                    done = lanes.abort(KindlyError("the send stopped before the end"))
                    self._account_for_lanes(done, now, result, progress, None, fallback=False)
                except Exception:
                    log.exception("what the SMTP connections did could not all be accounted for")
            with self._writing:
                # Outcomes are logged with the next hand-over, in one commit; the last here.
                self.store.mark_sent_many(self._unlogged.take())
                # Claims never handed over (the run stopped, a message that could not be
                # composed) are given back: the next run plans them afresh.
                self.store.release(self._claimed)
            for channel in self.channels.values():
                channel.close()
        self._write_pending_notes(now, result)
        return result

    def _smtp_lanes(self, plan: Plan, now: datetime) -> _SmtpLanes | None:
        """Lanes where [smtp] connections asks for more than one and e-mails go by SMTP."""
        smtp = self.settings.smtp
        if smtp is None or smtp.connections < 2 or self.settings.email_via != EmailVia.SMTP:
            return None
        if not any(r.channel == "email" for r in plan.reminders):
            return None
        return _SmtpLanes(self, smtp.connections, now)

    def _account_for_lanes(
        self,
        done: list[_Handed],
        now: datetime,
        result: SendResult,
        progress: Callable[[PlannedReminder], None] | None,
        lanes: _SmtpLanes | None,
        *,
        fallback: bool = True,
    ) -> None:
        """What the lanes did, accounted for as the loop does its own deliveries (_deliver),
        each on its own: the first error is raised once all are."""
        failure: BaseException | None = None
        for handed in done:
            try:
                self._account_for_handed(handed, now, result, lanes, fallback=fallback)
            except BaseException as exc:
                failure = failure or exc
            if progress is not None:
                progress(handed.reminder)
        if failure is not None:
            raise failure

    def _account_for_handed(
        self,
        handed: _Handed,
        now: datetime,
        result: SendResult,
        lanes: _SmtpLanes | None,
        *,
        fallback: bool,
    ) -> None:
        reminder = handed.reminder
        if handed.failure is not None:
            raise handed.failure
        if handed.stopped is not None:
            with self._writing:
                self.store.take_back(reminder.key)
            self._broken[reminder.channel] = handed.stopped
            result.stopped = result.stopped or handed.stopped
            result.deferred.append((reminder, str(handed.stopped)))
            return
        if handed.already or handed.outcome is None:
            return
        crash_point("delivered")
        self._account_for(reminder, handed.record, handed.composed, handed.outcome, result)
        if fallback and handed.outcome.status is DeliveryStatus.PERMANENT and reminder.fallbacks:
            # R24: the client's next channel (an e-mail by the lanes while they are open).
            self._send_with_fallback(reminder.on_channel(reminder.fallbacks[0]), now, result, lanes)

    def _may_send(self, reminder: PlannedReminder) -> DeliveryStatus | None:
        """None if the reminder may go now; else what the log already says of it."""
        existing = self._logged.get(reminder.key)
        if existing is None:
            return None
        if existing.status in GONE_OUT:
            return DeliveryStatus.SENT
        if existing.status is LogStatus.FAILED and existing.recipient == ", ".join(
            reminder.recipients
        ):
            # It failed for good on this channel to these recipients: no use trying
            # again until the accounting system holds other ones.
            return DeliveryStatus.PERMANENT
        return None

    def _record_for(self, reminder: PlannedReminder, now: datetime) -> ReminderRecord:
        # The log and the notes are the company's: amounts as the company writes them.
        locale = note_locale(self.settings)
        return ReminderRecord(
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
            status=LogStatus.SENDING,
            planned_at=now,
            invoice_stages=reminder.invoice_stages,
            detail=self.channels[reminder.channel].via,
        )

    def _claim(self, reminders: list[PlannedReminder], now: datetime) -> None:
        records = [self._record_for(r, now) for r in reminders if r.key not in self._claimed]
        self._records.update((record.key, record) for record in records)
        with self._writing:
            self._claimed |= self.store.claim(records)
        crash_point("claimed")

    def _send_with_fallback(
        self,
        reminder: PlannedReminder,
        now: datetime,
        result: SendResult,
        lanes: _SmtpLanes | None = None,
    ) -> bool:
        """Send on the planned channel; if that fails for good, on the client's next (R24).
        With ``lanes``, an e-mail goes to them: False then (accounted for when they say
        what became of it, its fallback too)."""
        current: PlannedReminder | None = reminder
        while current is not None:
            if lanes is not None and current.channel == "email":
                prepared = self._prepare(current, now, result)
                if isinstance(prepared, Composed):
                    lanes.put(_Handed(current, self._records[current.key], prepared))
                    return False
                status = prepared
            else:
                status = self._send_one(current, now, result)
            if status is not DeliveryStatus.PERMANENT or not current.fallbacks:
                return True
            current = current.on_channel(current.fallbacks[0])
        return True

    def _send_one(
        self, reminder: PlannedReminder, now: datetime, result: SendResult
    ) -> DeliveryStatus:
        """Deliver one reminder once; returns what became of it.

        The reminder is claimed first (with its batch, or here for a fallback channel);
        one commit per message then logs the hand-over just before the content leaves
        (with the previous message's outcome). A crash before it sends the reminder on the
        next run; after it, the recovery asks the channel whether the other side has it.
        """
        prepared = self._prepare(reminder, now, result)
        if not isinstance(prepared, Composed):
            return prepared
        channel = self.channels[reminder.channel]
        return self._deliver(reminder, self._records[reminder.key], channel, prepared, now, result)

    def _prepare(
        self, reminder: PlannedReminder, now: datetime, result: SendResult
    ) -> Composed | DeliveryStatus:
        """The reminder claimed and composed for its channel; else what became of it."""
        known = self._may_send(reminder)
        if known is not None:
            return known
        if reminder.key not in self._claimed:
            self._claim([reminder], now)
            if reminder.key not in self._claimed:
                return DeliveryStatus.SENT  # logged since the plan was made
        if self._not_tried(reminder, result):
            return DeliveryStatus.TEMPORARY
        channel = self.channels[reminder.channel]
        try:
            if channel.via not in ("platform", "note"):
                reminder = self.with_online_links(reminder)
            composed = channel.compose(reminder, now)
        except KindlyError as exc:
            if getattr(exc, "later", False):
                # A limit of the platform's used up while asking for the reminder's link
                # or PDF: not the reminder's fault. The run stops here (the claim goes
                # back) and goes on when the budget returns.
                result.deferred.append((reminder, f"could not compose the message: {exc}"))
                raise
            result.failed.append((reminder, f"could not compose the message: {exc}"))
            return DeliveryStatus.TEMPORARY
        except (ValueError, LookupError, OSError, TemplateError) as exc:
            # Reported; the claim is given back and the next run tries again. (A
            # KindlyError here is about this reminder's own data, such as its PDF.)
            result.failed.append((reminder, f"could not compose the message: {exc}"))
            return DeliveryStatus.TEMPORARY
        return composed

    def _not_tried(self, reminder: PlannedReminder, result: SendResult) -> bool:
        """Whether the reminder's channel stopped in this run (then it waits, uncomposed)."""
        broken = self._broken.get(reminder.channel)
        if broken is None:
            return False
        result.deferred.append((reminder, f"not tried: {broken}"))
        return True

    def _send_appointment(
        self, planned: PlannedAppointment, now: datetime, result: SendResult
    ) -> None:
        """An appointment reminder: e-mail with the event attached (.ics), or SMS (R1, R19)."""
        from plugin.compose.render import render_appointment, render_appointment_sms
        from plugin.deliver.channels import Composed

        if self._logged.get(planned.key) is not None and self._logged[planned.key].status in (
            *GONE_OUT,
            LogStatus.FAILED,
        ):
            return
        customer = planned.customer
        channel = self.channels[planned.channel]
        reminder = PlannedReminder(
            key=planned.key,
            source=planned.source,
            customer=customer,
            invoices=(),
            stage=APPOINTMENT_STAGE,
            channel=planned.channel,
            recipients=(planned.recipient,),
            language=customer.language,
            tone="friendly",
            formality=planned.formality,
        )
        if self._not_tried(reminder, result):
            return
        details = {
            "name": customer.greeting_name,
            "language": customer.language,
            "country": customer.country,
            "timezone": customer.timezone,
            "settings": self.settings,
            "formality": planned.formality,
        }
        try:
            if planned.channel == "sms":
                text = render_appointment_sms(
                    planned.appointment,
                    limit=self.settings.sms_limit,
                    transliterate=self.settings.sms_transliterate,
                    **details,  # type: ignore[arg-type]
                ).text
                composed = Composed(text, {})
            else:
                rendered = render_appointment(
                    planned.appointment,
                    person=customer,
                    **details,  # type: ignore[arg-type]
                )
                invite = Attachment(
                    "invite.ics", event_ics(planned.appointment, now), "text/calendar"
                )
                rendered = replace(rendered, attachments=(invite,))
                composed = Composed(build_email(reminder, rendered, self.settings, now), {})
        except (ValueError, LookupError, OSError, TemplateError, KindlyError) as exc:
            result.failed.append((reminder, f"could not compose the message: {exc}"))
            return
        record = ReminderRecord(
            key=planned.key,
            source=planned.source,
            customer_id=customer.id,
            invoice_ids=(planned.appointment.id,),
            invoice_numbers=(planned.appointment.title,),
            stage=APPOINTMENT_STAGE,
            channel=planned.channel,
            recipient=planned.recipient,
            amount="",
            currency="",
            status=LogStatus.SENDING,
            planned_at=now,
            detail=channel.via,
        )
        with self._writing:
            self._claimed |= self.store.claim([record])
        crash_point("claimed")
        if record.key not in self._claimed:
            return
        self._deliver(reminder, record, channel, composed, now, result)

    def _deliver(
        self,
        reminder: PlannedReminder,
        record: ReminderRecord,
        channel: Channel,
        composed: Composed,
        now: datetime,
        result: SendResult,
    ) -> DeliveryStatus:
        crash_point("intent")
        hand_over = _HandOver(self, reminder.key, composed.charges, self._unlogged)
        try:
            outcome = channel.deliver(reminder, composed, hand_over)
        except _AlreadySent:
            return DeliveryStatus.SENT
        except KindlyError as exc:
            # An answer that stops this channel (a refused login or token, a sender
            # refused for good) came instead of the message being taken: nothing left.
            # The claim goes back to "sending" and is given back with the others, so the
            # next run sends it, not "unconfirmed". The other channels go on.
            with self._writing:
                self.store.take_back(reminder.key)
            self._broken[reminder.channel] = exc
            result.stopped = result.stopped or exc
            result.deferred.append((reminder, str(exc)))
            return DeliveryStatus.TEMPORARY
        crash_point("delivered")
        if hand_over.refused:
            return DeliveryStatus.SENT
        logged = _delivered(reminder.key, now, outcome)
        if logged is not None:
            self._unlogged.items.append(logged)
        self._account_for(reminder, record, composed, outcome, result)
        return outcome.status

    def _account_for(
        self,
        reminder: PlannedReminder,
        record: ReminderRecord,
        composed: Composed,
        outcome: Outcome,
        result: SendResult,
    ) -> None:
        """The run's summary of a delivery; a failure logged (a sent or unconfirmed one is
        logged by the sender that made it, with its next hand-over)."""
        if outcome.status is DeliveryStatus.SENT:
            result.sent.append((reminder, outcome.detail))
        elif outcome.status is DeliveryStatus.UNCONFIRMED:
            result.unconfirmed.append((reminder, outcome.detail))
        else:
            status = (
                LogStatus.FAILED
                if outcome.status is DeliveryStatus.PERMANENT
                else LogStatus.DEFERRED
            )
            with self._writing:
                self.store.record_outcome(
                    replace(record, charges=composed.charges),
                    status,
                    outcome.detail,
                    self._unlogged.take(),
                )
            (result.failed if status is LogStatus.FAILED else result.deferred).append(
                (reminder, outcome.detail)
            )
        crash_point("marked")

    def with_online_links(self, reminder: PlannedReminder) -> PlannedReminder:
        """The reminder with each invoice's link where the client sees and pays it."""
        # Platforms hand out the client's view of an invoice on request, not in the sync.
        invoices = tuple(
            invoice
            if invoice.online_url
            else replace(invoice, online_url=self.source.online_invoice_url(invoice))
            for invoice in reminder.invoices
        )
        return replace(reminder, invoices=invoices)

    def _recover_interrupted(self, now: datetime, result: SendResult) -> None:
        """Settle what an interrupted run left: resend what never left, keep what may have.

        Called by the lease holder only, so every entry half-way is a dead sender's.
        """
        for record in self.store.reminders(
            self.source_id, statuses=(LogStatus.SENDING, LogStatus.HANDING_OVER)
        ):
            channel = self.channels.get(record.channel)
            if record.status is LogStatus.SENDING or channel is None:
                # Claimed, nothing left Kindly yet: plan and send it afresh.
                self.store.forget_intent(record.key)
                continue
            verdict = channel.settle(record)
            if verdict is Settlement.RESEND:
                self.store.forget_intent(record.key)
            elif verdict is Settlement.SENT:
                self.store.mark_sent(record.key, now, None, detail=f"{record.detail} (recovered)")
                result.recovered += 1
            else:
                detail = f"{record.detail}: an interrupted run handed it over and no answer came"
                self.store.mark_sent(
                    record.key, now, None, detail=detail, status=LogStatus.UNCONFIRMED
                )
                result.recovered_unconfirmed.append(record)

    def resend(self, keys: list[str], now: datetime, *, wait: float = 0.0) -> list[ReminderRecord]:
        """Let unconfirmed reminders go again on the next send (after checking the server).

        ``keys`` are keys or their first characters, as `kindly history` shows them; the
        entries become "deferred", so the next send claims them like any other retry.
        """
        with self.holding(wait=wait):
            unconfirmed = self.store.reminders(self.source_id, statuses=(LogStatus.UNCONFIRMED,))
            chosen: list[ReminderRecord] = []
            for wanted in keys:
                found = [r for r in unconfirmed if r.key.startswith(wanted)]
                if len(found) != 1:
                    what = (
                        "no unconfirmed reminder" if not found else "several unconfirmed reminders"
                    )
                    raise KindlyError(
                        f"{what} in the log of {self.source.location} starts with {wanted!r}",
                        hint="`kindly history --unconfirmed` lists them with their keys.",
                    )
                chosen.append(found[0])
            for record in chosen:
                self.store.record_outcome(
                    record, LogStatus.DEFERRED, f"resend requested ({record.detail})"
                )
        return chosen

    def rebuild_history(self, now: datetime, *, wait: float = 0.0) -> Rebuilt:
        """Restore the reminder log from the notes Kindly wrote in the accounting system (D4).

        For a lost or new store: every note of a reminder that went out becomes a "sent"
        entry again, so the next run sends nothing twice.

        The notes are read a few clients at a time (a note is on one client's invoices, so
        a batch holds all of each note), and where each batch ends is kept. A platform
        that answers one invoice a call (about 5,000 calls for a mid-size organisation,
        more than some platforms allow a day) stops when the day's allowance is spent;
        the next rebuild carries on from there.
        """
        snapshot = self.sync(now)
        with self.holding(wait=wait):
            rebuilt = self._restore_from_notes(snapshot, now)
        # The notes the sync read restored their reminders already.
        return replace(rebuilt, restored=rebuilt.restored + self.restored_by_sync)

    def _restore_from_notes(self, snapshot: LedgerSnapshot, now: datetime) -> Rebuilt:
        from plugin.core.model import InvoiceStatus

        by_client: dict[str, list[Invoice]] = {}
        for invoice in snapshot.invoices:
            # Only invoices that were open at some time can have been reminded.
            if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
                by_client.setdefault(invoice.customer_id, []).append(invoice)
        done_until = self.store.get_bookmark(self.source_id, REBUILD_BOOKMARK) or ""
        if not done_until:
            # Started: sending waits until it is done (see _check_history_complete).
            done_until = REBUILD_STARTED
            self.store.set_bookmark(self.source_id, REBUILD_BOOKMARK, done_until, now)
        clients = [client for client in sorted(by_client) if client > done_until]
        result = Rebuilt(restored=0, clients_left=len(clients))
        for first in range(0, len(clients), REBUILD_BATCH):
            batch = clients[first : first + REBUILD_BATCH]
            try:
                notes = self.source.read_notes(
                    among=[invoice for client in batch for invoice in by_client[client]]
                )
            except KindlyError as exc:
                if not getattr(exc, "later", False):
                    raise
                # The day's allowance is spent: keep what was restored, go on next time.
                return replace(result, stopped=str(exc))
            result = replace(
                result,
                restored=result.restored + self._restore(notes, snapshot),
                clients_left=len(clients) - first - len(batch),
            )
            self.store.set_bookmark(self.source_id, REBUILD_BOOKMARK, batch[-1], now)
        # All read: the next rebuild (a store lost again) starts from the beginning.
        self.store.set_bookmark(self.source_id, REBUILD_BOOKMARK, "", now)
        return result

    def _restore(self, notes: Iterable[Note], snapshot: LedgerSnapshot) -> int:
        """Log as sent, with its note written, each reminder a note of Kindly's names that
        the log lacks: how many."""
        invoices = snapshot.invoices_by_id
        sent = [
            note
            for note in notes
            if note.reminder_key and not note.id.endswith("-failed") and note.stage
        ]
        logged = self.store.logged(note.reminder_key for note in sent if note.reminder_key)
        records = {}
        for note in sent:
            if note.reminder_key is None or note.stage is None or note.reminder_key in logged:
                continue
            known = [invoices[i] for i in note.invoice_ids if i in invoices]
            records[note.reminder_key] = ReminderRecord(
                key=note.reminder_key,
                source=self.source_id,
                customer_id=note.customer_id,
                invoice_ids=note.invoice_ids,
                invoice_numbers=tuple(i.number for i in known) or note.invoice_ids,
                stage=note.stage,
                channel=note.channel or "email",
                recipient="",
                amount="",
                currency=known[0].currency if known else "",
                status=LogStatus.SENT,
                planned_at=note.created_at,
                sent_at=note.created_at,
                note_written_at=note.created_at,
                detail="restored from the note in the accounting system",
            )
        return len(self.store.restore(list(records.values())))

    def write_notes(self, now: datetime) -> SendResult:
        """Write the notes of reminders that went but whose notes are not in the
        accounting system yet (it refused them, or a call limit ran out); the caller holds
        the organisation's lease. ``notes_written`` and ``notes_pending`` say what came."""
        result = SendResult()
        self._write_pending_notes(now, result)
        return result

    def _write_pending_notes(self, now: datetime, result: SendResult) -> None:
        if not self.source.writes_notes:
            return  # the platform keeps no notes: the history stays in Kindly
        records = [
            record
            for record in self.store.reminders(
                self.source_id, statuses=(*GONE_OUT, LogStatus.FAILED)
            )
            if record.stage != APPOINTMENT_STAGE
        ]
        pending = [record for record in records if record.note_written_at is None]
        if not pending:
            return
        # A failed reminder's note names the channel tried next for the same stage, if any.
        tried_next = {
            (r.customer_id, r.invoice_ids, r.stage, r.planned_at): r.channel
            for r in records
            if r.status in GONE_OUT
        }
        notes = {}
        for record in pending:
            try:
                text = note_text(
                    record,
                    self.settings,
                    fallback=tried_next.get(
                        (record.customer_id, record.invoice_ids, record.stage, record.planned_at)
                    )
                    if record.status is LogStatus.FAILED
                    else None,
                )
            except (ValueError, LookupError, TemplateError, KindlyError) as exc:
                # The user's own note template failed on this one: it waits, the rest go.
                result.notes_pending.append((record.key, str(exc)))
                continue
            notes[record.key] = Note(
                id=note_id(record.key, failed=record.status is LogStatus.FAILED),
                created_at=now,
                text=text,
                customer_id=record.customer_id,
                invoice_ids=record.invoice_ids,
                reminder_key=record.key,
                stage=record.stage,
                channel=record.channel,
            )
        pending = [record for record in pending if record.key in notes]
        # Claimed first, in one commit: a note claimed and never marked written may be
        # there in part, and its next try looks on each record before writing.
        doubtful = {notes[r.key].id for r in pending if r.note_claimed_at is not None}
        for first in range(0, len(pending), NOTE_BATCH):
            batch = pending[first : first + NOTE_BATCH]
            self.store.claim_notes([r.key for r in batch], now)
            try:
                results = self.source.write_notes([notes[r.key] for r in batch], check=doubtful)
            except (OSError, KindlyError) as exc:
                results = {notes[r.key].id: str(exc) for r in batch}
            crash_point("note")
            written = []
            for record in batch:
                reason = results.get(notes[record.key].id, "the accounting system did not say")
                if reason is None:
                    written.append(record.key)
                else:
                    result.notes_pending.append((record.key, reason))
            self.store.mark_notes_written(written, now)
            result.notes_written += len(written)
        if pending:
            self.keep_allowance(now)
