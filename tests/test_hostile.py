"""Hostile input and faults, second round (issue 24): every bad number, file and path is one named error (exit
status 2, no traceback), YAML bombs fail fast, `data check` checks every label line and decodes every image,
written CSV/Markdown/LaTeX are safe to open, a full disk leaves the previous checkpoint and records whole, and
Ctrl-C / SIGTERM stop every child process and leave nothing behind (the signals are sent to real processes).

The issue's cases, one test each (the README's "Threat model and guarantees" lists what is and is not defended):
numbers (1-6), YAML (7-11), data check (12-19), written files (20-23), paths and text (24-32), disk faults
(33-36), signals (37-39b), messages (40-42), the documented ranges (43).
"""

from __future__ import annotations

import csv
import errno
import glob
import io
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import fixtures_real as fx
from pcfrl_bench.cli import main
from pcfrl_bench.config import load_yaml, parse_override
from pcfrl_bench.data.readers import check_dataset, read_bu3dfe, read_disfa, read_rafdb
from pcfrl_bench.data.readers import check as check_module
from pcfrl_bench.errors import ConfigError, Interrupted, MalformedFileError, WriteError
from pcfrl_bench.inputs import YAML_MAX_BYTES, check_path, quote, yaml_text
from pcfrl_bench.interrupt import check_interrupted, run_in_processes, signals_raise
from pcfrl_bench.io import append_text, atomic_write_bytes
from pcfrl_bench.reporting.escape import csv_cell, latex_text, markdown_text
from pcfrl_bench.results import read_record, write_record
from pcfrl_bench.data.sources import build_source
from pcfrl_bench.runner import build_method, resolve
from pcfrl_bench.train import CHECKPOINT, checkpoint_state, pretrain, read_log

ROOT = Path(__file__).resolve().parents[1]
TINY = ["pretrain.epochs=3", "pretrain.checkpoint_every=1", "data.max_samples=32", "pretrain.batch_size=16"]
SETS = [x for o in TINY for x in ("--set", o)]


def invoke(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)


def said(result, text: str) -> bool:
    """Whether the CLI printed ``text``, ignoring the line breaks rich adds at the terminal width."""
    return "".join(text.split()) in "".join(result.output.split())


def refused(result, *texts: str) -> bool:
    """Exit status 2, one message naming ``texts``, no traceback."""
    return result.exit_code == 2 and all(said(result, t) for t in texts) and "Traceback" not in result.output


