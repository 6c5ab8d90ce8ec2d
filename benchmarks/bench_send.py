"""`kindly send` end to end: reminders per second, against a naive sender, on one core.

    .venv/bin/python benchmarks/bench_send.py [--count 1000] [--rounds 3]

A ledger of COUNT clients with one overdue invoice each (no QR code: the company has no
IBAN) is synced and planned; then two senders deliver the same plan to aiosmtpd in its own
process (its Sink handler accepts and drops), each from a fresh store and ledger copy:

- **Kindly**: `Kindly.send` as `kindly send` runs it: the fresh re-read of the invoices,
  claims a hundred at a time, each e-mail composed and sent on one SMTP connection with
  its hand-over logged before the final dot, then the notes written back in batches (one
  store transaction and one fsync per batch).
- **naive**: what a first version would do with the same composing code: per reminder,
  log the intent (a commit), open an SMTP connection, send, close it, log it sent (a
  commit), and write its note (an append with its own fsync, then a commit).

- **anchor** (the limit, measured in the same run): the same e-mails, composed beforehand,
  sent on one connection with nothing logged and no notes: what the SMTP server and the
  loopback take on this machine.

The server offers PIPELINING (RFC 2920) as Postfix does, unless ``--no-pipelining``. This
process is pinned to one core and the SMTP server to the other. The figures and the
ratio go into docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_smtp import free_port, start_server

from plugin.app.cli import open_workspace
from plugin.compose.email_message import message_bytes
from plugin.core.decisions import Plan
from plugin.core.model import Note
from plugin.run import Kindly, note_id, note_text

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LANGUAGES = (("nl", "NL"), ("en", "GB"), ("de", "DE"), ("fr", "FR"), ("nb", "NO"), ("vi", "VN"))


def start_pinned_server(port: int, *, pipelining: bool = True) -> subprocess.Popen[bytes]:
    """bench_smtp's aiosmtpd sink, on the other core than this process."""
    server = start_server(port, pipelining=pipelining)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(server.pid, {1})
    return server


def write_workspace(folder: Path, count: int, port: int, connections: int = 1) -> Path:
    ledger = folder / "ledger"
    ledger.mkdir(parents=True)
    customers, invoices = [], []
    due = (NOW - timedelta(days=20)).date()
    for n in range(count):
        language, country = LANGUAGES[n % len(LANGUAGES)]
        customers.append(
            {
                "id": f"C{n:05d}",
                "name": f"Client {n} B.V.",
                "email": f"ap{n}@client{n}.example",
                "language": language,
                "country": country,
                "kind": "business",
                "address": [f"Street {n}", "1000 AA City"],
            }
        )
        invoices.append(
            {
                "id": f"INV-{n:05d}",
                "number": f"2026-{n:05d}",
                "customer_id": f"C{n:05d}",
                "issue_date": (due - timedelta(days=30)).isoformat(),
                "due_date": due.isoformat(),
                "currency": "EUR",
                "total": f"{100 + n % 900}.50",
            }
        )
    for name, records in (("customers", customers), ("invoices", invoices)):
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
connections = {connections}
[company]
name = "Noordlicht Studio B.V."
email = "debiteuren@noordlicht.example"
address = ["Prinsengracht 263", "1016 GV Amsterdam"]
country = "NL"
[policy]
send_window = "always"
channels = ["email"]
""",
        encoding="utf-8",
    )
    return config


def prepared(template: Path, into: Path) -> tuple[Kindly, Plan]:
    """A fresh copy of the synced workspace and its plan: nothing sent, no notes."""
    shutil.copytree(template, into)
    kindly = open_workspace(into / "kindly.toml")
    return kindly, kindly.plan(NOW)


def kindly_send(kindly: Kindly, plan: Plan) -> float:
    started = time.perf_counter()
    result = kindly.send(plan, NOW)
    elapsed = time.perf_counter() - started
    assert len(result.sent) == len(plan.reminders), (len(result.sent), result.deferred[:1])
    assert result.notes_written == len(plan.reminders)
    return len(plan.reminders) / elapsed


def naive_send(kindly: Kindly, plan: Plan, port: int) -> float:
    """One connection, two commits and one fsync'd note per reminder."""
    channel = kindly.channels["email"]
    store, settings, source = kindly.store, kindly.settings, kindly.source
    started = time.perf_counter()
    for reminder in plan.reminders:
        composed = channel.compose(kindly.with_online_links(reminder), NOW)
        record = kindly._record_for(reminder, NOW)
        assert store.record_intent(record)
        with smtplib.SMTP("127.0.0.1", port) as connection:
            connection.sendmail(
                settings.company.email,
                list(reminder.recipients),
                message_bytes(composed.email, linesep="\r\n"),
            )
        store.mark_sent(reminder.key, NOW, None, "accepted by the SMTP server")
        sent = store.reminder(reminder.key)
        assert sent is not None
        source.write_note(
            Note(
                id=note_id(reminder.key),
                created_at=NOW,
                text=note_text(sent, settings),
                customer_id=reminder.customer.id,
                invoice_ids=record.invoice_ids,
                reminder_key=reminder.key,
                stage=reminder.stage,
                channel=reminder.channel,
            )
        )
        store.mark_note_written(reminder.key, NOW)
    return len(plan.reminders) / (time.perf_counter() - started)


