"""The "what we see" tables of chapters 02 and 03 and the sentences that judge the paper's claims.

Every number here is computed from the tidy results table (one row per run, see
:func:`dropkit.runner.run`) of **one** model-dataset pair; split a larger table with
:func:`dropkit.tables.split_setups`. Curves are named as in the figures
(:func:`dropkit.curves.method_label`: ``"Random"``, ``"EL2N"``, ``"Random+EL2NQ"``,
``"EL2N+DRoP"``, ``"Random+DRoP"``, ``"Full dataset"``). Metrics are averaged over seeds.

Each ``*_claim`` function returns one sentence whose verdict ("holds", "holds only in part",
"does not hold") is chosen from the numbers, so the book never asserts what the data do not show.
The paper's claims, operationalised:

* :func:`bias_claim` (Section 2, "data pruning exacerbates bias"): at density ``d`` a pruning
  method widens the distance between average and worst-class accuracy compared with the full
  dataset, i.e. it costs the worst class more accuracy than the average.
* :func:`dynamic_uncertainty_claim` (Figures 2, 13): Dynamic Uncertainty's class densities are
  positively correlated with full-dataset class accuracy (it prunes hard classes the most), more
  so than any other method.
* :func:`drop_claim` (Section 4, Figure 5): Random+DRoP's worst-class accuracy at ``d`` is above
  the full dataset's and above every other pruning protocol's.
* :func:`drop_peak_claim` (Section 4): the other protocols reach their best worst-class accuracy
  at high densities, Random+DRoP at a lower density than all of them.
* :func:`drop_correlation_claim` (Figure 6): DRoP's class densities are negatively correlated
  with full-dataset class accuracy, more strongly than those of any plain strategy or Random.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dropkit.curves import FULL_DATASET, METHOD_NAMES, labelled
from dropkit.tables import (
    class_density_correlation,
    full_dataset_metric,
    metric_by_density,
    min_samples_per_class,
)

__all__ = [
    "DROP_LABEL",
    "reference_density",
    "metrics_at_density",
    "peak_densities",
    "bias_table",
    "bias_claim",
    "dynamic_uncertainty_claim",
    "drop_table",
    "drop_claim",
    "drop_peak_claim",
    "drop_correlation_claim",
    "provenance_sentence",
]

DROP_LABEL = "Random+DRoP"
_SUMMARY = {
    "test_accuracy": "accuracy (%)",
    "test_worst_class": "worst-class (%)",
    "test_gap": "max-min gap (%)",
    "test_std": "std (%)",
}


def _frame(frame) -> pd.DataFrame:
    frame = labelled(frame)
    pairs = set(zip(frame["dataset"], frame["model"]))
    if len(pairs) != 1:
        raise ValueError(f"frame must hold exactly one model-dataset pair, got {sorted(pairs)}")
    return frame


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


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
    """Mean over seeds of ``metrics`` at ``density`` for every pruned curve, and for the full
    dataset (first row). Index: curve label; values in percent; column ``seeds``."""
    frame = _frame(frame)
    density = _check_density(frame, density)
    rows = {}
    full = {m: full_dataset_metric(frame, m) for m in metrics}
    if all(v is not None for v in full.values()):
        rows[FULL_DATASET] = {**{_SUMMARY.get(m, m): 100 * full[m]["mean"] for m in metrics},
                              "seeds": next(iter(full.values()))["seeds"]}
    tables = {m: metric_by_density(frame, m) for m in metrics}
    for label in _curve_order(frame):
        entry = {}
        for metric, table in tables.items():
            hit = table[(table["label"] == label) & np.isclose(table["density"], density)]
            if hit.empty:
                break
            entry[_SUMMARY.get(metric, metric)] = 100 * float(hit["mean"].iloc[0])
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
    accuracy, worst-class accuracy, their drops from the full dataset (percentage points; the
    last is positive when pruning widens the distance between average and worst class), the
    density where worst-class accuracy peaks, the mean class-accuracy/class-density correlation
    and the minimum samples per class at the lowest density."""
    frame = _frame(frame)
    table = metrics_at_density(frame, density, ("test_accuracy", "test_worst_class", "test_gap"))
    full_acc, full_worst = 100 * _full(frame, "test_accuracy"), 100 * _full(frame, "test_worst_class")
    table["accuracy drop (pp)"] = full_acc - table["accuracy (%)"]
    table["worst-class drop (pp)"] = full_worst - table["worst-class (%)"]
    table["extra worst-class drop (pp)"] = table["worst-class drop (pp)"] - table["accuracy drop (pp)"]
    peaks = peak_densities(frame)
    table["worst-class peaks at d"] = peaks["peak density"]
    labels = _curve_order(frame)
    table["corr(class acc, class density)"] = pd.Series(_correlations(frame, labels))
    lowest = min(_densities(frame))
    table[f"min SPC at d={lowest:g}"] = pd.Series(
        {label: min_samples_per_class(frame, label, lowest) for label in labels}, dtype="Int64")
    return table


