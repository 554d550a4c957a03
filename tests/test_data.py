"""Tests of dropkit.data: real Fashion-MNIST, each on-disk format on a tiny fixture written here,
the generated datasets, the splits and every error path."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle

import numpy as np
import pytest
import torch

import dataset_fixtures as fx
from dropkit import data
from dropkit.data import (DATASETS, DataSplits, FolderSplits, load_dataset, long_tailed_indices,
                          read_idx, validation_split)

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_search(monkeypatch, tmp_path):
    """No $DROPKIT_DATA and an empty download cache unless a test sets them."""
    monkeypatch.delenv("DROPKIT_DATA", raising=False)
    monkeypatch.setenv("DROPKIT_CACHE", str(tmp_path / "cache"))


def _sha(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.numpy().tobytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# Real Fashion-MNIST
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fashion():
    try:
        return load_dataset("fashion-mnist", download=False)
    except FileNotFoundError as error:
        pytest.skip(f"real Fashion-MNIST not installed: {error}")


def test_real_fashion_mnist_shapes_and_stratified_halves(fashion):
    assert fashion.x_train.shape == (60000, 1, 28, 28) and fashion.x_train.dtype == torch.uint8
    assert fashion.x_val.shape == fashion.x_test.shape == (5000, 1, 28, 28)
    assert fashion.y_train.dtype == torch.int64
    assert np.bincount(fashion.y_train.numpy()).tolist() == [6000] * 10
    assert np.bincount(fashion.y_val.numpy()).tolist() == [500] * 10
    assert np.bincount(fashion.y_test.numpy()).tolist() == [500] * 10
    assert fashion.class_names[6] == "Shirt" and fashion.num_classes == 10
    assert fashion.input_shape == (1, 28, 28) and fashion.is_image and fashion.num_train == 60000
    assert fashion.mean == pytest.approx((0.2860405969887955,), abs=1e-12)
    assert fashion.std == pytest.approx((0.3530242445149223,), abs=1e-9)


def test_real_fashion_mnist_pixels_are_stable(fashion):
    assert _sha(fashion.x_train) == "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012"
    assert _sha(fashion.x_val) == "ca51377bf531afa051cad321597ee6b89a0f37daef27da116d9dc3fc45c6b6ca"
    assert _sha(fashion.x_test) == "f006c8987f4f48f81559fa6906c5941413f62765cffb43373975397885e53bfc"
    assert int(fashion.x_train.sum()) == 3431114169


def test_real_fashion_mnist_val_and_test_partition_the_official_test_set(fashion):
    directory = data.FASHION_MNIST_SYSTEM_DIR
    official_x = read_idx(directory / "t10k-images-idx3-ubyte.gz")
    official_y = read_idx(directory / "t10k-labels-idx1-ubyte.gz")
    val_idx, test_idx = validation_split(official_y, seed=data.VALIDATION_SPLIT_SEED)
    assert len(np.intersect1d(val_idx, test_idx)) == 0
    assert np.array_equal(np.union1d(val_idx, test_idx), np.arange(10000))
    assert np.array_equal(fashion.x_val[:, 0].numpy(), official_x[val_idx])
    assert np.array_equal(fashion.y_test.numpy(), official_y[test_idx])


def test_repeated_loads_are_equal_and_independent(fashion):
    again = load_dataset("fashion-mnist", download=False)
    assert torch.equal(again.x_train, fashion.x_train) and torch.equal(again.y_val, fashion.y_val)
    again.x_train[0] = 255  # callers get their own copy, never the cached array
    assert _sha(load_dataset("fashion-mnist", download=False).x_train[:1]) == _sha(fashion.x_train[:1])


# --------------------------------------------------------------------------------------------
# IDX parsing and the Fashion-MNIST search path
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    ints = np.array([[1, -2], [70000, 3]], dtype=">i4")
    assert np.array_equal(read_idx(fx.write_idx(tmp_path / "a", images, gz=gz)), images)
    parsed = read_idx(fx.write_idx(tmp_path / "b", ints, gz=gz))
    assert parsed.dtype == np.int32 and parsed.tolist() == [[1, -2], [70000, 3]]


def test_read_idx_cache_follows_file_changes(tmp_path):
    path = fx.write_idx(tmp_path / "a.gz", np.zeros((2, 2), np.uint8))
    assert read_idx(path) is read_idx(path)
    fx.write_idx(path, np.ones((3, 2), np.uint8))
    os.utime(path, ns=(1, 1))
    assert read_idx(path).tolist() == [[1, 1]] * 3


def test_read_idx_rejects_truncated_and_corrupt_files(tmp_path):
    full = fx.idx_bytes(np.zeros((5, 28, 28), np.uint8))
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(full[:-10]))
    with pytest.raises(ValueError, match=r"short\.gz.*truncated or corrupt"):
        read_idx(short)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(full)[:-20])
    with pytest.raises(ValueError, match=r"cut\.gz.*corrupt or truncated gzip"):
        read_idx(cut)
    junk = tmp_path / "junk"
    junk.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match=r"junk.*bad magic number 504b0304"):
        read_idx(junk)
    header_only = tmp_path / "header"
    header_only.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match=r"header.*truncated IDX header"):
        read_idx(header_only)


def test_fashion_mnist_from_root_and_from_env(tmp_path, monkeypatch):
    monkeypatch.setattr(data.fashion_mnist, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "absent")
    x_train, y_train, x_test, y_test = fx.write_fashion_mnist(tmp_path / "fm" / "fashion-mnist")
    splits = load_dataset("fashion-mnist", root=tmp_path / "fm", download=False)
    assert np.array_equal(splits.x_train[:, 0].numpy(), x_train)
    assert np.array_equal(splits.y_train.numpy(), y_train)
    assert np.bincount(splits.y_val.numpy()).tolist() == [1] * 10  # 3 per class -> 1 val, 2 test
    assert np.bincount(splits.y_test.numpy()).tolist() == [2] * 10
    monkeypatch.setenv("DROPKIT_DATA", str(tmp_path / "fm"))
    from_env = load_dataset("fashion-mnist", download=False)
    assert torch.equal(from_env.x_test, splits.x_test)


def test_fashion_mnist_mismatched_counts_raise(tmp_path, monkeypatch):
    monkeypatch.setattr(data.fashion_mnist, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "absent")
    fx.write_fashion_mnist(tmp_path)
    fx.write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(39, np.uint8))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz has shape \(40, 28, 28\).*"
                                         r"train-labels-idx1-ubyte\.gz has shape \(39,\)"):
        load_dataset("fashion-mnist", root=tmp_path, download=False)


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data.fashion_mnist, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("fashion-mnist", root=tmp_path / "nothing", download=False)
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message and "DROPKIT_DATA" in message
    assert str(tmp_path / "nothing") in message and "nothing else is searched" in message
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("fashion-mnist", download=False)
    assert str(tmp_path / "absent") in str(error.value)


@pytest.mark.parametrize("missing", [None, "t10k-labels-idx1-ubyte"])
def test_a_wrong_fashion_mnist_root_is_an_error_not_a_fallback(tmp_path, monkeypatch, missing):
    """Issue 14: an empty root, or one missing a file, never falls back to the system copy."""
    system = tmp_path / "system"
    fx.write_fashion_mnist(system)
    monkeypatch.setattr(data.fashion_mnist, "FASHION_MNIST_SYSTEM_DIR", system)
    monkeypatch.setenv("DROPKIT_DATA", str(system))
    assert len(load_dataset("fashion-mnist", download=False).y_train) == 40  # the fallback exists
    root = tmp_path / "mine"
    root.mkdir()
    if missing:
        fx.write_fashion_mnist(root)
        (root / f"{missing}.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"root='.*mine' was given: nothing else is searched") as error:
        load_dataset("fashion-mnist", root=root)
    if missing:
        assert f"{root} lacks {missing}" in str(error.value)


# --------------------------------------------------------------------------------------------
# CIFAR pickles
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bytes_keys, legacy_numpy", [(False, False), (True, True)])
def test_cifar10_fixture(tmp_path, bytes_keys, legacy_numpy):
    x_train, y_train, x_test, y_test, names = fx.write_cifar10(
        tmp_path, bytes_keys=bytes_keys, legacy_numpy=legacy_numpy)
    splits = load_dataset("cifar10", root=tmp_path)
    assert splits.x_train.shape == (20, 3, 32, 32) and splits.x_train.dtype == torch.uint8
    assert np.array_equal(splits.x_train.numpy(), x_train)
    assert np.array_equal(splits.y_train.numpy(), y_train)
    assert splits.class_names == tuple(names)
    val_idx, test_idx = validation_split(y_test)
    assert np.array_equal(splits.x_val.numpy(), x_test[val_idx])
    assert np.array_equal(splits.y_test.numpy(), y_test[test_idx])
    expected_mean = (x_train.astype(np.float64) / 255).mean(axis=(0, 2, 3))
    assert splits.mean == pytest.approx(tuple(expected_mean), abs=1e-12)


def test_cifar100_fixture_uses_fine_labels(tmp_path):
    x_train, y_train, x_test, y_test, names = fx.write_cifar100(tmp_path)
    splits = load_dataset("cifar100", root=tmp_path / "cifar-100-python")  # the folder itself
    assert splits.num_classes == 100 and splits.class_names[7] == "fine7"
    assert np.array_equal(splits.x_train.numpy(), x_train)
    assert np.array_equal(splits.y_train.numpy(), y_train)
    assert len(splits.y_val) + len(splits.y_test) == len(y_test)


def test_cifar_errors_name_the_file(tmp_path):
    fx.write_cifar10(tmp_path)
    directory = tmp_path / "cifar-10-batches-py"
    (directory / "data_batch_3").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ValueError, match=r"data_batch_3: not a valid CIFAR pickle"):
        load_dataset("cifar10", root=tmp_path)
    (directory / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"data_batch_3"):
        load_dataset("cifar10", root=tmp_path)
    with open(directory / "data_batch_3", "wb") as f:
        pickle.dump({"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}, f, protocol=2)
    with pytest.raises(ValueError, match=r"data_batch_3: 'data' is uint8\(4, 100\)"):
        load_dataset("cifar10", root=tmp_path)
    with open(directory / "data_batch_3", "wb") as f:
        pickle.dump({"data": np.zeros((4, 3072), np.uint8), "labels": [0] * 3}, f, protocol=2)
    with pytest.raises(ValueError, match=r"data_batch_3: 4 images but labels of shape \(3,\)"):
        load_dataset("cifar10", root=tmp_path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_cifar_reader_refuses_code_in_pickles(tmp_path):
    fx.write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": _Exploit(), "labels": []}, f, protocol=2)
    with pytest.raises(ValueError, match=r"test_batch: .*global posix\.system is not allowed"):
        load_dataset("cifar10", root=tmp_path)


def test_missing_cifar_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPKIT_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("cifar100", root=tmp_path / "mine")
    message = str(error.value)
    assert str(tmp_path / "mine" / "cifar-100-python") in message and "cs.toronto.edu" in message
    assert str(tmp_path / "env") not in message and "nothing else is searched" in message
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "env")):
        load_dataset("cifar100")
    fx.write_cifar100(tmp_path / "env")  # an explicit root never falls back to $DROPKIT_DATA
    assert len(load_dataset("cifar100").y_train)
    with pytest.raises(FileNotFoundError, match="nothing else is searched"):
        load_dataset("cifar100", root=tmp_path / "mine")


# --------------------------------------------------------------------------------------------
# Image folders
# --------------------------------------------------------------------------------------------

def _colours(x: torch.Tensor) -> np.ndarray:
    return x.double().mean(dim=(2, 3)).numpy()


def _labels_from_colours(x: torch.Tensor, num_classes: int) -> np.ndarray:
    palette = np.array([fx.class_colour(k) for k in range(num_classes)], np.float64)
    distances = np.abs(_colours(x)[:, None, :] - palette[None]).max(axis=2)
    assert distances.min(axis=1).max() <= 4, "decoded colour is not a class colour"
    return distances.argmin(axis=1)


def test_tinyimagenet_fixture(tmp_path):
    val_labels = fx.write_tinyimagenet(tmp_path)
    splits = load_dataset("tinyimagenet", root=tmp_path, progress=False)
    assert splits.x_train.shape == (9, 3, 64, 64) and splits.x_train.dtype == torch.uint8
    assert splits.class_names == ("name of n01", "name of n02", "name of n03")  # sorted wnids
    assert splits.y_train.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert np.array_equal(_labels_from_colours(splits.x_train, 3), splits.y_train.numpy())
    val_idx, test_idx = validation_split(val_labels)
    assert np.array_equal(splits.y_val.numpy(), val_labels[val_idx])
    assert np.array_equal(_labels_from_colours(splits.x_test, 3), val_labels[test_idx])
    small = load_dataset("tinyimagenet", root=tmp_path, image_size=32, progress=False)
    assert small.input_shape == (3, 32, 32)


def test_tinyimagenet_errors_name_the_path(tmp_path):
    fx.write_tinyimagenet(tmp_path)
    annotations = tmp_path / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    annotations.write_text(annotations.read_text() + "val_9.JPEG\tn77\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match=r"val_annotations\.txt:7: .*n77"):
        load_dataset("tinyimagenet", root=tmp_path, progress=False)
    (tmp_path / "tiny-imagenet-200" / "train" / "n03" / "images").rename(tmp_path / "moved")
    with pytest.raises(FileNotFoundError, match=r"train/n03/images"):
        load_dataset("tinyimagenet", root=tmp_path, progress=False)


def test_imagenet_fixture_in_memory_and_streaming(tmp_path):
    fx.write_imagenet(tmp_path)
    memory = load_dataset("imagenet", root=tmp_path, image_size=16, in_memory=True, progress=False)
    assert isinstance(memory, DataSplits) and memory.x_train.shape == (6, 3, 16, 16)
    assert memory.class_names == ("n0a", "n0b") and memory.y_train.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.array_equal(_labels_from_colours(memory.x_train, 2), memory.y_train.numpy())
    assert np.bincount(memory.y_val.numpy()).tolist() == [2, 2]
    stream = load_dataset("imagenet", root=tmp_path, image_size=16)
    assert isinstance(stream, FolderSplits) and stream.input_shape == (3, 16, 16)
    image, label = stream.test[1]
    assert image.dtype == torch.uint8 and image.shape == (3, 16, 16)
    assert label == int(stream.y_test[1]) and torch.equal(image, memory.x_test[1])
    subset = stream.subset_train([5, 0])
    assert subset.y_train.tolist() == [1, 0] and torch.equal(subset.train[0][0], memory.x_train[5])


def test_imagenet_class_mismatch_raises(tmp_path):
    fx.write_imagenet(tmp_path)
    fx.write_image(tmp_path / "val" / "n0c" / "x.JPEG", (0, 0, 0), (8, 8))
    with pytest.raises(ValueError, match=r"class folders differ .*train.*val"):
        load_dataset("imagenet", root=tmp_path)


def test_waterbirds_fixture(tmp_path):
    table = fx.write_waterbirds(tmp_path)
    splits = load_dataset("waterbirds", root=tmp_path, image_size=24, progress=False)
    assert splits.x_train.shape == (12, 3, 24, 24) and splits.num_groups == 4
    for split, code in (("train", 0), ("val", 1), ("test", 2)):  # the dataset's own splits
        rows = table[table["split"] == code]
        assert getattr(splits, f"y_{split}").tolist() == rows["y"].tolist()
        groups = getattr(splits, f"groups_{split}")
        assert groups.tolist() == (2 * rows["y"] + rows["place"]).tolist()
        assert np.array_equal(_labels_from_colours(getattr(splits, f"x_{split}"), 4), groups.numpy())
    assert splits.group_names[1] == "landbird on water"


def test_waterbirds_bad_metadata_raises(tmp_path):
    table = fx.write_waterbirds(tmp_path)
    csv = tmp_path / "waterbird_complete95_forest2water2" / "metadata.csv"
    table.drop(columns=["place"]).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"metadata\.csv: missing column\(s\) \['place'\]"):
        load_dataset("waterbirds", root=tmp_path)
    table.assign(split=table["split"].replace(2, 5)).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"metadata\.csv: column 'split' has values \[5\]"):
        load_dataset("waterbirds", root=tmp_path)
    table.iloc[:1].to_csv(csv, index=False)
    (csv.parent / table["img_filename"][0]).write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"split0_p0_0\.jpg: not a readable image"):
        load_dataset("waterbirds", root=tmp_path, progress=False)


# --------------------------------------------------------------------------------------------
# Generated datasets
# --------------------------------------------------------------------------------------------

def test_gaussian_is_deterministic_and_has_the_requested_moments():
    options = dict(num_classes=3, dim=4, n_per_class=4000, class_std=(0.5, 1.0, 2.0), seed=3)
    a, b = load_dataset("gaussian", **options), load_dataset("gaussian", **options)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.x_train, load_dataset("gaussian", **{**options, "seed": 4}).x_train)
    assert a.x_train.dtype == torch.float32 and a.x_train.shape == (12000, 4) and not a.is_image
    assert a.input_shape == (4,) and len(a.y_val) == len(a.y_test) == 6000
    means = data.gaussian_means(3, 4, 2.0)
    for k, std in enumerate((0.5, 1.0, 2.0)):
        x = a.x_train[a.y_train == k].double()
        assert x.mean(0).numpy() == pytest.approx(means[k], abs=4 * std / np.sqrt(4000))
        assert x.std(0).numpy() == pytest.approx([std] * 4, rel=0.05)
    assert a.mean == pytest.approx(tuple(a.x_train.double().mean(0).tolist()))


def test_gaussian_means_are_separation_apart():
    for k, d in ((2, 1), (2, 3), (5, 2), (4, 1)):
        means = data.gaussian_means(k, d, 3.0)
        neighbours = np.linalg.norm(means - np.roll(means, 1, axis=0), axis=1)
        expected = [3.0] * k if d > 1 else [3.0 * (k - 1)] + [3.0] * (k - 1)
        assert neighbours == pytest.approx(expected)
    np.testing.assert_allclose(data.gaussian_means(2, 2, 2.0), [[-1, 0], [1, 0]], atol=1e-12)


@pytest.mark.parametrize("options, bad", [({"class_std": (1.0, -1.0)}, "class_std"),
                                          ({"class_std": (1.0, 1.0, 1.0)}, "class_std"),
                                          ({"num_classes": 1}, "num_classes"),
                                          ({"means": [[0.0, 0.0]]}, "means"),
                                          ({"n_per_class": 0}, "n_per_class")])
def test_gaussian_bad_options_raise(options, bad):
    with pytest.raises(ValueError, match=bad):
        load_dataset("gaussian", **options)


def test_spurious_fashion_mnist_correlation_rates(fashion):
    splits = load_dataset("spurious-fashion-mnist", download=False)
    assert splits.class_names == ("T-shirt/top", "Shirt") and splits.num_groups == 4
    assert len(splits.y_train) == 12000 and len(splits.y_val) == len(splits.y_test) == 1000
    cue_train = splits.groups_train % 2
    aligned = (cue_train == splits.y_train).double().mean().item()
    assert aligned == pytest.approx(0.95, abs=1e-12)  # exactly round(0.95 * 6000) per class
    for split in ("val", "test"):
        y, groups = getattr(splits, f"y_{split}"), getattr(splits, f"groups_{split}")
        assert np.bincount(groups.numpy()).tolist() == [250] * 4  # cue independent of label
        assert torch.equal(groups // 2, y)
    # the cue is painted as max(pixel, level): level 0 leaves the real image, 128 greys it
    original = fashion.x_train[(fashion.y_train == 0) | (fashion.y_train == 6)]
    assert torch.equal(splits.x_train[cue_train == 0], original[cue_train == 0])
    assert int(splits.x_train[cue_train == 1].min()) == 128
    assert torch.equal(splits.x_train[cue_train == 1],
                       original[cue_train == 1].clamp_min(128))


def test_spurious_fashion_mnist_k_way_and_options(fashion):
    splits = load_dataset("spurious-fashion-mnist", classes=((0, 2), (5,), (8, 9)),
                          correlation=0.8, test_correlation=0.6, seed=1, download=False)
    assert splits.num_classes == 3 and splits.num_groups == 9
    assert splits.class_names == ("T-shirt/top+Pullover", "Sandal", "Bag+Ankle boot")
    cue = splits.groups_train % 3
    rates = [(cue[splits.y_train == y] == y).double().mean().item() for y in range(3)]
    assert rates == pytest.approx([0.8] * 3, abs=1e-4)
    test_cue = splits.groups_test % 3
    assert (test_cue == splits.y_test).double().mean().item() == pytest.approx(0.6, abs=1e-3)
    assert sorted(torch.unique(splits.x_train[cue == 1].flatten(1).min(1).values).tolist()) == [64]


@pytest.mark.parametrize("options, bad", [({"correlation": 1.5}, "correlation"),
                                          ({"classes": ((0,), (0, 6))}, "classes"),
                                          ({"classes": ((0,),)}, "classes"),
                                          ({"classes": ((0,), (10,))}, "classes"),
                                          ({"cue_levels": (0, 300)}, "cue_levels"),
                                          ({"cue_levels": (5, 5)}, "cue_levels")])
def test_spurious_bad_options_raise(options, bad):
    with pytest.raises(ValueError, match=bad):
        load_dataset("spurious-fashion-mnist", download=False, **options)


# --------------------------------------------------------------------------------------------
# Splits and long tails
# --------------------------------------------------------------------------------------------

def test_long_tailed_hand_example():
    labels = np.repeat([0, 1, 2], 10)
    kept = long_tailed_indices(labels, imbalance_factor=4, seed=0)  # mu = 4**-0.5 = 0.5
    assert np.bincount(labels[kept]).tolist() == [10, 5, 2]  # floor(10 * 0.25) = 2
    assert np.array_equal(kept, np.sort(kept)) and len(np.unique(kept)) == len(kept)
    assert np.array_equal(kept[:10], np.arange(10))


def test_long_tailed_matches_cifar10_lt_counts():
    labels = np.repeat(np.arange(10), 5000)
    kept = long_tailed_indices(labels, imbalance_factor=100, seed=1)
    counts = np.bincount(labels[kept])
    assert counts.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert counts.sum() == 12406  # the standard CIFAR-10-LT (I = 100) size
    assert np.array_equal(long_tailed_indices(labels, 100, seed=1), kept)
    assert not np.array_equal(long_tailed_indices(labels, 100, seed=2), kept)
    assert np.array_equal(long_tailed_indices(labels, 1), np.arange(50000))


@pytest.mark.parametrize("args, bad", [((np.zeros(4, np.int64), 0.5), "imbalance_factor"),
                                       ((np.zeros(4, np.int64), float("nan")), "imbalance_factor"),
                                       ((np.array([0.5, 1.0]), 2), "labels"),
                                       ((np.array([-1, 0]), 2), "labels")])
def test_long_tailed_bad_arguments(args, bad):
    with pytest.raises(ValueError, match=bad):
        long_tailed_indices(*args)


def test_validation_split_stratified_halves():
    labels = np.array([2] * 5 + [0] * 4 + [1] * 1)
    val, test = validation_split(labels, seed=7)
    assert np.bincount(labels[val], minlength=3).tolist() == [2, 0, 2]
    assert np.bincount(labels[test], minlength=3).tolist() == [2, 1, 3]
    assert np.array_equal(np.union1d(val, test), np.arange(10)) and not np.intersect1d(val, test).size
    again = validation_split(labels, seed=7)
    assert np.array_equal(again[0], val) and np.array_equal(again[1], test)
    with pytest.raises(ValueError, match="labels"):
        validation_split(np.zeros((2, 2), np.int64))


# --------------------------------------------------------------------------------------------
# Registry and the container
# --------------------------------------------------------------------------------------------

def test_registry_names_and_errors():
    assert set(DATASETS) == {"fashion-mnist", "cifar10", "cifar100", "tinyimagenet", "imagenet",
                             "waterbirds", "gaussian", "spurious-fashion-mnist"}
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; valid names: cifar10, cifar100"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['n_train'\] for dataset 'gaussian'"):
        load_dataset("gaussian", n_train=5)


def _tiny_splits(**changes) -> DataSplits:
    y = torch.tensor([0, 1, 1, 0])
    fields = dict(name="tiny", x_train=torch.arange(16, dtype=torch.uint8).reshape(4, 1, 2, 2),
                  y_train=y, x_val=torch.zeros(2, 1, 2, 2, dtype=torch.uint8), y_val=y[:2],
                  x_test=torch.zeros(2, 1, 2, 2, dtype=torch.uint8), y_test=y[:2], num_classes=2,
                  class_names=("a", "b"), mean=(0.5,), std=(0.2,), groups_train=y + 2,
                  groups_val=y[:2], groups_test=y[:2], num_groups=4)
    return DataSplits(**{**fields, **changes})


def test_subset_train_keeps_val_test_and_groups():
    splits = _tiny_splits()
    sub = splits.subset_train(np.array([3, 1]))
    assert sub.y_train.tolist() == [0, 1] and sub.groups_train.tolist() == [2, 3]
    assert torch.equal(sub.x_train[0], splits.x_train[3]) and sub.x_val is splits.x_val
    assert sub.mean == splits.mean and sub.num_train == 2
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\)"):
        splits.subset_train([4])
    with pytest.raises(ValueError, match="indices must be a 1-D integer array"):
        splits.subset_train([0.5])


@pytest.mark.parametrize("changes, bad", [
    ({"y_train": torch.tensor([0, 1, 1])}, "y_train has 3 entries"),
    ({"y_val": torch.tensor([0, 2])}, r"y_val has values in \[0, 2\]"),
    ({"y_test": torch.tensor([0.0, 1.0])}, "y_test must be a 1-D int64"),
    ({"x_val": torch.zeros(2, 1, 3, 3, dtype=torch.uint8)}, "x_val is"),
    ({"class_names": ("a",)}, "class_names has 1"),
    ({"mean": (0.5, 0.5)}, "mean/std must have 1"),
    ({"groups_val": None}, "all set or all None"),
    ({"groups_train": torch.tensor([0, 1, 2, 4])}, "groups_train has values"),
])
def test_mismatched_fields_raise(changes, bad):
    with pytest.raises(ValueError, match=bad):
        _tiny_splits(**changes)
