"""DRoP quotas (Algorithm 1), the public-code `counts` rule, rounding and StrategyQ quotas."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dropkit.quotas import (
    drop_densities,
    drop_quotas,
    kept_total,
    largest_remainder,
    strategy_quotas,
)

FAST = settings(max_examples=200, deadline=None)


def algorithm1_literal(class_sizes, recalls, density, tol=1e-12):
    """Line-by-line transcription of the paper's Algorithm 1, with a tolerance on `E > 0`."""
    sizes = np.asarray(class_sizes, float)
    unsaturated = list(range(len(sizes)))
    excess = density * sizes.sum()
    densities = np.zeros(len(sizes))
    for _ in range(10 * len(sizes) + 10):
        if excess <= tol * sizes.sum() or not unsaturated:
            break
        z = sum(sizes[k] * (1 - recalls[k]) for k in unsaturated) / excess
        for k in list(unsaturated):
            step = (1 - recalls[k]) / z
            densities[k] += step
            excess -= sizes[k] * step
            if densities[k] > 1:
                unsaturated.remove(k)
                excess += sizes[k] * (densities[k] - 1)
                densities[k] = 1.0
    return densities


# ----------------------------------------------------------------- exact, hand-computed cases


def test_balanced_two_classes_exact():
    # N = (100, 100), r = (0.5, 0.75), d = 0.5: Z = (0.5*100 + 0.25*100)/200 = 0.375,
    # d_0 = 0.5*0.5/0.375 = 2/3, d_1 = 0.5*0.25/0.375 = 1/3 -> kept 66.67, 33.33 -> (67, 33).
    np.testing.assert_allclose(drop_densities([100, 100], [0.5, 0.75], 0.5), [2 / 3, 1 / 3])
    for rule in ("paper", "counts"):
        quotas = drop_quotas([100, 100], [0.5, 0.75], 0.5, rule=rule)
        np.testing.assert_array_equal(quotas, [67, 33])
    assert drop_quotas([100, 100], [0.5, 0.75], 0.5).dtype == np.int64


def test_saturation_one_class_exact():
    # N = 100 each, r = (0.2, 0.6, 0.8), d = 0.8, dN = 240, weights 1 - r = (0.8, 0.4, 0.2).
    # Pass 1: c = 240/140, d_0 = 0.8*240/140 = 1.37 > 1 -> class 0 saturates (100 kept).
    # Pass 2: 140 left over weights (0.4, 0.2): c = 140/60, d_1 = 14/15, d_2 = 7/15.
    # Counts 93.33 and 46.67 -> floors 93 + 46 + 100 = 239, the missing one goes to the larger
    # remainder (class 2): (100, 93, 47).
    densities = drop_densities([100, 100, 100], [0.2, 0.6, 0.8], 0.8)
    np.testing.assert_allclose(densities, [1.0, 14 / 15, 7 / 15])
    np.testing.assert_array_equal(drop_quotas([100, 100, 100], [0.2, 0.6, 0.8], 0.8), [100, 93, 47])


def test_saturation_cascades_exact():
    # N = 100 each, r = (0, 0.5, 0.9), d = 0.8, dN = 240, weights (1, 0.5, 0.1).
    # Pass 1: c = 1.5 -> d_0 = 1.5 saturates; pass 2: 140 over (0.5, 0.1): c = 140/60,
    # d_1 = 1.17 saturates too; pass 3: 40 left for class 2 alone: d_2 = 0.4.
    np.testing.assert_allclose(drop_densities([100, 100, 100], [0.0, 0.5, 0.9], 0.8), [1, 1, 0.4])
    quotas = drop_quotas([100, 100, 100], [0.0, 0.5, 0.9], 0.8)
    np.testing.assert_array_equal(quotas, [100, 100, 40])


def test_paper_and_counts_rules_differ_on_imbalanced_data():
    # N = (100, 10), r = (0.2, 0.5), d = 0.5, dN = 55.
    # paper:  d_k = c (1 - r_k): 100*0.8c + 10*0.5c = 85c = 55 -> c = 11/17,
    #         d = (8.8/17, 5.5/17) = (0.518, 0.324), kept 51.76 + 3.24 -> (52, 3).
    # counts: n_k = c (1 - r_k): 0.8c + 0.5c = 55 -> c = 42.3, n = (33.8, 21.2) but class 1 has
    #         only 10 -> it saturates and class 0 takes the other 45: (45, 10).
    sizes, recalls = [100, 10], [0.2, 0.5]
    np.testing.assert_allclose(drop_densities(sizes, recalls, 0.5), [8.8 / 17, 5.5 / 17])
    np.testing.assert_array_equal(drop_quotas(sizes, recalls, 0.5), [52, 3])
    np.testing.assert_allclose(drop_densities(sizes, recalls, 0.5, rule="counts"), [0.45, 1.0])
    np.testing.assert_array_equal(drop_quotas(sizes, recalls, 0.5, rule="counts"), [45, 10])


