"""Random pruning scores: seeded i.i.d. uniform values.

Score convention of :mod:`dropkit.scores`: higher = kept first; with uniform scores, keeping the
top ``round(d*N)`` is a uniformly random subset, reproducible from ``seed``.  (The module is named
``uniform`` so it can never shadow the standard library's ``random``.)
"""

from __future__ import annotations

import numpy as np


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    """``n`` i.i.d. Uniform[0, 1) scores from ``numpy.random.default_rng(seed)`` (float64 ``[n]``)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return np.random.default_rng(seed).random(int(n))
