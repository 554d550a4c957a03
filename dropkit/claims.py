"""The one rule that judges the paper's claims, and the "what we see" tables of the chapters.

**The rule.** A comparative claim of the paper is an *effect* oriented so that a positive value is
the paper's side (e.g. worst-class accuracy of Random+DRoP minus that of the full dataset at
d = 0.5, in percentage points), computed **per seed**, paired by seed when both arms were run
with the same seed (the runs of one seed share the seed of the final training and of the query
models). Over the ``n`` seeds, :func:`t_interval` gives the mean and a two-sided 95 % Student-t
interval ``mean ± t_{0.975, n-1} · s / sqrt(n)`` (``s``: the sample standard deviation of the
per-seed effects). :func:`verdict`:

* **holds** -- the interval lies above 0 (on the paper's side);
* **contradicted** -- it lies below 0;
* **inconclusive** -- it contains 0, or there are fewer than 2 seeds (no interval).

:class:`Effect` holds the per-seed values and applies the rule; :mod:`dropkit.scorecard` registers
every claim of the paper as such an effect, and the chapters and the scorecard page show the
verdicts it computes (there is no other verdict in the book).

**The tables.** Every number of the "what we see" tables is computed from the tidy results table
(one row per run, see :func:`dropkit.runner.run`) of **one** setting (a model-dataset pair and its
training, the ``setting`` column); split a larger table with :func:`dropkit.tables.split_setups`. Curves are named as in the figures
(:func:`dropkit.curves.method_label`). Metrics are averaged over seeds; a metric's column ``X`` comes
with ``X sd``, its standard deviation over the seeds (ddof 1, NaN for one seed), and ``seeds``
counts them (:func:`dropkit.publish.markdown_table` shows ``mean ± sd`` and ``n``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dropkit.curves import FULL_DATASET, labelled
from dropkit.tables import (
    check_one_setting,
    class_density_correlation,
    full_dataset_metric,
    metric_by_density,
    min_samples_per_class,
)

__all__ = [
    "DROP_LABEL",
    "VERDICTS",
    "Effect",
    "t_interval",
    "verdict",
    "paired_effect",
    "reference_density",
    "metrics_at_density",
    "peak_densities",
    "bias_table",
    "drop_table",
    "curve_metrics",
    "provenance_sentence",
]

DROP_LABEL = "Random+DRoP"
#: The three verdicts of the rule.
VERDICTS: tuple[str, ...] = ("holds", "contradicted", "inconclusive")
#: Confidence level of the interval.
LEVEL = 0.95


def t_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """``(mean, low, high)`` of ``values`` (per-seed effects, ``[n]``) with the two-sided Student-t
    interval at ``level``: ``mean ± t_{(1+level)/2, n-1} · s / sqrt(n)``; ``low``/``high`` are NaN
    for fewer than 2 values. Raises ``ValueError`` for no value or a non-finite one."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"values must be a non-empty 1-D array of finite numbers, got {values!r}")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def verdict(low: float, high: float) -> str:
    """The rule: "holds" if ``low > 0``, "contradicted" if ``high < 0``, else "inconclusive"
    (also for a NaN interval)."""
    if low > 0:
        return "holds"
    if high < 0:
        return "contradicted"
    return "inconclusive"