BOMB = "\n".join([
    'a: &a ["x","x","x","x","x","x","x","x","x"]',
    *[f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")],
    "run: {method: simclr, task: digits}", "model: {backbone: *i}", ""])


# ------------------------------------------------------------------------------------- 1-6 numbers


@pytest.mark.parametrize("override, key, shown, bound", [
    ("pretrain.epochs=1.0e+11", "pretrain.epochs", "100000000000", "[0, 100_000]"),
    ("data.image_size=20000", "data.image_size", "20000", "[8, 1_024]"),
    ("pretrain.batch_size=1000000", "pretrain.batch_size", "1000000", "[2, 65_536]"),
    ("data.num_workers=5000", "data.num_workers", "5000", "[0, 256]"),
    ("data.synthetic.identities=100000000", "data.synthetic.identities", "100000000", "[1, 100_000]"),
    ("eval.probe.epochs=1000000", "eval.probe.epochs", "1000000", "[1, 100_000]"),
    ("method.proj_dim=10000000", "method.proj_dim", "10000000", "[1, 65_536]"),
    ("method.augment.flip_p=2", "method.augment.flip_p", "2.0", "[0, 1]"),
])
def test_1_every_size_count_and_epoch_key_has_an_upper_bound(override, key, shown, bound):
    result = invoke("config", "-m", "simclr", "-t", "digits", "--set", override)
    assert refused(result, f"{key}: {shown} is out of range; expected {bound}")


def test_2_bounds_are_checked_before_any_work(tmp_path):
    result = invoke("run", "-m", "simclr", "-t", "digits", "-p", "smoke", "--out", tmp_path / "out",
                    "--cache-dir", tmp_path / "cache", "--set", "pretrain.epochs=100000000000")
    assert refused(result, "pretrain.epochs", "100000000000", "[0, 100_000]")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_3_task_and_method_numbers_and_seeds_are_bounded():
    assert refused(invoke("config", "-m", "moco", "-t", "synth-fer", "--set", "method.queue_size=1e12"),
                   "method.queue_size", "expected int")
    assert refused(invoke("config", "-m", "moco", "-t", "synth-fer", "--set", "task.n_train=10000000"),
                   "task.n_train", "[1, 100_000]")
    assert refused(invoke("config", "-m", "simclr", "-t", "digits", "--seed", "99999999999999999999"),
                   "run.seed", "[-2_147_483_648, 2_147_483_647]")


@pytest.mark.parametrize("args, option", [
    (["grid", "--methods", "simclr", "--tasks", "digits", "--jobs", "0"], "--jobs"),
    (["grid", "--methods", "simclr", "--tasks", "digits", "--jobs", "100000"], "--jobs"),
    (["grid", "--methods", "simclr", "--tasks", "digits", "--seeds", "0,x"], "--seeds"),
    (["grid", "--methods", "simclr", "--tasks", "digits", "--seeds", "1e99"], "--seeds"),
    (["synth", "preview", "--size", "100000"], "--size"),
    (["synth", "preview", "--identities", "100000"], "--identities"),
    (["synth", "export", "--like", "rafdb", "--dataset-dir", "x", "--n", "1000000000"], "--n"),
    (["--threads", "1000000", "list"], "--threads"),
    (["data", "check", "-t", "rafdb", "--decode", "99999999999999"], "--decode"),
])
def test_4_command_line_numbers_are_bounded(args, option):
    assert refused(invoke(*args), option)


def test_5_an_empty_grid_is_an_error_not_a_silent_success():
    assert refused(invoke("grid", "--methods", ",", "--tasks", "digits"), "at least one")


def test_6_expected_values_file_numbers_are_checked(tmp_path):
    entry = {"method": "simclr", "task": "digits", "preset": "smoke", "seed": 0, "metric": "accuracy", "value": 1,
             "tolerance": 1, "threads": -4}
    (tmp_path / "e.yaml").write_text(json.dumps({"cells": [entry]}))
    assert refused(invoke("check", "--expected", tmp_path / "e.yaml"), "e.yaml", "threads")


# ------------------------------------------------------------------------------------------ 7-11 YAML


def test_7_alias_bomb_config_fails_in_well_under_a_second(tmp_path):
    (tmp_path / "bomb.yaml").write_text(BOMB)
    started = time.perf_counter()
    result = invoke("config", "--config", tmp_path / "bomb.yaml")
    assert time.perf_counter() - started < 1.0
    assert refused(result, "bomb.yaml", "alias bomb")


def test_8_alias_bomb_in_the_registry_is_skipped_by_list_and_named_by_config(tmp_path, monkeypatch):
    import shutil

    from pcfrl_bench.catalog import registry_root
    home = tmp_path / "home"
    for kind in ("methods", "tasks"):
        shutil.copytree(registry_root() / kind, home / kind)
    (home / "methods" / "bomb.yaml").write_text(BOMB.replace("run: {method: simclr, task: digits}\nmodel: {backbone: *i}",
                                                             "description: *i"))
    monkeypatch.setenv("PCFRL_BENCH_HOME", str(home))
    listed = invoke("list")
    assert listed.exit_code == 0 and said(listed, "bomb.yaml") and said(listed, "alias bomb")
    assert refused(invoke("config", "-m", "bomb", "-t", "digits"), "bomb.yaml", "alias bomb")


@pytest.mark.parametrize("text, problem", [
    ("a: &a [1, *a]\n", "contains it"),
    ("a: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than 64"),
    ("a: *nothing\n", "names no anchor"),
    ("a: [1, 2\nb: ]\n", "invalid YAML (line 2"),
])
def test_9_recursive_deep_or_broken_yaml_is_a_named_error(tmp_path, text, problem):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"c\.yaml") as err:
        load_yaml(tmp_path / "c.yaml")
    assert problem in str(err.value)


