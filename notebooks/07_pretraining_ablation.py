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
# # How long must the query model train?
#
# DRoP needs a query model trained on the full dataset to measure the class recalls, as EL2N and
# GraNd need one for their scores. The paper trains it for 10% of the final training length (at
# least the 10 epochs Paul et al. (2021) found enough for EL2N) and checks in Appendix C
# (Figure 15: VGG-19 on CIFAR-100 and ResNet-18 on TinyImageNet, densities 0.4, 0.5, 0.8) that
# the final performance of Random+DRoP saturates at that length or earlier, with larger densities
# needing even less query training.
#
# Here **Random+DRoP** is trained at the profile's ablation densities with query models trained
# for each length of the profile's `query_epoch_grid` (in epochs of the full dataset); everything
# else, including the final training, is fixed.
#
# The runs come from `dropkit.profiles.experiment_specs(profile, "pretraining_ablation")`; the
# `default` profile's rows ship in `results/default/`.

# %% tags=["parameters"]
profile = "default"
dataset = None  # None: the profile's dataset for this experiment (default: fashion-mnist)
model = None  # None: the profile's model (default: mlp)
densities = None  # None: the profile's ablation densities (default: 0.4, 0.5, 0.8)
seeds = None  # None: the profile's seeds (default: 0, 1, 2)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
workers = None  # None: the profile's local worker processes, limited by the CPU count
data_root = None  # None: the datasets' default locations ($DROPKIT_DATA, system directories)
reference = 0.5  # the density of the "what we see" table (the closest density present is used)

# %%
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import PercentFormatter

EXPERIMENT = "pretraining_ablation"
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

frame = plots.labelled(frame)
pruned = frame[frame["protocol"] != "none"]
QUERY_EPOCHS = sorted(int(q) for q in set(pruned["query_epochs"]))
DENSITIES = sorted(float(d) for d in set(pruned["density"]))
SETUPS = settings.setups_for(EXPERIMENT)
DEFAULT_QUERY = SETUPS[0].query_epochs  # the query length every other chapter uses (10% of the final training)
FINAL_EPOCHS = int(frame["epochs"].iloc[0])
SETTING = plots.setting_caption(frame.drop(columns=["query_epochs"]))
DIFFERENCE = {
    "smoke": "Smoke profile: a 3000-sample subset and 2 epochs, to check that the chapter runs; "
             "its numbers are not meant to be read.",
    "default": "The paper uses VGG-19 on CIFAR-100 (160 epochs) and ResNet-18 on TinyImageNet "
               "(200 epochs) on GPUs with query models trained up to 32 epochs; here the real "
               "Fashion-MNIST and a small MLP trained on a CPU.",
    "paper": "The paper's settings: VGG-19 on CIFAR-100 and ResNet-18 on TinyImageNet (Appendix A, Table 1).",
    "fast": "The fast profile: CIFAR-100 with a small residual network (resnet9, 16 epochs, batch 512) instead of VGG-19 and ResNet-18.",
}[profile]
if profile != "paper" and (model is not None or dataset is not None):
    DIFFERENCE += f" Overridden here: dataset={dataset}, model={model}."


def by_query_length(rows, metric: str) -> pd.DataFrame:
    """Mean, min and max over seeds of ``metric`` for every (density, query epochs) pair."""
    return (rows.groupby(["density", "query_epochs"])[metric]
            .agg(mean="mean", min="min", max="max", seeds="count").reset_index())


METRICS = ("test_accuracy", "test_worst_class")
COLORS = dict(zip(DENSITIES, plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(DENSITIES)))))

# %% [markdown]
# ## Final performance against the query model's training length (Figure 15)
#
# One line per density (mean over seeds, bands min/max over seeds); dashed black: the full
# dataset; dotted vertical line: the query length the other chapters use.

