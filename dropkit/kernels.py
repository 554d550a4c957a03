"""The CPU kernels a run computes with: what a result row records about them, and the pinned
kernels with which an x86-64 machine computes the shipped rows' numbers bit for bit (shown on the
AMD EPYC that computed them and on an Intel Xeon with AVX-512 and AMX; expected on others with
AVX2).

Three libraries inside PyTorch pick their CPU code by the processor, and each changes the last
bits of a training (so a recall's last digit, or a near-tied class count):

* **ATen** (PyTorch's own kernels) by instruction set: ``torch.backends.cpu.get_cpu_capability()``
  (``"AVX2"``, ``"AVX512"``), pinned by the environment variable ``ATEN_CPU_CAPABILITY=avx2``;
* **MKL** (the fp32 matrix products of every linear layer, and some vector maths) by *vendor*:
  on an Intel processor it runs Intel's code paths, on an AMD Zen processor its Zen path. On
  an Intel processor no MKL setting selects the Zen path (``MKL_CBWR=AVX2``,
  ``MKL_CBWR=COMPATIBLE``, ``MKL_ENABLE_INSTRUCTIONS=AVX2`` give Intel paths whose sums round
  differently; measured for issue 26, see ``results/default/README.md``). A tiny
  preloaded library (``mkl_amd_path.c``, compiled on first use with the system's C compiler)
  answers MKL's vendor checks as an AMD Zen processor does, so MKL runs its Zen path there too;
* **oneDNN** (the convolutions: the CNN's rows, not the MLP's) by instruction set:
  :func:`onednn_isa`; its fp32 ``avx512_core`` kernels run on every processor with AVX-512
  (F, BW, VL, DQ), AMX or not. A processor without AVX-512 cannot run them.

The shipped rows were computed on an AMD EPYC with AVX-512, with ATen's AVX2 kernels (MKL's Zen
path and oneDNN's avx512_core kernels, natively).
:func:`pinned_environment` gives a child process those kernels on an x86-64 processor with
AVX2 (Intel or AMD): ``ATEN_CPU_CAPABILITY=avx2`` and the preloaded library. Both must be
in place before the process starts (the dynamic linker reads ``LD_PRELOAD`` at start-up), so a
pin applies to new processes (the sweep's workers and Slurm jobs, :func:`pinned_new_processes`;
the tests' re-runs), never to the current one. To start any command pinned (a one-worker sweep,
which runs in its own process, or ``make book``)::

    python -m dropkit.kernels                      # this process's kernels, and a pinned one's
    python -m dropkit.kernels dropkit sweep --profile default --workers 1 ...

Settings found not to change an MLP row (issue 26): oneDNN's ``ONEDNN_MAX_CPU_ISA``,
``torch.backends.mkldnn.enabled``, numpy's ``NPY_DISABLE_CPU_FEATURES`` (AVX-512 off), glibc's
``GLIBC_TUNABLES=glibc.cpu.hwcaps`` (AVX-512 off); they are recorded anyway when set. The pin
costs time on an Intel processor: the MLP's training step (batch 256, one thread) took 8.5 ms
pinned against 5.0 ms with the Xeon's own AVX-512 kernels or with ATen's AVX2 kernels and MKL's
Intel path (``DROPKIT_KERNELS=native`` for the machine's own kernels).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Iterator, Mapping

#: ATen's instruction set of the pinned kernels (the shipped rows').
PINNED_CAPABILITY = "AVX2"
#: MKL's code path of the pinned kernels, as :func:`mkl_code_path` names it (the shipped rows').
PINNED_MKL_PATH = "amd-zen"
#: The C source of the preloaded library that answers MKL's vendor checks as AMD Zen does.
SHIM_SOURCE = Path(__file__).with_name("mkl_amd_path.c")
#: Environment variables that change which kernels a library runs, recorded in each row when set.
KERNEL_ENVIRONMENT = (
    "ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE",
    "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE", "NPY_DISABLE_CPU_FEATURES",
    "NPY_ENABLE_CPU_FEATURES", "GLIBC_TUNABLES", "LD_PRELOAD",
)
#: The processor flags (``/proc/cpuinfo``) that decide which kernels the libraries can pick.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "avx512_fp16",
             "amx_tile")
#: The flags of oneDNN's ``avx512_core`` kernels (its convolutions' fp32 code on such processors).
AVX512_CORE = ("avx512f", "avx512bw", "avx512vl", "avx512dq")


def cpu_description(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> dict[str, object]:
    """This machine's processor: ``{"cpu_vendor": e.g. "GenuineIntel" or "AuthenticAMD",
    "cpu_model": the ``model name`` line, "cpu_flags": those of :data:`ISA_FLAGS` it has}``,
    from ``cpuinfo`` (Linux); elsewhere the vendor and flags are None and the model is
    :func:`platform.processor`'s."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return {"cpu_vendor": None, "cpu_model": platform.processor() or platform.machine() or None,
                "cpu_flags": None}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() not in fields:  # the first processor's lines
            fields[name.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    return {"cpu_vendor": fields.get("vendor_id"), "cpu_model": fields.get("model name"),
            "cpu_flags": [flag for flag in ISA_FLAGS if flag in flags]}


def _mkl_function(name: str):
    """MKL's function ``name`` as PyTorch's MKL calls it: a preloaded definition first (the
    process's global symbols), else the one linked into ``libtorch_cpu``; None without MKL."""
    import torch

    for library in (None, Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"):
        try:
            function = getattr(ctypes.CDLL(library and str(library)), name)
        except (OSError, AttributeError):
            continue
        function.restype, function.argtypes = ctypes.c_int, []
        return function
    return None


def mkl_code_path() -> str | None:
    """The vendor code path MKL runs in this process: ``"intel"``, ``"amd-zen"`` (an AMD Zen
    processor, or the pin's preloaded library) or ``"other"``; None where torch has no MKL."""
    intel, zen = _mkl_function("mkl_serv_intel_cpu_true"), _mkl_function("mkl_serv_cpuiszen")
    if intel is None or zen is None:
        return None
    if intel():
        return "intel"
    return "amd-zen" if zen() else "other"


def kernel_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of :data:`KERNEL_ENVIRONMENT` set in ``environ`` (default: this process's),
    ``LD_PRELOAD`` as its libraries' file names."""
    environ = os.environ if environ is None else environ
    found = {name: environ[name] for name in KERNEL_ENVIRONMENT if environ.get(name)}
    if "LD_PRELOAD" in found:  # the libraries' names, not the (user's) directories
        found["LD_PRELOAD"] = " ".join(Path(entry).name for entry in found["LD_PRELOAD"].split())
    return found


def onednn_isa(flags: list[str] | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The instruction set of oneDNN's fp32 kernels (PyTorch's convolutions): ``"avx512_core"``
    where the processor has :data:`AVX512_CORE` (also with AMX or BF16: a Xeon with AMX runs
    ``brg_conv_fwd:avx512_core`` for fp32), else ``"avx2"`` or ``"other"``, lowered to
    ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) where that names AVX2 or older; None for
    unknown ``flags``. The CNN's rows depend on it (a shipped CNN row re-run with
    ``ONEDNN_MAX_CPU_ISA=AVX2`` on the pinned kernels differs); the MLP's do not."""
    if flags is None:
        return None
    environ = os.environ if environ is None else environ
    isa = "avx512_core" if all(flag in flags for flag in AVX512_CORE) else "avx2" if "avx2" in flags else "other"
    limit = (environ.get("ONEDNN_MAX_CPU_ISA") or environ.get("DNNL_MAX_CPU_ISA") or "").lower()
    if limit and not limit.startswith(("avx512", "avx10", "all")) and isa != "other":
        isa = "avx2" if limit.startswith("avx2") else "other"
    return isa


def kernel_provenance() -> dict[str, object]:
    """What a result row records about the kernels that computed it: :func:`cpu_description`'s
    fields, ``cpu_capability`` (ATen's), ``mkl_code_path``, ``onednn_isa`` and
    ``kernel_environment`` (the :data:`KERNEL_ENVIRONMENT` variables set)."""
    import torch

    cpu = cpu_description()
    return {**cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "mkl_code_path": mkl_code_path(),
            "onednn_isa": onednn_isa(cpu["cpu_flags"]), "kernel_environment": kernel_environment()}


def same_kernels(row: Mapping[str, object], other: Mapping[str, object]) -> bool:
    """Whether two rows were computed with the same kernels (ATen's capability, MKL's code
    path, oneDNN's instruction set): then a re-run gives the same numbers bit for bit, whichever
    x86-64 processor (Intel or AMD) ran either (checked in ``tests/test_shipped_results.py``)."""
    return all(row.get(name) is not None and row.get(name) == other.get(name)
               for name in ("cpu_capability", "mkl_code_path", "onednn_isa"))


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dropkit"


def mkl_amd_path_library() -> Path:
    """The preloaded library of the pin (compiled from :data:`SHIM_SOURCE` with the system's C
    compiler into ``~/.cache/dropkit`` once per source version). Raises RuntimeError if it
    cannot be built (no C compiler, or not x86-64 Linux)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError(f"the pinned kernels need x86-64 Linux, not {platform.system()} {platform.machine()}")
    source = SHIM_SOURCE.read_bytes()
    target = _cache_dir() / f"mkl_amd_path-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if target.is_file():
        return target
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError("the pinned kernels need a C compiler (cc or gcc) to build "
                           f"{SHIM_SOURCE.name}: install one (Debian: apt-get install gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SHIM_SOURCE)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"building {SHIM_SOURCE.name} with {compiler} failed: {done.stderr.strip()}")
    partial.replace(target)  # atomic: concurrent builders each rename a complete file
    return target


def pinned_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default: this process's) with which a new process computes with
    the shipped rows' kernels on any x86-64 processor with AVX2: ``ATEN_CPU_CAPABILITY=avx2``
    and :func:`mkl_amd_path_library` first in ``LD_PRELOAD``. Raises RuntimeError where the
    library cannot be built."""
    environ = dict(os.environ if environ is None else environ)
    library = str(mkl_amd_path_library())
    preload = [entry for entry in environ.get("LD_PRELOAD", "").split() if entry and entry != library]
    environ["LD_PRELOAD"] = " ".join([library, *preload])
    environ["ATEN_CPU_CAPABILITY"] = PINNED_CAPABILITY.lower()
    return environ


def is_pinned() -> bool:
    """Whether this process computes with the pinned kernels (:data:`PINNED_CAPABILITY`,
    :data:`PINNED_MKL_PATH`)."""
    import torch

    return (torch.backends.cpu.get_cpu_capability() == PINNED_CAPABILITY
            and mkl_code_path() == PINNED_MKL_PATH)


#: Set to ``native`` to let the sweep's new processes compute with this machine's own kernels.
OPT_OUT = "DROPKIT_KERNELS"


@contextlib.contextmanager
def pinned_new_processes() -> Iterator[bool]:
    """Within the block, processes that this one starts (a sweep's workers, its Slurm jobs, which
    inherit the environment) compute with the pinned kernels: ``os.environ`` carries
    :func:`pinned_environment` and is restored after. Yields whether it does: not where
    ``DROPKIT_KERNELS=native`` is set, nor where the library cannot be built (a warning says
    so; the rows then record this machine's own kernels)."""
    if os.environ.get(OPT_OUT, "pinned") == "native":
        yield False
        return
    try:
        pinned = pinned_environment()
    except RuntimeError as error:
        warnings.warn(f"computing with this machine's own CPU kernels ({error}): rows may differ in "
                      "the last digits from the shipped rows", RuntimeWarning, stacklevel=3)
        yield False
        return
    saved = {name: os.environ.get(name) for name in ("LD_PRELOAD", "ATEN_CPU_CAPABILITY")}
    os.environ.update({name: pinned[name] for name in saved})
    try:
        yield True
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main(argv: list[str] | None = None) -> int:
    """``python -m dropkit.kernels [COMMAND ...]``: run COMMAND with the pinned kernels (its exit
    status), or with no command print this process's kernels and a pinned process's."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        environ = pinned_environment()
    except RuntimeError as error:
        print(f"dropkit.kernels: {error}", file=sys.stderr)
        return 1
    if argv:
        os.execvpe(argv[0], argv, environ)
    pinned = subprocess.run([sys.executable, "-c", "import json; from dropkit.kernels import kernel_provenance; "
                             "print(json.dumps(kernel_provenance()))"], env=environ, capture_output=True,
                            text=True, check=True)
    print(json.dumps({"this process": kernel_provenance(), "pinned": json.loads(pinned.stdout)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
