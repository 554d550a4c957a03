"""The result store: one directory per profile, one JSON file per finished run.

Layout under ``<root>/<profile>/``::

    runs/<cache_key>.json     one finished run (a flat JSON object, see :func:`dropkit.runner.run`)
    scores/<query_key>.npz    cached query-model outputs (float arrays), shared by every run
                              that needs the same query training
    locks/<key>.lock          the per-run lock of a run or query training being computed
                              (:meth:`ResultStore.lock`; removed on release, left behind
                              unlocked by a killed process, never blocking)

Crash safety: every file is written to a temporary file in the same directory, flushed with
``fsync`` and moved into place with :func:`os.replace`, which is atomic on POSIX file systems. A
killed writer therefore leaves either the complete file or no file (plus, at worst, a hidden
``.*.tmp`` file that readers never look at). Two workers finishing the same run write the same
name, so the store still holds exactly one row for it. A file that does not parse (truncated by a
disk failure, edited by hand) is skipped with a :class:`UserWarning`, never read as a result;
so is a row whose spec fields no longer hash to its file name (:func:`spec_key`).

Sealed rows: :meth:`ResultStore.write` adds ``row_digest``, a sha256 of the row's whole content
(spec and results, :func:`dropkit.rows.row_digest`). A row whose content no longer matches its
seal (a metric edited, removed or copied from another run), that has no seal, or whose metrics
are out of range (:func:`dropkit.rows.row_problem`) is reported by path (a ``UserWarning``) and
counts as missing: ``dropkit results`` leaves it out and a sweep computes the run again. Rows
written before rows were sealed are sealed in place by ``python -m dropkit.seal <store>``.

Score caches are keyed and sealed the same way: each ``.npz`` holds its query key and a digest
of its arrays (:meth:`ResultStore.save_scores`); a cache with another key, a digest that does
not match (scores permuted or edited) or non-finite values is reported by path and recomputed.

Safety: results are JSON, scores are ``.npz`` loaded with ``allow_pickle=False``; nothing in the
store is ever unpickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dropkit.rows import SEAL_FIELD, row_digest, row_problem, seal_problem

__all__ = ["ResultStore", "KEY_PATTERN", "MergeReport", "atomic_write_bytes", "default_results_dir", "merge_rows",
           "scores_digest", "sealed_row_text", "spec_key", "summary_table"]

#: A cache key is the hex sha256 of a run's canonical spec (see ``RunSpec.cache_key``).
#: Use it with ``fullmatch`` (``$`` in ``re.match`` would also accept a trailing newline).
KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
_PROFILE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _check_key(key: str, name: str = "cache_key") -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise ValueError(f"{name}={key!r} is not a 64-character lowercase hex sha256 digest")
    return key


def _json_default(value: Any) -> Any:
    """Turn numpy values into plain JSON types (arrays → lists, numpy scalars → Python scalars)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a result row")


