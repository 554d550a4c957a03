"""The book's figure families, drawn from the tables of :mod:`dropkit.tables`.

``draw_*`` functions draw on one axes; ``plot_*`` functions return a whole figure, laid out with
at most :data:`MAX_COLUMNS` panels side by side so that every panel stays readable when the
figure fills the book's text column. Curves keep one colour and line style across the book
(:mod:`dropkit.curves`); accuracies are shown as percentages. :mod:`dropkit.publish` puts a
figure into the book.

Every ``draw_*`` function records the numbers it draws on its axes (:func:`figure_data` returns
them for a whole figure, one row per plotted point): the book offers them as a CSV file under
each figure.
"""

from __future__ import annotations

import numpy as np

from dropkit.curves import FULL_DATASET, GROUP_METRICS, METRICS, _with_labels, curve_style
from dropkit.tables import (
    class_density_correlation,
    correlation_densities,
    full_dataset_class_accuracy,
    full_dataset_metric,
    labels_by_setting,
    mean_class_densities,
    metric_by_density,
    metric_by_query_length,
    min_samples_per_class,
    split_setups,
    tradeoff_table,
    zoom_window,
)

#: Panels side by side in one figure: two fill the ~800-px text column at >= 330 px each.
MAX_COLUMNS = 2
#: Axis label of the density axis, the same in every figure.
DENSITY_AXIS = "dataset density $d$"
#: The full dataset's line: black and dash-dotted, unlike every curve (the variants of
#: :data:`dropkit.curves.VARIANT_COLORS` are dashed in dark colours).
FULL_DATASET_LINE = {"color": "black", "linestyle": "-.", "linewidth": 1.4}
#: Columns of :func:`figure_data`.
DATA_COLUMNS = ("block", "panel", "curve", "density", "x name", "x", "y name", "y", "y min", "y max", "n")


# --------------------------------------------------------------------------- the plotted numbers


def record(ax, curve: str, x_name: str, x, y_name: str, y, *, low=None, high=None, n=None,
           density=None) -> None:
    """Record on ``ax`` the points of one drawn curve (for :func:`figure_data`): ``x``, ``y``
    (equal-length 1-D arrays or scalars), optionally their band ``low``/``high``, the number of
    values ``n`` behind each point and the dataset ``density`` of each point. The axis names are
    stored without TeX's ``$`` (a CSV is read as plain text)."""
    x, y = np.atleast_1d(np.asarray(x, dtype=object)), np.atleast_1d(np.asarray(y, dtype=np.float64))
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D arrays of one shape, got {x.shape} and {y.shape}")

    def column(values):
        return np.broadcast_to(np.asarray(np.nan if values is None else values, dtype=object), y.shape)

    rows = ax.__dict__.setdefault("_dropkit_rows", [])
    for xi, yi, lo, hi, ni, di in zip(x, y, column(low), column(high), column(n), column(density)):
        rows.append({"curve": curve, "density": di, "x name": x_name.replace("$", ""), "x": xi,
                     "y name": y_name.replace("$", ""), "y": yi,
                     "y min": lo, "y max": hi, "n": ni})


def figure_data(fig):
    """The numbers ``fig`` plots, as recorded by the ``draw_*`` functions: a DataFrame with
    :data:`DATA_COLUMNS`, one row per plotted point; ``block`` is the title of the block of panels
    (a setting; empty for a figure without blocks), ``panel`` the axes' title. Empty when nothing
    was recorded (a figure drawn without this module)."""
    import pandas as pd

    rows = []
    for ax in fig.get_axes():
        container = ax.get_figure(root=False)
        suptitle = getattr(container, "_suptitle", None)
        block = suptitle.get_text() if suptitle is not None and container is not fig else ""
        rows += [{"block": block, "panel": ax.get_title(), **row} for row in ax.__dict__.get("_dropkit_rows", [])]
    return pd.DataFrame(rows, columns=list(DATA_COLUMNS))


# --------------------------------------------------------------------------- drawing


def _axis_label(metric: str) -> str:
    return METRICS.get(metric) or GROUP_METRICS.get(metric) or metric


def _is_accuracy_metric(metric: str) -> bool:
    """Whether ``metric`` is a fraction in [0, 1] shown as a percentage."""
    return metric in METRICS or metric in GROUP_METRICS


