"""Sweeps: many :class:`dropkit.spec.RunSpec` s run into one result store, and their table.

:func:`sweep` runs the specs whose rows are missing, skipping stored ones, on a local process pool
(``executor="local"``) or on Slurm through ``submitit`` (``executor="slurm"``). Query trainings
shared by several specs run once each, query runs that several methods train alike are shared by
them, and shorter ones that are prefixes of a longer one are snapshots of it, not trainings
(:func:`dropkit.runner.query_groups`). Locally,
work is handed out by its critical path (:mod:`dropkit.schedule`): the longest chains (a long
query training and the final runs waiting for it) start first, query-free runs (full data,
Random) fill the workers meanwhile, and a final run starts as soon as its own query is stored;
on Slurm the queries go first as one job array, longest first, then the runs. Each run
(:func:`dropkit.runner.run`) writes its own row atomically as soon as it finishes, so a sweep
killed at any moment (even with SIGKILL) resumes where it stopped, without lost, duplicated or
corrupt rows. :func:`results_frame` reads the stored rows of a list of specs back as a table.

Two sweeps on one store share the work: a run (and a query training) is computed under the
store's per-run lock (:meth:`dropkit.store.ResultStore.lock`), so it is never computed twice. A
run that another process is computing is first passed over, then waited for once the sweep's
other work is done; the report counts it as ``found``, not as ``ran``. A group of query
trainings is computed under the locks of all its query keys. The lock dies with its process, so
a killed sweep never blocks another.

This module does not import torch at import time: worker processes set their thread counts first.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import multiprocessing
import os
import re
import resource
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dropkit.cost import ModelFlops, final_passes, group_query_passes
from dropkit.kernels import pinned_new_processes
from dropkit.runner import load_data, query_group_outputs, query_plan, run, stored_queries
from dropkit.schedule import Job, ReadyQueue
from dropkit.spec import LATER_FIELD_DEFAULTS, SHORT_QUERY_METHODS, RunSpec, check_choice, check_int
from dropkit.store import ResultStore

__all__ = ["SlurmOptions", "SweepReport", "SweepError", "check_selections", "check_sweep", "sweep",
           "results_frame"]


@dataclass(frozen=True)
class SlurmOptions:
    """Options of ``executor="slurm"`` (passed to ``submitit.AutoExecutor``).

    Attributes:
        cluster: None = detect (Slurm when ``sbatch`` exists); ``"local"`` or ``"debug"`` run
            the same job array on this machine (submitit's test executors).
        partition: Slurm partition (None = cluster default).
        time_min: time limit per job in minutes.
        gpus: GPUs per job.
        cpus: CPUs per job.
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
    not computed here), ``failed`` ([(label, one-line error)]), ``seconds`` of wall time, and for
    local sweeps
    ``cpu_seconds`` (user + system CPU time of the sweep process and its workers) and
    ``cpu_utilisation`` (``cpu_seconds / (seconds * workers * threads)``: 1.0 = every core the
    sweep was given was busy all the time; None for Slurm sweeps, whose CPU time is elsewhere)."""

    total: int
    skipped: int
    ran: int = 0
    found: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float | None = None
    cpu_utilisation: float | None = None


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


def _query_task(group: tuple[RunSpec, ...], root: str, profile: str, data_root: str | None,
                threads: int | None = None) -> str:
    """Executed in a worker: compute (or find) the query outputs of a group of
    :func:`dropkit.runner.query_groups` in the store (one training per query seed for the whole
    group), under the locks of all its query keys."""
    if threads is not None:
        _set_threads(threads)
    store = ResultStore(root, profile)
    keys = sorted({spec.query_key for spec in group})  # one order for every process: no deadlock
    if any(store.load_scores(key) is None for key in keys):
        with contextlib.ExitStack() as held:
            for key in keys:  # another sweep may be training some of the same query models
                held.enter_context(store.lock(key))
            if any(store.load_scores(key) is None for key in keys):
                query_group_outputs(group, load_data(group[0], data_root), store)
    return group[0].query_key


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


def check_sweep(specs: Iterable[RunSpec], store: ResultStore, *, executor: str = "local", workers: int = 1,
                threads: int = 1, data_root: str | os.PathLike | None = None,
                slurm: SlurmOptions | None = None) -> list[RunSpec]:
    """Everything :func:`sweep` refuses before it computes anything, checked without computing or
    creating anything: the arguments (see :func:`sweep`), the store's location (a results
    directory under a plain file, or not writable: :meth:`dropkit.store.ResultStore.check_location`)
    and, with :func:`check_selections`, every run that would keep no sample. ``dropkit sweep
    --dry-run`` calls it too, so a dry run refuses exactly what the sweep would.

    Returns the distinct specs (duplicates once). Raises ``ValueError``, ``RuntimeError`` (Slurm
    asked for where there is none), ``FileNotFoundError`` or ``PermissionError`` naming the problem.
    The selection check looks at every spec here; :func:`sweep` checks those not yet stored.
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
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if executor == "local" and workers > 1 and isinstance(main_file, str) and not Path(main_file).exists():
        # spawned workers re-import the main program from its file (multiprocessing's spawn)
        raise RuntimeError(f"workers={workers}: worker processes re-import the main program, and its file "
                           f"{main_file!r} does not exist (a script read from stdin?): save it to a file, with "
                           "the sweep under `if __name__ == \"__main__\":`, or use workers=1")
    if slurm is not None and not isinstance(slurm, SlurmOptions):
        raise ValueError(f"slurm must be a SlurmOptions, got {type(slurm).__name__}")
    if executor == "slurm" and (slurm is None or slurm.cluster is None) and not shutil.which("sbatch"):
        raise RuntimeError("executor='slurm': no Slurm here (sbatch is not on PATH) and "
                           "SlurmOptions.cluster is None; submitit would silently run every job "
                           "on this machine (use executor='local', or cluster='local' to test)")
    if data_root is not None and not Path(data_root).is_dir():
        raise FileNotFoundError(f"data_root={str(data_root)!r} is not a directory")
    unique = _check_specs(specs)
    store.check_location()
    return unique


