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
# Section 4 of the paper {cite:p}`vysogorets2025drop` compares DRoP with one cost-sensitive
# method from the distributionally robust optimisation literature, **CDB-W** (class-wise
# difficulty-based weighting, {cite:t}`sinha2022class`): at every epoch $t$ it measures the class
# recalls $r_{k,t}$ on the validation split and weighs the loss of every sample of class $k$ by
# $w_{k,t} = 1 - r_{k,t}$ — "precisely the proportions used by DRoP" for its class densities.
# We normalise them as the paper normalises DRoP's quotas $d_k = d(1 - r_k)/Z$ (Section 4,
# $Z = \sum_k (1 - r_k) N_k / N$): $w_{k,t} = (1 - r_{k,t})/Z_t$ over the class sizes $N_k$ of
# the trained-on data, so the mean weight per training sample is 1 and the learning rate keeps
# its meaning; a class at recall 1 weighs 0. With EL2N as
# the pruning score, the paper tests whether such a robust optimiser helps pruning in two ways:
#
# * **EL2N+CDB-W** — the final model is trained with CDB-W on the EL2N-pruned dataset;
# * **CDB-W+EL2N** — the EL2N scores come from query models trained with CDB-W;
#
# (CDB-W's weights at epoch $t$ come from the recalls after epoch $t-1$, so its first epoch is
# unweighted: with one-epoch query models CDB-W+EL2N would coincide with EL2N. The paper's query
# models train 16 epochs; the query models of this chapter train at least 2, all protocols
# alike), and compares them with **Random+DRoP**, **EL2N+DRoP** and plain **EL2N**, and with
# CDB-W on the full dataset. The paper (VGG-19 on CIFAR-100, Figure 7) finds that CDB-W on the
# full dataset improves the worst class, but by less than Random+DRoP at $d = 0.5$; that
# EL2N+CDB-W keeps EL2N's bias; and that CDB-W+EL2N is among the most biased protocols of the
# study.
#
# The authors' public code ({cite:t}`vysogorets2025drop`'s repository `avysogorets/fair-data-pruning`,
# `trainer.py`) weighs differently: $w_{k,t} = 1 - r_{k,t}$ with no normaliser, and each batch's
# loss is the weighted mean $\sum_i w_{y_i} \ell_i / \sum_i w_{y_i}$ (PyTorch's
# `cross_entropy(..., weight=w)`), so the batch's own weight sum sets the scale. Every CDB-W run of
# this chapter is also run with that rule (`cdbw_weights="authors"`, curves marked "authors'
# rule"), on the same seeds, to tell a property of CDB-W from one of our implementation.
#
# The runs come from `dropkit.profiles.experiment_specs(profile, "cdbw")`; the `default`
# profile's rows ship in `results/default/`, so rendering the book only reads them.

# %% tags=["parameters", "hide-input"]
profile = "default"
dataset = None  # None: the profile's dataset for this experiment (default: fashion-mnist)
model = None  # None: the profile's model (default: mlp)
densities = None  # None: the profile's densities (default: 0.1, 0.3, 0.5, 0.7, 0.9)
seeds = None  # None: the profile's seeds for this chapter, per setting (Profile.seeds_for)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
workers = None  # None: the profile's local worker processes, limited by the CPU count
data_root = None  # None: the datasets' default locations ($DROPKIT_DATA, system directories)
reference = 0.5  # the density of the "what we see" table (the closest density present is used)

# %% tags=["remove-stderr"]
import matplotlib.pyplot as plt
import pandas as pd

from dropkit import claims, curves, plots, publish, tables
from dropkit.chapter import chapter_results, check_reference, setting_paragraph

EXPERIMENT = "cdbw"
CHAPTER = "04_cdbw"  # this notebook (the figures\' regeneration command)
curves.use_book_theme()
check_reference(reference)
results = chapter_results(profile, EXPERIMENT, dataset=dataset, model=model, densities=densities,
                          seeds=seeds, device=device, results_dir=results_dir, workers=workers,
                          data_root=data_root, progress=True)
