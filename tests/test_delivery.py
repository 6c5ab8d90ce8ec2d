"""Delivering reminders: SMTP and SMS for real on loopback, fallback, notes, recovery.

The SMS gateways on their own run their contract in tests/test_sms_gateways.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin.core.decisions import Plan, PlannedReminder
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


def configure(
    workspace: Path, smtp: SmtpServer, gateways: FakeSmsGateways, connections: int = 1
) -> None:
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
connections = {connections}

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


def planned_on(
    workspace: Path, client: str, channels: list[str]
) -> tuple[Kindly, Plan, PlannedReminder]:
    """The workspace synced and planned with ``client`` set to ``channels`` (first, then
    fallbacks) in Kindly's own settings; the plan and that client's reminder in it."""
    kindly = open_kindly(workspace)
    kindly.store.set_setting(CLIENT_SCOPE + client, "channels", channels, DEMO_NOW)
    kindly = open_kindly(workspace)
    kindly.sync(DEMO_NOW)
    plan = kindly.plan(DEMO_NOW)
    (reminder,) = [r for r in plan.reminders if r.customer.id == client]
    return kindly, plan, reminder


def set_customer(workspace: Path, client: str, **fields: object) -> None:
    path = workspace / "ledger" / "customers.json"
    customers = json.loads(path.read_text(encoding="utf-8"))
    for customer in customers:
        if customer["id"] == client:
            customer.update(fields)
    path.write_text(json.dumps(customers, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize("connections", [1, 4])
def test_smtp_delivery_with_fallback_to_sms_and_notes(
    demo_workspace: Path,
    smtp: SmtpServer,
    gateways: FakeSmsGateways,
    monkeypatch: pytest.MonkeyPatch,
    connections: int,
) -> None:
    """With one connection, and with four at once ([smtp] connections): the same
    messages, each once, the same fallback and notes."""
    monkeypatch.setenv("KINDLY_SMS_TOKEN", TOKEN)
    configure(demo_workspace, smtp, gateways, connections)
    # C01's mailbox is gone: the server refuses it, and C01 takes SMS next.
    set_customer(
        demo_workspace, "C01", email="nobody@bakkerijvandijk.example", phone="06 1234 5678"
    )
    kindly, plan, c01 = planned_on(demo_workspace, "C01", ["email", "sms"])
    assert (c01.channel, c01.fallbacks) == ("email", ("sms",))
    result = kindly.send(plan, DEMO_NOW)

    # Every invoice reminder but C01's.
    emailed = len(plan.reminders) - 1
    assert len(smtp.received) == emailed, "every other reminder by e-mail"
    assert len({m.message["Message-ID"] for m in smtp.received}) == emailed, "each once"
    used = {m.peer for m in smtp.received}
    if connections == 1:
        assert kindly.channels["email"].mailer.connections_opened == 1  # type: ignore[attr-defined]
        assert len(used) == 1
    else:
        assert 1 < len(used) <= connections, used
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


@pytest.mark.parametrize("connections", [1, 4])
def test_a_refused_smtp_login_stops_every_connection_and_gives_every_claim_back(
    demo_workspace: Path,
    tmp_path: Path,
    gateways: FakeSmsGateways,
    monkeypatch: pytest.MonkeyPatch,
    connections: int,
) -> None:
    """A wrong password: no message leaves on any connection, none is unconfirmed, each is
    deferred and given back; with the right one, the next run sends each once."""
    from tests.fakes.smtp import PASSWORD, USER

    server = start_smtp(tmp_path, "starttls")
    try:
        configure(demo_workspace, server, gateways, connections)
        config = demo_workspace / "kindly.toml"
        text = config.read_text(encoding="utf-8").replace(
            'security = "none"', f'security = "starttls"\nusername = "{USER}"'
        )
        config.write_text(text, encoding="utf-8")
        monkeypatch.setenv("KINDLY_SMTP_PASSWORD", "not-the-password")
        monkeypatch.setenv("KINDLY_SMS_TOKEN", TOKEN)
        monkeypatch.setattr("ssl.create_default_context", lambda *a, **k: server.client_context)
        kindly = open_kindly(demo_workspace)
        kindly.sync(DEMO_NOW)
        plan = kindly.plan(DEMO_NOW)
        result = kindly.send(plan, DEMO_NOW)
        assert result.stopped is not None and "refused the login" in str(result.stopped)
        assert "not-the-password" not in str(result.stopped)
        assert (result.sent, result.unconfirmed) == ([], [])
        assert len(result.deferred) == len(plan.reminders)
        assert kindly.store.reminders() == [], "every claim given back"
        assert server.received == []

        monkeypatch.setenv("KINDLY_SMTP_PASSWORD", PASSWORD)
        again = open_kindly(demo_workspace)
        again.sync(DEMO_NOW)
        second = again.send(again.plan(DEMO_NOW), DEMO_NOW)
        assert second.stopped is None and len(second.sent) == len(plan.reminders)
        ids = [m.message["Message-ID"] for m in server.received]
        assert len(ids) == len(set(ids)) == len(plan.reminders)
    finally:
        server.stop()


def test_connections_the_server_turns_away_hand_their_messages_to_the_others(
    demo_workspace: Path,
    tmp_path: Path,
    gateways: FakeSmsGateways,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four connections asked for, a server that takes two at once (as providers limit
    them): the two it turns away leave their messages to the others; each goes once,
    none is deferred."""
    monkeypatch.setenv("KINDLY_SMS_TOKEN", TOKEN)
    server = start_smtp(tmp_path, max_connections=2)
    try:
        configure(demo_workspace, server, gateways, connections=4)
        kindly = open_kindly(demo_workspace)
        kindly.sync(DEMO_NOW)
        plan = kindly.plan(DEMO_NOW)
        result = kindly.send(plan, DEMO_NOW)
        assert result.deferred == [] and result.stopped is None
        assert len(result.sent) == len(plan.reminders)
        ids = [m.message["Message-ID"] for m in server.received]
        assert len(ids) == len(set(ids)) == len(plan.reminders)
        assert server.handler.most_connections == 2
        assert len({m.peer for m in server.received}) <= 2
    finally:
        server.stop()


