"""Plotting helpers shared by the book's notebooks.

:func:`show_figure` is how every notebook publishes a figure: it renders the matplotlib figure to
PNG and displays one self-contained HTML ``<figure>`` whose ``id`` names the paper figure it
reproduces (``paper-figure-3``, ``paper-figure-4a`` ...) and whose caption states the data, model
and scale. The book's tests look figures up by that ``id``.

The result figures of chapters 02 and 03 (paper Figures 1, 2, 5, 6, 10-14) are drawn from the
tidy results table by the ``plot_*`` functions (figure level) and ``draw_*`` functions (one
axes); the numbers they show come from small table functions (:func:`metric_by_density`,
:func:`mean_class_densities`, :func:`min_samples_per_class`, :func:`class_density_correlation`
...). Every curve has one colour throughout the book (:func:`method_color`).
"""

from __future__ import annotations

import base64
import html
import io
import re

import numpy as np

_FIGURE_ID = re.compile(r"^[0-9]+[a-z]?(-[a-z0-9]+)*$")


def figure_html(fig, paper_figure: str, caption: str, *, dpi: int = 110) -> str:
    """Return the HTML ``<figure id="paper-figure-{paper_figure}">`` for a matplotlib figure.

    ``paper_figure`` is the paper's figure number with an optional panel/suffix, e.g. ``"3"``,
    ``"4a"`` or ``"1-worst"``; ``caption`` is plain text (escaped here).
    """
    if not _FIGURE_ID.match(str(paper_figure)):
        raise ValueError(f"paper_figure={paper_figure!r} must look like '3', '4a' or '1-worst'")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    number = re.match(r"[0-9]+", str(paper_figure)).group(0)
    alt = html.escape(f"Reproduction of paper Figure {paper_figure}", quote=True)
    return (
        f'<figure id="paper-figure-{paper_figure}" class="dropkit-figure">'
        f'<img src="data:image/png;base64,{data}" alt="{alt}" style="max-width:100%"/>'
        f"<figcaption><strong>Paper Figure {number}"
        f"{'' if str(paper_figure) == number else ' (' + html.escape(str(paper_figure)) + ')'}.</strong> "
        f"{html.escape(caption)}</figcaption></figure>"
    )


def show_figure(fig, paper_figure: str, caption: str) -> None:
    """Display ``fig`` in a notebook as a captioned HTML figure and close it (see :func:`figure_html`).

    Needs IPython (installed with the ``book`` extra); outside a notebook use :func:`figure_html`.
    """
    import matplotlib.pyplot as plt

    try:
        from IPython.display import HTML, display
    except ImportError:
        raise ImportError("show_figure displays in a notebook and needs IPython (pip install "
                          "'dropkit[book]'); outside a notebook use figure_html(fig, ...)") from None

    display(HTML(figure_html(fig, paper_figure, caption)))
    plt.close(fig)


# =========================================================================== result figures
#
# The functions below draw the paper's result figures from the tidy results table of
# ``dropkit.sweep.results_frame`` / ``ResultStore.frame()``: one row per run with the spec
# columns (``dataset``, ``model``, ``protocol``, ``method``, ``density``, ``seed`` ...), the test
# summaries (``test_accuracy``, ``test_worst_class``, ``test_gap``, ``test_std``: fractions in
# [0, 1]) and the per-class lists ``test_recalls`` [K], ``class_counts`` [K] (kept per class) and
# ``class_sizes`` [K] (N_k before pruning). Table maths (means and min/max over seeds, class
# densities, correlations, samples per class) are small functions of their own; the ``plot_*``
# functions only draw what they return.

