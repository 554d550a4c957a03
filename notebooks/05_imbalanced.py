# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # DRoP on long-tailed data
#
# Robustness is usually studied on long-tailed data, where some classes are much rarer than
# others. Following Cui et al. (2019), the paper makes a balanced dataset long-tailed by keeping
# a fraction $\mu^{k-1}$ of class $k$ ($k = 1, \dots, K$), so that the largest class is
# $I = \mu^{1-K}$ times the smallest (the *imbalance factor*), and compares **Random+DRoP** with
# **EL2N** at $I = 2, 5, 20$ (ResNet-18 on TinyImageNet, Figure 8), together with the unpruned
# long-tailed dataset trained normally and with the robust loss CDB-W. The paper finds that
# Random+DRoP beats EL2N in average and robust performance at every imbalance factor and almost
# always reduces the bias of the unpruned dataset, even when that one is trained with CDB-W.
#
# **Which quota rule.** On imbalanced data the paper's Algorithm 1 (class *density*
# $d_k \propto 1 - r_k$, rule `"paper"` of `dropkit.quotas`) and the authors' public code (class
# *count* $n_k \propto 1 - r_k$, rule `"counts"`) differ: the counts rule gives a large class
# proportionally fewer samples. The paper's Figure 8 is described with Algorithm 1, so the runs
# here use rule `"paper"`. The experiment set `imbalanced` of `dropkit.profiles` runs only that
# rule, so the trained models cannot be compared side by side; the last section instead puts the
# class counts both rules assign, from the same query recalls, side by side.
#
# The runs come from `dropkit.profiles.experiment_specs(profile, "imbalanced")` (imbalance
# factors from the profile); the `default` profile's rows ship in `results/default/`.

# %% tags=["parameters"]
profile = "default"
dataset = None  # None: the profile's dataset for this experiment (default: fashion-mnist; paper: tinyimagenet)
model = None  # None: the profile's model (default: mlp)
densities = None  # None: the profile's densities (default: 0.1, 0.3, 0.5, 0.7, 0.9)
seeds = None  # None: the profile's seeds (default: 0, 1, 2)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
workers = None  # None: the profile's local worker processes, limited by the CPU count
data_root = None  # None: the datasets' default locations ($DROPKIT_DATA, system directories)
reference = 0.5  # the density of the "what we see" table (the closest density present is used)

# %%
import matplotlib.pyplot as plt
import numpy as np

from dropkit.quotas import drop_quotas

EXPERIMENT = "imbalanced"
import os
import warnings
from numbers import Real

import pandas as pd
from IPython.display import display

from dropkit import claims, plots
from dropkit.experiment import results_frame, sweep
from dropkit.plots import show_figure
from dropkit.profiles import check_profile, experiment_specs, get_profile
from dropkit.store import ResultStore

