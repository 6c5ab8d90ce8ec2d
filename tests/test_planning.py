"""The planning core, rule by rule, and the properties that must hold for any ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TypedDict, Unpack

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.config.settings import Company, Defaults, Settings
from plugin.core.businessdays import SendWindow
from plugin.core.decisions import DECISIONS, REASONS, Plan, SentReminder, reminder_key
from plugin.core.model import (
    CreditNote,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceStatus,
    LedgerSnapshot,
    Payment,
    PromiseToPay,
)
from plugin.core.money import Money
from plugin.core.planning import plan_reminders, recheck
from plugin.core.policy import (
    DEFAULT_POLICY,
    Anchor,
    Behaviour,
    ChargeSettings,
    Overrides,
    Policy,
    Stage,
)
from plugin.core.vocabulary import ChannelName

# Tuesday 24 November 2026, 10:00 in Amsterdam: inside the default send window.
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 24)
ANYTIME = replace(DEFAULT_POLICY, send_window=SendWindow(always=True))


def customer(cid: str = "C1", **changes: object) -> Customer:
    base = Customer(
        id=cid,
        name=f"Client {cid}",
        emails=(f"{cid.lower()}@client.example",),
        phones=("+31 20 555 0100",),
        language="nl",
        country="NL",
        timezone="Europe/Amsterdam",
        kind=CustomerKind.BUSINESS,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def invoice(
    iid: str,
    due: date,
    amount: str = "100.00",
    currency: str = "EUR",
    customer_id: str = "C1",
    **changes: object,
) -> Invoice:
    base = Invoice(
        id=iid,
        number=f"N-{iid}",
        customer_id=customer_id,
        issue_date=date(2026, 1, 1),
        due_date=due,
        total=Money.of(amount, currency),
        amount_due=Money.of(amount, currency),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def make_settings(
    policy: Policy = ANYTIME,
    groups: dict[str, Overrides] | None = None,
    invoices: dict[str, Overrides] | None = None,
    **clients: Overrides,
) -> Settings:
    return Settings(
        company=Company(name="Creditor B.V.", email="ar@creditor.example"),
        defaults=Defaults(minimum={"EUR": Money.of("5", "EUR")}),
        policies={"default": policy, "strict": replace(policy, name="strict", gap_days=1)},
        clients=clients,
        groups=groups or {},
        invoices=invoices or {},
    )


def plan(
    snapshot: LedgerSnapshot,
    settings: Settings | None = None,
    history: tuple[SentReminder, ...] = (),
    now: datetime = NOW,
    channels: tuple[ChannelName, ...] = ("email", "task"),
) -> Plan:
    return plan_reminders(
        snapshot,
        settings or make_settings(),
        history,
        now=now,
        source="ledger",
        channels_available=channels,
    )


def codes(result: Plan) -> dict[str, str]:
    return {skip.invoice_id: skip.code for skip in result.skips}


def sent(result: Plan, at: datetime) -> tuple[SentReminder, ...]:
    return tuple(
        SentReminder(
            r.key,
            r.customer.id,
            tuple(i.id for i in r.invoices),
            r.stage,
            r.channel,
            at,
            dict(r.invoice_stages),
            reminder_fee=r.reminder_fee,
        )
        for r in result.reminders
    )


class SnapshotParts(TypedDict, total=False):
    """The rest of a LedgerSnapshot, as one() passes it on."""

    invoices: tuple[Invoice, ...]
    payments: tuple[Payment, ...]
    credit_notes: tuple[CreditNote, ...]
    promises: tuple[PromiseToPay, ...]


def one(
    customers: tuple[Customer, ...] | None = None, **parts: Unpack[SnapshotParts]
) -> LedgerSnapshot:
    return LedgerSnapshot(customers=customers or (customer(),), **parts)


OVERDUE = date(2026, 11, 10)  # + 3 business days = Friday 13 November


class InvoiceChanges(TypedDict, total=False):
    """Changes to the invoice() helper's invoice, by field."""

    status: InvoiceStatus
    disputed: bool
    on_hold: bool
    due_date: date
    amount_due: Money


# -- 3. what is owed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        (InvoiceChanges(status=InvoiceStatus.DRAFT), "draft"),
        (InvoiceChanges(disputed=True), "disputed"),
        (InvoiceChanges(on_hold=True), "on_hold"),
        (InvoiceChanges(due_date=date(2026, 11, 20)), "not_due_yet"),
        (InvoiceChanges(amount_due=Money.of("4.99", "EUR")), "below_minimum"),
    ],
)
def test_invoices_that_get_no_reminder(changes: InvoiceChanges, code: str) -> None:
    result = plan(one(invoices=(invoice("I1", OVERDUE, **changes),)))
    assert result.reminders == ()
    assert codes(result) == {"I1": code}
    assert result.skips[0].reason


