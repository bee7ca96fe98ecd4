"""What ``pcfrl-bench list`` shows, as data and without torch: the registered methods, the tasks with whether
their data is present, and the dataset formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import catalog
from .data.readers import dataset_formats
from .data.task_data import task_availability
from .resolution import task_params


def registry_listing(data_root: Path, problems: list[str]) -> dict[str, Any]:
    """{"methods", "tasks", "datasets", "data_root"}: one dict per entry; a broken registry file goes to
    ``problems`` and is skipped."""
    methods = [{"name": e.name, "description": e.description, "implementation": e.implementation}
               for e in catalog.all_entries("method", problems)]
    tasks = []
    for e in catalog.all_entries("task", problems):
        available, where = task_availability(e, task_params(e), data_root)
        tasks.append({"name": e.name, "description": e.description, "metric": e.metric, "available": available,
                      "data": where})
    datasets = [{"name": f.name, "folder": f.folder, "description": f.description, "writes": sorted(f.writers),
                 "sources": sorted(f.sources)} for f in dataset_formats()]
    return {"methods": methods, "tasks": tasks, "datasets": datasets, "data_root": str(data_root)}
