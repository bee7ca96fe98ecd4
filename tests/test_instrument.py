"""The measuring instrument: floors (trivial baselines, raw pixels, random init), the supervised ceiling, probes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from pcfrl_bench.config import ModelConfig, ProbeConfig
from pcfrl_bench.errors import ConfigError
from pcfrl_bench.evaluation.protocols import majority_class_accuracy, mean_average_precision, median_angles_mae
from pcfrl_bench.methods import METHODS
from pcfrl_bench.models.backbones import IMAGENET_MEAN, IMAGENET_STD, build_backbone, feature_dim
from pcfrl_bench.runner import RunOptions, RunPaths, build_task, ensure_pretrained, pretrain_dir, resolve, run
from pcfrl_bench.tasks.families import au_pos_weight, au_trivial


def test_majority_class_and_median_angle_floors_by_hand():
    # train majority is class 2 (3 of 5); the test split has two 2s out of 4 -> 50 %
    assert majority_class_accuracy([2, 2, 1, 2, 0], [2, 0, 2, 1]) == pytest.approx(50.0)
    train = np.array([[0, 0, 0], [10, 2, -4], [20, 4, 4]], float)  # medians 10, 2, 0
    test = np.array([[30, 2, 1], [0, 0, -1]], float)
    m = median_angles_mae(train, test)
    assert (m["yaw"], m["pitch"], m["roll"]) == pytest.approx((15.0, 1.0, 1.0))
    assert m["mean"] == pytest.approx(17.0 / 3)


def test_au_floors_and_mean_average_precision_by_hand():
    target = torch.tensor([[1, 0], [1, 1], [0, 0], [0, 0.0]])
    trivial = au_trivial(target)
    # always on: AU a has 2 of 4 positives -> F1 = 2*2/(2*2+2) = 2/3; AU b 1 of 4 -> 2/(2+3) = 0.4
    assert trivial["f1"] == pytest.approx(100 * (2 / 3 + 0.4) / 2)
    assert trivial["map"] == pytest.approx(100 * (0.5 + 0.25) / 2)  # a constant score's AP is the prevalence
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.3], [0.1, 0.2]])
    mean, per_au = mean_average_precision(scores, target.numpy())
    # AU a ranks 0.9(+), 0.4(-), 0.2(+): AP = (1/1 + 2/3) / 2; AU b ranks its only positive first: AP = 1
    assert per_au == pytest.approx([(1 + 2 / 3) / 2, 1.0])
    assert mean == pytest.approx(average_precision_score(target.numpy(), scores, average="macro"))
    _, undefined = mean_average_precision(scores, np.zeros((4, 2)))
    assert np.isnan(undefined).all()


def test_balanced_pos_weight_is_negatives_over_positives():
    y = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0.0]])
    assert au_pos_weight(y, "balanced").tolist() == pytest.approx([1.0, 3.0])
    assert au_pos_weight(y, "none") is None


def test_probes_standardise_features_by_default():
    assert ProbeConfig().normalize == "standardize"


@pytest.mark.parametrize("backbone", ["timm:resnet18", "timm:test_resnet"])
def test_random_timm_resnet_features_depend_on_the_whole_image(backbone):
    """With timm's zero_init_last every random residual block is the identity and, through 1x1 stride-2
    shortcuts, the pooled feature sees only the image's top-left corner. Off by default here."""
    torch.manual_seed(0)
    model = build_backbone(ModelConfig(backbone=backbone, small_stem=False)).eval()
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    model(x).sum().backward()
    saliency = x.grad.abs().sum(dim=(0, 1))
    quadrants = [saliency[:32, :32], saliency[:32, 32:], saliency[32:, :32], saliency[32:, 32:]]
    assert all(q.sum() > 0 for q in quadrants)
    assert (saliency > 0).float().mean() > 0.99


def test_zero_init_residual_option_reproduces_the_corner_artefact():
    torch.manual_seed(0)
    model = build_backbone(ModelConfig(backbone="timm:resnet18", small_stem=False, zero_init_residual=True)).eval()
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    model(x).sum().backward()
    seen = x.grad.abs().sum(dim=(0, 1)) > 0
    assert seen.float().mean() < 0.1 and not seen[40:, :].any() and not seen[:, 40:].any()


def test_input_norm_standardises_with_imagenet_statistics():
    torch.manual_seed(0)
    plain = build_backbone(ModelConfig(backbone="facecycle", width=0.125)).eval()
    torch.manual_seed(0)
    normed = build_backbone(ModelConfig(backbone="facecycle", width=0.125, input_norm="imagenet")).eval()
    x = torch.rand(2, 3, 32, 32)
    by_hand = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(normed(x), plain(by_hand))
    assert torch.allclose(normed.forward_map(x), plain.forward_map(by_hand))  # the map PCL's subnets read
    assert set(normed.state_dict()) == set(plain.state_dict())  # no extra keys


