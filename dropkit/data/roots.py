"""Where dataset files are searched: the ``root`` argument when given (and only there), else
``$DROPKIT_DATA``, each also with the dataset's conventional sub-folder appended.

An explicit ``root`` that does not hold the dataset is an error naming it, never a silent
fallback to another copy of the data (``$DROPKIT_DATA``, a system folder, a download).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


def _candidate_dirs(root, subdirs: Sequence[str]) -> list[Path]:
    bases = [Path(root)] if root is not None else []
    if root is None and os.environ.get("DROPKIT_DATA"):
        bases.append(Path(os.environ["DROPKIT_DATA"]))
    return [base / sub for base in bases for sub in ("", *subdirs)]


def _find_dir(name: str, root, subdirs: Sequence[str], marker: str, how_to_get: str) -> Path:
    searched = _candidate_dirs(root, subdirs)
    for directory in searched:
        if (directory / marker).exists():
            return directory
    where = ", ".join(str(d) for d in searched) or "nowhere (no root given, $DROPKIT_DATA unset)"
    only = "" if root is None else f" (root={str(root)!r} was given: nothing else is searched)"
    raise FileNotFoundError(f"{name}: no {marker!r} found in {where}{only}. {how_to_get}")
