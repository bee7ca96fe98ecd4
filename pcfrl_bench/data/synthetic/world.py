"""A VoxCeleb-like world of identities and clips, its pretraining Dataset, and evaluation task data.

Identities are drawn from a stream keyed by (role, seed): "pretrain" identities have ids 0..n-1, "eval"
identities have ids EVAL_ID_OFFSET + i and come from a different stream, so evaluation people never appear in
pretraining whatever the two seeds are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from pcfrl_bench.errors import ConfigError, UnknownNameError

from .face_model import AU_ALL, EMOTIONS
from .factors import (
    emotion_aus, make_generator, sample_identities, sample_nuisance, take,
)
from .renderer import disfa_aus, render_faces

EVAL_ID_OFFSET = 1_000_000
ROLES = ("pretrain", "eval")
NEUTRAL = EMOTIONS.index("Neutral")
# BU-3DFE-style discrete poses for `posecls` (the real setup is unconfirmed, datasets.md §7): 5 yaws x 3 pitches,
# class = 3 * yaw_index + pitch_index
POSECLS_YAWS = (-60.0, -30.0, 0.0, 30.0, 60.0)
POSECLS_PITCHES = (-25.0, 0.0, 25.0)
TASK_KINDS = ("fer", "au", "hpe", "posecls", "fr")


@dataclass(frozen=True)
class WorldStyle:
    """The world's look, shared by its pretraining clips and the synth-* tasks' faces (``data.synthetic``): every AU
    intensity is rendered x ``expression_scale`` (labels stay unscaled) and every face x ``zoom`` in size."""

    expression_scale: float = 1.0
    zoom: float = 1.0

    @classmethod
    def of(cls, world_config: Any) -> "WorldStyle":
        """The style of a ``data.synthetic`` config section."""
        return cls(world_config.expression_scale, world_config.zoom)

    def render(self, factors: dict[str, torch.Tensor], image_size: int) -> torch.Tensor:
        if self.expression_scale != 1.0:
            factors = {**factors, "aus": factors["aus"] * self.expression_scale}
        return render_faces(factors, image_size, zoom=self.zoom)

    def changes(self) -> dict[str, float]:
        """The settings that differ from the default look (a cache key: empty for the default world)."""
        return {k: v for k, v in (("expression_scale", self.expression_scale), ("zoom", self.zoom)) if v != 1.0}


class SyntheticWorld:
    """Identities with persistent geometry/appearance and clips with smooth pose/expression trajectories."""

    def __init__(self, seed: int, n_identities: int, clips_per_identity: int, frames_per_clip: int,
                 role: str = "pretrain", max_yaw: float = 75.0, max_pitch: float = 40.0, max_roll: float = 35.0,
                 style: WorldStyle = WorldStyle()):
        if role not in ROLES:
            raise UnknownNameError("world role", role, ROLES)
        if min(n_identities, clips_per_identity, frames_per_clip) < 1:
            raise ConfigError("n_identities, clips_per_identity and frames_per_clip must be >= 1")
        self.seed, self.role, self.style = seed, role, style
        self.n_identities, self.clips_per_identity, self.frames_per_clip = (
            n_identities, clips_per_identity, frames_per_clip)
        self.max_pose = (max_yaw, max_pitch, max_roll)
        self.identities = sample_identities(n_identities, make_generator("identities", role, seed))
        offset = 0 if role == "pretrain" else EVAL_ID_OFFSET
        self.identity_ids = torch.arange(n_identities) + offset
        n_clips = n_identities * clips_per_identity
        self.clip_identity = torch.arange(n_identities).repeat_interleave(clips_per_identity)
        g = make_generator("clips", role, seed)

        def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand((n_clips, *shape), generator=g)

        self.pose_center = torch.stack([u(-0.8 * max_yaw, 0.8 * max_yaw), u(-0.6 * max_pitch, 0.6 * max_pitch),
                                        u(-0.5 * max_roll, 0.5 * max_roll)], 1)
        self.pose_amp = torch.stack([u(0, 25), u(0, 12), u(0, 10)], 1)
        self.pose_freq = u(0.5, 2.0, 3) * (2 * math.pi / max(frames_per_clip, 2))
        self.pose_phase = u(0, 2 * math.pi, 3)
        self.clip_emotion = torch.randint(len(EMOTIONS), (n_clips,), generator=g)
        self.clip_aus = emotion_aus(self.clip_emotion, g)
        self.onset = u(-0.3, 0.5) * frames_per_clip
        self.ramp = u(0.1, 0.4) * frames_per_clip + 1
        self.nuisance = sample_nuisance(n_clips, g)
        self.clip_seed = torch.randint(1 << 20, (n_clips,), generator=g)

    @property
    def n_clips(self) -> int:
        return self.clip_identity.shape[0]

    def frame_factors(self, clips: torch.Tensor, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Render factors and labels of frames `frames` of clips `clips` (1-D int tensors of equal length)."""
        t = frames.float()[:, None]
        pose = self.pose_center[clips] + self.pose_amp[clips] * torch.sin(self.pose_freq[clips] * t
                                                                          + self.pose_phase[clips])
        lim = torch.tensor(self.max_pose)
        pose = torch.maximum(torch.minimum(pose, lim), -lim)
        ramp = ((frames.float() - self.onset[clips]) / self.ramp[clips]).clamp(0, 1)
        f = take(self.identities, self.clip_identity[clips])
        f.update(take(self.nuisance, clips))
        f["tx"] = f["tx"] + 0.01 * torch.sin(0.7 * t[:, 0] + clips)
        f["yaw"], f["pitch"], f["roll"] = pose.unbind(1)
        f["aus"] = self.clip_aus[clips] * ramp[:, None]
        f["noise_seed"] = self.clip_seed[clips] * 4099 + frames
        f["emotion"] = torch.where(ramp >= 0.5, self.clip_emotion[clips], NEUTRAL)
        f["identity"] = self.identity_ids[self.clip_identity[clips]]
        return f

    def render(self, clips: torch.Tensor, frames: torch.Tensor, image_size: int = 64) -> tuple[
            torch.Tensor, dict[str, torch.Tensor]]:
        """Images (B,3,H,W) and factors of the given (clip, frame) pairs, in one vectorised call."""
        f = self.frame_factors(clips, frames)
        return self.style.render(f, image_size), f


