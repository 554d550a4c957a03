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
# Section 4 of the paper proposes **DRoP**: train a query model on the full dataset, measure the
# recall $r_k$ of every class on a held-out validation split, and give class $k$ the density
# $d_k \propto 1 - r_k$ (Algorithm 1: classes that would need $d_k > 1$ keep everything and
# their excess is redistributed), so that the hardest classes keep the most samples. Which
# samples each class keeps is then decided *randomly* (**Random+DRoP**), as the Gaussian-mixture
# analysis of the theory chapter suggests.
#
# For a pruning score (the *Strategy*: EL2N, GraNd or Forgetting) the paper compares five
# protocols at every density $d$:
#
# * **Strategy** — keep the top-scoring $dN$ samples overall;
# * **Random+StrategyQ** — keep as many samples per class as the Strategy does, chosen at random;
# * **Strategy+DRoP** — DRoP's class quotas (from the Strategy's query models), top scores within each class;
# * **Random+DRoP** — DRoP's class quotas, random within each class;
# * **Random** — a uniform random subset;
#
# and the model trained on the full dataset. The DRoP recalls of Random+DRoP come from the short
# EL2N query trainings (10% of the final training length, averaged over query seeds), which
# every score-based method needs anyway.
#
# The runs come from `dropkit.profiles.experiment_specs(profile, "drop_evaluation")`; the
# `default` profile's rows ship in `results/default/`, so rendering the book only reads them.

# %% tags=["parameters"]
profile = "default"
dataset = None  # None: the profile's dataset(s) for this experiment (default: fashion-mnist)
model = None  # None: the profile's model (default: mlp)
strategy = None  # "el2n", "grand" or "forgetting"; None: the profile's strategies (default: el2n, forgetting)
densities = None  # None: the profile's densities (default: 0.1, 0.3, 0.5, 0.7, 0.9)
seeds = None  # None: the profile's seeds (default: 0, 1, 2)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
workers = None  # None: the profile's local worker processes, limited by the CPU count
data_root = None  # None: the datasets' default locations ($DROPKIT_DATA, system directories)
reference = 0.5  # the density of the "what we see" table (the closest density present is used)

# %%
import dataclasses

from IPython.display import Markdown, display

from dropkit import claims, plots
from dropkit.chapter import chapter_results, check_reference
from dropkit.plots import show_figure
from dropkit.profiles import check_profile, get_profile

STRATEGIES = ("el2n", "grand", "forgetting")
if strategy is not None and strategy not in STRATEGIES:
    raise ValueError(f"strategy={strategy!r} must be None (the profile's strategies) or one of {', '.join(STRATEGIES)}")
check_reference(reference)
settings = get_profile(check_profile(profile))
if strategy is not None:  # the Strategy is not part of a run's spec: the same rows, fewer runs
    settings = dataclasses.replace(
        settings, setups=tuple(dataclasses.replace(s, strategies=(strategy,)) for s in settings.setups))
results = chapter_results(settings, "drop_evaluation", dataset=dataset, model=model, densities=densities,
                          seeds=seeds, device=device, results_dir=results_dir, workers=workers,
                          data_root=data_root, progress=True)
results.print_lines()
frame = results.frame

panels = plots.by_strategy(frame)
used = list(dict.fromkeys(panels["strategy"]))
names = [plots.METHOD_NAMES[s] for s in used]
CURVES = ["Random", "Random+DRoP"]
for method in used:
    CURVES += [plots.method_label(p, method) for p in ("strategy", "random+strategyq", "strategy+drop")]
SETTING = plots.setting_caption(frame)
DIFFERENCE = {
    "smoke": "Smoke profile: a 3000-sample subset and 2 epochs, to check that the chapter runs; "
             "its numbers are not meant to be read.",
    "default": "The paper uses VGG-16/19 and ResNet-18/50 on CIFAR-10/100, TinyImageNet and "
               "ImageNet trained for 90-200 epochs on GPUs; here the real Fashion-MNIST and a "
               "small MLP trained on a CPU.",
    "paper": "The paper's model-dataset pairs and schedules (Appendix A, Table 1).",
    "fast": "The fast profile: the paper's CIFAR-10/100 runs with a small residual network (resnet9, 16 epochs, batch 512) instead of VGG-16/19 for 160 epochs; its CIFAR accuracy was not measured when the profile was written.",
}[profile]
if profile != "paper" and (model is not None or dataset is not None):
    DIFFERENCE += f" Overridden here: dataset={dataset}, model={model}."

