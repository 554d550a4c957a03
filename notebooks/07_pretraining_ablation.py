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
# GraNd need one for their scores. The paper {cite:p}`vysogorets2025drop` trains it for 10% of
# the final training length (at least the 10 epochs {cite:t}`paul2021deep` found enough for
# EL2N) and checks in Appendix F (Figure 15: VGG-19 on CIFAR-100 and ResNet-18 on TinyImageNet,
# densities 0.4, 0.5, 0.8) that the final performance of Random+DRoP saturates at that length or
# earlier, with larger densities needing even less query training.
#
# Here **Random+DRoP** is trained at the profile's ablation densities with query models trained
# for each length of the profile's `query_epoch_grid` (in epochs of the full dataset); everything
# else, including the final training, is fixed.
#
# The runs come from `dropkit.profiles.experiment_specs(profile, "pretraining_ablation")`; the
# `default` profile's rows ship in `results/default/`.

# %% tags=["parameters", "hide-input"]
profile = "default"
dataset = None  # None: the profile's dataset for this experiment (default: fashion-mnist)
model = None  # None: the profile's model (default: mlp)
densities = None  # None: the profile's ablation densities (default: 0.4, 0.5, 0.8)
seeds = None  # None: the profile's seeds for this chapter, per setting (Profile.seeds_for)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
workers = None  # None: the profile's local worker processes, limited by the CPU count
data_root = None  # None: the datasets' default locations ($DROPKIT_DATA, system directories)
reference = 0.5  # the density of the "what we see" table (the closest density present is used)

# %% tags=["remove-stderr"]
import numpy as np

from dropkit import claims, curves, plots, publish
from dropkit.chapter import chapter_results, check_reference, setting_paragraph

EXPERIMENT = "pretraining_ablation"
CHAPTER = "07_pretraining_ablation"  # this notebook (the figures\' regeneration command)
curves.use_book_theme()
check_reference(reference)
results = chapter_results(profile, EXPERIMENT, dataset=dataset, model=model, densities=densities,
                          seeds=seeds, device=device, results_dir=results_dir, workers=workers,
                          data_root=data_root, progress=True)
frame = results.frame
pruned = frame[frame["protocol"] != "none"]
QUERY_EPOCHS = sorted(float(q) for q in set(pruned["query_epochs"]))
DENSITIES = sorted(float(d) for d in set(pruned["density"]))
DEFAULT_QUERY = results.profile.setups_for(EXPERIMENT)[0].query_epochs  # chapters 02, 03, 05, 06 (10% of the final training)

# %% tags=["remove-input"]
# The paper's claims on this chapter and their verdicts: the rows of the scorecard
# ({doc}`08_scorecard`), from every stored run of the profile, Holm-corrected over the scorecard.
from dropkit import scorecard

card, omissions, _ = scorecard.book_scorecard(profile, results_dir, seeds=seeds, device=device,
                                              reference=reference)
publish.show_markdown(scorecard.chapter_box(card, "07_pretraining_ablation"))

# %% tags=["remove-input"]
note = (f"Query models train {', '.join(f'{q:g}' for q in QUERY_EPOCHS)} epochs (a fraction of an epoch: "
        f"that fraction of the first epoch's batches), from below to above the default; the final model trains "
        f"{int(frame['epochs'].iloc[0])} epochs; chapters 02, 03, 05 and 06 use query models of {DEFAULT_QUERY} "
        f"epoch{'s' if DEFAULT_QUERY != 1 else ''}.")
publish.show_markdown(setting_paragraph(results, EXPERIMENT, dataset=dataset, model=model, notes=[note]))

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-15>` (paper Figure 15): Final performance against the query model's training length

# %%
fig = plots.plot_query_length_curves(frame, ("test_accuracy", "test_worst_class"),
                                     reference_query=DEFAULT_QUERY,
                                     reference_label="query length of chapters 02, 03, 05, 06")
publish.publish_figure("paper-figure-15", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-15
# :name: paper-figure-15
# :alt: Reproduction of paper Figure 15
#
# (paper Figure 15) Average and worst-class test accuracy of Random+DRoP against the training length of the query
# models that give DRoP its class recalls, one line per density $d$; bands span the seeds,
# dash-dotted black: the full dataset, dotted grey: the query length of the other chapters.
# Query lengths lie below and above that default (a fraction of an epoch trains on that fraction
# of one epoch's batches); no data augmentation.
# ```
#
# ```{glue:md} paper-figure-15-source
# :format: myst
# ```

# %% [markdown]
# ## What we see
#
# Computed from the results above: for every density, the mean ± sd over seeds of the average and
# worst-class accuracy at each query length; then the verdicts of the one rule of
# `dropkit.claims` (per-seed effects, 95 % t-interval over seeds), the same rows as the
# scorecard ({doc}`08_scorecard`).

# %% tags=["hide-input"]
title = curves.setup_title(frame["dataset"].iloc[0], frame["model"].iloc[0])
for density in DENSITIES:
    rows = pruned[np.isclose(pruned["density"], density)].copy()
    rows["curve"] = [f"query {q:g} epoch{'s' if q != 1 else ''}" for q in rows["query_epochs"]]
    rows = rows.sort_values("query_epochs", kind="stable")
    table = claims.curve_metrics(rows, density, ("test_accuracy", "test_worst_class"))
    publish.show_markdown(publish.markdown_table(table, f"{title}, Random+DRoP at $d = {density:g}$ (mean ± sd over the $n$ seeds)"))
publish.show_markdown(scorecard.chapter_markdown(card, "07_pretraining_ablation", omissions))
