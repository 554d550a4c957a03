"""Supervised self-prototype score (SSP; Sorscher et al., 2022, supervised variant of the paper's
Section 3 and Appendix B.3).

The prototype of a class is the mean embedding of its samples; the score of a sample is the
Euclidean distance of its embedding to its own class prototype.  SSP removes the samples closest
to their prototype (the easiest, most typical ones) first.

Score convention of :mod:`dropkit.scores`: higher = more useful = kept first, so the distance
itself is the score (far from the prototype = hard = kept).
"""

from __future__ import annotations

import torch


def ssp_from_embeddings(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Distance of each embedding to the mean embedding of its class.

    Args:
        embeddings: float ``[N, F]`` (e.g. penultimate-layer features of the query model).
        labels: int ``[N]`` class ids (any non-negative ints; classes are the values present).

    Returns:
        ``[N]`` Euclidean distances (embedding units, dtype of the float embeddings, float32 for
        integer input) on the embeddings' device; higher = farther from the prototype = kept first.
    """
    emb = torch.as_tensor(embeddings)
    labels = torch.as_tensor(labels)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D [N, F], got shape {tuple(emb.shape)}")
    if labels.shape != (emb.shape[0],):
        raise ValueError(
            f"labels must have shape [{emb.shape[0]}] to match embeddings, got {tuple(labels.shape)}"
        )
    if not emb.is_floating_point():
        emb = emb.float()
    if not torch.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or infinite values")
    labels = labels.to(device=emb.device, dtype=torch.long)
    if labels.numel() and labels.min() < 0:
        raise ValueError("labels must be non-negative class ids")
    num_classes = int(labels.max()) + 1 if labels.numel() else 0
    # Class means in float64 so that large classes do not lose precision.
    sums = torch.zeros(num_classes, emb.shape[1], dtype=torch.float64, device=emb.device)
    sums.index_add_(0, labels, emb.to(torch.float64))
    counts = torch.bincount(labels, minlength=num_classes).clamp_min(1).to(torch.float64)
    prototypes = (sums / counts[:, None]).to(emb.dtype)
    return torch.linalg.vector_norm(emb - prototypes[labels], dim=1)
