"""Head pose: 300W-LP (train) and AFLW2000-3D (test) from .jpg + .mat, or FSA-Net .npz files (§6)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pcfrl_bench.errors import DatasetLayoutError, MalformedFileError

from .base import SampleIndex, check_unique_ids, layout_error, path_inside, read_text_lines

HEADPOSE_LAYOUT = """\
<root>/                                       (default <data-root>/headpose)
  300W_LP/{AFW,AFW_Flip,HELEN,...}/<name>.jpg + <name>.mat    Pose_Para = [pitch,yaw,roll,tx,ty,tz,s] radians
  AFLW2000/image00002.jpg + image00002.mat
 or FSA-Net crops: 300W_LP.npz / a folder of 300W_LP_*.npz, AFLW2000.npz  (image BGR uint8, pose yaw,pitch,roll deg)
"""


def pose_from_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch, roll) in degrees from Pose_Para, and an x0,y0,x1,y1 box from pt2d (NaN when absent)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=["Pose_Para", "pt2d"])
    except Exception as err:  # scipy raises several types for corrupt files
        raise MalformedFileError(path, None, f"cannot read .mat file ({err})") from err
    if "Pose_Para" not in mat:
        raise MalformedFileError(path, None, "no 'Pose_Para' entry")
    pose = np.asarray(mat["Pose_Para"], dtype=np.float64).reshape(-1)
    if pose.size < 3:
        raise MalformedFileError(path, None, f"Pose_Para has {pose.size} values, expected 7")
    angles = np.degrees(pose[[1, 0, 2]])  # §6: Pose_Para = [pitch, yaw, roll, ...] -> (yaw, pitch, roll)
    box = np.full(4, np.nan)
    if "pt2d" in mat:
        pts = np.asarray(mat["pt2d"], dtype=np.float64)
        pts = pts if pts.shape[0] == 2 else pts.T
        ok = (pts >= 0).all(axis=0)  # AFLW2000 marks missing points with negative values
        if ok.any():
            x, y = pts[0, ok], pts[1, ok]
            box = np.array([x.min(), y.min(), x.max(), y.max()])
    return angles, box


def _mat_split(folder: Path, file_list: Path | None) -> SampleIndex:
    if file_list is not None:
        stems = [(n, line.strip()) for n, line in enumerate(read_text_lines(file_list), start=1) if line.strip()]
        check_unique_ids(file_list, [(n, os.path.normpath(stem), None) for n, stem in stems])
        mats = []
        labelled_dirs = []  # a list selects samples: other images in the folders are not missing labels
        for n, stem in stems:
            m = path_inside(folder, f"{stem}.mat", file_list, n)
            if not m.is_file():
                raise MalformedFileError(file_list, n, f"listed sample has no .mat file: {m}")
            mats.append(m)
    else:
        # skip landmarks/ and any folder without images (e.g. a Code/ folder of model .mat files)
        mats = sorted(folder.rglob("*.mat"))
        with_images = {m.parent for m in mats if m.with_suffix(".jpg").is_file()}
        mats = [m for m in mats if m.parent in with_images and "landmarks" not in m.relative_to(folder).parts[:-1]]
        labelled_dirs = sorted(with_images)  # every .jpg there should have its .mat
    paths, angles, boxes = [], [], []
    for m in mats:
        jpg = m.with_suffix(".jpg")
        if not jpg.is_file():
            raise DatasetLayoutError(f"head-pose image missing: {jpg} (for {m})")
        a, b = pose_from_mat(m)
        paths.append(jpg)
        angles.append(a)
        boxes.append(b)
    if not paths:
        raise layout_error(folder / "<name>.mat", "head-pose .jpg/.mat pairs", HEADPOSE_LAYOUT)
    return SampleIndex(
        paths=paths,
        targets={"angles": np.asarray(angles, np.float32), "bbox": np.asarray(boxes, np.float32)},
        meta={"source": str(folder), "labelled_dirs": labelled_dirs},
    )


def _npz_split(files: list[Path]) -> SampleIndex:
    images, poses = [], []
    for f in files:
        try:
            data = np.load(f)
        except Exception as err:
            raise MalformedFileError(f, None, f"cannot read .npz file ({err})") from err
        for key in ("image", "pose"):
            if key not in data:
                raise MalformedFileError(f, None, f"no {key!r} array (FSA-Net npz has image, pose, img_size)")
        img, pose = np.asarray(data["image"]), np.asarray(data["pose"], dtype=np.float32)
        if img.ndim != 4 or img.shape[-1] != 3 or pose.shape != (img.shape[0], 3):
            raise MalformedFileError(f, None, f"expected image (N,H,W,3) and pose (N,3), got {img.shape}, {pose.shape}")
        images.append(img[..., ::-1].astype(np.uint8))  # FSA-Net crops are BGR -> RGB
        poses.append(pose)  # already (yaw, pitch, roll) in degrees
    return SampleIndex(
        arrays=np.ascontiguousarray(np.concatenate(images)),
        targets={"angles": np.concatenate(poses)},
        meta={"source": [str(f) for f in files]},
    )


def _load_split(root: Path, name: str, file_list: str | None) -> SampleIndex:
    p = root / name
    if p.suffix == ".npz" and p.is_file():
        return _npz_split([p])
    if (root / f"{name}.npz").is_file():
        return _npz_split([root / f"{name}.npz"])
    if p.is_dir():
        if any(p.rglob("*.mat")):
            return _mat_split(p, root / file_list if file_list else None)
        npz = sorted(p.glob("*.npz"))
        if npz:
            return _npz_split(npz)
    prefixed = sorted(root.glob(f"{name}_*.npz"))  # FSA-Net type1: 300W_LP_AFW.npz, 300W_LP_AFW_Flip.npz, ...
    if prefixed:
        return _npz_split(prefixed)
    raise layout_error(p, f"head-pose set {name!r}", HEADPOSE_LAYOUT)


def head_pose_filter(angles: np.ndarray, limit: float = 99.0) -> np.ndarray:
    """Keep-mask: all |yaw|, |pitch|, |roll| <= limit degrees (Hopenet protocol, datasets.md §6)."""
    a = np.asarray(angles, dtype=np.float64).reshape(-1, 3)
    return np.all(np.abs(a) <= limit, axis=1)  # NaN compares False -> dropped


def read_headpose(
    root: Path,
    train: str = "300W_LP",
    test: str = "AFLW2000",
    limit: float = 99.0,
    train_list: str | None = None,
    test_list: str | None = None,
) -> dict[str, SampleIndex]:
    """Splits 'train' (300W-LP) and 'test' (AFLW2000); target 'angles' (N,3) degrees (yaw, pitch, roll).

    Samples with any |angle| > `limit` are dropped from both sets (Hopenet protocol, §6); meta["n_filtered"]
    counts them. Optional `*_list` files (relative paths without extension, one a line) select samples.
    """
    root = Path(root)
    if not root.is_dir():
        raise layout_error(root, "head-pose root", HEADPOSE_LAYOUT)
    out = {}
    for split, name, lst in (("train", train, train_list), ("test", test, test_list)):
        index = _load_split(root, name, lst)
        keep = head_pose_filter(index.targets["angles"], limit)
        filtered = index.subset(keep)
        filtered.meta["n_filtered"] = int((~keep).sum())
        filtered.meta["limit_degrees"] = limit
        out[split] = filtered
    return out
