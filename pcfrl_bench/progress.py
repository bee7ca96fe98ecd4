"""Progress of long steps that reads well anywhere: a live bar on a terminal, plain lines elsewhere.

A command opens :func:`reporting` once with its console; any code called inside it (pretraining, rendering,
decoding, feature extraction, probes, grids) reports through :func:`stage`, without a console of its own:

- on an interactive terminal, one live display holds a bar per running stage (nested stages stack);
- otherwise (output to a file, a pipe, CI logs, ``nohup``) each stage prints plain lines: one when it ends
  with its duration, one per :meth:`Stage.line` (e.g. each pretraining epoch), and a progress line at most
  every ``PLAIN_INTERVAL_S`` seconds while it advances (done/total, elapsed, time left).

Outside :func:`reporting`, or with ``enabled=False`` (``--no-progress``), stages report nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

PLAIN_INTERVAL_S = 30.0  # seconds between two progress lines of one stage when output is not a terminal


def duration(seconds: float) -> str:
    """``1:02:03``, ``2:03`` or ``4.2 s``: a duration for a log line."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Reporter:
    """Where stages report: a console, whether it is interactive, and the live display shared by its stages."""

    console: Console
    interactive: bool
    live: Progress | None = None
    running: int = 0

    def open_bar(self, description: str, total: int | None, completed: int = 0) -> TaskID:
        if self.live is None:
            self.live = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=False)
            self.live.start()
        self.running += 1
        return self.live.add_task(escape(description), total=total, completed=completed, info="")

    def close_bar(self, task: TaskID, keep: bool) -> None:
        assert self.live is not None
        if not keep:
            self.live.remove_task(task)
        self.running -= 1
        if self.running == 0:
            self.live.stop()
            self.live = None

    def print(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)


_ACTIVE: ContextVar[Reporter | None] = ContextVar("pcfrl_bench_progress", default=None)


@contextlib.contextmanager
def reporting(console: Console | None, enabled: bool = True) -> Iterator[None]:
    """Route the stages run inside to ``console`` (nothing when disabled or without a console). An enclosing
    ``reporting`` stays in charge: a nested enabled one changes nothing (a library call can open one safely),
    a nested disabled one silences its own scope."""
    if enabled and _ACTIVE.get() is not None:
        yield
        return
    reporter = Reporter(console, console.is_interactive) if enabled and console is not None else None
    token = _ACTIVE.set(reporter)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


@dataclass
class Stage:
    """One long step: advance it, add a plain line, and it reports its end (see the module docstring)."""

    description: str
    total: int | None = None
    unit: str = ""
    reporter: Reporter | None = None
    keep: bool = False  # keep the bar on screen when the stage ends (terminal)
    initial: int = 0  # done before this process started (a resumed pretraining): not part of the pace
    interval: float | None = None  # seconds between plain progress lines (None: PLAIN_INTERVAL_S; 0: every advance)
    done: int = 0
    started: float = field(default_factory=time.perf_counter)
    last_line: float = field(default_factory=time.perf_counter)
    task: TaskID | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def remaining(self) -> float | None:
        """Seconds left at the pace so far (None before any progress or without a total)."""
        if not self.total or self.done <= self.initial:
            return None
        return self.elapsed() / (self.done - self.initial) * max(self.total - self.done, 0)

    def advance(self, n: int = 1, info: str | None = None) -> None:
        self.done += n
        r = self.reporter
        if r is None:
            return
        if r.interactive:
            assert r.live is not None and self.task is not None
            r.live.update(self.task, advance=n, **({"info": escape(info)} if info is not None else {}))
        elif time.perf_counter() - self.last_line >= (PLAIN_INTERVAL_S if self.interval is None else self.interval):
            self._print(f"{self.count()}{'' if info is None else ', ' + info}, {self.timing()}")

    def line(self, text: str) -> None:
        """A line of its own in plain output (e.g. an epoch's summary); a terminal shows the bar instead."""
        if self.reporter is not None and not self.reporter.interactive:
            self._print(text)

    def count(self) -> str:
        of = f"/{self.total}" if self.total else ""
        return f"{self.done}{of}{' ' + self.unit if self.unit else ''}"

    def timing(self) -> str:
        left = self.remaining()
        return f"{duration(self.elapsed())} elapsed" + ("" if left is None else f", {duration(left)} left")

    def _print(self, text: str) -> None:
        assert self.reporter is not None
        self.reporter.print(f"{self.description}: {text}")
        self.last_line = time.perf_counter()

    def _open(self) -> None:
        if self.reporter is not None and self.reporter.interactive:
            self.task = self.reporter.open_bar(self.description, self.total, self.initial)

    def _close(self, failed: bool) -> None:
        r = self.reporter
        if r is None:
            return
        if r.interactive:
            assert self.task is not None
            r.close_bar(self.task, self.keep and not failed)
        elif not failed:
            what = f"{self.count()} in " if self.done > self.initial else ""
            self._print(f"done, {what}{duration(self.elapsed())}")


@contextlib.contextmanager
def stage(description: str, total: int | None = None, unit: str = "", keep: bool = False,
          initial: int = 0, interval: float | None = None) -> Iterator[Stage]:
    """A long step reported to the active :func:`reporting` (nothing outside one); ``initial`` of ``total`` are
    done already (a resumed pretraining); ``interval``: seconds between plain progress lines."""
    s = Stage(description, total, unit, _ACTIVE.get(), keep, initial, interval, initial)
    s._open()
    failed = True
    try:
        yield s
        failed = False
    finally:
        s._close(failed)
