"""`kindly connect xero`, `kindly run` and `kindly disconnect xero` end to end on a fake Xero."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from plugin.app.cli import cli
from tests.fakes.xero import FakeXero
from tests.xero_harness import seed_small_ledger

AT = "2026-11-24T10:00:00+01:00"


@pytest.fixture
def fake() -> Iterator[FakeXero]:
    server = FakeXero()
    server.start()
    yield server
    server.stop()


def write_config(folder: Path, fake: FakeXero, email_via: str = "outbox") -> Path:
    endpoints = "\n".join(f'{key} = "{value}"' for key, value in fake.endpoints().items())
    config = folder / "kindly.toml"
    config.write_text(
        f"""connector = "xero"

[company]
name = "Noordlicht Studio B.V."
email = "ar@noordlicht.example"
country = "NL"

[bank]
account_holder = "Noordlicht Studio B.V."
iban = "NL91ABNA0417164300"
bic = "ABNANL2A"

[policy]
send_window = "always"

[delivery]
outbox = "outbox"
email_via = "{email_via}"

[store]
url = "sqlite:///state.sqlite3"

[xero]
client_id = "{fake.client_id}"
redirect_port = 0
{endpoints}
""",
        encoding="utf-8",
    )
    return config


def connect(runner: CliRunner, base: list[str], fake: FakeXero, env: dict[str, str]) -> None:
    """`kindly connect xero` the server way, with a refresh token from the fake."""
    refresh = fake.issue_tokens()["refresh_token"]
    result = runner.invoke(cli, [*base, "connect", "xero", "--refresh-token", refresh], env=env)
    assert result.exit_code == 0, result.output


@pytest.fixture
def env() -> dict[str, str]:
    return {"KINDLY_SECRET_KEY": Fernet.generate_key().decode(), "COLUMNS": "200"}


def test_connect_run_and_run_again_against_xero(
    fake: FakeXero, tmp_path: Path, env: dict[str, str]
) -> None:
    seeded = seed_small_ledger(fake)
    # The server path: a refresh token from the developer portal, no browser.
    refresh = fake.issue_tokens()["refresh_token"]
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    connected = runner.invoke(cli, [*base, "connect", "xero", "--refresh-token", refresh], env=env)
    assert connected.exit_code == 0, connected.output
    assert "Connected Xero: Noordlicht Studio" in connected.output
    assert refresh not in fake.refresh_tokens, "Kindly used it and keeps the rotated one"
    assert refresh not in (tmp_path / "state.sqlite3").read_bytes().decode("latin-1")

    fake.clock = fake.clock.replace(year=2026, month=11, day=24)
    fake.expire_access_tokens()  # a day later: the access token from connect has expired
    assert runner.invoke(cli, [*base, "sync", "--at", AT], env=env).exit_code == 0
    planned = runner.invoke(cli, [*base, "plan", "--json", "--at", AT], env=env)
    assert planned.exit_code == 0, planned.output
    reminders = {r["customer"]: r for r in json.loads(planned.output)["reminders"]}
    # Ada's contact group "Reminders: firm" in Xero sets her tone; she is Dutch.
    assert (reminders["Ada Vermeer"]["tone"], reminders["Ada Vermeer"]["language"]) == (
        "firm",
        "nl",
    )
    # Fjord Bygg's expected payment date in Xero is a promise to pay: it waits.
    skipped = {s["customer_id"]: s["code"] for s in json.loads(planned.output)["skips"]}
    assert skipped[seeded["olav"]["ContactID"]] == "promised"
    first = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert first.exit_code == 0, first.output
    outbox = sorted((tmp_path / "outbox").glob("*.eml"))
    # Ada: INV-0001 and INV-0002 overdue (one reminder); Fjord Bygg has a promise to pay
    # until 2 December; Cleo's INV-0004 is 20 days overdue; the draft gets nothing.
    assert len(outbox) == 2, first.output
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in outbox
    ]
    ada = next(m for m in messages if "ada@client.example" in m["To"])
    body = ada.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "INV-0001" in text and "INV-0002" in text
    assert "https://in.xero.example/" in text, "the online invoice link from Xero"
    attachments = {a.get_filename() for a in ada.iter_attachments()}
    assert {"INV-0001.pdf", "INV-0002.pdf"} <= attachments
    # History notes on each reminded invoice and on the contacts.
    for key in ("a1", "a2", "c1"):
        (note,) = fake.history[seeded[key]["InvoiceID"]]
        assert note["Details"].startswith("Kindly") and "[kindly " in note["Details"]
    assert len(fake.history[seeded["ada"]["ContactID"]]) == 1

    calls_before = fake.api_calls()
    again = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert again.exit_code == 0, again.output
    assert "Sent nothing new" in again.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    assert len(fake.history[seeded["a1"]["InvoiceID"]]) == 1
    # The second run is incremental: four list calls, nothing to re-read or write.
    assert fake.api_calls() - calls_before == 4


def test_a_client_who_paid_since_the_sync_gets_nothing(
    fake: FakeXero, tmp_path: Path, env: dict[str, str]
) -> None:
    seeded = seed_small_ledger(fake)
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    connect(runner, base, fake, env)
    synced = runner.invoke(cli, [*base, "sync", "--at", AT], env=env)
    assert synced.exit_code == 0, synced.output
    # Cleo pays in Xero between the sync and the send (R3).
    fake.add_payment(seeded["c1"], "50.00", date(2026, 11, 24))
    sent = runner.invoke(cli, [*base, "send", "--at", AT], env=env)
    assert sent.exit_code == 0, sent.output
    outbox = list((tmp_path / "outbox").glob("*.eml"))
    assert len(outbox) == 1 and "changed" in sent.output
    assert not fake.history[seeded["c1"]["InvoiceID"]]


def test_connect_through_the_browser_with_pkce(
    fake: FakeXero, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, fake)
    opened: list[str] = []

    def browser(url: str) -> bool:
        # The user signs in: Xero redirects the browser to Kindly's loopback address.
        opened.append(url)
        threading.Thread(target=lambda: urllib.request.urlopen(url, timeout=10).read()).start()
        return True

    monkeypatch.setattr("webbrowser.open", browser)
    result = CliRunner().invoke(cli, ["--config", str(config), "connect", "xero"], env=env)
    assert result.exit_code == 0, result.output
    assert "Connected Xero: Noordlicht Studio" in result.output
    (url,) = opened
    assert "code_challenge_method=S256" in url and "offline_access" in url
    assert url in result.output, "the address is printed too, for a browser elsewhere"
    assert len(fake.refresh_tokens) == 1

    # Disconnecting revokes the token at Xero and forgets it here.
    gone = CliRunner().invoke(cli, ["--config", str(config), "disconnect", "xero"], env=env)
    assert gone.exit_code == 0, gone.output
    assert not fake.refresh_tokens and fake.revoked
    after = CliRunner().invoke(cli, ["--config", str(config), "sync"], env=env)
    assert after.exit_code == 1 and "kindly connect xero" in after.output


def test_without_a_secret_key_connect_explains_what_to_do(
    fake: FakeXero, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KINDLY_SECRET_KEY", raising=False)
    config = write_config(tmp_path, fake)
    result = CliRunner().invoke(
        cli, ["--config", str(config), "connect", "xero", "--refresh-token", "rt-x"]
    )
    assert result.exit_code == 1
    assert "KINDLY_SECRET_KEY" in result.output and "kindly secret-key" in result.output
    assert "rt-x" not in result.output


def test_webhooks_are_verified_and_sync_the_organisation(
    fake: FakeXero, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64
    import hashlib
    import hmac

    from plugin.app.cli import open_workspaces
    from plugin.app.serve import WebhookRoute, make_app, make_server

    seeded = seed_small_ledger(fake)
    config = write_config(tmp_path, fake)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    refresh = fake.issue_tokens()["refresh_token"]
    runner = CliRunner()
    base = ["--config", str(config)]
    assert runner.invoke(cli, [*base, "connect", "xero", "--refresh-token", refresh]).exit_code == 0
    assert runner.invoke(cli, [*base, "sync"]).exit_code == 0
    key = "the-webhook-key"
    (kindly,) = open_workspaces(config)
    done = threading.Event()
    queued: list[list[str]] = []
    route = WebhookRoute(key, {kindly.source_id: kindly})
    app = make_app(
        {"/webhooks/xero": route}, synced=lambda source_id: done.set(), queued=queued.append
    )

    server = make_server("127.0.0.1", 0, app, timeout=1.0)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/xero"

    def post(body: bytes, signature: str) -> int:
        request = urllib.request.Request(
            url, data=body, headers={"x-xero-signature": signature}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def sign(body: bytes) -> str:
        return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()

    try:
        # Intent to receive: a correctly and a wrongly signed request, no events.
        handshake = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"A"}'
        assert post(handshake, sign(handshake)) == 200
        assert post(handshake, sign(handshake + b"x")) == 401
        assert post(handshake, "") == 401
        # A new invoice in Xero, and the event that names it.
        new = fake.add_invoice(
            seeded["cleo"], "INV-0099", "42.00", issued=date(2026, 11, 1), due=date(2026, 11, 15)
        )
        event = {
            "resourceUrl": f"{fake.url}/api.xro/2.0/Invoices/{new['InvoiceID']}",
            "resourceId": new["InvoiceID"],
            "tenantId": fake.tenant_id,
            "tenantType": "ORGANISATION",
            "eventCategory": "INVOICE",
            "eventType": "CREATE",
            "eventDateUtc": "2026-11-22T09:30:00.000",
        }
        body = json.dumps(
            {"events": [event], "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "B"}
        ).encode()
        assert post(body, sign(body)) == 200
        assert done.wait(30), "the sync after the webhook finished"
        stored = kindly.store.load_snapshot(kindly.source_id)
        assert stored is not None and new["InvoiceID"] in stored.invoices_by_id
        # The same events again (a replay, or Xero repeating them): answered, not synced.
        replay = json.dumps(
            {"events": [event], "firstEventSequence": 2, "lastEventSequence": 2, "entropy": "C"}
        ).encode()
        assert post(body, sign(body)) == 200
        assert post(replay, sign(replay)) == 200
        assert queued[-3:] == [[kindly.source_id], [], []], queued
        # A client that stops in the middle of its body gets 408 once the server's wait
        # (here 1 s) is over, not a 500 with a traceback.
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as stall:
            stall.sendall(
                b"POST /webhooks/xero HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                b"x-xero-signature: abc\r\n\r\n" + b"{" * 10
            )
            answer = stall.recv(4096)
        assert answer.startswith((b"HTTP/1.0 408", b"HTTP/1.1 408")), answer
    finally:
        server.shutdown()
        server.server_close()


def test_serve_needs_the_webhook_key(
    fake: FakeXero, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KINDLY_XERO_WEBHOOK_KEY", raising=False)
    config = write_config(tmp_path, fake)
    result = CliRunner().invoke(cli, ["--config", str(config), "serve"], env=env)
    assert result.exit_code == 1 and "KINDLY_XERO_WEBHOOK_KEY is not set" in result.output


def test_xero_can_send_the_invoice_e_mails_itself(
    fake: FakeXero, tmp_path: Path, env: dict[str, str]
) -> None:
    seeded = seed_small_ledger(fake)
    config = write_config(tmp_path, fake, email_via="platform")
    runner = CliRunner()
    base = ["--config", str(config)]
    connect(runner, base, fake, env)
    first = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert first.exit_code == 0, first.output
    assert sorted(fake.emailed) == sorted(seeded[k]["InvoiceID"] for k in ("a1", "a2", "c1")), (
        "Xero e-mailed each reminded invoice"
    )
    assert not (tmp_path / "outbox").exists() or not list((tmp_path / "outbox").iterdir())
    assert len(fake.history[seeded["a1"]["InvoiceID"]]) == 1, "and Kindly noted it"
    again = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert again.exit_code == 0 and len(fake.emailed) == 3


def test_several_organisations_at_once(fake: FakeXero, tmp_path: Path, env: dict[str, str]) -> None:
    import uuid

    seed_small_ledger(fake)
    second = dict(fake.tenants[0], tenantId=str(uuid.uuid4()), tenantName="Noordlicht Oslo AS")
    fake.tenants.append(second)
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    refresh = fake.issue_tokens()["refresh_token"]
    connected = runner.invoke(cli, [*base, "connect", "xero", "--refresh-token", refresh], env=env)
    assert "Noordlicht Studio, Noordlicht Oslo AS" in connected.output
    synced = runner.invoke(cli, [*base, "sync", "--at", AT], env=env)
    assert synced.exit_code == 0, synced.output
    assert synced.output.count("Synced Xero organisation") == 2
    ambiguous = runner.invoke(cli, [*base, "plan", "--at", AT], env=env)
    assert ambiguous.exit_code == 1 and "--org" in ambiguous.output
    chosen = runner.invoke(cli, [*base, "--org", "Noordlicht Oslo AS", "plan", "--at", AT], env=env)
    assert chosen.exit_code == 0, chosen.output
    unknown = runner.invoke(cli, [*base, "--org", "Elsewhere", "plan"], env=env)
    assert unknown.exit_code == 1 and "no connected Xero organisation" in unknown.output


def _sent_then_store_lost(
    fake: FakeXero, tmp_path: Path, env: dict[str, str]
) -> tuple[CliRunner, list[str], int]:
    """A run that sent and noted reminders, then Kindly's store lost (tokens and all) and
    Xero connected again: the runner, the base arguments, and how many were sent."""
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    connect(runner, base, fake, env)
    assert runner.invoke(cli, [*base, "run", "--at", AT], env=env).exit_code == 0
    sent = len(list((tmp_path / "outbox").glob("*.eml")))
    for path in tmp_path.glob("state.sqlite3*"):
        path.unlink()
    connect(runner, base, fake, env)
    return runner, base, sent


def test_history_is_rebuilt_from_xero_history_notes(
    fake: FakeXero, tmp_path: Path, env: dict[str, str]
) -> None:
    seed_small_ledger(fake)
    runner, base, sent = _sent_then_store_lost(fake, tmp_path, env)
    rebuilt = runner.invoke(cli, [*base, "history", "--rebuild", "--at", AT], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"Restored {sent} reminders" in rebuilt.output
    again = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert "Sent nothing new" in again.output, again.output


def test_debug_logs_every_api_call_with_secrets_masked(
    fake: FakeXero, tmp_path: Path, env: dict[str, str]
) -> None:
    import logging

    seed_small_ledger(fake)
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    connect(runner, base, fake, env)
    fake.expire_access_tokens()  # the sync renews the token first: that call is logged too
    kindly_logger = logging.getLogger("kindly")
    level, handlers = kindly_logger.level, list(kindly_logger.handlers)
    try:
        result = runner.invoke(cli, ["--debug", *base, "sync", "--at", AT], env=env)
    finally:
        # --debug set up the process's logging: put it back for the tests after this one.
        kindly_logger.setLevel(level)
        kindly_logger.handlers[:] = handlers
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "kindly.http" in line]
    assert any("POST" in line and "/connect/token -> 200" in line for line in lines), lines
    assert any("GET" in line and "/api.xro/2.0/Invoices" in line for line in lines), lines
    everything = result.stderr + result.output
    for token in [*fake.access_tokens, *fake.refresh_tokens]:
        assert token not in everything


def test_a_rebuild_stopped_by_the_day_allowance_carries_on_and_holds_sending_back(
    fake: FakeXero, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Xero answers History one invoice a call: a rebuild of a large organisation runs out
    of the day's calls. It keeps its place, sending waits for it, and the next day's
    rebuild carries on with the clients not read yet."""
    import plugin.run
    from tests.fakes.xero import API, Fault

    seeded = seed_small_ledger(fake)
    runner, base, sent = _sent_then_store_lost(fake, tmp_path, env)
    assert sent == 2
    monkeypatch.setattr(plugin.run, "REBUILD_BATCH", 1)  # a client at a time
    later_client = max(seeded["ada"]["ContactID"], seeded["cleo"]["ContactID"])
    later_invoice = next(
        seeded[key]["InvoiceID"]
        for key in ("a1", "c1")
        if seeded[key]["Contact"]["ContactID"] == later_client
    )
    fake.fail_next(
        f"{API}/Invoices/{later_invoice}/History",
        Fault(429, headers={"X-Rate-Limit-Problem": "day", "Retry-After": "50000"}),
    )
    partial = runner.invoke(cli, [*base, "history", "--rebuild", "--at", AT], env=env)
    assert partial.exit_code == 0, partial.output
    assert "Not finished" in partial.stderr and "again" in partial.stderr
    held = runner.invoke(cli, [*base, "send", "--at", AT], env=env)
    assert held.exit_code == 1 and "being rebuilt" in held.stderr
    done = runner.invoke(cli, [*base, "history", "--rebuild", "--at", AT], env=env)
    assert done.exit_code == 0 and "Not finished" not in done.stderr
    again = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert again.exit_code == 0, again.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == sent, "nothing sent twice"


