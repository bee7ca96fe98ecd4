"""The README's facts are generated or run: the registry facts and the demo table equal what the registry and the
committed records give, the "First ten minutes" commands run, and the demo preset stays small."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pcfrl_bench.reporting.claims import replace_between_markers
from pcfrl_bench.reporting.facts import README_END, README_START, registry_facts_markdown
from pcfrl_bench.reporting import standing
from pcfrl_bench.resolution import resolve
from pcfrl_bench.results import read_record

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMO_RECORD = ROOT / "results" / "reference" / "synth-fer" / "pcfrl" / "demo-seed0.json"


def section(start: str, end: str) -> str:
    text = README.read_text()
    return text.split(start, 1)[1].split(end, 1)[0].lstrip("\n")


def test_registry_facts_are_the_registrys():
    assert section(README_START, README_END) == registry_facts_markdown(), "run `make readme`"
    text = README.read_text()
    assert replace_between_markers(text, registry_facts_markdown(), README_START, README_END) == text


def test_demo_table_is_generated_from_the_committed_records(monkeypatch):
    monkeypatch.chdir(ROOT)  # the table names its reference folder as `make demo-reference` gives it
    expected = standing.standing_text(read_record(DEMO_RECORD), Path("results/reference"))
    assert expected is not None, "no demo reference records: run `make demo-reference`"
    assert section(standing.README_START, standing.README_END) == expected, "run `make demo-reference`"
    for bound in ("trivial baseline", "raw pixels (floor)", "random-init trunk (floor)", "supervised (ceiling)",
                  "pcfrl, reference runs", "paper: pcfrl on rafdb (Table 1)"):
        assert bound in expected, bound
    assert re.search(r"\| supervised \(ceiling\) \| [\d.]+ \| ± [\d.]+ \(3 seeds\) \|", expected)


def test_the_demo_preset_stays_a_few_cpu_minutes():
    """Every budget key of the demo is pinned by the synthetic tasks' `demo` preset: a bigger `quick` (the reference
    budget) must not make `make demo` slower. Measured: 8 x 800 clips at 32 px, 54 CPU-s of PCFRL steps."""
    cfg = resolve("pcfrl", "synth-fer", "demo").config
    w = cfg.data.synthetic
    pretrain_pixels = cfg.pretrain.epochs * w.identities * w.clips_per_identity * cfg.data.image_size ** 2
    assert pretrain_pixels <= 8 * 800 * 32 ** 2
    assert (cfg.task.n_train + cfg.task.n_test) * cfg.eval.image_size ** 2 <= 7000 * 32 ** 2
    assert cfg.model.width <= 0.25 and cfg.eval.probe.epochs <= 100


def test_first_ten_minutes_commands_run(tmp_path):
    """Every command of the block after `make demo` (which CI runs: .ci/clean-tree), in a fresh folder."""
    block = section("<!-- first-ten-minutes:start -->", "<!-- first-ten-minutes:end -->")
    script = block.split("```bash\n", 1)[1].split("```", 1)[0]
    assert "pcfrl-bench eval" in script and "--checkpoint" in script and "synth export" in script
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", COLUMNS="80")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    for line in ("no problems found", "kind: resnet", "architecture: timm:resnet18 (detected)",
                 "input normalisation: ImageNet mean and std (detected)", "Result records in results/runs"):
        assert line in out, line
    assert re.search(r"tensors loaded: (\d+)/\1 of the trunk", out)
    assert max(len(line) for line in done.stdout.splitlines() if "│" in line) <= 80  # tables fit the terminal
