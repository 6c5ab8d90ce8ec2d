"""Many organisations on real Celery workers (subprocesses) and a real Redis: the scheduler's
runs claimed once, each organisation's reminders sent once, a run caught up once, and two
schedulers at once queueing each run once. Skips where no Redis runs on 127.0.0.1:6379."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO_NOW

REDIS = os.environ.get("KINDLY_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
ORGANISATIONS = 4


def _redis_or_skip() -> None:
    try:
        import redis

        client = redis.Redis.from_url(REDIS, socket_connect_timeout=2)
        client.ping()
        client.flushdb()
    except Exception as exc:
        pytest.skip(f"no Redis at {REDIS}: {type(exc).__name__}")


def start_worker(
    log: Path,
    *,
    broker: str = REDIS,
    concurrency: int = 1,
    env: dict[str, str] | None = None,
    own_group: bool = False,
) -> subprocess.Popen[str]:
    """A real `kindly worker` process on ``broker``, its log in ``log``; ``own_group``: in
    a process group of its own, so that a SIGKILL takes its pool process too."""
    return subprocess.Popen(
        [sys.executable, "-m", "plugin.app.cli", "worker", "--broker", broker,
         "--concurrency", str(concurrency)],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),
        text=True,
        cwd=log.parent,
        start_new_session=own_group,
        env={**os.environ, "KINDLY_BROKER_URL": broker, **(env or {})},
    )  # fmt: skip


def stop_worker(process: subprocess.Popen[str]) -> None:
    """A warm shutdown: a task is acknowledged only after its result is stored
    (acks_late), so a SIGKILL in that gap would hand a finished run back to the queue."""
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


@pytest.fixture
def celery_app() -> object:
    _redis_or_skip()
    from plugin.app.workers import make_app

    return make_app(REDIS)


@pytest.fixture
def organisations(demo_template: Path, tmp_path: Path) -> list[Path]:
    """Four demo workspaces, each with its own ledger, store and outbox."""
    configs = []
    for number in range(ORGANISATIONS):
        folder = tmp_path / f"org{number}"
        shutil.copytree(demo_template, folder / "workspace")
        configs.append(folder / "workspace" / "kindly.toml")
    return configs


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    _redis_or_skip()
    started = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "plugin.app.cli",
                "worker",
                "--broker",
                REDIS,
                "--concurrency",
                "2",
                "--json-logs",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"worker{n}.log", "w"),  # noqa: SIM115
            text=True,
            cwd=tmp_path,
            env={**os.environ, "KINDLY_BROKER_URL": REDIS},
        )
        for n in range(2)
    ]
    yield started
    for process in started:
        stop_worker(process)


def _outbox(config: Path) -> list[Path]:
    return sorted((config.parent.parent / "outbox").glob("*.eml"))


def _wait_for(celery_app: object, queued: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from celery.result import AsyncResult

    return [AsyncResult(entry["task"], app=celery_app).get(timeout=180) for entry in queued]


def test_each_organisation_runs_once_per_tick_on_real_workers(
    celery_app: object, organisations: list[Path], workers: list[subprocess.Popen[str]]
) -> None:
    from plugin.app.workers import enqueue_due
    from plugin.state.store import Store

    configs = [str(path) for path in organisations]
    at = DEMO_NOW.isoformat()
    first = enqueue_due(configs, at, via=celery_app)
    assert len(first) == ORGANISATIONS, "never run: each runs at once"
    results = _wait_for(celery_app, first)
    sent = [result["sent"] for result in results]
    assert all(isinstance(n, int) and n > 0 for n in sent), results
    counts = [len(_outbox(Path(config))) for config in configs]
    assert counts == sent, "every organisation's reminders, each once"
    # That first run served every zone whose tick of the day had come: nothing is due
    # again until the next tick.
    assert enqueue_due(configs, at, via=celery_app) == []
    store = Store.open(f"sqlite:///{organisations[0].parent / 'kindly.sqlite3'}")
    try:
        runs = store.scheduled()
        zones = {run["zone"] for run in runs} - {"first"}
        assert zones and all(run["done_at"] for run in runs)
    finally:
        store.close()
    # The next day, every zone's tick has come (the demo's windows are "always"): one
    # run each, serving them all, which finds nothing new to send.
    tomorrow = (DEMO_NOW + timedelta(days=1)).isoformat()
    second = enqueue_due(configs, tomorrow, via=celery_app)
    assert len(second) == ORGANISATIONS
    # (and the appointment calendar's hourly look, due too)
    assert all(
        {zone for zone, _ in entry["ticks"] if not zone.startswith("wake|")} == zones
        for entry in second
    )
    again = _wait_for(celery_app, second)
    assert {result["sent"] for result in again} == {0}
    assert [len(_outbox(Path(config))) for config in configs] == counts
    assert enqueue_due(configs, tomorrow, via=celery_app) == []
    # `kindly status`: each organisation's last run and the next, and an empty queue.
    from plugin.app.workers import status

    shown = status(configs, DEMO_NOW + timedelta(days=1), REDIS)
    assert shown["queued"] == 0
    for organisation in shown["organisations"]:
        assert organisation["last_run"] and "sent 0" in organisation["last_result"]
        next_run = datetime.fromisoformat(organisation["next_run"])
        assert next_run > DEMO_NOW + timedelta(days=1) and organisation["waiting"] == 0
        assert organisation["failed_this_week"] == []
    # The same in the web app's page of runs.
    page = _runs_page(organisations[0], DEMO_NOW + timedelta(days=1))
    assert "Runs waiting in the queue: 0" in page
    row = re.search(r"<tbody>\s*<tr>(.*?)</tr>", page, re.S)
    assert row and "sent 0" in row.group(1) and "never" not in row.group(1)


def _runs_page(config: Path, now: datetime) -> str:
    from plugin.app.cli.base import open_workspaces
    from plugin.app.web import create_app
    from plugin.app.web.accounts import Accounts
    from tests.web_harness import NAME, PASSWORD, sign_in

    (kindly,) = open_workspaces(config)
    Accounts(kindly.store).add(NAME, PASSWORD, ["*"], now)
    kindly.store.close()
    client = create_app(config, clock=lambda: now).test_client()
    assert sign_in(client) == 302
    before = os.environ.get("KINDLY_BROKER_URL")
    os.environ["KINDLY_BROKER_URL"] = REDIS
    try:
        return client.get("/runs").get_data(as_text=True)
    finally:
        if before is None:
            del os.environ["KINDLY_BROKER_URL"]
        else:
            os.environ["KINDLY_BROKER_URL"] = before


def test_a_missed_week_is_caught_up_once(
    celery_app: object, organisations: list[Path], workers: list[subprocess.Popen[str]]
) -> None:
    from plugin.app.workers import enqueue_due

    configs = [str(organisations[0])]
    _wait_for(celery_app, enqueue_due(configs, DEMO_NOW.isoformat(), via=celery_app))
    # The workers were down for a week: each zone runs once, for the latest day, not
    # once for each day missed.
    later = DEMO_NOW + timedelta(days=7)
    caught_up = enqueue_due(configs, later.isoformat(), via=celery_app)
    (run,) = caught_up
    daily = [(zone, day) for zone, day in run["ticks"] if not zone.startswith("wake|")]
    zones = [zone for zone, _ in daily]
    assert len(zones) == len(set(zones)) > 0, "each zone once"
    days = {day for _, day in daily}
    assert days <= {(later - timedelta(days=n)).date().isoformat() for n in range(2)}
    _wait_for(celery_app, caught_up)
    assert enqueue_due(configs, later.isoformat(), via=celery_app) == []


SCHEDULER = """
import json, sys
from plugin.app.workers import enqueue_due, make_app
queued = enqueue_due(json.loads(sys.argv[1]), sys.argv[2], via=make_app(sys.argv[3]))
print(json.dumps(queued))
"""


def test_two_schedulers_at_once_queue_each_run_once(
    celery_app: object, organisations: list[Path]
) -> None:
    configs = json.dumps([str(path) for path in organisations])
    at = DEMO_NOW.isoformat()
    schedulers = [
        subprocess.Popen(
            [sys.executable, "-c", SCHEDULER, configs, at, REDIS],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    queued: list[dict[str, Any]] = []
    for process in schedulers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        queued += json.loads(out)
    runs = [entry["config"] for entry in queued]
    assert sorted(runs) == sorted(json.loads(configs)), "each organisation once"


def test_the_schedule_is_pure_and_catches_up_once() -> None:
    from plugin.core.businessdays import SendWindow
    from plugin.core.schedule import Zone, due_ticks, next_tick

    oslo = Zone("Europe/Oslo", "NO", SendWindow.parse("09:00-17:00"))
    friday_noon = datetime(2026, 12, 4, 11, 0, tzinfo=UTC)
    (tick,) = due_ticks([oslo], {}, friday_noon)
    assert tick.day == date(2026, 12, 4) and tick.at.hour == 9 and tick.at.minute == 5
    # Done Friday: nothing on the weekend; Monday's tick next.
    sunday = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert due_ticks([oslo], {oslo.key: date(2026, 12, 4)}, sunday) == []
    following = next_tick(oslo, sunday)
    assert following is not None and following.day == date(2026, 12, 7)
    # Christmas: after the 24th's tick, the next business day in Norway is the 28th.
    christmas = next_tick(oslo, datetime(2026, 12, 24, 12, 0, tzinfo=UTC))
    assert christmas is not None and christmas.day == date(2026, 12, 28)
    with pytest.raises(ValueError, match="aware"):
        due_ticks([oslo], {}, datetime(2026, 12, 4, 11, 0))


def test_workers_killed_mid_run_leave_every_reminder_sent_once(
    celery_app: object, organisations: list[Path], tmp_path: Path
) -> None:
    """Both workers SIGKILL their own process in the third delivery of every run they
    take (KINDLY_CRASH_AT: so each lost run gets two deliveries further each time);
    Celery gives each lost run to a worker again, which takes the dead run's lease over
    and goes on. Every organisation's reminders arrive
    once at the SMTP server, and every note is written once."""
    from collections import Counter

    from plugin.app.cli.base import open_workspaces
    from plugin.app.workers import enqueue_due
    from tests.fakes.smtp import start_smtp

    smtp = start_smtp(tmp_path)
    started: list[subprocess.Popen[str]] = []
    try:
        expected: dict[str, set[str]] = {}
        for number, config in enumerate(organisations):
            # Each organisation its own sender domain: its Message-IDs are its own.
            text = (
                config.read_text(encoding="utf-8")
                .replace("[delivery]\n", '[delivery]\nemail_via = "smtp"\n', 1)
                .replace(
                    'email = "debiteuren@noordlicht.example"',
                    f'email = "billing@org{number}.example"',
                    1,
                )
            )
            text += (
                f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
                "retry_wait = 0\n"
            )
            config.write_text(text, encoding="utf-8")
            (kindly,) = open_workspaces(config)
            kindly.sync(DEMO_NOW)
            plan = kindly.plan(DEMO_NOW)
            expected[str(config)] = {r.key for r in plan.reminders} | {
                a.key for a in plan.appointments
            }
            kindly.store.close()
        # Killed once a message went (its 250 came, not yet marked), and once a reminder
        # was claimed and not yet handed over: neither may be sent twice or lost. (A kill
        # between the hand-over and the final dot leaves one reminder unconfirmed that
        # did not arrive, by design: docs/delivery.md.)
        for crash in ("delivered:3", "intent:3"):
            started.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "plugin.app.cli",
                        "worker",
                        "--broker",
                        REDIS,
                        "--concurrency",
                        "1",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=open(tmp_path / f"worker{len(started)}.log", "w"),  # noqa: SIM115
                    text=True,
                    cwd=tmp_path,
                    env={**os.environ, "KINDLY_BROKER_URL": REDIS, "KINDLY_CRASH_AT": crash},
                )
            )
        queued = enqueue_due([str(c) for c in organisations], DEMO_NOW.isoformat(), via=celery_app)
        _wait_for(celery_app, queued)
        ids = Counter(m.message["Message-ID"] for m in smtp.received)
        twice = [i for i, n in ids.items() if n > 1]
        assert not twice, f"sent twice: {twice}"
        assert len(ids) == sum(len(keys) for keys in expected.values())
        logs = "".join(p.read_text() for p in tmp_path.glob("worker*.log"))
        assert "WorkerLostError" in logs, "the workers were killed mid-run"
        for config in organisations:
            lines = (config.parent / "ledger" / "kindly-notes.jsonl").read_text().splitlines()
            notes = Counter(json.loads(line)["id"] for line in lines if line.strip())
            assert set(notes.values()) == {1}, "each note once"
    finally:
        for process in started:
            process.kill()
            process.wait(30)
        smtp.stop()


def test_a_webhook_burst_queues_one_sync_per_organisation(
    celery_app: object, organisations: list[Path], tmp_path: Path
) -> None:
    """A thousand webhook events for four organisations, while no worker runs: four
    syncs queued; a worker then syncs each organisation once."""
    from celery.result import AsyncResult

    from plugin.app.cli.base import open_workspaces
    from plugin.app.workers import queue_sync

    configs = [str(path) for path in organisations]
    sources = {config: open_workspaces(Path(config))[0].source_id for config in configs}
    ids = [
        queue_sync(configs[n % len(configs)], sources[configs[n % len(configs)]], via=celery_app)
        for n in range(1000)
    ]
    queued = [task for task in ids if task is not None]
    assert len(queued) == ORGANISATIONS
    worker = start_worker(tmp_path / "worker.log", concurrency=2)
    try:
        results = [AsyncResult(task, app=celery_app).get(timeout=180) for task in queued]
    finally:
        stop_worker(worker)
    assert sorted(r["organisation"] for r in results) == sorted(sources.values())
    assert all(r["invoices"] > 0 for r in results)
    # Once a sync has started, the next webhook queues another (what it names may be new).
    assert queue_sync(configs[0], sources[configs[0]], via=celery_app) is not None


LIMITED = """
import json, sys, time
from plugin.app.workers import RedisLimits
limits = RedisLimits(sys.argv[1])
rules = [("kindly:limit:test:org1:20/2s", 20, 2.0), ("kindly:limit:test:app:50/60s", 50, 60.0)]
granted = []
while len(granted) < 15:
    wait = limits.take(rules)
    if wait:
        time.sleep(wait)  # what a worker does: come back when the limit returns
        continue
    seconds, micros = limits.client.time()
    granted.append(seconds + micros / 1e6)