def check_selections(specs: Iterable[RunSpec], data_root: str | os.PathLike | None = None) -> None:
    """``ValueError`` naming the run and its density when a spec's density keeps no sample of its
    training set (``round(density * N) == 0``, e.g. ``density=1e-9``): its selection, and so its
    DRoP quotas, would be empty, and the run would fail only after its query trainings. The
    training-set size ``N`` is read from the data (:func:`dropkit.runner.load_data`, once per
    dataset variant) unless the spec's ``train_subset`` already shows the density keeps a sample.
    """
    from dropkit.quotas import check_kept

    lowest: dict[tuple, RunSpec] = {}
    for spec in specs:
        if spec.protocol == "none":
            continue
        key = (spec.dataset, spec.dataset_options, spec.train_subset, spec.imbalance_factor)
        if key not in lowest or spec.density < lowest[key].density:
            lowest[key] = spec
    for spec in lowest.values():
        if spec.train_subset is not None and spec.imbalance_factor <= 1 and spec.density * spec.train_subset >= 1:
            continue
        size = load_data(spec, data_root).num_train
        try:
            check_kept(size, spec.density, "density")
        except ValueError as err:
            raise ValueError(f"run {spec.label()} (a training set of {size} samples): {err}") from None


def starts_processes(executor: str, workers: int) -> bool:
    """Whether a sweep with this executor and worker count computes in new processes (worker
    processes or Slurm jobs), which compute with the pinned kernels (``dropkit.kernels``); a
    one-worker local sweep computes in the calling process, with its kernels."""
    return executor == "slurm" or workers > 1


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
            Worker processes and Slurm jobs compute with the pinned kernels of
            :func:`dropkit.kernels.pinned_new_processes` (those of the shipped rows, on any
            x86-64 processor; ``DROPKIT_KERNELS=native`` for this machine's own); a one-worker
            sweep with this process's kernels (``python -m dropkit.kernels dropkit sweep ...``
            starts it pinned). Each row records its kernels.
        threads: torch threads per worker (and per Slurm task when ``slurm.cpus`` is 1).
        data_root: passed to ``dropkit.data.load_dataset`` (not part of the cache key).
        slurm: :class:`SlurmOptions` for ``executor="slurm"``.
        progress: show a tqdm progress bar.
        run_function: replaces :func:`run` (same signature ``f(spec, store, data_root=...)``);
            must be importable by name for worker processes. With the default, query trainings
            shared by several specs are computed first, once each (a group of prefixes by one
            training, :func:`dropkit.runner.query_groups`).

    Returns:
        A :class:`SweepReport`.

    Raises:
        ValueError, RuntimeError, FileNotFoundError, PermissionError: before anything runs, what
            :func:`check_sweep` refuses and (with the default runner) a missing run whose density
            keeps no sample (:func:`check_selections`).
        SweepError: when a run fails; the sweep stops scheduling new runs, finished rows stay
            stored, and re-running the sweep resumes from there.
    """
    unique = check_sweep(specs, store, executor=executor, workers=workers, threads=threads,
                         data_root=data_root, slurm=slurm)
    store.check_writable()
    started = time.perf_counter()
    done = store.keys()
    missing = [spec for spec in unique if spec.cache_key not in done]
    report = SweepReport(total=len(unique), skipped=len(unique) - len(missing))
    if not missing:
        return report
    if run_function is None:  # the runner's selections (a custom run function selects its own way)
        check_selections(missing, data_root)
    function = run if run_function is None else run_function
    root, profile = str(store.root), store.profile
    data = None if data_root is None else str(data_root)

    tasks = _tasks(missing, store, function, data, with_queries=run_function is None)
    outcomes: dict[str, str] = {}  # cache key -> "ran", "found" or "busy" (see _run_task)
    cpu_before = _cpu_seconds()
    try:
        # Worker processes and Slurm jobs compute with the shipped rows' kernels; a one-worker sweep
        # runs here, where the pin cannot apply (and must not change what this process records).
        with pinned_new_processes() if starts_processes(executor, workers) else contextlib.nullcontext():
            _run_tasks(tasks, report, outcomes, executor=executor, workers=workers, threads=threads,
                       progress=progress, slurm=slurm, store=store)
            busy = [task for task in tasks if outcomes.get(task.job.key) == "busy"]
            if busy and not report.failed:  # passed over while another process held them: wait now
                waiting = [dataclasses.replace(task, args=task.args[:-1] + (True,)) for task in busy]
                _run_tasks(waiting, report, outcomes, executor=executor, workers=workers,
                           threads=threads, progress=progress, slurm=slurm, store=store)
    finally:
        report.seconds = time.perf_counter() - started
        if executor == "local":
            report.cpu_seconds = _cpu_seconds() - cpu_before
            report.cpu_utilisation = report.cpu_seconds / max(report.seconds * workers * threads, 1e-9)
            if progress:
                print(f"sweep: {report.seconds:.0f} s wall, CPU utilisation {100 * report.cpu_utilisation:.0f}% "
                      f"of {workers} worker(s) x {threads} thread(s)", file=sys.stderr, flush=True)
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


def _run_tasks(tasks: list["_Task"], report: SweepReport, outcomes: dict, *, executor: str,
               workers: int, threads: int, progress: bool, slurm: SlurmOptions | None,
               store: ResultStore) -> None:
    """Run ``tasks`` locally or on Slurm (queries first, as one job array, then the runs);
    the runs' ``(cache_key, outcome)`` results go to ``outcomes``."""
    if executor == "local":
        _run_local(tasks, report, outcomes, workers=workers, threads=threads, progress=progress)
        return
    for phase, description in (([t for t in tasks if t.job.key.startswith("query:")], "query models"),
                               ([t for t in tasks if not t.job.key.startswith("query:")], "runs")):
        if phase and not report.failed:
            _run_submitit([(t.function, t.args, t.label) for t in _by_level(phase)], report,
                          outcomes, slurm or SlurmOptions(), store=store, threads=threads,
                          progress=progress, description=description)


