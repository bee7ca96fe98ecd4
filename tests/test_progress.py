"""Progress that reads well anywhere: plain lines when the output is not a terminal, a live bar when it is."""

from __future__ import annotations

import io
import re

import torch
from click.testing import CliRunner
from rich.console import Console

from pcfrl_bench import progress
from pcfrl_bench.cli import main
from pcfrl_bench.data.sources import build_source
from pcfrl_bench.progress import duration, reporting, stage
from pcfrl_bench.runner import build_method, resolve
from pcfrl_bench.train import pretrain


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, force_interactive=terminal, width=100), out


def test_durations_read_as_seconds_minutes_or_hours():
    assert (duration(4.24), duration(62), duration(3723)) == ("4.2 s", "1:02", "1:02:03")


def test_plain_output_has_a_line_per_stage_end_per_line_and_throttled_progress(monkeypatch):
    con, out = console(terminal=False)
    monkeypatch.setattr(progress, "PLAIN_INTERVAL_S", 0.0)  # every advance may print
    with reporting(con):
        with stage("features x/train", 10, "images") as bar:
            bar.advance(4)
            bar.line("a line of its own")
            bar.advance(6)
        with stage("evaluate x"):
            pass
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"features x/train: 4/10 images, [\d.]+ s elapsed, [\d.]+ s left", lines[0]), lines[0]
    assert lines[1] == "features x/train: a line of its own"
    assert lines[2].startswith("features x/train: 10/10 images, ")
    assert re.fullmatch(r"features x/train: done, 10/10 images in [\d.]+ s", lines[3]), lines[3]
    assert re.fullmatch(r"evaluate x: done, [\d.]+ s", lines[4]) and len(lines) == 5


def test_plain_progress_lines_are_throttled():
    con, out = console(terminal=False)
    with reporting(con), stage("render", 1000) as bar:  # the default interval: no line within a fast stage
        for _ in range(1000):
            bar.advance()
    assert len(out.getvalue().splitlines()) == 1 and out.getvalue().startswith("render: done, 1000/1000 in ")


def test_terminal_nests_bars_and_prints_no_plain_lines():
    con, out = console(terminal=True)
    with reporting(con), stage("features", 3) as outer:
        with stage("render inside features"):  # nested live displays would raise rich's LiveError
            pass
        outer.line("not on a terminal")
        outer.advance(3)
    assert "not on a terminal" not in out.getvalue() and "features" in out.getvalue()


def test_disabled_or_absent_reporting_prints_nothing():
    con, out = console(terminal=False)
    with stage("no reporting open") as bar:
        bar.advance()
        bar.line("x")
    with reporting(con, enabled=False), stage("disabled") as bar:
        bar.line("x")
    with reporting(con), reporting(con, enabled=False), stage("silenced inside an enabled one") as bar:
        bar.line("x")
    assert out.getvalue() == ""


def test_a_failing_stage_prints_no_done_line():
    con, out = console(terminal=False)
    try:
        with reporting(con), stage("doomed"):
            raise KeyError
    except KeyError:
        pass
    assert out.getvalue() == ""


def test_pretraining_prints_one_plain_line_per_epoch(tmp_path):
    resolved = resolve("simclr", "digits", "smoke", overrides=["pretrain.epochs=3", "data.max_samples=64",
                                                               "pretrain.batch_size=16"])
    cfg = resolved.config
    con, out = console(terminal=False)
    pretrain(build_method(resolved), build_source(cfg.data, tmp_path), cfg.pretrain, tmp_path / "run", seed=0,
             device=torch.device("cpu"), console=con, description="pretrain simclr")
    epochs = [line for line in out.getvalue().splitlines() if ": epoch " in line]
    assert len(epochs) == 3
    pattern = (r"pretrain simclr: epoch {}/3, loss \d+\.\d{{4}}, \d+ images/s, [\d.:]+( s)? elapsed"
               r"(, [\d.:]+( s)? left)?")
    for i, line in enumerate(epochs, 1):
        assert re.fullmatch(pattern.format(i), line), line
    assert "left" in epochs[0] and "left" in epochs[-1]
    assert out.getvalue().splitlines()[-1].startswith("pretrain simclr: done, 12/12 steps in ")


def test_run_to_a_file_reports_every_stage(tmp_path):
    """CliRunner's output is not a terminal: what a log file of `run` shows."""
    result = CliRunner().invoke(main, ["run", "-m", "simclr", "-t", "digits", "--preset", "smoke", "--out",
                                       str(tmp_path / "runs")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for stage_line in (r"pretrain simclr: epoch 1/2, loss ", r"pretrain simclr: epoch 2/2, loss ",
                       r"features digits/train: done, \d+/\d+ images in ", r"features digits/test: done, ",
                       r"evaluate digits \(classification\): done, "):
        assert re.search(stage_line, result.output), stage_line
    quiet = CliRunner().invoke(main, ["run", "-m", "simclr", "-t", "digits", "--preset", "smoke", "--seed", "1",
                                      "--no-progress", "--out", str(tmp_path / "runs")], catch_exceptions=False)
    assert "epoch 1/2" not in quiet.output and "features digits" not in quiet.output
