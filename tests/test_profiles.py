"""Profiles (smoke, default, paper) and the experiment sets they expand to."""

from __future__ import annotations

import collections
import dataclasses

import pytest

from dropkit.spec import RunSpec
from dropkit.profiles import (
    EXPERIMENT_SETS,
    PROFILE_NAMES,
    Profile,
    check_experiment,
    check_profile,
    experiment_settings,
    experiment_specs,
    get_profile,
)

TENTHS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_known_profiles(name):
    assert check_profile(name) == name
    profile = get_profile(name)
    assert isinstance(profile, Profile) and profile.name == name
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.seeds = (0,)


@pytest.mark.parametrize("bad", ["Default", "fastest", "", None, 5, ["smoke"]])
def test_unknown_profile_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"profile=.* is not a known profile; choose one of smoke"):
        check_profile(bad)
    with pytest.raises(ValueError, match="is not a known profile"):
        get_profile(bad)


def test_unknown_experiment_is_a_clear_error():
    assert check_experiment("drop_evaluation") == "drop_evaluation"
    with pytest.raises(ValueError, match="experiment='theory' is not a known experiment set"):
        experiment_specs("smoke", "theory")


def test_paper_profile_is_table_1():
    paper = get_profile("paper")
    table = {
        s.name: (s.model, s.dataset, s.epochs, s.drop_epochs, s.batch_size, s.lr, s.weight_decay)
        for s in paper.setups
    }
    assert table == {
        "vgg16-cifar10": ("vgg16", "cifar10", 160, (80, 120), 128, 0.1, 1e-4),
        "vgg19-cifar100": ("vgg19", "cifar100", 160, (80, 120), 128, 0.1, 5e-4),
        "resnet18-tinyimagenet": ("resnet18", "tinyimagenet", 200, (100, 150), 256, 0.2, 1e-4),
        "resnet50-imagenet": ("resnet50", "imagenet", 90, (30, 60), 512, 0.2, 1e-4),
        "resnet50-waterbirds": ("resnet50", "waterbirds", 300, (), 128, 1e-4, 1e-4),
    }
    # Query models: 10% of the training length (Appendix A), 5 query seeds.
    assert {s.name: s.query_epochs for s in paper.setups} == {
        "vgg16-cifar10": 16, "vgg19-cifar100": 16, "resnet18-tinyimagenet": 20,
        "resnet50-imagenet": 9, "resnet50-waterbirds": 30,
    }
    assert paper.query_seeds == 5 and paper.seeds == (0, 1, 2) and paper.densities == TENTHS
    # Augmentation on the final model except for Waterbirds.
    assert {s.name for s in paper.setups if not s.augment} == {"resnet50-waterbirds"}
    assert paper.setup("resnet50-waterbirds").needs_pretrained
    assert paper.device == "cuda"


def test_default_profile_fits_two_cores():
    default = get_profile("default")
    main = default.setup("mlp-fashion-mnist")
    assert (main.dataset, main.model, main.epochs, main.train_subset) == ("fashion-mnist", "mlp", 10, None)
    assert default.seeds == (0, 1, 2, 3, 4) and default.densities == (0.1, 0.3, 0.5, 0.7, 0.9)
    assert default.workers * default.threads <= 2
    assert default.device == "cpu"


def test_smoke_profile_is_tiny():
    smoke = get_profile("smoke")
    for setup in smoke.setups:
        assert setup.train_subset is not None and setup.train_subset <= 3000
        assert setup.epochs <= 2
    assert smoke.seeds == (0,) and 2 <= len(smoke.densities) <= 3


