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
# others. Following {cite:t}`cui2019class`, the paper {cite:p}`vysogorets2025drop` makes a
# balanced dataset long-tailed by keeping a fraction $\mu^{k-1}$ of class $k$ ($k = 1, \dots, K$),
# so that the largest class is $I = \mu^{1-K}$ times the smallest (the *imbalance factor*), and
# compares **Random+DRoP** with **EL2N** at $I = 2, 5, 20$ (ResNet-18 on TinyImageNet, Figure 8),
# together with the unpruned long-tailed dataset trained normally and with the robust loss CDB-W
# {cite:p}`sinha2022class`. The paper finds that Random+DRoP beats EL2N in average and robust
# performance at every imbalance factor and almost always reduces the bias of the unpruned
# dataset, even when that one is trained with CDB-W.
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

# %% tags=["parameters", "hide-input"]
profile = "default"
dataset = None  # None: the profile's dataset for this experiment (default: fashion-mnist; paper: tinyimagenet)
model = None  # None: the profile's model (default: mlp)
densities = None  # None: the profile's densities (default: 0.1, 0.3, 0.5, 0.7, 0.9)
seeds = None  # None: the profile's seeds for this chapter, per setting (Profile.seeds_for)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
workers = None  # None: the profile's local worker processes, limited by the CPU count
data_root = None  # None: the datasets' default locations ($DROPKIT_DATA, system directories)
reference = 0.5  # the density of the "what we see" table (the closest density present is used)

# %% tags=["remove-stderr"]
import numpy as np
import pandas as pd

from dropkit import claims, curves, plots, publish
from dropkit.chapter import chapter_results, check_reference, setting_paragraph

EXPERIMENT = "imbalanced"
CHAPTER = "05_imbalanced"  # this notebook (the figures\' regeneration command)
curves.use_book_theme()
check_reference(reference)
results = chapter_results(profile, EXPERIMENT, dataset=dataset, model=model, densities=densities,
                          seeds=seeds, device=device, results_dir=results_dir, workers=workers,
                          data_root=data_root, progress=True)
frame = results.frame
frame["panel"] = [f"I = {f:g}" for f in frame["imbalance_factor"]]
FACTORS = sorted({float(f) for f in frame["imbalance_factor"]})
CDBW_FULL = curves.CDBW_FULL_DATASET
COUNTS_RULE = "Random+DRoP (rule counts)"
CURVES = ["Random+DRoP", COUNTS_RULE, "EL2N"]

# %% tags=["remove-input"]
# The paper's claims on this chapter and their verdicts: the rows of the scorecard
# ({doc}`08_scorecard`), from every stored run of the profile, Holm-corrected over the scorecard.
from dropkit import scorecard

card, omissions, _ = scorecard.book_scorecard(profile, results_dir, seeds=seeds, device=device,
                                              reference=reference)
publish.show_markdown(scorecard.chapter_box(card, "05_imbalanced"))

# %% tags=["remove-input"]
sizes = ", ".join(f"$I = {f:g}$: {int(frame.loc[frame['imbalance_factor'] == f, 'num_train'].iloc[0])}"
                  for f in FACTORS)
note = (f"Training-set sizes per imbalance factor: {sizes}; DRoP quota rule(s): "
        + ", ".join(f"`{r}`" for r in sorted(set(frame["quota_rule"]))) + ".")
publish.show_markdown(setting_paragraph(results, EXPERIMENT, dataset=dataset, model=model, notes=[note]))

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-8>` (paper Figure 8): Random+DRoP against EL2N across imbalance factors
#
# One block per imbalance factor.

# %%
fig = plots.plot_density_curves(frame, tuple(curves.METRICS), row="panel",
                                labels=CURVES)
publish.publish_figure("paper-figure-8", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-8
# :name: paper-figure-8
# :alt: Reproduction of paper Figure 8
#
# (paper Figure 8) Average accuracy, worst-class accuracy, gap and standard deviation of the class accuracies
# against density $d$ for Random+DRoP (Algorithm 1), Random+DRoP with the authors' counts rule
# and EL2N, one block per imbalance factor $I$; dash-dotted black: the unpruned long-tailed dataset,
# dotted green: the same trained with CDB-W.
# ```
#
# ```{glue:md} paper-figure-8-source
# :format: myst
# ```

# %% [markdown]
# ## The paper's rule and the authors' code side by side
#
# For each imbalance factor, the number of samples each class kept at the reference density in
# the trained runs of the first seed, under Algorithm 1 (rule `"paper"`) and under the authors'
# public code (rule `"counts"`), with the query recalls both came from (the same query models).
# Classes are in the long-tail order: class 0 is the largest.

# %% tags=["hide-input"]
at = claims.reference_density(frame, reference)
first_seed = frame["seed"].min()
drop_rows = frame[(frame["protocol"] == "random+drop") & np.isclose(frame["density"], at) & (frame["seed"] == first_seed)]
quota_tables = []
for factor in FACTORS:
    rows = drop_rows[drop_rows["imbalance_factor"] == factor].set_index("quota_rule")
    first = rows.iloc[0]
    table = {"imbalance factor": f"{factor:g}", "class": np.arange(len(first["class_sizes"])),
             "class size": first["class_sizes"], "query recall (%)": 100 * np.asarray(first["query_val_recalls"])}
    for rule in rows.index:
        table[f"kept, rule {rule}"] = rows.loc[rule, "class_counts"]
    quota_tables.append(pd.DataFrame(table))
quotas_table = pd.concat(quota_tables, ignore_index=True)
publish.show_markdown(publish.markdown_table(
    quotas_table, f"Samples kept per class at $d = {at:g}$ (seed {int(first_seed)})", decimals=1))

# %% [markdown]
# ## What we see
#
# Computed from the results above: for each imbalance factor, at the reference density, the mean
# over seeds of the four metrics (full-dataset rows at density 1) and the two quota rules' worst
# class side by side; then the verdicts of the one rule of `dropkit.claims` (per-seed effects,
# 95 % t-interval over seeds), the same rows as the scorecard ({doc}`08_scorecard`).

# %% tags=["hide-input"]
for factor in FACTORS:
    rows = frame[frame["imbalance_factor"] == factor]
    table = claims.curve_metrics(rows, at)
    notes = []
    if COUNTS_RULE in table.index:
        notes.append(f"Worst-class accuracy, mean over seeds: {table.loc['Random+DRoP', 'worst-class (%)']:.1f} % "
                     f"with rule paper, {table.loc[COUNTS_RULE, 'worst-class (%)']:.1f} % with rule counts (not a "
                     f"claim of the paper, which plots rule paper only; no verdict).")
    title = curves.setup_title(rows["dataset"].iloc[0], rows["model"].iloc[0])
    publish.show_markdown(publish.markdown_table(table, f"{title}, $I = {factor:g}$: every curve at $d = {at:g}$ (mean ± sd over the $n$ seeds)"),
                          publish.bullet_list(notes))
publish.show_markdown(scorecard.chapter_markdown(card, "05_imbalanced", omissions))
