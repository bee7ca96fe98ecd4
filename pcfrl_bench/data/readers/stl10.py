"""STL-10 binary release reader (§8): column-major channel planes, labels 1..10."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import MalformedFileError

from .base import SampleIndex, layout_error, read_text_lines, require_file
from .format import DatasetFormat, register_dataset

STL10_LAYOUT = """\
<root>/stl10_binary/              (default <data-root>/STL10)
  train_X.bin train_y.bin test_X.bin test_y.bin unlabeled_X.bin   raw uint8, 3x96x96 per image
  class_names.txt fold_indices.txt                                 (optional)
"""
_SIDE = 96
_BYTES = 3 * _SIDE * _SIDE


def _images(path: Path) -> np.ndarray:
    size = path.stat().st_size
    if size % _BYTES:
        raise MalformedFileError(path, None, f"size {size} is not a multiple of 3*96*96 = {_BYTES} bytes")
    raw = np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
    # Each channel plane is stored column-major: memory order (c, x, y) -> view as (N, y, x, c) = HWC.
    return raw.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 3, 2, 1)


def _labels(path: Path, n: int) -> np.ndarray:
    y = np.fromfile(path, dtype=np.uint8).astype(np.int64)
    if len(y) != n:
        raise MalformedFileError(path, None, f"{len(y)} labels for {n} images")
    bad = np.flatnonzero((y < 1) | (y > 10))
    if len(bad):
        raise MalformedFileError(path, None, f"label #{bad[0] + 1} is {y[bad[0]]}, expected 1..10")
    return y - 1


def read_stl10(root: Path, splits: tuple[str, ...] = ("train", "test", "unlabeled")) -> dict[str, SampleIndex]:
    """STL-10: splits from `splits`; arrays (N,96,96,3) uint8 RGB (memory-mapped), 'label' 0..9 (-1 unlabeled).

    meta holds class names (class_names.txt) and the 10 train folds (fold_indices.txt, 0-based) when present.
    """
    root = Path(root)
    base = root / "stl10_binary" if (root / "stl10_binary").is_dir() else root
    if not base.is_dir():
        raise layout_error(root / "stl10_binary", "STL-10 folder", STL10_LAYOUT)
    meta: dict = {}
    names = base / "class_names.txt"
    meta["classes"] = [c.strip() for c in read_text_lines(names) if c.strip()] if names.is_file() else None
    folds_file = base / "fold_indices.txt"
    if folds_file.is_file():
        folds = []
        for n, line in enumerate(read_text_lines(folds_file), start=1):
            if line.strip():
                try:
                    folds.append(np.asarray(line.split(), dtype=np.int64))
                except ValueError:
                    raise MalformedFileError(folds_file, n, "fold indices must be integers") from None
        meta["train_folds"] = folds
    out = {}
    for split in splits:
        if split == "unlabeled":
            x_path = base / "unlabeled_X.bin"
            if not x_path.is_file() and (base / "unlabeled.bin").is_file():
                x_path = base / "unlabeled.bin"
            x = _images(require_file(x_path, "STL-10 unlabeled images", STL10_LAYOUT))
            y = np.full(len(x), -1, dtype=np.int64)
        elif split in ("train", "test"):
            x = _images(require_file(base / f"{split}_X.bin", f"STL-10 {split} images", STL10_LAYOUT))
            y = _labels(require_file(base / f"{split}_y.bin", f"STL-10 {split} labels", STL10_LAYOUT), len(x))
        else:
            raise layout_error(base / f"{split}_X.bin", f"STL-10 split {split!r}", STL10_LAYOUT)
        out[split] = SampleIndex(arrays=x, targets={"label": y}, meta=dict(meta))
    return out


@register_dataset("stl10")
class Stl10(DatasetFormat):
    folder = "STL10"
    description = "STL-10 binary release: 96 px images, 10 classes, 100,000 unlabeled (§8)"
    layout = STL10_LAYOUT
    sources = {"stl10-unlabeled": ("unlabeled", {"splits": ("unlabeled",)})}
    reader = staticmethod(read_stl10)

    def options(self, params: Any) -> dict[str, Any]:
        return {"splits": ("train", "test")}
