"""The table of ``benchmarks/gpu_check.sh``: read the records and logs it wrote under WORK and print one table.

Usage: python benchmarks/gpu_check_report.py WORK   (WORK holds complexity/, fp32/, bf16/ and ddp1/)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pcfrl_bench.errors import PcfrlError
from pcfrl_bench.results import ResultRecord, load_records
from pcfrl_bench.steplog import read_steps
from pcfrl_bench.train import read_log

PAPER_S_PER_STEP = {"pcl": 0.0547, "pcfrl": 0.0562}  # PCFRL paper, Table 10 (seconds per training step)


def one_record(folder: Path) -> ResultRecord:
    try:
        records, problems = load_records(folder)
    except PcfrlError as err:  # the step that writes this folder failed or was skipped
        raise SystemExit(f"gpu_check: {err}") from None
    if problems or len(records) != 1:
        raise SystemExit(f"gpu_check: expected one record in {folder}, found {len(records)} ({'; '.join(problems)})")
    return records[0]


def run_figures(folder: Path) -> dict[str, Any]:
    """s/step and data share of the last epoch (the first one warms up), and the per-step losses of a run."""
    record = one_record(folder)
    run_dir = Path(record.checkpoint)
    last = read_log(run_dir)[-1]
    return {"s_per_step": last["time_s"] / last["steps"], "data_share": last["data_s"] / last["time_s"],
            "losses": [r["loss"] for r in read_steps(run_dir)], "processes": record.processes,
            "precision": record.precision, "device": record.device}


def report(work: Path) -> Table:
    fp32, bf16, ddp = (run_figures(work / name) for name in ("fp32", "bf16", "ddp1"))
    cx = {r.method: r.metrics["time_s"] for r in load_records(work / "complexity")[0]}
    loss_gap = [abs(b - a) / abs(a) for a, b in zip(fp32["losses"], bf16["losses"])]
    table = Table(title=f"GPU check ({fp32['device']}; folder {work})")
    for col in ("check", "measured", "reference"):
        table.add_column(col)
    for method in ("pcl", "pcfrl"):
        table.add_row(f"Table 10 s/step {method}", f"{cx[method]:.4f}", f"{PAPER_S_PER_STEP[method]:.4f} (paper)")
    paper_ratio = PAPER_S_PER_STEP["pcfrl"] / PAPER_S_PER_STEP["pcl"]
    table.add_row("Table 10 ratio pcfrl / pcl", f"{cx['pcfrl'] / cx['pcl']:.3f}", f"{paper_ratio:.3f} (paper)")
    table.add_row("pcfrl s/step fp32", f"{fp32['s_per_step']:.4f}", "")
    table.add_row("pcfrl s/step bf16", f"{bf16['s_per_step']:.4f}", f"speed-up {fp32['s_per_step'] / bf16['s_per_step']:.2f}x")
    table.add_row("loss bf16 vs fp32, step 1", f"{loss_gap[0]:.2e}", "relative difference")
    table.add_row("loss bf16 vs fp32, all steps", f"median {statistics.median(loss_gap):.2e}",
                  f"max {max(loss_gap):.2e}")
    table.add_row("data pipeline share fp32", f"{fp32['data_share']:.1%}", "host time waiting for batches")
    table.add_row("data pipeline share bf16", f"{bf16['data_share']:.1%}", "")
    table.add_row(f"torchrun DDP s/step ({ddp['processes']} process)", f"{ddp['s_per_step']:.4f}",
                  f"overhead {ddp['s_per_step'] / fp32['s_per_step'] - 1:+.1%} vs fp32")
    same = fp32["losses"] == ddp["losses"]
    table.add_row("torchrun DDP losses = fp32 run", "identical" if same else
                  f"max rel {max(abs(b - a) / abs(a) for a, b in zip(fp32['losses'], ddp['losses'])):.2e}", "")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    Console().print(report(parser.parse_args(argv).work))


if __name__ == "__main__":
    sys.exit(main())
