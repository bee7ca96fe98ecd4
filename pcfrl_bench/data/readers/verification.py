"""Face-verification pair lists: LFW pairs.txt (§3) and CPLFW / CALFW two-lines-per-pair files (§4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import MalformedFileError
from pcfrl_bench.schema.tasks import CalfwParams, CplfwParams, LfwParams

from .base import SampleIndex, check_files_exist, layout_error, path_inside, read_text_lines, require_file
from .format import DatasetFormat, register_dataset

LFW_LAYOUT = """\
<root>/                               (default <data-root>/LFW)
  pairs.txt                           line 1 '10<TAB>300', then per fold 300 'name n1 n2' + 300 'name1 n1 name2 n2'
  lfw-deepfunneled/<Name>/<Name>_0001.jpg   (or lfw/ or lfw_funneled/; choose with image_dir=)
"""

CPLFW_LAYOUT = """\
<root>/                               (default <data-root>/CPLFW, or CALFW)
  pairs_CPLFW.txt                     2 lines per pair '<file> <label>', positives first then negatives
  images/<Name>_<k>.jpg               flat folder (or 'aligned images/'; choose with image_dir=)
"""


def _pair_index(names: list[tuple[str, str]], lines: list[tuple[int, int]], images: Path,
                pairs_path: Path) -> tuple[list[Path], np.ndarray]:
    """Paths of the unique images (first-seen order; each kept inside ``images``, else an error naming the
    pairs file's line) and (P,2) indices of each pair into them."""
    position: dict[str, int] = {}
    paths: list[Path] = []
    for pair, where in zip(names, lines):
        for key, line in zip(pair, where):
            if key not in position:
                position[key] = len(paths)
                paths.append(path_inside(images, key, pairs_path, line))
    pairs = np.asarray([[position[a], position[b]] for a, b in names], dtype=np.int64).reshape(-1, 2)
    return paths, pairs


def _image_dir(root: Path, image_dir: str | None, candidates: tuple[str, ...], layout: str) -> Path:
    if image_dir is not None:
        d = root / image_dir
        if not d.is_dir():
            raise layout_error(d, "image folder", layout)
        return d
    for name in candidates:
        d = root / name
        if d.is_dir():
            nested = d / name  # Kaggle mirrors nest lfw-deepfunneled/lfw-deepfunneled/
            return nested if nested.is_dir() else d
    raise layout_error(root / candidates[0], f"image folder (tried {', '.join(candidates)})", layout)


def read_lfw(
    root: Path, image_dir: str | None = None, pairs_file: str = LfwParams.pairs_file, check_files: bool = True
) -> dict[str, SampleIndex]:
    """LFW View 2: split 'test' with the 6,000 pairs of pairs.txt; fold k = the k-th set of the file (§3).

    `image_dir` defaults to the first of lfw-deepfunneled, lfw_funneled, lfw (Kaggle's doubled folder is
    followed). A View-1 file (`pairs_file="pairsDevTest.txt"`, header 'N') reads as a single fold.
    """
    root = Path(root)
    if not root.is_dir():
        raise layout_error(root, "LFW root", LFW_LAYOUT)
    pairs_path = require_file(root / pairs_file, "LFW pairs file", LFW_LAYOUT)
    images = _image_dir(root, image_dir, ("lfw-deepfunneled", "lfw_funneled", "lfw"), LFW_LAYOUT)
    lines = read_text_lines(pairs_path)
    header = lines[0].split() if lines else []
    if len(header) == 1:  # View 1 (pairsDevTrain/DevTest.txt): 'N', then N matched + N mismatched, one fold
        header = ["1", header[0]]
    if len(header) != 2:
        raise MalformedFileError(pairs_path, 1, f"expected header '<n_folds> <pairs_per_half>', got {lines[:1]}")
    n_sets = int(header[0]) if header[0].isdigit() else -1
    n_per = int(header[1]) if header[1].isdigit() else -1
    if n_sets <= 0 or n_per <= 0:
        raise MalformedFileError(pairs_path, 1, f"header values must be positive integers, got {lines[0]!r}")
    body = [(n, line) for n, line in enumerate(lines[1:], start=2) if line.strip()]
    expected = n_sets * 2 * n_per
    if len(body) != expected:
        where = body[-1][0] if body else 1
        raise MalformedFileError(
            pairs_path, where, f"header promises {n_sets} x (2 x {n_per}) = {expected} pairs, found {len(body)} lines"
        )
    names: list[tuple[str, str]] = []
    same, fold, where = [], [], []
    for k, (n, line) in enumerate(body):
        f = line.split()
        matched = (k % (2 * n_per)) < n_per
        try:
            if matched and len(f) == 3:
                a, b = (f[0], int(f[1])), (f[0], int(f[2]))
            elif not matched and len(f) == 4:
                a, b = (f[0], int(f[1])), (f[2], int(f[3]))
            else:
                want = "'name n1 n2' (matched)" if matched else "'name1 n1 name2 n2' (mismatched)"
                raise MalformedFileError(pairs_path, n, f"expected {want} at this position, got {line!r}")
        except ValueError:
            raise MalformedFileError(pairs_path, n, f"image numbers must be integers, got {line!r}") from None
        names.append((f"{a[0]}/{a[0]}_{a[1]:04d}.jpg", f"{b[0]}/{b[0]}_{b[1]:04d}.jpg"))
        same.append(matched)
        fold.append(k // (2 * n_per))
        where.append((n, n))
    paths, pairs = _pair_index(names, where, images, pairs_path)
    if check_files:
        check_files_exist(paths, "LFW", pairs_path)
    index = SampleIndex(
        paths=paths,
        pairs=pairs,
        same=np.asarray(same, dtype=bool),
        fold=np.asarray(fold, dtype=np.int64),
        meta={"pairs_file": str(pairs_path), "n_folds": n_sets},
    )
    return {"test": index}


def _read_two_line_pairs(
    root: Path, pairs_file: str, image_dir: str | None, nonzero_is_same: bool, check_files: bool, n_folds: int
) -> dict[str, SampleIndex]:
    root = Path(root)
    if not root.is_dir():
        raise layout_error(root, "dataset root", CPLFW_LAYOUT)
    pairs_path = require_file(root / pairs_file, "pairs file", CPLFW_LAYOUT)
    images = _image_dir(root, image_dir, ("images", "aligned images", "aligned_images"), CPLFW_LAYOUT)
    body = [(n, line) for n, line in enumerate(read_text_lines(pairs_path), start=1) if line.strip()]
    if len(body) % 2:
        raise MalformedFileError(pairs_path, body[-1][0], "odd number of lines: each pair takes two lines")
    entries = []
    for n, line in body:
        f = line.rsplit(maxsplit=1)
        if len(f) != 2:
            raise MalformedFileError(pairs_path, n, f"expected '<image file> <label>', got {line!r}")
        try:
            label = int(f[1])
        except ValueError:
            raise MalformedFileError(pairs_path, n, f"label {f[1]!r} is not an integer") from None
        if not nonzero_is_same and label not in (0, 1):
            raise MalformedFileError(pairs_path, n, f"unknown label {label} (expected 1 = same, 0 = different)")
        entries.append((n, f[0], label != 0))
    names, same, where = [], [], []
    for (n1, a, s1), (n2, b, s2) in zip(entries[0::2], entries[1::2]):
        if s1 != s2:
            raise MalformedFileError(pairs_path, n2, f"label differs from line {n1}: both lines of a pair repeat it")
        names.append((a, b))
        same.append(s1)
        where.append((n1, n2))
    same_arr = np.asarray(same, dtype=bool)
    # §4: the file lists all positives, then all negatives; fold k takes the k-th tenth of each block
    # (rank within its class), so every fold holds both classes as in LFW's 300 + 300 per fold.
    rank = np.empty(len(same_arr), dtype=np.int64)
    for cls in (True, False):
        members = np.flatnonzero(same_arr == cls)
        rank[members] = np.arange(len(members)) * n_folds // max(len(members), 1)
    paths, pairs = _pair_index(names, where, images, pairs_path)
    if check_files:
        check_files_exist(paths, pairs_file, pairs_path)
    index = SampleIndex(
        paths=paths, pairs=pairs, same=same_arr, fold=rank, meta={"pairs_file": str(pairs_path), "n_folds": n_folds}
    )
    return {"test": index}


def read_cplfw(
    root: Path,
    pairs_file: str = CplfwParams.pairs_file,
    image_dir: str | None = None,
    check_files: bool = True,
    n_folds: int = CplfwParams.n_folds,
) -> dict[str, SampleIndex]:
    """CPLFW: split 'test'; pairs from two consecutive lines, labels 1/0, folds rebuilt per §4."""
    return _read_two_line_pairs(root, pairs_file, image_dir, False, check_files, n_folds)


def read_calfw(
    root: Path,
    pairs_file: str = CalfwParams.pairs_file,
    image_dir: str | None = None,
    check_files: bool = True,
    n_folds: int = CalfwParams.n_folds,
) -> dict[str, SampleIndex]:
    """CALFW: as CPLFW, but any non-zero label means 'same' (FaceX-Zoo rule, §4)."""
    return _read_two_line_pairs(root, pairs_file, image_dir, True, check_files, n_folds)


def write_lfw(out: Path, n: int, seed: int) -> Path:
    """The writer of the lfw layout (``synth export --like lfw``): about n synthetic samples under out."""
    import torch
    from ..synthetic.export import Faces, save_image, to_uint8, verification_people
    root = out
    k = max(1, n // 20)  # 10 folds x (k matched + k mismatched)
    names, pairs, who, yaw = verification_people(seed, 20 * k, "lfw", cross_pose=False)
    faces = Faces(seed, len(names), "lfw")
    pose = torch.stack([yaw, torch.zeros_like(yaw), torch.zeros_like(yaw)], 1)
    imgs = to_uint8(faces.render(who, 250, pose=pose))
    for j, arr in enumerate(imgs):
        name, num = names[int(who[j])], j % 3 + 1
        save_image(arr, root / "lfw-deepfunneled" / name / f"{name}_{num:04d}.jpg")
    matched = [p for p in pairs if p[0] == p[2]]
    mismatched = [p for p in pairs if p[0] != p[2]]
    lines = [f"10\t{k}"]  # §3: header '<n_sets>\t<n_matched_per_set>', then per set k matched + k mismatched
    for fold in range(10):
        for a, i, _, j in matched[fold * k:(fold + 1) * k]:
            lines.append(f"{names[a]}\t{i + 1}\t{j + 1}")
        for a, i, b, j in mismatched[fold * k:(fold + 1) * k]:
            lines.append(f"{names[a]}\t{i + 1}\t{names[b]}\t{j + 1}")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    counts = torch.bincount(who, minlength=len(names)).tolist()
    (root / "lfw-names.txt").write_text("".join(f"{nm}\t{c}\n" for nm, c in zip(names, counts)))
    return root


def write_cplfw(out: Path, n: int, seed: int) -> Path:
    """The writer of the cplfw layout (``synth export --like cplfw``): about n synthetic samples under out."""
    import torch
    from ..synthetic.export import Faces, save_image, to_uint8, verification_people
    root = out
    k = max(1, n // 20)
    names, pairs, who, yaw = verification_people(seed, 20 * k, "cplfw", cross_pose=True)
    faces = Faces(seed, len(names), "cplfw")
    pose = torch.stack([yaw, torch.zeros_like(yaw), torch.zeros_like(yaw)], 1)
    imgs = to_uint8(faces.render(who, 250, pose=pose))
    for j, arr in enumerate(imgs):
        save_image(arr, root / "images" / f"{names[int(who[j])]}_{j % 3 + 1}.jpg")  # §4: flat, unpadded index
    pos = [p for p in pairs if p[0] == p[2]]
    neg = [p for p in pairs if p[0] != p[2]]
    lines = []
    for label, block in ((1, pos), (0, neg)):  # §4: all positives first, then all negatives; 2 lines per pair
        for a, i, b, j in block:
            lines += [f"{names[a]}_{i + 1}.jpg {label}", f"{names[b]}_{j + 1}.jpg {label}"]
    (root / "pairs_CPLFW.txt").write_text("\n".join(lines) + "\n")
    return root


@register_dataset("lfw")
class Lfw(DatasetFormat):
    folder = "LFW"
    description = "LFW View 2: pairs.txt (10 folds of 300 + 300 pairs) and the image folders (§3)"
    layout = LFW_LAYOUT
    check_options = {"check_files": False}  # data check reports missing files as problems
    writers = {"lfw": write_lfw}
    reader = staticmethod(read_lfw)

    def options(self, params: Any) -> dict[str, Any]:
        return {"image_dir": params.image_dir or None, "pairs_file": params.pairs_file}


@register_dataset("cplfw")
class Cplfw(DatasetFormat):
    folder = "CPLFW"
    description = "CPLFW cross-pose LFW: pairs_CPLFW.txt (two lines a pair) and images/ (§4)"
    layout = CPLFW_LAYOUT
    check_options = {"check_files": False}  # data check reports missing files as problems
    writers = {"cplfw": write_cplfw}
    reader = staticmethod(read_cplfw)

    def options(self, params: Any) -> dict[str, Any]:
        return {"pairs_file": params.pairs_file, "image_dir": params.image_dir or None, "n_folds": params.n_folds}


@register_dataset("calfw")
class Calfw(Cplfw):
    folder = "CALFW"
    description = "CALFW cross-age LFW: CPLFW's layout, any non-zero label meaning 'same' (§4)"
    writers = {}
    reader = staticmethod(read_calfw)
