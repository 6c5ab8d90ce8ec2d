"""API calls of a QuickBooks Online sync against the fewest the API allows, and its time.

    .venv/bin/python benchmarks/bench_quickbooks_sync.py [--invoices 5000] [--customers 800]
        [--payments 2000] [--credit-memos 100] [--changes 10]

A company of that size on the fake QuickBooks (tests/fakes/quickbooks.py, on loopback):
a full sync, then an incremental one after ``--changes`` invoices changed. The fewest
calls: a full read needs ceil(rows / 1000) queries per entity when the row counts are
known beforehand, and one more for an entity whose rows are an exact multiple of 1,000
when they are not (QuickBooks' query answer says neither the total nor whether more
follow); an incremental sync needs one change-data-capture call. Figures go into
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.quickbooks import FakeQuickBooks  # noqa: E402
from tests.quickbooks_harness import connect_to_fake  # noqa: E402


def seed(
    fake: FakeQuickBooks, customers: int, invoices: int, payments: int, memos: int
) -> list[dict[str, Any]]:
    people = [fake.add_customer(f"Customer {n:04d}") for n in range(customers)]
    made = []
    for n in range(invoices):
        issued = date(2026, 6, 1) + timedelta(days=n % 150)
        made.append(
            fake.add_invoice(
                people[n % customers], f"{10000 + n}", "250.00", issued=issued,
                due=issued + timedelta(days=30),
            )
        )  # fmt: skip
    for n in range(payments):
        invoice = made[n]
        customer = next(p for p in people if p["Id"] == invoice["CustomerRef"]["value"])
        fake.add_payment(customer, [(invoice, "100.00")], on=date(2026, 11, 1))
    for n in range(memos):
        fake.add_credit_memo(people[n % customers], f"CM-{n}", "20.00", on=date(2026, 11, 2))
    return made


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=5000)
    parser.add_argument("--customers", type=int, default=800)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--credit-memos", type=int, default=100)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    fake = FakeQuickBooks()
    fake.per_minute = 10**9  # the budget is the connector's to keep, not measured here
    fake.start()
    try:
        invoices = seed(fake, args.customers, args.invoices, args.payments, args.credit_memos)
        fake.tick(minutes=5)
        with tempfile.TemporaryDirectory() as folder:
            qbo = connect_to_fake(fake, Path(folder))
            rows = [args.customers, args.invoices, args.payments, args.credit_memos]
            known = sum(math.ceil(n / 1000) for n in rows)
            unknown = sum(n // 1000 + 1 for n in rows)
            calls = fake.api_calls()
            started = time.perf_counter()
            first = qbo.connector.sync(None, {})
            full_time = time.perf_counter() - started
            full_calls = fake.api_calls() - calls
            for invoice in invoices[: args.changes]:
                fake.update_invoice(invoice["Id"], Balance=0)
            fake.tick(minutes=5)
            calls = fake.api_calls()
            started = time.perf_counter()
            later = qbo.connector.sync(first.snapshot, first.bookmarks)
            incremental_time = time.perf_counter() - started
            incremental_calls = fake.api_calls() - calls
            qbo.store.close()
        paid = sum(1 for i in later.snapshot.invoices if not i.amount_due.is_positive)
        print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
        print(
            f"full sync: {full_calls} calls (fewest with counts known: {known}, unknown: "
            f"{unknown}; ratio {full_calls / unknown:.2f}), {full_time:.2f} s, "
            f"{len(first.snapshot.invoices)} invoices"
        )
        print(
            f"incremental after {args.changes} changes: {incremental_calls} call(s) (fewest: "
            f"1; ratio {incremental_calls:.2f}), {incremental_time:.3f} s, {paid} paid"
        )
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
