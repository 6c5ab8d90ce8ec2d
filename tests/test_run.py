"""Sync → plan → send → write back, and recovery when a run dies at any step."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from integrations.bookkeeping.ledger import NOTES_FILE, LocalLedger
from plugin.app.wiring import workspace_for
from plugin.config.settings import load_settings
from plugin.core.decisions import Plan
from plugin.core.model import Note
from plugin.deliver.files import Outbox
from plugin.run import Kindly, SendResult
from plugin.state.store import Store

from .conftest import DEMO_NOW


class Crash(BaseException):
    """Stands in for the process dying: nothing catches it on the way out."""


@pytest.fixture(autouse=True)
def invoices_only(demo_workspace: Path) -> None:
    """These tests count invoice reminders: the demo's appointments (due tomorrow) would
    add appointment reminders of their own (tests/test_caldav.py covers those)."""
    (demo_workspace / "ledger" / "appointments.json").write_text("[]", encoding="utf-8")


def open_kindly(workspace: Path) -> Kindly:
    settings = load_settings(workspace / "kindly.toml")
    store = Store.open(settings.store_url)
    (ledger,) = LocalLedger.open(workspace_for(settings, store))
    return Kindly(settings, store, ledger)


def notes_by_key(workspace: Path) -> Counter[str]:
    path = workspace / "ledger" / NOTES_FILE
    if not path.exists():
        return Counter()
    lines = path.read_text(encoding="utf-8").splitlines()
    return Counter(json.loads(line)["reminder_key"] for line in lines)


def outbox_keys(workspace: Path) -> Counter[str]:
    settings = load_settings(workspace / "kindly.toml")
    return Counter(path.name.rsplit("-", 1)[1][:-4] for path in settings.outbox.glob("*.eml"))


def full_run(workspace: Path) -> tuple[Kindly, Plan, SendResult]:
    kindly = open_kindly(workspace)
    kindly.sync(DEMO_NOW)
    plan = kindly.plan(DEMO_NOW)
    return kindly, plan, kindly.send(plan, DEMO_NOW)


def expected_keys(workspace: Path) -> set[str]:
    kindly = open_kindly(workspace)
    kindly.sync(DEMO_NOW)
    return {reminder.key[:12] for reminder in kindly.plan(DEMO_NOW).reminders}


def test_a_clean_run_sends_each_reminder_once_and_notes_it(demo_workspace: Path) -> None:
    _, plan, result = full_run(demo_workspace)
    assert len(result.sent) == len(plan.reminders) > 0
    assert result.failed == [] and result.notes_pending == []
    assert result.notes_written == len(plan.reminders)
    assert set(outbox_keys(demo_workspace)) == {r.key[:12] for r in plan.reminders}
    assert set(notes_by_key(demo_workspace)) == {r.key for r in plan.reminders}

    _, plan_again, again = full_run(demo_workspace)
    assert plan_again.reminders == () and again.sent == [] and again.notes_written == 0


def _crash_inside(
    monkeypatch: pytest.MonkeyPatch, owner: type, method: str, *, after: bool, on_call: int = 2
) -> None:
    """Make the on_call-th call of owner.method die, before or after doing its work."""
    original = getattr(owner, method)
    calls = {"n": 0}

    def dying(self: object, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == on_call and not after:
            raise Crash(method)
        result = original(self, *args, **kwargs)
        if calls["n"] == on_call and after:
            raise Crash(method)
        return result

    monkeypatch.setattr(owner, method, dying)


#: Called once for the demo's whole batch, so the first call is the one to die in.
ONCE_A_BATCH = ("mark_sent_many", "write_notes", "mark_notes_written")


@pytest.mark.parametrize(
    ("owner", "method", "after"),
    [
        (Store, "hand_over", False),
        (Store, "hand_over", True),
        (Outbox, "deliver", False),
        (Outbox, "deliver", True),
        (Store, "mark_sent_many", False),
        (Store, "mark_sent_many", True),
        (LocalLedger, "write_notes", False),
        (LocalLedger, "write_notes", True),
        (Store, "mark_notes_written", False),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_a_run_that_dies_is_completed_by_the_next_without_duplicates(
    demo_workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    owner: type,
    method: str,
    after: bool,
) -> None:
    wanted = expected_keys(demo_workspace)
    with monkeypatch.context() as patch:
        _crash_inside(patch, owner, method, after=after, on_call=1 if method in ONCE_A_BATCH else 2)
        with pytest.raises(Crash):
            full_run(demo_workspace)

    full_run(demo_workspace)
    full_run(demo_workspace)

    sent = outbox_keys(demo_workspace)
    assert set(sent) == wanted
    assert set(sent.values()) == {1}, "a reminder was written twice"
    notes = notes_by_key(demo_workspace)
    assert {key[:12] for key in notes} == wanted
    assert set(notes.values()) == {1}, "a note was written twice"
    records = open_kindly(demo_workspace).store.reminders()
    assert {r.status for r in records} == {"sent"}
    assert all(r.note_written_at for r in records)


def test_a_note_that_cannot_be_written_is_retried(
    demo_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: LocalLedger, notes: Sequence[Note]) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(LocalLedger, "_append", refuse)
        _, plan, result = full_run(demo_workspace)
    assert len(result.sent) == len(plan.reminders)
    assert len(result.notes_pending) == len(plan.reminders)
    assert "No space left" in result.notes_pending[0][1]
    assert notes_by_key(demo_workspace) == Counter()

    _, _, retry = full_run(demo_workspace)
    assert retry.sent == [] and retry.notes_written == len(plan.reminders)
    assert set(notes_by_key(demo_workspace).values()) == {1}


def test_an_invoice_paid_after_the_sync_is_not_chased(demo_workspace: Path) -> None:
    kindly = open_kindly(demo_workspace)
    kindly.sync(DEMO_NOW)
    plan = kindly.plan(DEMO_NOW)
    target = plan.reminders[0]
    paid = target.invoices[0]
    payments = demo_workspace / "ledger" / "payments.json"
    data = json.loads(payments.read_text(encoding="utf-8"))
    data.append(
        {
            "id": "PAY-LATE",
            "invoice_id": paid.id,
            "date": "2026-11-22",
            "amount": str(paid.amount_due.amount),
            "currency": paid.currency,
        }
    )
    payments.write_text(json.dumps(data), encoding="utf-8")

    result = kindly.send(plan, DEMO_NOW)
    assert target.key not in {reminder.key for reminder, _ in result.sent}
    assert {skip.invoice_id for skip in result.dropped} >= {paid.id}
    assert len(result.sent) == len(plan.reminders) - 1


def test_an_outbox_that_cannot_be_written_defers_the_reminder_not_the_run(
    demo_workspace: Path,
) -> None:
    settings = load_settings(demo_workspace / "kindly.toml")
    settings.outbox.parent.mkdir(parents=True, exist_ok=True)
    settings.outbox.write_text("a file where the outbox folder should be", encoding="utf-8")
    _, plan, result = full_run(demo_workspace)
    assert result.sent == [] and result.failed == []
    assert len(result.deferred) == len(plan.reminders)
    assert "outbox" in result.deferred[0][1]
    records = open_kindly(demo_workspace).store.reminders()
    assert {r.status for r in records} == {"deferred"}
    assert notes_by_key(demo_workspace) == Counter()


def test_settings_for_an_unknown_client_stop_the_sync(demo_workspace: Path) -> None:
    config = demo_workspace / "kindly.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[clients.C99]\ntone = "firm"\n', encoding="utf-8"
    )
    kindly = open_kindly(demo_workspace)
    with pytest.raises(Exception, match=r"clients\.C99"):
        kindly.sync(DEMO_NOW)


def test_an_invoice_pdf_in_the_ledger_is_attached(demo_workspace: Path) -> None:
    import email
    import email.policy

    kindly = open_kindly(demo_workspace)
    kindly.sync(DEMO_NOW)
    target = kindly.plan(DEMO_NOW).reminders[0]
    invoice = target.invoices[0]
    (demo_workspace / "ledger" / "pdf").mkdir()
    (demo_workspace / "ledger" / "pdf" / f"{invoice.number}.pdf").write_bytes(b"%PDF-1.7 x")
    result = kindly.send(kindly.plan(DEMO_NOW), DEMO_NOW)
    (detail,) = [p for r, p in result.sent if r.key == target.key]
    path = Path(detail)
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    attachments = {a.get_filename(): a.get_content() for a in parsed.iter_attachments()}
    assert attachments == {f"{invoice.number}.pdf": b"%PDF-1.7 x"}
    others = [Path(p) for r, p in result.sent if r.key != target.key and r.channel == "email"]
    other = email.message_from_bytes(others[0].read_bytes(), policy=email.policy.default)
    assert list(other.iter_attachments()) == []


def test_two_pdfs_whose_numbers_read_alike_keep_two_names(demo_workspace: Path) -> None:
    import email
    import email.policy
    import json

    kindly = open_kindly(demo_workspace)
    kindly.sync(DEMO_NOW)
    target = next(r for r in kindly.plan(DEMO_NOW).reminders if len(r.invoices) >= 2)
    first, second = (invoice.id for invoice in target.invoices[:2])
    ledger = demo_workspace / "ledger"
    rows = json.loads((ledger / "invoices.json").read_text(encoding="utf-8"))
    for row in rows:
        row["number"] = {first: "2026/17", second: "2026-17"}.get(row["id"], row["number"])
    (ledger / "invoices.json").write_text(json.dumps(rows), encoding="utf-8")
    (ledger / "pdf").mkdir()
    (ledger / "pdf" / f"{first}.pdf").write_bytes(b"%PDF-1.7 slash")
    (ledger / "pdf" / f"{second}.pdf").write_bytes(b"%PDF-1.7 dash")
    kindly.sync(DEMO_NOW)
    result = kindly.send(kindly.plan(DEMO_NOW), DEMO_NOW)
    (detail,) = [p for r, p in result.sent if r.key == target.key]
    parsed = email.message_from_bytes(Path(detail).read_bytes(), policy=email.policy.default)
    attachments = {a.get_filename(): a.get_content() for a in parsed.iter_attachments()}
    assert attachments == {"2026-17.pdf": b"%PDF-1.7 slash", "2026-17-2.pdf": b"%PDF-1.7 dash"}


def test_notes_write_amounts_as_the_company_does(demo_workspace: Path) -> None:
    """Review (low): a Dutch note read "NS-0134: £1,850.00 openstaand"; the company's
    language writes "£ 1.850,00", whatever the client's."""
    full_run(demo_workspace)
    path = demo_workspace / "ledger" / NOTES_FILE
    texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
    pounds = [text for text in texts if "£" in text]
    assert pounds and all(re.search(r"£\s\d{1,3}(\.\d{3})*,\d\d openstaand", t) for t in pounds)
    assert not any(re.search(r"\d,\d{3}\.\d\d", text) for text in texts)
