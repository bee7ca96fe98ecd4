"""Which (method, task, preset) pairs of the registry resolve and build, checked without data or training.

``pcfrl-bench list --pairs`` shows it, and the test suite asserts that every pair of the registry's cross
product builds or is not supported by a stated rule. A pair *resolves* when its config is valid
(``runner.resolve``, which already checks what the backbone and the method accept) and *builds* when the
method's model is constructed from it (``runner.build_method``: backbone, heads and the dummy forward that
sizes them). A pair is *not supported* when ``resolve`` says so with an ``UnsupportedPairError`` (e.g. the
supervised ceiling on a task without labelled training data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils.data import TensorDataset

from .config import TASK_SOURCE, config_hash, to_plain
from .errors import PcfrlError, UnsupportedPairError
from .runner import Resolved, build_method, resolve
from .tasks.base import Supervision


@dataclass(frozen=True)
class PairStatus:
    """One pair at one preset; ``error`` is the message of the first step that failed ('' when both passed)."""

    method: str
    task: str
    preset: str
    resolves: bool
    builds: bool
    error: str = ""
    supported: bool = True  # False: the pair is excluded by a stated rule (UnsupportedPairError), not broken
    model: dict[str, Any] = field(default_factory=dict)  # the resolved ``model`` section ({} when unresolved)

    @property
    def ok(self) -> bool:
        return self.resolves and self.builds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_key(resolved: Resolved) -> str:
    """Everything ``build_method`` reads: pairs with equal keys build the same model, which is built once."""
    cfg = resolved.config
    return config_hash([resolved.method.implementation, to_plain(cfg.method), to_plain(cfg.model),
                        cfg.data.image_size, cfg.data.source == TASK_SOURCE, cfg.run.seed])


def build_error(resolved: Resolved) -> str:
    """'' when the method's model builds from ``resolved``, else the error as one line."""
    supervision = None
    if resolved.config.data.source == TASK_SOURCE:  # outputs and target come from the task's data: a stand-in
        loss = getattr(resolved.config.method, "loss", "cross_entropy")
        supervision = Supervision(TensorDataset(torch.empty(0)), "label", 1, loss)
    try:
        with torch.no_grad():
            build_method(resolved, supervision)
    except Exception as exc:  # noqa: BLE001  (any failure is this pair's status, reported with its type)
        return str(exc) if isinstance(exc, PcfrlError) else f"{type(exc).__name__}: {exc}"
    return ""


def pair_statuses(methods: Iterable[str], tasks: Iterable[str], presets: Iterable[str],
                  on_pair: Callable[[PairStatus], None] | None = None) -> list[PairStatus]:
    """The status of every (method, task, preset), presets outermost; ``on_pair`` sees each as it is known."""
    methods, tasks = list(methods), list(tasks)
    built: dict[str, str] = {}  # build key -> build error ('' = built)
    out = []
    for preset in presets:
        for method in methods:
            for task in tasks:
                try:
                    resolved = resolve(method, task, preset)
                except PcfrlError as exc:
                    supported = not isinstance(exc, UnsupportedPairError)
                    status = PairStatus(method, task, preset, False, False, str(exc), supported)
                else:
                    key = build_key(resolved)
                    if key not in built:
                        built[key] = build_error(resolved)
                    status = PairStatus(method, task, preset, True, not built[key], built[key],
                                        model=to_plain(resolved.config.model))
                out.append(status)
                if on_pair is not None:
                    on_pair(status)
    return out
