"""The paper's figures (PCFRL Fig. 5-7, 9, 10) and the calibration precision/recall figures, as PNGs.

Inputs: result records (their ``pretrain_log`` and configs) and the analysis files of
:mod:`pcfrl_bench.analysis` (``<method>-<task>-<preset>-seed<k>.{npz,json}``). A figure whose inputs are
missing is skipped; ``README.md`` in the output folder lists every figure made (one-line caption) and every
figure skipped (with the reason). Everything but :func:`render_all_figures` and the ``plot_*`` functions is pure.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from ..inputs import read_json  # noqa: E402
from ..io import atomic_write_text  # noqa: E402
from ..results import CURVES_DIR, ResultRecord, load_records  # noqa: E402
from .curves import Panel, curve_panels, curves_caption, load_curves  # noqa: E402
from .escape import markdown_text  # noqa: E402

CAL_METRICS = ("precision", "recall", "rate")
BRANCH_ORDER = ("pose", "face", "view")
# swept parameter -> the config keys that carry it (a record may hold any of them); x = the first one present
SWEEPS: dict[str, tuple[str, ...]] = {
    "alpha": ("method.calib_face.alpha", "method.calib_pose.alpha", "method.calibration.alpha"),  # Fig. 6a
    "beta_pose": ("method.calib_pose.beta",),  # Fig. 6b
    "beta_face": ("method.calib_face.beta", "method.calibration.beta"),  # Fig. 6b
    "T": ("method.calib_face.threshold", "method.calib_pose.threshold", "method.calibration.threshold"),  # Fig. 7c
}
IGNORED_KEYS = ("run.seed", "run.device")
ANALYSIS_NAME = re.compile(r"^(?P<method>.+?)-(?P<rest>synth-.+-(?:smoke|quick|paper)-seed\d+)$")
TSNE_POINTS = 300
YAW_BINS = (-90.0, -45.0, -15.0, 15.0, 45.0, 90.0)


@dataclass
class FigureIndex:
    """Figures made (file name -> caption) and figures skipped (name -> reason)."""

    made: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = ["# Figures", "", "Made by `render_all_figures` (pcfrl_bench/reporting/figures.py) from stored result",
                 "records and analysis files (pcfrl_bench/analysis.py).", ""]
        lines += [f"- `{name}`: {caption}" for name, caption in sorted(self.made.items())] or ["- (none)"]
        lines += ["", "## Skipped", ""]
        lines += [f"- {name}: {markdown_text(reason)}" for name, reason in sorted(self.skipped.items())] or ["- (none)"]
        return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- pure data preparation


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> dotted keys (lists become tuples so values are hashable)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def record_metric(rec: ResultRecord) -> float | None:
    """The record's headline metric at the final probe epoch, or None (also when not finite)."""
    v = rec.headline()
    return v if v is not None and math.isfinite(v) else None


PRETRAIN_PREFIXES = ("method.", "model.", "data.", "pretrain.")  # config sections that define a pretraining


@dataclass(frozen=True)
class SeriesPoint:
    """One epoch of a calibration series: mean and sample std (0 for one seed) over seeds."""

    epoch: int
    mean: float
    std: float
    n: int


@dataclass
class CalibrationSeries:
    """Per-epoch calibration metrics of one pretraining config (all seeds), keyed ``<branch>_<metric>``."""

    method: str
    label: str
    swept: bool  # the method also appears with other configs (a sweep point or the sweep's default)
    base: bool  # no key differs from the most common config of the method (an unswept method, a sweep's default)
    metrics: dict[str, list[SeriesPoint]]


