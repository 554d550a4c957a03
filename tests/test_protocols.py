"""dropkit.protocols.keep_indices: every protocol keeps exactly round(d * N) samples with the
intended class counts, hand-computed DRoP quotas, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from dropkit.protocols import PROTOCOLS, keep_indices
from dropkit.quotas import drop_quotas

LABELS = np.repeat(np.arange(3), [10, 20, 30])
RECALLS = np.array([0.5, 0.9, 0.8])


def shuffled_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(4), [50, 120, 80, 250]))
    scores = rng.standard_normal(len(labels)) + labels  # class 3 scores highest on average
    recalls = np.array([0.6, 0.95, 0.7, 0.99])
    return labels, scores, recalls


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("density", [0.01, 0.1, 0.33, 0.5, 0.77, 1.0])
def test_every_protocol_keeps_exactly_round_d_n_distinct_sorted_indices(protocol, density):
    labels, scores, recalls = shuffled_problem()
    kept = keep_indices(protocol, labels, density, scores=scores, recalls=recalls, seed=1)
    assert kept.dtype == np.int64 and len(kept) == round(density * len(labels))
    assert np.all(np.diff(kept) > 0) and kept.min() >= 0 and kept.max() < len(labels)


def test_strategy_keeps_the_top_scores_and_strategyq_copies_its_class_counts():
    labels, scores, recalls = shuffled_problem()
    kept = keep_indices("strategy", labels, 0.3, scores=scores)
    assert set(kept) == set(np.argsort(-scores)[:150])
    counts = np.bincount(labels[kept], minlength=4)
    q = keep_indices("random+strategyq", labels, 0.3, scores=scores, seed=2)
    np.testing.assert_array_equal(np.bincount(labels[q], minlength=4), counts)
    assert set(q) != set(kept)  # random within the classes, not the top scores
    assert np.array_equal(q, keep_indices("random+strategyq", labels, 0.3, scores=scores, seed=2))


def test_drop_protocols_follow_algorithm_1_by_hand():
    # d_k ~ 1 - r_k = (0.5, 0.1, 0.2): class 0 saturates (keeps its 10), the other 20 of the
    # 30 kept samples split 1 : 2 by density over classes of 20 and 30 -> 5 and 15
    scores = np.arange(60, dtype=float)
    for protocol in ("random+drop", "strategy+drop"):
        kept = keep_indices(protocol, LABELS, 0.5, scores=scores, recalls=RECALLS)
        np.testing.assert_array_equal(np.bincount(LABELS[kept], minlength=3), [10, 5, 15])
    top = keep_indices("strategy+drop", LABELS, 0.5, scores=scores, recalls=RECALLS)
    np.testing.assert_array_equal(top, np.r_[0:10, 25:30, 45:60])  # the top scores in each class


def test_drop_protocols_use_drop_quotas_with_rule_and_floor():
    labels, scores, recalls = shuffled_problem()
    sizes = np.bincount(labels)
    for rule in ("paper", "counts"):
        for floor in (0, 20):
            expected = drop_quotas(sizes, recalls, 0.2, rule=rule, min_per_class=floor)
            for protocol in ("random+drop", "strategy+drop"):
                kept = keep_indices(protocol, labels, 0.2, scores=scores, recalls=recalls, rule=rule,
                                    min_per_class=floor)
                np.testing.assert_array_equal(np.bincount(labels[kept], minlength=4), expected)
    paper = np.bincount(labels[keep_indices("random+drop", labels, 0.2, recalls=recalls)], minlength=4)
    counts = np.bincount(labels[keep_indices("random+drop", labels, 0.2, recalls=recalls, rule="counts")], minlength=4)
    assert not np.array_equal(paper, counts)  # the rules differ on imbalanced classes


def test_drop_protocols_over_groups_follow_algorithm_1_on_the_groups():
    # Two classes, each split into a majority and a minority group. Group sizes (10, 40, 30, 20),
    # group recalls (0.5, 0.9, 0.8, 0.6): d_g = c (0.5, 0.1, 0.2, 0.4) with 23 c = 40 (none
    # saturates), i.e. 8.70, 6.96, 10.43, 13.91 samples -> 9, 7, 10, 14 (largest remainders).
    groups = np.repeat(np.arange(4), [10, 40, 30, 20])
    labels = groups // 2
    recalls = np.array([0.5, 0.9, 0.8, 0.6])
    scores = np.arange(100, dtype=float)
    expected = np.array([9, 7, 10, 14])
    np.testing.assert_array_equal(drop_quotas([10, 40, 30, 20], recalls, 0.4), expected)
    for protocol in ("random+drop", "strategy+drop"):
        kept = keep_indices(protocol, labels, 0.4, scores=scores, recalls=recalls, groups=groups, seed=3)
        np.testing.assert_array_equal(np.bincount(groups[kept], minlength=4), expected)
    top = keep_indices("strategy+drop", labels, 0.4, scores=scores, recalls=recalls, groups=groups)
    ends = [10, 50, 80, 100]  # group g holds indices [ends[g-1], ends[g]); scores rise with index
    np.testing.assert_array_equal(  # the top scores within each group
        top, np.concatenate([np.arange(e - q, e) for e, q in zip(ends, expected)]))
    # Non-DRoP protocols ignore groups; bad group ids are clear errors.
    np.testing.assert_array_equal(keep_indices("strategy", labels, 0.4, scores=scores, groups=groups),
                                  keep_indices("strategy", labels, 0.4, scores=scores))
    with pytest.raises(ValueError, match="one id per sample"):
        keep_indices("random+drop", labels, 0.4, recalls=recalls, groups=groups[:-1])
    with pytest.raises(ValueError, match="per group"):
        keep_indices("random+drop", labels, 0.4, recalls=recalls[:2], groups=groups)


def test_random_protocols_are_seeded_and_global_random_is_not_stratified():
    labels, scores, recalls = shuffled_problem()
    a = keep_indices("random", labels, 0.4, seed=3)
    assert np.array_equal(a, keep_indices("random", labels, 0.4, seed=3))
    assert not np.array_equal(a, keep_indices("random", labels, 0.4, seed=4))
    b = keep_indices("random+drop", labels, 0.4, recalls=recalls, seed=3)
    assert not np.array_equal(b, keep_indices("random+drop", labels, 0.4, recalls=recalls, seed=4))


def test_classes_absent_from_labels_keep_nothing():
    labels = np.array([0, 0, 0, 2, 2, 2, 2, 2])  # class 1 absent
    kept = keep_indices("random+drop", labels, 0.5, recalls=[0.5, 0.1, 0.5])
    np.testing.assert_array_equal(np.bincount(labels[kept], minlength=3), [2, 0, 2])


def test_clear_errors():
    with pytest.raises(ValueError, match="protocol"):
        keep_indices("el2n", LABELS, 0.5)
    for protocol in ("strategy", "random+strategyq", "strategy+drop"):
        with pytest.raises(ValueError, match="needs scores"):
            keep_indices(protocol, LABELS, 0.5, recalls=RECALLS)
    for protocol in ("strategy+drop", "random+drop"):
        with pytest.raises(ValueError, match="recalls"):
            keep_indices(protocol, LABELS, 0.5, scores=np.zeros(60))
    with pytest.raises(ValueError, match="NaN"):
        keep_indices("strategy", LABELS, 0.5, scores=np.r_[np.zeros(59), np.nan])
    with pytest.raises(ValueError, match=r"shape \(60,\)"):
        keep_indices("strategy", LABELS, 0.5, scores=np.zeros(59))
    with pytest.raises(ValueError, match="recalls"):
        keep_indices("random+drop", LABELS, 0.5, recalls=[0.5, 0.5])
    with pytest.raises(ValueError, match="recalls"):
        keep_indices("random+drop", LABELS, 0.5, recalls=[0.5, 0.5, 1.5])
    with pytest.raises(ValueError, match="density"):
        keep_indices("random", LABELS, 0.0)
