"""Re-running a shipped row and comparing it with the stored one (``tests/test_shipped_results.py``,
``tests/test_sweep_prefixes.py``).

Re-runs happen in a fresh interpreter on the row's kernels: ATen's ``cpu_capability`` of the row
and, for a row of MKL's Zen path, the pin (``dropkit.kernels``: the kernels of the AMD EPYC that
computed every shipped row), with which this Intel Xeon (AVX-512, AMX) reproduces every re-run
row bit for bit. Where a re-run
computed with the row's kernels (same ``cpu_capability`` and ``mkl_code_path``), every number is
compared exactly. Where the pin cannot be made (no C compiler to build its preloaded library),
the kernels differ and the numbers are compared within a tolerance measured by
``benchmarks/cross_cpu.py`` on unpinned kernels and stored in ``results/default/cross_cpu.json``:
:data:`SAFETY` times the largest difference measured there; the assertion message says which
comparison was made and why.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from dropkit.kernels import PINNED_MKL_PATH, pinned_environment, same_kernels

ROOT = Path(__file__).resolve().parents[1]
CROSS_CPU = ROOT / "results" / "default" / "cross_cpu.json"
#: The unpinned settings of the measurement whose largest differences make the tolerance (those
#: measured: ``benchmarks/cross_cpu.py --kernels``).
UNPINNED = ("native", "avx2")
#: The tolerance is this many times the largest difference measured.
SAFETY = 2.0


def rerun_environment(stored: Mapping) -> tuple[dict[str, str], bool]:
    """The environment of a re-run of ``stored`` on its kernels as far as this machine can, and
    whether it is pinned: ATen's ``cpu_capability`` of the row, and for a row of MKL's Zen path
    (every shipped row) :func:`pinned_environment`; where the pin's library cannot be built,
    MKL's own code path (then compared within the measured tolerance, unless it is the row's)."""
    capability = {"ATEN_CPU_CAPABILITY": str(stored["cpu_capability"]).lower()}
    if stored["mkl_code_path"] == PINNED_MKL_PATH:
        try:
            return {**pinned_environment(), **capability}, True
        except RuntimeError as error:
            warnings.warn(f"re-running shipped rows without the pinned kernels ({error}): "
                          "compared within the measured cross-CPU tolerance", stacklevel=2)
    return {**os.environ, **capability}, False


def check_pinned(fresh: Mapping, pinned: bool) -> None:
    """A pinned re-run must have computed with MKL's Zen path (else the pin is broken)."""
    if pinned:
        assert fresh["mkl_code_path"] == PINNED_MKL_PATH, (
            f"the pinned re-run computed with MKL's {fresh['mkl_code_path']} path, not {PINNED_MKL_PATH}")


def cross_cpu_tolerance() -> tuple[dict[str, float], str]:
    """Per stored number, :data:`SAFETY` x the largest |difference| from the shipped rows
    measured with :data:`UNPINNED` kernels (``results/default/cross_cpu.json``; counts rounded
    up to whole images), and a sentence saying where it was measured."""
    measured = json.loads(CROSS_CPU.read_text())
    settings = [setting for setting in UNPINNED if setting in measured["kernels"]]
    assert settings, f"{CROSS_CPU} holds no measurement with unpinned kernels ({UNPINNED})"
    tolerance: dict[str, float] = {}
    for setting in settings:
        for name, gap in measured["kernels"][setting]["max_abs_difference"].items():
            tolerance[name] = max(tolerance.get(name, 0.0), SAFETY * gap)
    for name in ("class_counts", "group_counts", "num_kept"):
        if name in tolerance:
            tolerance[name] = float(math.ceil(tolerance[name]))
    machine = measured["machine"]
    rows = measured["kernels"][settings[0]]["rows"]
    return tolerance, (f"{SAFETY:g} x the largest difference of {rows} shipped rows re-run with "
                       f"{' and '.join(settings)} kernels on {machine['cpu_model']} "
                       f"({machine['cpu_vendor']}), {CROSS_CPU.relative_to(ROOT)}")


def _kernels(row: Mapping) -> str:
    return (f"{row.get('cpu_model')} ({row.get('cpu_vendor')}), ATen {row.get('cpu_capability')}, "
            f"MKL {row.get('mkl_code_path')} path")


def assert_reproduces(fresh: Mapping, stored: Mapping, names: Sequence[str], label: str) -> None:
    """``fresh``'s ``names`` equal ``stored``'s: exactly if both computed with the same kernels,
    else within :func:`cross_cpu_tolerance` (names it does not cover, exactly)."""
    if same_kernels(fresh, stored):
        how = (f"computed with the row's kernels on {_kernels(fresh)} (the row: {_kernels(stored)}): "
               "compared exactly")
        for name in names:
            assert fresh[name] == stored[name], f"{label}: {name} differs; {how}"
        return
    tolerance, measured = cross_cpu_tolerance()
    how = (f"this machine's kernels ({_kernels(fresh)}) differ from the row's ({_kernels(stored)}): "
           f"compared within the measured cross-CPU tolerance, {measured}")
    for name in names:
        if name not in tolerance or fresh[name] is None or isinstance(fresh[name], str):
            assert fresh[name] == stored[name], f"{label}: {name} differs; {how} (exactly: not measured)"
            continue
        gap = float(np.max(np.abs(np.asarray(fresh[name], dtype=float) - np.asarray(stored[name], dtype=float))))
        assert gap <= tolerance[name], f"{label}: {name} differs by {gap:g} > {tolerance[name]:g}; {how}"
