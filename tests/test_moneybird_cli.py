"""`kindly connect moneybird`, `sync`, `plan`, `run` and `disconnect moneybird` end to end
on a fake Moneybird: the reminders in the outbox in each client's language with the PDFs
attached, the notes on the invoices, the second run incremental, Moneybird's own
reminders holding Kindly back, and a webhook signed with the secret kept at connect."""

from __future__ import annotations

import collections
import email
import email.policy
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from plugin.app.cli import cli
from tests.fakes.moneybird import FakeMoneybird
from tests.moneybird_harness import seed_small_administration

AT = "2026-11-24T10:00:00+01:00"


@pytest.fixture
def fake() -> Iterator[FakeMoneybird]:
    server = FakeMoneybird()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env(fake: FakeMoneybird) -> dict[str, str]:
    return {
        "KINDLY_SECRET_KEY": Fernet.generate_key().decode(),
        "KINDLY_MONEYBIRD_CLIENT_SECRET": fake.client_secret,
        "COLUMNS": "200",
    }


def write_config(folder: Path, fake: FakeMoneybird, extra: str = "") -> Path:
    endpoints = "\n".join(f'{key} = "{value}"' for key, value in fake.endpoints().items())
    config = folder / "kindly.toml"
    config.write_text(
        f"""connector = "moneybird"

[company]
name = "Noordlicht Studio B.V."
email = "ar@noordlicht.example"
country = "NL"

[bank]
account_holder = "Noordlicht Studio B.V."
iban = "NL91ABNA0417164300"

[policy]
send_window = "always"

[delivery]
outbox = "outbox"

[store]
url = "sqlite:///state.sqlite3"

[moneybird]
client_id = "{fake.client_id}"
redirect_port = 0
{endpoints}
{extra}
""",
        encoding="utf-8",
    )
    return config


def connect(runner: CliRunner, base: list[str], fake: FakeMoneybird, env: dict[str, str]) -> str:
    refresh = fake.issue_tokens()["refresh_token"]
    connected = runner.invoke(
        cli,
        [*base, "--org", fake.administration, "connect", "moneybird", "--refresh-token", refresh],
        env=env,
    )
    assert connected.exit_code == 0, connected.output
    return " ".join(connected.output.split())


def test_connect_run_and_run_again_against_moneybird(
    fake: FakeMoneybird, tmp_path: Path, env: dict[str, str]
) -> None:
    seeded = seed_small_administration(fake)
    fake.tick(minutes=5)
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    said = connect(runner, base, fake, env)
    assert f"Connected Moneybird: {fake.book().name}" in said
    planned = runner.invoke(cli, [*base, "sync", "--at", AT], env=env)
    assert planned.exit_code == 0, planned.output
    plan = json.loads(runner.invoke(cli, [*base, "plan", "--json", "--at", AT], env=env).output)
    reminders = {r["customer"]: r for r in plan["reminders"]}
    # Karl's invoices are in German; Sam's direct debit is on its way: no reminder.
    assert reminders["Karl GmbH"]["language"] == "de"
    assert "Sam de Vries" not in reminders
    assert plan["held"] is False

    first = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert first.exit_code == 0, first.output
    outbox = sorted((tmp_path / "outbox").glob("*.eml"))
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in outbox
    ]
    ada = next(m for m in messages if "facturen@bakkerij.example" in m["To"])
    attached = sorted(str(part.get_filename()) for part in ada.iter_attachments())
    assert attached == ["2026-1001.pdf", "2026-1002.pdf"]
    body = ada.get_body(preferencelist=("plain",))
    assert body is not None and "300,00" in body.get_content(), "what is still owed"
    noted = {str(n["entity_id"]) for n in fake.notes.values() if "[kindly " in str(n["note"])}
    assert {str(seeded["a1"]["id"]), str(seeded["a2"]["id"])} <= noted

    calls = fake.api_calls()
    again = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert again.exit_code == 0, again.output
    assert "Sent nothing new" in again.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == len(outbox)
    # The invoices that got a note moved (a note is a change): the two version lists,
    # then those invoices, 100 a call.
    assert fake.api_calls() - calls == 3

    disconnected = runner.invoke(cli, [*base, "disconnect", "moneybird"], env=env)
    assert disconnected.exit_code == 0, disconnected.output
    assert fake.revoked


def test_moneybirds_own_reminders_hold_kindly_back(
    fake: FakeMoneybird, tmp_path: Path, env: dict[str, str]
) -> None:
    seed_small_administration(fake)
    fake.enable_automatic_reminders()
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    connect(runner, base, fake, env)
    held = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    said = " ".join(held.output.split())
    assert held.exit_code == 1, held.output
    assert "sends reminders automatically" in said and "Nothing sent" in said
    assert not list((tmp_path / "outbox").glob("*.eml"))