def test_with_more_connections_a_fallback_to_email_goes_through_them(
    demo_workspace: Path,
    tmp_path: Path,
    gateways: FakeSmsGateways,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SMS first for C05, its number refused for good: the e-mail it falls back to goes by
    one of the two connections asked for, never a third (the server takes two)."""
    monkeypatch.setenv("KINDLY_SMS_TOKEN", TOKEN)
    server = start_smtp(tmp_path, max_connections=2)
    try:
        configure(demo_workspace, server, gateways, connections=2)
        set_customer(demo_workspace, "C05", phone="+33 6 12 34 00 00")
        kindly, plan, c05 = planned_on(demo_workspace, "C05", ["sms", "email"])
        assert (c05.channel, c05.fallbacks) == ("sms", ("email",))
        result = kindly.send(plan, DEMO_NOW)
        assert result.deferred == [] and result.stopped is None
        (failed,) = result.failed
        assert failed[0].channel == "sms"
        channels = {r.customer.id: r.channel for r, _ in result.sent}
        assert channels["C05"] == "email"
        assert len(server.received) == len(plan.reminders)
        assert server.handler.most_connections <= 2
    finally:
        server.stop()


def test_a_send_stopped_midway_accounts_for_what_its_connections_did(
    demo_workspace: Path,
    tmp_path: Path,
    gateways: FakeSmsGateways,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lease is lost after the first claims (another process took the organisation
    over): what the four connections sent is in the summary and logged sent, a message the
    server refused after its end is logged failed, not left half-way; the rest is given
    back, and the next run sends it, each once."""
    import plugin.run
    from plugin.state.leases import Lease, LeaseLost

    monkeypatch.setenv("KINDLY_SMS_TOKEN", TOKEN)
    monkeypatch.setattr(plugin.run, "CLAIM_BATCH", 4)
    renewals = {"count": 0}
    renew = Lease.renew

    def lost_at_the_second(self: Lease) -> None:
        renewals["count"] += 1
        if renewals["count"] == 2:
            raise LeaseLost("the organisation's lease went to another process")
        renew(self)

    monkeypatch.setattr(Lease, "renew", lost_at_the_second)
    server = start_smtp(tmp_path)
    try:
        configure(demo_workspace, server, gateways, connections=4)
        server.fail("END", "554 5.7.1 Message rejected")
        kindly = open_kindly(demo_workspace)
        kindly.sync(DEMO_NOW)
        plan = kindly.plan(DEMO_NOW)
        result = kindly.send(plan, DEMO_NOW)
        assert isinstance(result.stopped, LeaseLost)
        entries = {r.key: r for r in kindly.store.reminders()}
        sent = {r.key for r, _ in result.sent}
        assert sent and sent == {k for k, r in entries.items() if r.status == "sent"}
        assert len(server.received) == len(sent)
        (refused,) = result.failed
        assert entries[refused[0].key].status == "failed", "logged, not left half-way"
        assert all(r.status in ("sent", "failed") for r in entries.values())

        monkeypatch.setattr(Lease, "renew", renew)
        again = open_kindly(demo_workspace)
        again.sync(DEMO_NOW)
        second = again.send(again.plan(DEMO_NOW), DEMO_NOW)
        assert second.stopped is None and second.recovered_unconfirmed == []
        ids = [m.message["Message-ID"] for m in server.received]
        assert len(ids) == len(set(ids)) == len(plan.reminders) - 1
    finally:
        server.stop()
