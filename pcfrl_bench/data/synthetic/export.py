"""What the dataset writers share (each format's writer lives in its module, ``data/readers/<format>.py``):
faces of eval-role identities, image saving, people's names and verification pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .face_model import EMOTIONS
from .factors import emotion_aus, make_generator, sample_identities, sample_nuisance, take
from .renderer import render_faces

# the world's emotions (RAF-DB names) -> ids 0..6 in the order angry, disgust, fear, happy, sad, surprise, neutral:
# FER-2013's CSV ids (datasets.md §2) and the BU-3DFE expression codes AN DI FE HA SA SU NE (§7)
EMOTION_TO_FER_ID = {"Anger": 0, "Disgust": 1, "Fear": 2, "Happiness": 3, "Sadness": 4, "Surprise": 5, "Neutral": 6}
_FIRST = ("Ada", "Bo", "Cyra", "Dario", "Elin", "Femi", "Goran", "Hana", "Ivo", "Juno", "Kiri", "Lior", "Mina",
          "Nils", "Oona", "Pavel", "Quin", "Rosa", "Sami", "Tove", "Ugo", "Vera", "Wim", "Xena", "Yusuf", "Zora")
_LAST = ("Abara", "Brandt", "Castell", "Dunmore", "Eklund", "Ferro", "Galvan", "Holt", "Ibsen", "Jovic", "Kato",
         "Lund", "Moreau", "Novak", "Okafor", "Pires", "Quist", "Rahm", "Sato", "Tamm", "Ueda", "Valk", "Wolde")


def person_names(n: int) -> list[str]:
    """n distinct LFW-style names 'First_Last' (no spaces)."""
    out = []
    for i in range(n):
        first, last = _FIRST[i % len(_FIRST)], _LAST[(i // len(_FIRST) + 3 * i) % len(_LAST)]
        out.append(f"{first}_{last}" if i < len(_FIRST) * len(_LAST) else f"{first}_{last}{i}")
    return out


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.permute(0, 2, 3, 1).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def save_image(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=92) if path.suffix == ".jpg" else Image.fromarray(arr).save(path)


class Faces:
    """Renders faces of eval-role identities (ids >= EVAL_ID_OFFSET) with chosen pose/emotion."""

    def __init__(self, seed: int, n_people: int, tag: str):
        self.g = make_generator("export", tag, seed)
        self.ident = sample_identities(n_people, make_generator("identities", "eval", seed + 31337))

    def render(self, who: torch.Tensor, size: int, emotion: torch.Tensor | None = None,
               pose: torch.Tensor | None = None, aus: torch.Tensor | None = None) -> torch.Tensor:
        n = len(who)
        f = take(self.ident, who)
        f.update(sample_nuisance(n, self.g))
        if pose is None:
            pose = (torch.rand(n, 3, generator=self.g) * 2 - 1) * torch.tensor([35.0, 20.0, 15.0])
        f["yaw"], f["pitch"], f["roll"] = pose.unbind(1)
        if aus is None:
            emo = emotion if emotion is not None else torch.full((n,), EMOTIONS.index("Neutral"))
            aus = emotion_aus(emo, self.g)
        f["aus"] = aus
        f["noise_seed"] = torch.randint(1 << 30, (n,), generator=self.g)
        self.last_factors = f
        return render_faces(f, size)


def verification_people(out_seed: int, n_pairs: int, tag: str, cross_pose: bool) -> tuple[
        list[str], list[tuple[int, int, int, int]], torch.Tensor, torch.Tensor]:
    """People, pairs (id_a, img_a, id_b, img_b) with 0-based image numbers, and per-image (who, yaw)."""
    g = make_generator("pairs", tag, out_seed)
    n_people = max(4, n_pairs // 2)
    per_person = 3
    who = torch.arange(n_people).repeat_interleave(per_person)
    side = torch.where(torch.rand(len(who), generator=g) < 0.5, -1.0, 1.0)
    k = torch.arange(len(who)) % per_person
    if cross_pose:  # image 0 near-frontal, images 1-2 strongly turned (CPLFW-like, |yaw diff| >= 30)
        yaw = torch.where(k == 0, (torch.rand(len(who), generator=g) * 2 - 1) * 15,
                          side * (50 + 25 * torch.rand(len(who), generator=g)))
    else:
        yaw = (torch.rand(len(who), generator=g) * 2 - 1) * 30
    pairs = []
    for i in range(n_pairs):
        p = i % n_people
        if i % 2 == 0:
            pairs.append((p, 0, p, 1 + (i // 2) % 2))
        else:
            q = (p + 1 + i % (n_people - 1)) % n_people
            pairs.append((p, 0, q, 1 + i % 2) if cross_pose else (p, 2, q, 0))
    return person_names(n_people), pairs, who, yaw


__all__ = ["EMOTION_TO_FER_ID", "Faces", "person_names", "save_image", "to_uint8", "verification_people"]
