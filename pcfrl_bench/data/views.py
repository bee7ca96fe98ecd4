"""Batched view augmentations with independent random parameters per sample.

torchvision's v2 transforms draw one set of parameters per call, i.e. per batch; contrastive views need
one draw per image. These functions take a batch (B, 3, H, W) in [0, 1] on any device, draw per-sample
parameters with torch's global RNG (seeded per epoch by the training loop) and run as a few tensor ops,
so augmentation runs on the GPU next to the model. Under torchrun every draw is made for the global batch
and each rank keeps its rows (:func:`~pcfrl_bench.distributed.rank_rows`), so the views do not depend on
the number of processes.
"""

from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import Tensor

from ..distributed import rank_rows
from ..schema.methods import AugmentParams, FaceAugmentParams

_LUMA = (0.299, 0.587, 0.114)


def _rand(n: int, device: torch.device) -> Tensor:
    """(n,) uniform [0, 1) draws, one per image of this rank's share of the global batch."""
    return rank_rows(lambda m: torch.rand(m, device=device), n)


def _uniform(n: int, low: float, high: float, device: torch.device) -> Tensor:
    return _rand(n, device) * (high - low) + low


def _coin(n: int, p: float, device: torch.device) -> Tensor:
    """(n,) bool: True with probability p."""
    return _rand(n, device) < p


def grayscale(x: Tensor) -> Tensor:
    """ITU-R 601 luma, repeated over 3 channels."""
    w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True).expand_as(x)


def _blend(a: Tensor, b: Tensor, factor: Tensor) -> Tensor:
    """factor*a + (1-factor)*b with a per-sample factor, clamped to [0, 1]."""
    return (factor.view(-1, 1, 1, 1) * a + (1 - factor.view(-1, 1, 1, 1)) * b).clamp(0, 1)


