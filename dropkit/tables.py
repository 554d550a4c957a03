"""The numbers behind the result figures: means and spreads over seeds, class densities,
correlations, samples per class, the trade-off points, and the runs' setting in words.

Every function takes the tidy results table of ``dropkit.sweep.results_frame`` /
``ResultStore.frame()``: one row per run with the spec columns (``dataset``, ``model``,
``protocol``, ``method``, ``density``, ``seed`` ...), the test summaries (``test_accuracy``,
``test_worst_class``, ``test_gap``, ``test_std``: fractions in [0, 1]) and the per-class lists
``test_recalls`` [K], ``class_counts`` [K] (kept per class) and ``class_sizes`` [K] (N_k before
pruning). Curves are named by :func:`dropkit.curves.labelled`. :mod:`dropkit.plots` draws what
these functions return.
"""

from __future__ import annotations

import numpy as np

from dropkit.curves import FULL_DATASET, METHOD_NAMES, METRICS, _with_labels, setup_title

#: Densities over which the paper averages the class-accuracy/class-density correlation (Fig. 13).
CORRELATION_DENSITIES: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)


def split_setups(frame) -> list[tuple[str, object]]:
    """``[(title, rows)]``, one entry per (dataset, model) pair, in order of appearance."""
    frame = _with_labels(frame)
    pairs = list(dict.fromkeys(zip(frame["dataset"], frame["model"])))
    return [(setup_title(d, m), frame[(frame["dataset"] == d) & (frame["model"] == m)]) for d, m in pairs]


def _single_setup(frame) -> None:
    pairs = set(zip(frame["dataset"], frame["model"]))
    if len(pairs) > 1:
        raise ValueError(f"frame mixes {len(pairs)} model-dataset pairs {sorted(pairs)}; split it with split_setups")


def _metric_column(frame, metric: str) -> None:
    if metric not in frame:
        raise ValueError(f"metric={metric!r} is not a column of the results ({', '.join(METRICS)})")


def metric_by_density(frame, metric: str = "test_accuracy"):
    """Mean, min and max over seeds of ``metric`` for each pruned curve and density.

    Args:
        frame: result rows of one model-dataset pair (full-dataset rows are left out).
        metric: a scalar result column, e.g. ``"test_worst_class"``.

    Returns:
        DataFrame with columns ``label, color, density, mean, min, max, seeds`` sorted by label
        and density (metric values in the column's units, fractions for the test metrics).
    """
    import pandas as pd

    frame = _with_labels(frame)
    _metric_column(frame, metric)
    _single_setup(frame)
    pruned = frame[frame["protocol"] != "none"]
    if pruned.empty:
        return pd.DataFrame(columns=["label", "color", "density", "mean", "min", "max", "seeds"])
    table = (
        pruned.groupby(["label", "color", "density"], sort=True)[metric]
        .agg(mean="mean", min="min", max="max", seeds="count")
        .reset_index()
    )
    return table


def full_dataset_metric(frame, metric: str = "test_accuracy", label: str = FULL_DATASET) -> dict[str, float] | None:
    """``{"mean", "min", "max", "seeds"}`` of ``metric`` over the full-dataset runs (curve
    ``label``: plain training, or e.g. :data:`CDBW_FULL_DATASET`), or None if ``frame`` holds
    none."""
    frame = _with_labels(frame)
    _metric_column(frame, metric)
    _single_setup(frame)
    values = frame.loc[frame["label"] == label, metric].astype(float)
    if values.empty:
        return None
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max()),
            "seeds": int(values.size)}


def _vectors(column) -> np.ndarray:
    """A list column of equal-length vectors as a float64 array [rows, K]."""
    rows = [np.asarray(v, dtype=np.float64) for v in column]
    if len({r.shape for r in rows}) > 1:
        raise ValueError("per-class vectors of different lengths in one table (mixed datasets?)")
    return np.stack(rows)


def mean_class_densities(frame, label: str) -> dict[float, np.ndarray]:
    """Class densities ``class_counts / class_sizes`` ([K], in [0, 1]) of curve ``label``, averaged
    over seeds, keyed by dataset density (ascending)."""
    frame = _with_labels(frame)
    _single_setup(frame)
    rows = frame[frame["label"] == label]
    if rows.empty:
        raise ValueError(f"label={label!r} has no rows; labels present: {sorted(set(frame['label']))}")
    out = {}
    for density, group in rows.groupby("density", sort=True):
        out[float(density)] = (_vectors(group["class_counts"]) / _vectors(group["class_sizes"])).mean(axis=0)
    return out


