"""The ``dropkit`` command.

- ``dropkit prune``: labels (+ optional scores, validation recalls) in, sorted kept indices
  out: the practitioner's path, no training.
- ``dropkit sweep``: run a book chapter's experiment set at a profile into the result store
  (resumable: stored runs are skipped).
- ``dropkit merge``: copy the rows of a complete sweep from the directory it ran in into the
  result store (all or nothing, never replacing a stored row).
- ``dropkit results``: print a summary table of a profile's stored results.

Every failure prints one line ``dropkit <command>: error: <what is wrong>`` on stderr and exits
with a non-zero status (2 for a bad command line, 1 otherwise, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "read_vector", "write_indices", "prune_indices"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- prune


def read_vector(path: str, option: str) -> np.ndarray:
    """A 1-D array from a ``.npy`` (no pickles) or ``.csv``/``.txt`` file (one value per line or
    one row; a non-numeric header line is skipped). ``option`` names the flag in errors."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{option} {path}: no such file")
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            with open(file, "rb") as handle:
                if handle.read(6) != b"\x93NUMPY":
                    raise ValueError(f"{option} {path}: not a NumPy .npy file (no .npy header); "
                                     "name a text file .csv or .txt")
            array = np.load(file, allow_pickle=False)
        elif suffix in (".csv", ".txt"):
            try:
                array = np.loadtxt(file, delimiter=",", ndmin=1, dtype=np.float64)
            except ValueError:
                array = np.loadtxt(file, delimiter=",", ndmin=1, dtype=np.float64, skiprows=1)
        else:
            raise ValueError(f"{option} {path}: unsupported file type {suffix!r}; use .npy or .csv")
    except ValueError as err:
        if str(err).startswith(option):
            raise
        raise ValueError(f"{option} {path}: cannot read numbers ({_one_line(err)})") from None
    except (OSError, EOFError) as err:
        raise ValueError(f"{option} {path}: cannot read ({_one_line(err)})") from None
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{option} {path}: expected a non-empty 1-D array, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{option} {path}: expected numbers, got dtype {array.dtype}")
    return array


def _check_output(path: str, force: bool, inputs: dict) -> Path:
    """``--output`` as a Path, checked before anything is computed; ``inputs`` maps the input
    options (``--labels`` ...) to their paths (or None), none of which may be overwritten."""
    out = Path(path)
    if out.suffix.lower() not in (".npy", ".csv"):
        raise ValueError(f"--output {path}: use a .npy or .csv file name")
    if out.is_dir():
        raise ValueError(f"--output {path} is a directory")
    if out.exists() and not force:
        raise FileExistsError(f"--output {path} already exists; pass --force to overwrite it")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--output {path}: directory {out.parent} does not exist")
    for option, source in inputs.items():
        if source is not None and out.exists() and Path(source).exists() and out.samefile(source):
            raise ValueError(f"--output {path} is the {option} input file; choose another output "
                             "name (--force never overwrites an input)")
    return out


def write_indices(path: Path, indices: np.ndarray) -> None:
    """Write int64 indices atomically as ``.npy`` or as ``.csv`` (one per line)."""
    from dropkit.store import atomic_write_bytes

    buffer = io.BytesIO()
    if path.suffix.lower() == ".npy":
        np.save(buffer, np.asarray(indices, dtype=np.int64), allow_pickle=False)
    else:
        np.savetxt(buffer, np.asarray(indices, dtype=np.int64), fmt="%d")
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as err:  # not the temporary file's name: the option the user gave
        raise OSError(f"--output {path}: cannot write ({err.strerror or type(err).__name__})") from None


