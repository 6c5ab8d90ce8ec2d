"""Start-up and end-to-end timings of the `kindly` command.

    .venv/bin/python benchmarks/bench_cli.py [--runs 20]

Measures, as a user meets them, in fresh processes:
- `kindly --help` (the budget: well under half a second; heavy imports are lazy);
- `kindly demo` on a new workspace (set-up, sync, plan, render, outbox, notes);
- `kindly demo` again on the same workspace (sync, plan, nothing new to send).
Prints the median and the spread; the figures go into docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDLY = Path(sys.executable).with_name("kindly")


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        args, cwd=cwd, check=True, capture_output=True, env={**os.environ, "COLUMNS": "200"}
    )
    return time.perf_counter() - start


def report(name: str, samples: list[float]) -> None:
    samples.sort()
    print(
        f"{name:<28} median {statistics.median(samples) * 1000:7.1f} ms   "
        f"min {samples[0] * 1000:7.1f} ms   max {samples[-1] * 1000:7.1f} ms   n={len(samples)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    print(
        f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        report("kindly --help", [timed([str(KINDLY), "--help"], base) for _ in range(runs)])
        fresh, again = [], []
        for index in range(max(3, runs // 4)):
            cwd = base / f"run{index}"
            cwd.mkdir()
            fresh.append(timed([str(KINDLY), "demo", "--workspace", "ws", "--no-serve"], cwd))
            again.append(timed([str(KINDLY), "demo", "--workspace", "ws", "--no-serve"], cwd))
        report("kindly demo (first run)", fresh)
        report("kindly demo (nothing new)", again)


if __name__ == "__main__":
    main()
