"""API calls of a Moneybird sync against the fewest the API allows, and its time.

    .venv/bin/python benchmarks/bench_moneybird_sync.py [--invoices 5000] [--contacts 800]
        [--payments 2000] [--credit-invoices 100] [--changes 10]

An administration of that size on the fake Moneybird (tests/fakes/moneybird.py, on
loopback): a full sync, then an incremental one after ``--changes`` invoices changed. The
fewest calls: a full sync reads contacts and sales invoices 100 a page (payments and
credit invoices come inside); an incremental one asks the two synchronization lists
(every id and version, one call each) and fetches what moved, 100 a call. Figures go into
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

from tests.fakes.moneybird import FakeMoneybird  # noqa: E402
from tests.moneybird_harness import connect_to_fake, fresh_token  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=5000)
    parser.add_argument("--contacts", type=int, default=800)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--credit-invoices", type=int, default=100)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    fake = FakeMoneybird()
    fake.rate_limit = 10**9  # the budget is the connector's to keep, not measured here
    fake.start()
    try:
        contacts = [fake.add_contact(f"Client {n:04d} B.V.") for n in range(args.contacts)]
        invoices = []
        for n in range(args.invoices):
            issued = date(2026, 6, 1) + timedelta(days=n % 150)
            invoices.append(
                fake.add_invoice(
                    contacts[n % args.contacts], 10000 + n, "250.00", issued=issued,
                    due=issued + timedelta(days=30),
                )
            )  # fmt: skip
        for n in range(args.payments):
            invoice = invoices[-1 - n]
            fake.pay(invoice, "250.00", on=date(2026, 11, 1))
        for n in range(args.credit_invoices):
            fake.add_credit_invoice(invoices[n], "20.00", issued=date(2026, 11, 2))
        fake.tick(minutes=5)
        with tempfile.TemporaryDirectory() as folder:
            moneybird = connect_to_fake(fake, Path(folder))
            documents = args.invoices + args.credit_invoices
            fewest_full = math.ceil(args.contacts / 100) + math.ceil(documents / 100)
            calls = fake.api_calls()
            started = time.perf_counter()
            first = moneybird.connector.sync(None, {})
            full_time = time.perf_counter() - started
            full_calls = fake.api_calls() - calls
            for invoice in invoices[args.payments : args.payments + args.changes]:
                fake.update_invoice(invoice["id"], payment_reference="CHANGED")
            fake.tick(minutes=5)
            moneybird.vault.save(fresh_token(fake))
            calls = fake.api_calls()
            started = time.perf_counter()
            moneybird.connector.sync(first.snapshot, first.bookmarks)
            incremental_time = time.perf_counter() - started
            incremental_calls = fake.api_calls() - calls
            fewest_incremental = 2 + math.ceil(args.changes / 100)
            moneybird.store.close()
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