@dataclass(frozen=True)
class Effect:
    """Per-seed values of one effect, oriented so that > 0 is the paper's side.

    values: the effect per seed (``[n]``, in ``unit``); seeds: the seeds, same order.
    unit: ``"pp"`` (percentage points), ``"r"`` (correlation), ``"samples"``, ``"density"``,
    ``"x"`` (a threshold on the input axis of chapter 01).
    measure: what was measured, in words, with the densities used (e.g. "worst-class accuracy,
    Random+DRoP minus full dataset, d = 0.5"). replicate: what a value is one of (``"seed"``, or
    ``"dataset"`` for the simulated datasets of chapter 01).
    """

    values: tuple[float, ...]
    seeds: tuple[int, ...]
    unit: str
    measure: str
    replicate: str = "seed"

    def __post_init__(self) -> None:
        if len(self.values) != len(self.seeds) or not self.values:
            raise ValueError(f"an effect needs one value per seed, got {len(self.values)} values "
                             f"for seeds {self.seeds}")
        t_interval(self.values)  # checks the values

    @property
    def interval(self) -> tuple[float, float, float]:
        """``(mean, low, high)``: :func:`t_interval` of the per-seed values."""
        return t_interval(self.values)

    @property
    def verdict(self) -> str:
        """The rule's verdict (:func:`verdict`) on :attr:`interval`."""
        _, low, high = self.interval
        return verdict(low, high)

    def text(self, digits: int = 1) -> str:
        """``"+9.6 pp [+7.1, +12.0] (5 seeds)"``: mean, 95 % interval, number of seeds."""
        mean, low, high = self.interval
        unit = "" if self.unit in ("r", "x") else f" {self.unit}"
        span = "no interval" if not np.isfinite(low) else f"[{low:+.{digits}f}, {high:+.{digits}f}]"
        n = len(self.values)
        return f"{mean:+.{digits}f}{unit} {span} ({n} {self.replicate}{'s' if n != 1 else ''})"


def paired_effect(arms, combine, unit: str, measure: str, replicate: str = "seed") -> Effect:
    """An :class:`Effect` from per-seed values of several arms, paired by seed.

    Args:
        arms: a sequence of ``{seed: value}`` mappings (one per arm); only the seeds present in
            every arm are used (a seed missing from one arm has no pair).
        combine: ``combine(*values) -> float``, the effect of one seed from the arms' values in
            ``arms`` order (e.g. ``lambda a, b: a - b``).
        unit, measure, replicate: as in :class:`Effect`.
    """
    arms = [dict(arm) for arm in arms]
    seeds = sorted(set.intersection(*(set(arm) for arm in arms))) if arms else []
    if not seeds:
        raise ValueError(f"the arms share no seed ({[sorted(arm) for arm in arms]}): {measure}")
    return Effect(tuple(float(combine(*(arm[s] for arm in arms))) for s in seeds),
                  tuple(int(s) for s in seeds), unit, measure, replicate)
_SUMMARY = {
    "test_accuracy": "accuracy (%)",
    "test_worst_class": "worst-class (%)",
    "test_gap": "max-min gap (%)",
    "test_std": "std (%)",
}


def _frame(frame) -> pd.DataFrame:
    frame = labelled(frame)
    try:
        check_one_setting(frame)
    except ValueError as error:
        raise ValueError(f"frame must hold exactly one model-dataset pair (setting): {error}") from None
    return frame


def _densities(frame) -> list[float]:
    return sorted({float(d) for d in frame.loc[frame["protocol"] != "none", "density"]})


def reference_density(frame, target: float = 0.5) -> float:
    """The pruned density present in ``frame`` closest to ``target`` (the larger one on a tie)."""
    densities = _densities(_frame(frame))
    if not densities:
        raise ValueError("frame holds no pruned runs")
    return min(densities, key=lambda d: (abs(d - target), -d))


def _check_density(frame, density: float) -> float:
    present = _densities(frame)
    match = [d for d in present if np.isclose(d, density)]
    if not match:
        raise ValueError(f"density={density!r} has no pruned runs; densities present: {present}")
    return match[0]


def _curve_order(frame) -> list[str]:
    return list(dict.fromkeys(frame.loc[frame["protocol"] != "none", "label"]))


