"""The recipes "Adding a dataset" (docs/datasets.md) and "Adding a method" (docs/methods.md), followed from
outside the package: a module registered by its decorator and found through an entry point of an installed
distribution, plus its YAML in a ``PCFRL_BENCH_HOME`` folder; nothing of the package is edited.

The dataset: ``data check``, ``run`` and ``tables`` on it; the method: ``config`` and ``run`` with it.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcfrl_bench import registry
from pcfrl_bench.catalog import registry_root, resource_root
from pcfrl_bench.cli import main
from pcfrl_bench.data.readers import DATASETS
from pcfrl_bench.methods import METHODS
from pcfrl_bench.schema.methods import METHOD_SCHEMAS

TOY_DATASET = '''
"""A toy dataset: <root>/train.csv and test.csv ('file,label' lines) and the PNG files they name."""

from pathlib import Path

import numpy as np

from pcfrl_bench.data.readers import DatasetFormat, SampleIndex, register_dataset
from pcfrl_bench.data.readers.base import path_inside, read_text_lines, require_file

LAYOUT = "<root>/  train.csv, test.csv ('<file>,<label>' lines), the PNG files they name"


def read_toy(root: Path) -> dict[str, SampleIndex]:
    splits = {}
    for split in ("train", "test"):
        listing = require_file(root / f"{split}.csv", f"toy {split} list", LAYOUT)
        rows = [line.split(",") for line in read_text_lines(listing)]
        splits[split] = SampleIndex(paths=[path_inside(root, name, listing, i + 1) for i, (name, _) in enumerate(rows)],
                                    targets={"label": np.array([int(label) for _, label in rows])},
                                    meta={"classes": ["dark", "bright"]})
    return splits


def write_toy(out: Path, n: int, seed: int) -> Path:
    """n training and n / 2 test squares, dark (0) or bright (1), under out/TOY."""
    from PIL import Image

    root, rng = out / "TOY", np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n), ("test", max(2, n // 2))):
        lines = []
        for i in range(count):
            level = (40 if i % 2 == 0 else 200) + rng.integers(0, 30, (16, 16, 3))
            Image.fromarray(level.astype(np.uint8)).save(root / f"{split}_{i}.png")
            lines.append(f"{split}_{i}.png,{i % 2}")
        (root / f"{split}.csv").write_text("\\n".join(lines) + "\\n")
    return root


@register_dataset("toy")
class Toy(DatasetFormat):
    folder = "TOY"
    description = "Toy squares, dark or bright"
    layout = LAYOUT
    reader = staticmethod(read_toy)
    writers = {"toy": write_toy}
    sources = {"toy-train": ("train", {})}
'''

TOY_TASK = """\
description: "Toy squares, dark or bright: linear probe accuracy"
implementation: image-classification
dataset: toy
metric: accuracy
higher_is_better: true
defaults:
  model: {backbone: "timm:test_resnet", small_stem: false}
  data: {source: toy-train, image_size: 16}
  eval: {image_size: 16, probe: {epochs: 5}}
"""

TOY_METHOD = '''
"""A toy method: the trunk learns to predict each image's mean colour."""

from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

from pcfrl_bench.methods import METHODS, Method, StepOutput
from pcfrl_bench.schema.methods import METHOD_SCHEMAS, MethodSchema


@dataclass
class MeanColourParams:
    weight: float = 1.0  # multiplies the loss


METHOD_SCHEMAS.register("mean-colour")(MethodSchema(MeanColourParams))


@METHODS.register("mean-colour")
class MeanColour(Method):
    Params = MeanColourParams

    def __init__(self, params, backbone, feature_dim, image_size):
        super().__init__(params, backbone, feature_dim, image_size)
        self.head = nn.Linear(feature_dim, 3)

    def training_step(self, batch):
        x = batch["image"]
        loss = self.params.weight * F.mse_loss(self.head(self.backbone(x).flatten(1)), x.mean((2, 3)))
        return StepOutput(loss, {"loss": loss.detach()})
