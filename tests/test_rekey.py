"""Re-keying a store after the key rule changed: renamed, exact duplicates merged, conflicts kept."""

from __future__ import annotations

import hashlib
import json

from dropkit.rekey import main, rekey_store
from dropkit.seal import seal_store
from dropkit.spec import RunSpec
from dropkit.store import ResultStore


def _old_name(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _put(store: ResultStore, name: str, spec: RunSpec, accuracy: float, **extra) -> None:
    store.runs_dir.mkdir(parents=True, exist_ok=True)
    row = {**spec.to_dict(), "cache_key": name, "test_accuracy": accuracy, "git_revision": name[:7], **extra}
    (store.runs_dir / f"{name}.json").write_text(json.dumps(row))


def test_rekey_renames_merges_and_keeps_conflicts(tmp_path):
    store = ResultStore(tmp_path, "default")
    full = RunSpec("gaussian", "linear", "none", 1.0, query_epochs=1)
    twin = RunSpec("gaussian", "linear", "none", 1.0, query_epochs=2)     # same run, other query length
    other = RunSpec("gaussian", "linear", "none", 1.0, seed=1, query_epochs=2)
    clash = RunSpec("gaussian", "linear", "none", 1.0, seed=1, query_epochs=5)
    kept = RunSpec("gaussian", "linear", "random", 0.5)
    _put(store, _old_name("full"), full, 0.9, seconds=1.0)
    _put(store, _old_name("twin"), twin, 0.9, seconds=2.0)                # provenance differs only
    _put(store, _old_name("other"), other, 0.8)
    _put(store, _old_name("clash"), clash, 0.7)                           # results differ: a conflict
    _put(store, kept.cache_key, kept, 0.6)

    dry = rekey_store(store, dry_run=True)
    assert (len(dry.renamed), len(dry.merged), len(dry.conflicts), dry.unchanged) == (2, 1, 1, 1)
    assert len(list(store.runs_dir.glob("*.json"))) == 5                  # nothing changed

    report = rekey_store(store)
    # files are visited in name order: which twin is renamed and which merged depends on names
    assert sorted(new for _, new in report.renamed) == sorted([full.cache_key, other.cache_key])
    assert [new for _, new in report.merged] == [full.cache_key]
    assert [new for _, new in report.conflicts] == [other.cache_key]
    # renamed rows are written sealed; the row already under its key was written by hand
    # (unsealed): the store trusts it once sealed (python -m dropkit.seal, after a rekey)
    assert len(seal_store(store.path).sealed) == 1
    assert store.keys() == {full.cache_key, other.cache_key, kept.cache_key}
    assert store.read(full.cache_key)["test_accuracy"] == 0.9
    conflicts = list((store.path / "runs-conflicts").glob("*.json"))
    assert len(conflicts) == 1 and json.loads(conflicts[0].read_text())["test_accuracy"] in (0.8, 0.7)
    again = rekey_store(store)
    assert (again.renamed, again.merged, again.conflicts, again.unchanged) == ([], [], [], 3)


def test_rekey_command_exit_codes(tmp_path, capsys):
    store = ResultStore(tmp_path, "default")
    _put(store, _old_name("a"), RunSpec("gaussian", "linear", "none", 1.0), 0.9)
    assert main([str(store.path), "--dry-run"]) == 0
    assert "would rename 1" in capsys.readouterr().out
    assert main([str(store.path)]) == 0 and store.keys() == {RunSpec("gaussian", "linear", "none", 1.0).cache_key}
