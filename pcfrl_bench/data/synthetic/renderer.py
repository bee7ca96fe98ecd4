"""Vectorised point-splatting renderer: deform, rotate, project, z-buffer, shade, composite.

Pose convention (degrees): positive yaw turns the nose towards image right, positive pitch raises the nose
(looking up), positive roll rotates the face counter-clockwise in the image. A horizontal image flip maps
(yaw, pitch, roll) -> (-yaw, pitch, -roll) (and light azimuth -> -azimuth, tx -> -tx).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from .face_model import (
    AU_ALL, DISFA_INDEX, F_BU, F_BV, F_CHEEK, F_DARK0, F_EU, F_EV, F_HAIR, F_INNER, F_LIP, F_TEETH, F_TEX,
    EYE_H, EYE_W, N_FEAT, N_SHAPE, NOSE_TIP, Template, build_template,
)

FACTOR_SHAPES: dict[str, tuple[int, ...]] = {
    "shape": (N_SHAPE,),  # identity shape coefficients, ~N(0,1)
    "skin": (3,), "hair": (3,), "brow": (3,), "iris": (3,), "lip": (3,),  # albedos in [0,1]
    "hairline": (), "eye_open": (), "brow_thick": (),  # identity style scalars
    "yaw": (), "pitch": (), "roll": (),  # head pose, degrees
    "aus": (len(AU_ALL),),  # intensities 0..5 of AU_ALL
    "light": (4,),  # azimuth deg, elevation deg, ambient, diffuse
    "bg": (3,), "bg_grad": (2, 3), "bg_tex": (3, 4, 4),  # background colour, x/y gradient, low-freq texture
    "tx": (), "ty": (), "scale": (),  # jitter (image units, image spans [-1, 1]) and scale
    "noise": (),  # pixel noise std
}
CAMERA_DISTANCE = 6.0  # mild perspective
RENDER_CHUNK = 1024  # larger batches are rendered in chunks of this size
_EMPTY = float(1 << 25)  # z-buffer key of an empty pixel


def factor_defaults(batch: int) -> dict[str, torch.Tensor]:
    """Neutral, frontal, average-identity factors with a plain grey background and no noise."""
    out = {k: torch.zeros((batch, *s)) for k, s in FACTOR_SHAPES.items()}
    out["skin"][:] = torch.tensor([0.8, 0.62, 0.5])
    out["hair"][:] = torch.tensor([0.25, 0.17, 0.1])
    out["brow"][:] = torch.tensor([0.2, 0.14, 0.1])
    out["iris"][:] = torch.tensor([0.35, 0.22, 0.12])
    out["lip"][:] = torch.tensor([0.72, 0.4, 0.38])
    out["hairline"][:] = 0.05
    out["eye_open"][:] = 0.75
    out["brow_thick"][:] = 1.0
    out["light"][:] = torch.tensor([0.0, 20.0, 0.45, 0.6])
    out["bg"][:] = 0.5
    out["scale"][:] = 1.0
    return out


def disfa_aus(aus: torch.Tensor) -> torch.Tensor:
    """(B, len(AU_ALL)) intensities -> (B, 8) intensities of DISFA's AUs 1,2,4,6,9,12,25,26."""
    return aus[:, list(DISFA_INDEX)]


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(B,3,3) R = Rz(roll) Rx(-pitch) Ry(yaw) from degrees (conventions in the module docstring)."""
    y, p, r = (torch.deg2rad(a.float()) for a in (yaw, pitch, roll))
    one, zero = torch.ones_like(y), torch.zeros_like(y)
    cy, sy, cp, sp, cr, sr = y.cos(), y.sin(), p.cos(), -p.sin(), r.cos(), r.sin()
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).view(-1, 3, 3)
    rx = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], 1).view(-1, 3, 3)
    rz = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ rx @ ry


@lru_cache(maxsize=8)
def _layout(tpl: Template) -> tuple[torch.Tensor, torch.Tensor]:
    """Template points (1, 3N) and shape+AU basis (K, 3N) laid out coordinate-major (x..., y..., z...)."""
    n = tpl.n
    basis = torch.cat([tpl.shape_basis, tpl.au_basis], 0).view(-1, n, 3).transpose(1, 2).reshape(-1, 3 * n)
    return tpl.points.T.reshape(1, 3 * n).contiguous(), basis.contiguous()


@lru_cache(maxsize=8)
def _noise_bank(size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1234567)
    return torch.randn(97, 3, size, size, generator=g)


def _points_for(res: int) -> int:
    """Cloud size for an internal resolution: 4,600 points up to 64 px, 20,000 above (renders <= 128 px)."""
    return 4600 if res <= 64 else 20000


def _fill_holes(buf: torch.Tensor) -> torch.Tensor:
    """(B,H+2,W+2) z-buffer with a one-pixel border -> (B,H,W) interior with pin holes filled.

    An empty pixel with >= 4 covered pixels in its 3x3 neighbourhood takes the nearest of them; a straight
    silhouette edge has only 3, so outlines do not grow. Separable box count (uint8) on shifted views; the
    minimum (exact in any order) is taken over the 9 neighbours of the few holes only."""
    _, ph, pw = buf.shape
    occ = (buf < _EMPTY).view(torch.uint8)
    r = occ[:, :, :-2] + occ[:, :, 1:-1] + occ[:, :, 2:]
    count = r[:, :-2] + r[:, 1:-1] + r[:, 2:]
    out = buf[:, 1:-1, 1:-1].contiguous()
    holes = (count >= 4).logical_and_(occ[:, 1:-1, 1:-1] == 0).view(-1).nonzero().squeeze(1)
    if len(holes):
        h, w = ph - 2, pw - 2
        img, rest = holes.div(h * w, rounding_mode="floor"), holes.remainder(h * w)
        top_left = img * (ph * pw) + rest.div(w, rounding_mode="floor") * pw + rest.remainder(w)
        flat = buf.view(-1)
        m = flat.index_select(0, top_left)
        for off in (1, 2, pw, pw + 1, pw + 2, 2 * pw, 2 * pw + 1, 2 * pw + 2):
            torch.minimum(m, flat.index_select(0, top_left + off), out=m)
        out.view(-1).index_copy_(0, holes, m)
    return out


def _zbuffer(tpl: Template, f: dict[str, torch.Tensor], res: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                              torch.Tensor]:
    """Z-buffer keys per pixel (B,H*W) (key % N = nearest point, >= _EMPTY: background), rotation (B,3,3) and
    normals' z (B,N)."""
    b, n = f["yaw"].shape[0], tpl.n
    mean, basis = _layout(tpl)
    coef = torch.cat([f["shape"], f["aus"]], 1)
    rot = rotation_matrix(f["yaw"], f["pitch"], f["roll"])
    cam = torch.bmm(rot, torch.addmm(mean, coef, basis).view(b, 3, n))  # (B,3,N) rotated points
    nz = rot[:, 2, :] @ tpl.normals.T  # (B,N) camera-facing component of each normal (back-face culling)
    x, y, z = cam.unbind(1)
    k = CAMERA_DISTANCE / (CAMERA_DISTANCE - z)
    k.mul_(f["scale"][:, None] * (res / 2))
    pw = res + 2  # the buffer has a one-pixel border: off-image points are clamped onto it, then cropped
    col = torch.addcmul(((f["tx"] + 1) * (res / 2) + 1)[:, None], x, k).floor_().clamp_(0, pw - 1)
    row = torch.addcmul(((1 - f["ty"]) * (res / 2) + 1)[:, None], y, k, value=-1).floor_().clamp_(0, pw - 1)
    flat = torch.addcmul(col, row, torch.tensor(float(pw))).long().add_(torch.arange(b)[:, None] * (pw * pw))
    # key = quantised depth * N + point index, exact in float32 (< 2**24): min key = nearest point
    levels = float((1 << 24) // n - 1)
    key = ((1.3 - z) * (levels / 2.6)).clamp_(0, levels).floor_().mul_(n).add_(torch.arange(n, dtype=torch.float32))
    key.masked_fill_(nz <= 0, _EMPTY)  # back-face culling
    buf = torch.full((b * pw * pw,), _EMPTY, dtype=torch.float32)
    buf.scatter_reduce_(0, flat.view(-1), key.view(-1), "amin")
    return _fill_holes(buf.view(b, pw, pw)).view(b, res * res), rot, nz


def _eye_aperture(f: dict[str, torch.Tensor]) -> torch.Tensor:
    a = f["aus"]
    c = {au: a[:, i] for i, au in enumerate(AU_ALL)}
    gain = 1 + 0.07 * c[5] - 0.07 * c[6] - 0.1 * c[7] - 0.03 * c[4] + 0.015 * c[1]
    return (f["eye_open"] * gain).clamp(0.08, 1.0)


def _mouth_open(f: dict[str, torch.Tensor]) -> torch.Tensor:
    """0 (closed: the inner mouth looks like shaded lips) .. 1 (open: teeth and dark mouth cavity)."""
    a = f["aus"]
    c = {au: a[:, i] for i, au in enumerate(AU_ALL)}
    return ((0.5 * c[25] + c[26] + 0.4 * c[16]) / 1.5).clamp(0, 1)


def _dark_strength(f: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, 6) darkening of nasolabial, nose wrinkle, glabella, crow's feet, nostril, lid crease features."""
    a = f["aus"]
    c = {au: a[:, i] for i, au in enumerate(AU_ALL)}
    one = torch.ones_like(c[1])
    return torch.stack([
        0.06 * c[12] + 0.03 * c[6] + 0.04 * c[9] + 0.08, 0.08 * c[9], 0.08 * c[4], 0.05 * c[6],
        0.55 * one, 0.25 * one,
    ], 1)


def _image_params(f: dict[str, torch.Tensor]) -> torch.Tensor:
    """(19, B) per-image colour parameters, gathered per face pixel (row layout in _shade_pixels)."""
    return torch.cat([
        f["skin"], f["lip"], f["brow"], f["hair"], f["iris"],  # 0..14
        f["hairline"][:, None], f["brow_thick"][:, None], _eye_aperture(f)[:, None],  # 15, 16, 17
        _mouth_open(f)[:, None],  # 18
    ], 1).T.contiguous()


def _point_shading(tpl: Template, f: dict[str, torch.Tensor], rot: torch.Tensor, nz: torch.Tensor) -> torch.Tensor:
    """(B,N) per-point brightness: Lambert + ambient, a facing-ratio term, and AU wrinkle/fold darkening."""
    az, el = torch.deg2rad(f["light"][:, 0]), torch.deg2rad(f["light"][:, 1])
    light = torch.stack([el.cos() * az.sin(), el.sin(), el.cos() * az.cos()], 1)
    light_obj = torch.bmm(rot.transpose(1, 2), light.unsqueeze(-1)).squeeze(-1)  # n_cam.L = n.(R^T L)
    lam = (light_obj @ tpl.normals.T).clamp_(min=0)
    shade = lam.mul_(f["light"][:, 3:4]).add_(f["light"][:, 2:3]).mul_(nz.clamp(min=0).mul_(0.3).add_(0.7))
    dark = torch.mm(_dark_strength(f), _dark_table(tpl)).clamp_(max=0.85)
    return shade.mul_(1 - dark)


@lru_cache(maxsize=8)
def _dark_table(tpl: Template) -> torch.Tensor:
    return tpl.feats[:, F_DARK0:N_FEAT].T.contiguous()


_WHITE = torch.tensor([0.92, 0.9, 0.86])[:, None]
_PUPIL = torch.tensor([0.03, 0.03, 0.04])[:, None]
_TEETH = torch.tensor([0.85, 0.83, 0.78])[:, None]
_MOUTH = torch.tensor([0.22, 0.06, 0.07])[:, None]
_FLUSH = torch.tensor([0.06, -0.03, -0.03])[:, None]


_ROWS = (F_EU, F_EV, F_BU, F_BV, F_LIP, F_INNER, F_TEETH, F_HAIR, F_TEX, F_CHEEK)


@lru_cache(maxsize=8)
def _point_table(tpl: Template) -> torch.Tensor:
    """(10, N) static colour features in _ROWS order, row-major so per-pixel gathers are contiguous."""
    return tpl.feats[:, list(_ROWS)].T.contiguous()


# bits of the per-point region flags: a pixel outside a region is provably unchanged by that region's step
_EYE, _BROW, _LIP, _MOUTH_BIT, _HAIR = 1, 2, 4, 8, 16


@lru_cache(maxsize=8)
def _static_flags(tpl: Template) -> torch.Tensor:
    """(N,) uint8 region flags that depend on the template only (eye, brow, lip and inner-mouth regions).

    Eye: the opening needs |eu| < 1 and |ev| < open_h <= aperture <= 1 (_eye_aperture clamps), the lash line
    |eu| < 1.12 and -1.22 < ev < 1.45 (the bounds below are looser). Brow: the brow weight is zero unless
    |bu| < 1. Lip: lerp with weight lip = 0 returns its input exactly (all values are finite)."""
    eu, ev, bu, _, lip, inner = _point_table(tpl)[:6]
    eye = (eu.abs() < 1.12) & (ev < 1.5) & (ev > -1.25)
    flags = eye.to(torch.uint8) * _EYE + (bu.abs() < 1).to(torch.uint8) * _BROW
    return flags + (lip != 0).to(torch.uint8) * _LIP + (inner > 0).to(torch.uint8) * _MOUTH_BIT


def _shade_pixels(tpl: Template, prm: torch.Tensor, img: torch.Tensor, pidx: torch.Tensor,
                  shade: torch.Tensor) -> torch.Tensor:
    """(3,M) colour of M face pixels from per-image parameters (19, B), each pixel's image (M,) and point (M,)
    indices, and brightness (M,).

    The per-pixel colour is the skin base, then lip, brow, hair, eye and inner-mouth steps. Each step only
    changes the pixels of its region, so it runs on those pixels only (gathered by index); the arithmetic per
    pixel is exactly that of the dense formulation (see tests/test_render_identity.py)."""
    table = _point_table(tpl)
    eu_, ev_, bu_, bv_, lip_, _, teeth_, hair_, tex_, cheek_ = table
    # the hair weight is zero unless hair > hairline, so hair pixels: hair > the smallest hairline in the batch
    hairline = prm[15].min() if prm.shape[1] else 0.0
    flags = _static_flags(tpl) + (hair_ > hairline).to(torch.uint8) * _HAIR
    pflags = flags.index_select(0, pidx)

    small = (pflags & (_EYE | _LIP | _MOUTH_BIT)).nonzero().squeeze(1)  # few pixels: search those once
    small_flags = pflags.index_select(0, small)

    def region(bit: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sorted indices of the face pixels with flag `bit`, and their points and images."""
        if bit & (_EYE | _LIP | _MOUTH_BIT):
            sub = small.index_select(0, (small_flags & bit).nonzero().squeeze(1))
        else:
            sub = (pflags & bit).nonzero().squeeze(1)
        return sub, pidx.index_select(0, sub), img.index_select(0, sub)

    col = prm[0:3].index_select(1, img).add_(cheek_.index_select(0, pidx) * _FLUSH)
    sub, pt, im = region(_LIP)
    col.index_copy_(1, sub, torch.lerp(col.index_select(1, sub), prm[3:6].index_select(1, im),
                                       lip_.index_select(0, pt)))
    sub, pt, im = region(_BROW)
    bu, bv = bu_.index_select(0, pt), bv_.index_select(0, pt)
    thick = prm[16].index_select(0, im) * (1 - 0.55 * bu * bu)
    brow_w = ((thick - bv.abs()) * 4).clamp_(0, 1) * (bu.abs() < 1)
    col.index_copy_(1, sub, torch.lerp(col.index_select(1, sub), prm[6:9].index_select(1, im), brow_w))
    sub, pt, im = region(_HAIR)
    hair_w = ((hair_.index_select(0, pt) - prm[15].index_select(0, im)) * 33.3).clamp_(0, 1)
    hair_col = prm[9:12].index_select(1, im) * (1 + 0.22 * tex_.index_select(0, pt))
    col.index_copy_(1, sub, torch.lerp(col.index_select(1, sub), hair_col, hair_w))
    # eyes: opening |ev| < aperture * sqrt(1 - eu^2); iris and pupil; dark lash line around the opening
    sub, pt, im = region(_EYE)
    eu, ev = eu_.index_select(0, pt), ev_.index_select(0, pt)
    open_h = prm[17].index_select(0, im) * (1 - eu * eu).clamp_(min=0).sqrt_()
    inside = ev.abs() < open_h
    rr = (eu * EYE_W) ** 2 + (ev * EYE_H) ** 2
    eye = torch.where(rr < 0.031**2, prm[12:15].index_select(1, im), _WHITE)
    eye = torch.where(rr < 0.013**2, _PUPIL, eye)
    col.index_copy_(1, sub, torch.where(inside, eye, col.index_select(1, sub)))
    lash = ~inside & (eu.abs() < 1.12) & (ev < open_h + 0.45) & (ev > -open_h - 0.22)
    shade = shade.clone()
    shade.index_copy_(0, sub, shade.index_select(0, sub) * (1 - 0.75 * lash))
    sub, pt, im = region(_MOUTH_BIT)
    teeth = teeth_.index_select(0, pt)
    mouth = torch.lerp(prm[3:6].index_select(1, im) * 0.55, torch.where(teeth > 0, _TEETH, _MOUTH),
                       prm[18].index_select(0, im))
    col.index_copy_(1, sub, mouth)
    return col.mul_(shade)


@lru_cache(maxsize=8)
def _upsample_matrix(src: int, dst: int) -> torch.Tensor:
    """(dst, src) matrix of 1-D bilinear resampling (half-pixel centres, edge clamped)."""
    pos = ((torch.arange(dst, dtype=torch.float64) + 0.5) * src / dst - 0.5).clamp(0, src - 1)
    i0 = pos.floor().long()
    i1 = (i0 + 1).clamp(max=src - 1)
    w = pos - i0
    m = torch.zeros(dst, src, dtype=torch.float64)
    m[torch.arange(dst), i0] += 1 - w
    m[torch.arange(dst), i1] += w
    return m.float()


def _background(f: dict[str, torch.Tensor], res: int) -> torch.Tensor:
    """(3,B,H,W) background: colour + linear gradient + bilinear low-frequency texture (channel-major)."""
    tex = f["bg_tex"].transpose(0, 1)  # (3,B,4,4)
    up = _upsample_matrix(tex.shape[-1], res)
    lin = (torch.arange(res, dtype=torch.float32) + 0.5) / res * 2 - 1
    grad = f["bg_grad"].permute(2, 0, 1)  # (3,B,2): x and y slopes
    # columns: texture rows resampled, plus the x gradient; rows: texture columns resampled, plus colour - y slope
    left = torch.cat([up @ tex, torch.ones(3, tex.shape[1], res, 1)], 3)  # (3,B,H,4+1)
    left = torch.cat([left, (f["bg"].T[:, :, None] - grad[..., 1:2] * lin).unsqueeze(-1)], 3)  # (3,B,H,6)
    right = torch.cat([up.T.expand(3, tex.shape[1], -1, -1), (grad[..., 0:1] * lin).unsqueeze(2),
                       torch.ones(3, tex.shape[1], 1, res)], 2)  # (3,B,6,W)
    return left @ right


def complete_factors(factors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fill missing factors with `factor_defaults` and cast to float32; the batch size comes from 'yaw'."""
    b = factors["yaw"].shape[0]
    out = factor_defaults(b)
    for k, v in factors.items():
        out[k] = v if k == "noise_seed" else v.float()
    return out


def render_faces(
    factors: dict[str, torch.Tensor], image_size: int = 64, generator: torch.Generator | None = None,
    zoom: float = 1.0,
) -> torch.Tensor:
    """Render (B,3,H,W) images in [0,1] from batched factors (keys: FACTOR_SHAPES; missing ones default).

    Pixel noise of std factors['noise'] comes from `generator` when given; otherwise from a fixed noise bank
    indexed by factors['noise_seed'] (default: 0..B-1), so the output is a pure function of the factors.
    ``zoom`` multiplies every face's scale (the world's face size in the frame); the point cloud is dense enough
    for the zoomed face.
    """
    b = factors["yaw"].shape[0]
    if "noise_seed" not in factors:
        factors = {**factors, "noise_seed": torch.arange(b)}
    if b > RENDER_CHUNK:  # bound memory: the point cloud tensors are (B, 3N)
        return torch.cat([render_faces({k: v[i:i + RENDER_CHUNK] for k, v in factors.items()}, image_size, generator,
                                       zoom) for i in range(0, b, RENDER_CHUNK)])
    f = complete_factors(factors)
    if zoom != 1.0:
        f["scale"] = f["scale"] * zoom
    res = min(image_size, 128)
    tpl = build_template(_points_for(round(res * zoom)))
    keys, rot, nz = _zbuffer(tpl, f, res)
    b, hw = keys.shape
    pix = (keys < _EMPTY).view(-1).nonzero().squeeze(1)  # face pixels, sorted by image
    pidx = torch.remainder(keys.view(-1).index_select(0, pix), tpl.n).long()  # their nearest points
    img_of = torch.div(pix, hw, rounding_mode="floor")  # image of each face pixel
    brightness = _point_shading(tpl, f, rot, nz).view(-1)
    shade = brightness.index_select(0, img_of * tpl.n + pidx)
    img = _background(f, res).reshape(3, b * hw)
    face = _shade_pixels(tpl, _image_params(f), img_of, pidx, shade)
    for c in range(3):
        img[c].index_copy_(0, pix, face[c])
    img = img.view(3, b, res, res)
    if image_size != res:
        img = F.interpolate(img, size=(image_size, image_size), mode="bilinear", align_corners=False)
    if generator is not None:
        noise = torch.randn((b, 3, image_size, image_size), generator=generator) * f["noise"].view(b, 1, 1, 1)
    else:
        seeds = f.get("noise_seed", torch.arange(b)).long()
        bank = _noise_bank(image_size)
        sign = 1.0 - 2.0 * ((seeds // bank.shape[0]) % 2).float()
        noise = bank.index_select(0, seeds % bank.shape[0]).mul_((sign * f["noise"]).view(b, 1, 1, 1))
    return noise.add_(img.transpose(0, 1)).clamp_(0, 1)


def _landmark_targets() -> torch.Tensor:
    """(68, 2) face-frame (u, v) of a 68-point iBUG-like layout: jaw, brows, nose, eyes, mouth."""
    pts: list[tuple[float, float]] = []
    for i in range(17):  # jaw, from the subject's right (image left) round the chin
        a = math.pi * i / 16
        pts.append((-0.5 * math.cos(a), 0.05 - 0.74 * math.sin(a)))
    for side in (-1, 1):  # brows, outer to inner on the right, inner to outer on the left
        us = [0.32, 0.26, 0.2, 0.14, 0.08] if side < 0 else [0.08, 0.14, 0.2, 0.26, 0.32]
        pts += [(side * u, 0.2 + 0.025 * (1 - ((u - 0.2) / 0.12) ** 2)) for u in us]
    pts += [(0.0, 0.08 - 0.065 * i) for i in range(4)]  # nose bridge
    pts += [(u, NOSE_TIP - 0.03) for u in (-0.06, -0.03, 0.0, 0.03, 0.06)]  # nostrils
    for cx in (-0.2, 0.2):  # eyes: 6 points each around the opening
        for a in (math.pi, 2 * math.pi / 3, math.pi / 3, 0.0, -math.pi / 3, -2 * math.pi / 3):
            pts.append((cx - 0.085 * math.cos(a) * (1 if cx < 0 else -1), 0.08 + 0.03 * math.sin(a)))
    for k in range(12):  # outer lips
        a = math.pi - 2 * math.pi * k / 12
        pts.append((0.14 * math.cos(a), -0.36 + 0.045 * math.sin(a)))
    for k in range(8):  # inner lips
        a = math.pi - 2 * math.pi * k / 8
        pts.append((0.1 * math.cos(a), -0.36 + 0.012 * math.sin(a)))
    return torch.tensor(pts)


@lru_cache(maxsize=8)
def _landmark_index(tpl: Template) -> torch.Tensor:
    """Template points nearest (in u, v) to the 68 landmark targets, among front-facing surface points."""
    front = (tpl.points[:, 2] > 0.05) & (tpl.feats[:, F_INNER] == 0)
    cand = torch.nonzero(front).squeeze(1)
    d = torch.cdist(_landmark_targets(), tpl.points[cand, :2])
    return cand[d.argmin(1)]


def project_landmarks(factors: dict[str, torch.Tensor], image_size: int = 64) -> torch.Tensor:
    """(B, 68, 2) image coordinates (x = column, y = row, pixels) of 68 landmarks, same transform as rendering."""
    f = complete_factors(factors)
    tpl = build_template(_points_for(min(image_size, 128)))
    idx = _landmark_index(tpl)
    mean, basis = _layout(tpl)
    cols = torch.cat([idx, idx + tpl.n, idx + 2 * tpl.n])
    coef = torch.cat([f["shape"], f["aus"]], 1)
    pts = (mean[:, cols] + coef @ basis[:, cols]).view(-1, 3, len(idx))
    cam = torch.bmm(rotation_matrix(f["yaw"], f["pitch"], f["roll"]), pts)
    k = f["scale"][:, None] * CAMERA_DISTANCE / (CAMERA_DISTANCE - cam[:, 2])
    x = (cam[:, 0] * k + f["tx"][:, None] + 1) * (image_size / 2)
    y = (1 - cam[:, 1] * k - f["ty"][:, None]) * (image_size / 2)
    return torch.stack([x, y], 2)


__all__ = ["FACTOR_SHAPES", "complete_factors", "disfa_aus", "factor_defaults", "project_landmarks",
           "render_faces", "rotation_matrix"]
