"""The sweep hands out work by its critical path and reports its CPU utilisation."""

from __future__ import annotations

import time

import numpy as np
import pytest

import dropkit.sweep as sweep_module
from dropkit.spec import RunSpec
from dropkit.store import ResultStore
from dropkit.sweep import sweep


def _spec(protocol: str, density: float, method: str | None = None) -> RunSpec:
    return RunSpec("fashion-mnist", "mlp", protocol, density, method=method, epochs=10, drop_epochs=(5, 8),
                   query_epochs=1, query_seeds=5, train_subset=1000)


def test_long_chains_first_query_free_runs_fill_and_runs_follow_their_own_query(tmp_path, monkeypatch):
    calls: list[str] = []

    def fake_query(group, root, profile, data_root, threads=None):
        calls.append(f"query {group[0].method}")

    def fake_final(function, spec, root, profile, data_root, wait=False, threads=None):
        calls.append(f"run {spec.method or spec.protocol} {spec.density:g}")
        ResultStore(root, profile).write({**spec.to_dict(), "cache_key": spec.cache_key})
        return spec.cache_key, "ran"  # _run_task's result: (key, "ran" | "found" | "busy")

    monkeypatch.setattr(sweep_module, "_query_task", fake_query)
    monkeypatch.setattr(sweep_module, "_run_task", fake_final)
    specs = [_spec("strategy", 0.1, "el2n"), _spec("random", 0.5), _spec("none", 1.0),
             _spec("strategy", 0.9, "forgetting")]
    report = sweep(specs, ResultStore(tmp_path, "smoke"), progress=False)
    # costs in training-sample passes x 3 (+ forward passes): query forgetting 10 epochs = 30,
    # its run 9 epochs = 27 (level 57); full data 30; query el2n 5 x 1 epoch + 5 scoring passes = 20,
    # its run 1 epoch = 3 (level 23); random 5 epochs = 15.
    assert calls == ["query forgetting", "run none 1", "run forgetting 0.9", "query el2n", "run random 0.5",
                     "run el2n 0.1"]
    assert (report.ran, report.skipped) == (4, 0)


def _busy_run(spec, store, *, data_root=None):
    """Burns about 0.3 s of CPU, then writes its row."""
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    store.write({**spec.to_dict(), "cache_key": spec.cache_key})


def _idle_run(spec, store, *, data_root=None):
    time.sleep(0.3)
    store.write({**spec.to_dict(), "cache_key": spec.cache_key})


def test_local_sweep_reports_cpu_time_and_utilisation(tmp_path):
    specs = [RunSpec("gaussian", "linear", "random", 0.5, seed=s) for s in range(3)]
    busy = sweep(specs, ResultStore(tmp_path / "busy", "smoke"), run_function=_busy_run, progress=False)
    idle = sweep(specs, ResultStore(tmp_path / "idle", "smoke"), run_function=_idle_run, progress=False)
    assert busy.cpu_seconds >= 0.9                      # three runs burnt 0.3 s of CPU each
    assert busy.cpu_utilisation == pytest.approx(busy.cpu_seconds / busy.seconds)  # 1 worker x 1 thread
    assert idle.cpu_utilisation < 0.5 < busy.cpu_utilisation
    assert idle.seconds >= 0.9 and idle.cpu_seconds < 0.5


def test_a_full_data_run_is_trained_once_for_every_query_length(tmp_path):
    from dropkit.spec import full_dataset_spec
    from dropkit.sweep import results_frame

    calls = []

    def counting_run(spec, store, *, data_root=None):
        calls.append(spec.query_epochs)
        store.write({**spec.to_dict(), "cache_key": spec.cache_key, "test_accuracy": 0.5})

    base = full_dataset_spec(_spec("random+drop", 0.5, "el2n"))
    specs = [RunSpec.from_dict({**base.to_dict(), "query_epochs": q}) for q in (1, 2, 5)]
    store = ResultStore(tmp_path, "default")
    report = sweep(specs, store, run_function=counting_run, progress=False)
    assert (report.total, report.ran, len(calls)) == (1, 1, 1)
    frame = results_frame(specs[1:], store)
    assert list(frame["query_epochs"]) == [2]  # the row shows the spec asked for


