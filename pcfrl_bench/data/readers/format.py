"""A dataset on disk is one module: its on-disk format, registered with :func:`register_dataset`.

The module of a format (``data/readers/<format>.py``, or a plugin's module named by an entry point of the group
``pcfrl_bench.datasets``) holds its reader (``read``: the ``SampleIndex`` of every split, without torch), the
reader's options taken from a task's ``Params`` (``options``), what ``data check`` changes (``check_options``),
its default folder below the data root, its description and layout text, the pretraining sources it gives
(``data.source`` names), and its writers: each puts a small synthetic dataset in a layout of this format
(``pcfrl-bench synth export --like <layout>``; a writer imports torch itself). A task YAML names its format with
``dataset: <name>``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pcfrl_bench.errors import ConfigError, PcfrlError, UnknownNameError
from pcfrl_bench.registry import Registry

from .base import SampleIndex

PLUGIN_GROUP = "pcfrl_bench.datasets"  # entry points naming modules that register more formats


class DatasetFormat:
    """One on-disk format. Subclasses set ``folder``, ``description``, ``layout`` and ``reader``; the rest has
    defaults."""

    name: ClassVar[str] = ""  # set by register_dataset
    folder: ClassVar[str] = ""  # default folder below the data root (``task.subdir`` / ``task.root`` change it)
    description: ClassVar[str] = ""  # one line: the dataset and what it holds
    layout: ClassVar[str] = ""  # the expected files, shown in layout errors (docs/datasets.md)
    reader: Callable[..., dict[str, SampleIndex]]  # reader(root, **options): its splits (a staticmethod)
    writers: ClassVar[dict[str, Callable[[Path, int, int], Path]]] = {}  # layout -> writer(out, n, seed) -> root
    check_options: ClassVar[dict[str, Any]] = {}  # reader options that ``data check`` replaces
    sources: ClassVar[dict[str, tuple[str, dict[str, Any]]]] = {}  # data.source name -> (split, reader options)

    def read(self, root: Path, **options: Any) -> dict[str, SampleIndex]:
        """The splits of the dataset at ``root``."""
        return self.reader(Path(root), **options)

    def options(self, params: Any) -> dict[str, Any]:
        """The reader's keyword options from a task's ``Params``."""
        return {}

    def image_options(self, index: SampleIndex, crop_margin: float | None = None) -> dict[str, Any]:
        """Keyword options of ``ImageIndexDataset`` for a split of this format (e.g. a crop)."""
        return {}

    def write(self, like: str, out: Path, n: int, seed: int) -> Path:
        """Write about ``n`` synthetic samples in the layout ``like`` (a key of ``writers``) under ``out``; return
        the dataset's root."""
        if like not in self.writers:
            raise PcfrlError(f"dataset {self.name!r} has no synthetic writer of the layout {like!r}")
        return self.writers[like](out, n, seed)


DATASETS: Registry[DatasetFormat] = Registry("dataset", plugins=PLUGIN_GROUP)
F = TypeVar("F", bound=type)


def register_dataset(name: str) -> Callable[[F], F]:
    """Class decorator: register an instance of a :class:`DatasetFormat` subclass as ``name``."""
    def decorator(cls: F) -> F:
        cls.name = name
        DATASETS.register(name)(cls())
        return cls
    return decorator


def dataset_format(name: str) -> DatasetFormat:
    """The registered format ``name`` (UnknownNameError with close matches)."""
    return DATASETS.get(name)


def dataset_formats() -> list[DatasetFormat]:
    return [DATASETS.get(n) for n in DATASETS.names()]


def dataset_root(name: str, data_root: Path, subdir: str | None = None) -> Path:
    """``<data_root>/<subdir or the default folder of name>``."""
    return Path(data_root) / (subdir if subdir is not None else dataset_format(name).folder)


def read_dataset(name: str, root: Path, **options: Any) -> dict[str, SampleIndex]:
    """The splits of the dataset of format ``name`` at ``root``."""
    return dataset_format(name).read(Path(root), **options)


def source_format(source: str) -> tuple[DatasetFormat, str, dict[str, Any]] | None:
    """(format, split, reader options) of a pretraining source a format gives, or None."""
    for fmt in dataset_formats():
        if source in fmt.sources:
            split, options = fmt.sources[source]
            return fmt, split, options
    return None


def export_like(like: str, out_dir: Path, n: int, seed: int) -> Path:
    """Write about ``n`` synthetic samples under ``out_dir`` in the official layout ``like`` (the writer of the
    format that ``writes`` it); return the dataset root. All people are eval-role identities."""
    writers = {layout: fmt for fmt in dataset_formats() for layout in fmt.writers}
    if like not in writers:
        raise UnknownNameError("dataset layout", like, writers)
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return writers[like].write(like, out_dir, n, seed)


def export_layouts() -> list[str]:
    """Every layout ``export_like`` writes."""
    return sorted(layout for fmt in dataset_formats() for layout in fmt.writers)
