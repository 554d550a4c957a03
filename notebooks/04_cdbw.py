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
# # DRoP against a distributionally robust loss: CDB-W
#
# Section 4 of the paper compares DRoP with one cost-sensitive method from the distributionally
# robust optimisation literature, **CDB-W** (class-wise difficulty-based weighting, Sinha et al.
# 2022): at every epoch $t$ it measures the class recalls $r_{k,t}$ on the validation split and
# weighs the loss of every sample of class $k$ by $w_{k,t} = 1 - r_{k,t}$ — the same
# proportions DRoP uses for its class densities. With EL2N as the pruning score, the paper tests
# whether such a robust optimiser helps pruning in two ways:
#
# * **EL2N+CDB-W** — the final model is trained with CDB-W on the EL2N-pruned dataset;
# * **CDB-W+EL2N** — the EL2N scores come from query models trained with CDB-W;
#
# (CDB-W's weights at epoch $t$ come from the recalls after epoch $t-1$, so its first epoch is
# unweighted: with one-epoch query models, as in this book's `default` profile, CDB-W+EL2N
# coincides with EL2N; the paper's query models train 16 epochs), and compares them with
# **Random+DRoP**, **EL2N+DRoP** and plain **EL2N**, and with CDB-W on the
# full dataset. The paper (VGG-19 on CIFAR-100, Figure 7) finds that CDB-W on the full dataset
# improves the worst class, but by less than Random+DRoP at $d = 0.5$; that EL2N+CDB-W keeps
# EL2N's bias; and that CDB-W+EL2N is among the most biased protocols of the study.
#
# The runs come from `dropkit.profiles.experiment_specs(profile, "cdbw")`; the `default`
# profile's rows ship in `results/default/`, so rendering the book only reads them.

# %% tags=["parameters"]
profile = "default"
dataset = None  # None: the profile's dataset for this experiment (default: fashion-mnist)
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

EXPERIMENT = "cdbw"
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
EXTRA_COLORS = {"EL2N+CDB-W": "tab:purple", "CDB-W+EL2N": "tab:olive", CDBW_FULL: "tab:purple"}


def curve_name(row) -> str:
    """The curve of one run: the CDB-W variants by their flags, the others as everywhere in the book."""
    if row["protocol"] == "none":
        return CDBW_FULL if row["cdbw"] else plots.FULL_DATASET
    if row["protocol"] == "strategy" and row["cdbw"]:
        return "EL2N+CDB-W"
    if row["protocol"] == "strategy" and row["query_cdbw"]:
        return "CDB-W+EL2N"
    return plots.method_label(row["protocol"], row["method"])


frame = plots.labelled(frame)
frame["curve"] = frame.apply(curve_name, axis=1)
frame["label"] = frame["curve"]
frame["color"] = [EXTRA_COLORS.get(c, color) for c, color in zip(frame["curve"], frame["color"])]
CURVES = ["Random+DRoP", "EL2N+DRoP", "EL2N", "EL2N+CDB-W", "CDB-W+EL2N"]
SETTING = plots.setting_caption(frame)
DIFFERENCE = {
    "smoke": "Smoke profile: a 3000-sample subset and 2 epochs, to check that the chapter runs; "
             "its numbers are not meant to be read.",
    "default": "The paper uses VGG-19 on CIFAR-100 trained for 160 epochs on GPUs; here the real "
               "Fashion-MNIST (10 classes) and a small MLP trained on a CPU.",
    "paper": "The paper's setting: VGG-19 on CIFAR-100 (Appendix A, Table 1).",
    "fast": "The fast profile: CIFAR-100 with a small residual network (resnet9, 16 epochs, batch 512) instead of VGG-19 for 160 epochs.",
}[profile]
if profile != "paper" and (model is not None or dataset is not None):
    DIFFERENCE += f" Overridden here: dataset={dataset}, model={model}."
