"""A tiny procedural morphable face: template point cloud, identity shape basis, FACS AU blendshapes.

Coordinates (face frame): x to the subject's left = image right for a frontal face, y up, z towards the camera;
the image spans [-1, 1] in x and y. The template is exactly left-right symmetric (every point has a mirror
twin), and every basis field is mirror-symmetric, so a horizontal flip keeps identity and expression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

EMOTIONS = ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral")  # RAF-DB ids 1..7 -> 0..6
AU_ALL = (1, 2, 4, 5, 6, 7, 9, 12, 15, 16, 17, 20, 23, 25, 26)  # AUs the renderer can express
DISFA_AUS = (1, 2, 4, 6, 9, 12, 25, 26)  # DISFA 8-AU benchmark (datasets.md §5), ground truth order
DISFA_ALL_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)  # the 12 AUs DISFA annotates
DISFA_INDEX = tuple(AU_ALL.index(a) for a in DISFA_AUS)

# EMFACS-style prototypes (synthetic-world-notes.md), typical intensities on the 0-5 FACS scale.
EMOTION_PROTOTYPES: dict[str, dict[int, float]] = {
    "Surprise": {1: 3.5, 2: 3.5, 5: 3.0, 25: 3.0, 26: 3.5},
    "Fear": {1: 3.0, 2: 2.5, 4: 2.5, 5: 3.5, 20: 3.5, 25: 2.5, 26: 1.5},
    "Disgust": {9: 4.0, 15: 2.5, 16: 2.0, 4: 1.5, 25: 1.0},
    "Happiness": {6: 3.5, 12: 4.0, 25: 2.0},
    "Sadness": {1: 3.5, 4: 2.5, 15: 3.5, 17: 2.0},
    "Anger": {4: 4.0, 5: 2.0, 7: 3.0, 23: 3.5, 17: 1.5},
    "Neutral": {},
}

SHAPE_NAMES = (
    "head_width", "face_length", "jaw_width", "eye_spacing", "eye_size", "nose_length", "nose_width",
    "mouth_width", "brow_height", "chin", "hair_volume", "cheeks", "forehead", "lip_thickness",
)
N_SHAPE = len(SHAPE_NAMES)

# head ellipsoid semi-axes and landmark positions in the face frame
AX, AY, AZ = 0.54, 0.72, 0.60
EYE_X, EYE_Y, EYE_W, EYE_H = 0.2, 0.08, 0.085, 0.05
BROW_X, BROW_Y, BROW_L = 0.2, 0.2, 0.12
MOUTH_Y, MOUTH_W = -0.36, 0.14
NOSE_TOP, NOSE_TIP = 0.1, -0.15

# per-point static feature columns
F_EU, F_EV, F_BU, F_BV, F_LIP, F_INNER, F_TEETH, F_HAIR, F_TEX, F_CHEEK = range(10)
F_DARK0 = 10  # dark features follow: nasolabial, nose wrinkle, glabella, crow's feet, nostrils, lid crease
DARK_NAMES = ("nasolabial", "nose_wrinkle", "glabella", "crows_feet", "nostril", "lid_crease")
N_FEAT = F_DARK0 + len(DARK_NAMES)


@dataclass(frozen=True)
class Template:
    """Static point cloud: positions (N,3), normals (N,3), features (N,F), bases (K,N*3) and (J,N*3)."""

    points: torch.Tensor
    normals: torch.Tensor
    feats: torch.Tensor
    shape_basis: torch.Tensor
    au_basis: torch.Tensor

    @property
    def n(self) -> int:
        return self.points.shape[0]


def _g(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-x * x)


def _fibonacci_half(m: int) -> torch.Tensor:
    """Unit directions with x > 0 from a Fibonacci sphere of m points (mirrored later for exact symmetry)."""
    i = torch.arange(m, dtype=torch.float64) + 0.5
    y = 1 - 2 * i / m
    r = torch.sqrt(1 - y * y)
    th = math.pi * (3 - math.sqrt(5)) * i
    d = torch.stack([r * torch.cos(th), y, r * torch.sin(th)], 1)
    return d[d[:, 0] > 1e-9]


def _surface(d: torch.Tensor) -> torch.Tensor:
    """Template head surface point for unit direction d (M,3)."""
    x, y, z = AX * d[:, 0], AY * d[:, 1], AZ * d[:, 2]
    low = (-y / AY).clamp(min=0)
    x = x * (1 - 0.22 * low**2)  # jaw taper
    z = z * (1 - 0.1 * low**2)
    front = ((d[:, 2] - 0.05) / 0.3).clamp(0, 1)
    u, v, au = x, y, x.abs()
    bump = (
        -0.045 * _g((au - EYE_X) / 0.1) * _g((v - EYE_Y) / 0.07)  # eye sockets
        + 0.028 * _g((au - EYE_X) / 0.07) * _g((v - EYE_Y) / 0.045)  # eyeballs
        + 0.03 * _g((v - 0.19) / 0.06) * _g((u / 0.34) ** 2)  # brow ridge
        + 0.035 * _g(u / 0.16) * _g((v - MOUTH_Y) / 0.05)  # lips
        + 0.03 * _g(u / 0.12) * _g((v + 0.62) / 0.07)  # chin
        + 0.02 * _g((au - 0.28) / 0.09) * _g((v + 0.12) / 0.1)  # cheeks
    )
    t = ((NOSE_TOP - v) / (NOSE_TOP - NOSE_TIP)).clamp(0, 1)
    below = torch.where(v < NOSE_TIP, _g((v - NOSE_TIP) / 0.035), torch.ones_like(v))
    bump = bump + 0.14 * t**1.3 * _g(u / (0.03 + 0.04 * t)) * below  # nose ridge and tip
    bump = bump + 0.035 * _g((au - 0.045) / 0.03) * _g((v - NOSE_TIP + 0.015) / 0.03)  # nose wings
    z = z + front * bump
    ear = 0.06 * _g(y / 0.1) * _g((z + 0.04) / 0.06) * (d[:, 0].abs() > 0.5)
    x = x + torch.sign(x) * ear
    return torch.stack([x, y, z], 1)


def _normals(d: torch.Tensor) -> torch.Tensor:
    """Outward normals by finite differences of the surface along two tangents of the sphere."""
    ref = torch.tensor([0.0, 1.0, 0.0], dtype=d.dtype).expand_as(d)
    alt = torch.tensor([1.0, 0.0, 0.0], dtype=d.dtype).expand_as(d)
    ref = torch.where((d[:, 1:2].abs() > 0.9), alt, ref)
    t1 = torch.nn.functional.normalize(torch.cross(d, ref, dim=1), dim=1)
    t2 = torch.cross(d, t1, dim=1)
    e = 1e-4
    p1 = _surface(torch.nn.functional.normalize(d + e * t1, dim=1)) - _surface(
        torch.nn.functional.normalize(d - e * t1, dim=1))
    p2 = _surface(torch.nn.functional.normalize(d + e * t2, dim=1)) - _surface(
        torch.nn.functional.normalize(d - e * t2, dim=1))
    n = torch.nn.functional.normalize(torch.cross(p1, p2, dim=1), dim=1)
    return torch.where((n * d).sum(1, keepdim=True) < 0, -n, n)


def _mouth_patch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Recessed inner-mouth points (half, x > 0) visible when the lips part; normals face +z."""
    side = max(4, int(math.sqrt(n / 2)))
    uu = (torch.arange(side, dtype=torch.float64) + 0.5) / side * (MOUTH_W + 0.01)
    vv = MOUTH_Y + 0.015 - (torch.arange(2 * side, dtype=torch.float64) + 0.5) / (2 * side) * 0.2
    u, v = torch.meshgrid(uu, vv, indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)
    low = (-v / AY).clamp(min=0)
    z = AZ * torch.sqrt((1 - (u / AX) ** 2 - (v / AY) ** 2).clamp(min=0.01)) * (1 - 0.1 * low**2) - 0.03
    p = torch.stack([u, v, z], 1)
    return p, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand_as(p)