def metrics_at_density(frame, density: float, metrics=tuple(_SUMMARY)) -> pd.DataFrame:
    """Mean and standard deviation over seeds of ``metrics`` at ``density`` for every pruned
    curve, and for the full dataset (first row). Index: curve label; values in percent (columns
    ``X`` and ``X sd`` per metric); column ``seeds``."""
    frame = _frame(frame)
    density = _check_density(frame, density)
    rows = {}
    full = {m: full_dataset_metric(frame, m) for m in metrics}
    if all(v is not None for v in full.values()):
        rows[FULL_DATASET] = {}
        for m in metrics:
            rows[FULL_DATASET] |= {_SUMMARY.get(m, m): 100 * full[m]["mean"], f"{_SUMMARY.get(m, m)} sd": 100 * full[m]["sd"]}
        rows[FULL_DATASET]["seeds"] = next(iter(full.values()))["seeds"]
    tables = {m: metric_by_density(frame, m) for m in metrics}
    for label in _curve_order(frame):
        entry = {}
        for metric, table in tables.items():
            hit = table[(table["label"] == label) & np.isclose(table["density"], density)]
            if hit.empty:
                break
            entry[_SUMMARY.get(metric, metric)] = 100 * float(hit["mean"].iloc[0])
            entry[f"{_SUMMARY.get(metric, metric)} sd"] = 100 * float(hit["sd"].iloc[0])
            entry["seeds"] = int(hit["seeds"].iloc[0])
        else:
            rows[label] = entry
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "curve"
    return table


def peak_densities(frame, metric: str = "test_worst_class") -> pd.DataFrame:
    """For each pruned curve, the density at which the seed-mean of ``metric`` is highest (the
    largest such density on a tie) and that value in percent. Index: curve label."""
    frame = _frame(frame)
    table = metric_by_density(frame, metric)
    rows = {}
    for label in _curve_order(frame):
        curve = table[table["label"] == label].sort_values("density")
        best = curve["mean"].to_numpy()
        at = int(np.flatnonzero(best == best.max())[-1])
        rows[label] = {"peak density": float(curve["density"].iloc[at]), "peak value (%)": 100 * float(best[at])}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "curve"
    return table


def _full(frame, metric: str) -> float:
    value = full_dataset_metric(frame, metric)
    if value is None:
        raise ValueError("frame holds no full-dataset (protocol 'none') runs")
    return value["mean"]


def _correlations(frame, labels) -> dict[str, float]:
    return {label: class_density_correlation(frame, label)[0] for label in labels}


def bias_table(frame, density: float) -> pd.DataFrame:
    """Chapter 02's table: one row per pruned method (and the full dataset) with, at ``density``,
    accuracy and worst-class accuracy (mean and sd over seeds, percent), the *extra* worst-class
    drop (percentage points: the worst-class drop from the full dataset minus the accuracy drop,
    of the seed means; positive when pruning widens the distance between average and worst
    class), the density where worst-class accuracy peaks, the mean class-accuracy/class-density
    correlation and the minimum samples per class at the lowest density. (The drops themselves
    are the differences to the full dataset's row.)"""
    frame = _frame(frame)
    table = metrics_at_density(frame, density, ("test_accuracy", "test_worst_class"))
    full_acc, full_worst = 100 * _full(frame, "test_accuracy"), 100 * _full(frame, "test_worst_class")
    table["extra worst-class drop (pp)"] = (full_worst - table["worst-class (%)"]) - (full_acc - table["accuracy (%)"])
    peaks = peak_densities(frame)
    table["worst-class peaks at d"] = peaks["peak density"]
    labels = _curve_order(frame)
    table["corr(class acc, class density)"] = pd.Series(_correlations(frame, labels))
    lowest = min(_densities(frame))
    table[f"min SPC at d={lowest:g}"] = pd.Series(
        {label: min_samples_per_class(frame, label, lowest) for label in labels}, dtype="Int64")
    return table


def drop_table(frame, density: float) -> pd.DataFrame:
    """Chapter 03's table: one row per protocol (and the full dataset) with accuracy,
    worst-class accuracy, gap and std at ``density`` (percent, mean and sd over seeds), where the
    worst-class accuracy peaks, and the mean class-accuracy/class-density correlation."""
    frame = _frame(frame)
    table = metrics_at_density(frame, density)
    peaks = peak_densities(frame)
    table["worst-class peaks at d"] = peaks["peak density"]
    table["corr(class acc, class density)"] = pd.Series(_correlations(frame, _curve_order(frame)))
    return table


