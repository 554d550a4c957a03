"""Query trainings that are prefixes of a longer one (chapter 07's query lengths) are computed once:
``runner.query_groups`` groups them (``runner.query_plan``: the groups a sweep still trains and
which run waits for which), ``runner.query_group_outputs`` and the sweep train the longest
and take the shorter ones from its snapshots, storing each under its own unchanged query key, with
exactly the numbers of separate trainings; the dry run counts the shared training once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import dataset_fixtures as fx
import dropkit.scores.query as query_module
from dropkit.cost import Passes, group_query_passes, model_flops, query_passes, sweep_jobs
from dropkit.kernels import same_kernels
from dropkit.models import build_model
from dropkit.profiles import experiment_specs, get_profile
from dropkit.runner import (QueryPlan, _query_config, load_data, query_group_outputs, query_groups, query_outputs,
                            query_plan, query_specs, recall_spec, run, stored_queries)
from dropkit.scores import prefix_query_mismatch
from dropkit.spec import RunSpec
from dropkit.store import ResultStore
from dropkit.sweep import sweep
from shipped_reproduction import assert_reproduces, check_pinned, rerun_environment

torch.set_num_threads(1)

#: What a run computes (tests/test_shipped_results.py's list, less the keys' names).
COMPUTED = ("query_val_recalls", "class_counts", "num_kept", "test_recalls", "val_recalls", "test_accuracy",
            "test_worst_class", "val_accuracy", "final_epochs")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The IDX test files of ``tests/dataset_fixtures.py``: 80 training images, 20 validation."""
    directory = tmp_path_factory.mktemp("data")
    fx.write_fashion_mnist(directory / "fashion-mnist", n_train=80, n_test=40, seed=5)
    return directory


def _spec(query_epochs, **fields) -> RunSpec:
    """Random+DRoP with EL2N query models of ``query_epochs`` (2 query seeds, batches of 8: 10 per
    epoch, so 0.3 epoch is 3 steps) and the final model's drops at 5 and 8 of 10 epochs."""
    base = dict(dataset="fashion-mnist", model="mlp", protocol="random+drop", density=0.5, method="el2n",
                query_epochs=query_epochs, query_seeds=2, epochs=10, drop_epochs=(5, 8), batch_size=8)
    return RunSpec(**(base | fields))


@pytest.fixture
def trainings(monkeypatch):
    """The query trainings started (each one list of the prefixes snapshotted from it)."""
    started: list = []
    train = query_module.train
    monkeypatch.setattr(query_module, "train", lambda *a, **k: started.append(k["prefixes"]) or train(*a, **k))
    return started


def _assert_same_outputs(first: dict, second: dict, label) -> None:
    assert first.keys() == second.keys(), label
    for name in first:
        assert np.array_equal(first[name], second[name]), (label, name)


def test_chapter_07_query_trainings_are_one_group_per_seed():
    specs = experiment_specs("default", "pretraining_ablation")
    groups = query_groups(query for spec in specs for query in query_specs(spec))
    seeds = get_profile("default").seeds_for("pretraining_ablation")
    assert len(groups) == len(seeds)                                 # one per seed, not 5 per seed
    assert sorted(group[0].seed for group in groups) == sorted(seeds)
    for group in groups:
        assert [query.query_epochs for query in group] == [5, 2, 1, 0.3, 0.1]   # the longest first
        assert len({query.seed for query in group}) == 1 and len({query.query_key for query in group}) == 5
        for query in group[1:]:                                      # the stated condition, run by run
            assert prefix_query_mismatch(_query_config(query), _query_config(group[0])) is None