#: The robustness metrics of the paper (Section 2) and their axis labels.
METRICS: dict[str, str] = {
    "test_accuracy": "average test accuracy",
    "test_worst_class": "worst-class accuracy",
    "test_gap": "max - min class accuracy",
    "test_std": "std of class accuracies",
}
#: Densities over which the paper averages the class-accuracy/class-density correlation (Fig. 13).
CORRELATION_DENSITIES: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
#: Display names of the score methods.
METHOD_NAMES: dict[str, str] = {
    "el2n": "EL2N",
    "grand": "GraNd",
    "forgetting": "Forgetting",
    "dynamic_uncertainty": "Dynamic Uncertainty",
    "coreset": "CoreSet",
    "ssp": "SSP",
}
FULL_DATASET = "Full dataset"
#: One colour per score method (its plain Strategy curve) ...
METHOD_COLORS: dict[str, str] = {
    "el2n": "tab:blue",
    "grand": "tab:orange",
    "forgetting": "tab:green",
    "dynamic_uncertainty": "tab:purple",
    "coreset": "tab:brown",
    "ssp": "tab:olive",
}
#: ... and one per protocol that is not the plain strategy.
PROTOCOL_COLORS: dict[str, str] = {
    "none": "black",
    "random": "tab:gray",
    "random+drop": "tab:red",
    "random+strategyq": "tab:cyan",
    "strategy+drop": "tab:pink",
}
#: Group-robustness metrics (chapter 06) and their axis labels.
GROUP_METRICS: dict[str, str] = {
    "test_worst_group": "worst-group accuracy",
    "test_group_gap": "max - min group accuracy",
    "test_group_std": "std of group accuracies",
}
CDBW_FULL_DATASET = "CDB-W (full dataset)"
#: Colours of the training and quota variants of chapters 04-06 (:func:`curve_label`).
VARIANT_COLORS: dict[str, str] = {
    CDBW_FULL_DATASET: "tab:purple",
    "EL2N+CDB-W": "tab:purple",
    "CDB-W+EL2N": "tab:olive",
    "Random+DRoP (rule counts)": "tab:orange",
    "Random+DRoP (group quotas)": "tab:brown",
    "EL2N+DRoP (group quotas)": "tab:cyan",
}
_REQUIRED = ("dataset", "model", "protocol", "method", "density", "seed")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def method_label(protocol: str, method: str | None = None) -> str:
    """The name of a curve: ``"Full dataset"``, ``"Random"``, ``"Random+DRoP"``, ``"EL2N"``,
    ``"Random+EL2NQ"`` (random within the strategy's class counts), ``"EL2N+DRoP"``.

    ``method`` is ignored for ``"none"``, ``"random"`` and ``"random+drop"`` (whose method only
    names the query model of the DRoP recalls).
    """
    if protocol == "none":
        return FULL_DATASET
    if protocol == "random":
        return "Random"
    if protocol == "random+drop":
        return "Random+DRoP"
    if protocol not in ("strategy", "random+strategyq", "strategy+drop"):
        raise ValueError(f"protocol={protocol!r} is not a pruning protocol")
    if _missing(method) or method not in METHOD_NAMES:
        raise ValueError(f"method={method!r} is not a score method ({', '.join(METHOD_NAMES)})")
    name = METHOD_NAMES[method]
    return {"strategy": name, "random+strategyq": f"Random+{name}Q", "strategy+drop": f"{name}+DRoP"}[protocol]


def method_color(protocol: str, method: str | None = None) -> str:
    """The matplotlib colour of :func:`method_label`'s curve; the same everywhere in the book."""
    method_label(protocol, method)  # validates
    if protocol == "strategy":
        return METHOD_COLORS[method]
    return PROTOCOL_COLORS[protocol]


def curve_label(protocol: str, method: str | None = None, *, cdbw: bool = False,
                query_cdbw: bool = False, quota_rule: str = "paper",
                drop_over: str = "classes") -> str:
    """:func:`method_label` with the variants of chapters 04-06 spelled out.

    ``cdbw`` (CDB-W on the final model): ``"CDB-W (full dataset)"``, ``"EL2N+CDB-W"``;
    ``query_cdbw`` (CDB-W query models): ``"CDB-W+EL2N"``; DRoP with quota rule ``"counts"``:
    ``"Random+DRoP (rule counts)"``; DRoP quotas over groups: ``"EL2N+DRoP (group quotas)"``.
    Runs of the paper's defaults keep :func:`method_label`'s names.
    """
    label = method_label(protocol, method)
    if protocol == "none":
        return CDBW_FULL_DATASET if cdbw else label
    if query_cdbw:
        label = f"CDB-W+{label}"
    if cdbw:
        label = f"{label}+CDB-W"
    if protocol in ("random+drop", "strategy+drop"):
        if quota_rule != "paper":
            label += f" (rule {quota_rule})"
        if drop_over != "classes":
            label += f" ({drop_over[:-1] if drop_over.endswith('s') else drop_over} quotas)"
    return label


def _row_value(row, name: str, default):
    value = row.get(name, default)
    return default if _missing(value) else value


