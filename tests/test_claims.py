"""dropkit.claims on constructed data whose answers are known: the rule (t-interval over seeds,
three verdicts) reaches every verdict, and the "what we see" tables hold hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dropkit import claims

SIZES = (100, 100, 100)
FULL = [0.6, 0.8, 1.0]  # full-dataset recalls: accuracy 0.8, worst class 0.6


def make_row(protocol, method, density, recalls, counts=None, seed=0):
    recalls = np.asarray(recalls, dtype=float)
    if counts is None:
        counts = [round(density * n) for n in SIZES]
    return {
        "dataset": "fashion-mnist", "model": "mlp", "protocol": protocol, "method": method,
        "density": density, "seed": seed, "test_recalls": recalls.tolist(),
        "class_counts": list(counts), "class_sizes": list(SIZES),
        "test_accuracy": recalls.mean(), "test_worst_class": recalls.min(),
        "test_gap": recalls.max() - recalls.min(), "test_std": recalls.std(),
    }


def frame_of(curves, *, full=FULL, seeds=(0,)):
    """``curves``: {(protocol, method): {density: recalls or (recalls, counts)}}."""
    rows = [make_row("none", None, 1.0, full, SIZES, seed) for seed in seeds]
    for (protocol, method), by_density in curves.items():
        for density, value in by_density.items():
            recalls, counts = value if isinstance(value, tuple) else (value, None)
            rows += [make_row(protocol, method, density, recalls, counts, seed) for seed in seeds]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- tables


def test_reference_density_is_the_closest_present_larger_on_ties():
    frame = frame_of({("random", None): {0.3: FULL, 0.7: FULL, 0.9: FULL}})
    assert claims.reference_density(frame) == 0.7  # 0.3 and 0.7 are equally far from 0.5
    assert claims.reference_density(frame, 0.85) == 0.9
    assert claims.reference_density(frame_of({("random", None): {0.5: FULL}})) == 0.5


def test_metrics_at_density_means_over_seeds_in_percent():
    frame = pd.concat([
        frame_of({("random", None): {0.5: [0.4, 0.8, 1.0]}}, seeds=(0,)),
        frame_of({("random", None): {0.5: [0.6, 0.8, 1.0]}}, full=[0.7, 0.8, 0.9], seeds=(1,)),
    ], ignore_index=True)
    table = claims.metrics_at_density(frame, 0.5)
    assert list(table.index) == ["Full dataset", "Random"]
    assert table.loc["Random", "worst-class (%)"] == pytest.approx(50.0)
    assert table.loc["Random", "accuracy (%)"] == pytest.approx(100 * (2.2 / 3 + 2.4 / 3) / 2)
    assert table.loc["Full dataset", "worst-class (%)"] == pytest.approx(65.0)
    assert table.loc["Full dataset", "max-min gap (%)"] == pytest.approx(30.0)
    assert table.loc["Random", "seeds"] == 2
    # the spread over the seeds: worst class 0.4 and 0.6 (Random), 0.6 and 0.7 (full dataset)
    assert table.loc["Random", "worst-class (%) sd"] == pytest.approx(100 * np.std([0.4, 0.6], ddof=1))
    assert table.loc["Full dataset", "worst-class (%) sd"] == pytest.approx(100 * np.std([0.6, 0.7], ddof=1))
    with pytest.raises(ValueError, match="density=0.3"):
        claims.metrics_at_density(frame, 0.3)


def test_peak_densities_takes_the_larger_density_on_ties():
    frame = frame_of({
        ("random", None): {0.3: [0.5, 0.8, 1.0], 0.5: [0.7, 0.8, 1.0], 0.7: [0.7, 0.8, 1.0]},
        ("random+drop", "el2n"): {0.3: [0.9, 0.9, 0.9], 0.5: [0.6, 0.8, 1.0], 0.7: [0.5, 0.8, 1.0]},
    })
    peaks = claims.peak_densities(frame)
    assert peaks.loc["Random", "peak density"] == 0.7
    assert peaks.loc["Random", "peak value (%)"] == pytest.approx(70.0)
    assert peaks.loc["Random+DRoP", "peak density"] == 0.3
    assert peaks.loc["Random+DRoP", "peak value (%)"] == pytest.approx(90.0)


def test_tables_need_one_model_dataset_pair():
    frame = frame_of({("random", None): {0.5: FULL}})
    with pytest.raises(ValueError, match="exactly one model-dataset pair"):
        claims.metrics_at_density(pd.concat([frame, frame.assign(model="cnn")]), 0.5)
    # two settings of one pair (the ``setting`` column of a chapter's rows) are not mixed either
    twins = pd.concat([frame.assign(setting="mlp-a"), frame.assign(setting="mlp-b")])
    with pytest.raises(ValueError, match="exactly one model-dataset pair .*mlp-a"):
        claims.bias_table(twins, 0.5)
    assert claims.metrics_at_density(twins[twins["setting"] == "mlp-b"], 0.5).loc["Random", "seeds"] == 1


# --------------------------------------------------------------------------- chapter 02


def benchmark(grand_recalls):
    # Full dataset: accuracy 0.8, worst 0.6 (distance 0.2). EL2N at 0.5: accuracy 0.7, worst 0.3
    # (worst-class drop 0.3 > accuracy drop 0.1: +20 pp extra).
    return frame_of({
        ("random", None): {0.1: [0.4, 0.7, 0.9], 0.5: [0.5, 0.8, 0.9]},
        ("strategy", "el2n"): {0.1: ([0.2, 0.6, 0.9], [0, 10, 20]), 0.5: ([0.3, 0.8, 1.0], [30, 50, 70])},
        ("strategy", "grand"): {0.1: ([0.5, 0.5, 0.5], [10, 10, 10]), 0.5: (grand_recalls, [50, 50, 50])},
    })


def test_bias_table_numbers():
    table = claims.bias_table(benchmark([0.5, 0.8, 0.8]), 0.5)
    assert list(table.index) == ["Full dataset", "Random", "EL2N", "GraNd"]
    # accuracy drop 80 - 70 = 10 pp, worst-class drop 60 - 30 = 30 pp: 20 pp extra
    assert table.loc["Full dataset", "accuracy (%)"] - table.loc["EL2N", "accuracy (%)"] == pytest.approx(10.0)
    assert table.loc["Full dataset", "worst-class (%)"] - table.loc["EL2N", "worst-class (%)"] == pytest.approx(30.0)
    assert table.loc["EL2N", "extra worst-class drop (pp)"] == pytest.approx(20.0)
    assert "accuracy (%) sd" in table and "max-min gap (%)" not in table  # spread shown, fewer columns
    assert table.loc["EL2N", "worst-class peaks at d"] == 0.5
    assert table.loc["EL2N", "min SPC at d=0.1"] == 0
    assert table.loc["GraNd", "min SPC at d=0.1"] == 10
    # EL2N's class densities rise with the full-dataset class accuracy (0.6, 0.8, 1.0)
    assert table.loc["EL2N", "corr(class acc, class density)"] == pytest.approx(
        (np.corrcoef([0.6, 0.8, 1.0], [0.0, 0.1, 0.2])[0, 1] + 1.0) / 2)
    assert np.isnan(table.loc["GraNd", "corr(class acc, class density)"])  # constant densities


def du_frame(du_counts, other_counts):
    return frame_of({
        ("strategy", "dynamic_uncertainty"): {0.1: ([0.5, 0.7, 0.9], du_counts)},
        ("strategy", "el2n"): {0.1: ([0.5, 0.7, 0.9], other_counts)},
    })


# --------------------------------------------------------------------------- chapter 03


def evaluation(drop_worst, el2n_worst=0.5):
    # Full dataset worst class 0.6; every curve has recalls (worst, 0.8, 0.9) at d=0.5.
    return frame_of({
        ("random", None): {0.5: [0.4, 0.8, 0.9]},
        ("strategy", "el2n"): {0.5: [el2n_worst, 0.8, 0.9]},
        ("random+strategyq", "el2n"): {0.5: [0.45, 0.8, 0.9]},
        ("strategy+drop", "el2n"): {0.5: [0.55, 0.8, 0.9]},
        ("random+drop", "el2n"): {0.5: [drop_worst, 0.8, 0.9]},
    })


def test_drop_table_rows_and_columns():
    table = claims.drop_table(evaluation(0.7), 0.5)
    assert list(table.index) == ["Full dataset", "Random", "EL2N", "Random+EL2NQ", "EL2N+DRoP", "Random+DRoP"]
    assert table.loc["Random+DRoP", "worst-class (%)"] == pytest.approx(70.0)
    assert table.loc["Random+DRoP", "max-min gap (%)"] == pytest.approx(20.0)
    assert table.loc["Random+DRoP", "std (%)"] == pytest.approx(100 * np.std([0.7, 0.8, 0.9]))
    assert {"worst-class peaks at d", "corr(class acc, class density)"} <= set(table.columns)


def peaks_frame(drop_by_density):
    high = {0.3: [0.4, 0.8, 0.9], 0.5: [0.5, 0.8, 0.9], 0.9: [0.6, 0.8, 0.9]}
    return frame_of({
        ("random", None): high,
        ("strategy", "el2n"): high,
        ("random+drop", "el2n"): {d: [w, 0.8, 0.9] for d, w in drop_by_density.items()},
    })


def correlation_frame(drop_counts):
    return frame_of({
        ("random", None): {0.5: ([0.5, 0.8, 0.9], [49, 50, 51])},
        ("strategy", "el2n"): {0.5: ([0.5, 0.8, 0.9], [60, 50, 40])},
        ("random+drop", "el2n"): {0.5: ([0.7, 0.8, 0.9], drop_counts)},
    })


def test_provenance_sentence_lists_revisions_machines_and_time():
    frame = frame_of({("random", None): {0.5: FULL}}, seeds=(0, 1))
    frame = frame.assign(dropkit_version="0.1.0", git_revision=["abc", "abc", "def", "def"],
                         device_name="x86_64", torch_version="2.1", numpy_version="2.0",
                         python_version="3.11.7", seconds=[30.0, 30.0, 60.0, 60.0],
                         finished_at=["2026-01-02T00:00:00", "2026-01-01T00:00:00",
                                      "2026-01-03T00:00:00", "2026-01-01T12:00:00"])
    assert claims.provenance_sentence(frame) == (
        "4 runs computed by dropkit 0.1.0 at git revision abc, def on x86_64 (torch 2.1, numpy 2.0, "
        "Python 3.11.7); summed wall time 3.0 min, finished between 2026-01-01T00:00:00 and "
        "2026-01-03T00:00:00.")
    with pytest.raises(ValueError, match="no runs"):
        claims.provenance_sentence(frame.iloc[:0])


# --------------------------------------------------------------------------- chapters 04-07


def curve_frame():
    rows = [make_row("none", None, 1.0, FULL, SIZES, seed) for seed in (0, 1)]
    rows += [make_row("random+drop", "el2n", 0.5, r, seed=s) for s, r in ((0, [0.7, 0.8, 0.9]), (1, [0.5, 0.8, 0.9]))]
    rows += [make_row("strategy", "el2n", 0.5, [0.4, 0.9, 1.0], seed=s) for s in (0, 1)]
    frame = pd.DataFrame(rows)
    frame["curve"] = ["Full dataset"] * 2 + ["Random+DRoP"] * 2 + ["EL2N"] * 2
    return frame


def test_curve_metrics_means_over_seeds_and_reads_full_dataset_at_density_one():
    table = claims.curve_metrics(curve_frame(), 0.5, ("test_accuracy", "test_worst_class"))
    assert list(table.index) == ["Full dataset", "Random+DRoP", "EL2N"]
    assert table.loc["Random+DRoP", "worst-class (%)"] == pytest.approx(60.0)
    assert table.loc["Random+DRoP", "accuracy (%)"] == pytest.approx(100 * (2.4 + 2.2) / 6)
    assert table.loc["Full dataset", "worst-class (%)"] == pytest.approx(60.0)
    assert table.loc["EL2N", "seeds"] == 2
    assert table.loc["Random+DRoP", "worst-class (%) sd"] == pytest.approx(100 * np.std([0.7, 0.5], ddof=1))
    assert table.loc["EL2N", "worst-class (%) sd"] == pytest.approx(0.0)


def test_curve_metrics_rejects_absent_density_and_missing_columns():
    with pytest.raises(ValueError, match="density=0.3"):
        claims.curve_metrics(curve_frame(), 0.3)
    with pytest.raises(ValueError, match="curve"):
        claims.curve_metrics(curve_frame().drop(columns="curve"), 0.5)




# --------------------------------------------------------------------------- the rules


def effect(values, unit="pp"):
    return claims.Effect(tuple(float(v) for v in values), tuple(range(len(values))), unit, "x")


def one(values, margin=None):
    return claims.Evidence({"": effect(values)}, margin=margin, margin_source="test")


def test_t_interval_is_the_student_t_interval_over_seeds():
    mean, low, high = claims.t_interval([1.0, 2.0, 3.0])
    # s = 1, n = 3, t_{0.975, 2} = 4.302652729911275
    assert mean == 2.0
    assert (low, high) == pytest.approx((2.0 - 4.302652729911275 / np.sqrt(3), 2.0 + 4.302652729911275 / np.sqrt(3)))
    single = claims.t_interval([0.5])
    assert single[0] == 0.5 and np.isnan(single[1]) and np.isnan(single[2])
    for bad in ([], [np.nan, 1.0], [[1.0, 2.0]]):
        with pytest.raises(ValueError, match="finite"):
            claims.t_interval(bad)


@pytest.mark.parametrize("values, expected", [
    ((2.0, 2.5, 3.0, 2.2, 2.8), "holds"),            # interval above 0
    ((-2.0, -2.5, -3.0, -2.2, -2.8), "contradicted"),  # interval below 0
    ((1.0, -1.0, 2.0, -2.0, 0.5), "inconclusive"),     # interval contains 0
    ((3.0,), "inconclusive"),                          # one seed: no interval
    ((1.0, 1.0, 1.0), "holds"),                        # no spread: the interval is the mean
])
def test_superiority_reaches_every_verdict(values, expected):
    decision = claims.Superiority().decide(one(values))
    assert decision.verdict == expected
    assert expected != "holds" or decision.low > 0
    assert expected != "contradicted" or decision.high < 0


def test_superiority_p_values_are_the_one_sided_t_tests():
    from scipy import stats

    values = (1.0, 2.0, 0.5, 1.5, -0.2)
    decision = claims.Superiority().decide(one(values))
    assert decision.p_holds == pytest.approx(stats.ttest_1samp(values, 0.0, alternative="greater").pvalue)
    assert decision.p_contra == pytest.approx(stats.ttest_1samp(values, 0.0, alternative="less").pvalue)
    assert decision.p == pytest.approx(stats.ttest_1samp(values, 0.0).pvalue)  # the two-sided p enters Holm


@pytest.mark.parametrize("values, margin, expected", [
    ((-0.5, -0.3, -0.4, -0.6, -0.2), 1.0, "holds"),          # below 0, but surely above -1
    ((-2.0, -2.5, -3.0, -2.2, -2.8), 1.0, "contradicted"),   # surely below -1
    ((-1.0, 0.5, -2.0, 0.0, -1.5), 1.0, "inconclusive"),     # the interval straddles -1
])
def test_non_inferiority_is_judged_against_the_margin_not_zero(values, margin, expected):
    decision = claims.NonInferiority().decide(one(values, margin))
    assert decision.verdict == expected
    assert claims.Superiority().decide(one(values)).verdict != "holds"  # a difference test would say otherwise


@pytest.mark.parametrize("values, margin, expected", [
    ((0.1, -0.2, 0.15, 0.0, -0.05), 1.0, "holds"),          # inside (-1, 1)
    ((0.6, 0.7, 0.65, 0.62, 0.68), 1.0, "holds"),            # different from 0, yet equivalent
    ((-66.0, -80.0, -50.0, -70.0, -64.0), 3.0, "contradicted"),  # far outside: "keeps the bias" is false
    ((0.5, 2.0, -1.0, 1.5, 0.2), 1.0, "inconclusive"),       # interval crosses the margin
])
def test_equivalence_is_tost_within_the_margin(values, margin, expected):
    decision = claims.Equivalence().decide(one(values, margin))
    assert decision.verdict == expected
    if expected == "holds":
        assert -margin < decision.low and decision.high < margin


def test_rules_with_a_margin_refuse_evidence_without_one():
    for rule in (claims.Equivalence(), claims.NonInferiority()):
        for margin in (None, 0.0, -1.0, float("nan")):
            with pytest.raises(ValueError, match="margin"):
                rule.decide(one((1.0, 2.0, 3.0), margin))


def test_beats_every_is_an_intersection_union_test():
    good, also_good = (2.0, 2.5, 3.0, 2.2, 2.8), (1.0, 1.2, 0.9, 1.1, 1.3)
    noisy, bad = (1.0, -1.0, 2.0, -2.0, 0.5), (-2.0, -2.5, -3.0, -2.2, -2.8)
    rule = claims.AllOf(claims.Superiority())

    def decide(**parts):
        return rule.decide(claims.Evidence({k: effect(v) for k, v in parts.items()}))

    assert decide(a=good, b=also_good).verdict == "holds"
    undecided = decide(a=good, b=noisy)
    assert undecided.verdict == "inconclusive" and undecided.part == "b"  # the binding comparison is reported
    beaten = decide(a=good, b=bad)
    assert beaten.verdict == "contradicted"
    assert beaten.p_contra == pytest.approx(2 * claims.Superiority().decide(one(bad)).p_contra)  # Bonferroni
    assert beaten.p_holds == pytest.approx(claims.Superiority().decide(one(bad)).p_holds)  # the largest


def test_correlation_rule_tests_the_sign_of_spearmans_rho():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = x + 0.5 * rng.normal(size=200)
    assert claims.Correlation(+1).decide(claims.Evidence(points=(x, y))).verdict == "holds"
    assert claims.Correlation(-1).decide(claims.Evidence(points=(x, y))).verdict == "contradicted"
    assert claims.Correlation(+1).decide(claims.Evidence(points=(x, rng.normal(size=200)))).verdict == "inconclusive"


def test_context_observation_exact_and_not_testable_rows_are_not_tests():
    context = claims.Context("< 6 pp (another setting)").decide(one((1.8, 1.6, 2.0)))
    assert context.verdict == "context" and not context.is_test and context.mean == pytest.approx(1.8)
    every = claims.EveryReplicate()
    assert every.decide(claims.Evidence(computed={"0": 1.0, "1": 1.0})).verdict == "holds"
    assert every.decide(claims.Evidence(computed={"0": 0.0, "1": 0.0})).verdict == "contradicted"
    assert every.decide(claims.Evidence(computed={"0": 1.0, "1": 0.0})).verdict == "inconclusive"
    exact = claims.Exact({"r": 4.8}, 1)
    assert exact.decide(claims.Evidence(computed={"r": 4.8314})).verdict == "holds"
    assert exact.decide(claims.Evidence(computed={"r": 4.9})).verdict == "contradicted"
    assert claims.NotTestable("needs ImageNet").decide(claims.Evidence()).verdict == "not testable here"
    assert not every.decide(claims.Evidence(computed={"0": 1.0, "1": 1.0})).is_test
    assert not exact.decide(claims.Evidence(computed={"r": 4.8})).is_test


def test_holm_is_the_step_down_procedure_and_ignores_rows_that_are_not_tests():
    p = [0.01, 0.04, np.nan, 0.03, 0.001]
    # m = 4 tests: 0.001 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2: stop
    np.testing.assert_array_equal(claims.holm(p), [True, False, False, False, True])
    np.testing.assert_array_equal(claims.holm([0.04]), [True])
    assert not claims.holm([np.nan, np.nan]).any()


def test_minimum_detectable_effect_and_needed_n_have_80_percent_power():
    from scipy import stats

    values = (1.0, -0.5, 0.8, 0.3, -0.2)
    decision = claims.Superiority().decide(one(values))
    sd, n = float(np.std(values, ddof=1)), len(values)
    critical = stats.t.ppf(0.975, n - 1)
    assert stats.nct.sf(critical, n - 1, decision.mde * np.sqrt(n) / sd) == pytest.approx(0.8, abs=1e-6)
    mean = float(np.mean(values))
    needed = decision.n_needed
    power = lambda k: stats.nct.sf(stats.t.ppf(0.975, k - 1), k - 1, mean * np.sqrt(k) / sd)  # noqa: E731
    assert power(needed) >= 0.8 > power(needed - 1)
    assert claims.Superiority().decide(one((1.0, -1.0, 0.5, -0.5))).n_needed is None  # mean 0: never


@pytest.mark.parametrize("rule, shift, margin", [
    (claims.Superiority(), 0.0, None),          # at H0's boundary: mean 0
    (claims.NonInferiority(), -1.0, 1.0),       # mean exactly -margin
    (claims.Equivalence(), 1.0, 1.0),           # mean exactly at the margin
])
def test_no_rule_decides_by_construction_under_its_null(rule, shift, margin):
    """Null simulation: 4,000 datasets of 5 seeds at the boundary of the null (e.g. the two arms of
    a comparison exchangeable within seed): the rule says "holds" at most at its level 2.5 %
    (plus Monte-Carlo error), and an effect of 0 is never contradicted more often either."""
    rng = np.random.default_rng(1)
    holds = sum(rule.decide(one(shift + rng.normal(size=5), margin), power=False).verdict == "holds"
                for _ in range(4000))
    assert holds / 4000 <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / 4000)


def test_sign_flips_of_real_paired_differences_decide_at_the_level():
    """Swapping the two arms within a seed flips the sign of that seed's difference: over every
    such shuffle of a real 5-seed comparison, the superiority rule's two-sided p is at most 5 %
    for at most 5 % of the shuffles (2 of 32 here: the all-positive and all-negative ones)."""
    import itertools

    values = np.array([1.4, 3.1, -0.8, 2.2, 0.9])
    decided = [claims.Superiority().decide(one(values * np.array(signs)), power=False).verdict != "inconclusive"
               for signs in itertools.product((1, -1), repeat=5)]
    assert sum(decided) / len(decided) <= 0.0625
