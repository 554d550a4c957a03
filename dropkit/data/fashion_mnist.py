"""Fashion-MNIST from its IDX ``.gz`` files, and the spurious-cue variant used for group
robustness.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from dropkit.data.roots import _candidate_dirs
from dropkit.data.splits import (VALIDATION_SPLIT_SEED, DataSplits, _image_mean_std, _image_splits,
                                 validation_split)


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the IDX ``.gz`` files."""
_FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


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
    download_note = "download=False"
    if root is None:
        searched += [FASHION_MNIST_SYSTEM_DIR, _fashion_mnist_cache_dir() / "FashionMNIST" / "raw"]
    else:  # an explicit root is the only place searched, never a silent fallback
        download, download_note = False, f"root={str(root)!r} was given: nothing else is searched"
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
    partial = [d for d in searched if any(_idx_file(d, stem) for stem in _FASHION_MNIST_FILES)]
    if partial:
        download_note += "; " + "; ".join(
            f"{d} lacks " + ", ".join(s for s in _FASHION_MNIST_FILES if not _idx_file(d, s))
            for d in partial)
    raise FileNotFoundError(
        "fashion-mnist: the four IDX files (" + ", ".join(f"{s}.gz" for s in _FASHION_MNIST_FILES)
        + f") were not found in any of: {', '.join(map(str, searched))} ({download_note}). "
        "Install them with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put "
        "them in a folder and set DROPKIT_DATA=<folder>, or pass root=<folder>.")


def load_fashion_mnist(root=None, *, download: bool = True) -> DataSplits:
    """Real Fashion-MNIST: train uint8 ``[60000, 1, 28, 28]``; val and test ``[5000, 1, 28, 28]``
    each (500 per class). Searched: ``root`` (and ``root/fashion-mnist``) when given, and nothing
    else (a wrong root is an error, not a fallback); without ``root``: ``$DROPKIT_DATA`` (likewise),
    :data:`FASHION_MNIST_SYSTEM_DIR`, the torchvision cache, then (if ``download``) torchvision's
    download into ``$DROPKIT_CACHE`` (default ``~/.cache/dropkit``)."""
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
