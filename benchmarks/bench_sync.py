"""`kindly sync` and `kindly plan` on a large local ledger, with and without changes.

    .venv/bin/python benchmarks/bench_sync.py [--clients 100000] [--rounds 3]

A ledger of CLIENTS clients with one overdue invoice each (bench_send's workspace, a
SQLite store) is synced once; then, in the same process, as `kindly sync` and
`kindly plan` run:

- **sync, nothing changed**: the files read and checked again, the stored copy compared
  record by record, nothing written;
- **sync, 1% changed**: one invoice in a hundred paid in part, one client renamed in a
  hundred;
- **load**: the stored copy read back (what `kindly plan` starts with);
- **plan**: load and plan, as `kindly plan` does.

The limit anchor, measured in the same run: `json.loads` of the two ledger files, the
least any sync of them can do. The figures go into docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_send import NOW, write_workspace

from plugin.app.cli import open_workspace


def timed(action: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def change_one_in_a_hundred(ledger: Path, round_number: int) -> None:
    for name, field in (("invoices", "total"), ("customers", "name")):
        path = ledger / f"{name}.json"
        records = json.loads(path.read_text(encoding="utf-8"))
        for record in records[round_number % 100 :: 100]:
            record[field] = (
                f"{100 + round_number}.25"
                if field == "total"
                else f"{record[field]} ({round_number})"
            )
        path.write_text(json.dumps(records), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_workspace(folder, args.clients, port=25, connections=1)
        ledger = folder / "ledger"
        kindly = open_workspace(config)
        figures["first sync"] = timed(lambda: kindly.sync(NOW), 1)
        figures["sync, nothing changed"] = timed(lambda: kindly.sync(NOW), args.rounds)
        changed = []
        for round_number in range(args.rounds):
            change_one_in_a_hundred(ledger, round_number)
            changed += timed(lambda: kindly.sync(NOW), 1)
        figures["sync, 1% changed"] = changed
        figures["load the stored copy"] = timed(
            lambda: kindly.store.load_snapshot(kindly.source_id), args.rounds
        )
        figures["plan (load + plan)"] = timed(lambda: kindly.plan(NOW), args.rounds)

        def parse_only() -> None:
            for name in ("customers", "invoices"):
                json.loads((ledger / f"{name}.json").read_text(encoding="utf-8"))

        figures["anchor: json.loads of the two files"] = timed(parse_only, args.rounds)
        kindly.store.close()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}, {args.clients:,} clients and invoices, one core"
    )
    for what, times in figures.items():
        print(
            f"{what:>38}: median {statistics.median(times):6.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} runs)"
        )
    print(f"{'peak RSS':>38}: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