def bias_claim(frame, density: float) -> str:
    """Whether, at ``density``, every score-based method costs the worst class more accuracy than
    the average (relative to the full dataset): "holds", "holds only in part" or "does not hold"."""
    frame = _frame(frame)
    density = _check_density(frame, density)
    table = bias_table(frame, density)
    strategies = [label for label in _curve_order(frame)
                  if label in METHOD_NAMES.values()]
    if not strategies:
        raise ValueError("frame holds no score-based (protocol 'strategy') runs")
    widened = [s for s in strategies if table.loc[s, "extra worst-class drop (pp)"] > 0]
    kept = [s for s in strategies if s not in widened]
    if len(widened) == len(strategies):
        verdict = "holds here"
    elif widened:
        verdict = "holds only in part here"
    else:
        verdict = "does not hold here"
    parts = [f"At d={density:g}, {len(widened)} of {len(strategies)} score-based methods "
             f"lose more worst-class than average accuracy relative to the full dataset"]
    if widened:
        extra = table["extra worst-class drop (pp)"]
        parts.append(" (" + ", ".join(f"{s}: {extra[s]:+.1f} pp" for s in widened) + ")")
    if kept:
        parts.append(f"; {', '.join(kept)} {'does' if len(kept) == 1 else 'do'} not")
    return "".join(parts) + f": the paper's claim that data pruning exacerbates classification bias {verdict}."


def dynamic_uncertainty_claim(frame) -> str:
    """Whether Dynamic Uncertainty's class densities correlate positively with full-dataset
    class accuracy, and more than every other method's (Figures 2 and 13)."""
    frame = _frame(frame)
    du = METHOD_NAMES["dynamic_uncertainty"]
    labels = _curve_order(frame)
    if du not in labels:
        raise ValueError("frame holds no Dynamic Uncertainty runs")
    others = [label for label in labels if label != du]
    correlations = _correlations(frame, labels)
    r = correlations[du]
    rival = max(others, key=lambda label: np.nan_to_num(correlations[label], nan=-np.inf)) if others else None
    largest = rival is None or not (correlations[rival] >= r)
    holds = np.isfinite(r) and r > 0 and largest
    comparison = ("the largest of all methods" if largest
                  else f"not above {rival}'s ({correlations[rival]:+.2f})")
    return (f"Dynamic Uncertainty's class densities correlate with full-dataset class accuracy at "
            f"r = {r:+.2f} on average ({comparison}): the paper's observation that it prunes the "
            f"hardest classes most aggressively {'holds' if holds else 'does not hold'} here.")


def drop_table(frame, density: float) -> pd.DataFrame:
    """Chapter 03's table: one row per protocol (and the full dataset) with accuracy,
    worst-class accuracy, gap and std at ``density`` (percent), where the worst-class accuracy
    peaks, and the mean class-accuracy/class-density correlation."""
    frame = _frame(frame)
    table = metrics_at_density(frame, density)
    peaks = peak_densities(frame)
    table["worst-class peaks at d"] = peaks["peak density"]
    table["corr(class acc, class density)"] = pd.Series(_correlations(frame, _curve_order(frame)))
    return table


def _relation(a: float, b: float) -> str:
    return "above" if a > b else "below" if a < b else "equal to"


def drop_claim(frame, density: float) -> str:
    """Whether Random+DRoP's worst-class accuracy at ``density`` is above the full dataset's and
    above every other pruning protocol's: "holds", "holds only in part" or "does not hold"."""
    frame = _frame(frame)
    density = _check_density(frame, density)
    table = metrics_at_density(frame, density, ("test_worst_class",))
    column = _SUMMARY["test_worst_class"]
    if DROP_LABEL not in table.index:
        raise ValueError(f"frame holds no {DROP_LABEL} runs at density {density:g}")
    if FULL_DATASET not in table.index:
        raise ValueError("frame holds no full-dataset (protocol 'none') runs")
    others = table.drop(index=[DROP_LABEL, FULL_DATASET])
    if others.empty:
        raise ValueError(f"frame holds no pruning protocol besides {DROP_LABEL} at density {density:g}")
    drop = table.loc[DROP_LABEL, column] / 100
    full = table.loc[FULL_DATASET, column] / 100
    best = others[column].idxmax()
    best_value = others.loc[best, column] / 100
    above_full, above_all = drop > full, drop > best_value
    verdict = ("holds" if above_full and above_all
               else "holds only in part" if above_full or above_all else "does not hold")
    return (f"{DROP_LABEL}'s worst-class accuracy at d={density:g} ({_pct(drop)}) is "
            f"{_relation(drop, full)} the full dataset's ({_pct(full)}) and "
            f"{'above every other' if above_all else 'not above every other'} protocol's "
            f"(best other: {best}, {_pct(best_value)}): the paper's claim {verdict} here.")