def test_webhooks_subscribed_at_connect_are_checked_with_the_kept_secret(
    fake: FakeMoneybird, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.bookkeeping.moneybird import MoneybirdConnector
    from plugin.app.cli import open_workspaces
    from plugin.app.serve import WebhookRoute, make_app, make_server

    seeded = seed_small_administration(fake)
    url = "https://kindly.example/webhooks/moneybird"
    config = write_config(tmp_path, fake, f'webhook_url = "{url}"')
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    base = ["--config", str(config)]
    said = connect(runner, base, fake, env)
    assert f"Moneybird calls {url}" in said
    assert [w["url"] for w in fake.webhooks.values()] == [url]
    connect(runner, base, fake, env)
    assert len(fake.webhooks) == 1, "connecting again makes no second subscription"
    assert runner.invoke(cli, [*base, "sync"], env=env).exit_code == 0
    (kindly,) = open_workspaces(config)
    key = MoneybirdConnector.webhook_key(kindly.store)
    assert key and fake.client_secret not in key
    # The secret is kept encrypted: not readable in the store's files (its WAL included).
    (webhook,) = fake.webhooks.values()
    for stored_file in tmp_path.glob("state.sqlite3*"):
        assert webhook["secret"] not in stored_file.read_bytes().decode("latin-1")
    synced = threading.Semaphore(0)
    queued: list[list[str]] = []
    # As `kindly serve` does: the key read from the store at each request.
    route = WebhookRoute(
        lambda: MoneybirdConnector.webhook_key(kindly.store), {kindly.source_id: kindly}
    )
    app = make_app(
        {"/webhooks/moneybird": route},
        synced=lambda source_id: synced.release(),
        queued=queued.append,
    )
    server = make_server("127.0.0.1", 0, app, timeout=1.0)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    endpoint = f"http://127.0.0.1:{server.server_port}/webhooks/moneybird"

    def post(body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    try:
        new = fake.add_invoice(
            seeded["karl"], 2001, "42.00", issued=date(2026, 11, 1), due=date(2026, 11, 15)
        )
        # Kindly's clock is the real one here: the push is signed now.
        body, headers = fake.signed_webhook(
            fake.administration, new, "sales_invoice_created", at=datetime.now(UTC)
        )
        # Moneybird's check of the address when it makes a webhook: unsigned, answered,
        # nothing synced.
        assert post(b"{}", {"Content-Type": "application/json"}) == 200
        assert queued[-1:] == [] or queued[-1] == []
        assert post(body.replace(b"created", b"destroyed"), headers) == 401
        assert post(body, {**headers, "Moneybird-Signature": "t=1,v1=00"}) == 401
        assert post(body, headers) == 200
        assert synced.acquire(timeout=30), "the sync after the webhook finished"
        stored = kindly.store.load_snapshot(kindly.source_id)
        assert stored is not None and str(new["id"]) in stored.invoices_by_id
        # The same push again (Moneybird's retry, or a replay under another
        # Idempotency-Key): no second sync.
        assert post(body, {**headers, "Idempotency-Key": "replayed"}) == 200
        assert queued[-2:] == [[kindly.source_id], []], queued
    finally:
        server.shutdown()
        server.server_close()
    disconnected = runner.invoke(cli, [*base, "disconnect", "moneybird"], env=env)
    assert disconnected.exit_code == 0, disconnected.output
    assert fake.webhooks == {}


class _Watched(collections.Counter[str]):
    """The fake's call counts, telling a condition each time one moves."""

    def __init__(self, condition: threading.Condition) -> None:
        super().__init__()
        self.condition = condition

    def __setitem__(self, key: str, value: int) -> None:
        super().__setitem__(key, value)
        self.condition.notify_all()  # the fake counts under its lock, the condition's


def test_two_connects_at_once_leave_one_webhook_and_its_secret(
    fake: FakeMoneybird, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `kindly connect moneybird` processes at once. The fake holds the first new
    webhook back until a second process has looked at the webhooks (or three seconds
    pass): without a lease the second then makes a webhook of its own, and one secret is
    lost. With it, the second waits, finds the first's webhook, and keeps it."""
    from integrations.bookkeeping.moneybird import MoneybirdConnector
    from plugin.app.cli import open_workspaces

    url = "https://kindly.example/webhooks/moneybird"
    config = write_config(tmp_path, fake, f'webhook_url = "{url}"')
    condition = threading.Condition(fake.lock)
    fake.calls = _Watched(condition)
    create = fake._create_webhook
    looks = f"GET /api/v2/{fake.administration}/webhooks.json"
    held: list[bool] = []

    def create_when_both_looked(book: Any, body: bytes) -> Any:
        if not held:
            # The fake's lock is held here; waiting on the condition lets others in.
            held.append(condition.wait_for(lambda: fake.calls[looks] >= 2, timeout=3.0))
        return create(book, body)

    setattr(fake, "_create_webhook", create_when_both_looked)  # noqa: B010
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "plugin.app.cli",
                "--config",
                str(config),
                "--org",
                fake.administration,
                "connect",
                "moneybird",
                "--refresh-token",
                fake.issue_tokens()["refresh_token"],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        for _ in range(2)
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, out + err
    assert held == [False], "the second waited for the first to finish"
    webhooks = [w for w in fake.book().webhooks.values() if w["url"] == url]
    assert len(webhooks) == 1
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (kindly,) = open_workspaces(config)
    try:
        kept = MoneybirdConnector.stored_webhook_secrets(kindly.store)
    finally:
        kindly.store.close()
    assert kept == {fake.administration: webhooks[0]["secret"]}
