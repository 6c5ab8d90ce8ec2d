"""API calls of a Pennylane sync against the fewest the API allows, and its time.

    .venv/bin/python benchmarks/bench_pennylane_sync.py [--invoices 5000] [--customers 800]
        [--payments 2000] [--credit-notes 100] [--changes 10]

A company of that size on the fake Pennylane (tests/fakes/pennylane.py, on loopback): a
full sync, then an incremental one after ``--changes`` invoices changed. The fewest
calls: customers and invoices 100 a page, plus, because Pennylane lists an invoice's
payments only per invoice, one call for each invoice with money paid on it (credited
ones included); an incremental sync reads the two change logs (1,000 a page), the
changed invoices by id (100 a call) and the payments of those with money paid. Pennylane
allows 25 calls in 5 seconds: the connector keeps to 20, which the times here leave out
(the fake's clock stands in). Figures go into docs/performance.md.
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

from tests.fakes.pennylane import FakePennylane  # noqa: E402
from tests.pennylane_harness import connect_to_fake, fresh_token  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=5000)
    parser.add_argument("--customers", type=int, default=800)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--credit-notes", type=int, default=100)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    fake = FakePennylane()
    fake.rate_limit = 10**9  # the budget is the connector's to keep, not measured here
    fake.start()
    try:
        customers = [fake.add_customer(f"Client {n:04d} SAS") for n in range(args.customers)]
        invoices = []
        for n in range(args.invoices):
            issued = date(2026, 6, 1) + timedelta(days=n % 150)
            invoices.append(
                fake.add_invoice(
                    customers[n % args.customers], 10000 + n, "250.00", issued=issued,
                    due=issued + timedelta(days=30),
                )
            )  # fmt: skip
        for n in range(args.payments):
            fake.pay(invoices[-1 - n], "250.00", on=date(2026, 11, 1))
        for n in range(args.credit_notes):
            fake.add_credit_note(invoices[n], "20.00", issued=date(2026, 11, 2))
        # Quiet for a quarter of an hour before the first sync: the connector's bookmark
        # starts ten minutes before it (clocks differ), and what changed in those minutes
        # is read again once by the next sync.
        fake.tick(minutes=15)
        with tempfile.TemporaryDirectory() as folder:
            pennylane = connect_to_fake(fake, Path(folder))
            documents = args.invoices + args.credit_notes
            with_money_paid = args.payments + args.credit_notes
            fewest_full = (
                math.ceil(args.customers / 100) + math.ceil(documents / 100) + with_money_paid
            )
            calls = fake.api_calls()
            started = time.perf_counter()
            first = pennylane.connector.sync(None, {})
            full_time = time.perf_counter() - started
            full_calls = fake.api_calls() - calls
            fake.tick(minutes=5)
            for invoice in invoices[args.credit_notes : args.credit_notes + args.changes]:
                fake.update_invoice(invoice["id"], label="CHANGED")
            fake.tick(minutes=5)
            pennylane.vault.save(fresh_token(fake))
            calls = fake.api_calls()
            started = time.perf_counter()
            pennylane.connector.sync(first.snapshot, first.bookmarks)
            incremental_time = time.perf_counter() - started
            incremental_calls = fake.api_calls() - calls
            fewest_incremental = 2 + math.ceil(args.changes / 100)
            pennylane.store.close()
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
