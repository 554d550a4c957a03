"""Sweeps: many :class:`dropkit.spec.RunSpec` s run into one result store, and their table.

:func:`sweep` runs the specs whose rows are missing, skipping stored ones, on a local process pool
(``executor="local"``) or on Slurm through ``submitit`` (``executor="slurm"``). Query trainings
shared by several specs run first, once each. Each run (:func:`dropkit.runner.run`) writes its
own row atomically as soon as it finishes, so a sweep killed at any moment (even with SIGKILL)
resumes where it stopped, without lost, duplicated or corrupt rows.

Two sweeps on one store share the work: a run (and a query training) is computed under the
store's per-run lock (:meth:`dropkit.store.ResultStore.lock`), so it is never computed twice. A
run that another process is computing is first passed over, then waited for once the sweep's
other runs are done; the report counts it as ``found``, not as ``ran``. The lock dies with its
process, so a killed sweep never blocks another. :func:`results_frame` reads
the stored rows of a list of specs back as a table.

This module does not import torch at import time: worker processes set their thread counts first.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dropkit.runner import load_data, query_outputs, run
from dropkit.spec import RunSpec, check_choice, check_int
from dropkit.store import ResultStore

__all__ = ["SlurmOptions", "SweepReport", "SweepError", "sweep", "results_frame"]


@dataclass(frozen=True)
class SlurmOptions:
    """Options of ``executor="slurm"`` (passed to ``submitit.AutoExecutor``).

    cluster: None = detect (Slurm when ``sbatch`` exists); ``"local"`` or ``"debug"`` run the
        same job array on this machine (submitit's test executors).
    partition: Slurm partition (None = cluster default).
    time_min: time limit per job in minutes; gpus: GPUs per job; cpus: CPUs per job.
    array_parallelism: how many array tasks may run at once.
    folder: submitit's log folder (default ``<store>/submitit``).
    """

    cluster: str | None = None
    partition: str | None = None
    time_min: int = 60
    gpus: int = 0
    cpus: int = 1
    array_parallelism: int = 64
    folder: str | None = None

    def __post_init__(self) -> None:
        if self.cluster is not None:
            check_choice("cluster", self.cluster, ("slurm", "local", "debug"))
        if self.partition is not None and (not isinstance(self.partition, str) or not self.partition):
            raise ValueError(f"partition={self.partition!r} must be a non-empty string")
        check_int("time_min", self.time_min)
        check_int("gpus", self.gpus, minimum=0)
        check_int("cpus", self.cpus)
        check_int("array_parallelism", self.array_parallelism)


@dataclass
class SweepReport:
    """What a sweep did: ``total`` distinct specs, ``skipped`` (stored before it started),
    ``ran`` (computed and stored by this sweep), ``found`` (stored meanwhile by another process:
    not computed here), ``failed`` ([(label, one-line error)]) and ``seconds`` of wall time."""

    total: int
    skipped: int
    ran: int = 0
    found: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


class SweepError(RuntimeError):
    """A sweep stopped on a failed run; finished runs are stored, re-running resumes."""

    def __init__(self, message: str, report: SweepReport):
        super().__init__(message)
        self.report = report


def _set_threads(threads: int) -> None:
    """Limit this process to ``threads`` intra-op threads.

    Sets ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` (read by torch when it is first imported) and,
    if torch is already imported, ``torch.set_num_threads``.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _exit_when_orphaned(parent: int, interval: float = 1.0) -> None:
    """Watchdog loop of a pool worker: exit as soon as the sweep process that started it is gone.

    Without it, killing the sweep (e.g. SIGKILL) would leave its workers blocked forever on a
    queue nobody feeds. A run in flight is abandoned; its row was never written, so a resumed
    sweep runs it again.
    """
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(interval)


def _worker_init(threads: int) -> None:
    import threading

    _set_threads(threads)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True,
                     name="dropkit-orphan-watchdog").start()


def _run_task(run_function: Callable, spec: RunSpec, root: str, profile: str,
              data_root: str | None, wait: bool = False,
              threads: int | None = None) -> tuple[str, str]:
    """Executed in a worker (process, Slurm task): run one spec into the store under its lock.

    Returns ``(cache_key, outcome)``: ``"ran"`` (computed here), ``"found"`` (another process
    stored it) or, with ``wait=False``, ``"busy"`` (another process holds its lock: not computed).
    """
    if threads is not None:
        _set_threads(threads)
    store = ResultStore(root, profile)
    if spec.cache_key in store:
        return spec.cache_key, "found"
    with store.lock(spec.cache_key, wait=wait) as held:
        if not held:
            return spec.cache_key, "busy"
        if spec.cache_key in store:  # the process that held the lock stored it
            return spec.cache_key, "found"
        run_function(spec, store, data_root=data_root)
    return spec.cache_key, "ran"


def _query_task(spec: RunSpec, root: str, profile: str, data_root: str | None,
                threads: int | None = None) -> str:
    """Executed in a worker: compute (or find) the query outputs of ``spec`` in the store."""
    if threads is not None:
        _set_threads(threads)
    store = ResultStore(root, profile)
    if store.load_scores(spec.query_key) is None:
        with store.lock(spec.query_key):  # another sweep may be training the same query model
            if store.load_scores(spec.query_key) is None:
                query_outputs(spec, load_data(spec, data_root), store)
    return spec.query_key


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _job_error_line(error: BaseException) -> str:
    """One line for a failed submitit job: the original ``SomeError: message`` of its traceback."""
    lines = [line.strip() for line in str(error).splitlines()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b(: |$)", line):
            return line
    return _one_line(error)


def _check_specs(specs: Iterable[RunSpec]) -> list[RunSpec]:
    unique: dict[str, RunSpec] = {}
    for index, spec in enumerate(specs):
        if not isinstance(spec, RunSpec):
            raise ValueError(f"specs[{index}] is a {type(spec).__name__}, not a RunSpec")
        unique.setdefault(spec.cache_key, spec)
    return list(unique.values())


def sweep(
    specs: Iterable[RunSpec],
    store: ResultStore,
    *,
    executor: str = "local",
    workers: int = 1,
    threads: int = 1,
    data_root: str | os.PathLike | None = None,
    slurm: SlurmOptions | None = None,
    progress: bool = True,
    run_function: Callable[..., Any] | None = None,
) -> SweepReport:
    """Run every spec that has no row in ``store``; skip the others.

    Args:
        specs: the runs (duplicates are run once).
        store: where rows (and cached query scores) go; checked writable before anything runs.
        executor: ``"local"`` (process pool on this machine) or ``"slurm"`` (submitit job arrays).
        workers: local processes; ``workers * threads`` must not exceed ``os.cpu_count()``.
            ``workers=1`` runs in this process (no pool; sets this process's torch threads).
        threads: torch threads per worker (and per Slurm task when ``slurm.cpus`` is 1).
        data_root: passed to ``dropkit.data.load_dataset`` (not part of the cache key).
        slurm: :class:`SlurmOptions` for ``executor="slurm"``.
        progress: show a tqdm progress bar.
        run_function: replaces :func:`run` (same signature ``f(spec, store, data_root=...)``);
            must be importable by name for worker processes. With the default, query trainings
            shared by several specs are computed first, once each.

    Returns:
        A :class:`SweepReport`.

    Raises:
        SweepError: when a run fails; the sweep stops scheduling new runs, finished rows stay
            stored, and re-running the sweep resumes from there.
    """
    if executor not in ("local", "slurm"):
        raise ValueError(f"executor={executor!r} is not known; choose 'local' or 'slurm'")
    if not isinstance(store, ResultStore):
        raise ValueError(f"store must be a ResultStore, got {type(store).__name__}")
    workers = check_int("workers", workers)
    threads = check_int("threads", threads)
    cpus = os.cpu_count() or 1
    if executor == "local" and workers * threads > cpus:
        raise ValueError(
            f"workers={workers} x threads={threads} oversubscribes the {cpus} CPU cores; "
            f"use workers * threads <= {cpus}"
        )
    if slurm is not None and not isinstance(slurm, SlurmOptions):
        raise ValueError(f"slurm must be a SlurmOptions, got {type(slurm).__name__}")
    if executor == "slurm" and (slurm is None or slurm.cluster is None) and not shutil.which("sbatch"):
        raise RuntimeError("executor='slurm': no Slurm here (sbatch is not on PATH) and "
                           "SlurmOptions.cluster is None; submitit would silently run every job "
                           "on this machine (use executor='local', or cluster='local' to test)")
    if data_root is not None and not Path(data_root).is_dir():
        raise FileNotFoundError(f"data_root={str(data_root)!r} is not a directory")
    unique = _check_specs(specs)
    store.check_writable()
    started = time.perf_counter()
    done = store.keys()
    missing = [spec for spec in unique if spec.cache_key not in done]
    report = SweepReport(total=len(unique), skipped=len(unique) - len(missing))
    if not missing:
        return report
    function = run if run_function is None else run_function
    root, profile = str(store.root), store.profile
    data = None if data_root is None else str(data_root)

    tasks: list[tuple[list[tuple], str]] = []  # phases of (callable, args, label)
    if run_function is None:
        by_query: dict[str, RunSpec] = {}
        for spec in missing:
            if spec.needs_query and spec.query_key not in by_query:
                if store.load_scores(spec.query_key) is None:
                    by_query[spec.query_key] = spec
        if by_query:
            tasks.append(([(_query_task, (s, root, profile, data),
                            f"query {s.method} seed={s.seed}") for s in by_query.values()],
                          "query models"))
    tasks.append(([(_run_task, (function, s, root, profile, data, False), s.label())
                   for s in missing], "runs"))

    outcomes: dict[str, str] = {}  # cache key -> "ran", "found" or "busy"
    try:
        while tasks:
            phase, description = tasks.pop(0)
            results = _run_phase(phase, report, executor=executor, workers=workers,
                                 threads=threads, progress=progress, description=description,
                                 slurm=slurm, store=store)
            outcomes.update(result for result in results if isinstance(result, tuple))
            if report.failed:
                break
            busy = [spec for spec in missing if outcomes.get(spec.cache_key) == "busy"]
            if busy and description == "runs":  # first pass over: now wait for them, once
                tasks.append(([(_run_task, (function, s, root, profile, data, True), s.label())
                               for s in busy], "runs another process is computing"))
    finally:
        report.seconds = time.perf_counter() - started
    stored = store.keys()
    report.ran = sum(outcomes.get(spec.cache_key) == "ran" and spec.cache_key in stored
                     for spec in missing)
    report.found = sum(outcomes.get(spec.cache_key) == "found" for spec in missing)
    if report.failed:
        label, message = report.failed[0]
        raise SweepError(
            f"{len(report.failed)} task(s) failed, first: {label}: {message} "
            f"({report.ran} of {len(missing)} missing runs finished and are stored; "
            "re-run the sweep to resume)",
            report,
        )
    return report


def _progress_bar(total: int, description: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, disable=not enabled, unit="run", dynamic_ncols=True)


def _run_phase(phase: list[tuple], report: SweepReport, *, executor: str, workers: int,
               threads: int, progress: bool, description: str, slurm: SlurmOptions | None,
               store: ResultStore) -> list:
    """Run one phase's ``(task, args, label)`` entries; returns the results of the tasks that
    succeeded (a failure is recorded in ``report.failed`` and stops the phase)."""
    if executor == "local":
        return _run_local(phase, report, workers=workers, threads=threads, progress=progress,
                          description=description)
    return _run_submitit(phase, report, slurm or SlurmOptions(), store=store, threads=threads,
                         progress=progress, description=description)


def _run_local(phase: list[tuple], report: SweepReport, *, workers: int, threads: int,
               progress: bool, description: str) -> list:
    results = []
    with _progress_bar(len(phase), description, progress) as bar:
        if workers == 1:
            _set_threads(threads)
            for task, args, label in phase:
                try:
                    results.append(task(*args))
                except Exception as err:
                    report.failed.append((label, _one_line(err)))
                    return results
                bar.update(1)
            return results
        context = multiprocessing.get_context("spawn")
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_worker_init, initargs=(threads,)
        )
        try:
            futures = {pool.submit(task, *args): label for task, args, label in phase}
            for future in concurrent.futures.as_completed(futures):
                error = future.exception()
                if error is not None:
                    report.failed.append((futures[future], _one_line(error)))
                    for other in futures:
                        other.cancel()
                    break
                results.append(future.result())
                bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return results


def _run_submitit(phase: list[tuple], report: SweepReport, options: SlurmOptions, *,
                  store: ResultStore, threads: int, progress: bool, description: str) -> list:
    import submitit

    folder = options.folder or str(store.path / "submitit")
    executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    parameters: dict[str, Any] = {
        "timeout_min": options.time_min,
        "gpus_per_node": options.gpus,
        "cpus_per_task": max(options.cpus, threads),
        "slurm_array_parallelism": options.array_parallelism,
    }
    if options.partition is not None:
        parameters["slurm_partition"] = options.partition
    executor.update_parameters(**parameters)
    by_task: dict[Callable, list[tuple]] = {}
    for task, args, label in phase:
        by_task.setdefault(task, []).append((args, label))
    jobs = []
    for task, entries in by_task.items():
        columns = list(zip(*[args + (threads,) for args, _ in entries]))
        submitted = executor.map_array(task, *columns)
        jobs.extend(zip(submitted, [label for _, label in entries]))
    results = []
    with _progress_bar(len(jobs), description, progress) as bar:
        pending = list(jobs)
        while pending:
            still = []
            for job, label in pending:
                if options.cluster == "debug" or job.done():
                    error = job.exception()  # runs a debug job in-process, never opens pdb
                    if error is not None:
                        report.failed.append((label, _job_error_line(error)))
                    else:
                        results.append(job.result())
                    bar.update(1)
                else:
                    still.append((job, label))
            pending = still
            if pending:
                time.sleep(1.0)
    return results


def results_frame(specs: Iterable[RunSpec], store: ResultStore):
    """The stored rows of ``specs`` as a DataFrame (one row per stored spec, specs' order).

    Specs without a stored row are left out; compare ``len`` with the number of specs to check.
    """
    import pandas as pd

    order = {spec.cache_key: index for index, spec in enumerate(_check_specs(specs))}
    frame = store.frame()
    if frame.empty:
        return pd.DataFrame()
    frame = frame[frame["cache_key"].isin(order)]
    positions = frame["cache_key"].map(order)
    return frame.iloc[np.argsort(positions.to_numpy(), kind="stable")].reset_index(drop=True)