def test_10_oversized_yaml_and_endless_streams_are_not_read(tmp_path):
    (tmp_path / "big.yaml").write_text("a: " + "x" * (YAML_MAX_BYTES + 10) + "\n")
    assert refused(invoke("config", "--config", tmp_path / "big.yaml"), "big.yaml", "larger than 1,048,576 bytes")
    if os.path.exists("/dev/zero"):
        assert refused(invoke("config", "--config", "/dev/zero"), "/dev/zero", "larger than")


def test_11_set_value_bomb_is_refused():
    value = ("[&a [x,x,x,x,x,x,x,x,x], " + ", ".join(f"&{n} [{', '.join([f'*{p}'] * 9)}]"
                                                   for p, n in zip("abcde", "bcdef")) + "]")
    with pytest.raises(ConfigError, match="--set 'method.temperature': more than 100,000 values"):
        parse_override(f"method.temperature={value}")


# ------------------------------------------------------------------------------------- 12-19 data check


def _dup(label_file: Path, extra: str) -> None:
    label_file.write_text(label_file.read_text() + extra + "\n")


def test_12_an_id_with_two_labels_fails_data_check_and_run(tmp_path):
    facts = fx.write_rafdb(tmp_path / "data" / "RAF-DB")
    _dup(facts["label_file"], "train_00001.jpg 3")  # line 15; line 1 gave it 1
    with pytest.raises(MalformedFileError, match=r"line 15: 'train_00001.jpg' has label 3, but line 1 gave it 1"):
        read_rafdb(tmp_path / "data" / "RAF-DB")
    checked = invoke("data", "check", "-t", "rafdb", "--data-root", tmp_path / "data")
    assert checked.exit_code == 1 and said(checked, "list_patition_label.txt")
    assert said(checked, "has label 3, but line 1 gave it 1")
    ran = invoke("run", "-m", "simclr", "-t", "rafdb", "-p", "smoke", "--data-root", tmp_path / "data",
                 "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache", "--no-progress")
    assert refused(ran, "line 15") and not (tmp_path / "cache" / "pretrain").exists()


def test_13_a_repeated_line_and_images_without_a_label_are_problems(tmp_path):
    root = tmp_path / "RAF-DB"
    facts = fx.write_rafdb(root)
    _dup(facts["label_file"], "test_0002.jpg 2")
    assert any("line 15: 'test_0002.jpg' repeats line 4" in p for p in check_dataset("rafdb", root)["problems"])
    facts["label_file"].write_text("\n".join(facts["label_file"].read_text().splitlines()[:-1]) + "\n")
    fx.write_image(root / "basic/Image/aligned/train_09999_aligned.jpg")
    (problem,) = check_dataset("rafdb", root)["problems"]
    assert "1 image(s) have no label line" in problem and "train_09999_aligned.jpg" in problem


def test_14_labelled_ids_without_an_image_are_problems(tmp_path):
    fx.write_rafdb(tmp_path)
    (tmp_path / "basic/Image/aligned/test_0003_aligned.jpg").unlink()
    (problem,) = check_dataset("rafdb", tmp_path)["problems"]
    assert "test: 1 image files missing" in problem and "test_0003_aligned.jpg" in problem


def test_15_every_image_is_decoded_by_default(tmp_path):
    fx.write_rafdb(tmp_path / "data" / "RAF-DB", per_class=6)  # 84 images: the old 16-image spot check missed this one
    (tmp_path / "data/RAF-DB/basic/Image/aligned/train_00002_aligned.jpg").write_bytes(b"\xff\xd8 broken")
    result = invoke("data", "check", "-t", "rafdb", "--data-root", tmp_path / "data")
    assert result.exit_code == 1 and said(result, "decoded 84 of 84 images")
    assert said(result, "cannot decode image") and said(result, "train_00002_aligned.jpg")


def test_16_large_sets_get_a_stratified_sample_and_say_how_to_decode_all(tmp_path, monkeypatch):
    fx.write_rafdb(tmp_path / "data" / "RAF-DB", per_class=6)
    monkeypatch.setattr(check_module, "DECODE_ALL_LIMIT", 28)
    result = invoke("data", "check", "-t", "rafdb", "--data-root", tmp_path / "data", "--json")
    report = json.loads(result.output)
    assert report["decoded"] == {"images": 28, "of": 84, "sample": True}
    plan, chosen, total = check_module.decode_plan(read_rafdb(tmp_path / "data" / "RAF-DB"), "auto")
    index = read_rafdb(tmp_path / "data" / "RAF-DB")
    for split, positions in plan.items():  # every class of every split is in the sample, 2 images each
        assert sorted(index[split].targets["label"][positions].tolist()) == sorted(list(range(7)) * 2)
    text = invoke("data", "check", "-t", "rafdb", "--data-root", tmp_path / "data")
    assert said(text, "decoded 28 of 84 images (a sample stratified by split and class") and said(text, "--decode all")


