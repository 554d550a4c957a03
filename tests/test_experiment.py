"""RunSpec identity, run(), sweeps (local pool, submitit), crash safety under SIGKILL."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dropkit.kernels import cpu_description, kernel_environment, mkl_code_path, onednn_isa
from dropkit.runner import run
from dropkit.spec import (LATER_FIELD_DEFAULTS, QUERY_FIELDS, QUERY_ONLY_FIELDS, QUOTA_ONLY_FIELDS, SCHEMA_VERSION,
                          RunSpec, full_dataset_spec)
from dropkit.sweep import SlurmOptions, SweepError, results_frame, sweep
from dropkit.store import ResultStore

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

BASE = RunSpec(dataset="fashion-mnist", model="mlp", protocol="strategy", density=0.5,
               method="el2n", epochs=10, drop_epochs=(5, 8))

# One changed value per field: two specs that differ in any field must never share a key.
CHANGED = {
    "dataset": "cifar10",
    "model": "cnn",
    "protocol": "strategy+drop",
    "density": 0.3,
    "seed": 1,
    "method": "grand",
    "dataset_options": {"download": False},
    "train_subset": 3000,
    "imbalance_factor": 5.0,
    "quota_rule": "counts",
    "min_per_class": 3,
    "query_epochs": 2,
    "query_seeds": 5,
    "query_cdbw": True,
    "pretrained_path": "/weights/resnet50.pt",
    "epochs": 12,
    "drop_epochs": (5,),
    "drop_factor": 0.1,
    "lr": 0.05,
    "momentum": 0.0,
    "batch_size": 128,
    "weight_decay": 1e-4,
    "augment": True,
    "cdbw": True,
    "epoch_scaling": True,
    "device": "cuda",
    "drop_over": "groups",
    "bf16": True,
    "channels_last": True,
    "recall_query": "short",
    "cdbw_weights": "paper",
    "du_window": 5,
    "max_shift": 2,
    "hflip": False,
}
#: Fields whose changed value needs another field changed too (compared with that spec).
CHANGED_WITH = {"drop_over": {"protocol": "strategy+drop"}, "quota_rule": {"protocol": "strategy+drop"},
                "min_per_class": {"protocol": "strategy+drop"},
                "recall_query": {"protocol": "strategy+drop", "method": "forgetting"},
                "cdbw_weights": {"cdbw": True}, "du_window": {"method": "dynamic_uncertainty"},
                "max_shift": {"augment": True}, "hflip": {"augment": True}}


def test_changed_covers_every_field_but_the_schema_version():
    names = {f.name for f in dataclasses.fields(RunSpec)}
    assert set(CHANGED) == names - {"schema_version"}


def test_cache_key_differs_when_any_field_differs():
    keys = {BASE.cache_key}
    for name, value in CHANGED.items():
        base = dataclasses.replace(BASE, **CHANGED_WITH.get(name, {}))
        other = dataclasses.replace(base, **{name: value})
        assert other != base and other.cache_key != base.cache_key, name
        keys.add(other.cache_key)
    assert len(keys) == len(CHANGED) + 1
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)


def test_fields_added_later_keep_the_keys_of_earlier_runs_at_their_default():
    # The key of schema-1 specs is the digest of their fields without the later ones: a spec
    # written before ``drop_over`` existed keeps its key, and a stored row that lacks the field
    # rebuilds to the same spec.
    old_fields = {k: v for k, v in BASE.to_dict().items() if k not in LATER_FIELD_DEFAULTS}
    keyed = {k: v for k, v in old_fields.items() if k not in BASE.unused_fields}
    canonical = json.dumps(keyed, sort_keys=True, separators=(",", ":"))
    assert BASE.cache_key == hashlib.sha256(canonical.encode()).hexdigest()
    assert RunSpec.from_dict(old_fields) == BASE
    drop = dataclasses.replace(BASE, protocol="strategy+drop")
    groups = dataclasses.replace(drop, drop_over="groups")
    assert groups.cache_key != drop.cache_key
    assert groups.query_key == drop.query_key  # one query training serves both quota units


def test_fields_a_protocol_does_not_use_stay_out_of_its_key():
    full = full_dataset_spec(BASE)
    random = dataclasses.replace(BASE, protocol="random", method=None)
    for spec in (full, random):
        same = dataclasses.replace(spec, query_epochs=5, query_seeds=3, query_cdbw=True,
                                   quota_rule="counts", min_per_class=4)
        assert same != spec and same.cache_key == spec.cache_key
        assert set(QUERY_ONLY_FIELDS + QUOTA_ONLY_FIELDS) <= set(spec.unused_fields)
    # a score protocol uses its query fields but no quota fields
    assert dataclasses.replace(BASE, quota_rule="counts").cache_key == BASE.cache_key
    assert dataclasses.replace(BASE, query_epochs=2).cache_key != BASE.cache_key
    drop = dataclasses.replace(BASE, protocol="random+drop")
    assert drop.unused_fields == ("recall_query", "cdbw_weights", "du_window", "max_shift", "hflip")
    for name, value in (("query_epochs", 2), ("quota_rule", "counts"), ("min_per_class", 1)):
        assert dataclasses.replace(drop, **{name: value}).cache_key != drop.cache_key, name
    # the query training's key is untouched by the rule
    assert dataclasses.replace(BASE, quota_rule="counts").query_key == BASE.query_key


def test_drop_over_groups_only_for_drop_protocols():
    for protocol in ("none", "random", "strategy", "random+strategyq"):
        with pytest.raises(ValueError, match="drop_over"):
            RunSpec(dataset="fashion-mnist", model="mlp", protocol=protocol,
                    density=1.0 if protocol == "none" else 0.5,
                    method="el2n" if protocol in ("strategy", "random+strategyq") else None,
                    drop_over="groups")
    with pytest.raises(ValueError, match="drop_over"):
        dataclasses.replace(BASE, protocol="random+drop", method=None, drop_over="clusters")


def test_cache_key_is_canonical():
    same = [
        dataclasses.replace(BASE, density=1 / 2),
        dataclasses.replace(BASE, drop_epochs=[5, 8]),
        dataclasses.replace(BASE, lr=0.1, seed=np.int64(0)),
        RunSpec.from_dict(BASE.to_dict()),
    ]
    assert {s.cache_key for s in same} == {BASE.cache_key}
    a = dataclasses.replace(BASE, dataset_options={"b": 1, "a": "x"})
    b = dataclasses.replace(BASE, dataset_options=[("a", "x"), ("b", 1)])
    assert a == b and a.cache_key == b.cache_key and hash(a) == hash(b)
    assert a.dataset_options == (("a", "x"), ("b", 1))
    c = dataclasses.replace(BASE, dataset_options={"class_std": [0.5, 1.5]})
    assert c.dataset_options == (("class_std", (0.5, 1.5)),)
    assert RunSpec.from_dict(json.loads(json.dumps(c.to_dict()))).cache_key == c.cache_key


def test_schema_version_is_part_of_the_key():
    payload = {**BASE.to_dict(), "schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(ValueError, match="schema_version"):
        RunSpec.from_dict(payload)


def test_query_key_is_shared_by_densities_and_protocols_only():
    shared = [
        dataclasses.replace(BASE, density=0.1),
        dataclasses.replace(BASE, protocol="strategy+drop"),
        dataclasses.replace(BASE, protocol="random+strategyq", density=0.9),
        dataclasses.replace(BASE, protocol="random+drop"),  # el2n query model for recalls
        dataclasses.replace(BASE, quota_rule="counts", min_per_class=2, augment=True, cdbw=True),
        dataclasses.replace(BASE, epoch_scaling=True),
    ]
    assert {s.query_key for s in shared} == {BASE.query_key}
    for name in QUERY_FIELDS:
        if name in ("schema_version",):
            continue
        base = dataclasses.replace(BASE, **{"cdbw_weights": {"query_cdbw": True},
                                            "du_window": {"method": "dynamic_uncertainty"}}.get(name, {}))
        other = dataclasses.replace(base, **{name: CHANGED[name]})
        assert other.query_key != base.query_key, name
    assert dataclasses.replace(BASE, protocol="random", method=None).query_key is None
    assert full_dataset_spec(BASE).query_key is None


def test_full_dataset_spec_keeps_training_settings():
    full = full_dataset_spec(dataclasses.replace(BASE, lr=0.05, seed=2))
    assert (full.protocol, full.density, full.method) == ("none", 1.0, None)
    assert (full.lr, full.seed, full.epochs) == (0.05, 2, 10)


def test_random_drop_defaults_to_the_el2n_query_model():
    spec = RunSpec("fashion-mnist", "mlp", "random+drop", 0.5)
    assert spec.method == "el2n"


def test_epoch_scaling():
    spec = dataclasses.replace(BASE, density=0.25, epoch_scaling=True)
    assert spec.final_epochs == 40
    assert spec.final_drop_epochs == (20, 32)
    assert dataclasses.replace(spec, epoch_scaling=False).final_epochs == 10


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"density": 0.0}, "density"),
        ({"density": 1.5}, "density"),
        ({"density": float("nan")}, "density"),
        ({"density": "0.5"}, "density"),
        ({"dataset": "mnist"}, "dataset='mnist' is not known"),
        ({"model": "vgg11"}, "model='vgg11' is not known"),
        ({"protocol": "drop"}, "protocol='drop' is not known"),
        ({"method": "loss"}, "method='loss' is not known"),
        ({"protocol": "random"}, "method='el2n' must be None"),
        ({"protocol": "none"}, "protocol 'none' is the full dataset"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"epochs": 0}, "epochs"),
        ({"drop_epochs": (8, 5)}, "drop_epochs"),
        ({"drop_epochs": (10,)}, "drop_epochs"),
        ({"lr": -0.1}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"batch_size": 1}, "batch_size"),
        ({"imbalance_factor": 0.5}, "imbalance_factor"),
        ({"quota_rule": "fair"}, "quota_rule"),
        ({"query_seeds": 0}, "query_seeds"),
        ({"augment": "yes"}, "augment"),
        ({"device": "gpu"}, "device"),
        ({"dataset_options": {"x": {"nested": 1}}}, "dataset_options"),
        ({"dataset_options": {"x": float("inf")}}, "dataset_options"),
        ({"dataset_options": 3}, "dataset_options"),
        ({"train_subset": 1}, "train_subset"),
    ],
)
def test_bad_spec_fields_are_clear_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(BASE, **changes)


# --------------------------------------------------------------------------- fake runs


def fake_run(spec, store, *, data_root=None):
    """A cheap stand-in for run(): writes a row whose numbers depend on the spec only."""
    row = {**spec.to_dict(), "cache_key": spec.cache_key, "test_accuracy": spec.density,
           "pid": os.getpid()}
    store.write(row)
    return row


def failing_run(spec, store, *, data_root=None):
    if spec.seed == 3:
        raise ValueError("seed 3 is cursed\nsecond line")
    return fake_run(spec, store, data_root=data_root)


def cheap_specs(n: int) -> list[RunSpec]:
    return [RunSpec("gaussian", "linear", "random", 0.5, seed=s) for s in range(n)]


def test_sweep_runs_missing_and_skips_stored(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    specs = cheap_specs(4)
    fake_run(specs[1], store)
    report = sweep(specs + specs[:2], store, run_function=fake_run, progress=False)
    assert (report.total, report.skipped, report.ran, report.failed) == (4, 1, 3, [])
    frame = store.frame()
    assert sorted(frame["seed"]) == [0, 1, 2, 3]
    again = sweep(specs, store, run_function=fake_run, progress=False)
    assert (again.skipped, again.ran) == (4, 0)


def test_failed_run_stops_the_sweep_and_keeps_finished_rows(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    with pytest.raises(SweepError, match="seed 3 is cursed") as info:
        sweep(cheap_specs(6), store, run_function=failing_run, progress=False)
    assert "\n" not in str(info.value)
    assert sorted(store.frame()["seed"]) == [0, 1, 2]
    assert info.value.report.ran == 3
    assert info.value.report.failed[0][0] == "random d=0.5 seed=3"


def test_sweep_refuses_to_oversubscribe_cores(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    cores = os.cpu_count() or 1
    with pytest.raises(ValueError, match="oversubscribes"):
        sweep(cheap_specs(2), store, workers=cores, threads=2, run_function=fake_run)
    assert not store.path.exists()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"executor": "dask"}, ValueError, "executor='dask'"),
        ({"workers": 0}, ValueError, "workers=0"),
        ({"threads": -1}, ValueError, "threads=-1"),
        ({"data_root": "/no/such/data/dir"}, FileNotFoundError, "data_root"),
        ({"slurm": {"partition": "gpu"}}, ValueError, "SlurmOptions"),
    ],
)
def test_bad_sweep_arguments(tmp_path, kwargs, error, match):
    store = ResultStore(tmp_path, "smoke")
    with pytest.raises(error, match=match):
        sweep(cheap_specs(2), store, run_function=fake_run, progress=False, **kwargs)
    assert not store.path.exists()


def test_sweep_rejects_non_specs_and_unwritable_store(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    with pytest.raises(ValueError, match=r"specs\[1\] is a dict"):
        sweep([cheap_specs(1)[0], {"density": 0.5}], store, run_function=fake_run)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        ResultStore(tmp_path / "file", "smoke")
    bad = ResultStore(tmp_path / "file" / "results", "smoke")
    with pytest.raises(PermissionError, match="not writable"):
        sweep(cheap_specs(2), bad, run_function=fake_run, progress=False)


def test_bad_slurm_options():
    with pytest.raises(ValueError, match="cluster"):
        SlurmOptions(cluster="pbs")
    with pytest.raises(ValueError, match="time_min"):
        SlurmOptions(time_min=0)


@pytest.mark.parametrize("cluster", ["debug", "local"])
def test_submitit_executors(tmp_path, monkeypatch, cluster):
    # submitit's local executor starts fresh interpreters: they must import this test module.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    store = ResultStore(tmp_path / "results", "smoke")
    specs = cheap_specs(2)
    report = sweep(specs, store, executor="slurm", run_function=fake_run, progress=False,
                   slurm=SlurmOptions(cluster=cluster, partition="ignored-here", time_min=5,
                                      folder=str(tmp_path / "logs")))
    assert report.ran == 2
    frame = store.frame()
    assert sorted(frame["seed"]) == [0, 1]
    if cluster == "local":  # a real job array: one process and log per task
        assert len(list((tmp_path / "logs").glob("*_log.out"))) == 2
        assert os.getpid() not in set(frame["pid"])


def test_submitit_failure_is_reported(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    with pytest.raises(SweepError, match="seed 3 is cursed"):
        sweep(cheap_specs(5), store, executor="slurm", run_function=failing_run, progress=False,
              slurm=SlurmOptions(cluster="debug", folder=str(tmp_path / "logs")))
    assert sorted(store.frame()["seed"]) == [0, 1, 2, 4]


# --------------------------------------------------------------------------- crash safety

SWEEP_SCRIPT = """
import os, sys, time
from dropkit.spec import RunSpec
from dropkit.sweep import sweep
from dropkit.store import ResultStore