frame = results.frame
CDBW_FULL = curves.CDBW_FULL_DATASET
CURVES = ["Random+DRoP", "EL2N+DRoP", "EL2N", "EL2N+CDB-W", "CDB-W+EL2N"]

# %% tags=["remove-input"]
# The paper's claims on this chapter and their verdicts: the rows of the scorecard
# ({doc}`08_scorecard`), from every stored run of the profile, Holm-corrected over the scorecard.
from dropkit import scorecard

card, omissions, _ = scorecard.book_scorecard(profile, results_dir, seeds=seeds, device=device,
                                              reference=reference)
publish.show_markdown(scorecard.chapter_box(card, "04_cdbw"))

# %% tags=["remove-input"]
# CDB-W weighs each epoch's loss by the previous epoch's validation recalls, so its first epoch is
# unweighted: a one-epoch CDB-W query model is the plain query model, and CDB-W+EL2N would equal
# EL2N. The profiles' cdbw set therefore trains its query models at least 2 epochs
# (`dropkit.profiles.CDBW_MIN_QUERY_EPOCHS`); this checks what the runs did.
QUERY_EPOCHS = sorted({q for q in frame.loc[frame["label"] == "CDB-W+EL2N", "query_epochs"]})
key = ["density", "seed"]
plain = frame[frame["label"] == "EL2N"].set_index(key)["test_accuracy"]
robust = frame[frame["label"] == "CDB-W+EL2N"].set_index(key)["test_accuracy"]
IDENTICAL = bool(len(plain) and plain.sort_index().equals(robust.reindex(plain.index).sort_index()))
if QUERY_EPOCHS == [1]:
    note = ("The query models train 1 epoch, and CDB-W's first epoch is unweighted, so here CDB-W+EL2N is "
            "the same as EL2N" + (" (identical results; its curve hides EL2N's)." if IDENTICAL else "."))
else:
    note = (f"All CDB-W+EL2N query models of this chapter train {', '.join(map(str, QUERY_EPOCHS))} epochs (at "
            "least 2, so that CDB-W's weights act in the CDB-W query models); CDB-W+EL2N's results "
            f"{'are identical to' if IDENTICAL else 'differ from'} EL2N's.")
publish.show_markdown(setting_paragraph(results, EXPERIMENT, dataset=dataset, model=model, notes=[note]))

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-7>` (paper Figure 7): Average accuracy and class robustness against density

# %% tags=["hide-input"]
# The CDB-W rule the scorecard reads (the authors' where its rows exist: the paper's numbers come
# from their code); both rules side by side further down (figure cdbw-rules).
RULE = scorecard.scorecard_cdbw_rule(frame)
OTHER_FULL = curves.cdbw_rule_label(CDBW_FULL, "paper" if RULE == "authors" else "authors")
fig = plots.plot_density_curves(frame[frame["label"] != OTHER_FULL], tuple(curves.METRICS),
                                labels=[curves.cdbw_rule_label(c, RULE) if "CDB-W" in c else c for c in CURVES])
publish.publish_figure("paper-figure-7", fig, chapter=CHAPTER, profile=profile)
publish.publish_text("paper-figure-7-rule", {  # plain text: a glued text is not parsed for math
    "authors": "the authors' rule, w_k = 1 − r_k, each batch's loss their weighted mean (their code, with which "
               "the paper's numbers were computed; the rule the scorecard reads; both rules side by side "
               "further down this page)",
    "paper": "our rule, w_k = (1 − r_k)/Z with DRoP's normaliser (Section 4; no run of the authors' rule is stored)",
}[RULE])
publish.publish_text("paper-figure-7-rule-short", {"authors": "the authors' rule", "paper": "ours"}[RULE])

# %% [markdown]
# ```{glue:figure} paper-figure-7
# :name: paper-figure-7
# :alt: Reproduction of paper Figure 7
#
# (paper Figure 7) Average accuracy, worst-class accuracy, gap and standard deviation of the class accuracies
# against density $d$ for the DRoP and CDB-W protocols; bands span the seeds, dash-dotted black: the
# full dataset, dotted: the full dataset trained with CDB-W. CDB-W weights with
# {glue:text}`paper-figure-7-rule`; query models 2 epochs; no data augmentation.
# ```
#
# ```{glue:md} paper-figure-7-source
# :format: myst
# ```