def test_query_trainings_that_differ_in_method_and_length_alone_share_a_group():
    el2n, grand = _spec(2), _spec(1, method="grand")
    alone = [_spec(1, seed=1), _spec(1, query_seeds=3), _spec(1, drop_epochs=(1, 8)), _spec(1, lr=0.05),
             _spec(1, query_cdbw=True)]
    full = [_spec(q, protocol="strategy", method=m)
            for q, m in ((1, "forgetting"), (2, "forgetting"), (1, "dynamic_uncertainty"), (1, "coreset"))]
    groups = query_groups([el2n, *alone, grand, *full, _spec(1, density=0.3), _spec(0.3, protocol="strategy"),
                           _spec(1, protocol="strategy", method="dynamic_uncertainty", du_window=3)])
    # EL2N and GraNd of the same short runs, longest first (one query key each)
    assert groups[0] == (el2n, grand, _spec(1, density=0.3), _spec(0.3, protocol="strategy"))
    assert groups[1:6] == [(other,) for other in alone]
    # every full-length query of one seed and schedule (query_epochs does not change it: one
    # training, two query keys), Dynamic Uncertainty's window only reads its records
    assert groups[6:] == [(*full, _spec(1, protocol="strategy", method="dynamic_uncertainty", du_window=3))]
    assert len({spec.query_key for spec in groups[6]}) == 5
    assert all(len(group) == 1 for group in query_groups([_spec(2), _spec(2, density=0.3)]))
    with pytest.raises(ValueError, match="uses no query model"):
        query_groups([_spec(1, protocol="random", method=None)])
    # A drop epoch inside the longer query is in the shorter one's schedule too: still a prefix.
    inside = [_spec(q, drop_epochs=(1, 3)) for q in (5, 2)]
    assert query_groups(inside) == [tuple(inside)]
    assert prefix_query_mismatch(_query_config(inside[1]), _query_config(inside[0])) is None


def test_the_query_plan_names_each_group_once_and_what_each_run_waits_for():
    random_drop = _spec(2)                                           # EL2N, 2 epochs
    strategy = _spec(2, protocol="strategy")                         # the same query training
    shorter = _spec(1, density=0.3)                                  # a snapshot of it
    strategy_drop = _spec(2, protocol="strategy+drop", method="forgetting", recall_query="short")  # recalls: EL2N's
    full = _spec(2, protocol="none", density=1.0, method=None)      # no query model
    assert strategy.query_key == random_drop.query_key == recall_spec(strategy_drop).query_key
    specs = [random_drop, strategy, shorter, strategy_drop, full, random_drop]
    el2n, forgetting = f"query:{random_drop.query_key}", f"query:{strategy_drop.query_key}"
    plan = query_plan(specs)
    assert plan == QueryPlan(
        groups={el2n: (random_drop, shorter), forgetting: (strategy_drop,)},
        group_of={random_drop.query_key: el2n, shorter.query_key: el2n, strategy_drop.query_key: forgetting},
        waits_for={random_drop.cache_key: (el2n,), strategy.cache_key: (el2n,), shorter.cache_key: (el2n,),
                   strategy_drop.cache_key: (forgetting, el2n), full.cache_key: ()})
    assert list(plan.groups) == [el2n, forgetting]                   # dicts compare without order
    assert forgetting > el2n     # so (forgetting, el2n) above is query_specs' order (own query first), not sorted
    # 2 epochs stored: the 1-epoch query is trained (a group of its own), the 2-epoch EL2N runs wait for nothing
    el2n = f"query:{shorter.query_key}"
    plan = query_plan(iter(specs), {random_drop.query_key})
    assert list(plan.groups) == [el2n, forgetting]
    assert plan == QueryPlan(
        groups={el2n: (shorter,), forgetting: (strategy_drop,)},
        group_of={shorter.query_key: el2n, strategy_drop.query_key: forgetting},
        waits_for={random_drop.cache_key: (), strategy.cache_key: (), shorter.cache_key: (el2n,),
                   strategy_drop.cache_key: (forgetting,), full.cache_key: ()})
    assert query_plan([full]) == QueryPlan({}, {}, {full.cache_key: ()})


