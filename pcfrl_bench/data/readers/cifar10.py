"""CIFAR-10 python-pickle reader (§8): accepts bytes or str keys.

The batches are pickles, and a pickle can name any callable to run while it loads. They are read with a
restricted unpickler that admits only what CIFAR batches hold (builtin containers, bytes/str, numbers and
numpy arrays); any other global in the file is refused before it is called, so a crafted file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import MalformedFileError

from .base import SampleIndex, layout_error, require_file
from .format import DatasetFormat, register_dataset

CIFAR10_LAYOUT = """\
<root>/cifar-10-batches-py/        (default <data-root>/CIFAR10)
  data_batch_1 ... data_batch_5 test_batch batches.meta    pickled dicts with 'data' (N,3072) and 'labels'
"""


def _get(d: dict, key: str, path: Path):
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise MalformedFileError(path, None, f"no {key!r} entry (keys: {sorted(map(str, d))[:6]})")


# the globals a pickled numpy array needs (numpy 1.x and 2.x module names; protocols 2-5); nothing else
_ARRAY_GLOBALS = {
    (module, name)
    for prefix in ("numpy.core", "numpy._core")
    for module, name in ((f"{prefix}.multiarray", "_reconstruct"), (f"{prefix}.multiarray", "scalar"),
                         (f"{prefix}.numeric", "_frombuffer"))
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles builtin containers, bytes/str, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refused {module}.{name}: CIFAR batches hold only arrays, lists and dicts")
        return super().find_class(module, name)


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            d = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except Exception as err:
        raise MalformedFileError(path, None, f"cannot unpickle ({err})") from err
    if not isinstance(d, dict):
        raise MalformedFileError(path, None, f"expected a pickled dict, got {type(d).__name__}")
    return d


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _load_pickle(path)
    data = np.asarray(_get(d, "data", path), dtype=np.uint8)
    labels = np.asarray(_get(d, "labels", path), dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise MalformedFileError(path, None, f"expected data (N,3072) and N labels, got {data.shape}, {len(labels)}")
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if len(bad):
        raise MalformedFileError(path, None, f"label #{bad[0] + 1} is {labels[bad[0]]}, expected 0..9")
    # §8: R plane, G plane, B plane, each row-major 32x32 -> (N,32,32,3)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar10(root: Path) -> dict[str, SampleIndex]:
    """CIFAR-10: 'train' (data_batch_1..5) and 'test' (test_batch); arrays (N,32,32,3) uint8, 'label' 0..9."""
    root = Path(root)
    base = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    if not base.is_dir():
        raise layout_error(root / "cifar-10-batches-py", "CIFAR-10 folder", CIFAR10_LAYOUT)
    classes = None
    if (base / "batches.meta").is_file():
        names = _get(_load_pickle(base / "batches.meta"), "label_names", base / "batches.meta")
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    out = {}
    for split, files in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        parts = [_batch(require_file(base / f, f"CIFAR-10 batch {f}", CIFAR10_LAYOUT)) for f in files]
        out[split] = SampleIndex(
            arrays=np.ascontiguousarray(np.concatenate([p[0] for p in parts])),
            targets={"label": np.concatenate([p[1] for p in parts])},
            meta={"classes": classes},
        )
    return out


@register_dataset("cifar10")
class Cifar10(DatasetFormat):
    folder = "CIFAR10"
    description = "CIFAR-10 python batches: 32 px images, 10 classes (§8)"
    layout = CIFAR10_LAYOUT
    sources = {"cifar10-train": ("train", {})}
    reader = staticmethod(read_cifar10)
