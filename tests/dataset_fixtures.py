"""Writers of tiny datasets in the exact on-disk formats that ``dropkit.data`` reads.

Images of class ``k`` are filled with the solid colour :func:`class_colour` ``(k)`` so that a
decoded (lossy JPEG) image still identifies its label.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

_IDX_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
                   np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: magic (0, 0, type code, ndim), big-endian dims, data."""
    big = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    header = bytes([0, 0, _IDX_TYPE_CODES[big.dtype], array.ndim])
    return header + struct.pack(f">{array.ndim}I", *array.shape) + big.tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool = True) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_fashion_mnist(directory: Path, *, n_train: int = 40, n_test: int = 30, seed: int = 0):
    """Random Fashion-MNIST-shaped IDX .gz files; returns (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    y_train = (np.arange(n_train) % 10).astype(np.uint8)
    y_test = (np.arange(n_test) % 10).astype(np.uint8)
    for stem, array in (("train-images-idx3-ubyte", x_train), ("train-labels-idx1-ubyte", y_train),
                        ("t10k-images-idx3-ubyte", x_test), ("t10k-labels-idx1-ubyte", y_test)):
        write_idx(directory / f"{stem}.gz", array)
    return x_train, y_train, x_test, y_test


def _cifar_dump(path: Path, entry: dict, *, legacy_numpy: bool = False) -> None:
    """Protocol-2 pickle, as the official files; ``legacy_numpy`` names numpy's array
    reconstructor ``numpy.core.multiarray`` as numpy 1.x (which wrote the real files) did."""
    raw = pickle.dumps(entry, protocol=2)
    if legacy_numpy:
        assert b"cnumpy._core.multiarray\n" in raw
        raw = raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.write_bytes(raw)


def write_cifar10(root: Path, *, per_batch: int = 4, n_test: int = 10, seed: int = 0,
                  bytes_keys: bool = False, legacy_numpy: bool = False):
    """``root/cifar-10-batches-py`` with 5 train batches, test_batch, batches.meta.
    Returns (x_train [N,3,32,32], y_train, x_test, y_test, names)."""
    rng = np.random.default_rng(seed)
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    names = [f"cls{k}" for k in range(10)]
    xs, ys = [], []
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        _cifar_dump(directory / f"data_batch_{i}", {key("data"): data, key("labels"): labels},
                    legacy_numpy=legacy_numpy)
        xs.append(data), ys.append(labels)
    test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    test_labels = [k % 10 for k in range(n_test)]
    _cifar_dump(directory / "test_batch", {key("data"): test, key("labels"): test_labels})
    _cifar_dump(directory / "batches.meta", {key("label_names"): names})
    return (np.concatenate(xs).reshape(-1, 3, 32, 32), np.concatenate(ys),
            test.reshape(-1, 3, 32, 32), np.asarray(test_labels), names)


def write_cifar100(root: Path, *, n_train: int = 12, n_test: int = 8, seed: int = 0):
    """``root/cifar-100-python`` (train, test, meta) with fine and coarse labels."""
    rng = np.random.default_rng(seed)
    directory = root / "cifar-100-python"
    directory.mkdir(parents=True)
    names = [f"fine{k}" for k in range(100)]
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, n)]
        _cifar_dump(directory / split, {"data": data, "fine_labels": fine,
                                        "coarse_labels": [v // 5 for v in fine]})
        out += [data.reshape(-1, 3, 32, 32), np.asarray(fine)]
    _cifar_dump(directory / "meta", {"fine_label_names": names,
                                     "coarse_label_names": [f"coarse{k}" for k in range(20)]})
    return (*out, names)


def class_colour(k: int) -> tuple[int, int, int]:
    return ((40 + 70 * k) % 256, (200 - 50 * k) % 256, (90 + 110 * k) % 256)


def write_image(path: Path, colour, size: tuple[int, int]) -> None:
    """A solid-colour RGB image of ``size`` (width, height), format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "JPEG" if path.suffix.lower() in (".jpeg", ".jpg") else None
    Image.new("RGB", size, tuple(colour)).save(path, format=fmt, quality=95)


def write_tinyimagenet(root: Path, *, wnids=("n02", "n01", "n03"), n_train: int = 3,
                       n_val_per_class: int = 2, size: int = 64):
    """``root/tiny-imagenet-200``; wnids.txt deliberately unsorted. Returns the val labels
    (sorted-wnid indices) in annotation order."""
    directory = root / "tiny-imagenet-200"
    directory.mkdir(parents=True)
    (directory / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (directory / "words.txt").write_text(
        "".join(f"{w}\tname of {w}, synonym\n" for w in wnids) + "n99\tunused class\n")
    order = sorted(wnids)
    for wnid in wnids:
        for i in range(n_train):
            write_image(directory / "train" / wnid / "images" / f"{wnid}_{i}.JPEG",
                        class_colour(order.index(wnid)), (size, size))
        (directory / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    lines, labels = [], []
    for i in range(n_val_per_class * len(wnids)):
        wnid = wnids[i % len(wnids)]
        write_image(directory / "val" / "images" / f"val_{i}.JPEG",
                    class_colour(order.index(wnid)), (size, size))
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t{size - 1}\t{size - 1}")
        labels.append(order.index(wnid))
    (directory / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return np.asarray(labels)


def write_imagenet(root: Path, *, classes=("n0b", "n0a"), n_train: int = 3, n_val: int = 4,
                   size=(40, 30)):
    """Class-folder ``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG``."""
    for split, n in (("train", n_train), ("val", n_val)):
        for k, wnid in enumerate(sorted(classes)):
            for i in range(n):
                write_image(root / split / wnid / f"{wnid}_{i}.JPEG", class_colour(k), size)


def write_waterbirds(root: Path, *, size=(50, 40)) -> pd.DataFrame:
    """``root/waterbird_complete95_forest2water2`` with metadata.csv; two images per
    (split, y, place). Returns the metadata table."""
    directory = root / "waterbird_complete95_forest2water2"
    rows = []
    for split in (0, 1, 2):
        for y in (0, 1):
            for place in (0, 1):
                for i in range(2 if split else 3):
                    name = f"{y:03d}.Bird/split{split}_p{place}_{i}.jpg"
                    write_image(directory / name, class_colour(2 * y + place), size)
                    rows.append({"img_id": len(rows) + 1, "img_filename": name, "y": y,
                                 "split": split, "place": place,
                                 "place_filename": f"/p/place{place}.jpg"})
    table = pd.DataFrame(rows)
    table.to_csv(directory / "metadata.csv", index=False)
    return table
