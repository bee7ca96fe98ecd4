"""Atomic file writes (temp file in the same folder + rename) and user-wide folders."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old or the new file, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON line (one write call per row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")


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