'''

TOY_METHOD_YAML = """\
description: "Predicts each image's mean colour (a toy method)"
implementation: mean-colour
presets:
  smoke: {pretrain: {epochs: 1, batch_size: 16}}
"""


def install_plugin(site: Path, module: str, group: str, name: str, source: str) -> None:
    """What ``pip install`` of a distribution with ``[project.entry-points."<group>"] <name> = "<module>"``
    leaves on the path: the module and a dist-info folder naming the entry point."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{module.replace('_', '-')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {module}\n")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A PCFRL_BENCH_HOME with a copy of the registry and the paper tables; what the plugins register is gone
    afterwards (the registries and the plugin modules are restored)."""
    home = tmp_path / "home"
    for kind in ("methods", "tasks"):
        shutil.copytree(registry_root() / kind, home / kind)
    shutil.copytree(resource_root() / "paper", home / "paper")
    monkeypatch.setenv("PCFRL_BENCH_HOME", str(home))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for reg in (DATASETS, METHODS, METHOD_SCHEMAS):
        monkeypatch.setattr(reg, "_items", dict(reg._items))
    monkeypatch.setattr(registry, "_loaded", set(registry._loaded))
    yield home
    for module in ("toy_dataset", "toy_method"):
        sys.modules.pop(module, None)


def invoke(*args: object) -> object:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_a_dataset_added_as_one_module_checks_runs_and_shows_in_the_tables(home: Path, tmp_path: Path) -> None:
    install_plugin(tmp_path / "site", "toy_dataset", "pcfrl_bench.datasets", "toy", TOY_DATASET)
    (home / "tasks" / "toy.yaml").write_text(TOY_TASK)
    data, runs = tmp_path / "data", tmp_path / "runs"
    invoke("synth", "export", "--like", "toy", "--dataset-dir", data, "--n", 40)
    listed = json.loads(invoke("list", "--json", "--data-root", data).output)
    assert {"name": "toy", "folder": "TOY", "description": "Toy squares, dark or bright", "writes": ["toy"],
            "sources": ["toy-train"]} in listed["datasets"]
    assert next(t for t in listed["tasks"] if t["name"] == "toy")["available"]
    report = json.loads(invoke("data", "check", "-t", "toy", "--data-root", data, "--json").output)
    assert report["problems"] == [] and report["dataset"] == "toy" and report["root"] == str(data / "TOY")
    assert report["splits"]["train"] == {"samples": 40, "classes": {"0": 20, "1": 20}}
    assert report["splits"]["test"]["samples"] == 20
    invoke("run", "-m", "simclr", "-t", "toy", "--preset", "smoke", "--data-root", data, "--cache-dir",
           tmp_path / "cache", "--out", runs, "--no-progress")
    record = json.loads((runs / "toy" / "simclr" / "smoke-seed0.json").read_text())
    assert record["counts"] == {"train": 40, "test": 20} and record["metric"] == "accuracy"
    assert record["registry_config"] and 0 <= record["metrics"]["accuracy"] <= 100
    invoke("tables", "--variant", "paper", "--preset", "smoke", "--records", runs, "--tables-dir", tmp_path / "t")
    tables = (tmp_path / "t" / "TABLES.md").read_text()
    assert "## Tasks of no paper table" in tables
    assert f"| toy | simclr | accuracy | {record['metrics']['accuracy']:.2f} (n=1) |" in tables


def test_a_method_added_as_one_module_resolves_and_runs(home: Path, tmp_path: Path) -> None:
    install_plugin(tmp_path / "site", "toy_method", "pcfrl_bench.methods", "mean-colour", TOY_METHOD)
    (home / "methods" / "mean-colour.yaml").write_text(TOY_METHOD_YAML)
    config = invoke("config", "-m", "mean-colour", "-t", "digits", "--preset", "smoke", "--set", "method.weight=2")
    assert "weight: 2.0" in config.output
    runs = tmp_path / "runs"
    invoke("run", "-m", "mean-colour", "-t", "digits", "--preset", "smoke", "--data-root", tmp_path / "data",
           "--cache-dir", tmp_path / "cache", "--out", runs, "--no-progress")
    record = json.loads((runs / "digits" / "mean-colour" / "smoke-seed0.json").read_text())
    assert record["implementation"] == "mean-colour" and record["pretrain_log"][0]["loss"] > 0