def test_smoke_bias_benchmark_specs():
    both = experiment_specs("smoke", "bias_benchmark")
    assert [s.model for s in both] == ["mlp"] * 13 + ["cnn"] * 7      # one block per setting
    specs = experiment_specs("smoke", "bias_benchmark", setup="mlp-fashion-mnist")
    kinds = collections.Counter((s.protocol, s.method) for s in specs)
    assert kinds == {
        ("none", None): 1,
        ("random", None): 2,
        ("strategy", "el2n"): 2,
        ("strategy", "grand"): 2,
        ("strategy", "forgetting"): 2,
        ("strategy", "dynamic_uncertainty"): 2,
        ("strategy", "coreset"): 2,
    }
    assert all(isinstance(s, RunSpec) for s in specs)
    assert {s.train_subset for s in specs} == {3000}
    assert {s.density for s in specs if s.protocol != "none"} == {0.3, 0.7}
    # One query training per method serves both densities.
    assert len({s.query_key for s in specs if s.query_key}) == 5
    # The convolutional setting runs the methods of its own list, with its augmentation.
    cnn = experiment_specs("smoke", "bias_benchmark", setup="cnn-fashion-mnist")
    assert collections.Counter((s.protocol, s.method) for s in cnn) == {
        ("none", None): 1, ("random", None): 2, ("strategy", "el2n"): 2, ("strategy", "forgetting"): 2}
    assert {(s.model, s.augment, s.max_shift, s.hflip, s.channels_last) for s in cnn} == {("cnn", True, 2, False, True)}
    with pytest.raises(ValueError, match="setup='vgg'.*mlp-fashion-mnist, cnn-fashion-mnist"):
        experiment_specs("smoke", "bias_benchmark", setup="vgg")


def test_default_seeds_are_registered_per_setting():
    """Issue 28's pre-registration: 20 seeds for every MLP setting, 10 for the CNN; their rows are
    all computed and shipped, so every chapter reads all of them (no ``experiment_seeds``)."""
    default = get_profile("default")
    assert default.registered_seeds("mlp-fashion-mnist") == tuple(range(20))
    assert default.registered_seeds("mlp-spurious-fashion-mnist") == tuple(range(20))
    assert default.registered_seeds("cnn-fashion-mnist") == tuple(range(10))
    assert default.experiment_seeds == ()
    for experiment in EXPERIMENT_SETS:
        for setup in default.setups_for(experiment):
            seeds = default.seeds_for(experiment, setup.name)
            assert seeds == default.registered_seeds(setup.name)
            by_setting = experiment_settings(default, experiment, setup=setup.name)
            assert {spec.seed for spec in by_setting[setup.name]} == set(seeds)
    # the smoke profile registers nothing of its own: its profile seeds
    smoke = get_profile("smoke")
    assert all(smoke.registered_seeds(s.name) == smoke.seeds for s in smoke.setups)


def test_the_registered_seeds_are_the_readmes_pre_registration():
    """The profile's registered seeds are the ones ``results/default/README.md`` fixed before the
    rows were computed (its table: setting, cells, seeds, replicates)."""
    from pathlib import Path
    import re

    text = (Path(__file__).resolve().parents[1] / "results" / "default" / "README.md").read_text()
    section = text.split("## Pre-registered seed counts", 1)[1]
    table = {}
    for line in section.splitlines():
        names = re.findall(r"`([a-z0-9-]+-fashion-mnist)`", line)
        seeds = re.match(r".*\| (\d+)-(\d+) \| (\d+) \|\s*$", line)
        if line.startswith("|") and names and seeds:
            first, last, count = map(int, seeds.groups())
            assert last - first + 1 == count
            table.update({name: tuple(range(first, last + 1)) for name in names})
    default = get_profile("default")
    assert table == {s.name: default.registered_seeds(s.name) for s in default.setups}