print(json.dumps(granted))
"""


def test_three_workers_share_one_organisations_limit(celery_app: object) -> None:
    """Three processes calling for one organisation with a limit of 20 calls in any two
    seconds (and 50 a minute for the app): counted on Redis's clock, no two seconds see
    more than 20 of their 45 calls."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", LIMITED, REDIS],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert len(json.loads(out)) == 15
    # The app's window (a minute) still holds every call, as Redis's clock counted it.
    import redis

    client = redis.Redis.from_url(REDIS)
    rows: Any = client.zrange("kindly:limit:test:app:50/60s", 0, -1, withscores=True)
    counted = [float(score) for _, score in rows]
    assert len(counted) == 45
    busiest = max(sum(1 for t in counted if start <= t < start + 2000) for start in counted)
    assert busiest <= 20, "never more than 20 in any two seconds"
    assert max(counted) - min(counted) >= 2000, "the third twenty had to wait for the window"


def test_a_connector_on_a_worker_counts_its_calls_with_every_other_worker(
    celery_app: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the limits shared (as each worker process does at start), a company's calls
    are counted in Redis: the 26th within the limit is not made, and says when the budget
    returns, for the task to be queued again (a wait of a few seconds is slept)."""
    from integrations.bookkeeping.pennylane import PennylaneConnector
    from integrations.http import Limit, RetriableError, SharedBudget, share_limits
    from plugin.app.workers import RedisLimits
    from tests.fakes.pennylane import FakePennylane
    from tests.pennylane_harness import connect_to_fake, seed_small_company

    fake = FakePennylane()
    fake.start()
    share_limits(RedisLimits(REDIS))
    # Pennylane's 25 calls, over five minutes here: the test's calls stay inside however
    # slow the machine, and the wait is too long to sleep through.
    monkeypatch.setattr(PennylaneConnector, "call_limits", (Limit(25, 300),))
    try:
        seeded = seed_small_company(fake)
        pennylane = connect_to_fake(fake, tmp_path)
        connector = pennylane.connector
        assert isinstance(connector.http.budget, SharedBudget)
        invoice = str(seeded["a1"]["id"])
        for _ in range(25):
            assert len(connector.read_invoices([invoice])) == 1
        # `kindly status` shows the budget as the workers used it.
        from types import SimpleNamespace

        from plugin.app.workers import _budgets

        shown = _budgets(SimpleNamespace(source=connector), REDIS)  # type: ignore[arg-type]
        assert [(b["limit"], b["used"]) for b in shown] == [("25 in 300 s", 25)]
        calls = fake.api_calls()
        with pytest.raises(RetriableError) as used_up:
            connector.read_invoices([invoice])
        # (the window counted a little longer than the platform says: 2%)
        assert used_up.value.later and 5 < (used_up.value.retry_after or 0) <= 306
        assert fake.api_calls() == calls, "the call was not made"
        pennylane.store.close()
    finally:
        share_limits(None)
        fake.stop()


def test_an_organisation_that_fails_is_marked_and_the_others_run(
    celery_app: object, organisations: list[Path], workers: list[subprocess.Popen[str]]
) -> None:
    """One organisation's ledger is gone: its run fails and says why, is not claimed for
    ever (nothing more is due until its next tick), and `kindly status` lists it; the
    other organisations run as ever."""
    from plugin.app.workers import enqueue_due, status

    broken, fine = organisations[0], organisations[1]
    shutil.rmtree(broken.parent / "ledger")
    configs = [str(broken), str(fine)]
    at = DEMO_NOW.isoformat()
    results = _wait_for(celery_app, enqueue_due(configs, at, via=celery_app))
    by_workspace = dict(zip(configs, results, strict=True))
    assert str(by_workspace[str(broken)]["detail"]).startswith("failed")
    assert by_workspace[str(fine)]["sent"] > 0
    assert enqueue_due(configs, at, via=celery_app) == []
    shown = {o["workspace"]: o for o in status(configs, DEMO_NOW, REDIS)["organisations"]}
    assert len(shown[str(broken)]["failed_this_week"]) == 1
    assert shown[str(fine)]["failed_this_week"] == []
    # The workers' log lines are JSON, each about its organisation and task.
    lines = [
        json.loads(line)
        for log_file in broken.parent.parent.parent.glob("worker*.log")
        for line in log_file.read_text().splitlines()
        if line.startswith("{")
    ]
    failed = [line for line in lines if line["level"] == "warning"]
    assert failed and failed[0]["workspace"] == str(broken) and failed[0]["task"]


def test_appointment_reminders_wake_the_organisation_between_ticks(
    celery_app: object, organisations: list[Path], workers: list[subprocess.Popen[str]]
) -> None:
    """The demo has a calendar: after a run the organisation is due again within the
    hour (new bookings, an appointment reminder's hour), however its daily ticks fall."""
    from plugin.app.workers import enqueue_due

    configs = [str(organisations[0])]
    _wait_for(celery_app, enqueue_due(configs, DEMO_NOW.isoformat(), via=celery_app))
    assert enqueue_due(configs, DEMO_NOW.isoformat(), via=celery_app) == []
    later = DEMO_NOW + timedelta(hours=1, minutes=1)
    (woken,) = enqueue_due(configs, later.isoformat(), via=celery_app)
    assert [zone.split("|")[0] for zone, _ in woken["ticks"]] == ["wake"]
    _wait_for(celery_app, [woken])
    assert enqueue_due(configs, later.isoformat(), via=celery_app) == []


HOLDER = """
import sys
from pathlib import Path
from plugin.app.cli.base import open_workspaces
(kindly,) = open_workspaces(Path(sys.argv[1]))
with kindly.holding():
    print("held", flush=True)
    sys.stdin.read()  # until the test lets go
"""


class _Again(Exception):
    pass


class _Task:
    """What run_organisation asks of its Celery task: its id, and a retry."""

    class request:
        id = "test-task"

    def __init__(self) -> None:
        self.countdowns: list[float] = []

    def retry(self, countdown: float) -> _Again:
        self.countdowns.append(countdown)
        return _Again()


def test_a_run_waits_whole_while_another_process_holds_its_organisation(
    organisations: list[Path],
) -> None:
    """Another process holds the organisation's lease (a webhook's sync, another run):
    the run neither syncs nor plans nor sends; it goes back on the queue for later."""
    from plugin.app.workers import BUSY_RETRY, run_organisation
    from plugin.state.store import Store

    config = organisations[0]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(config)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        task = _Task()
        with pytest.raises(_Again):
            run_organisation(
                task, str(config), "ledger", [("first", "2026-11-22")], DEMO_NOW.isoformat()
            )
        assert task.countdowns == [BUSY_RETRY]
    finally:
        holder.communicate("", timeout=30)
    store = Store.open(f"sqlite:///{config.parent / 'kindly.sqlite3'}")
    try:
        assert store.load_snapshot("ledger") is None, "not synced while another held it"
        assert store.reminders("ledger") == [], "nothing sent"
    finally:
        store.close()


def test_sync_now_in_the_web_app_runs_on_a_worker(
    celery_app: object, demo_workspace: Path, workers: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    """`kindly web --queue`: "Sync now" is queued; a worker syncs, and the page that polls
    (here the API) follows its progress to "done" through the store."""
    from celery.result import AsyncResult

    from plugin.app.workers import queue_web_sync
    from tests.fakes.smtp import start_smtp
    from tests.web_harness import sign_in, web_app

    smtp = start_smtp(tmp_path)
    try:
        web = web_app(demo_workspace, smtp)
        web.app.config["KINDLY_QUEUE"] = queue_web_sync(celery_app)
        client = web.app.test_client()
        assert sign_in(client) == 302
        token = client.get("/api/v1/session").get_json()["csrf_token"]
        path = f"/api/v1/organisations/{web.org}/sync"
        started = client.post(path, headers={"X-CSRF-Token": token})
        assert started.status_code == 202 and started.get_json()["state"] == "running"
        (task,) = web.app.extensions["kindly.queued"]
        assert not web.app.extensions.get("kindly.syncs"), "no sync ran in the web app"
        AsyncResult(task, app=celery_app).get(timeout=120)
        done = client.get(path).get_json()
        assert (done["state"], done["clients"], done["invoices"]) == ("done", 14, 66)
    finally:
        smtp.stop()


AMQP = os.environ.get("KINDLY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def test_rabbitmq_as_the_broker_with_redis_beside_it(
    organisations: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RabbitMQ carries the runs; the results, the shared limits and the pending webhook
    syncs stay in Redis (KINDLY_REDIS_URL). Skips where no RabbitMQ runs."""
    import socket

    from celery.result import AsyncResult

    from plugin.app.workers import enqueue_due, make_app, status

    _redis_or_skip()
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"no RabbitMQ on 127.0.0.1:5672: {exc}")
    monkeypatch.setenv("KINDLY_REDIS_URL", REDIS)
    rabbit = make_app(AMQP)
    rabbit.control.purge()  # what an earlier run left on this machine's queue
    worker = start_worker(tmp_path / "worker.log", broker=AMQP, env={"KINDLY_REDIS_URL": REDIS})
    try:
        configs = [str(path) for path in organisations[:2]]
        queued = enqueue_due(configs, DEMO_NOW.isoformat(), via=rabbit)
        assert len(queued) == 2
        results = [AsyncResult(q["task"], app=rabbit).get(timeout=120) for q in queued]
    finally:
        stop_worker(worker)
    assert all(result["sent"] > 0 for result in results), results
    assert [len(_outbox(Path(config))) for config in configs] == [r["sent"] for r in results]
    shown = status(configs, DEMO_NOW, AMQP)
    assert shown["queued"] == 0, "asked of RabbitMQ"
    assert all(org["last_run"] for org in shown["organisations"])


def test_an_organisations_steps_run_alone_on_a_worker(
    celery_app: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sync, plan, send and write notes, each a task of its own, keyed: asked twice while
    one waits, it is queued once. Xero refuses the notes at first (429 for an hour): the
    send leaves them pending; once it takes them, the notes step writes each once."""
    from celery.result import AsyncResult
    from click.testing import CliRunner
    from cryptography.fernet import Fernet

    from plugin.app.cli.base import open_workspaces
    from plugin.app.workers import queue_step
    from tests.fakes.xero import FakeXero
    from tests.test_xero_cli import connect, write_config
    from tests.xero_harness import seed_small_ledger

    env = {"KINDLY_SECRET_KEY": Fernet.generate_key().decode()}
    monkeypatch.setenv("KINDLY_SECRET_KEY", env["KINDLY_SECRET_KEY"])
    fake = FakeXero()
    fake.start()
    seed_small_ledger(fake)
    config = write_config(tmp_path, fake)
    connect(CliRunner(), ["--config", str(config)], fake, env)
    (kindly,) = open_workspaces(config)
    source = kindly.source_id
    kindly.store.close()
    fake.refuse_history = True
    worker = start_worker(tmp_path / "worker.log")

    def step(name: str) -> dict[str, Any]:
        task = queue_step(name, str(config), source, via=celery_app)
        assert task is not None
        result: dict[str, Any] = AsyncResult(task, app=celery_app).get(timeout=120)
        return result

    try:
        assert step("sync")["invoices"] > 0
        planned = step("plan")
        assert planned["reminders"] > 0
        sent = step("send")
        assert sent["sent"] == planned["reminders"] + planned["appointments"]
        assert sent["notes_written"] == 0 and sent["notes_pending"] == planned["reminders"]
        fake.refuse_history = False
        written = step("notes")
        assert written["notes_written"] == planned["reminders"] and written["notes_pending"] == 0
        assert step("plan")["reminders"] == 0, "nothing is due twice"
        assert step("notes")["notes_written"] == 0, "each note once"
        # Asked twice while the first waits (no worker takes it): queued once.
        stop_worker(worker)
        assert queue_step("notes", str(config), source, via=celery_app) is not None
        assert queue_step("notes", str(config), source, via=celery_app) is None
    finally:
        stop_worker(worker)
        fake.stop()
    history = [key for key in fake.calls if key.startswith("PUT /api.xro/2.0/Invoices/")]
    assert history, "the notes went to the invoices' History"


def test_workspaces_whose_settings_the_database_holds_run_on_a_worker(
    celery_app: object,
    demo_template: Path,
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No kindly.toml on the workers' disk: three workspaces' settings imported into one
    PostgreSQL database, the scheduler given db: (every one held there), a worker that
    knows only the database. Each runs once and sends its own; `kindly status` shows them."""
    from click.testing import CliRunner

    from plugin.app.cli import cli
    from plugin.app.stored_settings import data_folder
    from plugin.app.workers import enqueue_due

    env = {"KINDLY_STORE_URL": postgres_url, "KINDLY_DATA_DIR": str(tmp_path / "data")}
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    config = tmp_path / "kindly.toml"
    # Each workspace's outbox in its own data folder.
    text = (demo_template / "kindly.toml").read_text(encoding="utf-8")
    config.write_text(text.replace('"../outbox"', '"outbox"'), encoding="utf-8")
    names = ["acme", "bravo", "charlie"]
    for name in names:
        shutil.copytree(demo_template / "ledger", data_folder(name) / "ledger")
        held = CliRunner().invoke(cli, ["settings", "import", str(config), "--as", name])
        assert held.exit_code == 0, held.output
    worker = start_worker(tmp_path / "worker.log", env=env)
    try:
        queued = enqueue_due(["db:"], DEMO_NOW.isoformat(), via=celery_app)
        assert sorted(entry["config"] for entry in queued) == [f"db:{n}" for n in names]
        results = _wait_for(celery_app, queued)
        assert enqueue_due(["db:"], DEMO_NOW.isoformat(), via=celery_app) == []
    finally:
        stop_worker(worker)
    sent = {entry["config"]: result["sent"] for entry, result in zip(queued, results, strict=True)}
    assert all(n > 0 for n in sent.values())
    assert sent == {f"db:{n}": len(list((data_folder(n) / "outbox").glob("*.eml"))) for n in names}
    shown = CliRunner().invoke(
        cli, ["--config", "db:acme", "status", "--broker", REDIS, "--workspace", "db:", "--json"]
    )
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.output)
    assert sorted(org["workspace"] for org in found["organisations"]) == [f"db:{n}" for n in names]
    assert all(org["last_run"] for org in found["organisations"])