def test_nothing_is_sent_while_xeros_own_reminders_are_on_until_the_user_chooses(
    fake: FakeXero, tmp_path: Path, env: dict[str, str]
) -> None:
    seed_small_ledger(fake)
    fake.invoice_reminders = True
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    connect(runner, base, fake, env)
    held = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    said = " ".join(held.output.split())
    assert held.exit_code == 1, held.output
    assert "Xero's invoice reminders are on" in said and "Nothing sent" in said
    assert "beside_platform_reminders" in said
    assert not list((tmp_path / "outbox").glob("*.eml"))
    planned = json.loads(runner.invoke(cli, [*base, "plan", "--json", "--at", AT], env=env).output)
    assert planned["held"] is True and planned["platform_reminders"]
    # Turned off in Xero: the next sync sees it at once, and the reminders go.
    fake.invoice_reminders = False
    sent = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert sent.exit_code == 0, sent.output
    assert list((tmp_path / "outbox").glob("*.eml"))


def test_the_user_may_choose_to_send_beside_xeros_own_reminders(
    fake: FakeXero, tmp_path: Path, env: dict[str, str]
) -> None:
    seed_small_ledger(fake)
    fake.invoice_reminders = True
    config = write_config(tmp_path, fake)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[delivery]\n", "[delivery]\nbeside_platform_reminders = true\n"),
        encoding="utf-8",
    )
    runner = CliRunner()
    base = ["--config", str(config)]
    connect(runner, base, fake, env)
    sent = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert sent.exit_code == 0, sent.output
    assert "Kindly sends its reminders beside them" in " ".join(sent.output.split())
    assert list((tmp_path / "outbox").glob("*.eml"))