check_profile(profile)
for name, value in (("dataset", dataset), ("model", model), ("device", device), ("data_root", data_root)):
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{name}={value!r} must be None (the profile's value) or a non-empty string")
if not isinstance(results_dir, str) or not results_dir:
    raise ValueError(f"results_dir={results_dir!r} must be a non-empty path")
if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
    raise ValueError(f"workers={workers!r} must be None or a positive integer")
if isinstance(reference, bool) or not isinstance(reference, Real) or not 0 < reference <= 1:
    raise ValueError(f"reference={reference!r} must be a density in (0, 1]")
settings = get_profile(profile)
# experiment_specs checks dataset (used by this experiment?), model, densities, seeds and device.
specs = experiment_specs(settings, EXPERIMENT, dataset=dataset, model=model,
                         densities=densities, seeds=seeds, device=device)
store = ResultStore(results_dir, settings.name)
stored_before = len(set(store.keys()) & {spec.cache_key for spec in specs})
workers = workers or max(1, min(settings.workers, (os.cpu_count() or 1) // settings.threads))
with warnings.catch_warnings(record=True) as caught:  # shown once each below, not as warning boxes
    warnings.simplefilter("always")
    report = sweep(specs, store, workers=workers, threads=settings.threads, data_root=data_root,
                   progress=False)
frame = results_frame(specs, store)
if len(frame) != len(specs):
    raise RuntimeError(f"{len(specs) - len(frame)} of {len(specs)} runs have no stored row in {store.path}")
print(f"{len(specs)} runs: {stored_before} read from {store.path}, {report.ran} computed now "
      f"({report.seconds:.0f} s).")
print(claims.provenance_sentence(frame))
for note in sorted({str(w.message) for w in caught}):
    print(f"Note from the runs: {note}")

CDBW_FULL = "CDB-W (full dataset)"
frame = plots.labelled(frame)
frame["curve"] = [CDBW_FULL if p == "none" and w else label
                  for p, w, label in zip(frame["protocol"], frame["cdbw"], frame["label"])]
frame["label"] = frame["curve"]
frame["panel"] = [f"I = {f:g}" for f in frame["imbalance_factor"]]
FACTORS = sorted({float(f) for f in frame["imbalance_factor"]})
CURVES = ["Random+DRoP", "EL2N"]
SETTING = plots.setting_caption(frame)
DIFFERENCE = {
    "smoke": "Smoke profile: a 3000-sample subset and 2 epochs, to check that the chapter runs; "
             "its numbers are not meant to be read.",
    "default": "The paper uses ResNet-18 on long-tailed TinyImageNet (200 classes) trained for 200 "
               "epochs on GPUs; here long-tailed versions of the real Fashion-MNIST (10 classes) "
               "and a small MLP trained on a CPU.",
    "paper": "The paper's setting: ResNet-18 on long-tailed TinyImageNet (Appendix A, Table 1).",
    "fast": "The fast profile: long-tailed CIFAR-10 with a small residual network (resnet9, 16 epochs) instead of ResNet-18 on long-tailed TinyImageNet.",
}[profile]
if profile != "paper" and (model is not None or dataset is not None):
    DIFFERENCE += f" Overridden here: dataset={dataset}, model={model}."
print(f"Imbalance factors {', '.join(f'{f:g}' for f in FACTORS)}; training-set sizes "
      + ", ".join(f"I = {f:g}: {int(frame.loc[frame['imbalance_factor'] == f, 'num_train'].iloc[0])}" for f in FACTORS)
      + "; DRoP quota rule(s): " + ", ".join(sorted(set(frame["quota_rule"]))) + ".")


def curves_with_baseline(frame, metrics, baseline, *, labels):
    """One row of panels per imbalance factor, one column per metric: the pruned curves and the
    full dataset (dashed) as everywhere in the book, plus the seed mean of the ``baseline`` curve's
    rows (CDB-W on the full dataset) as a dotted purple line."""
    panels = [(title, rows) for title, rows in frame.groupby("panel", sort=False)]
    fig, axes = plt.subplots(len(panels), len(metrics), figsize=(4.2 * len(metrics), 3.2 * len(panels) + 0.8),
                             squeeze=False, layout="constrained")
    for axes_row, (title, rows) in zip(axes, panels):
        for ax, metric in zip(axes_row, metrics):
            plots.draw_metric_curve(ax, rows[rows["curve"] != baseline], metric, labels=labels)
            extra = rows.loc[rows["curve"] == baseline, metric]
            if not extra.empty:
                ax.axhline(float(extra.mean()), color="tab:purple", linestyle=":", linewidth=1.8, label=baseline)
            ax.set_title(f"{title}: {plots.METRICS[metric]}", fontsize=10)
    handles = {}
    for ax in axes.ravel():
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=4, frameon=False)
    return fig


# %% [markdown]
# ## Random+DRoP against EL2N across imbalance factors (Figure 8)
#
# One row per imbalance factor. Mean over seeds with min/max bands; dashed black: the unpruned
# long-tailed dataset; dotted purple: the unpruned long-tailed dataset trained with CDB-W.

# %%
fig = curves_with_baseline(frame, tuple(plots.METRICS), CDBW_FULL, labels=CURVES)
show_figure(
    fig, "8",
    f"Reproduces paper Figure 8 (the paper: ResNet-18 on long-tailed TinyImageNet): average accuracy, "
    f"worst-class accuracy, max-min gap and standard deviation of the class accuracies against density "
    f"for Random+DRoP and EL2N at imbalance factors I = {', '.join(f'{f:g}' for f in FACTORS)} (one row "
    f"each); lines are means over seeds, bands min/max over seeds; dashed: the unpruned long-tailed "
    f"dataset, dotted: the same trained with CDB-W. DRoP quotas with the paper's Algorithm 1 (rule "
    f"'paper': class densities proportional to the validation error). Data: {SETTING}. {DIFFERENCE} "
    f"Profile {profile}.",
)

# %% [markdown]
# ## The paper's rule and the authors' code side by side
#
# For each imbalance factor, the number of samples each class keeps at the reference density
# under Algorithm 1 (rule `"paper"`, the one trained above) and under the authors' public code
# (rule `"counts"`), both computed by `dropkit.quotas.drop_quotas` from the same class sizes and
# query recalls (seed 0). Classes are in the long-tail order: class 0 is the largest.

# %%
at = claims.reference_density(frame, reference)
drop_rows = frame[(frame["protocol"] == "random+drop") & np.isclose(frame["density"], at)]
quota_tables = []
for factor in FACTORS:
    row = drop_rows[drop_rows["imbalance_factor"] == factor].sort_values("seed").iloc[0]
    sizes, recalls = np.asarray(row["class_sizes"]), np.asarray(row["query_val_recalls"])
    quota_tables.append(pd.DataFrame({
        "imbalance factor": f"{factor:g}", "class": np.arange(len(sizes)), "class size": sizes,
        "query recall (%)": 100 * recalls,
        "kept, rule paper": drop_quotas(sizes, recalls, at, rule="paper"),
        "kept, rule counts": drop_quotas(sizes, recalls, at, rule="counts"),
    }))
quotas_table = pd.concat(quota_tables, ignore_index=True).set_index(["imbalance factor", "class"])
with pd.option_context("display.precision", 1, "display.width", 200, "display.max_rows", 100):
    print(f"d = {at:g}")
    display(quotas_table)
largest = quotas_table.groupby(level=0, sort=False).first()
print("Kept from the largest class (class 0), rule paper vs rule counts: "
      + "; ".join(f"I = {i}: {int(r['kept, rule paper'])} vs {int(r['kept, rule counts'])}" for i, r in largest.iterrows())
      + ".")

# %% [markdown]
# ## What we see
#
# Computed from the results above: for each imbalance factor, at the reference density, the mean
# over seeds of the four metrics (full-dataset rows at density 1), and whether the paper's
# observations hold on these numbers (verdicts chosen by `dropkit.claims.comparison_claim`).

# %%
for factor in FACTORS:
    rows = frame[frame["imbalance_factor"] == factor]
    table = claims.curve_metrics(rows, at)
    with pd.option_context("display.precision", 2, "display.width", 200, "display.max_columns", 20):
        print(f"{plots.setup_title(rows['dataset'].iloc[0], rows['model'].iloc[0])}, I = {factor:g}, d = {at:g}")
        display(table)
    for column in ("accuracy (%)", "worst-class (%)"):
        print(claims.comparison_claim(table, column, "Random+DRoP", ["EL2N"],
                                      "Random+DRoP beats EL2N on long-tailed data"))
    print(claims.comparison_claim(table, "worst-class (%)", "Random+DRoP", [plots.FULL_DATASET, CDBW_FULL],
                                  "Random+DRoP reduces the bias of the unpruned long-tailed dataset, "
                                  "even trained with CDB-W"))
