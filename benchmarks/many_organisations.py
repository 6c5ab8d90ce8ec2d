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
written); peak resident memory of a worker process; reminders sent.

``--platform xero``: each organisation is a fake Xero of its own (tests/fakes/xero.py, all
served from this process) with the same clients and invoices, connected the way a user
does (`kindly connect xero --refresh-token`); the workers keep Xero's limits (60 calls a
minute per organisation) in Redis, as in production. Also reported: API calls per
organisation, counted at the fakes. ``--store postgres``: every organisation is a
workspace of one PostgreSQL database (a schema of its own per round) instead of an SQLite
file each.
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


def clients_and_invoices(invoices: int, number: int) -> tuple[list[Any], list[Any]]:
    """An organisation's clients and invoices: a fifth of them twenty days overdue."""
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
    return customers, rows


def write_workspace(
    folder: Path,
    invoices: int,
    port: int,
    number: int,
    *,
    xero: Any = None,
    store: str | None = None,
) -> Path:
    """One organisation's workspace: its kindly.toml, and for the local ledger its files.
    ``xero``: the fake Xero it connects to; ``store``: a database URL the workspaces
    share (each its own workspace in it), else an SQLite file of its own."""
    folder.mkdir(parents=True)
    if xero is None:
        ledger = folder / "ledger"
        ledger.mkdir()
        customers, rows = clients_and_invoices(invoices, number)
        for name, records in (("customers", customers), ("invoices", rows)):
            (ledger / f"{name}.json").write_text(json.dumps(records), encoding="utf-8")
        for name in ("payments", "credit_notes", "promises", "appointments"):
            (ledger / f"{name}.json").write_text("[]", encoding="utf-8")
        connector = 'connector = "ledger"\n[ledger]\npath = "ledger"'
    else:
        endpoints = "\n".join(f'{key} = "{value}"' for key, value in xero.endpoints().items())
        connector = (
            f'connector = "xero"\n[xero]\nclient_id = "{xero.client_id}"\n'
            f"redirect_port = 0\n{endpoints}"
        )
    kept = (
        f'url = {json.dumps(store)}\nworkspace = "org{number}"'
        if store
        else 'url = "sqlite:///kindly.sqlite3"'
    )
    config = folder / "kindly.toml"
    config.write_text(
        f"""{connector}
[store]
{kept}
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


def fake_xero(invoices: int, number: int) -> Any:
    """A fake Xero holding the organisation's clients and invoices, serving."""
    from datetime import date

    from tests.fakes.xero import FakeXero

    fake = FakeXero()
    # Xero's 60 calls a minute: a call beyond it is answered 429 and counted.
    fake.per_minute = 60
    # A thousand servers in one process: each looks for its stop signal seldom.
    fake.start(poll_interval=2.0)
    customers, rows = clients_and_invoices(invoices, number)
    contacts = {c["id"]: fake.add_contact(c["name"], EmailAddress=c["email"]) for c in customers}
    for row in rows:
        fake.add_invoice(
            contacts[row["customer_id"]],
            row["number"],
            row["total"],
            issued=date.fromisoformat(row["issue_date"]),
            due=date.fromisoformat(row["due_date"]),
        )
    return fake


def connect_xero(config: Path, fake: Any) -> None:
    """`kindly connect xero` the server way, as a user does, in this process."""
    from click.testing import CliRunner

    from plugin.app.cli import cli

    token = fake.issue_tokens()["refresh_token"]
    result = CliRunner().invoke(
        cli, ["--config", str(config), "connect", "xero", "--refresh-token", token]
    )
    if result.exit_code != 0:
        raise SystemExit(f"connecting {config} failed: {result.output}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(
    work: Path, sizes: list[int], port: int, fakes: list[Any], store: str | None
) -> list[str]:
    """Every organisation's workspace under ``work``, connected (Xero)."""
    configs = []
    for number, invoices in enumerate(sizes):
        config = write_workspace(
            work / f"org{number}",
            invoices,
            port,
            number,
            xero=fakes[number] if fakes else None,
            store=store,
        )
        if fakes:
            connect_xero(config, fakes[number])
        configs.append(str(config))
    return configs


def reminders_sent(configs: list[str]) -> int:
    from plugin.app.cli.base import open_workspaces
    from plugin.core.vocabulary import LogStatus

    sent = 0
    for config in configs:
        for kindly in open_workspaces(Path(config)):
            sent += len(kindly.store.reminders(kindly.source_id, statuses=(LogStatus.SENT,)))
            kindly.store.close()
    return sent


def one_round(
    sizes: list[int], port: int, workers: int, fakes: list[Any], store: str | None
) -> dict[str, Any]:
    import redis
    from celery.result import AsyncResult

    from plugin.app.workers import enqueue_due, make_app

    redis.Redis.from_url(BROKER).flushdb()
    work = Path(tempfile.mkdtemp(prefix="kindly-many-"))
    configs = prepare(work, sizes, port, fakes, store)
    calls_before = sum(fake.api_calls() for fake in fakes)
    limited_before = sum(fake.limited for fake in fakes)
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
            stderr=open(work / f"worker{n}.log", "w"),  # noqa: SIM115
            env=env,
            cwd=work,
        )
        for n in range(workers)
    ]
    app = make_app(BROKER)
    try:
        begun = time.perf_counter()
        queued = enqueue_due(configs, NOW.isoformat(), via=app)
        queued_at = time.time()
        results = [AsyncResult(q["task"], app=app).get(timeout=7200) for q in queued]
        elapsed = time.perf_counter() - begun
        # Counted in the stores: a run queued again for its call limit reports only
        # what its last try sent.
        sent = reminders_sent(configs)
    finally:
        for process in started:
            process.kill()
            process.wait(30)
        if os.environ.get("KINDLY_BENCH_KEEP"):
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    latencies = sorted(r["finished_at"] - queued_at for r in results)
    found = {
        "workers": workers,
        "organisations": len(results),
        "seconds": round(elapsed, 1),
        "organisations_a_minute": round(len(results) / elapsed * 60, 1),
        "p50_s": round(statistics.median(latencies), 1),
        "p95_s": round(latencies[int(len(latencies) * 0.95) - 1], 1),
        "peak_worker_mib": round(max(r["peak_kib"] for r in results) / 1024, 1),
        "sent": sent,
        "not_done": sum(1 for r in results if str(r["detail"]).startswith(("failed", "defer"))),
    }
    if fakes:
        calls = sum(fake.api_calls() for fake in fakes) - calls_before
        found["api_calls_per_organisation"] = round(calls / len(results), 1)
        found["refused_429"] = sum(fake.limited for fake in fakes) - limited_before
    return found


