"""Frozen-feature extraction, cached on disk per (checkpoint, task, split, image size)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..interrupt import check_interrupted
from ..io import atomic_torch_save
from ..progress import reporting, stage


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
    """Run the frozen encoder (eval mode, no augmentation) over ``dataset`` in order (progress: see
    :mod:`pcfrl_bench.progress`; ``progress``/``console`` apply where no caller reports already)."""
    encoder.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    features: list[Tensor] = []
    targets: dict[str, list[Tensor]] = {}
    with reporting(console, progress), stage(description, len(dataset), "images") as bar:
        for batch in loader:
            check_interrupted()
            features.append(encoder(batch["image"].to(device, non_blocking=True)).flatten(1).float().cpu())
            for k, v in batch.items():
                if k != "image":
                    targets.setdefault(k, []).append(v)
            bar.advance(len(batch["image"]))
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



def effective_rank(x: Tensor) -> float:
    """Effective number of principal components of ``x``: exp of the entropy of each component's share of
    the variance (Roy & Vetterli 2007's effective rank on squared singular values); 0 for identical rows."""
    var = torch.linalg.svdvals((x - x.mean(dim=0)).double()).square()
    if float(var.sum()) == 0.0:
        return 0.0
    p = var / var.sum()
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum()))


def degeneration_warnings(features: dict[str, FeatureSet], min_rank: float = 2.0, max_rows: int = 1024) -> list[str]:
    """Signs of a pretraining that ran to the end but blew up or collapsed (e.g. a huge learning rate): frozen
    features that are non-finite, or whose effective rank (on up to ``max_rows`` rows) is below ``min_rank``."""
    out = []
    for split, fs in features.items():
        x = fs.features[:max_rows]
        if not bool(torch.isfinite(x).all()):
            out.append(f"the frozen features of split {split!r} contain NaN or infinity")
        elif len(x) > 1 and (rank := effective_rank(x)) < min_rank:
            out.append(f"the frozen features of split {split!r} have collapsed (effective rank {rank:.2f} of "
                       f"{x.shape[1]} dimensions, largest value {float(x.abs().max()):.3g}); the pretraining "
                       "probably diverged (check pretrain.optim.lr) and the probe will be near chance level")
    return out
