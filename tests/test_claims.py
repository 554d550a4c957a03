"""dropkit.claims on constructed result tables whose answers are known: the "what we see" tables
hold hand-computed numbers, and every verdict of every claim sentence is reached."""

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
    assert table.loc["EL2N", "accuracy drop (pp)"] == pytest.approx(10.0)
    assert table.loc["EL2N", "worst-class drop (pp)"] == pytest.approx(30.0)
    assert table.loc["EL2N", "extra worst-class drop (pp)"] == pytest.approx(20.0)
    assert table.loc["EL2N", "worst-class peaks at d"] == 0.5
    assert table.loc["EL2N", "min SPC at d=0.1"] == 0
    assert table.loc["GraNd", "min SPC at d=0.1"] == 10
    # EL2N's class densities rise with the full-dataset class accuracy (0.6, 0.8, 1.0)
    assert table.loc["EL2N", "corr(class acc, class density)"] == pytest.approx(
        (np.corrcoef([0.6, 0.8, 1.0], [0.0, 0.1, 0.2])[0, 1] + 1.0) / 2)
    assert np.isnan(table.loc["GraNd", "corr(class acc, class density)"])  # constant densities


def test_bias_claim_holds_when_every_method_widens_the_gap():
    # GraNd: accuracy 0.7 (drop 0.1), worst 0.45 (drop 0.15): +5 pp
    sentence = claims.bias_claim(benchmark([0.45, 0.8, 0.85]), 0.5)
    assert sentence.startswith("At d=0.5, 2 of 2 score-based methods lose more worst-class")
    assert "EL2N: +20.0 pp, GraNd: +5.0 pp" in sentence
    assert sentence.endswith("exacerbates classification bias holds here.")


def test_bias_claim_holds_only_in_part():
    # GraNd: accuracy 0.7 (drop 0.1), worst 0.65 (drop -0.05): narrows the gap
    sentence = claims.bias_claim(benchmark([0.65, 0.7, 0.75]), 0.5)
    assert "1 of 2 score-based methods" in sentence and "; GraNd does not" in sentence
    assert sentence.endswith("holds only in part here.")


def test_bias_claim_does_not_hold_when_no_method_widens_the_gap():
    frame = benchmark([0.65, 0.7, 0.75])
    frame = frame[frame["method"] != "el2n"]
    sentence = claims.bias_claim(frame, 0.5)
    assert sentence.startswith("At d=0.5, 0 of 1 score-based methods")
    assert sentence.endswith("does not hold here.")
    with pytest.raises(ValueError, match="score-based"):
        claims.bias_claim(frame[frame["method"] != "grand"], 0.5)


def du_frame(du_counts, other_counts):
    return frame_of({
        ("strategy", "dynamic_uncertainty"): {0.1: ([0.5, 0.7, 0.9], du_counts)},
        ("strategy", "el2n"): {0.1: ([0.5, 0.7, 0.9], other_counts)},
    })


def test_dynamic_uncertainty_claim_holds_when_it_prunes_hard_classes_most():
    sentence = claims.dynamic_uncertainty_claim(du_frame([0, 10, 20], [10, 12, 10]))
    assert "r = +1.00 on average (the largest of all methods)" in sentence
    assert sentence.endswith("most aggressively holds here.")


def test_dynamic_uncertainty_claim_fails_when_another_method_correlates_more():
    sentence = claims.dynamic_uncertainty_claim(du_frame([5, 10, 15], [0, 10, 20]))
    assert "not above EL2N's (+1.00)" in sentence
    assert sentence.endswith("does not hold here.")
    negative = claims.dynamic_uncertainty_claim(du_frame([20, 10, 0], [10, 10, 10]))
    assert "r = -1.00" in negative and negative.endswith("does not hold here.")
    with pytest.raises(ValueError, match="Dynamic Uncertainty"):
        claims.dynamic_uncertainty_claim(frame_of({("strategy", "el2n"): {0.1: FULL}}))


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


def test_drop_claim_holds():
    sentence = claims.drop_claim(evaluation(0.7), 0.5)
    assert sentence == (
        "Random+DRoP's worst-class accuracy at d=0.5 (70.0%) is above the full dataset's (60.0%) "
        "and above every other protocol's (best other: EL2N+DRoP, 55.0%): the paper's claim holds here.")


def test_drop_claim_holds_only_in_part_either_way():
    above_others = claims.drop_claim(evaluation(0.58), 0.5)
    assert "is below the full dataset's (60.0%) and above every other" in above_others
    assert above_others.endswith("the paper's claim holds only in part here.")
    above_full = claims.drop_claim(evaluation(0.62, el2n_worst=0.65), 0.5)
    assert "is above the full dataset's" in above_full
    assert "not above every other protocol's (best other: EL2N, 65.0%)" in above_full
    assert above_full.endswith("holds only in part here.")