def anchor(sizes: list[int], port: int) -> dict[str, Any]:
    """The limit: the same organisations' runs one after another in this process, with
    no queue, no worker and no scheduler (what one core does at best; local ledgers)."""
    from plugin.app.cli.base import open_workspaces

    work = Path(tempfile.mkdtemp(prefix="kindly-anchor-"))
    configs = prepare(work, sizes, port, [], None)
    try:
        begun = time.perf_counter()
        for config in configs:
            (kindly,) = open_workspaces(Path(config))
            kindly.sync(NOW)
            kindly.send(kindly.plan(NOW), NOW)
            kindly.store.close()
        elapsed = time.perf_counter() - begun
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "anchor_in_process": len(sizes),
        "organisations_a_minute": round(len(sizes) / elapsed * 60, 1),
    }


def postgres_schema(round_number: int) -> str:
    """A fresh schema of the PostgreSQL database for a round: its URL."""
    import sqlalchemy as sa

    base = os.environ.get(
        "KINDLY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    schema = f"kindly_bench_{os.getpid()}_{round_number}"
    engine = sa.create_engine(base)
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{base}?options=-csearch_path%3D{schema}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--organisations", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--anchor", type=int, default=100, help="Organisations run in-process as the limit."
    )
    parser.add_argument("--platform", choices=["ledger", "xero"], default="ledger")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    if not os.environ.get("KINDLY_SECRET_KEY"):
        from cryptography.fernet import Fernet

        os.environ["KINDLY_SECRET_KEY"] = Fernet.generate_key().decode()
    sink = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{sink}",
         "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    randomness = random.Random(23)
    sizes = [randomness.randint(50, 500) for _ in range(args.organisations)]
    fakes = (
        [fake_xero(count, number) for number, count in enumerate(sizes)]
        if args.platform == "xero"
        else []
    )
    print(
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}: {args.organisations} organisations on "
        f"{args.platform}, {sum(sizes)} invoices, store {args.store}"
    )
    try:
        if args.anchor:
            print(json.dumps(anchor(sizes[: args.anchor], sink)), flush=True)
        for number, workers in enumerate(args.workers):
            store = postgres_schema(number) if args.store == "postgres" else None
            print(json.dumps(one_round(sizes, sink, workers, fakes, store)), flush=True)
    finally:
        server.kill()
        for fake in fakes:
            fake.stop()


if __name__ == "__main__":
    main()
