"""``pcl-official`` against the official PCL code: every official function on its recorded fixture.

The fixtures in ``tests/data/official_pcl/`` hold inputs and outputs of the official functions (see the
README there); expected values and tolerances are read from them, never typed in here. Each official-side
option is also switched to the project's side to show that the fixture then fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pcfrl_bench.calibration import cosine_matrix
from pcfrl_bench.losses import (DynamicWeightAverage, NegativeMix, contrastive_loss, mixed_negative_cosines,
                                negative_slots, orthogonality_loss)
from pcfrl_bench.methods.calibrated import Branch, CalibrationParams, branch_loss
from pcfrl_bench.methods.pcl import pose_head_outputs, pose_negative_columns
from pcfrl_bench.models.pcl_parts import PCLNetwork, ProjectionHead, official_encoder_state
from pcfrl_bench.runner import resolve

DATA = Path(__file__).parent / "data" / "official_pcl"
REF = np.load(DATA / "reference.npz")
META = json.loads((DATA / "reference.json").read_text())
SIZES = META["settings"]["batch sizes"]
TAU = META["settings"]["temperature"]
TOL = 1e-10  # "float64 loss fixtures": abs 1e-10 (recommended_tolerances in reference.json)
MIX_LOGITS_TOL, MIX_LOSS_TOL = 1e-6, 1e-8  # "extra_*mix*": logits abs 1e-6, losses abs 1e-8
DWA_TOL = 1e-6  # "dwa_weights": abs 1e-6


def t(name: str, grad: bool = False) -> torch.Tensor:
    return torch.tensor(REF[name]).requires_grad_(grad)


def close(got: torch.Tensor, name: str, tol: float = TOL) -> bool:
    return float((got.detach() - t(name)).abs().max()) <= tol


def official(key: str) -> object:
    """An option of the ``pcl-official`` method as the registry resolves it."""
    cfg = resolve("pcl-official", "digits", "smoke", overrides=["model.backbone=facecycle"]).config
    return getattr(cfg.method, key)


def test_each_section_has_the_sizes_of_its_arrays() -> None:
    """The recorded sizes of every section agree with its arrays (the tests build their layouts from them)."""
    rows = {"diff_f": SIZES["diff_B"], "face_z": 2 * SIZES["face_B"], "pose_z": 2 * SIZES["pose_B"],
            "pose_neg": SIZES["pose_B"] * SIZES["pose_K"], "pose_head_pre_pos": 2 * SIZES["head_B"],
            "pose_head_pre_neg": SIZES["head_B"] * SIZES["head_K"]}
    assert {name: REF[name].shape[0] for name in rows} == rows
    assert REF["diff_f"].shape[1] == SIZES["diff_D"] and REF["face_z"].shape[1] == SIZES["face_d"]
    assert REF["pose_z"].shape[1] == SIZES["pose_d"] and REF["pose_head_pre_pos"].shape[1] == SIZES["head_in"]
    assert REF["pose_head_out_pos"].shape[1] == SIZES["head_out"]


def test_fixture_tolerances_are_the_ones_recorded() -> None:
    tol = META["recommended_tolerances"]
    assert "1e-10" in tol["float64 loss fixtures (diff_*, face_*, pose_*, pose_head_*)"]
    assert "logits abs 1e-6, losses abs 1e-8" in tol["extra_*mix*"] and "abs 1e-6" in tol["dwa_weights"]


# ---- orthogonality (DiffLoss) -------------------------------------------------------------------------


def test_orthogonality_official_matches_diffloss_and_its_gradients() -> None:
    f, p = t("diff_f", True), t("diff_p", True)
    loss = orthogonality_loss(f, p, official("orth"))
    loss.backward()
    assert close(loss, "diff_loss") and close(f.grad, "diff_grad_f") and close(p.grad, "diff_grad_p")
    assert not close(orthogonality_loss(f, p, "paper"), "diff_loss")


# ---- face loss ----------------------------------------------------------------------------------------


def face_groups() -> torch.Tensor:
    return torch.arange(SIZES["face_B"]).repeat(2)


def official_logits(cos: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """The official (anchor, [positive, negatives in column order]) / tau layout of an (M, M) cosine matrix."""
    _, slots = negative_slots(groups)
    m = groups.shape[0]
    partner = (torch.arange(m) + m // 2) % m
    return torch.cat([cos.gather(1, partner[:, None]), cos.gather(1, slots)], 1) / TAU


def test_face_infonce_matches_official_logits_loss_and_gradient() -> None:
    z, g = t("face_z", True), face_groups()
    assert close(official_logits(cosine_matrix(z), g), "face_logits")
    loss = contrastive_loss(z, g, tau=TAU, denominator=official("denominator"))
    loss.backward()
    assert close(loss, "face_loss") and close(z.grad, "face_grad_z")
    assert not close(contrastive_loss(z, g, tau=TAU, denominator="negatives"), "face_loss")


def test_face_negative_mixing_matches_the_recorded_beta_draw() -> None:
    z, g = t("face_z"), face_groups()
    mix = NegativeMix(t("extra_face_mix_lambda"), t("extra_face_mix_perm"))
    cos = mixed_negative_cosines(z, g, mix)
    assert close(official_logits(cos, g), "extra_face_mix_logits", MIX_LOGITS_TOL)
    assert close(contrastive_loss(z, g, tau=TAU, cosines=cos), "extra_face_mix_loss", MIX_LOSS_TOL)
    assert not close(contrastive_loss(z, g, tau=TAU), "extra_face_mix_loss", MIX_LOSS_TOL)  # no mixing


# ---- pose loss: flips only, in the official block layout ------------------------------------------------


def flip_sizes(section: str) -> tuple[int, int]:
    """(B images, K flips per image) of a fixture section with flipped pose negatives: ``pose`` (the pose loss)
    or ``head`` (the pose head); each test reads the sizes of the section whose arrays it uses."""
    return SIZES[f"{section}_B"], SIZES[f"{section}_K"]


def pose_layout(mode: str, section: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Groups of [2B positives; K*B flips] and the allowed negatives: anchor i gets flip rows of block i mod B.

    The block is the official code's layout of its K*B flips (its anchors each get K consecutive rows); the
    mode decides whether the other images' views are negatives as well.
    """
    b, k = flip_sizes(section)
    n_pos, n_neg = 2 * b, k * b
    groups = torch.cat([torch.arange(b).repeat(2), b + torch.arange(n_neg)])
    anchor_block = torch.arange(n_pos + n_neg) % b
    col_block = (torch.arange(n_pos + n_neg) - n_pos).div(k, rounding_mode="floor")
    is_flip = torch.arange(n_pos + n_neg) >= n_pos
    block = (anchor_block[:, None] == col_block[None, :]) & is_flip[None, :]
    mode_cols = pose_negative_columns(n_pos, n_neg, mode)
    allowed = block | ~is_flip[None, :].expand_as(block)
    return groups, (allowed if mode_cols is None else allowed & mode_cols)


