"""Weights trained elsewhere: detect a checkpoint's format, convert its keys, load a backbone with a key check.

Formats (named in the result record):

- ``pcfrl-bench``: this project's pretraining checkpoint (``last.pt``: ``{"model": Method.state_dict(), ...}``);
  the trunk is the ``backbone.*`` part.
- ``pcl-official``: the official PCL checkpoint (``{"state_dict": ...}`` or the bare dict) of
  ``nn.DataParallel(ExpPoseModel)``, or its encoder with ``module.encoder.`` stripped (what the official
  evaluation code loads, ``resblock1.*``, ``layer3_2_exp.*``, ...); its keys are renamed by :data:`OFFICIAL_PCL_KEYS` (one entry per
  official module, shapes and order identical) onto the project's PCL modules.
- ``state-dict``: a plain backbone state dict, possibly wrapped in ``{"state_dict": ...}`` or
  ``{"model": ...}`` and prefixed (``backbone.``, ``module.encoder_q.``, ...); ``backbone.pt`` written after
  every pretraining is one.

Which trunk a file holds (architecture, width, input normalisation) is told by :mod:`.detect`. Missing or
unexpected backbone keys are an error listing them and the file's key prefixes; with ``strict=False`` they are
reported (which layers stayed random) instead, unless the file fills less than half of the trunk's tensors
(then it does not hold this trunk: an error). A shape mismatch is always an error. The report counts the
trunk's tensors loaded and gives the file's SHA-256 (stored in the record's ``weights``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .detect import (STRIP_PREFIXES, CheckpointError, detect_state, is_project_checkpoint, key_prefixes,
                     read_weights_file, tensors, unwrap)

BACKBONE_PREFIX = "backbone."  # where a Method (and PCLNetwork) keeps its trunk
SHOWN_KEYS = 12
MIN_LOADED = 0.5  # --non-strict refuses a file that fills less than this share of the trunk's tensors

# official ExpPoseModel (nn.DataParallel, PCL code Models/networks.py) -> this project's PCL module names
OFFICIAL_PCL_KEYS: tuple[tuple[str, str], ...] = (
    (r"module\.encoder\.resblock1\.(.+)", r"backbone.resblocks.0.\1"),
    (r"module\.encoder\.resblock2\.(.+)", r"backbone.resblocks.1.\1"),
    (r"module\.encoder\.layer3_2_exp\.(.+)", r"face_subnet.body.\1"),  # F_f branch
    (r"module\.encoder\.layer3_2_pose\.(.+)", r"pose_subnet.body.\1"),  # F_p branch
    (r"module\.encoder\.((?:conv1|layer1|layer2_1|layer2_2|layer3_1)\..+)", r"backbone.\1"),  # same names
    (r"module\.exp_fc\.(.+)", r"face_head.net.\1"),
    (r"module\.pose_fc\.(.+)", r"pose_head.net.\1"),
    (r"module\.decoder\.fc\.(.+)", r"decoder.fc.\1"),
)
OFFICIAL_ENCODER_PREFIXES = ("module.encoder.", "encoder.", "")  # DataParallel model / model / evaluation dict
# the official decoder is one flat Sequential [ReLU, Upsample, conv, BN] x 6 (no BN last); ours nests the stages
OFFICIAL_DECODER = re.compile(r"module\.decoder\.model\.(\d+)\.(.+)")


@dataclass
class LoadReport:
    """What loading a checkpoint did: its format, the file's SHA-256, the keys not loaded, and how many of the
    trunk's tensors the file filled."""

    format: str
    path: str
    sha256: str
    missing: list[str] = field(default_factory=list)  # backbone keys left at their initialisation
    ignored: list[str] = field(default_factory=list)  # checkpoint keys outside the backbone (heads, decoder)
    loaded: int = 0  # trunk tensors taken from the file
    total: int = 0  # trunk tensors of the backbone
    kind: str = ""  # what the file holds (models.detect: pcfrl-bench, pcl-official, resnet, facecycle, unknown)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "kind": self.kind, "path": self.path, "sha256": self.sha256,
                "random_layers": self.missing, "ignored_keys": len(self.ignored), "loaded_tensors": self.loaded,
                "trunk_tensors": self.total}


def official_pcl_key(name: str) -> str:
    """This project's name of the official PCL state-dict key ``name`` (``module.encoder.*``, ``module.exp_fc.*``,
    ``module.pose_fc.*``, ``module.decoder.*``); an unknown key is an error."""
    for pattern, target in OFFICIAL_PCL_KEYS:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, target, name)
    m = OFFICIAL_DECODER.fullmatch(name)
    if m and int(m.group(1)) % 4 in (2, 3):
        stage, layer = divmod(int(m.group(1)), 4)
        return f"decoder.stages.{stage}.{layer}.{m.group(2)}"
    raise CheckpointError(f"not a key of the official PCL model: {name!r}")


