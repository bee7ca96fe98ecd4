"""The option tables of ``docs/options.md``, generated from the schema (the one place each default is written):
every config key with its default, its choices (a number's range) and the comment written next to its field.

``python -m pcfrl_bench.schema.options > docs/options.md`` (``make docs``) writes the file;
``tests/test_defaults_once.py`` fails when it differs from what the schema gives.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import tokenize
import typing
from typing import Any, Literal

from ..config import DataConfig, EvalConfig, ModelConfig, PretrainConfig, field_range, to_plain
from .methods import METHOD_SCHEMAS
from .tasks import TASK_SCHEMAS

# RunConfig's typed sections (``run`` is chosen by the command line; ``method`` and ``task`` follow their Params)
RUN_SECTIONS = {"model": ModelConfig, "data": DataConfig, "pretrain": PretrainConfig, "eval": EvalConfig}


def field_notes(cls: type) -> dict[str, str]:
    """Field name -> the comment on its line, or the comment lines right above it, in the class's source."""
    notes: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        lines = inspect.getsource(klass).splitlines()
        comments = {tok.start[0]: tok.string.lstrip("#").strip()
                    for tok in tokenize.generate_tokens(io.StringIO("\n".join(lines)).readline)
                    if tok.type == tokenize.COMMENT}
        fields = {f.name for f in dataclasses.fields(klass)}
        for number, line in enumerate(lines, 1):
            name = line.strip().split(":", 1)[0]
            if name not in fields or ":" not in line:
                continue
            above = []
            while number - len(above) - 1 in comments and lines[number - len(above) - 2].strip().startswith("#"):
                above.insert(0, comments[number - len(above) - 1])
            text = " ".join(above + ([comments[number]] if number in comments else []))
            if text:
                notes[name] = text
    return notes


def _choices(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return ", ".join(f"`{c}`" for c in typing.get_args(tp))
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    if isinstance(value, list):
        return f"`[{', '.join(map(str, value))}]`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def rows(cls: type, instance: Any, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, default, choices, meaning) of every field, nested dataclasses flattened to dotted keys."""
    hints, notes, out = typing.get_type_hints(cls), field_notes(cls), []
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            out += rows(type(value), value, f"{prefix}{f.name}.")
        else:
            bounds = field_range(f)  # the accepted range of a number, checked before any work
            choices = _choices(hints[f.name]) + (f" in {bounds}" if bounds and bounds[0] in "[(" else
                                                 f" {bounds}" if bounds else "")
            out.append((f"{prefix}{f.name}", _value(to_plain(value)), choices, notes.get(f.name, "")))
    return out


def table(cls: type, section: str, base: type | None = None) -> list[str]:
    """A markdown table of ``cls``'s fields as ``section.<key>``; with ``base``, only the rows that differ."""
    own = rows(cls, cls())
    if base is not None:
        inherited = set(rows(base, base()))
        own = [r for r in own if r not in inherited]
    lines = ["| key | default | choices | meaning |", "|---|---|---|---|"]
    return lines + [f"| `{section}.{key}` | {default} | {choices} | {meaning.replace('``', '`').replace('|', '/')} |"
                    for key, default, choices, meaning in own]


def _by_params(schemas: Any) -> dict[type, list[str]]:
    """Params class -> the implementation names that use it (shared ``Params`` get one table)."""
    out: dict[type, list[str]] = {}
    for name in schemas.names():
        out.setdefault(schemas.get(name).Params, []).append(name)
    return out


def options_markdown() -> str:
    """The whole of ``docs/options.md``."""
    lines = ["# Options", "",
             "Generated from the schema by `make docs` (`python -m pcfrl_bench.schema.options`); do not edit by "
             "hand. Every key is settable with `--set key=value`; a method's or task's YAML sets only what differs "
             "from these defaults. A number's range (under choices) is checked before any work: a value outside "
             "it is an error naming the key, the value and the range (docs/limits.md).", ""]
    for section, cls in RUN_SECTIONS.items():
        lines += [f"## `{section}`", "", *table(cls, section), ""]
    for kind, schemas in (("method", METHOD_SCHEMAS), ("task", TASK_SCHEMAS)):
        lines += [f"## {kind.capitalize()} parameters (`{kind}.*`, by implementation)", ""]
        for params, names in _by_params(schemas).items():
            if not dataclasses.fields(params):
                continue
            base = next((b for b in params.__mro__[1:] if dataclasses.is_dataclass(b) and dataclasses.fields(b)), None)
            title = f"### {', '.join(f'`{n}`' for n in names)} (`{params.__name__}`)"
            shared = base is not None and base in _by_params(schemas)
            note = [f"The keys of `{base.__name__}`, with these added or changed:", ""] if shared else []
            lines += [title, "", *note, *table(params, kind, base if shared else None), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(options_markdown(), end="")
