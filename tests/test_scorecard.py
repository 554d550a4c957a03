"""dropkit.scorecard: the registry's effects on constructed results (all three verdicts), and every
registered claim of the ``default`` profile computed from the shipped rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dropkit import claims, scorecard
from dropkit.profiles import EXPERIMENT_SETS, experiment_specs, get_profile
from dropkit.store import ResultStore
from dropkit.sweep import results_frame
from dropkit.theory import GaussianMixture, figure4b_thresholds

ROOT = Path(__file__).resolve().parents[1]
SIZES = (100, 100, 100)


def row(protocol, method, density, recalls, seed):
    recalls = np.asarray(recalls, dtype=float)
    return {"dataset": "fashion-mnist", "model": "mlp", "protocol": protocol, "method": method,
            "density": density, "seed": seed, "test_recalls": recalls.tolist(),
            "class_counts": [round(density * n) for n in SIZES], "class_sizes": list(SIZES),
            "test_accuracy": recalls.mean(), "test_worst_class": recalls.min(),
            "test_gap": recalls.max() - recalls.min(), "test_std": recalls.std()}


def drop_frame(worst_by_seed):
    """Full dataset worst class 0.60 in every seed; Random+DRoP at d = 0.5 with the given worst class."""
    rows = []
    for seed, worst in enumerate(worst_by_seed):
        rows.append(row("none", None, 1.0, [0.6, 0.8, 1.0], seed))
        rows.append(row("random+drop", "el2n", 0.5, [worst, 0.8, 0.9], seed))
    return pd.DataFrame(rows)


def claim(claim_id):
    return next(c for c in scorecard.registry() if c.id == claim_id)


@pytest.mark.parametrize("worst, expected, mean", [
    ((0.70, 0.72, 0.68, 0.71, 0.69), "holds", 10.0),
    ((0.50, 0.52, 0.48, 0.51, 0.49), "contradicted", -10.0),
    ((0.70, 0.50, 0.66, 0.55, 0.59), "inconclusive", 0.0),
])
def test_a_registered_claim_reaches_each_verdict_from_the_results(worst, expected, mean):
    effect = scorecard.evaluate(claim("drop-worst-gain"), drop_frame(worst))
    assert effect.seeds == (0, 1, 2, 3, 4)
    np.testing.assert_allclose(effect.values, [100 * (w - 0.6) for w in worst])
    assert effect.interval[0] == pytest.approx(mean)
    assert effect.verdict == expected
    assert "d = 0.5" in effect.measure


def test_scorecard_rows_carry_the_rule_and_missing_runs_are_never_a_verdict():
    frame = drop_frame((0.70, 0.72, 0.68))
    table = scorecard.scorecard({"drop_evaluation": frame}, [claim("drop-worst-gain"), claim("drop-peak")],
                                strict=False)
    assert list(table["id"]) == ["drop-worst-gain", "drop-peak"]
    assert table.loc[0, "verdict"] == "holds" and table.loc[0, "figure"] == "paper-figure-5"
    assert table.loc[1, "verdict"] == scorecard.NOT_COMPUTED  # no other protocol to compare with
    with pytest.raises(ValueError, match="nothing to compare|no runs"):
        scorecard.scorecard({"drop_evaluation": frame}, [claim("drop-peak")])
    text = scorecard.scorecard_markdown(table, "t")
    assert "{numref}`paper-figure-5`" in text and "**holds**" in text
    header = next(line for line in text.splitlines() if line.startswith("| claim"))
    assert header.count("|") == 7  # six columns: the id and what was measured sit in the claim cell
    assert "`drop-worst-gain`; measured here: " in text


def test_registry_ids_are_unique_and_cover_the_issue_claims():
    ids = [c.id for c in scorecard.registry()]
    assert len(ids) == len(set(ids))
    for needed in ("drop-worst-gain", "drop-accuracy-cost", "drop-all-metrics", "drop-low-density-accuracy",
                   "strategy-drop-el2n", "strategy-drop-forgetting", "strategyq-el2n", "strategyq-forgetting",
                   "forgetting-balanced", "cdbw-full-gain", "cdbw-half-of-drop", "el2n-cdbw-keeps-bias",
                   "cdbw-el2n-fails", "query-less-at-large-density", "bias-random", "du-hard-classes",
                   "drop-beats-pruning", "drop-peak", "drop-correlation", "imbalanced-worst",
                   "groups-random-drop", "query-saturates"):
        assert needed in ids, needed
    assert {c.experiment for c in scorecard.registry()} == {*EXPERIMENT_SETS, "theory"}
    assert {"theory-drop-threshold-75", "theory-drop-threshold-50"} <= set(ids)


def test_figure4b_claim_is_computed_per_simulated_dataset():
    frame = figure4b_thresholds(GaussianMixture(), (0.5,), n_datasets=6, n_points=200)
    effect = scorecard.evaluate(claim("theory-drop-threshold-50"), frame)
    assert effect.seeds == tuple(range(6)) and effect.replicate == "dataset"
    expected = (frame["threshold"] - frame["t_star"]).abs() - (frame["threshold"] - frame["t_hat"]).abs()
    np.testing.assert_allclose(effect.values, expected)


def test_every_registered_claim_of_the_default_profile_has_a_computed_row():
    profile = get_profile("default")
    store = ResultStore(ROOT / "results", "default")
    frames = {e: results_frame(experiment_specs(profile, e), store) for e in EXPERIMENT_SETS}
    frames["theory"] = figure4b_thresholds(GaussianMixture(), (0.75, 0.5), n_datasets=10, n_points=400)
    registered = scorecard.profile_registry(profile)
    table = scorecard.scorecard(frames, registered, scorecard.profile_context(profile))  # strict
    assert list(table["id"]) == [c.id for c in registered]
    for entry in table.to_dict("records"):
        assert entry["verdict"] in claims.VERDICTS, entry["id"]
        _, low, high = claims.t_interval(entry["values"])
        assert entry["verdict"] == claims.verdict(low, high), entry["id"]
        experiment = next(c.experiment for c in registered if c.id == entry["id"])
        expected = tuple(range(10)) if experiment == "theory" else profile.seeds_for(experiment)
        assert entry["seeds"] == tuple(expected), entry["id"]
