"""`eval --checkpoint FILE` tells what the file holds: kind, trunk, width, input normalisation; no guessed options."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from click.testing import CliRunner

from pcfrl_bench.cli import main
from pcfrl_bench.models.detect import CheckpointError, describe, detect_for_eval
from pcfrl_bench.models.facecycle import FaceCycleBackbone
from pcfrl_bench.resolution import resolve

ENCODER = Path(__file__).parent / "data" / "official-pcl" / "official_encoder_seed0.pt"
SMOKE = ["-t", "digits", "--preset", "smoke", "--no-progress"]


def timm_state(name: str, **kwargs) -> dict[str, torch.Tensor]:
    return timm.create_model(name, pretrained=False, **kwargs).state_dict()  # with its 1000-class classifier


def detect(tmp_path: Path, obj: object, name: str = "weights.pth"):
    torch.save(obj, tmp_path / name)
    return detect_for_eval(tmp_path / name)


def test_official_pcl_is_facecycle_at_its_width_with_inputs_in_0_1(tmp_path):
    found = detect_for_eval(ENCODER)
    assert found.kind == "pcl-official"
    assert found.model == {"backbone": "facecycle", "width": 1.0, "batchnorm": False, "zero_init_residual": False,
                           "input_norm": "none"}
    keys = json.loads((ENCODER.parent / "official_state_dict_keys.json").read_text())["keys"]
    whole = {name: torch.zeros(shape, dtype=getattr(torch, dtype)) for name, shape, dtype in keys}
    assert detect(tmp_path, {"state_dict": whole, "epoch": 800}).model == found.model  # the released checkpoint
    eval_style = {k.removeprefix("module.encoder."): v for k, v in torch.load(ENCODER, weights_only=True).items()}
    assert detect(tmp_path, {"state_dict": eval_style}).model["width"] == 1.0  # the official evaluation code's dict


@pytest.mark.parametrize("name, depth", [("resnet18", "resnet18"), ("resnet34", "resnet34"), ("resnet50", "resnet50"),
                                         ("resnet50d", "resnet50d")])
def test_timm_resnets_are_told_apart_by_blocks_and_stems(tmp_path, name, depth):
    found = detect(tmp_path, timm_state(name))
    assert found.kind == "resnet" and found.model["backbone"] == f"timm:{depth}"
    assert found.model["width"] == 1.0 and found.model["input_norm"] == "imagenet"
    assert found.model.get("small_stem", False) is False  # a 7x7 stem (or a deep one)


def test_width_stem_and_prefixes_of_a_resnet(tmp_path):
    quarter = timm.create_model("resnet18", num_classes=0, channels=(16, 32, 64, 128))
    small = dict(quarter.state_dict(), **{"conv1.weight": torch.zeros(64, 3, 3, 3)})  # a CIFAR-style stem
    moco = {"state_dict": {f"module.encoder_q.{k}": v for k, v in small.items()}
            | {"module.encoder_q.fc.0.weight": torch.zeros(2048, 128), "module.queue": torch.zeros(128, 10)}}
    found = detect(tmp_path, moco)
    assert found.model == {"backbone": "timm:resnet18", "width": 0.25, "input_norm": "imagenet", "batchnorm": False,
                           "small_stem": True}


def test_torchvision_resnet_has_the_timm_layout(tmp_path):
    found = detect(tmp_path, torchvision.models.resnet50(weights=None).state_dict())
    assert (found.kind, found.model["backbone"], found.model["small_stem"]) == ("resnet", "timm:resnet50", False)


def test_a_facecycle_trunk_without_config_keeps_the_tasks_normalisation(tmp_path):
    found = detect(tmp_path, FaceCycleBackbone(0.25, batchnorm=True).state_dict())
    assert found.kind == "facecycle" and found.model == {"backbone": "facecycle", "width": 0.25, "batchnorm": True,
                                                         "zero_init_residual": False}
    model = resolve("checkpoint", "synth-fer", "smoke", overrides=found.overrides()).config.model
    assert describe(found, model)[-1] == "  input normalisation: ImageNet mean and std (the task's; not stored in the file)"


def test_an_unknown_file_lists_its_prefixes_beside_each_known_kind(tmp_path):
    vit = {"cls_token": torch.zeros(1), "pos_embed": torch.zeros(1), "patch_embed.proj.weight": torch.zeros(1),
           **{f"blocks.{i}.attn.qkv.weight": torch.zeros(1) for i in range(12)}}
    torch.save({"model": vit}, tmp_path / "vit.pth")
    with pytest.raises(CheckpointError) as err:
        detect_for_eval(tmp_path / "vit.pth")
    text = str(err.value)
    assert "its keys: blocks (12), cls_token (1), patch_embed (1), pos_embed (1)" in text
    for kind in ("pcfrl-bench: model, optimizer", "pcl-official: module.encoder", "resnet: conv1, bn1, layer1",
                 "facecycle: conv1, layer1, layer2_1"):
        assert kind in text
    assert detect_for_eval(tmp_path / "vit.pth", ["model.backbone=timm:vit_tiny_patch16_224"]) is None  # user's call
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(tmp_path / "vit.pth"), *SMOKE])
    assert result.exit_code == 2 and "cannot tell what this checkpoint holds" in result.output
    assert "Traceback" not in result.output


def test_eval_of_the_official_checkpoint_prints_what_it_detected(tmp_path):
    out = ["--out", str(tmp_path / "runs")]
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(ENCODER), *SMOKE, *out], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for line in ("kind: pcl-official", "architecture: facecycle (detected)", "width: 1 (detected)",
                 "input normalisation: none, inputs in [0, 1] (detected)", "tensors loaded: 40/40 of the trunk"):
        assert line in result.output, line
    record = json.loads(Path(result.output.split("record: ")[1].split()[0]).read_text())
    assert record["weights"]["kind"] == "pcl-official" and len(record["weights"]["sha256"]) == 64
    assert (record["weights"]["loaded_tensors"], record["weights"]["trunk_tensors"]) == (40, 40)
    assert record["config"]["model"]["input_norm"] == "none" and record["config"]["model"]["width"] == 1.0
    chosen = CliRunner().invoke(main, ["eval", "--checkpoint", str(ENCODER), *SMOKE, *out, "--set",
                                       "model.input_norm=imagenet"], catch_exceptions=False)
    assert "input normalisation: ImageNet mean and std (set)" in chosen.output  # the user's choice wins


def test_eval_of_a_timm_resnet_state_dict_needs_no_options(tmp_path):
    torch.save(timm_state("resnet18", channels=(16, 32, 64, 128)), tmp_path / "r18.pth")
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(tmp_path / "r18.pth"), *SMOKE, "--out",
                                       str(tmp_path / "runs")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "architecture: timm:resnet18 (detected)" in result.output and "width: 0.25 (detected)" in result.output
    loaded = re.search(r"tensors loaded: (\d+)/(\d+) of the trunk, 2 tensors outside the trunk ignored", result.output)
    assert loaded and loaded.group(1) == loaded.group(2)


def test_non_strict_refuses_a_file_that_fills_under_half_of_the_trunk(tmp_path):
    raw = torch.load(ENCODER, weights_only=True)
    stub = {k: v for k, v in raw.items() if k.startswith(("module.encoder.conv1.", "module.encoder.layer3_2_exp."))}
    torch.save(stub, tmp_path / "stub.pth")
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(tmp_path / "stub.pth"), *SMOKE, "--non-strict",
                                       "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "only 4 of the backbone's 40 tensors" in result.output
    assert "the file's keys: module.encoder.conv1 (4), module.encoder.layer3_2_exp (4)" in result.output
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.json"))
