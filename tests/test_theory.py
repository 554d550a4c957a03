"""dropkit.theory: closed forms of Section 3 / Appendix B against numerical optimisation,
the exact ERM against brute force, pruning rules, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.stats import norm

from dropkit import theory
from dropkit.theory import (
    GaussianMixture,
    average_optimal_threshold,
    average_risk,
    class_risks,
    empirical_risk,
    empirical_risk_minimizer,
    error_based_density_ratio,
    margin_prune,
    optimal_prior_ratio,
    prior_ratio_quotas,
    sample_figure4a_parameters,
    sample_mixture,
    simulate_pruning,
    validity_violations,
    variance_based_density_ratio,
    worst_class_optimal_threshold,
)

FIG3 = (-1.0, 1.0, 0.5, 1.0)  # mu0, mu1, sigma0, sigma1 of Figure 3


def eq3_literal(mu0, mu1, s0, s1, ratio):
    """Eq. 3 exactly as printed in the paper (the library uses an equivalent stable form)."""
    disc = (mu0 - mu1) ** 2 - 2 * (s0**2 - s1**2) * np.log(ratio * s1 / s0)
    return (mu0 * s1**2 - mu1 * s0**2 + s0 * s1 * np.sqrt(disc)) / (s1**2 - s0**2)


def valid_draws(n, seed):
    """Random (mu0, mu1, sigma0, sigma1, prior_ratio) satisfying Eq. 6 and Eq. 7."""
    rng = np.random.default_rng(seed)
    draws = []
    while len(draws) < n:
        mu0 = rng.uniform(-3, 3)
        mu1 = mu0 + rng.uniform(0.2, 4)
        s0 = np.exp(rng.uniform(np.log(0.1), np.log(3)))
        s1 = s0 * np.exp(rng.uniform(np.log(1.05), np.log(10)))
        ratio = np.exp(rng.uniform(np.log(0.1), np.log(10)))
        eq6, eq7 = validity_violations(mu0, mu1, s0, s1, ratio)
        if not (eq6 or eq7):
            draws.append((mu0, mu1, s0, s1, ratio))
    return draws


# ------------------------------------------------------------------------------- closed forms


def test_figure3_caption_risks_to_printed_precision():
    t_star = average_optimal_threshold(*FIG3, 1.0)
    r0, r1 = class_risks(t_star, *FIG3)
    assert (round(100 * r0, 1), round(100 * r1, 1)) == (4.8, 12.1)
    t_hat = worst_class_optimal_threshold(*FIG3)
    h0, h1 = class_risks(t_hat, *FIG3)
    assert round(100 * h0, 1) == round(100 * h1, 1) == 9.1
    assert t_hat == pytest.approx(-1 / 3, abs=1e-15)
    assert t_hat < t_star  # "Note that t̂ < t*(1)" and R1[t*(1)] > R0[t*(1)]
    assert r1 > r0


def test_class_risks_match_scipy_norm_and_broadcast():
    t = np.array([-np.inf, -2.0, 0.3, 5.0, np.inf])
    r0, r1 = class_risks(t, *FIG3)
    np.testing.assert_allclose(r0, norm.sf(t, loc=-1, scale=0.5), rtol=1e-12, atol=0)
    np.testing.assert_allclose(r1, norm.cdf(t, loc=1, scale=1), rtol=1e-12, atol=0)
    assert (r0[0], r1[0], r0[-1], r1[-1]) == (1.0, 0.0, 0.0, 1.0)
    assert isinstance(class_risks(0.0, *FIG3)[0], float)
    r = average_risk(t, *FIG3, 0.3)
    np.testing.assert_allclose(r, 0.3 * r0 + 0.7 * r1, rtol=1e-15)


@pytest.mark.parametrize("seed", range(3))
def test_average_optimal_threshold_is_the_numerical_risk_minimiser(seed):
    for mu0, mu1, s0, s1, ratio in valid_draws(40, seed):
        phi0 = ratio / (1 + ratio)
        t_star = average_optimal_threshold(mu0, mu1, s0, s1, ratio)
        assert t_star == pytest.approx(eq3_literal(mu0, mu1, s0, s1, ratio), rel=1e-9, abs=1e-9)
        # R is increasing below the smaller root t_-, so bracket the minimum in (t_-, far right).
        disc = (mu1 - mu0) ** 2 + 2 * (s1**2 - s0**2) * np.log(ratio * s1 / s0)
        t_minus = (mu0 * s1**2 - mu1 * s0**2 - s0 * s1 * np.sqrt(disc)) / (s1**2 - s0**2)
        result = minimize_scalar(
            lambda t: average_risk(t, mu0, mu1, s0, s1, phi0),
            bounds=(t_minus, mu1 + 10 * s1),
            method="bounded",
            options={"xatol": 1e-12},
        )
        assert abs(result.x - t_star) <= 1e-6 * max(1.0, s1)
        r_star = average_risk(t_star, mu0, mu1, s0, s1, phi0)
        assert r_star <= result.fun + 1e-15
        # global over R ∪ {±inf}: beats both constant rules (Eq. 7) and a wide grid
        assert r_star < min(phi0, 1 - phi0)
        grid = np.linspace(mu0 - 20 * s1, mu1 + 20 * s1, 20001)
        assert r_star <= average_risk(grid, mu0, mu1, s0, s1, phi0).min() + 1e-15


@pytest.mark.parametrize("seed", range(3))
def test_worst_class_optimal_threshold_minimises_max_risk(seed):
    for mu0, mu1, s0, s1, _ in valid_draws(40, 100 + seed):
        t_hat = worst_class_optimal_threshold(mu0, mu1, s0, s1)
        result = minimize_scalar(
            lambda t: max(class_risks(t, mu0, mu1, s0, s1)),
            bounds=(mu0 - 10 * s0, mu1 + 10 * s1),
            method="bounded",
            options={"xatol": 1e-12},
        )
        assert abs(result.x - t_hat) <= 1e-6 * max(1.0, s1)
        r0, r1 = class_risks(t_hat, mu0, mu1, s0, s1)
        assert r0 == pytest.approx(r1, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_t_star_at_the_optimal_prior_ratio_is_t_hat(seed):
    for mu0, mu1, s0, s1, _ in valid_draws(40, 200 + seed):
        ratio = optimal_prior_ratio(s0, s1)
        assert ratio == s0 / s1
        # Eq. 7 at these priors is Eq. 11; only then is t*(sigma0/sigma1) defined
        if mu1 - mu0 > (s0 + s1) * norm.ppf(s1 / (s0 + s1)):
            t_star = average_optimal_threshold(mu0, mu1, s0, s1, ratio)
            assert t_star == pytest.approx(worst_class_optimal_threshold(mu0, mu1, s0, s1), rel=1e-12, abs=1e-12)
        else:
            with pytest.raises(ValueError, match="Eq. 7"):
                average_optimal_threshold(mu0, mu1, s0, s1, ratio)


def test_vectorised_threshold_equals_elementwise():
    draws = np.array(valid_draws(30, 7))
    vector = average_optimal_threshold(*draws.T)
    scalar = [average_optimal_threshold(*row) for row in draws]
    np.testing.assert_array_equal(vector, scalar)


def test_eq6_violation_raises_and_means_no_interior_minimum():
    # sigma ratio 0.5, prior ratio far below (sigma0/sigma1)·exp(-Δ²/(2(σ1²-σ0²)))
    mu0, mu1, s0, s1 = 0.0, 0.5, 1.0, 2.0
    bound = (s0 / s1) * np.exp(-0.5 * (mu1 - mu0) ** 2 / (s1**2 - s0**2))
    ratio = 0.5 * bound
    eq6, eq7 = validity_violations(mu0, mu1, s0, s1, ratio)
    assert eq6 and eq7
    with pytest.raises(ValueError, match="Eq. 6"):
        average_optimal_threshold(mu0, mu1, s0, s1, ratio)
    phi0 = ratio / (1 + ratio)
    grid = np.linspace(-50, 50, 100001)
    risk = average_risk(grid, mu0, mu1, s0, s1, phi0)
    assert np.all(np.diff(risk) >= -1e-15)  # increasing: the infimum is R(-inf) = phi0
    # just above the bound, Eq. 6 holds
    assert not validity_violations(mu0, mu1, s0, s1, 1.01 * bound)[0]


def test_eq7_violation_raises_and_means_predict_one_everywhere_wins():
    rng = np.random.default_rng(3)
    found = 0
    while found < 20:
        mu0, mu1 = 0.0, rng.uniform(0.05, 1.0)
        s0 = rng.uniform(0.5, 2)
        s1 = s0 * rng.uniform(1.5, 5)
        ratio = np.exp(rng.uniform(np.log(0.05), np.log(2)))
        eq6, eq7 = validity_violations(mu0, mu1, s0, s1, ratio)
        if eq6 or not eq7:
            continue
        found += 1
        with pytest.raises(ValueError, match="Eq. 7"):
            average_optimal_threshold(mu0, mu1, s0, s1, ratio)
        phi0 = ratio / (1 + ratio)
        t_plus = eq3_literal(mu0, mu1, s0, s1, ratio)  # exists (Eq. 6) but is not the minimiser
        assert average_risk(t_plus, mu0, mu1, s0, s1, phi0) >= phi0 - 1e-12
        grid = np.linspace(mu0 - 30 * s1, mu1 + 30 * s1, 20001)
        assert average_risk(grid, mu0, mu1, s0, s1, phi0).min() >= phi0 - 1e-9


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((1.0, -1.0, 0.5, 1.0, 1.0), "mu0"),
        ((-1.0, -1.0, 0.5, 1.0, 1.0), "mu0"),
        ((-1.0, 1.0, 1.0, 0.5, 1.0), "sigma0"),
        ((-1.0, 1.0, 1.0, 1.0, 1.0), "sigma0"),
        ((-1.0, 1.0, -0.5, 1.0, 1.0), "sigma0"),
        ((-1.0, 1.0, 0.5, np.nan, 1.0), "sigma1"),
        ((-1.0, 1.0, 0.5, 1.0, 0.0), "prior_ratio"),
        ((-1.0, 1.0, 0.5, 1.0, -2.0), "prior_ratio"),
        ((-np.inf, 1.0, 0.5, 1.0, 1.0), "mu0"),
    ],
)
def test_average_optimal_threshold_rejects_bad_parameters(args, match):
    with pytest.raises(ValueError, match=match):
        average_optimal_threshold(*args)


def test_other_functions_reject_bad_parameters():
    with pytest.raises(ValueError, match="mu0"):
        worst_class_optimal_threshold(1.0, 0.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="sigma1"):
        worst_class_optimal_threshold(0.0, 1.0, 0.5, 0.0)
    with pytest.raises(ValueError, match="sigma0"):
        class_risks(0.0, -1, 1, 0.0, 1.0)
    with pytest.raises(ValueError, match="t must not"):
        class_risks(np.nan, *FIG3)
    with pytest.raises(ValueError, match="phi0"):
        average_risk(0.0, *FIG3, 1.0)
    with pytest.raises(ValueError, match="sigma0"):
        optimal_prior_ratio(0.0, 1.0)
    with pytest.raises(ValueError, match="phi0"):
        GaussianMixture(phi0=0.0)
    with pytest.raises(ValueError, match="sigma0"):
        GaussianMixture(sigma0=2.0)


def test_density_ratios_error_based_vs_variance_based():
    r0, r1 = class_risks(average_optimal_threshold(*FIG3, 1.0), *FIG3)
    assert error_based_density_ratio(*FIG3, 1.0) == pytest.approx(r0 / r1, rel=1e-15)
    assert variance_based_density_ratio(0.5, 1.0, 1.0) == 0.5
    assert variance_based_density_ratio(0.5, 1.0, 2.0) == 0.25
    # at the optimal priors t* = t̂ and R0 = R1: error-based densities are equal
    assert error_based_density_ratio(*FIG3, 0.5) == pytest.approx(1.0, rel=1e-12)
    # vectorised over Figure 4a-style draws, invalid ones rejected by the check
    s0, s1, phi0 = sample_figure4a_parameters(500, 0)
    ratio = phi0 / (1 - phi0)
    assert np.all(s0 < s1) and np.all((s0 >= 1e-2) & (s1 <= 1e2))
    eq6, eq7 = validity_violations(-1.0, 1.0, s0, s1, ratio)
    ok = ~eq7
    assert 0 < ok.sum() < 500
    dens = error_based_density_ratio(-1.0, 1.0, s0[ok], s1[ok], ratio[ok])
    assert dens.shape == (ok.sum(),) and np.all(dens > 0)
    with pytest.raises(ValueError, match=rf"Eq. [67].*; {eq7.sum() if not eq6.any() else eq6.sum()} of 500 elements fail"):
        error_based_density_ratio(-1.0, 1.0, s0, s1, ratio)


def test_sample_figure4a_parameters_is_seeded_and_rejects_bad_input():
    a = sample_figure4a_parameters(10, 5)
    b = sample_figure4a_parameters(10, np.random.default_rng(5))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="n_draws"):
        sample_figure4a_parameters(0, 0)
    with pytest.raises(ValueError, match="sigma_range"):
        sample_figure4a_parameters(5, 0, sigma_range=(1.0, 1.0))


# ------------------------------------------------------------------------------------ ERM


def brute_force_min_errors(x, y):
    candidates = np.concatenate(([-np.inf, np.inf], x))  # "t = x_i" realises every split
    return min(int(np.sum((x > t).astype(int) != y)) for t in candidates)


def test_erm_matches_brute_force_on_random_small_samples():
    rng = np.random.default_rng(0)
    for _ in range(400):
        n = int(rng.integers(1, 25))
        # few distinct values so ties in x are frequent
        x = rng.integers(-4, 5, size=n).astype(float) if rng.random() < 0.5 else rng.normal(size=n)
        y = rng.integers(0, 2, size=n)
        t = empirical_risk_minimizer(x, y)
        errors = int(np.sum((x > t).astype(int) != y))
        assert errors == brute_force_min_errors(x, y)
        assert empirical_risk(t, x, y) == errors / n
        if np.isfinite(t):  # the midpoint of a gap between consecutive distinct values
            values = np.unique(x)
            j = np.searchsorted(values, t)
            assert 0 < j < values.size and t == (values[j - 1] + values[j]) / 2


def test_erm_on_separable_data_and_constant_rules():
    assert empirical_risk_minimizer([0.0, 1.0, 3.0, 4.0], [0, 0, 1, 1]) == 2.0
    assert empirical_risk_minimizer([3.0, 1.0, 4.0, 0.0], [1, 0, 1, 0]) == 2.0  # order-free
    assert empirical_risk_minimizer([0.0, 1.0], [1, 1]) == -np.inf
    assert empirical_risk_minimizer([0.0, 1.0], [0, 0]) == np.inf
    # two equal x with different labels cannot be split: one error is unavoidable
    assert empirical_risk_minimizer([1.0, 1.0, 2.0], [0, 1, 1]) in (-np.inf, 1.5)


def test_erm_tie_rule_picks_the_middle_optimal_gap():
    # labels 0 1 0 1 0 1 at x = 0..5: thresholds -inf, 0.5, 1.5, ... errors 3 2 3 2 3 2 3
    x = np.arange(6.0)
    y = np.array([0, 1, 0, 1, 0, 1])
    # optimal gaps 0.5, 2.5, 4.5 -> the middle one
    assert empirical_risk_minimizer(x, y) == 2.5
    # four optimal gaps (0.5, 2.5, 4.5, 6.5) -> the lower middle one
    assert empirical_risk_minimizer(np.arange(8.0), np.array([0, 1] * 4)) == 2.5


def test_erm_adjacent_floats_still_separate():
    a = 1.0
    b = np.nextafter(a, 2.0)
    t = empirical_risk_minimizer([a, b], [0, 1])
    assert a <= t < b and empirical_risk(t, [a, b], [0, 1]) == 0.0


def test_erm_is_near_t_star_on_a_large_sample():
    x, y = sample_mixture(200_000, *FIG3, 0.5, 0)
    assert abs(empirical_risk_minimizer(x, y) - average_optimal_threshold(*FIG3, 1.0)) < 0.05


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([], [], "x must be a non-empty"),
        ([[1.0]], [[0]], "x must be a non-empty 1-D"),
        ([1.0, 2.0], [0], "y has shape"),
        ([1.0, np.nan], [0, 1], "x must be finite"),
        ([1.0, 2.0], [0, 2], "y must contain only"),
    ],
)
def test_erm_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        empirical_risk_minimizer(x, y)


# ------------------------------------------------------------------------- sampling, pruning


def test_sample_mixture_is_seeded_and_has_the_right_moments():
    x, y = sample_mixture(100_000, *FIG3, 0.3, 1)
    x2, y2 = sample_mixture(100_000, *FIG3, 0.3, np.random.default_rng(1))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.dtype == np.float64 and y.dtype == np.int64
    assert abs(np.mean(y == 0) - 0.3) < 0.005
    assert abs(x[y == 0].mean() + 1) < 0.01 and abs(x[y == 0].std() - 0.5) < 0.01
    assert abs(x[y == 1].mean() - 1) < 0.02 and abs(x[y == 1].std() - 1) < 0.02
    with pytest.raises(ValueError, match="n="):
        sample_mixture(-1, *FIG3, 0.5, 0)
    with pytest.raises(ValueError, match="phi0"):
        sample_mixture(10, *FIG3, 1.5, 0)


def test_margin_prune_removes_the_points_closest_to_their_class_mean():
    x = np.array([-1.0, -0.9, -2.5, 1.0, 1.2, 3.0, 0.1, -1.05])
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    # distances to (-1, 1): 0, .1, 1.5, 0, .2, 2, .9, .05 -> keep the 4 largest
    keep = margin_prune(x, y, 0.5, (-1.0, 1.0))
    np.testing.assert_array_equal(keep, [2, 4, 5, 6])
    rng = np.random.default_rng(0)
    x, y = sample_mixture(1001, *FIG3, 0.5, rng)
    for density in (1.0, 0.75, 0.5, 0.1):
        keep = margin_prune(x, y, density, (-1.0, 1.0))
        assert keep.size == round(density * 1001) and np.all(np.diff(keep) > 0)
        distance = np.abs(x - np.where(y == 0, -1.0, 1.0))
        removed = np.setdiff1d(np.arange(x.size), keep)
        if removed.size:  # a single margin M separates removed from kept
            assert distance[removed].max() <= distance[keep].min()
    # the easier (narrower) class loses more points (Section 3)
    kept = np.bincount(y[margin_prune(x, y, 0.5, (-1.0, 1.0))], minlength=2) / np.bincount(y)
    assert kept[0] < kept[1]


def test_margin_prune_breaks_ties_by_seed_and_rejects_bad_input():
    x = np.zeros(10)
    y = np.zeros(10, dtype=int)
    a, b = margin_prune(x, y, 0.5, (0.0, 1.0), seed=0), margin_prune(x, y, 0.5, (0.0, 1.0), seed=1)
    assert a.size == b.size == 5 and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, margin_prune(x, y, 0.5, (0.0, 1.0), seed=0))
    with pytest.raises(ValueError, match="density"):
        margin_prune(x, y, 0.0, (0.0, 1.0))
    with pytest.raises(ValueError, match="density"):
        margin_prune(x, y, 1.5, (0.0, 1.0))
    with pytest.raises(ValueError, match="class_means"):
        margin_prune(x, y, 0.5, (0.0,))


def test_prior_ratio_quotas():
    np.testing.assert_array_equal(prior_ratio_quotas(np.array([200, 200]), 0.5, 0.5), [67, 133])
    # class 1 saturates: keeps all of it, class 0 takes the rest
    np.testing.assert_array_equal(prior_ratio_quotas(np.array([200, 100]), 0.5, 0.75), [125, 100])
    np.testing.assert_array_equal(prior_ratio_quotas(np.array([10, 30]), 100.0, 0.5), [10, 10])
    np.testing.assert_array_equal(prior_ratio_quotas(np.array([5, 7]), 0.3, 1.0), [5, 7])
    with pytest.raises(ValueError, match="class_sizes"):
        prior_ratio_quotas([2.5, 3], 1.0, 0.5)
    with pytest.raises(ValueError, match="prior_ratio"):
        prior_ratio_quotas(np.array([2, 3]), 0.0, 0.5)


@pytest.mark.parametrize("strategy", ["none", "random-optimal", "ssp", "random-ssp-quotas"])
def test_simulate_pruning_counts_and_determinism(strategy):
    mixture = GaussianMixture()
    a = simulate_pruning(mixture, strategy, density=0.5, n_datasets=3, n_points=101, seed=4)
    b = simulate_pruning(mixture, strategy, density=0.5, n_datasets=3, n_points=101, seed=4)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    expected_total = 101 if strategy == "none" else round(0.5 * 101)
    assert np.all(a.kept_sizes.sum(axis=1) == expected_total)
    assert np.all(a.kept_sizes <= a.class_sizes) and np.all(a.class_sizes.sum(axis=1) == 101)
    for x, y, t, sizes in zip(a.kept_x, a.kept_y, a.thresholds, a.kept_sizes):
        np.testing.assert_array_equal(np.bincount(y, minlength=2), sizes)
        assert t == empirical_risk_minimizer(x, y)
    assert a.mean_threshold == pytest.approx(np.mean(a.thresholds))
    if strategy == "random-optimal":
        ratio = a.kept_sizes[:, 0] / a.kept_sizes[:, 1]
        assert np.all(np.abs(ratio - 0.5) < 0.05)


def test_simulate_pruning_shares_datasets_and_ssp_quotas_across_strategies():
    mixture = GaussianMixture()
    ssp = simulate_pruning(mixture, "ssp", density=0.5, n_datasets=4, n_points=200, seed=1)
    rnd = simulate_pruning(mixture, "random-ssp-quotas", density=0.5, n_datasets=4, n_points=200, seed=1)
    np.testing.assert_array_equal(ssp.class_sizes, rnd.class_sizes)
    np.testing.assert_array_equal(ssp.kept_sizes, rnd.kept_sizes)


def test_random_optimal_pruning_lands_near_t_hat():
    # Section 3: random pruning with n0/n1 = sigma0/sigma1 moves the ERM from t*(1) to t̂
    mixture = GaussianMixture()
    full = simulate_pruning(mixture, "none", density=1.0, n_datasets=20, n_points=2000, seed=0)
    opt = simulate_pruning(mixture, "random-optimal", density=0.5, n_datasets=20, n_points=2000, seed=0)
    assert abs(full.mean_threshold - average_optimal_threshold(*FIG3, 1.0)) < 0.05
    assert abs(opt.mean_threshold - worst_class_optimal_threshold(*FIG3)) < 0.05


def test_simulate_pruning_random_drop_uses_drop_quotas():
    quotas = pytest.importorskip("dropkit.quotas")
    mixture = GaussianMixture()
    sim = simulate_pruning(mixture, "random-drop", density=0.75, n_datasets=3, n_points=400, seed=0)
    for sizes, kept in zip(sim.class_sizes, sim.kept_sizes):
        t_star = average_optimal_threshold(*FIG3, sizes[0] / sizes[1])
        recalls = 1 - np.array(class_risks(t_star, *FIG3))
        np.testing.assert_array_equal(kept, quotas.drop_quotas(sizes, recalls, 0.75))
    assert np.all(sim.kept_sizes.sum(axis=1) == 300)


def test_simulate_pruning_rejects_bad_input():
    mixture = GaussianMixture()
    with pytest.raises(ValueError, match="strategy"):
        simulate_pruning(mixture, "magic", density=0.5)
    with pytest.raises(ValueError, match="density"):
        simulate_pruning(mixture, "ssp", density=0.0)
    with pytest.raises(ValueError, match="n_points"):
        simulate_pruning(mixture, "ssp", density=0.5, n_points=1)
    with pytest.raises(ValueError, match="n_datasets"):
        simulate_pruning(mixture, "ssp", density=0.5, n_datasets=0)
    with pytest.raises(ValueError, match="seed"):
        simulate_pruning(mixture, "ssp", density=0.5, seed=[])
    with pytest.raises(ValueError, match="seed"):
        simulate_pruning(mixture, "ssp", density=0.5, seed=-1)
    with pytest.raises(ValueError, match="density"):
        simulate_pruning(mixture, "ssp", density=True)


def test_simulate_pruning_with_several_seeds_concatenates_per_seed_runs():
    mixture = GaussianMixture()
    both = simulate_pruning(mixture, "random-optimal", density=0.5, n_datasets=2, n_points=50, seed=[3, 8])
    parts = [simulate_pruning(mixture, "random-optimal", density=0.5, n_datasets=2, n_points=50, seed=s) for s in (3, 8)]
    np.testing.assert_array_equal(both.thresholds, np.concatenate([p.thresholds for p in parts]))
    np.testing.assert_array_equal(both.kept_sizes, np.concatenate([p.kept_sizes for p in parts]))
    assert not np.array_equal(parts[0].class_sizes, parts[1].class_sizes)


def test_public_names_are_exported():
    for name in theory.__all__:
        assert hasattr(theory, name)


def test_figure4a_scales_are_uniform_as_the_paper_says_or_log_uniform():
    s0, s1, _ = sample_figure4a_parameters(20000, 1)
    scales = np.concatenate([s0, s1])
    assert abs(np.mean(scales < 50.0) - 0.5) < 0.02  # uniform on [0.01, 100]: half below 50
    l0, l1, _ = sample_figure4a_parameters(20000, 1, spacing="log")
    logs = np.concatenate([l0, l1])
    assert abs(np.mean(logs < 1.0) - 0.5) < 0.02  # log-uniform: half below 1
    with pytest.raises(ValueError, match="spacing"):
        sample_figure4a_parameters(5, 0, spacing="linear")


def test_ratio_agreement_counts_exactly_and_takes_no_log_of_an_underflowed_ratio():
    import warnings

    from dropkit.theory import ratio_agreement

    variance = np.array([1.0, 1.0, 0.1, 10.0, 1e-3])
    error = np.array([1.5, 3.0, 0.01, 10.0, 0.0])  # the last underflowed to 0 (R_0[t*] < 1e-308)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # chapter 01 printed "divide by zero encountered in log10"
        agreement = ratio_agreement(variance, error, percentiles=(0, 100), margin_decades=0.5)
    # range: log10 of the 9 positive ratios spans [-3, 1], widened by half a decade
    assert agreement.low == pytest.approx(10 ** -3.5) and agreement.high == pytest.approx(10 ** 1.5)
    assert agreement.outside == 1  # the 0
    assert agreement.near == 2  # 1.5/1 and 10/10; 3/1 and 0.01/0.1 are beyond a factor of 2
    assert agreement.below == 2  # 0.01 < 0.1 and 0 < 1e-3
    # the default book's draws (2000, seed 0) hold such a ratio
    s0, s1, phi0 = sample_figure4a_parameters(2000, 0)
    ratio = phi0 / (1 - phi0)
    ok = ~validity_violations(-1.0, 1.0, s0, s1, ratio)[1]
    errors = error_based_density_ratio(-1.0, 1.0, s0[ok], s1[ok], ratio[ok])
    assert np.sum(errors == 0) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ratio_agreement(variance_based_density_ratio(s0[ok], s1[ok], ratio[ok]), errors)
    with pytest.raises(ValueError, match="one length"):
        ratio_agreement(variance, error[:3])
    with pytest.raises(ValueError, match=">= 0"):
        ratio_agreement(variance, -error)
