"""Re-key a result store after the cache-key rule changed, losing no row.

A stored row is named by its spec's cache key (``runs/<cache_key>.json``). When the rule that
makes the key changes (e.g. a full-data run's key stopped depending on the query length, see
:attr:`dropkit.spec.RunSpec.unused_fields`), the rows written under the old rule sit under names
that their specs no longer hash to. :func:`rekey_store` renames each such row to its new key and
updates its ``cache_key`` field. Two rows that now share one key are the same run computed twice:
if their results agree (every field but provenance and the unused spec fields), one is kept; if
they disagree, both are kept (the second under ``runs-conflicts/``) and reported, never deleted.

    python -m dropkit.rekey results/default          # one profile's store: rename, report
    python -m dropkit.rekey results/default --dry-run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dropkit.rows import SEAL_FIELD
from dropkit.spec import RunSpec
from dropkit.store import ResultStore

__all__ = ["PROVENANCE_FIELDS", "RekeyReport", "rekey_store"]

#: Row fields that record how and when a run was computed, not what it found.
PROVENANCE_FIELDS = frozenset({
    "cache_key", "seconds", "train_seconds", "finished_at", "git_revision", "device_name", "cpu_capability",
    "dropkit_version", "torch_version", "numpy_version", "python_version", "cpu_vendor", "cpu_model", "cpu_flags",
    "mkl_code_path", "kernel_environment", "provenance_backfilled",
})


@dataclass
class RekeyReport:
    """renamed: (old key, new key) pairs; merged: old keys dropped as exact duplicates of the row
    at their new key; conflicts: old keys whose row disagrees with the row at their new key (moved
    to ``runs-conflicts/``); unchanged: rows already under their key."""

    renamed: list[tuple[str, str]] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0


def _same_run(a: dict, b: dict) -> bool:
    """Whether two rows hold the same run with the same results: equal specs up to fields that
    cannot change the numbers, and equal result fields (provenance aside)."""
    spec_a, spec_b = RunSpec.from_dict(a), RunSpec.from_dict(b)
    spec_fields = {f.name for f in dataclasses.fields(RunSpec)}

    def results(row: dict) -> dict:
        return {k: v for k, v in row.items()
                if k not in spec_fields and k not in PROVENANCE_FIELDS and k != SEAL_FIELD}

    return spec_a.cache_key == spec_b.cache_key and results(a) == results(b)


def rekey_store(store: ResultStore, *, dry_run: bool = False) -> RekeyReport:
    """Rename every row of ``store`` whose spec no longer hashes to its file name (see module)."""
    report = RekeyReport()
    runs = store.path / "runs"
    paths = sorted(runs.glob("*.json"))
    rows = {path.stem: json.loads(path.read_text()) for path in paths}
    keys = {name: RunSpec.from_dict(row).cache_key for name, row in rows.items()}  # under today's rule
    occupant = {name: row for name, row in rows.items() if keys[name] == name}
    report.unchanged = len(occupant)
    for path in paths:
        row = rows[path.stem]
        old, new = path.stem, keys[path.stem]
        if old == new:
            continue
        if new in occupant:
            if _same_run(occupant[new], row):
                report.merged.append((old, new))
                if not dry_run:
                    path.unlink()
            else:
                report.conflicts.append((old, new))
                if not dry_run:
                    (store.path / "runs-conflicts").mkdir(exist_ok=True)
                    os.replace(path, store.path / "runs-conflicts" / path.name)
            continue
        report.renamed.append((old, new))
        occupant[new] = row
        if not dry_run:
            store.write({**row, "cache_key": new})
            path.unlink()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dropkit.rekey", description=__doc__.split("\n\n")[0])
    parser.add_argument("store", help="a profile's store directory, e.g. results/default")
    parser.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    args = parser.parse_args(argv)
    path = Path(args.store)
    if not (path / "runs").is_dir():
        parser.error(f"store={args.store!r} has no runs/ directory")
    report = rekey_store(ResultStore(path.parent, path.name), dry_run=args.dry_run)
    verb = "would rename" if args.dry_run else "renamed"
    print(f"{verb} {len(report.renamed)}, merged {len(report.merged)} exact duplicates, "
          f"{len(report.conflicts)} conflicts, {report.unchanged} unchanged")
    for old, new in report.conflicts:
        print(f"conflict: {old} disagrees with the row at {new} (kept in runs-conflicts/)")
    return 1 if report.conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
