"""`kindly connect quickbooks`, `sync`, `plan`, `run` and `disconnect quickbooks` end to end
on a fake QuickBooks: the reminders in the outbox, the notes attached in QuickBooks, and
the second run incremental (one change-data-capture call)."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from plugin.app.cli import cli
from tests.fakes.quickbooks import FakeQuickBooks
from tests.quickbooks_harness import seed_small_company

AT = "2026-11-24T10:00:00-08:00"


@pytest.fixture
def fake() -> Iterator[FakeQuickBooks]:
    server = FakeQuickBooks()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env(fake: FakeQuickBooks) -> dict[str, str]:
    return {
        "KINDLY_SECRET_KEY": Fernet.generate_key().decode(),
        "KINDLY_QUICKBOOKS_CLIENT_SECRET": fake.client_secret,
        "COLUMNS": "200",
    }


def write_config(folder: Path, fake: FakeQuickBooks, *, tenants: bool = True) -> Path:
    endpoints = "\n".join(f'{key} = "{value}"' for key, value in fake.endpoints().items())
    config = folder / "kindly.toml"
    named = f'tenants = ["{fake.realm_id}"]' if tenants else ""
    config.write_text(
        f"""connector = "quickbooks"

[company]
name = "Noordlicht Inc."
email = "ar@noordlicht.example"
country = "US"

[policy]
send_window = "always"

[delivery]
outbox = "outbox"

[store]
url = "sqlite:///state.sqlite3"