def test_17_run_and_data_check_share_the_decode_pass():
    from pcfrl_bench.tasks import real
    assert real.undecodable_images is check_module.undecodable_images


def test_18_disfa_frame_listed_twice_would_shift_every_later_frame(tmp_path):
    fx.write_disfa(tmp_path)
    au = tmp_path / "ActionUnit_Labels" / "SN001" / "SN001_au1.txt"
    lines = au.read_text().splitlines()
    lines[3] = lines[2].split(",")[0] + ",5"  # frame of line 3 again, another intensity
    au.write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedFileError, match=r"SN001_au1.txt: 1 repeated id.*line 4: '3' has label 5"):
        read_disfa(tmp_path)


def test_19_train_and_test_lists_must_not_share_images(tmp_path):
    fx.write_bu3dfe(tmp_path)
    train = (tmp_path / "train.txt").read_text().splitlines()
    (tmp_path / "test.txt").write_text((tmp_path / "test.txt").read_text() + train[0] + "\n")
    with pytest.raises(MalformedFileError, match=r"test.txt: 1 image\(s\) also listed in train.txt"):
        read_bu3dfe(tmp_path)


# ----------------------------------------------------------------------------------- 20-23 written files


def _record(tmp_path: Path, **fields) -> Path:
    source = sorted((ROOT / "results/reference/digits/simclr").glob("*.json"))[0]
    data = {**json.loads(source.read_text()), **fields}
    path = tmp_path / "recs" / data["task"] / data["method"] / "quick-seed0.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return tmp_path / "recs"


def test_20_results_csv_cells_never_start_a_formula(tmp_path):
    recs = _record(tmp_path, method='=HYPERLINK("http://x","y")', overrides=["@SUM(1+1)", "-2+3", "+cmd"])
    result = invoke("results", "--records", recs, "--csv")
    assert result.exit_code == 0
    (row,) = list(csv.DictReader(io.StringIO(result.output)))
    assert row["method"] == "'=HYPERLINK(\"http://x\",\"y\")" and row["overrides"] == "'@SUM(1+1) -2+3 +cmd"
    assert float(row["final"]) > 0  # numbers stay numbers


def test_21_escaping_rules():
    assert [csv_cell(v) for v in ("=1+2", "+1", "-1", "@x", "\tx", "\rx", "ok", -1.5)] == \
        ["'=1+2", "'+1", "'-1", "'@x", "'\tx", "'\rx", "ok", -1.5]
    assert markdown_text("<img src=x> | *a*_b_ [l](u)\n# h") == \
        r"\<img src=x\> \| \*a\*\_b\_ \[l\](u) # h"
    assert latex_text("\\input{/etc/passwd} 100% & $x$\n\nend") == \
        r"\textbackslash{}input\{/etc/passwd\} 100\% \& \$x\$ end"


def test_22_tables_escape_names_from_records(tmp_path):
    evil = "<img src=x onerror=alert(1)> | \\input{/etc/passwd}\n\n# pwned"
    recs = _record(tmp_path, device="cuda", device_name=evil)
    assert invoke("tables", "--records", recs, "--any-config", "--variant", "synthetic", "--preset", "quick",
                  "--tables-dir", tmp_path / "t").exit_code == 0
    md = (tmp_path / "t/tables/synthetic/table09.md").read_text()
    tex = (tmp_path / "t/tables/synthetic/table09.tex").read_text()
    assert not re.search(r"(?<!\\)<img", md) and "\n# pwned" not in md and r"\<img src=x onerror=alert(1)\>" in md
    assert "\\input{" not in tex and "\n\n" not in tex.split("\\caption")[1].split("\\label")[0]


