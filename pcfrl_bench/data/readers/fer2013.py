"""FER-2013 reader: official CSV, the icml_face_data.csv bundle and the Kaggle class-folder variant (§2)."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import ConfigError, DatasetLayoutError, MalformedFileError
from pcfrl_bench.schema.tasks import Fer2013Params

from .base import SampleIndex, layout_error, list_images
from .format import DatasetFormat, register_dataset

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # CSV ids 0..6
FER_FOLDER_TO_ID = {name: i for i, name in enumerate(FER_CLASSES)}  # folders map by NAME, never sorted order
USAGES = ("Training", "PublicTest", "PrivateTest")

FER_LAYOUT = """\
<root>/                      (default <data-root>/FER2013); one of:
  fer2013.csv  or fer2013/fer2013.csv     header 'emotion,pixels,Usage', 2304 pixel ints per row
  icml_face_data.csv                      header 'emotion, Usage, pixels' (spaces in the names)
  train/{angry,disgust,fear,happy,neutral,sad,surprise}/Training_<id>.jpg
  test/{...same 7 folders...}/PublicTest_<id>.jpg | PrivateTest_<id>.jpg
"""


def _test_usages(test_usage: str | Iterable[str]) -> set[str]:
    wanted = {test_usage} if isinstance(test_usage, str) else set(test_usage)
    expanded: set[str] = set()
    for w in wanted:
        expanded |= {"PublicTest", "PrivateTest"} if w in ("both", "PublicTest+PrivateTest") else {w}
    bad = expanded - {"PublicTest", "PrivateTest"}
    if bad or not expanded:
        raise ConfigError(
            f"fer2013 test_usage must be 'PrivateTest', 'PublicTest' or 'PublicTest+PrivateTest', got {test_usage!r}"
        )
    return expanded


def _split_of(usage: str, test: set[str]) -> str:
    if usage == "Training":
        return "train"
    return "test" if usage in test else "val"


def _find_source(root: Path, variant: str) -> tuple[str, Path]:
    candidates = {
        "csv": [root / "fer2013.csv", root / "fer2013" / "fer2013.csv"],
        "icml": [root / "icml_face_data.csv", root / "fer2013" / "icml_face_data.csv"],
        "folders": [root / "train", root / "fer2013" / "train"],
    }
    if variant not in ("auto", *candidates):
        raise ConfigError(f"fer2013 variant must be auto, csv, icml or folders, got {variant!r}")
    order = ["csv", "icml", "folders"] if variant == "auto" else [variant]
    for kind in order:
        for c in candidates[kind]:
            if c.exists():
                return kind, (c if kind != "folders" else c.parent)
    raise layout_error(root, "FER-2013 data (fer2013.csv, icml_face_data.csv or train/<class>/)", FER_LAYOUT)


def _parse_pixels(text: str, path: Path, line: int) -> np.ndarray:
    """Space-separated integers via numpy's C parser (5x faster than split(); the full CSV takes seconds)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy warns (or raises) on a non-integer token
        try:
            return np.fromstring(text, dtype=np.int32, sep=" ")
        except (ValueError, DeprecationWarning):
            raise MalformedFileError(path, line, "pixel values must be space-separated integers") from None


def _read_csv(path: Path, test: set[str]) -> dict[str, SampleIndex]:
    images: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise MalformedFileError(path, 1, "empty file, expected header 'emotion,pixels,Usage'") from None
        if not {"emotion", "pixels", "Usage"} <= set(header):
            raise MalformedFileError(path, 1, f"header must name emotion, pixels and Usage, got {header}")
        col = {name: header.index(name) for name in ("emotion", "pixels", "Usage")}
        for row in reader:
            n = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise MalformedFileError(path, n, f"expected {len(header)} fields, got {len(row)}")
            emotion, pixels, usage = (row[col[k]].strip() for k in ("emotion", "pixels", "Usage"))
            try:
                label = int(emotion)
            except ValueError:
                raise MalformedFileError(path, n, f"emotion {emotion!r} is not an integer") from None
            if not 0 <= label <= 6:
                raise MalformedFileError(path, n, f"unknown emotion {label} (FER-2013 labels are 0..6)")
            if usage not in USAGES:
                raise MalformedFileError(path, n, f"unknown Usage {usage!r} (expected one of {USAGES})")
            arr = _parse_pixels(pixels, path, n)
            if len(arr) != 48 * 48:
                raise MalformedFileError(path, n, f"expected 2304 pixel values, got {len(arr)}")
            if arr.min() < 0 or arr.max() > 255:
                raise MalformedFileError(path, n, "pixel values must lie in 0..255")
            split = _split_of(usage, test)
            images[split].append(arr.astype(np.uint8).reshape(48, 48, 1))
            labels[split].append(label)
    out = {}
    for split in ("train", "val", "test"):
        if split == "val" and not images[split]:
            continue
        arrays = np.stack(images[split]) if images[split] else np.zeros((0, 48, 48, 1), np.uint8)
        out[split] = SampleIndex(
            arrays=arrays,
            targets={"label": np.asarray(labels[split], dtype=np.int64)},
            meta={"classes": list(FER_CLASSES), "source": str(path)},
        )
    return out


