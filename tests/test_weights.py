"""Evaluating weights trained elsewhere: format detection, the official PCL key map, strict loading, eval runs.

The official fixture (tests/data/official-pcl/, see its README) holds the official PCL encoder's weights with
non-default biases and attention weights (so swapped layers change the outputs) and the official code's
F_s / F_f / F_p of fixed inputs; ``official_state_dict_keys.json`` lists the 105 keys of a whole official
checkpoint (names and shapes only).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pcfrl_bench.cli import main
from pcfrl_bench.config import ModelConfig
from pcfrl_bench.models.backbones import build_backbone
from pcfrl_bench.models.facecycle import FaceCycleBackbone
from pcfrl_bench.models.pcl_parts import PCLNetwork
from pcfrl_bench.models.weights import (CheckpointError, convert_official_pcl, load_backbone, official_pcl_key,
                                        read_checkpoint)

OFFICIAL = Path(__file__).parent / "data" / "official-pcl"
ENCODER = OFFICIAL / "official_encoder_seed0.pt"


def official_keys() -> list[tuple[str, list[int], str]]:
    return json.loads((OFFICIAL / "official_state_dict_keys.json").read_text())["keys"]


def test_official_encoder_gives_the_official_features():
    fmt, state, prefix = read_checkpoint(ENCODER)
    assert fmt == "pcl-official" and prefix == "backbone." and len(state) == 48
    net = PCLNetwork(width=1.0, image_size=64)
    missing, unexpected = net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    assert unexpected == [] and all(k.split(".")[0] in ("face_head", "pose_head", "decoder") for k in missing)
    arrays = np.load(OFFICIAL / "official_encoder_seed0.npz")
    with torch.no_grad():
        for suffix, x in (("", arrays["x"]), ("_x100", arrays["x100"])):
            for name, value in zip(("Fs", "Ff", "Fp"), net.encode(torch.from_numpy(x))):
                torch.testing.assert_close(value, torch.from_numpy(arrays[f"{name}{suffix}_f32"]), rtol=1e-4,
                                           atol=1e-5)


def test_each_official_encoder_tensor_lands_on_its_mapped_name():
    raw = torch.load(ENCODER, weights_only=True)
    own = PCLNetwork(width=1.0, image_size=64).state_dict()
    converted = convert_official_pcl(raw)
    for key, value in raw.items():
        target = official_pcl_key(key)
        assert converted[target] is value and own[target].shape == value.shape, key
    assert official_pcl_key("module.encoder.resblock2.conv1.bias") == "backbone.resblocks.1.conv1.bias"
    assert official_pcl_key("module.encoder.layer3_2_exp.2.weight") == "face_subnet.body.2.weight"
    assert official_pcl_key("module.encoder.layer3_2_pose.0.bias") == "pose_subnet.body.0.bias"


def test_whole_official_checkpoint_maps_one_to_one_onto_pcl():
    """The 105 official names (heads and decoder included) map onto every tensor of PCLNetwork, entry by entry."""
    keys = official_keys()
    assert len(keys) == 105
    state = {}
    for i, (name, shape, dtype) in enumerate(keys):  # tensor i is filled with i: a swapped pair would show
        state[name] = torch.full(shape, i, dtype=getattr(torch, dtype))
    net = PCLNetwork(width=1.0, image_size=64)
    converted = convert_official_pcl(state)
    assert set(converted) == set(net.state_dict())
    net.load_state_dict(converted, strict=True)
    loaded = net.state_dict()
    for i, (name, _, _) in enumerate(keys):
        assert torch.all(loaded[official_pcl_key(name)] == i), name
    assert official_pcl_key("module.exp_fc.3.running_var") == "face_head.net.3.running_var"
    assert official_pcl_key("module.pose_fc.0.weight") == "pose_head.net.0.weight"
    assert official_pcl_key("module.decoder.model.22.bias") == "decoder.stages.5.2.bias"
    assert official_pcl_key("module.decoder.model.7.running_mean") == "decoder.stages.1.3.running_mean"
    with pytest.raises(CheckpointError, match="module.decoder.model.4.weight"):
        official_pcl_key("module.decoder.model.4.weight")  # a ReLU slot holds no weights


def test_official_evaluation_style_dict_is_recognised(tmp_path):
    """The official evaluation code strips ``module.encoder.``; loaded non-strictly by name into this project's
    trunk, its ``resblock1/2`` would stay random. Recognised, it loads completely and gives the official F_s."""
    raw = torch.load(ENCODER, weights_only=True)
    torch.save({k.removeprefix("module.encoder."): v for k, v in raw.items()}, tmp_path / "eval_style.pth")
    backbone = FaceCycleBackbone(1.0)
    report = load_backbone(backbone, tmp_path / "eval_style.pth")
    assert report.format == "pcl-official" and report.missing == []
    arrays = np.load(OFFICIAL / "official_encoder_seed0.npz")
    with torch.no_grad():
        torch.testing.assert_close(backbone(torch.from_numpy(arrays["x"])), torch.from_numpy(arrays["Fs_f32"]),
                                   rtol=1e-4, atol=1e-5)


def test_strict_loading_names_missing_keys_and_non_strict_records_them(tmp_path):
    raw = torch.load(ENCODER, weights_only=True)
    partial = {k: v for k, v in raw.items() if ".resblock" not in k}
    torch.save({"state_dict": partial}, tmp_path / "partial.pth")
    backbone = FaceCycleBackbone(1.0)
    with pytest.raises(CheckpointError) as err:
        load_backbone(backbone, tmp_path / "partial.pth")
    assert "missing (8)" in str(err.value) and "resblocks.0.conv1.weight" in str(err.value)
    before = backbone.resblocks[0].conv1.weight.clone()
    report = load_backbone(backbone, tmp_path / "partial.pth", strict=False)
    assert report.format == "pcl-official" and len(report.missing) == 8
    assert report.to_dict()["random_layers"][0].startswith("resblocks.")
    assert torch.equal(backbone.resblocks[0].conv1.weight, before)  # left as initialised
    assert torch.equal(backbone.conv1[0].weight, raw["module.encoder.conv1.0.weight"].float())
    assert report.to_dict()["ignored_keys"] == 8  # the two subnets' weights: not part of the trunk


def test_prefixed_state_dict_is_stripped_and_wrong_shapes_are_refused(tmp_path):
    source = FaceCycleBackbone(0.25)
    torch.save({"model": {f"module.encoder_q.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "q.pth")
    target = FaceCycleBackbone(0.25)
    report = load_backbone(target, tmp_path / "q.pth")
    assert report.format == "state-dict" and report.missing == [] and len(report.sha256) == 64
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))
    with pytest.raises(CheckpointError, match="shapes differ"):
        load_backbone(FaceCycleBackbone(0.5), tmp_path / "q.pth", strict=False)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth: not a readable torch checkpoint"):
        load_backbone(target, tmp_path / "junk.pth")


def test_timm_pretrained_weights_from_an_offline_file(tmp_path):
    cfg = ModelConfig(backbone="timm:test_resnet", small_stem=False)
    published = build_backbone(cfg)
    state = {**published.state_dict(), "fc.weight": torch.zeros(1000, published.num_features),
             "fc.bias": torch.zeros(1000)}  # a published file carries its classifier; timm drops it
    torch.save(state, tmp_path / "weights.pth")
    loaded = build_backbone(ModelConfig(backbone="timm:test_resnet", small_stem=False, pretrained=True,
                                        pretrained_file=str(tmp_path / "weights.pth")))
    assert all(torch.equal(a, b) for a, b in zip(published.state_dict().values(), loaded.state_dict().values()))


def test_eval_of_a_trained_trunk_reproduces_its_run(tmp_path):
    """backbone.pt and last.pt of a pretraining, evaluated without pretraining, give the run's own numbers."""
    runner = CliRunner()
    smoke = ["-t", "digits", "--preset", "smoke", "--no-progress", "--out", str(tmp_path / "runs")]
    run = runner.invoke(main, ["run", "-m", "simclr", *smoke], catch_exceptions=False)
    assert run.exit_code == 0 and "Pretraining checkpoint:" in run.output and "backbone.pt" in run.output
    record = json.loads((tmp_path / "runs" / "digits" / "simclr" / "smoke-seed0.json").read_text())
    trunk = Path(record["checkpoint"]) / "backbone.pt"
    assert set(torch.load(trunk, weights_only=True)) == set(build_backbone(
        ModelConfig(backbone="timm:test_resnet", small_stem=False)).state_dict())
    for path, fmt in ((trunk, "state-dict"), (Path(record["checkpoint"]) / "last.pt", "pcfrl-bench")):
        result = runner.invoke(main, ["eval", "-m", "simclr", "--checkpoint", str(path), *smoke],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "kind: pcfrl-bench (model section of" in result.output  # the config.yaml beside the file
        assert "architecture: timm:test_resnet (detected)" in result.output
        given = json.loads(Path(result.output.split("record: ")[1].split()[0]).read_text())
        assert given["weights"]["format"] == fmt and given["weights"]["random_layers"] == []
        assert given["weights"]["kind"] == "pcfrl-bench"
        assert given["weights"]["loaded_tensors"] == given["weights"]["trunk_tensors"] == len(
            torch.load(trunk, weights_only=True))
        assert given["metrics"] == record["metrics"] and given["registry_config"] is False
        assert given["wall_time_s"]["pretrain"] == 0.0
    assert json.loads((tmp_path / "runs" / "digits" / "simclr" / "smoke-seed0.json").read_text()) == record
    forced = runner.invoke(main, ["eval", "--checkpoint", str(ENCODER), *smoke, "--set", "model.backbone=timm:test_resnet"])
    assert forced.exit_code == 2 and "missing" in forced.output and "unexpected" in forced.output
    assert "the file's keys: module.encoder.conv1 (4)" in forced.output  # the file's names, not only the trunk's
