"""The rules that judge the paper's claims, one per hypothesis type, and the "what we see" tables
of the chapters.

**Evidence.** A claim of the paper is measured as one or more *effects*: per-replicate values
(:class:`Effect`: per seed of the final training, paired by seed when every arm ran with the same
seed; or per simulated dataset in chapter 01), oriented so that a positive value is the paper's
side. Where a hypothesis needs a margin, :class:`Evidence` carries it with where it comes from.

**The rules**, each with two one-sided tests at level ``ALPHA / 2 = 0.025`` (so
that a two-sided 95 % interval decides, as in a two-sided test at 5 %): one whose rejection
supports the paper (``p_holds``), one whose rejection contradicts it (``p_contra``):

* :class:`Superiority` -- the effect is above 0 (paired Student-*t*). **holds** if the 95 %
  interval lies above 0, **contradicted** if below 0.
* :class:`NonInferiority` -- the effect is above ``-margin``. **holds** if the 95 % interval lies
  above ``-margin``, **contradicted** if it lies below ``-margin``.
* :class:`Equivalence` -- the effect lies within ``±margin`` (TOST, two one-sided tests).
  **holds** if the 95 % interval lies inside ``(-margin, margin)``; **contradicted** if it lies
  entirely outside ``[-margin, margin]``. "Keeps", "maintains", "saturates" are equivalence claims,
  never decided by a difference test.
* :class:`Correlation` -- a rank correlation over many points (chapter 01's random mixtures)
  has the paper's sign: Spearman's rho with a Fisher-*z* interval.
* "A beats every B", or one claim at several densities or metrics, is an **intersection-union
  test** (:class:`AllOf`): it holds if every part holds under its rule (no correction needed), is
  contradicted if some part is contradicted (Bonferroni over the parts), else inconclusive. There
  is never a min or max over noisy alternatives.
* :class:`Context` -- a threshold from another setting (e.g. the paper's "< 6 points" on
  CIFAR-100): the interval is shown next to it, never verdicted.
* :class:`EveryReplicate` -- a yes/no observation per replicate (e.g. "removes entire classes"):
  holds if every replicate shows it, contradicted if none does; a count, not a test.
* :class:`Exact` -- a deterministic computation compared with the paper's number at the paper's
  precision.
* :class:`NotTestable` -- a statement this book cannot test, with the reason.

**Multiplicity.** :func:`holm` applies Holm's step-down correction to the *p*-values
``p = min(1, 2 min(p_holds, p_contra))`` of the statistical rows of a scorecard (the family: every
row decided by a test); a claim keeps its verdict after correction only if its *p* survives.

**Power.** Every decision reports the minimum detectable effect at its ``n`` (80 % power, the
same test) and the ``n`` the observed mean and spread would need for 80 % power
(:attr:`Decision.mde`, :attr:`Decision.n_needed`), so an underpowered row can be told from one
whose effect, if any, is below the MDE.

**The tables.** Every number of the "what we see" tables is computed from the tidy results table
(one row per run, see :func:`dropkit.runner.run`) of **one** setting (a model-dataset pair and its
training, the ``setting`` column); split a larger table with :func:`dropkit.tables.split_setups`. Curves are named as in the figures
(:func:`dropkit.curves.method_label`). Metrics are averaged over seeds; a metric's column ``X`` comes
with ``X sd``, its standard deviation over the seeds (ddof 1, NaN for one seed), and ``seeds``
counts them (:func:`dropkit.publish.markdown_table` shows ``mean ± sd`` and ``n``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dropkit.curves import FULL_DATASET, labelled
from dropkit.tables import (
    check_one_setting,
    class_density_correlation,
    full_dataset_metric,
    metric_by_density,
    min_samples_per_class,
)

__all__ = [
    "DROP_LABEL",
    "VERDICTS",
    "ALPHA",
    "POWER",
    "Effect",
    "Evidence",
    "Decision",
    "Superiority",
    "NonInferiority",
    "Equivalence",
    "Correlation",
    "AllOf",
    "Context",
    "EveryReplicate",
    "Exact",
    "NotTestable",
    "t_interval",
    "holm",
    "paired_effect",
    "reference_density",
    "metrics_at_density",
    "peak_densities",
    "bias_table",
    "drop_table",
    "curve_metrics",
    "provenance_sentence",
]

DROP_LABEL = "Random+DRoP"
#: The verdicts of the statistical rules.
VERDICTS: tuple[str, ...] = ("holds", "contradicted", "inconclusive")
#: Verdicts of rows that are not statistical tests.
CONTEXT, NOT_TESTABLE = "context", "not testable here"
#: Family-wise error rate; each one-sided test runs at ALPHA / 2.
ALPHA = 0.05
#: Power at which minimum detectable effects and needed sample sizes are stated.
POWER = 0.8
#: Largest n searched for :attr:`Decision.n_needed`.
MAX_N = 10_000
LEVEL = 1 - ALPHA


def t_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """``(mean, low, high)`` of ``values`` (per-replicate effects, ``[n]``) with the two-sided
    Student-t interval at ``level``: ``mean ± t_{(1+level)/2, n-1} · s / sqrt(n)``; ``low``/``high``
    are NaN for fewer than 2 values. Raises ``ValueError`` for no value or a non-finite one."""
    from scipy import stats

    x = _values(values)
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def _values(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"values must be a non-empty 1-D array of finite numbers, got {values!r}")
    return x


@dataclass(frozen=True)
class Effect:
    """Per-replicate values of one effect, oriented so that > 0 is the paper's side.

    values: the effect per replicate (``[n]``, in ``unit``); seeds: the replicates' seeds (or
    dataset indices), same order. unit: ``"pp"`` (percentage points), ``"r"`` (correlation),
    ``"samples"``, ``"pp per unit density"`` (a slope), ``"x"`` (a threshold on the input axis of
    chapter 01). measure: what was measured, in words, with the densities used. replicate: what a
    value is one of (``"seed"``, or ``"dataset"`` for the simulated datasets of chapter 01).
    """

    values: tuple[float, ...]
    seeds: tuple[int, ...]
    unit: str
    measure: str
    replicate: str = "seed"

    def __post_init__(self) -> None:
        if len(self.values) != len(self.seeds) or not self.values:
            raise ValueError(f"an effect needs one value per seed, got {len(self.values)} values "
                             f"for seeds {self.seeds}")
        _values(self.values)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def interval(self) -> tuple[float, float, float]:
        """``(mean, low, high)``: :func:`t_interval` of the per-replicate values."""
        return t_interval(self.values)

    @property
    def sd(self) -> float:
        """Sample standard deviation of the values (NaN for one value)."""
        return float(np.std(self.values, ddof=1)) if self.n > 1 else float("nan")


def paired_effect(arms, combine, unit: str, measure: str, replicate: str = "seed") -> Effect:
    """An :class:`Effect` from per-seed values of several arms, paired by seed.

    Args:
        arms: a sequence of ``{seed: value}`` mappings (one per arm); only the seeds present in
            every arm are used (a seed missing from one arm has no pair).
        combine: ``combine(*values) -> float``, the effect of one seed from the arms' values in
            ``arms`` order (e.g. ``lambda a, b: a - b``).
        unit, measure, replicate: as in :class:`Effect`.
    """
    arms = [dict(arm) for arm in arms]
    seeds = sorted(set.intersection(*(set(arm) for arm in arms))) if arms else []
    if not seeds:
        raise ValueError(f"the arms share no seed ({[sorted(arm) for arm in arms]}): {measure}")
    return Effect(tuple(float(combine(*(arm[s] for arm in arms))) for s in seeds),
                  tuple(int(s) for s in seeds), unit, measure, replicate)


@dataclass(frozen=True)
class Evidence:
    """What a claim measured: ``parts`` maps a name (e.g. the B of "A beats every B", or a density)
    to its :class:`Effect` (one part: a single comparison); ``margin`` (in the effects' unit) and
    ``margin_source`` (where it comes from, in words) for the rules that need one; ``points`` the
    ``(x, y)`` arrays of a :class:`Correlation`; ``computed`` the numbers of an :class:`Exact` or
    :class:`EveryReplicate` rule (``{name: value}``)."""

    parts: Mapping[str, Effect] = field(default_factory=dict)
    margin: float | None = None
    margin_source: str = ""
    points: tuple | None = None
    computed: Mapping[str, float] = field(default_factory=dict)

    @property
    def replicate(self) -> str:
        if self.points is not None:
            return "point"
        return next(iter(self.parts.values())).replicate if self.parts else "seed"

    @property
    def unit(self) -> str:
        if self.points is not None:
            return "r"
        return next(iter(self.parts.values())).unit if self.parts else ""

    def measure(self) -> str:
        """What was measured, in words (the parts' measures, each once)."""
        return "; ".join(dict.fromkeys(e.measure for e in self.parts.values()))


@dataclass(frozen=True)
class Decision:
    """A rule's outcome on its evidence.

    verdict: one of :data:`VERDICTS`, or ``"context"`` / ``"not testable here"``. mean, low,
    high: the estimate and its 95 % interval for the deciding part (the binding part of an
    intersection-union test: the one farthest from holding), NaN where there is none. p_holds,
    p_contra: the one-sided p-values (NaN for rows that are not tests); p: ``min(1, 2 min(...))``,
    the p-value that enters Holm's correction. mde: the minimum detectable effect at ``n`` with
    80 % power (for an equivalence, the smallest margin provable at ``n`` if the truth were 0).
    n_needed: replicates needed for 80 % power at the observed mean and spread (None: never, e.g.
    a mean of 0 for a superiority test; 0: not applicable). part: the deciding part's name.
    """

    verdict: str
    n: int = 0
    mean: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    p_holds: float = float("nan")
    p_contra: float = float("nan")
    mde: float = float("nan")
    n_needed: int | None = 0
    part: str = ""

    @property
    def p(self) -> float:
        if math.isnan(self.p_holds) or math.isnan(self.p_contra):
            return float("nan")
        return min(1.0, 2 * min(self.p_holds, self.p_contra))

    @property
    def is_test(self) -> bool:
        return not math.isnan(self.p)


def _one_sample(values, shift: float = 0.0):
    """``(mean, se, df)`` of ``values - shift``."""
    x = _values(values)
    if x.size < 2:
        raise ValueError(f"a t-test needs at least 2 replicates, got {x.size}")
    return float(x.mean() - shift), float(x.std(ddof=1) / np.sqrt(x.size)), x.size - 1


def _p_above(values, bound: float) -> float:
    """One-sided p of H0: mean <= bound (small when the values lie above ``bound``)."""
    from scipy import stats

    mean, se, df = _one_sample(values, bound)
    if se == 0:
        return 0.0 if mean > 0 else 1.0
    return float(stats.t.sf(mean / se, df))


def _p_below(values, bound: float) -> float:
    """One-sided p of H0: mean >= bound."""
    return _p_above([-v for v in values], -bound)


def _decide(p_holds: float, p_contra: float) -> str:
    if p_holds < ALPHA / 2:
        return "holds"
    if p_contra < ALPHA / 2:
        return "contradicted"
    return "inconclusive"


def _power_one_sided(shift: float, sd: float, n: int) -> float:
    """Power of the one-sided t-test at level ALPHA/2 when the true mean exceeds its bound by
    ``shift`` (noncentral t)."""
    from scipy import stats

    if n < 2:
        return 0.0
    if sd == 0:
        return 1.0 if shift > 0 else 0.0
    critical = stats.t.ppf(1 - ALPHA / 2, n - 1)
    return float(stats.nct.sf(critical, n - 1, shift * np.sqrt(n) / sd))


def _mde_one_sided(sd: float, n: int) -> float:
    """Smallest true distance from the bound detected with :data:`POWER` by a one-sided t-test
    at ALPHA/2 with ``n`` replicates of standard deviation ``sd``."""
    from scipy import optimize

    if n < 2 or not np.isfinite(sd):
        return float("nan")
    if sd == 0:
        return 0.0
    high = sd * 50
    return float(optimize.brentq(lambda d: _power_one_sided(d, sd, n) - POWER, 0.0, high))


def _n_needed(power_at) -> int | None:
    """Smallest n in [2, MAX_N] with ``power_at(n) >= POWER`` (power grows with n), else None."""
    if power_at(MAX_N) < POWER:
        return None
    low, high = 2, MAX_N
    if power_at(low) >= POWER:
        return low
    while high - low > 1:
        middle = (low + high) // 2
        if power_at(middle) >= POWER:
            high = middle
        else:
            low = middle
    return high


def _tost_power(mean: float, sd: float, n: int, margin: float) -> float:
    """Approximate power of TOST (both one-sided tests at ALPHA/2) at true mean ``mean``:
    ``P(lower test) + P(upper test) - 1`` (the usual approximation, exact as n grows)."""
    if abs(mean) >= margin:
        return 0.0
    return max(0.0, _power_one_sided(mean + margin, sd, n) + _power_one_sided(margin - mean, sd, n) - 1)


class Rule:
    """A hypothesis type: :meth:`decide` turns :class:`Evidence` into a :class:`Decision`."""

    name = "rule"
    needs_margin = False

    def describe(self, evidence: Evidence | None = None) -> str:
        return self.name

    def decide(self, evidence: Evidence, *, power: bool = True) -> Decision:  # pragma: no cover - abstract
        raise NotImplementedError

    def _single(self, evidence: Evidence) -> tuple[str, Effect]:
        if len(evidence.parts) != 1:
            raise ValueError(f"{self.name} decides one effect, got {len(evidence.parts)} "
                             f"({', '.join(evidence.parts)}); use AllOf for several")
        return next(iter(evidence.parts.items()))

    def _margin(self, evidence: Evidence) -> float:
        margin = evidence.margin
        if margin is None or not np.isfinite(margin) or margin <= 0:
            raise ValueError(f"{self.name} needs a positive finite margin, got {margin!r}")
        return float(margin)


class Superiority(Rule):
    """The effect is above 0: paired Student-t, holds if the 95 % interval lies above 0,
    contradicted if below."""

    name = "superiority"

    def describe(self, evidence=None) -> str:
        return "superiority (> 0, paired t)"

    def decide(self, evidence: Evidence, *, power: bool = True) -> Decision:
        part, effect = self._single(evidence)
        return _shifted(effect, 0.0, part, power)


def _shifted(effect: Effect, bound: float, part: str, power: bool = True) -> Decision:
    """Superiority of ``effect`` over ``bound`` (``bound = -margin``: non-inferiority);
    ``power``: also compute the MDE and the n needed (slower)."""
    values = effect.values
    mean, low, high = effect.interval
    if effect.n < 2:
        return Decision("inconclusive", effect.n, mean, low, high, part=part, n_needed=None)
    p_holds, p_contra = _p_above(values, bound), _p_below(values, bound)
    if not power:
        return Decision(_decide(p_holds, p_contra), effect.n, mean, low, high, p_holds, p_contra, part=part)
    sd = effect.sd
    distance = abs(mean - bound)
    return Decision(_decide(p_holds, p_contra), effect.n, mean, low, high, p_holds, p_contra,
                    _mde_one_sided(sd, effect.n),
                    _n_needed(lambda n: _power_one_sided(distance, sd, n)) if distance > 0 else None, part)


def _margin_text(evidence: Evidence | None) -> str:
    """`` 1.2 pp``: the evidence's margin with its unit, or empty."""
    return "" if evidence is None or evidence.margin is None else f" {evidence.margin:.2g} {evidence.unit}"


class NonInferiority(Rule):
    """The effect is above ``-margin``: holds if the 95 % interval lies above ``-margin``,
    contradicted if it lies below ``-margin``. The MDE is the distance above ``-margin``."""

    name = "non-inferiority"
    needs_margin = True

    def describe(self, evidence=None) -> str:
        return f"non-inferiority (> -margin{_margin_text(evidence)})"

    def decide(self, evidence: Evidence, *, power: bool = True) -> Decision:
        part, effect = self._single(evidence)
        return _shifted(effect, -self._margin(evidence), part, power)


class Equivalence(Rule):
    """The effect lies within ``±margin`` (TOST): holds if the 95 % interval lies inside
    ``(-margin, margin)``, contradicted if it lies entirely outside ``[-margin, margin]``. The MDE
    is the smallest margin provable at ``n`` (80 % power) if the true effect were 0."""

    name = "equivalence"
    needs_margin = True

    def describe(self, evidence=None) -> str:
        return f"equivalence (TOST, ±margin{_margin_text(evidence)})"

    def decide(self, evidence: Evidence, *, power: bool = True) -> Decision:
        part, effect = self._single(evidence)
        margin = self._margin(evidence)
        mean, low, high = effect.interval
        if effect.n < 2:
            return Decision("inconclusive", effect.n, mean, low, high, part=part, n_needed=None)
        values = effect.values
        p_holds = max(_p_above(values, -margin), _p_below(values, margin))
        p_contra = min(_p_above(values, margin), _p_below(values, -margin))
        if not power:
            return Decision(_decide(p_holds, p_contra), effect.n, mean, low, high, p_holds, p_contra, part=part)
        sd = effect.sd
        from scipy import optimize

        def tost_at_zero(m):
            return _tost_power(0.0, sd, effect.n, m) - POWER

        mde = float("nan") if sd == 0 else float(optimize.brentq(tost_at_zero, 1e-12, sd * 100))
        needed = _n_needed(lambda n: _tost_power(mean, sd, n, margin))
        return Decision(_decide(p_holds, p_contra), effect.n, mean, low, high, p_holds, p_contra, mde,
                        needed, part)


class Correlation(Rule):
    """Spearman's rank correlation of ``evidence.points = (x, y)`` has the paper's sign
    (``sign=+1``: positive). Interval and one-sided tests on Fisher's z with the Fieller et al.
    standard error ``sqrt(1.06 / (n - 3))``; the mean is rho times ``sign``."""

    name = "correlation"

    def __init__(self, sign: int = 1):
        if sign not in (1, -1):
            raise ValueError(f"sign must be +1 or -1, got {sign!r}")
        self.sign = sign

    def describe(self, evidence=None) -> str:
        return f"trend (Spearman rho {'> 0' if self.sign > 0 else '< 0'})"

    def decide(self, evidence: Evidence, *, power: bool = True) -> Decision:
        from scipy import stats

        if evidence.points is None:
            raise ValueError("a correlation needs evidence.points = (x, y)")
        x, y = (np.asarray(v, dtype=np.float64) for v in evidence.points)
        if x.shape != y.shape or x.ndim != 1 or x.size < 4 or not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("a correlation needs two 1-D finite arrays of the same length >= 4")
        rho = float(stats.spearmanr(x, y).statistic) * self.sign
        se = math.sqrt(1.06 / (x.size - 3))
        z = math.atanh(max(min(rho, 1 - 1e-15), -1 + 1e-15))
        half = stats.norm.ppf(1 - ALPHA / 2) * se
        p_holds, p_contra = float(stats.norm.sf(z / se)), float(stats.norm.cdf(z / se))
        mde = math.tanh((stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)) * se)

        def power(n):
            return float(stats.norm.sf(stats.norm.ppf(1 - ALPHA / 2) - abs(z) / math.sqrt(1.06 / max(n - 3, 1))))
        needed = _n_needed(power) if rho != 0 else None
        return Decision(_decide(p_holds, p_contra), int(x.size), rho, math.tanh(z - half), math.tanh(z + half),
                        p_holds, p_contra, mde, needed)


class AllOf(Rule):
    """Intersection-union test: ``rule`` applied to every part of the evidence (e.g. every B of
    "A beats every B", or every density of a claim "across sparsities"). Holds if every part
    holds (an IUT needs no correction), contradicted if some part is contradicted with
    Bonferroni over the ``k`` parts (``p_contra = min(1, k · min_i p_contra_i)``); else
    inconclusive. The reported part is the binding one (largest ``p_holds``)."""

    def __init__(self, rule: Rule):
        if isinstance(rule, (AllOf, Context, EveryReplicate, Exact, NotTestable, Correlation)):
            raise ValueError(f"AllOf takes a t-test rule, got {type(rule).__name__}")
        self.rule = rule
        self.name = f"every part: {rule.name}"
        self.needs_margin = rule.needs_margin

    def describe(self, evidence=None) -> str:
        k = "" if evidence is None else f" {len(evidence.parts)}"
        return f"intersection-union over{k} parts, each {self.rule.describe(evidence)}"

    def decide(self, evidence: Evidence, *, power: bool = True) -> Decision:
        if not evidence.parts:
            raise ValueError("AllOf needs at least one part")
        decisions = {name: self.rule.decide(Evidence({name: effect}, evidence.margin, evidence.margin_source),
                                            power=power)
                     for name, effect in evidence.parts.items()}
        binding = max(decisions.values(), key=lambda d: (np.nan_to_num(d.p_holds, nan=2.0), d.part))
        if any(math.isnan(d.p_holds) for d in decisions.values()):
            return Decision("inconclusive", binding.n, binding.mean, binding.low, binding.high,
                            mde=binding.mde, n_needed=None, part=binding.part)
        p_holds = max(d.p_holds for d in decisions.values())
        p_contra = min(1.0, len(decisions) * min(d.p_contra for d in decisions.values()))
        return Decision(_decide(p_holds, p_contra), binding.n, binding.mean, binding.low, binding.high,
                        p_holds, p_contra, binding.mde, binding.n_needed, binding.part)


class Context(Rule):
    """A threshold from another setting (``threshold``, in words): the estimate and its interval
    are shown next to it, never verdicted."""

    name = "context"

    def __init__(self, threshold: str):
        self.threshold = threshold

    def describe(self, evidence=None) -> str:
        return f"context only (the paper's threshold {self.threshold} is another setting's)"

    def decide(self, evidence: Evidence, *, power: bool = True) -> Decision:
        part, effect = self._single(evidence)
        mean, low, high = effect.interval
        return Decision(CONTEXT, effect.n, mean, low, high, part=part)


class EveryReplicate(Rule):
    """A yes/no observation per replicate (``evidence.computed``: ``{replicate: 1.0 or 0.0}``):
    holds if every replicate shows it, contradicted if none does, else inconclusive (a count,
    not a test: no p-value)."""

    name = "observation"

    def describe(self, evidence=None) -> str:
        return "observation in every replicate (a count, not a test)"

    def decide(self, evidence: Evidence, *, power: bool = True) -> Decision:
        flags = np.asarray(list(evidence.computed.values()), dtype=np.float64)
        if flags.size == 0 or not np.isin(flags, (0.0, 1.0)).all():
            raise ValueError("an observation needs one 0/1 flag per replicate")
        seen = float(flags.mean())
        verdict = "holds" if seen == 1 else "contradicted" if seen == 0 else "inconclusive"
        return Decision(verdict, int(flags.size), seen)


class Exact(Rule):
    """A deterministic computation (``evidence.computed``) against the paper's numbers
    (``paper``: ``{name: value}``) rounded to ``decimals``: holds if every computed value rounds to
    the paper's, contradicted otherwise."""

    name = "exact"

    def __init__(self, paper: Mapping[str, float], decimals: int):
        self.paper = dict(paper)
        self.decimals = decimals

    def describe(self, evidence=None) -> str:
        return f"exact computation (paper's {self.decimals}-decimal rounding)"

    def decide(self, evidence: Evidence, *, power: bool = True) -> Decision:
        missing = set(self.paper) - set(evidence.computed)
        if missing:
            raise ValueError(f"computed values missing for {sorted(missing)}")
        match = all(round(float(evidence.computed[k]), self.decimals) == round(v, self.decimals)
                    for k, v in self.paper.items())
        return Decision("holds" if match else "contradicted", 1)


class NotTestable(Rule):
    """A statement of the paper that this book cannot test; ``reason`` says why."""

    name = "not testable"

    def __init__(self, reason: str):
        self.reason = reason

    def describe(self, evidence=None) -> str:
        return "not testable here"

    def decide(self, evidence: Evidence, *, power: bool = True) -> Decision:
        return Decision(NOT_TESTABLE)


def holm(p_values, alpha: float = ALPHA) -> np.ndarray:
    """Holm's step-down correction: a boolean array, True where ``p_values[i]`` is rejected at
    family-wise level ``alpha`` (NaN entries are not part of the family and never rejected)."""
    p = np.asarray(p_values, dtype=np.float64)
    rejected = np.zeros(p.shape, dtype=bool)
    family = np.flatnonzero(~np.isnan(p))
    m = family.size
    for rank, index in enumerate(family[np.argsort(p[family], kind="stable")]):
        if p[index] > alpha / (m - rank):
            break
        rejected[index] = True
    return rejected


_SUMMARY = {
    "test_accuracy": "accuracy (%)",
    "test_worst_class": "worst-class (%)",
    "test_gap": "max-min gap (%)",
    "test_std": "std (%)",
}


def _frame(frame) -> pd.DataFrame:
    frame = labelled(frame)
    try:
        check_one_setting(frame)
    except ValueError as error:
        raise ValueError(f"frame must hold exactly one model-dataset pair (setting): {error}") from None
    return frame


def _densities(frame) -> list[float]:
    return sorted({float(d) for d in frame.loc[frame["protocol"] != "none", "density"]})


def reference_density(frame, target: float = 0.5) -> float:
    """The pruned density present in ``frame`` closest to ``target`` (the larger one on a tie)."""
    densities = _densities(_frame(frame))
    if not densities:
        raise ValueError("frame holds no pruned runs")
    return min(densities, key=lambda d: (abs(d - target), -d))


def _check_density(frame, density: float) -> float:
    present = _densities(frame)
    match = [d for d in present if np.isclose(d, density)]
    if not match:
        raise ValueError(f"density={density!r} has no pruned runs; densities present: {present}")
    return match[0]


def _curve_order(frame) -> list[str]:
    return list(dict.fromkeys(frame.loc[frame["protocol"] != "none", "label"]))


def metrics_at_density(frame, density: float, metrics=tuple(_SUMMARY)) -> pd.DataFrame:
    """Mean and standard deviation over seeds of ``metrics`` at ``density`` for every pruned
    curve, and for the full dataset (first row). Index: curve label; values in percent (columns
    ``X`` and ``X sd`` per metric); column ``seeds``."""
    frame = _frame(frame)
    density = _check_density(frame, density)
    rows = {}
    full = {m: full_dataset_metric(frame, m) for m in metrics}
    if all(v is not None for v in full.values()):
        rows[FULL_DATASET] = {}
        for m in metrics:
            rows[FULL_DATASET] |= {_SUMMARY.get(m, m): 100 * full[m]["mean"], f"{_SUMMARY.get(m, m)} sd": 100 * full[m]["sd"]}
        rows[FULL_DATASET]["seeds"] = next(iter(full.values()))["seeds"]
    tables = {m: metric_by_density(frame, m) for m in metrics}
    for label in _curve_order(frame):
        entry = {}
        for metric, table in tables.items():
            hit = table[(table["label"] == label) & np.isclose(table["density"], density)]
            if hit.empty:
                break
            entry[_SUMMARY.get(metric, metric)] = 100 * float(hit["mean"].iloc[0])
            entry[f"{_SUMMARY.get(metric, metric)} sd"] = 100 * float(hit["sd"].iloc[0])
            entry["seeds"] = int(hit["seeds"].iloc[0])
        else:
            rows[label] = entry
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "curve"
    return table


def peak_densities(frame, metric: str = "test_worst_class") -> pd.DataFrame:
    """For each pruned curve, the density at which the seed-mean of ``metric`` is highest (the
    largest such density on a tie) and that value in percent. Index: curve label."""
    frame = _frame(frame)
    table = metric_by_density(frame, metric)
    rows = {}
    for label in _curve_order(frame):
        curve = table[table["label"] == label].sort_values("density")
        best = curve["mean"].to_numpy()
        at = int(np.flatnonzero(best == best.max())[-1])
        rows[label] = {"peak density": float(curve["density"].iloc[at]), "peak value (%)": 100 * float(best[at])}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "curve"
    return table


def _full(frame, metric: str) -> float:
    value = full_dataset_metric(frame, metric)
    if value is None:
        raise ValueError("frame holds no full-dataset (protocol 'none') runs")
    return value["mean"]


def _correlations(frame, labels) -> dict[str, float]:
    return {label: class_density_correlation(frame, label)[0] for label in labels}


def bias_table(frame, density: float) -> pd.DataFrame:
    """Chapter 02's table: one row per pruned method (and the full dataset) with, at ``density``,
    accuracy and worst-class accuracy (mean and sd over seeds, percent), the *extra* worst-class
    drop (percentage points: the worst-class drop from the full dataset minus the accuracy drop,
    of the seed means; positive when pruning widens the distance between average and worst
    class), the density where worst-class accuracy peaks, the mean class-accuracy/class-density
    correlation and the minimum samples per class at the lowest density. (The drops themselves
    are the differences to the full dataset's row.)"""
    frame = _frame(frame)
    table = metrics_at_density(frame, density, ("test_accuracy", "test_worst_class"))
    full_acc, full_worst = 100 * _full(frame, "test_accuracy"), 100 * _full(frame, "test_worst_class")
    table["extra worst-class drop (pp)"] = (full_worst - table["worst-class (%)"]) - (full_acc - table["accuracy (%)"])
    peaks = peak_densities(frame)
    table["worst-class peaks at d"] = peaks["peak density"]
    labels = _curve_order(frame)
    table["corr(class acc, class density)"] = pd.Series(_correlations(frame, labels))
    lowest = min(_densities(frame))
    table[f"min SPC at d={lowest:g}"] = pd.Series(
        {label: min_samples_per_class(frame, label, lowest) for label in labels}, dtype="Int64")
    return table


def drop_table(frame, density: float) -> pd.DataFrame:
    """Chapter 03's table: one row per protocol (and the full dataset) with accuracy,
    worst-class accuracy, gap and std at ``density`` (percent, mean and sd over seeds), where the
    worst-class accuracy peaks, and the mean class-accuracy/class-density correlation."""
    frame = _frame(frame)
    table = metrics_at_density(frame, density)
    peaks = peak_densities(frame)
    table["worst-class peaks at d"] = peaks["peak density"]
    table["corr(class acc, class density)"] = pd.Series(_correlations(frame, _curve_order(frame)))
    return table


def provenance_sentence(frame) -> str:
    """Where the rows of ``frame`` come from: how many runs, the dropkit git revision(s), the
    machine(s), library versions, their summed wall time and when they finished."""
    if frame.empty:
        raise ValueError("frame holds no runs")

    def listed(column: str) -> str:
        if column not in frame:
            return "unknown"
        values = sorted({str(v) for v in frame[column] if v is not None and v == v})
        return ", ".join(values) if values else "unknown"

    seconds = float(frame["seconds"].sum()) if "seconds" in frame else float("nan")
    finished = sorted(str(v) for v in frame.get("finished_at", pd.Series(dtype=str)).dropna())
    when = f", finished between {finished[0]} and {finished[-1]}" if finished else ""
    return (f"{len(frame)} runs computed by dropkit {listed('dropkit_version')} at git revision "
            f"{listed('git_revision')} on {listed('device_name')} (torch {listed('torch_version')}, "
            f"numpy {listed('numpy_version')}, Python {listed('python_version')}); summed wall "
            f"time {seconds / 60:.1f} min{when}.")


# --------------------------------------------------------------------------- chapters 04-07
#
# Chapters 04-07 compare curves beyond the plain protocols (e.g. "EL2N+CDB-W", "query 2 epochs"),
# so the two functions below take the curve names from a ``curve`` column when there is one, else
# from ``label`` (:func:`dropkit.curves.labelled`, which names the CDB-W and quota variants).


def curve_metrics(frame, density: float, metrics=tuple(_SUMMARY)) -> pd.DataFrame:
    """Mean and sd over seeds (in percent) of ``metrics`` at ``density`` for every value of the column
    ``curve`` (else ``label``); full-dataset curves (rows at density 1) are read at density 1
    whatever ``density``.

    Args:
        frame: result rows with a ``curve`` or ``label`` column (the curve's name), ``density``
            and the metric columns (fractions in [0, 1]).
        density: a density present among the pruned rows (matched with ``np.isclose``).
        metrics: scalar result columns; their table names come from the chapter-02 names
            (``"worst-class (%)"`` ...) or are the column names themselves.

    Returns:
        DataFrame indexed by curve (order of first appearance) with two columns per metric
        (``X``: the mean, ``X sd``: the standard deviation over the runs, ddof 1, NaN for one run)
        and ``seeds`` (the number of runs averaged).
    """
    if ("curve" not in frame and "label" not in frame) or "density" not in frame:
        raise ValueError("frame needs the columns 'curve' (or 'label') and 'density'")
    if "curve" not in frame:
        frame = frame.assign(curve=frame["label"])
    missing = [m for m in metrics if m not in frame]
    if missing:
        raise ValueError(f"metrics {missing} are not columns of the results")
    pruned = frame[frame["density"] < 1]
    if not np.isclose(pruned["density"].astype(float), density).any():
        present = sorted({float(d) for d in pruned["density"]})
        raise ValueError(f"density={density!r} has no pruned runs; densities present: {present}")
    rows = {}
    for curve in dict.fromkeys(frame["curve"]):
        runs = frame[frame["curve"] == curve]
        at = runs[np.isclose(runs["density"].astype(float), density)]
        if at.empty:
            at = runs[runs["density"] == 1]
        if at.empty:
            continue
        rows[curve] = {}
        for m in metrics:
            values = at[m].astype(float)
            rows[curve] |= {_SUMMARY.get(m, m): 100 * float(values.mean()),
                            f"{_SUMMARY.get(m, m)} sd": 100 * float(values.std(ddof=1)) if len(values) > 1 else np.nan}
        rows[curve]["seeds"] = int(len(at))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "curve"
    return table
