"""What a user or a file hands the program, read defensively (README, "Threat model and guarantees").

Values are quoted short in messages (:func:`quote`); text is decoded as UTF-8 with its source named
(:func:`decode_text`, :func:`check_text`); YAML is read behind a size, a nesting and an alias-expansion limit
before PyYAML's safe loader builds anything (:func:`yaml_text`, :func:`read_yaml`), so a "billion laughs"
file fails in milliseconds; path options are checked for kind, writability and length before any work
(:func:`check_path`). Every failure is a :class:`~pcfrl_bench.errors.PcfrlError` naming its source.
"""

from __future__ import annotations

import json
import os
import reprlib
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import SHORT_CHARS, BadPathError, ConfigError, short_repr

YAML_MAX_BYTES = 1 << 20  # 1 MiB; the registry's largest file is a few KB
YAML_MAX_NODES = 100_000  # scalars, lists and mappings after alias expansion
YAML_MAX_DEPTH = 64  # nesting of lists and mappings
JSON_MAX_BYTES = 64 << 20  # result records and analyses (the largest stored record is ~20 KB)

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict, _SHORT.maxset = 3, 6, 6, 6, 6
_SHORT.maxstring = _SHORT.maxother = SHORT_CHARS

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: same safe constructors


def quote(value: Any, limit: int = SHORT_CHARS) -> str:
    """``repr(value)``, cut to about ``limit`` characters with the full length given (``'xxx…' (5,000
    characters)``); nested containers are abbreviated without being expanded (safe on a YAML bomb)."""
    return short_repr(value, limit) if isinstance(value, str) else _SHORT.repr(value)


def check_text(text: str, source: str) -> str:
    """``text`` itself, or a ConfigError when it holds bytes that were not UTF-8 (the command line hands them
    over as lone surrogates) or a NUL character."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raw = os.fsencode(text[err.start:err.start + 1])
        raise ConfigError(f"{source}: not UTF-8 text (byte 0x{raw.hex()} at character {err.start + 1} of "
                          f"{quote(text)}); give it as UTF-8") from None
    if "\x00" in text:
        raise ConfigError(f"{source}: contains a NUL character at position {text.index(chr(0)) + 1}: {quote(text)}")
    return text


def decode_text(data: bytes, source: object) -> str:
    """UTF-8 (a leading BOM is dropped), or a ConfigError naming ``source`` and the offending byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{source}: not a UTF-8 text file (byte 0x{data[err.start]:02x} at offset {err.start}: "
                          f"{err.reason})") from None


def read_bytes(path: Path, max_bytes: int, what: str = "file") -> bytes:
    """At most ``max_bytes`` of ``path`` (a FIFO or device is read up to the limit, never forever), or a
    ConfigError naming the file when it is larger or unreadable."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read this {what} ({err.strerror or err})") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{path}: larger than {max_bytes:,} bytes, the limit for a {what}; not read")
    return data


def _check_yaml_shape(text: str, source: object) -> None:
    """Walk the YAML events once (no objects built) and refuse deep nesting, a recursive alias, or more than
    YAML_MAX_NODES values once aliases are expanded."""
    expanded: dict[str, int] = {}  # anchor -> values it stands for
    open_: list[list[Any]] = []  # [anchor, values so far] of each open list or mapping
    total = 0

    def add(n: int, where: Any) -> None:
        nonlocal total
        if open_:
            open_[-1][1] += n
            n = open_[-1][1]
        else:
            total += n
            n = total
        if n > YAML_MAX_NODES:
            raise ConfigError(f"{source}: more than {YAML_MAX_NODES:,} values once its aliases are expanded "
                              f"(line {where.start_mark.line + 1}); refused as a possible alias bomb")

    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            open_.append([event.anchor, 1])
            if len(open_) > YAML_MAX_DEPTH:
                raise ConfigError(f"{source}: nested deeper than {YAML_MAX_DEPTH} levels "
                                  f"(line {event.start_mark.line + 1})")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, n = open_.pop()
            if anchor is not None:
                expanded[anchor] = n
            add(n, event)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                expanded[event.anchor] = 1
            add(1, event)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in expanded:
                inside = any(anchor == event.anchor for anchor, _ in open_)
                raise ConfigError(f"{source}: alias *{quote(event.anchor)} at line {event.start_mark.line + 1} "
                                  + ("refers to a list or mapping that contains it" if inside else
                                     "names no anchor defined before it"))
            add(expanded[event.anchor], event)


def yaml_text(text: str, source: object) -> Any:
    """Parse YAML ``text`` with the safe loader after the shape check; errors name ``source`` and the line."""
    try:
        _check_yaml_shape(text, source)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None


def read_yaml(path: Path, max_bytes: int = YAML_MAX_BYTES) -> Any:
    """A YAML file behind the size, shape and UTF-8 checks (what configs and registry files are read with)."""
    return yaml_text(decode_text(read_bytes(path, max_bytes, "YAML file"), path), path)


def read_json(path: Path, max_bytes: int = JSON_MAX_BYTES) -> Any:
    """A JSON file of at most ``max_bytes``; ValueError (with the reason) when it is not JSON, too large or
    nested too deep; OSError when it cannot be read."""
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes:,} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


# ------------------------------------------------------------------------------------------------------ paths

PathKind = Literal["file", "dir"]


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _path_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 4096


def check_path(path: Path | str, option: str, kind: PathKind, *, write: bool = False, exists: bool = False) -> Path:
    """``path`` as given, after checking without creating anything: its length (each name and the whole
    path), that no existing part of it is a file where a folder is needed, that it is a ``kind`` if it exists
    (``exists``: that it does), and with ``write`` that it can be created or written. BadPathError names
    ``option`` (may be empty), the path and what would be accepted."""
    path = Path(path).expanduser()
    text = str(path)
    what = "folder" if kind == "dir" else "file"
    where = f"{option} {quote(text)}".strip()
    if not text or "\x00" in text:
        raise BadPathError(f"{where} is not a path (empty or with a NUL character); give a {what}")
    absolute = Path(os.path.abspath(path))
    existing = next(p for p in (absolute, *absolute.parents) if os.path.lexists(p))
    name_max = _name_max(existing if existing.is_dir() else existing.parent)
    for part in absolute.parts:
        if len(os.fsencode(part)) > name_max:
            raise BadPathError(f"{where} has a name of {len(os.fsencode(part)):,} bytes; a name may have at most "
                               f"{name_max} here")
    path_max = _path_max(existing)
    if len(os.fsencode(str(absolute))) >= path_max:
        raise BadPathError(f"{where} is {len(os.fsencode(str(absolute))):,} bytes long; a path may have at most "
                           f"{path_max - 1} here")
    if existing != absolute and not existing.is_dir():
        raise BadPathError(f"{where} lies below {quote(str(existing))}, which is a file, not a folder")
    if existing == absolute:
        if kind == "dir" and not absolute.is_dir():
            raise BadPathError(f"{where} is a file; give a folder")
        if kind == "file" and absolute.is_dir():
            raise BadPathError(f"{where} is a folder; give a file")
        if write and not os.access(absolute, os.W_OK | (os.X_OK if kind == "dir" else 0)):
            raise BadPathError(f"{where} is not writable by you; choose another {what}")
    elif exists:
        raise BadPathError(f"{where}: no such {what}")
    elif write and not os.access(existing, os.W_OK | os.X_OK):
        raise BadPathError(f"{where} cannot be created: the folder {quote(str(existing))} is not writable by you")
    return path
