"""One `kindly send` at a time per organisation, with real processes on SQLite and PostgreSQL.

- Two and eight senders started together on one store deliver every reminder exactly once
  and write every note exactly once.
- A second sender stops at once, naming the holder (exit 75), or waits with --wait.
- A holder that was killed is taken over, and only then is its half-done work recovered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin.state.leases import hold
from plugin.state.store import Store
from tests.conftest import DEMO_NOW
from tests.fakes.smtp import SmtpServer, start_smtp
from tests.test_delivery import open_kindly

LEASE_HOLDER = """
import sys
from plugin.state.leases import hold
from plugin.state.store import Store
store = Store.open(sys.argv[1])
with hold(store.engine, sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()  # until the test ends this process
"""


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path)
    yield server
    server.stop()


def _workspace(demo_workspace: Path, smtp: SmtpServer, store_url: str) -> Path:
    config = demo_workspace / "kindly.toml"
    text = config.read_text(encoding="utf-8").replace(
        "[delivery]\n", '[delivery]\nemail_via = "smtp"\n', 1
    )
    text = text.replace('url = "sqlite:///kindly.sqlite3"', f"url = {json.dumps(store_url)}", 1)
    text += f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\nretry_wait = 0\n'
    assert store_url in text
    config.write_text(text, encoding="utf-8")
    return config


def _kindly(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "plugin.app.cli", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _expected(config: Path) -> tuple[set[str], set[str]]:
    kindly = open_kindly(config.parent)
    kindly.sync(DEMO_NOW)
    plan = kindly.plan(DEMO_NOW)
    invoices = {r.key for r in plan.reminders}
    return invoices | {a.key for a in plan.appointments}, invoices


def _notes(config: Path) -> Counter[str]:
    lines = (config.parent / "ledger" / "kindly-notes.jsonl").read_text().splitlines()
    return Counter(json.loads(line)["id"] for line in lines if line.strip())


def _lease_name(config: Path) -> str:
    from plugin.run import lease_name

    return lease_name(open_kindly(config.parent).source_id)


@pytest.mark.parametrize("senders", [2, 8])
def test_senders_started_together_deliver_each_reminder_once(
    senders: int, demo_workspace: Path, smtp: SmtpServer, store_url: str
) -> None:
    config = _workspace(demo_workspace, smtp, store_url)
    expected, invoices = _expected(config)
    at = DEMO_NOW.isoformat()
    runs = [_kindly(config, "send", "--at", at, "--wait", "300") for _ in range(senders)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0] * senders, outputs
    ids = Counter(m.message["Message-ID"] for m in smtp.received)
    assert set(ids.values()) == {1}, f"sent twice: {[i for i, n in ids.items() if n > 1]}"
    assert len(ids) == len(expected)
    notes = _notes(config)
    assert set(notes.values()) == {1} and len(notes) == len(invoices), "each note once"
    # Only the first to hold the lease found work; no one "recovered" another's.
    assert not any("interrupted" in out for out, _ in outputs)


def test_a_second_sender_stops_at_once_and_names_the_first(
    demo_workspace: Path, smtp: SmtpServer, store_url: str
) -> None:
    config = _workspace(demo_workspace, smtp, store_url)
    _expected(config)
    store = Store.open(store_url)
    try:
        with hold(store.engine, _lease_name(config)):
            second = _kindly(config, "send", "--at", DEMO_NOW.isoformat())
            out, err = second.communicate(timeout=120)
    finally:
        store.close()
    assert second.returncode == 75, out + err
    assert "another Kindly is sending for this organisation" in err
    assert f"process {os.getpid()}" in err
    assert "--wait" in err
    assert smtp.received == [], "nothing sent by the second"


def test_a_waiting_sender_goes_on_once_the_first_is_done(
    demo_workspace: Path, smtp: SmtpServer, store_url: str
) -> None:
    config = _workspace(demo_workspace, smtp, store_url)
    expected, _ = _expected(config)
    store = Store.open(store_url)
    try:
        with hold(store.engine, _lease_name(config)):
            waiting = _kindly(config, "send", "--at", DEMO_NOW.isoformat(), "--wait", "300")
            assert waiting.stderr is not None
            line = waiting.stderr.readline()
            assert "waiting up to 300 s" in line, line
            assert smtp.received == []
        out, err = waiting.communicate(timeout=300)
    finally:
        store.close()
    assert waiting.returncode == 0, out + err
    assert len(smtp.received) == len(expected)


def test_a_killed_holder_is_taken_over_and_its_work_recovered(
    demo_workspace: Path, smtp: SmtpServer, store_url: str
) -> None:
    config = _workspace(demo_workspace, smtp, store_url)
    expected, invoices = _expected(config)
    at = DEMO_NOW.isoformat()
    # A sender dies between claiming its batch and sending: its claims are left behind.
    env = {**os.environ, "KINDLY_CRASH_AT": "claimed:1"}
    died = subprocess.run(
        [sys.executable, "-m", "plugin.app.cli", "--config", str(config), "send", "--at", at],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert died.returncode == -signal.SIGKILL
    # Another process holds the lease now, and is killed in turn.
    holder = subprocess.Popen(
        [sys.executable, "-c", LEASE_HOLDER, store_url, _lease_name(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    busy = _kindly(config, "send", "--at", DEMO_NOW.isoformat())
    _, busy_err = busy.communicate(timeout=120)
    assert busy.returncode == 75, "a live holder is never taken over"
    assert f"process {holder.pid}" in busy_err
    holder.kill()
    holder.wait()
    # PostgreSQL ends the dead session's lock when it notices; --wait covers that moment.
    after = _kindly(config, "send", "--at", DEMO_NOW.isoformat(), "--wait", "60")
    out, err = after.communicate(timeout=300)
    assert after.returncode == 0, out + err
    ids = Counter(m.message["Message-ID"] for m in smtp.received)
    assert set(ids.values()) == {1} and len(ids) == len(expected)
    notes = _notes(config)
    assert set(notes.values()) == {1} and len(notes) == len(invoices)