def test_dry_run_projects_the_missing_work(tmp_path, capsys):
    from dropkit.cli import main

    code = main(["sweep", "--profile", "smoke", "--experiment", "pretraining_ablation", "--dry-run",
                 "--results-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "missing work: " in out and " TFLOP" in out
    # query lengths 0.5, 1 and 2 of one seed: one training, the shorter two its snapshots
    assert "4 runs and 1 query trainings (and 2 more queries from the same trainings)" in out
    assert "floor (every core running only those kernels): " in out and "projected wall time on 1 worker(s)" in out
    assert not (tmp_path / "smoke" / "runs").exists() or not any((tmp_path / "smoke" / "runs").iterdir())


def test_dry_run_counts_a_stored_recall_query_as_stored(tmp_path, capsys):
    """Forgetting+DRoP needs two query trainings (Forgetting's and DRoP's short one for its
    recalls); with the short one stored, the projection counts only Forgetting's."""
    from dropkit.cli import _print_projection
    from dropkit.profiles import experiment_specs
    from dropkit.runner import query_specs
    from dropkit.store import ResultStore

    spec = next(s for s in experiment_specs("default", "drop_evaluation", setup="mlp-fashion-mnist",
                                            seeds=[0], densities=[0.5])
                if s.protocol == "strategy+drop" and s.method == "forgetting")
    own, recalls = query_specs(spec)
    store = ResultStore(tmp_path, "default")
    _print_projection([spec], store, workers=1, threads=1, data_root=None, pinned_workers=False)
    assert "1 runs and 2 query trainings" in capsys.readouterr().out
    store.save_scores(recalls.query_key, {"scores": np.zeros(60_000), "val_recalls": np.zeros(10)})
    _print_projection([spec], store, workers=1, threads=1, data_root=None, pinned_workers=False)
    assert "1 runs and 1 query trainings" in capsys.readouterr().out


def test_dry_run_names_the_k_center_orders_it_does_not_project(tmp_path, capsys):
    """CoreSet's greedy k-center order counts no FLOP, so the projection leaves it out and says
    so, once per missing CoreSet query; a stored CoreSet query, or a sweep without one, has no
    such line."""
    from dropkit.cli import _print_projection
    from dropkit.cost import project_sweep
    from dropkit.profiles import experiment_specs
    from dropkit.store import ResultStore

    specs = [s for s in experiment_specs("default", "bias_benchmark", setup="mlp-fashion-mnist",
                                         seeds=[0, 1], densities=[0.5])
             if s.method in ("coreset", "forgetting")]
    coreset = [s for s in specs if s.method == "coreset"]
    assert len(coreset) == 2 and len(specs) == 4
    store = ResultStore(tmp_path, "default")
    assert project_sweep(specs, workers=1, threads=1, seconds=0.05).kcenter_orders == 2
    assert project_sweep(specs, workers=1, threads=1, seconds=0.05,
                         stored_queries={coreset[0].query_key}).kcenter_orders == 1
    _print_projection(specs, store, workers=1, threads=1, data_root=None, pinned_workers=False)
    assert "the greedy k-center orders of 2 CoreSet queries" in capsys.readouterr().out
    others = [s for s in specs if s.method != "coreset"]
    assert project_sweep(others, workers=1, threads=1, seconds=0.05).kcenter_orders == 0
    _print_projection(others, store, workers=1, threads=1, data_root=None, pinned_workers=False)
    assert "k-center" not in capsys.readouterr().out


def test_dry_run_says_which_kernels_its_rates_were_measured_with(tmp_path, capsys, monkeypatch):
    """The workers of a multi-worker sweep compute with the pinned kernels (dropkit.kernels); a dry
    run in an unpinned process says its rates are this machine's own, and how to measure the
    pinned ones; a one-worker sweep (which runs in this process) needs no such note."""
    from dropkit.cli import main
    from dropkit.kernels import is_pinned

    monkeypatch.delenv("DROPKIT_KERNELS", raising=False)
    note = "rates measured with this machine's own CPU kernels"
    for workers, expected in (("2", not is_pinned()), ("1", False)):
        assert main(["sweep", "--profile", "smoke", "--experiment", "pretraining_ablation", "--dry-run",
                     "--workers", workers, "--results-dir", str(tmp_path)]) == 0
        assert (note in capsys.readouterr().out) == expected, workers


def test_a_slurm_sweep_of_one_worker_also_computes_with_the_pinned_kernels(tmp_path, capsys, monkeypatch):
    """Slurm jobs are new processes even with one worker: the sweep pins their kernels, and the dry
    run's note follows the same condition (``dropkit.sweep.starts_processes``)."""
    from dropkit.cli import _print_projection
    from dropkit.kernels import is_pinned
    from dropkit.profiles import experiment_specs
    from dropkit.store import ResultStore
    from dropkit.sweep import starts_processes

    assert starts_processes("slurm", 1) and starts_processes("local", 2) and not starts_processes("local", 1)
    monkeypatch.delenv("DROPKIT_KERNELS", raising=False)
    spec = experiment_specs("smoke", "pretraining_ablation")[0]
    note = "rates measured with this machine's own CPU kernels"
    for pinned_workers in (True, False):
        _print_projection([spec], ResultStore(tmp_path, "smoke"), workers=1, threads=1, data_root=None,
                          pinned_workers=pinned_workers)
        assert (note in capsys.readouterr().out) == (pinned_workers and not is_pinned()), pinned_workers


def test_a_multi_worker_sweep_from_a_script_read_from_stdin_is_a_clear_error(tmp_path, monkeypatch):
    """Spawned workers re-import the main program from its file: from ``python - <<EOF`` that file
    is '<stdin>', and every worker would die at start (BrokenProcessPool). Refused before any work."""
    import sys

    from dropkit.profiles import experiment_specs
    from dropkit.store import ResultStore
    from dropkit.sweep import check_sweep, sweep

    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    specs = experiment_specs("smoke", "pretraining_ablation")[:1]
    store = ResultStore(tmp_path, "smoke")
    with pytest.raises(RuntimeError, match="'<stdin>' does not exist .*save it to a file"):
        sweep(specs, store, workers=2)
    check_sweep(specs, store, workers=1)                              # one worker runs here: fine
    assert not (tmp_path / "smoke").exists()
