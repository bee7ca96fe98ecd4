"""Shared pieces of the real-dataset readers: the `SampleIndex` record, path checks and the image Dataset."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from pcfrl_bench.errors import DatasetLayoutError, MalformedFileError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")


@dataclass
class SampleIndex:
    """One split of a dataset: image files or in-memory arrays, plus per-sample targets.

    Exactly one of `paths` / `arrays` is set. `targets` maps a name ("label", "angles" (N,3) degrees
    yaw/pitch/roll, "aus" (N,8), "subject", ...) to an array of first dimension N. Verification splits also
    carry `pairs` (P,2) indices into the samples, `same` (P,) bool and `fold` (P,) int. `meta` holds
    dataset-level extras (class names, counts of filtered samples, ...).
    """

    paths: list[Path] | None = None
    arrays: np.ndarray | None = None
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    pairs: np.ndarray | None = None
    same: np.ndarray | None = None
    fold: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.paths is None) == (self.arrays is None):
            raise ValueError("SampleIndex needs exactly one of paths / arrays")
        n = len(self)
        for name, value in self.targets.items():
            if len(value) != n:
                raise ValueError(f"target {name!r} has {len(value)} entries for {n} samples")
        if self.pairs is not None:
            p = len(self.pairs)
            if self.same is None or self.fold is None or len(self.same) != p or len(self.fold) != p:
                raise ValueError("pairs, same and fold must be given together with equal lengths")

    def __len__(self) -> int:
        return len(self.paths) if self.paths is not None else int(self.arrays.shape[0])

    @property
    def is_verification(self) -> bool:
        return self.pairs is not None

    def without(self, drop: Sequence[int]) -> SampleIndex:
        """This split without the samples at positions ``drop``; a verification split also loses every pair
        that uses one of them (the remaining pair indices are renumbered)."""
        keep = np.ones(len(self), dtype=bool)
        keep[np.asarray(drop, dtype=np.int64)] = False
        if self.pairs is None:
            return self.subset(keep)
        new_position = np.cumsum(keep) - 1
        kept_pairs = keep[self.pairs].all(axis=1)
        return SampleIndex(
            paths=[p for p, k in zip(self.paths, keep) if k] if self.paths is not None else None,
            arrays=self.arrays[keep] if self.arrays is not None else None,
            targets={k: v[keep] for k, v in self.targets.items()},
            pairs=new_position[self.pairs[kept_pairs]], same=self.same[kept_pairs], fold=self.fold[kept_pairs],
            meta=dict(self.meta),
        )

    def subset(self, keep: np.ndarray) -> SampleIndex:
        """Samples where boolean mask `keep` is true (or at integer positions `keep`); not for pair splits."""
        if self.pairs is not None:
            raise ValueError("subset() would break the pair indices of a verification split")
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, dtype=np.int64)
        return SampleIndex(
            paths=[self.paths[i] for i in idx] if self.paths is not None else None,
            arrays=self.arrays[idx] if self.arrays is not None else None,
            targets={k: v[idx] for k, v in self.targets.items()},
            meta=dict(self.meta),
        )


# ----------------------------------------------------------------------------------------------- path helpers


def layout_error(path: Path, what: str, layout: str) -> DatasetLayoutError:
    """A DatasetLayoutError naming `path` and showing the expected layout."""
    return DatasetLayoutError(f"{what} not found: {path}\nExpected layout:\n{layout.rstrip()}")


def require_dir(path: Path, what: str, layout: str) -> Path:
    if not Path(path).is_dir():
        raise layout_error(Path(path), what, layout)
    return Path(path)


def require_file(path: Path, what: str, layout: str) -> Path:
    if not Path(path).is_file():
        raise layout_error(Path(path), what, layout)
    return Path(path)


def path_inside(root: Path, relative: str, list_file: Path, line: int | None) -> Path:
    """``root / relative`` for a path read from ``list_file``, refused (MalformedFileError naming the file
    and line) unless it stays inside ``root`` once resolved: no absolute paths, no ``..`` or symlink escape."""
    path = Path(root) / relative
    base = Path(root).resolve()
    if Path(relative).is_absolute() or not path.resolve().is_relative_to(base):
        raise MalformedFileError(list_file, line, f"path {relative!r} leads outside the dataset folder {base}")
    return path


def check_files_exist(paths: Sequence[Path], what: str, referenced_by: Path | None = None) -> None:
    """Raise DatasetLayoutError naming the first missing file (and how many are missing)."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        src = f" (referenced by {referenced_by})" if referenced_by is not None else ""
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DatasetLayoutError(f"{what} image file missing: {missing[0]}{more}{src}")


def missing_files(paths: Sequence[Path], limit: int = 20) -> tuple[int, list[str]]:
    """Count of missing files among `paths` and the first `limit` of them."""
    missing = [str(p) for p in paths if not os.path.isfile(p)]
    return len(missing), missing[:limit]


def read_text_lines(path: Path) -> list[str]:
    """Lines of a text file without line terminators (UTF-8, tolerant of a BOM and of CRLF)."""
    try:
        return Path(path).read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise MalformedFileError(path, None, f"not a UTF-8 text file ({err})") from err


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in `folder` (sorted), by extension; hidden files and folders (".name") are skipped."""
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in it
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


# ----------------------------------------------------------------------------------------------- torch Dataset


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
