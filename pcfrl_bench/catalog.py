"""The registry's data: ``methods/*.yaml`` and ``tasks/*.yaml`` (one file per method and per task).

Their one source is ``methods/`` and ``tasks/`` at the repository root; building the wheel copies them into the
package (``pcfrl_bench/resources/``, next to the transcribed paper tables ``paper/`` and the regression check's
``expected.yaml``, see ``setup.py``), so an installed package carries them. ``$PCFRL_BENCH_HOME`` (a folder with
the layout of ``resources/``) replaces all of them.

A file holds ``description``, ``implementation`` (the registered Python class; default: the file name),
optional ``base`` (another entry of the same kind whose defaults and presets it extends; files named
``_<name>.yaml`` are shared bases that are not listed as entries themselves),
``defaults`` and ``presets`` (``smoke``/``quick``/``paper``, each a partial config), and ``pinned`` (keys that
define the entry and that no preset may change, e.g. zero pretraining epochs). Task files also
give ``metric`` (the primary metric), ``higher_is_better`` and, for a task read from disk, ``dataset`` (the
registered on-disk format, ``data.readers.format``).

The task owns the model: a method's ``defaults`` and ``presets`` may not set ``model`` (backbone, width,
stem), so every method meets the backbone its task chose at each preset; a method defined by its model
pins it (``pinned: {model: ...}``).
"""

from __future__ import annotations

import copy
import functools
import os
from importlib import resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import PRESETS, deep_merge, load_yaml, preset_layer
from .errors import ConfigError, UnknownNameError
from .inputs import quote

KNOWN_KEYS = {"description", "implementation", "base", "defaults", "presets", "pinned", "metric", "higher_is_better",
              "paper", "dataset"}


def resource_root() -> Path:
    """The folder holding ``paper/`` and ``expected.yaml``: ``$PCFRL_BENCH_HOME`` or the package's own
    ``resources`` (a plain folder in both an editable and a wheel install)."""
    env = os.environ.get("PCFRL_BENCH_HOME")
    return Path(env) if env else Path(str(resources.files("pcfrl_bench") / "resources"))


def project_root() -> Path:
    """The repository root of a checkout (the folder above the package)."""
    return Path(__file__).resolve().parents[1]


def registry_root() -> Path:
    """The folder holding ``methods/`` and ``tasks/``: ``$PCFRL_BENCH_HOME``; in a built package its
    ``resources`` (where the wheel build put them); in a checkout the repository root (their one source)."""
    packaged = resource_root()
    return packaged if os.environ.get("PCFRL_BENCH_HOME") or (packaged / "methods").is_dir() else project_root()


