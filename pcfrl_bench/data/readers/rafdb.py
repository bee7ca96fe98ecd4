"""RAF-DB basic (7-class expression) reader: datasets.md §1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import MalformedFileError
from pcfrl_bench.schema.tasks import RafdbParams

from .base import (SampleIndex, check_files_exist, check_unique_ids, path_inside, read_text_lines, require_dir,
                   require_file)
from .format import DatasetFormat, register_dataset

RAFDB_CLASSES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")  # file ids 1..7

RAFDB_LAYOUT = """\
<root>/                                  (default <data-root>/RAF-DB)
  basic/EmoLabel/list_patition_label.txt   lines 'train_00001.jpg 5' / 'test_0001.jpg 7' (labels 1..7)
  basic/Image/aligned/train_00001_aligned.jpg ...  test_0001_aligned.jpg ...
"""


def _basic_dir(root: Path) -> Path:
    root = Path(root)
    if (root / "basic").is_dir():
        return root / "basic"
    if (root / "EmoLabel").is_dir():  # root given as the basic/ folder itself
        return root
    return require_dir(root / "basic", "RAF-DB folder", RAFDB_LAYOUT)


def read_rafdb(root: Path, image_folder: str = RafdbParams.image_folder, check_files: bool = True) -> dict[str, SampleIndex]:
    """RAF-DB basic: splits 'train' / 'test' from the name prefix; labels 1..7 -> 0..6 (§1 order).

    `image_folder="aligned"` maps `train_00001.jpg` -> `Image/aligned/train_00001_aligned.jpg`;
    `"original"` reads `Image/original/train_00001.jpg`.
    """
    basic = _basic_dir(root)
    label_file = require_file(basic / "EmoLabel" / "list_patition_label.txt", "RAF-DB label file", RAFDB_LAYOUT)
    image_dir = require_dir(basic / "Image" / image_folder, "RAF-DB image folder", RAFDB_LAYOUT)
    split_paths: dict[str, list[Path]] = {"train": [], "test": []}
    split_labels: dict[str, list[int]] = {"train": [], "test": []}
    entries: list[tuple[int, str, int]] = []  # (line, name, label) to refuse repeated names
    for n, line in enumerate(read_text_lines(label_file), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise MalformedFileError(label_file, n, f"expected '<image name> <label>', got {line!r}")
        name, label_text = fields
        split = name.split("_", 1)[0]
        if split not in split_paths or not name.lower().endswith(".jpg"):
            raise MalformedFileError(label_file, n, f"image name {name!r} is not train_*.jpg or test_*.jpg")
        try:
            label = int(label_text)
        except ValueError:
            raise MalformedFileError(label_file, n, f"label {label_text!r} is not an integer") from None
        if not 1 <= label <= 7:
            raise MalformedFileError(label_file, n, f"unknown label {label} (RAF-DB labels are 1..7)")
        stem = name[: -len(".jpg")]
        fname = f"{stem}_aligned.jpg" if image_folder == "aligned" else name
        split_paths[split].append(path_inside(image_dir, fname, label_file, n))
        split_labels[split].append(label - 1)
        entries.append((n, name, label))
    check_unique_ids(label_file, entries)
    out = {}
    for split in ("train", "test"):
        if check_files:
            check_files_exist(split_paths[split], f"RAF-DB {split}", label_file)
        out[split] = SampleIndex(
            paths=split_paths[split],
            targets={"label": np.asarray(split_labels[split], dtype=np.int64)},
            meta={"classes": list(RAFDB_CLASSES), "labelled_dirs": [image_dir]},
        )
    return out


def write_rafdb(out: Path, n: int, seed: int) -> Path:
    """The writer of the rafdb layout (``synth export --like rafdb``): about n synthetic samples under out."""
    import torch
    from ..synthetic.export import Faces, save_image, to_uint8
    root = out / "basic"
    n_test = max(1, n // 5)
    n_train = max(1, n - n_test)
    faces = Faces(seed, max(2, n // 3), "rafdb")
    labels = torch.randperm(n_train + n_test, generator=faces.g) % 7  # 0..6 in EMOTIONS (= RAF) order
    images = to_uint8(faces.render(torch.randint(len(faces.ident["shape"]), (len(labels),), generator=faces.g),
                                    100, emotion=labels))
    names = [f"train_{i:05d}" for i in range(1, n_train + 1)] + [f"test_{i:04d}" for i in range(1, n_test + 1)]
    lines = []
    for name, lab, arr in zip(names, labels.tolist(), images):
        lines.append(f"{name}.jpg {lab + 1}")  # §1: '<name>.jpg <label 1..7>'
        save_image(arr, root / "Image" / "aligned" / f"{name}_aligned.jpg")
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


@register_dataset("rafdb")
class RafDb(DatasetFormat):
    folder = "RAF-DB"
    description = "RAF-DB basic: 7 expressions, list_patition_label.txt + aligned images (datasets.md §1)"
    layout = RAFDB_LAYOUT
    check_options = {"check_files": False}  # data check reports missing files as problems
    writers = {"rafdb": write_rafdb}
    reader = staticmethod(read_rafdb)

    def options(self, params: Any) -> dict[str, Any]:
        return {"image_folder": params.image_folder}