# %% [markdown]
# ## The CDB-W weights of EL2N+CDB-W, epoch by epoch
#
# CDB-W's weights follow the validation recalls from epoch to epoch. Each run records the
# validation recalls after every epoch of its final training, so the weights it used can be
# recomputed: below, for EL2N+CDB-W with our rule at the reference density, the worst validation recall after
# each epoch (which sets the next epoch's weights) and the largest class weight, one line per
# seed, and in the table below, per seed, the class of lowest validation recall after each epoch. By construction a class
# near recall 0 receives the largest weight in the next epoch and a class at recall 1 weighs 0.
# Our rule's weights are the paper's text's, $w_k = (1 - r_k)/Z$ with DRoP's normaliser
# $Z = \sum_k (1 - r_k) N_k / N$ over the kept class sizes (mean weight per kept sample 1;
# earlier versions of this book floored $1 - r_k$ at $10^{-3}$ and rescaled the weights to mean 1
# over classes).

# %% tags=["hide-input"]
import numpy as np

at = claims.reference_density(frame[frame["protocol"] != "none"], reference)
history = tables.cdbw_weight_history(frame, "EL2N+CDB-W", at)
if history.empty:
    publish.show_markdown("*These rows do not record the recalls behind CDB-W's weights "
                          "(computed before `cdbw_val_recalls_per_epoch` existed).*")
else:
    fig = plots.plot_cdbw_weight_history(history)
    publish.publish_figure("cdbw-weight-history", fig, chapter=CHAPTER, profile=profile)
    names = list(frame["class_names"].iloc[0])
    final = frame[(frame["label"] == "EL2N+CDB-W") & np.isclose(frame["density"], at)]
    publish.show_markdown(publish.markdown_table(
        tables.cdbw_seed_table(history, final, names),
        f"EL2N+CDB-W at d = {at:g}, per seed: the class of lowest validation recall after each epoch (it "
        "sets the next epoch's weights), the weighted epochs that start from a class below 5 % validation "
        "recall, the largest class weight, and the final model's worst test class", decimals=1))

# %% [markdown]
# ```{glue:figure} cdbw-weight-history
# :name: cdbw-weight-history
# :alt: CDB-W weights of EL2N+CDB-W during training
#
# EL2N+CDB-W with our rule at the reference density: the worst validation recall after each epoch
# and the largest CDB-W class weight it sets for the next epoch, one line per seed (with more than
# 8 seeds thin grey lines, and their median over seeds per epoch in black). Not a figure of
# the paper: the measurement behind our rule's EL2N+CDB-W curve ({numref}`cdbw-rules`).
# ```
#
# ```{glue:md} cdbw-weight-history-source
# :format: myst
# ```

# %% [markdown]
# ## Our rule against the authors' rule
#
# The same CDB-W runs with both weight rules, on the same seeds: **ours** ($w_k = (1 - r_k)/Z$,
# loss $\frac1B \sum_i w_{y_i} \ell_i$) and **the authors'** ($w_k = 1 - r_k$, loss
# $\sum_i w_{y_i} \ell_i / \sum_i w_{y_i}$ per batch, as in their `trainer.py`; a batch whose
# samples all weigh 0 would give PyTorch 0/0, here it gives loss 0, see
# `dropkit.train.cdbw_batch_loss`). Both start from unweighted first epochs, so they differ from
# the second epoch on. Which rule stands for the paper: its text (Section 4) gives the weights as
# "precisely the proportions used by DRoP", which our rule implements; its Figure 7 numbers were
# computed with the authors' code, so the authors' rule is the one whose provenance matches the
# paper's numbers. Below: worst-class accuracy against density, and the number of seeds in
# which a CDB-W run *collapses*, i.e. its worst-class accuracy falls below half of plain EL2N's
# on the same seed and density (`dropkit.cdbw_rules.collapse_counts`).