@pytest.mark.parametrize(
    "changes",
    [
        InvoiceChanges(status=InvoiceStatus.VOIDED),
        InvoiceChanges(amount_due=Money.of("0", "EUR"), status=InvoiceStatus.PAID),
        InvoiceChanges(amount_due=Money.of("0", "EUR")),  # open in name, but nothing is owed
    ],
)
def test_closed_invoices_are_neither_reminded_nor_listed(changes: InvoiceChanges) -> None:
    result = plan(one(invoices=(invoice("I1", OVERDUE, **changes),)))
    assert result.reminders == ()
    assert result.skips == ()


def test_partial_payment_reminds_about_the_remainder() -> None:
    partly = invoice("I1", OVERDUE, amount="500.00", amount_due=Money.of("125.50", "EUR"))
    (reminder,) = plan(one(invoices=(partly,))).reminders
    assert reminder.amount_due == Money.of("125.50", "EUR")


# -- 1. stages and 5. chaining on what was sent --------------------------------------------


def test_first_reminder_counts_business_days_and_public_holidays() -> None:
    # Due Wednesday 23 December 2026: Christmas and Boxing Day (and the weekend) are off in
    # the Netherlands, so 3 business days later is Tuesday 29 December.
    snapshot = one(invoices=(invoice("I1", date(2026, 12, 23)),))
    before = plan(snapshot, now=datetime(2026, 12, 28, 12, tzinfo=UTC))
    assert codes(before) == {"I1": "not_due_yet"}
    assert before.skips[0].next_date == date(2026, 12, 29)
    on_the_day = plan(snapshot, now=datetime(2026, 12, 29, 12, tzinfo=UTC))
    assert [r.stage for r in on_the_day.reminders] == ["first"]


def test_holidays_are_the_clients_country() -> None:
    # Wednesday 17 May 2028 is Norway's Constitution Day; a Dutch client works that day.
    oslo = customer("C1", country="NO", language="nb", timezone="Europe/Oslo")
    amsterdam = customer("C2")
    snapshot = LedgerSnapshot(
        customers=(oslo, amsterdam),
        invoices=(
            invoice("I1", date(2028, 5, 12), customer_id="C1"),
            invoice("I2", date(2028, 5, 12), customer_id="C2"),
        ),
    )
    result = plan(snapshot, now=datetime(2028, 5, 17, 10, tzinfo=UTC))
    assert [r.customer.id for r in result.reminders] == ["C2"]
    assert result.skips[0].next_date == date(2028, 5, 18)


def test_stages_follow_what_was_actually_sent() -> None:
    snapshot = one(invoices=(invoice("I1", date(2026, 6, 1)),))
    # Long overdue and never reminded: the first reminder, not the final notice.
    first = plan(snapshot)
    assert [r.stage for r in first.reminders] == ["first"]
    history = sent(first, NOW)
    # Missed runs never cause a burst: the second waits 14 days after the first.
    assert codes(plan(snapshot, history=history, now=NOW + timedelta(days=13))) == {
        "I1": "not_due_yet"
    }
    second = plan(snapshot, history=history, now=NOW + timedelta(days=14))
    assert [r.stage for r in second.reminders] == ["second"]
    history += sent(second, NOW + timedelta(days=14))
    final = plan(snapshot, history=history, now=NOW + timedelta(days=60))
    assert [(r.stage, r.tone) for r in final.reminders] == [("final", "firm")]
    history += sent(final, NOW + timedelta(days=60))
    handoff = plan(snapshot, history=history, now=NOW + timedelta(days=74))
    assert [(r.stage, r.channel) for r in handoff.reminders] == [("handoff", "task")]
    history += sent(handoff, NOW + timedelta(days=74))
    done = plan(snapshot, history=history, now=NOW + timedelta(days=400))
    assert done.reminders == ()
    assert codes(done) == {"I1": "sequence_complete"}


def test_courtesy_note_before_the_due_date_only_when_enabled() -> None:
    snapshot = one(invoices=(invoice("I1", date(2026, 11, 27)),))
    assert plan(snapshot).reminders == ()
    with_courtesy = make_settings(policy=ANYTIME.with_courtesy(True))
    result = plan(snapshot, with_courtesy)
    assert [(r.stage, r.tone) for r in result.reminders] == [("courtesy", "friendly")]
    # Once overdue, a courtesy note that never went out is passed over.
    late = plan(one(invoices=(invoice("I1", OVERDUE),)), with_courtesy)
    assert [r.stage for r in late.reminders] == ["first"]


