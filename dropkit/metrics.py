"""Class- and group-level robustness of predictions (Section 2 of the paper).

Pure numpy. Given the recall (accuracy) ``r_k`` of every class, the paper reports

* worst-class accuracy ``min_k r_k``,
* the gap ``max_k r_k - min_k r_k``,
* the standard deviation of the recalls ``std_k r_k`` -- here the *population* standard deviation
  (``ddof=0``: divide by ``K``), as ``numpy.std`` computes it,

next to the average accuracy. Group versions do the same with groups (e.g. (label, cue) pairs)
in place of classes; the group accuracy is the fraction of a group's samples predicted correctly.

A class (group) with no sample in ``y_true`` (``groups``) has no recall: that raises
``ValueError`` instead of producing a NaN that would silently poison ``min``/``max``.
"""

from __future__ import annotations

import numpy as np

from dropkit.quotas import as_labels, check_num_classes


def _check_pair(y_true, y_pred, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    k = check_num_classes(num_classes)
    truth = as_labels(y_true, "y_true", num_classes=k)
    pred = as_labels(y_pred, "y_pred", num_classes=k)
    if len(truth) != len(pred):
        raise ValueError(f"y_true has {len(truth)} entries but y_pred has {len(pred)}")
    if len(truth) == 0:
        raise ValueError("y_true is empty")
    return truth, pred


def _accuracy_per(ids: np.ndarray, correct: np.ndarray, count: int, name: str) -> np.ndarray:
    sizes = np.bincount(ids, minlength=count)
    if np.any(sizes == 0):
        missing = np.flatnonzero(sizes == 0).tolist()
        raise ValueError(f"{name} has no sample of {missing}: their accuracy is undefined")
    return np.bincount(ids, weights=correct, minlength=count) / sizes


def class_recalls(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Recall of every class: ``r_k = #{i: y_true_i = y_pred_i = k} / #{i: y_true_i = k}``.

    Args:
        y_true: ``[N]`` integer labels in ``[0, num_classes)``; every class must occur.
        y_pred: ``[N]`` integer predictions in ``[0, num_classes)``.
        num_classes: ``K``.

    Returns:
        ``[K]`` float64 recalls in ``[0, 1]``.
    """
    truth, pred = _check_pair(y_true, y_pred, num_classes)
    return _accuracy_per(truth, (truth == pred).astype(np.float64), int(num_classes), "y_true")


def group_recalls(y_true, y_pred, groups, num_groups: int) -> np.ndarray:
    """Accuracy within every group: fraction of the samples of group ``g`` predicted correctly.

    Args:
        y_true: ``[N]`` integer labels. y_pred: ``[N]`` integer predictions.
        groups: ``[N]`` integer group ids in ``[0, num_groups)``; every group must occur.
        num_groups: ``G``.

    Returns:
        ``[G]`` float64 accuracies in ``[0, 1]``.
    """
    g = check_num_classes(num_groups, "num_groups")
    truth = as_labels(y_true, "y_true")
    pred = as_labels(y_pred, "y_pred")
    ids = as_labels(groups, "groups", num_classes=g)
    if not len(truth) == len(pred) == len(ids):
        raise ValueError(
            f"y_true, y_pred and groups must have equal lengths, got "
            f"{len(truth)}, {len(pred)} and {len(ids)}"
        )
    if len(truth) == 0:
        raise ValueError("y_true is empty")
    return _accuracy_per(ids, (truth == pred).astype(np.float64), g, "groups")


def summary_from_recalls(recalls, class_counts=None) -> dict[str, float]:
    """Robustness summary from per-class recalls alone.

    Args:
        recalls: ``[K]`` recalls in ``[0, 1]``.
        class_counts: optional ``[K]`` non-negative test-set class sizes. Given, ``accuracy`` is the
            count-weighted mean of the recalls (the plain accuracy on that test set); omitted, it is
            the unweighted mean (the accuracy on a class-balanced test set).

    Returns:
        ``{"accuracy", "worst_class", "gap", "std"}`` as floats: the mean accuracy, ``min r_k``,
        ``max r_k - min r_k`` and the population standard deviation (``ddof=0``) of the recalls.
    """
    values = np.asarray(recalls, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"recalls must be a non-empty 1-D array, got shape {values.shape}")
    if np.any(np.isnan(values)) or np.any(values < 0) or np.any(values > 1):
        raise ValueError(f"recalls must be in [0, 1] and not NaN, got {values.tolist()}")
    if class_counts is None:
        accuracy = float(values.mean())
    else:
        counts = np.asarray(class_counts, dtype=np.float64)
        if counts.shape != values.shape:
            raise ValueError(
                f"class_counts must have shape {values.shape} like recalls, got {counts.shape}"
            )
        if np.any(~np.isfinite(counts)) or np.any(counts < 0) or counts.sum() <= 0:
            raise ValueError(
                f"class_counts must be non-negative with a positive sum, got {counts.tolist()}"
            )
        accuracy = float(np.dot(values, counts) / counts.sum())
    return {
        "accuracy": accuracy,
        "worst_class": float(values.min()),
        "gap": float(values.max() - values.min()),
        "std": float(values.std()),
    }


def robustness_summary(y_true, y_pred, num_classes: int) -> dict[str, float]:
    """Average accuracy and class robustness of predictions.

    Args:
        y_true: ``[N]`` integer labels in ``[0, num_classes)``; every class must occur.
        y_pred: ``[N]`` integer predictions in ``[0, num_classes)``.
        num_classes: ``K``.

    Returns:
        A dict of floats in ``[0, 1]`` with the keys ``"accuracy"`` (the mean of
        ``y_true == y_pred``), ``"worst_class"`` (min r_k), ``"gap"`` (max r_k - min r_k) and
        ``"std"`` (the population std of r_k).
    """
    truth, pred = _check_pair(y_true, y_pred, num_classes)
    correct = (truth == pred).astype(np.float64)
    summary = summary_from_recalls(_accuracy_per(truth, correct, int(num_classes), "y_true"))
    return {**summary, "accuracy": float(correct.mean())}


def group_robustness_summary(y_true, y_pred, groups, num_groups: int) -> dict[str, float]:
    """Average accuracy and group robustness: ``{"accuracy", "worst_group", "gap", "std"}``.

    Same arguments as :func:`group_recalls`. ``accuracy`` is ``mean(y_true == y_pred)`` over all
    samples, ``worst_group`` the lowest group accuracy, ``gap`` max minus min group accuracy and
    ``std`` their population standard deviation.
    """
    summary = summary_from_recalls(group_recalls(y_true, y_pred, groups, num_groups))
    correct = as_labels(y_true, "y_true") == as_labels(y_pred, "y_pred")
    return {
        "accuracy": float(correct.mean()),
        "worst_group": summary["worst_class"],
        "gap": summary["gap"],
        "std": summary["std"],
    }
