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
# # Data pruning exacerbates classification bias
#
# Section 2 of the paper {cite:p}`vysogorets2025drop` benchmarks popular data pruning algorithms
# through the lens of *classification bias*. Every algorithm trains a query model on the full
# dataset, scores each training sample and keeps the fraction $d$ (the *density*) with the
# highest scores:
#
# * **EL2N** {cite:p}`paul2021deep` — $\lVert \mathrm{softmax}(\psi(x)) - \mathrm{onehot}(y) \rVert_2$ of short query trainings;
# * **GraNd** {cite:p}`paul2021deep` — the norm of the loss gradient with respect to the parameters;
# * **Forgetting** {cite:p}`toneva2019empirical` — how often a sample is learned and then forgotten during a full query training;
# * **Dynamic Uncertainty** {cite:p}`he2023large` — the windowed variability of the target probability during training;
# * **CoreSet** {cite:p}`sener2018active` — greedy $k$-center cover of the query model's penultimate-layer embeddings;
# * **Random** — a uniform random subset, the notoriously strong baseline.
#
# Beyond average accuracy we report, for the recalls $r_k$ of the $K$ classes on the test split,
# the worst-class accuracy $\min_k r_k$, the gap $\max_k r_k - \min_k r_k$ and the standard
# deviation of the $r_k$. All metrics are measured at the final epoch on the test half of the
# official test set (the other half is the validation split the query models use).
#
# The runs come from `dropkit.profiles.experiment_specs(profile, "bias_benchmark")` and are
# executed by `dropkit.sweep.sweep`, which skips every run already in the result store: the
# `default` profile's rows ship with the repository (`results/default/`), so rendering the book
# reads them instead of training. Recomputing them is one command, given in `results/default/README.md`.
#
# As the paper draws each model-dataset pair in its own panels, every figure below has one row
# per *setting* of the profile (a model-dataset pair and its training, e.g. the `default`
# profile's MLP and its small CNN on Fashion-MNIST), titled with the setting; a method a setting
# does not run is absent from its row. The tables and verdicts of "What we see" are given per
# setting too.

# %% tags=["parameters", "hide-input"]
profile = "default"
dataset = None  # None: every setting of the profile (default: fashion-mnist); else that dataset's only
model = None  # None: each setting's own model (default: mlp, cnn); else it replaces every setting's
densities = None  # None: each setting's densities (default: MLP 0.1, 0.3, 0.5, 0.7, 0.9; CNN 0.1-0.7)
seeds = None  # None: the profile's seeds for this chapter, per setting (Profile.seeds_for)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
workers = None  # None: the profile's local worker processes, limited by the CPU count
data_root = None  # None: the datasets' default locations ($DROPKIT_DATA, system directories)
reference = 0.5  # the density of the "what we see" table (the closest density present is used)

# %% tags=["remove-stderr"]
from dropkit import claims, curves, plots, publish, tables
from dropkit.chapter import chapter_results, check_reference, setting_paragraph

EXPERIMENT = "bias_benchmark"
CHAPTER = "02_bias_benchmark"  # this notebook (the figures\' regeneration command)
curves.use_book_theme()
check_reference(reference)
results = chapter_results(profile, EXPERIMENT, dataset=dataset, model=model, densities=densities,
                          seeds=seeds, device=device, results_dir=results_dir, workers=workers,
                          data_root=data_root, progress=True)
frame = results.frame  # one row per run, with its setting (column "setting")
CURVES = ["Random", *[curves.METHOD_NAMES[m] for m in tables.score_methods(frame)]]

# %% tags=["remove-input"]
# The paper's claims on this chapter and their verdicts: the rows of the scorecard
# ({doc}`08_scorecard`), from every stored run of the profile, Holm-corrected over the scorecard.
from dropkit import scorecard

card, omissions, _ = scorecard.book_scorecard(profile, results_dir, seeds=seeds, device=device,
                                              reference=reference)
publish.show_markdown(scorecard.chapter_box(card, "02_bias_benchmark"))