def test_a_custom_policy_chosen_by_group() -> None:
    quick = Policy(
        "quick",
        (
            Stage("nudge", Anchor.DUE_DATE, 1, template="first"),
            Stage("last", Anchor.PREVIOUS, 7, tone="firm", template="final"),
        ),
        send_window=SendWindow(always=True),
    )
    settings = replace(
        make_settings(groups={"horeca": Overrides(policy="quick")}),
        policies={"default": ANYTIME, "quick": quick},
    )
    snapshot = LedgerSnapshot(
        customers=(customer("C1", tags=frozenset({"horeca"})), customer("C2")),
        invoices=(
            invoice("I1", date(2026, 11, 23), customer_id="C1"),
            invoice("I2", date(2026, 11, 23), customer_id="C2"),
        ),
    )
    result = plan(snapshot, settings)
    assert [(r.customer.id, r.stage) for r in result.reminders] == [("C1", "nudge")]


# -- 2. per-client settings and their order ------------------------------------------------


def test_settings_resolve_invoice_then_client_then_group_then_default() -> None:
    snapshot = LedgerSnapshot(
        customers=(
            customer("C1", tags=frozenset({"vip"})),
            customer("C2", tags=frozenset({"vip"})),
        ),
        invoices=(
            invoice("I1", OVERDUE, customer_id="C1"),
            invoice("I2", OVERDUE, customer_id="C2"),
            invoice("I3", OVERDUE, customer_id="C2", currency="GBP"),
        ),
    )
    settings = make_settings(
        groups={"vip": Overrides(tone="neutral", language="en")},
        invoices={"I3": Overrides(tone="firm")},
        C1=Overrides(tone="friendly"),
    )
    result = {r.invoices[0].id: r for r in plan(snapshot, settings).reminders}
    assert (result["I1"].tone, result["I1"].language) == ("friendly", "en")
    assert (result["I2"].tone, result["I2"].language) == ("neutral", "en")
    assert result["I3"].tone == "firm"


def test_excluded_and_paused() -> None:
    snapshot = LedgerSnapshot(
        customers=(customer("C1"), customer("C2"), customer("C3"), customer("C4")),
        invoices=(
            invoice("I1", OVERDUE, customer_id="C1"),
            invoice("I2", OVERDUE, customer_id="C2"),
            invoice("I3", OVERDUE, customer_id="C3"),
            invoice("I4", OVERDUE, customer_id="C4"),
            invoice("I5", OVERDUE, customer_id="C4", currency="GBP"),
        ),
    )
    settings = make_settings(
        invoices={"I5": Overrides(pause_until=date(2026, 12, 1), pause_reason="checking")},
        C1=Overrides(excluded=True),
        C2=Overrides(pause_until=TODAY, pause_reason="payment plan"),
        C3=Overrides(pause_until=TODAY - timedelta(days=1)),
    )
    result = plan(snapshot, settings)
    assert codes(result) == {"I1": "excluded", "I2": "paused", "I5": "paused"}
    reasons = {s.invoice_id: s.reason for s in result.skips}
    assert "payment plan" in reasons["I2"] and "client setting" in reasons["I2"]
    assert "checking" in reasons["I5"] and "invoice setting" in reasons["I5"]
    assert sorted(r.customer.id for r in result.reminders) == ["C3", "C4"]


def test_minimum_amount_per_client_and_currency() -> None:
    snapshot = one(invoices=(invoice("I1", OVERDUE, amount="30.00"),))
    settings = make_settings(C1=Overrides(minimum={"EUR": Money.of("50", "EUR")}))
    assert codes(plan(snapshot, settings)) == {"I1": "below_minimum"}


# -- 4. consolidation ------------------------------------------------------------------------


def test_one_reminder_per_client_and_currency_at_the_most_advanced_stage() -> None:
    early = invoice("I1", date(2026, 9, 1))
    later = invoice("I2", OVERDUE)
    pounds = invoice("I3", OVERDUE, currency="GBP")
    snapshot = one(invoices=(early, later, pounds))
    earlier_first = sent(
        plan(one(invoices=(early,)), now=NOW - timedelta(days=30)), NOW - timedelta(days=30)
    )
    result = plan(snapshot, history=earlier_first)
    by_currency = {r.currency: r for r in result.reminders}
    assert set(by_currency) == {"EUR", "GBP"}
    eur = by_currency["EUR"]
    assert [i.id for i in eur.invoices] == ["I1", "I2"]
    assert eur.stage == "second"
    assert eur.invoice_stages == {"I1": "second", "I2": "first"}
    assert by_currency["GBP"].stage == "first"


