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
# # Group robustness: a spurious cue
#
# Most robustness research asks for good accuracy on every *group* of the data, not only every
# class. The paper's example is Waterbirds {cite:p}`sagawa2020distributionally`: the label (land bird or water
# bird) is spuriously correlated with the background (land or water) in training, so models learn
# the background and fail on the two minority groups. With the original setup (an
# ImageNet-pretrained ResNet-50), the paper reports that Random+DRoP and EL2N+DRoP markedly improve
# the worst-group accuracy and the other group metrics (Figure 9 of {cite:t}`vysogorets2025drop`).
#
# Offline, this chapter uses a Waterbirds-like variant of the real Fashion-MNIST {cite:p}`xiao2017fashion`
# (`spurious-fashion-mnist` in `dropkit.data`): the task is T-shirt/top against Shirt, and a grey
# background level (the *cue*) agrees with the label for 95% of the training images of each
# class, while in validation and test the cue is independent of the label. The four groups are
# (label, cue); the two where cue and label disagree play the role of Waterbirds' minority groups.
# At paper scale (`profile="paper"`) the same notebook runs Waterbirds with a ResNet-50 whose
# ImageNet weights are read from the local file `pretrained_path`.
#
# **Quotas over classes or over groups.** The paper does not say which it used for Waterbirds;
# its Algorithm 1 is written for classes. This chapter trains both:
#
# * **Random+DRoP**, **EL2N+DRoP** — quotas over *classes* (Algorithm 1 as written): the two
#   classes get densities proportional to the query models' class validation errors, and the
#   groups within a class are sampled at random (Random+DRoP) or by EL2N score (EL2N+DRoP);
# * **Random+DRoP (group quotas)**, **EL2N+DRoP (group quotas)** — Algorithm 1 over the four
#   *groups*: group densities proportional to the same query models' per-group validation errors
#   (`RunSpec(drop_over="groups")`, `dropkit.protocols.keep_indices(..., groups=...)`), which
#   needs the group labels of the training set (Waterbirds has them).
#
# Groups also enter the evaluation (`test_worst_group`, `test_group_gap`, `test_group_std`,
# `test_group_recalls`).
#
# The runs come from `dropkit.profiles.experiment_specs(profile, "waterbirds")`; the `default`
# profile's rows ship in `results/default/`.

# %% tags=["parameters", "hide-input"]
profile = "default"
dataset = None  # None: the profile's dataset for this experiment (default: spurious-fashion-mnist; paper: waterbirds)
model = None  # None: the profile's model (default: mlp)
densities = None  # None: the profile's densities (default: 0.1, 0.3, 0.5, 0.7, 0.9)
seeds = None  # None: the profile's seeds for this chapter, per setting (Profile.seeds_for)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
workers = None  # None: the profile's local worker processes, limited by the CPU count
data_root = None  # None: the datasets' default locations ($DROPKIT_DATA, system directories)
reference = 0.5  # the density of the "what we see" table (the closest density present is used)
pretrained_path = None  # paper profile only: a local ImageNet ResNet-50 state_dict file

# %% tags=["remove-stderr"]
import numpy as np
import pandas as pd

from dropkit import claims, curves, plots, publish
from dropkit.chapter import chapter_results, check_reference, setting_paragraph

EXPERIMENT = "waterbirds"
CHAPTER = "06_waterbirds"  # this notebook (the figures\' regeneration command)
curves.use_book_theme()
check_reference(reference)
results = chapter_results(profile, EXPERIMENT, dataset=dataset, model=model, densities=densities,
                          seeds=seeds, device=device, results_dir=results_dir, workers=workers,
                          data_root=data_root, pretrained_path=pretrained_path, progress=True)
frame = results.frame
CDBW_FULL = curves.CDBW_FULL_DATASET
CURVES = ["Random", "Random+DRoP", "EL2N", "EL2N+DRoP", "Random+DRoP (group quotas)", "EL2N+DRoP (group quotas)"]
GROUP_METRICS = {"test_accuracy": curves.METRICS["test_accuracy"], **curves.GROUP_METRICS,
                 "test_worst_class": curves.METRICS["test_worst_class"]}

# %% tags=["remove-input"]
# The paper's claims on this chapter and their verdicts: the rows of the scorecard
# ({doc}`08_scorecard`), from every stored run of the profile, Holm-corrected over the scorecard.
from dropkit import scorecard

card, omissions, _ = scorecard.book_scorecard(profile, results_dir, seeds=seeds, device=device,
                                              reference=reference)
