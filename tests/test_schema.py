"""The torch-free schema agrees with the torch registries name by name, so the two cannot drift."""

from __future__ import annotations

import timm

from pcfrl_bench import catalog
from pcfrl_bench.config import ModelConfig
from pcfrl_bench.data.task_data import task_availability
from pcfrl_bench.methods import METHODS
from pcfrl_bench.models.backbones import BACKBONES
from pcfrl_bench.resolution import task_params
from pcfrl_bench.schema.methods import METHOD_SCHEMAS
from pcfrl_bench.schema.models import BACKBONE_NAMES, TIMM_MODELS
from pcfrl_bench.schema.tasks import TASK_SCHEMAS
from pcfrl_bench.tasks import TASKS, default_task
from pcfrl_bench.tasks.real import DatasetMixin


def test_methods_take_their_params_from_the_schema() -> None:
    assert METHODS.names() == METHOD_SCHEMAS.names()
    for name in METHODS:
        assert METHODS.get(name).Params is METHOD_SCHEMAS.get(name).Params, name


def test_tasks_take_their_params_and_supervision_from_the_schema() -> None:
    assert TASKS.names() == TASK_SCHEMAS.names()
    for name in TASKS:
        cls, schema = TASKS.get(name), TASK_SCHEMAS.get(name)
        assert cls.Params is schema.Params, name
        assert cls.has_supervision() == schema.supervision, name
    for entry in catalog.all_entries("task"):  # a task read from disk names its dataset format in its YAML
        assert issubclass(TASKS.get(entry.implementation), DatasetMixin) == bool(entry.dataset), entry.name


def test_backbone_names_are_the_registered_backbones() -> None:
    assert BACKBONES.names() == sorted(BACKBONE_NAMES)


def test_every_task_reports_the_availability_list_shows(tmp_path) -> None:
    for entry in catalog.all_entries("task"):
        shown = task_availability(entry, task_params(entry), tmp_path)
        assert default_task(entry.name, tmp_path).availability() == shown, entry.name


def _backbones(layer: object) -> list[str]:
    model = layer.get("model") if isinstance(layer, dict) else None
    return [model["backbone"]] if isinstance(model, dict) and "backbone" in model else []


def test_the_registry_timm_models_are_known_without_timm() -> None:
    used = {ModelConfig().backbone}
    for kind in ("method", "task"):
        for entry in catalog.all_entries(kind):
            for layer in (entry.defaults, entry.pinned, *entry.presets.values()):
                used.update(_backbones(layer))
    timm_used = {b.removeprefix("timm:") for b in used if b.startswith("timm:")}
    assert timm_used <= TIMM_MODELS
    assert TIMM_MODELS <= set(timm.list_models())
