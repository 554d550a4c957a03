"""Pruning protocols of the paper (Section 4): which samples a protocol keeps, in one call.

==================== ============================================================ =============
protocol             kept samples                                                 needs
==================== ============================================================ =============
``random``           uniform random ``round(d * N)`` samples                       --
``strategy``         the ``round(d * N)`` highest scores overall                   scores
``random+strategyq`` random within each class, with the class counts that          scores
                     ``strategy`` keeps at the same density (StrategyQ)
``strategy+drop``    the highest scores within each class, DRoP class quotas       scores, recalls
``random+drop``      random within each class, DRoP class quotas (the paper's      recalls
                     method)
==================== ============================================================ =============

The DRoP protocols can also take their quotas over *groups* (``groups=``, per-group recalls):
the same Algorithm 1 with groups in place of classes, for group-robustness data.

Scores follow :mod:`dropkit.scores` (higher = more useful = kept first); recalls are the query
model's per-class validation recalls (``ScoreResult.val_recalls``).  Everything goes through
:func:`dropkit.select.select` (ties broken by ``seed``, never by dataset order) and
:mod:`dropkit.quotas` (DRoP quotas by ``rule``, exact integer counts summing to ``round(d * N)``).
Arguments a protocol does not use are still checked when given (``groups`` of the wrong length,
``scores`` of the wrong length or not finite, ``recalls`` outside [0, 1]): a mistake in them is
refused, as ``dropkit prune`` refuses it, never silently ignored.
"""

from __future__ import annotations

import numpy as np

from dropkit.quotas import as_labels, drop_quotas, strategy_quotas
from dropkit.select import select

PROTOCOLS: tuple[str, ...] = ("random", "strategy", "random+strategyq", "strategy+drop",
                              "random+drop")
NEEDS_SCORES: frozenset[str] = frozenset({"strategy", "random+strategyq", "strategy+drop"})
NEEDS_RECALLS: frozenset[str] = frozenset({"strategy+drop", "random+drop"})


def _checked_scores(protocol: str, scores, n: int) -> np.ndarray:
    if scores is None:
        raise ValueError(f"protocol={protocol!r} needs scores (one per sample), got scores=None")
    values = np.asarray(scores)
    if values.shape != (n,):
        raise ValueError(f"scores must have shape ({n},) like labels, got {values.shape}")
    if values.dtype.kind not in "biuf":
        raise ValueError(f"scores must be real numbers, got dtype {values.dtype}")
    if not np.isfinite(values).all():
        raise ValueError(f"scores hold {int((~np.isfinite(values)).sum())} NaN/inf values")
    return values.astype(np.float64)


def _checked_recalls(protocol: str, recalls, num_classes: int, unit: str = "class") -> np.ndarray:
    if recalls is None:
        raise ValueError(f"protocol={protocol!r} needs the query model's per-{unit} validation "
                         "recalls, got recalls=None")
    values = np.asarray(recalls, dtype=np.float64)
    if values.ndim != 1 or len(values) < num_classes:
        raise ValueError(f"recalls must be 1-D with one entry per {unit} (at least {num_classes} "
                         f"for these {unit} ids), got shape {values.shape}")
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ValueError(f"recalls must be finite values in [0, 1], got {values.tolist()}")
    return values


def keep_indices(protocol: str, labels, density: float, *, scores=None, recalls=None,
                 groups=None, rule: str = "paper", min_per_class: int = 0,
                 seed: int = 0) -> np.ndarray:
    """Sorted int64 indices ``[round(density * N)]`` of the samples ``protocol`` keeps.

    Args:
        protocol: one of :data:`PROTOCOLS`.
        labels: ``[N]`` integer class ids.
        density: fraction of samples kept, in ``(0, 1]``.
        scores: ``[N]`` finite per-sample scores, higher = kept first (strategy protocols).
        recalls: ``[K]`` per-class validation recalls in ``[0, 1]`` of the query model (DRoP
            protocols); ``K`` is the number of classes, at least ``max(labels) + 1``.  Classes
            with no sample in ``labels`` keep nothing and are left out of the DRoP allocation.
            With ``groups``: ``[G]`` per-group validation recalls instead.
        groups: optional ``[N]`` integer group ids (e.g. label x spurious attribute).  Given, the
            DRoP protocols compute their quotas over the groups (group sizes and per-group
            ``recalls``) and select within each group; the paper's Algorithm 1 uses classes
            (``groups=None``).  The other protocols ignore it.
        rule: DRoP allocation rule, ``"paper"`` or ``"counts"`` (:func:`dropkit.quotas.drop_quotas`).
        min_per_class: floor on every class's (group's) DRoP count (0 = the paper).
        seed: seed of random selection and of tie-breaking between equal scores.

    Returns:
        Sorted int64 indices into ``labels``.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r} is not one of {PROTOCOLS}")
    y = as_labels(labels, "labels")
    if len(y) == 0:
        raise ValueError("labels is empty: there is nothing to select from")
    # every argument given is checked, used by this protocol or not
    values = _checked_scores(protocol, scores, len(y)) if protocol in NEEDS_SCORES or scores is not None else None
    units = None
    if groups is not None:
        units = as_labels(groups, "groups")
        if len(units) != len(y):
            raise ValueError(f"groups must have one id per sample ({len(y)}), got {len(units)}")
    if recalls is not None and protocol not in NEEDS_RECALLS:
        _checked_recalls(protocol, recalls, 0, "class" if groups is None else "group")
    if protocol == "random":
        return select(y, density, seed=seed)
    if protocol == "strategy":
        return select(y, density, scores=values, seed=seed)
    if protocol == "random+strategyq":
        num_classes = int(y.max()) + 1
        kept = select(y, density, scores=values, seed=seed)
        return select(y, density, quotas=strategy_quotas(y, kept, num_classes), seed=seed)
    if units is not None:  # DRoP over groups: the groups are the units of the quotas
        y = units
    num_classes = int(y.max()) + 1
    rec = _checked_recalls(protocol, recalls, num_classes, "class" if groups is None else "group")
    sizes = np.bincount(y, minlength=len(rec))
    present = sizes > 0  # a class absent from labels keeps nothing and takes no part in DRoP
    quotas = np.zeros(len(rec), dtype=np.int64)
    quotas[present] = drop_quotas(sizes[present], rec[present], density, rule=rule,
                                  min_per_class=min_per_class)
    return select(y, density, quotas=quotas, scores=values, seed=seed)
