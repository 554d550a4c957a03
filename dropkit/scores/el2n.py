"""EL2N (Paul et al., 2021): the L2 error of the softmax output.

``EL2N(x, y) = || softmax(f(x)) - onehot(y, K) ||_2``.

Score convention of :mod:`dropkit.scores`: higher = more useful = kept first.  A high EL2N means
the query model is far from the right answer (a *hard* sample), and Paul et al. keep the hardest
samples, so the EL2N value itself is the score.
"""

from __future__ import annotations

import torch


def el2n_from_logits(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """EL2N of each sample from its logits.

    Args:
        logits: float ``[N, K]`` raw model outputs (pre-softmax), all finite (a NaN or infinite
            logit raises ``ValueError``).
        labels: int ``[N]`` class ids in ``[0, K)``.
        num_classes: K. Always passed explicitly so a batch that happens to miss the last class
            still gets the right one-hot width; must equal ``logits.shape[1]``.

    Returns:
        float32 (or float64 for float64 logits) ``[N]`` on the logits' device, values in
        ``[0, sqrt(2)]``; higher = harder = kept first.
    """
    logits = torch.as_tensor(logits)
    labels = torch.as_tensor(labels)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D [N, K], got shape {tuple(logits.shape)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if logits.shape[1] != num_classes:
        raise ValueError(
            f"logits has {logits.shape[1]} columns but num_classes={num_classes}"
        )
    if labels.shape != (logits.shape[0],):
        raise ValueError(
            f"labels must have shape [{logits.shape[0]}] to match logits, got {tuple(labels.shape)}"
        )
    labels = labels.to(device=logits.device, dtype=torch.long)
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got range "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    if not logits.is_floating_point() or logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    finite = torch.isfinite(logits).all(dim=1)
    if not bool(finite.all()):  # softmax of NaN/inf is NaN: never a silent NaN score
        bad = torch.nonzero(~finite).flatten()
        raise ValueError(f"logits hold NaN or infinite values in {bad.numel()} of {len(logits)} "
                         f"rows (first: row {int(bad[0])}); the query model diverged?")
    probs = torch.softmax(logits, dim=1)
    onehot = torch.nn.functional.one_hot(labels, num_classes).to(probs.dtype)
    return torch.linalg.vector_norm(probs - onehot, dim=1)
