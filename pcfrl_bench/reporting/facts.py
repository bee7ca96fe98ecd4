"""The README's registry facts, generated from the registry so they cannot drift: how many methods, tasks and
presets there are, and what each preset trains on the built-in tasks (``pcfrl-bench list --readme README.md``;
``tests/test_readme.py`` checks the README holds exactly this)."""

from __future__ import annotations

from pathlib import Path

from .. import catalog
from ..config import PRESET_BASES, PRESETS, RunConfig
from ..io import atomic_write_text
from ..resolution import resolve
from .claims import replace_between_markers

README_START, README_END = "<!-- registry:start -->", "<!-- registry:end -->"
EXAMPLES = (("simclr", "digits"), ("pcfrl", "synth-fer"))  # the built-in tasks' rows: method whose budget is shown


def _data(cfg: RunConfig) -> str:
    if cfg.data.source == "synth":
        w = cfg.data.synthetic
        return f"{w.identities * w.clips_per_identity:,} clips of {w.identities:,} identities"
    return f"first {cfg.data.max_samples:,} {cfg.data.source} images" if cfg.data.max_samples else \
        f"{cfg.data.source} train split"


def _probe(cfg: RunConfig) -> str:
    cap = (f", at most {cfg.eval.max_train:,} / {cfg.eval.max_test:,} rows" if cfg.eval.max_train else "")
    sizes = ""
    n_train, n_test = getattr(cfg.task, "n_train", None), getattr(cfg.task, "n_test", None)
    if n_train and n_test:
        sizes = f" on {n_train:,} / {n_test:,} faces"
    return f"{cfg.eval.probe.epochs} epochs{sizes}{cap}"


def preset_row(preset: str, method: str, task: str) -> str:
    cfg = resolve(method, task, preset).config
    m, p = cfg.model, cfg.pretrain
    width = f" × {m.width:g}" if m.width != 1.0 else ""
    if m.backbone.startswith("timm:resnet"):
        width += ", small stem" if m.small_stem else ", standard stem"
    return (f"| `{preset}` | {task} ({method}) | {m.backbone}{width} | {cfg.data.image_size} / {cfg.eval.image_size} | "
            f"{p.epochs} × batch {p.batch_size} on {_data(cfg)} | {_probe(cfg)} |")


def registry_facts_markdown() -> str:
    """Counts of the registry and one row per preset of each built-in task (from the resolved configs)."""
    methods = catalog.all_entries("method", [])
    tasks = catalog.all_entries("task", [])
    bases = "; ".join(f"`{p}` extends `{b}`" for p, b in PRESET_BASES.items())
    lines = [f"{len(methods)} methods × {len(tasks)} tasks × {len(PRESETS)} presets "
             f"({', '.join(f'`{p}`' for p in PRESETS)}; {bases}) = {len(methods) * len(tasks) * len(PRESETS)} "
             "(method, task, preset) combinations.", "",
             "| preset | task (method) | trunk × width | px pretrain / eval | pretraining: epochs × batch on | probe |",
             "|---|---|---|---|---|---|"]
    for method, task in EXAMPLES:
        lines += [preset_row(preset, method, task) for preset in PRESETS]
    return "\n".join(lines) + "\n"


def write_registry_facts(readme: Path) -> Path:
    """Fill ``readme``'s ``<!-- registry:start -->`` ... ``<!-- registry:end -->`` section."""
    text = replace_between_markers(readme.read_text(), registry_facts_markdown(), README_START, README_END)
    return atomic_write_text(readme, text)