# %% tags=["remove-input"]
publish.show_markdown(setting_paragraph(results, EXPERIMENT, dataset=dataset, model=model))

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-1>` (paper Figure 1): Average accuracy and the average/worst-class trade-off
#
# Average test accuracy against density, one line per method; then average accuracy against
# worst-class accuracy, one point per density (larger markers for larger densities): a method
# that keeps its worst class healthy sits to the right. When low densities stretch the trade-off
# axes, a third panel zooms on the points near the full dataset.

# %%
fig = plots.plot_density_curves(frame, ("test_accuracy",), tradeoff=True,
                                labels=CURVES)
publish.publish_figure("paper-figure-1", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-1
# :name: paper-figure-1
# :alt: Reproduction of paper Figure 1
#
# (paper Figure 1) Average test accuracy against density $d$ and against worst-class accuracy, one curve per
# pruning method; lines are means over seeds, bands span the seeds, the dash-dotted black line and the star
# are the full dataset.
# ```
#
# ```{glue:md} paper-figure-1-source
# :format: myst
# ```

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-10>` (paper Figure 10): All robustness metrics

# %%
fig = plots.plot_density_curves(frame, tuple(curves.METRICS), labels=CURVES)
publish.publish_figure("paper-figure-10", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-10
# :name: paper-figure-10
# :alt: Reproduction of paper Figure 10
#
# (paper Figure 10) Average accuracy, worst-class accuracy $\min_k r_k$, gap $\max_k r_k - \min_k r_k$ and standard
# deviation of the class accuracies against density $d$, one curve per pruning method; bands span
# the seeds, dash-dotted black: full dataset.
# ```
#
# ```{glue:md} paper-figure-10-source
# :format: myst
# ```

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-2>` (paper Figure 2): Which classes does Dynamic Uncertainty prune?
#
# First panel: the class densities $d_k$ = kept / $N_k$ sorted from the most to the least kept
# class, at each dataset density (dotted lines: the uniform density $d$), with the minimum number
# of samples per class (SPC) at the lowest density. Second panel: each class's test accuracy when
# training on the full dataset (its "difficulty") against its density after pruning. A positive
# correlation means the hardest classes are pruned the most.

# %%
DU = curves.METHOD_NAMES["dynamic_uncertainty"]
fig = plots.plot_class_profile(frame, DU)
publish.publish_figure("paper-figure-2", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-2
# :name: paper-figure-2
# :alt: Reproduction of paper Figure 2
#
# (paper Figure 2) Dynamic Uncertainty: sorted class densities $d_k$ at each density, and full-dataset class
# accuracy against $d_k$ with the correlation across classes averaged over densities; class
# densities are means over seeds.
# ```
#
# ```{glue:md} paper-figure-2-source
# :format: myst
# ```

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-13>` (paper Figure 13): Class difficulty and class density for every method

# %%
fig = plots.plot_class_accuracy_vs_density(frame, CURVES)
publish.publish_figure("paper-figure-13", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-13
# :name: paper-figure-13
# :alt: Reproduction of paper Figure 13
#
# (paper Figure 13) Full-dataset class accuracy against the class density $d_k$ each method keeps, one colour per
# dataset density; panel titles give the correlation across classes averaged over densities.
# ```
#
# ```{glue:md} paper-figure-13-source
# :format: myst
# ```

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-14>` (paper Figure 14): How balanced are the pruned datasets?

# %%
fig = plots.plot_sorted_class_densities(frame, CURVES)
publish.publish_figure("paper-figure-14", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-14
# :name: paper-figure-14
# :alt: Reproduction of paper Figure 14
#
# (paper Figure 14) Sorted class densities $d_k$ of the training set each method keeps, at each dataset density
# (dotted: the uniform density $d$), with the minimum samples per class at the lowest density.
# ```
#
# ```{glue:md} paper-figure-14-source
# :format: myst
# ```

# %% [markdown]
# ## What we see
#
# The tables below are computed from the results above; they are not typed in. One table per
# setting; for each method it runs, at the reference density: average and worst-class accuracy
# (mean ± sd over the seeds; $n$: the number of seeds), the *extra* worst-class drop (the
# worst-class drop from the full dataset minus the accuracy drop, of the means; positive: pruning
# costs the worst class more than the average); the density at which worst-class accuracy peaks; the correlation of
# {numref}`Figure %s (paper Figure 13) <paper-figure-13>`; and the minimum samples per class of {numref}`Figure %s (paper Figure 14) <paper-figure-14>`.
# Random is a pruning method too: the paper's claim that a method *exacerbates* bias is judged
# against Random's extra drop, not against zero. The verdicts are the one rule of
# `dropkit.claims` (per-seed effects, 95 % t-interval over seeds), one row per claim and setting,
# the same rows as the scorecard ({doc}`08_scorecard`); a claim about a method that a setting does
# not run has no row for it, as the sentence below the table says.

# %% tags=["hide-input"]
for title, rows in tables.split_setups(frame):
    at = claims.reference_density(rows, reference)
    publish.show_markdown(publish.markdown_table(claims.bias_table(rows, at), f"{title}: methods at $d = {at:g}$ (mean ± sd over the $n$ seeds)"))
publish.show_markdown(scorecard.chapter_markdown(card, "02_bias_benchmark", omissions))
