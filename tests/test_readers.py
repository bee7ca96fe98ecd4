"""Every reader on a tiny fixture in the official layout (datasets.md), its traps and its error messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pcfrl_bench.data.readers import (
    DATASETS,
    SampleIndex,
    dataset_root,
    epoch_frame_index,
    read_bu3dfe,
    read_calfw,
    read_cifar10,
    read_cplfw,
    read_dataset,
    read_disfa,
    read_fer2013,
    read_headpose,
    read_imagefolder,
    read_lfw,
    read_rafdb,
    read_stl10,
    read_voxceleb,
    sample_clip_frames,
)
from pcfrl_bench.data.readers.dataset import ImageIndexDataset
from pcfrl_bench.errors import ConfigError, DatasetLayoutError, MalformedFileError, UnknownNameError
from pcfrl_bench.data.readers.disfa import au_subject_folds

import fixtures_real as fx


def replace_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


def assert_names(err: pytest.ExceptionInfo, *parts: str) -> None:
    for part in parts:
        assert part in str(err.value), f"{part!r} not in {str(err.value)!r}"


# --------------------------------------------------------------------------------------------------- RAF-DB


def test_rafdb_reads_splits_and_shifts_labels(tmp_path):
    facts = fx.write_rafdb(tmp_path, per_class=2)
    splits = read_rafdb(tmp_path)
    assert set(splits) == {"train", "test"}
    assert len(splits["train"]) == 14 and len(splits["test"]) == 14
    assert splits["train"].targets["label"].tolist() == facts["train_labels"]
    assert splits["test"].targets["label"].min() == 0 and splits["test"].targets["label"].max() == 6
    assert splits["train"].paths[0].name == "train_00001_aligned.jpg"
    assert splits["test"].paths[0].name == "test_0001_aligned.jpg"
    assert splits["train"].meta["classes"][0] == "surprise"  # label 1 in the file


def test_rafdb_errors(tmp_path):
    with pytest.raises(DatasetLayoutError) as err:
        read_rafdb(tmp_path / "nowhere")
    assert_names(err, "nowhere", "list_patition_label.txt")
    facts = fx.write_rafdb(tmp_path)
    f = facts["label_file"]
    replace_line(f, 5, "train_00003.jpg 8")
    with pytest.raises(MalformedFileError) as err:
        read_rafdb(tmp_path)
    assert_names(err, "list_patition_label.txt:5", "unknown label 8")
    replace_line(f, 5, "train_00003.jpg 3 extra")
    with pytest.raises(MalformedFileError) as err:
        read_rafdb(tmp_path)
    assert_names(err, "list_patition_label.txt:5")
    replace_line(f, 5, "train_00003.jpg 3")
    (tmp_path / "basic/Image/aligned/test_0002_aligned.jpg").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        read_rafdb(tmp_path)
    assert_names(err, "test_0002_aligned.jpg")


# -------------------------------------------------------------------------------------------------- FER-2013


@pytest.mark.parametrize("icml", [False, True])
def test_fer2013_csv_and_icml_twin(tmp_path, icml):
    fx.write_fer2013_csv(tmp_path, icml=icml)
    splits = read_fer2013(tmp_path)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [4, 2, 3]
    assert splits["train"].targets["label"].tolist() == [0, 3, 6, 5]
    assert splits["val"].targets["label"].tolist() == [1, 4]  # PublicTest
    assert splits["test"].targets["label"].tolist() == [2, 6, 3]  # PrivateTest
    assert splits["train"].arrays.shape == (4, 48, 48, 1)
    np.testing.assert_array_equal(splits["test"].arrays[1].reshape(-1), fx.fer_pixels(7))
    both = read_fer2013(tmp_path, test_usage="PublicTest+PrivateTest")
    assert "val" not in both and len(both["test"]) == 5


def test_fer2013_csv_errors(tmp_path):
    facts = fx.write_fer2013_csv(tmp_path)
    path = facts["path"]
    lines = path.read_text().splitlines()
    good = lines[3]
    lines[3] = good.replace('"', '"1 ', 1)  # 2305 values on line 4
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedFileError) as err:
        read_fer2013(tmp_path)
    assert_names(err, "fer2013.csv:4", "2304")
    lines[3] = "9" + good[1:]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedFileError) as err:
        read_fer2013(tmp_path)
    assert_names(err, "fer2013.csv:4", "unknown emotion 9")
    lines[3] = good.replace(",Training", ",Validation")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedFileError) as err:
        read_fer2013(tmp_path)
    assert_names(err, "fer2013.csv:4", "Validation")
    with pytest.raises(ConfigError):
        read_fer2013(tmp_path, test_usage="Training")
    with pytest.raises(DatasetLayoutError) as err:
        read_fer2013(tmp_path / "empty_here")
    assert_names(err, "empty_here", "fer2013.csv")


def test_fer2013_folders_map_classes_by_name(tmp_path):
    fx.write_fer2013_folders(tmp_path)
    fx.write_image(tmp_path / "train" / ".ipynb_checkpoints" / "x.jpg")  # hidden folders are ignored
    splits = read_fer2013(tmp_path)
    # sorted ImageFolder order would give angry 0, neutral 4, sad 5, surprise 6: the trap of §2
    assert splits["train"].targets["label"].tolist() == [0, 6, 4, 5]
    assert splits["val"].targets["label"].tolist() == [3]  # happy, PublicTest_
    assert sorted(splits["test"].targets["label"].tolist()) == [1, 6]  # PrivateTest_ disgust, neutral
    (tmp_path / "train" / "contempt").mkdir()
    with pytest.raises(DatasetLayoutError) as err:
        read_fer2013(tmp_path)
    assert_names(err, "contempt")


# ------------------------------------------------------------------------------------------------------- LFW


def test_lfw_pairs_and_folds(tmp_path):
    fx.write_lfw(tmp_path)
    index = read_lfw(tmp_path)["test"]
    assert index.pairs.shape == (20, 2)
    assert index.same.tolist() == [True, False] * 10
    assert index.fold.tolist() == np.repeat(np.arange(10), 2).tolist()
    a, b = (index.paths[i] for i in index.pairs[0])
    assert (a.parent.name, a.name, b.name) == ("Ann_A", "Ann_A_0001.jpg", "Ann_A_0002.jpg")
    c, d = (index.paths[i] for i in index.pairs[1])
    assert (c.name, d.name) == ("Ann_A_0001.jpg", "Bob_B_0001.jpg")
    assert len(set(index.paths)) == len(index.paths) == len(index)


def test_lfw_kaggle_nesting_and_space_separated(tmp_path):
    fx.write_lfw(tmp_path / "tmp")
    (tmp_path / "lfw-deepfunneled").mkdir()
    shutil.move(tmp_path / "tmp" / "lfw-deepfunneled", tmp_path / "lfw-deepfunneled" / "lfw-deepfunneled")
    (tmp_path / "pairs.txt").write_text((tmp_path / "tmp" / "pairs.txt").read_text().replace("\t", " "))
    assert len(read_lfw(tmp_path)["test"].pairs) == 20


def test_lfw_errors(tmp_path):
    facts = fx.write_lfw(tmp_path)
    f = facts["pairs_file"]
    original = f.read_text()
    replace_line(f, 3, "Ann_A\t1\t2")  # a matched line where a mismatched one belongs
    with pytest.raises(MalformedFileError) as err:
        read_lfw(tmp_path)
    assert_names(err, "pairs.txt:3", "mismatched")
    f.write_text(original.replace("Bob_B\t1\t2", "Bob_B\tone\t2"))
    with pytest.raises(MalformedFileError) as err:
        read_lfw(tmp_path)
    assert_names(err, "pairs.txt:4")
    f.write_text("\n".join(original.splitlines()[:-1]) + "\n")
    with pytest.raises(MalformedFileError) as err:
        read_lfw(tmp_path)
    assert_names(err, "pairs.txt:20", "20 pairs, found 19")
    f.write_text(original)
    (tmp_path / "lfw-deepfunneled/Eve_E/Eve_E_0001.jpg").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        read_lfw(tmp_path)
    assert_names(err, "Eve_E_0001.jpg")
    with pytest.raises(DatasetLayoutError) as err:
        read_lfw(tmp_path, image_dir="lfw_funneled")
    assert_names(err, "lfw_funneled")


# ----------------------------------------------------------------------------------------------- CPLFW/CALFW


def test_cplfw_two_lines_per_pair_and_rebuilt_folds(tmp_path):
    fx.write_cplfw(tmp_path)
    index = read_cplfw(tmp_path)["test"]
    assert len(index.pairs) == 20
    assert index.same.tolist() == [True] * 10 + [False] * 10
    # file-order folds (KFold without shuffle) would be single-class: the trap of §4
    naive = np.repeat(np.arange(10), 2)
    assert all(len(set(index.same[naive == k])) == 1 for k in range(10))
    for k in range(10):
        assert sorted(index.same[index.fold == k].tolist()) == [False, True]
    assert index.fold.tolist() == list(range(10)) * 2
    a, b = (index.paths[i] for i in index.pairs[0])
    assert (a.name, b.name) == ("Per_0_1.jpg", "Per_0_2.jpg") and a.parent.name == "images"


def test_cplfw_folds_with_official_sizes_follow_blocks():
    # 3000 positives then 3000 negatives: fold k = pos [300k, 300k+300) + neg [3000+300k, ...)
    from pcfrl_bench.data.readers import verification as v

    same = np.r_[np.ones(3000, bool), np.zeros(3000, bool)]
    rank = np.empty(6000, dtype=np.int64)
    for cls in (True, False):
        members = np.flatnonzero(same == cls)
        rank[members] = np.arange(len(members)) * 10 // len(members)
    assert rank[[0, 299, 300, 2999, 3000, 3299, 3300, 5999]].tolist() == [0, 0, 1, 9, 0, 0, 1, 9]
    assert hasattr(v, "read_cplfw")


def test_cplfw_errors_and_calfw_labels(tmp_path):
    facts = fx.write_cplfw(tmp_path)
    f = facts["pairs_file"]
    original = f.read_text()
    replace_line(f, 4, "Per_1_2.jpg 0")  # second line of pair 2 disagrees with line 3
    with pytest.raises(MalformedFileError) as err:
        read_cplfw(tmp_path)
    assert_names(err, "pairs_CPLFW.txt:4", "line 3")
    f.write_text(original.replace("Per_2_1.jpg 1", "Per_2_1.jpg 2", 1))
    with pytest.raises(MalformedFileError) as err:
        read_cplfw(tmp_path)
    assert_names(err, "pairs_CPLFW.txt:5", "unknown label 2")
    f.write_text(original + "Per_0_1.jpg 1\n")
    with pytest.raises(MalformedFileError) as err:
        read_cplfw(tmp_path)
    assert_names(err, "pairs_CPLFW.txt:41", "odd number")
    calfw = tmp_path / "calfw"
    fx.write_cplfw(calfw, calfw=True)
    index = read_calfw(calfw)["test"]
    assert index.same.sum() == 10 and index.paths[0].name == "Per_0_0001.jpg"


# ---------------------------------------------------------------------------------------------------- DISFA


def test_disfa_labels_subjects_and_folds(tmp_path):
    fx.write_disfa(tmp_path, subjects=(1, 2, 3), n_frames=6)
    index = read_disfa(tmp_path)["all"]
    assert len(index) == 18
    aus = index.targets["aus"]
    assert aus.shape == (18, 8)
    expected = np.array(
        [[fx.disfa_intensity(s, au, t) > 1 for au in (1, 2, 4, 6, 9, 12, 25, 26)] for s in (1, 2, 3) for t in range(6)]
    )
    np.testing.assert_array_equal(aus, expected.astype(np.float32))
    assert index.targets["subject"].tolist() == [1] * 6 + [2] * 6 + [3] * 6
    assert index.targets["frame"].tolist() == list(range(6)) * 3
    assert index.paths[7] == tmp_path / "frames" / "SN002" / "1.jpg"
    folds = au_subject_folds(index.targets["subject"])
    assert folds.tolist() == [0] * 12 + [2] * 6  # SN001, SN002 in part1; SN003 in part3


def test_disfa_errors_and_missing_frames(tmp_path):
    fx.write_disfa(tmp_path, subjects=(1, 2), n_frames=4)
    (tmp_path / "frames/SN002/2.jpg").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        read_disfa(tmp_path)
    assert_names(err, "SN002/2.jpg")
    skipped = read_disfa(tmp_path, missing_frames="skip")["all"]
    assert len(skipped) == 7 and skipped.meta["n_missing_frames"] == 1
    assert skipped.targets["frame"].tolist() == [0, 1, 2, 3, 0, 1, 3]
    f = tmp_path / "ActionUnit_Labels/SN001/SN001_au6.txt"
    replace_line(f, 3, "3;2")
    with pytest.raises(MalformedFileError) as err:
        read_disfa(tmp_path, missing_frames="skip")
    assert_names(err, "SN001_au6.txt:3")
    replace_line(f, 3, "3,7")
    with pytest.raises(MalformedFileError) as err:
        read_disfa(tmp_path, missing_frames="skip")
    assert_names(err, "SN001_au6.txt:3", "intensity 7")
    f.write_text("1,0\n2,0\n")
    with pytest.raises(MalformedFileError) as err:
        read_disfa(tmp_path, missing_frames="skip")
    assert_names(err, "SN001_au6.txt", "2 frames")
    (tmp_path / "ActionUnit_Labels/SN001/SN001_au25.txt").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        read_disfa(tmp_path, missing_frames="skip")
    assert_names(err, "SN001_au25.txt")
    with pytest.raises(DatasetLayoutError) as err:
        read_disfa(tmp_path / "x")
    assert_names(err, "ActionUnit_Labels")


# ------------------------------------------------------------------------------------------------ head pose


def test_headpose_mat_angles_and_99_degree_filter(tmp_path):
    fx.write_headpose(tmp_path)
    from scipy.io import savemat

    (tmp_path / "300W_LP/Code").mkdir()
    savemat(tmp_path / "300W_LP/Code/Model_Shape.mat", {"mu_shape": np.zeros((3, 1))})
    splits = read_headpose(tmp_path)
    train, test = splits["train"], splits["test"]
    assert len(train) == 3 and train.meta["n_filtered"] == 1  # pitch 100 dropped: Pose_Para order is pitch, yaw
    assert len(test) == 2 and test.meta["n_filtered"] == 1  # yaw 120 dropped
    got = {p.stem: a for p, a in zip(test.paths, test.targets["angles"])}
    np.testing.assert_allclose(got["image00002"], [20.0, 10.0, -3.0], atol=1e-4)
    np.testing.assert_allclose(got["image00004"], [-45.0, 0.0, 5.0], atol=1e-4)
    names = sorted(str(p.relative_to(tmp_path / "300W_LP")) for p in train.paths)  # landmarks/ and Code/ skipped
    assert names == ["AFW/AFW_134212_1_0.jpg", "AFW_Flip/AFW_134212_1_0.jpg", "HELEN/HELEN_1_1_0.jpg"]
    np.testing.assert_allclose(test.targets["bbox"][0], [2.4, 3.45, 10.0, 12.0], atol=1e-4)  # negative pt skipped
    wide = read_headpose(tmp_path, limit=180.0)
    assert len(wide["train"]) == 4 and len(wide["test"]) == 3


def test_headpose_file_list_and_errors(tmp_path):
    fx.write_headpose(tmp_path)
    (tmp_path / "test_list.txt").write_text("image00002\nimage00099\n")
    with pytest.raises(MalformedFileError) as err:
        read_headpose(tmp_path, test_list="test_list.txt")
    assert_names(err, "test_list.txt:2", "image00099.mat")
    (tmp_path / "test_list.txt").write_text("image00002\n")
    assert len(read_headpose(tmp_path, test_list="test_list.txt")["test"]) == 1
    (tmp_path / "AFLW2000/image00004.jpg").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        read_headpose(tmp_path)
    assert_names(err, "image00004.jpg")
    from scipy.io import savemat

    savemat(tmp_path / "AFLW2000/image00004.mat", {"pt2d": np.zeros((2, 21))})
    write = fx.write_image(tmp_path / "AFLW2000/image00004.jpg")
    assert write.shape == (8, 8, 3)
    with pytest.raises(MalformedFileError) as err:
        read_headpose(tmp_path)
    assert_names(err, "image00004.mat", "Pose_Para")
    with pytest.raises(DatasetLayoutError) as err:
        read_headpose(tmp_path, test="AFLW2000_missing")
    assert_names(err, "AFLW2000_missing")


def test_headpose_fsanet_npz_bgr_and_filter(tmp_path):
    rgb_train = fx.write_headpose_npz(tmp_path / "300W_LP_AFW.npz", [(1, 2, 3), (0, 0, -100)])
    fx.write_headpose_npz(tmp_path / "300W_LP_HELEN.npz", [(4, 5, 6)])
    rgb_test = fx.write_headpose_npz(tmp_path / "AFLW2000.npz", [(-30, 10, 0), (150, 0, 0), (5, 5, 5)])
    splits = read_headpose(tmp_path)
    assert len(splits["train"]) == 2 and splits["train"].meta["n_filtered"] == 1
    np.testing.assert_allclose(splits["train"].targets["angles"], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(splits["train"].arrays[0], rgb_train[0])  # BGR on disk -> RGB
    np.testing.assert_array_equal(splits["test"].arrays, rgb_test[[0, 2]])
    np.testing.assert_allclose(splits["test"].targets["angles"], [[-30, 10, 0], [5, 5, 5]])


# -------------------------------------------------------------------------------------------------- BU-3DFE


def test_bu3dfe_lists(tmp_path):
    facts = fx.write_bu3dfe(tmp_path)
    splits = read_bu3dfe(tmp_path, num_pose_classes=3)
    assert len(splits["train"]) == 6 and len(splits["test"]) == 2
    assert splits["train"].targets["label"].tolist() == [0, 1, 2, 0, 1, 2]
    assert splits["train"].targets["expression"].tolist() == [0, 0, 0, 3, 3, 3]
    assert splits["test"].paths[1] == tmp_path / facts["test"][1][0]
    assert read_bu3dfe(tmp_path)["train"].meta["num_pose_classes"] == 3
    with pytest.raises(MalformedFileError) as err:
        read_bu3dfe(tmp_path, num_pose_classes=2)
    assert_names(err, "train.txt:3", "unknown pose class 2")
    replace_line(tmp_path / "test.txt", 2, "F0003/x.png;5;2")
    with pytest.raises(MalformedFileError) as err:
        read_bu3dfe(tmp_path)
    assert_names(err, "test.txt:2")


# ------------------------------------------------------------------------------------------ STL-10 / CIFAR-10


def test_stl10_column_major_storage_and_labels(tmp_path):
    facts = fx.write_stl10(tmp_path)
    splits = read_stl10(tmp_path)
    for split in ("train", "test", "unlabeled"):
        np.testing.assert_array_equal(np.asarray(splits[split].arrays), facts[split]["images"])
    assert splits["train"].targets["label"].tolist() == facts["train"]["labels"].tolist() == [0, 1, 2, 3]
    assert splits["unlabeled"].targets["label"].tolist() == [-1, -1]
    assert splits["train"].meta["classes"][7] == "monkey" and len(splits["train"].meta["train_folds"]) == 10
    # a row-major reader would get the transposed image: make sure the fixture can tell the two apart
    assert not np.array_equal(facts["train"]["images"][0], facts["train"]["images"][0].transpose(1, 0, 2))
    bad = tmp_path / "stl10_binary/test_y.bin"
    bad.write_bytes(bytes([1, 11, 2]))
    with pytest.raises(MalformedFileError) as err:
        read_stl10(tmp_path)
    assert_names(err, "test_y.bin", "label #2 is 11")
    with open(tmp_path / "stl10_binary/train_X.bin", "ab") as f:
        f.write(b"\0")
    with pytest.raises(MalformedFileError) as err:
        read_stl10(tmp_path, splits=("train",))
    assert_names(err, "train_X.bin", "27648")


@pytest.mark.parametrize("bytes_keys", [True, False])
def test_cifar10_bytes_or_str_keys(tmp_path, bytes_keys):
    facts = fx.write_cifar10(tmp_path, rows=3, bytes_keys=bytes_keys)
    splits = read_cifar10(tmp_path)
    assert len(splits["train"]) == 15 and len(splits["test"]) == 3
    np.testing.assert_array_equal(splits["train"].arrays, facts["train"]["images"])
    np.testing.assert_array_equal(splits["test"].targets["label"], facts["test"]["labels"])
    assert splits["train"].meta["classes"][1] == "automobile"


def test_cifar10_errors(tmp_path):
    fx.write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py/data_batch_4").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        read_cifar10(tmp_path)
    assert_names(err, "data_batch_4")
    (tmp_path / "cifar-10-batches-py/data_batch_4").write_bytes(b"not a pickle")
    with pytest.raises(MalformedFileError) as err:
        read_cifar10(tmp_path)
    assert_names(err, "data_batch_4")


# ------------------------------------------------------------------------------------ VoxCeleb / image folders


def test_voxceleb_clips_list_file_and_epoch_sampling(tmp_path):
    facts = fx.write_voxceleb(tmp_path)
    index = read_voxceleb(tmp_path)["train"]
    assert len(index) == facts["n_clips"] == 8
    assert index.targets["n_frames"].tolist() == [4] * 8
    assert index.targets["identity"].tolist() == [0] * 4 + [1] * 4
    listed = read_voxceleb(tmp_path, list_file="train_list.txt")["train"]
    assert len(listed) == facts["n_listed_clips"] == 6
    a, b = sample_clip_frames(index, 0, 1), sample_clip_frames(index, 0, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_clip_frames(index, 0, 2)) or not np.array_equal(
        a, sample_clip_frames(index, 1, 1)
    )
    frames = epoch_frame_index(index, seed=0, epoch=1)
    for clip, path in zip(index.paths, frames.paths):
        assert path.parent == clip
    draws = np.stack([sample_clip_frames(index, 0, e) for e in range(50)])
    assert ((draws - index.targets["frame_offset"]) >= 0).all() and ((draws - index.targets["frame_offset"]) < 4).all()
    assert len(np.unique(draws[:, 0])) == 4  # every frame of clip 0 gets drawn over 50 epochs
    (tmp_path / "train_list.txt").write_text("id10000/vid0\nid10000/vid9\n")
    with pytest.raises(MalformedFileError) as err:
        read_voxceleb(tmp_path, list_file="train_list.txt")
    assert_names(err, "train_list.txt:2", "vid9")


def test_imagefolder_labels(tmp_path):
    fx.write_imagefolder(tmp_path / "imgs")
    index = read_imagefolder(tmp_path / "imgs")["train"]
    assert len(index) == 4 and index.targets["label"].tolist() == [0, 0, 1, 1]
    assert index.meta["classes"] == ["cat", "dog"]
    with pytest.raises(DatasetLayoutError):
        read_imagefolder(tmp_path / "none")


# --------------------------------------------------------------------------------------- registry & dataset


def test_registry_and_default_roots(tmp_path):
    assert all(DATASETS.get(name).folder and DATASETS.get(name).name == name for name in DATASETS)
    assert dataset_root("rafdb", tmp_path) == tmp_path / "RAF-DB"
    fx.write_rafdb(tmp_path / "RAF-DB")
    assert len(read_dataset("rafdb", dataset_root("rafdb", tmp_path))["test"]) == 7
    with pytest.raises(UnknownNameError) as err:
        read_dataset("rafbd", tmp_path)
    assert_names(err, "rafdb")


def test_image_dataset_decodes_resizes_and_keeps_targets(tmp_path):
    arr = fx.write_image(tmp_path / "a.png", size=8, seed=1)
    fx.write_image(tmp_path / "b.png", size=12, seed=2)
    index = SampleIndex(paths=[tmp_path / "a.png", tmp_path / "b.png"], targets={"label": np.array([3, 5])})
    ds = ImageIndexDataset(index, image_size=8)
    item = ds[0]
    assert item["image"].shape == (3, 8, 8) and item["image"].dtype == torch.float32
    np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy(), arr / 255.0, atol=1e-6)  # PNG exact
    assert int(item["label"]) == 3 and ds[1]["image"].shape == (3, 8, 8)
    assert ImageIndexDataset(index, image_size=(4, 6))[1]["image"].shape == (3, 4, 6)
    gray = SampleIndex(arrays=np.full((2, 48, 48, 1), 255, np.uint8), targets={"label": np.array([0, 1])})
    g = ImageIndexDataset(gray, image_size=16)[1]["image"]
    assert g.shape == (3, 16, 16) and float(g.min()) == 1.0


def test_image_dataset_unreadable_images(tmp_path):
    fx.write_image(tmp_path / "ok.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    index = SampleIndex(paths=[tmp_path / "broken.jpg", tmp_path / "ok.jpg", tmp_path / "gone.jpg"])
    with pytest.raises(DatasetLayoutError) as err:
        ImageIndexDataset(index, 8)[0]
    assert_names(err, "broken.jpg")
    with pytest.raises(DatasetLayoutError) as err:
        ImageIndexDataset(index, 8)[2]
    assert_names(err, "gone.jpg")
    ds = ImageIndexDataset(index, 8, skip_unreadable=True)
    assert ds[0]["index"] == 1 and ds.n_unreadable == 1
    scanned = ImageIndexDataset(index, 8, skip_unreadable=True)
    assert scanned.scan() == 2 and len(scanned) == 1 and scanned[0]["index"] == 1


def test_image_dataset_crops_by_box(tmp_path):
    arr = np.zeros((20, 20, 3), np.uint8)
    arr[5:10, 5:10] = 255
    from PIL import Image

    Image.fromarray(arr).save(tmp_path / "c.png")
    index = SampleIndex(paths=[tmp_path / "c.png"], targets={"bbox": np.array([[5.0, 5.0, 10.0, 10.0]])})
    img = ImageIndexDataset(index, 5, crop_key="bbox")[0]["image"]
    assert float(img.min()) == 1.0


def test_lfw_view1_file_is_one_fold(tmp_path):
    fx.write_lfw(tmp_path)
    (tmp_path / "pairsDevTest.txt").write_text("2\nAnn_A\t1\t2\nBob_B\t1\t2\nAnn_A\t1\tCid_C\t1\nDee_D\t1\tEve_E\t2\n")
    index = read_lfw(tmp_path, pairs_file="pairsDevTest.txt")["test"]
    assert index.same.tolist() == [True, True, False, False] and index.fold.tolist() == [0, 0, 0, 0]


def test_fer2013_non_integer_pixel(tmp_path):
    path = fx.write_fer2013_csv(tmp_path)["path"]
    lines = path.read_text().splitlines()
    lines[6] = lines[6].replace('"', '"x ', 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedFileError) as err:
        read_fer2013(tmp_path)
    assert_names(err, "fer2013.csv:7", "integers")


def test_disfa_fold_splits_are_subject_exclusive(tmp_path):
    from pcfrl_bench.data.readers import disfa_fold_splits

    fx.write_disfa(tmp_path, subjects=(1, 13, 3, 4), n_frames=2)
    folds = disfa_fold_splits(read_disfa(tmp_path)["all"])
    tests = [sorted(set(te.targets["subject"].tolist())) for _, te in folds]
    assert tests == [[1], [13], [3, 4]]
    for train, test in folds:
        assert not set(train.targets["subject"].tolist()) & set(test.targets["subject"].tolist())
        assert len(train) + len(test) == 8


def test_voxceleb_merge_two_roots(tmp_path):
    from pcfrl_bench.data.readers import merge_clip_indices

    fx.write_voxceleb(tmp_path / "vox1", ids=2, videos=1, clips=1, frames=2)
    fx.write_voxceleb(tmp_path / "vox2", ids=1, videos=2, clips=1, frames=3)
    a, b = read_voxceleb(tmp_path / "vox1")["train"], read_voxceleb(tmp_path / "vox2")["train"]
    m = merge_clip_indices(a, b)
    assert len(m) == 4 and m.targets["identity"].tolist() == [0, 1, 2, 2]
    frames = epoch_frame_index(m, seed=3, epoch=0)
    for clip, path in zip(m.paths, frames.paths):
        assert path.parent == clip
    assert m.meta["frames"][m.targets["frame_offset"][2]].startswith(str(tmp_path / "vox2"))


def test_image_dataset_without_box_keeps_full_image(tmp_path):
    fx.write_image(tmp_path / "d.png", size=10)
    index = SampleIndex(paths=[tmp_path / "d.png"], targets={"bbox": np.full((1, 4), np.nan, np.float32)})
    assert ImageIndexDataset(index, 10, crop_key="bbox", crop_margin=0.5)[0]["image"].shape == (3, 10, 10)


def test_cifar10_unknown_label(tmp_path):
    import pickle

    fx.write_cifar10(tmp_path, rows=2)
    with open(tmp_path / "cifar-10-batches-py/test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 10]}, f)
    with pytest.raises(MalformedFileError) as err:
        read_cifar10(tmp_path)
    assert_names(err, "test_batch", "label #2 is 10")
