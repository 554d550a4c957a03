"""The numbers behind the result figures: means and spreads over seeds, class densities,
correlations, samples per class, the trade-off points, and the runs' setting in words.

Every function takes the tidy results table of ``dropkit.sweep.results_frame`` /
``ResultStore.frame()``: one row per run with the spec columns (``dataset``, ``model``,
``protocol``, ``method``, ``density``, ``seed`` ...), the test summaries (``test_accuracy``,
``test_worst_class``, ``test_gap``, ``test_std``: fractions in [0, 1]) and the per-class lists
``test_recalls`` [K], ``class_counts`` [K] (kept per class) and ``class_sizes`` [K] (N_k before
pruning). Curves are named by :func:`dropkit.curves.labelled`. :mod:`dropkit.plots` draws what
these functions return.

Rows read through a chapter (:func:`dropkit.chapter.chapter_results`) also name their *setting*
(:data:`SETTING`: the profile's training setup, e.g. ``"mlp-fashion-mnist"``,
``"cnn-fashion-mnist"``); the per-curve numbers are computed on the rows of one setting
(:func:`split_setups` splits a larger table, :func:`check_one_setting` refuses a mixed one), and
:func:`describe_setting` and :func:`setting_descriptions` put each setting in words for the
setting paragraphs.
"""

from __future__ import annotations

import numpy as np

from dropkit.curves import FULL_DATASET, METHOD_NAMES, METRICS, _with_labels, setup_title

#: Densities over which the paper averages the class-accuracy/class-density correlation (Fig. 13).
CORRELATION_DENSITIES: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)


#: The result column naming each row's *setting*: the training setup of the profile it comes
#: from (:func:`dropkit.profiles.setting_name`, e.g. ``"cnn-fashion-mnist"``), written by
#: :func:`dropkit.chapter.chapter_results`. Figures draw one row, and the scorecard gives one
#: verdict per claim, for each setting.
SETTING = "setting"


def setting_names(frame) -> list[str]:
    """The setting of every row of ``frame`` (``[rows]``): its :data:`SETTING` column, or, for a
    table without one (e.g. ``ResultStore.frame()``), ``"<model>-<dataset>"``, the profiles'
    name of the setup of that model-dataset pair."""
    if SETTING in frame:
        return [str(v) for v in frame[SETTING]]
    return [f"{m}-{d}" for d, m in zip(frame["dataset"], frame["model"])]


def with_settings(frame):
    """``frame`` with its :data:`SETTING` column (a copy with :func:`setting_names` when it
    has none)."""
    return frame if SETTING in frame else frame.assign(**{SETTING: setting_names(frame)})


def setting_titles(frame) -> dict[str, str]:
    """Setting -> the title of its figure rows and scorecard rows, in order of appearance:
    ``"fashion-mnist, CNN"`` (:func:`dropkit.curves.setup_title` of its dataset and model), or
    ``"fashion-mnist, CNN (<setting>)"`` when two settings of ``frame`` share dataset and model."""
    frame = with_settings(frame)
    titles = {}
    for name, rows in frame.groupby(SETTING, sort=False):
        pairs = list(dict.fromkeys(zip(rows["dataset"], rows["model"])))
        titles[str(name)] = "; ".join(setup_title(d, m) for d, m in pairs)
    counts = {title: list(titles.values()).count(title) for title in titles.values()}
    return {name: title if counts[title] == 1 else f"{title} ({name})" for name, title in titles.items()}


def split_setups(frame) -> list[tuple[str, object]]:
    """``[(title, rows)]``, one entry per setting (:data:`SETTING`, else model-dataset pair) in
    order of appearance, titled by :func:`setting_titles`; the rows carry ``label``, ``color``
    and ``setting`` columns."""
    frame = with_settings(_with_labels(frame))
    return [(title, frame[frame[SETTING] == name]) for name, title in setting_titles(frame).items()]


def check_one_setting(frame) -> None:
    """``ValueError`` (naming :func:`split_setups`) when ``frame`` holds rows of more than one
    setting (:func:`setting_names`)."""
    names = sorted(set(setting_names(frame)))
    if len(names) > 1:
        raise ValueError(f"frame mixes {len(names)} settings (model-dataset pairs) {names}; split it "
                         "with split_setups")


