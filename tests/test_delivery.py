"""Delivering reminders: SMTP and SMS for real on loopback, fallback, notes, recovery.

The SMS gateways on their own run their contract in tests/test_sms_gateways.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin.deliver.phones import e164
from plugin.run import CLIENT_SCOPE, Kindly
from tests.conftest import DEMO_NOW
from tests.fakes.sms import ACCOUNT, TOKEN, FakeSmsGateways
from tests.fakes.smtp import SmtpServer, start_smtp


@pytest.fixture(autouse=True)
def invoices_only(demo_workspace: Path) -> None:
    """These tests count invoice reminders: the demo's appointments (due tomorrow) would
    add appointment reminders of their own (tests/test_caldav.py covers those)."""
    (demo_workspace / "ledger" / "appointments.json").write_text("[]", encoding="utf-8")


@pytest.fixture
def gateways() -> Iterator[FakeSmsGateways]:
    fake = FakeSmsGateways()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path)
    yield server
    server.stop()


def test_numbers_become_e164() -> None:
    assert e164("06 1234 5678", "NL") == "+31612345678"
    assert e164("+47 412 34 567", "NL") == "+4741234567"
    assert e164("020 555 0141", "NL") == "+31205550141"
    assert e164("12", "NL") is None
    assert e164("not a number", "DE") is None


def configure(workspace: Path, smtp: SmtpServer, gateways: FakeSmsGateways) -> None:
    config = workspace / "kindly.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("[delivery]\n", '[delivery]\nemail_via = "smtp"\n', 1)
    text += f"""