def pose_branch(z: torch.Tensor, mode: str, section: str = "pose") -> Branch:
    groups, allowed = pose_layout(mode, section)
    return Branch("pose", z, groups, CalibrationParams(), None, allowed)


def test_pose_loss_flips_only_matches_official_loss_and_gradients() -> None:
    pos, neg = t("pose_z", True), t("pose_neg", True)
    z = torch.cat([pos, neg])
    mode = official("pose_negatives")
    loss = branch_loss(pose_branch(z, mode), TAU).contrastive
    loss.backward()
    assert close(loss, "pose_loss") and close(pos.grad, "pose_grad_z") and close(neg.grad, "pose_grad_neg")
    b = pose_branch(z, mode)
    anchors, slots = negative_slots(b.groups, b.allowed)  # anchor i's K flips, in the official column order
    n_pos = 2 * SIZES["pose_B"]
    cos = cosine_matrix(z.detach())
    positive = cos[anchors, (anchors + n_pos // 2) % n_pos][:, None]
    assert close(torch.cat([positive, cos[anchors].gather(1, slots)], 1) / TAU, "pose_logits")
    assert not close(branch_loss(pose_branch(z, "all"), TAU).contrastive, "pose_loss")


def test_pose_negative_mixing_matches_the_recorded_beta_draw() -> None:
    z = torch.cat([t("pose_z"), t("pose_neg")])
    b = pose_branch(z, official("pose_negatives"))
    lam = t("extra_pose_mix_lambda").repeat(2, 1)  # the official draw is per image, shared by its two views
    cos = mixed_negative_cosines(z, b.groups, NegativeMix(lam, t("extra_pose_mix_perm")), b.allowed)
    loss = contrastive_loss(z, b.groups, tau=TAU, allowed=b.allowed, cosines=cos)
    assert close(loss, "extra_pose_mix_loss", MIX_LOSS_TOL)
    assert not close(contrastive_loss(z, b.groups, tau=TAU, allowed=b.allowed), "extra_pose_mix_loss", MIX_LOSS_TOL)


# ---- pose head: two BatchNorm batches -------------------------------------------------------------------


def official_head() -> ProjectionHead:
    head = ProjectionHead(SIZES["head_in"], SIZES["head_hidden"], SIZES["head_out"]).double().train()
    state = {f"net.{k.removeprefix('pose_head_init.')}": torch.tensor(REF[k]) for k in REF.files
             if k.startswith("pose_head_init.")}
    head.load_state_dict(state)
    return head


def pose_head_step(bn: str) -> tuple[ProjectionHead, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    head = official_head()
    pre_pos, pre_neg = t("pose_head_pre_pos", True), t("pose_head_pre_neg", True)
    out = pose_head_outputs(head, torch.cat([pre_pos, pre_neg]), pre_pos.shape[0], bn)
    loss = branch_loss(pose_branch(out, official("pose_negatives"), "head"), TAU).contrastive
    loss.backward()
    return head, out, loss, pre_pos.grad, pre_neg.grad


def test_pose_head_separate_bn_matches_the_official_step() -> None:
    head, out, loss, g_pos, g_neg = pose_head_step(official("pose_head_bn"))
    n_pos = SIZES["head_B"] * 2
    assert close(out[:n_pos], "pose_head_out_pos") and close(out[n_pos:], "pose_head_out_neg")
    assert close(loss, "pose_head_loss")
    assert close(g_pos, "pose_head_grad_pre_pos") and close(g_neg, "pose_head_grad_pre_neg")
    for name, prm in head.net.named_parameters():
        assert close(prm.grad, f"pose_head_grad.{name}"), name
    bn = head.net[3]
    assert close(bn.running_mean, "pose_head_after.3.running_mean")
    assert close(bn.running_var, "pose_head_after.3.running_var")
    assert int(bn.num_batches_tracked) == int(REF["pose_head_after.3.num_batches_tracked"])
    _, _, joint, _, _ = pose_head_step("joint")
    assert not close(joint, "pose_head_loss")
    assert abs(float(joint.detach()) - META["diagnostics_not_official"]["pose_head_loss_if_one_joint_BN_batch"]) <= TOL


def test_the_pose_head_step_reads_only_the_head_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixture whose pose-loss section has other sizes than the head section: the head step still matches."""
    monkeypatch.setitem(SIZES, "pose_B", SIZES["head_B"] + 3)
    monkeypatch.setitem(SIZES, "pose_K", SIZES["head_K"] - 7)
    _, out, loss, _, _ = pose_head_step(official("pose_head_bn"))
    assert close(out[: 2 * SIZES["head_B"]], "pose_head_out_pos") and close(loss, "pose_head_loss")


# ---- DWA ---------------------------------------------------------------------------------------------


def test_dwa_weights_match_the_official_epochs() -> None:
    history, expected = REF["dwa_loss_history"], REF["dwa_weights"]  # columns: (face, pose)
    dwa = DynamicWeightAverage(2, META["settings"]["dwa_T"])  # the project's order: (pose, face)
    for epoch in range(expected.shape[0]):  # row e-1: the weights used during epoch e
        pose_w, face_w = dwa.weights()
        assert abs(face_w - expected[epoch, 0]) <= DWA_TOL and abs(pose_w - expected[epoch, 1]) <= DWA_TOL, epoch
        if epoch < history.shape[0]:
            dwa.update([history[epoch, 1], history[epoch, 0]])


# ---- encoder: an official checkpoint's F_s, F_f, F_p ----------------------------------------------------


def test_official_encoder_weights_give_the_official_features() -> None:
    enc = np.load(DATA / "encoder.npz")
    state = {k.removeprefix("weight:"): torch.tensor(enc[k]) for k in enc.files if k.startswith("weight:")}
    net = PCLNetwork().eval()
    missing, unexpected = net.load_state_dict(official_encoder_state(state), strict=False)
    assert not unexpected and not any(k.startswith(("backbone.", "face_subnet.", "pose_subnet.")) for k in missing)
    tol = 1e-4  # "*_f32 from another implementation": abs 1e-4 x max|ref| (encoder.json)
    with torch.no_grad():
        for x in ("x", "x100"):
            suffix = "" if x == "x" else "_x100"
            for name, got in zip(("Fs", "Ff", "Fp"), net.encode(torch.tensor(enc[x]))):
                ref = torch.tensor(enc[f"{name}{suffix}_f32"])
                assert float((got - ref).abs().max()) <= tol * float(ref.abs().max()), (x, name)


def test_official_encoder_state_rejects_other_files() -> None:
    with pytest.raises(ValueError, match="not an official PCL state_dict"):
        official_encoder_state({"backbone.conv1.0.weight": torch.zeros(1)})
