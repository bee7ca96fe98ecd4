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