def test_seeds_per_setting():
    profile = dataclasses.replace(get_profile("smoke"), setups=tuple(
        dataclasses.replace(s, seeds=(0, 1, 2) if s.model == "mlp" else (0, 1)) for s in get_profile("smoke").setups))
    by_setting = experiment_settings(profile, "drop_evaluation")
    assert {s.seed for s in by_setting["mlp-fashion-mnist"]} == {0, 1, 2}
    assert {s.seed for s in by_setting["cnn-fashion-mnist"]} == {0, 1}
    with pytest.raises(ValueError, match="different seeds on its setups.*name the setup"):
        profile.seeds_for("drop_evaluation")
    assert profile.seeds_for("waterbirds") == (0, 1, 2)
    # a caller's seeds replace every setting's
    assert {s.seed for specs in experiment_settings(profile, "drop_evaluation", seeds=[4]).values() for s in specs} == {4}
    pending = dataclasses.replace(profile, experiment_seeds=(("drop_evaluation", "mlp-fashion-mnist", (0,)),))
    assert pending.seeds_for("drop_evaluation", "mlp-fashion-mnist") == (0,)
    assert pending.seeds_for("bias_benchmark", "mlp-fashion-mnist") == (0, 1, 2)
    for bad, message in [((("drop_evaluation", "vgg", (0,)),), "no setup 'vgg'"),
                         ((("drop_evaluation", "mlp-fashion-mnist", (7,)),), "seeds outside the setup's registered"),
                         ((("chapter9", "mlp-fashion-mnist", (0,)),), "not a known experiment set"),
                         ((("drop_evaluation", (0,)),), "must be \\(experiment set, setup name, seeds\\)")]:
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(profile, experiment_seeds=bad)


def test_default_drop_evaluation_specs():
    specs = experiment_specs("default", "drop_evaluation", setup="mlp-fashion-mnist")
    seeds = len(get_profile("default").seeds_for("drop_evaluation", "mlp-fashion-mnist"))
    assert len(specs) == len({s.cache_key for s in specs}) == seeds * (5 * (2 + 2 * 3) + 1)
    kinds = collections.Counter((s.protocol, s.method) for s in specs)
    assert kinds[("random+drop", "el2n")] == 5 * seeds
    assert kinds[("strategy+drop", "forgetting")] == 5 * seeds
    assert kinds[("random+strategyq", "el2n")] == 5 * seeds
    assert kinds[("none", None)] == seeds
    assert {s.query_seeds for s in specs} == {5}
    # Runs shared with the bias benchmark have identical keys (computed once).
    bias = {s.cache_key for s in experiment_specs("default", "bias_benchmark")}
    shared = [s for s in specs if s.cache_key in bias]
    assert {(s.protocol, s.method) for s in shared} == {
        ("none", None), ("random", None), ("strategy", "el2n"), ("strategy", "forgetting")
    }
    # The CNN tier (issue 16): full, Random, EL2N, Forgetting, Random+EL2NQ, EL2N+DRoP, Random+DRoP
    cnn = [s for name in ("bias_benchmark", "drop_evaluation")
           for s in experiment_specs("default", name, setup="cnn-fashion-mnist")]
    assert {(s.protocol, s.method) for s in cnn} == {
        ("none", None), ("random", None), ("strategy", "el2n"), ("strategy", "forgetting"),
        ("random+strategyq", "el2n"), ("strategy+drop", "el2n"), ("random+drop", "el2n")}
    assert len({s.seed for s in cnn}) >= 5 and len({s.density for s in cnn} - {1.0}) >= 4
    assert {s.model for s in experiment_specs("default", "drop_evaluation")} == {"mlp", "cnn"}


