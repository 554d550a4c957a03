"""Which samples are kept: random or top-score selection, globally or under per-class quotas.

Pure numpy. Every selection is one ordering of the samples followed by a cut:

* the samples are ranked by score, highest first (no scores: every score is equal), with ties
  ordered by a random permutation drawn from ``seed`` -- never by dataset order;
* without quotas the first ``round(density * N)`` samples of that ranking are kept; with quotas the
  first ``quotas[k]`` samples of class ``k`` in that ranking are kept.

So, under the same seed, constant scores select exactly the same subset as no scores (random).
"""

from __future__ import annotations

import numbers

import numpy as np

from dropkit.quotas import as_labels, check_kept


def _as_scores(scores, num_samples: int) -> np.ndarray:
    values = np.asarray(scores)
    if values.shape != (num_samples,):
        raise ValueError(
            f"scores must have one entry per sample (shape ({num_samples},) like labels), "
            f"got shape {values.shape}"
        )
    if values.dtype.kind not in "biuf":
        raise ValueError(f"scores must be real numbers, got dtype {values.dtype}")
    values = values.astype(np.float64)
    if np.any(np.isnan(values)):
        raise ValueError(f"scores hold {int(np.isnan(values).sum())} NaN values")
    return values


def _as_quotas(quotas, class_sizes: np.ndarray, total: int) -> np.ndarray:
    counts = np.asarray(quotas)
    if counts.ndim != 1:
        raise ValueError(f"quotas must be a 1-D array of class counts, got shape {counts.shape}")
    if counts.size == 0 or counts.dtype.kind == "b" or counts.dtype.kind not in "iuf":
        raise ValueError(f"quotas must hold integer counts, got {counts!r}")
    if counts.dtype.kind == "f" and not np.all(counts == np.round(counts)):
        raise ValueError(f"quotas must hold integer counts, got {counts.tolist()}")
    counts = counts.astype(np.int64)
    if len(counts) < len(class_sizes):
        raise ValueError(
            f"quotas has {len(counts)} classes but labels hold class {len(class_sizes) - 1}"
        )
    sizes = np.zeros(len(counts), np.int64)
    sizes[: len(class_sizes)] = class_sizes
    if np.any(counts < 0):
        raise ValueError(f"quotas must be non-negative, got {counts.tolist()}")
    over = np.flatnonzero(counts > sizes)
    if len(over):
        k = int(over[0])
        raise ValueError(
            f"quotas[{k}]={counts[k]} exceeds the {sizes[k]} samples of class {k} in labels"
        )
    if counts.sum() != total:
        raise ValueError(
            f"quotas sum to {int(counts.sum())} but density keeps round(density * N) = {total}"
        )
    return counts


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def select(labels, density: float, *, quotas=None, scores=None, seed: int = 0) -> np.ndarray:
    """Indices of the samples kept at ``density``, sorted ascending (int64 ``[M]``).

    ============  ============  =====================================================
    ``quotas``    ``scores``    kept
    ============  ============  =====================================================
    None          None          uniform random subset of ``round(density * N)``
    None          given         the ``round(density * N)`` highest scores overall
    given         None          ``quotas[k]`` random samples of every class ``k``
    given         given         the ``quotas[k]`` highest scores within every class
    ============  ============  =====================================================

    Ties between equal scores are broken by a random permutation drawn from ``seed``, never by
    dataset order. The result is a deterministic function of the arguments.

    Args:
        labels: ``[N]`` non-negative integer class ids.
        density: fraction of samples kept, in ``(0, 1]``; ``M = round(density * N)``, which
            must be at least 1 (``ValueError`` otherwise: an empty selection is never wanted).
        quotas: optional ``[K]`` integer counts per class (``K`` > the largest label) with
            ``quotas[k] <=`` the size of class ``k`` (so a class absent from ``labels`` can only
            have quota 0) and ``sum(quotas) == round(density * N)``, e.g. from
            :func:`dropkit.quotas.drop_quotas`.
        scores: optional ``[N]`` real scores, higher = keep (NaN raises, infinities are allowed).
        seed: non-negative integer seed of the tie-breaking / random permutation.

    Returns:
        ``[M]`` sorted int64 indices into ``labels``.
    """
    y = as_labels(labels, "labels")
    if len(y) == 0:
        raise ValueError("labels is empty: there is nothing to select from")
    total = check_kept(len(y), density)
    rng = np.random.default_rng(_check_seed(seed))
    random_rank = rng.permutation(len(y))
    if scores is None:
        order = np.argsort(random_rank)
    else:
        order = np.lexsort((random_rank, -_as_scores(scores, len(y))))  # best first
    if quotas is None:
        kept = order[:total]
    else:
        class_sizes = np.bincount(y)
        counts = _as_quotas(quotas, class_sizes, total)
        by_class = order[np.argsort(y[order], kind="stable")]  # class-major, rank order inside
        starts = np.concatenate([[0], np.cumsum(np.bincount(y, minlength=len(counts)))[:-1]])
        rank_in_class = np.arange(len(y)) - starts[y[by_class]]
        kept = by_class[rank_in_class < counts[y[by_class]]]
    return np.sort(kept).astype(np.int64)
