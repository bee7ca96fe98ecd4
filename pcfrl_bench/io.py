"""Atomic file writes (temp file in the same folder + rename), folder locks and user-wide folders."""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .errors import PcfrlError, WriteError


class OutputNotWritableError(PcfrlError):
    """An output folder cannot be created or written."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give: mkstemp alone creates 0600 files


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old or the new file, never a mix.

    A failure (a full disk, a file-size limit, an interruption) removes the temp file and leaves the old file
    as it was; an OSError becomes a :class:`WriteError` that names ``path`` and the cause."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise WriteError(path, err) from None
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(obj: Any, path: Path) -> Path:
    import torch  # imported when used: the CLI's light commands never load torch for this module

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def sweep_temp_files(folder: Path) -> list[Path]:
    """Remove the temp files that atomic writes into ``folder`` or its subfolders left behind when killed
    (``.<name>.*.tmp``).

    Call it only while no other process writes into ``folder`` (e.g. under its ``folder_lock``)."""
    removed = [p for p in Path(folder).rglob(".*.tmp") if p.is_file()]
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


def ensure_writable_dir(folder: Path, what: str) -> Path:
    """Create ``folder`` if needed and prove a file can be written in it, or raise OutputNotWritableError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputNotWritableError(f"{what} {folder} is not a writable folder ({err.strerror or err}); "
                                     "choose another one") from None
    return folder


@contextmanager
def folder_lock(folder: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (file ``<folder>.lock`` beside it) for the ``with`` block.

    The lock is an OS file lock (``filelock``): it is released when the holder exits, even when killed,
    so it never goes stale. If another process holds it, ``on_wait`` is called with a line naming that
    process (its PID, stored in ``<folder>.lock.pid``) and the call waits until the lock is free.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.with_name(folder.name + ".lock")
    pid_path = folder.with_name(folder.name + ".lock.pid")
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = pid_path.read_text().strip()
        except OSError:
            holder = "?"
        if on_wait is not None:
            on_wait(f"another process (PID {holder}) holds {lock_path}; waiting for it to finish")
        lock.acquire()
    try:
        atomic_write_text(pid_path, f"{os.getpid()}\n")
        yield
    finally:
        lock.release()


def append_text(path: Path, text: str) -> None:
    """Append ``text`` to ``path``; if the write fails (a full disk, a file-size limit), the file is cut back to
    its earlier contents and a WriteError says so, so no half line is ever left behind."""
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        done = 0
        while done < len(data):  # a short write continues, a failed one raises
            done += os.write(fd, data[done:])
    except OSError as err:
        os.ftruncate(fd, size)
        raise WriteError(path, err, "its earlier lines are intact") from None
    finally:
        os.close(fd)


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON line (one write call per row, see :func:`append_text`)."""
    append_text(path, json.dumps(row, sort_keys=True) + "\n")


def user_cache_dir() -> Path:
    """``$PCFRL_CACHE``, else ``$XDG_CACHE_HOME/pcfrl-bench``, else ``~/.cache/pcfrl-bench``."""
    if os.environ.get("PCFRL_CACHE"):
        return Path(os.environ["PCFRL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "pcfrl-bench"


def default_data_root() -> Path:
    """``$PCFRL_DATA``, else ``<user cache dir>/data``."""
    if os.environ.get("PCFRL_DATA"):
        return Path(os.environ["PCFRL_DATA"]).expanduser()
    return user_cache_dir() / "data"
