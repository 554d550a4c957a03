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
# Section 3 of the paper {cite:p}`vysogorets2025drop` studies the simplest setting in which pruning can bias a classifier:
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

# %% tags=["parameters", "hide-input"]
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

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dropkit import curves, plots, publish
from dropkit.chapter import check_theory_parameters
from dropkit.profiles import check_profile
from dropkit.theory import (
    GaussianMixture,
    average_optimal_threshold,
    average_risk,
    class_risks,
    error_based_density_ratio,
    ratio_agreement,
    sample_figure4a_parameters,
    simulate_pruning,
    validity_violations,
    variance_based_density_ratio,
    worst_class_optimal_threshold,
)

check_profile(profile)
check_theory_parameters(dataset=dataset, model=model, densities=densities, figure3_density=figure3_density,
                        seeds=seeds, n_datasets=n_datasets, n_points=n_points, n_draws=n_draws, seed=seed,
                        device=device, results_dir=results_dir)
if profile == "smoke":
    n_draws = min(n_draws, 500)
curves.use_book_theme()
CHAPTER = "01_theory"  # this notebook (the figures' regeneration command)
mixture = GaussianMixture(mu0=-1.0, mu1=1.0, sigma0=0.5, sigma1=1.0, phi0=0.5)  # Figure 3's mixture
params = mixture.params  # (mu0, mu1, sigma0, sigma1)
total_datasets = n_datasets * len(seeds)

# %% tags=["remove-input"]
publish.show_markdown(
    f"**Setting** (profile `{profile}`): the mixture $\\mu_0 = -1$, $\\mu_1 = 1$, $\\sigma_0 = 0.5$, "
    f"$\\sigma_1 = 1$, $\\phi_0 = \\phi_1$; {total_datasets} datasets of {n_points} points (seeds "
    f"{', '.join(map(str, seeds))}) for Figures 3 and 4b, pruned to $d = {figure3_density:g}$ in Figure 3 and "
    f"to $d \\in \\{{{', '.join(f'{d:g}' for d in densities)}\\}}$ in Figure 4b; {n_draws} random mixtures "
    f"(seed {seed}) for Figure 4a.")


# %% tags=["remove-input"]
# The paper's claims on this chapter and their verdicts: the rows of the scorecard
# ({doc}`08_scorecard`), Holm-corrected over the whole scorecard (every stored run of the profile).
from dropkit import scorecard

card, omissions, _ = scorecard.book_scorecard(profile, results_dir)
publish.show_markdown(scorecard.chapter_box(card, "01_theory"))

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
publish.show_markdown(publish.bullet_list([
    f"$t^*(1) = {t_star:.4f}$: $R_0 = {100 * star_risks[0]:.1f}\\%$, $R_1 = {100 * star_risks[1]:.1f}\\%$",
    f"$\\hat t = {t_hat:.4f}$: $R_0 = {100 * hat_risks[0]:.1f}\\%$, $R_1 = {100 * hat_risks[1]:.1f}\\%$",
]))

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-3>` (paper Figure 3): how three pruning procedures move the ERM
#
# We draw datasets of `n_points` points from the mixture, prune each to density $d$ and fit the
# exact ERM threshold $T(D_i')$ to each pruned dataset; $\overline T$ is their average.
#
# * **Random, Eq. 5** — random pruning within classes with the worst-class optimal proportions
#   $d_0 N_0 \sigma_1 = d_1 N_1 \sigma_0$ (Eq. 5). $\overline T$ should land near $\hat t$.
# * **SSP** — the supervised SSP variant {cite:p}`sorscher2022beyond` of Section 3: remove,
#   irrespective of class, the points within a margin $M$ of their class mean. It prunes the easy
#   (narrow) class harder, yet on the interval between the two margins the pruned risk is
#   proportional to the original one (Appendix B.3), so the ERM stays near $t^*(N_0/N_1)$. With
#   only a few hundred points the ERM is, however, unstable: the hole SSP cuts around $\mu_0$
#   creates a second, almost equally good threshold left of it, which some datasets pick (ticks on
#   the x-axis mark each dataset's ERM; the table at the end also gives the median).
# * **Random with SSP's class counts** — the class-conditional independence is restored and
#   $\overline T$ moves towards $\hat t$.
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
fig, axes = plt.subplots(3, 1, figsize=(9, 11), sharex=True, layout="constrained")
for ax, (strategy, title) in zip(axes, figure3_strategies.items()):
    plots.draw_pruned_histograms(ax, figure3[strategy], mixture, title)
publish.publish_figure("paper-figure-3", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-3
# :name: paper-figure-3
# :alt: Reproduction of paper Figure 3
#
# (paper Figure 3) The Gaussian mixture pruned by three procedures: per-dataset histograms of the two classes, the
# optimal thresholds $t^*(1)$ (dashed) and $\hat t$ (dotted), the mean ERM $\overline T$ (solid)
# and each pruned dataset's ERM (ticks).
# ```
#
# ```{glue:md} paper-figure-3-source
# :format: myst
# ```

