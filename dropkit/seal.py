"""Seal a result store in place: the migration for rows written before rows were sealed.

    python -m dropkit.seal results/default           # seal unsealed rows, verify sealed ones
    python -m dropkit.seal results/default --check   # verify only, change nothing

It seals (:func:`dropkit.rows.row_digest`) each valid row without a seal, leaves a row whose seal
matches untouched, and refuses (reports, exit status 1, file unchanged) a row whose seal does not
match or that is not a valid row (spec fields that do not hash to its name, metrics out of range:
:func:`dropkit.rows.row_problem`): sealing it would vouch for an edit. It changes no other field:
the file is re-written with the layout :meth:`dropkit.store.ResultStore.write` gives it plus the
one field, and read back to check that. Running it twice changes nothing the second time, so it
can be run again after rows were added or backfilled with new fields.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dropkit.rows import SEAL_FIELD, row_problem, seal_problem
from dropkit.store import KEY_PATTERN, atomic_write_bytes, sealed_row_text, spec_key

__all__ = ["SealReport", "seal_store", "main"]


@dataclass
class SealReport:
    """What :func:`seal_store` did: ``sealed`` (paths sealed now), ``verified`` (count of rows
    whose seal matched), ``refused`` ([(path, reason)]: left unchanged)."""

    sealed: list[Path] = field(default_factory=list)
    verified: int = 0
    refused: list[tuple[Path, str]] = field(default_factory=list)


def seal_store(path: str | Path, *, check: bool = False) -> SealReport:
    """Seal the rows of one profile's store ``path`` (holding ``runs/``) in place (see module).

    With ``check=True`` nothing is written: unsealed rows are reported as refused.
    """
    runs = Path(path) / "runs"
    if not runs.is_dir():
        raise FileNotFoundError(f"{path} has no runs/ directory (give a profile's store, e.g. results/default)")
    report = SealReport()
    for file in sorted(p for p in runs.glob("*.json") if KEY_PATTERN.fullmatch(p.stem)):
        try:
            text = file.read_text(encoding="utf-8")
            row = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            report.refused.append((file, f"unreadable ({err})"))
            continue
        if not isinstance(row, dict) or row.get("cache_key") != file.stem:
            report.refused.append((file, f"it does not hold a row with cache_key {file.stem}"))
            continue
        if SEAL_FIELD in row:
            problem = seal_problem(row) or row_problem(row)
            if problem:
                report.refused.append((file, problem))
            else:
                report.verified += 1
            continue
        try:
            key = spec_key(row)
            problem = None if key in (None, file.stem) else f"its spec fields hash to {key}, not to its name"
        except (TypeError, ValueError) as err:
            problem = f"its spec fields are not a valid run ({err})"
        problem = problem or row_problem(row)
        if problem is None and check:
            problem = "it has no seal (--check changes nothing)"
        if problem is None:
            try:
                text = sealed_row_text(row)
            except (TypeError, ValueError) as err:
                problem = f"its content cannot be sealed ({err})"
        if problem:
            report.refused.append((file, problem))
            continue
        atomic_write_bytes(file, text.encode("utf-8"))
        back = json.loads(file.read_text(encoding="utf-8"))
        if {k: v for k, v in back.items() if k != SEAL_FIELD} != row or seal_problem(back):
            raise RuntimeError(f"sealing {file} changed more than its seal; restore it from version control")
        report.sealed.append(file)
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m dropkit.seal STORE [--check]``; exit 0 when every row is sealed and verifies,
    1 when some row was refused, 2 for a bad command line."""
    parser = argparse.ArgumentParser(prog="python -m dropkit.seal", description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="+", help="a profile's store directory, e.g. results/default")
    parser.add_argument("--check", action="store_true", help="verify only, change nothing")
    args = parser.parse_args(argv)
    status = 0
    for store in args.store:
        try:
            report = seal_store(store, check=args.check)
        except FileNotFoundError as err:
            parser.error(str(err))
        print(f"{store}: sealed {len(report.sealed)}, verified {report.verified}, refused {len(report.refused)}")
        for file, reason in report.refused:
            print(f"refused {file}: {' '.join(reason.split())}", file=sys.stderr)
        status = max(status, 1 if report.refused else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
