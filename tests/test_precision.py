"""Mixed precision (``pretrain.precision``): autocast losses against fp32, fp32 losses under autocast,
the fp16 GradScaler, and the setting in the config, its hash and the errors."""

from __future__ import annotations

import pytest
import torch

from pcfrl_bench.errors import ConfigError
from pcfrl_bench.methods.calibrated import Branch, CalibrationParams, branch_loss
from pcfrl_bench.precision import MixedPrecision, fp32
from pcfrl_bench.runner import build_method, resolve
from pcfrl_bench.train import build_optimizer, optimisation_step, seed_everything

CPU = torch.device("cpu")
# (method, task, image size, relative tolerance of bf16 vs fp32); measured on CPU: pcfrl 1.3e-2, pcl 1.0e-2,
# simclr 1.3e-3, moco 1.6e-2. bf16 keeps 8 bits of mantissa and tau = 0.07 multiplies the rounded cosines by 14.
CASES = [("pcfrl", "synth-fer", 32, 3e-2), ("pcl", "synth-fer", 32, 3e-2), ("simclr", "digits", 16, 1e-2),
         ("moco", "digits", 16, 3e-2)]


def _loss(name: str, task: str, size: int, precision: str) -> torch.Tensor:
    """The first-step loss of a fresh smoke model on a fixed batch (fresh: MoCo's forward fills its queue)."""
    method = build_method(resolve(name, task, "smoke", overrides=["model.width=1"] if name == "moco" else []))
    x = torch.rand(16, 3, size, size, generator=torch.Generator().manual_seed(0))
    seed_everything(3)
    with MixedPrecision(precision, CPU).autocast():
        return method({"image": x}).loss.detach()


@pytest.mark.parametrize("name,task,size,tol", CASES)
def test_bf16_loss_matches_fp32_within_the_stated_tolerance(name, task, size, tol):
    ref, low = _loss(name, task, size, "fp32"), _loss(name, task, size, "bf16")
    assert low.dtype == torch.float32  # the loss itself is computed in float32
    assert float(low) == pytest.approx(float(ref), rel=tol)
    assert float(low) != float(ref)  # autocast did run the trunk in bf16


def test_losses_are_float32_under_autocast():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    groups = torch.arange(4).repeat(2)
    cp = CalibrationParams(enabled=True, threshold=0.0)
    ref = branch_loss(Branch("face", z, groups, cp), 0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = branch_loss(Branch("face", z.bfloat16(), groups, cp), 0.1)  # features rounded to bf16, loss in fp32
    assert low.contrastive.dtype == low.calibrated.dtype == torch.float32
    exact = branch_loss(Branch("face", z.bfloat16().float(), groups, cp), 0.1)
    assert torch.equal(low.contrastive, exact.contrastive) and torch.equal(low.mask, exact.mask)
    assert float(low.contrastive) == pytest.approx(float(ref.contrastive), rel=1e-2)

    @fp32
    def matmul(a: torch.Tensor) -> torch.Tensor:
        return a @ a.T
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (z @ z.T).dtype == torch.bfloat16 and matmul(z).dtype == torch.float32


def test_fp16_step_scales_the_loss_and_keeps_the_scaler_state():
    resolved = resolve("simclr", "digits", "smoke")
    method = build_method(resolved)
    optimizer = build_optimizer(method.parameters(), resolved.config.pretrain.optim)
    amp = MixedPrecision("fp16", CPU)
    assert amp.scaler.is_enabled() and not MixedPrecision("bf16", CPU).scaler.is_enabled()
    before = [p.detach().clone() for p in method.parameters()]
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    optimisation_step(method, optimizer, {"image": x}, amp=amp)
    after = list(method.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert amp.scaler.get_scale() in (65536.0, 32768.0)  # scaled by 2**16, halved once if the first step overflowed
    if amp.scaler.get_scale() == 65536.0:  # the step was taken, with the unscaled gradient
        assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_precision_is_typed_recorded_and_hash_neutral_at_its_default():
    cfg = resolve("pcfrl", "synth-fer", "smoke").config
    bf16 = resolve("pcfrl", "synth-fer", "smoke", overrides=["pretrain.precision=bf16"]).config
    explicit = resolve("pcfrl", "synth-fer", "smoke", overrides=["pretrain.precision=fp32"]).config
    assert cfg.to_dict()["pretrain"]["precision"] == "fp32" and bf16.pretrain.precision == "bf16"
    assert explicit.result_hash() == cfg.result_hash() != bf16.result_hash()
    assert "precision" not in cfg.pretrain_identity("pcfrl")["pretrain"]  # hashes of stored records stay valid
    assert bf16.pretrain_hash("pcfrl") != cfg.pretrain_hash("pcfrl")
    with pytest.raises(ConfigError, match="pretrain.precision.*'fp8' is not one of"):
        resolve("pcfrl", "synth-fer", "smoke", overrides=["pretrain.precision=fp8"])
    with pytest.raises(ValueError, match="precision must be one of"):
        MixedPrecision("fp8", CPU)


@pytest.mark.parametrize("name", ["pcl", "simclr"])
def test_channels_last_trains_the_same_model(tmp_path, name):
    """``pretrain.channels_last`` (on by default): NHWC weights, the same losses up to float32 rounding, and
    never part of the config hashes (an execution setting, like the device)."""
    from pcfrl_bench.data.sources import build_source
    from pcfrl_bench.steplog import read_steps
    from pcfrl_bench.train import pretrain

    assert resolve(name, "synth-fer", "smoke").config.pretrain.channels_last
    losses = {}
    for flag in (False, True):
        resolved = resolve(name, "synth-fer", "smoke", overrides=[f"pretrain.channels_last={str(flag).lower()}",
                                                                  "pretrain.epochs=1", "pretrain.batch_size=8"])
        method = build_method(resolved)
        pretrain(method, build_source(resolved.config.data, tmp_path / "data"), resolved.config.pretrain,
                 tmp_path / str(flag), seed=0, device=CPU, progress=False)
        conv = method.backbone.conv1[0].weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == flag
        losses[flag] = [r["loss"] for r in read_steps(tmp_path / str(flag))]
    assert len(losses[True]) == 2 and losses[True][0] == pytest.approx(losses[False][0], rel=1e-6)
    # after one Adam step (every weight moved by +-lr, also those whose gradient is rounding noise): 6e-5 measured
    assert losses[True][1] == pytest.approx(losses[False][1], rel=1e-3)
    plain = resolve(name, "synth-fer", "smoke").config
    off = resolve(name, "synth-fer", "smoke", overrides=["pretrain.channels_last=false"]).config
    assert off.result_hash() == plain.result_hash() and off.pretrain_hash(name) == plain.pretrain_hash(name)
    assert "channels_last" not in plain.pretrain_identity(name)["pretrain"]
