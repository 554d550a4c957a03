"""Forgetting events (Toneva et al., 2019).

A *forgetting event* is a transition from correctly to incorrectly classified between two
consecutive recordings of the same sample during the query training.  The score of a sample is
its number of forgetting events.

Score convention of :mod:`dropkit.scores`: higher = more useful = kept first.  Toneva et al. prune
the *unforgettable* samples (zero events) first, so the count itself is the score.

Never-learned samples (incorrect at every recording) have no forgetting event but are, in
Toneva et al., "forgotten infinitely often": the default ``never_learned="most"`` gives them the
score ``E`` (the number of recordings), strictly larger than any achievable count (at most
``E // 2``), so they are kept before every learned sample.  ``never_learned="zero"`` reproduces the
DRoP authors' public code, where they score 0 like unforgettable samples.
"""

from __future__ import annotations

import numpy as np

NEVER_LEARNED_RULES: tuple[str, ...] = ("most", "zero")


def forgetting_from_correct(correct, never_learned: str = "most") -> np.ndarray:
    """Forgetting score of each sample from its per-epoch correctness.

    Args:
        correct: bool/0-1 array ``[E, N]``: ``correct[e, i]`` is whether sample ``i`` was
            classified correctly at recording ``e`` (epochs in training order).
        never_learned: ``"most"`` (default, Toneva et al.: score ``E``) or ``"zero"`` (the DRoP
            authors' code: score 0) for samples never classified correctly.

    Returns:
        float64 ``[N]``: number of correct -> incorrect transitions (or the never-learned value);
        higher = more often forgotten = kept first.
    """
    if never_learned not in NEVER_LEARNED_RULES:
        raise ValueError(
            f"never_learned={never_learned!r} is not one of {NEVER_LEARNED_RULES}"
        )
    c = np.asarray(correct)
    if c.ndim != 2:
        raise ValueError(f"correct must be 2-D [epochs, samples], got shape {c.shape}")
    if c.shape[0] < 1:
        raise ValueError("correct must hold at least one epoch (shape[0] >= 1)")
    if c.dtype != bool:
        if not np.isin(c, (0, 1)).all():
            raise ValueError("correct must be boolean or contain only 0/1 values")
        c = c.astype(bool)
    events = (c[:-1] & ~c[1:]).sum(axis=0).astype(np.float64)
    never = ~c.any(axis=0)
    events[never] = float(c.shape[0]) if never_learned == "most" else 0.0
    return events