[quickbooks]
client_id = "{fake.client_id}"
redirect_port = 0
{named}
{endpoints}
""",
        encoding="utf-8",
    )
    return config


def test_connect_run_and_run_again_against_quickbooks(
    fake: FakeQuickBooks, tmp_path: Path, env: dict[str, str]
) -> None:
    seeded = seed_small_company(fake)
    fake.tick(minutes=5)
    refresh = fake.issue_tokens()["refresh_token"]
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    connected = runner.invoke(
        cli, [*base, "connect", "quickbooks", "--refresh-token", refresh], env=env
    )
    assert connected.exit_code == 0, connected.output
    assert "Connected QuickBooks Online: Noordlicht Inc." in connected.output
    assert refresh not in (tmp_path / "state.sqlite3").read_bytes().decode("latin-1")

    synced = runner.invoke(cli, [*base, "sync", "--at", AT], env=env)
    assert synced.exit_code == 0, synced.output
    planned = runner.invoke(cli, [*base, "plan", "--json", "--at", AT], env=env)
    assert planned.exit_code == 0, planned.output
    reminders = {r["customer"]: r for r in json.loads(planned.output)["reminders"]}
    # Ada's customer type "Reminders: firm" in QuickBooks sets her tone.
    assert reminders["Ada's Bakery LLC"]["tone"] == "firm"
    assert set(reminders["Ada's Bakery LLC"]["invoices"]) == {"1001", "1002"}

    first = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert first.exit_code == 0, first.output
    outbox = sorted((tmp_path / "outbox").glob("*.eml"))
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in outbox
    ]
    ada = next(m for m in messages if "ada@bakery.example" in m["To"])
    body = ada.get_body(preferencelist=("plain",))
    assert body is not None and "1001" in body.get_content()
    assert "https://connect.intuit.example/t/" in body.get_content(), "the pay link"
    attachments = {a.get_filename() for a in ada.iter_attachments()}
    assert {"1001.pdf", "1002.pdf"} <= attachments, "the invoice PDFs from QuickBooks"
    # One note per reminder, attached to its invoices and the customer.
    notes = [a for a in fake.attachables.values() if "[kindly " in str(a.get("Note"))]
    assert len(notes) == len(outbox)
    ada_note = next(
        a
        for a in notes
        if {"Customer", seeded["ada"]["Id"]}
        <= {v for r in a["AttachableRef"] for v in r["EntityRef"].values()}
    )
    invoices = {
        r["EntityRef"]["value"] for r in ada_note["AttachableRef"]
        if r["EntityRef"]["type"] == "Invoice"
    }  # fmt: skip
    assert invoices == {seeded["a1"]["Id"], seeded["a2"]["Id"]}

    calls_before = fake.api_calls()
    again = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert again.exit_code == 0, again.output
    assert "Sent nothing new" in again.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == len(outbox)
    # Incremental: one change-data-capture call, nothing to re-read or write.
    assert fake.api_calls() - calls_before == 1

    disconnected = runner.invoke(cli, [*base, "disconnect", "quickbooks"], env=env)
    assert disconnected.exit_code == 0, disconnected.output
    assert "Disconnected QuickBooks Online" in disconnected.output
    assert fake.revoked, "Kindly's access was revoked at Intuit"
    refused = runner.invoke(cli, [*base, "sync", "--at", AT], env=env)
    assert refused.exit_code != 0 and "not connected" in refused.output


def test_a_customer_who_paid_since_the_sync_gets_nothing(
    fake: FakeQuickBooks, tmp_path: Path, env: dict[str, str]
) -> None:
    """R3: the invoices a reminder names are read again right before it goes out."""
    seeded = seed_small_company(fake)
    fake.tick(minutes=5)
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    refresh = fake.issue_tokens()["refresh_token"]
    assert (
        runner.invoke(
            cli, [*base, "connect", "quickbooks", "--refresh-token", refresh], env=env
        ).exit_code
        == 0
    )
    assert runner.invoke(cli, [*base, "sync", "--at", AT], env=env).exit_code == 0
    planned = json.loads(runner.invoke(cli, [*base, "plan", "--json", "--at", AT], env=env).output)
    due = len(planned["reminders"])
    fake.add_payment(seeded["cy"], [(seeded["c1"], "50.00")], on=date(2026, 11, 24))
    sent = runner.invoke(cli, [*base, "send", "--at", AT], env=env)
    assert sent.exit_code == 0, sent.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == due - 1
    assert "changed" in sent.output


def test_without_a_named_company_a_refresh_token_is_refused_plainly(
    fake: FakeQuickBooks, tmp_path: Path, env: dict[str, str]
) -> None:
    config = write_config(tmp_path, fake, tenants=False)
    refresh = fake.issue_tokens()["refresh_token"]
    result = CliRunner().invoke(
        cli, ["--config", str(config), "connect", "quickbooks", "--refresh-token", refresh], env=env
    )
    assert result.exit_code != 0
    assert "QuickBooks did not say which company was connected" in result.output
    assert "[quickbooks] tenants" in result.output


def test_webhooks_in_both_bodies_are_verified_and_sync_the_company(
    fake: FakeQuickBooks, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kindly serve`'s app on loopback: a legacy and a CloudEvents body, each signed with
    the verifier token, sync the company once; a wrong signature is refused; a replay of
    the same CloudEvents id starts nothing."""
    import base64
    import hashlib
    import hmac
    import threading
    import urllib.error
    import urllib.request

    from plugin.app.cli import open_workspaces
    from plugin.app.serve import WebhookRoute, make_app, make_server

    seeded = seed_small_company(fake)
    fake.tick(minutes=5)
    config = write_config(tmp_path, fake)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    base = ["--config", str(config)]
    refresh = fake.issue_tokens()["refresh_token"]
    assert (
        runner.invoke(cli, [*base, "connect", "quickbooks", "--refresh-token", refresh]).exit_code
        == 0
    )
    assert runner.invoke(cli, [*base, "sync"]).exit_code == 0
    key = "the-verifier-token"
    (kindly,) = open_workspaces(config)
    synced = threading.Semaphore(0)
    queued: list[list[str]] = []
    route = WebhookRoute(key, {kindly.source_id: kindly})
    app = make_app(
        {"/webhooks/quickbooks": route},
        synced=lambda source_id: synced.release(),
        queued=queued.append,
    )
    server = make_server("127.0.0.1", 0, app, timeout=1.0)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/quickbooks"

    def post(body: bytes, signature: str) -> int:
        request = urllib.request.Request(
            url, data=body, headers={"intuit-signature": signature}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def sign(body: bytes) -> str:
        return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()

    try:
        first = fake.add_invoice(
            seeded["cy"], "2001", "42.00", issued=date(2026, 11, 1), due=date(2026, 11, 15)
        )
        legacy = json.dumps(
            {"eventNotifications": [{"realmId": fake.realm_id, "dataChangeEvent": {"entities": [
                {"name": "Invoice", "id": first["Id"], "operation": "Create",
                 "lastUpdated": "2026-11-22T09:30:00.000Z"}]}}]}
        ).encode()  # fmt: skip
        assert post(legacy, sign(legacy + b"x")) == 401
        assert post(legacy, sign(legacy)) == 200
        assert synced.acquire(timeout=30), "the sync after the legacy webhook finished"
        stored = kindly.store.load_snapshot(kindly.source_id)
        assert stored is not None and first["Id"] in stored.invoices_by_id
        fake.tick(minutes=2)
        second = fake.add_invoice(
            seeded["cy"], "2002", "43.00", issued=date(2026, 11, 1), due=date(2026, 11, 15)
        )
        cloud = json.dumps(
            [{"specversion": "1.0", "id": "evt-2002", "source": "intuit.test",
              "type": "qbo.invoice.created.v1", "time": "2026-11-22T09:40:00Z",
              "intuitentityid": second["Id"], "intuitaccountid": fake.realm_id, "data": {}}]
        ).encode()  # fmt: skip
        assert post(cloud, sign(cloud)) == 200
        assert synced.acquire(timeout=30), "the sync after the CloudEvents webhook finished"
        stored = kindly.store.load_snapshot(kindly.source_id)
        assert stored is not None and second["Id"] in stored.invoices_by_id
        # The same event delivered again: answered, nothing synced.
        assert post(cloud, sign(cloud)) == 200
        assert queued[-3:] == [[kindly.source_id], [kindly.source_id], []], queued
    finally:
        server.shutdown()
        server.server_close()
