"""Class and group robustness metrics on hand-computed examples."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropkit.metrics import (
    class_recalls,
    group_recalls,
    group_robustness_summary,
    robustness_summary,
    summary_from_recalls,
)

# class 0: 3 of 4 right, class 1: 1 of 2 right, class 2: 4 of 4 right -> 8 of 10 overall.
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = np.array([0, 0, 0, 1, 1, 0, 2, 2, 2, 2])
# groups: g0 = samples 0, 1, 4, 6 (all right); g1 = 2, 3, 5, 7, 8, 9 (3 and 5 wrong -> 4/6).
GROUPS = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 1])


def test_class_recalls_exact():
    np.testing.assert_allclose(class_recalls(Y_TRUE, Y_PRED, 3), [0.75, 0.5, 1.0])


def test_robustness_summary_exact():
    summary = robustness_summary(Y_TRUE, Y_PRED, 3)
    assert set(summary) == {"accuracy", "worst_class", "gap", "std"}
    assert summary["accuracy"] == pytest.approx(0.8)
    assert summary["worst_class"] == pytest.approx(0.5)
    assert summary["gap"] == pytest.approx(0.5)
    # population std of (0.75, 0.5, 1.0): mean 0.75, variance (0 + 1/16 + 1/16) / 3 = 1/24
    assert summary["std"] == pytest.approx(np.sqrt(1 / 24))
    assert all(isinstance(value, float) for value in summary.values())


def test_summary_from_recalls_weighted_and_unweighted():
    recalls = [0.75, 0.5, 1.0]
    assert summary_from_recalls(recalls)["accuracy"] == pytest.approx(0.75)
    weighted = summary_from_recalls(recalls, class_counts=[4, 2, 4])
    assert weighted == pytest.approx(robustness_summary(Y_TRUE, Y_PRED, 3))


def test_group_recalls_and_summary_exact():
    np.testing.assert_allclose(group_recalls(Y_TRUE, Y_PRED, GROUPS, 2), [1.0, 4 / 6])
    summary = group_robustness_summary(Y_TRUE, Y_PRED, GROUPS, 2)
    assert set(summary) == {"accuracy", "worst_group", "gap", "std"}
    assert summary["accuracy"] == pytest.approx(0.8)
    assert summary["worst_group"] == pytest.approx(4 / 6)
    assert summary["gap"] == pytest.approx(1 / 3)
    assert summary["std"] == pytest.approx(1 / 6)  # two values 1/3 apart: std = half the gap


def test_perfect_predictions():
    summary = robustness_summary(Y_TRUE, Y_TRUE, 3)
    assert summary == {"accuracy": 1.0, "worst_class": 1.0, "gap": 0.0, "std": 0.0}


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=200))
@settings(max_examples=200, deadline=None)
def test_summary_invariants(pairs):
    truth, pred = np.array(pairs).T
    truth = np.concatenate([truth, np.arange(4)])  # every class occurs
    pred = np.concatenate([pred, np.arange(4)])
    recalls = class_recalls(truth, pred, 4)
    summary = robustness_summary(truth, pred, 4)
    assert summary["worst_class"] <= summary["accuracy"] + 1e-12 <= recalls.max() + 2e-12
    assert summary["gap"] == pytest.approx(recalls.max() - recalls.min())
    assert summary["std"] <= summary["gap"] / 2 + 1e-12
    assert summary["accuracy"] == pytest.approx(np.mean(truth == pred))


@pytest.mark.parametrize(
    "y_true, y_pred, num_classes, name",
    [
        ([0, 0, 1], [0, 0, 1], 3, "y_true"),  # class 2 absent: recall undefined
        ([0, 1, 2], [0, 1], 3, "y_pred"),
        ([0, 1, 3], [0, 1, 2], 3, "y_true"),
        ([0, 1, 2], [0, 1, 5], 3, "y_pred"),
        ([0, -1, 2], [0, 1, 2], 3, "y_true"),
        ([0, 1.5, 2], [0, 1, 2], 3, "y_true"),
        ([0, 1, 2], [0.0, 1.0, 2.5], 3, "y_pred"),
        ([], [], 3, "y_true"),
        ([0, 1, 2], [0, 1, 2], 0, "num_classes"),
        ([0, 1, 2], [0, 1, 2], 2.5, "num_classes"),
    ],
)
@pytest.mark.parametrize("function", [class_recalls, robustness_summary])
def test_class_metrics_bad_input(function, y_true, y_pred, num_classes, name):
    with pytest.raises(ValueError, match=name):
        function(y_true, y_pred, num_classes)


@pytest.mark.parametrize(
    "groups, num_groups, y_pred, name",
    [
        ([0, 0, 0, 0], 2, [0, 1, 1, 0], "groups"),  # group 1 absent
        ([0, 1, 2, 0], 2, [0, 1, 1, 0], "groups"),
        ([0, 1, 0], 2, [0, 1, 1, 0], "groups"),
        ([0, 1, 0, 1], 2, [0, 1, 1], "y_pred"),
        ([0, 1, 0, 1], 0, [0, 1, 1, 0], "num_groups"),
    ],
)
@pytest.mark.parametrize("function", [group_recalls, group_robustness_summary])
def test_group_metrics_bad_input(function, groups, num_groups, y_pred, name):
    with pytest.raises(ValueError, match=name):
        function([0, 1, 1, 0], y_pred, groups, num_groups)


@pytest.mark.parametrize(
    "recalls, counts, name",
    [
        ([0.5, np.nan], None, "recalls"),
        ([0.5, 1.2], None, "recalls"),
        ([-0.1, 0.5], None, "recalls"),
        ([], None, "recalls"),
        ([0.5, 0.5], [1, 2, 3], "class_counts"),
        ([0.5, 0.5], [-1, 2], "class_counts"),
        ([0.5, 0.5], [0, 0], "class_counts"),
    ],
)
def test_summary_from_recalls_bad_input(recalls, counts, name):
    with pytest.raises(ValueError, match=name):
        summary_from_recalls(recalls, counts)
