"""The command line as a whole: lazy start, help on every option, one meaning per flag, no working-directory traps."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import fixtures_real as fx
from pcfrl_bench.cli import main

ROOT = Path(__file__).parents[1]
COMPUTE = ("run", "eval", "grid", "check", "analyze", "complexity", "curves")


def commands(group: click.Group = main, prefix: str = "") -> dict[str, click.Command]:
    out = {}
    for name, cmd in group.commands.items():
        out[prefix + name] = cmd
        if isinstance(cmd, click.Group):
            out.update(commands(cmd, prefix + name + " "))
    return out


def test_importing_the_cli_loads_no_heavy_library():
    code = ("import sys, pcfrl_bench.cli; "
            "print(sorted(m for m in ('torch', 'timm', 'matplotlib', 'pandas', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


NO_TORCH_RUN = """
import json, sys
from click.testing import CliRunner
from pcfrl_bench.cli import main
data, records = sys.argv[1:]
runs = [["config", "-m", "simclr", "-t", "digits"], ["config", "-m", "pcfrl", "-t", "synth-au", "--preset", "smoke"],
        ["list", "--json", "--data-root", data], ["results", "--records", records, "--json"]]
outputs = [CliRunner().invoke(main, args, catch_exceptions=False).output for args in runs]
print(json.dumps({"outputs": outputs, "loaded": sorted(m for m in ("torch", "timm") if m in sys.modules)}))
"""


def test_config_list_and_results_import_no_torch(tmp_path):
    """``config`` (a timm backbone too), ``list`` (reading a real dataset's index) and ``results`` (judging records
    against today's registry) run without importing torch or timm."""
    fx.write_rafdb(tmp_path / "data" / "RAF-DB")
    for record in ("synth-fer/simclr/quick-seed0.json", "complexity/pcfrl/quick-seed0.json"):
        (tmp_path / "records" / record).parent.mkdir(parents=True)
        shutil.copy(ROOT / "results" / "reference" / record, tmp_path / "records" / record)
    out = subprocess.run([sys.executable, "-c", NO_TORCH_RUN, str(tmp_path / "data"), str(tmp_path / "records")],
                         capture_output=True, text=True, check=True).stdout
    found = json.loads(out)
    assert found["loaded"] == []
    config, _, listed, results = found["outputs"]
    assert "backbone: timm:resnet18" in config
    assert {t["name"]: t["available"] for t in json.loads(listed)["tasks"]}["rafdb"]
    assert [json.loads(line)["registry"] for line in results.splitlines()] == [True, True]


def test_every_visible_option_has_help_and_out_is_a_records_folder():
    for name, cmd in commands().items():
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{name} {param.opts}"
                if "--out" in param.opts:
                    assert "records" in param.help, f"{name}: --out must name a folder of result records"
        opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
        if name in COMPUTE:
            assert "--threads" in opts, name


@pytest.mark.parametrize("args, new", [(["results", "--out", "x"], "--records"),
                                       (["tables", "--out", "x"], "--tables-dir"),
                                       (["synth", "preview", "--out", "x.png"], "--png"),
                                       (["analyze", "--out-dir", "x"], "--analysis-dir"),
                                       (["curves", "--out", "x"], "--curves-dir")])
def test_renamed_options_point_to_their_new_name(args, new):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and new in result.output


def test_config_output_replays_with_overrides_on_top(tmp_path):
    runner = CliRunner()
    printed = runner.invoke(main, ["config", "-m", "simclr", "-t", "digits", "--preset", "smoke", "--seed", "3"],
                            catch_exceptions=False).output
    (tmp_path / "c.yaml").write_text(printed)
    again = runner.invoke(main, ["config", "--config", str(tmp_path / "c.yaml")], catch_exceptions=False)
    assert again.output == printed
    changed = runner.invoke(main, ["config", "--config", str(tmp_path / "c.yaml"), "--set", "pretrain.epochs=7"],
                            catch_exceptions=False).output
    assert "epochs: 7" in changed and "seed: 3" in changed
    both = runner.invoke(main, ["config", "--config", str(tmp_path / "c.yaml"), "-m", "pcl"])
    assert both.exit_code == 2 and "--method" in both.output
    (tmp_path / "bad.yaml").write_text("model: {width: 1}\n")
    bad = runner.invoke(main, ["config", "--config", str(tmp_path / "bad.yaml")])
    assert bad.exit_code == 2 and "bad.yaml" in bad.output and "run:" in bad.output


def test_threads_after_the_subcommand(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(main, ["check", "--threads", "2", "--subset", "nope"])
        assert result.exit_code == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_data_check_takes_task_overrides_only():
    runner = CliRunner()
    other = runner.invoke(main, ["data", "check", "-t", "fer2013", "--set", "model.width=2"])
    assert other.exit_code == 2 and "only task.* keys" in other.output
    typo = runner.invoke(main, ["data", "check", "-t", "fer2013", "--set", "task.test_usag=PublicTest"])
    assert typo.exit_code == 2 and "test_usage" in typo.output
    ok = runner.invoke(main, ["data", "check", "-t", "fer2013", "--set", "task.test_usage=PublicTest", "--json"])
    assert ok.exit_code == 1 and '"problems"' in ok.output  # no data here: problems listed, not a crash


def test_defaults_work_outside_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    check = runner.invoke(main, ["check", "--subset", "no-such-subset"])  # reads the packaged expected.yaml
    assert check.exit_code == 2 and "no expected cell is in subset 'no-such-subset'" in check.output
    results = runner.invoke(main, ["results", "--csv"])  # no results/runs here: a clear message, no traceback
    assert results.exit_code == 2 and "no folder of result records at results/runs" in results.output
    tables = runner.invoke(main, ["tables"], catch_exceptions=False)
    assert tables.exit_code == 0 and (tmp_path / "results" / "TABLES.md").is_file()
    assert "note: no folder results/reference, so no records from it" in tables.output
    assert "no such folder" not in (tmp_path / "results" / "TABLES_SYNTHETIC.md").read_text()  # records alone decide


def test_bare_tables_is_make_tables(tmp_path, monkeypatch):
    """Bare `tables` writes both variants exactly as the two explicit commands `make tables` used to run: the
    paper variant from results/runs and the committed Table 10 records, the synthetic one from results/reference."""
    monkeypatch.chdir(ROOT)
    runner = CliRunner()
    assert runner.invoke(main, ["tables", "--tables-dir", str(tmp_path / "bare")], catch_exceptions=False).exit_code == 0
    explicit = [["--variant", "paper", "--preset", "paper", "--records", "results/runs",
                 "--records", "results/reference/complexity"],
                ["--variant", "synthetic", "--preset", "quick", "--records", "results/reference"]]
    for args in explicit:
        result = runner.invoke(main, ["tables", *args, "--tables-dir", str(tmp_path / "explicit")],
                               catch_exceptions=False)
        assert result.exit_code == 0
    for name in ("TABLES.md", "TABLES_SYNTHETIC.md", "tables/table10.md", "tables/synthetic/table01.md"):
        assert (tmp_path / "bare" / name).read_text() == (tmp_path / "explicit" / name).read_text(), name
    assert "(n=1)" in (tmp_path / "bare" / "tables" / "table10.md").read_text()  # Table 10 filled, not blank