def _record(outcomes: dict, result) -> None:
    """Keep a run task's ``(cache_key, outcome)`` result (query tasks return a plain key)."""
    if isinstance(result, tuple):
        outcomes[result[0]] = result[1]


def _run_local(tasks: list["_Task"], report: SweepReport, outcomes: dict, *, workers: int,
               threads: int, progress: bool) -> None:
    """Run ``tasks`` on ``workers`` processes (this one if 1), highest level first, each once its
    query is done; stop handing out work at the first failure (running tasks finish)."""
    queue = ReadyQueue(task.job for task in tasks)
    by_key = {task.job.key: task for task in tasks}
    with _progress_bar(len(tasks), "queries and runs", progress) as bar:
        if workers == 1:
            _set_threads(threads)
            while (job := queue.pop()) is not None:
                task = by_key[job.key]
                try:
                    _record(outcomes, task.function(*task.args))
                except Exception as err:
                    report.failed.append((task.label, _one_line(err)))
                    return
                queue.done(job.key)
                bar.update(1)
            return
        context = multiprocessing.get_context("spawn")
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_worker_init, initargs=(threads,)
        )
        running: dict[concurrent.futures.Future, _Task] = {}
        try:
            while len(queue) and not report.failed:
                while len(running) < workers and (job := queue.pop()) is not None:
                    task = by_key[job.key]
                    running[pool.submit(task.function, *task.args)] = task
                finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    task = running.pop(future)
                    error = future.exception()
                    if error is not None:
                        report.failed.append((task.label, _one_line(error)))
                        continue
                    _record(outcomes, future.result())
                    queue.done(task.job.key)
                    bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class _Task:
    """One unit of sweep work: its scheduling job, the callable and arguments, a label."""

    job: Job
    function: Callable
    args: tuple
    label: str


