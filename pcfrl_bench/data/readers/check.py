"""`check_dataset`: counts and problems of a dataset on disk, without raising for data problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import PcfrlError
from pcfrl_bench.progress import stage

from .base import SampleIndex, missing_files


def undecodable_images(paths: list[Path], n: int | None = None, label: str = "decode images"
                       ) -> list[tuple[int, str]]:
    """(position, 'path (error)') of the existing files Pillow cannot fully decode, among `n` evenly spaced
    ones (None: every file); reported as the progress stage ``label``."""
    from PIL import Image

    bad: list[tuple[int, str]] = []
    if not paths or (n is not None and n <= 0):
        return bad
    chosen = range(len(paths)) if n is None or n >= len(paths) else \
        np.unique(np.linspace(0, len(paths) - 1, num=n).astype(int))
    with stage(label, len(chosen), "images") as bar:
        for i in chosen:
            p = paths[int(i)]
            bar.advance()
            if not Path(p).is_file():
                continue
            try:
                with Image.open(p) as img:
                    img.load()
            except Exception as err:  # any decoder failure is a data problem to report
                bad.append((int(i), f"{p} ({type(err).__name__})"))
    return bad


def _split_report(
    index: SampleIndex, problems: list[str], split: str, name: str, decode_sample: int | None
) -> dict[str, Any]:
    rep: dict[str, Any] = {"samples": len(index)}
    if index.is_verification:
        rep["pairs"] = int(len(index.pairs))
        rep["same"] = int(index.same.sum())
        rep["different"] = int((~index.same).sum())
        folds = np.unique(index.fold)
        rep["folds"] = int(len(folds))
        for k in folds:
            s = index.same[index.fold == k]
            if s.all() or (~s).all():
                problems.append(f"{split}: fold {int(k)} holds only one class of pairs")
    label = index.targets.get("label")
    if label is not None:
        values, counts = np.unique(label, return_counts=True)
        rep["classes"] = {int(v): int(c) for v, c in zip(values, counts)}
        names = index.meta.get("classes")
        if names and values.size and values.max() >= len(names):
            problems.append(f"{split}: label {int(values.max())} outside the {len(names)} known classes")
    if "subject" in index.targets:
        rep["subjects"] = int(len(np.unique(index.targets["subject"])))
    if "aus" in index.targets and len(index):
        rep["au_positive_rate"] = [round(float(v), 4) for v in index.targets["aus"].mean(axis=0)]
    if "angles" in index.targets:
        rep["filtered_out"] = int(index.meta.get("n_filtered", 0))
    if index.meta.get("n_missing_frames"):
        problems.append(f"{split}: {index.meta['n_missing_frames']} labelled frames have no image")
    if len(index) == 0:
        problems.append(f"{split}: no samples")
    if index.paths is not None and name != "voxceleb":
        n_missing, first = missing_files(index.paths)
        if n_missing:
            rep["missing_files"] = n_missing
            problems.append(f"{split}: {n_missing} image files missing, e.g. {', '.join(first[:3])}")
        for _, bad in undecodable_images(index.paths, decode_sample, label=f"decode {name}/{split}"):
            problems.append(f"{split}: cannot decode image {bad}")
    return rep


def check_dataset(name: str, root: Path, decode_sample: int | None = 16, **options: Any) -> dict[str, Any]:
    """Per-split counts (samples or pairs, classes, subjects) and a list of problems; never raises for data
    problems (layout and format errors, missing files, and undecodable images among `decode_sample` evenly
    spaced ones per split, None: all, become problem strings). `options` go to the reader of the format `name`,
    with the format's `check_options` on top. Unknown `name` raises UnknownNameError."""
    from .format import dataset_format

    fmt = dataset_format(name)
    report: dict[str, Any] = {"dataset": name, "root": str(root), "splits": {}, "problems": []}
    try:
        splits = fmt.read(Path(root), **{**options, **fmt.check_options})
    except PcfrlError as err:
        report["problems"].append(str(err))
        return report
    except OSError as err:
        report["problems"].append(f"cannot read {getattr(err, 'filename', root)}: {err.strerror or err}")
        return report
    for split, index in splits.items():
        report["splits"][split] = _split_report(index, report["problems"], split, name, decode_sample)
    return report
