"""A labelled PNG grid of synthetic faces: rows = identities, columns = a yaw sweep then the 7 expressions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .face_model import AU_ALL, EMOTION_PROTOTYPES, EMOTIONS
from .factors import make_generator, sample_identities, sample_nuisance, take
from .renderer import render_faces

PREVIEW_YAWS = (-75.0, -45.0, -20.0, 0.0, 20.0, 45.0, 75.0)


def preview_factors(n_identities: int, seed: int) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Factors of the grid in row-major order and the column titles."""
    g = make_generator("preview", seed)
    ident = sample_identities(n_identities, g)
    cols = len(PREVIEW_YAWS) + len(EMOTIONS)
    who = torch.arange(n_identities).repeat_interleave(cols)
    f = take(ident, who)
    nuis = sample_nuisance(n_identities, g)
    nuis["light"][:, 0] = nuis["light"][:, 0] * 0.5
    nuis["noise"][:] = 0.0
    nuis["tx"][:] = 0.0
    nuis["ty"][:] = 0.0
    f.update(take(nuis, who))
    yaw = torch.tensor(list(PREVIEW_YAWS) + [0.0] * len(EMOTIONS)).repeat(n_identities)
    aus = torch.zeros(cols, len(AU_ALL))
    for j, e in enumerate(EMOTIONS):
        for au, v in EMOTION_PROTOTYPES[e].items():
            aus[len(PREVIEW_YAWS) + j, AU_ALL.index(au)] = min(5.0, v * 1.2)
    f.update(yaw=yaw, pitch=torch.zeros_like(yaw), roll=torch.zeros_like(yaw), aus=aus.repeat(n_identities, 1))
    titles = [f"yaw {int(y)}" for y in PREVIEW_YAWS] + [e[:8] for e in EMOTIONS]
    return f, titles


def preview_grid(path: Path, n_identities: int = 4, image_size: int = 64, seed: int = 0) -> Path:
    """Write the grid PNG at `path` (tiles upscaled to >= 96 px for readability) and return the path."""
    f, titles = preview_factors(n_identities, seed)
    images = render_faces(f, image_size)
    tile = max(96, image_size)
    if tile != image_size:
        images = torch.nn.functional.interpolate(images, size=(tile, tile), mode="nearest")
    arr = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    cols, head, left = len(titles), 16, 40
    canvas = Image.new("RGB", (left + cols * tile, head + n_identities * tile), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(titles):
        draw.text((left + j * tile + 4, 2), title, fill="black")
    for i in range(n_identities):
        draw.text((4, head + i * tile + tile // 2 - 6), f"id {i}", fill="black")
        for j in range(cols):
            canvas.paste(Image.fromarray(arr[i * cols + j]), (left + j * tile, head + i * tile))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