#: Scheduling costs per sample: a training pass counts as 3 forward passes (no model is built).
RELATIVE_FLOPS = ModelFlops(forward=1.0, train=3.0)


def _tasks(missing: list[RunSpec], store: ResultStore, function: Callable, data_root: str | None,
           *, with_queries: bool) -> list[_Task]:
    """The query trainings (one per group of :func:`dropkit.runner.query_plan` of the query keys
    not stored: shorter query trainings come from snapshots of the longest) and runs of
    ``missing``, as tasks whose jobs' costs are sample passes per training sample of the spec's
    data (``train_subset`` when set, else 1: runs on one dataset compare exactly, across datasets
    roughly)."""
    root, profile = str(store.root), store.profile
    plan = query_plan(missing, stored_queries(missing, store)) if with_queries else None
    tasks: dict[str, _Task] = {}
    for spec in missing:
        size = spec.train_subset or 1
        after = plan.waits_for[spec.cache_key] if plan is not None else ()
        for key in after:
            if key not in tasks:
                group = plan.groups[key]
                tasks[key] = _Task(Job(key, group_query_passes(group, size, 0).flops(RELATIVE_FLOPS)), _query_task,
                                   (group, root, profile, data_root), _query_label(group))
        job = Job(spec.cache_key, final_passes(spec, size, 0).flops(RELATIVE_FLOPS), after)
        tasks[spec.cache_key] = _Task(job, _run_task, (function, spec, root, profile, data_root, False),
                                      spec.label())
    return list(tasks.values())


def _query_label(group: tuple[RunSpec, ...]) -> str:
    """E.g. ``query el2n seed=0``, ``query el2n seed=0 epochs=5 (with el2n 2, el2n 1, grand 1)``,
    ``query forgetting seed=0 (with dynamic_uncertainty, coreset)``: the group's first query and
    the others computed from the same trainings (a short query's length when the group has several)."""
    lead = group[0]
    label = f"query {lead.method} seed={lead.seed}"
    if len(group) == 1:
        return label
    short = lead.method in SHORT_QUERY_METHODS
    others = ", ".join(f"{query.method} {query.query_epochs:g}" if short else query.method for query in group[1:])
    return f"{label}{f' epochs={lead.query_epochs:g}' if short else ''} (with {others})"


def _by_level(tasks: list[_Task]) -> list[_Task]:
    """``tasks`` (no dependencies among them) in dispatch order, highest level first."""
    queue = ReadyQueue(task.job for task in tasks)
    by_key = {task.job.key: task for task in tasks}
    return [by_key[job.key] for job in iter(queue.pop, None)]


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


#: Seconds a job that its scheduler says ended may take to show its result file (a shared file
#: system can show a compute node's file late) before it counts as ended without a result.
RESULT_GRACE_S = 15.0
#: Slurm states of a job stopped from outside, which wrote no result: no grace.
STOPPED_STATES = ("CANCELLED", "TIMEOUT", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY",
                  "PREEMPTED")


