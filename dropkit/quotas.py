"""How many samples each class keeps: DRoP quotas (Algorithm 1 of the paper) and StrategyQ quotas.

Pure numpy. Every function takes per-class arrays of length ``K`` (the number of classes) and
returns per-class arrays of length ``K``.

Two allocation rules are offered (``rule=``):

``"paper"`` (default) -- Section 4 / Algorithm 1 of the paper: the *density* of class ``k`` is
    proportional to its validation error, ``d_k = c * (1 - r_k)``, capped at 1, with the excess of
    capped ("saturated") classes redistributed over the others in the same proportions.
``"counts"`` -- the authors' public code (``quoters/drop.py`` of ``fair-data-pruning``): the
    *number of samples kept* is proportional to the validation error, ``n_k = c * (1 - r_k)``,
    capped at the class size ``N_k``, with the same redistribution.

The two rules coincide when every class has the same size ``N_k = n`` (then ``n_k = n d_k``), and
differ on imbalanced data, where ``"paper"`` gives a large class proportionally more samples than
``"counts"``.
Besides, the authors' code truncates every count with ``int()``, so its total can fall short of
``d * N`` by up to ``K`` samples; here both rules hit ``round(d * N)`` exactly.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

RULES: tuple[str, ...] = ("paper", "counts")
#: Largest total of class sizes: counts are float64 in the allocation, exact up to 2**53.
MAX_TOTAL_SIZE = 2**53
_SNAP = 1e-9  # resolution at which largest-remainder rounding compares fractional parts


# --------------------------------------------------------------------------- validation


def check_density(density: float, name: str = "density") -> float:
    """Return ``density`` as a float if it is finite and in ``(0, 1]``; else ``ValueError``."""
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise ValueError(f"{name} must be a real number in (0, 1], got {density!r}")
    value = float(density)
    if not np.isfinite(value) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {density!r}")
    return value


def as_labels(labels, name: str = "labels", num_classes: int | None = None) -> np.ndarray:
    """Validate class (or group) ids and return them as an ``int64`` array of shape ``[N]``.

    Raises ``ValueError`` naming ``name`` if ``labels`` is not one-dimensional, holds a non-integer
    value, a negative id, or (when ``num_classes`` is given) an id ``>= num_classes``.
    """
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind == "b" or array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integer ids, got dtype {array.dtype}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(f"{name} must hold integer ids, got non-integer values")
    array = array.astype(np.int64)
    if array.min() < 0:
        raise ValueError(f"{name} must be non-negative, got {array.min()}")
    if num_classes is not None and array.max() >= num_classes:
        raise ValueError(f"{name} holds {array.max()}, which is not below {num_classes}")
    return array


def check_num_classes(num_classes: int, name: str = "num_classes") -> int:
    """Return ``num_classes`` if it is a positive integer, else raise ``ValueError``."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise ValueError(f"{name} must be a positive integer, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"{name} must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def kept_total(num_samples: int, density: float, name: str = "density") -> int:
    """Samples kept out of ``num_samples`` at ``density``: Python's ``round(density * N)``."""
    return int(round(check_density(density, name) * num_samples))


def check_kept(num_samples: int, density: float, name: str = "density") -> int:
    """:func:`kept_total`, but ``ValueError`` (naming ``name``) when it rounds to 0 samples of a
    non-empty set: a selection that keeps nothing is never what a density in ``(0, 1]`` asks for."""
    total = kept_total(num_samples, density, name)
    if total == 0 and num_samples > 0:
        raise ValueError(f"{name}={density!r} keeps round({density!r} * {num_samples}) = 0 of "
                         f"{num_samples} samples; use a density of at least 1/{num_samples}")
    return total


