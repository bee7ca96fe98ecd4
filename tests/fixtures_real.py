"""Writers of tiny fixtures in the official on-disk layouts of datasets.md (reusable by end-to-end tests).

Every writer takes the dataset root to create and returns a dict of facts the tests check against.
Images are small (default 8x8) solid-colour-plus-gradient RGB files so decoding is fast.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, size: int = 8, seed: int = 0, fmt: str | None = None) -> np.ndarray:
    """Write a deterministic RGB image (PNG-exact or JPEG) and return its HWC uint8 array."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)
    return arr


# ------------------------------------------------------------------------------------------------ RAF-DB §1


def write_rafdb(root: Path, per_class: int = 1, size: int = 8) -> dict:
    """basic/EmoLabel/list_patition_label.txt with `per_class` train and test lines per label 1..7."""
    lines, train_labels, test_labels = [], [], []
    n = 0
    for label in range(1, 8):
        for _ in range(per_class):
            n += 1
            lines.append(f"train_{n:05d}.jpg {label}")
            lines.append(f"test_{n:04d}.jpg {label}")
            write_image(root / "basic/Image/aligned" / f"train_{n:05d}_aligned.jpg", size, seed=n)
            write_image(root / "basic/Image/aligned" / f"test_{n:04d}_aligned.jpg", size, seed=100 + n)
            train_labels.append(label - 1)
            test_labels.append(label - 1)
    label_file = root / "basic/EmoLabel/list_patition_label.txt"
    label_file.parent.mkdir(parents=True, exist_ok=True)
    label_file.write_text("\n".join(lines) + "\n")
    return {"label_file": label_file, "train_labels": train_labels, "test_labels": test_labels}


# ---------------------------------------------------------------------------------------------- FER-2013 §2


FER_ROWS = [  # (emotion, Usage)
    (0, "Training"), (3, "Training"), (6, "Training"), (5, "Training"),
    (1, "PublicTest"), (4, "PublicTest"),
    (2, "PrivateTest"), (6, "PrivateTest"), (3, "PrivateTest"),
]


def fer_pixels(i: int) -> np.ndarray:
    return ((np.arange(48 * 48) * (i + 1)) % 256).astype(np.uint8)


