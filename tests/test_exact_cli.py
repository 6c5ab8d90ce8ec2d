"""`kindly connect exactonline`, `sync`, `plan`, `run` and `disconnect exactonline` end to
end on a fake Exact Online: the reminders in the outbox in each account's language, the
notes on the accounts, and the second run incremental."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from plugin.app.cli import cli
from tests.exact_harness import seed_small_division
from tests.fakes.exact import FakeExactOnline

AT = "2026-11-24T10:00:00+01:00"


@pytest.fixture
def fake() -> Iterator[FakeExactOnline]:
    server = FakeExactOnline()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env(fake: FakeExactOnline) -> dict[str, str]:
    return {
        "KINDLY_SECRET_KEY": Fernet.generate_key().decode(),
        "KINDLY_EXACTONLINE_CLIENT_SECRET": fake.client_secret,
        "COLUMNS": "200",
    }


def write_config(folder: Path, fake: FakeExactOnline, extra: str = "") -> Path:
    endpoints = "\n".join(f'{key} = "{value}"' for key, value in fake.endpoints().items() if value)
    config = folder / "kindly.toml"
    config.write_text(
        f"""connector = "exactonline"

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

[exactonline]
client_id = "{fake.client_id}"
redirect_port = 0
{endpoints}
{extra}
""",
        encoding="utf-8",
    )
    return config


def test_connect_run_and_run_again_against_exact_online(
    fake: FakeExactOnline, tmp_path: Path, env: dict[str, str]
) -> None:
    seeded = seed_small_division(fake)
    fake.tick(minutes=5)
    refresh = fake.issue_tokens()["refresh_token"]
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    connected = runner.invoke(
        cli,
        [*base, "--org", str(fake.division), "connect", "exactonline", "--refresh-token", refresh],
        env=env,
    )
    assert connected.exit_code == 0, connected.output
    assert f"Connected Exact Online: {fake.division_name}" in connected.output
    assert refresh not in (tmp_path / "state.sqlite3").read_bytes().decode("latin-1")

    assert runner.invoke(cli, [*base, "sync", "--at", AT], env=env).exit_code == 0
    planned = runner.invoke(cli, [*base, "plan", "--json", "--at", AT], env=env)
    assert planned.exit_code == 0, planned.output
    reminders = {r["customer"]: r for r in json.loads(planned.output)["reminders"]}
    # Exact keeps the account's language: Karl GmbH is written to in German.
    assert reminders["Karl GmbH"]["language"] == "de"
    assert set(reminders["Bakkerij Ada"]["invoices"]) == {"1001", "1002"}

    first = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert first.exit_code == 0, first.output
    outbox = sorted((tmp_path / "outbox").glob("*.eml"))
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in outbox
    ]
    ada = next(m for m in messages if "ada@bakkerij.example" in m["To"])
    body = ada.get_body(preferencelist=("plain",))
    assert body is not None and "1001" in body.get_content()
    # The invoices as Exact printed them ride along.
    attached = sorted(str(part.get_filename()) for part in ada.iter_attachments())
    assert attached == ["1001.pdf", "1002.pdf"]
    assert "openstaand € 300,00" in body.get_content().replace("\xa0", " "), "from the receivables"
    notes = [n for n in fake.notes.values() if "[kindly " in str(n.get("Notes"))]
    assert len(notes) == len(outbox)
    ada_note = next(n for n in notes if str(n["Account"]) == str(seeded["ada"]["ID"]))
    assert ada_note["Subject"] == "Kindly: 1001, 1002"

    calls_before = fake.api_calls()
    again = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert again.exit_code == 0, again.output
    assert "Sent nothing new" in again.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == len(outbox)
    assert len([n for n in fake.notes.values() if "[kindly " in str(n.get("Notes"))]) == len(notes)
    # Incremental: accounts, invoices and deletions from their bookmarks, and what is open.
    assert fake.api_calls() - calls_before == 4

    disconnected = runner.invoke(cli, [*base, "disconnect", "exactonline"], env=env)
    assert disconnected.exit_code == 0, disconnected.output
    refused = runner.invoke(cli, [*base, "sync", "--at", AT], env=env)
    assert refused.exit_code != 0 and "not connected" in refused.output


def test_a_webhook_signed_in_its_body_syncs_the_division(
    fake: FakeExactOnline, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kindly serve`'s app on loopback: Exact's HashCode over the Content text is checked,
    a good one syncs the division once, a changed body or another secret gets 401."""
    import hashlib
    import hmac
    import threading
    import urllib.error
    import urllib.request
    from datetime import date

    from plugin.app.cli import open_workspaces
    from plugin.app.serve import WebhookRoute, make_app, make_server

    seeded = seed_small_division(fake)
    fake.tick(minutes=5)
    config = write_config(tmp_path, fake)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    base = ["--config", str(config), "--org", str(fake.division)]
    refresh = fake.issue_tokens()["refresh_token"]
    connected = runner.invoke(cli, [*base, "connect", "exactonline", "--refresh-token", refresh])
    assert connected.exit_code == 0, connected.output
    assert runner.invoke(cli, [*base, "sync"]).exit_code == 0
    secret = "the-webhook-secret"
    (kindly,) = open_workspaces(config)
    synced = threading.Semaphore(0)
    queued: list[list[str]] = []
    route = WebhookRoute(secret, {kindly.source_id: kindly})
    app = make_app(
        {"/webhooks/exactonline": route},
        synced=lambda source_id: synced.release(),
        queued=queued.append,
    )
    server = make_server("127.0.0.1", 0, app, timeout=1.0)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/exactonline"

    def post(body: bytes) -> int:
        request = urllib.request.Request(url, data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def signed(content: str, key: str = secret) -> bytes:
        code = hmac.new(key.encode(), content.encode(), hashlib.sha256).hexdigest().upper()
        return f'{{"Content": {content}, "HashCode": "{code}"}}'.encode()

    try:
        new = fake.add_invoice(
            seeded["karl"], 2001, "42.00", issued=date(2026, 11, 1), due=date(2026, 11, 15)
        )
        content = json.dumps(
            {"Topic": "SalesInvoices", "ClientId": fake.client_id, "Division": fake.division,
             "Action": "Create", "Key": new["InvoiceID"],
             "ExactOnlineEndpoint": f"{fake.url}/api/v1/{fake.division}/x",
             "EventCreatedOn": "2026-11-22T09:30:00"}
        )  # fmt: skip
        assert post(signed(content, "another-secret")) == 401
        assert post(signed(content).replace(b"Create", b"Delete")) == 401
        assert post(signed(content)) == 200
        assert synced.acquire(timeout=30), "the sync after the webhook finished"
        stored = kindly.store.load_snapshot(kindly.source_id)
        assert stored is not None and str(new["InvoiceID"]) in stored.invoices_by_id
        # The same event again: answered, nothing synced.
        assert post(signed(content)) == 200
        assert queued[-2:] == [[kindly.source_id], []], queued
    finally:
        server.shutdown()
        server.server_close()


def test_connect_subscribes_to_exacts_webhooks_and_disconnect_ends_them(
    fake: FakeExactOnline, tmp_path: Path, env: dict[str, str]
) -> None:
    seed_small_division(fake)
    url = "https://kindly.example/webhooks/exactonline"
    config = write_config(tmp_path, fake, f'webhook_url = "{url}"')
    runner = CliRunner()
    base = ["--config", str(config)]
    refresh = fake.issue_tokens()["refresh_token"]
    connect = [*base, "--org", str(fake.division), "connect", "exactonline"]
    connected = runner.invoke(cli, [*connect, "--refresh-token", refresh], env=env)
    assert connected.exit_code == 0, connected.output
    assert f"Exact Online calls {url}" in " ".join(connected.output.split())
    topics = sorted(s["Topic"] for s in fake.book().subscriptions.values())
    assert topics == ["Accounts", "FinancialTransactions", "SalesInvoices"]
    assert {s["CallbackURL"] for s in fake.book().subscriptions.values()} == {url}
    # Connecting again keeps the three, not six.
    refresh = fake.issue_tokens()["refresh_token"]
    again = runner.invoke(cli, [*connect, "--refresh-token", refresh], env=env)
    assert again.exit_code == 0, again.output
    assert len(fake.book().subscriptions) == 3
    disconnected = runner.invoke(cli, [*base, "disconnect", "exactonline"], env=env)
    assert disconnected.exit_code == 0, disconnected.output
    assert "subscriptions are ended" in " ".join(disconnected.output.split())
    assert fake.book().subscriptions == {}