def test_cdbw_imbalanced_waterbirds_and_ablation_sets():
    cdbw = experiment_specs("smoke", "cdbw")
    # each CDB-W run twice: with the profile's weight rule ("paper") and the authors'
    for rule in ("paper", "authors"):
        ruled = [s for s in cdbw if s.cdbw_weights == rule]
        assert sum(s.protocol == "none" and s.cdbw for s in ruled) == 1
        assert sum(s.protocol == "strategy" and s.cdbw for s in ruled) == 2
        assert sum(s.protocol == "strategy" and s.query_cdbw for s in ruled) == 2
    assert {s.cdbw_weights for s in cdbw if s.cdbw or s.query_cdbw} == {"paper", "authors"}
    seeds = get_profile("default").seeds_for("cdbw", "mlp-fashion-mnist")
    assert len(seeds) in (5, 20)  # seeds 0-4 until the pre-registered 20 are computed (issue 28)
    assert len(experiment_specs("default", "cdbw")) == len(seeds) * (3 + 7 * 5)  # 3 full + 7 protocols x 5 d
    # CDB-W's first epoch is unweighted: the cdbw set's query models train >= 2 epochs, all alike,
    # unless the setup's own query length is longer (paper: 16) or the caller overrides it.
    for profile, expected in (("smoke", 2), ("default", 2), ("paper", 16)):
        assert {s.query_epochs for s in experiment_specs(profile, "cdbw", seeds=[0])} == {expected}
    assert {s.query_epochs for s in experiment_specs("default", "cdbw", query_epochs=4)} == {4}
    assert {s.query_epochs for s in experiment_specs("default", "drop_evaluation", setup="mlp-fashion-mnist")} == {1}
    default = get_profile("default")
    imbalanced = experiment_specs(default, "imbalanced", seeds=[0])
    assert {s.imbalance_factor for s in imbalanced} == {2.0, 5.0, 20.0}
    assert {(s.protocol, s.method, s.quota_rule) for s in imbalanced} == {
        ("none", None, "paper"), ("random+drop", "el2n", "paper"), ("random+drop", "el2n", "counts"),
        ("strategy", "el2n", "paper"),
    }
    assert len(imbalanced) == 3 * (2 + 3 * 5)  # factors x (full, CDB-W full + 3 protocols x 5 densities)
    waterbirds = experiment_specs("default", "waterbirds")
    assert {s.dataset for s in waterbirds} == {"spurious-fashion-mnist"}
    assert {(s.protocol, s.drop_over) for s in waterbirds if s.drop_over == "groups"} == {
        ("random+drop", "groups"), ("strategy+drop", "groups")}
    assert len(waterbirds) == len(get_profile("default").seeds_for("waterbirds")) * (2 + 6 * 5)  # seeds x (full, CDB-W full + 6 protocols x 5 densities)
    ablation = experiment_specs("default", "pretraining_ablation")
    assert {s.query_epochs for s in ablation if s.protocol != "none"} == {0.1, 0.3, 1, 2, 5}
    assert {s.density for s in ablation if s.protocol != "none"} == {0.4, 0.5, 0.8}


def test_paper_sets_cover_the_papers_setups():
    specs = experiment_specs("paper", "drop_evaluation", seeds=[0], densities=[0.5])
    strategies = {(s.dataset, s.method) for s in specs if s.protocol == "strategy"}
    assert strategies == {("cifar10", "el2n"), ("cifar100", "grand"), ("cifar100", "forgetting"),
                          ("tinyimagenet", "grand"), ("tinyimagenet", "forgetting"),
                          ("imagenet", "el2n")}
    assert {s.device for s in specs} == {"cuda"}
    vgg19 = [s for s in specs if s.dataset == "cifar100"]
    assert {(s.epochs, s.drop_epochs, s.batch_size, s.lr, s.weight_decay, s.augment, s.query_epochs)
            for s in vgg19} == {(160, (80, 120), 128, 0.1, 5e-4, True, 16)}
    with pytest.raises(ValueError, match="pretrained_path"):
        experiment_specs("paper", "waterbirds")
    waterbirds = experiment_specs("paper", "waterbirds", seeds=[0], densities=[0.5],
                                  pretrained_path="/weights/resnet50.pt")
    assert {s.pretrained_path for s in waterbirds} == {"/weights/resnet50.pt"}
    assert {s.augment for s in waterbirds} == {False}


def test_overrides():
    specs = experiment_specs("smoke", "drop_evaluation", densities=[0.5], seeds=[3, 4],
                             device="cuda", model="cnn", epochs=1, query_seeds=1)
    assert {s.density for s in specs if s.protocol != "none"} == {0.5}
    assert {s.seed for s in specs} == {3, 4}
    assert {(s.device, s.model, s.epochs, s.query_seeds) for s in specs} == {("cuda", "cnn", 1, 1)}
    # An experiment's own variations win over overrides.
    ablation = experiment_specs("smoke", "pretraining_ablation", query_epochs=7)
    assert {s.query_epochs for s in ablation if s.protocol != "none"} == {0.5, 1, 2}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"densities": "0.5"}, "densities='0.5' must be a non-empty list"),
        ({"densities": [0.5, 1.5]}, "densities"),
        ({"densities": []}, "densities"),
        ({"densities": [True]}, "densities"),
        ({"seeds": 3}, "seeds=3 must be a non-empty list"),
        ({"seeds": [0.5]}, "seeds"),
        ({"dataset": "cifar10"}, "dataset='cifar10' is not used by experiment"),
        ({"model": "resnet7"}, "model='resnet7' is not known"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"learning_rate": 0.1}, r"unknown override\(s\) \['learning_rate'\]"),
        ({"protocol": "random"}, r"unknown override\(s\) \['protocol'\]"),
        ({"epochs": 1}, "drop_epochs"),  # default's drop epochs (5, 8) do not fit 1 epoch
    ],
)
def test_bad_experiment_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        experiment_specs("default", "drop_evaluation", **kwargs)


