"""Planning speed and memory over generated ledgers.

    .venv/bin/python benchmarks/bench_planning.py                 # 10k, 100k, 1M open invoices
    .venv/bin/python benchmarks/bench_planning.py --sizes 100000 --repeat 7

Each size runs in its own process, so peak memory is that size's alone. A ledger has ten
open invoices per client in five currencies and six countries, and a year of history: ten
paid invoices per client with their payments (some late, for payment behaviour), promises,
disputes and pauses, and the reminders sent over the past months. The figure is the median
wall time of ``plan_reminders`` (the pure planner: no I/O) over ``--repeat`` runs, and the
process's peak resident memory with the ledger loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotations: the functions import what they use where they use it
    from plugin.core.decisions import SentReminder
    from plugin.core.model import LedgerSnapshot
    from plugin.core.policy import Overrides
    from plugin.core.vocabulary import Language

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
COUNTRIES: list[tuple[str, Language, str, str]] = [
    ("NL", "nl", "Europe/Amsterdam", "EUR"),
    ("FR", "fr", "Europe/Paris", "EUR"),
    ("NO", "nb", "Europe/Oslo", "NOK"),
    ("DE", "de", "Europe/Berlin", "EUR"),
    ("VN", "vi", "Asia/Ho_Chi_Minh", "VND"),
    ("GB", "en", "Europe/London", "GBP"),
]


def generate(open_invoices: int, seed: int = 7) -> tuple[LedgerSnapshot, tuple[SentReminder, ...]]:
    from plugin.core.decisions import SentReminder, reminder_key
    from plugin.core.model import (
        Customer,
        Invoice,
        InvoiceStatus,
        LedgerSnapshot,
        Payment,
        PromiseToPay,
    )
    from plugin.core.money import Money

    rng = random.Random(seed)
    clients = open_invoices // 10
    today = NOW.date()
    customers, invoices, payments, promises, history = [], [], [], [], []
    for c in range(clients):
        country, language, zone, currency = COUNTRIES[c % len(COUNTRIES)]
        cid = f"C{c:07d}"
        customers.append(
            Customer(
                cid,
                f"Client {c}",
                emails=(f"c{c}@client.example",),
                language=language,
                country=country,
                timezone=zone,
            )
        )
        lateness = rng.choice([0, 0, 2, 5, 15, 40])
        scale = 100 if currency == "VND" else 1
        for n in range(10):  # a year of paid invoices
            due = today - timedelta(days=365 - 30 * n)
            amount = Money.of(rng.randrange(5_000, 500_000) * scale, currency)
            iid = f"P{c:07d}{n}"
            invoices.append(
                Invoice(
                    iid,
                    iid,
                    cid,
                    due - timedelta(days=30),
                    due,
                    amount,
                    Money.zero(currency),
                    InvoiceStatus.PAID,
                )
            )
            payments.append(
                Payment(f"Y{iid}", iid, due + timedelta(days=rng.choice([0, lateness])), amount)
            )
        for n in range(10):  # open ones, some long overdue, some not yet due
            due = today - timedelta(days=rng.randrange(-20, 120))
            total = Money.of(rng.randrange(5_000, 500_000) * scale, currency)
            iid = f"O{c:07d}{n}"
            invoices.append(
                Invoice(
                    iid,
                    iid,
                    cid,
                    due - timedelta(days=30),
                    due,
                    total,
                    total,
                    disputed=rng.random() < 0.01,
                )
            )
            if rng.random() < 0.02:
                promises.append(
                    PromiseToPay(iid, due + timedelta(days=20), due + timedelta(days=5))
                )
            age = (today - due).days
            if age > 20 and rng.random() < 0.6:  # reminded before
                sent_at = NOW - timedelta(days=rng.randrange(1, max(2, age - 5)))
                stage = "first" if age < 40 else rng.choice(["first", "second"])
                history.append(
                    SentReminder(
                        reminder_key("bench", cid, [iid], stage, "email"),
                        cid,
                        (iid,),
                        stage,
                        "email",
                        sent_at,
                    )
                )
    snapshot = LedgerSnapshot(
        customers=tuple(customers),
        invoices=tuple(invoices),
        payments=tuple(payments),
        promises=tuple(promises),
    )
    return snapshot, tuple(history)


def measure(size: int, repeat: int) -> dict[str, float]:
    from plugin.config.settings import Company, Defaults, Settings
    from plugin.core.money import Money
    from plugin.core.planning import plan_reminders

    settings = Settings(
        company=Company(name="Bench B.V.", email="ar@bench.example"),
        defaults=Defaults(minimum={"EUR": Money.of("5", "EUR")}),
        clients={f"C{c:07d}": _pause() for c in range(0, size // 10, 50)},
    )
    started = time.perf_counter()
    snapshot, history = generate(size)
    generated = time.perf_counter() - started
    rss_before = _peak_rss_mb()
    timings = []
    result = None
    for _ in range(repeat + 1):
        # Planning builds its indexes afresh each time, as a real run does.
        fresh = type(snapshot)(
            **{f: getattr(snapshot, f) for f in ("customers", "invoices", "payments", "promises")}
        )
        del result
        started = time.perf_counter()
        result = plan_reminders(fresh, settings, history, now=NOW, source="bench")
        timings.append(time.perf_counter() - started)
        del fresh
    assert result is not None
    # The first run pays for cold caches (public holidays per country and year, time
    # zones); a CLI run always does. Both are reported.
    cold, timings = timings[0], timings[1:]
    return {
        "open_invoices": size,
        "all_invoices": len(snapshot.invoices),
        "reminders": len(result.reminders),
        "skips": len(result.skips),
        "generate_s": generated,
        "cold_s": cold,
        "median_s": statistics.median(timings),
        "min_s": min(timings),
        "max_s": max(timings),
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_planning_mb": rss_before,
    }


def _pause() -> Overrides:
    from plugin.core.policy import Overrides

    return Overrides(pause_until=date(2026, 12, 31), pause_reason="bench")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.repeat)))
        return
    print(
        f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )
    print(
        f"{'open invoices':>14} {'all':>10} {'reminders':>10} {'cold':>9} {'median':>9} "
        f"{'min':>9} {'max':>9} {'peak RSS':>10} {'ledger only':>12}"
    )
    for size in (int(part) for part in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(out.stdout)
        print(
            f"{row['open_invoices']:>14,} {row['all_invoices']:>10,} {row['reminders']:>10,} "
            f"{row['cold_s']:>8.3f}s {row['median_s']:>8.3f}s {row['min_s']:>8.3f}s "
            f"{row['max_s']:>8.3f}s "
            f"{row['peak_rss_mb']:>8.0f}MB {row['rss_before_planning_mb']:>10.0f}MB"
        )


if __name__ == "__main__":
    main()
