"""Shared pieces of the real-dataset readers: the `SampleIndex` record and path checks (no torch: the image
Dataset over a `SampleIndex` is `dataset.ImageIndexDataset`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import DatasetLayoutError, MalformedFileError
from pcfrl_bench.inputs import quote

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


def check_unique_ids(list_file: Path, entries: Sequence[tuple[int, str, Any]], limit: int = 5) -> None:
    """Each id of a label or list file at most once: ``entries`` are (line, id, label). A repeated id (the same
    image twice, or with two different labels) is a MalformedFileError naming the file and both lines of every
    repeat (the first ``limit`` of them and how many there are)."""
    first: dict[str, tuple[int, Any]] = {}
    repeats = []
    for line, key, label in entries:
        if key not in first:
            first[key] = (line, label)
            continue
        line0, label0 = first[key]
        repeats.append(f"line {line}: {quote(key)} " + (f"repeats line {line0}" if label == label0 else
                                                       f"has label {label}, but line {line0} gave it {label0}"))
    if repeats:
        more = f"; ... and {len(repeats) - limit} more" if len(repeats) > limit else ""
        raise MalformedFileError(list_file, None, f"{len(repeats)} repeated id(s), each must be listed once: "
                                                  + "; ".join(repeats[:limit]) + more)


def unlabelled_images(folders: Sequence[Path], labelled: Sequence[Path]) -> list[Path]:
    """Image files directly in ``folders`` that are not among ``labelled`` (images without a label line)."""
    known = {os.path.normpath(p) for p in labelled}
    return [p for folder in folders if Path(folder).is_dir() for p in list_images(Path(folder))
            if os.path.normpath(p) not in known]


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