def test_23_paper_row_names_starting_with_plus_are_escaped_in_table_csv(tmp_path):
    assert invoke("tables", "--records", tmp_path, "--variant", "paper", "--tables-dir", tmp_path / "t").exit_code == 0
    rows = list(csv.DictReader(open(tmp_path / "t/tables/table06.csv", encoding="utf-8")))
    assert "'+ PCL loss" in [r["method"] for r in rows]
    assert not any(str(v).startswith(("=", "+", "-", "@")) for r in rows for v in r.values())


# --------------------------------------------------------------------------------- 24-32 paths and text


@pytest.mark.parametrize("args, option, problem", [
    (["run", "-m", "simclr", "-t", "digits", "--cache-dir", "{file}"], "--cache-dir", "is a file; give a folder"),
    (["run", "-m", "simclr", "-t", "digits", "--out", "{file}/runs"], "--out", "which is a file, not a folder"),
    (["tables", "--tables-dir", "{file}"], "--tables-dir", "is a file; give a folder"),
    (["figures", "--figures-dir", "{file}"], "--figures-dir", "is a file; give a folder"),
    (["results", "--records", "{file}"], "--records", "is a file; give a folder"),
    (["synth", "preview", "--png", "{dir}"], "--png", "is a folder; give a file"),
    (["config", "--config", "{dir}"], "--config", "is a folder; give a file"),
    (["claims", "--report", "{dir}"], "--report", "is a folder; give a file"),
    (["synth", "preview", "--png", "{long}.png"], "--png", "a name may have at most"),
    (["run", "-m", "simclr", "-t", "digits", "--out", "{deep}"], "--out", "a path may have at most"),
])
def test_24_path_options_are_checked_for_kind_and_length_before_work(tmp_path, args, option, problem):
    (tmp_path / "f").write_text("a file")
    subs = {"{file}": str(tmp_path / "f"), "{dir}": str(tmp_path), "{long}": "a" * 5000,
            "{deep}": "/".join(["d" * 200] * 30)}
    for key, value in subs.items():
        args = [a.replace(key, value) for a in args]
    result = invoke(*args)
    assert refused(result, option, problem)
    assert len(result.output) < 700  # the 5,000-character name is quoted short
    assert not (tmp_path / "cache").exists()


