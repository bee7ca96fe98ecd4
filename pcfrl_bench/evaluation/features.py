"""Frozen-feature extraction, cached on disk per (checkpoint, task, split, image size)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..io import atomic_torch_save


@dataclass
class FeatureSet:
    """Features (N, D) of one split, and its targets stacked per name."""

    features: Tensor
    targets: dict[str, Tensor]

    def subset(self, limit: int) -> "FeatureSet":
        """The first ``limit`` rows (all when ``limit`` is 0)."""
        if not limit or limit >= len(self.features):
            return self
        return FeatureSet(self.features[:limit], {k: v[:limit] for k, v in self.targets.items()})


@torch.no_grad()
def extract_features(
    encoder: nn.Module, dataset: Dataset, batch_size: int, device: torch.device,
    num_workers: int = 0, progress: bool = True, console: Console | None = None, description: str = "features",
) -> FeatureSet:
    """Run the frozen encoder (eval mode, no augmentation) over ``dataset`` in order."""
    encoder.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    features: list[Tensor] = []
    targets: dict[str, list[Tensor]] = {}
    with Progress(console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task(description, total=len(loader))
        for batch in loader:
            features.append(encoder(batch["image"].to(device, non_blocking=True)).flatten(1).float().cpu())
            for k, v in batch.items():
                if k != "image":
                    targets.setdefault(k, []).append(v)
            bar.advance(task)
    return FeatureSet(torch.cat(features), {k: torch.cat(v) for k, v in targets.items()})


def cached_features(path: Path, compute) -> tuple[FeatureSet, bool]:
    """Load features from ``path`` or compute and store them atomically; returns (features, was_cached)."""
    if path.is_file():
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            return FeatureSet(data["features"], data["targets"]), True
        except Exception:  # a damaged cache entry is recomputed, never trusted
            path.unlink(missing_ok=True)
    fs = compute()
    atomic_torch_save({"features": fs.features, "targets": fs.targets}, path)
    return fs, False


def degeneration_warnings(log_rows: list[dict], features: dict[str, FeatureSet], rel_var: float = 1e-8) -> list[str]:
    """Signs of a collapsed or blown-up pretraining that still ran to the end (e.g. a huge learning rate):
    a loss that never went down, and frozen features that are non-finite or the same for every image."""
    out = []
    losses = [r["loss"] for r in log_rows if isinstance(r.get("loss"), float | int)]
    if len(losses) >= 2 and not losses[-1] < losses[0]:
        out.append(f"the pretraining loss did not decrease (epoch 1: {losses[0]:.4g}, epoch {len(losses)}: "
                   f"{losses[-1]:.4g}); the representation may be degenerate")
    for split, fs in features.items():
        x = fs.features.double()
        if not bool(torch.isfinite(x).all()):
            out.append(f"the frozen features of split {split!r} contain NaN or infinity")
        elif len(x) > 1 and float(x.var(dim=0).sum()) <= rel_var * float(x.pow(2).mean(dim=0).sum()):
            out.append(f"the frozen features of split {split!r} are (nearly) the same for every image: "
                       "the probe can only reach chance level")
    return out
