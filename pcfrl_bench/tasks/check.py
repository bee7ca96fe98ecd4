"""``data check``: per-split counts of a task's data and every problem found, without training anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.readers import check_dataset
from ..data.readers.check import DECODE_ALL_LIMIT, Decode
from ..errors import PcfrlError
from .base import Task
from .real import DatasetMixin


def check_task(task: Task, decode_sample: Decode = "auto") -> dict[str, Any]:
    """{"task", "dataset", "root", "splits": {split: counts}, "problems": [...]}.

    Tasks backed by a reader (``DatasetMixin``) use ``check_dataset`` (samples, pairs for verification,
    classes, subjects for DISFA; missing and undecodable images); other tasks report their splits' sizes.
    """
    if isinstance(task, DatasetMixin):
        data = task.data
        report = check_dataset(data.format.name, data.folder(), decode_sample=decode_sample, **data.options())
        report = {"task": task.name, **report}
        if not report["problems"]:
            available, where = task.availability()  # the task's own reading (e.g. strict missing-frame rule)
            if not available:
                report["problems"].append(where)
        return report
    report: dict[str, Any] = {"task": task.name, "dataset": None, "root": str(task.data_root), "splits": {},
                              "problems": []}
    available, where = task.availability()
    if not available:
        report["problems"].append(where)
        return report
    try:
        for split, ds in task.splits(32).items():
            report["splits"][split] = {"samples": len(ds)}
    except PcfrlError as err:
        report["problems"].append(str(err))
    return report


def format_check_report(report: dict[str, Any]) -> str:
    """Human-readable lines: one per split with its counts, then one per problem."""
    lines = [f"task {report['task']}" + (f" (dataset {report['dataset']} at {report['root']})"
                                         if report.get("dataset") else "")]
    for split, counts in report["splits"].items():
        parts = []
        for key, value in counts.items():
            if key == "classes" and isinstance(value, dict):
                parts.append(f"classes {len(value)} ({', '.join(f'{k}: {v}' for k, v in value.items())})")
            elif isinstance(value, list):
                parts.append(f"{key} [{', '.join(str(v) for v in value)}]")
            else:
                parts.append(f"{key} {value}")
        lines.append(f"  {split}: " + ", ".join(parts))
    decoded = report.get("decoded")
    if decoded and decoded["of"]:
        how = (f" (a sample stratified by split and class: sets over {DECODE_ALL_LIMIT:,} images are sampled; "
               "--decode all decodes every one)" if decoded["sample"] else "")
        lines.append(f"decoded {decoded['images']:,} of {decoded['of']:,} images{how}")
    if report["problems"]:
        lines.append(f"{len(report['problems'])} problem(s):")
        lines += [f"  - {p}" for p in report["problems"]]
    else:
        lines.append("no problems found")
    return "\n".join(lines)


def check_task_by_name(name: str, data_root: Path, decode_sample: Decode = "auto",
                       overrides: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """``check_task`` of the task ``name`` with its YAML defaults and ``task.*`` overrides."""
    from . import default_task

    return check_task(default_task(name, data_root, overrides), decode_sample)
