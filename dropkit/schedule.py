"""The order in which a sweep hands its jobs to workers: longest critical path first.

A sweep has two kinds of job: query trainings (whose scores and recalls several final runs share)
and final runs, some of which need one query first. Running every query before any final run
leaves workers idle while the last long query finishes; running in submission order can start
the longest chain last. This module orders jobs by the classic list-scheduling rule (highest
level first): a job's *level* is its own cost plus the largest level among the jobs that wait for
it, i.e. the length of the longest chain of work it starts. Among the jobs whose prerequisites
are done, the one with the highest level goes to the next free worker, so long queries start
first, query-free runs (full data, Random) fill the workers meanwhile, and each final run becomes
ready the moment its own query is stored.

Pure Python, no torch: :class:`Job` and :class:`ReadyQueue` are what ``dropkit.sweep`` drives.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Job", "levels", "ReadyQueue", "simulated_wall"]


@dataclass(frozen=True)
class Job:
    """One unit of sweep work.

    Attributes:
        key: unique name of the job (e.g. a cache key or a query key).
        cost: estimated work, any non-negative unit shared by all jobs of a sweep (e.g.
            training sample passes times the model's FLOPs per sample).
        after: keys of jobs that must finish before this one starts (keys not among the jobs
            are taken as already done).
    """

    key: str
    cost: float
    after: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"key={self.key!r} must be a non-empty string")
        if not (self.cost >= 0 and self.cost < float("inf")):
            raise ValueError(f"cost={self.cost!r} of job {self.key!r} must be finite and >= 0")
        object.__setattr__(self, "after", tuple(self.after))


def _graph(jobs: Iterable[Job]) -> tuple[dict[str, Job], dict[str, list[str]], dict[str, set[str]]]:
    """(jobs by key, key -> keys of the jobs waiting for it, key -> keys it still waits for)."""
    by_key: dict[str, Job] = {}
    for job in jobs:
        if not isinstance(job, Job):
            raise ValueError(f"jobs must be Job instances, got {type(job).__name__}")
        if job.key in by_key:
            raise ValueError(f"job key {job.key!r} appears twice")
        by_key[job.key] = job
    missing = {key: {k for k in job.after if k in by_key} for key, job in by_key.items()}
    waiting: dict[str, list[str]] = {key: [] for key in by_key}
    for key, job in by_key.items():
        for before in dict.fromkeys(job.after):
            if before in by_key:
                waiting[before].append(key)
    return by_key, waiting, missing


def levels(jobs: Iterable[Job]) -> dict[str, float]:
    """Each job's level: its cost plus the largest level of the jobs that wait for it.

    Raises ``ValueError`` on duplicate keys or a dependency cycle.
    """
    by_key, waiting, missing = _graph(jobs)
    missing = {key: set(keys) for key, keys in missing.items()}
    ready = [key for key, keys in missing.items() if not keys]
    order: list[str] = []  # every job after its prerequisites (Kahn's algorithm)
    while ready:
        key = ready.pop()
        order.append(key)
        for later in waiting[key]:
            missing[later].discard(key)
            if not missing[later]:
                ready.append(later)
    if len(order) < len(by_key):
        stuck = sorted(key for key, keys in missing.items() if keys)
        raise ValueError(f"jobs {stuck[:4]} are in a dependency cycle")
    level: dict[str, float] = {}
    for key in reversed(order):
        level[key] = by_key[key].cost + max((level[k] for k in waiting[key]), default=0.0)
    return level


class ReadyQueue:
    """Hands out jobs highest level first, each only once its prerequisites are done.

    ``pop()`` returns the next ready job (None when none is ready now); ``done(key)`` marks a job
    finished and makes the jobs waiting only for it ready. Ties in level go to the job given
    first, so the order is deterministic.
    """

    def __init__(self, jobs: Iterable[Job]):
        jobs = list(jobs)
        self._level = levels(jobs)
        self._jobs, self._waiting, self._missing = _graph(jobs)
        self._position = {job.key: i for i, job in enumerate(jobs)}
        self._ready: list[tuple[float, int, str]] = []
        self._left = len(jobs)
        self._finished: set[str] = set()
        for key, keys in self._missing.items():
            if not keys:
                self._push(key)

    def _push(self, key: str) -> None:
        heapq.heappush(self._ready, (-self._level[key], self._position[key], key))

    def level(self, key: str) -> float:
        """The level of job ``key`` (see :func:`levels`)."""
        return self._level[key]

    def pop(self) -> Job | None:
        """The ready job with the highest level, or None if no job is ready now."""
        if not self._ready:
            return None
        return self._jobs[heapq.heappop(self._ready)[2]]

    def done(self, key: str) -> None:
        """Mark job ``key`` finished; the jobs that waited only for it become ready."""
        if key not in self._jobs:
            raise KeyError(f"no job {key!r} in this queue")
        if key in self._finished:
            raise ValueError(f"job {key!r} is already done")
        self._finished.add(key)
        self._left -= 1
        for later in self._waiting.pop(key, ()):
            self._missing[later].discard(key)
            if not self._missing[later]:
                self._push(later)

    def __len__(self) -> int:
        """Jobs not yet marked done (ready, running or waiting)."""
        return self._left


def simulated_wall(jobs: Iterable[Job], workers: int, *, order: str = "critical_path") -> float:
    """The wall time of running ``jobs`` on ``workers`` identical workers, each job taking its cost.

    ``order="critical_path"`` dispatches like :class:`ReadyQueue` (what the sweep does);
    ``order="given"`` dispatches ready jobs in the order given (for comparison). A free worker
    takes the next ready job at once; it idles only while every remaining job waits for one that
    is still running. Returns the time the last job ends (0.0 for no jobs).
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} must be a positive integer")
    if order not in ("critical_path", "given"):
        raise ValueError(f"order={order!r} must be 'critical_path' or 'given'")
    jobs = list(jobs)
    durations = {job.key: job.cost for job in jobs}
    if order == "given":  # equal levels: ties go to the job given first
        jobs = [Job(job.key, 0.0, job.after) for job in jobs]
    queue = ReadyQueue(jobs)
    now, running = 0.0, []  # heap of (end time, key)
    while len(queue):
        while len(running) < workers:
            job = queue.pop()
            if job is None:
                break
            heapq.heappush(running, (now + durations[job.key], job.key))
        if not running:
            raise ValueError("no job can start: a prerequisite is missing")
        now, key = heapq.heappop(running)
        queue.done(key)
    return now
