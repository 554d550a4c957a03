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
# # Theory: pruning a mixture of two Gaussians
#
# Section 3 of the paper studies the simplest setting in which pruning can bias a classifier:
# two classes on the real line, $x \mid y \sim \mathcal N(\mu_y, \sigma_y^2)$ with
# $\mu_0 < \mu_1$ and $\sigma_0 < \sigma_1$ (class 1 is the *harder*, heavier-tailed class), and
# threshold rules $\hat y_t(x) = \mathbf 1\{x > t\}$. The class risks are
# $R_0(t) = \Phi((\mu_0 - t)/\sigma_0)$ and $R_1(t) = \Phi((t - \mu_1)/\sigma_1)$ (Eq. 1).
#
# * Minimising the **average** risk gives the threshold $t^*(\phi_0/\phi_1)$ of Eq. 3, which
#   depends on the class priors (the class proportions of the training data).
# * Minimising the **worst-class** risk gives $\hat t$ (Eq. 4), where $R_0 = R_1$.
# * The two coincide when the priors satisfy $\phi_0/\phi_1 = \sigma_0/\sigma_1$ (Eq. 5): so
#   pruning *randomly within classes* to these proportions makes an average-risk learner
#   worst-class optimal.
#
# Everything below is computed by `dropkit.theory`; this notebook only sets parameters, calls
# the library and draws. The empirical risk minimiser (ERM) of a sample is computed exactly
# (sort and cumulative sums), not on a grid.

# %% tags=["parameters"]
profile = "default"
dataset = "gaussian-mixture"
model = "threshold"
densities = [0.75, 0.5]  # Figure 4b's panels (DRoP quotas)
figure3_density = 0.5  # Figure 3 prunes to half the data
seeds = [0]  # each seed draws n_datasets datasets for Figures 3 and 4b
device = "cpu"
results_dir = "results"
n_datasets = 10
n_points = 400
n_draws = 2000  # Figure 4a: number of (sigma0, sigma1, phi0) draws
seed = 0  # Figure 4a's draws

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from dropkit.plots import show_figure
from dropkit.profiles import check_profile
from dropkit.theory import (
    GaussianMixture,
    average_optimal_threshold,
    average_risk,
    class_risks,
    error_based_density_ratio,
    sample_figure4a_parameters,
    simulate_pruning,
    validity_violations,
    variance_based_density_ratio,
    worst_class_optimal_threshold,
)

check_profile(profile)
if dataset != "gaussian-mixture":
    raise ValueError(f"dataset={dataset!r}: this chapter only supports 'gaussian-mixture'")
if model != "threshold":
    raise ValueError(f"model={model!r}: this chapter only supports 'threshold' (the rule 1{{x > t}})")
if not isinstance(densities, (list, tuple)) or not densities or not all(
    isinstance(d, (int, float)) and not isinstance(d, bool) and 0 < d <= 1 for d in densities
):
    raise ValueError(f"densities={densities!r} must be a non-empty list of numbers in (0, 1]")
if not isinstance(figure3_density, (int, float)) or not 0 < figure3_density <= 1:
    raise ValueError(f"figure3_density={figure3_density!r} must be a number in (0, 1]")
if not isinstance(seeds, (list, tuple)) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
    raise ValueError(f"seeds={seeds!r} must be a non-empty list of non-negative integers")
for name, value, minimum in (("n_datasets", n_datasets, 1), ("n_points", n_points, 2), ("n_draws", n_draws, 1)):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
if not isinstance(seed, int) or seed < 0:
    raise ValueError(f"seed={seed!r} must be a non-negative integer")
if not isinstance(device, str) or not device:
    raise ValueError(f"device={device!r} must be a device name such as 'cpu' (unused: numpy only)")
if not isinstance(results_dir, str) or not results_dir:
    raise ValueError(f"results_dir={results_dir!r} must be a non-empty path (unused: nothing is written)")
if profile == "smoke":
    n_draws = min(n_draws, 500)

