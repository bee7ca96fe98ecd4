"""Tests of the synthetic face world: determinism, geometry, factor recoverability, splits, exports."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F
from PIL import Image

from pcfrl_bench.data.synthetic import (
    AU_ALL, DISFA_AUS, EMOTIONS, EVAL_ID_OFFSET, SyntheticClips, SyntheticWorld, emotion_aus, render_faces,
    sample_factors, synthetic_task_data,
)
from pcfrl_bench.data.readers import export_like
from pcfrl_bench.data.synthetic.face_model import DISFA_ALL_AUS
from pcfrl_bench.data.synthetic.factors import make_generator
from pcfrl_bench.errors import UnknownNameError



def _gray(images: torch.Tensor, size: int = 16) -> np.ndarray:
    return F.adaptive_avg_pool2d(images, size).flatten(1).numpy()


def _random_features(images: torch.Tensor) -> np.ndarray:
    """Fixed random 5x5 conv + ReLU + 8x8 average pooling of mean-centred images (a random-feature probe)."""
    w = torch.randn(16, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    h = F.relu(F.conv2d(images - images.mean((2, 3), keepdim=True), w, padding=2))
    return F.adaptive_avg_pool2d(h, 8).flatten(1).numpy()


def test_same_seed_bit_identical_and_different_seeds_differ():
    a = render_faces(sample_factors(6, seed=3))
    b = render_faces(sample_factors(6, seed=3))
    c = render_faces(sample_factors(6, seed=4))
    assert torch.equal(a, b)
    assert (a - c).abs().mean() > 0.02
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    f = sample_factors(3, seed=0)
    assert torch.equal(render_faces(f, generator=g1), render_faces(f, generator=g2))


@pytest.mark.parametrize("size", [32, 64, 100])
def test_shapes_and_range(size):
    img = render_faces(sample_factors(4, seed=1), image_size=size)
    assert img.shape == (4, 3, size, size) and img.dtype == torch.float32
    assert img.min() >= 0 and img.max() <= 1
    assert img.std() > 0.05


def _symmetric_factors(yaw: float, pitch: float, roll: float) -> dict[str, torch.Tensor]:
    f = sample_factors(4, seed=11)
    f["yaw"], f["pitch"], f["roll"] = (torch.full((4,), v) for v in (yaw, pitch, roll))
    f["light"][:, 0] = 0.0  # light azimuth 0 is mirror-symmetric
    f["bg_grad"][:, 0] = 0.0  # horizontal gradient would flip
    f["bg_tex"][:] = 0.0
    f["tx"][:] = 0.0
    f["noise"][:] = 0.0
    return f


def test_horizontal_flip_maps_pose_to_mirrored_pose():
    left = render_faces(_symmetric_factors(40.0, 10.0, 15.0))
    right = render_faces(_symmetric_factors(-40.0, 10.0, -15.0))
    diff = (left.flip(-1) - right).abs()
    assert diff.mean() < 0.01  # same image up to z-buffer ties / pixel-boundary rounding
    other = render_faces(_symmetric_factors(40.0, 10.0, 15.0))
    assert (other.flip(-1) - left).abs().mean() > 5 * diff.mean()  # an unflipped turned head is not symmetric


def test_turned_head_is_not_a_shifted_frontal_head():
    f = _symmetric_factors(0.0, 0.0, 0.0)
    frontal = render_faces(f)
    f["yaw"][:] = 60.0
    turned = render_faces(f)
    face = (frontal - f["bg"][:, :, None, None]).abs().sum(1) > 0.05
    # the far half of a turned face shrinks: fewer face pixels right of the midline than left, or vice versa
    t_face = (turned - f["bg"][:, :, None, None]).abs().sum(1) > 0.05
    assert face.sum() > 0 and (frontal - turned).abs().mean() > 0.03
    assert t_face[:, :, :32].sum() != t_face[:, :, 32:].sum()


def _near_frontal(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    f = sample_factors(n, seed)
    g = torch.Generator().manual_seed(seed)
    for key, lim in (("yaw", 15.0), ("pitch", 10.0), ("roll", 5.0)):
        f[key] = (torch.rand(n, generator=g) * 2 - 1) * lim
    return render_faces(f, 64), f["emotion"]


def test_linear_probe_recovers_yaw_sign_and_expression():
    from sklearn.linear_model import RidgeClassifier

    tr, te = synthetic_task_data("hpe", "train", 32, 400, 0), synthetic_task_data("hpe", "test", 32, 200, 0)
    keep_tr, keep_te = tr["angles"][:, 0].abs() > 30, te["angles"][:, 0].abs() > 30
    clf = RidgeClassifier(alpha=10.0).fit(_random_features(tr["images"])[keep_tr], tr["angles"][keep_tr, 0] > 0)
    acc = clf.score(_random_features(te["images"])[keep_te], te["angles"][keep_te, 0] > 0)
    assert acc > 0.7, acc  # binary, ~120 test faces: chance 0.5 +- 0.05
    (xa, ya), (xb, yb) = _near_frontal(600, 1), _near_frontal(300, 2)
    crop = (slice(None), slice(None), slice(12, 56), slice(12, 52))  # the face; identity/light/bg still vary
    clf = RidgeClassifier(alpha=100.0).fit(_random_features(xa[crop]), ya)
    acc = clf.score(_random_features(xb[crop]), yb)
    assert acc > 0.25, acc  # 7 classes: chance 1/7 +- 0.02


def test_cross_pose_verification_above_chance_not_trivial():
    from sklearn.metrics import roc_auc_score

    d = synthetic_task_data("fr", "test", 32, 200, 0)
    x = torch.tensor(_gray(d["images"][:, :, 8:24, 8:24], 8))
    x = F.normalize(x - x.mean(1, keepdim=True), dim=1)
    score = (x[d["pairs"][:, 0]] * x[d["pairs"][:, 1]]).sum(1)
    auc = roc_auc_score(d["same"].numpy(), score.numpy())
    assert 0.55 < auc < 0.99, auc


def test_fr_pairs_protocol():
    d = synthetic_task_data("fr", "test", 16, 45, 1)
    p = d["pairs"].shape[0]
    assert p == 40 and d["images"].shape[0] == 2 * p
    ids = d["identities"][d["pairs"]]
    assert torch.equal(ids[:, 0] == ids[:, 1], d["same"])
    for k in range(10):
        in_k = d["fold"] == k
        assert in_k.sum() == 4 and d["same"][in_k].sum() == 2
        others = set(ids[~in_k].flatten().tolist())
        assert not set(ids[in_k].flatten().tolist()) & others  # disjoint identities per fold
    yaws = d["yaws"][d["pairs"]]
    assert ((yaws[:, 0] - yaws[:, 1]).abs() >= 30).all()


def test_au_labels_follow_emotion_prototypes():
    g = make_generator("test-au", 0)
    emo = torch.arange(7).repeat(200)
    aus = emotion_aus(emo, g)
    mean = torch.stack([aus[emo == e].mean(0) for e in range(7)])
    col = {a: AU_ALL.index(a) for a in AU_ALL}
    hap, sur, sad, ang, neu = (EMOTIONS.index(e) for e in ("Happiness", "Surprise", "Sadness", "Anger", "Neutral"))
    assert mean[hap, col[12]] > 3 and mean[hap, col[6]] > 2.5 and mean[neu, col[12]] < 0.5
    assert mean[sur, col[26]] > 2.5 and mean[sur, col[2]] > 2.5 and mean[ang, col[4]] > 3
    assert mean[sad, col[15]] > 2.5 and mean[neu].max() < 0.5
    assert (aus >= 0).all() and (aus <= 5).all()
    # extra AUs: some Neutral faces carry an AU, so AUs are not a function of the emotion
    assert 0.2 < (aus[emo == neu] > 0).any(1).float().mean() < 0.6
    d = synthetic_task_data("au", "train", 32, 60, 0)
    assert d["aus"].shape == (60, 8) and torch.equal(d["aus"], d["aus"].round())
    assert set(d["folds"].tolist()) == {0, 1, 2} and len(DISFA_AUS) == 8
    subj_fold = {(s, f) for s, f in zip(d["subjects"].tolist(), d["folds"].tolist())}
    assert len({s for s, _ in subj_fold}) == len(subj_fold)  # each subject in exactly one fold


def test_eval_identities_disjoint_from_pretraining():
    world = SyntheticWorld(0, 20, 2, 4)
    assert world.identity_ids.max() < EVAL_ID_OFFSET
    for kind in ("fer", "hpe", "posecls"):
        d = synthetic_task_data(kind, "train", 16, 20, 0)
        t = synthetic_task_data(kind, "test", 16, 20, 0)
        assert (d["identities"] >= EVAL_ID_OFFSET).all()
        assert not set(d["identities"].tolist()) & set(t["identities"].tolist())  # subject-exclusive split
    ev = SyntheticWorld(0, 20, 2, 4, role="eval")
    assert (ev.identity_ids >= EVAL_ID_OFFSET).all()
    assert not torch.isclose(ev.identities["shape"][:, None], world.identities["shape"][None]).all(-1).any()


def test_clip_dataset_items_epochs_and_batching():
    world = SyntheticWorld(5, 6, 2, 10)
    ds = SyntheticClips(world, image_size=32)
    assert len(ds) == 12
    items = ds.__getitems__([0, 3, 7])
    assert items[1]["image"].shape == (3, 32, 32) and items[1]["aus"].shape == (8,)
    assert items[1]["clip"] == 3 and items[1]["identity"] == 1 and 0 <= items[1]["frame"] < 10
    single = ds[3]
    assert (single["image"] - items[1]["image"]).abs().mean() < 1e-3
    assert single["yaw"] == pytest.approx(items[1]["yaw"])
    frames0 = ds.frames.clone()
    ds.set_epoch(1)
    assert not torch.equal(frames0, ds.frames)
    ds2 = SyntheticClips(SyntheticWorld(5, 6, 2, 10), image_size=32)
    ds2.set_epoch(1)
    assert torch.equal(ds.frames, ds2.frames)
    assert torch.equal(ds.__getitems__([2, 5])[0]["image"], ds2.__getitems__([2, 5])[0]["image"])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["aus"].shape == (4, 8)
    # a clip is one person: frames differ in pose smoothly, identity stays
    f = world.frame_factors(torch.zeros(10, dtype=torch.long), torch.arange(10))
    assert (f["yaw"].diff().abs() < 20).all() and f["identity"].unique().numel() == 1


# ---------------------------------------------------------------- exports in the official layouts (datasets.md)

def _check_rafdb(root):
    lines = (root / "EmoLabel" / "list_patition_label.txt").read_text().splitlines()
    assert any(ln.startswith("train_") for ln in lines) and any(ln.startswith("test_") for ln in lines)
    for ln in lines:
        assert re.fullmatch(r"(train_\d{5}|test_\d{4})\.jpg [1-7]", ln), ln
        img = Image.open(root / "Image" / "aligned" / ln.split()[0].replace(".jpg", "_aligned.jpg"))
        assert img.size == (100, 100) and img.mode == "RGB"


def _check_fer2013(root):
    with open(root / "fer2013.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["emotion", "pixels", "Usage"] and len(rows) > 1
    for emotion, pixels, usage in rows[1:]:
        px = [int(v) for v in pixels.split(" ")]
        assert 0 <= int(emotion) <= 6 and len(px) == 48 * 48 and 0 <= min(px) and max(px) <= 255
        assert usage in {"Training", "PublicTest", "PrivateTest"}


def _check_lfw(root):
    lines = (root / "pairs.txt").read_text().splitlines()
    assert lines[0] == "10\t1" and len(lines) == 21
    for k, ln in enumerate(lines[1:]):
        f = ln.split("\t")
        assert len(f) == (3 if k % 2 == 0 else 4)  # per set: matched lines, then mismatched
        people = [(f[0], f[1]), (f[0], f[2])] if len(f) == 3 else [(f[0], f[1]), (f[2], f[3])]
        for name, num in people:
            assert Image.open(root / "lfw-deepfunneled" / name / f"{name}_{int(num):04d}.jpg").size == (250, 250)


def _check_cplfw(root):
    lines = (root / "pairs_CPLFW.txt").read_text().splitlines()
    assert len(lines) == 40
    labels = [int(ln.split(" ")[1]) for ln in lines]
    assert labels == [1] * 20 + [0] * 20  # 2 lines per pair, all positives first
    for ln in lines:
        name = ln.split(" ")[0]
        assert re.fullmatch(r"[A-Za-z]+_[A-Za-z]+_\d+\.jpg", name) and (root / "images" / name).is_file()


def _check_disfa(root):
    subjects = sorted(p.name for p in (root / "ActionUnit_Labels").iterdir())
    assert len(subjects) == 6 and all(re.fullmatch(r"SN\d{3}", s) for s in subjects)
    for s in subjects:
        n_frames = len(list((root / "frames" / s).glob("*.jpg")))
        for au in DISFA_ALL_AUS:
            rows = (root / "ActionUnit_Labels" / s / f"{s}_au{au}.txt").read_text().splitlines()
            assert len(rows) == n_frames
            assert all(int(r.split(",")[0]) == i + 1 and 0 <= int(r.split(",")[1]) <= 5 for i, r in enumerate(rows))
        assert (root / "frames" / s / f"{n_frames - 1}.jpg").is_file()


def _read_pose(mat_path):
    p = scipy.io.loadmat(mat_path)["Pose_Para"]
    assert p.shape == (1, 7)
    return np.degrees(p[0, [1, 0, 2]])  # yaw, pitch, roll


def _check_aflw2000(root):
    stems = sorted(p.stem for p in root.glob("*.jpg"))
    assert stems and all(re.fullmatch(r"image\d{5}", s) for s in stems)
    poses = np.stack([_read_pose(root / f"{s}.mat") for s in stems])
    assert (np.abs(poses) > 99).any(axis=1).sum() == 1  # one sample for the |angle| <= 99 filter
    assert np.abs(poses[:, 1]).max() <= 40.01 and Image.open(root / f"{stems[0]}.jpg").size == (450, 450)
    assert scipy.io.loadmat(root / f"{stems[0]}.mat")["pt2d"].shape == (2, 21)


def _check_300wlp(root):
    subs = sorted(p.name for p in root.iterdir())
    assert subs == sorted(["AFW", "AFW_Flip", "HELEN", "HELEN_Flip", "IBUG", "IBUG_Flip", "LFPW", "LFPW_Flip"])
    for sub in ("AFW", "HELEN", "IBUG", "LFPW"):
        for jpg in (root / sub).glob("*.jpg"):
            y, p, r = _read_pose(jpg.with_suffix(".mat"))
            yf, pf, rf = _read_pose(root / f"{sub}_Flip" / f"{jpg.stem}.mat")  # same name in the _Flip dir
            assert np.allclose([yf, pf, rf], [-y, p, -r])
            a = np.asarray(Image.open(jpg), dtype=float)
            b = np.asarray(Image.open(root / f"{sub}_Flip" / jpg.name), dtype=float)
            assert np.abs(a[:, ::-1] - b).mean() < 3  # JPEG noise only
            assert scipy.io.loadmat(jpg.with_suffix(".mat"))["pt2d"].shape == (2, 68)


def _check_bu3dfe(root):
    subjects = {}
    for split in ("train", "test"):
        for ln in (root / f"{split}.txt").read_text().splitlines():
            path, exp, pose = ln.split(",")
            assert (root / path).is_file() and 0 <= int(exp) <= 6 and 0 <= int(pose) < 15
            subjects.setdefault(split, set()).add(path.split("/")[0])
    assert subjects["train"] and subjects["test"] and not subjects["train"] & subjects["test"]


def _check_voxceleb(root):
    frames = list(root.glob("*/*/*/*.jpg"))
    assert frames and all(re.fullmatch(r"id\d{5}", f.parts[-4]) for f in frames)
    for ln in (root / "vox_train_list.txt").read_text().splitlines():
        assert (root / ln).is_dir()


_CHECKS = {"rafdb": ("basic", _check_rafdb), "fer2013": ("fer2013", _check_fer2013), "lfw": (".", _check_lfw),
           "cplfw": (".", _check_cplfw), "disfa": ("DISFA", _check_disfa), "aflw2000": ("AFLW2000", _check_aflw2000),
           "300wlp": ("300W_LP", _check_300wlp), "bu3dfe": ("BU-3DFE", _check_bu3dfe),
           "voxceleb": ("VoxCeleb", _check_voxceleb)}


@pytest.mark.parametrize("like", sorted(_CHECKS))
def test_export_like_writes_official_layout(like, tmp_path):
    root = export_like(like, tmp_path, 20, 0)
    sub, check = _CHECKS[like]
    assert root == (tmp_path / sub if sub != "." else tmp_path)
    check(root)


def test_export_like_rejects_unknown_layout(tmp_path):
    with pytest.raises(UnknownNameError, match="rafdb"):
        export_like("rafbd", tmp_path, 5, 0)


def test_landmarks_follow_pose_and_preview_grid(tmp_path):
    from pcfrl_bench.data.synthetic.preview import PREVIEW_YAWS, preview_grid
    from pcfrl_bench.data.synthetic.renderer import project_landmarks

    f = _symmetric_factors(0.0, 0.0, 0.0)
    f["yaw"] = torch.tensor([-40.0, 0.0, 40.0, 0.0])
    lm = project_landmarks(f, 64)
    assert lm.shape == (4, 68, 2) and (lm > 0).all() and (lm < 64).all()
    nose_x = lm[:, 30, 0]  # nose tip: positive yaw turns it towards image right
    assert nose_x[0] < nose_x[1] - 3 and nose_x[2] > nose_x[1] + 3
    assert lm[1, 8, 1] > lm[1, 30, 1] > lm[1, 19, 1]  # chin below nose below brow (image rows grow downwards)
    path = preview_grid(tmp_path / "grid.png", n_identities=2, image_size=32, seed=0)
    img = Image.open(path)
    assert img.size == (40 + (len(PREVIEW_YAWS) + len(EMOTIONS)) * 96, 16 + 2 * 96)


def test_large_batches_render_in_chunks_identically(monkeypatch):
    from pcfrl_bench.data.synthetic import renderer

    f = sample_factors(20, seed=8)
    whole = render_faces(f, 32)
    monkeypatch.setattr(renderer, "RENDER_CHUNK", 8)
    assert torch.equal(render_faces(f, 32), whole)
