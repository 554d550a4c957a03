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




# --------------------------------------------------------------------------- the rule


def test_t_interval_is_the_student_t_interval_over_seeds():
    mean, low, high = claims.t_interval([1.0, 2.0, 3.0])
    # s = 1, n = 3, t_{0.975, 2} = 4.302652729911275
    assert mean == 2.0
    assert (low, high) == pytest.approx((2.0 - 4.302652729911275 / np.sqrt(3), 2.0 + 4.302652729911275 / np.sqrt(3)))
    one = claims.t_interval([0.5])
    assert one[0] == 0.5 and np.isnan(one[1]) and np.isnan(one[2])
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
def test_the_rule_reaches_all_three_verdicts(values, expected):
    effect = claims.Effect(tuple(values), tuple(range(len(values))), "pp", "x")
    assert effect.verdict == expected
    mean, low, high = effect.interval
    assert expected != "holds" or low > 0
    assert expected != "contradicted" or high < 0


def test_paired_effect_pairs_by_seed_and_drops_unpaired_seeds():
    a = {0: 50.0, 1: 60.0, 2: 70.0, 3: 99.0}
    b = {0: 40.0, 1: 52.0, 2: 61.0, 4: 10.0}
    effect = claims.paired_effect([a, b], lambda x, y: x - y, "pp", "a minus b")
    assert effect.seeds == (0, 1, 2) and effect.values == (10.0, 8.0, 9.0)
    assert effect.verdict == "holds"
    assert effect.text() == "+9.0 pp [+6.5, +11.5] (3 seeds)"
    with pytest.raises(ValueError, match="share no seed"):
        claims.paired_effect([{0: 1.0}, {1: 2.0}], lambda x, y: x - y, "pp", "m")
