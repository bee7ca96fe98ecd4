"""Any folder tree of images (e.g. an unlabeled pre-training set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .base import SampleIndex, layout_error, list_images
from .format import DatasetFormat, register_dataset

IMAGEFOLDER_LAYOUT = """\
<root>/**/<image>.(jpg|jpeg|png|bmp|webp|...)   any depth; if every image sits below a top-level
                                                 folder, that folder's name is its class
"""


def read_imagefolder(root: Path, split: str = "train") -> dict[str, SampleIndex]:
    """All images under `root` (sorted). Target 'label' = index of the top-level folder (sorted names, in
    meta["classes"]) when every image sits in one; otherwise no label."""
    root = Path(root)
    if not root.is_dir():
        raise layout_error(root, "image folder", IMAGEFOLDER_LAYOUT)
    paths = list_images(root, recursive=True)
    if not paths:
        raise layout_error(root / "<image>.jpg", "images", IMAGEFOLDER_LAYOUT)
    tops = [p.relative_to(root).parts for p in paths]
    targets: dict[str, np.ndarray] = {}
    meta: dict = {"classes": None}
    if all(len(t) > 1 for t in tops):
        classes = sorted({t[0] for t in tops})
        lookup = {c: i for i, c in enumerate(classes)}
        targets["label"] = np.asarray([lookup[t[0]] for t in tops], dtype=np.int64)
        meta["classes"] = classes
    return {split: SampleIndex(paths=paths, targets=targets, meta=meta)}


@register_dataset("imagefolder")
class ImageFolder(DatasetFormat):
    folder = "images"
    description = "Any folder tree of images, e.g. an unlabeled pretraining set"
    layout = IMAGEFOLDER_LAYOUT
    sources = {"imagefolder": ("train", {})}
    reader = staticmethod(read_imagefolder)