def anchor_send(kindly: Kindly, plan: Plan, port: int) -> float:
    """The SMTP server's own limit: composed e-mails on one connection, nothing else."""
    channel = kindly.channels["email"]
    messages = [
        (
            list(r.recipients),
            message_bytes(channel.compose(kindly.with_online_links(r), NOW).email, linesep="\r\n"),
        )
        for r in plan.reminders
    ]
    sender = kindly.settings.company.email
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as connection:
        for recipients, data in messages:
            connection.sendmail(sender, recipients, data)
    return len(messages) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--connections",
        type=int,
        default=1,
        help="[smtp] connections: SMTP connections Kindly's send uses at once",
    )
    parser.add_argument(
        "--no-pipelining",
        action="store_true",
        help="a server that does not offer PIPELINING (Postfix and the big providers do)",
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    port = free_port()
    server = start_pinned_server(port, pipelining=not args.no_pipelining)
    figures: dict[str, list[float]] = {"kindly": [], "naive": [], "anchor": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            template = Path(tmp) / "template"
            template.mkdir()
            write_workspace(template, args.count, port, args.connections)
            synced = open_workspace(template / "kindly.toml")
            synced.sync(NOW)
            assert len(synced.plan(NOW).reminders) == args.count
            synced.store.close()
            for round_number in range(args.rounds):
                kindly, plan = prepared(template, Path(tmp) / f"kindly-{round_number}")
                figures["kindly"].append(kindly_send(kindly, plan))
                kindly.store.close()
                naive, plan = prepared(template, Path(tmp) / f"naive-{round_number}")
                figures["naive"].append(naive_send(naive, plan, port))
                figures["anchor"].append(anchor_send(naive, plan, port))
                naive.store.close()
    finally:
        server.terminate()
        server.wait()
    print(f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python {platform.python_version()}")
    ratios = [k / n for k, n in zip(figures["kindly"], figures["naive"], strict=True)]
    report: dict[str, Any] = {
        "count": args.count,
        "connections": args.connections,
        "kindly_per_s": [round(x) for x in figures["kindly"]],
        "naive_per_s": [round(x) for x in figures["naive"]],
        "anchor_per_s": [round(x) for x in figures["anchor"]],
        "ratio": [round(r, 2) for r in ratios],
    }
    print(json.dumps(report))
    print(
        f"kindly send: median {statistics.median(figures['kindly']):.0f} reminders/s; "
        f"naive: {statistics.median(figures['naive']):.0f}/s; "
        f"ratio {statistics.median(ratios):.1f}x; the SMTP server alone (anchor): "
        f"{statistics.median(figures['anchor']):.0f}/s"
    )


if __name__ == "__main__":
    main()