def min_samples_per_class(frame, label: str, density: float = 0.1) -> int:
    """The smallest number of training samples any class keeps under ``label`` at ``density``,
    over all seeds (the paper's "minimum SPC at 10% density")."""
    frame = _with_labels(frame)
    _single_setup(frame)
    rows = frame[(frame["label"] == label) & np.isclose(frame["density"].astype(float), density)]
    if rows.empty:
        raise ValueError(f"label={label!r} has no rows at density={density!r}")
    return int(_vectors(rows["class_counts"]).min())


def full_dataset_class_accuracy(frame) -> np.ndarray:
    """Per-class test accuracy ([K], in [0, 1]) of the full-dataset runs, averaged over seeds:
    the paper's measure of each class's difficulty."""
    frame = _with_labels(frame)
    _single_setup(frame)
    rows = frame[frame["label"] == FULL_DATASET]
    if rows.empty:
        raise ValueError("frame holds no full-dataset (protocol 'none') runs")
    return _vectors(rows["test_recalls"]).mean(axis=0)


def pearson(x, y) -> float:
    """Pearson correlation of two equal-length vectors; NaN when either is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"x and y must be 1-D of the same length >= 2, got {x.shape} and {y.shape}")
    if np.ptp(x) == 0 or np.ptp(y) == 0 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    norm = np.sqrt(np.dot(dx, dx) * np.dot(dy, dy))
    return float(np.clip(np.dot(dx, dy) / norm, -1.0, 1.0))


def correlation_densities(available, preferred=CORRELATION_DENSITIES) -> tuple[float, ...]:
    """The densities of ``preferred`` that are ``available``; all ``available`` if none are."""
    available = sorted(float(d) for d in available)
    chosen = tuple(d for d in available if np.any(np.isclose(d, preferred)))
    return chosen or tuple(available)


def class_density_correlation(frame, label: str, densities=None) -> tuple[float, dict[float, float]]:
    """Correlation across classes between full-dataset class accuracy and class density.

    For each density, the Pearson correlation between :func:`full_dataset_class_accuracy` and the
    seed-averaged class densities of ``label``; the first value returned is its mean over
    ``densities`` (default: :func:`correlation_densities` of those present, i.e. the paper's
    0.1, 0.3, 0.5, 0.7, 0.9), ignoring densities where a vector is constant (NaN). Positive:
    the method prunes the hard (low-accuracy) classes more.
    """
    accuracy = full_dataset_class_accuracy(frame)
    by_density = mean_class_densities(frame, label)
    chosen = correlation_densities(by_density) if densities is None else tuple(float(d) for d in densities)
    per_density = {}
    for density in chosen:
        match = [d for d in by_density if np.isclose(d, density)]
        if not match:
            raise ValueError(f"label={label!r} has no rows at density={density!r}")
        per_density[density] = pearson(accuracy, by_density[match[0]])
    values = [v for v in per_density.values() if np.isfinite(v)]
    return (float(np.mean(values)) if values else float("nan")), per_density



def tradeoff_table(frame):
    """Mean over seeds of average (``accuracy``) and worst-class (``worst_class``) accuracy per
    pruned curve and density: the points of the trade-off plot."""
    accuracy = metric_by_density(frame, "test_accuracy")
    worst = metric_by_density(frame, "test_worst_class")
    table = accuracy.merge(worst, on=["label", "color", "density"], suffixes=("_acc", "_worst"))
    return table.rename(columns={"mean_acc": "accuracy", "mean_worst": "worst_class"})[
        ["label", "color", "density", "accuracy", "worst_class"]]


def zoom_window(table, full_accuracy: float, full_worst: float, *, margin: float = 0.05):
    """The (x0, x1, y0, y1) box of the trade-off points whose average accuracy is within
    ``margin`` of the full dataset's, padded by 10%, with the full-dataset point; None when it
    would show every point anyway or fewer than two points."""
    near = table[table["accuracy"] >= full_accuracy - margin]
    if len(near) < 2 or len(near) == len(table):
        return None
    xs = np.append(near["worst_class"].to_numpy(), full_worst)
    ys = np.append(near["accuracy"].to_numpy(), full_accuracy)
    pad_x = 0.1 * max(np.ptp(xs), 1e-3)
    pad_y = 0.1 * max(np.ptp(ys), 1e-3)
    return float(xs.min() - pad_x), float(xs.max() + pad_x), float(ys.min() - pad_y), float(ys.max() + pad_y)



def metric_by_query_length(frame, metric: str = "test_accuracy"):
    """Mean, min and max over seeds of ``metric`` for each density and query-model training
    length of the pruned runs (paper Figure 15).

    Returns:
        DataFrame with columns ``density, query_epochs, mean, min, max, seeds``, sorted by both.
    """
    frame = _with_labels(frame)
    _metric_column(frame, metric)
    _single_setup(frame)
    pruned = frame[frame["protocol"] != "none"]
    return (pruned.groupby(["density", "query_epochs"], sort=True)[metric]
            .agg(mean="mean", min="min", max="max", seeds="count").reset_index())



# --------------------------------------------------------------------------- chapter helpers

_STRATEGY_PROTOCOLS = ("strategy", "random+strategyq", "strategy+drop")
_SHARED_PROTOCOLS = ("none", "random", "random+drop")


def by_strategy(frame, strategies=None):
    """Chapter 03's panels: for each model-dataset pair and each Strategy (score method of the
    ``strategy``, ``random+strategyq`` and ``strategy+drop`` rows), that Strategy's rows plus the
    shared Random, Random+DRoP and full-dataset rows, with columns ``strategy`` (method) and
    ``panel`` (e.g. ``"fashion-mnist, MLP; Strategy = EL2N"``). Shared rows appear once per panel.

    ``strategies`` (default: those present, in order of appearance) selects and orders them.
    """
    import pandas as pd

    frame = _with_labels(frame)
    parts = []
    for title, rows in split_setups(frame):
        present = list(dict.fromkeys(rows.loc[rows["protocol"].isin(_STRATEGY_PROTOCOLS), "method"]))
        chosen = present if strategies is None else [s for s in strategies if s in present]
        for method in chosen:
            part = rows[rows["protocol"].isin(_SHARED_PROTOCOLS)
                        | (rows["protocol"].isin(_STRATEGY_PROTOCOLS) & (rows["method"] == method))].copy()
            part["strategy"] = method
            part["panel"] = f"{title}; Strategy = {METHOD_NAMES[method]}"
            parts.append(part)
    if not parts:
        raise ValueError("frame holds no Strategy runs (protocols strategy, random+strategyq, strategy+drop)"
                         + ("" if strategies is None else f" for strategies={list(strategies)}"))
    return pd.concat(parts, ignore_index=True)


def _values(rows, column) -> list:
    if column not in rows:
        return []
    return list(dict.fromkeys(tuple(v) if isinstance(v, list) else v for v in rows[column]))


def setting_caption(frame) -> str:
    """The runs behind a figure in words, from the result columns: for each model-dataset pair
    the training-set size, epochs and LR drops, batch size and learning rate, then the seeds,
    densities and query-model training. Used in every result figure's caption."""
    frame = _with_labels(frame)
    setups = []
    for title, rows in split_setups(frame):
        text = title
        sizes = _values(rows, "num_train")
        if len(sizes) == 1:
            text += f" ({sizes[0]} training samples)"
        epochs, drops = _values(rows, "epochs"), _values(rows, "drop_epochs")
        if len(epochs) == 1:
            text += f", {epochs[0]} epochs"
            if len(drops) == 1 and drops[0]:
                text += f" (LR x0.2 at epochs {', '.join(str(e) for e in drops[0])})"
        for column, name in (("batch_size", "batch"), ("lr", "LR")):
            values = _values(rows, column)
            if len(values) == 1:
                text += f", {name} {values[0]:g}"
        setups.append(text)
    seeds = sorted(int(s) for s in _values(frame, "seed"))
    densities = sorted(float(d) for d in _values(frame[frame["protocol"] != "none"], "density"))
    text = "; ".join(setups)
    text += f"; {len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"
    text += f"; densities {', '.join(f'{d:g}' for d in densities)}"
    queried = frame[frame["method"].notna() & frame["protocol"].isin(("strategy", *_STRATEGY_PROTOCOLS, "random+drop"))]
    q_epochs, q_seeds = _values(queried, "query_epochs"), _values(queried, "query_seeds")
    if len(q_epochs) == 1 and len(q_seeds) == 1:
        text += (f"; EL2N/GraNd/DRoP query models trained {q_epochs[0]} epoch{'s' if q_epochs[0] != 1 else ''}"
                 f" and averaged over {q_seeds[0]} query seed{'s' if q_seeds[0] != 1 else ''}")
    return text
