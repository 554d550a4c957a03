"""Dynamic Uncertainty (He et al., 2023).

For every window of ``J`` consecutive epochs ``k, ..., k+J-1`` (``k = 0, ..., E-J``) take the
standard deviation of the target-class probability ``p_e = softmax(f_e(x))[y]`` over the window
(sample standard deviation, divisor ``J - 1``, as in He et al.'s Eq. 2), then average over the
``E - J + 1`` windows.

Score convention of :mod:`dropkit.scores`: higher = more useful = kept first.  He et al. keep the
samples whose prediction fluctuates most during training, so the averaged standard deviation is
the score.

Short trainings: with fewer epochs than the window (``E < J``) the window shrinks to ``E`` with a
``UserWarning`` (a single window over the whole run); fewer than 2 epochs raise ``ValueError``
because a standard deviation needs two values.
"""

from __future__ import annotations

import warnings

import numpy as np


def dynamic_uncertainty_from_probs(target_prob, window: int = 10) -> np.ndarray:
    """Dynamic Uncertainty of each sample from its per-epoch target-class probability.

    Args:
        target_prob: float array ``[E, N]`` of probabilities in ``[0, 1]`` of the true class,
            one row per epoch in training order.
        window: J, the number of consecutive epochs per window (He et al.: 10), at least 2.

    Returns:
        float64 ``[N]``: mean over windows of the windowed standard deviation; higher = more
        uncertain = kept first.
    """
    p = np.asarray(target_prob, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"target_prob must be 2-D [epochs, samples], got shape {p.shape}")
    if not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window must be an int >= 2, got {window!r}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("target_prob must contain finite probabilities in [0, 1]")
    epochs = p.shape[0]
    if epochs < 2:
        raise ValueError(
            f"target_prob has {epochs} epoch(s); Dynamic Uncertainty needs at least 2"
        )
    if epochs < window:
        warnings.warn(
            f"only {epochs} epochs recorded, fewer than window={window}: using a single "
            f"window of {epochs} epochs",
            UserWarning,
            stacklevel=2,
        )
        window = epochs
    windows = np.lib.stride_tricks.sliding_window_view(p, window, axis=0)  # [E-J+1, N, J]
    return windows.std(axis=2, ddof=1).mean(axis=0)
