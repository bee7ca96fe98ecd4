"""A run's config from the registry, without torch: the YAML layers of a method and a task typed by their
``Params`` (``schema``) and checked against what the backbone, the method and the task accept.

``pcfrl-bench config``, ``list`` and ``results`` use this module alone; the runner builds and runs what it returns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import catalog
from .catalog import Entry
from .config import (PRESETS, TASK_SOURCE, EmptyParams, RunConfig, load_yaml, parse_override, preset_layer,
                     resolve_config)
from .errors import ConfigError, MalformedFileError, PcfrlError, UnsupportedPairError
from .inputs import quote
from .schema.methods import METHOD_SCHEMAS
from .schema.models import check_model
from .schema.tasks import TASK_SCHEMAS


@dataclass
class Resolved:
    """A run's typed config and the registry entries it came from."""

    config: RunConfig
    method: Entry
    task: Entry
    overrides: tuple[str, ...] = ()

    @property
    def is_registry(self) -> bool:
        """Whether this is the registry's own config (nothing set on top of the YAML and the run options)."""
        cfg = self.config.run
        return registry_result_hash(cfg.method, cfg.task, cfg.preset, cfg.seed) == self.config.result_hash()


def resolve(method: str, task: str, preset: str = "quick", seed: int = 0, device: str = "auto",
            overrides: tuple[str, ...] | list[str] = (), base: dict[str, Any] | None = None) -> Resolved:
    """defaults -> method YAML -> task YAML -> method preset -> task preset -> pinned keys -> ``base`` (a config
    file) -> ``--set`` overrides. A preset that extends another (``config.PRESET_BASES``) is its base's layer
    with its own merged on top, for the method and the task alike.

    The task owns ``model`` (method files may not set it, see ``catalog``), except for a method that pins its
    own ``model.backbone``: then the task's model keys are left out and the method's pinned model applies.

    The result is checked against what its backbone and method accept (``check_model``, the method schema's
    ``check``) and whether the task has the labelled data ``data.source: task`` trains on, so a config that
    resolves is one that builds; a pair that cannot go together raises ``UnsupportedPairError``."""
    if preset not in PRESETS:
        raise ConfigError(f"Unknown preset {quote(preset)}; choose one of {', '.join(PRESETS)}")
    m, t = catalog.entry("method", method), catalog.entry("task", task)
    method_schema, task_schema = METHOD_SCHEMAS.get(m.implementation), TASK_SCHEMAS.get(t.implementation)
    run_layer = {"run": {"method": method, "task": task, "preset": preset, "seed": seed, "device": device}}
    task_layers = [t.defaults, preset_layer(t.presets, preset)]
    if "backbone" in (m.pinned.get("model") or {}):  # a method that pins its own backbone owns the whole model
        task_layers = [{k: v for k, v in layer.items() if k != "model"} for layer in task_layers]
    layers = [m.defaults, task_layers[0], preset_layer(m.presets, preset), task_layers[1], m.pinned, t.pinned, base or {},
              run_layer]
    layers += [parse_override(o) for o in overrides]
    cfg = resolve_config(layers, method_schema.Params, task_schema.Params)
    if cfg.run.method != method or cfg.run.task != task:
        raise ConfigError("run.method and run.task are chosen with --method and --task, not --set")
    check_model(cfg.model)
    method_schema.check(cfg)
    if cfg.data.source == TASK_SOURCE and not task_schema.supervision:
        labelled = [e.name for e in catalog.all_entries("task", []) if TASK_SCHEMAS.get(e.implementation).supervision]
        raise UnsupportedPairError(f"{method} pretrains on the task's labelled training data (data.source: "
                                   f"{TASK_SOURCE}), and task {task!r} has none; tasks with labelled training data: "
                                   f"{', '.join(labelled)}")
    return Resolved(cfg, m, t, tuple(overrides))


def resolve_file(path: Path, overrides: tuple[str, ...] | list[str] = (), device: str | None = None) -> Resolved:
    """Replay a config printed by ``pcfrl-bench config``: its ``run`` section names method, task, preset and
    seed; every other key is a layer on top of the registry's, and ``overrides`` come last."""
    data = load_yaml(path)
    run_info = data.get("run")
    if not isinstance(run_info, dict) or not run_info.get("method") or not run_info.get("task"):
        raise MalformedFileError(path, None, "expected the output of `pcfrl-bench config` (a 'run:' section "
                                             "with method and task)")
    return resolve(str(run_info["method"]), str(run_info["task"]), str(run_info.get("preset", "quick")),
                   int(run_info.get("seed", 0)), device or str(run_info.get("device", "auto")), overrides, base=data)


@functools.lru_cache(maxsize=4096)
def registry_result_hash(method: str, task: str, preset: str, seed: int) -> str | None:
    """The result hash of a run of the registry's own config (no ``--set``), or None where ``method`` or
    ``task`` is not registered (e.g. Table 10's ``complexity`` records)."""
    try:
        return resolve(method, task, preset, seed).config.result_hash()
    except PcfrlError:
        return None


def task_params(entry: Entry, overrides: tuple[str, ...] | list[str] = ()) -> Any:
    """A task's ``Params`` from its YAML defaults and ``task.*`` overrides (for listing and data checks: no
    method, model or training is involved)."""
    layers = [parse_override(o) for o in overrides]
    other = sorted({key for layer in layers for key in layer} - {"task"})
    if other:
        raise ConfigError(f"only task.* keys apply here (no method, model or training is involved), got {other}")
    return resolve_config([entry.defaults, *layers], EmptyParams, TASK_SCHEMAS.get(entry.implementation).Params).task
