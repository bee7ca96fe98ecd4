from dataclasses import dataclass, field

import pytest

from pcfrl_bench.config import (ModelConfig, RunConfig, build_dataclass, config_hash, deep_merge, parse_override,
                                resolve_config)
from pcfrl_bench.errors import ConfigError, UnknownNameError
from pcfrl_bench.runner import resolve


@dataclass
class Inner:
    beta: float = 0.2
    rule: str = "threshold"


@dataclass
class Params:
    alpha: float = 10.0
    k: int = 1
    inner: Inner = field(default_factory=Inner)


def test_deep_merge_later_wins_and_keeps_siblings():
    merged = deep_merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}})
    assert merged == {"a": {"x": 1, "y": 3}, "b": 1}


def test_parse_override_nests_dotted_keys_and_parses_yaml():
    assert parse_override("pretrain.optim.lr=3e-4") == {"pretrain": {"optim": {"lr": "3e-4"}}}
    assert parse_override("a.b=true") == {"a": {"b": True}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("no-equals-sign")


def test_layers_merge_in_order_and_values_are_typed():
    layers = [{"pretrain": {"epochs": 5, "optim": {"lr": 0.1}}}, {"pretrain": {"epochs": 7}},
              parse_override("pretrain.optim.lr=3e-4"), parse_override("method.inner.beta=1")]
    cfg = resolve_config(layers, Params, Params)
    assert cfg.pretrain.epochs == 7
    assert cfg.pretrain.optim.lr == pytest.approx(3e-4) and isinstance(cfg.pretrain.optim.lr, float)
    assert cfg.method.inner.beta == 1.0 and isinstance(cfg.method.inner.beta, float)
    assert cfg.method.alpha == 10.0  # untouched default


def test_unknown_key_lists_close_matches():
    with pytest.raises(UnknownNameError, match="pretrain.epochs"):
        resolve_config([{"pretrain": {"epoch": 3}}], Params, Params)
    with pytest.raises(UnknownNameError, match="method.alpha"):
        resolve_config([{"method": {"alpah": 3}}], Params, Params)


@pytest.mark.parametrize("section,value,message", [
    ({"pretrain": {"epochs": "many"}}, None, "expected int"),
    ({"pretrain": {"epochs": 2.5}}, None, "integer"),
    ({"pretrain": {"optim": {"name": "lamb"}}}, None, "not one of"),
    ({"model": {"small_stem": "yes"}}, None, "true or false"),
    ({"pretrain": {"optim": {"betas": [0.9]}}}, None, "expected 2 values"),
])
def test_bad_values_are_errors(section, value, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config([section], Params, Params)


def test_hash_is_stable_and_sensitive():
    a, b = RunConfig(), RunConfig()
    assert a.pretrain_hash("simclr") == b.pretrain_hash("simclr")
    b.pretrain.epochs += 1
    assert a.pretrain_hash("simclr") != b.pretrain_hash("simclr")
    c = RunConfig()
    c.eval.probe.lr = 0.5  # evaluation settings do not change the pretraining checkpoint
    c.run.task = "other"
    assert a.pretrain_hash("simclr") == c.pretrain_hash("simclr")
    assert config_hash({"x": 1, "y": 2}) == config_hash({"y": 2, "x": 1})


def test_build_dataclass_defaults():
    assert build_dataclass(ModelConfig, {}) == ModelConfig()


def test_resolve_merges_method_task_preset_and_overrides():
    r = resolve("simclr", "digits", "smoke", seed=3, overrides=["pretrain.epochs=4", "method.temperature=0.2"])
    cfg = r.config
    assert cfg.run.seed == 3 and cfg.run.preset == "smoke"
    assert cfg.pretrain.epochs == 4  # --set wins over the smoke preset
    assert cfg.pretrain.batch_size == 32  # method smoke preset
    assert cfg.model.backbone == "timm:test_resnet"  # task smoke preset
    assert cfg.method.temperature == 0.2
    quick = resolve("simclr", "digits", "quick").config
    assert quick.pretrain.epochs != cfg.pretrain.epochs


def test_resolve_errors_suggest_names():
    with pytest.raises(UnknownNameError, match="simclr"):
        resolve("simclrr", "digits")
    with pytest.raises(UnknownNameError, match="digits"):
        resolve("simclr", "digit")
    with pytest.raises(ConfigError, match="preset"):
        resolve("simclr", "digits", "huge")
    with pytest.raises(ConfigError, match="--method"):
        resolve("simclr", "digits", overrides=["run.method=other"])


def test_options_added_later_keep_old_records_on_their_registry_config():
    """A ``hash_neutral`` option at its default hashes as if it did not exist (records made before it still match)."""
    from pcfrl_bench.config import config_hash

    cfg = resolve("pcfrl", "synth-fer", "quick").config
    before = cfg.to_dict()  # the config as an older version, without the options, would have it
    del before["run"]["device"]
    for key in ("pose_negatives", "pose_head_bn"):
        del before["method"][key]
    for key in ("hue_space", "sobel_padding"):
        del before["method"]["augment"][key]
    for key in ("checkpoint", "strict", "pretrained", "pretrained_file"):  # weights to evaluate (issue 13)
        del before["model"][key]
    for key in ("precision", "sync_bn", "channels_last", "snapshot_every"):
        del before["pretrain"][key]
    del before["eval"]["verification_center"]
    for key in ("expression_scale", "zoom"):  # the synthetic world's look (issue 22)
        del before["data"]["synthetic"][key]
    assert cfg.result_hash() != config_hash(before)  # PCL's code changed its results (HASH_REVISION 2) ...
    before["method"]["hash_revision"] = 2  # ... and says so in its hash, nowhere else
    assert cfg.result_hash() == config_hash(before)
    assert "hash_revision" not in cfg.to_dict()["method"]
    assert "pose_negatives" in cfg.to_dict()["method"]  # the stored config still shows them
    moved = resolve("pcfrl", "synth-fer", "quick", overrides=["method.pose_negatives=flips_only"]).config
    assert moved.result_hash() != cfg.result_hash() and moved.pretrain_hash("pcfrl") != cfg.pretrain_hash("pcfrl")
    hsv = resolve("pcfrl", "synth-fer", "quick", overrides=["method.augment.hue_space=hsv"]).config
    assert hsv.result_hash() != cfg.result_hash()


def test_a_partial_nested_section_completes_the_fields_own_default() -> None:
    """PCFRLParams' calibration defaults (on, beta_pose 0.2) stay when one calibration key is set; MoCo's own
    augmentation default (blur 0.5) stays when another augmentation key is set."""
    from pcfrl_bench.resolution import resolve
    method = resolve("pcfrl", "digits", "smoke", overrides=["method.calib_pose.alpha=5"]).config.method
    assert method.calib_pose.enabled and method.calib_pose.alpha == 5 and method.calib_pose.beta == 0.2
    assert method.calib_face.enabled and method.calib_face.alpha == 10
    augment = resolve("moco", "digits", "smoke", overrides=["method.augment.flip_p=0.3"]).config.method.augment
    assert augment.flip_p == 0.3 and augment.blur_p == 0.5