publish.show_markdown(scorecard.chapter_box(card, "06_waterbirds"))

# %% tags=["remove-input"]
missing = [m for m in GROUP_METRICS if m not in frame]
if missing:
    raise RuntimeError(f"the runs hold no group metrics {missing}: is {sorted(set(frame['dataset']))} a group dataset?")
K = int(frame["num_classes"].iloc[0])
CLASS_NAMES = list(frame["class_names"].iloc[0])
GROUP_NAMES = [f"{CLASS_NAMES[g // K]}, cue {g % K}{' (aligned)' if g % K == g // K else ''}"
               for g in range(len(frame["test_group_recalls"].dropna().iloc[0]))]
publish.show_markdown(setting_paragraph(results, EXPERIMENT, dataset=dataset, model=model))

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-9>` (paper Figure 9): Worst-group accuracy and the other group metrics

# %%
fig = plots.plot_density_curves(frame, tuple(GROUP_METRICS), labels=CURVES)
publish.publish_figure("paper-figure-9", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-9
# :name: paper-figure-9
# :alt: Reproduction of paper Figure 9
#
# (paper Figure 9) Average accuracy, worst-group accuracy, gap and standard deviation of the group accuracies
# (groups = label $\times$ cue) and worst-class accuracy against density $d$, for DRoP with quotas
# over classes (Algorithm 1) and over groups (dashed); dash-dotted black: the full dataset, dotted
# green: the full dataset trained with CDB-W.
# ```
#
# ```{glue:md} paper-figure-9-source
# :format: myst
# ```

# %% [markdown]
# ## What we see
#
# Computed from the results above: at the reference density, the mean ± sd over seeds of the group
# metrics and of every group's accuracy for every curve (full-dataset rows at density 1), the
# training samples each group kept; then the verdicts of the one rule of `dropkit.claims`
# (per-seed effects, 95 % t-interval over seeds), the same rows as the scorecard
# ({doc}`08_scorecard`).

# %% tags=["hide-input"]
at = claims.reference_density(frame, reference)
table = claims.curve_metrics(frame, at, tuple(GROUP_METRICS))
table = table.rename(columns={**{m: f"{name} (%)" for m, name in GROUP_METRICS.items()},
                              **{f"{m} sd": f"{name} (%) sd" for m, name in GROUP_METRICS.items()}})
groups = {}
for curve, rows in frame.groupby("label", sort=False):
    chosen = rows[np.isclose(rows["density"], at)] if (rows["density"] < 1).any() else rows
    groups[curve] = 100 * np.stack([np.asarray(v, dtype=float) for v in chosen["test_group_recalls"]]).mean(axis=0)
group_table = pd.DataFrame.from_dict(groups, orient="index", columns=GROUP_NAMES).loc[table.index]
group_table.index.name = "curve"
kept = {}
for curve, rows in frame[np.isclose(frame["density"], at)].groupby("label", sort=False):
    if "group_counts" in rows and rows["group_counts"].notna().all():
        kept[curve] = np.stack([np.asarray(v, dtype=float) for v in rows["group_counts"]]).mean(axis=0)
kept_table = pd.DataFrame.from_dict(kept, orient="index", columns=GROUP_NAMES)
kept_table.index.name = "curve"
title = curves.setup_title(frame["dataset"].iloc[0], frame["model"].iloc[0])
notes = []
for first in ("Random+DRoP", "EL2N+DRoP"):
    grouped = f"{first} (group quotas)"
    if grouped in table.index and first in table.index:
        by_group, by_class = (float(table.loc[c, "worst-group accuracy (%)"]) for c in (grouped, first))
        notes.append(f"{first}: worst-group accuracy {by_group:.1f} % with quotas over groups, {by_class:.1f} % "
                     f"with quotas over classes, means over seeds (the paper does not say which quotas it "
                     f"used; no verdict).")
parts = [publish.markdown_table(table, f"{title}: group metrics of every curve at $d = {at:g}$ (mean ± sd over the $n$ seeds)"),
         publish.markdown_table(group_table, f"Test accuracy of every group (%) at $d = {at:g}$")]
if not kept_table.empty:
    parts.append(publish.markdown_table(kept_table, f"Training samples kept per group at $d = {at:g}$ (mean over seeds)",
                                        decimals=1))
publish.show_markdown(*parts, publish.bullet_list(notes), scorecard.chapter_markdown(card, "06_waterbirds", omissions))
