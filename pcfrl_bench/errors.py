"""Exceptions raised for user-facing problems; the CLI prints their message without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


_CLOSE_CHARS = 200  # names longer than this get no close-match search (it would be slow and useless)
SHORT_CHARS = 60  # a user's value longer than this is cut in messages


def short_repr(text: str, limit: int = SHORT_CHARS) -> str:
    """``repr(text)``, cut to ``limit`` characters with its length when longer (``inputs.quote`` for any value)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text):,} characters)"


class PcfrlError(Exception):
    """Base class of every error whose message is meant for the user."""


class ConfigError(PcfrlError):
    """A configuration key, value or file is invalid."""


class UnknownNameError(PcfrlError, KeyError):
    """A name (method, task, backbone, config key) is not registered; suggests close matches."""

    def __init__(self, kind: str, name: str, known: Iterable[str], list_hint: str | None = None):
        """``list_hint`` replaces the list of known names (for long lists): where to see them."""
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5) if len(name) <= _CLOSE_CHARS else []
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listed = list_hint or f"Known: {', '.join(known) or '(none)'}."
        self.message = f"Unknown {kind} {short_repr(name)}.{hint} {listed}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class UnsupportedPairError(ConfigError):
    """A method and a task that do not go together by a stated rule (e.g. a method trained on the task's labels
    and a task without labelled training data); ``list --pairs`` shows such pairs as not supported."""


class DatasetLayoutError(PcfrlError):
    """A dataset root or file is missing; the message names the path and the expected layout."""


class MalformedFileError(PcfrlError):
    """A dataset file has a bad line; the message names the file and the 1-based line number."""

    PROBLEM_CHARS = 1000  # a problem quoting a huge line of the file is cut to this, with its length

    def __init__(self, path: object, line: int | None, problem: str):
        if len(problem) > self.PROBLEM_CHARS:
            problem = f"{problem[:self.PROBLEM_CHARS]}… ({len(problem):,} characters)"
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = path, line, problem


class TrainingDivergedError(PcfrlError):
    """The training loss became NaN or infinite."""


class CheckpointError(PcfrlError):
    """A checkpoint file is unreadable, not a checkpoint, or refused (it would need code to load)."""


class ResultNotSavedError(PcfrlError):
    """A finished result could not be written where asked; the message says where it went and its metrics."""


class BadPathError(PcfrlError):
    """A path option names the wrong kind of thing (a file for a folder), cannot be written, or is too long."""


class WriteError(PcfrlError, OSError):
    """A file could not be written (a full disk, a file-size limit, ...); the previous version is intact.
    Also an OSError, so callers that fall back on any OSError (e.g. the unsaved-records folder) still do."""

    HINTS = {"ENOSPC": "the disk is full", "EDQUOT": "your disk quota is used up",
             "EFBIG": "the file would exceed the file-size limit (ulimit -f)", "EROFS": "the file system is read-only",
             "EACCES": "permission denied", "EPERM": "permission denied", "ENAMETOOLONG": "the name is too long"}

    def __init__(self, path: object, err: OSError, kept: str = "any earlier version of it is unchanged"):
        import errno as _errno

        code = _errno.errorcode.get(err.errno or 0, "")
        reason = self.HINTS.get(code) or err.strerror or str(err)
        text = f"could not write {path}: {reason}" + (f" ({code})" if code else "") + f"; {kept}"
        super().__init__(text)
        self.errno, self.strerror, self.filename = err.errno, err.strerror, str(path)
        self.message = text

    def __str__(self) -> str:  # OSError would print "[Errno N] ..." from errno and strerror
        return self.message


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: raised in the main thread like Ctrl-C's KeyboardInterrupt, so every
    ``finally`` and context manager runs (temp files and folders removed, child processes stopped)."""

    def __init__(self, signum: int):
        import signal

        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name
