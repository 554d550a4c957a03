"""Datasets as tensors, with a fixed stratified validation split carved out of the test set.

Every loader returns a :class:`DataSplits`: uint8 images ``[N, C, H, W]`` (or float32 features
``[N, D]`` for ``gaussian``) and int64 labels ``[N]`` for three splits:

* ``train`` -- the official training set;
* ``val``   -- half of the official test set, stratified by class, fixed by
  :data:`VALIDATION_SPLIT_SEED` (independent of any run seed); used for DRoP's recalls and
  CDB-W weights, **never** for reported metrics (paper, Appendix A);
* ``test``  -- the other half: the only split used for reported metrics.

Exceptions: ``waterbirds`` uses the dataset's own validation split (``split == 1`` in
``metadata.csv``) and its own test split, as in Sagawa et al. (2020), and ``imagenet`` at full
scale returns a streaming :class:`FolderSplits` instead of tensors (it does not fit in memory).

Registry (:data:`DATASETS`, used through :func:`load_dataset`):

========================== ====================================================================
``fashion-mnist``          real IDX ``.gz`` files (``$DROPKIT_DATA``, Debian's
                           ``/usr/share/datasets/fashion-mnist/``, or torchvision's download)
``cifar10``, ``cifar100``  the official python-pickle batches (``cifar-10-batches-py/``,
                           ``cifar-100-python/``), read with a restricted unpickler
``tinyimagenet``           the original ``tiny-imagenet-200/`` layout, decoded with PIL
``imagenet``               class-folder ``train/`` and ``val/`` (torchvision ``ImageFolder``)
``waterbirds``             ``waterbird_complete95_forest2water2/metadata.csv`` (group DRO)
``gaussian``               K isotropic Gaussian classes with per-class std (fast tests)
``spurious-fashion-mnist`` Fashion-MNIST with a background cue correlated with the label in
                           train only; groups = (label, cue)
========================== ====================================================================

Data roots: the ``root`` argument when given, and then nowhere else (a wrong root is an error
naming it, never a silent fallback to another copy); without it ``$DROPKIT_DATA`` (each also with
the dataset's conventional sub-folder appended), then the loader's own defaults. :func:`long_tailed_indices` subsamples a
training set to the long-tailed profile of Cui et al. (2019).
"""

from __future__ import annotations

import inspect
import os
from typing import Callable

from dropkit.data.cifar import load_cifar10, load_cifar100
from dropkit.data.fashion_mnist import (FASHION_MNIST_CLASSES, FASHION_MNIST_SYSTEM_DIR, load_fashion_mnist,
                                        load_spurious_fashion_mnist, read_idx)
from dropkit.data.gaussian import gaussian_means, load_gaussian
from dropkit.data.image_folders import WATERBIRDS_GROUP_NAMES, load_imagenet, load_tinyimagenet, load_waterbirds
from dropkit.data.splits import (IMAGENET_MEAN, IMAGENET_STD, VALIDATION_SPLIT_SEED, DataSplits, FolderSplits,
                                 long_tailed_indices, validation_split)


def load_dataset(name: str, *, root: str | os.PathLike | None = None, **options) -> DataSplits:
    """Load dataset ``name`` (a key of :data:`DATASETS`) with the loader's keyword ``options``.

    ``root`` is where the files are (the only place searched when given; else
    ``$DROPKIT_DATA`` and the loader's defaults); generated datasets ignore it. Unknown names or options raise ValueError listing the valid ones.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    loader = DATASETS[name]
    valid = [p for p in inspect.signature(loader).parameters if p != "root"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for dataset {name!r}; "
                         f"valid options: {valid}")
    return loader(root=root, **options)


DATASETS: dict[str, Callable[..., DataSplits | FolderSplits]] = {
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "tinyimagenet": load_tinyimagenet,
    "imagenet": load_imagenet,
    "waterbirds": load_waterbirds,
    "gaussian": load_gaussian,
    "spurious-fashion-mnist": load_spurious_fashion_mnist,
}
"""Dataset name -> loader ``(root=None, **options)``; use :func:`load_dataset`."""

__all__ = [
    "DATASETS", "FASHION_MNIST_CLASSES", "FASHION_MNIST_SYSTEM_DIR", "IMAGENET_MEAN", "IMAGENET_STD",
    "VALIDATION_SPLIT_SEED", "WATERBIRDS_GROUP_NAMES", "DataSplits", "FolderSplits", "gaussian_means",
    "load_cifar10", "load_cifar100", "load_dataset", "load_fashion_mnist", "load_gaussian", "load_imagenet",
    "load_spurious_fashion_mnist", "load_tinyimagenet", "load_waterbirds", "long_tailed_indices", "read_idx",
    "validation_split",
]