mixture = GaussianMixture(mu0=-1.0, mu1=1.0, sigma0=0.5, sigma1=1.0, phi0=0.5)  # Figure 3's mixture
params = mixture.params  # (mu0, mu1, sigma0, sigma1)
total_datasets = n_datasets * len(seeds)
plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## The optimal thresholds of Figure 3's mixture
#
# For $\mu_0=-1$, $\mu_1=1$, $\sigma_0=0.5$, $\sigma_1=1$ and balanced classes the caption of
# Figure 3 quotes the class risks of the average-optimal rule $t^*(1)$ and of the worst-class
# optimal rule $\hat t$. The library's closed forms give:

# %%
t_star = average_optimal_threshold(*params, 1.0)
t_hat = worst_class_optimal_threshold(*params)
star_risks = class_risks(t_star, *params)
hat_risks = class_risks(t_hat, *params)
print(f"t*(1) = {t_star:.4f}   R0[t*(1)] = {100 * star_risks[0]:.1f}%   R1[t*(1)] = {100 * star_risks[1]:.1f}%")
print(f"t̂     = {t_hat:.4f}   R0(t̂) = {100 * hat_risks[0]:.1f}%   R1(t̂) = {100 * hat_risks[1]:.1f}%")

# %% [markdown]
# ## Figure 3: how three pruning procedures move the ERM
#
# We draw datasets of `n_points` points from the mixture, prune each to density $d = 50\%$ and fit
# the exact ERM threshold $T(D_i')$ to each pruned dataset; $\overline T$ is their average.
#
# * **Left** — random pruning within classes with the worst-class optimal proportions
#   $d_0 N_0 \sigma_1 = d_1 N_1 \sigma_0$ (Eq. 5). $\overline T$ should land near $\hat t$.
# * **Middle** — the supervised SSP variant of Section 3: remove, irrespective of class, the
#   points within a margin $M$ of their class mean. It prunes the easy (narrow) class harder, yet
#   on the interval between the two margins the pruned risk is proportional to the original one
#   (Appendix B.3), so the ERM stays near $t^*(N_0/N_1)$. With only a few hundred points the
#   ERM is, however, unstable: the hole SSP cuts around $\mu_0$ creates a second, almost equally
#   good threshold left of it, which some datasets pick (ticks on the x-axis mark each
#   dataset's ERM; the table at the end also gives the median).
# * **Right** — random pruning within classes with the class counts SSP kept: the class-
#   conditional independence is restored and $\overline T$ moves towards $\hat t$.
#
# Histograms pool all pruned datasets (average count per dataset per bin).

# %%
figure3_strategies = {
    "random-optimal": "Random, $n_0/n_1=\\sigma_0/\\sigma_1$ (Eq. 5)",
    "ssp": "SSP (margin around class means)",
    "random-ssp-quotas": "Random with SSP's class counts",
}
figure3 = {
    strategy: simulate_pruning(
        mixture, strategy, density=figure3_density, n_datasets=n_datasets, n_points=n_points, seed=seeds
    )
    for strategy in figure3_strategies
}
full_data = simulate_pruning(mixture, "none", density=1.0, n_datasets=n_datasets, n_points=n_points, seed=seeds)


def draw_pruned_histograms(ax, simulation, title):
    """Average per-dataset histogram of each class after pruning, with t*(1), t̂ and the mean ERM."""
    bins = np.linspace(-3.0, 4.0, 57)
    weight = 1.0 / len(simulation.kept_x)
    x = np.concatenate(simulation.kept_x)
    y = np.concatenate(simulation.kept_y)
    for label, color in ((0, "tab:blue"), (1, "tab:orange")):
        ax.hist(x[y == label], bins=bins, weights=np.full(np.sum(y == label), weight), alpha=0.55,
                color=color, label=f"class {label}")
    ax.axvline(t_star, color="tab:red", linestyle="--", label=f"$t^*(1)$ = {t_star:.2f}")
    ax.axvline(t_hat, color="tab:green", linestyle=":", linewidth=2, label=f"$\\hat t$ = {t_hat:.2f}")
    ax.axvline(simulation.mean_threshold, color="black", label=f"$\\overline{{T}}$ = {simulation.mean_threshold:.2f}")
    finite = simulation.thresholds[np.isfinite(simulation.thresholds)]
    ax.vlines(finite, 0, 0.08, transform=ax.get_xaxis_transform(), color="purple", linewidth=1.5,
              label="$T(D_i')$ per dataset")
    r0, r1 = class_risks(simulation.mean_threshold, *params)
    kept = simulation.kept_sizes.mean(axis=0)
    ax.set_title(f"{title}\nkept {kept[0]:.0f} / {kept[1]:.0f};  "
                 f"$R_0(\\overline{{T}})$={100 * r0:.1f}%, $R_1(\\overline{{T}})$={100 * r1:.1f}%", fontsize=10)
    ax.set_xlabel("x")
    ax.set_xlim(bins[0], bins[-1])
    ax.legend(fontsize=8, loc="upper right")


fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
for ax, (strategy, title) in zip(axes, figure3_strategies.items()):
    draw_pruned_histograms(ax, figure3[strategy], title)
axes[0].set_ylabel("points per dataset per bin")
fig.tight_layout()
show_figure(
    fig,
    "3",
    f"Reproduces paper Figure 3: pruning the Gaussian mixture mu0=-1, mu1=1, sigma0=0.5, sigma1=1, "
    f"phi0=phi1 to density d={100 * figure3_density:.0f}%. Left: random pruning with class proportions "
    f"n0/n1=sigma0/sigma1 (Eq. 5); middle: SSP (remove points within a margin of their class mean); "
    f"right: random pruning with SSP's class counts. {total_datasets} datasets of {n_points} points "
    f"(seeds {seeds}); T-bar is the average exact ERM over the pruned datasets; dashed t*(1), dotted t-hat. "
    f"Ticks: ERM of each pruned dataset. Profile {profile}; same sizes as the paper.",
)
ssp_left = int(np.sum(figure3["ssp"].thresholds < mixture.mu0))
print(f"SSP: the ERM falls left of mu0 in {ssp_left} of {total_datasets} datasets; "
      f"median ERM {np.median(figure3['ssp'].thresholds):.3f} vs {np.median(full_data.thresholds):.3f} on the full data")

# %% [markdown]
# ## Figure 4a: error-based versus variance-based class densities
#
# DRoP cannot know the class variances of a real dataset, so it replaces the worst-class optimal
# condition $d_0 N_0 \sigma_1 = d_1 N_1 \sigma_0$ by one on class *errors* of the average-optimal
# model, $d_0 R_1[t^*] = d_1 R_0[t^*]$ with $t^* = t^*(N_0/N_1)$. For random draws of
# $\sigma_0 < \sigma_1$ (log-uniform on $[10^{-2}, 10^{2}]$) and $\phi_0 \sim U[0,1]$ we compare the
# two class-density ratios $d_0/d_1$. Draws for which $t^*$ is not the average-risk minimiser
# (Eq. 6 or Eq. 7 of Appendix B.1 fails, so the best rule predicts class 1 everywhere) are left out.
# The paper says the result does not depend on $\mu_0, \mu_1$; strictly it depends on them through
# $(\mu_1-\mu_0)/\sigma$, so we use Figure 3's means.

# %%
sigma0, sigma1, phi0 = sample_figure4a_parameters(n_draws, seed)
prior_ratio = phi0 / (1 - phi0)
_, invalid = validity_violations(mixture.mu0, mixture.mu1, sigma0, sigma1, prior_ratio)
valid = ~invalid
variance_based = variance_based_density_ratio(sigma0[valid], sigma1[valid], prior_ratio[valid])
error_based = error_based_density_ratio(mixture.mu0, mixture.mu1, sigma0[valid], sigma1[valid], prior_ratio[valid])