# %%
ssp_left = int(np.sum(figure3["ssp"].thresholds < mixture.mu0))
publish.show_markdown(
    f"SSP: the ERM falls left of $\\mu_0$ in {ssp_left} of {total_datasets} datasets; median ERM "
    f"{np.median(figure3['ssp'].thresholds):.3f} against {np.median(full_data.thresholds):.3f} on the full data.")

# %% [markdown]
# ## {numref}`Figure %s <paper-figure-4a>` (paper Figure 4a): error-based versus variance-based class densities
#
# DRoP cannot know the class variances of a real dataset, so it replaces the worst-class optimal
# condition $d_0 N_0 \sigma_1 = d_1 N_1 \sigma_0$ by one on class *errors* of the average-optimal
# model, $d_0 R_1[t^*] = d_1 R_0[t^*]$ with $t^* = t^*(N_0/N_1)$. For random draws of
# $\sigma_0 < \sigma_1$ (uniform on $[10^{-2}, 10^{2}]$, as the paper's caption says) and $\phi_0 \sim U[0,1]$ we compare the
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

fig, ax = plt.subplots(figsize=(7, 5.6), layout="constrained")
points = ax.scatter(variance_based, error_based, c=np.log10(sigma1[valid] / sigma0[valid]), s=8, cmap="viridis")
# The plotted range and the counts below (an error-based ratio that underflowed to 0 lies outside it).
agreement = ratio_agreement(variance_based, error_based)
low, high = agreement.low, agreement.high
ax.plot([low, high], [low, high], color="black", linewidth=1, label="equal ratios")
ax.set(xlim=(low, high), ylim=(low, high), xscale="log", yscale="log",
       xlabel="variance-based $d_0/d_1 = (\\sigma_0/\\sigma_1)(\\phi_1/\\phi_0)$ (Eq. 5)",
       ylabel="error-based $d_0/d_1 = R_0[t^*]/R_1[t^*]$ (DRoP)")
fig.colorbar(points, label="$\\log_{10}(\\sigma_1/\\sigma_0)$")
ax.legend()
plotted = pd.DataFrame({"sigma0": sigma0[valid], "sigma1": sigma1[valid], "phi0": phi0[valid],
                        "variance-based d0/d1": variance_based, "error-based d0/d1": error_based})
publish.publish_figure("paper-figure-4a", fig, chapter=CHAPTER, profile=profile, data=plotted)
publish.show_markdown(f"{int(valid.sum())} of {n_draws} draws satisfy Appendix B.1's conditions and are "
                      f"shown; {agreement.outside} of them fall outside the plotted range. Of the shown draws, "
                      f"{agreement.near} {'lies' if agreement.near == 1 else 'lie'} within a factor of 2 of the "
                      f"diagonal; the error-based ratio is below the "
                      f"variance-based one in {agreement.below} of them.")

# %% [markdown]
# ```{glue:figure} paper-figure-4a
# :name: paper-figure-4a
# :alt: Reproduction of paper Figure 4a
#
# (paper Figure 4a) DRoP's error-based class-density ratio $R_0[t^*]/R_1[t^*]$ against the worst-class optimal
# ratio of Eq. 5 for random mixtures with $\sigma_0 < \sigma_1$ drawn uniformly from
# $[10^{-2}, 10^{2}]$ (the paper's sampling; earlier versions drew them log-uniformly), $\phi_0 \sim U[0,1]$;
# colour: $\log_{10}(\sigma_1/\sigma_0)$,
# black line: equal ratios.
# ```
#
# ```{glue:md} paper-figure-4a-source
# :format: myst
# ```
#
# The closer the points lie to the diagonal, the better class errors stand in for class
# variances. The sentence above the figure counts how many draws lie within a factor of 2 of
# the diagonal and on which side of it the others lie.
#
# ## {numref}`Figure %s <paper-figure-4b>` (paper Figure 4b): random pruning with DRoP's class quotas
#
# DRoP's quotas (`dropkit.quotas.drop_quotas`, Algorithm 1) are computed from the recalls
# $1 - R_k[t^*(N_0/N_1)]$ of each dataset's average-optimal rule; samples are then removed at
# random within each class. At $d = 75\%$ the harder class saturates (keeps all its points).

