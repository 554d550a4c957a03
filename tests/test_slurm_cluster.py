"""``dropkit sweep --executor slurm`` against a real Slurm cluster (``tests/slurm_cluster.py``).

A one-node cluster (this machine: ``munged``, ``slurmctld``, ``slurmd`` started here, stopped by
process id after the session) runs the smoke profile's CDB-W set at density 0.3 (its runs and query
trainings) on real Fashion-MNIST. Checked: its rows equal a local sweep's (every field but
provenance); a sweep whose job array is cancelled with ``scancel`` fails with a message saying
so, and the next sweep computes exactly the runs that are missing, leaving the stored ones
untouched; a run that fails on the node shows its own error and its log; and the cluster without
accounting (``accounting_storage/none``, where every ``sacct`` call fails) gives no "Bypassing
sacct error" warnings. The cluster's tests skip, saying why, only where Slurm is missing and
cannot be installed (no root or no apt-get).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from dropkit.rekey import PROVENANCE_FIELDS
from dropkit.slurm import ENDED, SqueueWatcher
from dropkit.store import ResultStore
from slurm_cluster import PARTITION, SlurmCluster, install_reason

ROOT = Path(__file__).resolve().parents[1]
#: submitit's warning at each status poll where accounting is off (before dropkit used squeue).
SACCT_WARNING = "Bypassing sacct error"


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    started = time.perf_counter()
    reason = install_reason()
    if reason is not None:
        pytest.skip(f"no Slurm cluster here: {reason}")
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as cluster:
        print(f"Slurm cluster up in {time.perf_counter() - started:.1f} s (install included): "
              f"pids {cluster.pids}, {cluster.cpus} CPUs, SLURM_CONF={cluster.conf}")
        yield cluster


def dropkit_sweep(cluster: SlurmCluster, results: Path, *options: str, wait: bool = True):
    """``python -m dropkit.cli sweep --profile smoke`` with this checkout first on the path, in
    the cluster's environment (its jobs inherit both)."""
    env = {**cluster.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "dropkit.cli", "sweep", "--profile", "smoke", "--results-dir",
               str(results), "--no-progress", *options]
    if not wait:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)


#: The smoke CDB-W set at one density: its runs (full data; EL2N with Random+DRoP, Strategy and
#: Strategy+DRoP quotas; EL2N scores of CDB-W query models; both CDB-W weight rules) and their query
#: trainings, counted from the specs (10 runs from 5 query trainings when this was written).
CDBW = ("--experiment", "cdbw", "--densities", "0.3")


def _counts() -> tuple[int, int]:
    from dropkit.profiles import experiment_specs
    from dropkit.runner import query_plan

    specs = experiment_specs("smoke", "cdbw", densities=[0.3])
    return len({spec.cache_key for spec in specs}), len(query_plan(specs).groups)


N_RUNS, N_QUERIES = _counts()
SLURM = ("--executor", "slurm", "--slurm-partition", PARTITION, "--slurm-time", "10")


def rows(results: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text())
            for path in sorted((results / "smoke" / "runs").glob("*.json"))}


def computed(row: dict) -> dict:
    """A row without its provenance (when, where, how long, which revision) and its seal (a
    digest of the whole row, provenance included)."""
    from dropkit.rows import SEAL_FIELD

    return {name: value for name, value in row.items() if name not in PROVENANCE_FIELDS and name != SEAL_FIELD}


@pytest.fixture(scope="module")
def cdbw_on_slurm(slurm_cluster, tmp_path_factory):
    """The smoke CDB-W sweep (at one density) through Slurm, once for the tests below."""
    results = tmp_path_factory.mktemp("cdbw-slurm")
    started = time.perf_counter()
    done = dropkit_sweep(slurm_cluster, results, *CDBW, *SLURM)
    print(f"cdbw through Slurm: {time.perf_counter() - started:.0f} s")
    return results, done


# --------------------------------------------------------------------------- the cluster


def test_smoke_sweep_on_slurm_equals_the_local_sweep(cdbw_on_slurm, tmp_path, slurm_cluster):
    results, done = cdbw_on_slurm
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"done: ran {N_RUNS}, found 0 computed by another process, skipped 0 stored" in done.stdout
    local = dropkit_sweep(slurm_cluster, tmp_path, *CDBW, "--executor", "local")
    assert local.returncode == 0, local.stderr
    on_slurm, here = rows(results), rows(tmp_path)
    assert len(here) == N_RUNS and on_slurm.keys() == here.keys()
    for key in here:
        assert computed(on_slurm[key]) == computed(here[key]), key
    # every task was a Slurm job of the test cluster, submitted with the sweep's options
    scripts = sorted((results / "smoke" / "submitit").glob("*_submission.sh"))
    assert len(scripts) == 2  # one job array of query trainings, one of runs
    for script in scripts:
        text = script.read_text()
        assert f"#SBATCH --partition={PARTITION}" in text and "#SBATCH --time=10" in text, text
        assert "#SBATCH --job-name=dropkit" in text
    assert len(list((results / "smoke" / "submitit").glob("*_log.out"))) == N_RUNS + N_QUERIES  # runs, queries


