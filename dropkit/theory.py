"""Pruning a mixture of two univariate Gaussians (paper Section 3 and Appendix B).

The model: class ``y in {0, 1}`` with prior ``phi_y``, ``x | y ~ N(mu_y, sigma_y^2)`` with
``mu0 < mu1`` and ``sigma0 < sigma1`` (class 1 is the harder, heavier-tailed class). A decision
rule is a threshold ``t`` in ``R ∪ {±inf}`` predicting ``1{x > t}``. All quantities are
dimensionless (``x`` is in the units of the means and standard deviations).

Closed forms (equation numbers are the paper's):

- :func:`class_risks` -- ``R0(t) = Φ((mu0 - t)/sigma0)``, ``R1(t) = Φ((t - mu1)/sigma1)`` (Eq. 1);
- :func:`average_risk` -- ``R(t) = phi0 R0(t) + phi1 R1(t)`` (Eq. 2);
- :func:`average_optimal_threshold` -- ``t*(phi0/phi1)``, the minimiser of ``R`` (Eq. 3), valid
  under Eq. 6 and Eq. 7 of Appendix B.1 (checked: :func:`validity_violations`);
- :func:`worst_class_optimal_threshold` -- ``t̂ = argmin_t max(R0, R1)`` (Eq. 4);
- :func:`optimal_prior_ratio` -- ``phi0/phi1 = sigma0/sigma1`` for which ``t* = t̂`` (Eq. 5);
- :func:`error_based_density_ratio` -- DRoP's class-density ratio ``d0/d1 = R0[t*]/R1[t*]``
  (Section 3, Figure 4a) and :func:`variance_based_density_ratio`, its Eq. 5 counterpart.

Samples and pruning (Figures 3 and 4b): :func:`sample_mixture`, :func:`empirical_risk_minimizer`
(the exact minimiser of the empirical 0-1 risk, O(n log n)), :func:`margin_prune` (the supervised
SSP variant of Section 3), :func:`prior_ratio_quotas` and :func:`simulate_pruning`, which repeats
"sample a dataset, prune it, fit the ERM threshold" for the strategies of Figures 3 and 4b.

Only numpy and scipy are used; the ``"random-drop"`` strategy imports :mod:`dropkit.quotas`
(pure numpy) when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr

__all__ = [
    "GaussianMixture",
    "PruningSimulation",
    "RatioAgreement",
    "STRATEGIES",
    "average_optimal_threshold",
    "average_risk",
    "class_risks",
    "empirical_risk",
    "empirical_risk_minimizer",
    "error_based_density_ratio",
    "margin_prune",
    "optimal_prior_ratio",
    "prior_ratio_quotas",
    "ratio_agreement",
    "sample_mixture",
    "sample_figure4a_parameters",
    "simulation_table",
    "figure4a_table",
    "simulate_pruning",
    "validity_violations",
    "variance_based_density_ratio",
    "worst_class_optimal_threshold",
]


# --------------------------------------------------------------------------------------------
# argument checks


def _finite(name: str, value) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}={value!r} must be finite")
    return array


def _positive(name: str, value) -> np.ndarray:
    array = _finite(name, value)
    if np.any(array <= 0):
        raise ValueError(f"{name}={value!r} must be > 0")
    return array


def _check_means(mu0, mu1) -> tuple[np.ndarray, np.ndarray]:
    mu0, mu1 = _finite("mu0", mu0), _finite("mu1", mu1)
    if np.any(mu0 >= mu1):
        raise ValueError(f"mu0={mu0} must be < mu1={mu1} (the paper assumes mu0 < mu1)")
    return mu0, mu1


def _check_scales(sigma0, sigma1, *, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    sigma0, sigma1 = _positive("sigma0", sigma0), _positive("sigma1", sigma1)
    if strict and np.any(sigma0 >= sigma1):
        raise ValueError(
            f"sigma0={sigma0} must be < sigma1={sigma1} (the paper assumes class 1 is the "
            "heavier-tailed class)"
        )
    return sigma0, sigma1


def _check_phi0(phi0) -> np.ndarray:
    phi0 = _finite("phi0", phi0)
    if np.any((phi0 <= 0) | (phi0 >= 1)):
        raise ValueError(f"phi0={phi0!r} must lie in (0, 1)")
    return phi0


def _check_density(density) -> float:
    if isinstance(density, bool) or not np.isscalar(density) or not np.isfinite(density) or not 0 < density <= 1:
        raise ValueError(f"density={density!r} must be a number in (0, 1]")
    return float(density)


def _scalar_or_array(value: np.ndarray):
    return float(value) if np.ndim(value) == 0 else value


# --------------------------------------------------------------------------------------------
# statistical risks and optimal thresholds


def class_risks(t, mu0, mu1, sigma0, sigma1) -> tuple:
    """Class-conditional 0-1 risks ``(R0(t), R1(t))`` of the rule ``1{x > t}`` (Eq. 1).

    ``R0(t) = Φ((mu0 - t)/sigma0)`` is the probability that a class-0 point lands right of ``t``,
    ``R1(t) = Φ((t - mu1)/sigma1)`` that a class-1 point lands at or left of it. ``t`` may be a
    scalar or an array (``±inf`` allowed), and all arguments broadcast; the result has the
    broadcast shape (floats for scalar input). Requires finite means and positive scales.
    """
    t = np.asarray(t, dtype=np.float64)
    if np.any(np.isnan(t)):
        raise ValueError("t must not contain NaN")
    mu0, mu1 = _finite("mu0", mu0), _finite("mu1", mu1)
    sigma0, sigma1 = _positive("sigma0", sigma0), _positive("sigma1", sigma1)
    risk0 = ndtr((mu0 - t) / sigma0)
    risk1 = ndtr((t - mu1) / sigma1)
    return _scalar_or_array(risk0), _scalar_or_array(risk1)


def average_risk(t, mu0, mu1, sigma0, sigma1, phi0):
    """Average 0-1 risk ``R(t) = phi0 R0(t) + (1 - phi0) R1(t)`` (Eq. 2), vectorised like
    :func:`class_risks`; ``phi0`` is the prior of class 0, in (0, 1)."""
    phi0 = _check_phi0(phi0)
    risk0, risk1 = class_risks(t, mu0, mu1, sigma0, sigma1)
    return _scalar_or_array(phi0 * np.asarray(risk0) + (1 - phi0) * np.asarray(risk1))


def _log_odds_term(sigma0, sigma1, prior_ratio) -> np.ndarray:
    """``log(phi0 sigma1 / (phi1 sigma0))``, the logarithm in Eq. 3."""
    return np.log(prior_ratio) + np.log(sigma1) - np.log(sigma0)


def _discriminant(mu0, mu1, sigma0, sigma1, prior_ratio) -> np.ndarray:
    """The expression under the square root of Eq. 3 (non-negative iff Eq. 6 holds)."""
    return (mu1 - mu0) ** 2 + 2 * (sigma1**2 - sigma0**2) * _log_odds_term(sigma0, sigma1, prior_ratio)


def _larger_root(mu0, mu1, sigma0, sigma1, prior_ratio) -> np.ndarray:
    """``t_+`` of Eq. 9 (= Eq. 3), in a cancellation-free form; NaN where Eq. 6 fails.

    Multiplying Eq. 3's ``t - mu0`` by its conjugate gives
    ``t_+ = mu0 + sigma0 (Δ² + 2 sigma1² L) / (Δ sigma0 + sigma1 sqrt(D))`` with ``Δ = mu1 - mu0``,
    ``L`` the logarithm and ``D`` the discriminant of Eq. 3: algebraically identical, but it does
    not lose digits when ``sigma1`` is close to ``sigma0``.
    """
    delta = mu1 - mu0
    disc = _discriminant(mu0, mu1, sigma0, sigma1, prior_ratio)
    log_term = _log_odds_term(sigma0, sigma1, prior_ratio)
    with np.errstate(invalid="ignore"):
        root = np.sqrt(disc)
    return mu0 + sigma0 * (delta**2 + 2 * sigma1**2 * log_term) / (delta * sigma0 + sigma1 * root)


def validity_violations(mu0, mu1, sigma0, sigma1, prior_ratio) -> tuple[np.ndarray, np.ndarray]:
    """Where the conditions of Appendix B.1 fail, as two boolean arrays ``(eq6_fails, eq7_fails)``.

    - Eq. 6: ``phi0/phi1 >= (sigma0/sigma1) exp(-(mu0 - mu1)² / (2 (sigma1² - sigma0²)))`` -- the
      scaled densities ``phi0 f0`` and ``phi1 f1`` intersect, so Eq. 3 is real;
    - Eq. 7 (Theorem B.1): ``phi0/phi1 > Φ((t* - mu1)/sigma1) / Φ((t* - mu0)/sigma0)``, i.e.
      ``R(t*) < R(-inf) = phi0``: otherwise "predict class 1 everywhere" is at least as good.
      Reported as failing wherever Eq. 6 fails (``t*`` does not exist there).

    Arguments broadcast (``prior_ratio = phi0/phi1 > 0``); requires ``mu0 < mu1`` and
    ``0 < sigma0 < sigma1``.
    """
    mu0, mu1 = _check_means(mu0, mu1)
    sigma0, sigma1 = _check_scales(sigma0, sigma1, strict=True)
    prior_ratio = _positive("prior_ratio", prior_ratio)
    eq6_fails = _discriminant(mu0, mu1, sigma0, sigma1, prior_ratio) < 0
    t_plus = _larger_root(mu0, mu1, sigma0, sigma1, prior_ratio)
    with np.errstate(invalid="ignore"):
        log_rhs = log_ndtr((t_plus - mu1) / sigma1) - log_ndtr((t_plus - mu0) / sigma0)
        eq7_fails = eq6_fails | ~(np.log(prior_ratio) > log_rhs)
    return eq6_fails, eq7_fails


def _first_failure(fails: np.ndarray, mu0, mu1, sigma0, sigma1, prior_ratio) -> str:
    """``(mu0=..., ...)`` for the first failing element, with the number of failures if several."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (mu0, mu1, sigma0, sigma1, prior_ratio)))
    index = np.unravel_index(int(np.argmax(fails)), fails.shape) if fails.ndim else ()
    values = ", ".join(
        f"{name}={float(a[index])!r}" for name, a in zip(("mu0", "mu1", "sigma0", "sigma1", "prior_ratio"), arrays)
    )
    count = int(np.sum(fails))
    return f"({values}" + (f"; {count} of {fails.size} elements fail)" if fails.ndim else ")")


