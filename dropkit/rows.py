"""Result rows: their seal (a digest of their whole content) and the ranges their metrics must lie in.

A row of the result store (:mod:`dropkit.store`) carries ``row_digest``: the hex sha256 of the
canonical JSON (sorted keys, no spaces, ASCII, no NaN) of every other field, spec *and* results.
:meth:`dropkit.store.ResultStore.write` adds it; the store's readers recompute it, so a row whose
numbers were edited, removed, or copied from another run no longer matches its seal and counts
as missing (reported by path). :func:`row_problem` adds checks that a digest cannot make: a row
sealed with metrics out of range (a recall outside [0, 1] or not finite, class counts that do not
sum to ``num_kept``, per-class lists of the wrong length) is refused too. Rows written before rows
were sealed are sealed in place by :mod:`dropkit.seal`.

Pure: plain JSON values in, a digest or a reason out.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from numbers import Real
from typing import Any

__all__ = ["SEAL_FIELD", "row_digest", "seal_problem", "row_problem"]

#: The row field holding the seal.
SEAL_FIELD = "row_digest"

#: Fields of per-class length ``num_classes`` when present (``query_val_recalls`` may be null).
_PER_CLASS = ("class_counts", "class_sizes", "class_names", "test_recalls", "val_recalls", "query_val_recalls")
#: Fields of per-group length when present.
_PER_GROUP = ("group_counts", "test_group_recalls", "query_val_group_recalls")
#: Metric fields whose value may be null as a whole (no query model).
_NULLABLE = ("query_val_recalls", "query_val_group_recalls")


def row_digest(row: Mapping[str, Any]) -> str:
    """Hex sha256 of the canonical JSON of ``row`` without its :data:`SEAL_FIELD`.

    ``row`` holds plain JSON types (as read back from a row file). Raises ``ValueError`` for a
    value JSON cannot hold exactly (NaN, infinity) and ``TypeError`` for a non-JSON type.
    """
    content = {name: value for name, value in row.items() if name != SEAL_FIELD}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def seal_problem(row: Mapping[str, Any]) -> str | None:
    """Why ``row``'s seal does not vouch for it (no seal, or a digest that does not match), or None."""
    seal = row.get(SEAL_FIELD)
    if seal is None:
        return (f"it has no seal ({SEAL_FIELD}): written by hand or by a dropkit older than sealed rows "
                "(seal a store you trust with python -m dropkit.seal <results>/<profile>)")
    try:
        digest = row_digest(row)
    except (TypeError, ValueError) as err:
        return f"its content cannot be sealed ({err})"
    if seal != digest:
        return (f"its content does not match its seal ({SEAL_FIELD} {str(seal)[:12]}..., content "
                f"{digest[:12]}...): edited after it was written?")
    return None


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _fraction_problem(name: str, value) -> str | None:
    """A problem of a metric that must be a finite number in [0, 1], or a (nested) list of them."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = _fraction_problem(f"{name}[{index}]", item)
            if problem:
                return problem
        return None
    if not _is_number(value):
        return f"{name}={value!r} is not a number"
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        return f"{name}={value!r} is not a fraction in [0, 1]"
    return None


def _counts_problem(name: str, value) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                              for v in value):
        return f"{name} is not a list of non-negative integers"
    return None


def _is_metric(name: str) -> bool:
    """Test and validation metrics (fractions): ``test_*``, ``val_*``, ``query_val_*``, and the
    CDB-W recalls per epoch."""
    return name.startswith(("test_", "val_", "query_val_")) or name == "cdbw_val_recalls_per_epoch"


def row_problem(row: Mapping[str, Any]) -> str | None:
    """Why the results of ``row`` cannot be a run's (out of range, inconsistent), or None.

    Checks the fields present (rows of custom run functions hold fewer): every metric
    (``test_*``, ``val_*``, ``query_val_*``, ``cdbw_val_recalls_per_epoch``) is a finite number
    in [0, 1] or a list of them (``query_val_*`` may be null); ``class_counts``/``class_sizes``/
    ``group_counts`` are non-negative integers; per-class lists have ``num_classes`` entries and
    per-group lists one length; ``class_counts`` sum to ``num_kept`` and stay within
    ``class_sizes``, which sum to ``num_train``; ``group_counts`` sum to ``num_kept``;
    ``test_worst_class`` / ``test_gap`` are the min / max - min of ``test_recalls`` (1e-9).
    """
    for name, value in row.items():
        if _is_metric(name) and not (value is None and name in _NULLABLE):
            problem = _fraction_problem(name, value)
            if problem:
                return problem
    for name in ("class_counts", "class_sizes", "group_counts"):
        if name in row:
            problem = _counts_problem(name, row[name])
            if problem:
                return problem
    for name in ("num_classes", "num_kept", "num_train"):
        if name in row and (not isinstance(row[name], int) or isinstance(row[name], bool) or row[name] < 0):
            return f"{name}={row[name]!r} is not a non-negative integer"
    if "num_classes" in row:
        for name in _PER_CLASS:
            if isinstance(row.get(name), list) and len(row[name]) != row["num_classes"]:
                return f"{name} has {len(row[name])} entries, not num_classes={row['num_classes']}"
        for index, recalls in enumerate(row.get("cdbw_val_recalls_per_epoch") or ()):
            if len(recalls) != row["num_classes"]:
                return f"cdbw_val_recalls_per_epoch[{index}] has {len(recalls)} entries, not {row['num_classes']}"
    lengths = {name: len(row[name]) for name in _PER_GROUP if isinstance(row.get(name), list)}
    if len(set(lengths.values())) > 1:
        return f"the per-group lists have different lengths {lengths}"
    if "num_kept" in row:
        for name in ("class_counts", "group_counts"):
            if name in row and sum(row[name]) != row["num_kept"]:
                return f"{name} sum to {sum(row[name])}, not num_kept={row['num_kept']}"
        if "num_train" in row and not row["num_kept"] <= row["num_train"]:
            return f"num_kept={row['num_kept']} exceeds num_train={row['num_train']}"
    if "class_counts" in row and "class_sizes" in row:
        if any(kept > size for kept, size in zip(row["class_counts"], row["class_sizes"])):
            return "class_counts exceed class_sizes"
    if "class_sizes" in row and "num_train" in row and sum(row["class_sizes"]) != row["num_train"]:
        return f"class_sizes sum to {sum(row['class_sizes'])}, not num_train={row['num_train']}"
    recalls = row.get("test_recalls")
    if isinstance(recalls, list) and recalls:
        for name, value in (("test_worst_class", min(recalls)), ("test_gap", max(recalls) - min(recalls))):
            if name in row and abs(row[name] - value) > 1e-9:
                return f"{name}={row[name]!r} is not what test_recalls give ({value!r})"
    return None
