"""The CPU kernels a row records (``dropkit.kernels``), the pin that makes any x86-64 processor
compute with the shipped rows' kernels, and the provenance backfill (``dropkit.backfill_kernels``).
That the pin reproduces shipped rows bit for bit is checked by the re-runs of
``tests/test_shipped_results.py`` and ``tests/test_sweep_prefixes.py``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dropkit import kernels
from dropkit.backfill_kernels import SHIPPED_AMD_EPYC, backfill_kernels, machine_kernels, main
from dropkit.spec import RunSpec
from dropkit.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: not the first processor
flags\t\t: avx2 amx_tile
"""


def test_cpu_description_reads_the_first_processor(tmp_path):
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    assert kernels.cpu_description(tmp_path / "cpuinfo") == {
        "cpu_vendor": "AuthenticAMD", "cpu_model": "AMD EPYC 9R14 96-Core Processor",
        "cpu_flags": ["avx2", "fma", "avx512f", "avx512bw"]}
    missing = kernels.cpu_description(tmp_path / "absent")
    assert missing["cpu_vendor"] is None and missing["cpu_flags"] is None


def test_kernel_environment_records_the_set_variables_and_preloads_by_name():
    environ = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "", "HOME": "/root", "PATH": "/bin",
               "LD_PRELOAD": "/home/me/.cache/dropkit/mkl_amd_path-0123.so /usr/lib/libx.so"}
    assert kernels.kernel_environment(environ) == {"ATEN_CPU_CAPABILITY": "avx2",
                                                   "LD_PRELOAD": "mkl_amd_path-0123.so libx.so"}


def test_onednns_instruction_set_follows_the_flags_and_its_limit():
    avx512 = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "amx_tile"]
    assert kernels.onednn_isa(avx512, {}) == "avx512_core"
    assert kernels.onednn_isa(avx512[:3], {}) == "avx2"                            # AVX-512F alone is not enough
    assert kernels.onednn_isa(["sse4_2"], {}) == "other" and kernels.onednn_isa(None, {}) is None
    assert kernels.onednn_isa(avx512, {"ONEDNN_MAX_CPU_ISA": "AVX2"}) == "avx2"
    assert kernels.onednn_isa(avx512, {"DNNL_MAX_CPU_ISA": "SSE41"}) == "other"
    assert kernels.onednn_isa(avx512, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}) == "avx512_core"
    assert kernels.onednn_isa(["avx2"], {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}) == "avx2"


def test_rows_have_the_same_kernels_when_capability_mkl_path_and_onednn_isa_agree():
    amd = {"cpu_model": "AMD EPYC", "cpu_capability": "AVX2", "mkl_code_path": "amd-zen", "onednn_isa": "avx512_core"}
    intel_pinned = {**amd, "cpu_model": "Intel(R) Xeon(R)"}
    assert kernels.same_kernels(amd, intel_pinned)
    assert not kernels.same_kernels(amd, {**intel_pinned, "mkl_code_path": "intel"})
    assert not kernels.same_kernels(amd, {**intel_pinned, "cpu_capability": "AVX512"})
    assert not kernels.same_kernels(amd, {**intel_pinned, "onednn_isa": "avx2"})
    assert not kernels.same_kernels({"cpu_capability": "AVX2"}, {"cpu_capability": "AVX2"})  # paths unknown


def test_this_process_reports_mkls_own_code_path_for_its_vendor():
    vendor = kernels.cpu_description()["cpu_vendor"]
    if "LD_PRELOAD" not in kernels.kernel_environment():
        assert kernels.mkl_code_path() == {"GenuineIntel": "intel", "AuthenticAMD": "amd-zen"}.get(vendor, "other")
    assert kernels.is_pinned() == (torch.backends.cpu.get_cpu_capability() == "AVX2"
                                   and kernels.mkl_code_path() == "amd-zen")


