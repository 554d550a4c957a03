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