def average_optimal_threshold(mu0, mu1, sigma0, sigma1, prior_ratio):
    """The average-risk-optimal threshold ``t*(phi0/phi1)`` of Eq. 3 (``prior_ratio = phi0/phi1``).

    It is the larger intersection of ``phi0 f0`` and ``phi1 f1`` and minimises :func:`average_risk`
    over ``R ∪ {±inf}`` when the conditions of Appendix B.1 hold. Raises ``ValueError`` naming the
    violated condition: ``mu0 < mu1``, ``sigma0 < sigma1``, Eq. 6 (no intersection: the risk is
    increasing and the minimiser is ``t = -inf``) or Eq. 7 (Theorem B.1: ``t = -inf``, predicting
    class 1 everywhere, is at least as good). Arguments broadcast; arrays are checked elementwise.
    """
    eq6_fails, eq7_fails = validity_violations(mu0, mu1, sigma0, sigma1, prior_ratio)
    if np.any(eq6_fails):
        raise ValueError(
            "Eq. 6 of Appendix B.1 is violated: prior_ratio=phi0/phi1 is below "
            "(sigma0/sigma1)·exp(-(mu1-mu0)²/(2(sigma1²-sigma0²))), so the scaled class densities "
            "do not intersect and t*(prior_ratio) does not exist "
            + _first_failure(eq6_fails, mu0, mu1, sigma0, sigma1, prior_ratio)
        )
    if np.any(eq7_fails):
        raise ValueError(
            "Eq. 7 of Appendix B.1 (Theorem B.1) is violated: prior_ratio=phi0/phi1 is not above "
            "Φ((t*-mu1)/sigma1)/Φ((t*-mu0)/sigma0), so t = -inf has no larger average risk than "
            "Eq. 3's t* " + _first_failure(eq7_fails, mu0, mu1, sigma0, sigma1, prior_ratio)
        )
    mu0, mu1, sigma0, sigma1, prior_ratio = (
        np.asarray(v, dtype=np.float64) for v in (mu0, mu1, sigma0, sigma1, prior_ratio)
    )
    return _scalar_or_array(_larger_root(mu0, mu1, sigma0, sigma1, prior_ratio))