def _short(value, limit: int = 60) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_class_sizes(class_sizes) -> np.ndarray:
    sizes = np.asarray(class_sizes)
    if sizes.ndim != 1 or sizes.size == 0:
        raise ValueError(f"class_sizes must be a non-empty 1-D array, got shape {sizes.shape}")
    if sizes.dtype.kind == "b" or sizes.dtype.kind not in "iuf":
        raise ValueError(f"class_sizes must hold integers, got dtype {sizes.dtype}")
    if sizes.dtype.kind == "f" and (
        not np.all(np.isfinite(sizes)) or not np.all(sizes == np.round(sizes))
    ):
        raise ValueError("class_sizes must hold integers, got non-integer values")
    if sizes.dtype.kind == "f" and np.any(np.abs(sizes) > MAX_TOTAL_SIZE):
        raise ValueError(f"class_sizes hold {_short(sizes)}: more than 2**53 samples in a class")
    sizes = sizes.astype(np.int64)
    if np.any(sizes < 0):
        raise ValueError(f"class_sizes must be non-negative, got {sizes.min()}")
    total = sum(int(size) for size in sizes)  # Python ints: no int64 overflow
    if total > MAX_TOTAL_SIZE:
        raise ValueError(f"class_sizes sum to {total} samples, more than 2**53 = {MAX_TOTAL_SIZE}: "
                         "counts that large are not exact in float64 (are these sizes what you meant?)")
    if np.any(sizes == 0):
        empty = np.flatnonzero(sizes == 0).tolist()
        raise ValueError(
            f"class_sizes has empty classes {empty}: an empty class has no density; "
            "leave it out of class_sizes and recalls"
        )
    return sizes


def _as_recalls(recalls, num_classes: int) -> np.ndarray:
    values = np.asarray(recalls)
    if values.dtype.kind == "b" or values.dtype.kind not in "iuf":
        raise ValueError(f"recalls must be real numbers in [0, 1], got {_short(recalls)}")
    values = values.astype(np.float64)
    if values.shape != (num_classes,):
        raise ValueError(
            f"recalls must have one entry per class (shape ({num_classes},) like class_sizes), "
            f"got shape {values.shape}"
        )
    if np.any(np.isnan(values)) or np.any(values < 0.0) or np.any(values > 1.0):
        raise ValueError(f"recalls must be in [0, 1] and not NaN, got {values.tolist()}")
    return values


# --------------------------------------------------------------------------- Algorithm 1


def _water_fill(weights: np.ndarray, lower: np.ndarray, upper: np.ndarray, target: float):
    """Solve ``sum_k clip(c * weights_k, lower_k, upper_k) = target`` for ``c >= 0``.

    All arrays have shape ``[K]``, ``weights >= 0`` and ``lower <= upper``; requires
    ``sum(lower) <= target``. ``f(c) = sum_k clip(c * w_k, l_k, u_k)`` is continuous, non-decreasing
    and linear between the breakpoints ``l_k / w_k`` and ``u_k / w_k``: find the segment holding
    ``target`` and interpolate, which is exact (no iteration, no tolerance).

    Returns ``(kept [K] float64, short)`` where ``short`` is true when even ``c -> inf`` cannot
    reach ``target`` (every class with positive weight is capped); the remaining excess is then
    spread with uniform *density* (weight ``upper_k``) over the zero-weight classes.
    """
    if lower.sum() >= target:
        return lower.astype(np.float64), False
    active = weights > 0
    reachable = upper[active].sum() + lower[~active].sum()
    if reachable < target:
        capped_lower = np.where(active, upper, lower)
        spread_weights = np.where(active, 0, upper).astype(np.float64)
        kept, _ = _water_fill(spread_weights, capped_lower, upper, target)
        return kept, True
    def total(c: float) -> float:
        return float(np.clip(c * weights, lower, upper).sum())

    breakpoints = np.unique(
        np.concatenate([lower[active] / weights[active], upper[active] / weights[active]])
    )
    # binary search for the first breakpoint j with total >= target (j >= 1 since
    # total(breakpoints[0]) = sum(lower) < target): O(K log K) time, O(K) memory
    first, last = 1, len(breakpoints) - 1
    while first < last:
        middle = (first + last) // 2
        if total(breakpoints[middle]) >= target:
            last = middle
        else:
            first = middle + 1
    c0, c1 = breakpoints[first - 1], breakpoints[first]
    f0, f1 = total(c0), total(c1)
    c = c1 if f1 <= f0 else c0 + (target - f0) * (c1 - c0) / (f1 - f0)
    return np.clip(c * weights, lower, upper), False