def convert_official_pcl(state: dict[str, Any]) -> dict[str, Any]:
    """The official PCL state dict renamed onto this project's PCL modules (values untouched)."""
    return {official_pcl_key(k): v for k, v in state.items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: Path) -> tuple[str, dict[str, torch.Tensor], str]:
    """(format, tensors with this project's names where the format has them, prefix of the trunk's keys)."""
    return parse_checkpoint(read_weights_file(Path(path)), Path(path))


def parse_checkpoint(obj: dict[str, Any], path: Path) -> tuple[str, dict[str, torch.Tensor], str]:
    """:func:`read_checkpoint` of a file's contents ``obj``."""
    if is_project_checkpoint(obj):
        return "pcfrl-bench", _tensors(obj["model"], path), BACKBONE_PREFIX
    state = _tensors(unwrap(obj), path)
    official = next((p for p in OFFICIAL_ENCODER_PREFIXES if f"{p}layer3_2_exp.0.weight" in state), None)
    if official is not None:  # the whole model, or the encoder as the official evaluation code strips it
        renamed = {("module.encoder." + k[len(official):] if k.startswith(official) else k): v
                   for k, v in state.items()}
        return "pcl-official", convert_official_pcl(renamed), BACKBONE_PREFIX
    return "state-dict", state, ""


def _tensors(obj: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    state = tensors(obj)
    if not state:
        raise CheckpointError(f"{path}: holds no tensors (keys: {', '.join(map(str, list(obj)[:SHOWN_KEYS]))})")
    return state


def _best_prefix(state: dict[str, torch.Tensor], wanted: set[str]) -> str:
    """The prefix under which most keys of ``state`` are keys of the backbone (ties: the shortest)."""
    def hits(prefix: str) -> int:
        return sum(k.startswith(prefix) and k[len(prefix):] in wanted for k in state)
    return max(STRIP_PREFIXES, key=lambda p: (hits(p), -len(p)))


def _shown(keys: list[str]) -> str:
    more = f" ... (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def load_backbone(backbone: nn.Module, path: Path, strict: bool = True) -> LoadReport:
    """Load the trunk weights of the checkpoint at ``path`` into ``backbone``.

    Keys of a classifier that the backbone drops (timm's ``fc.``/``head.`` with ``num_classes=0``) and the
    checkpoint's non-trunk parts (projection heads, decoder, momentum encoder) are ignored and counted.
    """
    path = Path(path)
    obj = read_weights_file(path)
    fmt, state, prefix = parse_checkpoint(obj, path)
    file_keys = key_prefixes(list(tensors(obj["model"] if is_project_checkpoint(obj) else unwrap(obj))))
    wanted = set(backbone.state_dict())
    if fmt == "state-dict":
        prefix = _best_prefix(state, wanted)
    trunk = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    ignored = sorted(k for k in state if not k.startswith(prefix))
    classifier = str(getattr(backbone, "pretrained_cfg", {}).get("classifier") or "")
    if classifier:
        dropped = sorted(k for k in trunk if k.startswith(classifier + ".") and k not in wanted)
        ignored += dropped
        for k in dropped:
            del trunk[k]
    missing, unexpected = sorted(wanted - set(trunk)), sorted(set(trunk) - wanted)
    loaded = len(wanted) - len(missing)
    if strict and (missing or unexpected):
        lines = [f"{path}: the {fmt} checkpoint does not fit the backbone {type(backbone).__name__} "
                 f"({loaded} of its {len(wanted)} tensors are in the file)",
                 f"  the file's keys: {file_keys}",
                 f"  the backbone's keys: {key_prefixes(sorted(wanted))}"]
        if missing:
            lines.append(f"  missing ({len(missing)}): {_shown(missing)}")
        if unexpected:
            lines.append(f"  unexpected ({len(unexpected)}): {_shown(unexpected)}")
        lines.append("  (`pcfrl-bench eval --checkpoint` detects the trunk a file holds; check model.backbone / "
                     "model.width, or pass --non-strict to leave the missing layers random)")
        raise CheckpointError("\n".join(lines))
    if loaded < MIN_LOADED * len(wanted):
        raise CheckpointError(f"{path}: only {loaded} of the backbone's {len(wanted)} tensors are in the {fmt} "
                              f"checkpoint (--non-strict needs at least {MIN_LOADED:.0%}): it does not hold this "
                              f"trunk.\n  the file's keys: {file_keys}\n  the backbone's keys: "
                              f"{key_prefixes(sorted(wanted))}")
    own = backbone.state_dict()
    bad = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in trunk.items()
           if k in own and v.shape != own[k].shape]
    if bad:
        raise CheckpointError(f"{path}: shapes differ from the backbone's: {_shown(bad)}")
    backbone.load_state_dict({k: v for k, v in trunk.items() if k in own}, strict=False)
    detected = detect_state(obj, path)
    return LoadReport(fmt, str(path), _sha256(path), missing, sorted(ignored + unexpected), loaded, len(wanted),
                      detected.kind if detected else "unknown")


def backbone_state(method: nn.Module) -> dict[str, torch.Tensor]:
    """The trunk's weights with stripped keys (what ``backbone.pt`` holds)."""
    return {k: v.detach().cpu().clone() for k, v in method.backbone.state_dict().items()}