def labelled(frame):
    """A copy of ``frame`` with ``label`` and ``color`` columns (see :func:`curve_label`: the
    variant columns ``cdbw``, ``query_cdbw``, ``quota_rule`` and ``drop_over`` count when
    present; missing ones take the paper's defaults).

    Raises ``ValueError`` naming the missing columns if ``frame`` lacks the spec columns.
    """
    missing = [c for c in _REQUIRED if c not in frame]
    if missing:
        raise ValueError(f"frame lacks the result columns {missing}")
    out = frame.copy()
    defaults = {"cdbw": False, "query_cdbw": False, "quota_rule": "paper", "drop_over": "classes"}
    labels, colors = [], []
    for row in out.to_dict("records"):
        variant = {name: _row_value(row, name, default) for name, default in defaults.items()}
        label = curve_label(row["protocol"], row["method"], **variant)
        labels.append(label)
        colors.append(VARIANT_COLORS.get(label, method_color(row["protocol"], row["method"])))
    out["label"], out["color"] = labels, colors
    return out


def _with_labels(frame):
    return frame if "label" in frame else labelled(frame)


def setup_title(dataset: str, model: str) -> str:
    """``"fashion-mnist, MLP"`` style title of a model-dataset pair."""
    return f"{dataset}, {model.upper() if len(model) <= 5 else model}"


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


# --------------------------------------------------------------------------- drawing


def _axis_label(metric: str) -> str:
    return METRICS.get(metric) or GROUP_METRICS.get(metric) or metric


def _is_accuracy_metric(metric: str) -> bool:
    """Whether ``metric`` is a fraction in [0, 1] shown as a percentage."""
    return metric in METRICS or metric in GROUP_METRICS


def _percent_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(FuncFormatter(lambda x, _: f"{100 * x:.6g}%"))


def _curve_order(frame, labels) -> list[str]:
    present = list(dict.fromkeys(_with_labels(frame).query("protocol != 'none'")["label"]))
    return present if labels is None else [label for label in labels if label in present]


def draw_metric_curve(ax, frame, metric: str = "test_accuracy", *, labels=None) -> None:
    """Draw ``metric`` against density on ``ax``: one line (mean over seeds) with a min/max band
    per curve, the full-dataset mean as a dashed black line with its min/max band, and every
    other full-dataset curve (e.g. CDB-W on the full dataset) as a dotted line in its colour."""
    frame = _with_labels(frame)
    table = metric_by_density(frame, metric)
    for label in _curve_order(frame, labels):
        rows = table[table["label"] == label]
        color = rows["color"].iloc[0]
        ax.plot(rows["density"], rows["mean"], marker="o", markersize=4, color=color, label=label,
                linewidth=2.2 if label == "Random+DRoP" else 1.5)
        ax.fill_between(rows["density"], rows["min"], rows["max"], color=color, alpha=0.15, linewidth=0)
    full = full_dataset_metric(frame, metric)
    if full is not None:
        ax.axhline(full["mean"], color="black", linestyle="--", linewidth=1.2, label=FULL_DATASET)
        ax.axhspan(full["min"], full["max"], color="black", alpha=0.08, linewidth=0)
    for label in dict.fromkeys(frame.loc[frame["protocol"] == "none", "label"]):
        if label != FULL_DATASET:
            other = full_dataset_metric(frame, metric, label)
            color = frame.loc[frame["label"] == label, "color"].iloc[0]
            ax.axhline(other["mean"], color=color, linestyle=":", linewidth=1.8, label=label)
    ax.set_xlabel("dataset density $d$")
    ax.set_ylabel(_axis_label(metric))
    ax.set_xlim(0, 1)
    if _is_accuracy_metric(metric):
        _percent_axis(ax)
    ax.grid(True, alpha=0.3)


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


def _draw_tradeoff_points(ax, table, order, full_acc, full_worst, *, scale: float = 1.0) -> None:
    for label in order:
        rows = table[table["label"] == label].sort_values("density")
        if rows.empty:
            continue
        color = rows["color"].iloc[0]
        ax.plot(rows["worst_class"], rows["accuracy"], color=color, alpha=0.8, label=label,
                linewidth=2.0 if label == "Random+DRoP" else 1.2)
        ax.scatter(rows["worst_class"], rows["accuracy"], s=scale * (12 + 50 * rows["density"]), color=color, zorder=3)
    if full_acc is not None:
        ax.scatter([full_worst["mean"]], [full_acc["mean"]], marker="*", s=scale * 220, color="black",
                   zorder=4, label=FULL_DATASET)