def test_one_reminder_per_invoice_when_the_client_wants_that() -> None:
    snapshot = one(invoices=(invoice("I1", OVERDUE), invoice("I2", OVERDUE)))
    result = plan(snapshot, make_settings(C1=Overrides(consolidate=False)))
    assert sorted(len(r.invoices) for r in result.reminders) == [1, 1]


# -- 5. frequency ------------------------------------------------------------------------


def test_never_two_messages_on_one_channel_within_the_gap() -> None:
    first_batch = plan(one(invoices=(invoice("I1", OVERDUE),)))
    history = sent(first_batch, NOW - timedelta(days=2))
    # A second invoice falls due for its first reminder two days later: it waits.
    snapshot = one(invoices=(invoice("I1", OVERDUE), invoice("I2", date(2026, 11, 17))))
    result = plan(snapshot, history=history)
    assert result.reminders == ()
    assert codes(result)["I2"] == "too_soon"
    assert result.skips[-1].next_date == date(2026, 11, 27)
    # The gap is per channel: with e-mail blocked, nothing else is tried for it.
    later = plan(snapshot, history=history, now=NOW + timedelta(days=3))
    assert [[i.id for i in r.invoices] for r in later.reminders] == [["I2"]]


# -- 6. time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "opens"),
    [
        (datetime(2026, 11, 24, 7, 59, tzinfo=UTC), datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),
        (datetime(2026, 11, 24, 16, 0, tzinfo=UTC), datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),
        (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
        (datetime(2026, 12, 24, 16, 30, tzinfo=UTC), datetime(2026, 12, 28, 8, 0, tzinfo=UTC)),
    ],
    ids=["before nine", "after five", "saturday", "christmas eve evening"],
)
def test_reminders_wait_for_the_send_window(moment: datetime, opens: datetime) -> None:
    snapshot = one(invoices=(invoice("I1", OVERDUE),))
    result = plan(snapshot, make_settings(policy=DEFAULT_POLICY), now=moment)
    assert codes(result) == {"I1": "outside_send_window"}
    assert opens.astimezone(UTC).strftime("%Y-%m-%d %H:%M") in _as_utc(result.skips[0].reason)
    inside = plan(snapshot, make_settings(policy=DEFAULT_POLICY), now=opens)
    assert len(inside.reminders) == 1


def _as_utc(reason: str) -> str:
    # The reason names the opening in the client's zone; convert it back for comparison.
    stamp = reason.split("opens ")[1][:16]
    local = datetime.strptime(stamp, "%Y-%m-%d %H:%M")
    from zoneinfo import ZoneInfo

    utc = local.replace(tzinfo=ZoneInfo("Europe/Amsterdam")).astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M")


def test_the_day_is_the_clients_own_day() -> None:
    # 20:00 UTC on Sunday 15 November is already Monday 03:00 in Ho Chi Minh City.
    late = datetime(2026, 11, 15, 20, 0, tzinfo=UTC)
    saigon = customer("C1", timezone="Asia/Ho_Chi_Minh", country="VN", language="vi")
    london = customer("C2", timezone="Europe/London", country="GB", language="en")
    due = date(2026, 11, 11)  # + 3 business days: Monday 16 November
    snapshot = LedgerSnapshot(
        customers=(saigon, london),
        invoices=(invoice("I1", due, customer_id="C1"), invoice("I2", due, customer_id="C2")),
    )
    result = plan(snapshot, now=late)
    assert [r.customer.id for r in result.reminders] == ["C1"]
    assert codes(result) == {"I2": "not_due_yet"}


# -- 7. promises -------------------------------------------------------------------------


def test_a_running_promise_holds_and_a_broken_one_escalates_at_once() -> None:
    snapshot = one(invoices=(invoice("I1", date(2026, 10, 1)),))
    first = plan(snapshot, now=NOW - timedelta(days=10))
    history = sent(first, NOW - timedelta(days=10))
    promise = PromiseToPay("I1", promised_date=date(2026, 11, 19), recorded_on=date(2026, 11, 16))
    promised = replace(snapshot, promises=(promise,))
    # Within the grace period (3 days): wait.
    assert codes(plan(promised, history=history, now=NOW - timedelta(days=2))) == {"I1": "promised"}
    # The promise passed unpaid: the second reminder at once, not 14 days after the first.
    broken = plan(promised, history=history)
    assert [r.stage for r in broken.reminders] == ["second"]
    assert broken.reminders[0].why[0].code == "promise_broken"
    assert "broken" in broken.reminders[0].why[0].text
    # Without the promise, the second would still wait.
    assert codes(plan(snapshot, history=history)) == {"I1": "not_due_yet"}


