"""DISFA action-unit reader: per-AU label files + user-extracted frames (§5)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import ConfigError, DatasetLayoutError, MalformedFileError
from pcfrl_bench.schema.tasks import DisfaParams

from .base import SampleIndex, check_unique_ids, layout_error, read_text_lines, require_dir
from .format import DatasetFormat, register_dataset

# DISFA 3-fold subject-exclusive partition of JAA-Net (datasets.md §5); fold k tests on part k+1.
DISFA_PARTS: tuple[tuple[int, ...], ...] = (
    (2, 10, 1, 26, 27, 32, 30, 9, 16),
    (13, 18, 11, 28, 12, 6, 31, 21, 24),
    (3, 29, 23, 25, 8, 5, 7, 17, 4),
)

DISFA_AUS = (1, 2, 4, 6, 9, 12, 25, 26)  # 8-AU benchmark (JAA-Net, ME-GraphAU; PCFRL Sec. 4.2.1)
# datasets.md §5: the JAA-Net 3-fold partition; the writer's subjects take two from each part
DISFA_EXPORT_SUBJECTS = ("SN001", "SN002", "SN011", "SN012", "SN003", "SN004")

DISFA_LAYOUT = """\
<root>/                                        (default <data-root>/DISFA)
  ActionUnit_Labels/SN001/SN001_au1.txt ...    lines 'frame,intensity' (0..5), one per frame, no header
  frames/SN001/0.jpg, 1.jpg, ...               frames you extracted, 0-based line index (jpg or png);
                                               another folder via frames_root=