def draw_tradeoff(ax, frame, *, labels=None, window=None) -> None:
    """Average accuracy (y) against worst-class accuracy (x), one point per density (mean over
    seeds, marker size grows with density) joined per curve; the full dataset is a black star.
    ``window`` = (x0, x1, y0, y1) limits the axes to a zoomed region (see :func:`zoom_window`)."""
    table = tradeoff_table(frame)
    full_acc = full_dataset_metric(frame, "test_accuracy")
    full_worst = full_dataset_metric(frame, "test_worst_class")
    for label in _curve_order(frame, labels):
        rows = table[table["label"] == label].sort_values("density")
        color = rows["color"].iloc[0]
        ax.plot(rows["worst_class"], rows["accuracy"], color=color, alpha=0.8, label=label,
                linewidth=2.0 if label == "Random+DRoP" else 1.2)
        ax.scatter(rows["worst_class"], rows["accuracy"], s=12 + 50 * rows["density"], color=color, zorder=3)
    if full_acc is not None:
        ax.scatter([full_worst["mean"]], [full_acc["mean"]], marker="*", s=220, color="black", zorder=4,
                   label=FULL_DATASET)
    if window is not None:
        ax.set_xlim(*window[:2])
        ax.set_ylim(*window[2:])
    ax.set_xlabel("worst-class accuracy (marker size: density)")
    ax.set_ylabel("average test accuracy")
    _percent_axis(ax, "x")
    _percent_axis(ax, "y")
    ax.grid(True, alpha=0.3)


def _tradeoff_window(frame, margin):
    full_acc = full_dataset_metric(frame, "test_accuracy")
    if margin is None or full_acc is None:
        return None
    full_worst = full_dataset_metric(frame, "test_worst_class")
    return zoom_window(tradeoff_table(frame), full_acc["mean"], full_worst["mean"], margin=margin)


def _panels(frame, row: str | None):
    frame = _with_labels(frame)
    if row is None:
        return split_setups(frame)
    if row not in frame:
        raise ValueError(f"row={row!r} is not a column of the results")
    return [(str(value), frame[frame[row] == value]) for value in dict.fromkeys(frame[row])]


