"""Decide every reminder as a careful credit controller would, and explain why (D3).

``plan_reminders(snapshot, settings, history, now=…, source=…)`` is a pure function: no
clock, no network, no disk. From the ledger, the settings and policies, and what was
actually sent, it returns the reminders to send now and, for every open invoice it does
not remind, a reason code and a sentence.

For each invoice, in order:

1. only open, approved invoices that owe something; never drafts, voided, paid, disputed
   or on-hold ones;
2. its settings, resolved invoice → client → client groups → company default; excluded or
   paused clients and invoices wait;
3. a running promise to pay holds it until the promised date plus the grace period; a
   promise that passed unpaid makes the next stage due at once (R22);
4. its next stage is the one after the last stage *actually sent* for it, so an invoice
   long overdue but never reminded gets the first reminder, never the final notice, and
   missed runs never cause a burst (R13). Stages count days from the due date or from
   the previous stage, in calendar or business days of the client's country;
5. payment behaviour (R25) moves the first reminder later for reliable payers and earlier
   for chronic late payers, and picks the tone where the user did not.

Then per client and currency (or per invoice, when the client wants that):

6. one reminder listing every invoice whose stage is due, at the stage of the most
   advanced one; each invoice records its own stage, so none ever goes back;
7. a total under the minimum for that currency waits;
8. the first channel that can reach the client (R24); none means no reminder;
9. at most one message per client and channel within the policy's gap;
10. only inside the send window on a business day in the client's time zone.

``preview_reminders(…, client_id=…)`` runs the same steps for one client with the rules
that hold a reminder back (2, 3, the timing of 4, 7 to 10) noted instead of obeyed: the
reminder the client would get next, for ``kindly preview``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from plugin.core.behaviour import classify, payment_behaviour
from plugin.core.businessdays import business_calendar
from plugin.core.charges import (
    NO_FEE_DAYS,
    Debtor,
    charges_jurisdiction,
    nl_consumer_letter_applies,
    nl_consumer_letter_deadline_in,
    no_fee_allowed,
)
from plugin.core.decisions import (
    MESSAGE_CHANNELS,
    WRITTEN_CHANNELS,
    Plan,
    PlannedReminder,
    Reason,
    SentReminder,
    Skip,
    recipients_for,
    reminder_key,
)
from plugin.core.model import (
    Customer,
    Invoice,
    InvoiceStatus,
    LedgerSnapshot,
    Payment,
)
from plugin.core.money import Money
from plugin.core.policy import (
    Anchor,
    Behaviour,
    Overrides,
    PlanningSettings,
    Policy,
    Resolved,
    Stage,
    resolve,
)
from plugin.core.vocabulary import ChannelName

__all__ = ["plan_reminders", "preview_reminders", "recheck", "settings_for"]


@dataclass(slots=True)
class _Due:
    """An invoice whose next stage is due now."""

    invoice: Invoice
    resolved: Resolved
    policy: Policy
    stage: Stage
    stage_index: int
    why: Reason


#: A Norwegian inkassovarsel gives the debtor at least 14 days (inkassoloven § 9).
NO_COLLECTION_WARNING_DAYS = 14


class _Planner:
    """One planning pass. Holds the caches that make 100,000 invoices cheap."""

    def __init__(
        self,
        snapshot: LedgerSnapshot,
        settings: PlanningSettings,
        history: Sequence[SentReminder],
        now: datetime,
        source: str,
        channels_available: frozenset[str],
        *,
        hold_back: bool = True,
    ) -> None:
        self.snapshot = snapshot
        #: False for a preview: a rule that holds a reminder back is noted as a skip, and
        #: the reminder is made all the same. Checked only once a rule applies, so the
        #: planning of reminders that go out pays nothing for it.
        self.hold_back = hold_back
        self.settings = settings
        self.now = now
        self.source = source
        self.channels_available = channels_available
        self.skips: list[Skip] = []
        self._today_in: dict[str, date] = {}
        self._resolved: dict[str, Resolved] = {}
        self._shared: dict[tuple[object, ...], Resolved] = {}
        self._contexts: dict[str, tuple[Customer, Resolved, Policy, tuple[Stage, ...], date]] = {}
        self._labels: dict[tuple[str, str], Behaviour] = {}
        self._shifted: dict[tuple[str, date, int, bool], date] = {}
        self._local_dates: dict[tuple[datetime, str], date] = {}
        self.group_names = frozenset(settings.groups)
        self.jurisdiction = charges_jurisdiction(
            settings.charges.jurisdiction, settings.company.country
        )
        self._window: dict[tuple[str, str, str], datetime | None] = {}
        self.behaviour = payment_behaviour(snapshot)
        self.customers = snapshot.customers_by_id
        self.promises = snapshot.promises_by_invoice
        self.active_stages = {name: p.active_stages for name, p in settings.policies.items()}
        # Payment behaviour moves the first stage that counts from the due date onwards.
        self.first_after_due = {
            name: next(
                (i for i, s in enumerate(stages) if s.anchor is Anchor.DUE_DATE and s.days >= 0),
                -1,
            )
            for name, stages in self.active_stages.items()
        }
        # What each invoice went through, and when each client last heard from us.
        self.stages_sent: dict[str, dict[str, datetime]] = {}
        self.last_message: dict[tuple[str, str], datetime] = {}
        self.fees_sent: dict[str, list[datetime]] = {}
        self._payments: dict[str, list[Payment]] | None = None
        for sent in history:
            for invoice_id in sent.invoice_ids:
                if sent.reminder_fee:
                    self.fees_sent.setdefault(invoice_id, []).append(sent.sent_at)
                per_invoice = self.stages_sent.setdefault(invoice_id, {})
                stage = sent.stage_of(invoice_id)
                if stage not in per_invoice or sent.sent_at > per_invoice[stage]:
                    per_invoice[stage] = sent.sent_at
            channel_key = (sent.customer_id, sent.channel)
            if (
                channel_key not in self.last_message
                or sent.sent_at > self.last_message[channel_key]
            ):
                self.last_message[channel_key] = sent.sent_at

    # -- helpers -------------------------------------------------------------------------

    def payments_on(self, invoices: tuple[Invoice, ...]) -> tuple[Payment, ...]:
        # Indexed on first use: only reminders that claim charges need payments.
        if self._payments is None:
            self._payments = {}
            for payment in self.snapshot.payments:
                self._payments.setdefault(payment.invoice_id, []).append(payment)
        return tuple(
            payment for invoice in invoices for payment in self._payments.get(invoice.id, ())
        )

    def today(self, customer: Customer) -> date:
        today = self._today_in.get(customer.timezone)
        if today is None:
            today = self.now.astimezone(ZoneInfo(customer.timezone)).date()
            self._today_in[customer.timezone] = today
        return today

    def local_date(self, moment: datetime, customer: Customer) -> date:
        key = (moment, customer.timezone)
        day = self._local_dates.get(key)
        if day is None:
            day = self._local_dates[key] = moment.astimezone(ZoneInfo(customer.timezone)).date()
        return day

    def resolve_for(self, customer: Customer, invoice: Invoice | None = None) -> Resolved:
        if invoice is not None and invoice.id in self.settings.invoices:
            return settings_for(self.settings, customer, invoice)
        cached = self._resolved.get(customer.id)
        if cached is None:
            # Clients without settings of their own share the result of their groups,
            # language and kind: a handful of resolutions instead of one per client.
            own = customer.id in self.settings.clients
            shared_key = (
                customer.id if own else None,
                frozenset(customer.tags) & self.group_names,
                customer.language,
                customer.kind,
            )
            cached = self._shared.get(shared_key)
            if cached is None:
                cached = self._shared[shared_key] = settings_for(self.settings, customer)
            self._resolved[customer.id] = cached
        return cached

    def context_for(
        self, invoice: Invoice
    ) -> tuple[Customer, Resolved, Policy, tuple[Stage, ...], date]:
        """What every invoice of a client shares, worked out once per client."""
        customer = self.customers[invoice.customer_id]
        resolved = self.resolve_for(customer, invoice)
        policy = self.settings.policies[resolved.policy]
        context = (
            customer,
            resolved,
            policy,
            self.active_stages[policy.name],
            self.today(customer),
        )
        if invoice.id not in self.settings.invoices:
            self._contexts[customer.id] = context
        return context

    def skip(self, invoice: Invoice, code: str, reason: str, next_date: date | None = None) -> None:
        self.skips.append(Skip(invoice.customer_id, invoice.id, code, reason, next_date))

    def add_days(self, customer: Customer, day: date, days: int, business: bool) -> date:
        key = (customer.country, day, days, business)
        result = self._shifted.get(key)
        if result is None:
            if business:
                result = business_calendar(customer.country).add_business_days(day, days)
            else:
                result = day + timedelta(days=days)
            self._shifted[key] = result
        return result

    # -- per invoice -----------------------------------------------------------------------

    def consider(self, invoice: Invoice) -> _Due | None:
        status = invoice.status
        if status is InvoiceStatus.DRAFT:
            self.skip(invoice, "draft", "a draft has not been sent to the client")
            return None
        # Paid and voided invoices are not open items: nothing to explain, and in a ledger
        # with years of history they are most of the invoices.
        if status is not InvoiceStatus.OPEN or not invoice.amount_due.amount > 0:
            return None
        if invoice.disputed:
            self.skip(invoice, "disputed", "the client disputes this invoice; sort that out first")
            return None
        if invoice.on_hold:
            self.skip(invoice, "on_hold", "the invoice is on hold")
            return None

        context = self._contexts.get(invoice.customer_id)
        if context is None or (self.settings.invoices and invoice.id in self.settings.invoices):
            context = self.context_for(invoice)
        customer, resolved, policy, stages, today = context
        if resolved.excluded:
            where = resolved.sources["excluded"]
            self.skip(invoice, "excluded", f"excluded from reminders ({where} setting)")
            if self.hold_back:
                return None
        if resolved.pause_until is not None and resolved.pause_until >= today:
            why = f": {resolved.pause_reason}" if resolved.pause_reason else ""
            self.skip(
                invoice,
                "paused",
                f"paused until {resolved.pause_until.isoformat()} "
                f"({resolved.sources['pause_until']} setting){why}",
                # 9999-12-31 is a natural way to say "for good": it has no day after.
                resolved.pause_until + timedelta(days=1)
                if resolved.pause_until < date.max
                else None,
            )
            if self.hold_back:
                return None

        sent = self.stages_sent.get(invoice.id)
        if sent:
            done = [index for index, stage in enumerate(stages) if stage.name in sent]
            next_index = max(done) + 1 if done else 0
            last_sent = max(sent.values())
        else:
            sent, done, next_index, last_sent = {}, [], 0, None
        # A note meant for before the due date is pointless once the date has passed.
        while (
            next_index < len(stages)
            and stages[next_index].anchor is Anchor.DUE_DATE
            and stages[next_index].days < 0
            and today > invoice.due_date
        ):
            next_index += 1
        if next_index >= len(stages):
            self.skip(
                invoice,
                "sequence_complete",
                f"every stage of the {policy.name} policy was sent; a person follows up",
            )
            return None
        stage = stages[next_index]

        # A promise recorded after the moment planned for was not known then (issue 17:
        # --at in the past must not be held by a promise made later).
        promises = tuple(p for p in self.promises.get(invoice.id, ()) if p.recorded_on <= today)
        broken = False
        if promises:
            grace = timedelta(days=policy.promise_grace_days)
            running = [p for p in promises if p.promised_date + grace >= today]
            if running:
                until = max(p.promised_date for p in running)
                self.skip(
                    invoice,
                    "promised",
                    f"the client promised to pay by {until.isoformat()} "
                    f"(reminders wait {policy.promise_grace_days} more days)",
                    until + grace + timedelta(days=1),
                )
                if self.hold_back:
                    return None
            else:
                # Only a promise made after the last reminder was broken since.
                since = self.local_date(last_sent, customer) if last_sent else None
                broken_promises = [p for p in promises if since is None or p.recorded_on >= since]
                broken = bool(broken_promises) and stage.on_broken_promise and bool(done)

        if stage.anchor is Anchor.DUE_DATE:
            days = stage.days
            anchor_day = invoice.due_date
            if days >= 0 and next_index == self.first_after_due[policy.name]:
                days = self.adjust_for_behaviour(customer, policy, days)
            previous_name = None
        else:
            previous = stages[max(done)] if done else None
            days = stage.days
            # A policy whose first active stage counts from a previous one starts at the
            # due date.
            anchor_day = (
                self.local_date(sent[previous.name], customer) if previous else invoice.due_date
            )
            previous_name = previous.name if previous else "due date"
        due_day = self.add_days(customer, anchor_day, days, stage.business_days)
        if previous_name not in (None, "due date") and self.consumer_letter(resolved):
            previous_stage = stages[max(done)]
            if previous_stage.charges:
                # After a Dutch 14-day letter nothing follows before its term has run out.
                deadline = nl_consumer_letter_deadline_in(anchor_day)
                due_day = max(due_day, deadline + timedelta(days=1))
        if (
            previous_name not in (None, "due date")
            and customer.country == "NO"
            and stages[max(done)].template_name == "final"
        ):
            # After an inkassovarsel nothing follows before its 14 days have run out.
            due_day = max(due_day, anchor_day + timedelta(days=NO_COLLECTION_WARNING_DAYS + 1))
        fees = self.fees_sent.get(invoice.id)
        if fees and previous_name not in (None, "due date"):
            # A fee reminder gives 14 days to pay; the next step waits until they ran out.
            last_fee = self.local_date(max(fees), customer)
            due_day = max(due_day, last_fee + timedelta(days=NO_FEE_DAYS + 1))
        if broken and due_day > today:
            promise = max(broken_promises, key=lambda p: p.promised_date)
            return _Due(
                invoice,
                resolved,
                policy,
                stage,
                next_index,
                Reason(
                    "promise_broken",
                    f"{stage.name}: at once, the promise to pay by "
                    f"{promise.promised_date.isoformat()} was broken",
                ),
            )
        if due_day > today:
            self.skip(
                invoice,
                "not_due_yet",
                f"the {stage.name} reminder is due on {due_day.isoformat()}",
                due_day,
            )
            if self.hold_back:
                return None
        unit = ("business day" if stage.business_days else "day") + ("" if abs(days) == 1 else "s")
        if previous_name is not None:
            why = (
                f"{stage.name}: {days} {unit} after the {previous_name} of {anchor_day.isoformat()}"
            )
        elif days >= 0:
            why = f"{stage.name}: {days} {unit} after the due date {anchor_day.isoformat()}"
        else:
            why = f"{stage.name}: {-days} {unit} before the due date {anchor_day.isoformat()}"
        return _Due(invoice, resolved, policy, stage, next_index, Reason("stage_due", why))

    def consumer_letter(self, resolved: Resolved) -> bool:
        """Whether this client's charge stage is a Dutch consumer 14-day letter."""
        return resolved.charges and nl_consumer_letter_applies(
            self.jurisdiction, Debtor(resolved.kind.value)
        )

    def label(self, customer: Customer, policy: Policy) -> Behaviour:
        key = (customer.id, policy.name)
        label = self._labels.get(key)
        if label is None:
            label = self._labels[key] = classify(self.behaviour.get(customer.id), policy.behaviour)
        return label

    def adjust_for_behaviour(self, customer: Customer, policy: Policy, days: int) -> int:
        label = self.label(customer, policy)
        if label is Behaviour.RELIABLE:
            return days + policy.behaviour.reliable_extra_days
        if label is Behaviour.CHRONIC:
            return max(0, days - policy.behaviour.chronic_fewer_days)
        return days

    # -- per client ------------------------------------------------------------------------

    def reachable(self, customer: Customer, wanted: tuple[ChannelName, ...]) -> list[ChannelName]:
        """The wanted channels that are available and can reach the client, in order."""
        return [
            channel
            for channel in wanted
            if channel in self.channels_available and recipients_for(customer, channel) is not None
        ]

    def window_opening(self, customer: Customer, policy: Policy) -> datetime | None:
        key = (customer.timezone, customer.country, policy.name)
        if key not in self._window:
            self._window[key] = policy.send_window.next_opening(
                self.now, customer.timezone, customer.country
            )
        return self._window[key]

    def group(self, due: list[_Due]) -> PlannedReminder | None:
        first = due[0]
        customer = self.snapshot.customers_by_id[first.invoice.customer_id]
        currency = first.invoice.currency
        lead = max(due, key=lambda item: item.stage_index)
        stage, policy, resolved = lead.stage, lead.policy, lead.resolved
        invoices = tuple(item.invoice for item in due)

        def skip_all(code: str, reason: str, next_date: date | None = None) -> None:
            for item in due:
                self.skip(item.invoice, code, reason, next_date)

        owed = Money(sum((invoice.amount_due.amount for invoice in invoices), Decimal(0)), currency)
        minimum = resolved.minimum.get(currency)
        if minimum is not None and owed < minimum:
            skip_all("below_minimum", f"{owed} is under the minimum of {minimum}")
            if self.hold_back:
                return None
        wanted = stage.channels or resolved.channels
        reachable = self.reachable(customer, wanted)
        channel = reachable[0] if reachable else None
        if channel is None:
            skip_all(
                "no_channel",
                f"none of {', '.join(wanted)} can reach the client with what the "
                "ledger holds (or is available yet)",
            )
            if self.hold_back:
                return None
            # A preview still shows the message the first wanted channel would carry.
            channel = wanted[0]
        if channel in MESSAGE_CHANNELS:
            last = self.last_message.get((customer.id, channel))
            if last is not None and last + timedelta(days=policy.gap_days) > self.now:
                allowed = self.local_date(last + timedelta(days=policy.gap_days), customer)
                skip_all(
                    "too_soon",
                    f"the client was sent {_A_MESSAGE.get(channel, channel)} on "
                    f"{self.local_date(last, customer).isoformat()}; "
                    f"the next may go from {allowed.isoformat()}",
                    allowed,
                )
                if self.hold_back:
                    return None
            opening = self.window_opening(customer, policy)
            if opening is not None:
                skip_all(
                    "outside_send_window",
                    f"outside the send window; it opens {opening:%Y-%m-%d %H:%M} "
                    f"{customer.timezone}",
                    opening.date(),
                )
                if self.hold_back:
                    return None

        label = self.label(customer, policy)
        tone = stage.tone or resolved.tone
        if stage.tone is None and resolved.sources["tone"] == "default":
            if label is Behaviour.CHRONIC:
                tone = policy.behaviour.chronic_tone
            elif label is Behaviour.RELIABLE:
                tone = "friendly"
        invoice_stages = {item.invoice.id: item.stage.name for item in due}
        stages = self.active_stages[policy.name]
        next_step_date = None
        if lead.stage_index + 1 < len(stages):
            following = stages[lead.stage_index + 1]
            if following.anchor is Anchor.PREVIOUS:
                next_step_date = self.add_days(
                    customer, self.today(customer), following.days, following.business_days
                )
        if customer.country == "NO" and stage.template_name == "final":
            # A Norwegian final notice is an inkassovarsel (inkassoloven § 9): it gives at
            # least 14 days from its sending before the claim may go to collection.
            warned = self.today(customer) + timedelta(days=NO_COLLECTION_WARNING_DAYS)
            next_step_date = max(next_step_date or warned, warned)
        if stage.charges and self.consumer_letter(resolved):
            deadline = nl_consumer_letter_deadline_in(self.today(customer))
            next_step_date = max(next_step_date or deadline, deadline + timedelta(days=1))
        why = [
            item.why
            if len(due) == 1
            else Reason(item.why.code, f"{item.invoice.number}: {item.why.text}")
            for item in due
        ]
        if len(due) > 1:
            why.append(
                Reason(
                    "consolidated",
                    f"one reminder at the most advanced stage, {stage.name}; invoices at "
                    "an earlier stage are named as also due, without its consequences",
                )
            )
        charges = stage.charges and resolved.charges
        # Each invoice keeps its own history (issue 17): a newly overdue invoice beside
        # one at the final notice is "also now due", and bears no charges of its own yet.
        uncharged = frozenset(item.invoice.id for item in due if not item.stage.charges)
        reminded_on = {
            invoice.id: self.local_date(max(self.stages_sent[invoice.id].values()), customer)
            for invoice in invoices
            if self.stages_sent.get(invoice.id)
        }
        reminder_fee = False
        if charges and self.jurisdiction == "NO":
            today = self.today(customer)
            if channel not in WRITTEN_CHANNELS:
                fee_why = f"no reminder fee: it needs a written reminder, not {channel}"
            else:
                earlier = {
                    self.local_date(moment, customer)
                    for invoice in invoices
                    for moment in self.fees_sent.get(invoice.id, ())
                }
                reminder_fee, fee_why = no_fee_allowed(
                    (invoice.due_date for invoice in invoices), today, sorted(earlier)
                )
            why.append(Reason("reminder_fee" if reminder_fee else "no_reminder_fee", fee_why))
            if reminder_fee:
                pay_by = today + timedelta(days=NO_FEE_DAYS)
                next_step_date = max(next_step_date or pay_by, pay_by + timedelta(days=1))
        if label is not Behaviour.UNKNOWN:
            why.append(
                Reason(
                    "behaviour",
                    f"pays as a {label} client: {self.behaviour[customer.id].describe()}",
                )
            )
        recipients = recipients_for(customer, channel) or ()
        return PlannedReminder(
            key=reminder_key(self.source, customer.id, invoice_stages, stage.name, channel),
            source=self.source,
            customer=customer,
            invoices=invoices,
            stage=stage.name,
            channel=channel,
            recipients=recipients,
            language=resolved.language,
            tone=tone,
            template=stage.template_name,
            # Charges only where the policy's stage names them and the creditor opted in.
            charges=charges,
            invoice_stages=invoice_stages,
            behaviour=label,
            why=tuple(why),
            next_step_date=next_step_date,
            formality=resolved.formality,
            debtor=resolved.kind,
            reminder_fee=reminder_fee,
            payments=self.payments_on(invoices) if charges else (),
            reminded_on=reminded_on,
            reminders_before={
                invoice.id: len(self.stages_sent[invoice.id])
                for invoice in invoices
                if self.stages_sent.get(invoice.id)
            },
            uncharged=uncharged if charges else frozenset(),
            # Where it goes if this channel fails for good (R24): the client's next ones.
            fallbacks=tuple(reachable[1:]),
        )


