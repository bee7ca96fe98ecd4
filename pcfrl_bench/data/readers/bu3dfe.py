"""BU-3DFE pose classification from PCL-style list files `path,expression,pose` (§7)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pcfrl_bench.errors import MalformedFileError
from pcfrl_bench.inputs import quote

from .base import (SampleIndex, check_files_exist, check_unique_ids, layout_error, path_inside, read_text_lines,
                   require_file)

BU3DFE_LAYOUT = """\
<root>/                       (default <data-root>/BU-3DFE)
  train.txt, test.txt         one sample a line: '<relative image path>,<expression id>,<pose class id>'
  <relative image paths>      images you rendered from the 3D models (read from <root>/<path>)
"""


def _read_list(
    path: Path, image_root: Path, num_pose: int | None, num_expr: int | None
) -> tuple[list[Path], np.ndarray, np.ndarray]:
    paths, expr, pose, entries = [], [], [], []
    for n, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        f = [x.strip() for x in line.split(",")]
        if len(f) != 3 or not f[0]:
            raise MalformedFileError(path, n, f"expected '<path>,<expression>,<pose>', got {line!r}")
        try:
            e, p = int(f[1]), int(f[2])
        except ValueError:
            raise MalformedFileError(path, n, f"expression and pose must be integers, got {line!r}") from None
        if p < 0 or (num_pose is not None and p >= num_pose):
            raise MalformedFileError(path, n, f"unknown pose class {p} (expected 0..{(num_pose or 1) - 1})")
        if e < 0 or (num_expr is not None and e >= num_expr):
            raise MalformedFileError(path, n, f"unknown expression {e}")
        paths.append(path_inside(image_root, f[0], path, n))
        expr.append(e)
        pose.append(p)
        entries.append((n, os.path.normpath(f[0]), f"expression {e}, pose {p}"))
    check_unique_ids(path, entries)
    return paths, np.asarray(expr, np.int64), np.asarray(pose, np.int64)


def read_bu3dfe(
    root: Path,
    train_list: str = "train.txt",
    test_list: str = "test.txt",
    image_root: str | None = None,
    num_pose_classes: int | None = None,
    num_expression_classes: int | None = None,
    check_files: bool = True,
) -> dict[str, SampleIndex]:
    """Splits 'train' / 'test'; targets 'label' (= pose class, the probe's target), 'pose', 'expression'.

    Nothing is derived from file names; pass `num_pose_classes` to reject out-of-range ids.
    """
    root = Path(root)
    if not root.is_dir():
        raise layout_error(root, "BU-3DFE root", BU3DFE_LAYOUT)
    img_root = root / image_root if image_root else root
    out = {}
    for split, name in (("train", train_list), ("test", test_list)):
        lst = require_file(root / name, f"BU-3DFE {split} list", BU3DFE_LAYOUT)
        paths, expr, pose = _read_list(lst, img_root, num_pose_classes, num_expression_classes)
        if check_files:
            check_files_exist(paths, f"BU-3DFE {split}", lst)
        n_pose = num_pose_classes if num_pose_classes is not None else None
        out[split] = SampleIndex(
            paths=paths,
            targets={"label": pose, "pose": pose.copy(), "expression": expr},
            meta={"list_file": str(lst), "num_pose_classes": n_pose},
        )
    shared = {os.path.normpath(p) for p in out["train"].paths} & {os.path.normpath(p) for p in out["test"].paths}
    if shared:  # the probe would be tested on images it was trained on
        raise MalformedFileError(root / test_list, None, f"{len(shared)} image(s) also listed in {train_list} (train "
                                                         f"and test must not share images), e.g. {quote(min(shared))}")
    if num_pose_classes is None:
        n = int(max((int(s.targets["pose"].max()) + 1 if len(s) else 0) for s in out.values()))
        for s in out.values():
            s.meta["num_pose_classes"] = n
    return out
