"""BU-3DFE pose classification from PCL-style list files `path,expression,pose` (§7)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import MalformedFileError
from pcfrl_bench.inputs import quote
from pcfrl_bench.schema.tasks import Bu3dfeParams

from .base import (SampleIndex, check_files_exist, check_unique_ids, layout_error, path_inside, read_text_lines,
                   require_file)
from .format import DatasetFormat, register_dataset

# expression codes of the file names (datasets.md §7); the writer's lists use their ids: AN 0, DI 1, ..., NE 6
BU3DFE_CODES = ("AN", "DI", "FE", "HA", "SA", "SU", "NE")
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
    train_list: str = Bu3dfeParams.train_list,
    test_list: str = Bu3dfeParams.test_list,
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


def write_bu3dfe(out: Path, n: int, seed: int) -> Path:
    """The writer of the bu3dfe layout (``synth export --like bu3dfe``): about n synthetic samples under out."""
    import torch
    from ..synthetic.export import EMOTION_TO_FER_ID, Faces, save_image, to_uint8
    from ..synthetic.face_model import EMOTIONS
    from ..synthetic.world import POSECLS_PITCHES, POSECLS_YAWS
    root = out / "BU-3DFE"
    n_subj = max(2, min(10, n // 7))
    faces = Faces(seed, n_subj, "bu3dfe")
    n_pose = len(POSECLS_YAWS) * len(POSECLS_PITCHES)
    pose_cls = torch.randperm(n, generator=faces.g) % n_pose
    emo = torch.randint(7, (n,), generator=faces.g)
    who = torch.arange(n) % n_subj
    pose = torch.stack([torch.tensor(POSECLS_YAWS)[pose_cls // len(POSECLS_PITCHES)],
                        torch.tensor(POSECLS_PITCHES)[pose_cls % len(POSECLS_PITCHES)], torch.zeros(n)], 1)
    imgs = to_uint8(faces.render(who, 128, emotion=emo, pose=pose))
    subjects = [("F" if s % 2 == 0 else "M") + f"{s // 2 + 1:04d}" for s in range(n_subj)]
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for i in range(n):
        subj, code = subjects[int(who[i])], BU3DFE_CODES[EMOTION_TO_FER_ID[EMOTIONS[int(emo[i])]]]
        level = "00" if code == "NE" else f"{1 + i % 4:02d}"
        rel = f"{subj}/{subj}_{code}{level}WH_F2D_pose{int(pose_cls[i]):02d}.png"
        save_image(imgs[i], root / rel)
        split = "test" if int(who[i]) >= n_subj - max(1, n_subj // 4) else "train"  # subject-exclusive split
        lines[split].append(f"{rel},{BU3DFE_CODES.index(code)},{int(pose_cls[i])}")  # §7: path,exp,pose
    for split, ls in lines.items():
        (root / f"{split}.txt").write_text("\n".join(ls) + ("\n" if ls else ""))
    return root


@register_dataset("bu3dfe")
class Bu3dfe(DatasetFormat):
    folder = "BU-3DFE"
    description = "BU-3DFE pose classes: train.txt / test.txt lists 'path,expression,pose' of rendered images (§7)"
    layout = BU3DFE_LAYOUT
    check_options = {"check_files": False}  # data check reports missing files as problems
    sources = {"bu3dfe-train": ("train", {})}  # PCFRL Sec. 4.3.4 pretrains the pose classification task on it
    writers = {"bu3dfe": write_bu3dfe}
    reader = staticmethod(read_bu3dfe)

    def options(self, params: Any) -> dict[str, Any]:
        return {"train_list": params.train_list, "test_list": params.test_list,
                "image_root": params.image_root or None, "num_pose_classes": params.num_pose_classes or None}
