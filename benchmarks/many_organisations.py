"""Many organisations on real Celery workers: organisations per minute, time from schedule
to done, and memory per worker, with 1, 2 and 4 worker processes on this machine.

    .venv/bin/python benchmarks/many_organisations.py [--organisations 1000] [--workers 1 2 4]

Each organisation is a workspace of its own (a local ledger of 50 to 500 invoices, a fifth
of them overdue, its own SQLite store) sending by SMTP to aiosmtpd's Sink in a process of
its own. For each worker count, the workspaces are copied afresh, the workers started
(`kindly worker --concurrency 1` each), every organisation queued at once as the scheduler
does (`enqueue_due`), and the results awaited. Needs Redis on 127.0.0.1:6379 (database 14,
emptied first).

Reported: organisations a minute; p50 and p95 from queueing to the run's end (its notes
written); peak resident memory of a worker process; reminders sent. The local ledger makes
no API calls: calls per organisation on the platforms are in their own benchmarks
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BROKER = "redis://127.0.0.1:6379/14"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
LANGUAGES = [("nl", "NL"), ("en", "GB"), ("de", "DE"), ("fr", "FR"), ("nb", "NO"), ("es", "ES")]


def write_workspace(folder: Path, invoices: int, port: int, number: int) -> Path:
    ledger = folder / "ledger"
    ledger.mkdir(parents=True)
    clients = max(10, invoices // 5)
    customers = [
        {
            "id": f"C{n:05d}",
            "name": f"Client {n} of {number}",
            "email": f"ap{n}@client{n}.org{number}.example",
            "language": LANGUAGES[n % len(LANGUAGES)][0],
            "country": LANGUAGES[n % len(LANGUAGES)][1],
            "kind": "business",
            "address": [f"Street {n}", "1000 AA City"],
        }
        for n in range(clients)
    ]
    rows = []
    for n in range(invoices):
        overdue = n % 5 == 0
        due = (NOW - timedelta(days=20 if overdue else -20)).date()
        rows.append(
            {
                "id": f"INV-{n:05d}",
                "number": f"2026-{n:05d}",
                "customer_id": f"C{n % clients:05d}",
                "issue_date": (due - timedelta(days=30)).isoformat(),
                "due_date": due.isoformat(),
                "currency": "EUR",
                "total": f"{100 + n % 900}.50",
            }
        )
    for name, records in (("customers", customers), ("invoices", rows)):
        (ledger / f"{name}.json").write_text(json.dumps(records), encoding="utf-8")
    for name in ("payments", "credit_notes", "promises", "appointments"):
        (ledger / f"{name}.json").write_text("[]", encoding="utf-8")
    config = folder / "kindly.toml"
    config.write_text(
        f"""connector = "ledger"
[ledger]
path = "ledger"
[store]
url = "sqlite:///kindly.sqlite3"
[delivery]
email_via = "smtp"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
[company]
name = "Organisation {number} B.V."
email = "billing@org{number}.example"
address = ["Prinsengracht 263", "1016 GV Amsterdam"]
country = "NL"
[policy]
send_window = "always"
channels = ["email"]
""",
        encoding="utf-8",
    )
    return config


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_round(template: Path, count: int, workers: int) -> dict[str, Any]:
    import redis
    from celery.result import AsyncResult

    from plugin.app.workers import enqueue_due, make_app

    redis.Redis.from_url(BROKER).flushdb()
    work = Path(tempfile.mkdtemp(prefix="kindly-many-"))
    shutil.copytree(template, work / "orgs")
    configs = [str(work / "orgs" / f"org{n}" / "kindly.toml") for n in range(count)]
    env = {**os.environ, "KINDLY_BROKER_URL": BROKER}
    started = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "plugin.app.cli",
                "worker",
                "--broker",
                BROKER,
                "--concurrency",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=work,
        )
        for _ in range(workers)
    ]
    app = make_app(BROKER)
    try:
        begun = time.perf_counter()
        queued = enqueue_due(configs, NOW.isoformat(), via=app)
        queued_at = time.time()
        results = [AsyncResult(q["task"], app=app).get(timeout=7200) for q in queued]
        elapsed = time.perf_counter() - begun
    finally:
        for process in started:
            process.kill()
            process.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    latencies = sorted(r["finished_at"] - queued_at for r in results)
    return {
        "workers": workers,
        "organisations": len(results),
        "seconds": round(elapsed, 1),
        "organisations_a_minute": round(len(results) / elapsed * 60, 1),
        "p50_s": round(statistics.median(latencies), 1),
        "p95_s": round(latencies[int(len(latencies) * 0.95) - 1], 1),
        "peak_worker_mib": round(max(r["peak_kib"] for r in results) / 1024, 1),
        "sent": sum(r["sent"] for r in results),
    }


def anchor(template: Path, count: int) -> dict[str, Any]:
    """The limit: the same organisations' runs one after another in this process, with
    no queue, no worker and no scheduler (what one core does at best)."""
    from plugin.app.cli.base import open_workspaces

    work = Path(tempfile.mkdtemp(prefix="kindly-anchor-"))
    shutil.copytree(template, work / "orgs")
    try:
        begun = time.perf_counter()
        for number in range(count):
            (kindly,) = open_workspaces(work / "orgs" / f"org{number}" / "kindly.toml")
            kindly.sync(NOW)
            kindly.send(kindly.plan(NOW), NOW)
            kindly.store.close()
        elapsed = time.perf_counter() - begun
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"anchor_in_process": count, "organisations_a_minute": round(count / elapsed * 60, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--organisations", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--anchor", type=int, default=100, help="Organisations run in-process as the limit."
    )
    args = parser.parse_args()
    sink = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{sink}",
         "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    template = Path(tempfile.mkdtemp(prefix="kindly-many-template-"))
    sizes = random.Random(23)
    invoices = [sizes.randint(50, 500) for _ in range(args.organisations)]
    for number, count in enumerate(invoices):
        write_workspace(template / f"org{number}", count, sink, number)
    print(
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}: {args.organisations} organisations, "
        f"{sum(invoices)} invoices"
    )
    try:
        print(json.dumps(anchor(template, min(args.anchor, args.organisations))), flush=True)
        for workers in args.workers:
            print(json.dumps(one_round(template, args.organisations, workers)), flush=True)
    finally:
        server.kill()
        shutil.rmtree(template, ignore_errors=True)


if __name__ == "__main__":
    main()