def _legend(target, axes, *, loc: str = "outside lower center") -> None:
    """One legend on ``target`` (a figure or subfigure) with every labelled artist of ``axes``."""
    handles = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if not handles:
        return
    ncol = 1 if "right" in loc else (len(handles) if len(handles) <= 6 else (len(handles) + 1) // 2)
    target.legend(handles.values(), handles.keys(), loc=loc, ncol=ncol, frameon=False)


def _row_figure(n_rows: int, n_cols: int, panel_size, titles):
    """A constrained-layout figure with one subfigure per row of panels (titled when several)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(layout="constrained",
                     figsize=(panel_size[0] * n_cols, (panel_size[1] + 0.3) * n_rows + 0.8))
    subfigs = fig.subfigures(len(titles), 1, squeeze=False)[:, 0]
    rows_each = n_rows // len(titles)
    blocks = []
    for subfig, title in zip(subfigs, titles):
        axes = subfig.subplots(rows_each, n_cols, squeeze=False)
        subfig.suptitle(title, fontsize=11, fontweight="bold")
        blocks.append(axes)
    return fig, subfigs, blocks


def plot_density_curves(frame, metrics=("test_accuracy",), *, tradeoff: bool = False, row: str | None = None,
                        labels=None, panel_size=(4.6, 3.4), zoom: float | None = 0.05):
    """Metric-vs-density curves (paper Figures 1, 5, 10, 11, 12).

    One row of panels per model-dataset pair (or per value of the column ``row``; its title above
    it), one column per metric in ``metrics`` and, with ``tradeoff``, a column of average vs
    worst-class accuracy, followed (when low densities stretch its axes) by the same plot zoomed
    on the points within ``zoom`` of the full dataset's average accuracy (:func:`zoom_window`;
    ``zoom=None``: no zoomed panel). Lines: mean over seeds; bands: min/max over seeds; dashed
    black: full dataset. ``labels`` fixes the order of the curves. One legend below the figure
    when every row shows the same curves, else one legend right of each row. Returns the figure.
    """
    metrics = tuple(metrics)
    if not metrics and not tradeoff:
        raise ValueError("metrics must name at least one metric (or pass tradeoff=True)")
    panels = _panels(frame, row)
    windows = [_tradeoff_window(rows, zoom) if tradeoff else None for _, rows in panels]
    zoomed = any(w is not None for w in windows)
    ncols = len(metrics) + int(tradeoff) + int(zoomed)
    fig, subfigs, blocks = _row_figure(len(panels), ncols, panel_size, [title for title, _ in panels])
    for axes, (title, rows), window in zip(blocks, panels, windows):
        axes_row = axes[0]
        for ax, metric in zip(axes_row, metrics):
            draw_metric_curve(ax, rows, metric, labels=labels)
            ax.set_title(_axis_label(metric), fontsize=10)
        if tradeoff:
            ax = axes_row[len(metrics)]
            draw_tradeoff(ax, rows, labels=labels)
            ax.set_title("average vs worst-class accuracy", fontsize=10)
        if zoomed and window is None:
            axes_row[-1].remove()
        elif zoomed:
            draw_tradeoff(axes_row[-1], rows, labels=labels, window=window)
            axes_row[-1].set_title(f"zoom: within {100 * zoom:g} pp of the full dataset", fontsize=10)
            ax.indicate_inset_zoom(axes_row[-1], edgecolor="0.4")
    if len({tuple(_curve_order(rows, labels)) for _, rows in panels}) == 1:
        _legend(fig, [b for block in blocks for b in block.ravel() if b.figure is not None])
    else:
        for subfig, axes in zip(subfigs, blocks):
            _legend(subfig, [b for b in axes.ravel() if b.figure is not None], loc="outside right center")
    return fig


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


def plot_query_length_curves(frame, metrics=("test_accuracy", "test_worst_class"), *,
                             reference_query: int | None = None,
                             reference_label: str = "query length used elsewhere",
                             label: str = "Random+DRoP", panel_size=(5.0, 4.0)):
    """Final performance against the query models' training length (paper Figure 15).

    One panel per metric; one line per density (mean over seeds, min/max band) over the query
    epochs (log2 axis); dashed black: the full dataset; dotted grey: ``reference_query``, the
    query length the other chapters use (legend ``reference_label``). ``label`` names the curve
    in the legend. Returns the figure.
    """
    import matplotlib.pyplot as plt

    metrics = tuple(metrics)
    if not metrics:
        raise ValueError("metrics must name at least one metric")
    frame = _with_labels(frame)
    pruned = frame[frame["protocol"] != "none"]
    if pruned.empty:
        raise ValueError("frame holds no pruned runs")
    lengths = sorted(int(q) for q in set(pruned["query_epochs"]))
    colors = _density_colors(sorted(float(d) for d in set(pruned["density"])))
    fig, axes = plt.subplots(1, len(metrics), figsize=(panel_size[0] * len(metrics), panel_size[1]),
                             squeeze=False, layout="constrained")
    for ax, metric in zip(axes[0], metrics):
        table = metric_by_query_length(frame, metric)
        for density, rows in table.groupby("density", sort=True):
            color = colors[float(density)]
            ax.plot(rows["query_epochs"], rows["mean"], marker="o", color=color,
                    label=f"{label}, d = {density:g}")
            ax.fill_between(rows["query_epochs"], rows["min"], rows["max"], color=color, alpha=0.15,
                            linewidth=0)
        full = full_dataset_metric(frame, metric)
        if full is not None:
            ax.axhline(full["mean"], color="black", linestyle="--", linewidth=1.2, label=FULL_DATASET)
        if reference_query is not None:
            ax.axvline(reference_query, color="gray", linestyle=":", linewidth=1.2,
                       label=f"{reference_label} ({reference_query})")
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [str(q) for q in lengths])
        ax.set_xlabel("query model training (epochs)")
        ax.set_ylabel(_axis_label(metric))
        ax.set_title(_axis_label(metric), fontsize=10)
        if _is_accuracy_metric(metric):
            _percent_axis(ax)
        ax.grid(True, alpha=0.3)
    _legend(fig, axes)
    return fig


def draw_sorted_class_densities(ax, frame, label: str, densities=None, *, spc_density: float = 0.1) -> None:
    """Class densities of ``label`` sorted in decreasing order, one line per dataset density
    (dotted: the uniform density d); the title reports the minimum samples per class (SPC) at
    ``spc_density`` (or at the smallest density present)."""
    by_density = mean_class_densities(frame, label)
    chosen = sorted(by_density) if densities is None else [d for d in by_density if np.any(np.isclose(d, densities))]
    colors = _density_colors(chosen)
    for density in chosen:
        values = np.sort(by_density[density])[::-1]
        rank = np.arange(1, len(values) + 1)
        ax.plot(rank, values, color=colors[density], marker="o" if len(values) <= 20 else None,
                markersize=3, label=f"d = {density:g}")
        ax.axhline(density, color=colors[density], linestyle=":", linewidth=0.8)
    spc_at = spc_density if any(np.isclose(d, spc_density) for d in by_density) else min(by_density)
    spc = min_samples_per_class(frame, label, spc_at)
    ax.set_title(f"{label}: min SPC at d={spc_at:g} is {spc}", fontsize=10)
    ax.set_xlabel("class rank (by class density)")
    ax.set_ylabel("class density (kept / $N_k$)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)


def _density_colors(densities) -> dict[float, tuple]:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    densities = list(densities)
    if len(densities) == 1:
        return {densities[0]: cmap(0.4)}
    return {d: cmap(0.9 * i / (len(densities) - 1)) for i, d in enumerate(densities)}


def draw_class_accuracy_vs_density(ax, frame, label: str, densities=None) -> None:
    """Full-dataset class accuracy (y) against the class density ``label`` keeps (x), one colour
    per dataset density; the title reports the correlation averaged over the densities
    (:func:`class_density_correlation`)."""
    accuracy = full_dataset_class_accuracy(frame)
    by_density = mean_class_densities(frame, label)
    chosen = correlation_densities(by_density) if densities is None else [
        d for d in by_density if np.any(np.isclose(d, densities))]
    mean_r, _ = class_density_correlation(frame, label, chosen)
    colors = _density_colors(chosen)
    for density in chosen:
        ax.scatter(by_density[density], accuracy, color=colors[density], s=18, label=f"d = {density:g}")
    ax.set_title(f"{label}: mean corr = {mean_r:+.2f}", fontsize=10)
    ax.set_xlabel("class density (kept / $N_k$)")
    ax.set_ylabel("full-dataset class accuracy")
    ax.set_xlim(-0.02, 1.02)
    _percent_axis(ax)
    ax.grid(True, alpha=0.3)


def _class_grid(frame, labels, draw, *, row, densities, panel_size, max_columns):
    panels = _panels(frame, row)
    if labels is None:
        labels = _curve_order(frame, None)
    labels = list(labels)
    if not labels:
        raise ValueError("labels must name at least one pruned curve")
    if not isinstance(max_columns, int) or isinstance(max_columns, bool) or max_columns < 1:
        raise ValueError(f"max_columns={max_columns!r} must be a positive integer")
    ncols = min(len(labels), max_columns)
    per_panel = -(-len(labels) // ncols)  # rows of axes for one model-dataset pair
    fig, _, blocks = _row_figure(len(panels) * per_panel, ncols, panel_size, [title for title, _ in panels])
    for axes, (_, rows) in zip(blocks, panels):
        flat = axes.ravel()
        for ax, label in zip(flat, labels):
            draw(ax, rows, label, densities)
        for ax in flat[len(labels):]:
            ax.remove()
    _legend(fig, blocks[0].ravel()[:1])
    return fig


def plot_sorted_class_densities(frame, labels=None, densities=None, *, row: str | None = None,
                                panel_size=(3.8, 3.2), max_columns: int = 3):
    """Sorted class densities per curve (paper Figures 2 left, 6 left, 14): one panel per label
    (``max_columns`` per row of panels), one block of rows per model-dataset pair. Returns the
    matplotlib figure."""
    return _class_grid(frame, labels, draw_sorted_class_densities, row=row, densities=densities,
                       panel_size=panel_size, max_columns=max_columns)


def plot_class_accuracy_vs_density(frame, labels=None, densities=None, *, row: str | None = None,
                                   panel_size=(3.8, 3.2), max_columns: int = 3):
    """Full-dataset class accuracy against class density per curve, with the correlation
    averaged over densities (paper Figures 2 right, 6 right, 13): one panel per label
    (``max_columns`` per row of panels). Returns the figure."""
    return _class_grid(frame, labels, draw_class_accuracy_vs_density, row=row, densities=densities,
                       panel_size=panel_size, max_columns=max_columns)


def plot_class_profile(frame, label: str, densities=None, *, panel_size=(4.6, 3.6)):
    """Paper Figures 2 and 6: sorted class densities (left) and full-dataset class accuracy vs
    class density (right) for one curve, one row per model-dataset pair."""
    panels = _panels(frame, None)
    fig, _, blocks = _row_figure(len(panels), 2, panel_size, [title for title, _ in panels])
    for axes, (_, rows) in zip(blocks, panels):
        left, right = axes[0]
        draw_sorted_class_densities(left, rows, label, densities)
        draw_class_accuracy_vs_density(right, rows, label, densities)
    _legend(fig, blocks[0].ravel()[:1])
    return fig


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