def _plain(value: Any) -> Any:
    """Recursively convert a row to strict-JSON types: NaN/inf floats become None (JSON null)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, then restore it at once
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically: temp file in the same directory, fsync, replace.

    The file gets the mode an ordinary ``open(path, "w")`` would give it (``0o666`` less the
    umask), not the ``0o600`` of :func:`tempfile.mkstemp`, so a shared results directory stays
    readable by its group.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    # Make the rename itself durable (directory entry), where the platform allows it.
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _run_spec_class():
    """:class:`RunSpec`, imported late (its module imports this one)."""
    from dropkit.spec import RunSpec

    return RunSpec


def sealed_row_text(row: Mapping[str, Any]) -> str:
    """A row file's text: ``row`` (plain JSON types, no seal) with its seal
    (:func:`dropkit.rows.row_digest`), keys sorted; the one layout of every row file."""
    return json.dumps({**row, SEAL_FIELD: row_digest(row)}, sort_keys=True, allow_nan=False)


def spec_key(row: Mapping[str, Any]) -> str | None:
    """The cache key that the spec fields of a result row hash to, or None if it has none.

    A row written by ``run`` holds every :class:`RunSpec` field, so this equals the key it was
    stored under unless a field was edited afterwards. Raises ``ValueError``/``TypeError`` when
    the row has spec fields that do not make a valid spec. Rows of custom run functions with no
    spec field at all are not checked (None).
    """
    spec_class = _run_spec_class()
    names = {spec_field.name for spec_field in dataclasses.fields(spec_class)}
    if not names & row.keys():
        return None
    return spec_class.from_dict(row).cache_key


def default_results_dir() -> Path:
    """The results root used when none is given (the ``dropkit`` command's ``--results-dir``).

    ``$DROPKIT_RESULTS`` when set; else the ``results/`` folder of the source checkout this
    package is imported from (the folder above ``dropkit/`` that holds ``pyproject.toml``), so a
    checkout finds its results from any working directory; else (an installed package)
    ``./results`` of the working directory. Returned absolute, so messages name it exactly.
    """
    if os.environ.get("DROPKIT_RESULTS"):
        return Path(os.environ["DROPKIT_RESULTS"]).absolute()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "results").is_dir():
        return checkout / "results"
    return Path("results").absolute()


class ResultStore:
    """Results of one profile under ``root/profile``.

    Args:
        root: the results root directory (e.g. ``"results"``); created on first write.
        profile: the profile name, used as a sub-directory (letters, digits, ``_ . -``).

    Nothing is created on construction; :meth:`check_writable` (called by every write) creates
    the directories and fails with a clear :class:`PermissionError` if that is impossible.
    A ``root`` (or ``root/profile``) that exists as a plain file raises ``NotADirectoryError``.
    """

    def __init__(self, root: str | os.PathLike, profile: str):
        if not isinstance(profile, str) or not _PROFILE_PATTERN.fullmatch(profile):
            raise ValueError(
                f"profile={profile!r} cannot name a results directory "
                "(use letters, digits, '_', '.', '-')"
            )
        if not isinstance(root, (str, os.PathLike)) or str(root) == "":
            raise ValueError(f"results_dir={root!r} is not a path")
        self.root = Path(root)
        for path in (self.root, self.root / profile):
            if path.exists() and not path.is_dir():
                raise NotADirectoryError(f"results directory {path} is a file, not a directory")
        self.profile = profile
        self.path = self.root / profile
        self.runs_dir = self.path / "runs"
        self.scores_dir = self.path / "scores"

    def __repr__(self) -> str:
        return f"ResultStore({str(self.root)!r}, {self.profile!r})"

    # ------------------------------------------------------------------ validation
    def check_writable(self) -> None:
        """Create the store's directories and prove a file can be written there.

        Raises:
            PermissionError: naming the path, if the directories cannot be created or written.
        """
        for directory in (self.runs_dir, self.scores_dir):
            try:
                directory.mkdir(parents=True, exist_ok=True)
                fd, probe = tempfile.mkstemp(dir=directory, prefix=".probe.", suffix=".tmp")
                os.close(fd)
                os.unlink(probe)
            except OSError as err:
                reason = err.strerror or type(err).__name__
                raise PermissionError(
                    f"results directory {directory} is not writable ({reason})"
                ) from None

    def check_location(self) -> None:
        """Check, creating nothing, that :meth:`check_writable` can create the store here: the
        nearest existing folder above each store directory is a directory and writable.

        Raises:
            PermissionError: naming the path that is a plain file or not writable.
        """
        for directory in (self.runs_dir, self.scores_dir):
            existing = directory
            while not existing.exists() and existing != existing.parent:
                if existing.is_symlink():  # a dangling link: makedirs would fail on it
                    break
                existing = existing.parent
            if existing.exists() and not existing.is_dir():
                raise PermissionError(f"results directory {directory} is not writable "
                                      f"({existing} is a file, not a directory)")
            if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
                raise PermissionError(f"results directory {directory} is not writable "
                                      f"(permission denied at {existing})")

    # ------------------------------------------------------------------ run rows
    def run_path(self, cache_key: str) -> Path:
        """Path of the JSON file holding the run with this cache key."""
        return self.runs_dir / f"{_check_key(cache_key)}.json"

    def write(self, row: Mapping[str, Any]) -> Path:
        """Store one finished run atomically; returns the file written.

        Args:
            row: a flat mapping with at least ``cache_key`` (64 hex chars); values may be JSON
                types, numpy scalars or arrays (stored as lists), tuples (stored as lists).
                NaN and infinite floats are stored as JSON ``null`` (strict JSON).

        The row is stored sealed (``row_digest`` of its content; a ``row_digest`` it brings is
        replaced). Raises ``ValueError`` for a row the store would not read back: its spec
        fields do not hash to its ``cache_key``, or its metrics are out of range
        (:func:`dropkit.rows.row_problem`).
        """
        if not isinstance(row, Mapping) or "cache_key" not in row:
            raise ValueError("row must be a mapping with a 'cache_key' entry")
        path = self.run_path(row["cache_key"])
        plain = json.loads(json.dumps({k: v for k, v in _plain(row).items() if k != SEAL_FIELD},
                                      allow_nan=False, default=_json_default))
        try:
            key = spec_key(plain)
        except (TypeError, ValueError) as err:
            raise ValueError(f"refusing to store row {row['cache_key']}: its spec fields are not a valid "
                             f"run ({' '.join(str(err).split())})") from None
        if key is not None and key != row["cache_key"]:
            raise ValueError(f"row's spec fields hash to {key}, not to its cache_key {row['cache_key']}: "
                             "refusing to store it under a key it does not have")
        problem = row_problem(plain)
        if problem is not None:
            raise ValueError(f"refusing to store row {row['cache_key']}: {problem}")
        payload = sealed_row_text(plain).encode("utf-8")
        self.check_writable()
        atomic_write_bytes(path, payload)
        return path

    def _read_file(self, path: Path) -> dict | None:
        """Parse one run file, or warn and return None if it is not a complete valid row."""
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            warnings.warn(f"ignoring unreadable result file {path}: {err}", stacklevel=3)
            return None
        if not isinstance(row, dict) or row.get("cache_key") != path.stem:
            warnings.warn(
                f"ignoring result file {path}: it does not hold a row with cache_key {path.stem}",
                stacklevel=3,
            )
            return None
        try:
            key = spec_key(row)
        except (TypeError, ValueError) as err:
            warnings.warn(f"ignoring result file {path}: its spec fields are not a valid run "
                          f"({' '.join(str(err).split())}); the run counts as missing", stacklevel=3)
            return None
        if key is not None and key != path.stem:
            warnings.warn(
                f"ignoring result file {path}: its spec fields hash to {key}, not to its file "
                "name (edited after it was written?); the run counts as missing", stacklevel=3,
            )
            return None
        problem = seal_problem(row) or row_problem(row)
        if problem is not None:
            warnings.warn(f"ignoring result file {path}: {problem}; the run counts as missing",
                          stacklevel=3)
            return None
        del row[SEAL_FIELD]
        return row

    # ------------------------------------------------------------------ per-run locks
    def lock_path(self, key: str) -> Path:
        """Path of the lock file of a run (``cache_key``) or query training (``query_key``)."""
        return self.path / "locks" / f"{_check_key(key, 'key')}.lock"

    @contextlib.contextmanager
    def lock(self, key: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the exclusive per-run lock of ``key`` (a cache or query key) in a ``with`` block.

        Yields True once this process holds the lock; with ``wait=False`` it yields False at once
        when another process holds it (the block then must not compute the run). A process that
        gets the lock should look for the row again: the holder it waited for may have stored it.

        The lock is an ``fcntl.flock`` on ``<store>/locks/<key>.lock``: the kernel releases it
        when its process dies (even by SIGKILL), so a killed sweep never leaves a lock that
        blocks. The file is removed on release. Across machines it holds where the shared file
        system supports ``flock`` (NFSv4, Lustre mounted with ``flock``).
        """
        import fcntl

        path = self.lock_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PermissionError(f"results directory {path.parent} is not writable "
                                  f"({err.strerror or type(err).__name__})") from None
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                yield False
                return
            except BaseException:
                os.close(fd)
                raise
            try:  # the previous holder may have removed the file we waited on: lock the new one
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            yield True
        finally:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            os.close(fd)

    def read(self, cache_key: str) -> dict | None:
        """The stored row for ``cache_key``, or None if absent or unreadable (with a warning)."""
        path = self.run_path(cache_key)
        if not path.is_file():
            return None
        return self._read_file(path)

    def _run_files(self) -> list[Path]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(p for p in self.runs_dir.glob("*.json") if KEY_PATTERN.fullmatch(p.stem))

    def keys(self) -> set[str]:
        """Cache keys of every complete, valid row in the store (unreadable files excluded)."""
        return {row["cache_key"] for row in self.rows()}

    def __contains__(self, cache_key: str) -> bool:
        return self.read(cache_key) is not None

    def __len__(self) -> int:
        return len(self.rows())

    def rows(self) -> list[dict]:
        """Every valid row, sorted by cache key; unreadable files are skipped with a warning."""
        rows = []
        for path in self._run_files():
            row = self._read_file(path)
            if row is not None:
                rows.append(row)
        return rows

    def frame(self) -> pd.DataFrame:
        """The store as a tidy table: one row per run, one column per row entry.

        Per-class quantities (``test_recalls``, ``val_recalls``, ``class_counts`` ...) are list
        columns; the robustness summaries (``test_accuracy``, ``test_worst_class`` ...) are
        scalar columns. Rows are sorted by cache key, so the order is stable.
        """
        rows = self.rows()
        if not rows:
            return pd.DataFrame()
        return pd.DataFrame.from_records(rows).reset_index(drop=True)

    # ------------------------------------------------------------------ query scores
    def scores_path(self, query_key: str) -> Path:
        """Path of the ``.npz`` file caching the query outputs for ``query_key``."""
        return self.scores_dir / f"{_check_key(query_key, 'query_key')}.npz"

    def save_scores(self, query_key: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """Cache numeric arrays (e.g. ``scores`` float64 [N], ``val_recalls`` float64 [K]) atomically.

        The file also holds the query key (``__query_key__``) and a digest of the arrays
        (``__digest__``, :func:`scores_digest`), which :meth:`load_scores` checks. Raises
        ``ValueError`` for a non-numeric or non-finite array (a cache is never written to be
        refused when read).
        """
        path = self.scores_path(query_key)
        if not arrays:
            raise ValueError("arrays must hold at least one array")
        checked = {}
        for name, value in arrays.items():
            array = np.asarray(value)
            if name in _CACHE_FIELDS or not isinstance(name, str) or name.startswith("__"):
                raise ValueError(f"arrays[{name!r}]: names starting with '__' are the cache's own")
            if array.dtype.kind not in "biuf":
                raise ValueError(
                    f"arrays[{name!r}] has dtype {array.dtype}; only numeric arrays can be cached"
                )
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise ValueError(f"arrays[{name!r}] holds {int((~np.isfinite(array)).sum())} NaN/inf "
                                 "values; a score cache holds finite numbers only")
            checked[name] = array
        self.check_writable()
        buffer = io.BytesIO()
        np.savez(buffer, **checked, __query_key__=np.array(query_key),
                 __digest__=np.array(scores_digest(checked)))
        atomic_write_bytes(path, buffer.getvalue())
        return path

    def load_scores(self, query_key: str) -> dict[str, np.ndarray] | None:
        """The cached arrays for ``query_key``, or None if absent or not to be trusted.

        A cache that does not parse, holds another query key or none, whose arrays do not match
        their digest (permuted or edited) or hold NaN/inf values is reported by path (a
        ``UserWarning``) and treated as absent, so the query is computed again and the file
        replaced.
        """
        path = self.scores_path(query_key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except Exception as err:  # zipfile/ValueError/OSError: any corruption means "recompute"
            warnings.warn(f"ignoring unreadable score cache {path}: {err}; it is recomputed", stacklevel=2)
            return None
        stored_key = arrays.pop("__query_key__", None)
        stored_digest = arrays.pop("__digest__", None)
        problem = None
        if stored_key is None or stored_digest is None:
            problem = "it records no query key or digest (written by an older dropkit or by hand)"
        elif str(stored_key) != query_key:
            problem = f"it holds the outputs of query {str(stored_key)[:64]!r}, not of {query_key}"
        elif any(array.dtype.kind not in "biuf" for array in arrays.values()):
            problem = "it holds non-numeric arrays"
        elif any(array.dtype.kind == "f" and not np.isfinite(array).all() for array in arrays.values()):
            problem = "it holds NaN/inf values"
        elif str(stored_digest) != scores_digest(arrays):
            problem = "its arrays do not match their digest (edited or permuted after it was written?)"
        if problem is not None:
            warnings.warn(f"ignoring score cache {path}: {problem}; it is recomputed", stacklevel=2)
            return None
        return arrays


#: Arrays of a score cache that are not query outputs: its key and digest.
_CACHE_FIELDS = ("__query_key__", "__digest__")


def scores_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """Hex sha256 of named arrays: for each name in sorted order, the name, dtype, shape and the
    C-order bytes of the array."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class MergeReport:
    """What :func:`merge_rows` did: ``copied`` rows new to the target, ``already`` rows the target
    held identical (counts)."""

    copied: int
    already: int


def merge_rows(cache_keys: Iterable[str], source: ResultStore, target: ResultStore) -> MergeReport:
    """Copy the rows ``cache_keys`` from ``source`` into ``target``, all or nothing.

    The procedure by which a sweep computed in a separate result directory (e.g. a chunk of new
    seeds from a clean worktree) joins a shipped store: only complete, never overwriting.

    Args:
        cache_keys: the runs to copy (e.g. every ``RunSpec.cache_key`` of the sweep's selection).
        source, target: result stores (their profiles may differ only if you mean it; rows carry
            their own spec).

    Raises ``ValueError`` and copies nothing when a run is not stored as a valid sealed row in
    ``source`` (the chunk is not complete), or when ``target`` holds a file for a run that is not
    the same row (a different result, or an unreadable file): a stored row is never replaced. Rows
    are copied with their provenance (revision, processor, kernels) unchanged and written sealed by
    :meth:`ResultStore.write`; a row ``target`` already holds identical is left as it is.
    """
    keys = list(dict.fromkeys(cache_keys))
    rows, missing, conflicts = {}, [], []
    with warnings.catch_warnings(record=True) as seen:  # each problem is named in the error below
        warnings.simplefilter("always")
        for key in keys:
            row = source.read(key)
            if row is None:
                missing.append(key)
                continue
            if target.run_path(key).exists():
                if target.read(key) != row:
                    conflicts.append(key)
                continue
            rows[key] = row
    if missing:
        raise ValueError(f"{len(missing)} of the {len(keys)} runs are not stored as valid rows in {source.path} "
                         f"(first: {missing[0]}{_first_warning(seen)}): the sweep there is not complete; "
                         "nothing was copied")
    if conflicts:
        raise ValueError(f"{len(conflicts)} of the {len(keys)} runs are stored in {target.path} as a different "
                         f"row or an unreadable file (first: {target.run_path(conflicts[0])}{_first_warning(seen)}); "
                         "a stored row is never replaced: nothing was copied")
    target.check_writable()
    for row in rows.values():
        target.write(row)
    return MergeReport(copied=len(rows), already=len(keys) - len(rows))


def _first_warning(seen: list) -> str:
    return f"; {seen[0].message}" if seen else ""


#: Columns always shown by :func:`summary_table` (when present), in this order.
SUMMARY_KEYS: tuple[str, ...] = ("dataset", "model", "protocol", "method", "density")
#: Run fields averaged over (never configuration keys).
_AVERAGED_KEYS: tuple[str, ...] = ("seed", "schema_version")
#: Test metrics (fractions in the rows) -> their percent columns in :func:`summary_table`.
SUMMARY_METRICS: dict[str, str] = {
    "test_accuracy": "acc %", "test_worst_class": "worst class %", "test_gap": "gap %",
    "test_worst_group": "worst group %",
}


def _cell(value: Any, default: Any = None) -> Any:
    """A groupable table cell: missing -> the field's default (or "-"), lists/dicts -> JSON text."""
    if value is None or (isinstance(value, float) and value != value):
        value = default
    if value is None:
        return "-"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))
    return value


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of the test metrics, in percent, one row per configuration.

    A configuration is every run field except the seed: two runs that differ in any other spec
    field (``drop_over``, ``epochs``, ``dataset_options`` ...) are never averaged together. A
    field missing from older rows counts as its default (e.g. ``drop_over="classes"``).

    Args:
        frame: rows of :meth:`ResultStore.frame` (one per run).

    Returns:
        Columns: :data:`SUMMARY_KEYS`, then the other run fields that vary across ``frame``,
        ``runs`` (number of seeds), and the mean over seeds of each available test metric as a
        percentage (:data:`SUMMARY_METRICS`: ``acc %``, ``worst class %``, ``gap %`` (max -
        min class accuracy, percentage points), ``worst group %``). Empty input gives an empty
        table.
    """
    if frame.empty:
        return pd.DataFrame()
    fields = dataclasses.fields(_run_spec_class())
    defaults = {f.name: None if f.default is dataclasses.MISSING else f.default for f in fields}
    names = [k for k in SUMMARY_KEYS if k in frame]
    names += [f.name for f in fields if f.name in frame and f.name not in names + list(_AVERAGED_KEYS)]
    table = pd.DataFrame(index=frame.index)
    for name in names:
        table[name] = [_cell(value, defaults.get(name)) for value in frame[name]]
    keys = [k for k in names if k in SUMMARY_KEYS or table[k].astype(str).nunique() > 1]
    table = table[keys]
    metrics = {m: label for m, label in SUMMARY_METRICS.items()
               if m in frame and frame[m].notna().any()}
    for metric, label in metrics.items():
        table[label] = 100.0 * pd.to_numeric(frame[metric], errors="coerce")
    table["runs"] = 1
    aggregations = {"runs": ("runs", "sum"), **{label: (label, "mean") for label in metrics.values()}}
    summary = table.groupby(keys, sort=False).agg(**aggregations).reset_index()
    mixed = lambda column: column if column.map(type).nunique() == 1 else column.astype(str)  # noqa: E731
    return summary.sort_values(keys, key=mixed, kind="stable").reset_index(drop=True)
