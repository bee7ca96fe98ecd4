"""Reader -> ImageIndexDataset -> protocol, on fixtures whose answer is known."""

from __future__ import annotations

import shutil

import numpy as np
import torch
from torch.utils.data import DataLoader

import fixtures_real as fx
from pcfrl_bench.data.readers import read_lfw, read_stl10
from pcfrl_bench.data.readers.dataset import ImageIndexDataset
from pcfrl_bench.evaluation.protocols import cosine_pair_scores, verification_accuracy_10fold


def test_lfw_pixels_as_features_verify_perfectly(tmp_path):
    fx.write_lfw(tmp_path)
    for name, n in fx.LFW_PEOPLE.items():  # second image of each person = copy of the first
        if n >= 2:
            d = tmp_path / "lfw-deepfunneled" / name
            shutil.copy(d / f"{name}_0001.jpg", d / f"{name}_0002.jpg")
    index = read_lfw(tmp_path)["test"]
    loader = DataLoader(ImageIndexDataset(index, image_size=8), batch_size=4)
    feats = torch.cat([b["image"].flatten(1) for b in loader]).numpy()
    scores = cosine_pair_scores(feats, index.pairs)
    assert np.allclose(scores[index.same], 1.0) and (scores[~index.same] < 0.999).all()
    r = verification_accuracy_10fold(scores, index.same, index.fold)
    assert r["accuracy_mean"] == 1.0 and r["accuracy_std"] == 0.0


def test_stl10_memmap_through_dataset(tmp_path):
    facts = fx.write_stl10(tmp_path)
    index = read_stl10(tmp_path, splits=("test",))["test"]
    item = ImageIndexDataset(index, image_size=96)[2]
    expected = torch.from_numpy(facts["test"]["images"][2]).permute(2, 0, 1).float() / 255
    assert torch.equal(item["image"], expected) and int(item["label"]) == 2