def test_25_cache_from_the_environment_is_checked_too(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("a file")
    monkeypatch.setenv("PCFRL_CACHE", str(tmp_path / "f"))
    assert refused(invoke("run", "-m", "simclr", "-t", "digits", "-p", "smoke", "--out", tmp_path / "o"),
                   "$PCFRL_CACHE", "is a file")


def test_26_unwritable_folder_is_named(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(Exception, match="not writable"):
        check_path(tmp_path / "ro" / "out", "--out", "dir", write=True)


@pytest.mark.parametrize("text", ["method.temperature=\udcff", "method.\udcfftemperature=1"])
def test_27_non_utf8_set_is_named(text):
    assert refused(invoke("config", "-m", "simclr", "-t", "digits", "--set", text), "--set", "not UTF-8",
                   "byte 0xff")


def test_28_non_utf8_yaml_and_list_files_are_named(tmp_path):
    (tmp_path / "c.yaml").write_bytes(b"run: {method: simclr, task: digits}\nmodel: {backbone: caf\xe9}\n")
    assert refused(invoke("config", "--config", tmp_path / "c.yaml"), "c.yaml", "not a UTF-8 text file",
                   "byte 0xe9")
    facts = fx.write_rafdb(tmp_path / "raf")
    facts["label_file"].write_bytes(b"train_00001.jpg \xff\n")
    with pytest.raises(MalformedFileError, match="list_patition_label.txt: not a UTF-8 text file"):
        read_rafdb(tmp_path / "raf")


def test_29_nul_in_a_config_string_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text('run: {method: simclr, task: digits}\nmodel: {checkpoint: "a\\0b"}\n')
    assert refused(invoke("config", "--config", tmp_path / "c.yaml"), "model.checkpoint", "NUL character")


def test_30_deeply_nested_json_record_is_skipped_not_a_traceback(tmp_path):
    path = tmp_path / "recs" / "digits" / "simclr" / "x.json"
    path.parent.mkdir(parents=True)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        read_record(path)
    result = invoke("results", "--records", tmp_path / "recs")
    assert result.exit_code == 0 and said(result, "nested too deeply")


def test_31_rich_markup_in_user_values_is_printed_literally(tmp_path):
    assert refused(invoke("config", "-m", "simclr", "-t", "digits", "--set", "[/x]=1"), "'[/x]'")
    recs = _record(tmp_path, method="[/x]", task="[red]")
    shown = invoke("results", "--records", recs)
    assert shown.exit_code == 0 and said(shown, "[/x]") and said(shown, "[red]")
    (tmp_path / "[/x]").mkdir(parents=True)  # a folder named like markup, in a table title
    assert invoke("results", "--records", tmp_path / "[/x]").exit_code == 0
    assert invoke("list", "--data-root", tmp_path / "[/x]").exit_code == 0


def test_32_method_names_cannot_reach_files_outside_the_registry():
    assert refused(invoke("config", "-m", "../tasks/digits", "-t", "digits"), "Unknown method '../tasks/digits'")


# ------------------------------------------------------------------------------------- 33-36 disk faults


def _fail_fsync_of(name: str, nth: int, code: int, monkeypatch) -> None:
    """The ``nth`` fsync of a temp file for ``name`` raises OSError(code) (what a full disk does)."""
    real, seen = os.fsync, []

    def fsync(fd):
        if f".{name}." in os.readlink(f"/proc/self/fd/{fd}"):
            seen.append(fd)
            if len(seen) == nth:
                raise OSError(code, os.strerror(code))
        return real(fd)
    monkeypatch.setattr(os, "fsync", fsync)


def test_33_file_size_limit_at_a_checkpoint_keeps_the_previous_one_and_resume_continues(tmp_path, monkeypatch):
    """A real EFBIG: the second checkpoint (4.6 MB) is written under a 1 MB file-size limit (Python ignores
    SIGXFSZ, so the write fails with EFBIG)."""
    import pcfrl_bench.train as train_module

    resolved = resolve("simclr", "digits", "smoke", overrides=["pretrain.epochs=2", *TINY[1:]])
    source, run_dir = build_source(resolved.config.data, tmp_path), tmp_path / "run"
    real_save, saves = train_module.atomic_torch_save, []

    def save_under_a_limit(obj, path):
        saves.append(path)
        if len(saves) < 2:
            return real_save(obj, path)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
        try:
            return real_save(obj, path)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    def train(resume: bool) -> None:
        pretrain(build_method(resolved), source, resolved.config.pretrain, run_dir, seed=0,
                 device=torch.device("cpu"), resume=resume, progress=False)
    monkeypatch.setattr(train_module, "atomic_torch_save", save_under_a_limit)
    with pytest.raises(WriteError, match=r"last.pt: the file would exceed the file-size limit \(ulimit -f\) \(EFBIG\); "
                                         r"the checkpoint of epoch 1 .* is intact; .* --resume") as err:
        train(resume=False)
    assert isinstance(err.value, OSError)
    assert checkpoint_state(run_dir).epoch == 1 and not list(run_dir.glob(".*.tmp"))
    monkeypatch.undo()
    train(resume=True)
    assert checkpoint_state(run_dir).complete and [r["epoch"] for r in read_log(run_dir)] == [1, 2]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads file names from /proc")
def test_34_full_disk_at_a_record_leaves_earlier_records_whole(tmp_path, monkeypatch):
    first = read_record(sorted((ROOT / "results/reference/digits/simclr").glob("*.json"))[0])
    path = write_record(tmp_path / "out", first)
    before = path.read_bytes()
    _fail_fsync_of(path.name, 1, errno.ENOSPC, monkeypatch)
    with pytest.raises(WriteError, match="the disk is full"):
        write_record(tmp_path / "out", first)
    assert path.read_bytes() == before and not list(path.parent.glob(".*.tmp"))


def test_35_a_failed_append_leaves_no_half_line(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    append_text(path, '{"epoch": 1}\n')
    real = os.write

    def short_then_full(fd, data):  # writes part of the line, then the disk is full
        if len(data) > 4:
            return real(fd, data[:4])
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(WriteError, match="its earlier lines are intact"):
        append_text(path, '{"epoch": 2}\n')
    monkeypatch.undo()
    assert path.read_text() == '{"epoch": 1}\n'
    with pytest.raises(WriteError, match="could not write .*below-a-file.json"):
        atomic_write_bytes(path / "below-a-file.json", b"{}")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads file names from /proc")
def test_36_full_disk_during_run_is_one_message_with_exit_status_2(tmp_path, monkeypatch):
    _fail_fsync_of(CHECKPOINT, 1, errno.ENOSPC, monkeypatch)
    result = invoke("run", "-m", "simclr", "-t", "digits", "-p", "smoke", "--no-progress", "--out", tmp_path / "out",
                    "--cache-dir", tmp_path / "cache", "--set", "pretrain.epochs=1")
    assert refused(result, "last.pt", "the disk is full (ENOSPC); no checkpoint was saved yet", "--resume")
    assert not glob.glob(str(tmp_path / "**" / ".*.tmp"), recursive=True)


# ----------------------------------------------------------------------------------------- 37-39 signals


def _children(pid: int) -> list[int]:
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return found


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _interrupt(args: list, tmp_path: Path, sig: int, ready) -> tuple[subprocess.CompletedProcess, list[int]]:
    """Start ``pcfrl-bench args``, wait until ``ready()`` and the process has children, send ``sig`` to it alone."""
    # default dispositions, as for a command in a terminal's foreground: a background job of a non-interactive
    # shell (e.g. CI started with `&`) inherits SIGINT ignored, and Python then installs no Ctrl-C handler
    proc = subprocess.Popen([sys.executable, "-m", "pcfrl_bench", "--threads", "1", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path), "COLUMNS": "400"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline, kids = time.monotonic() + 240, []
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _children(proc.pid) if ready() else []
        if kids:
            break
        time.sleep(0.05)
    assert kids, f"never ready: {proc.communicate()[1][-2000:]}"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    time.sleep(0.5)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), kids


def _nothing_left(tmp_path: Path, kids: list[int]) -> None:
    assert not [k for k in kids if _alive(k)], "a child process outlived the interrupted command"
    assert not glob.glob(str(tmp_path / "**" / ".*.tmp"), recursive=True)
    assert not glob.glob(str(tmp_path / "pcfrl-*"))
    for ckpt in glob.glob(str(tmp_path / "cache" / "pretrain" / "*" / "*" / CHECKPOINT)):
        assert checkpoint_state(Path(ckpt).parent) is not None  # whole, loadable
    for record in glob.glob(str(tmp_path / "out" / "**" / "*.json"), recursive=True):
        read_record(Path(record))


LONG = ["pretrain.epochs=8", "pretrain.checkpoint_every=1", "data.max_samples=32", "pretrain.batch_size=16"]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_37_ctrl_c_on_grid_stops_every_worker_and_resume_continues(tmp_path):
    args = ["grid", "--methods", "simclr", "--tasks", "digits", "--seeds", "0,1", "--preset", "smoke",
            "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache", *[x for o in LONG for x in ("--set", o)]]
    done, kids = _interrupt([*args, "--jobs", "2"], tmp_path, signal.SIGINT,
                            lambda: glob.glob(str(tmp_path / "cache/pretrain/*/*" / CHECKPOINT)))
    assert done.returncode == 130 and "Interrupted by SIGINT" in done.stderr and "Traceback" not in done.stderr
    assert len(kids) == 2
    _nothing_left(tmp_path, kids)
    resumed = invoke(*args, "--resume")
    assert resumed.exit_code == 0 and said(resumed, "records in")
    assert len(glob.glob(str(tmp_path / "out" / "digits" / "simclr" / "*.json"))) == 2


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_38_sigterm_on_run_with_loader_workers_stops_them(tmp_path):
    sets = [*LONG, "data.num_workers=2"]
    args = ["run", "-m", "simclr", "-t", "digits", "--preset", "smoke", "--no-progress", "--out", tmp_path / "out",
            "--cache-dir", tmp_path / "cache", *[x for o in sets for x in ("--set", o)]]
    done, kids = _interrupt(args, tmp_path, signal.SIGTERM,
                            lambda: glob.glob(str(tmp_path / "cache/pretrain/*/*" / CHECKPOINT)))
    assert done.returncode == 143 and "Interrupted by SIGTERM" in done.stderr and "Traceback" not in done.stderr
    _nothing_left(tmp_path, kids)
    resolved = resolve("simclr", "digits", "smoke", overrides=sets)
    (run_dir,) = {Path(p).parent for p in glob.glob(str(tmp_path / "cache/pretrain/*/*" / CHECKPOINT))}
    stopped_at = checkpoint_state(run_dir).epoch
    pretrain(build_method(resolved), build_source(resolved.config.data, tmp_path), resolved.config.pretrain, run_dir,
             seed=0, device=torch.device("cpu"), num_workers=2, resume=True, progress=False)
    assert stopped_at < 8 and checkpoint_state(run_dir).complete and read_log(run_dir)[-1]["epoch"] == 8


def _wait_then_fail(seconds: float) -> None:
    time.sleep(seconds)
    raise ValueError("boom in a child")


def test_39_worker_errors_and_interruptions_reach_the_parent():
    with pytest.raises(ValueError, match="boom in a child"):
        run_in_processes(_wait_then_fail, [(0.0,), (0.0,)], jobs=2, grace_s=5)
    with signals_raise(), pytest.raises(Interrupted) as err:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            time.sleep(0.01)
    assert err.value.signum == signal.SIGTERM
    check_interrupted()  # cleared once the block is left


def test_39b_an_interrupted_check_removes_its_temporary_records_folder(tmp_path, monkeypatch):
    import tempfile

    import pcfrl_bench.grid as grid
    from pcfrl_bench.grid import Expectation, check_expected

    def interrupted(*args, **kwargs):
        assert glob.glob(str(tmp_path / "pcfrl-check-*"))  # the folder exists while the cell runs
        raise Interrupted(signal.SIGTERM)
    monkeypatch.setattr(grid, "_run_group", interrupted)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(Interrupted):
        check_expected([Expectation("simclr", "digits", "smoke", 0, "accuracy", 0.0, 1.0)], tmp_path / "c", tmp_path)
    assert not glob.glob(str(tmp_path / "pcfrl-check-*"))


# ---------------------------------------------------------------------------------------- 40-42 messages


def test_40_long_bad_key_is_cut():
    result = invoke("config", "-m", "simclr", "-t", "digits", "--set", "x" * 3000 + "=1")
    assert refused(result, "(3,000 characters)") and len(result.output) < 400


def test_41_long_bad_value_and_name_are_cut():
    assert refused(invoke("config", "-m", "simclr", "-t", "digits", "--set", "pretrain.optim.name=" + "y" * 5000),
                   "pretrain.optim.name", "(5,000 characters)")
    long_name = invoke("config", "-m", "m" * 4000, "-t", "digits")
    assert refused(long_name, "(4,000 characters)") and "m" * 100 not in long_name.output


def test_42_quote_never_expands_a_bomb():
    data = yaml_text("a: &a [1, 2]\nb: &b [*a, *a]\n", "s")
    nested = [data["b"]] * 1000
    assert len(quote(nested)) < 200 and len(quote("z" * 10**6)) < 100


def _bounded_keys(cls, prefix: str):
    import dataclasses
    import typing

    from pcfrl_bench.config import field_range
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _bounded_keys(hints[f.name], key)
        elif hints[f.name] in (int, float) or typing.get_origin(hints[f.name]) is tuple:
            yield key, field_range(f)


def test_43_every_number_has_a_documented_range():
    import typing

    from pcfrl_bench.config import RunConfig
    from pcfrl_bench.schema.methods import METHOD_SCHEMAS
    from pcfrl_bench.schema.tasks import TASK_SCHEMAS
    keys = [k for s in ("run", "model", "data", "pretrain", "eval")
            for k in _bounded_keys(typing.get_type_hints(RunConfig)[s], s)]
    keys += [k for kind, schemas in (("method", METHOD_SCHEMAS), ("task", TASK_SCHEMAS)) for name in schemas.names()
             for k in _bounded_keys(schemas.get(name).Params, kind)]
    doc = (ROOT / "docs" / "options.md").read_text(encoding="utf-8").splitlines()
    assert [k for k, rng in keys if rng is None] == []  # every number has a range
    assert [k for k, rng in keys if not k.startswith("run.")  # run.* is the command line's (README: --seed)
            and not any(line.startswith(f"| `{k}` |") and f" {rng} |" in line for line in doc)] == []
