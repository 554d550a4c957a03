"""dropkit.registry and dropkit.scorecard: the claims read from the paper (verbatim quotes, one
hypothesis type each, no-change claims as equivalence), their measurements on constructed results
(every verdict), one row per claim and setting, Holm's correction over the scorecard, the pages,
and every registered claim of the ``default`` profile computed from the shipped rows."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dropkit import claims, scorecard
from dropkit.profiles import EXPERIMENT_SETS, get_profile
from dropkit.registry import CHAPTER_OF, claims as registered
from dropkit.registry import theory as registry_theory

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT.parent / "shared" / "paper" / "drop-paper.txt"
SIZES = (100, 100, 100)


def row(protocol, method, density, recalls, seed, model="mlp"):
    recalls = np.asarray(recalls, dtype=float)
    return {"dataset": "fashion-mnist", "model": model, "protocol": protocol, "method": method,
            "density": density, "seed": seed, "test_recalls": recalls.tolist(), "cache_key": f"{model}{protocol}{method}{density}{seed}",
            "class_counts": [round(density * n) for n in SIZES], "class_sizes": list(SIZES),
            "test_accuracy": recalls.mean(), "test_worst_class": recalls.min(),
            "test_gap": recalls.max() - recalls.min(), "test_std": recalls.std()}


def claim(claim_id):
    return next(c for c in registered() if c.id == claim_id)


def evaluation(setting, model, strategies, worst, full_worst=(0.6, 0.61, 0.59, 0.6, 0.62)):
    """One setting's DRoP evaluation at d = 0.5: the full dataset's worst class ``full_worst[seed]``;
    Random+DRoP's ``worst[seed]``; each strategy's curves 0.1 below it."""
    rows = []
    for seed, w in enumerate(worst):
        rows.append(row("none", None, 1.0, [full_worst[seed], 0.8, 1.0], seed, model))
        rows.append(row("random", None, 0.5, [0.5, 0.8, 0.9], seed, model))
        rows.append(row("random+drop", "el2n", 0.5, [w, 0.8, 0.9], seed, model))
        for method in strategies:
            for protocol in ("strategy", "random+strategyq", "strategy+drop"):
                rows.append(row(protocol, method, 0.5, [w - 0.1, 0.8, 0.9], seed, model))
    return pd.DataFrame(rows).assign(setting=setting)


def two_settings():
    """The MLP evaluates EL2N and Forgetting and gains worst-class accuracy over the full dataset
    in every seed; the CNN evaluates EL2N only and loses it in every seed."""
    return pd.concat([evaluation("mlp-fashion-mnist", "mlp", ("el2n", "forgetting"), (0.70, 0.72, 0.68, 0.71, 0.69)),
                      evaluation("cnn-fashion-mnist", "cnn", ("el2n",), (0.50, 0.52, 0.47, 0.49, 0.51))],
                     ignore_index=True)


# --------------------------------------------------------------------------- the registry


def test_registry_ids_are_unique_and_every_chapter_has_claims():
    every = registered()
    ids = [c.id for c in every]
    assert len(ids) == len(set(ids))
    assert {c.chapter for c in every} == {*CHAPTER_OF.values(), "elsewhere"}
    assert {e for c in every for e in c.experiments} == {*EXPERIMENT_SETS, "theory", "theory_draws"}
    for c in every:
        assert c.quote and c.where and c.quantity and c.densities and c.short, c.id
        if c.rule.needs_margin:
            assert c.margin, f"{c.id}: a margin needs its source"
        if isinstance(c.rule, claims.NotTestable):
            assert c.rule.reason and c.measure is None, c.id
        else:
            assert c.measure is not None and c.figure, c.id


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\\%", "%").replace("$", "")).strip().lower()


def test_every_quote_is_verbatim_from_the_paper():
    """Each quote (its fragments, where " … " marks text left out, e.g. a figure caption that the
    extracted text puts mid-sentence) appears verbatim and in order in the paper."""
    if not PAPER.is_file():
        pytest.skip(f"the paper's text is not beside this checkout ({PAPER}): quotes not checked")
    paper = _normalised(PAPER.read_text())
    for c in registered():
        at = 0
        for fragment in _normalised(c.quote).split(" … "):
            found = paper.find(fragment, at)
            assert found >= 0, f"{c.id}: not found verbatim (after the previous fragment) in the paper: {fragment!r}"
            at = found + len(fragment)


def test_no_change_claims_are_equivalence_tests_and_never_a_min_or_max():
    """'Keeps', 'maintains', 'saturates', 'remains close', 'near', 'closely followed' are
    equivalence claims; claims over several alternatives are intersection-union tests."""
    no_change = r"maintain|keeps|saturates|remains close|stays near|lands near|lands the average erm near|closely followed"

    def inner(c):
        return c.rule.rule if isinstance(c.rule, claims.AllOf) else c.rule

    for c in registered():
        if re.search(no_change, c.short.lower()):
            assert isinstance(inner(c), claims.Equivalence), c.id
        if re.search(no_change, c.quote.lower()):
            same = [o for o in registered() if o.quote == c.quote]
            assert any(isinstance(inner(o), claims.Equivalence) for o in same), c.id
        if re.search(r"\ball other\b|\bevery\b|\ball robustness metrics\b", (c.quote + " " + c.quantity).lower()):
            assert isinstance(c.rule, (claims.AllOf, claims.NotTestable)), c.id
    theory_rows = {c.id: c for c in registry_theory.CLAIMS}
    assert registry_theory.N_DATASETS >= 50  # pre-registered (issue 28)
    assert isinstance(theory_rows["theory-drop-50"].rule, claims.Equivalence)  # no capped statistic


def test_every_hypothesis_type_is_used():
    kinds = {type(c.rule.rule if isinstance(c.rule, claims.AllOf) else c.rule) for c in registered()}
    kinds |= {type(c.rule) for c in registered()}
    assert {claims.Superiority, claims.NonInferiority, claims.Equivalence, claims.Correlation, claims.AllOf,
            claims.Context, claims.EveryReplicate, claims.Exact, claims.NotTestable} <= kinds


# --------------------------------------------------------------------------- measurements and rows


@pytest.mark.parametrize("worst, expected, mean", [
    ((0.70, 0.72, 0.68, 0.71, 0.69), "holds", 9.6),
    ((0.50, 0.52, 0.48, 0.51, 0.49), "contradicted", -10.4),
    ((0.70, 0.50, 0.66, 0.55, 0.59), "inconclusive", -0.4),
])
def test_a_registered_claim_reaches_each_verdict_from_the_results(worst, expected, mean):
    frame = evaluation("mlp-fashion-mnist", "mlp", (), worst)
    evidence, decision = scorecard.evaluate(claim("drop-worst-gain"), frame)
    effect = evidence.parts[""]
    assert effect.seeds == (0, 1, 2, 3, 4)
    np.testing.assert_allclose(effect.values, [100 * (w - f) for w, f in zip(worst, (0.6, 0.61, 0.59, 0.6, 0.62))])
    assert decision.mean == pytest.approx(mean)
    assert decision.verdict == expected
    assert "d = 0.5" in effect.measure


def test_one_row_per_claim_and_setting_each_the_rule_on_its_own_seeds():
    frame = two_settings()
    chosen = [claim(i) for i in ("drop-worst-gain", "strategy-drop-el2n", "strategy-drop-forgetting")]
    table = scorecard.scorecard({"drop_evaluation": frame}, chosen)  # strict
    assert list(zip(table["id"], table["setting"])) == [
        ("drop-worst-gain", "fashion-mnist, MLP"), ("drop-worst-gain", "fashion-mnist, CNN"),
        ("strategy-drop-el2n", "fashion-mnist, MLP"), ("strategy-drop-el2n", "fashion-mnist, CNN"),
        ("strategy-drop-forgetting", "fashion-mnist, MLP")]  # the CNN runs no Forgetting: no row
    gain = table[table["id"] == "drop-worst-gain"].set_index("setting")
    assert gain["verdict"].to_dict() == {"fashion-mnist, MLP": "holds", "fashion-mnist, CNN": "contradicted"}
    for entry in table.to_dict("records"):
        assert entry["seeds"] == (0, 1, 2, 3, 4)
        name = {"fashion-mnist, MLP": "mlp-fashion-mnist", "fashion-mnist, CNN": "cnn-fashion-mnist"}[entry["setting"]]
        evidence, decision = scorecard.evaluate(claim(entry["id"]), frame[frame["setting"] == name])
        assert entry["values"] == next(iter(evidence.parts.values())).values  # its own setting's rows only
        assert entry["verdict"] == decision.verdict and entry["p"] == pytest.approx(decision.p)
    with pytest.raises(ValueError, match="split it with split_setups|exactly one"):
        scorecard.evaluate(claim("drop-worst-gain"), frame)  # never one verdict for two settings
    left = scorecard.omitted({"drop_evaluation": frame}, chosen)
    assert left[["id", "setting"]].values.tolist() == [["strategy-drop-forgetting", "fashion-mnist, CNN"]]


def test_missing_runs_are_never_a_verdict():
    frame = evaluation("mlp-fashion-mnist", "mlp", (), (0.70, 0.72, 0.68, 0.71, 0.69))
    table = scorecard.scorecard({"drop_evaluation": frame}, [claim("drop-accuracy-loss-low")], strict=False)
    assert table.loc[0, "verdict"] == scorecard.NOT_COMPUTED == table.loc[0, "holm"]
    assert "no low density" in table.loc[0, "measured"]
    with pytest.raises(ValueError, match="no low density"):
        scorecard.scorecard({"drop_evaluation": frame}, [claim("drop-accuracy-loss-low")])
    table = scorecard.scorecard({}, [claim("cdbw-full-gain")], strict=False)
    assert table.loc[0, "verdict"] == scorecard.NOT_COMPUTED


def test_holm_correction_runs_over_the_whole_table():
    frame = two_settings()
    chosen = [claim(i) for i in ("drop-worst-gain", "strategy-drop-el2n", "drop-random-within", "drop-accuracy-cost")]
    table = scorecard.scorecard({"drop_evaluation": frame}, chosen)
    tested = np.isfinite(table["p"].to_numpy(dtype=float))
    assert not tested[table["id"] == "drop-accuracy-cost"].any()  # context: not in the family
    rejected = claims.holm(table["p"].to_numpy(dtype=float))
    for entry, survives in zip(table.to_dict("records"), rejected):
        if entry["verdict"] in ("holds", "contradicted") and np.isfinite(entry["p"]):
            assert entry["holm"] == (entry["verdict"] if survives else "inconclusive")
        else:
            assert entry["holm"] == entry["verdict"]


def test_the_pages_show_each_row_once_with_setting_quote_and_power():
    frame = two_settings()
    chosen = [claim(i) for i in ("drop-worst-gain", "strategy-drop-forgetting", "drop-best-worst-class")]
    table = scorecard.scorecard({"drop_evaluation": frame}, chosen)
    text = scorecard.chapter_markdown(table, "03_drop_evaluation", scorecard.omitted({"drop_evaluation": frame}, chosen))
    assert text.startswith(":::{table} The paper's claims of chapter 03") and ":name: claims-03_drop_evaluation" in text  # a colon fence: its caption may hold anything
    assert "**fashion-mnist, CNN**: Random+DRoP raises worst-class accuracy" in text
    assert "“when pruning half of CIFAR-100" in text and ":::{dropdown}" in text
    assert "35.8 → 45.4 %" in text
    assert text.endswith("**fashion-mnist, CNN** has no row for `strategy-drop-forgetting`: it does not run "
                         "Forgetting+DRoP or Forgetting.")
    box = scorecard.chapter_box(table, "03_drop_evaluation")
    assert box.startswith(":::{admonition} What the paper claims, what we find")
    assert f"{len(table)} verdicts on 3 claims" in box
    whole = scorecard.scorecard_markdown(table)
    assert "## {doc}`03_drop_evaluation`" in whole and ":name: scorecard-03_drop_evaluation" in whole


def test_no_bound_of_a_decided_row_reads_as_zero():
    entry = {"verdict": "holds", "mean": 0.02, "low": 0.004, "high": 0.036, "unit": "pp", "hypothesis": "superiority",
             "n": 5, "replicate": "seed"}
    assert scorecard.estimate_text(entry) == "+0.020 pp [+0.004, +0.036]"
    entry.update(verdict="inconclusive", low=-0.004)
    assert scorecard.estimate_text(entry) == "+0.0 pp [-0.0, +0.0]"  # undecided: the usual precision


# --------------------------------------------------------------------------- the shipped rows


@pytest.fixture(scope="module")
def shipped_card():
    return scorecard.book_scorecard("default", ROOT / "results")


def test_every_registered_claim_of_the_default_profile_has_a_computed_row(shipped_card):
    """Strict: every claim of the ``default`` registry has a row per setting that runs its curves,
    computed by its rule from the shipped rows (never "not computed"), and every other pair is
    listed by ``omitted``; every undecided test row states its MDE and the n it would need."""
    table, left, missing = shipped_card
    assert not any(missing.values()), missing
    profile = get_profile("default")
    ids = set(table["id"])
    for c in scorecard.profile_claims(profile):
        assert c.id in ids or c.id in set(left["id"]), c.id
    assert (table["verdict"] != scorecard.NOT_COMPUTED).all(), table.loc[table["verdict"] == scorecard.NOT_COMPUTED, ["id", "measured"]]
    for entry in table.to_dict("records"):
        if np.isfinite(entry["p"]):
            assert entry["verdict"] in claims.VERDICTS and np.isfinite(entry["mde"]), entry["id"]
            assert entry["holm"] in (entry["verdict"], "inconclusive"), entry["id"]
        if entry["chapter"] not in ("01_theory", "elsewhere"):
            experiments = next(c for c in scorecard.profile_claims(profile) if c.id == entry["id"]).experiments
            setup = ("cnn-fashion-mnist" if "CNN" in entry["setting"] else
                     "mlp-spurious-fashion-mnist" if experiments[0] == "waterbirds" else "mlp-fashion-mnist")
            # paired by seed: a claim that reads two chapters has the seeds both read
            seeds = set.intersection(*(set(profile.seeds_for(e, setup)) for e in experiments))
            assert entry["n"] == len(seeds), entry["id"]
    mlp = table[(table["setting"] == "fashion-mnist, MLP") & (table["id"] == "drop-worst-gain")]
    assert mlp["paper"].iloc[0].startswith("35.8")


def test_the_pages_state_the_registered_and_the_read_seeds():
    """The landing and scorecard pages say, from the profile, each setting's pre-registered seeds
    and which chapters still read fewer."""
    import dataclasses
    profile = get_profile("default")
    text = scorecard.seeds_markdown(profile)
    assert "`mlp-fashion-mnist` 20 (seeds 0-19)" in text and "`cnn-fashion-mnist` 10 (seeds 0-9)" in text
    assert "pre-registered in `results/default/README.md`" in text
    done = dataclasses.replace(profile, experiment_seeds=())
    assert scorecard.seeds_markdown(done).endswith("Every chapter reads all of them.")
    one = dataclasses.replace(profile, experiment_seeds=(("cdbw", "mlp-fashion-mnist", (0, 1, 2, 3, 4)),
                                                         ("imbalanced", "mlp-fashion-mnist", (0, 1, 2, 3, 4))))
    assert scorecard.seeds_markdown(one).endswith(
        "these chapters read fewer seeds (each row states its n): `mlp-fashion-mnist` in 04 CDB-W, "
        "05 Long-tailed data: seeds 0-4.")
    assert "pre-registered" not in scorecard.seeds_markdown("smoke")
    assert scorecard.seeds_markdown(profile, [0, 1]) == "Seeds: [0, 1] (the `seeds` parameter)."


def test_the_scorecard_page_renders_from_the_shipped_rows(shipped_card):
    table, left, _ = shipped_card
    text = scorecard.scorecard_markdown(table, left)
    for chapter in ("01_theory", "02_bias_benchmark", "07_pretraining_ablation"):
        assert f"{{doc}}`{chapter}`" in text
    assert "not testable here" in text and "**fashion-mnist, CNN** has no row for" in text


def test_chapter_verdict_table_is_a_colon_fence_and_the_omission_a_paragraph():
    """A backtick fence's info string may not hold backticks (CommonMark): the verdict table and
    the definitions are colon fences, and the sentence after them a paragraph, not the content of
    a stray code block."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.colon_fence import colon_fence_plugin

    frame = two_settings()
    chosen = [claim(i) for i in ("drop-worst-gain", "strategy-drop-forgetting")]
    table = scorecard.scorecard({"drop_evaluation": frame}, chosen)
    text = scorecard.chapter_markdown(table, "03_drop_evaluation", scorecard.omitted({"drop_evaluation": frame}, chosen))
    tokens = MarkdownIt("commonmark").use(colon_fence_plugin).parse(text)
    assert [t.type for t in tokens] == ["colon_fence", "colon_fence", "paragraph_open", "inline", "paragraph_close"]
    assert tokens[0].info.startswith("{table} ") and tokens[1].info.startswith("{dropdown} ")
    assert tokens[3].content.startswith("**fashion-mnist, CNN** has no row for")


