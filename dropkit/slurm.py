"""Slurm job states for a sweep, read with ``squeue`` (works where accounting is off).

submitit asks ``sacct`` for the state of its jobs. On a cluster without accounting
(``AccountingStorageType=accounting_storage/none``, common on small clusters) every such call
fails, submitit logs "Bypassing sacct error ... accounting storage is disabled" at each status
poll, and a job that ended without a result (cancelled with ``scancel``, killed at its time
limit, its node lost) stays in state ``UNKNOWN`` forever: a sweep waiting for it never ends.

:class:`SqueueWatcher` replaces submitit's watcher for the jobs of a sweep: it lists the user's
jobs with ``squeue`` (every array task on its own line, finished ones too while the controller
still keeps them: ``MinJobAge``, 300 s by default) and takes a job that ``squeue`` no longer
lists as ended (:data:`ENDED`). Whether an ended job succeeded is then told by its result file,
never by its state.
"""

from __future__ import annotations

import os

from submitit.slurm.slurm import SlurmInfoWatcher

__all__ = ["ENDED", "squeue_command", "SqueueWatcher"]

#: The state given to a job that ``squeue`` no longer lists: it ended, how is not known.
ENDED = "ENDED (no longer listed by squeue)"


def squeue_command() -> list[str]:
    """``squeue`` listing every job and array task of this user, in every state, one per line:
    ``JOBID|STATE|NODELIST`` (e.g. ``17_3|RUNNING|node4``)."""
    return ["squeue", f"--user={os.getuid()}", "--noheader", "--array", "--states=all",
            "--format=%i|%T|%N"]


class SqueueWatcher(SlurmInfoWatcher):
    """submitit's job watcher, asking ``squeue`` instead of ``sacct``.

    One call serves every job of the sweep. Calls follow submitit's schedule (2, 4, 8, ... s
    after the last submission), at most ``delay_s`` seconds apart (default 30).
    """

    def __init__(self, delay_s: int = 30) -> None:
        super().__init__(delay_s=delay_s)

    def _make_command(self) -> list[str] | None:
        return squeue_command() if self._registered - self._finished else None

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        """``{job id: {"JobID", "State", "NodeList"}}`` from ``squeue`` 's output; a watched,
        unfinished job that is not listed gets state :data:`ENDED`."""
        text = string.decode() if isinstance(string, bytes) else string
        info: dict[str, dict[str, str]] = {}
        for line in text.splitlines():
            job_id, _, rest = line.strip().partition("|")
            state, _, nodes = rest.partition("|")
            if job_id and state:
                info[job_id] = {"JobID": job_id, "State": state.strip(), "NodeList": nodes.strip()}
        for job_id in self._registered - self._finished:
            info.setdefault(job_id, {"JobID": job_id, "State": ENDED, "NodeList": ""})
        return info
