"""Readers for the real datasets in their owners' on-disk formats (see docs/datasets.md): each returns the
`SampleIndex` of every split, without torch; `dataset.ImageIndexDataset` decodes one for training and evaluation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pcfrl_bench.errors import UnknownNameError

from .base import SampleIndex
from .bu3dfe import read_bu3dfe
from .check import check_dataset
from .cifar10 import read_cifar10
from .disfa import DISFA_AUS, disfa_fold_splits, read_disfa
from .fer2013 import FER_CLASSES, read_fer2013
from .headpose import read_headpose
from .imagefolder import read_imagefolder
from .rafdb import RAFDB_CLASSES, read_rafdb
from .stl10 import read_stl10
from .verification import read_calfw, read_cplfw, read_lfw
from .voxceleb import epoch_frame_index, merge_clip_indices, read_voxceleb, sample_clip_frames

READERS: dict[str, Callable[..., dict[str, SampleIndex]]] = {
    "rafdb": read_rafdb,
    "fer2013": read_fer2013,
    "lfw": read_lfw,
    "cplfw": read_cplfw,
    "calfw": read_calfw,
    "disfa": read_disfa,
    "headpose": read_headpose,
    "bu3dfe": read_bu3dfe,
    "stl10": read_stl10,
    "cifar10": read_cifar10,
    "voxceleb": read_voxceleb,
    "imagefolder": read_imagefolder,
}

# Default folder of each dataset below a common data root (docs/datasets.md); overridable per task.
DEFAULT_SUBDIRS: dict[str, str] = {
    "rafdb": "RAF-DB",
    "fer2013": "FER2013",
    "lfw": "LFW",
    "cplfw": "CPLFW",
    "calfw": "CALFW",
    "disfa": "DISFA",
    "headpose": "headpose",
    "bu3dfe": "BU-3DFE",
    "stl10": "STL10",
    "cifar10": "CIFAR10",
    "voxceleb": "VoxCeleb",
    "imagefolder": "images",
}


def dataset_root(name: str, data_root: Path, subdir: str | None = None) -> Path:
    """`<data_root>/<subdir or the default folder of name>`."""
    if name not in DEFAULT_SUBDIRS:
        raise UnknownNameError("dataset", name, DEFAULT_SUBDIRS)
    return Path(data_root) / (subdir if subdir is not None else DEFAULT_SUBDIRS[name])


def read_dataset(name: str, root: Path, **options: Any) -> dict[str, SampleIndex]:
    """Dispatch to `read_<name>(root, **options)`."""
    if name not in READERS:
        raise UnknownNameError("dataset", name, READERS)
    return READERS[name](Path(root), **options)


__all__ = [
    "DEFAULT_SUBDIRS",
    "DISFA_AUS",
    "FER_CLASSES",
    "RAFDB_CLASSES",
    "READERS",
    "SampleIndex",
    "check_dataset",
    "dataset_root",
    "disfa_fold_splits",
    "epoch_frame_index",
    "merge_clip_indices",
    "read_bu3dfe",
    "read_calfw",
    "read_cifar10",
    "read_cplfw",
    "read_dataset",
    "read_disfa",
    "read_fer2013",
    "read_headpose",
    "read_imagefolder",
    "read_lfw",
    "read_rafdb",
    "read_stl10",
    "read_voxceleb",
    "sample_clip_frames",
]
