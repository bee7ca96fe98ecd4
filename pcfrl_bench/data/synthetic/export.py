"""Write small synthetic datasets in the official on-disk layouts of the real ones (datasets.md §1-§9)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pcfrl_bench.errors import ConfigError, UnknownNameError

from .face_model import AU_ALL, DISFA_ALL_AUS, EMOTIONS
from .factors import emotion_aus, make_generator, sample_identities, sample_nuisance, take
from .renderer import project_landmarks, render_faces
from .world import EVAL_ID_OFFSET, POSECLS_PITCHES, POSECLS_YAWS, SyntheticWorld

# datasets.md §2: FER-2013 CSV ids 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral
FER2013_NAMES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
_FER_FROM_RAF = {"Surprise": 5, "Fear": 2, "Disgust": 1, "Happiness": 3, "Sadness": 4, "Anger": 0, "Neutral": 6}
# BU-3DFE expression codes (datasets.md §7); the exported list uses these ids: AN 0, DI 1, FE 2, HA 3, SA 4, SU 5, NE 6
BU3DFE_CODES = ("AN", "DI", "FE", "HA", "SA", "SU", "NE")
_BU_FROM_RAF = {"Surprise": 5, "Fear": 2, "Disgust": 1, "Happiness": 3, "Sadness": 4, "Anger": 0, "Neutral": 6}
# datasets.md §5: the JAA-Net 3-fold partition; exported subjects take two from each part
DISFA_EXPORT_SUBJECTS = ("SN001", "SN002", "SN011", "SN012", "SN003", "SN004")
W300LP_SUBSETS = ("AFW", "HELEN", "IBUG", "LFPW")
_FIRST = ("Ada", "Bo", "Cyra", "Dario", "Elin", "Femi", "Goran", "Hana", "Ivo", "Juno", "Kiri", "Lior", "Mina",
          "Nils", "Oona", "Pavel", "Quin", "Rosa", "Sami", "Tove", "Ugo", "Vera", "Wim", "Xena", "Yusuf", "Zora")
_LAST = ("Abara", "Brandt", "Castell", "Dunmore", "Eklund", "Ferro", "Galvan", "Holt", "Ibsen", "Jovic", "Kato",
         "Lund", "Moreau", "Novak", "Okafor", "Pires", "Quist", "Rahm", "Sato", "Tamm", "Ueda", "Valk", "Wolde")


def _names(n: int) -> list[str]:
    """n distinct LFW-style names 'First_Last' (no spaces)."""
    out = []
    for i in range(n):
        first, last = _FIRST[i % len(_FIRST)], _LAST[(i // len(_FIRST) + 3 * i) % len(_LAST)]
        out.append(f"{first}_{last}" if i < len(_FIRST) * len(_LAST) else f"{first}_{last}{i}")
    return out


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.permute(0, 2, 3, 1).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def _save(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=92) if path.suffix == ".jpg" else Image.fromarray(arr).save(path)


class _Faces:
    """Renders faces of eval-role identities (ids >= EVAL_ID_OFFSET) with chosen pose/emotion."""

    def __init__(self, seed: int, n_people: int, tag: str):
        self.g = make_generator("export", tag, seed)
        self.ident = sample_identities(n_people, make_generator("identities", "eval", seed + 31337))

    def render(self, who: torch.Tensor, size: int, emotion: torch.Tensor | None = None,
               pose: torch.Tensor | None = None, aus: torch.Tensor | None = None) -> torch.Tensor:
        n = len(who)
        f = take(self.ident, who)
        f.update(sample_nuisance(n, self.g))
        if pose is None:
            pose = (torch.rand(n, 3, generator=self.g) * 2 - 1) * torch.tensor([35.0, 20.0, 15.0])
        f["yaw"], f["pitch"], f["roll"] = pose.unbind(1)
        if aus is None:
            emo = emotion if emotion is not None else torch.full((n,), EMOTIONS.index("Neutral"))
            aus = emotion_aus(emo, self.g)
        f["aus"] = aus
        f["noise_seed"] = torch.randint(1 << 30, (n,), generator=self.g)
        self.last_factors = f
        return render_faces(f, size)


def _export_rafdb(out: Path, n: int, seed: int) -> Path:
    root = out / "basic"
    n_test = max(1, n // 5)
    n_train = max(1, n - n_test)
    faces = _Faces(seed, max(2, n // 3), "rafdb")
    labels = torch.randperm(n_train + n_test, generator=faces.g) % 7  # 0..6 in EMOTIONS (= RAF) order
    images = _to_uint8(faces.render(torch.randint(len(faces.ident["shape"]), (len(labels),), generator=faces.g),
                                    100, emotion=labels))
    names = [f"train_{i:05d}" for i in range(1, n_train + 1)] + [f"test_{i:04d}" for i in range(1, n_test + 1)]
    lines = []
    for name, lab, arr in zip(names, labels.tolist(), images):
        lines.append(f"{name}.jpg {lab + 1}")  # §1: '<name>.jpg <label 1..7>'
        _save(arr, root / "Image" / "aligned" / f"{name}_aligned.jpg")
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def _export_fer2013(out: Path, n: int, seed: int) -> Path:
    root = out / "fer2013"
    root.mkdir(parents=True, exist_ok=True)
    faces = _Faces(seed, max(2, n // 3), "fer2013")
    emo = torch.randperm(n, generator=faces.g) % 7
    img = faces.render(torch.randint(len(faces.ident["shape"]), (n,), generator=faces.g), 48, emotion=emo)
    gray = (img.mean(1) * 255).round().clamp(0, 255).to(torch.uint8).view(n, -1).numpy()
    usage = ["Training" if i % 5 < 3 else ("PublicTest" if i % 5 == 3 else "PrivateTest") for i in range(n)]
    with open(root / "fer2013.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])  # §2 header
        for e, px, u in zip(emo.tolist(), gray, usage):
            w.writerow([_FER_FROM_RAF[EMOTIONS[e]], " ".join(map(str, px.tolist())), u])
    return root


def _verification_people(out_seed: int, n_pairs: int, tag: str, cross_pose: bool) -> tuple[
        list[str], list[tuple[int, int, int, int]], torch.Tensor, torch.Tensor]:
    """People, pairs (id_a, img_a, id_b, img_b) with 0-based image numbers, and per-image (who, yaw)."""
    g = make_generator("pairs", tag, out_seed)
    n_people = max(4, n_pairs // 2)
    per_person = 3
    who = torch.arange(n_people).repeat_interleave(per_person)
    side = torch.where(torch.rand(len(who), generator=g) < 0.5, -1.0, 1.0)
    k = torch.arange(len(who)) % per_person
    if cross_pose:  # image 0 near-frontal, images 1-2 strongly turned (CPLFW-like, |yaw diff| >= 30)
        yaw = torch.where(k == 0, (torch.rand(len(who), generator=g) * 2 - 1) * 15,
                          side * (50 + 25 * torch.rand(len(who), generator=g)))
    else:
        yaw = (torch.rand(len(who), generator=g) * 2 - 1) * 30
    pairs = []
    for i in range(n_pairs):
        p = i % n_people
        if i % 2 == 0:
            pairs.append((p, 0, p, 1 + (i // 2) % 2))
        else:
            q = (p + 1 + i % (n_people - 1)) % n_people
            pairs.append((p, 0, q, 1 + i % 2) if cross_pose else (p, 2, q, 0))
    return _names(n_people), pairs, who, yaw


def _export_lfw(out: Path, n: int, seed: int) -> Path:
    root = out
    k = max(1, n // 20)  # 10 folds x (k matched + k mismatched)
    names, pairs, who, yaw = _verification_people(seed, 20 * k, "lfw", cross_pose=False)
    faces = _Faces(seed, len(names), "lfw")
    pose = torch.stack([yaw, torch.zeros_like(yaw), torch.zeros_like(yaw)], 1)
    imgs = _to_uint8(faces.render(who, 250, pose=pose))
    for j, arr in enumerate(imgs):
        name, num = names[int(who[j])], j % 3 + 1
        _save(arr, root / "lfw-deepfunneled" / name / f"{name}_{num:04d}.jpg")
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


def _export_cplfw(out: Path, n: int, seed: int) -> Path:
    root = out
    k = max(1, n // 20)
    names, pairs, who, yaw = _verification_people(seed, 20 * k, "cplfw", cross_pose=True)
    faces = _Faces(seed, len(names), "cplfw")
    pose = torch.stack([yaw, torch.zeros_like(yaw), torch.zeros_like(yaw)], 1)
    imgs = _to_uint8(faces.render(who, 250, pose=pose))
    for j, arr in enumerate(imgs):
        _save(arr, root / "images" / f"{names[int(who[j])]}_{j % 3 + 1}.jpg")  # §4: flat, unpadded index
    pos = [p for p in pairs if p[0] == p[2]]
    neg = [p for p in pairs if p[0] != p[2]]
    lines = []
    for label, block in ((1, pos), (0, neg)):  # §4: all positives first, then all negatives; 2 lines per pair
        for a, i, b, j in block:
            lines += [f"{names[a]}_{i + 1}.jpg {label}", f"{names[b]}_{j + 1}.jpg {label}"]
    (root / "pairs_CPLFW.txt").write_text("\n".join(lines) + "\n")
    return root


def _export_disfa(out: Path, n: int, seed: int) -> Path:
    root = out / "DISFA"
    frames = max(2, n // len(DISFA_EXPORT_SUBJECTS))
    world = SyntheticWorld(seed + 4242, len(DISFA_EXPORT_SUBJECTS), 1, frames, role="eval", max_yaw=15,
                           max_pitch=10, max_roll=8)
    for s, subject in enumerate(DISFA_EXPORT_SUBJECTS):
        t = torch.arange(frames)
        f = world.frame_factors(torch.full((frames,), s), t)
        g = make_generator("disfa-extra", seed, s)
        f["aus"] = (f["aus"] + (torch.rand(f["aus"].shape, generator=g) < 0.08) * 2.0).clamp(0, 5).round()
        imgs = _to_uint8(render_faces(f, 128))
        for i, arr in enumerate(imgs):
            _save(arr, root / "frames" / subject / f"{i}.jpg")  # frames you extracted, 0-based line index
        label_dir = root / "ActionUnit_Labels" / subject
        label_dir.mkdir(parents=True, exist_ok=True)
        for au in DISFA_ALL_AUS:
            vals = f["aus"][:, AU_ALL.index(au)].long().tolist()
            text = "".join(f"{i + 1},{v}\n" for i, v in enumerate(vals))  # §5: 'frame,intensity', 1-based frame
            (label_dir / f"{subject}_au{au}.txt").write_text(text)
    return root


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


def _export_aflw2000(out: Path, n: int, seed: int) -> Path:
    root = out / "AFLW2000"
    root.mkdir(parents=True, exist_ok=True)
    faces = _Faces(seed, max(2, n), "aflw2000")
    pose = (torch.rand(n, 3, generator=faces.g) * 2 - 1) * torch.tensor([75.0, 40.0, 35.0])
    if n >= 2:
        pose[-1, 0] = 105.0  # one sample beyond the |angle| <= 99 filter (datasets.md §6 fixture recipe)
    emo = torch.randint(7, (n,), generator=faces.g)
    imgs = _to_uint8(faces.render(torch.arange(n) % len(faces.ident["shape"]), 450, emotion=emo, pose=pose))
    marks = project_landmarks(faces.last_factors, 450).numpy()
    ids = 2 + torch.cumsum(torch.randint(1, 6, (n,), generator=faces.g), 0) - 1  # non-contiguous ids from 2
    for i in range(n):
        stem = f"image{int(ids[i]):05d}"
        _save(imgs[i], root / f"{stem}.jpg")
        _pose_mat(root / f"{stem}.mat", *pose[i].tolist(), landmarks=marks[i], aflw=True)
    return root


def _export_300wlp(out: Path, n: int, seed: int) -> Path:
    root = out / "300W_LP"
    per = max(1, n // (2 * len(W300LP_SUBSETS)))
    faces = _Faces(seed, max(2, n), "300wlp")
    total = per * len(W300LP_SUBSETS)
    pose = (torch.rand(total, 3, generator=faces.g) * 2 - 1) * torch.tensor([80.0, 40.0, 35.0])
    emo = torch.randint(7, (total,), generator=faces.g)
    imgs = faces.render(torch.arange(total) % len(faces.ident["shape"]), 450, emotion=emo, pose=pose)
    normal, flipped = _to_uint8(imgs), _to_uint8(imgs.flip(-1))
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
                _save(arr, d / f"{stem}.jpg")  # _Flip dirs reuse the names; flip maps (y,p,r) -> (-y,p,-r)
                _pose_mat(d / f"{stem}.mat", y, pitch, r, landmarks=lm, aflw=False)
    return root


def _export_bu3dfe(out: Path, n: int, seed: int) -> Path:
    root = out / "BU-3DFE"
    n_subj = max(2, min(10, n // 7))
    faces = _Faces(seed, n_subj, "bu3dfe")
    n_pose = len(POSECLS_YAWS) * len(POSECLS_PITCHES)
    pose_cls = torch.randperm(n, generator=faces.g) % n_pose
    emo = torch.randint(7, (n,), generator=faces.g)
    who = torch.arange(n) % n_subj
    pose = torch.stack([torch.tensor(POSECLS_YAWS)[pose_cls // len(POSECLS_PITCHES)],
                        torch.tensor(POSECLS_PITCHES)[pose_cls % len(POSECLS_PITCHES)], torch.zeros(n)], 1)
    imgs = _to_uint8(faces.render(who, 128, emotion=emo, pose=pose))
    subjects = [("F" if s % 2 == 0 else "M") + f"{s // 2 + 1:04d}" for s in range(n_subj)]
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for i in range(n):
        subj, code = subjects[int(who[i])], BU3DFE_CODES[_BU_FROM_RAF[EMOTIONS[int(emo[i])]]]
        level = "00" if code == "NE" else f"{1 + i % 4:02d}"
        rel = f"{subj}/{subj}_{code}{level}WH_F2D_pose{int(pose_cls[i]):02d}.png"
        _save(imgs[i], root / rel)
        split = "test" if int(who[i]) >= n_subj - max(1, n_subj // 4) else "train"  # subject-exclusive split
        lines[split].append(f"{rel},{BU3DFE_CODES.index(code)},{int(pose_cls[i])}")  # §7: path,exp,pose
    for split, ls in lines.items():
        (root / f"{split}.txt").write_text("\n".join(ls) + ("\n" if ls else ""))
    return root


def _export_voxceleb(out: Path, n: int, seed: int) -> Path:
    root = out / "VoxCeleb"
    frames = 4
    n_clips = max(1, n // frames)
    n_ids = max(1, min(n_clips, (n_clips + 3) // 4))
    cpi = -(-n_clips // n_ids)
    world = SyntheticWorld(seed + 777, n_ids, cpi, frames, role="eval")
    clips = torch.arange(world.n_clips).repeat_interleave(frames)
    imgs = _to_uint8(world.render(clips, torch.arange(frames).repeat(world.n_clips), 128)[0])
    lines = []
    for c in range(world.n_clips):
        ident = f"id{10001 + c // cpi}"
        video = f"Y{c // cpi:04d}v{(c % cpi) // 2:03d}Qz"  # 11-character YouTube-like id
        clip = f"{(c % cpi) % 2 + 1:05d}"
        for t in range(frames):
            _save(imgs[c * frames + t], root / ident / video / clip / f"{t + 1:04d}.jpg")
        if f"{ident}/{video}" not in lines:
            lines.append(f"{ident}/{video}")
    (root / "vox_train_list.txt").write_text("\n".join(lines) + "\n")
    return root


EXPORTERS: dict[str, Callable[[Path, int, int], Path]] = {
    "rafdb": _export_rafdb, "fer2013": _export_fer2013, "lfw": _export_lfw, "cplfw": _export_cplfw,
    "disfa": _export_disfa, "aflw2000": _export_aflw2000, "300wlp": _export_300wlp, "bu3dfe": _export_bu3dfe,
    "voxceleb": _export_voxceleb,
}


def export_like(like: str, out_dir: Path, n: int, seed: int) -> Path:
    """Write about n synthetic samples under out_dir in `like`'s official layout; return the dataset root.

    Roots: rafdb -> out/basic, fer2013 -> out/fer2013, lfw -> out (lfw-deepfunneled/, pairs.txt; n = pairs),
    cplfw -> out (images/, pairs_CPLFW.txt; n = pairs), disfa -> out/DISFA (frames/ + ActionUnit_Labels/),
    aflw2000 -> out/AFLW2000, 300wlp -> out/300W_LP (n split over 4 subsets and their _Flip twins),
    bu3dfe -> out/BU-3DFE (train.txt/test.txt 'path,exp,pose'), voxceleb -> out/VoxCeleb (id/video/clip/frame).
    All people are eval-role identities (never pretraining ones).
    """
    if like not in EXPORTERS:
        raise UnknownNameError("dataset layout", like, EXPORTERS)
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return EXPORTERS[like](out_dir, n, seed)


__all__ = ["BU3DFE_CODES", "EVAL_ID_OFFSET", "EXPORTERS", "FER2013_NAMES", "export_like"]