def _percent_axis(ax, axis: str = "y") -> None:
    """Format a [0, 1] axis as whole percentages (``45%``), one decimal when the range is narrow."""
    from matplotlib.ticker import PercentFormatter

    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    decimals = 0 if high - low > 0.05 else 1
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(xmax=1, decimals=decimals))


def _curve_order(frame, labels) -> list[str]:
    present = list(dict.fromkeys(_with_labels(frame).query("protocol != 'none'")["label"]))
    return present if labels is None else [label for label in labels if label in present]


def draw_metric_curve(ax, frame, metric: str = "test_accuracy", *, labels=None) -> None:
    """Draw ``metric`` against density on ``ax``: one line (mean over seeds) with a min/max band
    per curve, the full-dataset mean as a dash-dotted black line with its min/max band, and every
    other full-dataset curve (e.g. CDB-W on the full dataset) as a dotted line in its colour."""
    frame = _with_labels(frame)
    table = metric_by_density(frame, metric)
    for label in _curve_order(frame, labels):
        rows = table[table["label"] == label]
        color = rows["color"].iloc[0]
        ax.plot(rows["density"], rows["mean"], marker="o", markersize=4, color=color, label=label,
                linestyle=curve_style(label), linewidth=2.2 if label == "Random+DRoP" else 1.5)
        ax.fill_between(rows["density"], rows["min"], rows["max"], color=color, alpha=0.15, linewidth=0)
        record(ax, label, DENSITY_AXIS, rows["density"], _axis_label(metric), rows["mean"], low=rows["min"],
               high=rows["max"], n=rows["seeds"], density=rows["density"])
    full = full_dataset_metric(frame, metric)
    if full is not None:
        ax.axhline(full["mean"], label=FULL_DATASET, **FULL_DATASET_LINE)
        ax.axhspan(full["min"], full["max"], color="black", alpha=0.08, linewidth=0)
        record(ax, FULL_DATASET, DENSITY_AXIS, 1.0, _axis_label(metric), full["mean"], low=full["min"],
               high=full["max"], n=full["seeds"], density=1.0)
    for label in dict.fromkeys(frame.loc[frame["protocol"] == "none", "label"]):
        if label != FULL_DATASET:
            other = full_dataset_metric(frame, metric, label)
            color = frame.loc[frame["label"] == label, "color"].iloc[0]
            ax.axhline(other["mean"], color=color, linestyle=":", linewidth=1.8, label=label)
            record(ax, label, DENSITY_AXIS, 1.0, _axis_label(metric), other["mean"], low=other["min"],
                   high=other["max"], n=other["seeds"], density=1.0)
    ax.set_xlabel(DENSITY_AXIS)
    ax.set_ylabel(_axis_label(metric))
    ax.set_xlim(*density_limits(table["density"]))
    if _is_accuracy_metric(metric):
        _percent_axis(ax)
    ax.grid(True, alpha=0.3)



