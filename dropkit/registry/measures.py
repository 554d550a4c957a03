"""Per-seed measurements that the claims of :mod:`dropkit.registry` are built from: a metric of
one curve per seed, correlations of class density with class difficulty, slopes over density,
samples per class, and the seed-spread margins of equivalence and non-inferiority claims.

Every function takes the labelled rows of one setting (:func:`dropkit.curves.labelled`) and
returns ``{seed: value}``; accuracies are in percent (percentage points for differences)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dropkit.claims import Effect, paired_effect
from dropkit.curves import FULL_DATASET
from dropkit.tables import class_density_correlation

#: Metrics in percent (x100).
PERCENT = ("test_accuracy", "test_worst_class", "test_gap", "test_std", "test_worst_group", "test_group_gap",
           "test_group_std")
#: Human names of the metrics.
METRIC_NAMES = {
    "test_accuracy": "average accuracy",
    "test_worst_class": "worst-class accuracy",
    "test_gap": "max-min gap of class accuracies",
    "test_std": "std of class accuracies",
    "test_worst_group": "worst-group accuracy",
    "test_group_gap": "max-min gap of group accuracies",
    "test_group_std": "std of group accuracies",
}


def rows_of(frame: pd.DataFrame, label: str, density: float | None = None, **where) -> pd.DataFrame:
    """Rows of curve ``label`` (at ``density`` if given; matching ``where``: column == value)."""
    rows = frame[frame["label"] == label]
    if density is not None:
        rows = rows[np.isclose(rows["density"].astype(float), density)]
    for column, value in where.items():
        rows = rows[np.isclose(rows[column].astype(float), value)]
    if rows.empty:
        raise ValueError(f"no runs of {label!r}{f' at density {density:g}' if density is not None else ''}"
                         f"{f' with {where}' if where else ''}")
    return rows


def per_seed(frame, label: str, metric: str, density: float | None = None, **where) -> dict[int, float]:
    """``{seed: metric}`` of curve ``label`` (percent for accuracy metrics); runs of one seed
    (none in a well-formed setting) are averaged."""
    rows = rows_of(frame, label, density, **where)
    scale = 100.0 if metric in PERCENT else 1.0
    return {int(s): scale * float(v) for s, v in rows.groupby("seed")[metric].mean().items()}


def full(frame, metric: str, **where) -> dict[int, float]:
    """Per seed: ``metric`` of the full dataset (plain training)."""
    return per_seed(frame, FULL_DATASET, metric, **where)


def difference(a: dict, b: dict, unit: str, measure: str) -> Effect:
    """Per seed ``a - b``, paired by seed."""
    return paired_effect([a, b], lambda x, y: x - y, unit, measure)


def densities_of(frame, label: str | None = None) -> list[float]:
    """The pruned densities present (of curve ``label`` if given), ascending."""
    rows = frame[frame["protocol"] != "none"]
    if label is not None:
        rows = rows[rows["label"] == label]
    return sorted({float(d) for d in rows["density"]})


def nearest(frame, target: float) -> float:
    """The pruned density present closest to ``target`` (the larger on a tie)."""
    present = densities_of(frame)
    if not present:
        raise ValueError("no pruned runs")
    return min(present, key=lambda d: (abs(d - target), -d))


def pruned_labels(frame) -> list[str]:
    """Pruned curves present, in order of appearance."""
    return list(dict.fromkeys(frame.loc[frame["protocol"] != "none", "label"]))


def low_densities(frame, label: str | None = None) -> list[float]:
    """The paper's "low densities": the pruned densities at or below 0.3 present (of curve
    ``label`` if given); ``ValueError`` when there is none."""
    low = [d for d in densities_of(frame, label) if d <= 0.3 + 1e-9]
    if not low:
        raise ValueError(f"no low density (0.3 or below){f' of {label!r}' if label else ''} was run")
    return low


def versus_every(frame, label: str, metric: str, density: float, *, label_higher: bool = True) -> dict[str, Effect]:
    """``label``'s ``metric`` at ``density`` against every other pruned curve, one effect per other
    curve (the parts of an intersection-union test), oriented so that > 0 is the paper's side:
    ``label``'s value minus the other's (``label_higher``), else the other's minus ``label``'s."""
    mine = per_seed(frame, label, metric, density)
    parts = {}
    for other in pruned_labels(frame):
        if other == label:
            continue
        theirs = per_seed(frame, other, metric, density)
        first, second = (label, other) if label_higher else (other, label)
        parts[other] = difference(*((mine, theirs) if label_higher else (theirs, mine)), "pp",
                                  f"{METRIC_NAMES[metric]} at d = {density:g}, {first} minus {second}")
    return parts


def class_correlation(frame, label: str, densities) -> dict[int, float]:
    """Per seed: the mean over ``densities`` of the correlation across classes between the seed's
    full-dataset class accuracy and the class densities of ``label`` (> 0: the hard classes are
    pruned more; the measure of Figures 2, 6 and 13)."""
    out = {}
    for seed, rows in frame.groupby("seed"):
        if (rows["label"] == label).any():
            value = class_density_correlation(rows, label, densities)[0]
            if np.isfinite(value):
                out[int(seed)] = float(value)
    if not out:
        raise ValueError(f"no finite class-density correlation for {label!r}")
    return out


def slope(frame, label: str, metric: str, densities) -> dict[int, float]:
    """Per seed: the least-squares slope of ``metric`` (percent) on density over ``densities``
    (percentage points per unit of density; > 0: higher at higher density)."""
    out = {}
    densities = [float(d) for d in densities]
    if len(densities) < 2:
        raise ValueError(f"a slope needs at least two densities, got {densities}")
    by_density = {d: per_seed(frame, label, metric, d) for d in densities}
    seeds = set.intersection(*(set(v) for v in by_density.values()))
    for seed in sorted(seeds):
        y = np.array([by_density[d][seed] for d in densities])
        out[int(seed)] = float(np.polyfit(np.array(densities), y, 1)[0])
    return out


def min_samples_per_class(frame, label: str, density: float) -> dict[int, float]:
    """Per seed: the fewest training samples any class keeps under ``label`` at ``density``."""
    rows = rows_of(frame, label, density)
    return {int(s): float(min(min(c) for c in group["class_counts"])) for s, group in rows.groupby("seed")}


def seed_spread(frame, metric: str, label: str = FULL_DATASET, **where) -> tuple[float, str]:
    """The margin of an equivalence or non-inferiority claim: the standard deviation over seeds of
    ``metric`` (percent) of curve ``label`` (the full dataset: one training's seed-to-seed spread),
    and where it comes from, in words."""
    values = np.array(list(per_seed(frame, label, metric, **where).values()))
    if values.size < 2:
        raise ValueError(f"a seed-spread margin needs at least 2 seeds of {label!r}")
    sd = float(values.std(ddof=1))
    if sd <= 0:
        raise ValueError(f"{label!r} has no spread over seeds in {metric}")
    return sd, (f"one seed-to-seed standard deviation of the {label.lower()}'s {METRIC_NAMES.get(metric, metric)} "
                f"in this setting ({sd:.2f} pp over {values.size} seeds)")
