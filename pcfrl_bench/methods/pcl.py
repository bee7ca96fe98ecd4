"""PCL (Liu et al., CVPR 2023) and PCFRL (Liu et al., IJCV 2025): one class, PCFRL = PCL + calibration.

One training step (Eq. 8, one optimiser step per batch):
L = L_PDD + alpha_pose (L_p + L'_p) + alpha_face (L_f + L'_f), with L_PDD = Eq. 1 + Eq. 2 on the pose
pair (s, s^), L_p / L_f the pose- and face-aware contrastive losses (Eq. 6), L'_p / L'_f the calibrated
losses (Eq. 7) over the pairs Algorithm 1 finds (run twice: pose and face features, own T and beta), and
alpha from DWA. ``pcl`` has calibration off; ``pcfrl`` on; the Table 5-8 variants are YAML over this file.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..data.views import face_appearance, face_views, pose_transform, pose_views
from ..distributed import gather_no_grad, gather_with_grad, rank_rows
from ..errors import ConfigError
from ..losses import DynamicWeightAverage, orthogonality_loss, reconstruction_loss
from ..models.facecycle import LEAK
from ..models.pcl_parts import PDDDecoder, ProjectionHead, Subnet
from ..schema.methods import PCFRLParams, PCLParams
from .base import METHODS, Method, StepOutput
from .calibrated import Branch, branch_loss, calibration_logs, pair_truth, precision_from_means, view_labels

BRANCHES = ("pose", "face")


def pose_negative_columns(n_views: int, n_flips: int, mode: str, device: torch.device | None = None) -> Tensor | None:
    """(M, M) bool columns allowed as pose negatives, M = n_views + n_flips; None = every other image's view.

    ``flips_only`` (official ``neg_inter_info_nce_loss_pose``): only the flipped views (the last ``n_flips``).
    """
    if mode == "all" or n_flips == 0:
        return None
    if mode != "flips_only":
        raise ConfigError(f"pose_negatives must be one of all, flips_only, got {mode!r}")
    m = n_views + n_flips
    return (torch.arange(m, device=device) >= n_views).expand(m, m)


class FlatSubnet(nn.Module):
    """Subnet for backbones without a feature map (e.g. ``timm:*``): two Linear + LeakyReLU on F_s."""

    def __init__(self, dim: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, dim), nn.LeakyReLU(LEAK), nn.Linear(dim, dim), nn.LeakyReLU(LEAK))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x.flatten(1))


def pose_head_outputs(head: nn.Module, features: Tensor, n_positives: int, bn: str) -> Tensor:
    """The pose head on [positives; flips]: one BatchNorm batch (``joint``) or one per set (``separate``,
    the official code, which calls the head once on the positives and once on the flipped negatives)."""
    if bn == "joint" or features.shape[0] == n_positives:
        return head(features)
    if bn != "separate":
        raise ConfigError(f"pose_head_bn must be one of joint, separate, got {bn!r}")
    return torch.cat([head(features[:n_positives]), head(features[n_positives:])])


@METHODS.register("pcl")
class PCL(Method):
    """PCL: PDD (Eq. 1, 2) + pose-/face-aware contrastive losses (Eq. 6) weighted by DWA (Eq. 8)."""

    Params = PCLParams

    def __init__(self, params: PCLParams, backbone: nn.Module, feature_dim: int, image_size: int):
        super().__init__(params, backbone, feature_dim, image_size)
        self.has_map = hasattr(backbone, "forward_map") and hasattr(backbone, "out_channels")
        if self.has_map:
            self.face_subnet, self.pose_subnet = Subnet(backbone.out_channels), Subnet(backbone.out_channels)
        else:
            self.face_subnet, self.pose_subnet = FlatSubnet(feature_dim), FlatSubnet(feature_dim)
        self.face_head = ProjectionHead(feature_dim, params.head_hidden_dim, params.head_dim)
        self.pose_head = ProjectionHead(feature_dim, params.head_hidden_dim, params.head_dim)
        self.decoder = PDDDecoder(feature_dim, out_size=image_size, out_activation=params.decoder_out,
                                  width=float(getattr(backbone, "width", 1.0)))
        self.dwa = DynamicWeightAverage(len(BRANCHES), params.dwa_temperature)
        self.register_buffer("loss_weights", torch.ones(len(BRANCHES)))  # (alpha_pose, alpha_face) of Eq. 8

    # ---- state: DWA history travels in the state_dict, so a resumed run is exact -----------------------
    def get_extra_state(self) -> Any:
        return {"dwa": self.dwa.state_dict()}

    def set_extra_state(self, state: Any) -> None:
        self.dwa.load_state_dict(state["dwa"])

    def trunk(self, x: Tensor) -> Tensor:
        """The trunk's map (B, C, h, w) for facecycle, else its flat features (B, D)."""
        return self.backbone.forward_map(x) if self.has_map else self.backbone(x).flatten(1)

    def named_features(self, x: Tensor) -> dict[str, Tensor]:
        """F_s and the subnet features F_f (``face``) and F_p (``pose``) of images."""
        m = self.trunk(x)  # its flattened output is F_s, the encoder's output
        return {"fs": m.flatten(1), "face": self.face_subnet(m).flatten(1), "pose": self.pose_subnet(m).flatten(1)}

    def branches(self, batch: dict[str, Tensor]) -> list[Branch]:
        """Pose and face branches: the training views, trunk, subnet and head, gathered over the global batch.

        Face: two distance-crop views per image. Pose: two appearance-augmented views per image, plus (with
        ``pose_flip_negatives``) one pose-transformed view per image, a negative of every anchor (its group
        is its own); ``pose_negatives=flips_only`` keeps the other images' views out of the pose negatives
        and ``pose_head_bn=separate`` runs the pose head on positives and flips as two BatchNorm batches.
        """
        p = self.params
        x = batch["image"]
        n = x.shape[0]
        fv = torch.cat(face_views(x, p.augment))
        pv = [torch.cat(pose_views(x, p.augment))]
        if p.pose_flip_negatives:
            pv.append(face_appearance(pose_transform(x, p.pose_rotation_deg), p.augment))
        # the trunk and subnets have no BatchNorm: one pass over all views equals separate passes
        pv = torch.cat(pv)
        m_face, m_pose = self.trunk(torch.cat([fv, pv])).split([2 * n, pv.shape[0]])
        zf = self.face_head(self.face_subnet(m_face))
        fp = self.pose_subnet(m_pose)
        zp = pose_head_outputs(self.pose_head, fp, 2 * n, p.pose_head_bn)
        zf = torch.cat([gather_with_grad(c) for c in zf.split(n)])  # global batch, view-major
        zp = torch.cat([gather_with_grad(c) for c in zp.split(n)])
        big_n = zf.shape[0] // 2
        ar = torch.arange(big_n, device=x.device)
        meta = {k: gather_no_grad(v) for k, v in batch.items() if k != "image" and torch.is_tensor(v)}
        g_face = ar.repeat(2)
        face = Branch("face", zf, g_face, p.calib_face, pair_truth("face", view_labels(meta, g_face)))
        flips = zp.shape[0] - 2 * big_n
        g_pose = torch.cat([ar, ar, ar[:flips] + big_n])  # a flip is its own group: a negative of every anchor
        mirrored = torch.arange(zp.shape[0], device=x.device) >= 2 * big_n
        pose = Branch("pose", zp, g_pose, p.calib_pose, pair_truth("pose", view_labels(meta, g_pose % big_n, mirrored)),
                      pose_negative_columns(2 * big_n, flips, p.pose_negatives, x.device))
        return [pose, face]

    def training_step(self, batch: dict[str, Tensor]) -> StepOutput:
        p = self.params
        x = batch["image"]
        x_hat = pose_transform(x, p.pose_rotation_deg)  # s^ of Eq. 1
        clean = torch.cat([x, x_hat])
        noise = rank_rows(lambda m: torch.randn(m, *x.shape[1:], device=x.device, dtype=x.dtype), x.shape[0],
                          blocks=2)
        noisy = clean + p.noise_sigma * noise  # denoising PDD: targets stay clean
        m_pdd = self.trunk(noisy)
        f_all, p_all = self.face_subnet(m_pdd), self.pose_subnet(m_pdd)
        f, f_hat = f_all.chunk(2)
        pp, p_hat = p_all.chunk(2)
        l_rec = reconstruction_loss(self.decoder, f, pp, f_hat, p_hat, x, x_hat)  # Eq. 1
        l_orth = (orthogonality_loss(f, pp, p.orth, p.orth_normalize)
                  + orthogonality_loss(f_hat, p_hat, p.orth, p.orth_normalize))  # Eq. 2
        l_pdd = p.rec_weight * l_rec + p.orth_weight * l_orth

        branches = self.branches(batch)
        out = {b.name: branch_loss(b, p.temperature, p.denominator, p.neg_mixing_alpha) for b in branches}
        pose, face = out["pose"], out["face"]
        l_pose = pose.contrastive + pose.calibrated
        l_face = face.contrastive + face.calibrated
        a_pose, a_face = self.loss_weights[0] * p.alpha_pose, self.loss_weights[1] * p.alpha_face
        loss = l_pdd + a_pose * l_pose + a_face * l_face  # Eq. 8

        logs: dict[str, Tensor] = {
            "loss": loss.detach(), "loss_pdd": l_pdd.detach(), "loss_rec": l_rec.detach(),
            "loss_orth": l_orth.detach(), "loss_pose": l_pose.detach(), "loss_face": l_face.detach(),
            "loss_pose_contrastive": pose.contrastive.detach(), "loss_pose_calibrated": pose.calibrated.detach(),
            "loss_face_contrastive": face.contrastive.detach(), "loss_face_calibrated": face.calibrated.detach(),
            "alpha_pose": a_pose.detach(), "alpha_face": a_face.detach(),
        }
        for b in branches:
            logs.update(calibration_logs(b.name, out[b.name].mask, b))
        return StepOutput(loss, logs)

    def on_epoch_end(self, epoch: int, epoch_means: dict[str, float]) -> dict[str, float]:
        if self.params.dwa:  # Eq. 8 alphas for the next epoch from the unweighted epoch means
            self.dwa.update([epoch_means["loss_pose"], epoch_means["loss_face"]])
            self.loss_weights.copy_(torch.tensor(self.dwa.weights(), dtype=self.loss_weights.dtype))
        return precision_from_means(epoch_means, BRANCHES)


@METHODS.register("pcfrl")
class PCFRL(PCL):
    """PCFRL: PCL + NPA calibration of pose and face features (Algorithm 1 twice) + calibrated losses (Eq. 7)."""

    Params = PCFRLParams
