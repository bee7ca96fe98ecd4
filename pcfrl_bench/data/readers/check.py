"""`check_dataset`: counts and problems of a dataset on disk, without raising for data problems."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pcfrl_bench.errors import PcfrlError
from pcfrl_bench.interrupt import check_interrupted
from pcfrl_bench.progress import stage

from .base import SampleIndex, missing_files, unlabelled_images


DECODE_ALL_LIMIT = 60_000  # `data check` decodes sets up to this many images whole: about a minute at 1,000 images/s
# (measured on one core: 3,900 images/s for 100-px JPEG face crops, 2,000 for 250-px ones)
Decode = int | Literal["auto", "all"] | None  # a number of images, "auto", or "all" (None: also all)


def undecodable_images(paths: Sequence[Path], positions: Iterable[int] | None = None,
                       label: str = "decode images") -> list[tuple[int, str]]:
    """(position, 'path (error)') of the existing files among ``positions`` (None: every file) that Pillow cannot
    fully decode. The one decode pass of ``run --unreadable`` (every evaluation image) and ``data check``;
    reported as the progress stage ``label``."""
    from PIL import Image

    bad: list[tuple[int, str]] = []
    chosen = range(len(paths)) if positions is None else list(positions)
    with stage(label, len(chosen), "images") as bar:
        for i in chosen:
            check_interrupted()  # decoding a large set takes minutes
            bar.advance()
            p = paths[int(i)]
            if not Path(p).is_file():
                continue
            try:
                with Image.open(p) as img:
                    img.load()
            except Exception as err:  # any decoder failure is a data problem to report
                bad.append((int(i), f"{p} ({type(err).__name__})"))
    return bad


def stratified_positions(index: SampleIndex, n: int) -> np.ndarray:
    """``n`` sample positions spread over the split's classes in proportion to their size (at least one per
    class while ``n`` allows), evenly spaced within each class; all positions when ``n`` >= the split."""
    total = len(index)
    if n >= total:
        return np.arange(total)
    label = index.targets.get("label")
    groups = [np.arange(total)] if label is None or np.ndim(label) != 1 else \
        [np.flatnonzero(label == v) for v in np.unique(label)]
    share = np.array([len(g) for g in groups], dtype=np.float64) * n / total
    take = np.minimum(np.maximum(np.floor(share), 1 if n >= len(groups) else 0), [len(g) for g in groups])
    for k in np.argsort(share - np.floor(share))[::-1][: max(0, n - int(take.sum()))]:  # largest remainders
        take[k] = min(take[k] + 1, len(groups[k]))
    chosen = [g[np.unique(np.linspace(0, len(g) - 1, num=int(t)).astype(int))] for g, t in zip(groups, take) if t]
    return np.sort(np.concatenate(chosen)) if chosen else np.arange(0)


def decode_plan(splits: dict[str, SampleIndex], decode: Decode) -> tuple[dict[str, np.ndarray], int, int]:
    """({split: positions to decode}, images to decode, image files in all): every image for ``"all"``/None and
    for ``"auto"`` up to DECODE_ALL_LIMIT images, else a sample of that many (or of ``decode``) shared among the
    splits in proportion and stratified by class within each."""
    files = {s: ix for s, ix in splits.items() if ix.paths is not None}
    total = sum(len(ix) for ix in files.values())
    budget = total if decode in ("all", None) or (decode == "auto" and total <= DECODE_ALL_LIMIT) else \
        DECODE_ALL_LIMIT if decode == "auto" else int(decode)
    plan = {s: stratified_positions(ix, round(budget * len(ix) / total)) for s, ix in files.items()} if total else {}
    return plan, sum(len(p) for p in plan.values()), total


def _split_report(index: SampleIndex, problems: list[str], split: str, name: str) -> dict[str, Any]:
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
    return rep


def _label_coverage(splits: dict[str, SampleIndex], problems: list[str]) -> None:
    """Images of the folders a reader declares fully labelled (``meta["labelled_dirs"]``) without a label line,
    and images listed in more than one split (not for verification pairs, where sharing is the protocol)."""
    listed = [p for ix in splits.values() if ix.paths is not None for p in ix.paths]
    folders = list(dict.fromkeys(d for ix in splits.values() for d in ix.meta.get("labelled_dirs") or []))
    extra = unlabelled_images(folders, listed)
    if extra:
        problems.append(f"{len(extra)} image(s) have no label line (not used), e.g. "
                        + ", ".join(str(p) for p in extra[:3]))
    seen: dict[str, str] = {}
    for split, ix in splits.items():
        if ix.paths is None or ix.is_verification:
            continue
        shared = [p for p in dict.fromkeys(map(os.path.normpath, ix.paths)) if seen.setdefault(p, split) != split]
        if shared:
            problems.append(f"{split}: {len(shared)} image(s) also in split {seen[shared[0]]}, e.g. {shared[0]}")


def _decode_report(splits: dict[str, SampleIndex], decode: Decode, problems: list[str]) -> dict[str, Any]:
    """Decode the images of :func:`decode_plan`; each failure is a problem. Returns what was decoded."""
    plan, chosen, total = decode_plan(splits, decode)
    for split, positions in plan.items():
        for _, bad in undecodable_images(splits[split].paths, positions, label=f"decode {split}"):
            problems.append(f"{split}: cannot decode image {bad}")
    return {"images": chosen, "of": total, "sample": chosen < total}


def check_dataset(name: str, root: Path, decode_sample: Decode = "auto", **options: Any) -> dict[str, Any]:
    """Per-split counts (samples or pairs, classes, subjects), what was decoded, and a list of problems; never
    raises for data problems: layout and format errors (a label line repeating an id, with the same or another
    label, names the file and lines), missing files, images without a label line, images in two splits, and
    images that do not decode become problem strings. ``decode_sample``: see :func:`decode_plan` (``"auto"``:
    every image of sets up to DECODE_ALL_LIMIT images, else a stratified sample of that many). ``options`` go to
    the reader of the format ``name``, with the format's ``check_options`` on top. Unknown ``name`` raises
    UnknownNameError."""
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
        report["splits"][split] = _split_report(index, report["problems"], split, name)
    files = {} if name == "voxceleb" else splits  # VoxCeleb lists clips, not images
    _label_coverage(files, report["problems"])
    report["decoded"] = _decode_report(files, decode_sample, report["problems"])
    return report