def settings_for(
    settings: PlanningSettings, customer: Customer, invoice: Invoice | None = None
) -> Resolved:
    """The effective settings: invoice, then client, then its groups, then the default."""
    levels: list[tuple[str, Overrides]] = []
    if invoice is not None and invoice.id in settings.invoices:
        levels.append(("invoice", settings.invoices[invoice.id]))
    levels.append(("client", settings.client(customer.id)))
    levels.extend(
        (f"group {tag}", settings.groups[tag])
        for tag in sorted(customer.tags)
        if tag in settings.groups
    )
    defaults = settings.defaults
    resolved = resolve(
        levels,
        language=customer.language,
        kind=customer.kind,
        default_tone=defaults.tone,
        default_channels=defaults.channels,
        default_minimum=defaults.minimum,
        default_charges=defaults.charges,
    )
    if resolved.sources["policy"] == "default":
        resolved = replace(resolved, policy=defaults.policy)
    return resolved


def plan_reminders(
    snapshot: LedgerSnapshot,
    settings: PlanningSettings,
    history: Sequence[SentReminder],
    *,
    now: datetime,
    source: str,
    channels_available: Iterable[ChannelName] = ("email", "task"),
) -> Plan:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must carry a time zone")
    with _cyclic_gc_paused():
        return _plan(snapshot, settings, history, now, source, frozenset(channels_available))


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Planning makes no reference cycles, so refcounting frees everything it drops.

    On a ledger of 100,000 open invoices the cyclic collector would otherwise walk every
    live invoice again and again while the planner allocates, costing a quarter of the run.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plan(
    snapshot: LedgerSnapshot,
    settings: PlanningSettings,
    history: Sequence[SentReminder],
    now: datetime,
    source: str,
    channels_available: frozenset[str],
) -> Plan:
    planner = _Planner(snapshot, settings, history, now, source, channels_available)
    groups: dict[tuple[object, ...], list[_Due]] = {}
    consider = planner.consider
    closed = (InvoiceStatus.PAID, InvoiceStatus.VOIDED)
    for invoice in snapshot.invoices:
        if invoice.status in closed:
            continue
        due = consider(invoice)
        if due is None:
            continue
        groups.setdefault(_group_key(due), []).append(due)
    reminders = []
    for items in _in_plan_order(groups):
        reminder = planner.group(items)
        if reminder is not None:
            reminders.append(reminder)
    return Plan(now, tuple(reminders), tuple(planner.skips), planner.behaviour)