def test_a_promise_recorded_after_the_moment_planned_for_holds_nothing() -> None:
    """Issue 17: `plan --at` a day in the past must not see a promise made after it."""
    snapshot = one(invoices=(invoice("I1", date(2026, 10, 1)),))
    later = PromiseToPay(
        "I1",
        promised_date=NOW.date() + timedelta(days=10),
        recorded_on=NOW.date() + timedelta(days=1),
    )
    promised = replace(snapshot, promises=(later,))
    assert codes(plan(promised, now=NOW)) == codes(plan(snapshot, now=NOW))
    assert codes(plan(promised, now=NOW + timedelta(days=2))) == {"I1": "promised"}


# -- 8. know your client -----------------------------------------------------------------


def _history_of(
    customer_id: str, days_late: list[int]
) -> tuple[tuple[Invoice, ...], tuple[Payment, ...]]:
    invoices, payments = [], []
    for n, late in enumerate(days_late):
        due = date(2026, 3, 1) + timedelta(days=20 * n)
        paid = invoice(
            f"P{customer_id}{n}",
            due,
            customer_id=customer_id,
            amount_due=Money.of("0", "EUR"),
            status=InvoiceStatus.PAID,
        )
        invoices.append(paid)
        payments.append(
            Payment(
                f"PAY{customer_id}{n}", paid.id, due + timedelta(days=late), Money.of("100", "EUR")
            )
        )
    return tuple(invoices), tuple(payments)


def test_reliable_payers_get_a_later_friendlier_reminder_and_chronic_ones_an_earlier_firmer() -> (
    None
):
    reliable_invoices, reliable_payments = _history_of("C1", [0, 0, 0, 0, 2])
    chronic_invoices, chronic_payments = _history_of("C2", [40, 35, 0, 50])
    due = date(2026, 11, 18)  # Wednesday: + 3 business days = Monday 23rd
    snapshot = LedgerSnapshot(
        customers=(customer("C1"), customer("C2"), customer("C3")),
        invoices=(
            *reliable_invoices,
            *chronic_invoices,
            invoice("I1", due, customer_id="C1"),
            invoice("I2", due, customer_id="C2"),
            invoice("I3", due, customer_id="C3"),
        ),
        payments=reliable_payments + chronic_payments,
    )
    result = plan(snapshot, now=datetime(2026, 11, 20, 10, tzinfo=UTC))
    assert [(r.customer.id, r.tone, r.behaviour) for r in result.reminders] == [
        ("C2", "firm", Behaviour.CHRONIC)
    ]
    assert any(r.code == "behaviour" and "chronic" in r.text for r in result.reminders[0].why)
    skips = {s.invoice_id: s.next_date for s in result.skips if s.code == "not_due_yet"}
    assert skips["I1"] == date(2026, 11, 27)  # 3 + 4 business days
    assert skips["I3"] == date(2026, 11, 23)
    assert result.behaviour["C2"].paid_late == 3
    assert result.behaviour["C1"].average_days_late == pytest.approx(0.4)


def test_an_explicit_tone_wins_over_behaviour() -> None:
    chronic_invoices, chronic_payments = _history_of("C1", [40, 35, 30, 50])
    snapshot = one(invoices=(*chronic_invoices, invoice("I1", OVERDUE)), payments=chronic_payments)
    (reminder,) = plan(snapshot, make_settings(C1=Overrides(tone="friendly"))).reminders
    assert reminder.tone == "friendly"


# -- channels (R24) ----------------------------------------------------------------------


def test_channels_fall_back_to_the_next_that_can_reach_the_client() -> None:
    no_email = customer("C1", emails=())
    snapshot = one(customers=(no_email,), invoices=(invoice("I1", OVERDUE),))
    settings = make_settings(C1=Overrides(channels=("email", "sms", "letter")))
    assert codes(plan(snapshot, settings)) == {"I1": "no_channel"}
    (reminder,) = plan(snapshot, settings, channels=("email", "sms")).reminders
    assert (reminder.channel, reminder.recipients) == ("sms", ("+31 20 555 0100",))


# -- 9. explain, keys, purity ------------------------------------------------------------


def test_every_code_is_documented() -> None:
    snapshot = one(
        invoices=(
            invoice("I1", OVERDUE, disputed=True),
            invoice("I2", OVERDUE),
            invoice("I3", date(2026, 11, 1)),
            invoice("I4", date(2026, 12, 30)),
        )
    )
    result = plan(snapshot)
    assert {skip.code for skip in result.skips} == {"disputed", "not_due_yet"}
    assert all(skip.code in REASONS for skip in result.skips)
    (reminder,) = result.reminders
    assert {r.code for r in reminder.why} == {"stage_due", "consolidated"}
    assert all(r.code in DECISIONS for r in reminder.why)


