"""The real datasets in their owners' on-disk formats (see docs/datasets.md), one module per format: its reader
(the `SampleIndex` of every split, without torch), its writer of synthetic data in that layout, and its
registration (`format.register_dataset`); `dataset.ImageIndexDataset` decodes an index for training and
evaluation. Importing this package imports (so registers) every module in this folder, a new one included;
plugins register theirs through the entry points of `pcfrl_bench.datasets`."""

from __future__ import annotations

import importlib
import pkgutil

from .base import SampleIndex
from .bu3dfe import read_bu3dfe
from .check import check_dataset
from .cifar10 import read_cifar10
from .disfa import DISFA_AUS, disfa_fold_splits, read_disfa
from .fer2013 import FER_CLASSES, read_fer2013
from .format import (DATASETS, DatasetFormat, dataset_format, dataset_formats, dataset_root, export_like,
                     read_dataset, register_dataset)
from .headpose import read_headpose
from .imagefolder import read_imagefolder
from .rafdb import RAFDB_CLASSES, read_rafdb
from .stl10 import read_stl10
from .verification import read_calfw, read_cplfw, read_lfw
from .voxceleb import epoch_frame_index, merge_clip_indices, read_voxceleb, sample_clip_frames

TORCH_MODULES = ("dataset",)  # imported where used: the other modules import no torch (config, list stay light)
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in TORCH_MODULES:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "DATASETS",
    "DISFA_AUS",
    "DatasetFormat",
    "FER_CLASSES",
    "RAFDB_CLASSES",
    "SampleIndex",
    "check_dataset",
    "dataset_format",
    "dataset_formats",
    "dataset_root",
    "disfa_fold_splits",
    "epoch_frame_index",
    "export_like",
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
    "register_dataset",
    "sample_clip_frames",
]