def worst_class_optimal_threshold(mu0, mu1, sigma0, sigma1):
    """The worst-class-optimal threshold ``t̂ = (mu0 sigma1 + mu1 sigma0)/(sigma0 + sigma1)`` (Eq. 4).

    ``t̂`` is the unique minimiser of ``max(R0(t), R1(t))`` and satisfies ``R0(t̂) = R1(t̂)``
    (Lemma B.2). Requires ``mu0 < mu1`` and positive scales (``sigma0 < sigma1`` is not needed
    here). Arguments broadcast.
    """
    mu0, mu1 = _check_means(mu0, mu1)
    sigma0, sigma1 = _check_scales(sigma0, sigma1, strict=False)
    return _scalar_or_array((mu0 * sigma1 + mu1 * sigma0) / (sigma0 + sigma1))


def optimal_prior_ratio(sigma0, sigma1):
    """The class-prior ratio ``phi0/phi1 = sigma0/sigma1`` for which ``t*(phi0/phi1) = t̂`` (Eq. 5).

    Pruning randomly within classes so that the kept counts satisfy ``n0/n1 = sigma0/sigma1``
    (i.e. ``d0 N0 sigma1 = d1 N1 sigma0``) makes the average-risk minimiser worst-class optimal.
    """
    sigma0, sigma1 = _check_scales(sigma0, sigma1, strict=False)
    return _scalar_or_array(sigma0 / sigma1)