def _metric_column(frame, metric: str) -> None:
    if metric not in frame:
        raise ValueError(f"metric={metric!r} is not a column of the results ({', '.join(METRICS)})")


def metric_by_density(frame, metric: str = "test_accuracy"):
    """Mean, min, max and standard deviation (``sd``, ddof 1; NaN for one seed) over seeds of
    ``metric`` for each pruned curve and density.

    Args:
        frame: result rows of one model-dataset pair (full-dataset rows are left out).
        metric: a scalar result column, e.g. ``"test_worst_class"``.

    Returns:
        DataFrame with columns ``label, color, density, mean, min, max, sd, seeds`` sorted by
        label and density (metric values in the column's units, fractions for the test metrics).
    """
    import pandas as pd

    frame = _with_labels(frame)
    _metric_column(frame, metric)
    check_one_setting(frame)
    pruned = frame[frame["protocol"] != "none"]
    if pruned.empty:
        return pd.DataFrame(columns=["label", "color", "density", "mean", "min", "max", "sd", "seeds"])
    table = (
        pruned.groupby(["label", "color", "density"], sort=True)[metric]
        .agg(mean="mean", min="min", max="max", sd="std", seeds="count")
        .reset_index()
    )
    return table


def full_dataset_metric(frame, metric: str = "test_accuracy", label: str = FULL_DATASET) -> dict[str, float] | None:
    """``{"mean", "min", "max", "sd", "seeds"}`` of ``metric`` over the full-dataset runs (curve
    ``label``: plain training, or e.g. :data:`CDBW_FULL_DATASET`), or None if ``frame`` holds
    none."""
    frame = _with_labels(frame)
    _metric_column(frame, metric)
    check_one_setting(frame)
    values = frame.loc[frame["label"] == label, metric].astype(float)
    if values.empty:
        return None
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max()),
            "sd": float(values.std(ddof=1)) if values.size > 1 else float("nan"), "seeds": int(values.size)}


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
    check_one_setting(frame)
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
    check_one_setting(frame)
    rows = frame[(frame["label"] == label) & np.isclose(frame["density"].astype(float), density)]
    if rows.empty:
        raise ValueError(f"label={label!r} has no rows at density={density!r}")
    return int(_vectors(rows["class_counts"]).min())


def full_dataset_class_accuracy(frame) -> np.ndarray:
    """Per-class test accuracy ([K], in [0, 1]) of the full-dataset runs, averaged over seeds:
    the paper's measure of each class's difficulty."""
    frame = _with_labels(frame)
    check_one_setting(frame)
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
    check_one_setting(frame)
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


def score_methods(rows) -> tuple[str, ...]:
    """The score methods ``rows`` run: the ``method`` of their Strategy, Random+StrategyQ and
    Strategy+DRoP runs, in order of appearance (Random+DRoP's ``method`` only names its query
    model and does not count)."""
    scored = rows.loc[rows["protocol"].isin(_STRATEGY_PROTOCOLS), "method"]
    return tuple(dict.fromkeys(str(m) for m in scored if isinstance(m, str)))


def _values(rows, column) -> list:
    if column not in rows:
        return []
    return list(dict.fromkeys(tuple(v) if isinstance(v, list) else v for v in rows[column]))


def _seeds_and_densities(rows) -> str:
    seeds = sorted(int(v) for v in _values(rows, "seed"))
    densities = sorted(float(d) for d in _values(rows[rows["protocol"] != "none"], "density"))
    return (f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}); "
            f"densities {', '.join(f'{d:g}' for d in densities)}")


def _augmentation(rows) -> str | None:
    augment = _values(rows, "augment")
    if len(augment) != 1:
        return None
    if not augment[0]:
        return "no data augmentation"
    shifts = [int(v) for v in _values(rows, "max_shift") if v == v] or [4]  # rows before the column: 4 px
    shift = f"shifts of at most {shifts[0]} px" if len(shifts) == 1 else "shifts"
    flips = {bool(v) for v in _values(rows, "hflip") if v == v} or {True}    # rows before the column: flips
    if flips == {False}:
        return f"final models trained with data augmentation ({shift}, no flips)"
    flip = "flips" if flips == {True} else "flips in some runs"
    return f"final models trained with data augmentation ({shift} and horizontal {flip})"