def _run_submitit(phase: list[tuple], report: SweepReport, outcomes: dict, options: SlurmOptions,
                  *, store: ResultStore, threads: int, progress: bool, description: str) -> None:
    import submitit

    folder = options.folder or str(store.path / "submitit")
    executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    parameters: dict[str, Any] = {
        "name": "dropkit",  # the jobs' name in squeue
        "timeout_min": options.time_min,
        "gpus_per_node": options.gpus,
        "cpus_per_task": max(options.cpus, threads),
        "slurm_array_parallelism": options.array_parallelism,
    }
    if options.partition is not None:
        parameters["slurm_partition"] = options.partition
    executor.update_parameters(**parameters)
    watcher = None
    if executor.cluster == "slurm":  # submitit's sacct fails where accounting is off: ask squeue
        from dropkit.slurm import SqueueWatcher

        watcher = SqueueWatcher()
    by_task: dict[Callable, list[tuple]] = {}
    for task, args, label in phase:
        by_task.setdefault(task, []).append((args, label))
    jobs = []
    for task, entries in by_task.items():
        columns = list(zip(*[args + (threads,) for args, _ in entries]))
        submitted = executor.map_array(task, *columns)
        for job in submitted if watcher is not None else ():
            job.watcher = watcher  # this job's own: submitit's class-wide watcher is left alone
            watcher.register_job(job.job_id)
        jobs.extend(zip(submitted, [label for _, label in entries]))
    ended: dict[str, float] = {}  # job id -> when it was first seen ended without a result file
    with _progress_bar(len(jobs), description, progress) as bar:
        pending = list(jobs)
        while pending:
            still = []
            for job, label in pending:
                if options.cluster == "debug":
                    error = job.exception()  # runs a debug job in-process, never opens pdb
                elif not job.done():
                    still.append((job, label))
                    continue
                elif job.paths.result_pickle.exists():  # it returned or raised
                    error = job.exception()
                elif (not job.state.upper().startswith(STOPPED_STATES)
                      and time.monotonic() - ended.setdefault(job.job_id, time.monotonic()) < RESULT_GRACE_S):
                    still.append((job, label))
                    continue
                else:  # cancelled, past its time limit, node lost
                    report.failed.append((label, _ended_without_result(job)))
                    bar.update(1)
                    continue
                if error is not None:
                    line = _job_error_line(error)
                    if options.cluster != "debug":
                        line += f" (log: {job.paths.stderr})"
                    report.failed.append((label, line))
                else:
                    _record(outcomes, job.result())
                bar.update(1)
            pending = still
            if pending:
                time.sleep(1.0)


def _ended_without_result(job) -> str:
    """One line for a submitit job that ended without a result file: its state (e.g.
    ``CANCELLED``, ``TIMEOUT``) and the last line of its error log (Slurm's own line, e.g.
    ``slurmstepd: error: *** JOB 17 ON node4 CANCELLED AT ... ***``), or that it never started."""
    log = job.paths.stderr
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()
             if line.strip()] if log.exists() else []
    where = (f"{lines[-1]} (log: {log})" if lines else f"log: {log}" if log.exists()
             else "it never started (no log)")
    return f"job {job.job_id} ended without a result, state {job.state}: {where}"


def results_frame(specs: Iterable[RunSpec], store: ResultStore, rows=None):
    """The stored rows of ``specs`` as a DataFrame (one row per stored spec, specs' order).

    ``rows``: the store's rows already read (``store.frame()``), to read a store once for several
    calls; None reads them now.

    Specs without a stored row are left out; compare ``len`` with the number of specs to check.
    Specs that share a cache key (they differ only in :attr:`RunSpec.unused_fields`) are one
    run and give one row, showing the first such spec's values of those fields.
    """
    import pandas as pd

    unique = _check_specs(specs)
    order = {spec.cache_key: index for index, spec in enumerate(unique)}
    frame = store.frame() if rows is None else rows
    if frame.empty:
        return pd.DataFrame()
    frame = frame[frame["cache_key"].isin(order)]
    positions = frame["cache_key"].map(order)
    frame = frame.iloc[np.argsort(positions.to_numpy(), kind="stable")].reset_index(drop=True)
    # A field that cannot change a run's numbers is not in its key: one stored row serves specs
    # that differ in it, and the row shows the value of the spec asked for.
    # Rows stored before a later field existed lack it: the spec's value (its default) is the run's.
    by_key = {spec.cache_key: spec for spec in unique}
    for name in sorted({name for spec in unique for name in spec.unused_fields} | set(LATER_FIELD_DEFAULTS)):
        frame[name] = [getattr(by_key[key], name) for key in frame["cache_key"]]
    return frame