def slow_run(spec, store, *, data_root=None):
    with open(os.path.join(sys.argv[1], "started.log"), "a") as log:
        log.write(spec.cache_key + "\\n")
    time.sleep(0.15)
    store.write({{**spec.to_dict(), "cache_key": spec.cache_key, "pid": os.getpid()}})

if __name__ == "__main__":
    with open(os.path.join(sys.argv[1], "sweep_pids.log"), "a") as log:
        log.write(f"{{os.getpid()}}\\n")
    specs = [RunSpec("gaussian", "linear", "random", d / 10, seed=s)
             for d in range(1, 11) for s in range(3)]
    sweep(specs, ResultStore(sys.argv[1], "smoke"), run_function=slow_run,
          workers={workers}, progress=False)
    print("finished")
"""


def children(pid: int) -> list[int]:
    """Ids of the processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("workers", [2])
def test_sigkill_midway_then_resume_gives_exactly_one_row_per_spec(tmp_path, workers):
    script = tmp_path / "sweep_script.py"
    script.write_text(textwrap.dedent(SWEEP_SCRIPT.format(workers=workers)))
    root = tmp_path / "results"
    root.mkdir()
    store = ResultStore(root, "smoke")
    process = subprocess.Popen([sys.executable, str(script), str(root)], cwd=REPO,
                               start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while len(list(store.runs_dir.glob("*.json"))) < 6 if store.runs_dir.exists() else True:
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the sweep never got going"
            time.sleep(0.05)
        workers_pids = children(process.pid)
        os.kill(process.pid, signal.SIGKILL)  # only the sweep process: no cleanup, no signal
        process.wait()
        # Its orphaned pool workers notice and exit instead of blocking forever.
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{pid}").exists() and not is_zombie(pid) for pid in workers_pids):
            assert time.monotonic() < deadline, "orphaned workers did not exit"
            time.sleep(0.1)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_at = len(store.rows())
    assert 6 <= killed_at < 30

    resumed = subprocess.run([sys.executable, str(script), str(root)], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "finished" in resumed.stdout
    frame = store.frame()
    assert len(frame) == 30 and frame["cache_key"].is_unique
    # Keys computed in this process match those of the rows written by the sweep's processes.
    expected = {RunSpec("gaussian", "linear", "random", d / 10, seed=s).cache_key
                for d in range(1, 11) for s in range(3)}
    assert set(frame["cache_key"]) == expected
    # Rows were written by the spawned pool workers, not by the sweep processes themselves.
    sweep_pids = {int(pid) for pid in (root / "sweep_pids.log").read_text().split()}
    assert len(sweep_pids) == 2 and not sweep_pids & set(frame["pid"])
    started = (root / "started.log").read_text().split()
    # Finished runs were never re-run; only runs in flight at the kill ran twice.
    assert len(started) - 30 <= workers
    assert all(not p.name.endswith(".json") for p in store.runs_dir.iterdir()
               if p.name.startswith("."))


def test_truncated_row_is_rerun_on_resume(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    specs = cheap_specs(3)
    sweep(specs, store, run_function=fake_run, progress=False)
    path = store.run_path(specs[1].cache_key)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.warns(UserWarning, match="ignoring unreadable result file"):
        report = sweep(specs, store, run_function=fake_run, progress=False)
    assert (report.skipped, report.ran) == (2, 1)
    assert json.loads(path.read_text())["cache_key"] == specs[1].cache_key
    assert len(store.frame()) == 3


# --------------------------------------------------------------------------- real runs


def tiny(protocol: str, density: float = 1.0, **changes) -> RunSpec:
    return RunSpec("gaussian", "linear", protocol, density, epochs=2, batch_size=64,
                   dataset_options={"n_per_class": 150, "class_std": [0.5, 1.5]}, **changes)


def test_real_full_dataset_run_row(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    spec = tiny("none")
    row = run(spec, store)
    assert store.read(spec.cache_key) == json.loads(json.dumps(row))
    assert row["cache_key"] == spec.cache_key and row["query_key"] is None
    assert row["class_sizes"] == [150, 150] == row["class_counts"]
    assert row["num_kept"] == 300 and row["num_train"] == 300
    recalls = np.array(row["test_recalls"])
    assert recalls.shape == (2,) and np.all((0 <= recalls) & (recalls <= 1))
    assert row["test_worst_class"] == pytest.approx(recalls.min())
    assert row["test_gap"] == pytest.approx(recalls.max() - recalls.min())
    assert row["test_accuracy"] == pytest.approx(recalls.mean())  # balanced test set
    for name in ("seconds", "torch_version", "dropkit_version", "device_name", "finished_at"):
        assert row[name]
    assert {name: row[name] for name in ("cpu_vendor", "cpu_model", "cpu_flags")} == cpu_description()
    assert row["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert row["mkl_code_path"] == mkl_code_path() and row["kernel_environment"] == kernel_environment()
    assert row["onednn_isa"] == onednn_isa(row["cpu_flags"])
    # Deterministic under the seed: the same spec gives the same numbers.
    again = run(spec)
    assert again["test_recalls"] == row["test_recalls"]
    assert RunSpec.from_dict(row) == spec


def test_real_run_with_train_subset_is_stratified(tmp_path):
    row = run(tiny("none", train_subset=100))
    assert row["class_sizes"] == [50, 50] and row["num_train"] == 100


def test_run_leaves_the_store_unchanged_on_missing_data(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    spec = RunSpec("cifar10", "linear", "none", 1.0, epochs=1)
    with pytest.raises(FileNotFoundError, match="cifar"):
        run(spec, store, data_root=tmp_path / "empty")
    assert store.frame().empty
    assert list(store.runs_dir.iterdir()) == []


def test_results_frame_selects_the_specs_rows_in_order(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    specs = cheap_specs(4)
    for spec in specs[1:]:
        fake_run(spec, store)
    fake_run(RunSpec("gaussian", "linear", "random", 0.9), store)  # not asked for
    frame = results_frame(specs[::-1], store)
    assert list(frame["seed"]) == [3, 2, 1]
    assert results_frame(specs, ResultStore(tmp_path, "default")).empty


def test_score_methods_match_dropkit_scores():
    from dropkit.spec import SCORE_METHODS
    from dropkit.scores import METHODS

    assert set(SCORE_METHODS) == set(METHODS) - {"random"}


def test_real_pruned_runs_share_one_cached_query_training(tmp_path, monkeypatch):
    import dropkit.scores
    from dropkit.quotas import drop_quotas

    store = ResultStore(tmp_path, "smoke")
    common = dict(query_epochs=1, query_seeds=2, seed=1)
    strategy = tiny("strategy", 0.5, method="el2n", **common)
    drop = tiny("random+drop", 0.3, **common)
    row = run(strategy, store)
    assert row["query_key"] == strategy.query_key == drop.query_key
    assert row["num_kept"] == 150 and sum(row["class_counts"]) == 150
    cached = store.load_scores(strategy.query_key)
    assert cached["scores"].shape == (300,) and cached["val_recalls"].shape == (2,)
    assert row["query_val_recalls"] == cached["val_recalls"].tolist()

    def no_second_training(*args, **kwargs):
        raise AssertionError("the query training should have come from the cache")

    monkeypatch.setattr(dropkit.scores, "compute_scores", no_second_training)
    drop_row = run(drop, store)
    # Random+DRoP keeps exactly the DRoP quotas of the cached query recalls.
    expected = drop_quotas(drop_row["class_sizes"], cached["val_recalls"], 0.3)
    assert drop_row["class_counts"] == expected.tolist()
    assert len(store.rows()) == 2


def test_a_chapter_of_a_tiny_profile_shares_one_query_training(tmp_path):
    from dropkit.chapter import chapter_results
    from dropkit.profiles import Profile, TrainingSetup

    setup = TrainingSetup(name="linear-gaussian", dataset="gaussian", model="linear", epochs=2,
                          drop_epochs=(1,), batch_size=64, lr=0.1, weight_decay=0.0,
                          query_epochs=1, augment=False,
                          dataset_options=(("n_per_class", 100),), strategies=("el2n",))
    profile = Profile(name="tiny", description="test", setups=(setup,),
                      experiment_setups=(("drop_evaluation", ("linear-gaussian",)),),
                      seeds=(0,), densities=(0.4, 0.8), secondary_densities=(0.5,),
                      query_seeds=1, methods=("el2n",), imbalance_factors=(2.0,),
                      query_epoch_grid=(1,), ablation_densities=(0.5,))
    frame = chapter_results(profile, "drop_evaluation", results_dir=str(tmp_path), workers=1).frame
    # full + 2 densities x (random, random+drop, strategy, random+strategyq, strategy+drop)
    assert len(frame) == 11 and frame["cache_key"].is_unique
    assert sorted(frame["num_kept"].unique()) == [80, 160, 200]
    # one query training (el2n, seed 0) served every pruned protocol and density
    assert len(list((tmp_path / "tiny" / "scores").glob("*.npz"))) == 1
    again = chapter_results(profile, "drop_evaluation", results_dir=str(tmp_path)).frame
    assert list(again["finished_at"]) == list(frame["finished_at"])  # nothing re-run


def test_real_drop_over_groups_keeps_the_group_quotas_of_the_query_group_recalls(tmp_path, monkeypatch):
    from dropkit.data import load_dataset
    from dropkit.quotas import drop_quotas

    store = ResultStore(tmp_path, "smoke")
    common = dict(train_subset=600, epochs=1, query_epochs=1, query_seeds=2, batch_size=64)
    by_class = RunSpec("spurious-fashion-mnist", "linear", "random+drop", 0.4, **common)
    by_group = dataclasses.replace(by_class, drop_over="groups")
    class_row = run(by_class, store)
    group_row = run(by_group, store)
    cached = store.load_scores(by_group.query_key)  # one query training, written by the first run
    assert cached["val_group_recalls"].shape == (4,)
    assert group_row["query_val_group_recalls"] == cached["val_group_recalls"].tolist()
    # Group quotas = Algorithm 1 over the groups of the training subset the run saw.
    sizes = _subset_group_sizes(load_dataset("spurious-fashion-mnist"), 600)
    assert class_row["group_counts"] != group_row["group_counts"]
    assert group_row["group_counts"] == drop_quotas(sizes, cached["val_group_recalls"], 0.4).tolist()
    assert class_row["class_counts"] == drop_quotas(class_row["class_sizes"], cached["val_recalls"], 0.4).tolist()
    assert sum(group_row["group_counts"]) == group_row["num_kept"] == 240
    # The query recalls of each group are the mean over the query runs of the accuracy within it.
    recalls = np.array(group_row["query_val_group_recalls"])
    assert np.all((0 <= recalls) & (recalls <= 1)) and recalls.min() < recalls.max()
    import dropkit.scores

    def no_training(*args, **kwargs):
        raise AssertionError("a spec that cannot run must fail before its query training")

    monkeypatch.setattr(dropkit.scores, "compute_scores", no_training)
    with pytest.raises(ValueError, match="no groups"):
        run(RunSpec("fashion-mnist", "linear", "random+drop", 0.4, drop_over="groups",
                    **{**common, "train_subset": 200}))


def _subset_group_sizes(data, subset: int) -> list[int]:
    """Group sizes of the class-stratified seed-0 training subset that ``RunSpec.train_subset``
    takes (the same ``select`` call as ``dropkit.runner.load_data``)."""
    from dropkit.quotas import largest_remainder
    from dropkit.select import select

    labels = data.y_train.numpy()
    sizes = np.bincount(labels, minlength=data.num_classes)
    quotas = largest_remainder(sizes * (subset / len(labels)), subset)
    keep = select(labels, subset / len(labels), quotas=quotas, seed=0)
    return np.bincount(data.groups_train.numpy()[keep], minlength=data.num_groups).tolist()


def test_speed_options_reach_the_query_and_final_training_configs():
    from dropkit.runner import _query_config, _train_config

    fast = dataclasses.replace(BASE, bf16=True, channels_last=True)
    for spec, expected in ((BASE, False), (fast, True)):
        final = _train_config(spec, epochs=spec.epochs, drop_epochs=spec.drop_epochs, seed=0,
                              augment=False, cdbw=False)
        query = _query_config(spec).training
        assert final.bf16 == final.channels_last == query.bf16 == query.channels_last == expected
        assert not final.cuda_graphs and not query.cuda_graphs   # BASE and fast run on the CPU


def test_cuda_specs_train_with_cuda_graphs_without_changing_their_keys():
    from dropkit.runner import _query_config, _train_config

    on_gpu = dataclasses.replace(BASE, device="cuda")
    final = _train_config(on_gpu, epochs=on_gpu.epochs, drop_epochs=on_gpu.drop_epochs, seed=0,
                          augment=False, cdbw=False)
    assert final.cuda_graphs and _query_config(on_gpu).training.cuda_graphs
    assert _query_config(on_gpu).train_config(full=True).cuda_graphs
    assert "graph" not in json.dumps(dataclasses.asdict(on_gpu))


# --------------------------------------------------------------------------- issue 15 protocols


def test_issue15_protocol_fields_stay_out_of_keys_where_they_change_nothing():
    el2n_drop = dataclasses.replace(BASE, protocol="strategy+drop", method="el2n")
    forgetting_drop = dataclasses.replace(BASE, protocol="strategy+drop", method="forgetting")
    # EL2N's query model is the short one already: the recall source changes nothing
    assert dataclasses.replace(el2n_drop, recall_query="short").cache_key == el2n_drop.cache_key
    assert dataclasses.replace(forgetting_drop, recall_query="short").cache_key != forgetting_drop.cache_key
    # CDB-W's weight rule only for CDB-W trainings; the DU window only for Dynamic Uncertainty
    assert dataclasses.replace(BASE, cdbw_weights="paper").cache_key == BASE.cache_key
    cdbw = dataclasses.replace(BASE, cdbw=True)
    assert dataclasses.replace(cdbw, cdbw_weights="paper").cache_key != cdbw.cache_key
    query_cdbw = dataclasses.replace(BASE, query_cdbw=True)
    assert dataclasses.replace(query_cdbw, cdbw_weights="paper").query_key != query_cdbw.query_key
    assert dataclasses.replace(BASE, du_window=5).cache_key == BASE.cache_key
    du = dataclasses.replace(BASE, method="dynamic_uncertainty")
    assert dataclasses.replace(du, du_window=5).query_key != du.query_key


def test_max_shift_changes_only_augmented_final_trainings():
    assert dataclasses.replace(BASE, max_shift=2).cache_key == BASE.cache_key      # no augmentation
    augmented = dataclasses.replace(BASE, augment=True)
    assert augmented.max_shift == 4                                                # the paper's
    shifted = dataclasses.replace(augmented, max_shift=2)
    assert shifted.cache_key != augmented.cache_key
    assert shifted.query_key == augmented.query_key == BASE.query_key              # queries never augment
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="max_shift"):
            dataclasses.replace(augmented, max_shift=bad)


def test_hflip_changes_only_augmented_final_trainings():
    assert dataclasses.replace(BASE, hflip=False).cache_key == BASE.cache_key      # no augmentation
    augmented = dataclasses.replace(BASE, augment=True)
    assert augmented.hflip is True                                                 # the paper's
    unflipped = dataclasses.replace(augmented, hflip=False)
    assert unflipped.cache_key != augmented.cache_key
    assert unflipped.query_key == augmented.query_key == BASE.query_key            # queries never augment
    assert "hflip" not in augmented._key_fields() and unflipped._key_fields()["hflip"] is False  # old keys kept
    with pytest.raises(ValueError, match="hflip"):
        dataclasses.replace(augmented, hflip=1)


def test_query_epochs_may_be_a_fraction_and_integral_values_keep_their_keys():
    assert dataclasses.replace(BASE, query_epochs=2.0).query_epochs == 2
    assert isinstance(dataclasses.replace(BASE, query_epochs=2.0).query_epochs, int)
    assert dataclasses.replace(BASE, query_epochs=2.0).cache_key == dataclasses.replace(BASE, query_epochs=2).cache_key
    assert dataclasses.replace(BASE, query_epochs=0.25).query_epochs == 0.25
    for bad in (0, -0.5, float("nan"), True):
        with pytest.raises(ValueError, match="query_epochs"):
            dataclasses.replace(BASE, query_epochs=bad)


def test_strategy_drop_with_short_recalls_takes_random_drop_quotas(tmp_path):
    from dropkit.runner import recall_spec

    store = ResultStore(tmp_path, "smoke")
    common = dict(query_epochs=0.5, query_seeds=2, seed=1)
    forgetting = tiny("strategy+drop", 0.4, method="forgetting", recall_query="short", **common)
    drop = tiny("random+drop", 0.4, **common)
    assert recall_spec(forgetting).query_key == drop.query_key
    row, drop_row = run(forgetting, store), run(drop, store)
    assert row["query_val_recalls"] == drop_row["query_val_recalls"]
    assert row["class_counts"] == drop_row["class_counts"]
    own = run(dataclasses.replace(forgetting, recall_query="method"), store)
    assert own["query_val_recalls"] != row["query_val_recalls"]


def test_cdbw_rows_record_the_recalls_behind_the_weights():
    row = run(tiny("none", cdbw=True, cdbw_weights="paper"))
    assert np.asarray(row["cdbw_val_recalls_per_epoch"]).shape == (2, 2)
    assert "cdbw_val_recalls_per_epoch" not in run(tiny("none"))


def test_cdbw_query_rows_record_each_query_runs_recalls_and_the_cache_keeps_them(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    spec = tiny("strategy", 0.5, method="el2n", query_cdbw=True, cdbw_weights="authors",
                query_epochs=2, query_seeds=2)
    row = run(spec, store)
    history = np.asarray(row["query_cdbw_val_recalls_per_epoch"])
    assert history.shape == (2, 2, 2)  # query runs x epochs x classes
    np.testing.assert_allclose(history[:, -1].mean(axis=0), row["query_val_recalls"], rtol=1e-12)
    assert store.load_scores(spec.query_key)["cdbw_val_recalls_per_epoch"].shape == (2, 2, 2)
    again = run(dataclasses.replace(spec, density=0.4), store)  # from the cached query outputs
    assert again["query_cdbw_val_recalls_per_epoch"] == row["query_cdbw_val_recalls_per_epoch"]
    assert "query_cdbw_val_recalls_per_epoch" not in run(dataclasses.replace(spec, query_cdbw=False), store)


def test_the_authors_cdbw_rule_is_a_new_key_and_leaves_every_other_key_alone():
    cdbw = dataclasses.replace(BASE, cdbw=True, cdbw_weights="paper")
    authors = dataclasses.replace(cdbw, cdbw_weights="authors")
    assert authors.cache_key not in {cdbw.cache_key, BASE.cache_key}
    assert authors._key_fields()["cdbw_weights"] == "authors"
    # a run without CDB-W never keys its rule, whichever it names
    assert dataclasses.replace(BASE, cdbw_weights="authors").cache_key == BASE.cache_key
    query_cdbw = dataclasses.replace(BASE, query_cdbw=True, cdbw_weights="paper")
    assert dataclasses.replace(query_cdbw, cdbw_weights="authors").query_key != query_cdbw.query_key
