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


def write_config(folder: Path, fake: FakeExactOnline) -> Path:
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