def test_stored_queries_are_the_readable_score_files_of_every_query_a_run_needs(tmp_path):
    random_drop, full = _spec(2), _spec(2, protocol="none", density=1.0, method=None)
    strategy_drop = _spec(2, protocol="strategy+drop", method="forgetting", recall_query="short")  # + EL2N's recalls
    store = ResultStore(tmp_path, "smoke")
    assert stored_queries([random_drop, strategy_drop, full], store) == set()
    store.save_scores(random_drop.query_key, {"scores": np.zeros(3)})        # the recall query of both
    assert stored_queries([strategy_drop], store) == {random_drop.query_key}
    store.scores_path(strategy_drop.query_key).write_bytes(b"not an npz")    # unreadable: recomputed
    with pytest.warns(UserWarning, match="unreadable score cache"):
        assert stored_queries([random_drop, strategy_drop, full], store) == {random_drop.query_key}


def test_group_outputs_equal_separate_trainings_and_are_stored_under_their_own_keys(root, tmp_path, trainings):
    specs = [_spec(q) for q in (0.3, 2, 5)]
    data = load_data(specs[0], root)
    store = ResultStore(tmp_path, "smoke")
    query_outputs(specs[1], data, store)                             # 2 epochs stored already
    assert len(trainings) == 2
    (group,) = query_groups(specs)
    outputs = query_group_outputs(group, data, store)
    assert trainings[2:] == [[_query_config(specs[0]).train_config(full=False, seed=s)] for s in (1000, 1001)]
    assert set(outputs) == {spec.query_key for spec in specs}
    for spec in specs:                                               # computed alone, with no store
        separate = query_outputs(spec, data)
        _assert_same_outputs(outputs[spec.query_key], separate, spec.query_epochs)
        _assert_same_outputs(store.load_scores(spec.query_key), separate, spec.query_epochs)
    assert not np.array_equal(outputs[specs[0].query_key]["scores"], outputs[specs[2].query_key]["scores"])
    query_group_outputs(group, data, store)                          # all stored: nothing trains
    assert len(trainings) == 4 + 3 * 2
    with pytest.raises(ValueError, match="differ in more than their method and the length"):
        query_group_outputs((specs[2], _spec(1, seed=1)), data, store)


@pytest.mark.parametrize("short", [True, False])
def test_queries_of_several_methods_on_the_same_trainings_equal_separate_ones(root, tmp_path, trainings, short):
    """EL2N and GraNd of the same short runs (and a shorter EL2N from their snapshots); Forgetting,
    Dynamic Uncertainty (two windows), CoreSet and SSP of one full-length training."""
    methods = (("el2n", 2), ("grand", 2), ("el2n", 1)) if short else \
        (("forgetting", 1), ("dynamic_uncertainty", 1), ("coreset", 1), ("ssp", 1), ("dynamic_uncertainty", 2))
    specs = [_spec(q, protocol="strategy", method=m, du_window=2 + q) for m, q in methods]
    data = load_data(specs[0], root)
    (group,) = query_groups(specs)
    store = ResultStore(tmp_path, "smoke")
    outputs = query_group_outputs(group, data, store)
    run = _query_config(specs[0]).train_config(full=not short, seed=1000)
    if short:   # one 2-epoch training per query seed; the 1-epoch EL2N runs are their snapshots
        assert trainings == [[dataclasses.replace(run, epochs=1, drop_epochs=(), seed=s)] for s in (1000, 1001)]
    else:       # one full-length training with records; CoreSet's and SSP's plain run is its snapshot
        assert trainings == [[dataclasses.replace(run, record_per_sample=False)]]
    for spec in specs:
        separate = query_outputs(spec, data)                          # its own trainings, no store
        _assert_same_outputs(outputs[spec.query_key], separate, spec.label())
        _assert_same_outputs(store.load_scores(spec.query_key), separate, spec.label())
    assert len(trainings) == (2 + 3 * 2 if short else 1 + 5)
    scores = [outputs[spec.query_key]["scores"] for spec in specs]
    assert not any(np.array_equal(scores[0], other) for other in scores[1:])