@dataclass(frozen=True)
class Entry:
    """One method or task as declared in YAML, after ``base`` inheritance."""

    kind: str
    name: str
    description: str
    implementation: str
    defaults: dict[str, Any] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    pinned: dict[str, Any] = field(default_factory=dict)
    metric: str = ""
    higher_is_better: bool = True
    path: Path | None = None
    dataset: str = ""  # tasks read from disk: the registered dataset format (data/readers/<format>.py)

    def layers(self, preset: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(defaults, preset overrides) of this entry (a preset that extends another includes its base's)."""
        return self.defaults, preset_layer(self.presets, preset)


TASK_OWNED = ("model",)  # sections a method's defaults and presets may not set (see the module docstring)


def _check_task_owned(path: Path, defaults: dict[str, Any], presets: dict[str, dict[str, Any]]) -> None:
    """A method file that sets a task-owned section outside ``pinned`` is an error naming file and key."""
    layers = {"defaults": defaults, **{f"presets.{p}": layer for p, layer in presets.items()}}
    for where, layer in layers.items():
        for section in TASK_OWNED:
            if isinstance(layer, dict) and section in layer:
                raise ConfigError(
                    f"{path}: {where}.{section} is set, but the task owns the {section} section (its backbone "
                    f"decides what {section} keys are valid); set it in the task's YAML or with --set "
                    f"{section}.<key>=..., or under 'pinned' if the method is defined by its {section}")


@functools.lru_cache(maxsize=512)
def _parsed(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """A registry file's YAML, parsed once per version of the file (resolving hundreds of records re-reads the
    same few files); callers get a deep copy."""
    return load_yaml(path)


def _read_entry_file(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return copy.deepcopy(_parsed(str(path), stat.st_mtime_ns, stat.st_size))


def _is_entry_file(name: str, path: Path) -> bool:
    """Whether ``name`` is a plain file name (no folder, not hidden, not absurdly long) with a file at ``path``."""
    if not isinstance(name, str) or Path(name).name != name or name.startswith(".") or len(name) > 200:
        return False
    return path.is_file()


def _load_entry(kind: str, folder: Path, name: str, seen: tuple[str, ...] = ()) -> Entry:
    path = folder / f"{name}.yaml"
    if not _is_entry_file(name, path):
        raise UnknownNameError(kind, name, [p.stem for p in folder.glob("*.yaml")])
    data = _read_entry_file(path)
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}; allowed: {sorted(KNOWN_KEYS)}")
    _check_sections(data, path)
    presets = data.get("presets") or {}
    bad = set(presets) - set(PRESETS)
    if bad:
        raise ConfigError(f"{path}: unknown presets {sorted(bad)}; allowed: {', '.join(PRESETS)}")
    defaults = data.get("defaults") or {}
    pinned = data.get("pinned") or {}
    if kind == "method":
        _check_task_owned(path, defaults, presets)
    entry = Entry(kind, name, data.get("description", ""), data.get("implementation", name), defaults,
                  presets, pinned, data.get("metric", ""), bool(data.get("higher_is_better", True)), path,
                  data.get("dataset", ""))
    base = data.get("base")
    if base is None:
        return entry
    if base in seen or base == name:
        raise ConfigError(f"{path}: 'base' chain loops back to {base!r}")
    parent = _load_entry(kind, folder, base, seen + (name,))
    return Entry(
        kind, name, entry.description or parent.description,
        data.get("implementation", parent.implementation),
        deep_merge(parent.defaults, defaults),
        {p: deep_merge(parent.presets.get(p, {}), presets.get(p, {})) for p in PRESETS
         if p in parent.presets or p in presets},
        deep_merge(parent.pinned, pinned), entry.metric or parent.metric, bool(data.get("higher_is_better", parent.higher_is_better)), path,
        entry.dataset or parent.dataset,
    )


SECTION_TYPES = {"description": str, "implementation": str, "base": str, "metric": str, "higher_is_better": bool,
                 "defaults": dict, "presets": dict, "pinned": dict, "dataset": str}


def _check_sections(data: dict[str, Any], path: Path) -> None:
    """Each top-level section, and each preset, has its expected type (a ConfigError names file and key)."""
    for key, tp in SECTION_TYPES.items():
        if data.get(key) is not None and not isinstance(data[key], tp):
            raise ConfigError(f"{path}: '{key}' must be a {'mapping' if tp is dict else tp.__name__}, "
                              f"got {quote(data[key])}")
    for name, preset in (data.get("presets") or {}).items():
        if preset is not None and not isinstance(preset, dict):
            raise ConfigError(f"{path}: preset {quote(name)} must be a mapping, got {quote(preset)}")


def _folder(kind: str) -> Path:
    return registry_root() / f"{kind}s"


def entry(kind: str, name: str) -> Entry:
    """Load the ``kind`` ('method' or 'task') named ``name``."""
    return _load_entry(kind, _folder(kind), name)


def names(kind: str) -> list[str]:
    """Registered entries; files whose name starts with ``_`` are shared bases (``base: _name``), not entries."""
    return sorted(p.stem for p in _folder(kind).glob("*.yaml") if not p.stem.startswith("_"))


def all_entries(kind: str, problems: list[str] | None = None) -> list[Entry]:
    """Every entry of ``kind``; with a ``problems`` list, a broken file is reported there and skipped
    instead of raising (so one bad file does not hide the others)."""
    out = []
    for n in names(kind):
        try:
            out.append(entry(kind, n))
        except ConfigError as err:
            if problems is None:
                raise
            problems.append(str(err))
    return out
