"""Each default is written once: the schema holds it, and a registry YAML file sets a key only where its value
differs from what the file would otherwise get (the schema's default, its ``base`` files' value, or for a preset
the entry's own defaults and, for a preset that extends another, the entry's base preset), or where it overrides a layer of the other kind that comes before it in ``resolve``
(defaults of the method, defaults of the task, preset of the method, preset of the task)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pcfrl_bench import catalog
from pcfrl_bench.config import RunConfig, deep_merge, load_yaml, preset_chain, preset_layer, to_plain
from pcfrl_bench.schema.methods import METHOD_SCHEMAS
from pcfrl_bench.schema.options import field_notes, options_markdown
from pcfrl_bench.schema.tasks import TASK_SCHEMAS

MISSING = object()


def leaves(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        out += leaves(value, path) if isinstance(value, dict) and value else [(path, value)]
    return out


def lookup(tree: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return MISSING
        tree = tree[part]
    return tree


def same(a: Any, b: Any) -> bool:
    """Equal as YAML values (a list equals a tuple's plain form; true is not 1)."""
    return a is b if isinstance(a, bool) or isinstance(b, bool) else a == b


def schema_defaults(kind: str, implementation: str) -> dict[str, Any]:
    cfg = to_plain(RunConfig())
    schemas = METHOD_SCHEMAS if kind == "method" else TASK_SCHEMAS
    cfg[kind] = to_plain(schemas.get(implementation).Params())
    return cfg


def chain(kind: str, name: str) -> list[tuple[Path, dict[str, Any]]]:
    """The files of an entry, root ``base`` first."""
    path = catalog.registry_root() / f"{kind}s" / f"{name}.yaml"
    data = load_yaml(path)
    return (chain(kind, data["base"]) if data.get("base") else []) + [(path, data)]


def earlier_other_layers(kind: str, preset: str | None) -> list[dict[str, Any]]:
    """The layers of the other kind's entries that ``resolve`` merges before ``kind``'s defaults (``preset`` None)
    or before its preset: a value there is what a key of this kind's layer may have to set back."""
    if kind == "method":
        return [] if preset is None else [e.defaults for e in catalog.all_entries("task")]
    methods = catalog.all_entries("method")
    return [e.defaults for e in methods] + ([] if preset is None else [preset_layer(e.presets, preset) for e in methods])


def restated(kind: str, name: str) -> list[str]:
    """'file: layer.key = value' for each value a file of the entry sets to what it would get anyway."""
    files = chain(kind, name)
    schema = schema_defaults(kind, catalog.entry(kind, name).implementation)
    defaults = [data.get("defaults") or {} for _, data in files]
    all_defaults = schema
    for layer in defaults:
        all_defaults = deep_merge(all_defaults, layer)
    found = []
    for i, (path, data) in enumerate(files):
        below = schema
        for layer in defaults[:i]:
            below = deep_merge(below, layer)
        layers = {"defaults": (defaults[i], below, earlier_other_layers(kind, None))}
        for preset, values in (data.get("presets") or {}).items():
            below = all_defaults
            for base in preset_chain(preset)[:-1]:  # a preset that extends another starts from the entry's base preset
                for _, parent in files:
                    below = deep_merge(below, (parent.get("presets") or {}).get(base) or {})
            for _, parent in files[:i]:
                below = deep_merge(below, (parent.get("presets") or {}).get(preset) or {})
            layers[f"presets.{preset}"] = (values or {}, below, earlier_other_layers(kind, preset))
        for where, (layer, below, others) in layers.items():
            for key, value in leaves(layer):
                overrides = any(lookup(o, key) is not MISSING and not same(value, lookup(o, key)) for o in others)
                if same(value, lookup(below, key)) and not overrides:
                    found.append(f"{path.name}: {where}.{key} = {value!r}")
    return found


def test_registry_files_set_only_what_differs() -> None:
    found = {line for kind in ("method", "task") for name in catalog.names(kind) for line in restated(kind, name)}
    assert sorted(found) == []


def test_the_option_tables_in_docs_are_the_schemas() -> None:
    """docs/options.md is generated from the schema (``make docs``): a default changed in the schema alone fails here."""
    docs = Path(__file__).resolve().parents[1] / "docs" / "options.md"
    assert docs.read_text(encoding="utf-8") == options_markdown(), "docs/options.md is stale: run `make docs`"


def test_field_notes_read_the_comment_beside_or_above_a_field() -> None:
    from pcfrl_bench.config import ModelConfig
    from pcfrl_bench.schema.methods import CalibrationParams
    notes = field_notes(CalibrationParams)
    assert notes["alpha"] == "alpha of Eq. 3 (weight of NS)" and notes["weight_in"].startswith("where w = beta PA")
    assert field_notes(ModelConfig)["input_norm"].startswith("inputs arrive in [0, 1];")


def test_a_restated_default_is_found(tmp_path, monkeypatch) -> None:
    (tmp_path / "methods").mkdir()
    (tmp_path / "tasks").mkdir()
    (tmp_path / "methods" / "base.yaml").write_text(
        "implementation: simclr\ndefaults: {method: {temperature: 0.2}, data: {image_size: 64}}\n"
        "presets: {smoke: {pretrain: {epochs: 3}}}\n")
    (tmp_path / "tasks" / "toy.yaml").write_text(  # image_size 32 sets back the method's 64: not a restatement
        "implementation: digits\ndefaults: {data: {image_size: 32}}\npresets: {quick: {eval: {image_size: 32}}}\n")
    (tmp_path / "methods" / "child.yaml").write_text(
        "base: base\ndefaults: {method: {temperature: 0.2, proj_dim: 128, augment: {flip_p: 0.4}}}\n"
        "presets: {smoke: {pretrain: {epochs: 3, batch_size: 8}}, quick: {method: {temperature: 0.2}}}\n")
    monkeypatch.setenv("PCFRL_BENCH_HOME", str(tmp_path))
    assert sorted(restated("method", "child")) == [
        "child.yaml: defaults.method.proj_dim = 128", "child.yaml: defaults.method.temperature = 0.2",
        "child.yaml: presets.quick.method.temperature = 0.2", "child.yaml: presets.smoke.pretrain.epochs = 3"]
    assert restated("task", "toy") == ["toy.yaml: presets.quick.eval.image_size = 32"]