def write_fer2013_csv(root: Path, icml: bool = False) -> dict:
    """fer2013/fer2013.csv (header emotion,pixels,Usage; quoted pixel field) or the icml_face_data.csv twin."""
    if icml:
        path = root / "icml_face_data.csv"
        rows = ["emotion, Usage, pixels"] + [
            f"{e},{u},{' '.join(map(str, fer_pixels(i)))}" for i, (e, u) in enumerate(FER_ROWS)
        ]
    else:
        path = root / "fer2013" / "fer2013.csv"
        rows = ["emotion,pixels,Usage"] + [
            f'{e},"{" ".join(map(str, fer_pixels(i)))}",{u}' for i, (e, u) in enumerate(FER_ROWS)
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return {"path": path, "rows": FER_ROWS}


FER_FOLDER_FILES = [  # (folder, class folder, file name)
    ("train", "angry", "Training_10.jpg"), ("train", "neutral", "Training_11.jpg"),
    ("train", "sad", "Training_12.jpg"), ("train", "surprise", "Training_13.jpg"),
    ("test", "happy", "PublicTest_20.jpg"), ("test", "neutral", "PrivateTest_21.jpg"),
    ("test", "disgust", "PrivateTest_22.jpg"),
]


def write_fer2013_folders(root: Path, size: int = 8) -> dict:
    """Kaggle msambare layout train/<class>/Training_<id>.jpg, test/<class>/{Public,Private}Test_<id>.jpg."""
    for i, (folder, cls, name) in enumerate(FER_FOLDER_FILES):
        write_image(root / folder / cls / name, size, seed=i)
    return {"files": FER_FOLDER_FILES}


# ----------------------------------------------------------------------------------------------------- LFW §3


LFW_PEOPLE = {"Ann_A": 3, "Bob_B": 2, "Cid_C": 2, "Dee_D": 1, "Eve_E": 2}


def write_lfw(root: Path, image_dir: str = "lfw-deepfunneled", size: int = 8) -> dict:
    """pairs.txt '10\\t1' + per fold 1 matched and 1 mismatched tab-separated line; <Name>/<Name>_0001.jpg."""
    for k, (name, n) in enumerate(LFW_PEOPLE.items()):
        for i in range(1, n + 1):
            write_image(root / image_dir / name / f"{name}_{i:04d}.jpg", size, seed=10 * k + i)
    names = list(LFW_PEOPLE)
    matched_people = [p for p in names if LFW_PEOPLE[p] >= 2]
    lines = ["10\t1"]
    for fold in range(10):
        p = matched_people[fold % len(matched_people)]
        lines.append(f"{p}\t1\t2")
        a, b = names[fold % 5], names[(fold + 1) % 5]
        lines.append(f"{a}\t1\t{b}\t1")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return {"pairs_file": root / "pairs.txt", "n_pairs": 20}


# -------------------------------------------------------------------------------------------- CPLFW/CALFW §4


def write_cplfw(root: Path, n_pos: int = 10, n_neg: int = 10, size: int = 8, calfw: bool = False) -> dict:
    """Flat images/ folder + pairs file, 2 lines per pair, ALL positives first then ALL negatives (the trap).

    CALFW variant: zero-padded names, pairs_CALFW.txt, positive labels written as 2 (any non-zero = same).
    """
    def fname(person: int, k: int) -> str:
        return f"Per_{person}_{k:04d}.jpg" if calfw else f"Per_{person}_{k}.jpg"

    lines = []
    pos_label = "2" if calfw else "1"
    for i in range(n_pos):
        lines += [f"{fname(i, 1)} {pos_label}", f"{fname(i, 2)} {pos_label}"]
    for i in range(n_neg):
        lines += [f"{fname(i, 1)} 0", f"{fname((i + 1) % max(n_pos, 1), 2)} 0"]
    people = max(n_pos, n_neg)
    for i in range(people):
        for k in (1, 2):
            write_image(root / "images" / fname(i, k), size, seed=3 * i + k)
    pairs = root / ("pairs_CALFW.txt" if calfw else "pairs_CPLFW.txt")
    pairs.write_text("\n".join(lines) + "\n")
    return {"pairs_file": pairs, "n_pairs": n_pos + n_neg}


# --------------------------------------------------------------------------------------------------- DISFA §5


DISFA_ALL_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def disfa_intensity(subject: int, au: int, t: int) -> int:
    return (subject + au + t) % 6


def write_disfa(root: Path, subjects=(1, 2, 3), n_frames: int = 6, size: int = 8, frames: str = "frames") -> dict:
    """ActionUnit_Labels/SNxxx/SNxxx_auN.txt ('frame,intensity', first frame number 1) for all 12 AUs and a
    user-frames tree <root>/<frames>/SNxxx/<t>.jpg with 0-based t."""
    for s in subjects:
        sn = f"SN{s:03d}"
        for au in DISFA_ALL_AUS:
            f = root / "ActionUnit_Labels" / sn / f"{sn}_au{au}.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(f"{t + 1},{disfa_intensity(s, au, t)}\n" for t in range(n_frames)))
        for t in range(n_frames):
            write_image(root / frames / sn / f"{t}.jpg", size, seed=100 * s + t)
    return {"subjects": list(subjects), "n_frames": n_frames}


# ----------------------------------------------------------------------------------------------- head pose §6


def write_headpose_mat(folder: Path, samples: list[tuple[str, tuple[float, float, float]]], size: int = 16) -> None:
    """<folder>/<name>.jpg + <name>.mat with Pose_Para = [pitch, yaw, roll, tx, ty, tz, s] in RADIANS from
    (yaw, pitch, roll) degrees; pt2d 2x21 with one negative 'missing' point."""
    from scipy.io import savemat

    for i, (name, (yaw, pitch, roll)) in enumerate(samples):
        write_image(folder / f"{name}.jpg", size, seed=i)
        pose = np.radians([[pitch, yaw, roll]])
        pose_para = np.concatenate([pose, [[1.0, 2.0, 3.0, 0.001]]], axis=1)
        pts = np.stack([np.linspace(2, 10, 21), np.linspace(3, 12, 21)])
        pts[:, 0] = -1.0
        (folder / f"{name}.mat").parent.mkdir(parents=True, exist_ok=True)
        savemat(folder / f"{name}.mat", {"Pose_Para": pose_para, "pt2d": pts, "pt3d_68": np.zeros((3, 68))})


HEADPOSE_TRAIN = [
    ("AFW/AFW_134212_1_0", (10.0, -5.0, 2.0)),
    ("AFW_Flip/AFW_134212_1_0", (-10.0, -5.0, -2.0)),
    ("HELEN/HELEN_1_1_0", (98.5, 1.0, 0.0)),
    ("IBUG/IBUG_image_003_1_0", (30.0, 100.0, 0.0)),  # |pitch| > 99 -> filtered
]
HEADPOSE_TEST = [
    ("image00002", (20.0, 10.0, -3.0)),
    ("image00004", (-45.0, 0.0, 5.0)),
    ("image00006", (120.0, 0.0, 0.0)),  # |yaw| > 99 -> filtered
]


def write_headpose(root: Path) -> dict:
    """300W_LP/<SUB>/<name>.jpg+.mat (with a landmarks/ folder to ignore) and AFLW2000/image*.jpg+.mat."""
    write_headpose_mat(root / "300W_LP", HEADPOSE_TRAIN)
    write_headpose_mat(root / "AFLW2000", HEADPOSE_TEST)
    lm = root / "300W_LP" / "landmarks" / "AFW"
    lm.mkdir(parents=True, exist_ok=True)
    from scipy.io import savemat

    savemat(lm / "AFW_134212_1_0_pts.mat", {"pts_2d": np.zeros((68, 2))})
    return {"train": HEADPOSE_TRAIN, "test": HEADPOSE_TEST}


def write_headpose_npz(path: Path, poses: list[tuple[float, float, float]], size: int = 8) -> np.ndarray:
    """FSA-Net npz: image (N,H,W,3) uint8 **BGR**, pose (N,3) (yaw, pitch, roll) degrees, img_size. Returns the
    RGB images."""
    rng = np.random.default_rng(len(poses))
    rgb = rng.integers(0, 256, size=(len(poses), size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, image=rgb[..., ::-1], pose=np.asarray(poses, np.float32), img_size=size)
    return rgb


# ------------------------------------------------------------------------------------------------- BU-3DFE §7


def write_bu3dfe(root: Path, size: int = 8) -> dict:
    """train.txt / test.txt with 'relative_path,expression,pose' lines and the images they name."""
    train = [(f"F0001/F0001_AN01WH_F2D_p{p}.png", 0, p) for p in range(3)] + [
        (f"M0002/M0002_HA02BL_F2D_p{p}.png", 3, p) for p in range(3)
    ]
    test = [(f"F0003/F0003_SU03AE_F2D_p{p}.png", 5, p) for p in (0, 2)]
    for split, rows in (("train", train), ("test", test)):
        for i, (rel, _, _) in enumerate(rows):
            write_image(root / rel, size, seed=i)
        (root / f"{split}.txt").write_text("".join(f"{r},{e},{p}\n" for r, e, p in rows))
    return {"train": train, "test": test}


# --------------------------------------------------------------------------------------------- STL-10 §8


def write_stl10(root: Path, n_train: int = 4, n_test: int = 3, n_unlabeled: int = 2) -> dict:
    """stl10_binary/*.bin written the official way: per image, each channel plane COLUMN-major, i.e. the HWC
    image `img` is stored as img.transpose(2, 1, 0).tobytes(); labels 1..10."""
    base = root / "stl10_binary"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    out = {}
    for split, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        imgs = rng.integers(0, 256, size=(n, 96, 96, 3), dtype=np.uint8)
        (base / f"{split}_X.bin").write_bytes(b"".join(img.transpose(2, 1, 0).tobytes() for img in imgs))
        out[split] = {"images": imgs}
        if split != "unlabeled":
            labels = (np.arange(n) % 10 + 1).astype(np.uint8)  # 1..10 on disk
            (base / f"{split}_y.bin").write_bytes(labels.tobytes())
            out[split]["labels"] = labels.astype(np.int64) - 1
    names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (base / "class_names.txt").write_text("\n".join(names) + "\n")
    (base / "fold_indices.txt").write_text("\n".join(" ".join(str(j) for j in range(i % n_train, n_train, 2))
                                                   for i in range(10)) + "\n")
    return out


# -------------------------------------------------------------------------------------------- CIFAR-10 §8


def write_cifar10(root: Path, rows: int = 3, bytes_keys: bool = True) -> dict:
    """cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta; bytes keys (as Python-2 pickles load)
    or str keys."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    images, labels = {"train": [], "test": []}, {"train": [], "test": []}
    for i, name in enumerate([f"data_batch_{j}" for j in range(1, 6)] + ["test_batch"]):
        split = "test" if name == "test_batch" else "train"
        hwc = rng.integers(0, 256, size=(rows, 32, 32, 3), dtype=np.uint8)
        data = hwc.transpose(0, 3, 1, 2).reshape(rows, 3072)  # R plane, G plane, B plane, row-major
        lab = [(i + r) % 10 for r in range(rows)]
        with open(base / name, "wb") as f:
            pickle.dump({key("data"): data, key("labels"): lab, key("batch_label"): key(name)}, f)
        images[split].append(hwc)
        labels[split] += lab
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({key("label_names"): [key(n) for n in names], key("num_cases_per_batch"): rows}, f)
    return {s: {"images": np.concatenate(images[s]), "labels": np.asarray(labels[s])} for s in images}


# ------------------------------------------------------------------------------------------ VoxCeleb §9


def write_voxceleb(root: Path, ids: int = 2, videos: int = 2, clips: int = 2, frames: int = 4, size: int = 8) -> dict:
    """<root>/<identity>/<video>/<clip>/<frame>.jpg plus a list file of '<identity>/<video>' lines."""
    listed = []
    for i in range(ids):
        for v in range(videos):
            rel = f"id1000{i}/vid{v}"
            listed.append(rel)
            for c in range(clips):
                for fr in range(frames):
                    write_image(root / rel / f"{c + 1:05d}" / f"frame{fr + 1:04d}.jpg", size, seed=fr)
    (root / "train_list.txt").write_text("\n".join(listed[:-1]) + "\n")  # leave the last video out
    return {"n_clips": ids * videos * clips, "n_listed_clips": (ids * videos - 1) * clips, "frames": frames}


def write_imagefolder(root: Path, classes=("cat", "dog"), per_class: int = 2, size: int = 8) -> dict:
    for c in classes:
        for i in range(per_class):
            write_image(root / c / f"{i}.png", size, seed=i)
    return {"classes": sorted(classes), "n": len(classes) * per_class}