def _rotate_hue(x: Tensor, turns: Tensor) -> Tensor:
    """Hue rotation by ``turns`` (fraction of a full turn) per sample, in YIQ space."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          device=x.device, dtype=x.dtype)
    from_yiq = torch.linalg.inv(to_yiq)
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, x)
    angle = 2 * math.pi * turns.view(-1, 1, 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    i, q = yiq[:, 1], yiq[:, 2]
    rotated = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], 1)
    return torch.einsum("ij,bjhw->bihw", from_yiq, rotated).clamp(0, 1)


def _shift_hue_hsv(x: Tensor, turns: Tensor) -> Tensor:
    """Hue shift by ``turns`` (fraction of a full turn) per sample in HSV space (torchvision's ``adjust_hue``)."""
    r, g, b = x.unbind(1)
    maxc, minc = x.max(1).values, x.min(1).values
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(maxc == r, (g - b) / safe, torch.where(maxc == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = torch.where(delta > 0, h / 6, torch.zeros_like(h))
    h = (h + turns.view(-1, 1, 1)) % 1.0
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    k = (torch.stack([5 + h * 6, 3 + h * 6, 1 + h * 6], 1)) % 6  # r, g, b of the HSV -> RGB formula
    return (maxc[:, None] - maxc[:, None] * s[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1))).clamp(0, 1)


def color_jitter(x: Tensor, brightness: float, contrast: float, saturation: float, hue: float, p: float,
                 hue_space: str = "yiq") -> Tensor:
    """ColorJitter(brightness, contrast, saturation, hue) applied with probability p, per sample.

    The four adjustments are applied in a fixed order (torchvision permutes it per call). ``hue_space``:
    ``yiq`` (a rotation of the chroma plane) or ``hsv`` (torchvision's, as in the official PCL code).
    """
    b, dev = x.shape[0], x.device
    out = x
    if brightness > 0:
        out = (out * _uniform(b, 1 - brightness, 1 + brightness, dev).view(-1, 1, 1, 1)).clamp(0, 1)
    if contrast > 0:
        mean = grayscale(out).mean(dim=(1, 2, 3), keepdim=True)
        out = _blend(out, mean.expand_as(out), _uniform(b, 1 - contrast, 1 + contrast, dev))
    if saturation > 0:
        out = _blend(out, grayscale(out), _uniform(b, 1 - saturation, 1 + saturation, dev))
    if hue > 0:
        shift = _shift_hue_hsv if hue_space == "hsv" else _rotate_hue
        out = shift(out, _uniform(b, -hue, hue, dev))
    apply = _coin(b, p, dev).view(-1, 1, 1, 1)
    return torch.where(apply, out, x)


def random_grayscale(x: Tensor, p: float) -> Tensor:
    apply = _coin(x.shape[0], p, x.device).view(-1, 1, 1, 1)
    return torch.where(apply, grayscale(x), x)


def gaussian_blur(x: Tensor, kernel_size: int, sigma: tuple[float, float], p: float) -> Tensor:
    """Separable Gaussian blur with a per-sample sigma drawn from ``sigma``, applied with probability p."""
    b, c, h, w = x.shape
    radius = kernel_size // 2
    s = _uniform(b, sigma[0], sigma[1], x.device)
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(offsets.view(1, -1) ** 2) / (2 * s.view(-1, 1) ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (b*c, k)
    flat = x.reshape(1, b * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.view(b * c, 1, 1, -1), groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel.view(b * c, 1, -1, 1), groups=b * c)
    apply = _coin(b, p, x.device).view(-1, 1, 1, 1)
    return torch.where(apply, flat.view(b, c, h, w), x)


def crop_boxes(b: int, scale: tuple[float, float], ratio: tuple[float, float], device: torch.device) -> Tensor:
    """(b, 4) boxes (cx, cy, w, h) in [0, 1] units, RandomResizedCrop-style (area scale, log-uniform ratio).

    Boxes always fit the image: a width or height above 1 is clipped to 1.
    """
    area = _uniform(b, *scale, device)
    log_ratio = _uniform(b, math.log(ratio[0]), math.log(ratio[1]), device)
    r = torch.exp(log_ratio)
    w = torch.sqrt(area * r).clamp(max=1.0)
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = w / 2 + _rand(b, device) * (1 - w)
    cy = h / 2 + _rand(b, device) * (1 - h)
    return torch.stack([cx, cy, w, h], 1)


def affine_resample(
    x: Tensor, boxes: Tensor, size: int, flip: Tensor | None = None, angle_deg: Tensor | None = None
) -> Tensor:
    """Resample each image's box (cx, cy, w, h in [0, 1]) to ``size``, optionally mirrored and rotated in-plane."""
    b = x.shape[0]
    cx, cy, w, h = boxes.unbind(1)
    sx = w * torch.where(flip, -1.0, 1.0) if flip is not None else w
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    a = torch.deg2rad(angle_deg) if angle_deg is not None else torch.zeros(b, device=x.device)
    cos, sin = torch.cos(a), torch.sin(a)
    theta[:, 0, 0], theta[:, 0, 1] = sx * cos, -h * sin
    theta[:, 1, 0], theta[:, 1, 1] = sx * sin, h * cos
    theta[:, 0, 2], theta[:, 1, 2] = cx * 2 - 1, cy * 2 - 1
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def appearance(x: Tensor, p: AugmentParams) -> Tensor:
    """Colour jitter, grayscale and blur: the appearance part of a view."""
    x = color_jitter(x, p.brightness, p.contrast, p.saturation, p.hue, p.jitter_p)
    x = random_grayscale(x, p.grayscale_p)
    if p.blur_p > 0:
        x = gaussian_blur(x, p.blur_kernel, p.blur_sigma, p.blur_p)
    return x


def simclr_view(x: Tensor, p: AugmentParams, size: int | None = None) -> Tensor:
    """One SimCLR view per image: random resized crop + flip, then appearance augmentation."""
    size = size or x.shape[-1]
    boxes = crop_boxes(x.shape[0], p.crop_scale, p.crop_ratio, x.device)
    flip = _coin(x.shape[0], p.flip_p, x.device)
    return appearance(affine_resample(x, boxes, size, flip=flip), p)


# ---- Face views of PCL / PCFRL (docs/methods.md, "Official code vs paper vs this project") -------------

_SOBEL_GRAY = (65.738 / 256, 129.057 / 256, 25.064 / 256)


def gradient_magnitude(x: Tensor, padding: str = "replicate") -> Tensor:
    """The official "Sobel": gray, central differences [-1, 0, 1] in x and y, sqrt(gx^2+gy^2+1e-6), 3 channels.

    ``padding`` at the border: ``replicate`` or ``zero`` (official); the result is clamped to [0, 1] (the
    official code wraps values > 1 modulo 256 when it stores the image as bytes, a bug not copied).
    """
    w = torch.tensor(_SOBEL_GRAY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    g = F.pad((x * w).sum(1, keepdim=True), (1, 1, 1, 1), mode="replicate" if padding == "replicate" else "constant")
    gx = g[..., 1:-1, 2:] - g[..., 1:-1, :-2]
    gy = g[..., 2:, 1:-1] - g[..., :-2, 1:-1]
    return torch.sqrt(gx**2 + gy**2 + 1e-6).clamp(0, 1).expand_as(x)


def random_gradient_magnitude(x: Tensor, p: float, padding: str = "replicate") -> Tensor:
    apply = _coin(x.shape[0], p, x.device).view(-1, 1, 1, 1)
    return torch.where(apply, gradient_magnitude(x, padding), x)


def face_appearance(x: Tensor, p: FaceAugmentParams) -> Tensor:
    """Official pipeline ``A``: ColorJitter, grayscale, Gaussian blur, gradient magnitude; per-sample draws."""
    x = color_jitter(x, p.brightness, p.contrast, p.saturation, p.hue, p.jitter_p, p.hue_space)
    x = random_grayscale(x, p.grayscale_p)
    if p.blur_p > 0:
        x = gaussian_blur(x, p.blur_kernel, p.blur_sigma, p.blur_p)
    if p.sobel_p > 0:
        x = random_gradient_magnitude(x, p.sobel_p, p.sobel_padding)
    return x


def distance_crop_boxes(b: int, ratio: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """Two (b, 4) boxes per image inside two different quadrants (official ``DistanceCrop``).

    Each patch is a square of side ``ratio`` (<= 0.5) whose centre is uniform over the positions that keep
    it inside its quadrant, so the two patches never overlap.
    """
    if not 0 < ratio <= 0.5:
        raise ValueError(f"distance-crop ratio must be in (0, 0.5], got {ratio}")
    q1 = rank_rows(lambda m: torch.randint(0, 4, (m,), device=device), b)
    q2 = (q1 + rank_rows(lambda m: torch.randint(1, 4, (m,), device=device), b)) % 4  # a different quadrant

    def boxes(q: Tensor) -> Tensor:
        ox, oy = (q % 2).float() * 0.5, (q // 2).float() * 0.5
        cx = ox + _uniform(b, ratio / 2, 0.5 - ratio / 2, device)
        cy = oy + _uniform(b, ratio / 2, 0.5 - ratio / 2, device)
        side = torch.full((b,), ratio, device=device)
        return torch.stack([cx, cy, side, side], 1)

    return boxes(q1), boxes(q2)


def face_views(x: Tensor, p: FaceAugmentParams) -> tuple[Tensor, Tensor]:
    """Face positives: two non-overlapping patches of each face, resized back and appearance-augmented."""
    b1, b2 = distance_crop_boxes(x.shape[0], p.patch_ratio, x.device)
    size = x.shape[-1]
    return (face_appearance(affine_resample(x, b1, size), p),
            face_appearance(affine_resample(x, b2, size), p))


def pose_views(x: Tensor, p: FaceAugmentParams) -> tuple[Tensor, Tensor]:
    """Pose positives: two appearance-augmented views of the full image (the pose is preserved)."""
    return face_appearance(x, p), face_appearance(x, p)


def pose_transform(x: Tensor, rotation_deg: float = 15.0) -> Tensor:
    """The pose change s -> s^ of Eq. 1: horizontal flip plus an in-plane rotation in [-deg, deg] per sample.

    ``rotation_deg=0`` is the official code's flip only (then the result is the exact mirror image).
    """
    b = x.shape[0]
    if rotation_deg <= 0:
        return x.flip(-1)
    full = torch.tensor([0.5, 0.5, 1.0, 1.0], device=x.device, dtype=x.dtype).expand(b, 4)
    angle = _uniform(b, -rotation_deg, rotation_deg, x.device)
    flip = torch.ones(b, dtype=torch.bool, device=x.device)
    return affine_resample(x, full, x.shape[-1], flip=flip, angle_deg=angle)