def test_class_with_recall_one_gets_nothing_without_warning():
    # N = (10, 10), r = (0.5, 1), d = 0.5: all 10 samples go to class 0 (d_0 = 1 exactly).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(drop_quotas([10, 10], [0.5, 1.0], 0.5), [10, 0])


def test_all_recalls_one_falls_back_to_uniform_density_with_warning():
    with pytest.warns(UserWarning, match="Z = 0"):
        np.testing.assert_allclose(drop_densities([10, 20, 30], [1, 1, 1], 0.5), [0.5, 0.5, 0.5])
    with pytest.warns(UserWarning, match="Z = 0"):
        np.testing.assert_array_equal(drop_quotas([10, 20, 30], [1, 1, 1], 0.5), [5, 10, 15])


def test_excess_left_for_recall_one_classes_is_spread_uniformly_with_warning():
    # N = 10 each, r = (0.5, 1, 1), d = 0.9, T = 27: class 0 saturates at 10; the other 17 have
    # only recall-1 classes left (Z = 0) -> 8.5 each -> tie broken towards the lower index: (9, 8).
    with pytest.warns(UserWarning, match="Z = 0"):
        np.testing.assert_array_equal(drop_quotas([10, 10, 10], [0.5, 1, 1], 0.9), [10, 9, 8])


def test_min_per_class_floor():
    # N = 10 each, r = (0.5, 1, 1), d = 0.5, T = 15, floor 3: classes 1, 2 are lifted to 3 and
    # class 0 takes the remaining 9.
    np.testing.assert_array_equal(
        drop_quotas([10, 10, 10], [0.5, 1, 1], 0.5, min_per_class=3), [9, 3, 3]
    )
    # The floor is capped at the class size: N = (2, 10, 10), all r = 0.5, d = 0.6, T = 13;
    # floors (2, 5, 5); class 0 stays at 2, classes 1 and 2 share 11 -> 5.5 each -> (6, 5).
    np.testing.assert_array_equal(
        drop_quotas([2, 10, 10], [0.5, 0.5, 0.5], 0.6, min_per_class=5), [2, 6, 5]
    )
    # A floor below every DRoP count changes nothing.
    np.testing.assert_array_equal(
        drop_quotas([100, 100, 100], [0.2, 0.6, 0.8], 0.8, min_per_class=40), [100, 93, 47]
    )


def test_min_per_class_infeasible_raises():
    with pytest.raises(ValueError, match="min_per_class"):
        drop_quotas([10, 10, 10], [0.5, 1, 1], 0.5, min_per_class=6)  # needs 18 > 15


def test_density_one_keeps_everything():
    np.testing.assert_array_equal(drop_quotas([7, 3, 5], [0.1, 0.9, 0.5], 1.0), [7, 3, 5])
    with pytest.warns(UserWarning, match="Z = 0"):  # the recall-1 class must be filled too
        np.testing.assert_array_equal(drop_quotas([7, 3, 5], [0.1, 0.9, 1.0], 1.0), [7, 3, 5])


def test_kept_total_is_python_round():
    assert kept_total(10, 0.25) == round(2.5) == 2
    assert kept_total(10, 0.35) == round(0.35 * 10)
    assert kept_total(60000, 0.3) == 18000


def test_largest_remainder_ties_go_to_lower_index():
    np.testing.assert_array_equal(largest_remainder([1.5, 1.5, 1.0], 4), [2, 1, 1])
    np.testing.assert_array_equal(largest_remainder([0.2, 0.7, 2.1], 3), [0, 1, 2])


def test_strategy_quotas_counts_kept_classes():
    labels = np.array([0, 1, 1, 2, 2, 2, 0])
    np.testing.assert_array_equal(strategy_quotas(labels, [0, 2, 3, 5], 4), [1, 1, 2, 0])


