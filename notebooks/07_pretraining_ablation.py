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
import numpy as np
import pandas as pd
from IPython.display import display

from dropkit import claims, plots
from dropkit.chapter import chapter_results, check_reference
from dropkit.plots import show_figure

EXPERIMENT = "pretraining_ablation"
check_reference(reference)
results = chapter_results(profile, EXPERIMENT, dataset=dataset, model=model, densities=densities,
                          seeds=seeds, device=device, results_dir=results_dir, workers=workers,
                          data_root=data_root, progress=True)
results.print_lines()
frame, settings = results.frame, results.profile

pruned = frame[frame["protocol"] != "none"]
QUERY_EPOCHS = sorted(int(q) for q in set(pruned["query_epochs"]))
DENSITIES = sorted(float(d) for d in set(pruned["density"]))
SETUPS = settings.setups_for(EXPERIMENT)
DEFAULT_QUERY = SETUPS[0].query_epochs  # the query length of chapters 02, 03, 05, 06 (10% of the final training)
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


METRICS = ("test_accuracy", "test_worst_class")

# %% [markdown]
# ## Final performance against the query model's training length (Figure 15)
#
# One line per density (mean over seeds, bands min/max over seeds); dashed black: the full
# dataset; dotted vertical line: the query length of chapters 02, 03, 05 and 06 (chapter 04's
# CDB-W comparison needs at least 2 epochs).

# %%
fig = plots.plot_query_length_curves(frame, METRICS, reference_query=DEFAULT_QUERY,
                                     reference_label="query length of chapters 02, 03, 05, 06")
show_figure(
    fig, "15",
    f"Reproduces paper Figure 15 (the paper: VGG-19 on CIFAR-100 and ResNet-18 on TinyImageNet): average "
    f"and worst-class test accuracy of Random+DRoP against the training length of the query models that "
    f"give DRoP its class recalls ({', '.join(map(str, QUERY_EPOCHS))} epochs; the final model trains "
    f"{FINAL_EPOCHS} epochs, chapters 02, 03, 05 and 06 use {DEFAULT_QUERY}) at densities "
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
