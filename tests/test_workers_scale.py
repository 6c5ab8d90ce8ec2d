"""Fifty organisations in one PostgreSQL database on three real Celery workers (issue 23):
each runs once per tick, every message and note goes once, and nothing crosses from one
organisation to another, also when two workers are SIGKILLed mid-batch and restarted.

Every organisation is a copy of the demo workspace under its own workspace name: the same
source id ("ledger") and the same reminder keys in one database, so a row read across
workspaces would send a reminder twice or not at all. Each copy has its own sender and
its own address for client C01, so a message crossing organisations is seen at the SMTP
server. Skips where no Redis or no PostgreSQL runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plugin.core.vocabulary import LogStatus
from tests.conftest import DEMO_NOW
from tests.fakes.smtp import SmtpServer, start_smtp
from tests.test_workers import REDIS, _redis_or_skip, start_worker

ORGANISATIONS = 50
#: Seconds before Redis hands a killed worker's run to another (an hour in production).
VISIBILITY = 15


@pytest.fixture
def celery_app() -> object:
    _redis_or_skip()
    from plugin.app.workers import make_app

    return make_app(REDIS)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def folder(demo_template: Path, tmp_path: Path, postgres_url: str, smtp: SmtpServer) -> Path:
    """ORGANISATIONS workspaces in one folder, all in one PostgreSQL database."""
    folder = tmp_path / "organisations"
    for number in range(ORGANISATIONS):
        workspace = folder / f"org{number:02}"
        shutil.copytree(demo_template, workspace)
        config = workspace / "kindly.toml"
        text = (
            config.read_text(encoding="utf-8")
            .replace(
                'url = "sqlite:///kindly.sqlite3"',
                f'url = {json.dumps(postgres_url)}\nworkspace = "org{number:02}"',
                1,
            )
            .replace("[delivery]\n", '[delivery]\nemail_via = "smtp"\n', 1)
            .replace(
                'email = "debiteuren@noordlicht.example"',
                f'email = "billing@org{number:02}.example"',
                1,
            )
        )
        text += (
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\nretry_wait = 0\n'
        )
        config.write_text(text, encoding="utf-8")
        customers = workspace / "ledger" / "customers.json"
        data = customers.read_text(encoding="utf-8")
        own = data.replace("administratie@bakkerijvandijk.example", f"ap@bakery{number:02}.example")
        assert own != data
        customers.write_text(own, encoding="utf-8")
    return folder


def _start_workers(
    tmp_path: Path, count: int, first: int = 0, visibility: int = 3600
) -> list[subprocess.Popen[str]]:
    return [
        start_worker(
            tmp_path / f"worker{n}.log",
            env={"KINDLY_VISIBILITY_TIMEOUT": str(visibility)},
            own_group=True,
        )
        for n in range(first, first + count)
    ]


def _kill(workers: list[subprocess.Popen[str]]) -> None:
    for process in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


def _expected_messages(demo_template: Path, tmp_path: Path) -> tuple[int, int]:
    """Messages and notes one demo organisation sends on its first run (in-process, on a
    store of its own)."""
    from plugin.app.cli.base import open_workspaces

    copy = tmp_path / "alone" / "workspace"
    shutil.copytree(demo_template, copy)
    (kindly,) = open_workspaces(copy / "kindly.toml")
    try:
        kindly.sync(DEMO_NOW)
        plan = kindly.plan(DEMO_NOW)
        return len(plan.reminders) + len(plan.appointments), len(plan.reminders)
    finally:
        kindly.store.close()


def _check_once_and_apart(
    folder: Path, postgres_url: str, smtp: SmtpServer, messages: int, notes: int
) -> dict[str, int]:
    """Every organisation's messages and notes once, none crossing; the unconfirmed
    ones (a kill between the hand-over and the server's answer) by organisation."""
    from plugin.state.store import Store

    ids = Counter(str(m.message["Message-ID"]) for m in smtp.received)
    assert not [i for i, n in ids.items() if n > 1], "a message went twice"
    by_sender: Counter[str] = Counter()
    for received in smtp.received:
        sender = str(received.message["From"])
        org = sender.split("@org")[1][:2]
        by_sender[org] += 1
        for recipient in received.recipients:
            if "@bakery" in recipient:
                assert recipient == f"ap@bakery{org}.example", "crossed organisations"
    store = Store.open(postgres_url)
    unconfirmed: dict[str, int] = {}
    try:
        assert store.workspaces() == [f"org{n:02}" for n in range(ORGANISATIONS)]
        for number in range(ORGANISATIONS):
            name = f"org{number:02}"
            own = store.in_workspace(name)
            log = own.reminders()
            statuses = Counter(entry.status for entry in log)
            assert len(log) == messages, (name, statuses)
            assert set(statuses) <= {LogStatus.SENT, LogStatus.UNCONFIRMED}, (name, statuses)
            unconfirmed[name] = statuses[LogStatus.UNCONFIRMED]
            # A reminder logged sent arrived; an unconfirmed one may have (the kill came
            # after the final dot) or not (before it); none arrived twice.
            delivered = by_sender[f"{number:02}"]
            assert statuses[LogStatus.SENT] <= delivered <= messages, (name, delivered)
            assert delivered + unconfirmed[name] >= messages, (name, delivered)
            snapshot = own.load_snapshot("ledger")
            assert snapshot is not None
            (c01,) = [c for c in snapshot.customers if c.id == "C01"]
            assert c01.emails == (f"ap@bakery{number:02}.example",), "records crossed"
            lines = (folder / name / "ledger" / "kindly-notes.jsonl").read_text().splitlines()
            written = Counter(json.loads(line)["id"] for line in lines if line.strip())
            assert set(written.values()) == {1} and len(written) == notes, name
    finally:
        store.close()
    return unconfirmed


def _tasks(tmp_path: Path, workers: tuple[int, ...], what: str) -> set[str]:
    """The ids of the runs the workers' logs say they ``what`` (received, succeeded)."""
    found = set()
    for number in workers:
        for line in (tmp_path / f"worker{number}.log").read_text().splitlines():
            match = re.search(r"kindly\.run_organisation\[([0-9a-f-]+)\] " + what, line)
            if match:
                found.add(match.group(1))
    return found


def _results_after_kills(
    celery_app: object,
    queued: list[dict[str, Any]],
    folder: Path,
    at: datetime,
    patience: float = VISIBILITY * 6,
) -> list[dict[str, Any]]:
    """The runs' results once workers were killed. Redis can lose a message a worker had
    just popped when it is killed (kombu's window between BRPOP and the unacknowledged
    index): its run stays claimed and not done, and the scheduler queues it again once
    the claim is REQUEUE_AFTER old. That look is made here, as of then."""
    from celery.exceptions import TimeoutError as ResultTimeout
    from celery.result import AsyncResult

    from plugin.app.workers import REQUEUE_AFTER, enqueue_due

    deadline = time.monotonic() + patience
    results, lost = [], []
    for entry in queued:
        try:
            wait = max(0.1, deadline - time.monotonic())
            results.append(AsyncResult(entry["task"], app=celery_app).get(timeout=wait))
        except ResultTimeout:
            lost.append(entry)
    if lost:
        later = (at + timedelta(seconds=REQUEUE_AFTER + 1)).isoformat()
        again = enqueue_due([str(folder)], later, via=celery_app)
        assert sorted(e["config"] for e in again) == sorted(e["config"] for e in lost)
        results += _results(celery_app, again)
    return results


def _results(celery_app: object, queued: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from celery.result import AsyncResult

    return [AsyncResult(entry["task"], app=celery_app).get(timeout=300) for entry in queued]


def test_fifty_organisations_in_one_database_run_once_on_three_workers(
    celery_app: object,
    folder: Path,
    postgres_url: str,
    smtp: SmtpServer,
    demo_template: Path,
    tmp_path: Path,
) -> None:
    from plugin.app.workers import enqueue_due

    messages, notes = _expected_messages(demo_template, tmp_path)
    workers = _start_workers(tmp_path, 3)
    try:
        queued = enqueue_due([str(folder)], DEMO_NOW.isoformat(), via=celery_app)
        assert len(queued) == ORGANISATIONS, "each organisation's first tick, queued once"
        results = _results(celery_app, queued)
        assert [r["sent"] for r in results] == [messages] * ORGANISATIONS, results[:3]
        # The tick was served: nothing is queued again until the next one.
        assert enqueue_due([str(folder)], DEMO_NOW.isoformat(), via=celery_app) == []
    finally:
        _kill(workers)
    unconfirmed = _check_once_and_apart(folder, postgres_url, smtp, messages, notes)
    assert set(unconfirmed.values()) == {0}
    assert len(smtp.received) == messages * ORGANISATIONS


def test_two_of_three_workers_killed_mid_batch_and_restarted_change_nothing(
    celery_app: object,
    folder: Path,
    postgres_url: str,
    smtp: SmtpServer,
    demo_template: Path,
    tmp_path: Path,
) -> None:
    """SIGKILL two workers (each with its pool process) once a tenth of the runs are
    done, start two new ones: Redis hands the killed workers' runs out again after the
    visibility timeout, the new worker takes the dead run's lease over (PostgreSQL let
    go of its lock with its connection) and finishes it. Still every message once and
    nothing crossing; a message whose hand-over the kill interrupted is logged
    unconfirmed, never sent twice (docs/delivery.md)."""
    from plugin.app.workers import enqueue_due

    messages, notes = _expected_messages(demo_template, tmp_path)
    workers = _start_workers(tmp_path, 3, visibility=VISIBILITY)
    try:
        queued = enqueue_due([str(folder)], DEMO_NOW.isoformat(), via=celery_app)
        assert len(queued) == ORGANISATIONS
        _results(celery_app, queued[: ORGANISATIONS // 10])
        _kill(workers[:2])
        assert all(process.returncode == -signal.SIGKILL for process in workers[:2])
        workers += _start_workers(tmp_path, 2, first=3, visibility=VISIBILITY)
        results = _results_after_kills(celery_app, queued, folder, DEMO_NOW)
        assert len(results) == ORGANISATIONS
        assert enqueue_due([str(folder)], DEMO_NOW.isoformat(), via=celery_app) == []
    finally:
        _kill(workers)
    # The killed workers held runs (each takes the next while the queue has some): Redis
    # handed them to the others after the visibility timeout.
    left_by_killed = _tasks(tmp_path, (0, 1), "received") - _tasks(tmp_path, (0, 1), "succeeded")
    done_by_others = _tasks(tmp_path, (2, 3, 4), "succeeded")
    assert left_by_killed and left_by_killed <= done_by_others, "killed runs taken over"
    unconfirmed = _check_once_and_apart(folder, postgres_url, smtp, messages, notes)
    # At most the message each killed worker was handing over.
    assert sum(unconfirmed.values()) <= 2, unconfirmed


WEBHOOK_ORGANISATIONS = 10
EVENTS = 1000


def test_a_burst_of_a_thousand_webhooks_for_ten_organisations_syncs_each_once(
    celery_app: object, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten workspaces on Xero (one fake Xero each) in one PostgreSQL database, behind
    one `kindly serve --queue` for the folder: a thousand signed events naming new
    invoices queue one sync per organisation; a worker then syncs each once, and each
    finds the invoices its events named, in the calls an incremental sync makes (counted
    at each fake, the same for all)."""
    import base64
    import hashlib
    import hmac
    import threading
    import urllib.request
    from datetime import date

    from celery.result import AsyncResult
    from click.testing import CliRunner
    from cryptography.fernet import Fernet

    from plugin.app.cli import cli
    from plugin.app.cli.base import open_workspaces
    from plugin.app.cli.webhooks import webhook_app
    from plugin.app.serve import make_server
    from tests.fakes.xero import FakeXero
    from tests.test_xero_cli import connect, write_config
    from tests.xero_harness import seed_small_ledger

    key = "the-webhook-key"
    env = {"KINDLY_SECRET_KEY": Fernet.generate_key().decode(), "KINDLY_XERO_WEBHOOK_KEY": key}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    folder = tmp_path / "firm"
    fakes: list[FakeXero] = []
    named: list[list[str]] = []
    server = None
    try:
        for number in range(WEBHOOK_ORGANISATIONS):
            fake = FakeXero()
            fake.start()
            fakes.append(fake)
            seeded = seed_small_ledger(fake)
            workspace = folder / f"org{number:02}"
            workspace.mkdir(parents=True)
            config = write_config(workspace, fake)
            text = config.read_text(encoding="utf-8").replace(
                'url = "sqlite:///state.sqlite3"',
                f'url = {json.dumps(postgres_url)}\nworkspace = "org{number:02}"',
            )
            config.write_text(text, encoding="utf-8")
            base = ["--config", str(config)]
            connect(runner, base, fake, env)
            synced = runner.invoke(cli, [*base, "sync"], env=env)
            assert synced.exit_code == 0, synced.output
            # What changed in this organisation's Xero since: the events name these.
            named.append(
                [
                    fake.add_invoice(
                        seeded["cleo"], f"NEW-{number}-{n}", "42.00",
                        issued=date(2026, 11, 1), due=date(2026, 11, 15),
                    )["InvoiceID"]
                    for n in range(5)
                ]
            )  # fmt: skip
        wsgi, _routes = webhook_app([folder], queue=True, via=celery_app)
        server = make_server("127.0.0.1", 0, wsgi, timeout=5.0)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
        url = f"http://127.0.0.1:{server.server_port}/webhooks/xero"
        for batch in range(EVENTS // 5):
            fake = fakes[batch % WEBHOOK_ORGANISATIONS]
            invoices = named[batch % WEBHOOK_ORGANISATIONS]
            events = [
                {
                    "resourceUrl": f"{fake.url}/api.xro/2.0/Invoices/{invoice}",
                    "resourceId": invoice,
                    "tenantId": fake.tenant_id,
                    "tenantType": "ORGANISATION",
                    "eventCategory": "INVOICE",
                    "eventType": "UPDATE",
                    "eventDateUtc": f"2026-11-22T09:{batch // 60:02}:{batch % 60:02}.000",
                }
                for invoice in invoices
            ]
            body = json.dumps(
                {"events": events, "firstEventSequence": batch, "lastEventSequence": batch,
                 "entropy": f"E{batch}"}
            ).encode()  # fmt: skip
            signature = base64.b64encode(
                hmac.new(key.encode(), body, hashlib.sha256).digest()
            ).decode()
            request = urllib.request.Request(
                url, data=body, headers={"x-xero-signature": signature}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 200
        assert wsgi.syncs.idle(60), "every sync handed to the queue"
        import redis

        queue = redis.Redis.from_url(REDIS).lrange("kindly", 0, -1)
        tasks = [json.loads(message)["headers"] for message in queue]
        assert [t["task"] for t in tasks] == ["kindly.sync_organisation"] * WEBHOOK_ORGANISATIONS
        before = [fake.api_calls() for fake in fakes]
        workers = _start_workers(tmp_path, 1)
        try:
            results = [AsyncResult(t["id"], app=celery_app).get(timeout=120) for t in tasks]
        finally:
            _kill(workers)
        assert len({r["organisation"] for r in results}) == WEBHOOK_ORGANISATIONS
        calls = [fake.api_calls() - made for fake, made in zip(fakes, before, strict=True)]
        assert len(set(calls)) == 1 and 0 < calls[0] <= 10, calls
        for number in range(WEBHOOK_ORGANISATIONS):
            (kindly,) = open_workspaces(folder / f"org{number:02}" / "kindly.toml")
            stored = kindly.store.load_snapshot(kindly.source_id)
            kindly.store.close()
            assert stored is not None
            assert set(named[number]) <= set(stored.invoices_by_id), number
            others = {i for n, ids in enumerate(named) if n != number for i in ids}
            assert not others & set(stored.invoices_by_id), "another organisation's invoices"
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        for fake in fakes:
            fake.stop()


CLIENTS = 20


def test_three_workers_keep_an_organisations_backlog_within_xeros_minute(
    celery_app: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One Xero organisation with more work than 60 calls (20 overdue clients: a link
    to each invoice, and each note into an invoice's and a contact's History), three
    workers, and a fake Xero
    that answers the 61st call of any minute with 429. The run stops at the shared
    limit and is queued again for when it returns, not slept on; the workers finish it.
    Counted at the fake: no 429, no 59 seconds with more than 60 calls, each note once."""
    from datetime import date

    from celery.result import AsyncResult
    from click.testing import CliRunner
    from cryptography.fernet import Fernet

    from plugin.app.cli import cli
    from plugin.app.workers import enqueue_due
    from tests.fakes.xero import FakeXero
    from tests.test_xero_cli import connect, write_config

    env = {"KINDLY_SECRET_KEY": Fernet.generate_key().decode()}
    monkeypatch.setenv("KINDLY_SECRET_KEY", env["KINDLY_SECRET_KEY"])
    fake = FakeXero()
    fake.start()
    workers: list[subprocess.Popen[str]] = []
    try:
        for number in range(CLIENTS):
            client = fake.add_contact(f"Client{number:02} Test")
            fake.add_invoice(
                client, f"INV-{number:04}", "100.00", issued=date(2026, 9, 1), due=date(2026, 10, 1)
            )
        config = write_config(tmp_path, fake)
        connect(CliRunner(), ["--config", str(config)], fake, env)
        fake.per_minute = 60
        fake.arrivals.clear()
        # The production redelivery time: a task queued again for a minute must not be
        # handed out twice meanwhile (Celery on Redis holds it unacknowledged till then).
        workers = _start_workers(tmp_path, 3, visibility=3600)
        (queued,) = enqueue_due([str(config)], via=celery_app)
        result = AsyncResult(queued["task"], app=celery_app).get(timeout=300)
        # The run that finished is the one queued again: everything had gone already.
        assert result["sent"] == 0 and result["failed"] == 0, result
        assert fake.limited == 0, "no call beyond Xero's minute"
        arrivals = sorted(fake.arrivals)
        assert len(arrivals) > 60, "the backlog needed more than a minute's calls"
        busiest = max(sum(1 for t in arrivals if start <= t < start + 59) for start in arrivals)
        assert busiest <= 60, busiest
        history = [key for key in fake.calls if key.startswith("PUT /api.xro/2.0/Invoices/")]
        assert len(history) == CLIENTS and {fake.calls[key] for key in history} == {1}
        cli_history = CliRunner().invoke(cli, ["--config", str(config), "history", "--json"])
        entries = json.loads(cli_history.output)
        assert len(entries) == CLIENTS and all(e["note_written_at"] for e in entries), entries[:2]
    finally:
        _kill(workers)
        fake.stop()


@pytest.mark.parametrize("killed", [False, True], ids=["calm", "two-killed"])
def test_fifty_xero_organisations_in_one_database_on_three_workers(
    celery_app: object,
    postgres_url: str,
    smtp: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    killed: bool,
) -> None:
    """The same on fake platforms: fifty Xero organisations (a fake Xero each, in this
    process), fifty workspaces of one PostgreSQL database, three workers (two of them
    SIGKILLed once a tenth of the runs are done, and two started). Each runs once for
    its tick; every message arrives once at the SMTP server (or, cut at its hand-over by
    a kill, is logged unconfirmed), from its own organisation to its own clients; every
    note is written once, counted at each fake; no 429 came back from Xero's minute."""
    from datetime import date

    from click.testing import CliRunner
    from cryptography.fernet import Fernet

    from plugin.app.workers import enqueue_due
    from tests.fakes.xero import FakeXero
    from tests.test_xero_cli import connect, write_config

    env = {"KINDLY_SECRET_KEY": Fernet.generate_key().decode()}
    monkeypatch.setenv("KINDLY_SECRET_KEY", env["KINDLY_SECRET_KEY"])
    folder = tmp_path / "firm"
    fakes: list[FakeXero] = []
    workers: list[subprocess.Popen[str]] = []
    try:
        for number in range(ORGANISATIONS):
            fake = FakeXero()
            fake.start(poll_interval=0.5)
            fake.per_minute = 60
            fakes.append(fake)
            for client in range(3):
                contact = fake.add_contact(
                    f"Client{client} Org{number:02}",
                    EmailAddress=f"ap{client}@org{number:02}.example",
                )
                fake.add_invoice(
                    contact, f"INV-{client}", "100.00",
                    issued=date(2026, 9, 1), due=date(2026, 10, 1),
                )  # fmt: skip
            workspace = folder / f"org{number:02}"
            workspace.mkdir(parents=True)
            config = write_config(workspace, fake, email_via="smtp")
            text = (
                config.read_text(encoding="utf-8")
                .replace(
                    'url = "sqlite:///state.sqlite3"',
                    f'url = {json.dumps(postgres_url)}\nworkspace = "org{number:02}"',
                )
                .replace(
                    'email = "ar@noordlicht.example"', f'email = "ar@sender{number:02}.example"'
                )
            )
            text += (
                f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
                "retry_wait = 0\n"
            )
            config.write_text(text, encoding="utf-8")
            connect(CliRunner(), ["--config", str(config)], fake, env)
        visibility = VISIBILITY if killed else 3600
        workers = _start_workers(tmp_path, 3, visibility=visibility)
        started = datetime.now(UTC)
        queued = enqueue_due([str(folder)], started.isoformat(), via=celery_app)
        assert len(queued) == ORGANISATIONS
        if killed:
            _results(celery_app, queued[: ORGANISATIONS // 10])
            _kill(workers[:2])
            workers += _start_workers(tmp_path, 2, first=3, visibility=visibility)
            results = _results_after_kills(celery_app, queued, folder, started)
        else:
            results = _results(celery_app, queued)
        if not killed:
            assert [r["sent"] for r in results] == [3] * ORGANISATIONS, results[:3]
        assert enqueue_due([str(folder)], started.isoformat(), via=celery_app) == []
        if killed:
            left = _tasks(tmp_path, (0, 1), "received") - _tasks(tmp_path, (0, 1), "succeeded")
            assert left and left <= _tasks(tmp_path, (2, 3, 4), "succeeded"), "taken over"
    finally:
        _kill(workers)
        for fake in fakes:
            fake.stop()
    ids = Counter(str(m.message["Message-ID"]) for m in smtp.received)
    assert set(ids.values()) == {1}, "no message twice"
    unconfirmed = _unconfirmed(postgres_url)
    assert len(ids) <= 3 * ORGANISATIONS <= len(ids) + unconfirmed and unconfirmed <= 2 * killed
    for received in smtp.received:
        sender = str(received.message["From"]).split("@sender")[1][:2]
        assert all(r.endswith(f"@org{sender}.example") for r in received.recipients)
    for fake in fakes:
        assert fake.limited == 0
        history = [k for k in fake.calls if k.startswith("PUT /api.xro/2.0/Invoices/")]
        # A note cut by a kill is looked for before it is written again: once each.
        assert len(history) == 3 and {fake.calls[k] for k in history} <= {1, 2}
        assert {len(notes) for notes in fake.history.values()} <= {0, 1}, "each note once"


def _unconfirmed(postgres_url: str) -> int:
    from plugin.state.store import Store

    store = Store.open(postgres_url)
    try:
        return sum(
            len(store.in_workspace(name).reminders(statuses=(LogStatus.UNCONFIRMED,)))
            for name in store.workspaces()
        )
    finally:
        store.close()


def test_runs_the_broker_lost_are_queued_again_once_their_claim_is_old(
    celery_app: object, folder: Path, postgres_url: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    """The queue loses every message (a Redis restarted without its data, or a worker
    killed between taking a message and recording it): the runs stay claimed and not
    done, so the scheduler's look REQUEUE_AFTER later queues each once again, and a
    worker runs them; nothing is sent twice."""
    import redis

    from plugin.app.workers import QUEUE, enqueue_due

    for extra in sorted(folder.iterdir())[5:]:
        shutil.rmtree(extra)  # five organisations are enough here
    queued = enqueue_due([str(folder)], DEMO_NOW.isoformat(), via=celery_app)
    assert len(queued) == 5
    redis.Redis.from_url(REDIS).delete(QUEUE)  # lost before any worker took them
    workers = _start_workers(tmp_path, 2)
    try:
        results = _results_after_kills(celery_app, queued, folder, DEMO_NOW, patience=2.0)
    finally:
        _kill(workers)
    assert len(results) == 5 and all(r["sent"] > 0 for r in results)
    ids = Counter(str(m.message["Message-ID"]) for m in smtp.received)
    assert set(ids.values()) == {1} and len(ids) == sum(r["sent"] for r in results)
