"""The registry's cross product: every method x every task x every preset resolves and builds (no data, no
training) unless a stated rule excludes the pair, the task owns the model, and every method smoke-runs on a
real task (fixtures in the official layouts) and on a synthetic task. New methods and tasks are covered
without editing this file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from torch import nn

from pcfrl_bench import catalog
from pcfrl_bench.cli import main
from pcfrl_bench.config import PRESETS, TASK_SOURCE, ModelConfig, build_dataclass, to_plain
from pcfrl_bench.errors import ConfigError, UnsupportedPairError
from pcfrl_bench.models.backbones import BACKBONES
from pcfrl_bench.pairs import pair_statuses
from pcfrl_bench.runner import resolve
from pcfrl_bench.schema import models as schema_models
from pcfrl_bench.tasks import TASKS as TASK_CLASSES
from test_real_tasks import make_fixture

METHODS, TASKS = catalog.names("method"), catalog.names("task")


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def trains_on_task_labels(method: str) -> bool:
    return catalog.entry("method", method).pinned.get("data", {}).get("source") == TASK_SOURCE


def has_labels(task: str) -> bool:
    return TASK_CLASSES.get(catalog.entry("task", task).implementation).has_supervision()


@pytest.fixture(scope="module")
def statuses():
    return pair_statuses(METHODS, TASKS, PRESETS)


def test_every_pair_resolves_and_builds_at_every_preset(statuses) -> None:
    assert len(statuses) == len(METHODS) * len(TASKS) * len(PRESETS)
    failing = [f"{s.method} x {s.task} ({s.preset}): {s.error}" for s in statuses if not s.ok and s.supported]
    assert not failing, "\n".join(failing)
    # the only rule that excludes pairs: a method trained on the task's labels, a task without labelled data
    excluded = {(s.method, s.task) for s in statuses if not s.supported}
    assert excluded == {(m, t) for m in METHODS for t in TASKS if trains_on_task_labels(m) and not has_labels(t)}


def test_the_task_owns_the_model(statuses) -> None:
    """At each preset every method meets the model its task chose (methods that pin a model excepted)."""
    free = {m for m in METHODS if "model" not in catalog.entry("method", m).pinned}
    assert {"simclr", "moco", "pcl", "pcfrl"} <= free
    models: dict[tuple[str, str], set[str]] = {}
    for s in statuses:
        if s.method in free and s.supported:
            models.setdefault((s.task, s.preset), set()).add(json.dumps(s.model, sort_keys=True))
    assert len(models) == len(TASKS) * len(PRESETS)
    assert all(len(m) == 1 for m in models.values()), {k: m for k, m in models.items() if len(m) > 1}
    # a method that pins its own backbone owns the whole model section: none of the task's model keys apply
    for method in METHODS:
        pinned = catalog.entry("method", method).pinned.get("model", {})
        if "backbone" in pinned:
            own = [s.model for s in statuses if s.method == method and s.supported]
            assert own and all(m == to_plain(build_dataclass(ModelConfig, pinned)) for m in own), method
    # the issue's own pair: pcl/moco presets no longer push a width onto the smoke task's timm test model
    model = resolve("pcfrl", "cplfw", "smoke").config.model
    assert (model.backbone, model.width) == ("timm:test_resnet", 1.0)
    assert resolve("pcl", "synth-fer", "smoke").config.model.width == 0.125  # the synthetic task's smoke width


def test_config_rejects_what_run_would(tmp_path: Path) -> None:
    ok = cli("config", "-m", "pcfrl", "-t", "cplfw", "--preset", "smoke")
    assert ok.exit_code == 0, ok.output
    cases = {
        ("simclr", "cplfw", "model.width=0.5"): "model.width=0.5 applies to facecycle and timm ResNets, not timm:test_resnet",
        ("simclr", "cplfw", "model.backbone=timm:resnet1"): "Did you mean 'resnet18'",
        ("simclr", "cplfw", "model.backbone=facecycel"): "Unknown backbone 'facecycel'. Did you mean 'facecycle'",
        ("pcl", "rafdb", "data.image_size=100"): "multiple of 8, got 100",
        ("simclr", "cplfw", "model.batchnorm=true"): "model.batchnorm=True applies to facecycle, not timm:test_resnet",
        ("simclr", "cplfw", "data.source=task"): "task 'cplfw' has none; tasks with labelled training data: ",
    }
    for (method, task, override), message in cases.items():
        for command in ("config", "run"):
            args = [command, "-m", method, "-t", task, "--preset", "smoke", "--set", override]
            if command == "run":
                args += ["--out", str(tmp_path / "runs"), "--no-progress"]
            result = cli(*args)
            assert result.exit_code == 2, (command, override, result.output)
            assert message in " ".join(result.output.split()), (command, override, result.output)
    assert not (tmp_path / "runs").exists()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_method_yaml_may_not_set_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCFRL_BENCH_HOME", str(tmp_path))
    write(tmp_path / "tasks/faces.yaml", "implementation: digits\nmetric: accuracy\n"
          "defaults: {model: {backbone: facecycle}, data: {image_size: 16}}\n")
    write(tmp_path / "methods/wide.yaml", "implementation: simclr\npresets: {quick: {model: {width: 0.5}}}\n")
    with pytest.raises(ConfigError, match=r"wide\.yaml: presets\.quick\.model is set, but the task owns"):
        catalog.entry("method", "wide")
    result = cli("config", "-m", "wide", "-t", "faces")
    assert result.exit_code == 2 and "wide.yaml" in result.output
    write(tmp_path / "methods/inherits.yaml", "implementation: simclr\ndefaults: {model: {small_stem: false}}\n")
    with pytest.raises(ConfigError, match=r"inherits\.yaml: defaults\.model is set"):
        catalog.entry("method", "inherits")
    # a method defined by its model pins it: pinned keys win over the task's
    write(tmp_path / "methods/pinned.yaml", "implementation: simclr\npinned: {model: {width: 0.5}}\n")
    assert resolve("pinned", "faces", "quick").config.model.width == 0.5


def test_pair_statuses_name_the_failing_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """resolves / builds per pair, with the message; a model is built once per distinct build config."""
    calls = []

    def counted(cfg):
        calls.append(cfg.backbone)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def broken(cfg):
        raise RuntimeError("this trunk cannot be built")

    monkeypatch.setitem(BACKBONES._items, "counted", counted)
    monkeypatch.setitem(BACKBONES._items, "broken", broken)
    monkeypatch.setattr(schema_models, "BACKBONE_NAMES", (*schema_models.BACKBONE_NAMES, "counted", "broken"))
    monkeypatch.setenv("PCFRL_BENCH_HOME", str(tmp_path))
    write(tmp_path / "methods/simclr.yaml", "implementation: simclr\n"
          "defaults: {method: {proj_hidden_dim: 8, proj_dim: 4}}\n")
    write(tmp_path / "methods/pcl.yaml", "implementation: pcl\ndefaults: {method: {head_hidden_dim: 8, head_dim: 4}}\n")
    task = "implementation: digits\nmetric: accuracy\ndefaults: {{model: {{backbone: {b}{w}}}, data: {{image_size: {s}}}}}\n"
    write(tmp_path / "tasks/a.yaml", task.format(b="counted", w="", s=16))
    write(tmp_path / "tasks/b.yaml", task.format(b="counted", w="", s=16))  # same build config as a
    write(tmp_path / "tasks/odd.yaml", task.format(b="counted", w="", s=20))  # PCL's decoder needs a multiple of 8
    write(tmp_path / "tasks/wide.yaml", task.format(b='"timm:test_resnet"', w=", width: 0.5", s=16))
    write(tmp_path / "tasks/broken.yaml", task.format(b="broken", w="", s=16))
    status = {(s.method, s.task): s for s in pair_statuses(["pcl", "simclr"], ["a", "b", "odd", "wide", "broken"],
                                                            ["smoke"])}
    assert all(status[m, t].ok for m in ("pcl", "simclr") for t in ("a", "b"))
    assert calls == ["counted"] * 3  # pcl at 16 px, simclr at 16 px (a and b share it), simclr at 20 px
    assert status["simclr", "odd"].ok
    odd = status["pcl", "odd"]
    assert not odd.resolves and not odd.builds and "multiple of 8, got 20" in odd.error
    wide = status["simclr", "wide"]
    assert not wide.resolves and "model.width=0.5 applies to facecycle and timm ResNets" in wide.error
    bad = status["simclr", "broken"]
    assert bad.resolves and not bad.builds and bad.error == "RuntimeError: this trunk cannot be built"
    # a method trained on the task's labels: built with a stand-in label count, excluded where there are none
    write(tmp_path / "methods/ceiling.yaml", "implementation: supervised\npinned: {data: {source: task}}\n")
    write(tmp_path / "tasks/pairs.yaml", "implementation: lfw\nmetric: accuracy\n")
    ceiling = {s.task: s for s in pair_statuses(["ceiling"], ["a", "pairs"], ["smoke"])}
    assert ceiling["a"].ok and calls == ["counted"] * 4
    assert ceiling["pairs"].supported is False and "task 'pairs' has none" in ceiling["pairs"].error

    table = cli("list", "--pairs", "--preset", "smoke", "-m", "pcl", "-m", "simclr", "-t", "a", "-t", "broken")
    assert table.exit_code == 0, table.output
    assert "simclr x broken (smoke) does not build: RuntimeError: this trunk cannot be built" in table.output
    assert "2 of 4 pairs build, 0 not supported, 2 failing." in table.output
    data = json.loads(cli("list", "--pairs", "-p", "smoke", "-m", "simclr", "-t", "wide", "--json").output)
    assert [(p["method"], p["task"], p["resolves"], p["builds"]) for p in data["pairs"]] == [
        ("simclr", "wide", False, False)]
    unknown = cli("list", "--pairs", "-t", "wdie")
    assert unknown.exit_code == 2 and "Did you mean 'wide'" in unknown.output


REAL_TASKS = ("cplfw", "rafdb")  # each method runs on the first of these it is not excluded from


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory) -> Path:
    """CPLFW and RAF-DB in their official layouts plus the VoxCeleb frames face tasks pretrain on (datasets.md)."""
    root = tmp_path_factory.mktemp("smoke")
    for task in REAL_TASKS:
        make_fixture(task, root / "data")
    from fixtures_real import write_voxceleb

    write_voxceleb(root / "data" / "VoxCeleb")
    return root


@pytest.mark.parametrize("kind", ["real", "synthetic"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_smoke_runs(smoke_root: Path, method: str, kind: str) -> None:
    """The registry's own smoke preset, no overrides: pretrain, freeze, evaluate, store a record."""
    task = "synth-fer"
    if kind == "real":
        task = next(t for t in REAL_TASKS if has_labels(t) or not trains_on_task_labels(method))
    result = cli("run", "-m", method, "-t", task, "--preset", "smoke", "--no-progress",
                 "--data-root", str(smoke_root / "data"), "--out", str(smoke_root / "runs"),
                 "--cache-dir", str(smoke_root / "cache"))
    assert result.exit_code == 0, result.output + repr(result.exception)
    record = json.loads((smoke_root / "runs" / task / method / "smoke-seed0.json").read_text())
    assert (record["method"], record["task"], record["preset"]) == (method, task, "smoke")
    owner = method if "model" in catalog.entry("method", method).pinned else "simclr"  # the task's model otherwise
    assert record["config"]["model"] == resolve(owner, task, "smoke").config.to_dict()["model"]
    assert 0 <= record["metrics"]["accuracy"] <= 100
    log = record["pretrain_log"]
    assert len(log) == record["config"]["pretrain"]["epochs"] and all(math.isfinite(r["loss"]) for r in log)
    if task == "cplfw":
        assert record["counts"] == {"images": 20, "pairs": 20, "folds": 10}
    if task == "rafdb":
        assert record["counts"] == {"train": 7, "test": 7}
