"""How the shipped rows reproduce on this machine, by kernels: re-run a set of cheap shipped MLP
rows here and compare every number they store with the shipped row (computed on an AMD EPYC with
ATen's AVX2 kernels and MKL's Zen code path, see ``results/default/README.md``).

Each ``--kernels`` setting runs the whole set as one sweep (``dropkit.sweep.sweep``, 1 worker x
1 torch thread, query trainings included) into a fresh temporary store, in a fresh interpreter:

* ``pinned``: ``dropkit.kernels.pinned_environment`` (ATen AVX2, MKL's Zen path): the shipped
  rows' kernels; expected bit-identical;
* ``native``: this machine's own kernels, nothing pinned (e.g. ATen AVX-512, MKL's Intel path);
* ``avx2``: ``ATEN_CPU_CAPABILITY=avx2`` alone (MKL's own choice of path: the tests' setting
  before issue 26).

For each setting it writes, per stored number (``test_recalls``, ``test_accuracy``,
``class_counts``...), the largest absolute difference from the shipped rows, and for recalls and
summaries that difference against the seed spread of the row's cell (the standard deviation over
the shipped rows' 5 seeds of the same run spec): ``max_abs_difference`` and
``max_difference_over_seed_sd``. The set: for seeds 0-4, on Fashion-MNIST, Random at d = 0.1
and 0.3, Random+DRoP and EL2N at 0.1 (chapters 02/03; with their EL2N query models), and on the
spurious Fashion-MNIST (chapter 06) Random, EL2N, Random+DRoP over classes and over groups at
0.1: 40 rows. ``tests/test_shipped_results.py`` takes its tolerance for a machine whose kernels
differ from the rows' from this file's ``native`` and ``avx2`` measurements.

    python benchmarks/cross_cpu.py                       # pinned, native, avx2: about 30 min on 2 cores
    python benchmarks/cross_cpu.py --kernels pinned --seeds 0
    python benchmarks/cross_cpu.py --out results/default/cross_cpu.json   # the committed measurement
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dropkit import kernels  # noqa: E402
from dropkit.runner import git_revision  # noqa: E402
from dropkit.spec import RunSpec  # noqa: E402
from dropkit.store import ResultStore  # noqa: E402

#: Numbers compared: lists (per class or group) and scalars; counts are compared apart (exact integers).
RECALLS = ("test_recalls", "val_recalls", "query_val_recalls", "test_group_recalls", "query_val_group_recalls")
SUMMARIES = ("test_accuracy", "test_worst_class", "test_gap", "test_std", "val_accuracy", "val_worst_class",
             "val_gap", "val_std", "test_worst_group")
COUNTS = ("class_counts", "group_counts", "num_kept")
SETTINGS = ("pinned", "native", "avx2")

_SWEEP = """
import json, sys
import torch
torch.set_num_threads(1)
from dropkit.spec import RunSpec
from dropkit.store import ResultStore
from dropkit.sweep import sweep
sweep([RunSpec.from_dict(d) for d in json.loads(sys.argv[1])], ResultStore(sys.argv[2], "default"),
      workers=1, threads=1, progress=False)
"""


def chosen_rows(shipped: ResultStore, seeds) -> list[dict]:
    """The shipped rows of the measured set (see the module docstring), in a stable order."""
    def wanted(r):
        if r["model"] != "mlp" or r["seed"] not in seeds or r["imbalance_factor"] != 1 or r["cdbw"]:
            return False
        if r["dataset"] == "fashion-mnist":
            return ((r["protocol"] == "random" and r["density"] in (0.1, 0.3))
                    or (r["density"] == 0.1 and (r["protocol"] == "random+drop" or
                                                 (r["protocol"] == "strategy" and r["method"] == "el2n"))))
        return r["dataset"] == "spurious-fashion-mnist" and r["density"] == 0.1 and (
            r["protocol"] in ("random", "random+drop") or (r["protocol"] == "strategy" and r["method"] == "el2n"))
    return sorted((r for r in shipped.rows() if wanted(r)), key=lambda r: (r["dataset"], r["seed"], r["cache_key"]))


def environment(setting: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "LD_PRELOAD")}
    base["PYTHONPATH"] = str(ROOT)
    if setting == "pinned":
        return kernels.pinned_environment(base)
    if setting == "avx2":
        return {**base, "ATEN_CPU_CAPABILITY": "avx2"}
    return base


def seed_sd(row: dict, shipped_rows: list[dict], name: str) -> np.ndarray | None:
    """The standard deviation (ddof 1) of ``name`` over the shipped seeds of ``row``'s cell."""
    spec = RunSpec.from_dict(row).to_dict()
    spec.pop("seed")
    cell = [r[name] for r in shipped_rows if r.get(name) is not None
            and {k: v for k, v in RunSpec.from_dict(r).to_dict().items() if k != "seed"} == spec]
    return np.std(np.asarray(cell, dtype=float), axis=0, ddof=1) if len(cell) > 1 else None