def test_the_landing_summary_is_computed_from_the_scorecard(shipped_card):
    table, _, missing = shipped_card
    text = scorecard.summary_markdown(table, "default", missing)
    counts = scorecard.verdict_counts(table)
    assert text.startswith(f"**{len(table)} verdicts on {table['id'].nunique()} claims**")
    assert f"**{counts['holds']} holds**" in text and f"**{counts['inconclusive']} inconclusive**" in text
    holding = text.split("**What holds here:**")[1].split("**What the runs contradict:**")[0]
    assert holding.count("\n- ") == table.loc[table["holm"] == "holds", "id"].nunique()
    # the undecided rows: how many decide before Holm's correction, and the power at their own n
    tests = table[np.isfinite(table["p"].to_numpy(dtype=np.float64))]
    undecided = tests[tests["holm"] == "inconclusive"]
    raw = sum(verdict != "inconclusive" for verdict in undecided["verdict"])
    at_n = sum(needed is not None and not pd.isna(needed) and needed <= n
               for needed, n in zip(undecided["n_needed"], undecided["n"]))
    never = sum(needed is None or pd.isna(needed) for needed in undecided["n_needed"])
    assert f"**Undecided:** {len(undecided)} tests are inconclusive" in text
    assert f"{raw} of them would decide on their own" in text and f"over the {len(tests)} tests" in text
    assert f"at their number of replicates for {at_n}," in text and f"at no number for {never} " in text


