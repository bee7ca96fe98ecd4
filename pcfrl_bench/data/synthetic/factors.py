"""Random factor samplers: identities, expressions (emotion -> AU intensities), pose, illumination, nuisance."""

from __future__ import annotations

import hashlib

import torch

from .face_model import AU_ALL, EMOTION_PROTOTYPES, EMOTIONS, N_SHAPE

IDENTITY_KEYS = ("shape", "skin", "hair", "brow", "iris", "lip", "hairline", "eye_open", "brow_thick")
_PROTO = torch.tensor([[EMOTION_PROTOTYPES[e].get(a, 0.0) for a in AU_ALL] for e in EMOTIONS])  # (7, J)

_HAIR_PALETTE = torch.tensor([
    [0.05, 0.04, 0.04], [0.18, 0.11, 0.06], [0.35, 0.22, 0.12], [0.62, 0.48, 0.3], [0.5, 0.22, 0.1],
    [0.55, 0.55, 0.55], [0.1, 0.08, 0.07],
])
_IRIS_PALETTE = torch.tensor([[0.3, 0.18, 0.08], [0.15, 0.1, 0.06], [0.25, 0.4, 0.6], [0.3, 0.45, 0.3]])


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any hashable description (stable across processes, unlike hash())."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_generator(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


def _u(g: torch.Generator, n: int, lo: float, hi: float, *shape: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand((n, *shape), generator=g)


def sample_identities(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Per-identity geometry and appearance (keys IDENTITY_KEYS); many factors, none decisive alone."""
    g = generator
    tone = torch.rand(n, 1, generator=g)
    light, dark = torch.tensor([0.93, 0.76, 0.64]), torch.tensor([0.42, 0.27, 0.19])
    skin = light + (dark - light) * tone + 0.03 * torch.randn(n, 3, generator=g)
    hair_i = torch.randint(len(_HAIR_PALETTE), (n,), generator=g)
    hair = _HAIR_PALETTE[hair_i] * _u(g, n, 0.75, 1.25, 1) + 0.03 * torch.randn(n, 3, generator=g)
    brow = hair * _u(g, n, 0.55, 0.95, 1)
    iris = _IRIS_PALETTE[torch.randint(len(_IRIS_PALETTE), (n,), generator=g)] * _u(g, n, 0.7, 1.2, 1)
    lip = skin * torch.tensor([0.95, 0.62, 0.62]) * _u(g, n, 0.85, 1.05, 1)
    bald = torch.rand(n, generator=g) < 0.07
    hairline = torch.where(bald, torch.full((n,), 0.45), _u(g, n, -0.12, 0.12))
    return {
        "shape": torch.randn(n, N_SHAPE, generator=g).clamp(-2.5, 2.5),
        "skin": skin.clamp(0, 1), "hair": hair.clamp(0, 1), "brow": brow.clamp(0, 1), "iris": iris.clamp(0, 1),
        "lip": lip.clamp(0, 1), "hairline": hairline, "eye_open": _u(g, n, 0.55, 0.9),
        "brow_thick": _u(g, n, 0.55, 1.35),
    }


def emotion_aus(emotions: torch.Tensor, generator: torch.Generator, extra: float = 0.35,
                integer: bool = False) -> torch.Tensor:
    """(n, len(AU_ALL)) intensities 0..5: prototype of each emotion scaled by a random intensity, jittered,
    plus random extra AUs (each with probability 1.5 * extra / len(AU_ALL)) so AUs are not a function of emotion."""
    g = generator
    n = emotions.shape[0]
    proto = _PROTO[emotions]
    strength = _u(g, n, 0.55, 1.3, 1)
    aus = proto * strength + 0.5 * torch.randn(proto.shape, generator=g) * (proto > 0)
    on = torch.rand(proto.shape, generator=g) < extra * 1.5 / len(AU_ALL)
    aus = aus + on * _u(g, n, 0.5, 3.0, len(AU_ALL))
    aus = aus.clamp(0, 5)
    return aus.round() if integer else aus


def sample_nuisance(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Illumination, background, translation/scale jitter and noise level."""
    g = generator
    light = torch.stack([_u(g, n, -70, 70), _u(g, n, -15, 55), _u(g, n, 0.3, 0.6), _u(g, n, 0.35, 0.8)], 1)
    return {
        "light": light,
        "bg": _u(g, n, 0.1, 0.85, 1) * (1 - (sat := _u(g, n, 0.0, 0.5, 1))) + sat * _u(g, n, 0.05, 0.9, 3),
        "bg_grad": 0.1 * torch.randn(n, 2, 3, generator=g),
        "bg_tex": 0.06 * torch.randn(n, 3, 4, 4, generator=g),
        "tx": _u(g, n, -0.07, 0.07), "ty": _u(g, n, -0.07, 0.07), "scale": _u(g, n, 0.88, 1.06),
        "noise": _u(g, n, 0.0, 0.03),
    }


def sample_pose(n: int, generator: torch.Generator, yaw: float = 75.0, pitch: float = 40.0,
                roll: float = 35.0) -> dict[str, torch.Tensor]:
    """Uniform head pose within +-yaw, +-pitch, +-roll degrees."""
    g = generator
    return {"yaw": _u(g, n, -yaw, yaw), "pitch": _u(g, n, -pitch, pitch), "roll": _u(g, n, -roll, roll)}


def take(factors: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rows `index` of every factor."""
    return {k: v[index] for k, v in factors.items()}


def sample_factors(n: int, seed: int) -> dict[str, torch.Tensor]:
    """A complete random batch (n distinct identities, random emotion, pose and nuisance) from one seed."""
    g = make_generator("sample_factors", seed)
    f = sample_identities(n, g)
    emotion = torch.randint(len(EMOTIONS), (n,), generator=g)
    f.update(sample_pose(n, g))
    f.update(sample_nuisance(n, g))
    f["aus"] = emotion_aus(emotion, g)
    f["emotion"] = emotion
    f["noise_seed"] = torch.randint(1 << 30, (n,), generator=g)
    return f
