"""Procedural synthetic face world: the project's embedded default data (see renderer, world; the writers of
the real datasets' layouts use ``export``'s faces)."""

from __future__ import annotations

from .face_model import AU_ALL, DISFA_ALL_AUS, DISFA_AUS, EMOTION_PROTOTYPES, EMOTIONS
from .factors import emotion_aus, sample_factors, sample_identities
from .preview import preview_grid
from .renderer import FACTOR_SHAPES, disfa_aus, factor_defaults, project_landmarks, render_faces
from .world import (
    EVAL_ID_OFFSET, POSECLS_PITCHES, POSECLS_YAWS, TASK_KINDS, SyntheticClips, SyntheticWorld, WorldStyle,
    synthetic_task_data,
)

__all__ = [
    "AU_ALL", "DISFA_ALL_AUS", "DISFA_AUS", "EMOTIONS", "EMOTION_PROTOTYPES", "EVAL_ID_OFFSET",
    "FACTOR_SHAPES",
    "POSECLS_PITCHES", "POSECLS_YAWS", "TASK_KINDS", "SyntheticClips", "SyntheticWorld", "WorldStyle", "disfa_aus",
    "emotion_aus", "factor_defaults", "preview_grid", "project_landmarks", "render_faces",
    "sample_factors", "sample_identities",
    "synthetic_task_data",
]
