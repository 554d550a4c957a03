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
# # DRoP: distributionally robust pruning
#
# Section 4 of the paper {cite:p}`vysogorets2025drop` proposes **DRoP**: train a query model on
# the full dataset, measure the recall $r_k$ of every class on a held-out validation split, and
# give class $k$ the density $d_k \propto 1 - r_k$ (Algorithm 1: classes that would need
# $d_k > 1$ keep everything and their excess is redistributed), so that the hardest classes keep
# the most samples. Which samples each class keeps is then decided *randomly* (**Random+DRoP**),
# as the Gaussian-mixture analysis of {doc}`01_theory` suggests.
#
# For a pruning score (the *Strategy*: EL2N, GraNd {cite:p}`paul2021deep` or Forgetting
# {cite:p}`toneva2019empirical`) the paper compares five protocols at every density $d$:
#
# * **Strategy** — keep the top-scoring $dN$ samples overall;
# * **Random+StrategyQ** — keep as many samples per class as the Strategy does, chosen at random;
# * **Strategy+DRoP** — DRoP's class quotas, top scores within each class;
# * **Random+DRoP** — DRoP's class quotas, random within each class;
# * **Random** — a uniform random subset;
#
# and the model trained on the full dataset. The DRoP recalls of both DRoP protocols come from the
# short EL2N query trainings (10% of the final training length, averaged over query seeds), as
# the paper's Appendix F states ("we used 10% of the full training cycle to train the query model
# for EL2N, GraNd, and DRoP"): Strategy+DRoP takes its *scores* from the Strategy's query model
# (for Forgetting the full-length run) and its *quotas* from DRoP's, so Forgetting+DRoP and
# Random+DRoP keep the same number of samples per class.
#
# The runs come from `dropkit.profiles.experiment_specs(profile, "drop_evaluation")`; the
# `default` profile's rows ship in `results/default/`, so rendering the book only reads them.
#
# Every figure has one block of panels per *setting* of the profile (a model-dataset pair and its
# training, e.g. the `default` profile's MLP and its small CNN on Fashion-MNIST) and Strategy,
# titled with both; each setting is evaluated with its own Strategies (the `default` CNN with
# EL2N only). The tables and verdicts of "What we see" are given per setting too.

# %% tags=["parameters", "hide-input"]
profile = "default"
dataset = None  # None: every setting of the profile (default: fashion-mnist); else that dataset's only
model = None  # None: each setting's own model (default: mlp, cnn); else it replaces every setting's
strategy = None  # "el2n", "grand" or "forgetting" for every setting; None: each setting's own (default: MLP
# el2n, forgetting; CNN el2n)
densities = None  # None: each setting's densities (default: MLP 0.1, 0.3, 0.5, 0.7, 0.9; CNN 0.1-0.7)
seeds = None  # None: the profile's seeds for this chapter, per setting (Profile.seeds_for)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
workers = None  # None: the profile's local worker processes, limited by the CPU count
data_root = None  # None: the datasets' default locations ($DROPKIT_DATA, system directories)
reference = 0.5  # the density of the "what we see" table (the closest density present is used)

# %% tags=["hide-input"]
import dataclasses

from dropkit import claims, curves, plots, publish, tables
from dropkit.chapter import chapter_results, check_reference, setting_paragraph
from dropkit.book import BOOK_STRATEGIES
from dropkit.profiles import check_profile, get_profile

EXPERIMENT = "drop_evaluation"
CHAPTER = "03_drop_evaluation"  # this notebook (the figures\' regeneration command)
if strategy is not None and strategy not in BOOK_STRATEGIES:
    raise ValueError(f"strategy={strategy!r} must be None (the profile's strategies) or one of "
                     f"{', '.join(BOOK_STRATEGIES)}")
check_reference(reference)
settings = get_profile(check_profile(profile))
if strategy is not None:  # the Strategy is not part of a run's spec: the same rows, fewer runs
    settings = dataclasses.replace(
        settings, setups=tuple(dataclasses.replace(s, strategies=(strategy,)) for s in settings.setups))

# %% tags=["remove-stderr"]
curves.use_book_theme()
results = chapter_results(settings, EXPERIMENT, dataset=dataset, model=model, densities=densities,
                          seeds=seeds, device=device, results_dir=results_dir, workers=workers,
                          data_root=data_root, progress=True)
frame = results.frame  # one row per run, with its setting (column "setting")
panels = tables.by_strategy(frame)  # one block per setting and Strategy
used = list(dict.fromkeys(panels["strategy"]))
CURVES = ["Random", "Random+DRoP"]
for method in used:
    CURVES += [curves.method_label(p, method) for p in ("strategy", "random+strategyq", "strategy+drop")]

# %% tags=["remove-input"]
# The paper's claims on this chapter and their verdicts: the rows of the scorecard
# ({doc}`08_scorecard`), from every stored run of the profile, Holm-corrected over the scorecard.
from dropkit import scorecard

card, omissions, _ = scorecard.book_scorecard(profile, results_dir, seeds=seeds, device=device,
                                              reference=reference)
publish.show_markdown(scorecard.chapter_box(card, "03_drop_evaluation"))