# CDB-W weighs each epoch's loss by the previous epoch's validation recalls, so its first epoch is
# unweighted: a one-epoch CDB-W query model is the plain query model, and CDB-W+EL2N equals EL2N.
QUERY_EPOCHS = sorted({int(q) for q in frame.loc[frame["curve"] == "CDB-W+EL2N", "query_epochs"]})
key = ["density", "seed"]
plain = frame[frame["curve"] == "EL2N"].set_index(key)["test_accuracy"]
robust = frame[frame["curve"] == "CDB-W+EL2N"].set_index(key)["test_accuracy"]
IDENTICAL = bool(len(plain) and plain.sort_index().equals(robust.reindex(plain.index).sort_index()))
if QUERY_EPOCHS == [1]:
    DIFFERENCE += (" The query models train 1 epoch, and CDB-W's first epoch is unweighted (its weights "
                   "come from the previous epoch's validation recalls), so here CDB-W+EL2N is the same "
                   "as EL2N" + (" (identical results; its curve hides EL2N's)." if IDENTICAL else "."))
print(f"CDB-W+EL2N query models train {', '.join(map(str, QUERY_EPOCHS))} epoch(s); CDB-W+EL2N results "
      f"{'are identical to' if IDENTICAL else 'differ from'} EL2N's.")


def curves_with_baseline(rows, metrics, baseline_rows, baseline, *, labels):
    """One panel per metric: the pruned curves and the full dataset (dashed) as everywhere in the
    book, plus ``baseline_rows``' seed mean as a dotted horizontal line named ``baseline``."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.2), squeeze=False,
                             layout="constrained")
    for ax, metric in zip(axes[0], metrics):
        plots.draw_metric_curve(ax, rows, metric, labels=labels)
        if not baseline_rows.empty:
            ax.axhline(float(baseline_rows[metric].mean()), color=EXTRA_COLORS[baseline], linestyle=":",
                       linewidth=1.8, label=baseline)
        ax.set_title(plots.METRICS[metric], fontsize=10)
    handles = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=4, frameon=False)
    return fig


# %% [markdown]
# ## Average accuracy and class robustness against density (Figure 7)
#
# Mean over seeds with min/max bands; dashed black: the full dataset with standard training;
# dotted purple: the full dataset trained with CDB-W.

# %%
pruned_and_full = frame[frame["curve"] != CDBW_FULL]
fig = curves_with_baseline(pruned_and_full, tuple(plots.METRICS), frame[frame["curve"] == CDBW_FULL], CDBW_FULL,
                           labels=CURVES)
show_figure(
    fig, "7",
    f"Reproduces paper Figure 7 (the paper: VGG-19 on CIFAR-100): average accuracy, worst-class accuracy, "
    f"max-min gap and standard deviation of the class accuracies against density for Random+DRoP, "
    f"EL2N+DRoP, EL2N, EL2N+CDB-W (CDB-W when training the final model on the EL2N-pruned data) and "
    f"CDB-W+EL2N (EL2N scores from CDB-W query models); lines are means over seeds, bands min/max over "
    f"seeds; dashed: full dataset, dotted: full dataset trained with CDB-W. Data: {SETTING}. "
    f"{DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## What we see
#
# Computed from the results above: at the reference density, the mean over seeds of the four
# metrics for every curve (full-dataset rows at density 1), and whether the paper's three
# observations hold on these numbers (verdicts chosen by `dropkit.claims.comparison_claim`).

# %%
at = claims.reference_density(frame[frame["curve"] != CDBW_FULL], reference)
table = claims.curve_metrics(frame, at)
with pd.option_context("display.precision", 2, "display.width", 200, "display.max_columns", 20):
    print(f"{plots.setup_title(frame['dataset'].iloc[0], frame['model'].iloc[0])}, d = {at:g}")
    display(table)
print(claims.comparison_claim(table, "worst-class (%)", CDBW_FULL, [plots.FULL_DATASET],
                              "CDB-W on the full dataset raises the worst-class accuracy"))
print(claims.comparison_claim(table, "worst-class (%)", "Random+DRoP", [CDBW_FULL],
                              f"Random+DRoP at d = {at:g} beats CDB-W on the full dataset"))
print(claims.comparison_claim(table, "worst-class (%)", "EL2N+DRoP", ["EL2N+CDB-W"],
                              "EL2N+DRoP is more robust than EL2N+CDB-W"))
print(claims.comparison_claim(table, "worst-class (%)", "Random+DRoP", ["EL2N+CDB-W", "CDB-W+EL2N", "EL2N"],
                              "Random+DRoP is more robust than EL2N with or without CDB-W"))
