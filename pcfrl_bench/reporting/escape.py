"""Text from records and registry files made safe for the files the reports write: a CSV cell never starts a
spreadsheet formula, a Markdown cell never opens HTML, a link or a new table row, a LaTeX cell never runs a
command (names in records are data; README, "Threat model and guarantees")."""

from __future__ import annotations

import re
from typing import Any

# OWASP "CSV Injection": a cell starting with one of these is read as a formula by Excel, LibreOffice and Google
# Sheets; a leading single quote makes it text. (Also LF and NUL, as ASVS 1.2.10 asks.) Separators and quotes
# inside a cell are quoted by the csv writer (RFC 4180), so no cell can start mid-value.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
                  "↓": r"$\downarrow$", "↑": r"$\uparrow$", "±": r"$\pm$", "✓": r"\checkmark",
                  "†": r"$^\dagger$", "→": r"$\rightarrow$", "’": "'"}


def csv_cell(value: Any) -> Any:
    """A CSV cell value: a string that a spreadsheet would run as a formula gets a leading ``'``; numbers and
    other strings are unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def one_line(text: str) -> str:
    """Control characters (newlines, tabs, escapes) as single spaces: a name stays on its line."""
    return _CONTROL.sub(" ", text)


def markdown_text(text: str) -> str:
    """Plain text inside Markdown (a table cell, a list item): Markdown and HTML characters are backslash-escaped
    (CommonMark treats an escaped character literally) and line breaks become spaces."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(str(text)))


def markdown_code(text: str) -> str:
    """``text`` as inline code (backticks inside it become quotes, line breaks spaces)."""
    return f"`{one_line(str(text)).replace('`', chr(39))}`"


def latex_text(text: str) -> str:
    """Plain text inside LaTeX: every special character as its text command, line breaks as spaces (a blank line
    would end the paragraph inside a table)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in one_line(str(text)))
