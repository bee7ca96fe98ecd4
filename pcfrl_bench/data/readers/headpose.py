"""Head pose: 300W-LP (train) and AFLW2000-3D (test) from .jpg + .mat, or FSA-Net .npz files (§6)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import DatasetLayoutError, MalformedFileError
from pcfrl_bench.schema.tasks import Aflw2000Params

from .base import SampleIndex, check_unique_ids, layout_error, path_inside, read_text_lines
from .format import DatasetFormat, register_dataset

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


W300LP_SUBSETS = ("AFW", "HELEN", "IBUG", "LFPW")


def head_pose_filter(angles: np.ndarray, limit: float = Aflw2000Params.limit) -> np.ndarray:
    """Keep-mask: all |yaw|, |pitch|, |roll| <= limit degrees (Hopenet protocol, datasets.md §6)."""
    a = np.asarray(angles, dtype=np.float64).reshape(-1, 3)
    return np.all(np.abs(a) <= limit, axis=1)  # NaN compares False -> dropped


def read_headpose(
    root: Path,
    train: str = Aflw2000Params.train,
    test: str = Aflw2000Params.test,
    limit: float = Aflw2000Params.limit,
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


AFLW_21 = (17, 19, 21, 22, 24, 26, 36, 39, 42, 45, 0, 31, 33, 35, 16, 48, 51, 54, 57, 8, 30)  # sparse subset


def _pose_mat(path: Path, yaw: float, pitch: float, roll: float, landmarks: np.ndarray, aflw: bool) -> None:
    """A .mat like the real ones: Pose_Para (1,7) [pitch, yaw, roll, tx, ty, tz, s] in radians (§6), pt2d, roi."""
    import scipy.io

    rad = np.radians([pitch, yaw, roll])
    centre = landmarks.mean(0)
    pose_para = np.array([[rad[0], rad[1], rad[2], centre[0], centre[1], 0.0, 0.0012]])
    lo, hi = landmarks.min(0), landmarks.max(0)
    mat = {"Pose_Para": pose_para, "roi": np.array([[lo[0], lo[1], hi[0], hi[1]]]),
           "Shape_Para": np.zeros((199, 1)), "Exp_Para": np.zeros((29, 1))}
    if aflw:
        pt2d = landmarks[list(AFLW_21)].T.copy()  # (2, 21) sparse AFLW markup
        pt2d[:, 10] = -1.0  # AFLW2000 marks missing points with negative values
        mat["pt2d"] = pt2d
        mat["pt3d_68"] = np.vstack([landmarks.T, np.zeros((1, 68))])
    else:
        mat["pt2d"] = landmarks.T  # (2, 68)
    scipy.io.savemat(path, mat)


def write_aflw2000(out: Path, n: int, seed: int) -> Path:
    """The writer of the aflw2000 layout (``synth export --like aflw2000``): about n synthetic samples under out."""
    import torch
    from ..synthetic.export import Faces, save_image, to_uint8
    from ..synthetic.renderer import project_landmarks
    root = out / "AFLW2000"
    root.mkdir(parents=True, exist_ok=True)
    faces = Faces(seed, max(2, n), "aflw2000")
    pose = (torch.rand(n, 3, generator=faces.g) * 2 - 1) * torch.tensor([75.0, 40.0, 35.0])
    if n >= 2:
        pose[-1, 0] = 105.0  # one sample beyond the |angle| <= 99 filter (datasets.md §6 fixture recipe)
    emo = torch.randint(7, (n,), generator=faces.g)
    imgs = to_uint8(faces.render(torch.arange(n) % len(faces.ident["shape"]), 450, emotion=emo, pose=pose))
    marks = project_landmarks(faces.last_factors, 450).numpy()
    ids = 2 + torch.cumsum(torch.randint(1, 6, (n,), generator=faces.g), 0) - 1  # non-contiguous ids from 2
    for i in range(n):
        stem = f"image{int(ids[i]):05d}"
        save_image(imgs[i], root / f"{stem}.jpg")
        _pose_mat(root / f"{stem}.mat", *pose[i].tolist(), landmarks=marks[i], aflw=True)
    return root


def write_300wlp(out: Path, n: int, seed: int) -> Path:
    """The writer of the 300wlp layout (``synth export --like 300wlp``): about n synthetic samples under out."""
    import torch
    from ..synthetic.export import Faces, save_image, to_uint8
    from ..synthetic.renderer import project_landmarks
    root = out / "300W_LP"
    per = max(1, n // (2 * len(W300LP_SUBSETS)))
    faces = Faces(seed, max(2, n), "300wlp")
    total = per * len(W300LP_SUBSETS)
    pose = (torch.rand(total, 3, generator=faces.g) * 2 - 1) * torch.tensor([80.0, 40.0, 35.0])
    emo = torch.randint(7, (total,), generator=faces.g)
    imgs = faces.render(torch.arange(total) % len(faces.ident["shape"]), 450, emotion=emo, pose=pose)
    normal, flipped = to_uint8(imgs), to_uint8(imgs.flip(-1))
    marks = project_landmarks(faces.last_factors, 450).numpy()
    marks_flip = marks * np.array([-1.0, 1.0]) + np.array([450.0, 0.0])
    for s, sub in enumerate(W300LP_SUBSETS):
        for j in range(per):
            i = s * per + j
            stem = {"AFW": f"AFW_{134212 + 17 * j}_1_{j % 3}", "HELEN": f"HELEN_{2325 + 11 * j}_1_{j % 4}",
                    "IBUG": f"IBUG_image_{3 + j:03d}_1_{j % 2}", "LFPW": f"LFPW_image_train_{1 + j:04d}_{j % 5}"}[sub]
            yaw, pitch, roll = pose[i].tolist()
            for folder, arr, (y, r), lm in ((sub, normal[i], (yaw, roll), marks[i]),
                                            (f"{sub}_Flip", flipped[i], (-yaw, -roll), marks_flip[i])):
                d = root / folder
                d.mkdir(parents=True, exist_ok=True)
                save_image(arr, d / f"{stem}.jpg")  # _Flip dirs reuse the names; flip maps (y,p,r) -> (-y,p,-r)
                _pose_mat(d / f"{stem}.mat", y, pitch, r, landmarks=lm, aflw=False)
    return root


@register_dataset("headpose")
class HeadPose(DatasetFormat):
    folder = "headpose"
    description = "Head pose: 300W-LP (train) and AFLW2000-3D (test) as .jpg + .mat, or FSA-Net .npz files (§6)"
    layout = HEADPOSE_LAYOUT
    sources = {"300w-lp": ("train", {})}  # PCFRL Sec. 4.3.4 pretrains the head-pose task on 300W-LP
    writers = {"aflw2000": write_aflw2000, "300wlp": write_300wlp}
    reader = staticmethod(read_headpose)

    def options(self, params: Any) -> dict[str, Any]:
        return {"train": params.train, "test": params.test, "limit": params.limit,
                "train_list": params.train_list or None, "test_list": params.test_list or None}

    def image_options(self, index: SampleIndex, crop_margin: float | None = None) -> dict[str, Any]:
        """.jpg/.mat images are cropped to the landmark box enlarged by ``crop_margin`` per side (FSA-Net's 0.6
        by default); the .npz crops are cropped already."""
        if index.paths is None or "bbox" not in index.targets:
            return {}
        return {"crop_key": "bbox", "crop_margin": Aflw2000Params.crop_margin if crop_margin is None else crop_margin}