def test_core_modules_do_not_import_torch():
    code = (
        "import sys, dropkit.quotas, dropkit.select, dropkit.metrics; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"density": 0.0}, "density"),
        ({"density": -0.1}, "density"),
        ({"density": 1.5}, "density"),
        ({"density": float("nan")}, "density"),
        ({"density": float("inf")}, "density"),
        ({"density": "0.5"}, "density"),
        ({"recalls": [-0.1, 0.5]}, "recalls"),
        ({"recalls": [0.5, 1.1]}, "recalls"),
        ({"recalls": [float("nan"), 0.5]}, "recalls"),
        ({"recalls": [0.5, 0.5, 0.5]}, "recalls"),
        ({"recalls": [[0.5, 0.5]]}, "recalls"),
        ({"class_sizes": [-1, 5]}, "class_sizes"),
        ({"class_sizes": [0, 5]}, "class_sizes"),
        ({"class_sizes": [1.5, 2]}, "class_sizes"),
        ({"class_sizes": [[1, 2]]}, "class_sizes"),
        ({"class_sizes": []}, "class_sizes"),
        ({"rule": "density"}, "rule"),
    ],
)
@pytest.mark.parametrize("function", [drop_quotas, drop_densities])
def test_bad_input_raises_naming_argument(function, kwargs, name):
    arguments = {"class_sizes": [10, 5], "recalls": [0.5, 0.7], "density": 0.5, **kwargs}
    with pytest.raises(ValueError, match=name):
        function(**arguments)


@pytest.mark.parametrize("floor", [-1, 1.5, True])
def test_bad_min_per_class_raises(floor):
    with pytest.raises(ValueError, match="min_per_class"):
        drop_quotas([10, 5], [0.5, 0.7], 0.5, min_per_class=floor)


@pytest.mark.parametrize(
    "labels, keep, num_classes, name",
    [
        ([0, 1, 2], [0, 0], 3, "keep_indices"),
        ([0, 1, 2], [3], 3, "keep_indices"),
        ([0, 1, 2], [-1], 3, "keep_indices"),
        ([0, 1, 3], [0], 3, "labels"),
        ([0.5, 1, 2], [0], 3, "labels"),
        ([0, 1, 2], [0], 0, "num_classes"),
    ],
)
def test_strategy_quotas_bad_input(labels, keep, num_classes, name):
    with pytest.raises(ValueError, match=name):
        strategy_quotas(labels, keep, num_classes)


# ----------------------------------------------------------------- properties


@st.composite
def problems(draw, max_recall=1.0):
    k = draw(st.integers(1, 8))
    sizes = draw(st.lists(st.integers(1, 500), min_size=k, max_size=k))
    recalls = draw(st.lists(st.floats(0.0, max_recall), min_size=k, max_size=k))
    density = draw(st.floats(0.01, 1.0))
    assume(round(density * sum(sizes)) >= 1)  # a density that keeps nothing is refused (test_hardening)
    return np.array(sizes), np.array(recalls), density


@FAST
@given(problems(), st.sampled_from(["paper", "counts"]), st.integers(0, 30))
def test_quotas_sum_and_caps(problem, rule, floor):
    sizes, recalls, density = problem
    total = round(density * sizes.sum())
    assume(np.minimum(floor, sizes).sum() <= total)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        quotas = drop_quotas(sizes, recalls, density, rule=rule, min_per_class=floor)
    assert quotas.sum() == total
    assert np.all(quotas <= sizes)
    assert np.all(quotas >= np.minimum(floor, sizes))


@FAST
@given(problems(max_recall=0.99))
def test_densities_match_literal_algorithm1(problem):
    sizes, recalls, density = problem
    np.testing.assert_allclose(
        drop_densities(sizes, recalls, density), algorithm1_literal(sizes, recalls, density),
        atol=1e-9,
    )


@FAST
@given(problems(max_recall=0.99), st.sampled_from(["paper", "counts"]))
def test_quotas_are_the_rounded_continuous_allocation(problem, rule):
    sizes, recalls, density = problem
    total = round(density * sizes.sum())
    assume(total > 0)
    continuous = drop_densities(sizes, recalls, total / sizes.sum(), rule=rule) * sizes
    quotas = drop_quotas(sizes, recalls, density, rule=rule)
    assert np.all(np.abs(quotas - continuous) < 1 + 1e-9)