# %% [markdown]
# ## Average and worst-class accuracy (Figure 5)
#
# One row per Strategy. Left and middle: average and worst-class test accuracy against density
# (mean over seeds, bands min/max over seeds; dashed: full dataset). Right: average against
# worst-class accuracy, one point per density (larger markers for larger densities).

# %%
fig = plots.plot_density_curves(panels, ("test_accuracy", "test_worst_class"), tradeoff=True, row="panel",
                                labels=CURVES)
show_figure(
    fig, "5",
    f"Reproduces paper Figure 5 (the paper: EL2N on CIFAR-10, GraNd and Forgetting on CIFAR-100 and "
    f"TinyImageNet, EL2N on ImageNet): average accuracy and worst-class accuracy against density, and "
    f"average against worst-class accuracy, for Strategy = {', '.join(names)} with Random+StrategyQ, "
    f"Strategy+DRoP, Random+DRoP and Random; lines are means over seeds, bands min/max over seeds, "
    f"dashed line (star) the full dataset. Data: {SETTING}. {DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## Which classes does DRoP keep? (Figure 6)
#
# Left: DRoP's class densities sorted from the most to the least kept class at each dataset
# density (dotted: the uniform density $d$), with the minimum samples per class at $d = 10\%$.
# Right: full-dataset class accuracy against class density. DRoP keeps the hard classes, so the
# correlation should be strongly negative (compare with Figure 13 of the benchmark chapter).

# %%
fig = plots.plot_class_profile(frame, claims.DROP_LABEL)
show_figure(
    fig, "6",
    f"Reproduces paper Figure 6: Random+DRoP's sorted class densities at each density with the minimum "
    f"samples per class at the lowest density (left) and full-dataset class accuracy against class "
    f"density with the Pearson correlation across classes averaged over the densities 0.1, 0.3, 0.5, "
    f"0.7, 0.9 present (right). DRoP quotas from the validation recalls of the EL2N query models; class "
    f"densities averaged over seeds. Data: {SETTING}. {DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## Other measures of class robustness (Figure 11)

# %%
fig = plots.plot_density_curves(panels, ("test_worst_class", "test_gap", "test_std"), row="panel",
                                labels=CURVES)
show_figure(
    fig, "11",
    f"Reproduces paper Figure 11: worst-class accuracy, max-min gap and standard deviation of the class "
    f"accuracies against density for Strategy = {', '.join(names)} and the same protocols as Figure 5; "
    f"mean over seeds with min/max bands; dashed: full dataset. Data: {SETTING}. {DIFFERENCE} "
    f"Profile {profile}.",
)

# %% [markdown]
# ## All four metrics with EL2N as the Strategy (Figure 12)
#
# The paper's Figure 12 shows ResNet-50 on ImageNet with EL2N as the Strategy. We draw the same
# four panels for EL2N on this chapter's data (or for the chosen Strategy if EL2N was not run).

# %%
shown = "el2n" if "el2n" in used else used[0]
fig = plots.plot_density_curves(panels[panels["strategy"] == shown], tuple(plots.METRICS), row="panel",
                                labels=CURVES)
show_figure(
    fig, "12",
    f"Reproduces paper Figure 12 (the paper: ResNet-50 on ImageNet with EL2N as Strategy): average "
    f"accuracy, worst-class accuracy, max-min gap and standard deviation of the class accuracies against "
    f"density with {plots.METHOD_NAMES[shown]} as Strategy; mean over seeds with min/max bands; dashed: "
    f"full dataset. Data: {SETTING}. {DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## What we see
#
# Computed from the results above, one table per Strategy: at the reference density, the
# average, worst-class, gap and standard deviation of the class accuracies (mean over seeds),
# the density at which each protocol's worst-class accuracy peaks and the class-accuracy /
# class-density correlation (Figures 6 and 13). The sentences below each table state whether the
# paper's claims hold on these numbers; the verdicts are chosen by `dropkit.claims`.

# %%
for title, rows in panels.groupby("panel", sort=False):
    at = claims.reference_density(rows, reference)
    display(Markdown(f"**{title}**, reference density d = {at:g}"))
    display(claims.drop_table(rows, at).round(2))
    display(Markdown(claims.drop_claim(rows, at)))
    display(Markdown(claims.drop_peak_claim(rows)))
    display(Markdown(claims.drop_correlation_claim(rows)))
