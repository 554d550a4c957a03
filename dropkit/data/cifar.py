"""CIFAR-10 and CIFAR-100 from the official python-pickle batches (restricted unpickler)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import numpy as np

from dropkit.data.roots import _find_dir
from dropkit.data.splits import DataSplits, _image_splits


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