def compare(fresh: list[dict], stored: list[dict], shipped_rows: list[dict]) -> dict:
    """Per stored number: the largest |fresh - stored| and its largest ratio to the seed SD."""
    out = {"rows": len(stored), "identical_rows": 0, "max_abs_difference": {}, "max_difference_over_seed_sd": {},
           "rows_with_differences": []}
    for new, old in zip(fresh, stored, strict=True):
        differs = []
        for name in (*RECALLS, *SUMMARIES, *COUNTS):
            if old.get(name) is None:
                continue
            a, b = np.asarray(new[name], dtype=float), np.asarray(old[name], dtype=float)
            gap = np.abs(a - b)
            if gap.max() > 0:
                differs.append(name)
            out["max_abs_difference"][name] = max(out["max_abs_difference"].get(name, 0.0), float(gap.max()))
            sd = seed_sd(old, shipped_rows, name) if name not in COUNTS else None
            if sd is not None and gap.max() > 0:
                ratio = float(np.max(np.where(sd > 0, gap / np.where(sd > 0, sd, 1), np.inf * (gap > 0))))
                out["max_difference_over_seed_sd"][name] = max(out["max_difference_over_seed_sd"].get(name, 0.0), ratio)
        if differs:
            out["rows_with_differences"].append({"label": RunSpec.from_dict(old).label(), "dataset": old["dataset"],
                                                 "differs": differs})
        else:
            out["identical_rows"] += 1
    return out


def write(path: Path, report: dict) -> None:
    """Write ``report`` to ``path``, keeping the settings measured earlier on the same rows and
    machine that this report does not hold (so settings can be measured one at a time)."""
    if path.is_file():
        earlier = json.loads(path.read_text())
        same_machine = {k: earlier.get("machine", {}).get(k) for k in ("cpu_vendor", "cpu_model")} == {
            k: report["machine"][k] for k in ("cpu_vendor", "cpu_model")}
        if earlier.get("labels") == report["labels"] and same_machine:
            report = {**report, "kernels": {**earlier["kernels"], **report["kernels"]}}
    path.write_text(json.dumps(report, indent=1) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, help="JSON file to write (default: print)")
    args = parser.parse_args(argv)
    shipped = ResultStore(ROOT / "results", "default")
    shipped_rows = list(shipped.rows())
    stored = chosen_rows(shipped, set(args.seeds))
    specs = [RunSpec.from_dict(r) for r in stored]
    report = {
        "what": ("shipped rows re-run on this machine with each kernel setting, compared with the shipped "
                 "rows (benchmarks/cross_cpu.py)"),
        "shipped_rows_computed_on": "AMD EPYC (AuthenticAMD; model string not recorded), ATen AVX2, MKL's Zen path",
        "machine": kernels.cpu_description(),
        "git_revision": git_revision(),
        "labels": [f"{r['dataset']} {RunSpec.from_dict(r).label()}" for r in stored],
        "kernels": {},
    }
    for setting in args.kernels:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", _SWEEP, json.dumps([s.to_dict() for s in specs]), tmp],
                           check=True, env=environment(setting), cwd=ROOT)
            wall = time.perf_counter() - started
            store = ResultStore(tmp, "default")
            fresh = [store.read(spec.cache_key) for spec in specs]
        result = compare(fresh, stored, shipped_rows)
        result["provenance"] = {k: fresh[0].get(k) for k in ("cpu_vendor", "cpu_model", "cpu_flags", "cpu_capability",
                                                              "mkl_code_path", "kernel_environment", "torch_version")}
        result["git_revision"] = report["git_revision"]
        result["wall_seconds"] = round(wall, 1)
        result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        report["kernels"][setting] = result
        print(f"{setting}: {result['identical_rows']} of {result['rows']} rows identical, {wall:.0f} s",
              file=sys.stderr, flush=True)
        if args.out:  # after each setting: a long measurement stopped early keeps what it measured
            write(args.out, report)
    if not args.out:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
