"""dropkit.chapter: the one call every result notebook makes (parameter checks, sweep, table)."""

from __future__ import annotations

import dataclasses

import pytest

from dropkit.chapter import ChapterResults, chapter_results, check_reference
from dropkit.profiles import get_profile


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(profile="huge"), ValueError, "profile='huge'"),
    (dict(dataset=""), ValueError, "dataset=''"),
    (dict(model=3), ValueError, "model=3"),
    (dict(device=""), ValueError, "device=''"),
    (dict(data_root=""), ValueError, "data_root=''"),
    (dict(results_dir=""), ValueError, "results_dir=''"),
    (dict(workers=0), ValueError, "workers=0"),
    (dict(workers=True), ValueError, "workers=True"),
    (dict(pretrained_path="/no/such/weights.pt"), FileNotFoundError, "pretrained_path"),
    (dict(dataset="cifar10"), ValueError, "dataset='cifar10'"),
    (dict(densities=[0.0]), ValueError, "densities"),
    (dict(seeds=[-1]), ValueError, "seeds"),
    (dict(experiment="figure99"), ValueError, "experiment='figure99'"),
])
def test_bad_parameters_are_clear_errors_before_any_run(tmp_path, kwargs, error, match):
    args = {"profile": "smoke", "experiment": "pretraining_ablation", "results_dir": str(tmp_path), **kwargs}
    with pytest.raises(error, match=match):
        chapter_results(args.pop("profile"), args.pop("experiment"), **args)
    assert not any(tmp_path.rglob("*.json"))  # nothing ran


@pytest.mark.parametrize("bad", [0, 1.5, True, "0.5", None])
def test_check_reference(bad):
    with pytest.raises(ValueError, match="reference"):
        check_reference(bad)
    assert check_reference(0.5) == 0.5 and check_reference(1) == 1.0


def test_real_chapter_runs_then_reads_its_rows(tmp_path):
    args = dict(densities=[0.5], seeds=[0], results_dir=str(tmp_path), workers=1)
    first = chapter_results("smoke", "pretraining_ablation", **args)
    assert isinstance(first, ChapterResults) and first.profile.name == "smoke"
    # full dataset + Random+DRoP at the smoke grid's three query lengths (half an epoch, 1, 2)
    assert len(first.frame) == len(first.specs) == 4
    assert list(first.frame["label"]) == ["Full dataset"] + ["Random+DRoP"] * 3
    assert sorted(first.frame["query_epochs"]) == [0.5, 1, 1, 2]
    assert first.lines[0].startswith("4 runs: 0 read from") and "4 computed now" in first.lines[0]
    again = chapter_results("smoke", "pretraining_ablation", **args)
    assert again.lines[0].startswith("4 runs: 4 read from") and "0 computed now" in again.lines[0]
    assert again.frame["test_recalls"].tolist() == first.frame["test_recalls"].tolist()
    # A Profile object works too (chapter 03 narrows the strategies this way).
    narrowed = dataclasses.replace(get_profile("smoke"), seeds=(0,))
    third = chapter_results(narrowed, "pretraining_ablation", densities=[0.5], results_dir=str(tmp_path))
    assert third.lines[0].startswith("4 runs: 4 read from")


def test_label_settings_names_each_row_and_keeps_shared_runs_under_both():
    import pandas as pd

    from dropkit.chapter import label_settings

    spec = lambda key: type("Spec", (), {"cache_key": key})()  # noqa: E731
    frame = pd.DataFrame({"cache_key": ["a", "b", "c", "x"], "value": [1, 2, 3, 4]})
    out = label_settings(frame, {"mlp-fashion-mnist": [spec("a"), spec("b")],
                                 "cnn-fashion-mnist": [spec("b"), spec("c")]})
    assert out[["cache_key", "setting"]].values.tolist() == [
        ["a", "mlp-fashion-mnist"], ["b", "mlp-fashion-mnist"], ["b", "cnn-fashion-mnist"], ["c", "cnn-fashion-mnist"]]
    assert list(out.index) == [0, 1, 2, 3]  # the row of no setting ("x") is left out


def test_a_two_setting_chapter_carries_the_setting_and_judges_each_on_its_own(tmp_path):
    """Chapter 02 on the smoke profile (one density): the MLP runs every method, the CNN Random,
    EL2N and Forgetting; the frame names each row's setting, the setting paragraph describes both,
    and the chapter's verdicts are one row per claim and setting, with the omitted ones explained."""
    from dropkit import scorecard, tables
    from dropkit.chapter import setting_paragraph

    results = chapter_results("smoke", "bias_benchmark", densities=[0.5], results_dir=str(tmp_path), workers=1)
    frame = results.frame
    assert list(dict.fromkeys(frame["setting"])) == ["mlp-fashion-mnist", "cnn-fashion-mnist"]
    cnn = frame[frame["setting"] == "cnn-fashion-mnist"]
    assert set(cnn["model"]) == {"cnn"} and set(cnn["augment"]) == {True}
    assert tables.score_methods(cnn) == ("el2n", "forgetting")
    assert len(frame) == len(results.specs) == 7 + 4
    text = setting_paragraph(results, "bias_benchmark")
    assert text.startswith("**Settings** (profile `smoke`): 2 settings")
    assert "- **fashion-mnist, MLP**: an MLP" in text and "- **fashion-mnist, CNN**: a small CNN" in text
    cnn_line = next(line for line in text.splitlines() if line.startswith("- **fashion-mnist, CNN**"))
    assert "shifts of at most 2 px, no flips" in cnn_line and "1 seed (0); densities 0.5" in cnn_line
    # one row per claim and setting that runs its curves, each its rule on that setting's rows only
    chosen = [c for c in scorecard.profile_claims(results.profile) if c.experiments == ("bias_benchmark",)]
    frames = {"bias_benchmark": frame}
    table = scorecard.scorecard(frames, chosen, strict=False)
    omitted = scorecard.omitted(frames, chosen)
    verdicts = scorecard.chapter_markdown(table, "02_bias_benchmark", omitted)
    assert "**fashion-mnist, CNN**: Forgetting does not improve worst-class accuracy" in verdicts
    assert "**fashion-mnist, CNN**: GraNd" not in verdicts and "**fashion-mnist, MLP**: GraNd" in verdicts
    assert "**fashion-mnist, CNN** has no row for `du-best-accuracy`" in verdicts
    names = {title: name for name, title in tables.setting_titles(frame).items()}
    pairs = set(zip(table["id"], table["setting"])) | set(zip(omitted["id"], omitted["setting"]))
    assert pairs == {(c.id, title) for c in chosen for title in names}  # every pair: a row or a reason
    for entry in table.to_dict("records"):
        c = next(c for c in chosen if c.id == entry["id"])
        if entry["verdict"] == scorecard.NOT_COMPUTED:  # e.g. one density: no low density, no slope
            continue
        evidence, decision = scorecard.evaluate(c, frame[frame["setting"] == names[entry["setting"]]])
        assert entry["verdict"] == decision.verdict
        assert entry["n"] == 1 and entry["verdict"] in ("inconclusive", "holds", "contradicted", "context")