def prune_indices(labels, density: float, *, scores=None, recalls=None, quotas: str | None = None,
                  groups=None, seed: int = 0) -> tuple[np.ndarray, str]:
    """Kept indices (sorted int64 ``[round(density * N)]``) and the protocol used.

    ``groups`` (``[N]`` group ids, with ``recalls`` per group) makes the DRoP quotas group
    quotas (:func:`dropkit.protocols.keep_indices`); it needs ``quotas`` ``drop``/``counts``.

    ============  ========  =========  ====================
    ``quotas``    scores    recalls    protocol
    ============  ========  =========  ====================
    None          -         -          ``random``
    None          given     -          ``strategy`` (top scores overall)
    ``strategy``  given     -          ``random+strategyq``
    ``drop``      -         given      ``random+drop`` (paper rule)
    ``counts``    -         given      ``random+drop`` (counts rule of the authors' code)
    ``drop``      given     given      ``strategy+drop``
    ============  ========  =========  ====================
    """
    if quotas not in (None, "drop", "counts", "strategy"):
        raise ValueError(f"--quotas {quotas!r}: choose drop, counts or strategy")
    if recalls is not None and quotas is None:
        quotas = "drop"
    if quotas in ("drop", "counts") and recalls is None:
        raise ValueError(f"--quotas {quotas} needs --recalls (per-class validation recalls)")
    if quotas == "strategy" and scores is None:
        raise ValueError("--quotas strategy needs --scores (the strategy's per-sample scores)")
    if quotas == "strategy" and recalls is not None:
        raise ValueError("--recalls is not used by --quotas strategy; drop one of them")
    if groups is not None and quotas not in ("drop", "counts"):
        raise ValueError("--groups sets DRoP quotas over groups: it needs --recalls (per group)")
    if groups is not None and np.shape(groups) != np.shape(labels):
        raise ValueError(f"--groups has {np.size(groups)} values but --labels has {np.size(labels)}")
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != np.shape(labels):
            raise ValueError(
                f"--scores has {scores.size} values but --labels has {np.size(labels)}"
            )
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"--scores holds {int((~np.isfinite(scores)).sum())} NaN/inf values")
    if recalls is not None:
        recalls = np.asarray(recalls, dtype=np.float64)
        if not np.all(np.isfinite(recalls)) or recalls.min() < 0 or recalls.max() > 1:
            raise ValueError(f"--recalls must hold per-{'class' if groups is None else 'group'} "
                             "recalls in [0, 1]")
    if quotas is None:
        protocol = "random" if scores is None else "strategy"
    elif quotas == "strategy":
        protocol = "random+strategyq"
    else:
        protocol = "random+drop" if scores is None else "strategy+drop"
    from dropkit.protocols import keep_indices

    keep = keep_indices(protocol, labels, density, scores=scores, recalls=recalls, groups=groups,
                        rule="counts" if quotas == "counts" else "paper", seed=seed)
    return np.asarray(keep, dtype=np.int64), protocol


#: Largest class or group id ``dropkit prune`` accepts: ids are expected dense (0..K-1), and
#: per-class counts take K integers of memory.
MAX_CLASS_ID = 2**20 - 1


def _read_ids(path: str, option: str) -> np.ndarray:
    from dropkit.quotas import as_labels

    ids = as_labels(read_vector(path, option), option)
    if int(ids.max()) > MAX_CLASS_ID:
        raise ValueError(f"{option} holds id {int(ids.max())}; expected dense ids 0..K-1 with "
                         f"K <= {MAX_CLASS_ID + 1}")
    return ids


def _cmd_prune(args) -> int:
    from dropkit.quotas import check_density, check_kept

    density = check_density(args.density, "--density")
    if args.seed < 0:
        raise ValueError(f"--seed {args.seed} must be a non-negative integer")
    output = _check_output(args.output, args.force, {"--labels": args.labels, "--scores": args.scores,
                                                     "--recalls": args.recalls, "--groups": args.groups})
    labels = _read_ids(args.labels, "--labels")
    check_kept(len(labels), density, "--density")
    scores = None if args.scores is None else read_vector(args.scores, "--scores")
    recalls = None if args.recalls is None else read_vector(args.recalls, "--recalls")
    groups = None if args.groups is None else _read_ids(args.groups, "--groups")
    units, unit, flag = (labels, "class", "--labels") if groups is None else (groups, "group", "--groups")
    if recalls is not None and len(recalls) != int(units.max()) + 1:
        count = int(units.max()) + 1
        raise ValueError(f"--recalls has {len(recalls)} values but {flag} holds {unit} ids "
                         f"0..{count - 1}: expected one recall per {unit} ({count} values)")
    keep, protocol = prune_indices(labels, density, scores=scores, recalls=recalls,
                                   quotas=args.quotas, groups=groups, seed=args.seed)
    counts = np.bincount(labels[keep], minlength=int(labels.max()) + 1)
    line = (f"kept {len(keep)} of {len(labels)} samples (density {density:g}, {protocol}"
            f"{', quotas over groups' if groups is not None else ''}); per class {counts.tolist()}")
    if groups is not None:
        line += f"; per group {np.bincount(groups[keep], minlength=len(recalls)).tolist()}"
    write_indices(output, keep)  # last: every check and count above can fail, nothing written
    print(f"{line} -> {output}")
    return 0


