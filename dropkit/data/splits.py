"""Containers of a dataset's splits (:class:`DataSplits` in memory, :class:`FolderSplits`
streamed), the fixed validation/test halving and the long-tailed subsampling.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


VALIDATION_SPLIT_SEED = 0
"""Seed of the fixed val/test halving of every official test set (independent of run seeds)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ImageNet's per-channel mean and std, the default normalisation of :class:`FolderSplits`."""


# --------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class DataSplits:
    """A dataset held in memory as tensors.

    ``x_*``: uint8 ``[N, C, H, W]`` images, or float32 ``[N, D]`` features (``gaussian``).
    ``y_*``: int64 ``[N]`` class indices in ``[0, num_classes)``.
    ``mean``/``std``: per-channel mean and std of ``x_train / 255`` for images (length C), or
    per-feature mean and std of ``x_train`` for features (length D, no /255): normalise with
    ``(x / 255 - mean) / std`` (images) or ``(x - mean) / std`` (features).
    ``groups_*``: int64 ``[N]`` group ids in ``[0, num_groups)`` for group-robustness data,
    else all None.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    groups_train: torch.Tensor | None = None
    groups_val: torch.Tensor | None = None
    groups_test: torch.Tensor | None = None
    num_groups: int | None = None
    group_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.name}: class_names has {len(self.class_names)} entries "
                             f"but num_classes={self.num_classes}")
        if self.x_train.ndim == 4 and self.x_train.dtype != torch.uint8:
            raise ValueError(f"{self.name}: image x_train must be uint8, got {self.x_train.dtype}")
        if self.x_train.ndim not in (2, 4):
            raise ValueError(f"{self.name}: x_train must be [N, C, H, W] or [N, D], "
                             f"got shape {tuple(self.x_train.shape)}")
        width = self.x_train.shape[1]
        if len(self.mean) != width or len(self.std) != width:
            raise ValueError(f"{self.name}: mean/std must have {width} entries "
                             f"(channels or features), got {len(self.mean)}/{len(self.std)}")
        has_groups = [g is not None for g in (self.groups_train, self.groups_val,
                                               self.groups_test, self.num_groups)]
        if any(has_groups) and not all(has_groups):
            raise ValueError(f"{self.name}: groups_train/val/test and num_groups must be all "
                             "set or all None")
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.shape[1:] != self.x_train.shape[1:] or x.dtype != self.x_train.dtype:
                raise ValueError(f"{self.name}: x_{split} is {x.dtype}{tuple(x.shape)}, "
                                 f"x_train is {self.x_train.dtype}{tuple(self.x_train.shape)}")
            _check_ids(f"{self.name}: y_{split}", y, len(x), self.num_classes)
            if self.num_groups is not None:
                _check_ids(f"{self.name}: groups_{split}", getattr(self, f"groups_{split}"),
                           len(x), self.num_groups)

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` for images, ``(D,)`` for features."""
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.ndim == 4

    def subset_train(self, indices) -> "DataSplits":
        """The same data with the training set restricted to ``indices`` (in the given order).

        Validation, test, ``mean`` and ``std`` are unchanged (normalisation stays that of the
        full training set, so runs at different densities see identically scaled inputs).
        """
        idx = _as_index(indices, self.num_train, "indices")
        groups = None if self.groups_train is None else self.groups_train[idx]
        return dataclasses.replace(self, x_train=self.x_train[idx], y_train=self.y_train[idx],
                                   groups_train=groups)

    def __repr__(self) -> str:
        groups = "" if self.num_groups is None else f", num_groups={self.num_groups}"
        return (f"DataSplits({self.name!r}, train={tuple(self.x_train.shape)}, "
                f"val={tuple(self.x_val.shape)}, test={tuple(self.x_test.shape)}, "
                f"dtype={self.x_train.dtype}, num_classes={self.num_classes}{groups})")


@dataclass(frozen=True, eq=False)
class FolderSplits:
    """A folder-scale image dataset streamed from disk (``imagenet`` with ``in_memory=False``).

    ``train``/``val``/``test`` are torch ``Dataset``\\ s whose items are ``(uint8 [3, S, S],
    int label)``: every image is resized (shorter side ``round(S * 256 / 224)``) and centre
    cropped to ``S = image_size``, so the training loop applies the same on-device
    normalisation and augmentation as for :class:`DataSplits`. ``val``/``test`` are the two
    stratified halves of the official ``val/`` folder. ``y_*`` are the int64 labels, available
    without decoding any image. ``mean``/``std`` are the standard ImageNet statistics.
    """

    name: str
    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    test: torch.utils.data.Dataset
    y_train: torch.Tensor
    y_val: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...]
    image_size: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    num_groups: None = None

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (3, self.image_size, self.image_size)

    @property
    def is_image(self) -> bool:
        return True

    def subset_train(self, indices) -> "FolderSplits":
        """The same data with the training set restricted to ``indices``."""
        idx = _as_index(indices, self.num_train, "indices")
        return dataclasses.replace(self, train=torch.utils.data.Subset(self.train, idx.tolist()),
                                   y_train=self.y_train[idx])


