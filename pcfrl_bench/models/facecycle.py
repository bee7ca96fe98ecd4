"""FaceCycle/PCL trunk: the shared encoder of PCL (CVPR 2023) and PCFRL (IJCV 2025).

Layer shapes follow the released PCL code (docs/methods.md, official code vs this project): no BatchNorm,
no pooling, LeakyReLU(0.1) everywhere, two channel-attention blocks, two residual blocks, four stride-2
stages. The flattened 128x(H/16)x(W/16) output map is the shared feature F_s (2048-d at 64 px,
6272-d at 100 px). At ``width=1`` the trunk has 1,879,424 parameters.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

LEAK = 0.1


def scaled(channels: int, width: float) -> int:
    """Channel count ``channels`` scaled by the width multiplier (at least 1)."""
    return max(1, int(round(channels * width)))


def conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    """k x k convolution with bias and padding k//2 (the official code's only conv type)."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=True)


def lrelu() -> nn.LeakyReLU:
    """LeakyReLU(0.1) in place: it only ever follows a freshly computed tensor (a conv, a sum), whose backward
    does not need it; the same function, one memory pass and one allocation less per activation."""
    return nn.LeakyReLU(LEAK, inplace=True)


def conv_lrelu(cin: int, cout: int, k: int = 3, stride: int = 1, batchnorm: bool = False) -> list[nn.Module]:
    """conv -> LeakyReLU, with a BatchNorm2d between them when ``batchnorm`` (not in the official trunk)."""
    return [conv(cin, cout, k, stride), *([nn.BatchNorm2d(cout)] if batchnorm else []), lrelu()]


def spatial_size(size: int, n_stride2: int = 4) -> int:
    """Map side after ``n_stride2`` stride-2 convs with padding k//2: h -> floor((h-1)/2)+1 each."""
    for _ in range(n_stride2):
        size = (size - 1) // 2 + 1
    return size


class ChannelAttention(nn.Module):
    """Parameter-free-scale channel attention (FaceCycle ``selfattention``); 3*(C^2+C) parameters.

    theta is softmaxed over space, g over channels; A = (phi theta^T) g; output LReLU(x + A). Computed on
    (B, H*W, C) views, which NHWC (``channels_last``) maps are without a copy: A^T = g^T (phi theta^T)^T.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.g = nn.Conv2d(channels, channels, 1)
        self.theta = nn.Conv2d(channels, channels, 1)
        self.phi = nn.Conv2d(channels, channels, 1)
        self.act = lrelu()

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape

        def pixels_by_channels(y: Tensor) -> Tensor:
            return y.permute(0, 2, 3, 1).reshape(b, h * w, c)

        theta = torch.softmax(pixels_by_channels(self.theta(x)), dim=1)  # softmax over space
        phi = pixels_by_channels(self.phi(x))
        g = torch.softmax(pixels_by_channels(self.g(x)), dim=2)  # softmax over channels
        affinity = phi.transpose(1, 2) @ theta  # (B, C, C) = phi theta^T
        attn = g @ affinity.transpose(1, 2)  # (B, H*W, C) = A^T
        return self.act(x + attn.reshape(b, h, w, c).permute(0, 3, 1, 2))


class ResBlock(nn.Module):
    """conv-LReLU-conv + identity, then LReLU; no BatchNorm (official ``BasicBlockNormal``) unless ``batchnorm``
    (then conv-BN-LReLU-conv-BN + identity)."""

    def __init__(self, channels: int, batchnorm: bool = False):
        super().__init__()
        self.conv1 = conv(channels, channels)
        self.conv2 = conv(channels, channels)
        self.act = lrelu()
        self.bn1 = nn.BatchNorm2d(channels) if batchnorm else nn.Identity()
        self.bn2 = nn.BatchNorm2d(channels) if batchnorm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x))))))


def init_official(module: nn.Module) -> None:
    """Official backbone init: conv W ~ N(0, sqrt(2/(k*k*cout))), Linear W ~ N(0, 0.01), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class FaceCycleBackbone(nn.Module):
    """PCL trunk up to ``layer3_1``: (B,3,H,W) in [0,1] -> F_s = flattened (B, 128w, ~H/16, ~W/16).

    Fully convolutional: any input size works; the feature size is ``feature_dim(image_size)``
    (2048 at 64 px, 6272 at 100 px, 8192 at 128 px, 32768 at 256 px at width 1).
    """

    def __init__(self, width: float = 1.0, batchnorm: bool = False):
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        self.width = width
        self.input_transform: nn.Module = nn.Identity()  # model.input_norm, applied by forward_map and forward
        c64, c128, c256 = scaled(64, width), scaled(128, width), scaled(256, width)
        self.out_channels = c128

        def cl(cin: int, cout: int, k: int = 3, stride: int = 1) -> list[nn.Module]:
            return conv_lrelu(cin, cout, k, stride, batchnorm)

        self.conv1 = nn.Sequential(*cl(3, c64, 7, 2), *cl(c64, c64))
        self.layer1 = nn.Sequential(*cl(c64, c64), ChannelAttention(c64), *cl(c64, c64))
        self.layer2_1 = nn.Sequential(*cl(c64, c128, 3, 2), ChannelAttention(c128), *cl(c128, c128))
        self.resblocks = nn.Sequential(ResBlock(c128, batchnorm), ResBlock(c128, batchnorm))
        self.layer2_2 = nn.Sequential(*cl(c128, c128, 3, 2), *cl(c128, c128))
        self.layer3_1 = nn.Sequential(*cl(c128, c256, 3, 2), *cl(c256, c128))
        init_official(self)

    def forward_map(self, x: Tensor) -> Tensor:
        """Trunk feature map (B, 128w, h', w') with h' = floor((h-1)/2)+1 applied four times."""
        x = self.input_transform(x)
        for stage in (self.conv1, self.layer1, self.layer2_1, self.resblocks, self.layer2_2, self.layer3_1):
            x = stage(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Flattened trunk output F_s, shape (B, feature_dim)."""
        return self.forward_map(x).flatten(1)

    def feature_dim(self, image_size: int | tuple[int, int]) -> int:
        """Length of F_s for a square side ``image_size`` or an (H, W) pair."""
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        return self.out_channels * spatial_size(h) * spatial_size(w)
