"""The paper's Tables 1-10 as YAML, and their rendering next to reproduced result records."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from pcfrl_bench.errors import ConfigError, MalformedFileError
from pcfrl_bench.reporting.paper import (PLANNED_METHODS, PLANNED_TASKS, TABLE_NUMBERS, default_paper_dir,
                                         load_paper_table, load_paper_tables, load_synthetic_map, registry_method_names,
                                         unknown_registry_names)
from pcfrl_bench.reporting.tables import (aggregate_records, best_rows, build_table_view, csv_table,
                                          latex_table, lookup, markdown_table, off_registry_problems,
                                          records_frame, render_all_tables, split_off_registry)
from pcfrl_bench.results import ResultRecord, load_records, write_record

PAPER_DIR = default_paper_dir()
PAPER_TEXT = Path(os.environ.get("PCFRL_PAPER_TEXT", "pcfrl-ijcv2025.txt"))  # a text copy of the paper, if you have one


@pytest.fixture(scope="module")
def tables():
    return {t.number: t for t in load_paper_tables(PAPER_DIR)}


def record(method, task, seed, metrics, best=None, preset="paper", created="2026-01-01T00:00:00+00:00", **more):
    return ResultRecord(method, task, preset, seed, next(iter(metrics)), metrics, {}, more.pop("config_hash", "0" * 16),
                        best_over_epochs=best if best is not None else metrics, created=created, **more)


def agg_of(root: Path, preset="paper", selection="final_epoch"):
    records, problems = load_records(root)
    assert problems == []
    return aggregate_records(records_frame(records), preset, selection)


# ------------------------------------------------------------------------------------------------ transcription


def test_every_table_present_with_every_cell(tables):
    assert sorted(tables) == list(TABLE_NUMBERS)
    known_methods = registry_method_names() | PLANNED_METHODS
    for t in tables.values():
        keys = [c.key for c in t.columns]
        assert t.caption and keys and t.rows
        for c in t.columns:
            assert c.task is None or c.task in PLANNED_TASKS, (t.name, c.key)
            assert c.metric
        for r in t.rows:
            assert list(r.values) == keys, (t.name, r.method)
            assert all(v is None or (isinstance(v, float) and math.isfinite(v)) for v in r.values.values())
            assert r.registry is None or r.registry in known_methods, (t.name, r.method, r.registry)
            assert [f.key for f in t.flag_columns] == sorted(r.flags, key=[f.key for f in t.flag_columns].index)
    assert unknown_registry_names(list(tables.values())) == []
    # row counts as printed
    assert [len(tables[n].rows) for n in TABLE_NUMBERS] == [12, 10, 12, 5, 6, 4, 5, 4, 2, 2]
    assert [len(tables[n].columns) for n in TABLE_NUMBERS] == [2, 2, 9, 5, 4, 3, 1, 1, 2, 4]


def _numbers(line: str) -> list[float]:
    line = re.sub(r"\([^()]*\d{4}\)", "", line)  # citations "(Zhao et al., 2018)"
    line = re.sub(r"\(\+[\d.]+\)", "", line)  # printed gains "(+0.51)"
    return [float(x) for x in re.findall(r"(?<![\w.'-])\d+\.?\d*(?![\w'])", line)]


@pytest.mark.skipif(not PAPER_TEXT.exists(), reason="paper text not available")
def test_transcription_matches_paper_text(tables):
    """Every row's numbers appear, in order, on one line of the table's block in the paper text."""
    text = PAPER_TEXT.read_text(encoding="utf-8").splitlines()
    for t in tables.values():
        start = next(i for i, l in enumerate(text) if l.startswith(f"Table {t.number} "))
        block = text[start + 2: start + 2 + len(t.rows) + 6]
        lines = [_numbers(l) for l in block]
        for r in t.rows:
            printed = [v for v in r.values.values() if v is not None]
            assert any(nums == printed for nums in lines), (t.name, r.method, printed)


def test_spot_values_and_paper_consistency(tables):
    t2, t4 = tables[2], tables[4]
    ours = {n: next(r for r in tables[n].rows if r.registry == "pcfrl") for n in TABLE_NUMBERS if n != 9}
    assert ours[1].values == {"fer2013": 57.30, "rafdb": 75.68}
    assert ours[2].values == {"lfw": 79.89, "cplfw": 66.17}
    assert ours[3].values["ave"] == 57.8 and ours[3].values["au2"] == 62.1
    assert next(r for r in t2.rows if r.method.startswith("LBP")).values["cplfw"] is None
    assert ours[10].values["time_s"] == 0.0562
    # Table 4: MAE is the mean of yaw/pitch/roll and lower is better
    assert not t4.column("mae").higher_is_better and t4.column("bu3dfe").higher_is_better
    for r in t4.rows:
        assert abs(r.values["mae"] - (r.values["yaw"] + r.values["pitch"] + r.values["roll"]) / 3) < 0.011
    # the same method gives the same number in every table it appears in (PCFRL, PCL, SimCLR on RAF-DB etc.)
    for reg in ("pcfrl", "pcl", "simclr"):
        for key, task_tables in (("rafdb", (1, 5, 6, 7)), ("cplfw", (2, 5, 6)), ("disfa", (5, 6))):
            seen = {next(r for r in tables[n].rows if r.registry == reg).values.get(key)
                    for n in task_tables if any(r.registry == reg for r in tables[n].rows)}
            assert len(seen - {None}) == 1, (reg, key, seen)
    assert ours[5].values["disfa"] == ours[3].values["ave"]
    assert ours[5].values["bu3dfe"] == ours[4].values["bu3dfe"]


def test_malformed_table_names_file_row_and_line(tmp_path):
    good = (PAPER_DIR / "table07.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "table07.yaml"
    bad.write_text(good.replace("values: {rafdb: 71.10}", "values: {}"), encoding="utf-8")
    with pytest.raises(MalformedFileError) as err:
        load_paper_table(bad)
    line = next(i + 1 for i, l in enumerate(bad.read_text().splitlines()) if "method: \"Top-2\"" in l)
    assert str(bad) in str(err.value) and "Top-2" in str(err.value) and "rafdb" in str(err.value)
    assert err.value.line == line
    bad.write_text(good.replace("values: {rafdb: 71.10}", "values: {rafdb: \"71.1x\"}"), encoding="utf-8")
    with pytest.raises(MalformedFileError, match="not a number"):
        load_paper_table(bad)
    wrong = tmp_path / "table08.yaml"
    wrong.write_text(good, encoding="utf-8")
    with pytest.raises(MalformedFileError, match="file name says table 8"):
        load_paper_table(wrong)


# ------------------------------------------------------------------------------------------------ aggregation


def test_mean_std_over_seeds_by_hand(tmp_path):
    root = tmp_path / "records"
    for seed, v in zip((0, 1, 2), (70.0, 72.0, 77.0)):
        write_record(root, record("pcfrl", "rafdb", seed, {"accuracy": v}, {"accuracy": v + 2.0}))
    write_record(root, record("pcfrl", "rafdb", 0, {"accuracy": 10.0}, preset="quick"))  # other preset: ignored
    # the same seed stored again in another folder: the later record wins
    write_record(root / "rerun", record("pcfrl", "rafdb", 2, {"accuracy": 74.0}, created="2026-02-01T00:00:00+00:00"))
    agg = agg_of(root)
    cell = lookup(agg, "pcfrl", "rafdb", ["accuracy"])
    # values 70, 72, 74: mean 72, sample std sqrt((4 + 0 + 4) / 2) = 2
    assert cell.n == 3 and cell.mean == pytest.approx(72.0) and cell.std == pytest.approx(2.0)
    best = lookup(agg_of(root, selection="best_over_epochs"), "pcfrl", "rafdb", ["accuracy"])
    # best_over_epochs of seeds 0, 1 (72, 74) and of the rerun of seed 2 (= its metrics, 74)
    assert best.mean == pytest.approx((72 + 74 + 74) / 3) and best.std == pytest.approx(math.sqrt(4 / 3))
    one = lookup(agg_of(root, preset="quick"), "pcfrl", "rafdb", ["accuracy"])
    assert one.n == 1 and one.mean == 10.0 and math.isnan(one.std)
    assert lookup(agg, "pcl", "rafdb", ["accuracy"]) is None
    with pytest.raises(ConfigError):
        aggregate_records(records_frame([]), "paper", "best_epoch")


def test_metric_aliases_and_case(tmp_path):
    root = tmp_path / "records"
    write_record(root, record("pcfrl", "disfa", 0, {"f1_mean": 50.0, "f1_au1": 40.0}))
    agg = agg_of(root)
    assert lookup(agg, "pcfrl", "disfa", ["f1", "f1_mean"]).mean == 50.0
    assert lookup(agg, "pcfrl", "disfa", ["f1_AU1"]).mean == 40.0


def test_best_rows_respects_direction():
    assert best_rows([3.0, 1.0, None, 1.0], higher_is_better=False) == {1, 3}
    assert best_rows([3.0, 1.0, None, 1.0], higher_is_better=True) == {0}
    assert best_rows([None, None], higher_is_better=True) == frozenset()


def test_bold_lower_is_better_and_blank_cells(tables, tmp_path):
    root = tmp_path / "records"
    for seed, (pcl, ours) in enumerate(((10.0, 12.0), (11.0, 13.0))):
        angles = {"mae_yaw": 5.0, "mae_pitch": 5.0}
        write_record(root, record("pcl", "aflw2000", seed, {"mae": pcl, **angles, "mae_roll": 20.0}))
        write_record(root, record("pcfrl", "aflw2000", seed, {"mae": ours, **angles, "mae_yaw": 6.0, "mae_roll": 1.0}))
    view = build_table_view(tables[4], agg_of(root), "paper")
    idx = {r.registry: i for i, r in enumerate(view.rows)}
    assert view.best_paper["mae"] == {idx["pcfrl"]}  # 12.08, the lowest printed MAE
    assert view.best_paper["pitch"] == {0}  # FaceCycle 12.76
    assert view.best_reproduced["mae"] == {idx["pcl"]}  # 10.5 < 12.5: lower is better
    assert view.best_reproduced["pitch"] == {idx["pcl"], idx["pcfrl"]}  # a tie: both bold
    assert view.best_reproduced["bu3dfe"] == frozenset()
    assert view.rows[idx["moco"]].reproduced["mae"] is None
    md = markdown_table(view).splitlines()
    pcl_line = next(l for l in md if "[`pcl`]" in l).split(" | ")
    moco_line = next(l for l in md if "[`moco`]" in l).split(" | ")
    assert "**10.50 ± 0.71** (n=2)" in pcl_line  # mean 10.5, sample std sqrt(0.5) = 0.707
    assert "12.50 ± 0.71 (n=2)" in next(l for l in md if "[`pcfrl`]" in l).split(" | ")
    assert moco_line[2::2] == ["", "", "", "", " |"]  # every reproduced cell of MoCo is blank
    frame = pd.read_csv(pd.io.common.StringIO(csv_table(view)))
    assert frame.loc[idx["moco"], "mae_n"] == 0 and math.isnan(frame.loc[idx["moco"], "mae_mean"])
    assert frame.loc[idx["pcl"], "mae_mean"] == pytest.approx(10.5) and frame.loc[idx["pcl"], "mae_paper"] == 12.36
    tex = latex_table(view)
    assert r"\textbf{10.50 $\pm$ 0.71} (n=2)" in tex and r"\textbf{12.08}" in tex


def test_supervised_rows_do_not_take_the_bold(tables):
    view = build_table_view(tables[1], aggregate_records(records_frame([]), "paper"), "paper")
    ours = next(i for i, r in enumerate(view.rows) if r.registry == "pcfrl")
    assert view.best_paper["rafdb"] == {ours}  # ALT (fully supervised, 84.50) is higher but not compared


def test_best_over_epochs_is_marked(tables, tmp_path):
    root = tmp_path / "records"
    write_record(root, record("pcfrl", "rafdb", 0, {"accuracy": 70.0}, {"accuracy": 71.5}))
    final = markdown_table(build_table_view(tables[7], agg_of(root), "paper", "final_epoch"))
    best = markdown_table(build_table_view(tables[7], agg_of(root, selection="best_over_epochs"), "paper",
                                           "best_over_epochs"))
    assert "†" not in final and "**70.00** (n=1)" in final
    assert "**71.50**† (n=1)" in best and "Best test value over probe epochs" in best
    assert r"$^\dagger$" in latex_table(build_table_view(tables[7], agg_of(root, selection="best_over_epochs"),
                                                         "paper", "best_over_epochs"))


def test_synthetic_view_uses_the_map(tables, tmp_path):
    root = tmp_path / "records"
    write_record(root, record("pcfrl", "synth-fer", 0, {"accuracy": 60.0}, preset="quick"))
    write_record(root, record("pcfrl", "rafdb", 0, {"accuracy": 99.0}, preset="quick"))
    smap = load_synthetic_map(PAPER_DIR / "synthetic_map.yaml")
    view = build_table_view(tables[1], agg_of(root, preset="quick"), "quick", synthetic_map=smap)
    assert [c.task for c in view.columns] == ["synth-fer"]  # FER-2013 and RAF-DB both map to synth-fer
    assert [r.registry for r in view.rows] == ["moco", "simclr", "pcl", "pcfrl"]
    assert view.rows[-1].reproduced[view.columns[0].key].mean == 60.0
    assert all(v is None for r in view.rows for v in r.paper.values())
    t10 = build_table_view(tables[10], agg_of(root, preset="quick"), "quick", synthetic_map=smap)
    assert {c.task for c in t10.columns} == {"complexity"}  # Table 10 stands for itself


# ------------------------------------------------------------------------------------------------ files


def test_render_all_tables_writes_every_format(tmp_path):
    root = tmp_path / "records"
    for seed, v in enumerate((75.0, 77.0)):
        write_record(root, record("pcfrl", "rafdb", seed, {"accuracy": v}))
    write_record(root, record("simclr", "digits", 0, {"accuracy": 90.0}, preset="quick"))
    (root / "broken.json").write_text("{", encoding="utf-8")
    out = tmp_path / "results"
    paths = render_all_tables(PAPER_DIR, root, out, preset="paper", selection="final_epoch")
    expected = {out / "tables" / f"table{n:02d}.{ext}" for n in TABLE_NUMBERS for ext in ("md", "csv", "tex")}
    assert set(paths) == expected | {out / "TABLES.md"} and all(p.is_file() for p in paths)
    combined = (out / "TABLES.md").read_text(encoding="utf-8")
    assert all(f"## Table {n}:" in combined for n in TABLE_NUMBERS)
    assert "broken.json" in combined and "**76.00 ± 1.41** (n=2)" in combined
    tex = (out / "tables" / "table03.tex").read_text(encoding="utf-8")
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 1 and r"\begin{tabular}" in tex
    frame = pd.read_csv(out / "tables" / "table07.csv")
    assert frame.loc[frame["registry"] == "pcfrl", "rafdb_mean"].item() == pytest.approx(76.0)
    assert frame["rafdb_paper"].tolist() == [74.47, 75.33, 71.10, 67.68, 75.68]
    syn = render_all_tables(PAPER_DIR, root, out, preset="quick", variant="synthetic")
    assert out / "TABLES_SYNTHETIC.md" in syn and out / "tables" / "synthetic" / "table09.csv" in syn
    assert out / "tables" / "synthetic" / "table10.md" in syn  # complexity stands for itself
    t9 = (out / "tables" / "synthetic" / "table09.md").read_text(encoding="utf-8")
    assert "**90.00** (n=1)" in t9 and "(paper)" not in t9
    with pytest.raises(ConfigError):
        render_all_tables(PAPER_DIR, root, out, variant="real")
    empty = render_all_tables(PAPER_DIR, tmp_path / "missing", tmp_path / "empty")
    text = (tmp_path / "empty" / "TABLES.md").read_text(encoding="utf-8")
    assert len(empty) == 31 and "Records skipped" not in text and "(n=" not in text  # missing = no records
    assert "SimCLR (Chen et al., 2020)\\* [`simclr`]" in text  # the paper's * escaped for Markdown


def test_tables_count_only_registry_configs(tmp_path):
    root = tmp_path / "records"
    write_record(root, record("pcfrl", "rafdb", 0, {"accuracy": 70.0}))
    write_record(root, record("pcfrl", "rafdb", 1, {"accuracy": 10.0}, config_hash="f" * 16))  # a sweep point
    write_record(root / "cx", record("pcfrl", "complexity", 0, {"params_m": 17.3}, config_hash="e" * 16))
    registry = {("pcfrl", "rafdb", "paper", 0): "0" * 16, ("pcfrl", "rafdb", "paper", 1): "0" * 16}
    records, _ = load_records(root)
    kept, off = split_off_registry(records, lambda *key: registry.get(key))
    assert sorted((r.task, r.seed) for r in kept) == [("complexity", 0), ("rafdb", 0)]
    assert [r.seed for r in off] == [1]
    [line] = off_registry_problems(off)
    assert line.startswith("pcfrl: 1 record(s)") and "quick" not in line and "seed1" in line
    out = tmp_path / "out"
    render_all_tables(PAPER_DIR, root, out, registry_hash=lambda *key: registry.get(key))
    t7 = (out / "tables" / "table07.md").read_text(encoding="utf-8")
    assert "**70.00** (n=1)" in t7 and "40.00" not in t7  # the sweep point's 10.0 would make it 40.00 ± 42.43 (n=2)
    assert "pcfrl: 1 record(s)" in (out / "TABLES.md").read_text(encoding="utf-8")
    assert "17.3" in (out / "tables" / "table10.md").read_text(encoding="utf-8")
    render_all_tables(PAPER_DIR, root, out)  # without the check both seeds count
    assert "**40.00 ± 42.43** (n=2)" in (out / "tables" / "table07.md").read_text(encoding="utf-8")