# --------------------------------------------------------------------------- sweep / results


def _parse_list(text: str, kind, option: str):
    try:
        values = [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected comma-separated numbers") from None
    if not values:
        raise ValueError(f"{option} {text!r}: expected at least one value")
    return values


#: Run fields that have an option of their own (``--set NAME=...`` is refused for them).
_OPTION_FIELDS = ("setup", "dataset", "model", "densities", "seeds", "device")


def _parse_overrides(items) -> dict:
    overrides = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--set {item!r}: expected NAME=VALUE (e.g. --set epochs=2)")
        if name in _OPTION_FIELDS or name in ("density", "seed"):
            option = {"density": "densities", "seed": "seeds"}.get(name, name)
            raise ValueError(f"--set {item!r}: {name} has its own option; use --{option} instead")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if isinstance(value, list):
            value = tuple(value)
        overrides[name] = value
    return overrides


def _store(args):
    """The profile's store under ``--results-dir`` (default: :func:`dropkit.store.default_results_dir`)."""
    from dropkit.profiles import check_profile
    from dropkit.store import ResultStore, default_results_dir

    root = default_results_dir() if args.results_dir is None else args.results_dir
    return ResultStore(root, check_profile(args.profile))


def _positive_option(value: int | None, option: str, default: str = "the profile's") -> int | None:
    if value is not None and value < 1:
        raise ValueError(f"{option} {value} must be a positive integer (omit it for {default})")
    return value


def _check_slurm_available(args) -> None:
    """``--executor slurm`` with cluster detection on a machine without Slurm would silently run
    every job here (submitit's fallback): refuse it instead."""
    import shutil

    if args.executor == "slurm" and args.slurm_cluster is None and shutil.which("sbatch") is None:
        raise RuntimeError("--executor slurm: no Slurm here (sbatch is not on PATH); run on a Slurm "
                           "login node, use --executor local, or --slurm-cluster local to test "
                           "the submitit path on this machine")


def _specs(args) -> list:
    """The RunSpecs selected by --profile/--experiment and the selection options."""
    from dropkit.profiles import experiment_specs

    experiments = [args.experiment] if isinstance(args.experiment, str) else list(args.experiment)
    specs: dict[str, Any] = {}
    for experiment in experiments:  # runs shared by several experiment sets are listed once
        for spec in experiment_specs(
            args.profile, experiment, setup=args.setup, dataset=args.dataset, model=args.model,
            densities=None if args.densities is None else _parse_list(args.densities, float, "--densities"),
            seeds=None if args.seeds is None else _parse_list(args.seeds, int, "--seeds"),
            device=args.device, **_parse_overrides(args.set),
        ):
            specs.setdefault(spec.cache_key, spec)
    return list(specs.values())


def _slurm_options(args, profile, threads: int):
    """The :class:`dropkit.sweep.SlurmOptions` of ``--executor slurm`` (None for local), built
    (so checked) whenever a ``--slurm-*`` value is given, even for a local sweep."""
    from dropkit.sweep import SlurmOptions

    given = any(value is not None for value in (args.slurm_cluster, args.slurm_partition,
                                                args.slurm_time, args.slurm_gpus))
    if args.executor != "slurm" and not given:
        return None
    checks = {"--slurm-time": args.slurm_time, "--slurm-gpus": args.slurm_gpus}
    for option, value in checks.items():
        minimum = 1 if option == "--slurm-time" else 0
        if value is not None and value < minimum:
            raise ValueError(f"{option} {value} must be an integer >= {minimum}")
    options = SlurmOptions(
        cluster=args.slurm_cluster,
        partition=args.slurm_partition or profile.slurm_partition,
        time_min=profile.slurm_time_min if args.slurm_time is None else args.slurm_time,
        gpus=profile.slurm_gpus if args.slurm_gpus is None else args.slurm_gpus,
        cpus=threads,
        **({} if args.slurm_array_parallelism is None else {"array_parallelism": args.slurm_array_parallelism}),
    )
    return options if args.executor == "slurm" else None


def _parallelism(args, profile) -> tuple[int, int]:
    """``(threads, workers)`` of a sweep: the options given, else the profile's, the local ones
    limited to this machine's CPUs; a Slurm job's threads are the profile's (the login node's CPU
    count says nothing about the compute nodes')."""
    cpus = os.cpu_count() or 1
    if args.threads:
        threads = args.threads
    else:
        threads = profile.threads if args.executor == "slurm" else min(profile.threads, cpus)
    workers = args.workers or max(1, min(profile.workers, cpus // threads))
    return threads, workers


def _cmd_sweep(args) -> int:
    from dropkit.profiles import get_profile
    from dropkit.sweep import check_selections, check_sweep, starts_processes, sweep

    profile = get_profile(args.profile)
    _positive_option(args.workers, "--workers")
    _positive_option(args.threads, "--threads")
    _positive_option(args.slurm_array_parallelism, "--slurm-array-parallelism", "the default, 64")
    _check_slurm_available(args)
    specs = _specs(args)
    store = _store(args)
    threads, workers = _parallelism(args, profile)
    slurm = _slurm_options(args, profile, threads)
    # one validation for the sweep and its dry run, before any work (the sweep repeats it)
    check_sweep(specs, store, executor=args.executor, workers=workers, threads=threads,
                data_root=args.data_root, slurm=slurm)
    stored = store.keys()
    missing_specs = [spec for spec in specs if spec.cache_key not in stored]
    check_selections(missing_specs, args.data_root)
    missing = len(missing_specs)
    print(f"{profile.name}/{'+'.join(args.experiment)}: {len(specs)} runs, {len(specs) - missing} stored, "
          f"{missing} to run -> {store.path}", flush=True)
    if args.dry_run and missing:
        _print_projection(missing_specs, store, workers=workers, threads=threads, data_root=args.data_root,
                          pinned_workers=starts_processes(args.executor, workers))
    if args.dry_run or missing == 0:
        return 0
    report = sweep(specs, store, executor=args.executor, workers=workers, threads=threads,
                   data_root=args.data_root, slurm=slurm, progress=not args.no_progress)
    utilisation = ("" if report.cpu_utilisation is None else
                   f", CPU utilisation {100 * report.cpu_utilisation:.0f}% of {workers} x {threads} cores")
    print(f"done: ran {report.ran}, found {report.found} computed by another process, "
          f"skipped {report.skipped} stored, {report.seconds:.0f} s{utilisation} -> {store.path}")
    return 0


def _cmd_merge(args) -> int:
    from dropkit.profiles import check_profile
    from dropkit.store import ResultStore, merge_rows

    specs = _specs(args)
    target = _store(args)
    source = ResultStore(args.source, check_profile(args.profile))
    if source.path.resolve() == target.path.resolve():
        raise ValueError(f"--from {args.source} is the target store itself ({target.path})")
    if not source.runs_dir.is_dir():
        raise ValueError(f"--from {args.source}: no stored runs of profile {args.profile!r} there ({source.runs_dir})")
    report = merge_rows([spec.cache_key for spec in specs], source, target)
    print(f"{args.profile}/{'+'.join(args.experiment)}: {len(specs)} runs complete in {source.path}; copied "
          f"{report.copied}, {report.already} already stored identical -> {target.path}")
    return 0


def _print_projection(missing: list, store, *, workers: int, threads: int, data_root, pinned_workers: bool) -> None:
    """The dry run's cost lines: FLOPs of the missing work, its floor, its projected wall time;
    ``pinned_workers``: the sweep computes in new processes with the pinned kernels
    (``dropkit.sweep.starts_processes``)."""
    from dropkit.cost import project_sweep
    from dropkit.kernels import OPT_OUT, is_pinned
    from dropkit.runner import stored_queries

    # the sweep's own look-up: every query training a missing run needs (Strategy+DRoP's recall
    # query too) whose outputs are stored and readable
    p = project_sweep(missing, workers=workers, threads=threads, stored_queries=stored_queries(missing, store),
                      data_root=data_root)
    rates = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in p.training_rates.items())
    kernels = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in p.kernel_rates.items())
    shared = f" (and {p.shared_queries} more queries from the same trainings)" if p.shared_queries else ""
    print(f"missing work: {p.runs} runs and {p.queries} query trainings{shared}, {p.flops / 1e12:.2f} TFLOP\n"
          f"measured now, GFLOP/s: training step on {threads} thread(s): {rates}; its matrix kernels "
          f"alone on 1 thread: {kernels}\n"
          f"floor (every core running only those kernels): {p.floor_seconds / 60:.1f} min; projected wall "
          f"time on {workers} worker(s) x {threads} thread(s): {p.projected_seconds / 60:.1f} min")
    if not is_pinned() and os.environ.get(OPT_OUT, "pinned") != "native" and pinned_workers:
        print("rates measured with this machine's own CPU kernels; the sweep's workers compute with the pinned "
              "ones (dropkit.kernels), slower on Intel: `python -m dropkit.kernels dropkit sweep ... --dry-run` "
              "measures those")
    if p.kcenter_orders:
        print(f"not in the floor or the projection: the greedy k-center orders of {p.kcenter_orders} CoreSet "
              f"quer{'y' if p.kcenter_orders == 1 else 'ies'} (CPU work without a FLOP count)")


#: Shorter column headers of ``dropkit results`` (the run fields' names are long).
_SHORT_HEADERS = {"imbalance_factor": "imbalance", "quota_rule": "rule", "query_epochs": "q.epochs",
                  "query_cdbw": "q.cdbw", "query_seeds": "q.seeds", "min_per_class": "min/class",
                  "train_subset": "subset", "drop_over": "quotas over", "dataset_options": "options",
                  "pretrained_path": "weights", "epoch_scaling": "scaled"}


def _cmd_results(args) -> int:
    import pandas as pd

    from dropkit.store import summary_table

    store = _store(args)
    keys = None if args.experiment is None else {spec.cache_key for spec in _specs(args)}
    frame = store.frame()
    if keys is not None and not frame.empty:
        frame = frame[frame["cache_key"].isin(keys)]
    if frame.empty:
        raise FileNotFoundError(
            f"no results stored in {store.runs_dir}"
            + ("" if args.experiment is None else f" for experiment {args.experiment}")
            + ("" if args.results_dir is not None else
               " (the default results directory; pass --results-dir or set DROPKIT_RESULTS)"))
    from dropkit.store import SUMMARY_METRICS

    percent = set(SUMMARY_METRICS.values())
    with pd.option_context("display.max_rows", None, "display.width", 10_000):
        for dataset, rows in frame.groupby(frame["dataset"].astype(str) if "dataset" in frame
                                           else pd.Series("-", index=frame.index), sort=True):
            table = summary_table(rows).drop(columns="dataset", errors="ignore")
            formats = {name: ("{:.1f}".format if name in percent else "{:g}".format)
                       for name in table if pd.api.types.is_float_dtype(table[name])}
            print(f"{dataset} ({len(rows)} runs; test metrics in %, mean over seeds):")
            print(table.rename(columns=_SHORT_HEADERS).to_string(
                index=False, formatters={_SHORT_HEADERS.get(k, k): f for k, f in formats.items()},
                na_rep="-"))
            print()
    print(f"{len(frame)} runs in {store.path}")
    return 0


# --------------------------------------------------------------------------- parser


_RESULTS_DIR_HELP = ("results root (default: $DROPKIT_RESULTS, else the results/ folder of the "
                     "dropkit checkout in use, else ./results)")


def _add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--setup", help="only the setup of this name, e.g. cnn-fashion-mnist")
    parser.add_argument("--dataset", help="only this dataset's setups")
    parser.add_argument("--model", help="replace the setups' model")
    parser.add_argument("--densities", help="comma-separated densities, e.g. 0.1,0.5,0.9")
    parser.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--device", help="torch device (default: the profile's)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="override a run field for every run, e.g. --set epochs=2 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The ``dropkit`` argument parser (sub-commands prune, sweep, merge, results)."""
    from dropkit import __version__
    from dropkit.profiles import EXPERIMENT_SETS, PROFILE_NAMES

    parser = _Parser(prog="dropkit", description="Distributionally robust data pruning (DRoP).")
    parser.add_argument("--version", action="version", version=f"dropkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    prune = commands.add_parser(
        "prune", help="choose which samples to keep (no training)",
        description="Prune a labelled dataset to a density: random, by scores, or with class "
        "quotas (DRoP from per-class validation recalls, or the strategy's own class counts). "
        "Writes the sorted kept indices.",
    )
    prune.add_argument("--labels", required=True, help="labels, .npy or .csv, one integer per sample")
    prune.add_argument("--density", required=True, type=float, help="fraction kept, in (0, 1]")
    prune.add_argument("--output", required=True, help="kept indices out (.npy or .csv)")
    prune.add_argument("--scores", help="per-sample scores, higher = keep (.npy or .csv)")
    prune.add_argument("--recalls", help="per-class validation recalls in [0, 1] (.npy or .csv); "
                       "per group with --groups")
    prune.add_argument("--groups", help="per-sample group ids (.npy or .csv): DRoP quotas over groups")
    prune.add_argument("--quotas", choices=("drop", "counts", "strategy"),
                       help="class quotas: drop (paper rule, needs --recalls), counts (authors' "
                       "code rule, needs --recalls) or strategy (the scores' own class counts, "
                       "then random within classes); default drop when --recalls is given")
    prune.add_argument("--seed", type=int, default=0, help="seed of random choices and ties")
    prune.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    prune.set_defaults(handler=_cmd_prune)

    sweep = commands.add_parser(
        "sweep", help="run a chapter's experiment set into the result store",
        description="Run the runs of one experiment set at a profile; runs already stored are "
        "skipped, so a killed sweep resumes where it stopped.",
    )
    sweep.add_argument("--profile", required=True, choices=PROFILE_NAMES)
    sweep.add_argument("--experiment", required=True, nargs="+", choices=tuple(EXPERIMENT_SETS),
                       help="one or more experiment sets; their runs are scheduled together, "
                       "each shared run once")
    _add_selection_arguments(sweep)
    sweep.add_argument("--executor", choices=("local", "slurm"), default="local")
    sweep.add_argument("--workers", type=int, help="local worker processes (default: the profile's, "
                       "limited to the CPU count)")
    sweep.add_argument("--threads", type=int, help="torch threads per worker (default: the profile's)")
    sweep.add_argument("--results-dir", help=_RESULTS_DIR_HELP)
    sweep.add_argument("--data-root", help="where the datasets are, and the only place "
                       "searched when given (default: $DROPKIT_DATA, system dirs)")
    sweep.add_argument("--slurm-cluster", choices=("slurm", "local", "debug"),
                       help="submitit cluster (default: detect; local/debug run here, for testing)")
    sweep.add_argument("--slurm-partition", help="Slurm partition")
    sweep.add_argument("--slurm-time", type=int, help="time limit per job, minutes")
    sweep.add_argument("--slurm-gpus", type=int, help="GPUs per job")
    sweep.add_argument("--slurm-array-parallelism", type=int,
                       help="how many tasks of a job array may run at once (default 64)")
    sweep.add_argument("--dry-run", action="store_true", help="only count stored and missing runs, and project the missing work's wall time "
                            "from its FLOPs and rates measured now")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=_cmd_sweep)

    merge = commands.add_parser(
        "merge", help="copy a complete sweep's rows from another result directory",
        description="Copy the rows of one selection (as sweep selects them) from the result directory "
        "a sweep computed them in into the result store, all or nothing: refused when a run of the "
        "selection is not stored there (the sweep is not complete) or when the store holds a "
        "different row for it (a stored row is never replaced).",
    )
    merge.add_argument("--profile", required=True, choices=PROFILE_NAMES)
    merge.add_argument("--experiment", required=True, nargs="+", choices=tuple(EXPERIMENT_SETS))
    _add_selection_arguments(merge)
    merge.add_argument("--from", dest="source", required=True, metavar="DIR",
                       help="the --results-dir the sweep computed the rows in")
    merge.add_argument("--results-dir", help=_RESULTS_DIR_HELP)
    merge.set_defaults(handler=_cmd_merge)

    results = commands.add_parser(
        "results", help="print a summary table of stored results",
        description="Mean test accuracy, worst-class accuracy and gap over seeds, per configuration.",
    )
    results.add_argument("--profile", required=True, choices=PROFILE_NAMES)
    results.add_argument("--experiment", choices=tuple(EXPERIMENT_SETS),
                         help="only the runs of this experiment set (with the options below)")
    _add_selection_arguments(results)
    results.add_argument("--results-dir", help=_RESULTS_DIR_HELP)
    results.set_defaults(handler=_cmd_results)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"dropkit: warning: {_one_line(message)}\n"


def main(argv=None) -> int:
    """Entry point of the ``dropkit`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous_format, warnings.formatwarning = warnings.formatwarning, _format_warning
    prefix = f"dropkit {args.command}: error:"
    try:
        return _run(args, prefix)
    finally:
        warnings.formatwarning = previous_format  # a caller's own (e.g. a notebook's) is restored


def _run(args, prefix: str) -> int:
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print(f"dropkit {args.command}: interrupted (stored results are kept)", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{prefix} out of memory (are the inputs what you meant?)", file=sys.stderr)
        return 1
    except (ValueError, OSError, RuntimeError, KeyError, NotImplementedError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{prefix} {_one_line(message)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
