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

Data roots are searched in order: the ``root`` argument, then ``$DROPKIT_DATA`` (each also with
the dataset's conventional sub-folder appended). :func:`long_tailed_indices` subsamples a
training set to the long-tailed profile of Cui et al. (2019).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import inspect
import math
import os
import pickle
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

VALIDATION_SPLIT_SEED = 0
"""Seed of the fixed val/test halving of every official test set (independent of run seeds)."""

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the IDX ``.gz`` files."""
_FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WATERBIRDS_GROUP_NAMES = ("landbird on land", "landbird on water",
                          "waterbird on land", "waterbird on water")


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


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

def load_dataset(name: str, *, root: str | os.PathLike | None = None, **options) -> DataSplits:
    """Load dataset ``name`` (a key of :data:`DATASETS`) with the loader's keyword ``options``.

    ``root`` is where the files are (searched before ``$DROPKIT_DATA``); generated datasets
    ignore it. Unknown names or options raise ValueError listing the valid ones.
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


def _candidate_dirs(root, subdirs: Sequence[str]) -> list[Path]:
    bases = [Path(root)] if root is not None else []
    if os.environ.get("DROPKIT_DATA"):
        bases.append(Path(os.environ["DROPKIT_DATA"]))
    return [base / sub for base in bases for sub in ("", *subdirs)]


def _find_dir(name: str, root, subdirs: Sequence[str], marker: str, how_to_get: str) -> Path:
    searched = _candidate_dirs(root, subdirs)
    for directory in searched:
        if (directory / marker).exists():
            return directory
    where = ", ".join(str(d) for d in searched) or "nowhere (no root given, $DROPKIT_DATA unset)"
    raise FileNotFoundError(f"{name}: no {marker!r} found in {where}. {how_to_get}")


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


# --------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX)
# --------------------------------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (``.gz``-compressed or raw) into a read-only numpy array.

    The magic number (two zero bytes, a type code, the number of dimensions) and the dimension
    sizes are checked against the file length; corrupt or truncated files raise ValueError
    naming ``path``. Results are cached in memory per (path, modification time, size).
    """
    stat = Path(path).stat()
    return _read_idx_cached(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise ValueError(f"{path}: corrupt or truncated gzip file ({error})") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX header says shape {dims} ({expected} bytes of data) but "
                         f"the file holds {len(raw) - header} bytes: truncated or corrupt")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    array = array.astype(dtype.newbyteorder("="), copy=False)
    array.flags.writeable = False
    return array


def _fashion_mnist_cache_dir() -> Path:
    return Path(os.environ.get("DROPKIT_CACHE", Path.home() / ".cache" / "dropkit"))


def _idx_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _fashion_mnist_arrays(root, download: bool):
    """(x_train [60000,1,28,28] uint8, y_train, x_test, y_test) as numpy, from the first
    directory holding all four IDX files."""
    searched = _candidate_dirs(root, ("fashion-mnist", "FashionMNIST/raw"))
    searched += [FASHION_MNIST_SYSTEM_DIR, _fashion_mnist_cache_dir() / "FashionMNIST" / "raw"]
    download_note = "download=False"
    for attempt in range(2):
        for directory in searched:
            files = [_idx_file(directory, stem) for stem in _FASHION_MNIST_FILES]
            if all(files):
                arrays = [read_idx(f) for f in files]
                for images, labels, (fi, fl) in ((arrays[0], arrays[1], files[:2]),
                                                 (arrays[2], arrays[3], files[2:])):
                    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                        raise ValueError(f"fashion-mnist: {fi} has shape {images.shape} but "
                                         f"{fl} has shape {labels.shape}")
                    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
                        raise ValueError(f"fashion-mnist: {fl} has label {labels.max()} >= 10")
                return (arrays[0][:, None], arrays[1].astype(np.int64),
                        arrays[2][:, None], arrays[3].astype(np.int64))
        if attempt or not download:
            break
        try:  # torchvision keeps the .gz files next to the extracted ones in FashionMNIST/raw
            import torchvision
            torchvision.datasets.FashionMNIST(str(_fashion_mnist_cache_dir()), download=True)
            download_note = f"torchvision download into {_fashion_mnist_cache_dir()} succeeded"
        except Exception as error:  # no network, mirror down, ...
            download_note = f"torchvision download failed: {str(error).splitlines()[0]}"
            break
    raise FileNotFoundError(
        "fashion-mnist: the four IDX files (" + ", ".join(f"{s}.gz" for s in _FASHION_MNIST_FILES)
        + f") were not found in any of: {', '.join(map(str, searched))} ({download_note}). "
        "Install them with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put "
        "them in a folder and set DROPKIT_DATA=<folder>, or pass root=<folder>.")


def load_fashion_mnist(root=None, *, download: bool = True) -> DataSplits:
    """Real Fashion-MNIST: train uint8 ``[60000, 1, 28, 28]``; val and test ``[5000, 1, 28, 28]``
    each (500 per class). Searched: ``root`` (and ``root/fashion-mnist``), ``$DROPKIT_DATA``
    (likewise), :data:`FASHION_MNIST_SYSTEM_DIR`, the torchvision cache, then (if ``download``)
    torchvision's download into ``$DROPKIT_CACHE`` (default ``~/.cache/dropkit``)."""
    x_train, y_train, x_test, y_test = _fashion_mnist_arrays(root, download)
    return _image_splits("fashion-mnist", x_train, y_train, x_test, y_test, FASHION_MNIST_CLASSES)


# --------------------------------------------------------------------------------------------
# Spurious-cue Fashion-MNIST (group robustness)
# --------------------------------------------------------------------------------------------

def _assign_cues(labels: np.ndarray, aligned_fraction: float, num_cues: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Cue per sample: within each label y exactly ``round(aligned_fraction * n_y)`` random
    samples get cue y; the rest cycle through the other cues (as evenly as possible)."""
    cues = np.empty(len(labels), np.int64)
    for y in range(num_cues):
        members = rng.permutation(np.flatnonzero(labels == y))
        aligned = int(round(aligned_fraction * len(members)))
        others = np.array([c for c in range(num_cues) if c != y], np.int64)
        cues[members[:aligned]] = y
        cues[members[aligned:]] = others[np.arange(len(members) - aligned) % len(others)]
    return cues


def load_spurious_fashion_mnist(root=None, *, classes: Sequence[Sequence[int]] = ((0,), (6,)),
                                correlation: float = 0.95, test_correlation: float | None = None,
                                cue_levels: Sequence[int] | None = None, seed: int = 0,
                                download: bool = True) -> DataSplits:
    """Fashion-MNIST whose label is correlated with a background brightness cue in train only.

    Task: ``classes[j]`` is the tuple of Fashion-MNIST classes merged into task label ``j``
    (default: 0 = T-shirt/top, 1 = Shirt, a hard pair: with the defaults an MLP trained for 5
    epochs scored ~99% on the two cue-aligned test groups but ~30% (T-shirt/top with cue 1)
    and ~60% (Shirt with cue 0) on the other two, a Waterbirds-like gap); ``K = len(classes) >= 2``.
    Cue: ``num_cues = K`` background levels ``cue_levels`` (default evenly spaced
    ``0 .. 128``); cue ``c`` is painted as ``pixel = max(pixel, cue_levels[c])``, i.e. the dark
    background turns grey while the garment is kept. Cue ``c`` is "aligned" with label ``c``.
    Within each label, exactly ``round(correlation * n)`` training samples carry the aligned
    cue and the rest cycle through the other cues; val/test do the same with
    ``test_correlation`` (default ``1 / K``: cue independent of the label, 0.5 when binary).
    Groups: ``label * K + cue`` (``K * K`` groups). Train comes from the official train set;
    val/test are the selected classes of Fashion-MNIST's own val/test halves. ``seed`` fixes
    the cue assignment.
    """
    task = [tuple(int(c) for c in group) for group in classes]
    flat = [c for group in task for c in group]
    if (len(task) < 2 or not all(task) or len(set(flat)) != len(flat)
            or not all(0 <= c < 10 for c in flat)):
        raise ValueError(f"classes must be >= 2 disjoint non-empty tuples of Fashion-MNIST "
                         f"class indices 0..9, got {classes!r}")
    num_cues = len(task)
    test_correlation = 1.0 / num_cues if test_correlation is None else test_correlation
    for arg, value in (("correlation", correlation), ("test_correlation", test_correlation)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{arg} must be in [0, 1], got {value!r}")
    levels = (np.linspace(0, 128, num_cues).round() if cue_levels is None
              else np.asarray(cue_levels)).astype(np.int64)
    if (levels.shape != (num_cues,) or levels.min() < 0 or levels.max() > 255
            or len(set(levels.tolist())) != num_cues):
        raise ValueError(f"cue_levels must be {num_cues} distinct integers in [0, 255], "
                         f"got {cue_levels!r}")

    x_train, y_train, x_test, y_test = _fashion_mnist_arrays(root, download)
    val_idx, test_idx = validation_split(y_test, seed=VALIDATION_SPLIT_SEED)
    to_task = np.full(10, -1, np.int64)
    for j, group in enumerate(task):
        to_task[list(group)] = j
    rng = np.random.default_rng(seed)
    splits = {}
    sources = {"train": (x_train, y_train, correlation),
               "val": (x_test[val_idx], y_test[val_idx], test_correlation),
               "test": (x_test[test_idx], y_test[test_idx], test_correlation)}
    for split, (x, y, corr) in sources.items():
        keep = to_task[y] >= 0
        labels = to_task[y[keep]]
        cues = _assign_cues(labels, corr, num_cues, rng)
        images = np.maximum(x[keep], levels[cues].astype(np.uint8)[:, None, None, None])
        splits[split] = (torch.from_numpy(images), torch.from_numpy(labels),
                         torch.from_numpy(labels * num_cues + cues))
    mean, std = _image_mean_std(splits["train"][0])
    names = tuple("+".join(FASHION_MNIST_CLASSES[c] for c in group) for group in task)
    return DataSplits(
        name="spurious-fashion-mnist", num_classes=num_cues, class_names=names, mean=mean, std=std,
        x_train=splits["train"][0], y_train=splits["train"][1], groups_train=splits["train"][2],
        x_val=splits["val"][0], y_val=splits["val"][1], groups_val=splits["val"][2],
        x_test=splits["test"][0], y_test=splits["test"][1], groups_test=splits["test"][2],
        num_groups=num_cues * num_cues,
        group_names=tuple(f"{names[y]} / cue {c}"
                          for y in range(num_cues) for c in range(num_cues)))


# --------------------------------------------------------------------------------------------
# CIFAR (official python pickles)
# --------------------------------------------------------------------------------------------

class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds what the official CIFAR batches contain (dicts, lists,
    bytes/str and numpy uint8 arrays): any other global is refused, so a tampered file cannot
    run code. torchvision's reader is not used because it insists on the official md5 sums."""

    _RECONSTRUCT = ("numpy._core.multiarray", "_reconstruct")
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT, _RECONSTRUCT: _RECONSTRUCT,
                ("numpy", "ndarray"): ("numpy", "ndarray"), ("numpy", "dtype"): ("numpy", "dtype"),
                ("_codecs", "encode"): ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(*self._ALLOWED[(module, name)])


def _read_cifar_pickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"missing CIFAR file {path}")
    try:
        with open(path, "rb") as f:
            entry = _CifarUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{path}: not a valid CIFAR pickle ({error})") from error
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(entry).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _read_cifar_batches(paths: Sequence[Path], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, 3, 32, 32] images and int64 [N] labels from CIFAR batch files."""
    xs, ys = [], []
    for path in paths:
        entry = _read_cifar_pickle(path)
        if "data" not in entry or label_key not in entry:
            raise ValueError(f"{path}: missing key 'data' or {label_key!r} (has {sorted(entry)})")
        data, labels = np.asarray(entry["data"]), np.asarray(entry[label_key], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{path}: 'data' is {data.dtype}{data.shape}, "
                             "expected uint8 [N, 3072]")
        if labels.shape != (len(data),):
            raise ValueError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def _load_cifar(name, root, folder, train_files, test_file, meta_file, label_key, names_key):
    how = (f"Download the python version from https://www.cs.toronto.edu/~kriz/cifar.html and "
           f"extract it so that <root>/{folder}/ exists, then pass root=<root> or set "
           "DROPKIT_DATA.")
    directory = _find_dir(name, root, (folder,), test_file, how)
    x_train, y_train = _read_cifar_batches([directory / f for f in train_files], label_key)
    x_test, y_test = _read_cifar_batches([directory / test_file], label_key)
    names = _read_cifar_pickle(directory / meta_file).get(names_key)
    if names is None:
        raise ValueError(f"{directory / meta_file}: missing key {names_key!r}")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    for split, labels in (("train", y_train), ("test", y_test)):
        if labels.min() < 0 or labels.max() >= len(names):
            raise ValueError(f"{name}: {split} labels in [{labels.min()}, {labels.max()}] but "
                             f"{directory / meta_file} names {len(names)} classes")
    return _image_splits(name, x_train, y_train, x_test, y_test, names)


def load_cifar10(root=None) -> DataSplits:
    """CIFAR-10 from ``cifar-10-batches-py/`` (``data_batch_1..5``, ``test_batch``,
    ``batches.meta``): train uint8 ``[50000, 3, 32, 32]``, val/test 5000 each."""
    return _load_cifar("cifar10", root, "cifar-10-batches-py",
                       [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta",
                       "labels", "label_names")


def load_cifar100(root=None) -> DataSplits:
    """CIFAR-100 (fine labels) from ``cifar-100-python/`` (``train``, ``test``, ``meta``):
    train uint8 ``[50000, 3, 32, 32]``, val/test 5000 each."""
    return _load_cifar("cifar100", root, "cifar-100-python", ["train"], "test", "meta",
                       "fine_labels", "fine_label_names")


# --------------------------------------------------------------------------------------------
# Image folders: TinyImageNet, ImageNet, Waterbirds
# --------------------------------------------------------------------------------------------

def _to_rgb(image):
    return image.convert("RGB")


def _centre_crop_transform(image_size: int) -> Callable:
    """PIL image -> uint8 [3, S, S]: shorter side to round(S*256/224), centre crop S."""
    from torchvision import transforms
    return transforms.Compose([transforms.Lambda(_to_rgb),
                               transforms.Resize(round(image_size * 256 / 224)),
                               transforms.CenterCrop(image_size), transforms.PILToTensor()])


def _square_transform(image_size: int) -> Callable:
    """PIL image -> uint8 [3, S, S]: resized to S x S (a no-op for TinyImageNet's 64 x 64)."""
    from torchvision import transforms
    return transforms.Compose([transforms.Lambda(_to_rgb),
                               transforms.Resize((image_size, image_size)),
                               transforms.PILToTensor()])


def _read_images(paths: Sequence[Path], transform: Callable, image_size: int, desc: str,
                 progress: bool, num_workers: int | None) -> torch.Tensor:
    """Decode ``paths`` with PIL into uint8 ``[N, 3, S, S]`` (threads; PIL releases the GIL)."""
    from PIL import Image, UnidentifiedImageError

    def decode(path: Path) -> torch.Tensor:
        try:
            with Image.open(path) as image:
                return transform(image)
        except UnidentifiedImageError as error:
            raise ValueError(f"{path}: not a readable image ({error})") from error

    out = torch.empty((len(paths), 3, image_size, image_size), dtype=torch.uint8)
    workers = num_workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, image in enumerate(tqdm(pool.map(decode, paths), total=len(paths), desc=desc,
                                       disable=not progress, unit="img")):
            out[i] = image
    return out


def _check_image_size(image_size) -> None:
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")


def load_tinyimagenet(root=None, *, image_size: int = 64, progress: bool = True,
                      num_workers: int | None = None) -> DataSplits:
    """TinyImageNet from the original ``tiny-imagenet-200/`` layout, decoded into memory.

    Classes are the wnids of ``wnids.txt`` in sorted order (as ``ImageFolder`` would order
    ``train/``); names are the first synonym in ``words.txt`` (the wnid if absent). Train:
    ``train/<wnid>/images/*.JPEG`` (uint8 ``[100000, 3, S, S]``); the official ``val/`` (labels
    in ``val/val_annotations.txt``) is the test set, halved into val/test (5000 each).
    Images are resized to ``image_size`` (native 64, no resize).
    """
    _check_image_size(image_size)
    how = ("Download http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it so that "
           "<root>/tiny-imagenet-200/wnids.txt exists, then pass root=<root> or set DROPKIT_DATA.")
    directory = _find_dir("tinyimagenet", root, ("tiny-imagenet-200",), "wnids.txt", how)
    wnids = sorted({line.strip() for line in (directory / "wnids.txt").read_text().splitlines()
                    if line.strip()})
    index = {wnid: k for k, wnid in enumerate(wnids)}
    words = {}
    if (directory / "words.txt").is_file():
        for line in (directory / "words.txt").read_text().splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid] = text.split(",")[0].strip() or wnid
    train_paths, train_labels = [], []
    for wnid in wnids:
        folder = directory / "train" / wnid / "images"
        if not folder.is_dir():
            raise FileNotFoundError(f"tinyimagenet: missing training folder {folder}")
        files = sorted(folder.glob("*.JPEG"))
        train_paths += files
        train_labels += [index[wnid]] * len(files)
    annotations = directory / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise FileNotFoundError(f"tinyimagenet: missing {annotations}")
    test_paths, test_labels = [], []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise ValueError(f"{annotations}:{number}: expected "
                             f"'<file>\\t<wnid from wnids.txt>...', got {line!r}")
        test_paths.append(directory / "val" / "images" / fields[0])
        test_labels.append(index[fields[1]])
    transform = _square_transform(image_size)
    x_train = _read_images(train_paths, transform, image_size, "tinyimagenet train", progress,
                           num_workers)
    x_test = _read_images(test_paths, transform, image_size, "tinyimagenet val", progress,
                          num_workers)
    return _image_splits("tinyimagenet", x_train.numpy(), np.asarray(train_labels, np.int64),
                         x_test.numpy(), np.asarray(test_labels, np.int64),
                         [words.get(w, w) for w in wnids])


def load_imagenet(root=None, *, image_size: int = 224, in_memory: bool = False,
                  progress: bool = True,
                  num_workers: int | None = None) -> DataSplits | FolderSplits:
    """ImageNet (or any dataset) in class-folder layout: ``train/<class>/*`` and ``val/<class>/*``.

    ``in_memory=False`` (default, full scale): a :class:`FolderSplits` of torchvision
    ``ImageFolder`` datasets streamed from disk. ``in_memory=True``: every image is decoded into
    a :class:`DataSplits` (small subsets and tests only). Either way images are resized
    (shorter side ``round(S*256/224)``) and centre-cropped to ``S = image_size``, and the
    official ``val/`` is halved into val/test. Class names are the folder names (wnids).
    """
    from torchvision.datasets import ImageFolder
    _check_image_size(image_size)
    how = ("Extract ILSVRC-2012 so that <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG "
           "exist (the val images sorted into class folders), then pass root=<root> or set "
           "DROPKIT_DATA.")
    directory = _find_dir("imagenet", root, ("imagenet",), "train", how)
    if not (directory / "val").is_dir():
        raise FileNotFoundError(f"imagenet: missing {directory / 'val'}. {how}")
    transform = _centre_crop_transform(image_size)
    train = ImageFolder(directory / "train", transform=transform)
    val = ImageFolder(directory / "val", transform=transform)
    if train.classes != val.classes:
        raise ValueError(f"imagenet: class folders differ between {directory / 'train'} "
                         f"({len(train.classes)}) and {directory / 'val'} ({len(val.classes)})")
    y_train = np.asarray(train.targets, np.int64)
    y_official = np.asarray(val.targets, np.int64)
    if in_memory:
        x_train = _read_images([Path(p) for p, _ in train.samples], transform, image_size,
                               "imagenet train", progress, num_workers)
        x_test = _read_images([Path(p) for p, _ in val.samples], transform, image_size,
                              "imagenet val", progress, num_workers)
        return _image_splits("imagenet", x_train.numpy(), y_train, x_test.numpy(), y_official,
                             train.classes)
    val_idx, test_idx = validation_split(y_official, seed=VALIDATION_SPLIT_SEED)
    return FolderSplits(
        name="imagenet", train=train, val=torch.utils.data.Subset(val, val_idx.tolist()),
        test=torch.utils.data.Subset(val, test_idx.tolist()), y_train=torch.from_numpy(y_train),
        y_val=torch.from_numpy(y_official[val_idx]), y_test=torch.from_numpy(y_official[test_idx]),
        num_classes=len(train.classes), class_names=tuple(train.classes), image_size=image_size)


def load_waterbirds(root=None, *, image_size: int = 224, progress: bool = True,
                    num_workers: int | None = None) -> DataSplits:
    """Waterbirds (Sagawa et al., 2020) from ``waterbird_complete95_forest2water2/metadata.csv``.

    Columns used: ``img_filename`` (relative to the csv's folder), ``y`` (0 landbird,
    1 waterbird), ``split`` (0 train, 1 val, 2 test), ``place`` (0 land, 1 water).
    Groups: ``2 * y + place`` (:data:`WATERBIRDS_GROUP_NAMES`). Unlike the other datasets,
    validation is the dataset's own val split (``split == 1``) and test its test split
    (``split == 2``), as in the group-DRO setup the paper follows. Images: shorter side to
    ``round(S*256/224)``, centre crop ``S = image_size`` (224 for the paper's ResNet-50;
    smaller sizes for in-memory experiments), uint8 ``[N, 3, S, S]``.
    """
    import pandas as pd
    _check_image_size(image_size)
    how = ("Download waterbird_complete95_forest2water2.tar.gz (group DRO, Sagawa et al. 2020) and "
           "extract it under <root>, then pass root=<root> or set DROPKIT_DATA.")
    directory = _find_dir("waterbirds", root, ("waterbird_complete95_forest2water2", "waterbirds"),
                          "metadata.csv", how)
    csv = directory / "metadata.csv"
    try:
        table = pd.read_csv(csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{csv}: unreadable csv ({error})") from error
    missing = {"img_filename", "y", "split", "place"} - set(table.columns)
    if missing:
        raise ValueError(f"{csv}: missing column(s) {sorted(missing)}")
    for column, valid in (("y", {0, 1}), ("split", {0, 1, 2}), ("place", {0, 1})):
        bad = set(table[column].unique().tolist()) - valid
        if bad:
            raise ValueError(f"{csv}: column {column!r} has values {sorted(bad)} "
                             f"outside {sorted(valid)}")
    transform = _centre_crop_transform(image_size)
    parts = {}
    for split, code in (("train", 0), ("val", 1), ("test", 2)):
        rows = table[table["split"] == code]
        x = _read_images([directory / f for f in rows["img_filename"]], transform, image_size,
                         f"waterbirds {split}", progress, num_workers)
        y = torch.tensor(rows["y"].tolist(), dtype=torch.int64)
        groups = 2 * y + torch.tensor(rows["place"].tolist(), dtype=torch.int64)
        parts[split] = (x, y, groups)
    mean, std = _image_mean_std(parts["train"][0])
    return DataSplits(
        name="waterbirds", num_classes=2, class_names=("landbird", "waterbird"), mean=mean, std=std,
        x_train=parts["train"][0], y_train=parts["train"][1], groups_train=parts["train"][2],
        x_val=parts["val"][0], y_val=parts["val"][1], groups_val=parts["val"][2],
        x_test=parts["test"][0], y_test=parts["test"][1], groups_test=parts["test"][2],
        num_groups=4, group_names=WATERBIRDS_GROUP_NAMES)


# --------------------------------------------------------------------------------------------
# Gaussian mixtures
# --------------------------------------------------------------------------------------------

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