def _rule_weights(sizes: np.ndarray, recalls: np.ndarray, rule: str) -> np.ndarray:
    if rule == "paper":
        return sizes * (1.0 - recalls)  # n_k = d_k N_k = c (1 - r_k) N_k
    if rule == "counts":
        return 1.0 - recalls  # n_k = c (1 - r_k)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def _warn_fallback() -> None:
    warnings.warn(
        "DRoP quotas: every class that can still take samples has recall 1 (Z = 0 in Algorithm 1); "
        "the remaining samples are spread over those classes with uniform density",
        UserWarning,
        stacklevel=3,
    )


def drop_densities(class_sizes, recalls, density: float, *, rule: str = "paper") -> np.ndarray:
    """DRoP class densities ``d_k`` (fraction of class ``k`` kept), float64 of shape ``[K]``.

    Algorithm 1 of the paper (Section 4), quoted::

        Input: target dataset density d in [0, 1]; for each class k in [K]: original size N_k,
               validation recall r_k in [0, 1].
        Initialize: unsaturated set of classes U <- [K], excess E <- dN, densities d_k <- 0.
        while E > 0 do
            Z <- (1/E) sum_{k in U} N_k (1 - r_k)
            for k in U do
                d'_k <- (1 - r_k) / Z;  d_k <- d_k + d'_k;  E <- E - N_k d'_k
                if d_k > 1 then  U <- U \\ {k};  E <- E + N_k (d_k - 1);  d_k <- 1
        Return {d_k}.

    Each pass adds to every unsaturated class a density proportional to ``1 - r_k``, so the loop
    converges to ``d_k = min(1, c (1 - r_k))`` with the ``c`` that gives ``sum_k d_k N_k = dN``.
    That fixed point is computed here directly and exactly (``_water_fill``), instead of running the
    floating-point ``while E > 0`` loop, which may never see ``E`` reach exactly 0; the tests check
    it against a literal transcription of the loop with a tolerance.

    Args:
        class_sizes: ``[K]`` positive integers ``N_k`` (an empty class raises ``ValueError``).
        recalls: ``[K]`` validation recalls ``r_k`` in ``[0, 1]``.
        density: target dataset density ``d`` in ``(0, 1]``.
        rule: ``"paper"`` (``d_k`` proportional to ``1 - r_k``) or ``"counts"`` (the authors' code:
            ``d_k N_k`` proportional to ``1 - r_k``); see the module docstring.

    Returns:
        ``[K]`` densities in ``[0, 1]`` with ``sum_k d_k N_k = d N`` (up to float rounding).
        A class with recall 1 gets density 0. If every class that is not saturated has recall 1
        (``Z = 0``, e.g. all recalls are 1) the rest is spread with uniform density over them and a
        ``UserWarning`` is issued; all recalls equal to 1 thus gives ``d_k = d`` for every class.
    """
    sizes = _as_class_sizes(class_sizes)
    values = _as_recalls(recalls, len(sizes))
    d = check_density(density)
    weights = _rule_weights(sizes, values, rule)
    upper = sizes.astype(np.float64)
    kept, short = _water_fill(weights, np.zeros(len(sizes)), upper, d * sizes.sum())
    if short:
        _warn_fallback()
    return kept / sizes