[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
# Tries again at once: a test never waits.
retry_wait = 0

[sms]
gateway = "twilio"
sender = "Noordlicht"
account = "{ACCOUNT}"
api_url = "{gateways.url}"
"""
    config.write_text(text, encoding="utf-8")


def open_kindly(workspace: Path) -> Kindly:
    """The workspace as the CLI wires it: its ledger, store, and SMS gateway if any."""
    from plugin.app.cli import open_workspace

    return open_workspace(workspace / "kindly.toml")


def set_customer(workspace: Path, client: str, **fields: object) -> None:
    path = workspace / "ledger" / "customers.json"
    customers = json.loads(path.read_text(encoding="utf-8"))
    for customer in customers:
        if customer["id"] == client:
            customer.update(fields)
    path.write_text(json.dumps(customers, ensure_ascii=False), encoding="utf-8")


def test_smtp_delivery_with_fallback_to_sms_and_notes(
    demo_workspace: Path,
    smtp: SmtpServer,
    gateways: FakeSmsGateways,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KINDLY_SMS_TOKEN", TOKEN)
    configure(demo_workspace, smtp, gateways)
    # C01's mailbox is gone: the server refuses it, and C01 takes SMS next.
    set_customer(
        demo_workspace, "C01", email="nobody@bakkerijvandijk.example", phone="06 1234 5678"
    )
    kindly = open_kindly(demo_workspace)
    kindly.store.set_setting(CLIENT_SCOPE + "C01", "channels", ["email", "sms"], DEMO_NOW)
    kindly = open_kindly(demo_workspace)
    kindly.sync(DEMO_NOW)
    plan = kindly.plan(DEMO_NOW)
    (c01,) = [r for r in plan.reminders if r.customer.id == "C01"]
    assert (c01.channel, c01.fallbacks) == ("email", ("sms",))
    result = kindly.send(plan, DEMO_NOW)

    # Every invoice reminder but C01's.
    emailed = len(plan.reminders) - 1
    assert len(smtp.received) == emailed, "one connection, every other reminder by e-mail"
    assert kindly.channels["email"].mailer.connections_opened == 1  # type: ignore[attr-defined]
    (sms,) = gateways.messages
    assert sms.to == "+31612345678" and sms.sender == "Noordlicht"
    invoice_channels = {r.customer.id: r.channel for r, _ in result.sent if r.invoices}
    assert invoice_channels["C01"] == "sms"
    (failure,) = result.failed
    assert failure[0].channel == "email" and "550" in failure[1]
    records = {(r.customer_id, r.channel): r for r in kindly.store.reminders()}
    assert records[("C01", "email")].status == "failed"
    assert records[("C01", "sms")].status == "sent"
    notes = [
        json.loads(line)
        for line in (demo_workspace / "ledger" / "kindly-notes.jsonl").read_text().splitlines()
    ]
    c01_notes = [n["text"] for n in notes if n["customer_id"] == "C01"]
    assert any("niet per e-mail versturen" in t and "per sms" in t for t in c01_notes), c01_notes
    assert any("per sms gestuurd" in t for t in c01_notes), c01_notes

    # The next run sends nothing: not the e-mail that failed, not the SMS that went.
    again = open_kindly(demo_workspace)
    again.sync(DEMO_NOW)
    second = again.send(again.plan(DEMO_NOW), DEMO_NOW)
    assert second.sent == [] and len(smtp.received) == emailed and len(gateways.messages) == 1


def test_a_busy_mailbox_is_tried_again_on_the_next_run(
    demo_workspace: Path,
    smtp: SmtpServer,
    gateways: FakeSmsGateways,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KINDLY_SMS_TOKEN", TOKEN)
    configure(demo_workspace, smtp, gateways)
    set_customer(demo_workspace, "C01", email="later@bakkerijvandijk.example")
    kindly = open_kindly(demo_workspace)
    kindly.sync(DEMO_NOW)
    result = kindly.send(kindly.plan(DEMO_NOW), DEMO_NOW)
    (deferred,) = result.deferred
    assert deferred[0].customer.id == "C01" and "451" in deferred[1]
    assert not gateways.messages, "a temporary failure does not fall back"
    # The mailbox accepts again; the next run sends it, once.
    set_customer(demo_workspace, "C01", email="administratie@bakkerijvandijk.example")
    again = open_kindly(demo_workspace)
    again.sync(DEMO_NOW)
    second = again.send(again.plan(DEMO_NOW), DEMO_NOW)
    assert [r.customer.id for r, _ in second.sent] == ["C01"]
    assert sum(1 for m in smtp.received if "bakkerijvandijk" in m.recipients[0]) == 1


def test_history_is_rebuilt_from_the_notes_after_losing_the_store(demo_workspace: Path) -> None:
    from click.testing import CliRunner

    from plugin.app.cli import cli

    config = demo_workspace / "kindly.toml"
    runner = CliRunner()
    at = ["--at", DEMO_NOW.isoformat()]
    first = runner.invoke(cli, ["--config", str(config), "run", *at])
    assert first.exit_code == 0, first.output
    sent = len(list((demo_workspace.parent / "outbox").glob("*.eml")))
    assert sent >= 10
    store_file = next(demo_workspace.glob("*.sqlite3"))
    store_file.unlink()  # the store is lost; the ledger keeps its notes
    for extra in demo_workspace.glob("*.sqlite3-*"):
        extra.unlink()
    rebuilt = runner.invoke(cli, ["--config", str(config), "history", "--rebuild", *at])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"Restored {sent} reminders" in rebuilt.output
    again = runner.invoke(cli, ["--config", str(config), "run", *at])
    assert again.exit_code == 0 and "Sent nothing new" in again.output, again.output
    assert len(list((demo_workspace.parent / "outbox").glob("*.eml"))) == sent
    notes = (demo_workspace / "ledger" / "kindly-notes.jsonl").read_text().splitlines()
    assert len(notes) == sent, "no note written twice"
    twice = runner.invoke(cli, ["--config", str(config), "history", "--rebuild", *at])
    assert "Restored 0 reminders" in twice.output


def test_a_refused_gateway_token_stops_the_batch_and_leaves_nothing_unconfirmed(
    demo_workspace: Path,
    smtp: SmtpServer,
    gateways: FakeSmsGateways,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway answered 401 to the hand-over: nothing left, so the reminder is not
    "unconfirmed"; the e-mails go on and are noted; the next run sends the SMS."""
    monkeypatch.setenv("KINDLY_SMS_TOKEN", "a-wrong-token-9876543210")
    configure(demo_workspace, smtp, gateways)
    set_customer(demo_workspace, "C01", phone="06 1234 5678")
    kindly = open_kindly(demo_workspace)
    kindly.store.set_setting(CLIENT_SCOPE + "C01", "channels", ["sms"], DEMO_NOW)
    kindly = open_kindly(demo_workspace)
    kindly.sync(DEMO_NOW)
    plan = kindly.plan(DEMO_NOW)
    (c01,) = [r for r in plan.reminders if r.customer.id == "C01"]
    assert c01.channel == "sms"
    result = kindly.send(plan, DEMO_NOW)
    assert result.stopped is not None and "401" in str(result.stopped)
    assert gateways.messages == []
    assert len(result.sent) == len(plan.reminders) - 1, "the e-mails went"
    assert kindly.store.reminder(c01.key) is None, "given back: planned afresh next run"
    assert all(r.status == "sent" for r in kindly.store.reminders())
    assert result.notes_written == len(result.sent)

    monkeypatch.setenv("KINDLY_SMS_TOKEN", TOKEN)
    again = open_kindly(demo_workspace)
    again.sync(DEMO_NOW)
    second = again.send(again.plan(DEMO_NOW), DEMO_NOW)
    assert second.stopped is None
    assert [r.customer.id for r, _ in second.sent if r.invoices] == ["C01"]
    assert len(gateways.messages) == 1
