"""API calls of an Exact Online sync against the fewest the API allows, and its time.

    .venv/bin/python benchmarks/bench_exact_sync.py [--invoices 5000] [--accounts 800]
        [--open 1500] [--credit-notes 100] [--changes 10]

A division of that size on the fake Exact Online (tests/fakes/exact.py, on loopback): a
full sync, then an incremental one after ``--changes`` invoices changed. The fewest
calls: ceil(rows / 1000) per ``sync/`` list (and one for the deletions after the first
sync), plus what is open, 60 rows a call in the receivables list, which has no sync
endpoint and is read whole. Figures go into docs/performance.md.
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

from integrations.oauth import Token  # noqa: E402
from tests.exact_harness import connect_to_fake  # noqa: E402
from tests.fakes.exact import FakeExactOnline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=800)
    parser.add_argument("--open", type=int, default=1500)
    parser.add_argument("--credit-notes", type=int, default=100)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    fake = FakeExactOnline()
    fake.per_minute = 10**9  # the budget is the connector's to keep, not measured here
    fake.day_limit = 10**9
    fake.start()
    try:
        accounts = [fake.add_account(f"Account {n:04d}") for n in range(args.accounts)]
        invoices = []
        for n in range(args.invoices):
            issued = date(2026, 6, 1) + timedelta(days=n % 150)
            invoices.append(
                fake.add_invoice(
                    accounts[n % args.accounts], 100000 + n, "250.00", issued=issued,
                    due=issued + timedelta(days=30),
                    open_amount="250.00" if n < args.open else "0",
                )
            )  # fmt: skip
        for n in range(args.credit_notes):
            fake.add_credit_note(
                accounts[n], 900000 + n, "20.00", issued=date(2026, 11, 2), open_amount="0"
            )
        fake.tick(minutes=5)
        with tempfile.TemporaryDirectory() as folder:
            exact = connect_to_fake(fake, Path(folder))
            sync_rows = [args.accounts, args.invoices + args.credit_notes]
            fewest_full = sum(math.ceil(n / 1000) for n in sync_rows) + math.ceil(args.open / 60)
            calls = fake.api_calls()
            started = time.perf_counter()
            first = exact.connector.sync(None, {})
            full_time = time.perf_counter() - started
            full_calls = fake.api_calls() - calls
            for invoice in invoices[: args.changes]:
                fake.update_invoice(invoice["InvoiceID"], PaymentReference="CHANGED")
            fake.tick(minutes=5)
            exact.vault.save(Token.from_response(fake.issue_tokens(), fake.clock))
            calls = fake.api_calls()
            started = time.perf_counter()
            exact.connector.sync(first.snapshot, first.bookmarks)
            incremental_time = time.perf_counter() - started
            incremental_calls = fake.api_calls() - calls
            fewest_incremental = 3 + math.ceil(args.open / 60)
            exact.store.close()
        print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
        print(
            f"full sync: {full_calls} calls (fewest: {fewest_full}; ratio "
            f"{full_calls / fewest_full:.2f}), {full_time:.2f} s, "
            f"{len(first.snapshot.invoices)} invoices"
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