def test_keys_are_deterministic_and_distinguish_what_matters() -> None:
    key = reminder_key("ledger", "C1", ["I2", "I1"], "first", "email")
    assert key == reminder_key("ledger", "C1", ["I1", "I2"], "first", "email")
    others = {
        reminder_key("ledger", "C1", ["I1"], "first", "email"),
        reminder_key("ledger", "C1", ["I1", "I2"], "second", "email"),
        reminder_key("ledger", "C1", ["I1", "I2"], "first", "sms"),
        reminder_key("xero:1", "C1", ["I1", "I2"], "first", "email"),
    }
    assert key not in others
    assert len(others) == 4


def test_now_must_carry_a_time_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        plan(LedgerSnapshot(), now=datetime(2026, 11, 22, 10, 0))


def test_recheck_drops_reminders_whose_invoices_changed() -> None:
    snapshot = LedgerSnapshot(
        customers=(customer("C1"), customer("C2"), customer("C3")),
        invoices=(
            invoice("I1", OVERDUE, customer_id="C1"),
            invoice("I2", OVERDUE, customer_id="C2"),
            invoice("I3", OVERDUE, customer_id="C3"),
        ),
    )
    planned = plan(snapshot)
    fresh = replace(
        snapshot,
        invoices=(
            replace(
                snapshot.invoices[0], amount_due=Money.of("0", "EUR"), status=InvoiceStatus.PAID
            ),
            replace(snapshot.invoices[1], amount_due=Money.of("60", "EUR")),
            snapshot.invoices[2],
        ),
    )
    kept, dropped = recheck(planned, fresh)
    assert [r.customer.id for r in kept.reminders] == ["C3"]
    assert {skip.invoice_id for skip in dropped} == {"I1", "I2"}
    assert {skip.code for skip in dropped} == {"changed_since_sync"}


# -- properties over random ledgers --------------------------------------------------------

ROW = st.tuples(
    st.sampled_from(list(InvoiceStatus)),
    st.booleans(),  # disputed
    st.booleans(),  # on hold
    st.integers(min_value=-90, max_value=20),  # due date, days from NOW
    st.sampled_from(["0.00", "3.00", "250.00"]),  # amount due
    st.integers(min_value=0, max_value=2),  # customer
    st.sampled_from(["EUR", "GBP"]),
)


@st.composite
def ledgers(draw: st.DrawFn) -> tuple[LedgerSnapshot, Settings]:
    rows = draw(st.lists(ROW, min_size=1, max_size=14))
    customers = tuple(customer(f"C{n}") for n in range(3))
    invoices = []
    for index, (status, disputed, on_hold, offset, amount, who, currency) in enumerate(rows):
        invoices.append(
            Invoice(
                id=f"I{index}",
                number=f"N{index}",
                customer_id=f"C{who}",
                issue_date=date(2026, 1, 1),
                due_date=TODAY + timedelta(days=offset),
                total=Money.of("250.00", currency),
                amount_due=Money.of(amount, currency),
                status=status,
                disputed=disputed,
                on_hold=on_hold,
            )
        )
    paused = draw(st.sets(st.sampled_from(["C0", "C1", "C2"])))
    excluded = draw(st.sets(st.sampled_from(["C0", "C1", "C2"])))
    clients = {
        cid: Overrides(
            pause_until=TODAY if cid in paused else None, excluded=True if cid in excluded else None
        )
        for cid in ("C0", "C1", "C2")
    }
    return LedgerSnapshot(customers=customers, invoices=tuple(invoices)), replace(
        make_settings(), clients=clients
    )