def test_every_profile_and_set_expands():
    for name in PROFILE_NAMES:
        for experiment in EXPERIMENT_SETS:
            extra = {"pretrained_path": "w.pt"} if (name in ("paper", "fast") and experiment == "waterbirds") else {}
            specs = experiment_specs(name, experiment, **extra)
            assert specs and len(specs) == len({s.cache_key for s in specs})
            assert sum(s.protocol == "none" for s in specs) >= 1


def test_fast_profile_is_the_paper_cifar_sweep_with_resnet9():
    fast, paper = get_profile("fast"), get_profile("paper")
    assert fast.seeds == paper.seeds and fast.densities == paper.densities == TENTHS
    assert fast.query_seeds == paper.query_seeds == 5
    setup = fast.setup("resnet9-cifar10")
    assert (setup.model, setup.epochs, setup.drop_epochs, setup.batch_size) == ("resnet9", 16, (8, 12), 512)
    specs = experiment_specs("fast", "bias_benchmark", dataset="cifar10")
    assert {s.model for s in specs} == {"resnet9"} and {s.device for s in specs} == {"cuda"}
    # random + 5 score methods, 9 densities, 3 seeds; + one full-dataset run per seed
    assert len(specs) == 6 * 9 * 3 + 3
    # the paper profile keeps Table 1 unchanged
    assert paper.setup("vgg16-cifar10").epochs == 160 and paper.setup("vgg16-cifar10").model == "vgg16"


def test_fast_profile_runs_the_gpu_path_options_and_the_others_do_not():
    fast = experiment_specs("fast", "drop_evaluation", seeds=[0], densities=[0.5])
    assert {(s.bf16, s.channels_last) for s in fast} == {(True, True)}
    for profile in ("smoke", "default"):
        assert {(s.bf16, s.channels_last)
                for s in experiment_specs(profile, "drop_evaluation", setup="mlp-fashion-mnist")} == {(False, False)}
        # the CNN trains in NHWC (part of its rows' identity), fp32 as everywhere on the CPU
        assert {(s.bf16, s.channels_last)
                for s in experiment_specs(profile, "drop_evaluation", setup="cnn-fashion-mnist")} == {(False, True)}
    paper = experiment_specs("paper", "drop_evaluation", seeds=[0], densities=[0.5])
    assert {(s.bf16, s.channels_last) for s in paper} == {(False, False)}  # the paper's fp32 runs


def test_experiment_settings_name_each_setups_runs():
    from dropkit.profiles import experiment_settings

    by_setting = experiment_settings("smoke", "bias_benchmark")
    assert list(by_setting) == ["mlp-fashion-mnist", "cnn-fashion-mnist"]
    cnn = by_setting["cnn-fashion-mnist"]
    assert {s.model for s in cnn} == {"cnn"} and {s.augment for s in cnn} == {True}
    assert sorted({s.method for s in cnn if s.protocol == "strategy"}) == ["el2n", "forgetting"]
    flat = experiment_specs("smoke", "bias_benchmark")
    assert [s.cache_key for s in flat] == [s.cache_key for runs in by_setting.values() for s in runs]
    assert list(experiment_settings("smoke", "cdbw")) == ["mlp-fashion-mnist"]
    # a model override keeps the settings apart and says so in their names
    renamed = experiment_settings("smoke", "drop_evaluation", model="linear")
    assert list(renamed) == ["mlp-fashion-mnist with model linear", "cnn-fashion-mnist with model linear"]