def test_drop_claim_does_not_hold():
    sentence = claims.drop_claim(evaluation(0.5), 0.5)
    assert "(50.0%) is below the full dataset's (60.0%) and not above every other" in sentence
    assert sentence.endswith("the paper's claim does not hold here.")
    equal = claims.drop_claim(evaluation(0.6), 0.5)
    assert "is equal to the full dataset's" in equal
    with pytest.raises(ValueError, match="Random\\+DRoP"):
        claims.drop_claim(evaluation(0.7).query("protocol != 'random+drop'"), 0.5)


def peaks_frame(drop_by_density):
    high = {0.3: [0.4, 0.8, 0.9], 0.5: [0.5, 0.8, 0.9], 0.9: [0.6, 0.8, 0.9]}
    return frame_of({
        ("random", None): high,
        ("strategy", "el2n"): high,
        ("random+drop", "el2n"): {d: [w, 0.8, 0.9] for d, w in drop_by_density.items()},
    })


def test_drop_peak_claim_every_verdict():
    holds = claims.drop_peak_claim(peaks_frame({0.3: 0.7, 0.5: 0.75, 0.9: 0.65}))
    assert holds.startswith("Random+DRoP's worst-class accuracy peaks at d=0.5; 2 of 2 other protocols peak at a "
                            "higher density:")
    assert holds.endswith("have passed their best holds here.")
    fails = claims.drop_peak_claim(peaks_frame({0.3: 0.6, 0.5: 0.65, 0.9: 0.7}))
    assert ("peaks at d=0.9; 0 of 2 other protocols peak at a higher density; Random (d=0.9), EL2N (d=0.9) "
            "peak at the same or a lower density:") in fails
    assert fails.endswith("does not hold here.")
    frame = peaks_frame({0.3: 0.7, 0.5: 0.75, 0.9: 0.65})
    early = (frame["protocol"] == "random") & (frame["density"] == 0.3)
    frame.loc[early, "test_worst_class"] = 0.95  # Random now peaks at 0.3, below DRoP's 0.5
    part = claims.drop_peak_claim(frame)
    assert "1 of 2 other protocols peak at a higher density; Random (d=0.3) peaks at the same or a lower" in part
    assert part.endswith("holds only in part here.")


def correlation_frame(drop_counts):
    return frame_of({
        ("random", None): {0.5: ([0.5, 0.8, 0.9], [49, 50, 51])},
        ("strategy", "el2n"): {0.5: ([0.5, 0.8, 0.9], [60, 50, 40])},
        ("random+drop", "el2n"): {0.5: ([0.7, 0.8, 0.9], drop_counts)},
    })


def test_drop_correlation_claim_both_ways():
    # full-dataset class accuracy 0.6, 0.8, 1.0; EL2N: r = -1 too, so DRoP cannot be stronger
    fails = claims.drop_correlation_claim(correlation_frame([100, 40, 10]))
    assert "against -1.00 for EL2N, the most negative among" in fails
    assert f"(difference {np.corrcoef([0.6, 0.8, 1.0], [1.0, 0.4, 0.1])[0, 1] + 1.0:+.2f})" in fails
    assert fails.endswith("does not hold here.")
    frame = correlation_frame([100, 40, 10])
    frame = frame[frame["protocol"] != "strategy"]
    holds = claims.drop_correlation_claim(frame)
    r = np.corrcoef([0.6, 0.8, 1.0], [1.0, 0.4, 0.1])[0, 1]
    assert f"at r = {r:+.2f} on average, against +1.00 for Random, the most negative" in holds
    assert f"(difference {r - 1.0:+.2f})" in holds
    assert holds.endswith("more pronounced than the strategies' holds here.")


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


def test_curve_metrics_rejects_absent_density_and_missing_columns():
    with pytest.raises(ValueError, match="density=0.3"):
        claims.curve_metrics(curve_frame(), 0.3)
    with pytest.raises(ValueError, match="curve"):
        claims.curve_metrics(curve_frame().drop(columns="curve"), 0.5)


def test_comparison_claim_verdicts():
    table = claims.curve_metrics(curve_frame(), 0.5)
    assert "holds here" in claims.comparison_claim(table, "worst-class (%)", "Random+DRoP", ["EL2N"], "x")
    mixed = pd.DataFrame({"worst-class (%)": [50.0, 40.0, 60.0]}, index=["A", "B", "C"])
    assert "holds only in part" in claims.comparison_claim(mixed, "worst-class (%)", "A", ["B", "C"], "x")
    assert "does not hold" in claims.comparison_claim(table, "worst-class (%)", "EL2N", ["Random+DRoP"], "x")
    # gap: lower is better; EL2N gap 60 vs Random+DRoP (20+40)/2 = 30
    assert "does not hold" in claims.comparison_claim(table, "max-min gap (%)", "EL2N", ["Random+DRoP"], "x")
    assert "holds here" in claims.comparison_claim(table, "max-min gap (%)", "Random+DRoP", ["EL2N"], "x")
    with pytest.raises(ValueError, match="column"):
        claims.comparison_claim(table, "nope", "EL2N", ["Random+DRoP"], "x")