def drop_peak_claim(frame) -> str:
    """Whether Random+DRoP's worst-class accuracy peaks at a lower density than that of every
    other pruning protocol (they peak at high densities, DRoP keeps improving as it prunes):
    "holds" (lower than all), "holds only in part" (lower than some) or "does not hold"."""
    frame = _frame(frame)
    peaks = peak_densities(frame)
    if DROP_LABEL not in peaks.index or len(peaks) < 2:
        raise ValueError(f"frame must hold {DROP_LABEL} runs and at least one other protocol")
    mine = peaks.loc[DROP_LABEL, "peak density"]
    others = peaks.drop(index=DROP_LABEL)["peak density"]
    not_higher = [label for label, d in others.items() if d <= mine]
    higher = len(others) - len(not_higher)
    verdict = "holds" if not not_higher else "holds only in part" if higher else "does not hold"
    detail = f"{higher} of {len(others)} other protocols peak at a higher density"
    if not_higher:
        listed = ", ".join(f"{label} (d={others[label]:g})" for label in not_higher)
        detail += f"; {listed} {'peaks' if len(not_higher) == 1 else 'peak'} at the same or a lower density"
    return (f"{DROP_LABEL}'s worst-class accuracy peaks at d={mine:g}; {detail}: the paper's claim "
            f"that Random+DRoP keeps improving worst-class accuracy at densities where the other "
            f"protocols have passed their best {verdict} here.")


def drop_correlation_claim(frame) -> str:
    """Whether DRoP's class densities are negatively correlated with full-dataset class accuracy,
    more strongly than those of every plain strategy and of Random (Figure 6 vs Figure 13)."""
    frame = _frame(frame)
    labels = _curve_order(frame)
    if DROP_LABEL not in labels:
        raise ValueError(f"frame holds no {DROP_LABEL} runs")
    baselines = [label for label in labels if label in METHOD_NAMES.values() or label == "Random"]
    if not baselines:
        raise ValueError("frame holds no plain strategy or Random runs to compare with")
    correlations = _correlations(frame, [DROP_LABEL, *baselines])
    r = correlations[DROP_LABEL]
    lowest = min(baselines, key=lambda label: np.nan_to_num(correlations[label], nan=np.inf))
    stronger = np.isfinite(r) and r < 0 and all(
        not np.isfinite(correlations[b]) or r < correlations[b] for b in baselines)
    return (f"{DROP_LABEL}'s class densities correlate with full-dataset class accuracy at "
            f"r = {r:+.2f} on average, against {correlations[lowest]:+.2f} for {lowest}, the most "
            f"negative among the plain strategies and Random (difference {r - correlations[lowest]:+.2f}): "
            f"the paper's observation that DRoP's negative correlation is more pronounced than the "
            f"strategies' {'holds' if stronger else 'does not hold'} here.")


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
    """Mean over seeds (in percent) of ``metrics`` at ``density`` for every value of the column
    ``curve`` (else ``label``); full-dataset curves (rows at density 1) are read at density 1
    whatever ``density``.

    Args:
        frame: result rows with a ``curve`` or ``label`` column (the curve's name), ``density``
            and the metric columns (fractions in [0, 1]).
        density: a density present among the pruned rows (matched with ``np.isclose``).
        metrics: scalar result columns; their table names come from the chapter-02 names
            (``"worst-class (%)"`` ...) or are the column names themselves.

    Returns:
        DataFrame indexed by curve (order of first appearance) with one column per metric and
        ``seeds`` (the number of runs averaged).
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
        rows[curve] = {**{_SUMMARY.get(m, m): 100 * float(at[m].astype(float).mean()) for m in metrics},
                       "seeds": int(len(at))}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "curve"
    return table


def comparison_claim(table: pd.DataFrame, column: str, first: str, others, claim: str) -> str:
    """One sentence: is ``first``'s value in ``column`` of :func:`curve_metrics`' table above every
    curve in ``others``? The paper's ``claim`` then "holds", "holds only in part" (above some) or
    "does not hold"; lower is better for the gap and std columns."""
    if column not in table:
        raise ValueError(f"column={column!r} is not in the table ({', '.join(table.columns)})")
    others = [o for o in others if o in table.index and o != first]
    if first not in table.index or not others:
        raise ValueError(f"first={first!r} and others={others!r} must name curves of the table")
    lower_better = "gap" in column or "std" in column
    value = float(table.loc[first, column])
    beaten = [o for o in others
              if (value < table.loc[o, column] if lower_better else value > table.loc[o, column])]
    verdict = "holds" if len(beaten) == len(others) else ("holds only in part" if beaten else "does not hold")
    listed = ", ".join(f"{o} {table.loc[o, column]:.1f}" for o in others)
    return (f"{first}: {column} {value:.1f} against {listed} ({'lower' if lower_better else 'higher'} "
            f"is better): the paper's claim that {claim} {verdict} here.")
