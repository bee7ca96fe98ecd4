"""The paper's claims as statistical comparisons over stored records: effect, 95 % CI, verdict.

Each comparison is "method beats baseline" on one task and metric, oriented so that a positive effect is the
paper's direction (lower MAE is better, so its sign is flipped). Seeds pair the two sides (same seed = same
evaluation data and the same initial trunk); the effect is the mean paired difference and its 95 % confidence
interval is Student's t over the n paired differences. Verdict rule (docs/claims.md):

- **inconclusive** when fewer than 2 seeds pair up, or the task's instrument is not valid (its supervised ceiling
  misses the learnability requirement or is not measured, :mod:`.instrument`);
- **holds** when the whole interval is above 0 (above the stated margin for C5);
- **does not hold** when the whole interval is below 0 (for C5: above the cost margin);
- otherwise **inconclusive**.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ..inputs import read_json
from ..io import atomic_write_text
from ..results import ANALYSIS_DIR, ANALYSIS_KIND, COMPLEXITY_TASK, ResultRecord
from .escape import markdown_text
from .instrument import REQUIREMENTS, bounds_frame, bounds_markdown, instrument_reading, task_bounds
from .tables import RegistryHash, aggregate_records, load_record_folders, records_frame

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
SYNTH_TASKS = {"synth-fer": ("accuracy", True), "synth-posecls": ("accuracy", True), "synth-hpe": ("mae", False),
               "synth-fr": ("accuracy", True), "synth-au": ("f1", True)}
ANALYSIS_METRIC = "analysis:"
BEST_CANDIDATE_TRUE = "share_best_candidate_true"  # top-1 precision of a scoring in an analysis JSON
COST_MARGIN = 0.10  # C5: calibration may add at most 10 % to the time of a PCL training step (paper: 2.7 %)


@dataclass(frozen=True)
class Comparison:
    """``method`` vs ``baseline`` on ``task``: a metric of the records, the last epoch of a pretraining-log key
    (``log:<key>``), or ``analysis:<branch>``: in the checkpoint analyses of ``method`` (``pcfrl-bench analyze``),
    the share of anchors whose best-scored candidate is a true false negative, scored by NPA (the method's side)
    and by the scoring named ``baseline`` (same checkpoint, same batch)."""

    claim: str
    method: str
    baseline: str
    task: str
    metric: str
    higher_is_better: bool = True


@dataclass(frozen=True)
class Claim:
    key: str
    statement: str
    source: str  # where the paper makes it
    comparisons: tuple[Comparison, ...]


def _task_comparisons(claim: str, pairs: Sequence[tuple[str, str]], tasks: Sequence[str]) -> tuple[Comparison, ...]:
    return tuple(Comparison(claim, m, b, t, *SYNTH_TASKS[t]) for m, b in pairs for t in tasks)


CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "Pose-aware pretraining (PCL, PCFRL) gives better pose features and cross-pose face recognition "
                "than SimCLR", "Tables 2 and 4, Sec. 4.3",
          _task_comparisons("C1", [("pcl", "simclr"), ("pcfrl", "simclr")], ["synth-posecls", "synth-hpe", "synth-fr"])),
    Claim("C2", "NPA finds true false negatives with higher precision than cosine similarity",
          "Sec. 3.3, Fig. 9, Table 5",
          tuple(Comparison("C2", "pcfrl", "cosine", "synth-fer", f"{ANALYSIS_METRIC}{branch}")
                for branch in ("face", "pose"))),
    Claim("C3", "A threshold on the NPA score beats calibrating a fixed top-K", "Table 7",
          _task_comparisons("C3", [("pcfrl", "pcfrl-top1"), ("pcfrl", "pcfrl-top2"), ("pcfrl", "pcfrl-top5")],
                            ["synth-fer"])),
    Claim("C4", "Calibrating false negatives into positives beats eliminating them", "Table 6",
          _task_comparisons("C4", [("pcfrl", "pcl-npa-elim")], ["synth-fer", "synth-fr", "synth-au"])),
    Claim("C5", f"The calibration costs little: PCFRL's training step takes at most {COST_MARGIN:.0%} longer than PCL's",
          "Table 10 (paper: 0.0562 vs 0.0547 s, +2.7 %)",
          (Comparison("C5", "pcfrl", "pcl", "complexity", "time_s", higher_is_better=False),)),
    Claim("C6", "NPA calibration also helps SimCLR", "Table 9 (and Table 5)",
          _task_comparisons("C6", [("simclr-calib-npa", "simclr")], ["synth-fer", "synth-fr"])
          + (Comparison("C6", "simclr-calib-npa", "simclr", "digits", "accuracy"),)),
)


@dataclass(frozen=True)
class Outcome:
    comparison: Comparison
    n: int
    effect: float  # mean paired difference, positive = the paper's direction (C5: time ratio pcfrl / pcl)
    low: float
    high: float
    method_mean: float
    baseline_mean: float
    verdict: str
    reason: str


def confidence_interval(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student's t interval of the mean of ``diffs`` (NaN bounds for fewer than 2 values;
    a zero-width interval when every difference is the same)."""
    d = np.asarray(diffs, dtype=float)
    if len(d) == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half


def verdict(low: float, high: float, n: int, zero: float = 0.0) -> str:
    """The rule of the module docstring on an interval oriented so that above ``zero`` is the paper's direction."""
    if n < 2 or math.isnan(low):
        return INCONCLUSIVE
    if low > zero:
        return HOLDS
    if high < zero:
        return FAILS
    return INCONCLUSIVE


def _value(record: ResultRecord, metric: str) -> float | None:
    if metric.startswith("log:"):
        log = record.pretrain_log
        value = log[-1].get(metric[4:]) if log else None
    else:
        value = record.metrics.get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _by_seed(records: Sequence[ResultRecord], method: str, task: str, preset: str, metric: str) -> dict[int, float]:
    out = {}
    for rec in sorted(records, key=lambda r: r.created or ""):  # the newest record of a seed wins
        if rec.method == method and rec.task == task and rec.preset == preset:
            value = _value(rec, metric)
            if value is not None:
                out[rec.seed] = value
    return out


def _cost_outcome(c: Comparison, records: Sequence[ResultRecord], preset: str) -> Outcome:
    """C5: ratio of step times measured in turns (``pcfrl-bench complexity``), paired by repeat."""
    def times(method: str) -> list[float]:
        found = [r for r in records if r.method == method and r.task == c.task and r.preset == preset]
        return list(found[-1].step_times_s or []) if found else []
    method, base = times(c.method), times(c.baseline)
    k = min(len(method), len(base))
    ratios = [m / b for m, b in zip(method[:k], base[:k])]
    mean, low, high = confidence_interval(ratios)
    limit = 1 + COST_MARGIN
    if k < 2 or math.isnan(low):
        v = INCONCLUSIVE
    else:
        v = HOLDS if high < limit else FAILS if low > limit else INCONCLUSIVE
    return Outcome(c, k, mean, low, high, float(np.median(method)) if method else math.nan,
                   float(np.median(base)) if base else math.nan, v,
                   f"ratio of paired step times; holds if the CI is below {limit:.2f}")


def load_analyses(roots: Path | Sequence[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """The checkpoint analyses (``<root>/analysis/*.json`` of ``pcfrl-bench analyze``) and the problems met."""
    analyses, problems = [], []
    for root in [roots] if isinstance(roots, (str, Path)) else roots:
        for path in sorted((Path(root) / ANALYSIS_DIR).glob("*.json")):
            try:
                data = read_json(path)
            except (OSError, ValueError) as exc:
                problems.append(f"{path}: unreadable analysis ({exc})")
                continue
            if isinstance(data, dict) and data.get("kind") == ANALYSIS_KIND:
                analyses.append(data)
    return analyses, problems


def _analysis_by_seed(analyses: Sequence[dict[str, Any]], c: Comparison, preset: str
                      ) -> tuple[dict[int, float], dict[int, float]]:
    """Both sides of an ``analysis:<branch>`` comparison per seed: NPA's and ``c.baseline``'s top-1 precision in
    the analyses of ``c.method`` on ``c.task`` (registry configs: analyses run with overrides are left out)."""
    branch = c.metric[len(ANALYSIS_METRIC):]
    npa, other = {}, {}
    for a in analyses:
        if (a.get("method"), a.get("task"), a.get("preset")) != (c.method, c.task, preset) or a.get("overrides"):
            continue
        scorings = a.get("branches", {}).get(branch, {})
        m = scorings.get("npa", {}).get(BEST_CANDIDATE_TRUE)
        b = scorings.get(c.baseline, {}).get(BEST_CANDIDATE_TRUE)
        if isinstance(m, (int, float)) and isinstance(b, (int, float)):
            npa[int(a["seed"])], other[int(a["seed"])] = float(m), float(b)
    return npa, other


def evaluate_claims(records: Sequence[ResultRecord], agg_for_bounds: Any, preset: str,
                    claims: Sequence[Claim] = CLAIMS, analyses: Sequence[dict[str, Any]] = ()) -> list[Outcome]:
    """Every comparison of ``claims`` on ``records`` (registry configs only: filter before calling) and the
    checkpoint ``analyses`` (:func:`load_analyses`); ``agg_for_bounds`` is the aggregate frame the instrument
    check reads (:func:`..tables.aggregate_records`)."""
    outcomes = []
    for claim in claims:
        for c in claim.comparisons:
            if c.task == "complexity":
                outcomes.append(_cost_outcome(c, records, preset))
                continue
            from_analysis = c.metric.startswith(ANALYSIS_METRIC)
            if from_analysis:
                m, b = _analysis_by_seed(analyses, c, preset)
            else:
                m = _by_seed(records, c.method, c.task, preset, c.metric)
                b = _by_seed(records, c.baseline, c.task, preset, c.metric)
            seeds = sorted(set(m) & set(b))
            sign = 1.0 if c.higher_is_better else -1.0
            mean, low, high = confidence_interval([sign * (m[s] - b[s]) for s in seeds])
            reason = f"paired over seeds {','.join(map(str, seeds)) or '-'}"
            v = verdict(low, high, len(seeds))
            if c.task in REQUIREMENTS and not from_analysis:  # an analysis scores pretraining pairs, not a probe
                metric, higher = SYNTH_TASKS[c.task]
                learnable = task_bounds(agg_for_bounds, c.task, metric, higher).learnable
                if learnable is not True:
                    v, reason = INCONCLUSIVE, reason + ("; instrument not valid on this task" if learnable is False
                                                        else "; instrument bounds not measured")
            outcomes.append(Outcome(c, len(seeds), mean, low, high,
                                    float(np.mean([m[s] for s in seeds])) if seeds else math.nan,
                                    float(np.mean([b[s] for s in seeds])) if seeds else math.nan, v, reason))
    return outcomes


def _num(x: float, decimals: int = 2) -> str:
    return "–" if math.isnan(x) else f"{x:+.{decimals}f}"


def claims_markdown(outcomes: Sequence[Outcome], preset: str, claims: Sequence[Claim] = CLAIMS) -> str:
    """``CLAIMS.md``: one section per claim, one row per comparison, then a one-line summary per claim."""
    lines = ["# The paper's claims, tested", "",
             f"Generated by `pcfrl-bench claims` from the stored records (preset `{preset}`, registry configs only, "
             "final probe epoch); do not edit by hand. Effect = mean paired difference over seeds, oriented so that "
             "positive is the paper's direction (for MAE: baseline − method); 95 % CI = Student's t. Verdict rule: "
             "holds if the CI is above 0, does not hold if below 0, otherwise (or with < 2 seeds, or on a task whose "
             "instrument is not valid) inconclusive. See docs/claims.md.", ""]
    for claim in claims:
        rows = [o for o in outcomes if o.comparison.claim == claim.key]
        verdicts = sorted({o.verdict for o in rows})
        lines += [f"## {claim.key}: {claim.statement}", "", f"Paper: {claim.source}. "
                  f"Verdicts: {', '.join(f'{v} ×{sum(o.verdict == v for o in rows)}' for v in verdicts)}.", "",
                  "| method | baseline | task | metric | n | method mean | baseline mean | effect | 95 % CI | verdict |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for o in rows:
            c = o.comparison
            d = 4 if c.claim in ("C2", "C5") else 2
            effect = f"{o.effect:.{d}f}" if c.claim == "C5" and not math.isnan(o.effect) else _num(o.effect, d)
            ci = "–" if math.isnan(o.low) else f"[{o.low:.{d}f}, {o.high:.{d}f}]"
            lines.append(f"| {c.method} | {c.baseline} | {c.task} | {c.metric} | {o.n} | "
                         f"{'–' if math.isnan(o.method_mean) else f'{o.method_mean:.{d}f}'} | "
                         f"{'–' if math.isnan(o.baseline_mean) else f'{o.baseline_mean:.{d}f}'} | {effect} | {ci} | "
                         f"**{o.verdict}** ({o.reason}) |")
        lines.append("")
    return "\n".join(lines)


def record_tasks(records: Sequence[ResultRecord]) -> dict[str, tuple[str, bool]]:
    """Every evaluated task of ``records`` with its primary metric and direction (not Table 10's ``complexity``)."""
    tasks = {}
    for rec in records:
        if rec.task != COMPLEXITY_TASK:
            tasks.setdefault(rec.task, (rec.metric, rec.higher_is_better))
    return dict(sorted(tasks.items()))


CORE_METHODS = ("simclr", "moco", "pcl", "pcfrl")
README_START, README_END = "<!-- claims:start -->", "<!-- claims:end -->"


def claims_summary_markdown(outcomes: Sequence[Outcome], bounds_md: str, reading: Sequence[str] = (),
                            claims: Sequence[Claim] = CLAIMS) -> str:
    """The README's "what the results say" block: the floor/ceiling table, its reading (``instrument_reading``)
    and one line per claim."""
    lines = ["Floors, ceiling and methods per task (mean ± std over seeds; [position] = (method − best floor) / "
             "(ceiling − best floor)):", "", bounds_md, "What the table says:", "", *[f"- {s}" for s in reading],
             "", "What the claims come to (details: results/CLAIMS.md):", ""]
    for claim in claims:
        rows = [o for o in outcomes if o.comparison.claim == claim.key]
        counts = ", ".join(f"{v} ×{sum(o.verdict == v for o in rows)}" for v in (HOLDS, FAILS, INCONCLUSIVE)
                           if any(o.verdict == v for o in rows))
        lines.append(f"- **{claim.key}** {claim.statement}: {counts or 'no comparison'}.")
    return "\n".join(lines) + "\n"


def replace_between_markers(text: str, block: str, start: str = README_START, end: str = README_END) -> str:
    """``text`` with everything between the ``start`` and ``end`` marker lines replaced by ``block``."""
    if start not in text or end not in text or text.index(start) > text.index(end):
        raise ValueError(f"the file has no {start} ... {end} section to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}{end}{tail}"


def render_claims(roots: Path | Sequence[Path], out: Path, preset: str, registry_hash: RegistryHash | None,
                  readme: Path | None = None) -> tuple[list[Outcome], str, list[Path]]:
    """Evaluate every claim on the records below ``roots`` (registry configs only unless ``registry_hash`` is
    None), write ``out`` (CLAIMS.md) and, with ``readme``, its claims section. Returns (outcomes, the
    floor/ceiling Markdown table, written paths)."""
    records, problems = load_record_folders(roots, registry_hash)
    analyses, unreadable = load_analyses(roots)
    problems += unreadable
    agg = aggregate_records(records_frame(records), preset)
    frame = bounds_frame(agg, record_tasks([r for r in records if r.preset == preset]), CORE_METHODS)
    bounds_md = bounds_markdown(frame, CORE_METHODS)
    outcomes = evaluate_claims(records, agg, preset, analyses=analyses)
    text = claims_markdown(outcomes, preset) + "\n## Floors and ceilings\n\n" + bounds_md
    if problems:
        text += "\nRecords skipped:\n\n" + "".join(f"- {markdown_text(p)}\n" for p in problems)
    written = [atomic_write_text(Path(out), text)]
    if readme is not None:
        block = claims_summary_markdown(outcomes, bounds_md, instrument_reading(frame, CORE_METHODS))
        written.append(atomic_write_text(Path(readme), replace_between_markers(Path(readme).read_text(), block)))
    return outcomes, bounds_md, written
