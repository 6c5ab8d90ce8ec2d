"""`kindly connect fiken`, `sync`, `plan`, `run` and `disconnect fiken` end to end on a
fake Fiken: reminders in the outbox in each client's language with the PDFs attached, no
notes in Fiken (it has nowhere to keep them: the history stays in Kindly), the second run
incremental, and the grant revoked."""

from __future__ import annotations

import collections
import email
import email.policy
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from plugin.app.cli import cli
from tests.fakes.fiken import FakeFiken
from tests.fiken_harness import seed_small_company

AT = "2026-11-24T10:00:00+01:00"


@pytest.fixture
def fake() -> Iterator[FakeFiken]:
    server = FakeFiken()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env(fake: FakeFiken) -> dict[str, str]:
    return {
        "KINDLY_SECRET_KEY": Fernet.generate_key().decode(),
        "KINDLY_FIKEN_CLIENT_SECRET": fake.client_secret,
        "COLUMNS": "200",
    }


def write_config(folder: Path, fake: FakeFiken) -> Path:
    endpoints = "\n".join(f'{key} = "{value}"' for key, value in fake.endpoints().items())
    config = folder / "kindly.toml"
    config.write_text(
        f"""connector = "fiken"

[company]
name = "Fjordlys Design AS"
email = "regnskap@fjordlys.example"
country = "NO"

[bank]
account_holder = "Fjordlys Design AS"
iban = "NO9386011117947"

[policy]
send_window = "always"

[delivery]
outbox = "outbox"

[store]
url = "sqlite:///state.sqlite3"

[fiken]
client_id = "{fake.client_id}"
redirect_port = 0
{endpoints}
""",
        encoding="utf-8",
    )
    return config


def test_connect_run_and_run_again_against_fiken(
    fake: FakeFiken, tmp_path: Path, env: dict[str, str]
) -> None:
    seed_small_company(fake)
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    refresh = fake.issue_tokens()["refresh_token"]
    connected = runner.invoke(
        cli, [*base, "--org", fake.company, "connect", "fiken", "--refresh-token", refresh], env=env
    )
    assert connected.exit_code == 0, connected.output
    assert "Connected Fiken" in connected.output
    synced = runner.invoke(cli, [*base, "sync", "--at", AT], env=env)
    assert synced.exit_code == 0, synced.output
    plan = json.loads(runner.invoke(cli, [*base, "plan", "--json", "--at", AT], env=env).output)
    reminders = {r["customer"]: r for r in plan["reminders"]}
    assert reminders["Fjellvann Bakeri AS"]["language"] == "nb"
    assert reminders["Berliner Haus GmbH"]["language"] == "en", "Fiken keeps ENGLISH"

    first = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert first.exit_code == 0, first.output
    said = " ".join(first.output.split())
    assert "Notes: Fiken keeps none; the history stays in Kindly." in said
    outbox = sorted((tmp_path / "outbox").glob("*.eml"))
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in outbox
    ]
    fjell = next(m for m in messages if "faktura@fjellvann.example" in m["To"])
    attached = sorted(str(part.get_filename()) for part in fjell.iter_attachments())
    assert attached == ["10001.pdf", "10002.pdf"]
    assert not [c for c in fake.calls if c.startswith("POST") and "attachments" in c], (
        "nothing of Kindly's is attached in Fiken"
    )
    history = runner.invoke(cli, [*base, "history"], env=env)
    assert "in Kindly only" in history.output

    calls = fake.api_calls()
    again = runner.invoke(cli, [*base, "run", "--at", AT], env=env)
    assert again.exit_code == 0, again.output
    assert "Sent nothing new" in again.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == len(outbox)
    # Customers, invoices and credit notes from the last sync's day: three calls.
    assert fake.api_calls() - calls == 3

    disconnected = runner.invoke(cli, [*base, "disconnect", "fiken"], env=env)
    assert disconnected.exit_code == 0, disconnected.output
    assert fake.revocations == 1


class _Watched(collections.Counter[str]):
    """The fake's call counts, telling a condition each time one moves."""

    def __init__(self, condition: threading.Condition) -> None:
        super().__init__()
        self.condition = condition

    def __setitem__(self, key: str, value: int) -> None:
        super().__setitem__(key, value)
        self.condition.notify_all()  # the fake counts under its lock, the condition's


def test_two_processes_syncing_two_companies_of_one_user_take_turns(
    fake: FakeFiken, tmp_path: Path, env: dict[str, str]
) -> None:
    """`kindly --org A sync` and `kindly --org B sync` at once, on one store: Fiken takes
    one request at a time per user. The fake keeps A's first request in flight until a
    request of B's arrives (which Fiken would refuse) or three seconds pass: B must wait
    for it, and no request of either is refused."""
    seed_small_company(fake)
    config = write_config(tmp_path, fake)
    runner = CliRunner()
    base = ["--config", str(config)]
    refresh = fake.issue_tokens()["refresh_token"]
    connected = runner.invoke(cli, [*base, "connect", "fiken", "--refresh-token", refresh], env=env)
    assert connected.exit_code == 0, connected.output
    first, second = list(fake.books)[:2]
    condition = threading.Condition(fake.lock)
    fake.calls = _Watched(condition)
    hold = fake.hold_next(f"/api/v2/companies/{first}/")
    seconds_calls = f"/api/v2/companies/{second}/"

    def release_when_the_second_asks() -> None:
        assert hold.arrived.wait(60)
        with condition:
            asked = condition.wait_for(
                lambda: any(seconds_calls in key for key in fake.calls), timeout=3.0
            )
        overlapped.append(asked)
        hold.release.set()

    overlapped: list[bool] = []
    releaser = threading.Thread(target=release_when_the_second_asks)
    releaser.start()
    processes = []
    for company in (first, second):
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "plugin.app.cli", *base, "--org", company, "sync"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **env},
                cwd=tmp_path,
            )
        )
        if company == first:
            assert hold.arrived.wait(60), "the first process's request came"
    try:
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, out + err
    finally:
        hold.release.set()
        releaser.join(10)
    assert overlapped == [False], "the second process waited for the first's request"
    assert fake.overlaps == 0, "no request was refused for overlapping another"
    assert any(seconds_calls in key for key in fake.calls), "the second synced too"
