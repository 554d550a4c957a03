"""Isotropic Gaussian classes with per-class standard deviations (fast tests, the theory)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from dropkit.data.splits import VALIDATION_SPLIT_SEED, DataSplits, validation_split


def gaussian_means(num_classes: int, dim: int, separation: float) -> np.ndarray:
    """Default class means ``[K, D]``: neighbouring means are ``separation`` apart.

    ``dim == 1``: equally spaced points centred on 0; ``dim >= 2``: the vertices of a regular
    K-gon in the first two coordinates (K = 2: ``(-separation/2, 0, ...)`` and
    ``(+separation/2, 0, ...)``).
    """
    means = np.zeros((num_classes, dim))
    k = np.arange(num_classes)
    if dim == 1:
        means[:, 0] = separation * (k - (num_classes - 1) / 2)
    else:
        radius = separation / (2 * math.sin(math.pi / num_classes))
        means[:, 0] = radius * np.cos(2 * math.pi * k / num_classes + math.pi)
        means[:, 1] = radius * np.sin(2 * math.pi * k / num_classes + math.pi)
    return means


def load_gaussian(root=None, *, num_classes: int = 2, dim: int = 2, n_per_class: int = 1000,
                  n_test_per_class: int | None = None, class_std: float | Sequence[float] = 1.0,
                  separation: float = 2.0, means: Sequence[Sequence[float]] | None = None,
                  seed: int = 0) -> DataSplits:
    """K isotropic Gaussian classes: ``x | y=k ~ N(means[k], class_std[k]**2 I_D)``.

    Train: ``n_per_class`` samples per class, float32 ``[K * n_per_class, D]``, ordered by
    class. The test set has ``n_test_per_class`` (default ``n_per_class``) per class and is
    halved into val/test like every other dataset. ``means`` default to
    :func:`gaussian_means` ``(K, D, separation)``; ``class_std`` is a scalar or one std per
    class (unequal stds give classes of unequal difficulty). Everything is a function of
    ``seed``. ``root`` is ignored (nothing is read).
    """
    n_test_per_class = n_per_class if n_test_per_class is None else n_test_per_class
    for arg, value, low in (("num_classes", num_classes, 2), ("dim", dim, 1),
                            ("n_per_class", n_per_class, 1),
                            ("n_test_per_class", n_test_per_class, 2)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{arg} must be an int >= {low}, got {value!r}")
    stds = np.broadcast_to(np.asarray(class_std, np.float64), (num_classes,)) \
        if np.ndim(class_std) == 0 else np.asarray(class_std, np.float64)
    if stds.shape != (num_classes,) or not np.all(np.isfinite(stds)) or np.any(stds <= 0):
        raise ValueError(f"class_std must be a positive number or {num_classes} positive numbers, "
                         f"got {class_std!r}")
    centres = (gaussian_means(num_classes, dim, separation) if means is None
               else np.asarray(means, np.float64))
    if centres.shape != (num_classes, dim) or not np.all(np.isfinite(centres)):
        raise ValueError(f"means must be a finite [{num_classes}, {dim}] array, "
                         f"got shape {centres.shape}")
    rng = np.random.default_rng(seed)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = np.repeat(np.arange(num_classes), n)
        x = centres[y] + stds[y, None] * rng.standard_normal((len(y), dim))
        return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))

    x_train, y_train = sample(n_per_class)
    x_test, y_test = sample(n_test_per_class)
    val_idx, test_idx = validation_split(y_test.numpy(), seed=VALIDATION_SPLIT_SEED)
    return DataSplits(
        name="gaussian", x_train=x_train, y_train=y_train,
        x_val=x_test[val_idx], y_val=y_test[val_idx],
        x_test=x_test[test_idx], y_test=y_test[test_idx],
        num_classes=num_classes, class_names=tuple(f"class {k}" for k in range(num_classes)),
        mean=tuple(x_train.double().mean(0).tolist()),
        std=tuple(x_train.double().std(0, correction=0).tolist()))
