"""check_dataset reports counts and problems without raising for data problems."""

from __future__ import annotations

import pytest

import fixtures_real as fx
from pcfrl_bench.data.readers import check_dataset
from pcfrl_bench.errors import UnknownNameError


def test_check_counts_on_good_fixtures(tmp_path):
    fx.write_rafdb(tmp_path / "raf", per_class=2)
    rep = check_dataset("rafdb", tmp_path / "raf")
    assert rep["problems"] == []
    assert rep["splits"]["train"]["samples"] == 14
    assert rep["splits"]["test"]["classes"] == {k: 2 for k in range(7)}

    fx.write_cplfw(tmp_path / "cplfw")
    rep = check_dataset("cplfw", tmp_path / "cplfw")
    assert rep["problems"] == []
    assert (rep["splits"]["test"]["pairs"], rep["splits"]["test"]["same"], rep["splits"]["test"]["folds"]) == (20, 10, 10)

    fx.write_disfa(tmp_path / "disfa", subjects=(1, 5), n_frames=3)
    rep = check_dataset("disfa", tmp_path / "disfa")
    assert rep["splits"]["all"]["subjects"] == 2 and rep["splits"]["all"]["samples"] == 6

    fx.write_headpose(tmp_path / "hp")
    rep = check_dataset("headpose", tmp_path / "hp")
    assert rep["splits"]["test"]["samples"] == 2 and rep["splits"]["test"]["filtered_out"] == 1


def test_check_reports_problems_instead_of_raising(tmp_path):
    rep = check_dataset("lfw", tmp_path / "missing")
    assert rep["splits"] == {} and "missing" in rep["problems"][0]

    fx.write_rafdb(tmp_path / "raf")
    (tmp_path / "raf/basic/Image/aligned/train_00002_aligned.jpg").unlink()
    rep = check_dataset("rafdb", tmp_path / "raf")
    assert rep["splits"]["train"]["missing_files"] == 1
    assert any("train_00002_aligned.jpg" in p for p in rep["problems"])

    fx.write_disfa(tmp_path / "disfa", subjects=(1,), n_frames=3)
    (tmp_path / "disfa/frames/SN001/1.jpg").unlink()
    rep = check_dataset("disfa", tmp_path / "disfa")
    assert rep["splits"]["all"]["samples"] == 2 and any("no image" in p for p in rep["problems"])

    f = fx.write_cplfw(tmp_path / "cp")["pairs_file"]
    f.write_text(f.read_text().replace("Per_3_2.jpg 1", "Per_3_2.jpg x"))
    rep = check_dataset("cplfw", tmp_path / "cp")
    assert any("pairs_CPLFW.txt:8" in p for p in rep["problems"])

    with pytest.raises(UnknownNameError):
        check_dataset("nope", tmp_path)


def test_check_decodes_a_sample_of_images(tmp_path):
    fx.write_rafdb(tmp_path)
    (tmp_path / "basic/Image/aligned/test_0001_aligned.jpg").write_bytes(b"garbage")
    rep = check_dataset("rafdb", tmp_path)
    assert rep["splits"]["test"]["samples"] == 7
    assert any("cannot decode" in p and "test_0001_aligned.jpg" in p for p in rep["problems"])
    assert check_dataset("rafdb", tmp_path, decode_sample=0)["problems"] == []