def test_a_pinned_process_computes_with_the_shipped_rows_kernels(tmp_path, monkeypatch):
    if not (shutil.which("cc") or shutil.which("gcc")):  # the pin's stated requirement
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        with pytest.raises(RuntimeError, match="C compiler"):
            kernels.pinned_environment()
        return
    env = kernels.pinned_environment({"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                      "LD_PRELOAD": "/nonexistent/other.so"})
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
    library, other = env["LD_PRELOAD"].split()
    assert Path(library).is_file() and other == "/nonexistent/other.so"  # kept, after the pin
    assert kernels.pinned_environment(env)["LD_PRELOAD"] == env["LD_PRELOAD"]  # once
    del env["LD_PRELOAD"]
    env = kernels.pinned_environment(env)
    done = subprocess.run([sys.executable, "-c", "import json; from dropkit import kernels; "
                           "print(json.dumps([kernels.kernel_provenance(), kernels.is_pinned()]))"],
                          env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    provenance, pinned = json.loads(done.stdout)
    assert pinned and provenance["cpu_capability"] == "AVX2" and provenance["mkl_code_path"] == "amd-zen"
    assert provenance["kernel_environment"] == {"ATEN_CPU_CAPABILITY": "avx2", "LD_PRELOAD": Path(library).name}
    assert provenance["cpu_vendor"] == kernels.cpu_description()["cpu_vendor"]  # the processor is not hidden


def _row(seed: int, finished_at: str, **fields) -> dict:
    spec = RunSpec(dataset="fashion-mnist", model="mlp", protocol="random", density=0.1, seed=seed)
    return {**spec.to_dict(), "cache_key": spec.cache_key, "test_recalls": [0.5] * 10,
            "finished_at": finished_at, **fields}


def test_backfill_fills_only_missing_fields_marks_them_and_is_rerunnable(tmp_path):
    store = ResultStore(tmp_path, "default")
    old = _row(0, "2026-11-28T16:40:00+00:00")
    capable = _row(1, "2026-11-29T02:18:00+00:00", cpu_capability="AVX2")
    current = _row(2, "2026-12-06T12:00:00+00:00", **{**machine_kernels(), "cpu_capability": "AVX512"})
    for row in (old, capable, current):
        store.write(row)
    report = backfill_kernels(store, SHIPPED_AMD_EPYC, "the README", dry_run=True)
    assert sorted(report.filled) == sorted([old["cache_key"], capable["cache_key"]]) and report.current == 1
    assert store.read(old["cache_key"]) == old                                   # dry run: nothing written
    backfill_kernels(store, SHIPPED_AMD_EPYC, "the README")
    filled = store.read(old["cache_key"])
    assert {k: filled[k] for k in SHIPPED_AMD_EPYC} == SHIPPED_AMD_EPYC
    assert filled["provenance_backfilled"]["fields"] == list(SHIPPED_AMD_EPYC)
    assert filled["provenance_backfilled"]["source"] == "the README"
    assert {k: v for k, v in filled.items() if k not in (*SHIPPED_AMD_EPYC, "provenance_backfilled")} == old
    assert "cpu_capability" not in store.read(capable["cache_key"])["provenance_backfilled"]["fields"]
    assert store.read(current["cache_key"]) == current                           # records its kernels
    assert backfill_kernels(store, SHIPPED_AMD_EPYC, "the README").filled == []  # re-run: nothing to do


def test_backfill_refuses_a_contradicting_capability_and_writes_nothing(tmp_path):
    store = ResultStore(tmp_path, "default")
    fine, wrong = _row(0, "2026-11-28T16:40:00"), _row(1, "2026-11-28T16:41:00", cpu_capability="AVX512")
    store.write(fine), store.write(wrong)
    with pytest.raises(ValueError, match="AVX512"):
        backfill_kernels(store, SHIPPED_AMD_EPYC, "the README")
    assert store.read(fine["cache_key"]) == fine and store.read(wrong["cache_key"]) == wrong


def test_backfill_of_this_machines_rows_in_a_time_window(tmp_path, capsys):
    store = ResultStore(tmp_path, "default")
    shipped, today = _row(0, "2026-11-28T16:40:00+00:00"), _row(1, "2026-12-06T12:00:00+00:00", cpu_capability="AVX512")
    store.write(shipped), store.write(today)
    assert main([str(tmp_path / "default"), "--this-machine", "--finished-after", "2026-12-06"]) == 0
    assert "filled 1 row(s)" in capsys.readouterr().err
    assert store.read(shipped["cache_key"]) == shipped                           # outside the window
    filled = store.read(today["cache_key"])
    machine = machine_kernels()
    assert filled["cpu_capability"] == "AVX512"                                  # its own, kept
    assert {k: filled[k] for k in ("cpu_vendor", "cpu_model", "mkl_code_path", "onednn_isa")} == {
        k: machine[k] for k in ("cpu_vendor", "cpu_model", "mkl_code_path", "onednn_isa")}
    assert filled["kernel_environment"] is None                                  # not recorded
    assert "this-machine" in filled["provenance_backfilled"]["source"]


def record_kernels(spec, store, *, data_root=None):
    """A sweep's run function (importable by its workers) that stores only the kernels it ran on."""
    store.write({**spec.to_dict(), "cache_key": spec.cache_key, **kernels.kernel_provenance()})


def test_a_sweeps_worker_processes_compute_with_the_pinned_kernels_unless_told_not_to(tmp_path, monkeypatch):
    from dropkit.sweep import sweep

    if (os.cpu_count() or 1) < 2:
        pytest.skip("a pool of 2 workers needs 2 cores")
    before = {name: os.environ.get(name) for name in ("LD_PRELOAD", "ATEN_CPU_CAPABILITY")}
    store = ResultStore(tmp_path, "smoke")
    specs = [RunSpec("gaussian", "linear", "random", 0.5, seed=seed) for seed in range(4)]
    compiler = shutil.which("cc") or shutil.which("gcc")
    with contextlib.nullcontext() if compiler else pytest.warns(RuntimeWarning, match="own CPU kernels"):
        sweep(specs[:2], store, workers=2, run_function=record_kernels, progress=False)
    pinned = [store.read(spec.cache_key) for spec in specs[:2]]
    assert all(row["mkl_code_path"] == ("amd-zen" if compiler else kernels.mkl_code_path()) for row in pinned)
    assert all(row["cpu_capability"] == ("AVX2" if compiler else torch.backends.cpu.get_cpu_capability())
               for row in pinned)
    assert {name: os.environ.get(name) for name in before} == before             # restored after the sweep
    monkeypatch.setenv("DROPKIT_KERNELS", "native")
    sweep(specs[2:], store, workers=2, run_function=record_kernels, progress=False)
    native = [store.read(spec.cache_key) for spec in specs[2:]]
    assert all(row["mkl_code_path"] == kernels.mkl_code_path() for row in native)
    assert all(row["cpu_capability"] == torch.backends.cpu.get_cpu_capability() for row in native)


def test_a_one_worker_sweep_runs_here_and_leaves_this_processs_kernels_and_environment_alone(tmp_path):
    from dropkit.sweep import sweep

    store = ResultStore(tmp_path, "smoke")
    spec = RunSpec("gaussian", "linear", "random", 0.5, seed=0)
    sweep([spec], store, workers=1, run_function=record_kernels, progress=False)
    row = store.read(spec.cache_key)
    assert row["kernel_environment"] == kernels.kernel_environment()   # no pin variables set around the run
    assert row["mkl_code_path"] == kernels.mkl_code_path()
    assert row["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