def error_based_density_ratio(mu0, mu1, sigma0, sigma1, prior_ratio):
    """DRoP's class-density ratio ``d0/d1 = R0[t*]/R1[t*]`` with ``t* = t*(prior_ratio)``.

    DRoP keeps class ``k`` with density proportional to its error, so it replaces Eq. 5's
    condition ``d0 N0 sigma1 = d1 N1 sigma0`` by ``d0 R1[t*(N0/N1)] = d1 R0[t*(N0/N1)]``
    (Section 3). Compare with :func:`variance_based_density_ratio` (Figure 4a). Computed from
    log-risks, so it stays finite when both risks underflow. Arguments broadcast; raises ``ValueError`` where ``t*`` is invalid (see
    :func:`average_optimal_threshold`).
    """
    t_star = average_optimal_threshold(mu0, mu1, sigma0, sigma1, prior_ratio)
    # ratio of logs: both risks underflow to 0 for well-separated classes (e.g. sigma ~ 1e-2)
    log_risk0 = log_ndtr((np.asarray(mu0) - t_star) / sigma0)
    log_risk1 = log_ndtr((t_star - np.asarray(mu1)) / sigma1)
    return _scalar_or_array(np.exp(log_risk0 - log_risk1))


def variance_based_density_ratio(sigma0, sigma1, prior_ratio):
    """The worst-class-optimal class-density ratio ``d0/d1 = (sigma0/sigma1) / (phi0/phi1)``.

    This is Eq. 5's condition ``d0 phi0 sigma1 = d1 phi1 sigma0`` solved for ``d0/d1``.
    """
    prior_ratio = _positive("prior_ratio", prior_ratio)
    return _scalar_or_array(np.asarray(optimal_prior_ratio(sigma0, sigma1)) / prior_ratio)


@dataclass(frozen=True)
class RatioAgreement:
    """How well two arrays of class-density ratios agree (Figure 4a; :func:`ratio_agreement`).

    ``low``/``high``: the plotted range (both axes, log scale); ``outside``: draws with a ratio
    beyond it (a ratio that underflowed to 0 included); ``near``: draws whose ratios are within
    the factor of each other; ``below``: draws whose error-based ratio is the smaller.
    """

    low: float
    high: float
    outside: int
    near: int
    below: int


def ratio_agreement(variance_based, error_based, *, factor: float = 2.0, percentiles=(1.0, 99.0),
                    margin_decades: float = 0.5) -> RatioAgreement:
    """Figure 4a's summary of ``variance_based`` against ``error_based`` class-density ratios
    (equal-length 1-D arrays, one value per draw; variance-based ratios positive). The plotted
    range spans the ``percentiles`` of both ratios' log10, widened by ``margin_decades`` on each
    side. An error-based ratio of exactly 0 (``R_0[t*]`` below the smallest float, e.g. for a very
    narrow class 0) has no logarithm: it is left out of the range and of ``near``, and counted
    ``outside`` (no log of 0 is taken, so no warning is printed)."""
    v = np.asarray(variance_based, dtype=np.float64)
    e = np.asarray(error_based, dtype=np.float64)
    if v.ndim != 1 or v.shape != e.shape or v.size == 0:
        raise ValueError(f"variance_based and error_based must be non-empty 1-D arrays of one length, got "
                         f"shapes {v.shape} and {e.shape}")
    if not (np.all(np.isfinite(v)) and np.all(v > 0) and np.all(np.isfinite(e)) and np.all(e >= 0)):
        raise ValueError("variance-based ratios must be finite and positive, error-based ones finite and >= 0")
    if not factor > 1:
        raise ValueError(f"factor={factor!r} must be > 1")
    positive = e > 0
    logs = np.log10(np.concatenate([v, e[positive]]))
    low, high = 10.0 ** (np.percentile(logs, percentiles) + np.array([-margin_decades, margin_decades]))
    outside = int(np.sum((v < low) | (v > high) | (e < low) | (e > high)))
    near = int(np.sum(np.abs(np.log10(e[positive] / v[positive])) <= np.log10(factor)))
    return RatioAgreement(float(low), float(high), outside, near, int(np.sum(e < v)))