def test_one_address_takes_webhooks_for_a_folder_of_workspaces_and_syncs_each(
    fake: FakeXero, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kindly serve --workspace FOLDER`: two workspaces connected to the same Xero
    organisation (the same events reach both); one signed event syncs each, and its
    replay syncs neither."""
    import base64
    import hashlib
    import hmac

    from plugin.app.cli import open_workspaces
    from plugin.app.cli.webhooks import webhook_app
    from plugin.app.serve import make_server

    seeded = seed_small_ledger(fake)
    key = "the-webhook-key"
    for name, value in {**env, "KINDLY_XERO_WEBHOOK_KEY": key}.items():
        monkeypatch.setenv(name, value)
    folder = tmp_path / "clients"
    configs = []
    for name in ("alpha", "beta"):
        (folder / name).mkdir(parents=True)
        config = write_config(folder / name, fake)
        connect(CliRunner(), ["--config", str(config)], fake, env)
        configs.append(config)
    wsgi, routes = webhook_app([folder])
    assert len(routes["/webhooks/xero"].workspaces) == 2
    server = make_server("127.0.0.1", 0, wsgi, timeout=5.0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    try:
        new = fake.add_invoice(
            seeded["cleo"], "INV-0099", "42.00", issued=date(2026, 11, 1), due=date(2026, 11, 15)
        )
        event = {
            "resourceUrl": f"{fake.url}/api.xro/2.0/Invoices/{new['InvoiceID']}",
            "resourceId": new["InvoiceID"], "tenantId": fake.tenant_id,
            "tenantType": "ORGANISATION", "eventCategory": "INVOICE", "eventType": "CREATE",
            "eventDateUtc": "2026-11-22T09:30:00.000",
        }  # fmt: skip
        body = json.dumps(
            {"events": [event], "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "B"}
        ).encode()
        signature = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest())
        url = f"http://127.0.0.1:{server.server_port}/webhooks/xero"
        for _ in range(2):  # the second is a replay: answered, not synced again
            request = urllib.request.Request(
                url, data=body, headers={"x-xero-signature": signature.decode()}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 200
            assert wsgi.syncs.idle(60)
        for config in configs:
            (kindly,) = open_workspaces(config)
            stored = kindly.store.load_snapshot(kindly.source_id)
            kindly.store.close()
            assert stored is not None and new["InvoiceID"] in stored.invoices_by_id, config
        invoice_lists = [k for k in fake.calls if k == "GET /api.xro/2.0/Invoices"]
        assert fake.calls[invoice_lists[0]] == 2, "one sync per workspace, none for the replay"
    finally:
        server.shutdown()
        server.server_close()
