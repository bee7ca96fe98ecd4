"""The committed reference records keep a valid instrument: no training here, only the stored records."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcfrl_bench.reporting.claims import SYNTH_TASKS
from pcfrl_bench.reporting.instrument import REQUIREMENTS, task_bounds
from pcfrl_bench.reporting.tables import aggregate_records, load_record_folders, records_frame
from pcfrl_bench.resolution import registry_result_hash

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"


@pytest.fixture(scope="module")
def reference_aggregate():
    records, _ = load_record_folders(REFERENCE, registry_result_hash)
    return aggregate_records(records_frame(records), "quick")


@pytest.mark.parametrize("task", sorted(REQUIREMENTS))
def test_reference_ceiling_clears_its_floor(reference_aggregate, task):
    metric, higher = SYNTH_TASKS[task]
    bounds = task_bounds(reference_aggregate, task, metric, higher)
    assert bounds.seeds["supervised"] >= 3 and bounds.seeds["trivial"] >= 3, f"{task}: bounds not stored"
    assert bounds.learnable, (f"{task}: supervised {bounds.ceiling:.2f} vs trivial {bounds.values['trivial']:.2f} "
                              f"misses '{bounds.requirement.text()}'")
