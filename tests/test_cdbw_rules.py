"""dropkit.cdbw_rules: CDB-W's two weight rules compared from result rows (chapter 04)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dropkit import cdbw_rules

# validation recalls after each of 3 epochs, 2 classes: the lowest class flips every epoch
HISTORY = [[0.2, 0.9], [1.0, 0.1], [0.3, 0.8]]


def row(seed, worst, *, cdbw=False, query_cdbw=False, rule="floored", protocol="strategy", density=0.5):
    values = dict(protocol=protocol, method="el2n" if protocol != "none" else None, density=density, seed=seed,
                  cdbw=cdbw, query_cdbw=query_cdbw, cdbw_weights=rule, test_worst_class=worst,
                  class_counts=[100, 300], class_sizes=[500, 500])
    if cdbw:
        values["cdbw_val_recalls_per_epoch"] = HISTORY
    if query_cdbw:
        values["query_cdbw_val_recalls_per_epoch"] = [HISTORY, HISTORY[:2]]
    return values


@pytest.fixture()
def frame():
    rows = []
    for seed, el2n in ((0, 0.70), (1, 0.60)):
        rows.append(row(seed, el2n))
        rows.append(row(seed, 0.01 if seed else 0.50, cdbw=True, rule="paper"))  # collapses in seed 1 only
        rows.append(row(seed, 0.02, cdbw=True, rule="authors"))                    # collapses in both
        rows.append(row(seed, 0.65, query_cdbw=True, rule="authors"))
    rows.append(row(0, 0.74, cdbw=True, rule="paper", protocol="none", density=1.0))
    return pd.DataFrame(rows)


def test_worst_class_by_rule_pairs_each_run_with_plain_el2n(frame):
    table = cdbw_rules.worst_class_by_rule(frame)
    assert len(table) == 7
    el2n_cdbw = table[(table["curve"] == "EL2N+CDB-W") & (table["rule"] == "paper")]
    assert el2n_cdbw[["seed", "value", "el2n"]].values.tolist() == [[0, 0.5, 0.7], [1, 0.01, 0.6]]
    assert np.isnan(table.loc[table["curve"] == "CDB-W (full dataset)", "el2n"]).all()


def test_collapse_counts_a_run_below_half_of_el2n(frame):
    counts = cdbw_rules.collapse_counts(frame).set_index(["curve", "rule"])
    assert counts.loc[("EL2N+CDB-W", "paper"), "collapsed"] == 1          # 0.50 >= 0.35, 0.01 < 0.30
    assert counts.loc[("EL2N+CDB-W", "authors"), "collapsed"] == 2
    assert counts.loc[("CDB-W+EL2N", "authors"), "collapsed"] == 0
    assert counts.loc[("EL2N+CDB-W", "paper"), "worst_mean"] == pytest.approx(25.5)
    assert counts.loc[("EL2N+CDB-W", "paper"), "el2n_mean"] == pytest.approx(65.0)
    with pytest.raises(ValueError, match="fraction"):
        cdbw_rules.collapse_counts(frame, 1.5)


def test_class_histories_recompute_each_epochs_weights_from_the_previous_recalls(frame):
    histories = cdbw_rules.class_histories(frame, 0.5, seed=0)
    authors = histories[(histories["curve"] == "EL2N+CDB-W") & (histories["rule"] == "authors")]
    weights = authors.pivot(index="epoch", columns="class", values="weight").to_numpy()
    np.testing.assert_array_equal(weights, [[1.0, 1.0], [0.8, 1 - 0.9], [0.0, 0.9]])  # 1 - r, no floor
    paper = histories[(histories["curve"] == "EL2N+CDB-W") & (histories["rule"] == "paper")]
    second = paper[paper["epoch"] == 1]["weight"].to_numpy()
    z = (0.8 * 100 + (1 - 0.9) * 300) / 400  # DRoP's normaliser over the kept class counts
    np.testing.assert_allclose(second, [0.8 / z, (1 - 0.9) / z], rtol=1e-12)
    query = histories[histories["curve"] == "CDB-W+EL2N"]
    assert sorted(set(query["training"])) == ["query run 0", "query run 1"]
    assert len(query) == (3 + 2) * 2
    assert cdbw_rules.class_histories(frame[frame["cdbw"] == False].iloc[:1]).empty  # noqa: E712


def test_oscillation_counts_flips_swings_and_weight_ratios(frame):
    moves = cdbw_rules.oscillation(cdbw_rules.class_histories(frame, 0.5, seed=0)).set_index(["curve", "rule", "training"])
    authors = moves.loc[("EL2N+CDB-W", "authors", "final")]
    assert authors["epochs"] == 3 and authors["worst_class_changes"] == 2
    assert authors["lowest_recall_min"] == pytest.approx(0.1)
    assert authors["recall_swing_max"] == pytest.approx(0.8)
    assert authors["weight_ratio_max"] == pytest.approx(2.0)  # epoch 2: [0, 0.9] / 0.45


def test_collapse_finding_names_the_case_the_numbers_give(frame):
    text = cdbw_rules.collapse_finding(frame, 0.5)
    assert "with our rule in 1 of 2 at $d = 0.5$ (worst class 1.0-50.0 %)" in text
    assert "with the authors' rule in 2 of 2 at $d = 0.5$" in text
    assert "only the authors' rule collapses" in text
    assert "changes after 4 of 4 epochs" in text  # 2 seeds x 2 pairs of epochs, the lowest class flips each time
    both = frame.assign(test_worst_class=np.where(frame["cdbw"] & (frame["protocol"] != "none"), 0.0,
                                                  frame["test_worst_class"]))
    assert "both rules collapse in most seeds (at $d = 0.5$)" in cdbw_rules.collapse_finding(both, 0.5)
    ours = frame.assign(test_worst_class=np.where(frame["cdbw_weights"] == "paper", 0.0, frame["test_worst_class"]))
    ours.loc[ours["cdbw_weights"] == "authors", "test_worst_class"] = 0.69
    assert "only our rule collapses in most seeds" in cdbw_rules.collapse_finding(ours, 0.5)
    none = frame.assign(test_worst_class=0.7)
    assert "no collapse to explain" in cdbw_rules.collapse_finding(none, 0.5)
    with pytest.raises(ValueError, match="both rules"):
        cdbw_rules.collapse_finding(frame[frame["cdbw_weights"] != "authors"], 0.5)


def test_rule_pairs_compare_the_rules_kept_data_and_unweighted_epoch(frame):
    pairs = cdbw_rules.rule_pairs(frame)
    assert pairs[["density", "seed", "same_counts", "count_diff_max", "first_epoch_diff_max"]].values.tolist() == [
        [0.5, 0, True, 0, 0.0], [0.5, 1, True, 0, 0.0]]
    changed = frame.copy()
    authors = (changed["rule"] if "rule" in changed else changed["cdbw_weights"]) == "authors"
    index = changed.index[authors & changed["cdbw"] & (changed["seed"] == 1)][0]
    changed.at[index, "class_counts"] = [103, 298]
    changed.at[index, "cdbw_val_recalls_per_epoch"] = [[0.25, 0.9]] + HISTORY[1:]
    pairs = cdbw_rules.rule_pairs(changed).set_index("seed")
    assert not pairs.loc[1, "same_counts"] and pairs.loc[1, "count_diff_max"] == 3
    assert pairs.loc[1, "first_epoch_diff_max"] == pytest.approx(0.05)


def test_same_machine_finding_swaps_in_the_recomputed_rows(frame):
    frame = frame.assign(cache_key=[f"k{i}" for i in range(len(frame))])
    ours = frame[(frame["cdbw_weights"] == "paper") & frame["cdbw"] & (frame["protocol"] == "strategy")]
    recomputed = ours.assign(test_worst_class=0.02)  # now collapses in both seeds, like the authors' rule
    text = cdbw_rules.same_machine_finding(frame, recomputed)
    assert "same class counts in 2 of 2" in text and "epoch 0 in 2;" in text
    assert "at $d = 0.5$ ours 2 of 2, the authors' 2 of 2" in text
    assert "agree on whether a seed collapses in 2 of 2 pairs" in text
    assert "agree on whether a seed collapses in 1 of 2 pairs" in cdbw_rules.same_machine_finding(frame, ours)
    # only the recomputed (density, seed) pairs count: seeds the rerun did not cover change nothing
    more = pd.concat([frame, frame.assign(seed=frame["seed"] + 10, cache_key=frame["cache_key"] + "-10")],
                     ignore_index=True)
    assert cdbw_rules.same_machine_finding(more, recomputed) == text
    with pytest.raises(ValueError, match="no recomputed row"):
        cdbw_rules.same_machine_finding(frame, ours.assign(cache_key="other"))


def test_learning_rate_finding_applies_the_pre_registered_rule(frame):
    book = frame.assign(lr=0.05)
    cdbw = (frame["cdbw"] & (frame["protocol"] != "none")).to_numpy()

    def lowered(worst):
        return frame.assign(lr=0.01, test_worst_class=np.where(cdbw, worst, frame["test_worst_class"]))

    gone = cdbw_rules.learning_rate_finding(book, lowered(0.69), density=0.5)
    assert "**the collapse is an instability of the learning rate in this setting**" in gone
    assert "with lr = 0.01 instead of 0.05" in gone and "seeds 0, 1, against the book's runs of the same" in gone
    # the book's counts are of the check's seeds only: more book seeds change nothing
    more = pd.concat([book, book.assign(seed=book["seed"] + 10)], ignore_index=True)
    assert cdbw_rules.learning_rate_finding(more, lowered(0.69), density=0.5) == gone
    assert "our rule 0 of 2 (worst class 69.0-69.0 %, EL2N 65.0 %) against 1 of 2" in gone  # the book's: seed 1
    kept = cdbw_rules.learning_rate_finding(book, lowered(0.0).assign(seed=frame["seed"] + 2), density=0.5)
    assert "**not the learning rate alone**: at a 5x smaller rate" not in kept  # 2 seeds: never 3 collapsed
    assert "**mixed**" in kept
    three = pd.concat([lowered(0.0), lowered(0.0).query("seed == 0").assign(seed=2)], ignore_index=True)
    assert "**not the learning rate alone**: at a 5x smaller rate" in cdbw_rules.learning_rate_finding(book, three,
                                                                                                      density=0.5)
    with pytest.raises(ValueError, match="one learning rate below"):
        cdbw_rules.learning_rate_finding(book, book, density=0.5)
    with pytest.raises(ValueError, match="lacks EL2N\\+CDB-W under both rules at d = 0.3"):
        cdbw_rules.learning_rate_finding(book, lowered(0.0))
    stored = lowered(0.69).assign(cache_key=[f"k{i}" for i in range(len(frame))])
    present = [SimpleNamespace(cache_key=key) for key in stored["cache_key"]]
    assert cdbw_rules.learning_rate_finding(book, stored, density=0.5, expected=present) == gone
    with pytest.raises(ValueError, match="incomplete: 1 of its 3 runs are not stored; no verdict"):
        cdbw_rules.learning_rate_finding(book, stored, density=0.5,
                                         expected=present[:2] + [SimpleNamespace(cache_key="never-run")])


def test_learning_rate_check_runs_are_the_pre_registered_ones():
    specs = cdbw_rules.learning_rate_check_specs()
    assert len(specs) == 30 and {s.lr for s in specs} == {0.01}
    assert {(s.cdbw, s.cdbw_weights) for s in specs} == {(False, "floored"), (True, "paper"), (True, "authors")}
    assert sorted({s.density for s in specs}) == [0.3, 0.5] and sorted({s.seed for s in specs}) == [0, 1, 2, 3, 4]
    assert {(s.protocol, s.method, s.query_cdbw) for s in specs} == {("strategy", "el2n", False)}