def describe_setting(rows) -> str:
    """One setting's runs in words (``rows``: the result rows of one setting, from the result
    columns only): the model (:func:`dropkit.models.describe_model`), training-set size, epochs
    and LR drops, batch size, learning rate and weight decay, augmentation, device, seeds,
    densities, the query-model training and the protocol choices that apply to its runs. Without
    a title; :func:`setting_descriptions` pairs it with one."""
    from dropkit.models import describe_model

    rows = _with_labels(rows)
    check_one_setting(rows)
    parts = [describe_model(m) for m in _values(rows, "model")]
    sizes = _values(rows, "num_train")
    if len(sizes) == 1:
        parts.append(f"{sizes[0]} training samples")
    training = []
    epochs, drops = _values(rows, "epochs"), _values(rows, "drop_epochs")
    if len(epochs) == 1:
        text = f"{epochs[0]} epochs"
        if len(drops) == 1 and drops[0]:
            text += f" (LR x0.2 at epochs {', '.join(str(e) for e in drops[0])})"
        training.append(text)
    for column, name in (("batch_size", "batch"), ("lr", "LR"), ("weight_decay", "weight decay")):
        values = _values(rows, column)
        if len(values) == 1:
            training.append(f"{name} {values[0]:g}")
    if training:
        parts.append(", ".join(training))
    augmentation = _augmentation(rows)
    if augmentation:
        parts.append(augmentation)
    devices = _values(rows, "device")
    if len(devices) == 1:
        device = str(devices[0])
        parts.append("trained on a GPU" if device.startswith("cuda") else f"trained on a {device.upper()}")
    parts.append(_seeds_and_densities(rows))
    queried = rows[rows["method"].notna() & rows["protocol"].isin(_STRATEGY_PROTOCOLS + ("random+drop",))]
    short = [METHOD_NAMES[m] for m in ("el2n", "grand") if (queried["method"] == m).any()]
    short += ["DRoP"] if queried["protocol"].isin(("random+drop", "strategy+drop")).any() else []
    q_epochs, q_seeds = _values(queried, "query_epochs"), _values(queried, "query_seeds")
    if short and len(q_epochs) == 1 and len(q_seeds) == 1:
        parts.append(f"{'/'.join(short)} query models trained {q_epochs[0]:g} epoch{'s' if q_epochs[0] != 1 else ''}"
                     f" and averaged over {q_seeds[0]} query seed{'s' if q_seeds[0] != 1 else ''}")
    du = rows[rows["method"] == "dynamic_uncertainty"]
    if not du.empty and "du_window" in du:
        windows = _values(du, "du_window")
        if len(windows) == 1:
            parts.append(f"Dynamic Uncertainty window {windows[0]} epochs")
    if "cdbw_weights" in rows:
        rules = _values(rows[rows["cdbw"].astype(bool) | rows["query_cdbw"].astype(bool)], "cdbw_weights")
        if len(rules) == 1:
            parts.append("CDB-W weights (1 - r_k)/Z (DRoP's normaliser)" if rules[0] == "paper"
                         else "CDB-W weights max(1 - r_k, 0.001) rescaled to mean 1 over classes")
    long_drop = rows[(rows["protocol"] == "strategy+drop") & ~rows["method"].isin(("el2n", "grand"))]
    if not long_drop.empty and "recall_query" in long_drop:
        sources = _values(long_drop, "recall_query")
        if len(sources) == 1:
            parts.append("Strategy+DRoP quotas from DRoP's short EL2N query models" if sources[0] == "short"
                         else "Strategy+DRoP quotas from the Strategy's own query model")
    return "; ".join(parts)


def setting_descriptions(frame) -> list[tuple[str, str]]:
    """``[(title, description)]``, one per setting of ``frame`` (:func:`split_setups`,
    :func:`describe_setting`)."""
    return [(title, describe_setting(rows)) for title, rows in split_setups(frame)]


