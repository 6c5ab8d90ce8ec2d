"""API calls of a Fiken sync against the fewest the API allows, and its time.

    .venv/bin/python benchmarks/bench_fiken_sync.py [--invoices 5000] [--customers 800]
        [--payments 2000] [--credit-notes 100] [--changes 10]

A company of that size on the fake Fiken (tests/fakes/fiken.py, on loopback), made on one
day: a full sync the next day, then, a day later, an incremental one after ``--changes``
invoices changed. The fewest calls: customers, invoices and credit notes, 100 a page
(a sale's payments come inside its invoice); after the first sync each list from the last
sync's day (Fiken's ``lastModified`` filters are days), so ten changes are one page each.
Fiken allows four calls a second, one at a time: the connector spaces them by a quarter
of a second, which the times here leave out (the fake's clock stands in). Figures go into
docs/performance.md.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.fiken import FakeFiken  # noqa: E402
from tests.fiken_harness import connect_to_fake, fresh_token  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=5000)
    parser.add_argument("--customers", type=int, default=800)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--credit-notes", type=int, default=100)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    fake = FakeFiken()
    fake.start()
    try:
        customers = [fake.add_contact(f"Kunde {n:04d} AS") for n in range(args.customers)]
        invoices = []
        for n in range(args.invoices):
            issued = date(2026, 6, 1) + timedelta(days=n % 150)
            invoices.append(
                fake.add_invoice(
                    customers[n % args.customers], 20000 + n, 250000, issued=issued,
                    due=issued + timedelta(days=30),
                )
            )  # fmt: skip
        for n in range(args.payments):
            fake.pay(invoices[-1 - n], 250000, on=date(2026, 11, 1))
        for n in range(args.credit_notes):
            fake.add_credit_note(invoices[n], 20000, issued=date(2026, 11, 2))
        fake.next_day()
        with tempfile.TemporaryDirectory() as folder:
            fiken = connect_to_fake(fake, Path(folder))
            fewest_full = (
                math.ceil(args.customers / 100)
                + math.ceil(args.invoices / 100)
                + math.ceil(args.credit_notes / 100)
            )
            calls = fake.api_calls()
            started = time.perf_counter()
            first = fiken.connector.sync(None, {})
            full_time = time.perf_counter() - started
            full_calls = fake.api_calls() - calls
            fake.next_day()
            for invoice in invoices[args.payments : args.payments + args.changes]:
                fake.update_invoice(invoice["invoiceId"], yourReference="CHANGED")
            fiken.vault.save(fresh_token(fake))
            calls = fake.api_calls()
            started = time.perf_counter()
            fiken.connector.sync(first.snapshot, first.bookmarks)
            incremental_time = time.perf_counter() - started
            incremental_calls = fake.api_calls() - calls
            fewest_incremental = 3
            fiken.store.close()
        print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
        print(
            f"full sync: {full_calls} calls (fewest: {fewest_full}; ratio "
            f"{full_calls / fewest_full:.2f}), {full_time:.2f} s, "
            f"{len(first.snapshot.invoices)} invoices, {len(first.snapshot.payments)} payments"
        )
        print(
            f"incremental after {args.changes} changes: {incremental_calls} calls (fewest: "
            f"{fewest_incremental}; ratio {incremental_calls / fewest_incremental:.2f}), "
            f"{incremental_time:.3f} s"
        )
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