def _read_folders(base: Path, test: set[str]) -> dict[str, SampleIndex]:
    paths: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for folder in ("train", "test"):
        top = base / folder
        if not top.is_dir():
            raise layout_error(top, "FER-2013 folder", FER_LAYOUT)
        for class_dir in sorted(p for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")):
            key = class_dir.name.lower()
            if key not in FER_FOLDER_TO_ID:
                raise DatasetLayoutError(
                    f"unknown FER-2013 class folder {class_dir} (known: {', '.join(sorted(FER_FOLDER_TO_ID))})"
                )
            for img in list_images(class_dir):
                if folder == "train":
                    split = "train"
                else:  # the file-name prefix tells PublicTest from PrivateTest; unknown prefixes count as test
                    prefix = img.name.split("_", 1)[0]
                    split = _split_of(prefix, test) if prefix in USAGES[1:] else "test"
                paths[split].append(img)
                labels[split].append(FER_FOLDER_TO_ID[key])
    out = {}
    for split in ("train", "val", "test"):
        if split == "val" and not paths[split]:
            continue
        out[split] = SampleIndex(
            paths=paths[split],
            targets={"label": np.asarray(labels[split], dtype=np.int64)},
            meta={"classes": list(FER_CLASSES), "source": str(base)},
        )
    return out


def read_fer2013(
    root: Path, test_usage: str | Iterable[str] = Fer2013Params.test_usage, variant: str = Fer2013Params.variant
) -> dict[str, SampleIndex]:
    """FER-2013 splits 'train' (Training), 'test' and, when one Usage is left over, 'val'.

    Default `test_usage="PrivateTest"`: PublicTest becomes 'val' (the challenge's final protocol);
    `"PublicTest+PrivateTest"` puts both in 'test' like torchvision. `variant`: auto | csv | icml | folders
    (auto prefers fer2013.csv, then icml_face_data.csv, then train/ test/ class folders). CSV images are
    (N,48,48,1) uint8 arrays; folder images are files. Labels are the CSV ids 0..6 (folders mapped by name).
    """
    root = Path(root)
    if not root.exists():
        raise layout_error(root, "FER-2013 root", FER_LAYOUT)
    test = _test_usages(test_usage)
    kind, source = _find_source(root, variant)
    return _read_folders(source, test) if kind == "folders" else _read_csv(source, test)


def write_fer2013(out: Path, n: int, seed: int) -> Path:
    """The writer of the fer2013 layout (``synth export --like fer2013``): about n synthetic samples under out."""
    import csv
    import torch
    from ..synthetic.export import EMOTION_TO_FER_ID, Faces
    from ..synthetic.face_model import EMOTIONS
    root = out / "fer2013"
    root.mkdir(parents=True, exist_ok=True)
    faces = Faces(seed, max(2, n // 3), "fer2013")
    emo = torch.randperm(n, generator=faces.g) % 7
    img = faces.render(torch.randint(len(faces.ident["shape"]), (n,), generator=faces.g), 48, emotion=emo)
    gray = (img.mean(1) * 255).round().clamp(0, 255).to(torch.uint8).view(n, -1).numpy()
    usage = ["Training" if i % 5 < 3 else ("PublicTest" if i % 5 == 3 else "PrivateTest") for i in range(n)]
    with open(root / "fer2013.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])  # §2 header
        for e, px, u in zip(emo.tolist(), gray, usage):
            w.writerow([EMOTION_TO_FER_ID[EMOTIONS[e]], " ".join(map(str, px.tolist())), u])
    return root


@register_dataset("fer2013")
class Fer2013(DatasetFormat):
    folder = "FER2013"
    description = "FER-2013: 7 expressions, 48 px grey faces in fer2013.csv, icml_face_data.csv or class folders (§2)"
    layout = FER_LAYOUT
    writers = {"fer2013": write_fer2013}
    reader = staticmethod(read_fer2013)

    def options(self, params: Any) -> dict[str, Any]:
        return {"test_usage": params.test_usage, "variant": params.variant}