# %% tags=["hide-input"]
from dropkit import cdbw_rules

AUTHORS = curves.CDBW_AUTHORS_SUFFIX
RULE_CURVES = ["EL2N", "EL2N+CDB-W", "EL2N+CDB-W" + AUTHORS, "CDB-W+EL2N", "CDB-W+EL2N" + AUTHORS]
RULES = {"paper": "ours", "authors": "authors'"}
authors_rows = frame[(frame["cdbw"] | frame["query_cdbw"]) & (frame["cdbw_weights"] == "authors")]
if authors_rows.empty:
    publish.show_markdown("*No run of this chapter uses the authors' CDB-W rule.*")
else:
    fig = plots.plot_density_curves(frame, ("test_worst_class",), labels=RULE_CURVES, zoom=None,
                                    panel_size=(6.4, 3.8))
    publish.publish_figure("cdbw-rules", fig, chapter=CHAPTER, profile=profile)
    counts = cdbw_rules.collapse_counts(frame)
    counts = counts[counts["curve"] != curves.CDBW_FULL_DATASET].assign(rule=lambda t: t["rule"].map(RULES))
    counts = counts.rename(columns={"density": "d", "worst_mean": "worst class %", "el2n_mean": "EL2N worst class %",
                                    "worst_min": "min %", "worst_max": "max %"})
    publish.show_markdown(publish.markdown_table(counts.set_index(["curve", "rule", "d"]),
                                                 "CDB-W runs whose worst class collapses (below half of EL2N's), by rule",
                                                 decimals=1))

# %% [markdown]
# ```{glue:figure} cdbw-rules
# :name: cdbw-rules
# :alt: Worst-class accuracy of EL2N+CDB-W and CDB-W+EL2N under both CDB-W rules
#
# Worst-class test accuracy against density $d$ of EL2N, EL2N+CDB-W and CDB-W+EL2N with our CDB-W
# rule and with the authors' rule (same seeds; lines: mean, bands: min/max over seeds); dotted:
# CDB-W on the full dataset under each rule, dashed black: the full dataset. Not a figure of the
# paper: both rules' EL2N+CDB-W and CDB-W+EL2N curves ({numref}`paper-figure-7` draws
# {glue:text}`paper-figure-7-rule-short`).
# ```
#
# ```{glue:md} cdbw-rules-source
# :format: myst
# ```

# %% [markdown]
# ## Class weights and recalls, epoch by epoch, under both rules
#
# Each CDB-W run records the validation recalls after every epoch of its CDB-W training(s)
# (`cdbw_val_recalls_per_epoch`; CDB-W+EL2N's query runs: `query_cdbw_val_recalls_per_epoch`, in
# rows computed since that column exists), so the weights each epoch used are recomputed exactly
# (`dropkit.cdbw_rules.class_histories`). Below, EL2N+CDB-W's final training at the reference
# density for one seed (the smallest), both rules: the weight of each class during each epoch, and
# each class's validation recall after it. Then, over all seeds, how much the weights and recalls
# move between epochs (`dropkit.cdbw_rules.oscillation`).

# %% tags=["hide-input"]
histories = cdbw_rules.class_histories(frame, at)
final = histories[(histories["curve"] == "EL2N+CDB-W") & (histories["training"] == "final")]
if authors_rows.empty or final.empty or set(final["rule"]) < set(RULES):
    publish.show_markdown("*These rows do not record both rules' CDB-W recalls at the reference density.*")