"""

_SUBJECT = re.compile(r"^SN(\d+)$")


def _read_au_file(path: Path) -> np.ndarray:
    """Intensities of one `SNxxx_auN.txt`, in line order (the frame number column is only checked, §5: a frame
    listed twice would shift every later frame onto the wrong image, so it is an error)."""
    values, frames = [], []
    for n, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != 2:
            raise MalformedFileError(path, n, f"expected 'frame,intensity', got {line!r}")
        try:
            frame = int(fields[0])
            value = int(fields[1])
        except ValueError:
            raise MalformedFileError(path, n, f"frame and intensity must be integers, got {line!r}") from None
        if not 0 <= value <= 5:
            raise MalformedFileError(path, n, f"intensity {value} outside 0..5")
        values.append(value)
        frames.append((n, str(frame), value))
    check_unique_ids(path, frames)
    return np.asarray(values, dtype=np.int64)


def _frame_path(frames_dir: Path, t: int, frame_format: str, exts: Sequence[str]) -> Path | None:
    for ext in exts:
        p = frames_dir / f"{frame_format.format(t=t)}{ext}"
        if os.path.isfile(p):
            return p
    return None


def read_disfa(
    root: Path,
    frames_root: Path | None = None,
    aus: Sequence[int] = DISFA_AUS,
    threshold: int = DisfaParams.threshold,
    frame_format: str = DisfaParams.frame_format,
    frame_exts: Sequence[str] = (".jpg", ".png"),
    missing_frames: str = DisfaParams.missing_frames,
    subjects: Sequence[str] | None = None,
) -> dict[str, SampleIndex]:
    """DISFA: one split 'all' of frames; targets 'aus' (N,len(aus)) 0/1 with positive = intensity > `threshold`,
    'au_intensity' (N,len(aus)), 'subject' (N,) int (SN001 -> 1), 'frame' (N,) 0-based.

    Subjects are discovered from ActionUnit_Labels/ (or restricted to `subjects`). Frame t of subject S is
    `<frames_root>/S/<frame_format.format(t=t)><ext>`. `missing_frames="skip"` drops frames without an image
    (counted in meta["n_missing_frames"]); the default "error" names the first missing file.
    Folds: :func:`au_subject_folds` of targets["subject"].
    """
    if missing_frames not in ("error", "skip"):
        raise ConfigError(f"disfa missing_frames must be 'error' or 'skip', got {missing_frames!r}")
    root = Path(root)
    labels_dir = require_dir(root / "ActionUnit_Labels", "DISFA label folder", DISFA_LAYOUT)
    frames_base = Path(frames_root) if frames_root is not None else root / "frames"
    require_dir(frames_base, "DISFA frames folder", DISFA_LAYOUT)
    found = sorted(p.name for p in labels_dir.iterdir() if p.is_dir() and _SUBJECT.match(p.name))
    if subjects is not None:
        unknown = sorted(set(subjects) - set(found))
        if unknown:
            raise layout_error(labels_dir / unknown[0], "DISFA subject folder", DISFA_LAYOUT)
        found = [s for s in found if s in set(subjects)]
    if not found:
        raise layout_error(labels_dir / "SN001", "DISFA subject folders (SNxxx)", DISFA_LAYOUT)
    paths: list[Path] = []
    intensity_parts, subject_parts, frame_parts = [], [], []
    n_missing = 0
    for subject in found:
        columns = []
        for au in aus:
            f = labels_dir / subject / f"{subject}_au{au}.txt"
            if not f.is_file():
                raise layout_error(f, f"DISFA label file for AU{au}", DISFA_LAYOUT)
            columns.append((f, _read_au_file(f)))
        n_frames = len(columns[0][1])
        for f, col in columns[1:]:
            if len(col) != n_frames:
                raise MalformedFileError(f, None, f"{len(col)} frames, but {columns[0][0].name} has {n_frames}")
        intensity = np.stack([c for _, c in columns], axis=1) if n_frames else np.zeros((0, len(aus)), np.int64)
        frames_dir = frames_base / subject
        keep = np.ones(n_frames, dtype=bool)
        for t in range(n_frames):
            p = _frame_path(frames_dir, t, frame_format, frame_exts)
            if p is None:
                if missing_frames == "error":
                    want = frames_dir / f"{frame_format.format(t=t)}{frame_exts[0]}"
                    raise DatasetLayoutError(f"DISFA frame image missing: {want} (frame {t} of {subject})")
                keep[t] = False
                n_missing += 1
            else:
                paths.append(p)
        intensity_parts.append(intensity[keep])
        subject_parts.append(np.full(int(keep.sum()), int(_SUBJECT.match(subject).group(1)), dtype=np.int64))
        frame_parts.append(np.flatnonzero(keep))
    intensity_all = np.concatenate(intensity_parts)
    index = SampleIndex(
        paths=paths,
        targets={
            "aus": (intensity_all > threshold).astype(np.float32),  # PCFRL Sec. 4.2.1: positive if intensity > 1
            "au_intensity": intensity_all,
            "subject": np.concatenate(subject_parts),
            "frame": np.concatenate(frame_parts).astype(np.int64),
        },
        meta={"aus": list(aus), "subjects": found, "n_missing_frames": n_missing,
              "labelled_dirs": [frames_base / s for s in found]},
    )
    return {"all": index}


def _subject_numbers(subjects: Sequence) -> np.ndarray:
    """Subject ids as ints: 1 or 'SN001' -> 1; other strings -> -1 (not a DISFA id)."""
    s = np.asarray(subjects)
    if s.dtype.kind in "iu":
        return s.astype(np.int64)
    out = np.full(s.shape, -1, dtype=np.int64)
    for value in np.unique(s):
        text = str(value)
        if text.upper().startswith("SN") and text[2:].isdigit():
            out[s == value] = int(text[2:])
    return out


def au_subject_folds(subjects: Sequence, n_folds: int = DisfaParams.n_folds) -> np.ndarray:
    """Test-fold id (0..n_folds-1) of every sample; fold k trains on the other folds.

    datasets.md §5: when all subjects are DISFA subjects and n_folds == 3, the fixed JAA-Net partition
    (fold k = part k+1). Otherwise a deterministic subject-exclusive split: sorted unique subjects dealt
    round-robin to folds.
    """
    s = np.asarray(subjects)
    numbers = _subject_numbers(s)
    known = {sub: part for part, subs in enumerate(DISFA_PARTS) for sub in subs}
    if n_folds == 3 and np.isin(numbers, list(known)).all():
        lookup = np.full(max(known) + 1, -1, dtype=np.int64)
        for sub, part in known.items():
            lookup[sub] = part
        return lookup[numbers]
    unique, inverse = np.unique(s, return_inverse=True)
    return (np.arange(len(unique)) % n_folds)[inverse.reshape(-1)]


def disfa_fold_splits(index: SampleIndex, n_folds: int = DisfaParams.n_folds) -> list[tuple[SampleIndex, SampleIndex]]:
    """(train, test) pairs of the subject-exclusive folds of datasets.md §5 (fold k tests on part k+1)."""
    fold = au_subject_folds(index.targets["subject"], n_folds)
    return [(index.subset(fold != k), index.subset(fold == k)) for k in range(n_folds)]


def write_disfa(out: Path, n: int, seed: int) -> Path:
    """The writer of the disfa layout (``synth export --like disfa``): about n synthetic samples under out."""
    import torch
    from ..synthetic.export import save_image, to_uint8
    from ..synthetic.face_model import AU_ALL, DISFA_ALL_AUS
    from ..synthetic.factors import make_generator
    from ..synthetic.renderer import render_faces
    from ..synthetic.world import SyntheticWorld
    root = out / "DISFA"
    frames = max(2, n // len(DISFA_EXPORT_SUBJECTS))
    world = SyntheticWorld(seed + 4242, len(DISFA_EXPORT_SUBJECTS), 1, frames, role="eval", max_yaw=15,
                           max_pitch=10, max_roll=8)
    for s, subject in enumerate(DISFA_EXPORT_SUBJECTS):
        t = torch.arange(frames)
        f = world.frame_factors(torch.full((frames,), s), t)
        g = make_generator("disfa-extra", seed, s)
        f["aus"] = (f["aus"] + (torch.rand(f["aus"].shape, generator=g) < 0.08) * 2.0).clamp(0, 5).round()
        imgs = to_uint8(render_faces(f, 128))
        for i, arr in enumerate(imgs):
            save_image(arr, root / "frames" / subject / f"{i}.jpg")  # frames you extracted, 0-based line index
        label_dir = root / "ActionUnit_Labels" / subject
        label_dir.mkdir(parents=True, exist_ok=True)
        for au in DISFA_ALL_AUS:
            vals = f["aus"][:, AU_ALL.index(au)].long().tolist()
            text = "".join(f"{i + 1},{v}\n" for i, v in enumerate(vals))  # §5: 'frame,intensity', 1-based frame
            (label_dir / f"{subject}_au{au}.txt").write_text(text)
    return root


@register_dataset("disfa")
class Disfa(DatasetFormat):
    folder = "DISFA"
    description = "DISFA: per-subject AU intensity files and the frames you extracted; 8 AUs, 3 subject folds (§5)"
    layout = DISFA_LAYOUT
    check_options = {"missing_frames": "skip"}  # data check counts missing frames instead of stopping
    writers = {"disfa": write_disfa}
    reader = staticmethod(read_disfa)

    def options(self, params: Any) -> dict[str, Any]:
        frames = params.frames_root
        return {"frames_root": Path(frames).expanduser() if frames else None, "aus": DISFA_AUS,
                "threshold": params.threshold, "frame_format": params.frame_format,
                "missing_frames": params.missing_frames}
