"""VoxCeleb-style frame trees for pre-training (§9): an index of clips, one random frame per clip per epoch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pcfrl_bench.errors import MalformedFileError

from .base import IMAGE_EXTENSIONS, SampleIndex, layout_error, path_inside, read_text_lines
from .format import DatasetFormat, register_dataset

VOXCELEB_LAYOUT = """\
<root>/<identity>/<video>/<clip>/<frame>.jpg|png     (default <data-root>/VoxCeleb)
  optional list file: one '<identity>/<video>' a line (e.g. PCL's vox_train_list_remove_id.txt)
  (deeper trees such as <Name>/1.6/<YouTubeID>/<utterance>/ also work: a clip is any folder holding frames)
"""


def _clips_under(folder: Path) -> list[tuple[Path, list[str]]]:
    """Every folder below `folder` (inclusive) that directly contains image files, with its sorted frames."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        frames = sorted(f for f in filenames if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
        if frames:
            found.append((Path(dirpath), frames))
    return found


def read_voxceleb(root: Path, list_file: str | None = None, min_frames: int = 1) -> dict[str, SampleIndex]:
    """Split 'train': one sample per clip. `paths` are clip folders; targets 'identity' (int, sorted identity
    folder names in meta["identities"]), 'n_frames', 'frame_offset' (start in meta["frames"], a flat list of
    all frame paths). Clips with fewer than `min_frames` frames are dropped.
    """
    root = Path(root)
    if not root.is_dir():
        raise layout_error(root, "VoxCeleb root", VOXCELEB_LAYOUT)
    if list_file is not None:
        lst = root / list_file if not Path(list_file).is_absolute() else Path(list_file)
        if not lst.is_file():
            raise layout_error(lst, "VoxCeleb list file", VOXCELEB_LAYOUT)
        videos = []
        for n, line in enumerate(read_text_lines(lst), start=1):
            rel = line.strip().strip("/")
            if not rel:
                continue
            video = path_inside(root, rel, lst, n)
            if not video.is_dir():
                raise MalformedFileError(lst, n, f"listed video folder does not exist: {video}")
            videos.append(video)
    else:
        videos = [root]
    clips: list[tuple[Path, list[str]]] = []
    for v in videos:
        clips.extend(c for c in _clips_under(v) if len(c[1]) >= min_frames and c[0] != root)
    if not clips:
        raise layout_error(root / "<identity>/<video>/<clip>/<frame>.jpg", "VoxCeleb frames", VOXCELEB_LAYOUT)
    identity_names = sorted({c.relative_to(root).parts[0] for c, _ in clips})
    ident_id = {name: i for i, name in enumerate(identity_names)}
    counts = np.asarray([len(f) for _, f in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    frames = [str(c / f) for c, fs in clips for f in fs]
    index = SampleIndex(
        paths=[c for c, _ in clips],
        targets={
            "identity": np.asarray([ident_id[c.relative_to(root).parts[0]] for c, _ in clips], dtype=np.int64),
            "n_frames": counts,
            "frame_offset": offsets,
        },
        meta={"identities": identity_names, "frames": frames},
    )
    return {"train": index}


def sample_clip_frames(index: SampleIndex, seed: int, epoch: int) -> np.ndarray:
    """One frame position (into meta["frames"]) per clip, drawn uniformly and reproducibly from (seed, epoch)."""
    rng = np.random.default_rng([int(seed), int(epoch)])
    counts = index.targets["n_frames"]
    pick = np.floor(rng.random(len(counts)) * counts).astype(np.int64)
    return index.targets["frame_offset"] + np.minimum(pick, counts - 1)


def epoch_frame_index(index: SampleIndex, seed: int, epoch: int) -> SampleIndex:
    """A frame-level SampleIndex (one image per clip) for this epoch, for `ImageIndexDataset`."""
    chosen = sample_clip_frames(index, seed, epoch)
    frames = index.meta["frames"]
    return SampleIndex(
        paths=[Path(frames[i]) for i in chosen],
        targets={"identity": index.targets["identity"], "clip": np.arange(len(index), dtype=np.int64)},
        meta={"identities": index.meta["identities"], "seed": seed, "epoch": epoch},
    )


def merge_clip_indices(*indices: SampleIndex) -> SampleIndex:
    """Concatenate clip indices (e.g. VoxCeleb1 and VoxCeleb2); identities of later ones are renumbered after
    the earlier ones, frame offsets shifted."""
    paths: list[Path] = []
    frames: list[str] = []
    identities: list[str] = []
    ident, counts, offsets = [], [], []
    for index in indices:
        paths += index.paths
        ident.append(index.targets["identity"] + len(identities))
        offsets.append(index.targets["frame_offset"] + len(frames))
        counts.append(index.targets["n_frames"])
        identities += index.meta["identities"]
        frames += index.meta["frames"]
    return SampleIndex(
        paths=paths,
        targets={
            "identity": np.concatenate(ident),
            "n_frames": np.concatenate(counts),
            "frame_offset": np.concatenate(offsets),
        },
        meta={"identities": identities, "frames": frames},
    )


def write_voxceleb(out: Path, n: int, seed: int) -> Path:
    """The writer of the voxceleb layout (``synth export --like voxceleb``): about n synthetic samples under out."""
    import torch
    from ..synthetic.export import save_image, to_uint8
    from ..synthetic.world import SyntheticWorld
    root = out / "VoxCeleb"
    frames = 4
    n_clips = max(1, n // frames)
    n_ids = max(1, min(n_clips, (n_clips + 3) // 4))
    cpi = -(-n_clips // n_ids)
    world = SyntheticWorld(seed + 777, n_ids, cpi, frames, role="eval")
    clips = torch.arange(world.n_clips).repeat_interleave(frames)
    imgs = to_uint8(world.render(clips, torch.arange(frames).repeat(world.n_clips), 128)[0])
    lines = []
    for c in range(world.n_clips):
        ident = f"id{10001 + c // cpi}"
        video = f"Y{c // cpi:04d}v{(c % cpi) // 2:03d}Qz"  # 11-character YouTube-like id
        clip = f"{(c % cpi) % 2 + 1:05d}"
        for t in range(frames):
            save_image(imgs[c * frames + t], root / ident / video / clip / f"{t + 1:04d}.jpg")
        if f"{ident}/{video}" not in lines:
            lines.append(f"{ident}/{video}")
    (root / "vox_train_list.txt").write_text("\n".join(lines) + "\n")
    return root


@register_dataset("voxceleb")
class VoxCeleb(DatasetFormat):
    folder = "VoxCeleb"
    description = "VoxCeleb frame trees <identity>/<video>/<clip>/<frame>.jpg for pretraining (§9)"
    layout = VOXCELEB_LAYOUT
    writers = {"voxceleb": write_voxceleb}
    reader = staticmethod(read_voxceleb)
