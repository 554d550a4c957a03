"""Backfill the processor and kernel provenance of stored rows computed before rows recorded it.

Since issue 26 every row records the processor and the kernels that computed it
(:func:`dropkit.kernels.kernel_provenance`: ``cpu_vendor``, ``cpu_model``, ``cpu_flags``,
``cpu_capability``, ``mkl_code_path``, ``onednn_isa``, ``kernel_environment``). Rows computed before that lack
some or all of these fields; this command fills them in from what is known about the machine
that computed them (given on the command line, or read from this machine with
``--this-machine``), changes nothing else, and marks each row it fills with
``provenance_backfilled``: which fields were filled, from which source, when. A field a row
already records is kept; a recorded ``cpu_capability`` that contradicts the given one is an
error (nothing is written). Rows that record all of them (computed since issue 26, or filled
before) are left alone, so the command can be re-run at any time.

    # the shipped rows (all computed on the AMD EPYC of results/default/README.md):
    python -m dropkit.backfill_kernels results/default --shipped-amd-epyc
    # rows computed on this machine (e.g. this session's), unpinned:
    python -m dropkit.backfill_kernels results/default --this-machine --finished-after 2026-12-06
    python -m dropkit.backfill_kernels results/default --this-machine --dry-run
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from dropkit.kernels import cpu_description, onednn_isa
from dropkit.store import ResultStore

__all__ = ["SHIPPED_AMD_EPYC", "BackfillReport", "backfill_kernels", "machine_kernels"]

#: What is known about the machine of every shipped row (results/default/README.md): a 2-core AMD
#: EPYC virtual machine whose model string was not recorded, every sweep with
#: ``ATEN_CPU_CAPABILITY=avx2``; MKL ran its Zen path there (an AMD processor); oneDNN its AVX-512
#: kernels (the README's session 7 ran that machine's AVX-512 ATen kernels, and the shipped CNN
#: row re-runs bit for bit with oneDNN's avx512_core kernels, not with its avx2 ones).
SHIPPED_AMD_EPYC: dict[str, Any] = {
    "cpu_vendor": "AuthenticAMD",
    "cpu_model": "AMD EPYC (model string not recorded)",
    "cpu_flags": None,
    "cpu_capability": "AVX2",
    "mkl_code_path": "amd-zen",
    "onednn_isa": "avx512_core",
    "kernel_environment": {"ATEN_CPU_CAPABILITY": "avx2"},
}
SHIPPED_SOURCE = ("results/default/README.md: the shipped sweeps ran on a 2-core AMD EPYC virtual machine "
                  "with AVX-512 and ATEN_CPU_CAPABILITY=avx2 (model string, flags not recorded); onednn_isa "
                  "inferred from a bit-identical re-run of a CNN row (issue 26)")
FIELDS = tuple(SHIPPED_AMD_EPYC)


def machine_kernels() -> dict[str, Any]:
    """This machine's processor and the kernels an unpinned run computes with here: the
    processor's (:func:`dropkit.kernels.cpu_description`), ``mkl_code_path`` from its vendor
    (MKL's own choice: ``"intel"`` on Intel, ``"amd-zen"`` on AMD), ``onednn_isa`` from its
    flags (oneDNN's own choice), ``cpu_capability`` None
    (taken from each row, which records it) and ``kernel_environment`` None (not recorded)."""
    cpu = cpu_description()
    path = {"GenuineIntel": "intel", "AuthenticAMD": "amd-zen"}.get(cpu["cpu_vendor"] or "")
    return {**cpu, "cpu_capability": None, "mkl_code_path": path, "onednn_isa": onednn_isa(cpu["cpu_flags"], {}),
            "kernel_environment": None}


@dataclass
class BackfillReport:
    """filled: cache keys of the rows filled in; current: rows that already record every field
    (left alone); outside: rows outside the ``finished_at`` window (left alone)."""

    filled: list[str] = field(default_factory=list)
    current: int = 0
    outside: int = 0


def _finished(row: Mapping[str, Any]) -> datetime | None:
    text = row.get("finished_at")
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def backfill_kernels(store: ResultStore, machine: Mapping[str, Any], source: str, *,
                     finished_after: str | None = None, finished_before: str | None = None,
                     dry_run: bool = False) -> BackfillReport:
    """Fill the :data:`FIELDS` a row lacks from ``machine`` (a dict of them; a None value is
    written as None, "not recorded"), in every row of ``store`` that lacks one and finished inside ``[finished_after, finished_before)`` (ISO times, UTC if no zone;
    None: unbounded). Each filled row gets ``provenance_backfilled`` = ``{"fields": [...],
    "source": source, "on": today (UTC)}``. Raises ValueError, writing nothing, if a row
    records a ``cpu_capability`` other than ``machine``'s (when given)."""
    unknown = set(machine) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown provenance fields {sorted(unknown)}; known: {FIELDS}")
    after, before = _moment(finished_after), _moment(finished_before)
    report, updated = BackfillReport(), []
    for row in store.rows():
        if all(name in row for name in FIELDS):
            report.current += 1
            continue
        finished = _finished(row)
        if (after or before) and (finished is None or (after and finished < after)
                                  or (before and finished >= before)):
            report.outside += 1
            continue
        recorded = row.get("cpu_capability")
        if recorded is not None and machine.get("cpu_capability") not in (None, recorded):
            raise ValueError(f"row {row['cache_key']} records cpu_capability {recorded!r}, "
                             f"not the given {machine['cpu_capability']!r}: nothing written")
        filled = [name for name in FIELDS if name in machine and name not in row]
        if not filled:
            continue
        new = {**row, **{name: machine[name] for name in filled}}
        new["provenance_backfilled"] = {"fields": filled, "source": source,
                                        "on": datetime.now(timezone.utc).date().isoformat()}
        updated.append(new)
        report.filled.append(row["cache_key"])
    if not dry_run:
        for row in updated:
            store.write(row)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="a profile's result directory, e.g. results/default")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--shipped-amd-epyc", action="store_true",
                       help="the shipped rows' machine (results/default/README.md)")
    which.add_argument("--this-machine", action="store_true",
                       help="this machine's processor, MKL's own path for its vendor, unpinned")
    which.add_argument("--cpu-model", help="another machine: its model name (with --cpu-vendor ...)")
    parser.add_argument("--cpu-vendor", help="e.g. GenuineIntel, AuthenticAMD (with --cpu-model)")
    parser.add_argument("--cpu-capability", help="ATen's kernels, e.g. AVX2 (rows that record it keep theirs)")
    parser.add_argument("--mkl-code-path", choices=("intel", "amd-zen", "other"), help="with --cpu-model")
    parser.add_argument("--onednn-isa", choices=("avx512_core", "avx2", "other"), help="with --cpu-model")
    parser.add_argument("--source", help="where the description comes from (stored in each row)")
    parser.add_argument("--finished-after", help="only rows finished at or after this ISO time (UTC)")
    parser.add_argument("--finished-before", help="only rows finished before this ISO time (UTC)")
    parser.add_argument("--dry-run", action="store_true", help="report, write nothing")
    args = parser.parse_args(argv)
    if args.shipped_amd_epyc:
        machine, source = dict(SHIPPED_AMD_EPYC), args.source or SHIPPED_SOURCE
    elif args.this_machine:
        machine = machine_kernels()
        source = args.source or f"dropkit.backfill_kernels --this-machine (read from {machine['cpu_model']})"
        if args.cpu_capability is None:
            machine.pop("cpu_capability")  # each row records its own
        else:
            machine["cpu_capability"] = args.cpu_capability
    else:
        if not (args.cpu_vendor and args.mkl_code_path and args.onednn_isa and args.source):
            parser.error("--cpu-model needs --cpu-vendor, --mkl-code-path, --onednn-isa and --source")
        machine = {"cpu_vendor": args.cpu_vendor, "cpu_model": args.cpu_model, "cpu_flags": None,
                   "mkl_code_path": args.mkl_code_path, "onednn_isa": args.onednn_isa, "kernel_environment": None}
        if args.cpu_capability:
            machine["cpu_capability"] = args.cpu_capability
        source = args.source
    root = args.store.resolve()
    store = ResultStore(root.parent, root.name)
    report = backfill_kernels(store, machine, source, finished_after=args.finished_after,
                              finished_before=args.finished_before, dry_run=args.dry_run)
    verb = "would fill" if args.dry_run else "filled"
    print(f"{verb} {len(report.filled)} row(s) with {', '.join(f'{k}={v!r}' for k, v in machine.items())}; "
          f"{report.current} already record their kernels, {report.outside} outside the time window",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
