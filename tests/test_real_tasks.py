"""Real-dataset tasks on tiny fixtures: data located, read through the task class, counted; ``data check``;
pretraining sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import fixtures_real as fx
from pcfrl_bench.cli import main
from pcfrl_bench.config import DataConfig
from pcfrl_bench.data.sources import build_source
from pcfrl_bench.runner import default_task

DISFA_SUBJECTS = (1, 13, 3)  # one subject in each JAA-Net part, so each of the 3 folds tests on one


def make_fixture(task: str, data_root: Path) -> None:
    """Write the fixture of ``task`` in its default folder below ``data_root``."""
    writers = {
        "rafdb": lambda: fx.write_rafdb(data_root / "RAF-DB"),
        "fer2013": lambda: fx.write_fer2013_csv(data_root / "FER2013"),
        "lfw": lambda: fx.write_lfw(data_root / "LFW"),
        "cplfw": lambda: fx.write_cplfw(data_root / "CPLFW"),
        "calfw": lambda: fx.write_cplfw(data_root / "CALFW", calfw=True),
        "disfa": lambda: fx.write_disfa(data_root / "DISFA", subjects=DISFA_SUBJECTS, n_frames=6),
        "aflw2000": lambda: fx.write_headpose(data_root / "headpose"),
        "bu3dfe": lambda: fx.write_bu3dfe(data_root / "BU-3DFE"),
        "stl10": lambda: fx.write_stl10(data_root / "STL10"),
        "cifar10": lambda: fx.write_cifar10(data_root / "CIFAR10"),
    }
    writers[task]()


# task -> (protocol, {split: samples}, classes or None)
EXPECTED = {
    "rafdb": ("classification", {"train": 7, "test": 7}, 7),
    "fer2013": ("classification", {"train": 4, "test": 3}, 7),  # test = PrivateTest rows
    "bu3dfe": ("classification", {"train": 6, "test": 2}, 3),  # pose ids 0..2
    "stl10": ("classification", {"train": 4, "test": 3}, 10),
    "cifar10": ("classification", {"train": 15, "test": 3}, 10),
    "lfw": ("verification", {"test": 9}, None),  # 9 distinct images among the 20 pairs
    "cplfw": ("verification", {"test": 20}, None),
    "calfw": ("verification", {"test": 20}, None),
    "disfa": ("au_detection", {"all": 18}, None),
    "aflw2000": ("head_pose", {"train": 3, "test": 2}, None),  # one of each set beyond ±99°
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_task_reads_its_fixture(tmp_path, name):
    make_fixture(name, tmp_path)
    task = default_task(name, tmp_path)
    available, where = task.availability()
    assert available, where
    protocol, sizes, classes = EXPECTED[name]
    assert task.protocol == protocol
    splits = task.splits(12)
    assert {k: len(v) for k, v in splits.items()} == sizes
    item = next(iter(splits.values()))[0]
    assert item["image"].shape == (3, 12, 12) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    if classes is not None:
        assert task.num_classes == classes and "label" in item
    if protocol == "verification":
        pairs, same, fold = task.pair_lists()
        assert pairs.shape == (20, 2) and same.sum() == 10 and len(np.unique(fold)) == 10
        assert pairs.max() < sizes["test"]
    if protocol == "au_detection":
        assert item["aus"].shape == (8,) and "subject" in item
        subjects = np.asarray([int(splits["all"][i]["subject"]) for i in range(18)])
        folds = task.folds(subjects)
        assert [int(s) for s in subjects[folds == 0][:1]] == [1] and set(subjects[folds == 1]) == {13}
        assert set(subjects[folds == 2]) == {3}
    if protocol == "head_pose":
        assert item["angles"].shape == (3,)


def test_disfa_labels_through_the_task(tmp_path):
    make_fixture("disfa", tmp_path)
    ds = default_task("disfa", tmp_path).splits(8)["all"]
    item = ds[7]  # subject 1 has frames 0..5, then SN003 (sorted names): frame 1 of subject 3
    assert int(item["subject"]) == 3 and int(item["frame"]) == 1
    expected = [float(fx.disfa_intensity(3, au, 1) > 1) for au in (1, 2, 4, 6, 9, 12, 25, 26)]
    assert item["aus"].tolist() == expected


def test_aflw2000_angles_and_crop(tmp_path):
    make_fixture("aflw2000", tmp_path)
    task = default_task("aflw2000", tmp_path)
    test = task.splits(10)["test"]
    angles = np.stack([test[i]["angles"].numpy() for i in range(2)])
    assert np.allclose(angles, [[20.0, 10.0, -3.0], [-45.0, 0.0, 5.0]], atol=1e-4)
    assert test.crop_key == "bbox" and test.crop_margin == 0.6


def test_missing_data_reports_expected_layout(tmp_path):
    ok, where = default_task("rafdb", tmp_path).availability()
    assert not ok and str(tmp_path / "RAF-DB") in where and "Expected layout" in where
    ok, where = default_task("disfa", tmp_path).availability()
    assert not ok and "ActionUnit_Labels" in where


def test_subdir_and_root_overrides(tmp_path):
    fx.write_cplfw(tmp_path / "elsewhere" / "cp")
    task = default_task("cplfw", tmp_path)
    task.params.subdir = "elsewhere/cp"
    assert task.availability() == (True, str(tmp_path / "elsewhere" / "cp"))
    task = default_task("cplfw", tmp_path / "nothing")
    task.params.root = str(tmp_path / "elsewhere" / "cp")
    assert task.availability()[0] and len(task.splits(8)["test"]) == 20


# ------------------------------------------------------------------------------------------------ data check


def _check(*args: str):
    return CliRunner().invoke(main, ["data", "check", *args])


def test_data_check_good_fixture_json(tmp_path):
    make_fixture("cplfw", tmp_path)
    result = _check("--task", "cplfw", "--data-root", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["task"] == "cplfw" and report["problems"] == []
    assert report["splits"]["test"]["pairs"] == 20 and report["splits"]["test"]["samples"] == 20


def test_data_check_good_fixture_text(tmp_path):
    make_fixture("disfa", tmp_path)
    result = _check("-t", "disfa", "--data-root", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "all: samples 18" in result.output and "subjects 3" in result.output
    assert "no problems found" in result.output
    make_fixture("rafdb", tmp_path)
    result = _check("-t", "rafdb", "--data-root", str(tmp_path))
    assert result.exit_code == 0 and "train: samples 7, classes 7" in result.output


def test_data_check_malformed_line_names_file_and_line(tmp_path):
    make_fixture("rafdb", tmp_path)
    label_file = tmp_path / "RAF-DB/basic/EmoLabel/list_patition_label.txt"
    lines = label_file.read_text().splitlines()
    lines[2] = "train_00002.jpg nine"
    label_file.write_text("\n".join(lines) + "\n")
    result = _check("--task", "rafdb", "--data-root", str(tmp_path))
    assert result.exit_code == 1
    assert f"{label_file}:3" in result.output and "not an integer" in result.output


def test_data_check_missing_image_and_frames(tmp_path):
    make_fixture("bu3dfe", tmp_path)
    missing = tmp_path / "BU-3DFE/M0002/M0002_HA02BL_F2D_p1.png"
    missing.unlink()
    result = _check("--task", "bu3dfe", "--data-root", str(tmp_path), "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["splits"]["train"]["missing_files"] == 1 and str(missing) in report["problems"][0]

    make_fixture("disfa", tmp_path)
    (tmp_path / "DISFA/frames/SN013/4.jpg").unlink()
    result = _check("--task", "disfa", "--data-root", str(tmp_path))
    assert result.exit_code == 1 and "1 labelled frames have no image" in result.output


def test_data_check_missing_root_shows_layout(tmp_path):
    result = _check("--task", "aflw2000", "--data-root", str(tmp_path))
    assert result.exit_code == 1
    assert str(tmp_path / "headpose") in result.output and "Expected layout" in result.output


def test_data_check_unknown_task(tmp_path):
    result = _check("--task", "cplf", "--data-root", str(tmp_path))
    assert result.exit_code == 2 and "cplfw" in result.output


def test_data_check_builtin_task(tmp_path):
    result = _check("--task", "digits", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["splits"] == {"train": {"samples": 1257}, "test": {"samples": 540}}


# ------------------------------------------------------------------------------------------ pretraining sources


def test_voxceleb_source_one_frame_per_clip_per_epoch(tmp_path):
    fx.write_voxceleb(tmp_path / "VoxCeleb", frames=6)
    ds = build_source(DataConfig(source="voxceleb", image_size=8), tmp_path)
    assert len(ds) == 8  # clips
    ds.seed = 5

    def frames(epoch):
        ds.set_epoch(epoch)
        return [str(p) for p in ds.frames.index.paths]

    e0, e1 = frames(0), frames(1)
    assert frames(0) == e0 and e0 != e1  # reproducible from (seed, epoch), different across epochs
    assert [Path(p).parent for p in e0] == [Path(p) for p in ds.clips.paths]  # one frame of each clip
    assert ds[0]["image"].shape == (3, 8, 8)


def test_voxceleb_source_follows_the_loop_seed(tmp_path):
    fx.write_voxceleb(tmp_path / "VoxCeleb", frames=6)
    ds = build_source(DataConfig(source="voxceleb", image_size=8), tmp_path)
    torch.manual_seed(123)
    ds.set_epoch(2)
    first = [str(p) for p in ds.frames.index.paths]
    torch.manual_seed(123)
    ds.set_epoch(2)
    assert [str(p) for p in ds.frames.index.paths] == first


def test_image_sources(tmp_path):
    fx.write_imagefolder(tmp_path / "images", per_class=3)
    fx.write_stl10(tmp_path / "STL10")
    fx.write_cifar10(tmp_path / "CIFAR10")
    fx.write_headpose(tmp_path / "headpose")
    fx.write_bu3dfe(tmp_path / "BU-3DFE")
    sizes = {"imagefolder": 6, "stl10-unlabeled": 2, "cifar10-train": 15, "300w-lp": 3, "bu3dfe-train": 6}
    for source, n in sizes.items():
        ds = build_source(DataConfig(source=source, image_size=16, max_samples=0), tmp_path)
        assert len(ds) == n, source
        assert ds[0]["image"].shape == (3, 16, 16)
    capped = build_source(DataConfig(source="cifar10-train", image_size=16, max_samples=4), tmp_path)
    assert len(capped) == 4


def test_splits_and_cache_identity_are_deterministic(tmp_path):
    make_fixture("cplfw", tmp_path / "a")
    make_fixture("cplfw", tmp_path / "b")
    fx.write_image(tmp_path / "b" / "CPLFW" / "images" / "Per_0_1.jpg", 8, seed=99)  # same names, other pixels
    t1, t2, other = (default_task("cplfw", tmp_path / r) for r in ("a", "a", "b"))
    assert [str(p) for p in t1.splits(8)["test"].index.paths] == [str(p) for p in t2.splits(8)["test"].index.paths]
    assert torch.equal(t1.splits(8)["test"][3]["image"], t2.splits(8)["test"][3]["image"])
    assert t1.data_identity() == t2.data_identity() == {"dir": str((tmp_path / "a" / "CPLFW").resolve()),
                                                        "sizes": {"test": [20, 20]}}
    assert other.data_identity() != t1.data_identity()  # another data root never reuses cached features
    assert default_task("digits", tmp_path).data_identity() == {}


def test_task_params_reach_the_reader(tmp_path):
    make_fixture("fer2013", tmp_path)
    task = default_task("fer2013", tmp_path)
    task.params.test_usage = "PublicTest+PrivateTest"
    assert len(task.splits(8)["test"]) == 5  # 2 PublicTest + 3 PrivateTest rows
    task = default_task("fer2013", tmp_path)
    task.params.test_usage = "Validation"
    ok, where = task.availability()
    assert not ok and "test_usage" in where
