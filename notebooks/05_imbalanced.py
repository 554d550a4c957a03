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
# proportionally fewer samples. The paper's Figure 8 is described with Algorithm 1, so
# **Random+DRoP** here is rule `"paper"`; **Random+DRoP (rule counts)** trains the same protocol
# with the authors' rule, from the same query models, so both can be compared side by side (in
# the figure, and in the class counts of the last sections).
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
import numpy as np
import pandas as pd
from IPython.display import display

from dropkit import claims, plots
from dropkit.chapter import chapter_results, check_reference
from dropkit.plots import show_figure

EXPERIMENT = "imbalanced"
check_reference(reference)
results = chapter_results(profile, EXPERIMENT, dataset=dataset, model=model, densities=densities,
                          seeds=seeds, device=device, results_dir=results_dir, workers=workers,
                          data_root=data_root, progress=True)
results.print_lines()
frame = results.frame

CDBW_FULL = plots.CDBW_FULL_DATASET
COUNTS_RULE = "Random+DRoP (rule counts)"
frame["panel"] = [f"I = {f:g}" for f in frame["imbalance_factor"]]
FACTORS = sorted({float(f) for f in frame["imbalance_factor"]})
CURVES = ["Random+DRoP", COUNTS_RULE, "EL2N"]
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


# %% [markdown]
# ## Random+DRoP against EL2N across imbalance factors (Figure 8)
#
# One row per imbalance factor. Mean over seeds with min/max bands; dashed black: the unpruned
# long-tailed dataset; dotted purple: the unpruned long-tailed dataset trained with CDB-W.

# %%
fig = plots.plot_density_curves(frame, tuple(plots.METRICS), row="panel", labels=CURVES)
show_figure(
    fig, "8",
    f"Reproduces paper Figure 8 (the paper: ResNet-18 on long-tailed TinyImageNet): average accuracy, "
    f"worst-class accuracy, max-min gap and standard deviation of the class accuracies against density "
    f"for Random+DRoP and EL2N at imbalance factors I = {', '.join(f'{f:g}' for f in FACTORS)} (one row "
    f"each); lines are means over seeds, bands min/max over seeds; dashed: the unpruned long-tailed "
    f"dataset, dotted: the same trained with CDB-W. Random+DRoP uses the paper's Algorithm 1 (rule "
    f"'paper': class densities proportional to the validation error, the rule of the paper's Figure 8); "
    f"Random+DRoP (rule counts) the authors' public code (class counts proportional to the error), "
    f"which the paper does not plot. Data: {SETTING}. {DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## The paper's rule and the authors' code side by side
#
# For each imbalance factor, the number of samples each class kept at the reference density in
# the trained runs of seed 0, under Algorithm 1 (rule `"paper"`) and under the authors' public
# code (rule `"counts"`), with the query recalls both came from (the same query models).
# Classes are in the long-tail order: class 0 is the largest.

# %%
at = claims.reference_density(frame, reference)
drop_rows = frame[(frame["protocol"] == "random+drop") & np.isclose(frame["density"], at) & (frame["seed"] == frame["seed"].min())]
quota_tables = []
for factor in FACTORS:
    rows = drop_rows[drop_rows["imbalance_factor"] == factor].set_index("quota_rule")
    first = rows.iloc[0]
    table = {"imbalance factor": f"{factor:g}", "class": np.arange(len(first["class_sizes"])),
             "class size": first["class_sizes"], "query recall (%)": 100 * np.asarray(first["query_val_recalls"])}
    for rule in rows.index:
        table[f"kept, rule {rule}"] = rows.loc[rule, "class_counts"]
    quota_tables.append(pd.DataFrame(table))
quotas_table = pd.concat(quota_tables, ignore_index=True).set_index(["imbalance factor", "class"])
with pd.option_context("display.precision", 1, "display.width", 200, "display.max_rows", 100):
    print(f"d = {at:g}, seed {int(drop_rows['seed'].min())}")
    display(quotas_table)
if {"kept, rule paper", "kept, rule counts"} <= set(quotas_table.columns):
    largest = quotas_table.groupby(level=0, sort=False).first()
    print("Kept from the largest class (class 0), rule paper vs rule counts: "
          + "; ".join(f"I = {i}: {int(r['kept, rule paper'])} vs {int(r['kept, rule counts'])}" for i, r in largest.iterrows())
          + ".")

# %% [markdown]
# ## What we see
#
# Computed from the results above: for each imbalance factor, at the reference density, the mean
# over seeds of the four metrics (full-dataset rows at density 1), whether the paper's
# observations hold on these numbers (verdicts chosen by `dropkit.claims.comparison_claim`), and
# how the two quota rules compare.

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
    if COUNTS_RULE in table.index:
        better = table.loc["Random+DRoP", "worst-class (%)"] - table.loc[COUNTS_RULE, "worst-class (%)"]
        print(f"I = {factor:g}: rule paper's worst-class accuracy is {abs(better):.1f} points "
              f"{'above' if better >= 0 else 'below'} rule counts' (not a claim of the paper, which "
              f"plots rule paper only).")
