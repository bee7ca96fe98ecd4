"""Name -> implementation registries (one per kind); a duplicate name is an error.

A registry may name an entry-point group (``plugins``): the modules those entry points name (in any installed
distribution) are imported, once each, before the registry is read, so that they can register more entries
(``pcfrl_bench.datasets`` for dataset formats, ``pcfrl_bench.methods`` for methods: docs/datasets.md and
docs/methods.md, "Adding a ...").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from typing import Generic, TypeVar

from .errors import PcfrlError, UnknownNameError

T = TypeVar("T")
_loaded: set[str] = set()  # entry-point values already imported


def load_plugins(group: str) -> None:
    """Import the module of every entry point of ``group`` not imported yet; a failing one is a PcfrlError that
    names it."""
    for point in metadata.entry_points(group=group):
        if point.value in _loaded:
            continue
        _loaded.add(point.value)
        try:
            importlib.import_module(point.module)
        except Exception as err:  # a broken plugin names itself instead of a traceback
            raise PcfrlError(f"plugin {point.name!r} of {group} ({point.value}) failed to load: "
                             f"{type(err).__name__}: {err}") from None


class Registry(Generic[T]):
    """A dict of named implementations, given as ``items`` or filled by the ``register`` decorator (and by the
    modules of the entry-point group ``plugins``, loaded before the registry is read)."""

    def __init__(self, kind: str, items: Mapping[str, T] | None = None, plugins: str | None = None):
        self.kind = kind
        self.plugins = plugins
        self._items: dict[str, T] = dict(items or {})

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise PcfrlError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def _load(self) -> None:
        if self.plugins:
            load_plugins(self.plugins)

    def get(self, name: str) -> T:
        if name not in self._items:
            self._load()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