def sample_figure4a_parameters(n_draws: int, rng, *, sigma_range=(1e-2, 1e2),
                               spacing: str = "uniform") -> tuple:
    """Draw Figure 4a's parameters: ``(sigma0, sigma1, phi0)``, three float64 arrays ``[n_draws]``.

    Two scales are drawn from ``sigma_range`` and sorted so ``sigma0 < sigma1``: uniformly
    (``spacing="uniform"``, the paper's caption: "drawn uniformly from [10^-2, 10^2]") or
    log-uniformly (``"log"``: every decade equally often); ``phi0 ~ U(0, 1)``. ``rng`` is a
    ``numpy.random.Generator`` or an integer seed.
    """
    if spacing not in ("uniform", "log"):
        raise ValueError(f"spacing={spacing!r} must be 'uniform' or 'log'")
    if not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
        raise ValueError(f"n_draws={n_draws!r} must be a positive integer")
    low, high = (float(v) for v in sigma_range)
    if not 0 < low < high < np.inf:
        raise ValueError(f"sigma_range={sigma_range!r} must satisfy 0 < low < high < inf")
    rng = np.random.default_rng(rng)
    if spacing == "log":
        scales = np.exp(rng.uniform(np.log(low), np.log(high), size=(n_draws, 2)))
    else:
        scales = rng.uniform(low, high, size=(n_draws, 2))
    scales.sort(axis=1)
    phi0 = rng.uniform(0.0, 1.0, size=n_draws)
    return scales[:, 0], scales[:, 1], phi0


# --------------------------------------------------------------------------------------------
# samples, empirical risk minimisation and pruning