def test_pcl_trains_on_the_inputs_it_is_evaluated_on():
    """PCL's trunk map (training) and its encoder (evaluation) both see the ImageNet-standardised inputs."""
    resolved = resolve("pcl", "synth-fer", "smoke")
    assert resolved.config.model.input_norm == "imagenet"
    backbone = build_backbone(resolved.config.model)
    method = METHODS.get("pcl")(resolved.config.method, backbone, feature_dim(backbone, 32), 32).eval()
    x = torch.rand(2, 3, 32, 32)
    by_hand = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    unnormalised = copy.deepcopy(backbone)
    unnormalised.input_transform = torch.nn.Identity()
    with torch.no_grad():
        assert torch.allclose(method.trunk(x), unnormalised.forward_map(by_hand))
        assert torch.allclose(method.trunk(x).flatten(1), method.encoder()(x))


def test_raw_pixels_floor_features_are_the_pixels(tmp_path):
    resolved = resolve("raw-pixels", "synth-fer", "smoke")
    paths = RunPaths(tmp_path / "out", tmp_path / "cache", tmp_path / "data")
    method, *_ = ensure_pretrained(resolved, paths, torch.device("cpu"), RunOptions(progress=False),
                                   console=None)  # type: ignore[arg-type]
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(method.encoder()(x), x.flatten(1))


def test_supervised_ceiling_trains_on_the_task_labels_and_its_checkpoint_is_per_task(tmp_path):
    paths = RunPaths(tmp_path / "out", tmp_path / "cache", tmp_path / "data")
    fer, hpe = resolve("supervised", "synth-fer", "smoke"), resolve("supervised", "synth-hpe", "smoke")
    assert pretrain_dir(fer, paths.cache_dir) != pretrain_dir(hpe, paths.cache_dir)
    sup = build_task(fer, paths.data_root).supervision(fer.config.data)
    assert (sup.target, sup.outputs, sup.loss) == ("label", 7, "cross_entropy")
    record = run(fer, paths, RunOptions(progress=False))
    log = record.pretrain_log
    assert len(log) == fer.config.pretrain.epochs and all(np.isfinite(r["loss"]) for r in log)
    assert record.trivial["accuracy"] == pytest.approx(100 / 7, abs=10)  # majority class of a balanced split
    au = resolve("supervised", "synth-au", "smoke")
    sup = build_task(au, paths.data_root).supervision(au.config.data)
    assert (sup.target, sup.outputs, sup.loss) == ("aus", 8, "bce")
    fr = resolve("supervised", "synth-fr", "smoke")
    sup = build_task(fr, paths.data_root).supervision(fr.config.data)
    assert (sup.target, sup.outputs, len(sup.dataset)) == ("identity", 8, fr.config.task.n_train)
    clips = resolve("supervised", "synth-fr", "smoke", overrides=["task.supervision=clips"])
    sup = build_task(clips, paths.data_root).supervision(clips.config.data)
    assert (sup.target, sup.outputs) == ("identity", clips.config.data.synthetic.identities)
    assert pretrain_dir(clips, paths.cache_dir) != pretrain_dir(fr, paths.cache_dir)


def test_fr_ceiling_faces_are_other_people_with_nuisance_drawn_per_face():
    from pcfrl_bench.data.synthetic import synthetic_task_data

    data = synthetic_task_data("fr", "supervised", 32, 40, 0, train_identities=4)
    assert data["images"].shape == (40, 3, 32, 32) and torch.bincount(data["labels"]).tolist() == [10] * 4
    same = data["images"][data["labels"] == 0]
    corners = same[:, :, :4, :4].mean((2, 3))  # background colour of each face of one person
    assert (corners - corners[0]).abs().amax() > 0.1  # drawn per face, not fixed per person or clip
    pairs = synthetic_task_data("fr", "test", 32, 20, 0)
    assert not any(torch.equal(a, b) for a in data["images"][:4] for b in pairs["images"][:4])
    with pytest.raises(ConfigError, match="2 training identities"):
        synthetic_task_data("fr", "supervised", 32, 4, 0, train_identities=1)


def test_floor_checkpoint_is_reused_on_a_second_task(tmp_path):
    """A 0-epoch (floor) checkpoint is a valid checkpoint: a second task reuses it instead of failing."""
    paths = RunPaths(tmp_path / "out", tmp_path / "cache", tmp_path / "data")
    first = run(resolve("random-init", "synth-fer", "smoke"), paths, RunOptions(progress=False))
    second = run(resolve("random-init", "synth-hpe", "smoke"), paths, RunOptions(progress=False))
    assert not first.reused_checkpoint and second.reused_checkpoint