# %%
fig, axes = plt.subplots(1, len(METRICS), figsize=(5.0 * len(METRICS), 4.0), squeeze=False, layout="constrained")
for ax, metric in zip(axes[0], METRICS):
    table = by_query_length(pruned, metric)
    for density in DENSITIES:
        rows = table[np.isclose(table["density"], density)].sort_values("query_epochs")
        ax.plot(rows["query_epochs"], rows["mean"], marker="o", color=COLORS[density], label=f"Random+DRoP, d = {density:g}")
        ax.fill_between(rows["query_epochs"], rows["min"], rows["max"], color=COLORS[density], alpha=0.15, linewidth=0)
    full = plots.full_dataset_metric(frame, metric)
    if full is not None:
        ax.axhline(full["mean"], color="black", linestyle="--", linewidth=1.2, label=plots.FULL_DATASET)
    ax.axvline(DEFAULT_QUERY, color="gray", linestyle=":", linewidth=1.2, label=f"query length used elsewhere ({DEFAULT_QUERY})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(QUERY_EPOCHS, [str(q) for q in QUERY_EPOCHS])
    ax.set_xlabel("query model training (epochs)")
    ax.set_ylabel(plots.METRICS[metric])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    ax.set_title(plots.METRICS[metric], fontsize=10)
    ax.grid(True, alpha=0.3)
handles = {}
for ax in axes[0]:
    for handle, label in zip(*ax.get_legend_handles_labels()):
        handles.setdefault(label, handle)
fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=3, frameon=False)
show_figure(
    fig, "15",
    f"Reproduces paper Figure 15 (the paper: VGG-19 on CIFAR-100 and ResNet-18 on TinyImageNet): average "
    f"and worst-class test accuracy of Random+DRoP against the training length of the query models that "
    f"give DRoP its class recalls ({', '.join(map(str, QUERY_EPOCHS))} epochs; the final model trains "
    f"{FINAL_EPOCHS} epochs, the other chapters use {DEFAULT_QUERY}) at densities "
    f"{', '.join(f'{d:g}' for d in DENSITIES)}; lines are means over seeds, bands min/max over seeds; "
    f"dashed: full dataset. Data: {SETTING}. {DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## What we see
#
# Computed from the results above: for every density, the mean over seeds of the average and
# worst-class accuracy at each query length, and whether the paper's claim holds on these
# numbers: the query length the other chapters use has saturated if no longer query training
# raises the mean worst-class accuracy by more than the seed-to-seed spread at that length.

# %%
for density in DENSITIES:
    rows = pruned[np.isclose(pruned["density"], density)].copy()
    rows["curve"] = [f"query {q} epoch{'s' if q != 1 else ''}" for q in rows["query_epochs"]]
    rows = rows.sort_values("query_epochs", kind="stable")
    table = claims.curve_metrics(rows, density, ("test_accuracy", "test_worst_class"))
    with pd.option_context("display.precision", 2, "display.width", 200, "display.max_columns", 20):
        print(f"{plots.setup_title(frame['dataset'].iloc[0], frame['model'].iloc[0])}, Random+DRoP, d = {density:g}")
        display(table)
    default = f"query {DEFAULT_QUERY} epoch{'s' if DEFAULT_QUERY != 1 else ''}"
    longer = [c for c, q in zip(table.index, sorted(set(rows["query_epochs"]))) if q > DEFAULT_QUERY]
    if default in table.index and longer:
        at_default = rows.loc[rows["query_epochs"] == DEFAULT_QUERY, "test_worst_class"]
        spread = 100 * float(at_default.max() - at_default.min())
        best = table.loc[longer, "worst-class (%)"].idxmax()
        gain = float(table.loc[best, "worst-class (%)"] - table.loc[default, "worst-class (%)"])
        print(f"d = {density:g}: the best longer query training ({best}) changes the worst-class accuracy "
              f"by {gain:+.1f} points over {default}, against a seed-to-seed spread (max - min over seeds) "
              f"of {spread:.1f} points at {default}: the paper's claim that DRoP's performance has "
              f"saturated at the query length of the other chapters "
              f"{'holds' if gain <= spread else 'does not hold'} here (saturated = no longer query "
              f"training gains more than that spread).")