# %%
figure4b = {
    density: simulate_pruning(mixture, "random-drop", density=density, n_datasets=n_datasets, n_points=n_points, seed=seeds)
    for density in densities
}
fig, axes = plt.subplots(len(densities), 1, figsize=(9, 3.7 * len(densities)), sharex=True, squeeze=False,
                         layout="constrained")
for ax, (density, simulation) in zip(axes[:, 0], figure4b.items()):
    title = f"Random with DRoP quotas, $d$ = {100 * density:.0f}%"
    plots.draw_pruned_histograms(ax, simulation, mixture, title)
publish.publish_figure("paper-figure-4b", fig, chapter=CHAPTER, profile=profile)

# %% [markdown]
# ```{glue:figure} paper-figure-4b
# :name: paper-figure-4b
# :alt: Reproduction of paper Figure 4b
#
# (paper Figure 4b) Random pruning within classes with DRoP's quotas (recalls $1 - R_k[t^*(N_0/N_1)]$) on the mixture
# of {numref}`Figure %s (paper Figure 3) <paper-figure-3>`, one panel per density; lines as in {numref}`Figure %s (paper Figure 3) <paper-figure-3>`.
# ```
#
# ```{glue:md} paper-figure-4b-source
# :format: myst
# ```

# %% [markdown]
# ## Summary
#
# Mean kept class counts, the average ERM $\overline T$ and its class risks under the true
# mixture (average risk with $\phi_0 = \phi_1$), next to the two optimal thresholds. The median
# ERM shows how far single outlying datasets pull the mean.

# %% tags=["hide-input"]
rows = [
    {"setting": "optimum $t^*(1)$", "threshold": t_star},
    {"setting": "optimum $\\hat t$", "threshold": t_hat},
]
simulations = [("full data", full_data)]
simulations += [(f"paper Fig. 3: {strategy}, $d = {sim.density:g}$", sim) for strategy, sim in figure3.items()]
simulations += [(f"paper Fig. 4b: random-drop, $d = {sim.density:g}$", sim) for sim in figure4b.values()]
for name, sim in simulations:
    kept = sim.kept_sizes.mean(axis=0)
    rows.append({"setting": name, "kept (class 0 / 1)": " / ".join(f"{k:.0f}" if k == round(k) else f"{k:.1f}" for k in kept),
                 "threshold": sim.mean_threshold, "median ERM": float(np.median(sim.thresholds))})
table = pd.DataFrame(rows)
risks = np.array(class_risks(table["threshold"].to_numpy(), *params)).T
table["R0 (%)"] = 100 * risks[:, 0]
table["R1 (%)"] = 100 * risks[:, 1]
table["average risk (%)"] = 100 * average_risk(table["threshold"].to_numpy(), *params, mixture.phi0)
table["worst-class risk (%)"] = table[["R0 (%)", "R1 (%)"]].max(axis=1)
publish.show_markdown(publish.markdown_table(
    table.fillna({"kept (class 0 / 1)": ""}), "Thresholds and class risks of every setting: the optima, and the mean "
    f"ERM of each procedure over its {total_datasets} datasets (kept: mean class sizes)"))

# %% [markdown]
# ## What we see
#
# The claims of Section 3, Figure 3 and Figure 4, each judged by its rule of `dropkit.claims` on
# the pre-registered replicates of the registry (`dropkit.registry.theory`: 50 simulated datasets of
# 400 points, the same for every strategy, and Figure 4a's 2,000 random mixtures; not this page's
# parameters), the same rows as the scorecard ({doc}`08_scorecard`), Holm-corrected over it. "Near"
# a threshold is an equivalence claim with the margin half the distance between $t^*$ and $\hat t$.

# %% tags=["hide-input"]
publish.show_markdown(scorecard.chapter_markdown(card, "01_theory"))