def test_the_forest_caption_names_the_replicates_of_the_rows(shipped_card):
    table, _, _ = shipped_card
    text = scorecard.replicates_text(table)
    profile = get_profile("default")
    for title, setup in (("fashion-mnist, MLP", "mlp-fashion-mnist"), ("fashion-mnist, CNN", "cnn-fashion-mnist")):
        counts = sorted({len(profile.seeds_for(e, setup)) for e in EXPERIMENT_SETS
                         if profile.setup(setup) in profile.setups_for(e)})
        assert f"{title} ({'/'.join(map(str, counts))} seeds)" in text, (title, text)
    assert "chapter 01's simulations (50 datasets)" in text


def test_chapter_04_figure_7_and_the_scorecard_read_one_cdbw_rule():
    """The scorecard reads the authors' CDB-W rule where its rows exist (else ours), and chapter
    04's Figure 7 draws that rule's curves (``scorecard_cdbw_rule``, ``curves.cdbw_rule_label``)."""
    import pandas as pd

    from dropkit import curves

    assert scorecard.scorecard_cdbw_rule(None) == "paper"
    assert scorecard.scorecard_cdbw_rule(pd.DataFrame({"cdbw_weights": ["paper", "paper"]})) == "paper"
    assert scorecard.scorecard_cdbw_rule(pd.DataFrame({"cdbw_weights": ["paper", "authors"]})) == "authors"
    assert curves.cdbw_rule_label("EL2N+CDB-W", "paper") == "EL2N+CDB-W"
    assert curves.cdbw_rule_label("CDB-W+EL2N", "authors") == "CDB-W+EL2N" + curves.CDBW_AUTHORS_SUFFIX
    assert curves.cdbw_rule_label(curves.CDBW_FULL_DATASET, "authors") == curves.CDBW_AUTHORS_FULL_DATASET
    with pytest.raises(ValueError, match="is not 'paper' or 'authors'"):
        curves.cdbw_rule_label("EL2N+CDB-W", "floored")
