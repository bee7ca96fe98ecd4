"""benchmarks/gpu_check_report.py: the table's figures from the records and logs the script writes.

The script itself runs in about 3.5 minutes on CPU at tiny sizes (``benchmarks/gpu_check.sh --device cpu
--tiny``), too long for the suite; this test feeds its report hand-made folders with known numbers.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from rich.console import Console

from pcfrl_bench.results import ResultRecord, write_record

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check_report.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(work: Path, name: str, time_s: float, data_s: float, losses: list[float], processes: int = 1) -> None:
    ckpt = work / f"cache-{name}"
    ckpt.mkdir(parents=True)
    rows = [{"epoch": 1, "time_s": 99.0, "data_s": 9.0, "steps": 2}, {"epoch": 2, "time_s": time_s, "data_s": data_s,
                                                                        "steps": 2}]
    (ckpt / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (ckpt / "steps.csv").write_text("epoch,step,lr,loss\n" + "".join(
        f"{1 + i // 2},{i + 1},0.1,{v}\n" for i, v in enumerate(losses)))
    write_record(work / name, ResultRecord.from_json({
        "method": "pcfrl", "task": "synth-fer", "preset": "quick", "seed": 0, "metric": "a", "metrics": {},
        "config": {}, "config_hash": "x", "checkpoint": str(ckpt), "processes": processes, "precision": name,
        "device": "cuda:0"}))


def test_report_reads_step_times_ratios_losses_and_data_share(tmp_path):
    for method, t in (("pcl", 0.05), ("pcfrl", 0.0515)):
        write_record(tmp_path / "complexity", ResultRecord.from_json({
            "method": method, "task": "complexity", "preset": "paper", "seed": 0, "metric": "time_s",
            "metrics": {"time_s": t}, "config": {}, "config_hash": "x"}))
    _run(tmp_path, "fp32", 2.0, 0.5, [10.0, 8.0, 6.0, 4.0])
    _run(tmp_path, "bf16", 1.0, 0.5, [10.1, 8.0, 6.0, 4.4])
    _run(tmp_path, "ddp1", 2.2, 0.5, [10.0, 8.0, 6.0, 4.0])
    console = Console(record=True, width=200)
    console.print(_load().report(tmp_path))
    rows = {line.split("│")[1].strip(): line for line in console.export_text().splitlines() if line.count("│") == 4}
    expected = {"Table 10 ratio pcfrl / pcl": ("1.030", "1.027 (paper)"),  # 0.0515 / 0.05; paper 0.0562 / 0.0547
                "pcfrl s/step fp32": ("1.0000",),  # the last epoch: 2.0 s / 2 steps (epoch 1 warms up)
                "pcfrl s/step bf16": ("0.5000", "speed-up 2.00x"),
                "loss bf16 vs fp32, step 1": ("1.00e-02",),  # 10.1 vs 10.0
                "loss bf16 vs fp32, all steps": ("median 5.00e-03", "max 1.00e-01"),  # 1%, 0, 0, 10%
                "data pipeline share fp32": ("25.0%",), "data pipeline share bf16": ("50.0%",),
                "torchrun DDP s/step (1 process)": ("1.1000", "overhead +10.0%"),
                "torchrun DDP losses = fp32 run": ("identical",)}
    for label, parts in expected.items():
        assert all(part in rows[label] for part in parts), rows[label]


def test_report_names_a_folder_without_its_record(tmp_path):
    with pytest.raises(SystemExit, match="gpu_check: no folder of result records at .*fp32"):
        _load().report(tmp_path)
    (tmp_path / "fp32").mkdir()
    with pytest.raises(SystemExit, match="expected one record in .*fp32, found 0"):
        _load().report(tmp_path)
