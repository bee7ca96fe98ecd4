"""The torch Dataset over a reader's `SampleIndex`: images decoded with Pillow and resized when read."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from pcfrl_bench.errors import DatasetLayoutError

from .base import SampleIndex


def _to_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def _array_to_pil(arr: np.ndarray) -> Image.Image:
    arr = np.ascontiguousarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(arr).convert("RGB")


class ImageIndexDataset(Dataset):
    """Decodes a `SampleIndex` with Pillow (RGB) and resizes in the transform, never on disk.

    Items are {"image": (3,H,W) float32 in [0,1], "index": position in the index, **targets}.
    `image_size` is an int (square) or (H, W). `crop_key` names an (N,4) target of x0,y0,x1,y1 boxes to crop
    (enlarged by `crop_margin` of the box size on each side) before resizing. With `skip_unreadable=True`, an
    image that cannot be read is replaced by the next readable one and counted in `n_unreadable` (the indices
    are in `unreadable`); `scan()` instead drops unreadable samples up front. With DataLoader workers the count
    is kept per worker: call `scan()` in the main process when the number matters. `transform`, if given,
    receives the resized RGB PIL image and replaces the to-tensor step.
    """

    def __init__(
        self,
        index: SampleIndex,
        image_size: int | tuple[int, int],
        skip_unreadable: bool = False,
        crop_key: str | None = None,
        crop_margin: float = 0.0,
        transform: Any = None,
    ):
        self.index = index
        self.size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.skip_unreadable = skip_unreadable
        self.crop_key = crop_key
        self.crop_margin = crop_margin
        self.transform = transform
        self.positions = np.arange(len(index))
        self.unreadable: set[int] = set()

    @property
    def n_unreadable(self) -> int:
        return len(self.unreadable)

    def __len__(self) -> int:
        return len(self.positions)

    def scan(self) -> int:
        """Try to decode every image; drop the unreadable ones from this dataset. Returns how many."""
        good = []
        for pos in self.positions:
            try:
                self._load(int(pos))
                good.append(pos)
            except (OSError, UnidentifiedImageError, ValueError, DatasetLayoutError):
                self.unreadable.add(int(pos))
        self.positions = np.asarray(good, dtype=np.int64)
        return self.n_unreadable

    def _load(self, pos: int) -> Image.Image:
        if self.index.arrays is not None:
            return _array_to_pil(self.index.arrays[pos])
        path = self.index.paths[pos]
        if not os.path.isfile(path):
            raise DatasetLayoutError(f"image file missing: {path}")
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")

    def _where(self, pos: int) -> str:
        return str(self.index.paths[pos]) if self.index.paths is not None else f"array sample {pos}"

    def _image(self, pos: int) -> torch.Tensor:
        img = self._load(pos)
        if self.crop_key is not None:
            box = np.asarray(self.index.targets[self.crop_key][pos], dtype=np.float64)
            if np.isfinite(box).all():  # no box (NaN): keep the full image
                x0, y0, x1, y1 = box
                mw, mh = (x1 - x0) * self.crop_margin, (y1 - y0) * self.crop_margin
                img = img.crop((int(x0 - mw), int(y0 - mh), int(x1 + mw), int(y1 + mh)))
        if img.size != (self.size[1], self.size[0]):
            img = img.resize((self.size[1], self.size[0]), Image.BILINEAR)
        if self.transform is not None:
            return self.transform(img)
        return _to_tensor(img)

    def __getitem__(self, i: int) -> dict[str, Any]:
        pos = int(self.positions[i])
        for step in range(len(self.positions)):
            try:
                image = self._image(pos)
                break
            except (OSError, UnidentifiedImageError, ValueError, DatasetLayoutError) as err:
                if not self.skip_unreadable:
                    if isinstance(err, DatasetLayoutError):
                        raise
                    raise DatasetLayoutError(f"cannot read image {self._where(pos)}: {err}") from err
                self.unreadable.add(pos)
                pos = int(self.positions[(i + step + 1) % len(self.positions)])
        else:
            raise DatasetLayoutError("no readable image in this dataset")
        item: dict[str, Any] = {"image": image, "index": pos}
        for name, values in self.index.targets.items():
            v = values[pos]
            item[name] = torch.as_tensor(np.asarray(v)) if isinstance(v, np.ndarray | np.generic) else v
        return item