def _neck(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Half (x > 0) of an elliptic neck cylinder below the head, facing forwards and sideways."""
    n_t = max(6, int(math.sqrt(n * 0.9)))
    n_y = max(4, n // n_t)
    th = (torch.arange(n_t, dtype=torch.float64) + 0.5) / n_t * math.radians(115)
    y = -0.42 - (torch.arange(n_y, dtype=torch.float64) + 0.5) / n_y * 0.9
    th, y = torch.meshgrid(th, y, indexing="ij")
    th, y = th.reshape(-1), y.reshape(-1)
    p = torch.stack([0.33 * torch.sin(th), y, -0.12 + 0.28 * torch.cos(th)], 1)
    nrm = torch.nn.functional.normalize(torch.stack([torch.sin(th) / 0.33, 0 * th, torch.cos(th) / 0.28], 1), dim=1)
    return p, nrm


def _features(p: torch.Tensor, inner: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Static per-point features (N, N_FEAT) used to colour pixels (see F_* columns)."""
    u, v, au = p[:, 0], p[:, 1], p[:, 0].abs()
    front = (p[:, 2] > 0.05) & ~inner
    far = torch.full_like(u, 9.0)
    f = torch.zeros(p.shape[0], N_FEAT, dtype=p.dtype)
    f[:, F_EU] = torch.where(front, (au - EYE_X) / EYE_W, far)
    f[:, F_EV] = torch.where(front, (v - EYE_Y) / EYE_H, far)
    bu = (au - BROW_X) / BROW_L
    f[:, F_BU] = torch.where(front, bu, far)
    f[:, F_BV] = torch.where(front, (v - BROW_Y - 0.025 * (1 - bu**2)) / 0.022, far)
    mu = u / MOUTH_W
    mv = v - MOUTH_Y
    lip_h = torch.where(mv > 0, 0.028 * (1 - mu**2).clamp(min=0) ** 0.5 + 0.004,
                        0.038 * (1 - mu**2).clamp(min=0) ** 0.7 + 0.004)
    f[:, F_LIP] = (front & (mv.abs() < lip_h) & (mu.abs() < 1.05)).to(p.dtype)
    f[:, F_INNER] = inner.to(p.dtype)
    f[:, F_TEETH] = (inner & (mv > -0.03) & (mv < 0.01)).to(p.dtype)
    # hair coordinate: > 0 above the hairline (front hairline high on the forehead, low at the back)
    lon = torch.atan2(d[:, 0].abs(), d[:, 2])
    hairline = 0.02 + torch.where(d[:, 2] > 0, 0.64, 1.6) * d[:, 2] - 0.03 * torch.sin(9 * lon)
    f[:, F_HAIR] = torch.where(inner, -far, d[:, 1] - hairline)
    f[:, F_TEX] = torch.sin(60 * lon + 7 * d[:, 1]) * torch.sin(23 * d[:, 1] + 3 * lon)
    f[:, F_CHEEK] = front * _g((au - 0.27) / 0.08) * _g((v + 0.14) / 0.08)
    fr = front.to(p.dtype)
    t = (-0.13 - v) / 0.22  # nasolabial fold: from the nose wing down to just outside the mouth corner
    f[:, F_DARK0 + 0] = fr * _g((au - 0.075 - 0.1 * t) / 0.014) * ((t > 0) & (t < 1)).to(p.dtype)
    f[:, F_DARK0 + 1] = fr * _g(u / 0.05) * _g((v - 0.02) / 0.05) * (0.5 + 0.5 * torch.sin(v * 160))
    f[:, F_DARK0 + 2] = fr * _g((au - 0.035) / 0.012) * _g((v - 0.17) / 0.04)
    f[:, F_DARK0 + 3] = fr * _g((au - 0.33) / 0.03) * _g((v - 0.06) / 0.05) * (0.5 + 0.5 * torch.sin(v * 140))
    f[:, F_DARK0 + 4] = fr * _g((au - 0.035) / 0.016) * _g((v - NOSE_TIP + 0.03) / 0.012)
    r = torch.sqrt(((au - EYE_X) / EYE_W) ** 2 + ((v - EYE_Y - 0.01) / (EYE_H * 1.3)) ** 2)
    f[:, F_DARK0 + 5] = fr * _g((r - 1.25) / 0.25) * (v > EYE_Y).to(p.dtype)
    return f


def _shape_basis(p: torch.Tensor, inner: torch.Tensor, hair: torch.Tensor) -> torch.Tensor:
    """Identity displacement fields (N_SHAPE, N, 3), each mirror-symmetric."""
    x, y, z = p.unbind(1)
    ax, sx = x.abs(), torch.sign(x)
    zero = torch.zeros_like(x)
    front = ((z - 0.1) / 0.3).clamp(0, 1)
    eye = _g((ax - EYE_X) / 0.1) * _g((y - EYE_Y) / 0.08) * front
    nose = _g(x / 0.08) * _g((y + 0.05) / 0.14) * front
    mouth = _g(x / 0.2) * _g((y - MOUTH_Y) / 0.08) * front
    low = (-y / AY).clamp(min=0)
    b = []
    b.append(torch.stack([0.05 * x / AX, zero, 0.02 * z / AZ], 1))  # head width
    b.append(torch.stack([zero, 0.05 * (y - 0.1) / AY, zero], 1))  # face length
    b.append(torch.stack([0.06 * x * low, zero, zero], 1))  # jaw width
    b.append(torch.stack([0.018 * sx * eye, zero, zero], 1))  # eye spacing
    b.append(torch.stack([0.22 * (x - sx * EYE_X) * eye, 0.22 * (y - EYE_Y) * eye, zero], 1))  # eye size
    b.append(torch.stack([zero, -0.02 * nose * (y < 0.05), 0.03 * nose], 1))  # nose length
    b.append(torch.stack([0.25 * x * nose * (y < 0.0), zero, zero], 1))  # nose width
    b.append(torch.stack([0.15 * x * mouth, zero, zero], 1))  # mouth width
    b.append(torch.stack([zero, 0.015 * _g((y - BROW_Y) / 0.07) * front, zero], 1))  # brow height
    chin = _g(x / 0.2) * _g((y + 0.65) / 0.12)
    b.append(torch.stack([zero, -0.03 * chin, 0.02 * chin], 1))  # chin
    b.append(p * 0.06 * hair.unsqueeze(1))  # hair volume
    cheek = _g((ax - 0.27) / 0.12) * _g((y + 0.15) / 0.12) * front
    b.append(torch.stack([0.02 * sx * cheek, zero, 0.02 * cheek], 1))  # cheeks
    b.append(torch.stack([zero, 0.04 * (y / AY).clamp(min=0) ** 2, zero], 1))  # forehead / head top
    lips = _g(x / 0.16) * _g((y - MOUTH_Y) / 0.05) * front
    b.append(torch.stack([zero, 0.25 * (y - MOUTH_Y) * lips, 0.01 * lips], 1))  # lip thickness
    out = torch.stack(b, 0)
    out[:, inner] = out[:, inner] * torch.tensor([1.0, 1.0, 0.0], dtype=p.dtype)  # mouth patch: no depth change
    return out


def _au_basis(p: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """Displacement per unit AU intensity (len(AU_ALL), N, 3), mirror-symmetric."""
    x, y, z = p.unbind(1)
    ax, sx = x.abs(), torch.sign(x)
    zero = torch.zeros_like(x)
    front = ((z - 0.1) / 0.3).clamp(0, 1) * (~inner)
    brow = _g((y - BROW_Y) / 0.09) * front * _g((ax - 0.2) / 0.2)
    mu, mv = x / MOUTH_W, y - MOUTH_Y
    corner = _g((ax - MOUTH_W) / 0.08) * _g(mv / 0.07) * front
    lips = _g(x / 0.17) * _g(mv / 0.06) * front
    # region below the mouth line that opens with the jaw: a sharp step inside the mouth, smooth outside
    soft = 0.004 + 0.5 * (ax - MOUTH_W).clamp(min=0)
    below = ((-mv) / soft).clamp(0, 1) * _g((ax - 0.22).clamp(min=0) / 0.14)
    below_in = torch.where(inner, torch.zeros_like(x), below)
    lower_lip = below_in * _g(mv / 0.08)
    chin = _g(x / 0.22) * _g((y + 0.6) / 0.12) * front
    cheek = _g((ax - 0.26) / 0.1) * _g((y + 0.1) / 0.1) * front
    nose = _g(x / 0.07) * _g((y + 0.12) / 0.08) * front
    f = {}
    f[1] = torch.stack([zero, 0.016 * brow * _g((ax - 0.1) / 0.09), zero], 1)
    f[2] = torch.stack([zero, 0.016 * brow * _g((ax - 0.3) / 0.09), zero], 1)
    f[4] = torch.stack([-0.006 * sx * brow * _g((ax - 0.1) / 0.12), -0.01 * brow * _g((ax - 0.15) / 0.14), zero], 1)
    f[5] = torch.stack([zero, 0.002 * brow, zero], 1)
    f[6] = torch.stack([zero, 0.008 * cheek, 0.005 * cheek], 1)
    f[7] = torch.stack([zero, zero, zero], 1)
    up_lip = lips * (mv > 0)
    f[9] = torch.stack([zero, 0.005 * nose + 0.006 * up_lip, zero], 1)
    f[12] = torch.stack([0.012 * sx * corner, 0.022 * corner, -0.006 * corner], 1)
    f[15] = torch.stack([0.002 * sx * corner, -0.012 * corner, zero], 1)
    f[16] = torch.stack([zero, -0.009 * lower_lip * _g(x / 0.12), 0.002 * lower_lip], 1)
    f[17] = torch.stack([zero, 0.006 * chin + 0.004 * lower_lip, 0.004 * chin], 1)
    f[20] = torch.stack([0.012 * mu.clamp(-1.3, 1.3) * lips, -0.003 * corner, zero], 1)
    f[23] = torch.stack([-0.004 * mu.clamp(-1.3, 1.3) * lips, -0.005 * torch.tanh(mv / 0.01) * lips, zero], 1)
    f[25] = torch.stack([zero, -0.008 * lower_lip, zero], 1)
    f[26] = torch.stack([zero, -0.024 * below_in * (0.6 + 0.4 * _g(x / 0.2)), -0.004 * below_in], 1)
    return torch.stack([f[a] for a in AU_ALL], 0)


@lru_cache(maxsize=8)
def build_template(n_points: int = 6000) -> Template:
    """The symmetric template cloud with about n_points points (float32), cached per size.

    The face half is sampled about twice as densely as the back of the head, where only hair is seen."""
    n_patch = max(64, n_points // 30)
    m_all = int(0.45 * n_points)  # a uniform sphere, plus a second one kept only on the front (face) side
    m_front = int((n_points - n_patch - m_all) / 0.67)
    front = _fibonacci_half(m_front)
    d = torch.cat([_fibonacci_half(m_all), front[front[:, 2] > -0.3]])
    pf, nf = _surface(d), _normals(d)
    pm, nm = _mouth_patch(n_patch)
    pn, nn = _neck(n_points // 11)
    dm, dn = torch.nn.functional.normalize(pm, dim=1), torch.nn.functional.normalize(pn, dim=1)
    half_p, half_n, half_d = torch.cat([pf, pm, pn]), torch.cat([nf, nm, nn]), torch.cat([d, dm, dn])
    kind = torch.cat([torch.zeros(len(pf)), torch.ones(len(pm)), 2 * torch.ones(len(pn))])  # head, mouth, neck
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    p = torch.cat([half_p, half_p * mirror])
    n = torch.cat([half_n, half_n * mirror])
    d = torch.cat([half_d, half_d * mirror])
    kind = torch.cat([kind, kind])
    inner, neck = kind == 1, kind == 2
    feats = _features(p, inner, d)
    hair_zone = ((feats[:, F_HAIR] + 0.1) / 0.2).clamp(0, 1) * (~inner)
    shape = _shape_basis(p, inner, hair_zone)
    aus = _au_basis(p, inner)
    shape[:, neck], aus[:, neck] = 0.0, 0.0  # the neck keeps its shape
    return Template(
        points=p.float(), normals=n.float(), feats=feats.float(),
        shape_basis=shape.reshape(N_SHAPE, -1).float(), au_basis=aus.reshape(len(AU_ALL), -1).float(),
    )