@FAST
@given(problems(max_recall=0.99))
def test_paper_rule_lower_recall_never_gets_lower_density(problem):
    sizes, recalls, density = problem
    densities = drop_densities(sizes, recalls, density)
    for i in range(len(sizes)):
        for j in range(len(sizes)):
            if recalls[i] < recalls[j]:
                assert densities[i] >= densities[j] - 1e-12
    unsaturated = densities < 1 - 1e-12
    ratios = densities[unsaturated] / (1 - recalls[unsaturated])  # d_k proportional to 1 - r_k
    np.testing.assert_allclose(ratios, ratios.max() if len(ratios) else ratios, rtol=1e-9)


@FAST
@given(problems(max_recall=0.99))
def test_counts_rule_counts_are_proportional_to_errors(problem):
    sizes, recalls, density = problem
    kept = drop_densities(sizes, recalls, density, rule="counts") * sizes
    unsaturated = kept < sizes - 1e-9
    ratios = kept[unsaturated] / (1 - recalls[unsaturated])  # n_k proportional to 1 - r_k
    np.testing.assert_allclose(ratios, ratios.max() if len(ratios) else ratios, rtol=1e-9)
    # every saturated class would have got at least its size at the common ratio
    if unsaturated.any():
        c = ratios.max()
        assert np.all(c * (1 - recalls[~unsaturated]) >= sizes[~unsaturated] * (1 - 1e-9))


@FAST
@given(st.integers(1, 8), st.integers(1, 500), st.data())
def test_rules_agree_on_balanced_data(k, size, data):
    recalls = np.array(data.draw(st.lists(st.floats(0, 0.99), min_size=k, max_size=k)))
    density = data.draw(st.floats(0.01, 1.0))
    assume(round(density * k * size) >= 1)  # a density that keeps nothing is refused
    sizes = np.full(k, size)
    np.testing.assert_allclose(
        drop_densities(sizes, recalls, density),
        drop_densities(sizes, recalls, density, rule="counts"),
        atol=1e-12,
    )
    np.testing.assert_array_equal(
        drop_quotas(sizes, recalls, density), drop_quotas(sizes, recalls, density, rule="counts")
    )


@FAST
@given(problems(max_recall=0.99), st.sampled_from(["paper", "counts"]))
def test_saturation_is_idempotent(problem, rule):
    """Re-running on the unsaturated classes alone, with the saturated ones' samples taken out of
    the target, reproduces the same densities and counts; and re-running is deterministic."""
    sizes, recalls, density = problem
    densities = drop_densities(sizes, recalls, density, rule=rule)
    quotas = drop_quotas(sizes, recalls, density, rule=rule)
    np.testing.assert_array_equal(quotas, drop_quotas(sizes, recalls, density, rule=rule))
    saturated = densities >= 1 - 1e-12
    assume(saturated.any() and not saturated.all())
    rest = ~saturated
    rest_target = density * sizes.sum() - sizes[saturated].sum()
    assume(rest_target > 1e-6 * sizes.sum())
    rest_density = min(1.0, rest_target / sizes[rest].sum())
    np.testing.assert_allclose(
        drop_densities(sizes[rest], recalls[rest], rest_density, rule=rule), densities[rest],
        rtol=1e-9, atol=1e-12,
    )
    assert np.all(quotas[saturated] == sizes[saturated])
    rest_total = int(quotas[rest].sum())
    assume(rest_total > 0)
    rest_quotas = drop_quotas(sizes[rest], recalls[rest], rest_total / sizes[rest].sum(), rule=rule)
    np.testing.assert_array_equal(rest_quotas, quotas[rest])


@FAST
@given(problems(max_recall=0.99), st.floats(0.01, 1.0), st.sampled_from(["paper", "counts"]))
def test_more_density_never_unsaturates_a_class(problem, other_density, rule):
    sizes, recalls, density = problem
    low, high = sorted([density, other_density])
    low_densities = drop_densities(sizes, recalls, low, rule=rule)
    high_densities = drop_densities(sizes, recalls, high, rule=rule)
    assert np.all(high_densities >= low_densities - 1e-12)


@pytest.mark.parametrize("recalls", [["a", "b", "c"], [0.5, None, 0.2], [True, False, True]])
def test_non_numeric_recalls_name_recalls(recalls):
    with pytest.raises(ValueError, match=r"^recalls must be real numbers in \[0, 1\], got \["):
        drop_quotas([10, 10, 10], recalls, 0.5)
