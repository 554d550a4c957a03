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
# Section 2 of the paper benchmarks popular data pruning algorithms through the lens of
# *classification bias*. Every algorithm trains a query model on the full dataset, scores each
# training sample and keeps the fraction $d$ (the *density*) with the highest scores:
#
# * **EL2N** — $\lVert \mathrm{softmax}(\psi(x)) - \mathrm{onehot}(y) \rVert_2$ of short query trainings;
# * **GraNd** — the norm of the loss gradient with respect to the parameters;
# * **Forgetting** — how often a sample is learned and then forgotten during a full query training;
# * **Dynamic Uncertainty** — the windowed variability of the target probability during training;
# * **CoreSet** — greedy k-center cover of the query model's penultimate-layer embeddings;
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

# %% tags=["parameters"]
profile = "default"
dataset = None  # None: the profile's dataset(s) for this experiment (default: fashion-mnist)
model = None  # None: the profile's model (default: mlp)
densities = None  # None: the profile's densities (default: 0.1, 0.3, 0.5, 0.7, 0.9)
seeds = None  # None: the profile's seeds (default: 0, 1, 2)
device = None  # None: the profile's device (default: cpu)
results_dir = "results"
workers = None  # None: the profile's local worker processes, limited by the CPU count
data_root = None  # None: the datasets' default locations ($DROPKIT_DATA, system directories)
reference = 0.5  # the density of the "what we see" table (the closest density present is used)

# %%
from IPython.display import Markdown, display

from dropkit import claims, plots
from dropkit.chapter import chapter_results, check_reference
from dropkit.plots import show_figure

check_reference(reference)
results = chapter_results(profile, "bias_benchmark", dataset=dataset, model=model, densities=densities,
                          seeds=seeds, device=device, results_dir=results_dir, workers=workers,
                          data_root=data_root, progress=True)
results.print_lines()
frame, settings = results.frame, results.profile

METHOD_LABELS = [plots.METHOD_NAMES[m] for m in settings.methods]
CURVES = ["Random", *METHOD_LABELS]
SETTING = plots.setting_caption(frame)
DIFFERENCE = {
    "smoke": "Smoke profile: a 3000-sample subset and 2 epochs, to check that the chapter runs; "
             "its numbers are not meant to be read.",
    "default": "The paper trains VGG-16/19 and ResNet-18/50 on CIFAR-10/100, TinyImageNet and "
               "ImageNet for 90-200 epochs on GPUs; here the real Fashion-MNIST and a small MLP "
               "trained on a CPU.",
    "paper": "The paper's model-dataset pairs and schedules (Appendix A, Table 1).",
    "fast": "The fast profile: the paper's CIFAR-10/100 runs with a small residual network (resnet9, 16 epochs, batch 512) instead of VGG-16/19 for 160 epochs; its CIFAR accuracy was not measured when the profile was written.",
}[profile]
if profile != "paper" and (model is not None or dataset is not None):
    DIFFERENCE += f" Overridden here: dataset={dataset}, model={model}."

# %% [markdown]
# ## Average accuracy and the average/worst-class trade-off (Figure 1)
#
# Left: average test accuracy against density, one line per method (mean over seeds; bands span
# the minimum and maximum over seeds); the dashed line is the model trained on the full dataset.
# Right: average accuracy against worst-class accuracy, one point per density (larger markers for
# larger densities); a method that keeps its worst class healthy sits to the right.

# %%
fig = plots.plot_density_curves(frame, ("test_accuracy",), tradeoff=True, labels=CURVES)
show_figure(
    fig, "1",
    f"Reproduces paper Figure 1 (the paper: VGG-19 on CIFAR-100 and ResNet-18 on TinyImageNet): average "
    f"test accuracy against density (left) and against worst-class accuracy (right) for Random, "
    f"{', '.join(METHOD_LABELS)}; lines are means over seeds, bands min/max over seeds, the dashed line "
    f"(star) the full dataset. Data: {SETTING}. {DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## All robustness metrics (Figure 10)

# %%
fig = plots.plot_density_curves(frame, tuple(plots.METRICS), labels=CURVES)
show_figure(
    fig, "10",
    f"Reproduces paper Figure 10 (the paper: VGG-16/CIFAR-10, VGG-19/CIFAR-100, ResNet-18/TinyImageNet, "
    f"ResNet-50/ImageNet): average accuracy, worst-class accuracy, max-min gap and standard deviation "
    f"of the class accuracies against density; mean over seeds with min/max bands; dashed: full "
    f"dataset. Data: {SETTING}. {DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## Which classes does Dynamic Uncertainty prune? (Figure 2)
#
# Left: the class densities $d_k$ = kept / $N_k$ sorted from the most to the least kept class,
# at each dataset density (dotted lines: the uniform density $d$), with the minimum number of
# samples per class (SPC) at $d = 10\%$. Right: each class's test accuracy when training on the
# full dataset (its "difficulty") against its density after pruning. A positive correlation
# means the hardest classes are pruned the most.

# %%
fig = plots.plot_class_profile(frame, plots.METHOD_NAMES["dynamic_uncertainty"])
show_figure(
    fig, "2",
    f"Reproduces paper Figure 2 (the paper: Dynamic Uncertainty on CIFAR-100 with VGG-19): Dynamic "
    f"Uncertainty's sorted class densities at each density with the minimum samples per class at the "
    f"lowest density (left); full-dataset class accuracy against class density, with the Pearson "
    f"correlation across classes averaged over the densities 0.1, 0.3, 0.5, 0.7, 0.9 present (right). "
    f"Class densities are averaged over seeds. Data: {SETTING}. {DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## Class difficulty and class density for every method (Figure 13)

# %%
fig = plots.plot_class_accuracy_vs_density(frame, CURVES)
show_figure(
    fig, "13",
    f"Reproduces paper Figure 13 (the paper: VGG-16/CIFAR-10, VGG-19/CIFAR-100, ResNet-18/TinyImageNet): "
    f"full-dataset class accuracy against the class density each method keeps, one colour per "
    f"density; titles give the correlation across classes averaged over the densities 0.1, 0.3, 0.5, "
    f"0.7, 0.9 present. Data: {SETTING}. {DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## How balanced are the pruned datasets? (Figure 14)

# %%
fig = plots.plot_sorted_class_densities(frame, CURVES)
show_figure(
    fig, "14",
    f"Reproduces paper Figure 14 (the paper: VGG-16/CIFAR-10, VGG-19/CIFAR-100, ResNet-18/TinyImageNet): "
    f"sorted class densities of the training set pruned by each method at each density (mean over "
    f"seeds; dotted: the uniform density), with the minimum samples per class (over classes and "
    f"seeds) at the lowest density. Data: {SETTING}. {DIFFERENCE} Profile {profile}.",
)

# %% [markdown]
# ## What we see
#
# The table and the sentences below are computed from the results above; they are not typed in.
# For each method at the reference density: average and worst-class accuracy (mean over seeds),
# their drops from the full dataset, and the *extra* worst-class drop (positive: pruning costs
# the worst class more than the average, i.e. it amplifies the class bias already present in the
# full-dataset model); the density at which worst-class accuracy peaks; the correlation of
# Figure 13; and the minimum samples per class of Figure 14.

# %%
for title, rows in plots.split_setups(frame):
    at = claims.reference_density(rows, reference)
    display(Markdown(f"**{title}**, reference density d = {at:g}"))
    display(claims.bias_table(rows, at).round(2))
    display(Markdown(claims.bias_claim(rows, at)))
    display(Markdown(claims.dynamic_uncertainty_claim(rows)))