class SyntheticClips(Dataset):
    """Pretraining dataset: ``draws`` items per clip (item i is clip i mod n_clips); `set_epoch` picks each draw's
    frame from (seed, epoch). One draw per clip and epoch is the VoxCeleb-like pretraining set; the supervised
    face-recognition ceiling takes several frames of every clip."""

    def __init__(self, world: SyntheticWorld, image_size: int = 64, draws: int = 1):
        if draws < 1:
            raise ConfigError(f"draws must be >= 1, got {draws}")
        self.world, self.image_size, self.draws = world, image_size, draws
        self.set_epoch(0)

    def __len__(self) -> int:
        return self.world.n_clips * self.draws

    def set_epoch(self, epoch: int) -> None:
        g = make_generator("epoch", self.world.role, self.world.seed, epoch)
        self.epoch = epoch
        self.frames = torch.randint(self.world.frames_per_clip, (self.draws * self.world.n_clips,), generator=g)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        items = torch.as_tensor(list(indices), dtype=torch.long)
        if len(items) and (items.min() < 0 or items.max() >= len(self)):
            raise IndexError(f"item index out of range 0..{len(self) - 1}")
        clips, frames = items % self.world.n_clips, self.frames[items]
        images, f = self.world.render(clips, frames, self.image_size)
        aus = disfa_aus(f["aus"])
        return [
            {"image": images[i], "identity": int(f["identity"][i]), "clip": int(clips[i]),
             "frame": int(frames[i]), "yaw": float(f["yaw"][i]), "pitch": float(f["pitch"][i]),
             "roll": float(f["roll"][i]), "emotion": int(f["emotion"][i]), "aus": aus[i]}
            for i in range(len(items))
        ]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])[0]