def _check_ids(what: str, ids, length: int, upper: int) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.int64 or ids.ndim != 1:
        raise ValueError(f"{what} must be a 1-D int64 tensor, got {type(ids).__name__} "
                         f"{getattr(ids, 'dtype', '')}{tuple(getattr(ids, 'shape', ()))}")
    if len(ids) != length:
        raise ValueError(f"{what} has {len(ids)} entries but its x has {length} rows")
    if length and (int(ids.min()) < 0 or int(ids.max()) >= upper):
        raise ValueError(f"{what} has values in [{int(ids.min())}, {int(ids.max())}], "
                         f"expected [0, {upper})")


def _as_index(indices, size: int, what: str) -> torch.Tensor:
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"{what} must be a 1-D integer array, got dtype {idx.dtype} "
                         f"shape {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"{what} must lie in [0, {size}), got [{idx.min()}, {idx.max()}]")
    return torch.from_numpy(idx.astype(np.int64))


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------

def validation_split(labels, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified halves of a test set: ``(val_idx, test_idx)``, each sorted int64.

    Within each class (of size ``n_k``) a random permutation under ``seed`` sends the first
    ``n_k // 2`` samples to validation and the remaining ``n_k - n_k // 2`` to test.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or (y.size and not np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"labels must be a 1-D integer array, got dtype {y.dtype} shape {y.shape}")
    rng = np.random.default_rng(seed)
    val, test = [], []
    for k in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == k))
        val.append(members[: len(members) // 2])
        test.append(members[len(members) // 2:])
    if not val:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return (np.sort(np.concatenate(val)).astype(np.int64),
            np.sort(np.concatenate(test)).astype(np.int64))


def long_tailed_indices(labels, imbalance_factor: float, seed: int = 0) -> np.ndarray:
    """Indices of a long-tailed subset (Cui et al., 2019), sorted int64.

    With ``K = labels.max() + 1`` classes and ``mu = I ** (-1 / (K - 1))``, class ``k``
    (0-based, class-index order) keeps ``floor(N_k * mu**k)`` samples -- the paper's
    ``mu**(k-1)`` with 1-based ``k`` -- chosen uniformly at random under ``seed``. Class 0 keeps
    everything; for a balanced set the largest/smallest size ratio is ``I``. (``mu**k`` is
    computed as ``I ** (-k / (K - 1))`` with a 1e-9 tolerance before the floor, so that e.g.
    ``5000 / 100`` gives exactly 50.)
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"labels must be a non-empty 1-D array of non-negative integers, got "
                         f"dtype {y.dtype} shape {y.shape}")
    if not (isinstance(imbalance_factor, (int, float)) and math.isfinite(imbalance_factor)
            and imbalance_factor >= 1):
        raise ValueError(f"imbalance_factor must be a finite number >= 1, got {imbalance_factor!r}")
    num_classes = int(y.max()) + 1
    rng = np.random.default_rng(seed)
    kept = []
    for k in range(num_classes):
        members = np.flatnonzero(y == k)
        fraction = 1.0 if num_classes == 1 else float(imbalance_factor) ** (-k / (num_classes - 1))
        keep = int(math.floor(len(members) * fraction + 1e-9))
        kept.append(rng.choice(members, size=keep, replace=False))
    return np.sort(np.concatenate(kept)).astype(np.int64)


def _image_mean_std(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``x / 255`` for uint8 ``[N, C, H, W]``, computed exactly
    from per-channel 256-bin histograms (fast, no float copy of the data)."""
    if len(x) == 0:
        raise ValueError("cannot compute normalisation statistics of an empty training set")
    channels = x.shape[1]
    counts = torch.zeros((channels, 256), dtype=torch.int64)
    chunk = max(1, 2 ** 24 // (x.shape[2] * x.shape[3]))
    for start in range(0, len(x), chunk):
        for c in range(channels):
            counts[c] += torch.bincount(x[start:start + chunk, c].reshape(-1), minlength=256)
    values = torch.arange(256, dtype=torch.float64) / 255
    p = counts.to(torch.float64) / counts.sum(dim=1, keepdim=True)
    mean = p @ values
    std = (p @ values.square() - mean.square()).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def _image_splits(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                  y_test: np.ndarray, class_names: Sequence[str]) -> DataSplits:
    """DataSplits from an official train/test pair, halving test with the fixed split seed."""
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(f"{name}: {len(x_train)} train images vs {len(y_train)} labels, "
                         f"{len(x_test)} test images vs {len(y_test)} labels")
    val_idx, test_idx = validation_split(y_test, seed=VALIDATION_SPLIT_SEED)
    x_tr = torch.from_numpy(x_train if x_train.flags.writeable else x_train.copy())
    mean, std = _image_mean_std(x_tr)
    return DataSplits(
        name=name, x_train=x_tr, y_train=torch.as_tensor(y_train, dtype=torch.int64),
        x_val=torch.as_tensor(x_test[val_idx]),
        y_val=torch.as_tensor(y_test[val_idx], dtype=torch.int64),
        x_test=torch.as_tensor(x_test[test_idx]),
        y_test=torch.as_tensor(y_test[test_idx], dtype=torch.int64),
        num_classes=len(class_names), class_names=tuple(class_names), mean=mean, std=std)
