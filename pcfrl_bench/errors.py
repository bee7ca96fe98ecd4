"""Exceptions raised for user-facing problems; the CLI prints their message without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PcfrlError(Exception):
    """Base class of every error whose message is meant for the user."""


class ConfigError(PcfrlError):
    """A configuration key, value or file is invalid."""


class UnknownNameError(PcfrlError, KeyError):
    """A name (method, task, backbone, config key) is not registered; suggests close matches."""

    def __init__(self, kind: str, name: str, known: Iterable[str], list_hint: str | None = None):
        """``list_hint`` replaces the list of known names (for long lists): where to see them."""
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listed = list_hint or f"Known: {', '.join(known) or '(none)'}."
        self.message = f"Unknown {kind} {name!r}.{hint} {listed}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class DatasetLayoutError(PcfrlError):
    """A dataset root or file is missing; the message names the path and the expected layout."""


class MalformedFileError(PcfrlError):
    """A dataset file has a bad line; the message names the file and the 1-based line number."""

    def __init__(self, path: object, line: int | None, problem: str):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = path, line, problem


class TrainingDivergedError(PcfrlError):
    """The training loss became NaN or infinite."""


class CheckpointError(PcfrlError):
    """A checkpoint file is unreadable, not a checkpoint, or refused (it would need code to load)."""


class ResultNotSavedError(PcfrlError):
    """A finished result could not be written where asked; the message says where it went and its metrics."""
