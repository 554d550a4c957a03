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
# # DRoP, reproduced: what holds here
#
# This book re-runs the experiments of *DRoP: Distributionally Robust Data Pruning*
# {cite:p}`vysogorets2025drop` with the `dropkit` library and checks every experimental statement of
# the paper against the runs. Below: how many of the paper's claims hold on this book's data, one
# interval per claim, and where each comes from. How the book is organised: {doc}`../intro`.

# %% tags=["parameters", "hide-input"]
profile = "default"
seeds = None  # None: each chapter's seeds of the profile, per setting (default: see results/default/README.md)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
reference = 0.5  # the paper's reference density (the closest density present is used)

# %% tags=["remove-cell"]
from dropkit import curves, plots, publish, scorecard
from dropkit.chapter import check_reference
from dropkit.profiles import check_profile

check_profile(profile)
check_reference(reference)
curves.use_book_theme()
table, omitted, missing = scorecard.book_scorecard(profile, results_dir, seeds=seeds, device=device,
                                                   reference=reference)

# %% tags=["remove-input"]
publish.show_markdown(scorecard.summary_markdown(table, profile, missing),
                      scorecard.seeds_markdown(profile, seeds))

# %% tags=["remove-input"]
rows = plots.forest_table(table)
fig = plots.plot_forest(rows, scorecard.CHAPTER_TITLES)
publish.publish_figure("results-forest", fig, chapter="00_results", profile=profile, data=rows)
publish.publish_text("results-forest-rows", f"{len(rows)} of the {len(table)} rows")
publish.publish_text("results-forest-data", scorecard.replicates_text(table))

# %% [markdown]
# ```{glue:figure} results-forest
# :name: results-forest
# :alt: Forest plot of every scorecard effect
#
# Every row of the scorecard ({doc}`08_scorecard`) that has an interval ({glue:text}`results-forest-rows`;
# exact computations, observations and statements not testable here have none): the effect as
# the paper states it, oriented so that right of 0 is the paper's side, as its mean and 95 %
# interval over the replicates (seeds; simulated datasets in chapter 01) divided by the
# replicates' standard deviation, since the effects come in different units. Grouped by chapter,
# coloured by the verdict after Holm's correction. An equivalence claim holds when its interval
# lies inside its margin, not when it lies right of 0: its verdict, not its position, is the
# answer. Not a figure of the paper; computed on {glue:text}`results-forest-data`.
# ```
#
# ```{glue:md} results-forest-source
# :format: myst
# ```

# %% tags=["remove-input"]
publish.show_markdown(scorecard.chapter_summary_markdown(table))