def test_a_sweep_trains_a_group_once_and_stores_the_rows_of_separate_trainings(root, tmp_path, trainings):
    specs = [_spec(q, density=d) for q in (0.3, 2, 5) for d in (0.4, 0.6)]
    grouped = ResultStore(tmp_path / "grouped", "smoke")
    report = sweep(specs, grouped, data_root=root, progress=False)
    assert report.ran == 6 and len(trainings) == 2                  # one training per query seed for 3 lengths
    assert all(len(prefixes) == 2 for prefixes in trainings)
    separate = ResultStore(tmp_path / "separate", "smoke")
    sweep(specs, separate, data_root=root, progress=False, run_function=run)  # each run trains its own query
    assert len(trainings) == 2 + 3 * 2 and all(prefixes == [] for prefixes in trainings[2:])
    for spec in specs:
        row, alone = grouped.read(spec.cache_key), separate.read(spec.cache_key)
        assert (row["cache_key"], row["query_key"]) == (alone["cache_key"], alone["query_key"])
        for name in COMPUTED:
            assert row[name] == alone[name], (spec.label(), spec.query_epochs, name)
        _assert_same_outputs(grouped.load_scores(spec.query_key), separate.load_scores(spec.query_key), spec.label())


def test_the_dry_run_counts_a_groups_training_once(root):
    specs = [_spec(q) for q in (0.3, 2, 5)] + [_spec(2, protocol="none", density=1.0, method=None)]
    jobs, _ = sweep_jobs(specs, data_root=root)
    (query,) = [job for job in jobs if job.key.startswith("query:")]
    assert query.key == f"query:{specs[2].query_key}"
    data = load_data(specs[0], root)
    n, n_eval = data.num_train, len(data.y_val) + len(data.y_test)
    flops = model_flops(build_model("mlp", num_classes=10, input_shape=(1, 28, 28)), (1, 28, 28), 10)
    group = (specs[2], specs[1], specs[0])
    assert query.cost == pytest.approx(group_query_passes(group, n, n_eval).flops(flops))
    # 2 runs x 5 epochs of training; evaluation and scoring of 2 x 3 query models
    assert group_query_passes(group, n, n_eval) == dataclasses.replace(
        query_passes(specs[2], n, n_eval), forward=3 * 2 * (n + n_eval))
    assert query.cost < sum(query_passes(spec, n, n_eval).flops(flops) for spec in group[:3])
    assert all(job.after == (query.key,) for job in jobs if job.key in {s.cache_key for s in specs[:3]})
    # several methods on the same trainings: each distinct run trained and evaluated once
    short = (_spec(2), _spec(2, method="grand"), _spec(1))
    assert group_query_passes(short, n, n_eval) == Passes(train=2 * 2 * n + 2 * n, forward=2 * 2 * n_eval + 2 * 2 * n)
    full = [_spec(1, protocol="strategy", method=m) for m in ("forgetting", "dynamic_uncertainty", "coreset")]
    assert group_query_passes(full, n, n_eval) == Passes(train=10 * n, forward=2 * n_eval + n)  # records or not
    assert group_query_passes(full[:1], n, n_eval) == query_passes(full[0], n, n_eval) == Passes(10 * n, n_eval)
    stored, _ = sweep_jobs(specs, data_root=root, stored_queries={specs[2].query_key})
    (query,) = [job for job in stored if job.key.startswith("query:")]  # 2 epochs trained, 0.3 its snapshot
    assert query.key == f"query:{specs[1].query_key}"


# --------------------------------------------------------------------------- the shipped rows

#: Chapter 07's shipped rows were computed with ATen's AVX2 kernels and MKL's Zen path, one torch
#: thread (see tests/test_shipped_results.py): the group is swept in a fresh interpreter on those
#: kernels, pinned where possible (tests/shipped_reproduction.py).
_GROUP_SWEEP = """
import json, sys
import torch
torch.set_num_threads(1)
import dropkit.scores.query as query_module
from dropkit.spec import RunSpec
from dropkit.store import ResultStore
from dropkit.sweep import sweep
assert torch.backends.cpu.get_cpu_capability() == "AVX2", torch.backends.cpu.get_cpu_capability()
started, train = [], query_module.train
query_module.train = lambda *a, **k: started.append(len(k["prefixes"])) or train(*a, **k)
sweep([RunSpec.from_dict(d) for d in json.loads(sys.argv[1])], ResultStore(sys.argv[2], "default"), progress=False)
print(json.dumps(started))
"""


