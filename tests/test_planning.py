"""The foundation's first rule, one case per row; and the re-check before sending."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.model import (
    Customer,
    CustomerKind,
    Invoice,
    InvoiceStatus,
    LedgerSnapshot,
    PromiseToPay,
)
from plugin.money import Money
from plugin.planning import SentReminder, plan_reminders, recheck, reminder_key
from plugin.settings import ClientSettings, Company, Policy, Settings

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
TODAY = NOW.date()


def customer(cid: str = "C1", **changes: object) -> Customer:
    base = Customer(
        id=cid,
        name=f"Client {cid}",
        emails=(f"{cid.lower()}@client.example",),
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


def make_settings(**clients: ClientSettings) -> Settings:
    return Settings(
        company=Company(name="Creditor B.V.", email="ar@creditor.example"),
        policy=Policy(first_reminder_after_days=3, minimum={"EUR": Money.of("5", "EUR")}),
        clients=clients,
    )


def plan(
    snapshot: LedgerSnapshot,
    settings: Settings | None = None,
    history: tuple[SentReminder, ...] = (),
    now: datetime = NOW,
):
    return plan_reminders(snapshot, settings or make_settings(), history, now=now, source="ledger")


def skip_codes(result) -> dict[str, str]:
    return {skip.invoice_id: skip.code for skip in result.skips}


OVERDUE = date(2026, 11, 10)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"status": InvoiceStatus.DRAFT}, "draft"),
        ({"status": InvoiceStatus.VOIDED}, "voided"),
        ({"amount_due": Money.of("0", "EUR"), "status": InvoiceStatus.PAID}, "paid"),
        ({"disputed": True}, "disputed"),
        ({"on_hold": True}, "on_hold"),
        ({"due_date": date(2026, 11, 20)}, "not_due_yet"),
    ],
)
def test_invoices_that_are_not_reminded(changes: dict[str, object], code: str) -> None:
    snapshot = LedgerSnapshot(
        customers=(customer(),), invoices=(invoice("I1", OVERDUE, **changes),)
    )
    result = plan(snapshot)
    assert result.reminders == ()
    assert skip_codes(result) == {"I1": code}
    assert all(skip.reason for skip in result.skips)


def test_first_reminder_goes_out_exactly_n_days_after_the_due_date() -> None:
    snapshot = LedgerSnapshot(
        customers=(customer(),), invoices=(invoice("I1", date(2026, 11, 19)),)
    )
    result = plan(snapshot)
    assert [r.stage for r in result.reminders] == ["first"]
    day_before = plan(snapshot, now=datetime(2026, 11, 21, 22, 59, tzinfo=UTC))
    assert skip_codes(day_before) == {"I1": "not_due_yet"}


def test_the_day_is_the_clients_own_day() -> None:
    # 23:30 UTC on the 22nd is already the 23rd in Ho Chi Minh City, still the 22nd in London.
    late = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    due = date(2026, 11, 20)
    saigon = customer("C1", timezone="Asia/Ho_Chi_Minh", country="VN", language="vi")
    london = customer("C2", timezone="Europe/London", country="GB", language="en")
    snapshot = LedgerSnapshot(
        customers=(saigon, london),
        invoices=(invoice("I1", due, customer_id="C1"), invoice("I2", due, customer_id="C2")),
    )
    result = plan(snapshot, now=late)
    assert [r.customer.id for r in result.reminders] == ["C1"]
    assert skip_codes(result) == {"I2": "not_due_yet"}


def test_excluded_and_paused_clients() -> None:
    snapshot = LedgerSnapshot(
        customers=(customer("C1"), customer("C2"), customer("C3")),
        invoices=(
            invoice("I1", OVERDUE, customer_id="C1"),
            invoice("I2", OVERDUE, customer_id="C2"),
            invoice("I3", OVERDUE, customer_id="C3"),
        ),
    )
    settings = make_settings(
        C1=ClientSettings(excluded=True),
        C2=ClientSettings(pause_until=TODAY, pause_reason="payment plan"),
        C3=ClientSettings(pause_until=date(2026, 11, 21)),
    )
    result = plan(snapshot, settings)
    assert skip_codes(result) == {"I1": "excluded", "I2": "paused"}
    assert "payment plan" in next(s.reason for s in result.skips if s.code == "paused")
    assert [r.customer.id for r in result.reminders] == ["C3"]


def test_a_running_promise_holds_reminders_and_a_passed_one_does_not() -> None:
    snapshot = LedgerSnapshot(
        customers=(customer(),),
        invoices=(invoice("I1", OVERDUE), invoice("I2", OVERDUE)),
        promises=(
            PromiseToPay("I1", promised_date=TODAY, recorded_on=date(2026, 11, 15)),
            PromiseToPay("I2", promised_date=date(2026, 11, 21), recorded_on=date(2026, 11, 15)),
        ),
    )
    result = plan(snapshot)
    assert skip_codes(result) == {"I1": "promised"}
    assert [i.id for i in result.reminders[0].invoices] == ["I2"]


def test_one_reminder_per_client_and_currency_and_never_twice() -> None:
    snapshot = LedgerSnapshot(
        customers=(customer(),),
        invoices=(
            invoice("I1", OVERDUE),
            invoice("I2", date(2026, 10, 1)),
            invoice("I3", OVERDUE, currency="GBP"),
        ),
    )
    first = plan(snapshot)
    assert [(r.currency, [i.id for i in r.invoices]) for r in first.reminders] == [
        ("EUR", ["I2", "I1"]),
        ("GBP", ["I3"]),
    ]
    assert first.reminders[0].amount_due == Money.of("200", "EUR")
    history = tuple(
        SentReminder(r.key, r.customer.id, tuple(i.id for i in r.invoices), r.stage, r.channel, NOW)
        for r in first.reminders
    )
    again = plan(snapshot, history=history)
    assert again.reminders == ()
    assert set(skip_codes(again).values()) == {"already_reminded"}


def test_minimum_amount_and_missing_address() -> None:
    snapshot = LedgerSnapshot(
        customers=(customer("C1"), customer("C2", emails=())),
        invoices=(
            invoice("I1", OVERDUE, amount="4.99", customer_id="C1"),
            invoice("I2", OVERDUE, customer_id="C2"),
        ),
    )
    result = plan(snapshot)
    assert result.reminders == ()
    assert skip_codes(result) == {"I1": "below_minimum", "I2": "no_channel"}


def test_client_settings_choose_language_and_tone() -> None:
    snapshot = LedgerSnapshot(customers=(customer(),), invoices=(invoice("I1", OVERDUE),))
    result = plan(snapshot, make_settings(C1=ClientSettings(language="fr", tone="firm")))
    (reminder,) = result.reminders
    assert (reminder.language, reminder.tone) == ("fr", "firm")


def test_keys_are_deterministic_and_distinguish_what_matters() -> None:
    key = reminder_key("ledger", "C1", ["I2", "I1"], "first", "email")
    assert key == reminder_key("ledger", "C1", ["I1", "I2"], "first", "email")
    others = {
        reminder_key("ledger", "C1", ["I1"], "first", "email"),
        reminder_key("ledger", "C1", ["I1", "I2"], "second", "email"),
        reminder_key("ledger", "C1", ["I1", "I2"], "first", "sms"),
        reminder_key("xero:1", "C1", ["I1", "I2"], "first", "email"),
    }
    assert key not in others and len(others) == 4


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
    fresh = LedgerSnapshot(
        customers=snapshot.customers,
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


statuses = st.sampled_from(list(InvoiceStatus))


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            statuses,
            st.booleans(),
            st.booleans(),
            st.integers(min_value=-60, max_value=30),
            st.sampled_from(["0.00", "3.00", "250.00"]),
        ),
        min_size=1,
        max_size=12,
    ),
    paused=st.booleans(),
)
def test_never_a_reminder_for_what_must_not_be_chased(rows, paused) -> None:
    invoices = []
    for index, (status, disputed, on_hold, due_offset, amount) in enumerate(rows):
        due = date.fromordinal(TODAY.toordinal() + due_offset)
        due_amount = Money.of(amount, "EUR")
        invoices.append(
            Invoice(
                id=f"I{index}",
                number=f"N{index}",
                customer_id="C1",
                issue_date=date(2026, 1, 1),
                due_date=due,
                total=Money.of("250.00", "EUR"),
                amount_due=due_amount,
                status=status,
                disputed=disputed,
                on_hold=on_hold,
            )
        )
    snapshot = LedgerSnapshot(customers=(customer(),), invoices=tuple(invoices))
    settings_ = make_settings(C1=ClientSettings(pause_until=TODAY if paused else None))
    result = plan(snapshot, settings_)
    again = plan(snapshot, settings_)
    assert result == again
    reminded = [i for r in result.reminders for i in r.invoices]
    for item in reminded:
        assert item.is_open and not item.disputed and not item.on_hold
        assert item.due_date.toordinal() + 3 <= TODAY.toordinal()
    if paused:
        assert reminded == []
    # Every invoice is either reminded or explained, never both, never neither.
    explained = {skip.invoice_id for skip in result.skips}
    assert explained.isdisjoint(i.id for i in reminded)
    assert explained | {i.id for i in reminded} == {i.id for i in invoices}