else:
    names = list(frame["class_names"].iloc[0])
    seed = int(final["seed"].min())
    shown = final[final["seed"] == seed]
    palette = plt.get_cmap("tab10")
    fig, axes = plt.subplots(2, 2, figsize=(9, 5.6), sharex=True, layout="constrained")
    for r, (rule, rule_name) in enumerate({"paper": "our", "authors": "authors'"}.items()):
        rows = shown[shown["rule"] == rule]
        for k, class_rows in rows.groupby("class"):
            axes[r, 0].plot(class_rows["epoch"], class_rows["weight"], marker=".", color=palette(k), label=names[k])
            axes[r, 1].plot(class_rows["epoch"], 100 * class_rows["val_recall"], marker=".", color=palette(k))
        axes[r, 0].set(ylabel=f"class weight ({rule_name} rule)")
        axes[r, 1].set(ylabel="validation recall (%)")
        axes[r, 0].set_title(f"{rule_name} rule: weight during the epoch", fontsize=11)
        axes[r, 1].set_title(f"{rule_name} rule: recall after the epoch", fontsize=11)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=5, fontsize=10)
    publish.publish_figure("cdbw-class-histories", fig, chapter=CHAPTER, profile=profile,
                           data=shown[["rule", "class", "epoch", "weight", "val_recall"]].assign(
                               class_name=lambda t: [names[k] for k in t["class"]]))
    moves = cdbw_rules.oscillation(histories)
    moves = moves.assign(training=moves["training"].str.replace(r"query run \d+", "query runs", regex=True),
                         rule=moves["rule"].map(RULES), changes=moves["worst_class_changes"],
                         pairs=moves["epochs"] - 1)
    summary = moves.groupby(["curve", "rule", "training"]).agg(
        runs=("seed", "size"), changes=("changes", "sum"), pairs=("pairs", "sum"),
        lowest_recall=("lowest_recall_min", "min"), swing=("recall_swing_max", "max"),
        weight_ratio=("weight_ratio_max", "max"))
    summary = pd.DataFrame({
        "worst class changed": [f"{c} of {p}" for c, p in zip(summary["changes"], summary["pairs"])],
        "lowest recall %": 100 * summary["lowest_recall"],
        "largest swing (pp)": 100 * summary["swing"],
        "max / mean weight": summary["weight_ratio"],
    }, index=summary.index)
    pairs = cdbw_rules.rule_pairs(frame)
    revisions = {rule: sorted({str(r)[:7] for r in frame.loc[(frame["label"] == label), "git_revision"]})
                 for rule, label in (("paper", "EL2N+CDB-W"), ("authors", "EL2N+CDB-W" + AUTHORS))}
    publish.show_markdown(
        publish.markdown_table(summary, f"How CDB-W's weights move at $d = {at:g}$, all seeds (worst class changed: "
                                        "epoch pairs whose lowest-recall class differs)", decimals=1),
        f"How alike the two rules' EL2N+CDB-W runs of one seed started: the same kept class counts in "
        f"{int(pairs['same_counts'].sum())} of {len(pairs)} (density, seed) pairs (one class's count differs by up "
        f"to {pairs['count_diff_max'].max()} samples); after the unweighted epoch 0 one class's validation recall "
        f"differs by up to {100 * pairs['first_epoch_diff_max'].max():.1f} pp. Our rule's rows come from "
        f"revision(s) {', '.join(revisions['paper'])}, the authors' from {', '.join(revisions['authors'])}: "
        f"computed on different machines (see `results/default/README.md`), whose query models rounded "
        f"differently, so the rules' runs of one seed differ before any weight acts.")

