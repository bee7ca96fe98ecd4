"""Start-up time of the command line: wall and CPU seconds of short commands, each in a fresh process.

Usage: python benchmarks/bench_cli_start.py [--repeats 5]
CPU seconds (user + system of the child) are the figure to compare on a shared machine: wall time also
counts the time other processes hold the cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
# the last one also reads the committed reference records and judges each against today's registry
COMMANDS = (["--help"], ["list"], ["config", "-m", "simclr", "-t", "digits"], ["results"],
            ["results", "--records", str(REFERENCE)])


def measure(args: list[str], cwd: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``pcfrl-bench ARGS`` run as ``python -m pcfrl_bench``."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pcfrl_bench", *args], cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cwd:  # outside the checkout, no records: the start-up cost only
        (Path(cwd) / "results" / "runs").mkdir(parents=True)  # `results` lists this empty folder
        measure(["--help"], cwd)  # warm the file cache
        print(f"{'command':<50} {'wall s (median)':>16} {'CPU s (median)':>15}")
        for command in COMMANDS:
            runs = [measure(command, cwd) for _ in range(args.repeats)]
            wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            label = "pcfrl-bench " + " ".join(command).replace(str(REFERENCE), "results/reference")
            print(f"{label:<50} {wall:>16.2f} {cpu:>15.2f}")


if __name__ == "__main__":
    main()