def _group_key(due: _Due) -> tuple[object, ...]:
    """Invoices with the same key share one reminder (step 6)."""
    invoice = due.invoice
    return (
        invoice.customer_id,
        invoice.currency,
        due.policy.name,
        due.resolved.tone,
        due.resolved.channels,
        None if due.resolved.consolidate else invoice.id,
        # A note before the due date is a message of its own: an invoice not due yet has
        # no place in a reminder that asks for payment by a date before it falls due.
        due.stage.anchor is Anchor.DUE_DATE and due.stage.days < 0,
    )


def _in_plan_order(groups: dict[tuple[object, ...], list[_Due]]) -> Iterator[list[_Due]]:
    for _key, items in sorted(groups.items(), key=lambda item: str(item[0])):
        items.sort(key=lambda item: (item.invoice.due_date, item.invoice.number, item.invoice.id))
        yield items


def preview_reminders(
    snapshot: LedgerSnapshot,
    settings: PlanningSettings,
    history: Sequence[SentReminder],
    *,
    now: datetime,
    source: str,
    client_id: str,
    invoice_ids: Iterable[str] = (),
    stage: str | None = None,
    channels_available: Iterable[ChannelName] = ("email", "task"),
) -> tuple[PlannedReminder, ...]:
    """The reminders a client would get next, made as ``plan_reminders`` makes them.

    The rules that hold a reminder back at ``now`` (excluded, paused, a promise running,
    not due yet, under the minimum, no channel, too soon, outside the send window) are not
    obeyed but named first in each reminder's ``why``. Without ``invoice_ids`` it names
    the client's invoices whose next stage comes first: all that are due now, else those
    due on the earliest day. ``stage`` puts them at that stage of the client's policy
    instead of their own. Several reminders come back where the plan would make several
    (currencies, policies, a client who wants one per invoice). For another channel than
    the planner's, ``PlannedReminder.on_channel``.

    Like the planner it is pure: ``now`` is the moment of sending. Raises ValueError,
    with a sentence for people, when there is nothing to preview.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must carry a time zone")
    customer = snapshot.customers_by_id.get(client_id)
    if customer is None:
        raise ValueError(f"no client {client_id!r}")
    if stage is not None:
        stages = settings.policies[settings_for(settings, customer).policy].active_stages
        known = [s.name for s in stages]
        if stage not in known:
            raise ValueError(
                f"no stage {stage!r} in the policy of {customer.name}; "
                f"its stages are {', '.join(known)}"
            )
    named = tuple(dict.fromkeys(invoice_ids))
    candidates = _preview_candidates(snapshot, customer, named)
    planner = _Planner(
        snapshot,
        settings,
        history,
        now,
        source,
        frozenset(channels_available),
        hold_back=False,
    )
    today = planner.today(customer)
    dues: list[_Due] = []
    ready_on: dict[str, date] = {}
    refusals: list[str] = []
    own: dict[str, _Due | None] = {}
    finished_ids: set[str] = set()
    for invoice in candidates:
        first_skip = len(planner.skips)
        due = planner.consider(invoice)
        held = planner.skips[first_skip:]
        if bool(held) and held[-1].code == "sequence_complete":
            finished_ids.add(invoice.id)
        own[invoice.id] = due
        if due is None and invoice.id not in finished_ids:
            refusals.append(f"{invoice.number}: {held[-1].reason if held else 'nothing is owed'}")
            continue
        ready_on[invoice.id] = max((s.next_date for s in held if s.next_date), default=today)
    # A stage chosen for the client (no invoices named) is the stage of its most advanced
    # invoices; the others keep their own history, as a real send keeps it: a newer one
    # due now is "also now overdue", one not due yet is left out (the review, M7: every
    # invoice was put at the final notice and threatened with collection).
    chosen_for: set[str] = set(ready_on)
    if stage is not None and not named and ready_on:
        # The stage goes on the most advanced invoices, however soon or late their own
        # next stage comes (the native check: it went on one not due for ten days, and
        # one never reminded got "despite our earlier reminders"); the others come with
        # them only when due now, as "also now due".
        reached = {
            # An invoice whose every stage went out is the most advanced of all.
            invoice_id: (_PAST_EVERY_STAGE if due is None else due.stage_index)
            for invoice_id, due in own.items()
            if invoice_id in ready_on
        }
        top = max(reached.values(), default=0)
        chosen_for = {invoice_id for invoice_id, index in reached.items() if index == top}
        # Of those, the ones due now where there are any: not one that falls due next week.
        due_now = {invoice_id for invoice_id in chosen_for if ready_on[invoice_id] <= today}
        chosen_for = due_now or chosen_for
        ready_on = {k: day for k, day in ready_on.items() if k in chosen_for or day <= today}
    elif not named and ready_on:
        # The invoices whose next stage comes first: all due now, else the earliest day's.
        first_day = max(today, min(ready_on.values()))
        ready_on = {key: day for key, day in ready_on.items() if day <= first_day}
        chosen_for = set(ready_on)
    for invoice in candidates:
        if invoice.id not in ready_on:
            continue
        due = own[invoice.id]
        if stage is not None and invoice.id in chosen_for:
            due = _at_stage(planner, invoice, stage)
        if due is not None:
            dues.append(due)
    if named and refusals:
        raise ValueError(f"no reminder for {refusals[0]}")
    if not dues:
        raise ValueError(f"{customer.name} would get no reminder: {'; '.join(refusals)}")

    groups: dict[tuple[object, ...], list[_Due]] = {}
    for due in dues:
        groups.setdefault(_group_key(due), []).append(due)
    previews = []
    for items in _in_plan_order(groups):
        reminder = planner.group(items)
        # Made with hold_back off, group() always makes one.
        assert reminder is not None
        ids = {item.invoice.id for item in items}
        held_back = {
            (skip.code, skip.reason): None
            for skip in planner.skips
            if skip.invoice_id in ids and not (stage and skip.code in _ABOUT_OWN_STAGE)
        }
        preface = Reason(
            "preview",
            "a preview: what the planner would send, with the rules that hold it back "
            "at this moment set aside",
        )
        previews.append(
            replace(
                reminder,
                why=(preface, *(Reason(code, text) for code, text in held_back), *reminder.why),
            )
        )
    return tuple(previews)


_PAST_EVERY_STAGE = 1_000_000

#: Skips that speak of an invoice's own next stage: beside a chosen stage they mislead.
_ABOUT_OWN_STAGE = frozenset({"not_due_yet", "sequence_complete"})


def _preview_candidates(
    snapshot: LedgerSnapshot, customer: Customer, named: tuple[str, ...]
) -> list[Invoice]:
    if not named:
        candidates = [i for i in snapshot.invoices if i.customer_id == customer.id and i.is_open]
        if not candidates:
            raise ValueError(f"{customer.name} has no open invoices")
        return candidates
    invoices = snapshot.invoices_by_id
    candidates = []
    for invoice_id in named:
        invoice = invoices.get(invoice_id)
        if invoice is None:
            raise ValueError(f"no invoice {invoice_id!r}")
        if invoice.customer_id != customer.id:
            raise ValueError(f"invoice {invoice.number} is not {customer.name}'s")
        candidates.append(invoice)
    return candidates


def _at_stage(planner: _Planner, invoice: Invoice, stage_name: str) -> _Due:
    """The invoice at a stage chosen for a preview, whatever its own next stage is."""
    _customer, resolved, policy, stages, today = planner.context_for(invoice)
    names = [stage.name for stage in stages]
    if stage_name not in names:
        raise ValueError(
            f"invoice {invoice.number} follows the {policy.name} policy, which has no "
            f"stage {stage_name!r}"
        )
    index = names.index(stage_name)
    chosen = stages[index]
    if chosen.anchor is Anchor.DUE_DATE and chosen.days < 0 and today > invoice.due_date:
        # A note before the due date, of an invoice long past it, says what is not true.
        raise ValueError(
            f"invoice {invoice.number} fell due on {invoice.due_date.isoformat()}; "
            f"the {stage_name} stage comes before the due date"
        )
    why = Reason("stage_chosen", f"{stage_name}: the stage chosen for the preview")
    return _Due(invoice, resolved, policy, stages[index], index, why)


def recheck(plan: Plan, fresh: LedgerSnapshot) -> tuple[Plan, tuple[Skip, ...]]:
    """Drop reminders whose invoices changed since the sync (R3, D4).

    ``fresh`` is the accounting system read again right before sending. A reminder goes
    out only if every invoice it names is still open with the same amount due, due date
    and state; otherwise it is dropped and the next run plans from the new facts.
    """
    kept: list[PlannedReminder] = []
    dropped: list[Skip] = []
    fresh_invoices = fresh.invoices_by_id
    for reminder in plan.reminders:
        changed = [
            invoice
            for invoice in reminder.invoices
            if (current := fresh_invoices.get(invoice.id)) is None
            or not current.is_open
            or current.disputed
            or current.on_hold
            or current.amount_due != invoice.amount_due
            or current.due_date != invoice.due_date
        ]
        if changed:
            numbers = ", ".join(invoice.number for invoice in changed)
            dropped.extend(
                Skip(
                    reminder.customer.id,
                    invoice.id,
                    "changed_since_sync",
                    f"{numbers} changed in the accounting system since the sync; not sent",
                )
                for invoice in reminder.invoices
            )
        else:
            kept.append(reminder)
    return replace(plan, reminders=tuple(kept), skips=plan.skips + tuple(dropped)), tuple(dropped)


#: A channel's message, with its article, for the reasons a plan gives.
_A_MESSAGE = {"email": "an e-mail", "sms": "an SMS", "letter": "a letter", "task": "a task"}