# %% [markdown]
# ```{glue:figure} cdbw-class-histories
# :name: cdbw-class-histories
# :alt: Per-epoch class weights and validation recalls of EL2N+CDB-W under both rules
#
# EL2N+CDB-W at the reference density, one seed, our rule (top) and the authors' (bottom): left,
# each class's CDB-W weight during each epoch (epoch 0 unweighted); right, its validation recall
# after the epoch, which sets the next epoch's weight. MLP on Fashion-MNIST, 10 epochs. Not a
# figure of the paper.
# ```
#
# ```{glue:md} cdbw-class-histories-source
# :format: myst
# ```

# %% [markdown]
# ### What causes the collapse
#
# Computed from the rows above (`dropkit.cdbw_rules.collapse_finding`): the collapse counts under
# both rules and how the weights moved. The two rules' rows come from different machines (see
# above), so a difference between their counts may be the machine's rather than the rule's. The
# book's-rule EL2N+CDB-W runs at $d = 0.3$ and $0.5$ were therefore also recomputed on the machine
# of the authors'-rule rows (`results/reruns/<profile>/runs`, not part of the figures above;
# `results/default/README.md`, "The authors' CDB-W rule"), compared by
# `dropkit.cdbw_rules.same_machine_finding`. Last, whether the collapse is an instability of the
# learning rate: the same plain EL2N and EL2N+CDB-W runs (both rules, $d = 0.3$ and $0.5$, seeds
# 0-4) with a 5x smaller learning rate everywhere (`results/lower-lr/<profile>/runs`), judged by a
# rule fixed before they were computed (`dropkit.cdbw_rules.learning_rate_finding`).

# %% tags=["hide-input"]
from pathlib import Path

from dropkit.store import ResultStore

if not authors_rows.empty:
    try:
        publish.show_markdown(cdbw_rules.collapse_finding(frame, at))
    except ValueError as error:
        publish.show_markdown(f"*{error}*")
    recomputed = ResultStore(Path(results_dir) / "reruns", results.profile.name).frame()
    if recomputed.empty:
        publish.show_markdown(f"*No recomputed rows in {Path(results_dir) / 'reruns'}.*")
    else:
        try:
            publish.show_markdown(cdbw_rules.same_machine_finding(frame, recomputed))
        except ValueError as error:
            publish.show_markdown(f"*{error}*")
    lowered = ResultStore(Path(results_dir) / "lower-lr", results.profile.name).frame()
    if lowered.empty:
        publish.show_markdown(f"*No learning-rate check rows in {Path(results_dir) / 'lower-lr'}: whether a "
                              "smaller learning rate damps the collapse is not measured here.*")
    else:
        try:
            publish.show_markdown(cdbw_rules.learning_rate_finding(
                frame, lowered, expected=cdbw_rules.learning_rate_check_specs(results.profile.name)))
        except ValueError as error:
            publish.show_markdown(f"*{error}*")

# %% [markdown]
# ## What we see
#
# Computed from the results above: at the reference density, the mean ± sd over seeds of the four
# metrics for every curve (full-dataset rows at density 1). The verdicts below are the one rule of
# `dropkit.claims` (per-seed effects, 95 % t-interval over seeds), the same rows as the
# scorecard ({doc}`08_scorecard`).

# %% tags=["hide-input"]
SPREAD = " (mean ± sd over the $n$ seeds)"
table = claims.curve_metrics(frame, at)
title = curves.setup_title(frame["dataset"].iloc[0], frame["model"].iloc[0])
OTHER_QUERY = results.profile.setups_for("drop_evaluation")[0].query_epochs  # chapter 03's query models
why = "" if QUERY_EPOCHS == [OTHER_QUERY] else (
    f"; the query models train {', '.join(f'{q:g}' for q in QUERY_EPOCHS)} epochs here and {OTHER_QUERY:g} in chapter 03, "
    "so Random+DRoP, EL2N+DRoP and EL2N differ from chapter 03's values")
publish.show_markdown(publish.markdown_table(table, f"{title}: every curve at $d = {at:g}${SPREAD}{why}"),
                      scorecard.chapter_markdown(card, "04_cdbw", omissions))
