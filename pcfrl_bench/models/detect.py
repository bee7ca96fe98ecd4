"""What a weights file holds, told from its keys and shapes: which trunk to build, at which width, with which input
normalisation, so that ``pcfrl-bench eval --checkpoint FILE`` needs no guessed options.

Kinds (each names the model settings it implies; a user's ``--set model.*`` still wins):

- ``pcfrl-bench``: this project's ``last.pt`` (``model``/``optimizer``/``epoch``/``complete``), or a trunk state dict
  with the pretraining's ``config.yaml`` beside it (``backbone.pt``) or one folder up (a snapshot kept along the run,
  ``snapshots/epoch-0005.pt``): the stored model section is the answer;
- ``pcl-official``: the official PCL checkpoint or its encoder (``layer3_2_exp``): facecycle at its own width,
  inputs in [0, 1] (``model.input_norm: none``, as the official code feeds them);
- ``resnet``: a ResNet state dict in the layout timm and torchvision share (``conv1``, ``bn1``, ``layer1-4``,
  ``fc``): depth and block type from the blocks per stage, width from ``layer1.0.conv1``, the stem from
  ``conv1``'s kernel, ImageNet input normalisation (how such weights are trained);
- ``facecycle``: a facecycle trunk state dict without its config (width and BatchNorm from the shapes).

Wrappers (``state_dict``, ``model``) and the usual prefixes (``module.``, ``backbone.``, ``encoder_q.``, ...) are
looked through first. A file of none of these kinds is a :class:`CheckpointError` listing its key prefixes beside
the ones each kind expects.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from ..errors import PcfrlError

PRETRAIN_CONFIG = "config.yaml"  # written beside every pretraining checkpoint (runner.ensure_pretrained)
SNAPSHOT_DIR = "snapshots"  # the trunks kept along a pretraining (pretrain.snapshot_every), inside its folder
PROJECT_CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "complete")
STRIP_PREFIXES = ("", "backbone.", "module.encoder_q.", "encoder_q.", "module.backbone.", "module.encoder.",
                  "module.", "encoder.", "model.")
OFFICIAL_MARK = "layer3_2_exp.0.weight"
FACECYCLE_MARKS = ("conv1.0.weight", "layer2_1.0.weight", "layer3_1.0.weight")
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
# (block type, blocks per stage) -> timm/torchvision depth
RESNET_DEPTHS = {("basic", (2, 2, 2, 2)): 18, ("basic", (3, 4, 6, 3)): 34, ("bottleneck", (2, 2, 2, 2)): 26,
                 ("bottleneck", (3, 4, 6, 3)): 50, ("bottleneck", (3, 4, 23, 3)): 101,
                 ("bottleneck", (3, 8, 36, 3)): 152}
MODEL_KEYS = ("backbone", "width", "small_stem", "input_norm", "batchnorm", "zero_init_residual")
EXPECTED = {  # what each kind's file holds at its top level (the error of an unknown file lists them)
    "pcfrl-bench": "model, optimizer, scheduler, epoch, complete (last.pt); or a trunk with config.yaml beside it",
    "pcl-official": "module.encoder (conv1, layer1, layer2_1, resblock1-2, layer2_2, layer3_1, layer3_2_exp, "
                    "layer3_2_pose), module.exp_fc, module.pose_fc, module.decoder",
    "resnet": "conv1, bn1, layer1, layer2, layer3, layer4, fc (timm and torchvision)",
    "facecycle": "conv1, layer1, layer2_1, resblocks, layer2_2, layer3_1",
}


class CheckpointError(PcfrlError):
    """A weights file cannot be read, has an unknown format, or does not fit the backbone."""


@dataclass(frozen=True)
class Detection:
    """What a checkpoint holds and the model settings that build its trunk."""

    kind: str  # pcfrl-bench, pcl-official, resnet, facecycle
    path: str
    model: dict[str, Any] = field(default_factory=dict)  # model.* settings implied by the file
    note: str = ""  # where the settings came from

    def overrides(self) -> list[str]:
        """``--set`` strings of :attr:`model` (given before the user's own, which win)."""
        return [f"model.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in self.model.items()]

    @property
    def architecture(self) -> str:
        return str(self.model.get("backbone", "the task's backbone"))


def read_weights_file(path: Path) -> dict[str, Any]:
    """The dict a checkpoint file holds, unpickled with ``weights_only=True`` (a CheckpointError otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, weights-only refusal)
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return obj


def is_project_checkpoint(obj: dict[str, Any]) -> bool:
    return isinstance(obj.get("model"), dict) and "epoch" in obj and "complete" in obj


def unwrap(obj: dict[str, Any]) -> dict[str, Any]:
    """The state dict inside ``{"state_dict": ...}`` / ``{"model": ...}`` (or ``obj`` itself)."""
    for wrapper in ("state_dict", "model"):
        if isinstance(obj.get(wrapper), dict):
            return obj[wrapper]
    return obj


def tensors(obj: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def key_prefixes(keys: list[str], shown: int = 12) -> str:
    """``name (count)`` of the keys' leading components, one level deeper while a single prefix holds them all."""
    depth = 1
    while depth < 4:
        firsts = {".".join(k.split(".")[:depth]) for k in keys}
        if len(firsts) > 1 or all(k.count(".") < depth for k in keys):
            break
        depth += 1
    counts = Counter(".".join(k.split(".")[:depth]) for k in keys)
    items = [f"{p} ({n})" for p, n in sorted(counts.items())]
    return ", ".join(items[:shown]) + (f", ... (+{len(items) - shown} more)" if len(items) > shown else "")


def stripped(state: dict[str, torch.Tensor], mark: str) -> tuple[str, dict[str, torch.Tensor]] | None:
    """(prefix, keys without it) for the first of ``STRIP_PREFIXES`` under which ``mark`` is a key."""
    for prefix in STRIP_PREFIXES:
        if prefix + mark in state:
            return prefix, {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return None


def _stored_model(folder: Path) -> dict[str, Any] | None:
    """The model section of the pretraining ``config.yaml`` in ``folder`` (None: absent or not such a file)."""
    path = folder / PRETRAIN_CONFIG
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict) or not {"implementation", "seed", "model", "pretrain"} <= set(data):
        return None  # not a pretraining config of this project
    model = data["model"]
    if not isinstance(model, dict) or not isinstance(model.get("backbone"), str):
        return None
    return {k: model[k] for k in MODEL_KEYS if isinstance(model.get(k), str | int | float | bool)}


def _facecycle(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    width = state["conv1.0.weight"].shape[0] / 64
    return {"backbone": "facecycle", "width": width, "batchnorm": "conv1.1.running_mean" in state,
            "zero_init_residual": False}


def _resnet(state: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """timm/torchvision ResNet settings from a stripped state dict (None: not a ResNet of a known depth)."""
    blocks = []
    for stage in RESNET_STAGES:
        ids = {int(m.group(1)) for k in state if (m := re.match(rf"{stage}\.(\d+)\.", k))}
        if not ids:
            return None
        blocks.append(max(ids) + 1)
    block = "bottleneck" if "layer1.0.conv3.weight" in state else "basic"
    deep = "conv1.0.weight" in state
    if tuple(blocks) == (1, 1, 1, 1) and deep:
        name = "test_resnet"  # timm's tiny test model (this project's smoke presets)
    elif (block, tuple(blocks)) in RESNET_DEPTHS:
        depth = RESNET_DEPTHS[(block, tuple(blocks))]
        avg_down = any(k.endswith("downsample.1.weight") and state[k].dim() == 4 for k in state)
        name = f"resnet{depth}" + ("" if not deep else "d" if avg_down else "c")
    else:
        return None
    width = state["layer1.0.conv1.weight"].shape[0] / (64 if name != "test_resnet" else 32)
    settings: dict[str, Any] = {"backbone": f"timm:{name}", "width": width, "input_norm": "imagenet",
                                "batchnorm": False}
    if not deep:  # a CIFAR-style stem is a 3x3 first conv; the standard one is 7x7
        settings["small_stem"] = state["conv1.weight"].shape[-1] == 3
    return settings


def detect_state(obj: dict[str, Any], path: Path) -> Detection | None:
    """The kind of the file's contents ``obj`` (None when it is none of the known kinds)."""
    folder = path.parent.parent if path.parent.name == SNAPSHOT_DIR else path.parent
    stored = _stored_model(folder)
    if is_project_checkpoint(obj):
        state = {k.removeprefix("backbone."): v for k, v in tensors(obj["model"]).items() if k.startswith("backbone.")}
        if stored is not None:
            return Detection("pcfrl-bench", str(path), stored, f"model section of {folder / PRETRAIN_CONFIG}")
        inferred = _infer(state)
        return Detection("pcfrl-bench", str(path), inferred or {}, "inferred from the trunk's keys and shapes")
    state = tensors(unwrap(obj))
    if stored is not None and not any(k.startswith(("module.", "encoder_q.")) for k in state):
        return Detection("pcfrl-bench", str(path), stored, f"model section of {folder / PRETRAIN_CONFIG}")
    official = stripped(state, OFFICIAL_MARK)
    if official is not None:
        settings = _facecycle(official[1]) | {"input_norm": "none"}
        return Detection("pcl-official", str(path), settings, "official PCL encoder: [0, 1] inputs")
    inferred = _infer(state)
    if inferred is None:
        return None
    kind = "facecycle" if inferred["backbone"] == "facecycle" else "resnet"
    note = ("ResNet layout shared by timm and torchvision" if kind == "resnet"
            else "facecycle trunk; input normalisation not stored in the file")
    return Detection(kind, str(path), inferred, note)


def _infer(state: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    found = stripped(state, FACECYCLE_MARKS[1])
    if found is not None and all(m in found[1] for m in FACECYCLE_MARKS):
        return _facecycle(found[1])
    for mark in ("layer1.0.conv1.weight",):
        found = stripped(state, mark)
        if found is not None:
            return _resnet(found[1])
    return None


def unknown_file_error(obj: dict[str, Any], path: Path) -> CheckpointError:
    keys = list(tensors(unwrap(obj))) or [str(k) for k in obj]
    expected = "\n".join(f"    {kind}: {what}" for kind, what in EXPECTED.items())
    return CheckpointError(
        f"{path}: cannot tell what this checkpoint holds.\n  its keys: {key_prefixes(keys)}\n  known kinds hold:\n"
        f"{expected}\n  (wrappers state_dict/model and prefixes {', '.join(p for p in STRIP_PREFIXES if p)} are "
        "looked through; for another timm model give --set model.backbone=timm:<name>)")


def detect_for_eval(path: Path, overrides: tuple[str, ...] | list[str] = ()) -> Detection | None:
    """What ``eval --checkpoint`` builds from: the detection, or None for a file of no known kind when the user
    names the backbone (``--set model.backbone=...``); without it such a file is an error listing its keys."""
    obj = read_weights_file(path)
    found = detect_state(obj, Path(path))
    if found is None and not any(o.replace(" ", "").startswith("model.backbone=") for o in overrides):
        raise unknown_file_error(obj, Path(path))
    return found


def describe(detection: Detection, model: Any) -> list[str]:
    """The lines ``eval`` prints: kind, architecture, width, input normalisation (``model``: the resolved
    ModelConfig, so a user's ``--set`` shows as set)."""
    def origin(key: str) -> str:
        return "detected" if detection.model.get(key) == getattr(model, key) else "set"

    norm = {"none": "none, inputs in [0, 1]", "imagenet": "ImageNet mean and std"}[model.input_norm]
    width = f"{model.width:g}" if model.backbone == "facecycle" or model.backbone.startswith("timm:resnet") else "-"
    lines = [f"checkpoint: {detection.path}", f"  kind: {detection.kind} ({detection.note})",
             f"  architecture: {model.backbone} ({origin('backbone')})", f"  width: {width} ({origin('width')})"]
    if "input_norm" in detection.model:
        lines.append(f"  input normalisation: {norm} ({origin('input_norm')})")
    else:
        lines.append(f"  input normalisation: {norm} (the task's; not stored in the file)")
    return lines