def drop_quotas(
    class_sizes, recalls, density: float, *, rule: str = "paper", min_per_class: int = 0
) -> np.ndarray:
    """DRoP quotas: number of samples each class keeps, int64 of shape ``[K]``.

    The continuous allocation of :func:`drop_densities` (Algorithm 1; ``rule="paper"`` or
    ``"counts"``) applied to the integer total ``T = round(density * N)``, rounded to integers by
    the largest-remainder method (ties go to the lower class index), so that

    * ``quotas.sum() == round(density * sum(class_sizes))`` exactly,
    * ``0 <= quotas[k] <= class_sizes[k]``,
    * ``quotas[k] >= min(min_per_class, class_sizes[k])``.

    Args:
        class_sizes: ``[K]`` positive integers ``N_k`` (an empty class raises ``ValueError``).
        recalls: ``[K]`` validation recalls in ``[0, 1]``.
        density: target dataset density in ``(0, 1]``.
        rule: ``"paper"`` (default) or ``"counts"``; see the module docstring.
            ``ValueError`` when ``round(density * N)`` is 0 (every quota would be 0, an empty
            selection, refused as by :func:`dropkit.select.select`) or when the sizes sum to more
            than :data:`MAX_TOTAL_SIZE`.
        min_per_class: floor on every class's count (capped at the class size). 0 (default)
            reproduces the paper, where a class with recall 1 keeps nothing. With a floor the
            allocation is ``clip(c * w_k, floor_k, N_k)``: classes below the floor are lifted to it
            and the others share the rest in DRoP proportions. ``ValueError`` if the floors alone
            exceed ``round(density * N)``.

    Returns:
        ``[K]`` int64 counts. Warns (``UserWarning``) in the ``Z = 0`` fallback, see
        :func:`drop_densities`.
    """
    sizes = _as_class_sizes(class_sizes)
    values = _as_recalls(recalls, len(sizes))
    total = check_kept(int(sizes.sum()), density)
    if isinstance(min_per_class, bool) or not isinstance(min_per_class, numbers.Integral):
        raise ValueError(f"min_per_class must be a non-negative integer, got {min_per_class!r}")
    if min_per_class < 0:
        raise ValueError(f"min_per_class must be a non-negative integer, got {min_per_class!r}")
    floors = np.minimum(int(min_per_class), sizes)
    if floors.sum() > total:
        raise ValueError(
            f"min_per_class={min_per_class} needs {int(floors.sum())} samples but "
            f"density={density} keeps only {total} of {int(sizes.sum())}"
        )
    weights = _rule_weights(sizes, values, rule)
    kept, short = _water_fill(weights, floors.astype(np.float64), sizes.astype(np.float64), total)
    if short:
        _warn_fallback()
    return largest_remainder(kept, total, lower=floors, upper=sizes)


def largest_remainder(amounts, total: int, *, lower=None, upper=None) -> np.ndarray:
    """Round non-negative ``amounts`` ``[K]`` to integers summing to ``total`` (int64 ``[K]``).

    Largest-remainder (Hamilton) rounding: floor every amount, then give the missing units one each
    to the largest fractional parts, ties to the lower index (float noise may also require taking
    units back: from the smallest fractional parts, ties to the higher index). Amounts within
    1e-9 of an integer count as that integer and fractional parts are compared at 1e-9
    resolution, so float noise never decides a tie. Results stay within
    ``[lower_k, upper_k]`` when given; ``amounts`` should already lie there and sum to ``total``.
    """
    amounts = np.asarray(amounts, dtype=np.float64)
    size = len(amounts)
    lower = np.zeros(size, np.int64) if lower is None else np.asarray(lower, np.int64)
    upper = np.full(size, np.iinfo(np.int64).max) if upper is None else np.asarray(upper, np.int64)
    counts = np.clip(np.floor(amounts + _SNAP).astype(np.int64), lower, upper)
    remainders = np.round((amounts - counts) / _SNAP)  # in units of 1e-9
    missing = int(total - counts.sum())
    index = np.arange(size)
    if missing > 0:
        order = np.lexsort((index, -remainders))
        order = order[counts[order] < upper[order]][:missing]
        counts[order] += 1
    elif missing < 0:
        order = np.lexsort((-index, remainders))
        order = order[counts[order] > lower[order]][:-missing]
        counts[order] -= 1
    if counts.sum() != total:
        raise ValueError(f"cannot round amounts to total={total} within the given bounds")
    return counts


# --------------------------------------------------------------------------- StrategyQ


def strategy_quotas(labels, keep_indices, num_classes: int) -> np.ndarray:
    """Class counts of a subset (StrategyQ): how many of ``keep_indices`` fall in each class.

    Args:
        labels: ``[N]`` integer class ids in ``[0, num_classes)``.
        keep_indices: ``[M]`` distinct indices into ``labels`` (the samples a strategy kept).
        num_classes: ``K``.

    Returns:
        ``[K]`` int64 counts summing to ``M``.
    """
    k = check_num_classes(num_classes)
    y = as_labels(labels, "labels", num_classes=k)
    keep = as_labels(keep_indices, "keep_indices", num_classes=len(y))
    if len(np.unique(keep)) != len(keep):
        raise ValueError("keep_indices must not repeat an index")
    return np.bincount(y[keep], minlength=k).astype(np.int64)
