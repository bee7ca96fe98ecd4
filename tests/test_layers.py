"""The package's import graph: no module imports one of a higher layer (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pcfrl_bench"

# lowest first; a module may import its own layer and the layers below it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("pcfrl_bench", "errors", "inputs", "interrupt", "io", "registry", "distributed", "precision", "progress"),
    ("config",),
    ("schema",),
    ("results",),
    ("catalog",),
    ("resolution",),
    ("reporting",),
    ("data",),
    ("models",),
    ("calibration",),
    ("losses",),
    ("methods",),
    ("train", "steplog", "snapshots", "pretraining"),
    ("evaluation",),
    ("tasks",),
    ("runner",),
    ("analysis", "factor_analysis", "curves", "grid", "gridplan", "cluster", "pairs", "listing"),
    ("cli", "__main__"),
)


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """Rank of a ``pcfrl_bench.*`` module: its first component below the package (the package itself: 0)."""
    top = module.split(".")[1] if "." in module else module
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise KeyError(f"{module} is in no layer of tests/test_layers.py: add it")


def is_module(name: str, package: Path) -> bool:
    rel = Path(*name.split("."))
    return (package.parent / rel).with_suffix(".py").is_file() or (package.parent / rel / "__init__.py").is_file()


def imports(path: Path, package_dir: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, imported module) of every ``pcfrl_bench`` import in a file, function-level ones included."""
    module = module_name(path, package_dir)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # "from pkg import x" imports the submodule pkg.x when there is one
            out += [(node.lineno, f"{name}.{a.name}" if is_module(f"{name}.{a.name}", package_dir) else name)
                    for a in node.names]
    return [(line, name) for line, name in out if name == "pcfrl_bench" or name.startswith("pcfrl_bench.")]


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        layer(module_name(path))


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = layer(module_name(path))
        for line, name in imports(path):
            if layer(name) > own:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    fake = tmp_path / "pcfrl_bench"
    (fake / "data").mkdir(parents=True)
    (fake / "evaluation").mkdir()
    for f in ("__init__.py", "runner.py", "data/__init__.py", "evaluation/__init__.py", "evaluation/protocols.py"):
        (fake / f).write_text("")
    source = "from ..evaluation.protocols import f\n\ndef g():\n    from pcfrl_bench import runner\n"
    (fake / "data" / "x.py").write_text(source)
    found = imports(fake / "data" / "x.py", fake)
    assert found == [(1, "pcfrl_bench.evaluation.protocols"), (4, "pcfrl_bench.runner")]
    assert all(layer(name) > layer("pcfrl_bench.data.x") for _, name in found)
