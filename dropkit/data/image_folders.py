"""Image-folder datasets decoded with PIL: TinyImageNet, ImageNet, Waterbirds."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from dropkit.data.roots import _find_dir
from dropkit.data.splits import (VALIDATION_SPLIT_SEED, DataSplits, FolderSplits, _image_mean_std,
                                 _image_splits, validation_split)


WATERBIRDS_GROUP_NAMES = ("landbird on land", "landbird on water",
                          "waterbird on land", "waterbird on water")


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