@pytest.mark.slow
def test_chapter_07s_shipped_rows_reproduce_from_one_group_training(tmp_path):
    """Seed 0 at the lowest ablation density: the five query lengths (0.1-5 epochs, 5 query seeds
    each) from 5 trainings instead of 25, and every stored number of the five rows as shipped."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    shipped = ResultStore(Path(__file__).resolve().parents[1] / "results", "default")
    specs = [s for s in experiment_specs("default", "pretraining_ablation")
             if s.seed == 0 and s.protocol == "random+drop" and s.density == 0.4]
    assert sorted(s.query_epochs for s in specs) == [0.1, 0.3, 1, 2, 5]
    stored = [shipped.read(spec.cache_key) for spec in specs]
    assert all(row["cpu_capability"] == "AVX2" for row in stored)
    assert all(same_kernels(row, stored[0]) for row in stored)  # one sweep on one machine's kernels
    env, pinned = rerun_environment(stored[0])
    done = subprocess.run([sys.executable, "-c", _GROUP_SWEEP, json.dumps([s.to_dict() for s in specs]), str(tmp_path)],
                          check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], env=env)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [4] * 5  # 5 query seeds, 4 snapshots each
    for spec, row in zip(specs, stored, strict=True):
        fresh = ResultStore(tmp_path, "default").read(spec.cache_key)
        check_pinned(fresh, pinned)
        assert_reproduces(fresh, row, ("cache_key", "query_key", "num_train", "class_sizes", *COMPUTED, "test_gap",
                                       "test_std", "val_worst_class", "val_gap", "val_std"),
                          f"query {spec.query_epochs} epochs")


@pytest.mark.slow
def test_the_bias_benchmarks_shipped_rows_reproduce_with_one_training_per_query_run(tmp_path):
    """The MLP bias benchmark at d = 0.1, seed 0: EL2N and GraNd from the same 5 short runs, and
    Forgetting, Dynamic Uncertainty and CoreSet from one full-length training (it records;
    CoreSet's run without records is its snapshot), instead of 5 + 5 + 3 trainings, with every
    stored number of the five rows as shipped (CoreSet's greedy k-center order included)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    shipped = ResultStore(Path(__file__).resolve().parents[1] / "results", "default")
    specs = [s for s in experiment_specs("default", "bias_benchmark", setup="mlp-fashion-mnist", densities=[0.1],
                                         seeds=[0]) if s.protocol == "strategy"]
    assert sorted(s.method for s in specs) == ["coreset", "dynamic_uncertainty", "el2n", "forgetting", "grand"]
    assert len(query_groups(specs)) == 2
    stored = [shipped.read(spec.cache_key) for spec in specs]
    assert all(same_kernels(row, stored[0]) for row in stored)  # one sweep on one machine's kernels
    env, pinned = rerun_environment(stored[0])
    done = subprocess.run([sys.executable, "-c", _GROUP_SWEEP, json.dumps([s.to_dict() for s in specs]), str(tmp_path)],
                          check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], env=env)
    assert sorted(json.loads(done.stdout.strip().splitlines()[-1])) == [0] * 5 + [1]  # snapshots per training
    for spec, row in zip(specs, stored, strict=True):
        fresh = ResultStore(tmp_path, "default").read(spec.cache_key)
        check_pinned(fresh, pinned)
        assert_reproduces(fresh, row, ("cache_key", "query_key", "num_train", "class_sizes", *COMPUTED, "test_gap",
                                       "test_std", "val_worst_class", "val_gap", "val_std"), spec.method)