@settings(max_examples=120, deadline=None)
@given(
    ledger=ledgers(), days=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=8)
)
def test_properties_hold_over_many_runs(
    ledger: tuple[LedgerSnapshot, Settings], days: list[int]
) -> None:
    snapshot, settings_ = ledger
    history: tuple[SentReminder, ...] = ()
    moment = NOW
    stage_order = [s.name for s in DEFAULT_POLICY.stages]
    reached: dict[str, int] = {}
    for step in days:
        moment += timedelta(days=step)
        result = plan(snapshot, settings_, history, now=moment)
        assert result == plan(snapshot, settings_, history, now=moment), "not deterministic"
        reminded = [i for r in result.reminders for i in r.invoices]
        ids = [i.id for i in reminded]
        assert len(ids) == len(set(ids))
        for item in reminded:
            assert item.is_open and not item.disputed and not item.on_hold
            client = settings_.client(item.customer_id)
            assert not client.excluded
            assert client.pause_until is None or client.pause_until < moment.date()
        # Every open item is either reminded or explained, never both, never neither.
        explained = {skip.invoice_id for skip in result.skips}
        assert explained.isdisjoint(ids)
        open_items = {
            i.id for i in snapshot.invoices if i.status is InvoiceStatus.DRAFT or i.is_open
        }
        assert explained | set(ids) == open_items
        new = sent(result, moment)
        for reminder in new:
            # Never two messages on one channel to a client within the gap.
            for old in history:
                if (old.customer_id, old.channel) == (
                    reminder.customer_id,
                    reminder.channel,
                ) and reminder.channel != "task":
                    assert moment - old.sent_at >= timedelta(days=DEFAULT_POLICY.gap_days)
            # Stages never go backwards, and never repeat for an invoice.
            for invoice_id in reminder.invoice_ids:
                index = stage_order.index(reminder.stage_of(invoice_id))
                assert index > reached.get(invoice_id, -1)
                reached[invoice_id] = index
        history += new


