"""Where dataset files are searched: the ``root`` argument, then ``$DROPKIT_DATA``, each also
with the dataset's conventional sub-folder appended.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


def _candidate_dirs(root, subdirs: Sequence[str]) -> list[Path]:
    bases = [Path(root)] if root is not None else []
    if os.environ.get("DROPKIT_DATA"):
        bases.append(Path(os.environ["DROPKIT_DATA"]))
    return [base / sub for base in bases for sub in ("", *subdirs)]


def _find_dir(name: str, root, subdirs: Sequence[str], marker: str, how_to_get: str) -> Path:
    searched = _candidate_dirs(root, subdirs)
    for directory in searched:
        if (directory / marker).exists():
            return directory
    where = ", ".join(str(d) for d in searched) or "nowhere (no root given, $DROPKIT_DATA unset)"
    raise FileNotFoundError(f"{name}: no {marker!r} found in {where}. {how_to_get}")