def _log_values(log: Sequence[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """``<branch>_<metric>`` -> {epoch: value} for the calibration entries of one pretraining log."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for i, row in enumerate(log):
        epoch = int(row.get("epoch", i + 1))
        for k, v in row.items():
            m = re.fullmatch(r"(\w+?)_cal_(precision|recall|rate)", k)
            if m and isinstance(v, (int, float)) and math.isfinite(v):
                out[f"{m.group(1)}_{m.group(2)}"][epoch] = float(v)
    return out


def config_labels(configs: Sequence[dict[str, Any]]) -> list[str]:
    """``key=value`` text of the keys in which each flat config differs from the most common value among
    ``configs`` ('' for a config that differs in nothing, e.g. the default point of a sweep); the ``method.``
    prefix is dropped and ``calib_face.x`` / ``calib_pose.x`` with equal values merge into ``calib.x``."""
    keys = sorted({k for c in configs for k in c if len({repr(o.get(k)) for o in configs}) > 1})
    common = {k: Counter(repr(c.get(k)) for c in configs).most_common(1)[0][0] for k in keys}
    out = []
    for c in configs:
        parts: dict[str, str] = {}
        differs = [k for k in keys if repr(c.get(k)) != common[k]]
        for k in differs:
            short = k.removeprefix("method.")
            twin = re.sub(r"calib_(face|pose)", lambda m: "calib_pose" if m.group(1) == "face" else "calib_face", k)
            merge = twin != k and twin in differs and repr(c.get(twin)) == repr(c.get(k))
            name = re.sub(r"^calib_(face|pose)\.", "calib.", short) if merge else short
            parts[name] = f"{name}={c.get(k)}"
        out.append(", ".join(parts.values()))
    return out


def calibration_series(records: Iterable[ResultRecord]) -> list[CalibrationSeries]:
    """Calibration precision / recall / rate per epoch from records' ``pretrain_log``, averaged over seeds.

    Records are grouped by method and pretraining config without the seed (records of several tasks that
    share a pretraining count once per seed). A method with several configs (a sweep) gets the keys that
    differ from its most common config in its label and ``swept=True``; ``base`` marks the configs without
    such keys.
    """
    groups: dict[tuple, dict[int, ResultRecord]] = defaultdict(dict)
    configs: dict[tuple, dict[str, Any]] = {}
    logged = [rec for rec in records if any(k.endswith(("_cal_precision", "_cal_rate", "_cal_recall"))
                                            for row in rec.pretrain_log or [] for k in row)]
    flats = [{k: v for k, v in flatten(rec.config or {}).items() if k.startswith(PRETRAIN_PREFIXES)} for rec in logged]
    shared = _shared_keys([rec.method for rec in logged], flats)
    for rec, flat in zip(logged, flats):
        flat = {k: v for k, v in flat.items() if k in shared[rec.method]}
        key = (rec.method, tuple(sorted((k, repr(v)) for k, v in flat.items())))
        groups[key].setdefault(rec.seed, rec)
        configs[key] = flat
    by_method: dict[str, list[tuple]] = defaultdict(list)
    for key in sorted(groups, key=lambda k: (k[0], k[1])):
        by_method[key[0]].append(key)
    out = []
    for method, keys in sorted(by_method.items()):
        suffixes = config_labels([configs[k] for k in keys]) if len(keys) > 1 else [""]
        for key, suffix in sorted(zip(keys, suffixes), key=lambda ks: ks[1]):
            per_seed = [_log_values(rec.pretrain_log) for _, rec in sorted(groups[key].items())]
            metrics: dict[str, list[SeriesPoint]] = {}
            for name in sorted({n for values in per_seed for n in values}):
                epochs = sorted({e for values in per_seed for e in values.get(name, {})})
                points = []
                for e in epochs:
                    v = np.array([values[name][e] for values in per_seed if e in values.get(name, {})])
                    points.append(SeriesPoint(e, float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)))
                metrics[name] = points
            n_seeds = len(per_seed)
            label = method + (f" ({suffix})" if suffix else "") + (f" [{n_seeds} seeds]" if n_seeds > 1 else "")
            out.append(CalibrationSeries(method, label, len(keys) > 1, not suffix, metrics))
    return out


@dataclass
class Sweep:
    """Metric vs one swept parameter for records that differ only in that parameter (and the seed)."""

    parameter: str
    task: str
    method: str
    preset: str
    metric: str
    x: list[float]
    mean: list[float]
    std: list[float]
    n: list[int]

    @property
    def label(self) -> str:
        return f"{self.method} ({self.preset})"


def _shared_keys(groups: Sequence[Any], flats: Sequence[dict[str, Any]]) -> dict[Any, set[str]]:
    """Per group, the config keys every record of it stores: a key that only newer records have is an option
    added since (stored at its default), not a swept parameter, so configs are compared on shared keys only."""
    shared: dict[Any, set[str]] = {}
    for group, flat in zip(groups, flats):
        shared[group] = shared[group] & set(flat) if group in shared else set(flat)
    return shared


def find_sweeps(records: Sequence[ResultRecord], parameter: str) -> list[Sweep]:
    """Groups of records whose configs differ only in ``parameter``'s keys (and the seed), with >= 2 values."""
    keys = SWEEPS[parameter]
    groups: dict[tuple, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    info: dict[tuple, tuple[str, str, str, str]] = {}
    flats = [flatten(rec.config or {}) for rec in records]
    shared = _shared_keys([(rec.task, rec.method, rec.preset) for rec in records], flats)
    for rec, flat in zip(records, flats):
        value = record_metric(rec)
        present = [k for k in keys if k in flat]
        if value is None or not present or not isinstance(flat[present[0]], (int, float)):
            continue
        rest = tuple(sorted((k, repr(v)) for k, v in flat.items()
                            if k not in keys and k not in IGNORED_KEYS and k in shared[(rec.task, rec.method, rec.preset)]))
        group = (rec.task, rec.method, rec.preset, rec.metric, rest)
        groups[group][float(flat[present[0]])].append(value)
        info[group] = (rec.task, rec.method, rec.preset, rec.metric)
    out = []
    for group, by_x in groups.items():
        if len(by_x) < 2:
            continue
        xs = sorted(by_x)
        vals = [np.asarray(by_x[x]) for x in xs]
        task, method, preset, metric = info[group]
        out.append(Sweep(parameter, task, method, preset, metric, xs, [float(v.mean()) for v in vals],
                         [float(v.std(ddof=1)) if len(v) > 1 else 0.0 for v in vals], [len(v) for v in vals]))
    return sorted(out, key=lambda s: (s.task, s.method, s.preset))


def analysis_files(analysis_dir: Path) -> dict[str, tuple[Path, Path | None]]:
    """stem -> (npz, json or None) of the analysis files in ``analysis_dir``."""
    if not analysis_dir or not Path(analysis_dir).is_dir():
        return {}
    out = {}
    for npz in sorted(Path(analysis_dir).glob("*.npz")):
        js = npz.with_suffix(".json")
        out[npz.stem] = (npz, js if js.is_file() else None)
    return out


def pcl_pcfrl_pairs(stems: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``<task>-<preset>-seed<k>`` -> (pcl stem, pcfrl stem) where both analyses exist."""
    by_rest: dict[str, dict[str, str]] = defaultdict(dict)
    for stem in stems:
        m = ANALYSIS_NAME.match(stem)
        if m:
            by_rest[m.group("rest")][m.group("method")] = stem
    return {rest: (d["pcl"], d["pcfrl"]) for rest, d in sorted(by_rest.items()) if "pcl" in d and "pcfrl" in d}


def yaw_bins(yaw: np.ndarray) -> np.ndarray:
    """Yaw (degrees) -> bin index over YAW_BINS (0 = most negative)."""
    return np.clip(np.digitize(yaw, YAW_BINS[1:-1]), 0, len(YAW_BINS) - 2)


def tsne_embed(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (scikit-learn Barnes-Hut, fixed seed, PCA init, 300 iterations) of at most TSNE_POINTS rows.

    Runs with one OpenMP thread: next to torch's thread pool the multi-threaded gradient spins on a loaded
    CPU (~1 s instead of 5-40 s for 300 points).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=np.float64)[:TSNE_POINTS]
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    with threadpool_limits(limits=1):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                    max_iter=300).fit_transform(x)


# ---------------------------------------------------------------------------------------------- plotting


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_calibration_per_epoch(series: Sequence[CalibrationSeries], path: Path) -> Path:
    """Rows: precision / recall / rate; columns: branches; one line per config (mean over seeds, ± std band)."""
    branches = [b for b in BRANCH_ORDER if any(k.startswith(b + "_") for s in series for k in s.metrics)]
    fig, axes = plt.subplots(len(CAL_METRICS), len(branches), figsize=(4.2 * len(branches), 8.5), squeeze=False)
    cmap = plt.get_cmap("tab20" if len(series) > 10 else "tab10")
    colours = {s.label: cmap(i % cmap.N) for i, s in enumerate(series)}  # one colour per config in every panel
    for c, branch in enumerate(branches):
        for r, metric in enumerate(CAL_METRICS):
            ax = axes[r][c]
            drawn = False
            for s in series:
                pts = s.metrics.get(f"{branch}_{metric}")
                if pts:
                    x = [p.epoch for p in pts]
                    mean, std = np.array([p.mean for p in pts]), np.array([p.std for p in pts])
                    ax.plot(x, mean, marker="o", ms=3, color=colours[s.label])
                    if std.any():
                        ax.fill_between(x, mean - std, mean + std, color=colours[s.label], alpha=0.15, lw=0)
                    drawn = True
            if not drawn:
                ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="0.5")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"{branch}: calibrated-pair {metric}", fontsize=9)
            ax.set_xlabel("epoch")
            if metric != "rate":
                ax.set_ylim(-0.02, 1.02)
            elif drawn:
                ax.set_ylim(bottom=0, top=max(1.05 * ax.get_ylim()[1], 0.1))
            ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colours[s.label], marker="o", ms=3) for s in series]
    labels = [s.label for s in series]
    ncol = min(3, max(1, len(labels)))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    rows = -(-len(labels) // ncol)
    fig.tight_layout(rect=(0, min(0.04 + 0.022 * rows, 0.4), 1, 1))
    return _save(fig, path)


def plot_sweep(sweeps: Sequence[Sweep], parameter: str, path: Path) -> Path:
    """One panel per task: metric (mean ± std over seeds) vs the swept parameter, one line per method."""
    tasks = sorted({s.task for s in sweeps})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for s in (s for s in sweeps if s.task == task):
            ax.errorbar(s.x, s.mean, yerr=s.std, marker="o", ms=4, capsize=3, label=s.label)
            ax.set_ylabel(s.metric)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel(parameter)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _hist(ax: plt.Axes, values: Sequence[np.ndarray], labels: Sequence[str], bins: int = 40) -> None:
    vals = [np.asarray(v, dtype=np.float64) for v in values if len(v)]
    if not vals:
        return
    lo, hi = min(float(v.min()) for v in vals), max(float(v.max()) for v in vals)
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
    for v, label in zip(values, labels):
        if len(v):
            ax.hist(v, bins=edges, alpha=0.55, density=True, label=f"{label} (n={len(v)})")


def plot_pa_distributions(data: dict[str, np.ndarray], summary: dict[str, Any] | None, title: str,
                          path: Path) -> Path:
    """Fig. 5/7a-b/9 style: PA of candidate pairs and each anchor's max PA, pose vs face; max PA by correctness."""
    branches = [b for b in BRANCH_ORDER if f"{b}_npa_scores" in data]
    info = (summary or {}).get("branches", {})
    thresholds = {b: info.get(b, {}).get("thresholds", {}).get("npa") for b in branches}
    cos_t = {b: info.get(b, {}).get("thresholds", {}).get("cosine") for b in branches}
    fig, axes = plt.subplots(1 + len(branches), 2, figsize=(10, 3.2 * (1 + len(branches))), squeeze=False)
    _hist(axes[0][0], [data[f"{b}_npa_scores"] for b in branches], branches)
    axes[0][0].set_title("(a) PA of candidate (negative) pairs", fontsize=9)
    _hist(axes[0][1], [data[f"{b}_npa_max"] for b in branches], branches, bins=30)
    axes[0][1].set_title("(b) maximum PA of each anchor", fontsize=9)
    for r, b in enumerate(branches, start=1):
        mx, ok = data[f"{b}_npa_max"], data[f"{b}_npa_max_true"].astype(bool)
        _hist(axes[r][0], [mx[ok], mx[~ok]], [f"{b}: best candidate true", f"{b}: best candidate false"], bins=30)
        axes[r][0].set_title(f"({chr(98 + 2 * r - 1)}) {b}: maximum PA by ground truth", fontsize=9)
        cmx, cok = data[f"{b}_cosine_max"], data[f"{b}_cosine_max_true"].astype(bool)
        _hist(axes[r][1], [cmx[cok], cmx[~cok]], [f"{b}: true", f"{b}: false"], bins=30)
        axes[r][1].set_title(f"({chr(98 + 2 * r)}) {b}: maximum cosine by ground truth", fontsize=9)
    for ax in (axes[0][1], *(axes[r][0] for r in range(1, 1 + len(branches)))):
        shown = {t for b, t in thresholds.items() if t is not None and (ax is axes[0][1] or b in ax.get_title())}
        for t in sorted(shown):
            ax.axvline(t, ls="--", lw=1, color="k")
            ax.text(t, ax.get_ylim()[1] * 0.95, f" T={t:g}", fontsize=7, va="top")
    for r, b in enumerate(branches, start=1):
        if cos_t[b] is not None:
            axes[r][1].axvline(cos_t[b], ls="--", lw=1, color="k")
            axes[r][1].text(cos_t[b], axes[r][1].get_ylim()[1] * 0.95, f" T={cos_t[b]:g}", fontsize=7, va="top")
    for ax in axes.flat:
        ax.set_xlabel("score")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_tsne(pcl: dict[str, np.ndarray], pcfrl: dict[str, np.ndarray], title: str, path: Path) -> Path:
    """Fig. 10 style: rows PCL / PCFRL; columns F_s (emotion), F_f (emotion), F_f (identity), F_p (yaw bin),
    F_p and F_f together (feature type)."""
    panels = [("features_fs", "labels_emotion", "(a) F_s by emotion"),
              ("features_face", "labels_emotion", "(b) F_f by emotion"),
              ("features_face", "labels_identity", "F_f by identity"),
              ("features_pose", "yaw_bin", "(c) F_p by yaw bin"),
              ("features_joint", "features_joint_kind", "(d) F_p (0) and F_f (1)")]
    fig, axes = plt.subplots(2, len(panels), figsize=(3.3 * len(panels), 6.6), squeeze=False)
    for r, (name, data) in enumerate((("PCL", pcl), ("PCFRL", pcfrl))):
        cache: dict[str, np.ndarray] = {}
        for c, (feat, lab, caption) in enumerate(panels):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{name}: {caption}", fontsize=8)
            if feat not in data:
                ax.text(0.5, 0.5, "not stored", ha="center", transform=ax.transAxes)
                continue
            if feat not in cache:
                cache[feat] = tsne_embed(data[feat])
            xy = cache[feat]
            labels = yaw_bins(data["labels_yaw"]) if lab == "yaw_bin" else np.asarray(data[lab])
            _, codes = np.unique(labels[: len(xy)], return_inverse=True)
            ax.scatter(xy[:, 0], xy[:, 1], c=codes, cmap="tab10" if codes.max() < 10 else "tab20", s=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_calibration_bars(table: Sequence[dict[str, Any]], title: str, path: Path) -> Path:
    """Precision and recall of calibrated pairs: rules on the x axis, NPA vs cosine bars; one row per branch."""
    branches = [b for b in BRANCH_ORDER if any(r["branch"] == b for r in table)]
    rules = list(dict.fromkeys(r["rule"] for r in table))
    scores = list(dict.fromkeys(r["score"] for r in table))
    fig, axes = plt.subplots(len(branches), 2, figsize=(9, 3.0 * len(branches)), squeeze=False)
    width = 0.8 / max(1, len(scores))
    for r, b in enumerate(branches):
        for c, metric in enumerate(("precision", "recall")):
            ax = axes[r][c]
            for i, s in enumerate(scores):
                vals = []
                for rule in rules:
                    row = next((x for x in table if x["branch"] == b and x["score"] == s and x["rule"] == rule), {})
                    v = row.get(metric)
                    vals.append(float(v) if isinstance(v, (int, float)) and math.isfinite(v) else 0.0)
                ax.bar(np.arange(len(rules)) + (i - (len(scores) - 1) / 2) * width, vals, width, label=s)
            ts = {x["score"]: x.get("threshold") for x in table if x["branch"] == b and x["rule"] == "threshold"}
            names = [rule if rule != "threshold" else "threshold\n(T: " + ", ".join(
                f"{k} {v:g}" for k, v in ts.items() if v is not None) + ")" for rule in rules]
            ax.set_xticks(np.arange(len(rules)), names, fontsize=8)
            ax.set_ylim(0, 1)
            ax.set_title(f"{b}: {metric}", fontsize=9)
            ax.grid(alpha=0.3, axis="y")
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def factor_figure(report: dict[str, Any], path: Path) -> Path:
    """Factor probes (``analyze --factors``): one bar group per factor, one bar per feature set (0 = chance)."""
    sets = list(report["scores"])
    factors = [s["name"] for s in report["scores"][sets[0]]]
    width = 0.8 / len(sets)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(factors), 3.2))
    for i, name in enumerate(sets):
        vals = [max(-0.1, float(s["score"])) for s in report["scores"][name]]
        ax.bar(np.arange(len(factors)) + (i - (len(sets) - 1) / 2) * width, vals, width, label=name)
    ax.set_xticks(np.arange(len(factors)), factors, fontsize=8)
    ax.set_ylim(-0.1, 1.0)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("decodability / R$^2$", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    ax.set_title(f"factor probes: {report['method']} ({report['task']}, {report['preset']}, seed {report['seed']})",
                 fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


BAND_COLOURS = {"trivial": "black", "raw-pixels": "tab:brown", "random-init": "tab:gray", "supervised": "tab:green"}
LINE_COLOURS = ("tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:pink", "tab:cyan", "tab:olive")  # not a band's


def learning_curve_figure(panels: Sequence[Panel], title: str) -> plt.Figure:
    """A panel per task: a line per method (metric vs pretraining steps) over the floor and ceiling bands (a
    dashed line at the mean, a band of ± one std); a lower-is-better metric's axis is inverted, so better is up.
    Each panel's legend, right of it, gives the bands' values."""
    cols = max(1, math.ceil(math.sqrt(len(panels))))
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(7.6 * cols, 3.4 * rows), squeeze=False)
    labels = list(dict.fromkeys(line.label for p in panels for line in p.lines))
    colours = {label: LINE_COLOURS[i % len(LINE_COLOURS)] for i, label in enumerate(labels)}
    for ax, panel in zip(axes.flat, panels):
        for line in panel.lines:
            ax.plot(line.steps, line.values, marker="o", ms=4, lw=1.6, color=colours[line.label], label=line.label)
        for band in panel.bands:
            colour = BAND_COLOURS[band.method]
            spread = "" if math.isnan(band.std) else f" ± {band.std:.2f}"
            ax.axhline(band.mean, color=colour, ls="--", lw=1,
                       label=f"{band.label} {band.mean:.2f}{spread} (n={band.n})")
            if not math.isnan(band.std) and band.std > 0:
                ax.axhspan(band.mean - band.std, band.mean + band.std, color=colour, alpha=0.12, lw=0)
        if not panel.higher_is_better:
            ax.invert_yaxis()
        ax.set_title(panel.task, fontsize=10)
        ax.set_xlabel("pretraining steps", fontsize=8)
        ax.set_ylabel(panel.ylabel, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def learning_curves_title(panels: Sequence[Panel], preset: str) -> str:
    seeds = sorted({band.n for p in panels for band in p.bands})
    over = f"mean ± std over {'/'.join(map(str, seeds))} reference seeds" if seeds else "none in the reference records"
    return f"Learning curves ({preset} preset): metric vs pretraining steps; floors and ceiling: {over}"


def plot_learning_curves(panels: Sequence[Panel], preset: str, path: Path) -> Path:
    """:func:`learning_curve_figure` of ``panels`` as a PNG at ``path``."""
    return _save(learning_curve_figure(panels, learning_curves_title(panels, preset)), path)


# ---------------------------------------------------------------------------------------------- entry point


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _load_json(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def render_all_figures(records_root: Path | None, analysis_dir: Path | None, out_dir: Path) -> list[Path]:
    """Render every figure whose inputs exist into ``out_dir`` (PNG) and write ``out_dir/README.md``.

    ``records_root``: result records (e.g. ``results/reference/runs``); ``analysis_dir``: analysis files
    (e.g. ``results/reference/analysis``). Returns the PNG paths written (the README is not included).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = FigureIndex()
    written: list[Path] = []
    records: list[ResultRecord] = []
    if records_root and Path(records_root).is_dir():
        records, _ = load_records(Path(records_root))
    no_records = f"no result records under {records_root}" if not records else None

    # (a) calibration precision / recall / rate per epoch, one figure per preset
    by_domain: dict[str, list[ResultRecord]] = defaultdict(list)  # preset, and the source unless synthetic
    for rec in records:
        source = str(((rec.config or {}).get("data") or {}).get("source", "synth"))
        by_domain[rec.preset + ("" if source == "synth" else f"_{source}")].append(rec)
    made_a = False
    for domain, recs in sorted(by_domain.items()):
        all_series = calibration_series(recs)
        methods = [s for s in all_series if s.base]
        swept = [s for s in all_series if s.swept]
        for name, series, what in ((f"calibration_per_epoch_{domain}.png", methods, "methods"),
                                   (f"calibration_per_epoch_{domain}_sweeps.png", swept, "swept configs")):
            if series:
                written.append(plot_calibration_per_epoch(series, out_dir / name))
                index.made[name] = (f"precision, recall and rate (pairs per anchor) of calibrated pairs per "
                                    f"pretraining epoch against the ground truth (synthetic factors; class labels of "
                                    f"a labelled source), per branch, {domain} "
                                    f"({what}, mean ± std over seeds: {'; '.join(s.label for s in series)})")
                made_a = True
    if not made_a:
        index.skipped["calibration_per_epoch_<preset>.png"] = (
            no_records or "no record has calibration logs (`*_cal_precision`) in its pretrain_log")

    # (b) sweeps (Fig. 6a, 6b, 7c)
    for parameter in SWEEPS:
        name = f"sweep_{parameter}.png"
        sweeps = find_sweeps(records, parameter)
        if sweeps:
            written.append(plot_sweep(sweeps, parameter, out_dir / name))
            index.made[name] = (f"metric (mean ± std over seeds) vs {parameter} from records differing only in "
                                f"{parameter} ({len(sweeps)} sweep(s); paper Fig. {_SWEEP_FIG[parameter]})")
        else:
            index.skipped[name] = no_records or f"no records whose configs differ only in {parameter} (and seed)"

    # (c) PA distributions, (e) NPA vs cosine vs top-K bars
    files = analysis_files(Path(analysis_dir)) if analysis_dir else {}
    no_analysis = f"no analysis files (*.npz) in {analysis_dir}"
    if not files:
        for name in ("pa_distributions_<analysis>.png", "calibration_bars_<analysis>.png",
                     "tsne_pcl_vs_pcfrl_<task>-<preset>-seed<k>.png"):
            index.skipped[name] = no_analysis
    for stem, (npz, js) in files.items():
        data, summary = _load_npz(npz), _load_json(js)
        if any(k.endswith("_npa_scores") for k in data):
            name = f"pa_distributions_{stem}.png"
            written.append(plot_pa_distributions(data, summary, stem, out_dir / name))
            index.made[name] = ("PA scores of candidate pairs and each anchor's maximum PA per branch (pose vs face), "
                                "and the maximum PA / cosine split by whether the best candidate is a true partner "
                                f"(paper Fig. 5, 7a-b, 9), {stem}")
        name = f"calibration_bars_{stem}.png"
        if summary and summary.get("table"):
            written.append(plot_calibration_bars(summary["table"], stem, out_dir / name))
            index.made[name] = (f"precision and recall of calibrated pairs, NPA vs cosine, threshold T vs top-1/2/5, "
                                f"against the synthetic ground truth, {stem}")
        else:
            index.skipped[name] = f"no JSON summary with a precision/recall table next to {npz.name}"

    # (d) t-SNE, PCL vs PCFRL (Fig. 10)
    pairs = pcl_pcfrl_pairs(files)
    for rest, (pcl, pcfrl) in pairs.items():
        name = f"tsne_pcl_vs_pcfrl_{rest}.png"
        written.append(plot_tsne(_load_npz(files[pcl][0]), _load_npz(files[pcfrl][0]), f"t-SNE, {rest}",
                                 out_dir / name))
        index.made[name] = (f"t-SNE of F_s, F_f, F_p and F_p+F_f (plain images, <= {TSNE_POINTS} points) for PCL vs "
                            f"PCFRL coloured by synthetic emotion, identity, yaw bin (paper Fig. 10), {rest}")
    if files and not pairs:
        index.skipped["tsne_pcl_vs_pcfrl_<task>-<preset>-seed<k>.png"] = (
            f"needs both pcl-<task>-<preset>-seed<k> and pcfrl-<...> analyses in {analysis_dir}")
    # (f) learning curves (pcfrl-bench curves), one figure per preset
    curves, _ = load_curves(Path(records_root) / CURVES_DIR) if records_root else ([], [])
    if curves:
        from ..resolution import registry_result_hash
        from .tables import split_off_registry

        registry, _ = split_off_registry(records, registry_result_hash)
        for preset in sorted({c.preset for c in curves}):
            name = f"learning_curves_{preset}.png"
            panels = curve_panels(curves, registry, preset)
            written.append(plot_learning_curves(panels, preset, out_dir / name))
            index.made[name] = curves_caption(panels, preset)
    else:
        index.skipped["learning_curves_<preset>.png"] = (f"no learning curves under {records_root}/{CURVES_DIR} "
                                                         "(make curves)")
    atomic_write_text(out_dir / "README.md", index.markdown())
    return written


_SWEEP_FIG = {"alpha": "6a", "beta_pose": "6b", "beta_face": "6b", "T": "7c"}

__all__ = [
    "render_all_figures", "calibration_series", "find_sweeps", "pcl_pcfrl_pairs", "analysis_files", "flatten",
    "record_metric", "yaw_bins", "tsne_embed", "FigureIndex", "Sweep", "SWEEPS", "CalibrationSeries", "SeriesPoint",
    "config_labels",
    "plot_calibration_per_epoch", "plot_sweep", "plot_pa_distributions", "plot_tsne", "plot_calibration_bars",
    "learning_curve_figure", "plot_learning_curves", "learning_curves_title",
]