def _eval_identities(seed: int, n: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    world_ids = sample_identities(n, make_generator("identities", "eval", seed))
    return world_ids, torch.arange(n) + EVAL_ID_OFFSET


def _split_people(split: str, n_people: int, train_fraction: float = 0.7) -> torch.Tensor:
    """Identity indices of a split: train = first 70% of the eval pool, test = the rest (subject-exclusive)."""
    if split not in ("train", "test"):
        raise UnknownNameError("split", split, ("train", "test"))
    cut = int(round(n_people * train_fraction))
    return torch.arange(cut) if split == "train" else torch.arange(cut, n_people)


def _compose(ident: dict[str, torch.Tensor], who: torch.Tensor, pose: torch.Tensor, aus: torch.Tensor,
             g: torch.Generator) -> dict[str, torch.Tensor]:
    f = take(ident, who)
    f.update(sample_nuisance(len(who), g))
    f["yaw"], f["pitch"], f["roll"] = pose.unbind(1)
    f["aus"] = aus
    f["noise_seed"] = torch.randint(1 << 30, (len(who),), generator=g)
    return f


def _uniform(g: torch.Generator, n: int, lim: Sequence[float]) -> torch.Tensor:
    lim_t = torch.tensor(lim, dtype=torch.float32)
    return (torch.rand(n, len(lim), generator=g) * 2 - 1) * lim_t


FACTOR_NAMES = ("expression", "aus", "identity", "yaw", "pitch", "roll", "light", "background", "clip")


def factor_probe_data(image_size: int, seed: int = 0, n: int = 3000, identities: int = 100, clips: int = 100,
                      frames: int = 8, train_fraction: float = 0.7, style: WorldStyle = WorldStyle()
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Images, ground-truth factors and probe splits for the factor probes (``analyze --factors``).

    Two sets of eval people (never in pretraining), concatenated: ``n`` faces of ``identities`` people with pose,
    emotion and nuisance drawn independently per face (factors expression, aus, identity, yaw, pitch, roll, light,
    background); then ``frames`` evenly spaced frames of ``clips`` clips of the world (factor clip). Splits, an int
    per row (0 train, 1 test, -1 not used): ``subject`` = the first ``train_fraction`` of the people vs the rest
    (nothing of a test person is seen in training); ``image`` = a random quarter of every person's faces held out
    (identity, read from the face, since pose and nuisance change per face); ``frame`` = every other frame of each
    clip held out (the clip, background and light included).
    """
    g = make_generator("factor-probes", seed)
    ident, _ = _eval_identities(seed + 31337, identities)
    who = torch.randint(identities, (n,), generator=g)
    emotion = torch.randint(len(EMOTIONS), (n,), generator=g)
    aus = emotion_aus(emotion, g)
    pose = _uniform(g, n, (75.0, 40.0, 35.0))
    f = _compose(ident, who, pose, aus, g)
    faces = style.render(f, image_size)
    world = SyntheticWorld(seed + 7, clips, 1, max(frames, 2), role="eval", style=style)
    per_clip = world.frames_per_clip
    clip_ids = torch.arange(clips).repeat_interleave(per_clip)
    frame_ids = torch.arange(per_clip).repeat(clips)
    clip_images, _ = world.render(clip_ids, frame_ids, image_size)
    none_n, none_c = torch.full((n,), -1), torch.full((len(clip_ids),), -1)
    cut = int(round(identities * train_fraction))
    labels = {
        "expression": torch.cat([emotion, none_c]), "aus": torch.cat([aus, torch.zeros(len(clip_ids), aus.shape[1])]),
        "identity": torch.cat([who, none_c]), "clip": torch.cat([none_n, clip_ids]),
        **{k: torch.cat([f[k], torch.zeros(len(clip_ids))]) for k in ("yaw", "pitch", "roll")},
        "light": torch.cat([f["light"], torch.zeros(len(clip_ids), f["light"].shape[1])]),
        "background": torch.cat([f["bg"].reshape(n, -1), torch.zeros(len(clip_ids), f["bg"][0].numel())]),
    }
    held_out = torch.rand(n, generator=g) < 0.25
    splits = {
        "subject": torch.cat([(who >= cut).long(), none_c]),
        "image": torch.cat([held_out.long(), none_c]),
        "frame": torch.cat([none_n, frame_ids % 2]),
    }
    return torch.cat([faces, clip_images]), labels, splits


def synthetic_task_data(kind: str, split: str, image_size: int, n: int, seed: int,
                        expression_scale: float = 1.0, train_identities: int = 200,
                        style: WorldStyle = WorldStyle()) -> dict[str, torch.Tensor]:
    """Evaluation data of a synthetic task, from eval identities only (never pretraining ones).

    fer: images, labels (7 emotions, EMOTIONS order), identities; train/test identities disjoint; the emotion's AU
        intensities are multiplied by `expression_scale` (the FER tasks' expression strength).
    au: images, aus (n,8) integer intensities of AUs 1,2,4,6,9,12,25,26, subjects (12 people), folds (0..2,
        subject-exclusive); use `folds` for the 3-fold protocol. split "supervised" draws 12 other people (the
        supervised ceiling's training data); any other split only changes the sample draw. Faces are rendered
        with the intensities times `expression_scale`; the labels are the unscaled intensities.
    hpe: images, angles (n,3) yaw/pitch/roll degrees (|yaw|<=75, |pitch|<=40, |roll|<=35), identities.
    posecls: images, labels = 3*yaw_index+pitch_index over POSECLS_YAWS x POSECLS_PITCHES, emotions, identities.
    fr: n pairs (rounded down to a multiple of 20, at least 20): images (2P,3,H,W), pairs (P,2), same (P,),
        fold (P,) 0..9 with disjoint identities per fold; |yaw difference| >= 30 in every pair. Split
        "supervised": n faces of ``train_identities`` other people (the supervised ceiling's data), images and
        labels 0..train_identities-1, pose as hpe, nuisance drawn per image.
    """
    if kind not in TASK_KINDS:
        raise UnknownNameError("synthetic task", kind, TASK_KINDS)
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    g = make_generator("task", kind, split, seed)
    if kind == "fr":
        if split == "supervised":
            return _fr_supervision(image_size, n, seed, train_identities, g, style)
        return _fr_data(split, image_size, n, seed, g, style)
    if kind == "au":
        ident, ids = _eval_identities(seed + 7919 + (104723 if split == "supervised" else 0), 12)
        subj = torch.randint(12, (n,), generator=g)
        emotion = torch.where(torch.rand(n, generator=g) < 0.3, NEUTRAL, torch.randint(7, (n,), generator=g))
        aus = emotion_aus(emotion, g, extra=0.8, integer=True)
        pose = _uniform(g, n, (15.0, 12.0, 8.0))
        images = style.render(_compose(ident, subj, pose, aus * expression_scale, g), image_size)
        return {"images": images, "aus": disfa_aus(aus), "subjects": ids[subj], "folds": subj % 3,
                "emotions": emotion}
    ident, ids = _eval_identities(seed, 100)
    people = _split_people(split, 100)
    who = people[torch.randint(len(people), (n,), generator=g)]
    if kind == "fer":
        labels = torch.randperm(n, generator=g) % len(EMOTIONS)
        aus = emotion_aus(labels, g, extra=0.2) * expression_scale
        pose = _uniform(g, n, (40.0, 20.0, 15.0))
        images = style.render(_compose(ident, who, pose, aus, g), image_size)
        return {"images": images, "labels": labels, "identities": ids[who]}
    emotion = torch.randint(len(EMOTIONS), (n,), generator=g)
    aus = emotion_aus(emotion, g)
    if kind == "hpe":
        pose = _uniform(g, n, (75.0, 40.0, 35.0))
        images = style.render(_compose(ident, who, pose, aus, g), image_size)
        return {"images": images, "angles": pose, "identities": ids[who]}
    labels = torch.randperm(n, generator=g) % (len(POSECLS_YAWS) * len(POSECLS_PITCHES))
    yaw = torch.tensor(POSECLS_YAWS)[labels // len(POSECLS_PITCHES)]
    pitch = torch.tensor(POSECLS_PITCHES)[labels % len(POSECLS_PITCHES)]
    pose = torch.stack([yaw, pitch, torch.zeros(n)], 1) + _uniform(g, n, (3.0, 3.0, 5.0))
    images = style.render(_compose(ident, who, pose, aus, g), image_size)
    return {"images": images, "labels": labels, "emotions": emotion, "identities": ids[who]}


def _fr_supervision(image_size: int, n: int, seed: int, identities: int, g: torch.Generator, style: WorldStyle
                    ) -> dict[str, torch.Tensor]:
    """Identity-labelled faces for the FR ceiling: people of their own stream (never in the pairs), each face with
    its own pose, expression, light and background."""
    if identities < 2:
        raise ConfigError(f"the FR ceiling needs at least 2 training identities, got {identities}")
    ident, _ = _eval_identities(seed + 7127, identities)
    labels = torch.randperm(n, generator=g) % identities
    emotion = torch.randint(len(EMOTIONS), (n,), generator=g)
    pose = _uniform(g, n, (75.0, 40.0, 35.0))
    images = style.render(_compose(ident, labels, pose, emotion_aus(emotion, g), g), image_size)
    return {"images": images, "labels": labels}


def _fr_data(split: str, image_size: int, n: int, seed: int, g: torch.Generator, style: WorldStyle
             ) -> dict[str, torch.Tensor]:
    """CPLFW-like cross-pose verification pairs; fold k uses only identities of group k (LFW-like order)."""
    _split_people(split, 10)  # validates split; fr is a test-only protocol
    p = max(20, n - n % 20)
    per_fold = p // 10
    per_id = 4  # ids per fold ~ per_fold / 4 (at least 4)
    ids_per_fold = max(4, per_fold // per_id)
    ident, ids = _eval_identities(seed + 104729, 10 * ids_per_fold)
    fold = torch.arange(10).repeat_interleave(per_fold)
    same = (torch.arange(per_fold) < per_fold // 2).repeat(10)
    base = fold * ids_per_fold
    a = base + torch.randint(ids_per_fold, (p,), generator=g)
    shift = 1 + torch.randint(ids_per_fold - 1, (p,), generator=g)
    b = torch.where(same, a, base + (a - base + shift) % ids_per_fold)
    who = torch.stack([a, b], 1).view(-1)
    side = torch.where(torch.rand(p, generator=g) < 0.5, -1.0, 1.0)
    yaw_a = (torch.rand(p, generator=g) * 2 - 1) * 20
    yaw_b = side * (50 + 25 * torch.rand(p, generator=g))
    swap = torch.rand(p, generator=g) < 0.5
    yaws = torch.stack([torch.where(swap, yaw_b, yaw_a), torch.where(swap, yaw_a, yaw_b)], 1).view(-1)
    pose = torch.cat([yaws[:, None], _uniform(g, 2 * p, (20.0, 15.0))], 1)
    emotion = torch.randint(len(EMOTIONS), (2 * p,), generator=g)
    images = style.render(_compose(ident, who, pose, emotion_aus(emotion, g), g), image_size)
    return {"images": images, "pairs": torch.arange(2 * p).view(p, 2), "same": same, "fold": fold,
            "identities": ids[who], "yaws": yaws}


__all__ = ["AU_ALL", "EVAL_ID_OFFSET", "FACTOR_NAMES", "WorldStyle", "factor_probe_data", "POSECLS_PITCHES", "POSECLS_YAWS", "SyntheticClips", "SyntheticWorld",
           "TASK_KINDS", "synthetic_task_data"]