def provenance_sentence(frame) -> str:
    """Where the rows of ``frame`` come from: how many runs, the dropkit git revision(s), the
    machine(s), library versions, their summed wall time and when they finished."""
    if frame.empty:
        raise ValueError("frame holds no runs")

    def listed(column: str) -> str:
        if column not in frame:
            return "unknown"
        values = sorted({str(v) for v in frame[column] if v is not None and v == v})
        return ", ".join(values) if values else "unknown"

    seconds = float(frame["seconds"].sum()) if "seconds" in frame else float("nan")
    finished = sorted(str(v) for v in frame.get("finished_at", pd.Series(dtype=str)).dropna())
    when = f", finished between {finished[0]} and {finished[-1]}" if finished else ""
    return (f"{len(frame)} runs computed by dropkit {listed('dropkit_version')} at git revision "
            f"{listed('git_revision')} on {listed('device_name')} (torch {listed('torch_version')}, "
            f"numpy {listed('numpy_version')}, Python {listed('python_version')}); summed wall "
            f"time {seconds / 60:.1f} min{when}.")


# --------------------------------------------------------------------------- chapters 04-07
#
# Chapters 04-07 compare curves beyond the plain protocols (e.g. "EL2N+CDB-W", "query 2 epochs"),
# so the two functions below take the curve names from a ``curve`` column when there is one, else
# from ``label`` (:func:`dropkit.curves.labelled`, which names the CDB-W and quota variants).


def curve_metrics(frame, density: float, metrics=tuple(_SUMMARY)) -> pd.DataFrame:
    """Mean and sd over seeds (in percent) of ``metrics`` at ``density`` for every value of the column
    ``curve`` (else ``label``); full-dataset curves (rows at density 1) are read at density 1
    whatever ``density``.

    Args:
        frame: result rows with a ``curve`` or ``label`` column (the curve's name), ``density``
            and the metric columns (fractions in [0, 1]).
        density: a density present among the pruned rows (matched with ``np.isclose``).
        metrics: scalar result columns; their table names come from the chapter-02 names
            (``"worst-class (%)"`` ...) or are the column names themselves.

    Returns:
        DataFrame indexed by curve (order of first appearance) with two columns per metric
        (``X``: the mean, ``X sd``: the standard deviation over the runs, ddof 1, NaN for one run)
        and ``seeds`` (the number of runs averaged).
    """
    if ("curve" not in frame and "label" not in frame) or "density" not in frame:
        raise ValueError("frame needs the columns 'curve' (or 'label') and 'density'")
    if "curve" not in frame:
        frame = frame.assign(curve=frame["label"])
    missing = [m for m in metrics if m not in frame]
    if missing:
        raise ValueError(f"metrics {missing} are not columns of the results")
    pruned = frame[frame["density"] < 1]
    if not np.isclose(pruned["density"].astype(float), density).any():
        present = sorted({float(d) for d in pruned["density"]})
        raise ValueError(f"density={density!r} has no pruned runs; densities present: {present}")
    rows = {}
    for curve in dict.fromkeys(frame["curve"]):
        runs = frame[frame["curve"] == curve]
        at = runs[np.isclose(runs["density"].astype(float), density)]
        if at.empty:
            at = runs[runs["density"] == 1]
        if at.empty:
            continue
        rows[curve] = {}
        for m in metrics:
            values = at[m].astype(float)
            rows[curve] |= {_SUMMARY.get(m, m): 100 * float(values.mean()),
                            f"{_SUMMARY.get(m, m)} sd": 100 * float(values.std(ddof=1)) if len(values) > 1 else np.nan}
        rows[curve]["seeds"] = int(len(at))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "curve"
    return table
