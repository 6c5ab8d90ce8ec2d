"""Reminders sent per second to a local SMTP server, with and without connection reuse.

    .venv/bin/python benchmarks/bench_smtp.py [--count 10000] [--no-reuse-count 1000]

The server is aiosmtpd in its own process (its Sink handler accepts and drops), so client
and server do not share one interpreter. Each reminder goes through what `kindly send`
does per message after rendering: the hand-over logged in the SQLite store (one commit,
with the previous outcome), the message sent. The messages are complete reminders
rendered beforehand (rendering is measured by bench_render.py), each with its own
Message-ID. Figures go into docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_render import reminders

from plugin.compose.email_message import build_email
from plugin.compose.render import render_reminder
from plugin.config.settings import Bank, Company, Settings, SmtpSettings
from plugin.core.vocabulary import LogStatus
from plugin.deliver.smtp import SmtpMailer
from plugin.run import CLAIM_BATCH
from plugin.state.store import Delivered, ReminderRecord, Store

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(port: int, *, pipelining: bool = False) -> subprocess.Popen[bytes]:
    """aiosmtpd's Sink in a process of its own; ``pipelining``: offering PIPELINING."""
    handler = "sink_server.PipeliningSink" if pipelining else "aiosmtpd.handlers.Sink"
    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", handler],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")])
            ),
        },
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("the SMTP server did not start")


def send_all(messages: list[tuple[str, bytes, str]], port: int, reuse: bool, store: Store) -> float:
    """What Kindly.send does per message after composing it: the claim (one commit per
    hundred), the hand-over before the final dot (one commit, with the previous message's
    outcome); the last outcomes at the end."""
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none")
    started = time.perf_counter()
    mailer = SmtpMailer(settings)
    unlogged: list[Delivered] = []
    records = [
        ReminderRecord(
            key=key,
            source="bench",
            customer_id="C",
            invoice_ids=("I",),
            invoice_numbers=("N",),
            stage="first",
            channel="email",
            recipient=to,
            amount="1",
            currency="EUR",
            status=LogStatus.SENDING,
            planned_at=NOW,
            detail="smtp",
        )
        for key, _data, to in messages
    ]
    claimed: set[str] = set()
    for index, (key, data, to) in enumerate(messages):
        if index % CLAIM_BATCH == 0:
            claimed |= store.claim(records[index : index + CLAIM_BATCH])

        def hand_over(key: str = key) -> None:
            nonlocal unlogged
            sent, unlogged = unlogged, []
            assert store.hand_over(key, sent)

        outcome = mailer.send(data, "ar@noordlicht.example", [to], hand_over)
        assert outcome.status == "sent", outcome
        unlogged.append(Delivered(key, NOW, None, outcome.detail))
        if not reuse:
            mailer.close()
    store.mark_sent_many(unlogged)
    mailer.close()
    return len(messages) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--no-reuse-count", type=int, default=1_000)
    args = parser.parse_args()
    settings = Settings(
        company=Company(name="Noordlicht Studio B.V.", email="ar@noordlicht.example"),
        bank=Bank(account_holder="Noordlicht Studio B.V.", iban="NL91ABNA0417164300"),
    )
    templates = [
        build_email(r, render_reminder(r, settings), settings, NOW).as_bytes()
        for r in reminders(60)
    ]

    def batch(count: int, tag: str) -> list[tuple[str, bytes, str]]:
        # Each message its own Message-ID and key, as every reminder has.
        out = []
        for n in range(count):
            data = (
                templates[n % len(templates)]
                .replace(b"Message-ID: <kindly.", f"Message-ID: <kindly.{tag}{n}.".encode(), 1)
                .replace(b"\n", b"\r\n")
            )
            out.append((f"{tag}{n:06d}", data, f"client{n}@example.com"))
        return out

    port = free_port()
    server = start_server(port)
    try:
        with tempfile.TemporaryDirectory() as folder:
            store = Store.open(f"sqlite:///{folder}/bench.sqlite3")
            reused = send_all(batch(args.count, "r"), port, True, store)
            fresh = send_all(batch(args.no_reuse_count, "f"), port, False, store)
    finally:
        server.terminate()
        server.wait()
    print(f"{platform.machine()}, Python {platform.python_version()}, SQLite store")
    print(f"{args.count} reminders, one connection: {reused:,.0f}/s")
    print(f"{args.no_reuse_count} reminders, a connection each: {fresh:,.0f}/s")


if __name__ == "__main__":
    main()
