"""Complete reminder e-mails (text + HTML + QR code + MIME) rendered per second, on one core.

    .venv/bin/python benchmarks/bench_render.py [--count 3000]

Each e-mail is rendered from a planned reminder as `kindly send` does: babel formatting,
the subject, text and HTML templates, the EPC QR code for euro reminders, and the MIME
message serialised to bytes. Languages, stages, tones and the number of invoices (1 to 5)
rotate. Figures go into docs/performance.md.

The best round is what the code costs; the median also shows what the machine's
neighbours took (on a shared virtual machine, rounds of the same batch differ by half).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from plugin.compose.email_message import build_email, message_bytes
from plugin.compose.render import render_reminder
from plugin.config.settings import Bank, Company, Settings
from plugin.core.decisions import PlannedReminder, reminder_key
from plugin.core.model import Customer, Invoice
from plugin.core.money import Money
from plugin.core.vocabulary import LANGUAGES, Tone

COUNTRY = {"en": "GB", "nl": "NL", "fr": "FR", "nb": "NO", "de": "DE", "vi": "VN"}
CURRENCY = {"en": "GBP", "nl": "EUR", "fr": "EUR", "nb": "NOK", "de": "EUR", "vi": "VND"}
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BENCH_TONES: tuple[Tone, ...] = ("friendly", "firm")


def reminders(count: int) -> list[PlannedReminder]:
    combos = itertools.cycle(
        itertools.product(LANGUAGES, ("first", "second", "final"), BENCH_TONES, range(1, 6))
    )
    result = []
    for n, (language, stage, tone, invoices) in zip(range(count), combos, strict=False):
        currency = CURRENCY[language]
        customer = Customer(
            f"C{n}",
            f"Client {n}",
            contact_name=f"Contact {n}",
            emails=(f"c{n}@client.example",),
            language=language,
            country=COUNTRY[language],
            timezone="Europe/Amsterdam",
        )
        rows = []
        for k in range(invoices):
            issued = date(2026, 7, 1) + timedelta(days=(n * 7 + k * 3) % 90)
            cents = 10_000 + (n * 7919 + k * 104_729) % 900_000
            total = Money.of(Decimal(cents) / 100, currency)
            rows.append(
                Invoice(
                    f"I{n}-{k}",
                    f"NS-{n:05d}-{k}",
                    customer.id,
                    issued,
                    issued + timedelta(days=30),
                    total,
                    total if k % 3 else Money.of(Decimal(cents // 2) / 100, currency),
                    online_url=f"https://pay.example/i/{n}-{k}",
                )
            )
        result.append(
            PlannedReminder(
                reminder_key("bench", customer.id, [i.id for i in rows], stage, "email"),
                "bench",
                customer,
                tuple(rows),
                stage,
                "email",
                customer.emails,
                language,
                tone,
                stage,
                next_step_date=date(2026, 12, 6),
            )
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3, help="0: set up and warm up only")
    parser.add_argument("--no-qr", action="store_true", help="without a bank account: no QR")
    parser.add_argument(
        "--own-templates",
        action="store_true",
        help="with a folder of one's own templates (one copied file): they render sandboxed, "
        "in the worker process that holds them to their budget",
    )
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # one core
    settings = Settings(
        company=Company(
            name="Noordlicht Studio B.V.",
            email="ar@noordlicht.example",
            website="https://noordlicht.example",
            phone="+31 20 555 0100",
            address=("Prinsengracht 263", "1016 GV Amsterdam"),
        ),
        bank=Bank()
        if args.no_qr
        else Bank(
            account_holder="Noordlicht Studio B.V.", iban="NL91ABNA0417164300", bic="ABNANL2A"
        ),
    )
    if args.own_templates:
        import tempfile
        from dataclasses import replace
        from pathlib import Path

        from plugin.compose.templates import templates_dir

        folder = Path(tempfile.mkdtemp()) / "mine"
        (folder / "email").mkdir(parents=True)
        subject = templates_dir() / "email" / "subject.txt.j2"
        (folder / "email" / "subject.txt.j2").write_bytes(subject.read_bytes())
        settings = replace(settings, templates=folder)
    batch = reminders(args.count)
    # Warm up: every template compiled, as in a batch after its first few reminders.
    for reminder in reminders(180):
        build_email(reminder, render_reminder(reminder, settings), settings, NOW)
    if args.rounds == 0:
        # For counting instructions, which no neighbour disturbs: run under callgrind with
        # --rounds 1 and with --rounds 0; the difference is what --count e-mails take.
        return
    rates, sizes = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for reminder in batch:
            message = build_email(reminder, render_reminder(reminder, settings), settings, NOW)
            sizes.append(len(message_bytes(message)))
        rates.append(len(batch) / (time.perf_counter() - started))
    qr = "without" if args.no_qr else "with"
    own = ", own templates (sandboxed, in the worker)" if args.own_templates else ""
    print(f"{platform.machine()}, Python {platform.python_version()}, one core, {qr} QR codes{own}")
    print(
        f"{args.count} e-mails x {args.rounds} rounds: best {max(rates):,.0f}/s, "
        f"median {statistics.median(rates):,.0f}/s, slowest {min(rates):,.0f}/s; "
        f"median size {statistics.median(sizes) / 1024:.1f} KiB"
    )


if __name__ == "__main__":
    main()
