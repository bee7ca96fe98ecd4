"""In-memory image datasets: images as one tensor, targets as named tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset


class TensorImageDataset(Dataset):
    """Items are dicts ``{"image": (3, H, W) float in [0, 1], **targets}``; ``__getitems__`` slices whole batches."""

    def __init__(self, images: Tensor, targets: dict[str, Tensor] | None = None):
        self.images = images
        self.targets = targets or {}
        for name, t in self.targets.items():
            if len(t) != len(images):
                raise ValueError(f"target {name!r} has {len(t)} rows for {len(images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"image": self.images[i], **{k: v[i] for k, v in self.targets.items()}}

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]]:
        idx = torch.as_tensor(indices)
        images = self.images[idx]
        targets = {k: v[idx] for k, v in self.targets.items()}
        return [{"image": images[j], **{k: v[j] for k, v in targets.items()}} for j in range(len(indices))]


def resize_batch(images: Tensor, size: int) -> Tensor:
    """Bilinear (antialiased) resize of a (B, C, H, W) batch to size x size."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


class LazyDataset(Dataset):
    """A dataset of known length built on first access (e.g. rendered images that a feature cache may make
    unnecessary)."""

    def __init__(self, length: int, build):
        self.length, self._build, self._dataset = length, build, None

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = self._build()
            if len(self._dataset) != self.length:
                raise ValueError(f"lazy dataset built {len(self._dataset)} items, expected {self.length}")
        return self._dataset

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        return self.dataset[i]

    def __getitems__(self, indices: list[int]):
        return self.dataset.__getitems__(indices)