def labels_by_setting(frame, labels=None) -> list[tuple[str, object, list[str]]]:
    """``[(title, rows, drawn)]`` per setting of ``frame`` (:func:`split_setups`): ``drawn`` are
    the pruned curves of ``labels`` (default: all) that the setting has rows of, in ``labels``
    order (else in order of appearance). A curve a setting does not run is simply not in its
    ``drawn``."""
    out = []
    for title, rows in split_setups(frame):
        present = list(dict.fromkeys(rows.loc[rows["protocol"] != "none", "label"]))
        drawn = present if labels is None else [label for label in labels if label in present]
        out.append((title, rows, drawn))
    return out


def cdbw_weight_history(frame, label: str, density: float | None = None):
    """The CDB-W weights each epoch of the final trainings of curve ``label`` used, from the rows'
    ``cdbw_val_recalls_per_epoch`` ([E, K] validation recalls after each epoch; the weights of
    epoch e + 1 come from the recalls after epoch e, :func:`dropkit.train.cdbw_class_weights`
    with the run's ``cdbw_weights`` rule and its kept class counts).

    Returns:
        DataFrame with one row per (seed, epoch): ``seed``, ``epoch`` (the epoch trained with these
        weights, 1-based from the second), ``val_worst_recall`` and ``val_accuracy`` (the recalls
        behind the weights, worst and mean over classes), ``max_weight``, ``min_weight`` and
        ``worst_class`` (the class index of the lowest recall); empty if the rows lack the column.
    """
    import pandas as pd

    from dropkit.train import cdbw_class_weights

    frame = _with_labels(frame)
    rows = frame[frame["label"] == label]
    if density is not None:
        rows = rows[np.isclose(rows["density"].astype(float), density)]
    out = []
    if "cdbw_val_recalls_per_epoch" not in rows:
        return pd.DataFrame(out)
    for row in rows.to_dict("records"):
        history = row.get("cdbw_val_recalls_per_epoch")
        if not isinstance(history, list):
            continue
        rule = row.get("cdbw_weights") if isinstance(row.get("cdbw_weights"), str) else "floored"
        for epoch, recalls in enumerate(np.asarray(history, dtype=float)[:-1], start=1):
            weights = cdbw_class_weights(recalls, rule, row["class_counts"])
            out.append({"seed": int(row["seed"]), "epoch": epoch, "val_worst_recall": float(np.nanmin(recalls)),
                        "val_accuracy": float(np.nanmean(recalls)), "max_weight": float(weights.max()),
                        "min_weight": float(weights.min()), "worst_class": int(np.nanargmin(recalls))})
    return pd.DataFrame(out)


def cdbw_seed_table(history, final, class_names):
    """Per seed, what :func:`cdbw_weight_history` shows, and where its final model ends: one row
    per seed of ``history``.

    Args:
        history: :func:`cdbw_weight_history`'s table (one row per seed and weighted epoch).
        final: the runs behind it (one row per seed: ``seed``, ``test_recalls`` [K]).
        class_names: [K] class names.

    Returns:
        DataFrame indexed by ``seed`` with ``lowest validation recall, epoch by epoch`` (the class
        names in epoch order), ``epochs < 5 %`` (weighted epochs whose weights come from a class
        below 5 % validation recall), ``largest weight`` and, of the final model, ``worst test
        class`` and ``its test recall %``. Raises ``ValueError`` if a seed has no final run.
    """
    import pandas as pd

    finals = {int(row["seed"]): np.asarray(row["test_recalls"], dtype=float) for row in final.to_dict("records")}
    out = []
    for seed, rows in history.sort_values("epoch").groupby("seed"):
        recalls = finals.get(int(seed))
        if recalls is None:
            raise ValueError(f"no final run of seed {seed} in `final`")
        worst = int(np.nanargmin(recalls))
        out.append({"seed": int(seed),
                    "lowest validation recall, epoch by epoch": ", ".join(class_names[c] for c in rows["worst_class"]),
                    "epochs < 5 %": int((rows["val_worst_recall"] < 0.05).sum()),
                    "largest weight": float(rows["max_weight"].max()),
                    "worst test class": class_names[worst], "its test recall %": 100 * float(recalls[worst])})
    return pd.DataFrame(out).set_index("seed")