def test_no_sacct_warnings_where_accounting_is_off(cdbw_on_slurm, slurm_cluster):
    """The cluster has no accounting: each ``sacct`` call fails. Job states come from squeue."""
    shown = slurm_cluster.run("scontrol", "show", "config").stdout
    assert "accounting_storage/none" in shown
    failed = slurm_cluster.run("sacct", "--parsable2", check=False)
    assert failed.returncode != 0  # what submitit's default watcher would run into at every poll
    _, done = cdbw_on_slurm
    output = done.stdout + done.stderr
    assert output.count(SACCT_WARNING) == 0, output
    assert output.count("sacct") == 0, output


def test_scancel_mid_sweep_then_resume_computes_each_run_once(cdbw_on_slurm, slurm_cluster, tmp_path):
    """Cancel the run array of a sweep (one task at a time) once its first row is stored; the
    sweep fails naming the cancelled jobs; the next sweep computes exactly the missing runs."""
    shared, _ = cdbw_on_slurm
    results = tmp_path / "results"
    (results / "smoke").mkdir(parents=True)
    # the query models are stored already (the sweep above trained them): only runs are left
    shutil.copytree(shared / "smoke" / "scores", results / "smoke" / "scores")
    first = dropkit_sweep(slurm_cluster, results, *CDBW, *SLURM, "--slurm-array-parallelism", "1",
                          wait=False)
    runs = results / "smoke" / "runs"
    deadline = time.monotonic() + 300
    while not list(runs.glob("*.json")) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    jobs = slurm_cluster.run("squeue", "--noheader", "--states=PENDING,RUNNING", "--format=%F").stdout.split()
    assert jobs, "no job left to cancel: the sweep finished before its first row was seen"
    slurm_cluster.run("scancel", *sorted(set(jobs)))
    output, _ = first.communicate(timeout=300)
    first_ended = datetime.now().astimezone()
    assert first.returncode == 1, output
    assert "task(s) failed" in output and "ended without a result, state CANCELLED" in output, output
    assert "re-run the sweep to resume" in output, output
    before = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in runs.glob("*.json")}
    assert 1 <= len(before) < N_RUNS, output
    arrays = [script.read_text() for script in (results / "smoke" / "submitit").glob("*_submission.sh")]
    assert len(arrays) == 1 and f"#SBATCH --array=0-{N_RUNS - 1}%1" in arrays[0]  # one task at a time
    assert all(datetime.fromisoformat(row["finished_at"]) <= first_ended for row in rows(results).values())

    resumed_at = datetime.now().astimezone().replace(microsecond=0)
    second = dropkit_sweep(slurm_cluster, results, *CDBW, *SLURM)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (f"done: ran {N_RUNS - len(before)}, found 0 computed by another process, "
            f"skipped {len(before)} stored") in second.stdout
    after = rows(results)
    assert len(after) == N_RUNS and len(ResultStore(results, "smoke").frame()) == N_RUNS
    for name, (content, mtime) in before.items():  # stored rows untouched
        path = runs / name
        assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime
    new = [row for key, row in after.items() if f"{key}.json" not in before]
    assert len(new) == N_RUNS - len(before)
    assert all(datetime.fromisoformat(row["finished_at"]) >= resumed_at for row in new)
    # the same numbers as the uninterrupted sweep
    whole = rows(shared)
    for key, row in after.items():
        assert computed(row) == computed(whole[key]), key


def test_a_run_failing_on_the_node_shows_its_error(slurm_cluster, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    done = dropkit_sweep(slurm_cluster, tmp_path / "results", "--experiment", "cdbw", "--densities", "1.0",
                         "--data-root", str(empty), *SLURM)
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("dropkit sweep: error: "), done.stderr
    assert "FileNotFoundError: fashion-mnist: the four IDX files" in error
    assert f"root='{empty}' was given: nothing else is searched" in error
    assert "re-run the sweep to resume" in error
    log = Path(error.split("(log: ", 1)[1].split(")", 1)[0])
    assert log.is_file() and "FileNotFoundError" in log.read_text()
    assert not list((tmp_path / "results" / "smoke" / "runs").glob("*.json"))


# --------------------------------------------------------------------------- squeue, no cluster


def test_squeue_watcher_reads_states_and_takes_unlisted_jobs_as_ended():
    watcher = SqueueWatcher()
    for job_id in ("7_0", "7_1", "7_2", "9"):
        watcher.register_job(job_id)
    info = watcher.read_info(b"7_0|COMPLETED|vm\n7_1|RUNNING|vm\n9|PENDING|\n")
    assert {key: value["State"] for key, value in info.items()} == {
        "7_0": "COMPLETED", "7_1": "RUNNING", "9": "PENDING", "7_2": ENDED}
    watcher._info_dict.update(info)
    assert [watcher.is_done(job_id, mode="cache") for job_id in ("7_0", "7_1", "7_2", "9")] == [
        True, False, True, False]
    assert watcher._make_command()[0] == "squeue"


def test_array_parallelism_must_be_positive(tmp_path, capsys):
    from dropkit.cli import main

    code = main(["sweep", "--profile", "smoke", "--experiment", "cdbw", "--executor", "slurm",
                 "--slurm-array-parallelism", "0", "--results-dir", str(tmp_path), "--no-progress"])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "dropkit sweep: error: --slurm-array-parallelism 0 must be a positive integer "
        "(omit it for the default, 64)")
    assert not any(tmp_path.iterdir())