def density_limits(densities) -> tuple[float, float]:
    """The density axis of a setting: from 0 to just past the largest density it runs (the
    ``default`` CNN stops at 0.7, the MLP at 0.9), at most 1."""
    densities = [float(d) for d in densities]
    if not densities:
        return 0.0, 1.0
    return 0.0, min(1.0, max(densities) + 0.05)


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
                linestyle=curve_style(label), linewidth=2.0 if label == "Random+DRoP" else 1.2)
        ax.scatter(rows["worst_class"], rows["accuracy"], s=12 + 50 * rows["density"], color=color, zorder=3)
        record(ax, label, "worst-class accuracy", rows["worst_class"], "average test accuracy", rows["accuracy"],
               density=rows["density"])
    if full_acc is not None:
        ax.scatter([full_worst["mean"]], [full_acc["mean"]], marker="*", s=220, color="black", zorder=4,
                   label=FULL_DATASET)
        record(ax, FULL_DATASET, "worst-class accuracy", full_worst["mean"], "average test accuracy",
               full_acc["mean"], n=full_acc["seeds"], density=1.0)
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
    ncol = 1 if "right" in loc else (len(handles) if len(handles) <= 3 else (len(handles) + 1) // 2)
    # no wider than the panels (about 2.6 in per entry): a wider legend would widen the figure,
    # and the book would then shrink its text below legibility
    width = (target if hasattr(target, "get_figwidth") else target.figure).get_figwidth()
    ncol = max(1, min(ncol, int(width // 2.6)))
    target.legend(handles.values(), handles.keys(), loc=loc, ncol=ncol, frameon=False)


def _grid_figure(n_panels, panel_size, titles, max_columns: int = MAX_COLUMNS):
    """A constrained-layout figure with one block of axes per title (a titled subfigure),
    ``max_columns`` axes side by side. ``n_panels``: the number of axes of every block (an int),
    or one number per block (blocks of fewer panels are shorter). Returns the figure, the
    subfigures and, per block, the list of its axes (unused grid cells removed)."""
    import matplotlib.pyplot as plt

    if not isinstance(max_columns, int) or isinstance(max_columns, bool) or max_columns < 1:
        raise ValueError(f"max_columns={max_columns!r} must be a positive integer")
    counts = [n_panels] * len(titles) if isinstance(n_panels, int) else [int(n) for n in n_panels]
    if len(counts) != len(titles) or not counts or min(counts) < 1:
        raise ValueError(f"n_panels={n_panels!r} must give at least one panel to each of {len(titles)} blocks")
    ncols = min(max(counts), max_columns)
    nrows = [-(-n // ncols) for n in counts]
    heights = [panel_size[1] * rows + 0.4 for rows in nrows]
    fig = plt.figure(layout="constrained", figsize=(panel_size[0] * ncols, sum(heights) + 0.9))
    subfigs = fig.subfigures(len(titles), 1, squeeze=False, height_ratios=heights)[:, 0]
    blocks = []
    for subfig, title, n, rows in zip(subfigs, titles, counts, nrows):
        axes = subfig.subplots(rows, ncols, squeeze=False).ravel()
        for ax in axes[n:]:
            ax.remove()
        subfig.suptitle(title, fontweight="bold")
        blocks.append(list(axes[:n]))
    return fig, subfigs, blocks


def plot_density_curves(frame, metrics=("test_accuracy",), *, tradeoff: bool = False, row: str | None = None,
                        labels=None, panel_size=(4.6, 3.4), zoom: float | None = 0.05):
    """Metric-vs-density curves (paper Figures 1, 5, 10, 11, 12).

    One block of panels per setting (:func:`dropkit.tables.split_setups`: the ``setting`` column,
    else the model-dataset pair; or per value of the column ``row``), its title above it, with
    the curves of ``labels`` it runs (a curve a setting does not run is absent from its block and
    its legend; a block without any of them is left out), :data:`MAX_COLUMNS` panels side by
    side: one panel per metric in ``metrics`` and, with ``tradeoff``, one of average vs
    worst-class accuracy, followed (in a block whose low densities stretch its axes) by the same
    plot zoomed on the points within ``zoom`` of the full dataset's
    average accuracy (:func:`dropkit.tables.zoom_window`; ``zoom=None``: no zoomed panel). Lines:
    mean over seeds; bands: min/max over seeds; dash-dotted black: full dataset. ``labels`` fixes the
    order of the curves. One legend below the figure when every block shows the same curves, else
    one below each block. Returns the figure.
    """
    metrics = tuple(metrics)
    if not metrics and not tradeoff:
        raise ValueError("metrics must name at least one metric (or pass tradeoff=True)")
    panels = [(title, rows) for title, rows, _ in _drawn_blocks(frame, labels, row)]
    windows = [_tradeoff_window(rows, zoom) if tradeoff else None for _, rows in panels]
    counts = [len(metrics) + int(tradeoff) + int(window is not None) for window in windows]
    fig, subfigs, blocks = _grid_figure(counts, panel_size, [title for title, _ in panels])
    for axes, (title, rows), window in zip(blocks, panels, windows):
        for ax, metric in zip(axes, metrics):
            draw_metric_curve(ax, rows, metric, labels=labels)
            ax.set_title(_axis_label(metric))
        if tradeoff:
            ax = axes[len(metrics)]
            draw_tradeoff(ax, rows, labels=labels)
            ax.set_title("average vs worst-class accuracy")
        if window is not None:
            draw_tradeoff(axes[-1], rows, labels=labels, window=window)
            axes[-1].set_title(f"zoom: within {100 * zoom:g} pp of the full dataset")
            # the zoomed region as a rectangle only: connector lines would cross neighbouring panels
            ax.indicate_inset([window[0], window[2], window[1] - window[0], window[3] - window[2]],
                              edgecolor="0.4")
    if len({tuple(_curve_order(rows, labels)) for _, rows in panels}) == 1:
        _legend(fig, [ax for axes in blocks for ax in axes])
    else:
        for subfig, axes in zip(subfigs, blocks):
            _legend(subfig, axes)
    return fig


def plot_query_length_curves(frame, metrics=("test_accuracy", "test_worst_class"), *,
                             reference_query: int | None = None,
                             reference_label: str = "query length used elsewhere",
                             label: str = "Random+DRoP", panel_size=(5.0, 4.0)):
    """Final performance against the query models' training length (paper Figure 15).

    One panel per metric; one line per density (mean over seeds, min/max band) over the query
    epochs (log2 axis); dash-dotted black: the full dataset; dotted grey: ``reference_query``, the
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
    lengths = sorted(float(q) for q in set(pruned["query_epochs"]))
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
            record(ax, f"{label}, d = {density:g}", "query model training (epochs)", rows["query_epochs"],
                   _axis_label(metric), rows["mean"], low=rows["min"], high=rows["max"], n=rows["seeds"],
                   density=density)
        full = full_dataset_metric(frame, metric)
        if full is not None:
            ax.axhline(full["mean"], label=FULL_DATASET, **FULL_DATASET_LINE)
            record(ax, FULL_DATASET, "query model training (epochs)", np.nan, _axis_label(metric), full["mean"],
                   low=full["min"], high=full["max"], n=full["seeds"], density=1.0)
        if reference_query is not None:
            ax.axvline(reference_query, color="gray", linestyle=":", linewidth=1.2,
                       label=f"{reference_label} ({reference_query})")
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [f"{q:g}" for q in lengths])
        ax.set_xlabel("query model training (epochs)")
        ax.set_ylabel(_axis_label(metric))
        ax.set_title(_axis_label(metric))
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
        record(ax, label, "class rank (by class density)", rank, "class density (kept / N_k)", values,
               density=density)
        ax.axhline(density, color=colors[density], linestyle=":", linewidth=0.8)
    spc_at = spc_density if any(np.isclose(d, spc_density) for d in by_density) else min(by_density)
    spc = min_samples_per_class(frame, label, spc_at)
    ax.set_title(f"{label}: min SPC at d={spc_at:g} is {spc}")
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
        record(ax, label, "class density (kept / N_k)", by_density[density], "full-dataset class accuracy",
               accuracy, density=density)
    ax.set_title(f"{label}: mean corr = {mean_r:+.2f}")
    ax.set_xlabel("class density (kept / $N_k$)")
    ax.set_ylabel("full-dataset class accuracy")
    ax.set_xlim(-0.02, 1.02)
    _percent_axis(ax)
    ax.grid(True, alpha=0.3)


def _drawn_blocks(frame, labels, row):
    """``[(title, rows, drawn)]``: the blocks of a per-curve figure, one per setting (or value of
    column ``row``) that has rows of at least one curve of ``labels``; ``drawn``: those curves, in
    ``labels`` order. A curve a setting does not run is left out of its block, and a setting that
    runs none of them gets no block; ``ValueError`` when no block is left."""
    if labels is not None:
        labels = list(labels)
        if not labels:
            raise ValueError("labels must name at least one pruned curve")
    if row is None:
        blocks = labels_by_setting(frame, labels)
    else:
        blocks = []
        for title, rows in _panels(frame, row):
            present = _curve_order(rows, None)
            blocks.append((title, rows, present if labels is None else [l for l in labels if l in present]))
    blocks = [block for block in blocks if block[2]]
    if not blocks:
        raise ValueError(f"no setting of the results has rows of {labels}")
    return blocks


def _class_grid(frame, labels, draw, *, row, densities, panel_size, max_columns):
    blocks_drawn = _drawn_blocks(frame, labels, row)
    fig, _, blocks = _grid_figure([len(drawn) for _, _, drawn in blocks_drawn], panel_size,
                                  [title for title, _, _ in blocks_drawn], max_columns)
    for axes, (_, rows, drawn) in zip(blocks, blocks_drawn):
        for ax, label in zip(axes, drawn):
            draw(ax, rows, label, densities)
    _legend(fig, blocks[0][:1])
    return fig


def plot_sorted_class_densities(frame, labels=None, densities=None, *, row: str | None = None,
                                panel_size=(4.6, 3.6), max_columns: int = MAX_COLUMNS):
    """Sorted class densities per curve (paper Figures 2 left, 6 left, 14): one block of panels
    per setting (its title above it; or per value of the column ``row``), one panel per curve of
    ``labels`` (default: every pruned curve) that the setting runs, ``max_columns`` side by side;
    a setting that runs none of them has no block. Returns the matplotlib figure."""
    return _class_grid(frame, labels, draw_sorted_class_densities, row=row, densities=densities,
                       panel_size=panel_size, max_columns=max_columns)


def plot_class_accuracy_vs_density(frame, labels=None, densities=None, *, row: str | None = None,
                                   panel_size=(4.6, 3.6), max_columns: int = MAX_COLUMNS):
    """Full-dataset class accuracy against class density per curve, with the correlation
    averaged over densities (paper Figures 2 right, 6 right, 13): one block of panels per
    setting, one panel per curve of ``labels`` the setting runs (as
    :func:`plot_sorted_class_densities`). Returns the figure."""
    return _class_grid(frame, labels, draw_class_accuracy_vs_density, row=row, densities=densities,
                       panel_size=panel_size, max_columns=max_columns)


def plot_class_profile(frame, label: str, densities=None, *, panel_size=(4.6, 3.6)):
    """Paper Figures 2 and 6: sorted class densities (left) and full-dataset class accuracy vs
    class density (right) for one curve, one row per setting that runs it (titled above it); a
    setting without the curve has no row, ``ValueError`` if none has it."""
    panels = [(title, rows) for title, rows, _ in _drawn_blocks(frame, [label], None)]
    fig, _, blocks = _grid_figure(2, panel_size, [title for title, _ in panels])
    for (left, right), (_, rows) in zip(blocks, panels):
        draw_sorted_class_densities(left, rows, label, densities)
        draw_class_accuracy_vs_density(right, rows, label, densities)
    _legend(fig, blocks[0][:1])
    return fig




# --------------------------------------------------------------------------- theory chapter

#: Colours of the two classes of the Gaussian mixture (seaborn ``pastel``: no curve uses them).
CLASS_COLORS = ("#a1c9f4", "#ffb482")


def draw_pruned_histograms(ax, simulation, mixture, title: str) -> None:
    """The pruned datasets of a :func:`dropkit.theory.simulate_pruning` run (paper Figures 3, 4b):
    each class's histogram averaged per dataset, the average-optimal threshold :math:`t^*(1)`
    (dashed), the worst-class optimal :math:`\\hat t` (dotted), the mean ERM :math:`\\overline T`
    (solid) and the ERM of each pruned dataset (ticks); the title gives the kept class sizes and
    the class risks of :math:`\\overline T`."""
    from dropkit.theory import average_optimal_threshold, class_risks, worst_class_optimal_threshold

    params = mixture.params
    t_star = average_optimal_threshold(*params, 1.0)
    t_hat = worst_class_optimal_threshold(*params)
    bins = np.linspace(-3.0, 4.0, 57)
    weight = 1.0 / len(simulation.kept_x)
    x = np.concatenate(simulation.kept_x)
    y = np.concatenate(simulation.kept_y)
    for label, color in enumerate(CLASS_COLORS):
        counts, _, _ = ax.hist(x[y == label], bins=bins, weights=np.full(np.sum(y == label), weight), alpha=0.8,
                               color=color, label=f"class {label}")
        record(ax, f"class {label}", "bin centre x", (bins[:-1] + bins[1:]) / 2, "points per dataset per bin",
               counts, n=len(simulation.kept_x))
    ax.axvline(t_star, color="black", linestyle="--", label=f"$t^*(1)$ = {t_star:.2f}")
    ax.axvline(t_hat, color="black", linestyle=":", linewidth=2, label=f"$\\hat t$ = {t_hat:.2f}")
    ax.axvline(simulation.mean_threshold, color="black",
               label=f"$\\overline{{T}}$ = {simulation.mean_threshold:.2f}")
    finite = simulation.thresholds[np.isfinite(simulation.thresholds)]
    ax.vlines(finite, 0, 0.08, transform=ax.get_xaxis_transform(), color="0.3", linewidth=1.5,
              label="$T(D_i')$ per dataset")
    record(ax, "thresholds", "threshold", ["t*(1)", "hat t", "mean ERM"], "x",
           [t_star, t_hat, simulation.mean_threshold])
    record(ax, "ERM per pruned dataset", "dataset", np.arange(len(finite)), "x", finite)
    r0, r1 = class_risks(simulation.mean_threshold, *params)
    kept = simulation.kept_sizes.mean(axis=0)
    ax.set_title(f"{title}\nkept {kept[0]:.0f} / {kept[1]:.0f};  "
                 f"$R_0(\\overline{{T}})$ = {100 * r0:.1f}%, $R_1(\\overline{{T}})$ = {100 * r1:.1f}%")
    ax.set_xlabel("$x$")
    ax.set_ylabel("points per dataset per bin")
    ax.set_xlim(bins[0], bins[-1])
    ax.legend(fontsize="small", loc="upper right")


#: Colours of the scorecard's verdicts (outside the method palette).
VERDICT_COLORS = {"holds": "#1a9850", "contradicted": "#d73027", "inconclusive": "#7f7f7f", "context": "#4575b4"}


def forest_table(table):
    """The rows of a scorecard (:func:`dropkit.scorecard.scorecard`) that a forest plot can show:
    those with an interval over at least two replicates, each as a *standardised* effect, the mean
    and its 95 % interval divided by the replicates' standard deviation (the effects of the
    scorecard come in different units: pp, correlations, samples, thresholds). Columns: ``label``
    (claim and setting), ``chapter``, ``verdict`` (Holm-corrected), ``effect``, ``low``, ``high``."""
    import pandas as pd

    rows = []
    for entry in table.to_dict("records"):
        values = np.asarray(entry["values"], dtype=np.float64)
        if values.size < 2 or not np.isfinite(entry["low"]):
            continue
        sd = float(values.std(ddof=1))
        if sd == 0:
            continue
        setting = f" ({entry['setting'].split(', ')[-1]})" if entry["setting"] else ""
        rows.append({"label": f"{entry['id']}{setting}", "chapter": entry["chapter"], "verdict": entry["holm"],
                     "effect": entry["mean"] / sd, "low": entry["low"] / sd, "high": entry["high"] / sd})
    return pd.DataFrame(rows, columns=["label", "chapter", "verdict", "effect", "low", "high"])


def plot_forest(rows, chapter_titles=None):
    """A forest plot of :func:`forest_table` rows: one line per claim and setting, grouped by
    chapter (a heading per group), coloured by verdict, x the standardised effect (> 0: the
    paper's side), a vertical line at 0. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if len(rows) == 0:
        raise ValueError("no scorecard row has an interval to plot")
    chapter_titles = chapter_titles or {}
    lines, y = [], 0
    for chapter, group in rows.groupby("chapter", sort=False):
        lines.append(("heading", chapter_titles.get(chapter, chapter), y))
        y += 1
        for entry in group.to_dict("records"):
            lines.append(("row", entry, y))
            y += 1
    fig, ax = plt.subplots(figsize=(8.0, 0.26 * y + 1.4), layout="constrained")
    span = float(np.nanmax(np.abs(rows[["low", "high"]].to_numpy()))) * 1.05
    labels, ticks = [], []
    for kind, entry, position in lines:
        if kind == "heading":
            ax.text(-span, position, entry, fontweight="bold", fontsize=11, va="center", ha="left")
            continue
        color = VERDICT_COLORS.get(entry["verdict"], "#7f7f7f")
        ax.plot([entry["low"], entry["high"]], [position, position], color=color, linewidth=2)
        ax.plot(entry["effect"], position, "o", color=color, markersize=4)
        labels.append(entry["label"])
        ticks.append(position)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(ticks, labels, fontsize=10.5)
    ax.set_ylim(y - 0.5, -0.8)
    ax.set_xscale("symlog", linthresh=1.0)  # linear within ±1 SD, logarithmic beyond
    ax.set_xlim(-span, span)
    ax.set_xlabel("standardised effect: mean / replicate SD with its 95 % interval\n"
                  "(> 0: the paper's side; linear within ±1, logarithmic beyond)")
    ax.legend(handles=[Line2D([], [], color=c, linewidth=2, label=v) for v, c in VERDICT_COLORS.items()
                       if v in set(rows["verdict"])], loc="lower right", fontsize=10.5, title="verdict (Holm)",
              title_fontsize=10.5)
    ax.grid(axis="y", visible=False)
    return fig


# --------------------------------------------------------------------------- per-seed lines


def seed_colors(seeds) -> dict:
    """One grey per seed, dark to light (seeds are drawn in no colour of the method palette of
    :mod:`dropkit.curves`, nor in the densities' viridis), with a marker each."""
    seeds = list(seeds)
    shades = np.linspace(0.1, 0.65, len(seeds)) if len(seeds) > 1 else [0.3]
    markers = "os^Dv<>ph*"
    return {seed: {"color": str(round(float(shade), 3)), "marker": markers[i % len(markers)]}
            for i, (seed, shade) in enumerate(zip(seeds, shades))}


#: Up to this many seeds, :func:`plot_cdbw_weight_history` draws each seed in its own grey and
#: marker with a legend entry; with more, thin grey lines and their median over seeds.
LABELLED_SEEDS = 8


def plot_cdbw_weight_history(history, *, panel_size=(4.6, 3.4)):
    """CDB-W's weights during training (chapter 04): per seed, the worst validation recall after
    each epoch (which sets the next epoch's weights) and the largest class weight, from
    :func:`dropkit.tables.cdbw_weight_history`. Up to :data:`LABELLED_SEEDS` seeds: one grey
    and marker per seed (:func:`seed_colors`), each in the legend; with more, every seed a thin
    grey line (one legend entry) and the median over seeds per epoch in black (curve
    ``"median over seeds"`` of :func:`figure_data`; each seed stays recorded as ``"seed <s>"``).
    Returns the figure."""
    import matplotlib.pyplot as plt

    if history.empty:
        raise ValueError("history holds no epochs")
    fig, axes = plt.subplots(1, 2, figsize=(2 * panel_size[0], panel_size[1] + 0.6), layout="constrained")
    seeds = sorted(set(history["seed"]))
    many = len(seeds) > LABELLED_SEEDS
    styles = seed_colors(seeds)
    epoch = "epoch trained with these weights"
    panels = ((axes[0], "worst validation recall (%)", lambda rows: 100 * rows["val_worst_recall"]),
              (axes[1], "largest class weight", lambda rows: rows["max_weight"]))
    for i, (seed, rows) in enumerate(history.groupby("seed")):
        for ax, name, values in panels:
            if many:
                ax.plot(rows["epoch"], values(rows), color="0.6", linewidth=0.8, alpha=0.7,
                        label=f"each of {len(seeds)} seeds" if i == 0 else None)
            else:
                ax.plot(rows["epoch"], values(rows), label=f"seed {seed}", **styles[seed])
            record(ax, f"seed {seed}", epoch, rows["epoch"], name, values(rows))
    if many:
        by_epoch = history.groupby("epoch")
        for ax, name, values in panels:
            median = values(by_epoch[["val_worst_recall", "max_weight"]].median())
            ax.plot(median.index, median.to_numpy(), color="black", linewidth=2, marker="o",
                    label="median over seeds")
            record(ax, "median over seeds", epoch, median.index, name, median.to_numpy(),
                   n=by_epoch.size().to_numpy())
    axes[0].set(xlabel=epoch, ylabel="worst validation recall (%)", title="recalls behind the weights")
    axes[1].set(xlabel=epoch, ylabel="largest class weight", title="largest CDB-W weight")
    _legend(fig, axes)
    return fig