# %% tags=["remove-input"]
publish.show_markdown(setting_paragraph(results, EXPERIMENT, dataset=dataset, model=model))

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-5>` (paper Figure 5): Average and worst-class accuracy
#
# One block per setting and Strategy: average and worst-class test accuracy against density,
# then average against worst-class accuracy, one point per density (larger markers for larger
# densities).

# %%
fig = plots.plot_density_curves(panels, ("test_accuracy", "test_worst_class"),
                                tradeoff=True, row="panel", labels=CURVES)
publish.publish_figure("paper-figure-5", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-5
# :name: paper-figure-5
# :alt: Reproduction of paper Figure 5
#
# (paper Figure 5) Average and worst-class accuracy against density $d$, and average against worst-class accuracy,
# for each Strategy with Random+StrategyQ, Strategy+DRoP, Random+DRoP and Random; bands span the
# seeds, the dash-dotted black line and the star are the full dataset. Both DRoP protocols
# take their class quotas from the short EL2N query models (Appendix F).
# ```
#
# ```{glue:md} paper-figure-5-source
# :format: myst
# ```

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-6>` (paper Figure 6): Which classes does DRoP keep?
#
# DRoP's class densities sorted from the most to the least kept class at each dataset density
# (dotted: the uniform density $d$), with the minimum samples per class at the lowest density;
# then full-dataset class accuracy against class density. DRoP keeps the hard classes, so the
# correlation should be strongly negative: compare with the plain methods in
# {numref}`Figure %s (paper Figure 13) <paper-figure-13>` of {doc}`02_bias_benchmark`.

# %%
fig = plots.plot_class_profile(frame, claims.DROP_LABEL)
publish.publish_figure("paper-figure-6", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-6
# :name: paper-figure-6
# :alt: Reproduction of paper Figure 6
#
# (paper Figure 6) Random+DRoP: sorted class densities $d_k$ at each density, and full-dataset class accuracy
# against $d_k$ with the correlation across classes averaged over densities; quotas from the
# validation recalls of the EL2N query models.
# ```
#
# ```{glue:md} paper-figure-6-source
# :format: myst
# ```

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-11>` (paper Figure 11): Other measures of class robustness

# %%
fig = plots.plot_density_curves(panels, ("test_worst_class", "test_gap", "test_std"),
                                row="panel", labels=CURVES)
publish.publish_figure("paper-figure-11", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-11
# :name: paper-figure-11
# :alt: Reproduction of paper Figure 11
#
# (paper Figure 11) Worst-class accuracy, gap $\max_k r_k - \min_k r_k$ and standard deviation of the class
# accuracies against density $d$ for each Strategy and the protocols of {numref}`Figure %s (paper Figure 5) <paper-figure-5>`.
# ```
#
# ```{glue:md} paper-figure-11-source
# :format: myst
# ```

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-12>` (paper Figure 12): All four metrics with EL2N as the Strategy
#
# The paper's Figure 12 shows ResNet-50 on ImageNet with EL2N as the Strategy. We draw the same
# four panels for EL2N on this chapter's data (or for the chosen Strategy if EL2N was not run),
# one row per setting that evaluates it.

# %%
shown = "el2n" if "el2n" in used else used[0]
SHOWN = [curves.method_label(p, shown) for p in ("strategy", "random+strategyq", "strategy+drop")]
fig = plots.plot_density_curves(panels[panels["strategy"] == shown], tuple(curves.METRICS),
                                row="panel", labels=CURVES)
publish.publish_figure("paper-figure-12", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-12
# :name: paper-figure-12
# :alt: Reproduction of paper Figure 12
#
# (paper Figure 12) Average accuracy, worst-class accuracy, gap and standard deviation of the class accuracies
# against density $d$ for one Strategy (named above the panels) and its protocols.
# ```
#
# ```{glue:md} paper-figure-12-source
# :format: myst
# ```

# %% [markdown]
# ## What we see
#
# Computed from the results above, one table per setting and Strategy: at the reference density, the
# average, worst-class, gap and standard deviation of the class accuracies (mean ± sd over the seeds; $n$: the number of seeds),
# the density at which each protocol's worst-class accuracy peaks and the class-accuracy /
# class-density correlation ({numref}`Figure %s (paper Figure 6) <paper-figure-6>` and {numref}`Figure %s (paper Figure 13) <paper-figure-13>`). The
# verdicts below are the one rule of `dropkit.claims` (per-seed effects, 95 % t-interval over
# seeds), one row per claim and setting, the same rows as the scorecard ({doc}`08_scorecard`); a
# claim about a Strategy that a setting does not evaluate has no row for it, as the sentence below
# the table says.

# %% tags=["hide-input"]
for title, rows in panels.groupby("panel", sort=False):
    at = claims.reference_density(rows, reference)
    publish.show_markdown(publish.markdown_table(claims.drop_table(rows, at), f"{title}: protocols at $d = {at:g}$ (mean ± sd over the $n$ seeds)"))
publish.show_markdown(scorecard.chapter_markdown(card, "03_drop_evaluation", omissions))
