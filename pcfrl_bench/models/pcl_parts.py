"""PCL/PCFRL parts on top of the trunk: pose/face subnets, projection heads, PDD decoder.

Shapes follow the released PCL code (docs/methods.md, "Official code vs paper vs this project"). At
width 1 and 64 px: encoder (trunk + 2 subnets) = 2,469,760 parameters, each head 5,246,464, decoder
4,300,035, whole pretraining model (``PCLNetwork``) 17,262,723.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcfrl_bench.errors import ConfigError
from pcfrl_bench.models.facecycle import LEAK, FaceCycleBackbone, conv, conv_lrelu, init_official, scaled
from pcfrl_bench.schema.methods import PCLParams, decoder_plan

DECODER_OUTPUTS = ("sigmoid", "tanh", "none")


class Subnet(nn.Module):
    """Pose or face branch: two 3x3 conv + LeakyReLU(0.1) on the trunk map, flattened (``layer3_2_*``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(*conv_lrelu(channels, channels), *conv_lrelu(channels, channels))
        init_official(self)  # lives inside the official backbone class, so it gets the backbone init

    def forward_map(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, trunk_map: Tensor) -> Tensor:
        """(B, C, h, w) trunk map -> (B, C*h*w) branch feature (F_p or F_f)."""
        return self.body(trunk_map).flatten(1)


class ProjectionHead(nn.Module):
    """Linear(D->hidden) -> ReLU -> Linear(hidden->out) -> BatchNorm1d(out) (PyTorch default init)."""

    def __init__(self, in_dim: int, hidden_dim: int = PCLParams.head_hidden_dim, out_dim: int = PCLParams.head_dim):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
            nn.BatchNorm1d(out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PDDDecoder(nn.Module):
    """Pose-disentangled decoder D: L2-normalise(f + p) -> image (B, 3, out_size, out_size).

    Linear(D->512) reshaped to 512x1x1, then log2(out_size) stages of
    [ReLU -> bilinear x2 upsample -> conv3x3 (-> BatchNorm)]: 512->256, 256->256 (repeated),
    256->128, 128->3 (no BN on the last). A side that is not a power of two, ``b * 2**n`` with b odd
    (e.g. 96 = 3 * 2**5, STL-10), starts from a 512 x b x b map (Linear D -> 512*b*b) and has n stages;
    powers of two keep the official 1x1 start. ``out_activation``: ``sigmoid`` (default, [0,1] targets),
    ``tanh`` (official code) or ``none``.
    """

    def __init__(
        self,
        in_dim: int,
        out_size: int = 64,
        out_activation: str = PCLParams.decoder_out,
        width: float = 1.0,
    ):
        super().__init__()
        self.start, n_stages = decoder_plan(out_size)
        if out_activation not in DECODER_OUTPUTS:
            raise ConfigError(
                f"decoder out_activation must be one of {', '.join(DECODER_OUTPUTS)}, got {out_activation!r}"
            )
        c512, c256, c128 = scaled(512, width), scaled(256, width), scaled(128, width)
        chans = [c512, c256] + [c256] * (n_stages - 3) + [c128, 3]
        self.latent_channels = c512
        self.fc = nn.Linear(in_dim, c512 * self.start**2)
        stages: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:])):
            last = i == n_stages - 1
            layers: list[nn.Module] = [
                nn.ReLU(),
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                conv(cin, cout),
            ]
            if not last:
                layers.append(nn.BatchNorm2d(cout))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.out_activation = out_activation

    @staticmethod
    def combine(f: Tensor, p: Tensor) -> Tensor:
        """Decoder input of the official code: L2-normalise(f + p) along the feature dimension."""
        return F.normalize(f + p, dim=1)

    def decode(self, z: Tensor) -> Tensor:
        """Decode an already-combined code z (B, D)."""
        x = self.fc(z).reshape(z.shape[0], self.latent_channels, self.start, self.start)
        x = self.stages(x)
        if self.out_activation == "sigmoid":
            return torch.sigmoid(x)
        if self.out_activation == "tanh":
            return torch.tanh(x)
        return x

    def forward(self, f: Tensor, p: Tensor) -> Tensor:
        """D(F_f, F_p): reconstruct a face with the face code of ``f`` and the pose code of ``p``."""
        return self.decode(self.combine(f, p))


class PCLNetwork(nn.Module):
    """Whole PCL pretraining model: trunk + face/pose subnets + face/pose heads + PDD decoder.

    ``encode(x)`` returns (F_s, F_f, F_p) flattened, like the official backbone's forward.
    """

    def __init__(
        self,
        width: float = 1.0,
        image_size: int = 64,
        head_hidden: int = PCLParams.head_hidden_dim,
        head_out: int = PCLParams.head_dim,
        decoder_out: str = PCLParams.decoder_out,
    ):
        super().__init__()
        self.backbone = FaceCycleBackbone(width)
        c = self.backbone.out_channels
        self.face_subnet = Subnet(c)
        self.pose_subnet = Subnet(c)
        dim = self.backbone.feature_dim(image_size)
        self.feature_dim = dim
        self.face_head = ProjectionHead(dim, head_hidden, head_out)
        self.pose_head = ProjectionHead(dim, head_hidden, head_out)
        self.decoder = PDDDecoder(dim, out_size=image_size, out_activation=decoder_out, width=width)

    def encoder_modules(self) -> list[nn.Module]:
        """The encoder of the parameter count: trunk and both subnets."""
        return [self.backbone, self.face_subnet, self.pose_subnet]

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B,3,H,W) -> (F_s, F_f, F_p), each (B, feature_dim)."""
        m = self.backbone.forward_map(x)
        return m.flatten(1), self.face_subnet(m), self.pose_subnet(m)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.encode(x)


OFFICIAL_PREFIX = "module.encoder."
OFFICIAL_RENAMES = (("resblock1.", "backbone.resblocks.0."), ("resblock2.", "backbone.resblocks.1."),
                    ("layer3_2_exp.", "face_subnet.body."), ("layer3_2_pose.", "pose_subnet.body."), ("", "backbone."))


def official_encoder_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The encoder entries of an official PCL state_dict (``module.encoder.*``) under :class:`PCLNetwork` names.

    Trunk -> ``backbone``, ``resblock1/2`` -> ``backbone.resblocks.0/1``, ``layer3_2_exp`` -> ``face_subnet``,
    ``layer3_2_pose`` -> ``pose_subnet``; float32. Other entries (heads, decoder) are left out. Load the result
    with ``load_state_dict(..., strict=False)``.
    """
    out = {}
    for key, value in state.items():
        if not key.startswith(OFFICIAL_PREFIX):
            continue
        name = key[len(OFFICIAL_PREFIX):]
        old, new = next((o, n) for o, n in OFFICIAL_RENAMES if name.startswith(o))
        out[new + name[len(old):]] = value.float()
    if not out:
        raise ValueError(f"no {OFFICIAL_PREFIX}* entries: not an official PCL state_dict")
    return out


def count_parameters(*modules: nn.Module) -> int:
    """Total number of parameters of the given modules (shared parameters counted once)."""
    seen: set[int] = set()
    total = 0
    for module in modules:
        for prm in module.parameters():
            if id(prm) not in seen:
                seen.add(id(prm))
                total += prm.numel()
    return total


__all__ = ["Subnet", "ProjectionHead", "PDDDecoder", "PCLNetwork", "count_parameters", "official_encoder_state", "LEAK"]
