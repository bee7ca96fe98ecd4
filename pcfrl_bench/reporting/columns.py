"""Tables that fit a terminal without cutting a number: the columns that do not fit are left out (named, so
the caller can say how to see them), text may wrap, numbers never shrink."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

BORDER_PER_COLUMN = 3  # rich's default box: a rule and one space of padding on each side per column, + 1


def table_width(widths: Sequence[int]) -> int:
    """Characters a boxed rich table needs for columns of these content widths."""
    return sum(widths) + BORDER_PER_COLUMN * len(widths) + 1


def fit_columns(header: Sequence[str], rows: Sequence[Sequence[str]], width: int | None,
                droppable: Sequence[str]) -> list[int]:
    """Indices of the columns to show in ``width`` characters (all with None): ``droppable`` columns are left out,
    in that order, until the table fits at its natural width."""
    natural = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    shown = list(range(len(header)))
    for name in droppable:
        if width is None or table_width([natural[i] for i in shown]) <= width:
            break
        shown.remove(header.index(name))
    return shown


def fitted_table(title: str | None, header: Sequence[str], rows: Sequence[Sequence[str]], width: int | None,
                 droppable: Sequence[str], numeric: Sequence[str]) -> tuple[Table, list[str]]:
    """A rich table of the columns that fit (see :func:`fit_columns`) and the names of those left out; ``numeric``
    columns keep their full width (never cut), the others wrap when the table is still too wide."""
    shown = fit_columns(header, rows, width, droppable)
    table = Table(title=None if title is None else Text(title))  # plain text: a name is never read as markup
    for i in shown:
        name = header[i]
        if name in numeric:
            table.add_column(name, justify="right", no_wrap=True,
                             min_width=max([len(name), *(len(r[i]) for r in rows)]))
        else:
            table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(Text(row[i]) for i in shown))
    return table, [header[i] for i in range(len(header)) if i not in shown]