fig, ax = plt.subplots(figsize=(6, 5))
points = ax.scatter(variance_based, error_based, c=np.log10(sigma1[valid] / sigma0[valid]), s=8, cmap="viridis")
# Axis range: the central 98% of both ratios (log scale); points beyond it are counted in the caption.
log_ratios = np.log10(np.concatenate([variance_based, error_based]))
low, high = 10.0 ** (np.percentile(log_ratios, [1, 99]) + np.array([-0.5, 0.5]))
outside = int(np.sum((variance_based < low) | (variance_based > high) | (error_based < low) | (error_based > high)))
ax.plot([low, high], [low, high], color="black", linewidth=1, label="equal ratios")
ax.set_xlim(low, high)
ax.set_ylim(low, high)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("variance-based $d_0/d_1 = (\\sigma_0/\\sigma_1)(\\phi_1/\\phi_0)$ (Eq. 5)")
ax.set_ylabel("error-based $d_0/d_1 = R_0[t^*]/R_1[t^*]$ (DRoP)")
fig.colorbar(points, label="$\\log_{10}(\\sigma_1/\\sigma_0)$")
ax.legend()
fig.tight_layout()
show_figure(
    fig,
    "4a",
    f"Reproduces paper Figure 4a: DRoP's error-based class-density ratio R0[t*]/R1[t*] against the "
    f"worst-class optimal ratio of Eq. 5, for {n_draws} draws of sigma0<sigma1 log-uniform on [1e-2, 1e2] "
    f"and phi0~U[0,1] (seed {seed}), mu0=-1, mu1=1; {int(valid.sum())} draws satisfy Appendix B.1's "
    f"conditions and are shown ({outside} of them fall outside the plotted range). "
    f"Colour: log10(sigma1/sigma0). Profile {profile}.",
)

# %% [markdown]
# The closer the points lie to the diagonal, the better class errors stand in for class
# variances; the agreement is best when $\sigma_1/\sigma_0$ is small (dark points). The few
# far-off points are draws with heavily overlapping classes ($\sigma \gg \mu_1 - \mu_0$) and
# unequal priors, whose $t^*$ lies deep in a tail where one class is almost entirely
# misclassified.
#
# ## Figure 4b: random pruning with DRoP's class quotas
#
# DRoP's quotas (`dropkit.quotas.drop_quotas`, Algorithm 1) are computed from the recalls
# $1 - R_k[t^*(N_0/N_1)]$ of each dataset's average-optimal rule; samples are then removed at
# random within each class. At $d = 75\%$ the harder class saturates (keeps all its points).

# %%
figure4b = {
    density: simulate_pruning(mixture, "random-drop", density=density, n_datasets=n_datasets, n_points=n_points, seed=seeds)
    for density in densities
}
fig, axes = plt.subplots(1, len(densities), figsize=(5 * len(densities), 4), sharey=True, squeeze=False)
for ax, (density, simulation) in zip(axes[0], figure4b.items()):
    draw_pruned_histograms(ax, simulation, f"Random with DRoP quotas, d = {100 * density:.0f}%")
axes[0][0].set_ylabel("points per dataset per bin")
fig.tight_layout()
show_figure(
    fig,
    "4b",
    f"Reproduces paper Figure 4b: random pruning within classes with DRoP quotas (recalls 1-R_k[t*(N0/N1)]) "
    f"at densities {', '.join(f'{100 * d:.0f}%' for d in densities)}, same mixture as Figure 3; "
    f"{total_datasets} datasets of {n_points} points (seeds {seeds}); T-bar is the average exact ERM. "
    f"Profile {profile}.",
)

# %% [markdown]
# ## Summary
#
# Mean kept class counts, the average ERM $\overline T$ and its class risks under the true
# mixture (average risk with $\phi_0 = \phi_1$), next to the two optimal thresholds. The median
# ERM shows how far single outlying datasets pull the mean.

# %%
rows = [
    {"setting": "optimum: t*(1)", "density": 1.0, "threshold": t_star},
    {"setting": "optimum: t̂", "density": 1.0, "threshold": t_hat},
]
simulations = [("full data", full_data)]
simulations += [(f"Fig. 3: {strategy}", sim) for strategy, sim in figure3.items()]
simulations += [("Fig. 4b: random-drop", sim) for sim in figure4b.values()]
for name, sim in simulations:
    kept = sim.kept_sizes.mean(axis=0)
    rows.append({"setting": name, "density": sim.density, "kept class 0": kept[0], "kept class 1": kept[1],
                 "threshold": sim.mean_threshold, "median ERM": float(np.median(sim.thresholds))})
table = pd.DataFrame(rows)
risks = np.array(class_risks(table["threshold"].to_numpy(), *params)).T
table["R0 %"] = 100 * risks[:, 0]
table["R1 %"] = 100 * risks[:, 1]
table["average risk %"] = 100 * average_risk(table["threshold"].to_numpy(), *params, mixture.phi0)
table["worst-class risk %"] = table[["R0 %", "R1 %"]].max(axis=1)
display(table.round(3))
