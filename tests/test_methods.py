"""MoCo, PCL, PCFRL and the Table 5-8 variants: CLI smoke runs, hand checks of MoCo, DWA, calibration logs,
pcl-official options, resume equality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from pcfrl_bench import catalog
from pcfrl_bench.cli import main
from pcfrl_bench.data.tensors import TensorImageDataset
from pcfrl_bench.data.views import simclr_view
from pcfrl_bench.distributed import gather_no_grad, gather_with_grad
from pcfrl_bench.losses import NegativeMix, draw_negative_mix, mixed_negative_cosines
from pcfrl_bench.methods.calibrated import (
    Branch,
    CalibrationParams,
    calibration_logs,
    pair_truth,
    precision_from_means,
    view_labels,
)
from pcfrl_bench.methods.moco import MoCo, moco_logits
from pcfrl_bench.methods.pcl import PCFRL, PCL
from pcfrl_bench.runner import build_method, resolve
from pcfrl_bench.train import pretrain

FACE = ["model.backbone=facecycle", "model.width=0.125", "data.image_size=32", "eval.image_size=32"]
TINY = ["data.max_samples=16", "pretrain.batch_size=8", "eval.max_train=64", "eval.max_test=32"]
METHODS = catalog.names("method")

NEW = ["moco", "pcl", "pcfrl", "pcl-official", "pcl-calib-cos", "pcl-npa-elim", "pcfrl-top1", "pcfrl-top2",
       "pcfrl-top5", "pcfrl-sim-cos", "pcfrl-sim-attn", "pcfrl-sim-npa", "simclr-calib-cos", "simclr-calib-npa"]


def test_every_variant_of_tables_5_to_8_is_registered() -> None:
    assert set(NEW) <= set(METHODS)


@pytest.mark.parametrize("name", METHODS)
def test_method_runs_smoke_preset_through_cli(name: str, tmp_path: Path) -> None:
    args = ["run", "-m", name, "-t", "digits", "--preset", "smoke", "--no-progress",
            "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    epochs = [] if name in ("pcfrl", "moco") else ["pretrain.epochs=1"]  # the two main ones: the full smoke preset
    frozen = catalog.entry("method", name).implementation == "frozen"  # the floors pin their backbone and 0 epochs
    for o in TINY if frozen else FACE + TINY + epochs:
        args += ["--set", o]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    [path] = (tmp_path / "runs" / "digits" / name).glob("smoke-seed0-*.json")  # --set runs: named by config hash
    record = json.loads(path.read_text())
    assert record["method"] == name and 0 <= record["metrics"]["accuracy"] <= 100
    assert 0 < record["trivial"]["accuracy"] < 100
    if frozen:
        assert record["config"]["pretrain"]["epochs"] == 0 and record["pretrain_log"] == []
        return
    log = next((tmp_path / "cache" / "pretrain").rglob("log.jsonl")).read_text().splitlines()
    assert len(log) == record["config"]["pretrain"]["epochs"]
    first = json.loads(log[0])
    if name.startswith(("pcl", "pcfrl")):
        for key in ("loss_pdd", "loss_rec", "loss_orth", "loss_pose", "loss_face", "alpha_pose", "alpha_face"):
            assert key in first
        calibrates = name != "pcl" and name != "pcl-official"
        assert ("face_cal_pairs" in first) == calibrates and ("pose_cal_rate" in first) == calibrates
    if name.startswith("simclr-calib"):  # digits carries "label": the precision of calibrated pairs is logged
        assert "view_cal_rate" in first and "view_cal_correct" in first
        assert first["view_cal_pairs"] == 0 or 0 <= first["view_cal_precision"] <= 1


def test_yaml_variants_set_the_named_options() -> None:
    def method(name: str, *sets: str):
        return resolve(name, "digits", "smoke", overrides=list(FACE) + list(sets)).config.method

    off = method("pcl")
    assert not off.calib_pose.enabled and not off.calib_face.enabled
    on = method("pcfrl")
    assert on.calib_pose.enabled and on.calib_pose.beta == 0.2 and on.calib_face.beta == 1.0
    assert on.calib_face.alpha == 10.0 and on.calib_face.threshold == 1.0 and on.temperature == 0.07
    assert method("pcfrl-top2").calib_face.rule == "topk" and method("pcfrl-top2").calib_pose.k == 2
    assert method("pcfrl-top5").calib_pose.k == 5 and method("pcfrl-top1").calib_face.rule == "top1"
    assert method("pcl-npa-elim").calib_face.loss is False and method("pcl-npa-elim").calib_face.enabled
    assert method("pcl-calib-cos").calib_pose.score == "cosine"
    assert method("pcfrl-sim-attn").calib_face.similarity == "attention"
    assert method("pcfrl-sim-npa").calib_pose.similarity == "npa"
    assert method("pcfrl-sim-cos").calib_pose.similarity == "cosine"
    official = method("pcl-official")
    assert (official.pose_rotation_deg, official.decoder_out, official.orth, official.neg_mixing_alpha) == (
        0.0, "tanh", "official", 1.6)
    assert (official.pose_negatives, official.pose_head_bn, official.augment.hue_space, official.augment.sobel_padding,
            official.augment.patch_ratio) == ("flips_only", "separate", "hsv", "zero", 0.375)
    assert (off.pose_negatives, off.pose_head_bn, off.augment.hue_space, off.augment.sobel_padding) == (
        "all", "joint", "yiq", "replicate")  # pcl and pcfrl keep the project's side
    assert resolve("pcl-official", "digits", "smoke", overrides=FACE).config.pretrain.optim.scheduler == "official"
    assert method("simclr-calib-npa").calibration.enabled and method("simclr-calib-cos").calibration.score == "cosine"
    assert not method("simclr").calibration.enabled
    # the paper's sweeps are one command each
    swept = method("pcfrl", "method.calib_face.alpha=5", "method.calib_pose.threshold=2", "method.calib_face.beta=0.5",
                   "method.calib_face.ns_reduction=sum")
    assert (swept.calib_face.alpha, swept.calib_pose.threshold, swept.calib_face.beta) == (5.0, 2.0, 0.5)
    assert swept.calib_face.ns_reduction == "sum"
    # NS averaged by default (Fig. 7's scale), the printed sum as a variant
    assert (method("pcfrl").calib_pose.ns_reduction, method("pcfrl").calib_face.ns_reduction) == ("mean", "mean")
    assert method("pcfrl-ns-sum").calib_face.ns_reduction == method("pcfrl-ns-sum").calib_pose.ns_reduction == "sum"
    assert method("simclr-calib-npa").calibration.ns_reduction == "mean"
    cfg = resolve("pcfrl", "digits", "paper", overrides=FACE).config
    assert (cfg.pretrain.epochs, cfg.pretrain.batch_size, cfg.pretrain.optim.lr, cfg.pretrain.optim.weight_decay) == (
        1000, 256, 1e-4, 1e-3)


# ---- MoCo by hand ------------------------------------------------------------------------------------


def _moco(queue_size: int = 10, momentum: float = 0.9) -> MoCo:
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16))
    # MoCo v2's head (no BatchNorm): keys by hand need no groups (shuffling BN: test_moco_shuffle_bn.py)
    params = MoCo.Params(queue_size=queue_size, momentum=momentum, proj_hidden_dim=8, proj_dim=4, proj_bn=False)
    return MoCo(params, backbone, 16, 8)


def test_moco_queue_update_by_hand() -> None:
    torch.manual_seed(0)
    moco = _moco()
    x = torch.rand(4, 3, 8, 8)
    queue0 = moco.queue.clone()
    torch.manual_seed(5)
    out = moco.training_step({"image": x})
    torch.manual_seed(5)
    v1, v2 = simclr_view(x, moco.params.augment), simclr_view(x, moco.params.augment)
    keys = F.normalize(moco.key_projector(moco.key_backbone(v2)), dim=1)
    q = F.normalize(moco.projector(moco.backbone(v1)), dim=1)
    assert torch.allclose(moco.queue[:4], keys, atol=1e-6) and torch.equal(moco.queue[4:], queue0[4:])
    assert int(moco.queue_ptr) == 4
    logits = torch.cat([(q * keys).sum(1, keepdim=True), q @ queue0.T], 1) / 0.2  # queue before the step
    assert torch.allclose(out.loss, F.cross_entropy(logits, torch.zeros(4, dtype=torch.long)), atol=1e-5)
    assert torch.allclose(moco_logits(q, keys, queue0, 0.2), logits)
    moco.queue_ptr.fill_(8)  # wrap-around: rows 8, 9, 0, 1
    torch.manual_seed(6)
    moco.training_step({"image": x})
    torch.manual_seed(6)
    _, v2 = simclr_view(x, moco.params.augment), simclr_view(x, moco.params.augment)
    keys = F.normalize(moco.key_projector(moco.key_backbone(v2)), dim=1)
    assert torch.allclose(moco.queue[[8, 9, 0, 1]], keys, atol=1e-6) and int(moco.queue_ptr) == 2
    assert "queue" in moco.state_dict() and "queue_ptr" in moco.state_dict()


def test_moco_momentum_update_by_hand() -> None:
    torch.manual_seed(0)
    moco = _moco(momentum=0.9)
    with torch.no_grad():
        for prm in list(moco.backbone.parameters()) + list(moco.projector.parameters()):
            prm.add_(1.0)  # make the query encoder differ from the key encoder
    q_before = [prm.clone() for prm in list(moco.backbone.parameters()) + list(moco.projector.parameters())]
    k_before = [prm.clone() for prm in moco.key_modules_parameters()]
    moco.on_step_end()
    for k_new, k_old, q in zip(moco.key_modules_parameters(), k_before, q_before):
        assert torch.allclose(k_new, 0.9 * k_old + 0.1 * q, atol=1e-6)
    assert all(not prm.requires_grad for prm in moco.key_modules_parameters())


# ---- PCL / PCFRL through the training loop -----------------------------------------------------------


def _face_data(n: int = 16, size: int = 32) -> TensorImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=g)
    identity = torch.arange(n) % 4
    yaw = (torch.arange(n) % 3).float() * 30 - 30
    return TensorImageDataset(images, {"identity": identity, "yaw": yaw})


def _method(name: str, *sets: str):
    resolved = resolve(name, "digits", "smoke", overrides=list(FACE) + ["pretrain.batch_size=8"] + list(sets))
    torch.manual_seed(0)
    return build_method(resolved), resolved.config


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_pcfrl_dwa_and_calibration_logs(tmp_path: Path) -> None:
    method, cfg = _method("pcfrl", "pretrain.epochs=3")
    pretrain(method, _face_data(), cfg.pretrain, tmp_path, seed=0, device=torch.device("cpu"), progress=False)
    rows = _log(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[0]["alpha_pose"] == rows[0]["alpha_face"] == rows[1]["alpha_pose"] == 1.0
    # Eq. 8 with DWA: alpha_k(3) = 2 softmax_k(w / 2), w_k = L_k(2) / L_k(1) (unweighted epoch means)
    w = torch.tensor([rows[1]["loss_pose"] / rows[0]["loss_pose"], rows[1]["loss_face"] / rows[0]["loss_face"]])
    expected = 2 * torch.softmax(w.double() / 2, 0)
    assert rows[2]["alpha_pose"] == pytest.approx(float(expected[0]), rel=1e-5)
    assert rows[2]["alpha_face"] == pytest.approx(float(expected[1]), rel=1e-5)
    assert rows[2]["alpha_pose"] != 1.0
    for r in rows:
        for branch in ("pose", "face"):
            pairs, rate = r[f"{branch}_cal_pairs"], r[f"{branch}_cal_rate"]
            assert 0 <= pairs <= 16 and rate == pytest.approx(pairs / 16)  # 2N = 16 views, <= 1 partner each
            if pairs > 0:
                assert 0 <= r[f"{branch}_cal_precision"] <= 1
                assert r[f"{branch}_cal_precision"] == pytest.approx(r[f"{branch}_cal_correct"] / pairs)
    assert rows[0]["loss"] == pytest.approx(
        rows[0]["loss_pdd"] + rows[0]["loss_pose"] + rows[0]["loss_face"], rel=1e-5)  # alpha = 1 in epoch 1


class _StopAfterFirstEpoch(TensorImageDataset):
    def set_epoch(self, epoch: int) -> None:
        if epoch == 1:
            raise KeyboardInterrupt


def test_pcfrl_resume_is_exact(tmp_path: Path) -> None:
    method, cfg = _method("pcfrl", "pretrain.epochs=3", "pretrain.checkpoint_every=1")
    data = _face_data()
    cpu = torch.device("cpu")
    pretrain(method, data, cfg.pretrain, tmp_path / "a", seed=0, device=cpu, progress=False)
    interrupted, _ = _method("pcfrl", "pretrain.epochs=3", "pretrain.checkpoint_every=1")
    stopper = _StopAfterFirstEpoch(data.images, data.targets)
    with pytest.raises(KeyboardInterrupt):
        pretrain(interrupted, stopper, cfg.pretrain, tmp_path / "b", seed=0, device=cpu, progress=False)
    resumed, _ = _method("pcfrl", "pretrain.epochs=3", "pretrain.checkpoint_every=1")
    pretrain(resumed, data, cfg.pretrain, tmp_path / "b", seed=0, device=cpu, resume=True, progress=False)
    a, b = method.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
    assert method.dwa.history == resumed.dwa.history and len(method.dwa.history) == 2


def test_pcl_official_options_change_the_computation() -> None:
    x = _face_data(8).images
    base, _ = _method("pcl")
    state = base.state_dict()

    def loss(*sets: str) -> dict[str, float]:
        m, _ = _method("pcl", *sets)
        m.load_state_dict(state)
        torch.manual_seed(3)
        return {k: float(v) for k, v in m.training_step({"image": x}).logs.items()}

    ref = loss()
    assert loss("method.orth=official")["loss_orth"] != pytest.approx(ref["loss_orth"])
    assert loss("method.orth=official")["loss_rec"] == pytest.approx(ref["loss_rec"])
    assert loss("method.decoder_out=tanh")["loss_rec"] != pytest.approx(ref["loss_rec"])
    assert loss("method.pose_rotation_deg=0")["loss_rec"] != pytest.approx(ref["loss_rec"])
    mixed = loss("method.neg_mixing_alpha=1.6")
    assert mixed["loss_face"] != pytest.approx(ref["loss_face"]) and mixed["loss_pdd"] == pytest.approx(ref["loss_pdd"])
    flips = loss("method.pose_flip_negatives=true")
    assert flips["loss_pose"] != pytest.approx(ref["loss_pose"])
    only = loss("method.pose_flip_negatives=true", "method.pose_negatives=flips_only")
    assert only["loss_pose"] != pytest.approx(flips["loss_pose"])
    assert only["loss_face"] == pytest.approx(flips["loss_face"])
    separate = loss("method.pose_flip_negatives=true", "method.pose_head_bn=separate")
    assert separate["loss_pose"] != pytest.approx(flips["loss_pose"])
    assert loss("method.pose_head_bn=separate")["loss_pose"] == pytest.approx(ref["loss_pose"])  # no flips: one set
    official, _ = _method("pcl-official")
    assert official.decoder.out_activation == "tanh"


def test_pcfrl_is_pcl_with_calibration() -> None:
    x = _face_data(8).images
    pcl, _ = _method("pcl")
    pcfrl, _ = _method("pcfrl")
    assert isinstance(pcfrl, PCFRL) and isinstance(pcfrl, PCL)
    pcfrl.load_state_dict(pcl.state_dict())
    torch.manual_seed(3)
    a = pcl.training_step({"image": x}).logs
    torch.manual_seed(3)
    b = pcfrl.training_step({"image": x}).logs
    assert float(a["loss_pdd"]) == pytest.approx(float(b["loss_pdd"]))  # same views, same PDD
    assert float(b["face_cal_pairs"]) > 0  # sum-NS with T = 1 calibrates (helper-2's finding)
    assert float(a["loss_face"]) != pytest.approx(float(b["loss_face"]))


# ---- pure helpers ------------------------------------------------------------------------------------


def test_mixed_negative_cosines_by_hand() -> None:
    torch.manual_seed(0)
    z = torch.randn(6, 5, dtype=torch.float64)
    groups = torch.arange(3).repeat(2)
    mix = draw_negative_mix(groups, 1.6)
    assert mix.lam.shape == (6, 4) and sorted(mix.perm.tolist()) == [0, 1, 2, 3]
    got = mixed_negative_cosines(z, groups, mix)
    q = F.normalize(z, dim=1)
    plain = q @ q.T
    for i in range(6):
        cols = [j for j in range(6) if groups[j] != groups[i]]  # slot s = the s-th negative column
        for j in range(6):
            if groups[j] == groups[i]:
                assert got[i, j] == pytest.approx(float(plain[i, j]))
        for s_, j in enumerate(cols):
            lam = float(mix.lam[i, s_])
            u = lam * z[j] + (1 - lam) * z[cols[int(mix.perm[s_])]]
            assert got[i, j] == pytest.approx(float(q[i] @ F.normalize(u, dim=0)))
    ones = NegativeMix(torch.ones(6, 4), mix.perm)  # lambda = 1 leaves every negative unchanged
    assert torch.allclose(mixed_negative_cosines(z, groups, ones), plain)


def test_calibration_logs_and_precision_by_hand() -> None:
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 1] = mask[2, 3] = mask[3, 0] = True
    groups = torch.arange(2).repeat(2)  # N = 2 images, 4 views: view v shows image v % 2
    batch = {"identity": torch.tensor([7, 7]), "emotion": torch.tensor([1, 2])}
    truth = pair_truth("face", view_labels(batch, groups))
    face = Branch("face", torch.zeros(4, 2), groups, CalibrationParams(), truth)
    logs = calibration_logs("face", mask, face)
    assert float(logs["face_cal_pairs"]) == 3 and float(logs["face_cal_rate"]) == 0.75
    assert float(logs["face_cal_correct"]) == 3  # all share identity 7
    yaw = {"yaw": torch.tensor([0.0, 10.0, 10.0, 40.0])}  # per view
    pose = Branch("pose", torch.zeros(4, 2), torch.arange(4), CalibrationParams(), pair_truth("pose", yaw))
    assert float(calibration_logs("pose", mask, pose)["pose_cal_correct"]) == 1  # |0-10| <= 15; 30, 40 > 15
    assert precision_from_means({"pose_cal_pairs": 3.0, "pose_cal_correct": 1.0}, ("pose", "face")) == {
        "pose_cal_precision": pytest.approx(1 / 3)}
    assert calibration_logs("face", None, face) == {}


def test_view_labels_mirror_the_angles_of_flipped_views() -> None:
    batch = {"yaw": torch.tensor([30.0, -5.0]), "roll": torch.tensor([4.0, 2.0]), "pitch": torch.tensor([1.0, 2.0]),
             "aus": torch.zeros(2, 3)}
    labels = view_labels(batch, torch.tensor([0, 1, 0]), torch.tensor([False, False, True]))
    assert labels["yaw"].tolist() == [30.0, -5.0, -30.0] and labels["roll"].tolist() == [4.0, 2.0, -4.0]
    assert labels["pitch"].tolist() == [1.0, 2.0, 1.0] and "aus" not in labels  # per-sample vectors are skipped
    truth = pair_truth("pose", labels)
    assert truth[0, 0] and not truth[0, 2]  # a face at yaw 30 and its mirror at -30 are 60 degrees apart


def test_gather_is_identity_without_process_group() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    assert gather_with_grad(x) is x and gather_no_grad(x) is x