def sample_mixture(n: int, mu0, mu1, sigma0, sigma1, phi0, rng) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` i.i.d. points ``(x, y)`` from the mixture.

    Labels are i.i.d. with ``P(y = 0) = phi0`` (so class sizes are binomial), and
    ``x | y ~ N(mu_y, sigma_y²)``. Returns ``x`` float64 ``[n]`` and ``y`` int64 ``[n]``.
    ``rng`` is a ``numpy.random.Generator`` or an integer seed.
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n={n!r} must be a non-negative integer")
    mu0, mu1 = float(_finite("mu0", mu0)), float(_finite("mu1", mu1))
    sigma0, sigma1 = (float(v) for v in _check_scales(sigma0, sigma1, strict=False))
    phi0 = float(_check_phi0(phi0))
    rng = np.random.default_rng(rng)
    y = (rng.random(n) >= phi0).astype(np.int64)
    noise = rng.standard_normal(n)
    x = np.where(y == 0, mu0 + sigma0 * noise, mu1 + sigma1 * noise)
    return x, y


def _check_sample(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x must be a non-empty 1-D array, got shape {x.shape}")
    if y.shape != x.shape:
        raise ValueError(f"y has shape {y.shape}, x has shape {x.shape}: they must match")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must contain only the labels 0 and 1")
    return x, y.astype(np.int64)


def empirical_risk(t, x, y) -> float:
    """Fraction of ``(x, y)`` misclassified by ``1{x > t}`` (``t`` a float, ``±inf`` allowed)."""
    x, y = _check_sample(x, y)
    return float(np.mean((x > t).astype(np.int64) != y))


def empirical_risk_minimizer(x, y) -> float:
    """Exact minimiser of the empirical 0-1 risk of ``1{x > t}`` over ``t in R ∪ {±inf}``.

    ``x`` float ``[n]``, ``y`` in {0, 1} ``[n]``, ``n >= 1``. O(n log n): sort, group equal
    values, and count with cumulative sums the errors of every threshold position (below all
    points, between consecutive distinct values, above all points).

    Returns the midpoint of the optimal gap between consecutive distinct values ``a < b`` (``a``
    itself if ``a`` and ``b`` are adjacent floats, so the rule still separates them), ``-inf`` if
    the best rule predicts 1 everywhere and ``+inf`` if it predicts 0 everywhere.

    Ties: points with equal ``x`` cannot be separated by a threshold, so only gaps between
    distinct values are candidates. If several positions attain the minimal number of errors,
    the middle one in increasing order is returned (the lower middle one when their number is
    even), which avoids a systematic left or right bias when ERM thresholds are averaged.
    """
    x, y = _check_sample(x, y)
    values, inverse = np.unique(x, return_inverse=True)
    ones = np.bincount(inverse, weights=y, minlength=values.size)
    zeros = np.bincount(inverse, minlength=values.size) - ones
    # errors[j]: threshold just right of the j-th distinct value (j = 0: below every point).
    ones_left = np.concatenate(([0.0], np.cumsum(ones)))
    zeros_left = np.concatenate(([0.0], np.cumsum(zeros)))
    errors = (zeros.sum() - zeros_left) + ones_left
    best = np.flatnonzero(errors == errors.min())
    j = int(best[(best.size - 1) // 2])
    if j == 0:
        return -np.inf
    if j == values.size:
        return np.inf
    low, high = values[j - 1], values[j]
    middle = low / 2 + high / 2
    return float(middle if low <= middle < high else low)


def margin_prune(x, y, density: float, class_means, *, seed: int = 0) -> np.ndarray:
    """Supervised SSP of Section 3: globally remove the points closest to their own class mean.

    Every point is scored by ``|x_i - class_means[y_i]|``; the ``n - round(density·n)`` smallest
    distances are removed, irrespective of class -- i.e. everything within the margin ``M`` of its
    class mean, with ``M`` chosen so that ``round(density·n)`` points remain. ``class_means`` is a
    length-2 sequence ``(m0, m1)`` (the true means in the paper's analysis, Appendix B.3). Ties in
    distance are broken by a random order drawn from ``seed``, never by position.

    Returns the sorted int64 indices of the kept points.
    """
    x, y = _check_sample(x, y)
    density = _check_density(density)
    class_means = _finite("class_means", class_means)
    if class_means.shape != (2,):
        raise ValueError(f"class_means={class_means!r} must hold exactly two means (m0, m1)")
    n_keep = int(round(density * x.size))
    distance = np.abs(x - class_means[y])
    tie_breaker = np.random.default_rng(seed).permutation(x.size)
    order = np.lexsort((tie_breaker, distance))  # ascending distance: closest first
    return np.sort(order[x.size - n_keep :]).astype(np.int64)


def prior_ratio_quotas(class_sizes, prior_ratio: float, density: float) -> np.ndarray:
    """Kept counts ``[n0, n1]`` (int64) with ``n0/n1 ≈ prior_ratio`` and ``n0 + n1 = round(d·N)``.

    ``class_sizes = (N0, N1)``. ``n0 = round(total · r/(1 + r))``; if a class would keep more
    points than it has, it keeps all of them and the other class takes the rest (the ratio is
    then not attained). With ``prior_ratio = sigma0/sigma1`` these are the worst-class-optimal
    quotas of Eq. 5 (Figure 3, left).
    """
    sizes = np.asarray(class_sizes)
    if sizes.shape != (2,) or not np.issubdtype(sizes.dtype, np.integer) or np.any(sizes < 0):
        raise ValueError(f"class_sizes={class_sizes!r} must be two non-negative integers")
    ratio = float(_positive("prior_ratio", prior_ratio))
    density = _check_density(density)
    total = int(round(density * int(sizes.sum())))
    kept0 = int(round(total * ratio / (1 + ratio)))
    kept0 = min(max(kept0, total - int(sizes[1])), int(sizes[0]))
    return np.array([kept0, total - kept0], dtype=np.int64)


def _random_within_classes(y: np.ndarray, kept_counts: np.ndarray, rng) -> np.ndarray:
    """Sorted indices keeping ``kept_counts[k]`` uniformly random points of each class ``k``."""
    kept = [rng.choice(np.flatnonzero(y == k), size=int(c), replace=False) for k, c in enumerate(kept_counts)]
    return np.sort(np.concatenate(kept)).astype(np.int64)


@dataclass(frozen=True)
class GaussianMixture:
    """The two-class mixture of Section 3: means, standard deviations and the prior of class 0."""

    mu0: float = -1.0
    mu1: float = 1.0
    sigma0: float = 0.5
    sigma1: float = 1.0
    phi0: float = 0.5

    def __post_init__(self):
        _check_means(self.mu0, self.mu1)
        _check_scales(self.sigma0, self.sigma1, strict=True)
        _check_phi0(self.phi0)

    @property
    def params(self) -> tuple[float, float, float, float]:
        """``(mu0, mu1, sigma0, sigma1)``, the leading arguments of the module's functions."""
        return (self.mu0, self.mu1, self.sigma0, self.sigma1)

    def sample(self, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """``n`` points, see :func:`sample_mixture`."""
        return sample_mixture(n, *self.params, self.phi0, rng)


#: Pruning strategies of :func:`simulate_pruning` (Figures 3 and 4b).
STRATEGIES: tuple[str, ...] = (
    "none",  # the full dataset
    "random-optimal",  # random within classes, kept counts n0/n1 = sigma0/sigma1 (Eq. 5; Fig. 3 left)
    "ssp",  # margin_prune around the true class means (Fig. 3 middle)
    "random-ssp-quotas",  # random within classes with SSP's kept class counts (Fig. 3 right)
    "random-drop",  # random within classes with DRoP's quotas, recalls 1 - R_k[t*(N0/N1)] (Fig. 4b)
)


@dataclass(frozen=True, eq=False)
class PruningSimulation:
    """Outcome of :func:`simulate_pruning` over ``D`` datasets.

    ``class_sizes`` and ``kept_sizes`` are int64 ``[D, 2]`` (before/after pruning),
    ``thresholds`` float64 ``[D]`` the ERM threshold of each pruned dataset, and ``kept_x`` /
    ``kept_y`` the pruned datasets themselves (``D`` arrays).
    """

    strategy: str
    density: float
    mixture: GaussianMixture
    class_sizes: np.ndarray
    kept_sizes: np.ndarray
    thresholds: np.ndarray
    kept_x: tuple[np.ndarray, ...]
    kept_y: tuple[np.ndarray, ...]

    @property
    def mean_threshold(self) -> float:
        """The average ERM ``T̄ = (1/D) Σ_i T(D_i')`` of Figure 3's caption."""
        return float(np.mean(self.thresholds))


def simulate_pruning(
    mixture: GaussianMixture,
    strategy: str,
    *,
    density: float,
    n_datasets: int = 10,
    n_points: int = 400,
    seed: int | tuple[int, ...] | list[int] = 0,
) -> PruningSimulation:
    """Sample ``n_datasets`` datasets of ``n_points`` each, prune each with ``strategy`` to
    ``round(density·n_points)`` points, and fit the exact ERM threshold to each pruned dataset.

    ``strategy`` is one of :data:`STRATEGIES`. Dataset ``i`` of seed ``s`` is drawn from the
    generator ``default_rng([s, i])``, so every strategy sees the same datasets for the same seed;
    random pruning uses an independent generator ``default_rng([s, i, 1])``. ``seed`` may be a
    list of seeds: then ``n_datasets`` datasets are drawn per seed and the results concatenated
    (``D = n_datasets · len(seed)``).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r} is not one of {', '.join(STRATEGIES)}")
    density = _check_density(density)
    for name, value, minimum in (("n_datasets", n_datasets, 1), ("n_points", n_points, 2)):
        if not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    seeds = [seed] if isinstance(seed, (int, np.integer)) else list(seed)
    if not seeds or not all(isinstance(s, (int, np.integer)) and s >= 0 for s in seeds):
        raise ValueError(f"seed={seed!r} must be a non-negative integer or a non-empty list of them")
    class_sizes, kept_sizes, thresholds, kept_x, kept_y = [], [], [], [], []
    for dataset_seed, i in ((s, i) for s in seeds for i in range(n_datasets)):
        x, y = mixture.sample(n_points, np.random.default_rng([dataset_seed, i]))
        pruning_rng = np.random.default_rng([dataset_seed, i, 1])
        sizes = np.bincount(y, minlength=2).astype(np.int64)
        if strategy == "none":
            keep = np.arange(n_points, dtype=np.int64)
        elif strategy == "ssp":
            keep = margin_prune(x, y, density, (mixture.mu0, mixture.mu1), seed=dataset_seed + i)
        else:
            if strategy == "random-optimal":
                counts = prior_ratio_quotas(sizes, optimal_prior_ratio(mixture.sigma0, mixture.sigma1), density)
            elif strategy == "random-ssp-quotas":
                ssp_keep = margin_prune(x, y, density, (mixture.mu0, mixture.mu1), seed=dataset_seed + i)
                counts = np.bincount(y[ssp_keep], minlength=2)
            else:  # "random-drop"
                from dropkit.quotas import drop_quotas

                t_star = average_optimal_threshold(*mixture.params, sizes[0] / sizes[1])
                risks = np.array(class_risks(t_star, *mixture.params))
                counts = drop_quotas(sizes, 1.0 - risks, density)
            keep = _random_within_classes(y, counts, pruning_rng)
        class_sizes.append(sizes)
        kept_sizes.append(np.bincount(y[keep], minlength=2))
        thresholds.append(empirical_risk_minimizer(x[keep], y[keep]))
        kept_x.append(x[keep])
        kept_y.append(y[keep])
    return PruningSimulation(
        strategy=strategy,
        density=density,
        mixture=mixture,
        class_sizes=np.array(class_sizes, dtype=np.int64),
        kept_sizes=np.array(kept_sizes, dtype=np.int64),
        thresholds=np.array(thresholds, dtype=np.float64),
        kept_x=tuple(kept_x),
        kept_y=tuple(kept_y),
    )


def simulation_table(mixture: GaussianMixture, runs, *, n_datasets: int = 50, n_points: int = 400, seed=0):
    """The simulated datasets behind chapter 01's claims, as a tidy table: for each
    ``(strategy, density)`` of ``runs`` (strategies of :data:`STRATEGIES`; ``"none"`` keeps every
    point) and each of the ``n_datasets`` datasets of :func:`simulate_pruning` (the same datasets
    for every strategy), the ERM threshold, its class risks and worst-class risk (fractions), and
    the mixture's optima ``t_star`` (average risk at the mixture's prior) and ``t_hat`` (worst
    class). Columns: ``strategy``, ``density``, ``seed`` (the dataset's index: datasets are the
    replicates), ``threshold``, ``risk0``, ``risk1``, ``worst_risk``, ``t_star``, ``t_hat``."""
    import pandas as pd

    t_star = float(average_optimal_threshold(*mixture.params, mixture.phi0 / (1 - mixture.phi0)))
    t_hat = float(worst_class_optimal_threshold(*mixture.params))
    rows = []
    for strategy, density in runs:
        simulation = simulate_pruning(mixture, strategy, density=1.0 if strategy == "none" else density,
                                      n_datasets=n_datasets, n_points=n_points, seed=seed)
        risk0, risk1 = (np.asarray(r) for r in class_risks(simulation.thresholds, *mixture.params))
        rows += [{"strategy": strategy, "density": float(simulation.density), "seed": i, "threshold": float(t),
                  "risk0": float(r0), "risk1": float(r1), "worst_risk": float(max(r0, r1)),
                  "t_star": t_star, "t_hat": t_hat}
                 for i, (t, r0, r1) in enumerate(zip(simulation.thresholds, risk0, risk1))]
    return pd.DataFrame(rows)


def figure4a_table(mu0: float, mu1: float, n_draws: int, seed: int = 0):
    """Figure 4a's draws as a tidy table: ``sigma0``, ``sigma1``, ``phi0`` (:func:`sample_figure4a_parameters`),
    whether the draw meets Appendix B.1's conditions (``valid``), and for the valid ones the
    variance-based and error-based class-density ratios ``d0/d1`` (NaN for the others)."""
    import pandas as pd

    sigma0, sigma1, phi0 = sample_figure4a_parameters(n_draws, seed)
    prior_ratio = phi0 / (1 - phi0)
    _, invalid = validity_violations(mu0, mu1, sigma0, sigma1, prior_ratio)
    valid = ~np.asarray(invalid)
    variance_based = np.full(n_draws, np.nan)
    error_based = np.full(n_draws, np.nan)
    variance_based[valid] = variance_based_density_ratio(sigma0[valid], sigma1[valid], prior_ratio[valid])
    error_based[valid] = error_based_density_ratio(mu0, mu1, sigma0[valid], sigma1[valid], prior_ratio[valid])
    return pd.DataFrame({"sigma0": sigma0, "sigma1": sigma1, "phi0": phi0, "valid": valid,
                         "variance_ratio": variance_based, "error_ratio": error_based})
