"""Selection: random / top-score, global / within-class quotas, seeded tie-breaking."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dropkit.quotas import drop_quotas
from dropkit.select import select

FAST = settings(max_examples=200, deadline=None)

LABELS = np.repeat([0, 1, 2], [40, 30, 30])  # 100 samples, classes of 40/30/30


def class_counts(labels, kept, num_classes=3):
    return np.bincount(labels[kept], minlength=num_classes)


def test_random_global_subset_size_sorted_unique():
    kept = select(LABELS, 0.37, seed=3)
    assert kept.dtype == np.int64
    assert len(kept) == 37
    assert np.all(np.diff(kept) > 0)
    assert kept.min() >= 0 and kept.max() < 100


def test_same_seed_same_subset_other_seed_other_subset():
    for kwargs in ({}, {"quotas": [20, 10, 10]}, {"scores": np.zeros(100)}):
        a = select(LABELS, 0.4, seed=7, **kwargs)
        np.testing.assert_array_equal(a, select(LABELS, 0.4, seed=7, **kwargs))
        assert not np.array_equal(a, select(LABELS, 0.4, seed=8, **kwargs))


def test_random_selection_is_not_dataset_order():
    prefixes = [np.array_equal(select(LABELS, 0.1, seed=s), np.arange(10)) for s in range(20)]
    assert not any(prefixes)


def test_density_one_keeps_everything():
    np.testing.assert_array_equal(select(LABELS, 1.0, seed=1), np.arange(100))
    np.testing.assert_array_equal(select(LABELS, 1.0, quotas=[40, 30, 30]), np.arange(100))


def test_global_top_scores_exact():
    scores = np.random.default_rng(0).permutation(100).astype(float)  # distinct scores
    kept = select(LABELS, 0.25, scores=scores, seed=11)
    np.testing.assert_array_equal(kept, np.sort(np.flatnonzero(scores >= 75)))


def test_top_scores_within_class_exact():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    scores = np.array([0.1, 0.9, 0.5, 3.0, -1.0, 2.0, 0.0, 7.0, 8.0, 9.0])
    # quotas (2, 2, 1): class 0 keeps its two best (1, 2), class 1 (3, 5), class 2 (9).
    kept = select(labels, 0.5, quotas=[2, 2, 1], scores=scores, seed=0)
    np.testing.assert_array_equal(kept, [1, 2, 3, 5, 9])


def test_quotas_only_random_within_class_counts_exact():
    for seed in range(5):
        kept = select(LABELS, 0.45, quotas=[5, 30, 10], seed=seed)
        np.testing.assert_array_equal(class_counts(LABELS, kept), [5, 30, 10])


def test_ties_broken_by_seed_not_dataset_order():
    scores = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 2.0])
    chosen = set()
    for seed in range(30):
        kept = select(np.zeros(6, int), 0.5, scores=scores, seed=seed)
        assert 5 in kept and 0 not in kept  # the best is always kept, the worst never
        chosen.add(tuple(kept))
    assert len(chosen) > 1
    assert chosen != {(1, 2, 5)}


def test_constant_scores_equal_random_selection_under_the_same_seed():
    for quotas in (None, [16, 12, 12]):
        for seed in (0, 1):
            np.testing.assert_array_equal(
                select(LABELS, 0.4, quotas=quotas, scores=np.ones(100), seed=seed),
                select(LABELS, 0.4, quotas=quotas, seed=seed),
            )


def test_constant_scores_within_class_differ_across_seeds_but_counts_exact():
    subsets = set()
    for seed in range(5):
        kept = select(LABELS, 0.4, quotas=[16, 12, 12], scores=np.full(100, 3.0), seed=seed)
        np.testing.assert_array_equal(class_counts(LABELS, kept), [16, 12, 12])
        subsets.add(tuple(kept))
    assert len(subsets) == 5


def test_class_absent_from_labels_may_have_zero_quota():
    labels = np.array([0, 0, 2, 2])  # class 1 is empty, class 3 beyond the largest label
    kept = select(labels, 0.5, quotas=[1, 0, 1, 0], seed=0)
    np.testing.assert_array_equal(np.bincount(labels[kept], minlength=3), [1, 0, 1])


def test_infinite_scores_sort_first_and_last():
    scores = np.array([np.inf, 0.0, -np.inf, 1.0])
    np.testing.assert_array_equal(select(np.zeros(4, int), 0.5, scores=scores), [0, 3])


@pytest.mark.parametrize(
    "labels, density, kwargs, name",
    [
        ([0, 1], 0.0, {}, "density"),
        ([0, 1], 1.1, {}, "density"),
        ([0, 1], float("nan"), {}, "density"),
        ([0, 1], -0.5, {}, "density"),
        ([], 0.5, {}, "labels"),
        ([0.5, 1], 0.5, {}, "labels"),
        ([-1, 1], 0.5, {}, "labels"),
        ([[0, 1]], 0.5, {}, "labels"),
        (["a", "b"], 0.5, {}, "labels"),
        ([0, 1, 1, 0], 0.5, {"quotas": [1, 2]}, "quotas"),  # sums to 3, not 2
        ([0, 0, 0, 1], 0.5, {"quotas": [0, 2]}, "quotas"),  # class 1 has one sample
        ([0, 0, 2, 2], 0.5, {"quotas": [1, 1, 0]}, "quotas"),  # class 1 is empty
        ([0, 1, 1, 0], 0.5, {"quotas": [3, -1]}, "quotas"),
        ([0, 1, 2, 0], 0.5, {"quotas": [1, 1]}, "quotas"),  # label 2 has no quota
        ([0, 1, 1, 0], 0.5, {"quotas": [0.5, 1.5]}, "quotas"),
        ([0, 1, 1, 0], 0.5, {"scores": [1.0, 2.0]}, "scores"),
        ([0, 1, 1, 0], 0.5, {"scores": [1.0, np.nan, 0.0, 0.0]}, "scores"),
        ([0, 1, 1, 0], 0.5, {"seed": -1}, "seed"),
        ([0, 1, 1, 0], 0.5, {"seed": 1.5}, "seed"),
    ],
)
def test_bad_input_raises_naming_argument(labels, density, kwargs, name):
    with pytest.raises(ValueError, match=name):
        select(labels, density, **kwargs)


@st.composite
def labelled_problems(draw):
    k = draw(st.integers(1, 5))
    labels = np.array(draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=300)))
    present = np.unique(labels)
    labels = np.searchsorted(present, labels)  # make every class non-empty
    recalls = draw(st.lists(st.floats(0, 0.99), min_size=len(present), max_size=len(present)))
    density = draw(st.floats(0.01, 1.0))
    assume(round(density * len(labels)) >= 1)  # keeping nothing raises (issue 14)
    return labels, np.array(recalls), density


@FAST
@given(labelled_problems(), st.booleans(), st.integers(0, 2**31))
def test_drop_quotas_are_selected_exactly(problem, with_scores, seed):
    labels, recalls, density = problem
    quotas = drop_quotas(np.bincount(labels), recalls, density)
    scores = np.random.default_rng(seed).integers(0, 3, len(labels)) if with_scores else None
    kept = select(labels, density, quotas=quotas, scores=scores, seed=seed)
    np.testing.assert_array_equal(np.bincount(labels[kept], minlength=len(quotas)), quotas)
    assert len(np.unique(kept)) == len(kept) == round(density * len(labels))
    if with_scores:  # within every class, no dropped sample beats a kept one
        dropped = np.setdiff1d(np.arange(len(labels)), kept)
        for k in range(len(quotas)):
            kept_k, dropped_k = kept[labels[kept] == k], dropped[labels[dropped] == k]
            if len(kept_k) and len(dropped_k):
                assert scores[kept_k].min() >= scores[dropped_k].max()


@FAST
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=200), st.floats(0.01, 1.0),
       st.integers(0, 2**31))
def test_global_top_score_invariant(scores, density, seed):
    scores = np.array(scores, dtype=float)
    assume(round(density * len(scores)) >= 1)  # keeping nothing raises (issue 14)
    kept = select(np.zeros(len(scores), int), density, scores=scores, seed=seed)
    dropped = np.setdiff1d(np.arange(len(scores)), kept)
    assert len(kept) == round(density * len(scores))
    if len(kept) and len(dropped):
        assert scores[kept].min() >= scores[dropped].max()


def test_a_density_that_keeps_nothing_is_an_error():
    labels = np.arange(60) % 3
    with pytest.raises(ValueError, match=r"density=0.001 keeps round\(0.001 \* 60\) = 0 of 60"):
        select(labels, 0.001)
    assert len(select(labels, 1 / 60)) == 1