def test_after_a_dutch_consumer_letter_nothing_follows_before_its_term() -> None:
    consumer = customer("C1", kind=CustomerKind.CONSUMER)
    snapshot = LedgerSnapshot(customers=(consumer,), invoices=(invoice("I1", date(2026, 6, 1)),))
    base = make_settings()
    settings_ = replace(
        base,
        defaults=replace(base.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NL"),
    )
    history: tuple[SentReminder, ...] = ()
    moment = NOW
    for expected in ("first", "second", "final"):
        result = plan(snapshot, settings_, history, now=moment)
        assert [r.stage for r in result.reminders] == [expected]
        history += sent(result, moment)
        final = result.reminders[0]
        moment += timedelta(days=14)
    # The final notice is the 14-day letter, sent on Tuesday 22 December 2026: received
    # Thursday 24th (Wed, Thu count), so the term ends 7 January; the hand-off may follow
    # on 8 January, not 14 days after the letter's day as the policy alone would have it.
    assert final.charges and final.next_step_date == date(2027, 1, 8)
    sent_on = NOW + timedelta(days=28)
    assert sent_on.date() == date(2026, 12, 22)
    early = plan(snapshot, settings_, history, now=datetime(2027, 1, 7, 10, tzinfo=UTC))
    assert codes(early) == {"I1": "not_due_yet"}
    assert early.skips[0].next_date == date(2027, 1, 8)
    on_time = plan(snapshot, settings_, history, now=datetime(2027, 1, 8, 10, tzinfo=UTC))
    assert [r.stage for r in on_time.reminders] == ["handoff"]


def test_norwegian_reminder_fees_wait_14_days_and_stop_at_two() -> None:
    norwegian = customer(
        "C1", kind=CustomerKind.CONSUMER, country="NO", language="nb", timezone="Europe/Oslo"
    )
    charging = replace(
        ANYTIME,
        stages=(
            Stage("first", Anchor.DUE_DATE, 3, charges=True),
            Stage("second", Anchor.PREVIOUS, 10, charges=True),
            Stage("third", Anchor.PREVIOUS, 10, charges=True, template="final"),
            Stage("final", Anchor.PREVIOUS, 10, charges=True),
        ),
        gap_days=1,
    )
    base = make_settings(charging)
    settings_ = replace(
        base,
        defaults=replace(base.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NO"),
    )
    due = date(2026, 11, 2)
    snapshot = LedgerSnapshot(
        customers=(norwegian,), invoices=(invoice("I1", due, "5000.00", "NOK"),)
    )
    history: tuple[SentReminder, ...] = ()

    def step(day: date) -> Plan:
        nonlocal history
        moment = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
        result = plan(snapshot, settings_, history, now=moment)
        history += sent(result, moment)
        return result

    def fee_reason(result: Plan) -> tuple[str, str]:
        (reason,) = [r for r in result.reminders[0].why if "fee" in r.code]
        assert reason.code in DECISIONS
        return reason.code, reason.text

    # Due + 3: a reminder may go out, but a fee only from due + 14 (INKF §1-2).
    first = step(due + timedelta(days=3))
    assert [r.stage for r in first.reminders] == ["first"]
    assert not first.reminders[0].reminder_fee
    assert fee_reason(first) == (
        "no_reminder_fee",
        "no reminder fee yet: one may be charged from 14 days after the due date, "
        "2026-11-16 (INKF §1-2)",
    )
    # Due + 13 (first + 10): the second stage is due, still without a fee.
    second = step(due + timedelta(days=13))
    assert [r.stage for r in second.reminders] == ["second"]
    assert not second.reminders[0].reminder_fee
    # The third stage at due + 23 carries the first fee and gives 14 days to pay.
    third_day = due + timedelta(days=23)
    third = step(third_day)
    assert third.reminders[0].reminder_fee
    assert fee_reason(third)[0] == "reminder_fee"
    assert third.reminders[0].next_step_date == third_day + timedelta(days=15)
    # The final stage comes 10 days later by the policy, but waits until the fee
    # reminder's 14 days have run out; then a second fee is allowed.
    waiting = step(third_day + timedelta(days=14))
    assert not waiting.reminders
    assert waiting.skips[0].code == "not_due_yet"
    assert waiting.skips[0].next_date == third_day + timedelta(days=15)
    final = step(third_day + timedelta(days=15))
    assert [r.stage for r in final.reminders] == ["final"]
    assert final.reminders[0].reminder_fee


def test_norway_allows_no_third_fee_within_six_months() -> None:
    from plugin.core.charges import no_fee_allowed

    due = date(2026, 1, 5)
    allowed, why = no_fee_allowed([due], date(2026, 3, 1), [date(2026, 1, 20), date(2026, 2, 5)])
    assert not allowed and "two were charged" in why
    # Six months after the older fee it counts no more.
    allowed, _ = no_fee_allowed([due], date(2026, 7, 25), [date(2026, 1, 20), date(2026, 2, 5)])
    assert allowed
    # The second fee only once the first fee reminder's 14 days have run out.
    allowed, why = no_fee_allowed([due], date(2026, 2, 3), [date(2026, 1, 20)])
    assert not allowed and "has not passed" in why
    assert no_fee_allowed([due], date(2026, 2, 4), [date(2026, 1, 20)])[0]
    # With several invoices, every one must be 14 days overdue.
    assert not no_fee_allowed([due, date(2026, 1, 25)], date(2026, 2, 4), [])[0]


def test_a_reminder_that_claims_charges_carries_its_invoices_payments() -> None:
    part_paid = invoice("I1", date(2026, 6, 1), "400.00", total=Money.of("1000.00", "EUR"))
    payment = Payment("P1", "I1", date(2026, 7, 1), Money.of("600.00", "EUR"))
    other = Payment("P2", "I9", date(2026, 7, 1), Money.of("50.00", "EUR"))
    snapshot = one(invoices=(part_paid,), payments=(payment, other))
    final_only = replace(ANYTIME, stages=(Stage("final", Anchor.DUE_DATE, 3, charges=True),))
    base = make_settings(final_only)
    claiming = replace(
        base,
        defaults=replace(base.defaults, charges=True),
        charges=ChargeSettings(jurisdiction="NL"),
    )
    (reminder,) = plan(snapshot, claiming).reminders
    assert reminder.charges and reminder.payments == (payment,)
    (quiet,) = plan(snapshot, base).reminders
    assert not quiet.charges and quiet.payments == ()


def test_a_norwegian_final_notice_gives_14_days_and_nothing_follows_before() -> None:
    """Issue 17: the Norwegian final notice is an inkassovarsel (inkassoloven § 9): at
    least 14 days from its sending, and the claim goes to collection only after them."""
    norwegian = customer(
        "C1", country="NO", language="nb", timezone="Europe/Oslo", phones=("+47 22 00 00 00",)
    )
    short = replace(
        ANYTIME,
        stages=(
            Stage("first", Anchor.DUE_DATE, 3),
            Stage("final", Anchor.PREVIOUS, 7),
            Stage("handoff", Anchor.PREVIOUS, 5, channels=("task",)),
        ),
        gap_days=1,
    )
    snapshot = LedgerSnapshot(
        customers=(norwegian,), invoices=(invoice("I1", date(2026, 10, 1), "5000.00", "NOK"),)
    )
    settings_ = make_settings(short)
    first = plan(snapshot, settings_)
    history = sent(first, NOW)
    final_at = NOW + timedelta(days=7)
    final = plan(snapshot, settings_, history, now=final_at)
    (notice,) = final.reminders
    assert notice.stage == "final"
    assert notice.next_step_date == final_at.date() + timedelta(days=14)
    history += sent(final, final_at)
    # The policy says five days; the warning's 14 have not run out until the 15th day.
    assert codes(plan(snapshot, settings_, history, now=final_at + timedelta(days=14))) == {
        "I1": "not_due_yet"
    }
    later = plan(snapshot, settings_, history, now=final_at + timedelta(days=15))
    assert [r.stage for r in later.reminders] == ["handoff"]
