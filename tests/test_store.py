"""The result store: atomic JSON rows, crash safety, concurrent writers, score cache."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os

import numpy as np
import pandas as pd
import pytest

from dropkit.store import ResultStore


def key_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_row(name: str, **extra) -> dict:
    row = {"cache_key": key_of(name), "name": name, "test_recalls": [0.5, 1.0], "fraction": 0.5}
    row.update(extra)
    return row


def test_round_trip_converts_numpy_and_nan(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    row = make_row(
        "a",
        ratios=np.array([0.25, np.nan, 1.0]),  # not a metric: a NaN recall is refused (test_hardening)
        class_counts=np.array([3, 4], dtype=np.int64),
        count=np.int64(7),
        milestones=(5, 8),
        worst=float("inf"),
    )
    path = store.write(row)
    assert path == tmp_path / "smoke" / "runs" / f"{key_of('a')}.json"
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text  # strict JSON
    back = store.read(key_of("a"))
    assert back["ratios"] == [0.25, None, 1.0]
    assert back["class_counts"] == [3, 4]
    assert back["count"] == 7 and isinstance(back["count"], int)
    assert back["milestones"] == [5, 8]
    assert back["worst"] is None
    assert key_of("a") in store and key_of("b") not in store


def test_frame_is_one_row_per_run_with_list_columns(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    assert store.frame().empty
    for name in ["x", "y", "z"]:
        store.write(make_row(name, test_accuracy=0.5 + len(name) / 10))
    store.write(make_row("y", test_accuracy=0.9))  # rewrite of the same run: still one row
    frame = store.frame()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 3 == len(store)
    assert sorted(frame["name"]) == ["x", "y", "z"]
    assert frame.loc[frame["name"] == "y", "test_accuracy"].item() == 0.9
    assert all(value == [0.5, 1.0] for value in frame["test_recalls"])
    assert list(frame["cache_key"]) == sorted(frame["cache_key"])  # stable order


def test_failed_write_leaves_no_file_and_keeps_old_row(tmp_path, monkeypatch):
    store = ResultStore(tmp_path, "smoke")
    store.write(make_row("a", value=1))

    def crash(src, dst):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.write(make_row("a", value=2))
    with pytest.raises(OSError, match="simulated crash"):
        store.write(make_row("b", value=3))
    monkeypatch.undo()
    assert store.read(key_of("a"))["value"] == 1
    assert store.read(key_of("b")) is None
    assert sorted(p.name for p in store.runs_dir.iterdir()) == [f"{key_of('a')}.json"]


def test_truncated_file_is_ignored_with_a_warning(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    store.write(make_row("good"))
    bad = store.write(make_row("bad"))
    payload = bad.read_bytes()
    bad.write_bytes(payload[: len(payload) // 2])
    with pytest.warns(UserWarning, match="ignoring unreadable result file"):
        rows = store.rows()
    assert [row["name"] for row in rows] == ["good"]
    with pytest.warns(UserWarning):
        assert store.keys() == {key_of("good")}
    with pytest.warns(UserWarning):
        assert key_of("bad") not in store  # so a resumed sweep re-runs it


def test_file_whose_content_does_not_match_its_name_is_ignored(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    store.write(make_row("a"))
    # A valid JSON row copied under another key (e.g. by hand) is not trusted.
    wrong = store.runs_dir / f"{key_of('b')}.json"
    wrong.write_text(json.dumps(make_row("a")))
    (store.runs_dir / f"{key_of('c')}.json").write_text("[1, 2, 3]")
    with pytest.warns(UserWarning, match="does not hold a row"):
        assert [r["name"] for r in store.rows()] == ["a"]


def test_leftover_temporary_files_are_never_read(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    store.write(make_row("a"))
    (store.runs_dir / f".{key_of('b')}.json.abc123.tmp").write_text('{"cache_key": "half')
    (store.runs_dir / "notes.json").write_text("{}")  # not a cache-key name
    assert [r["name"] for r in store.rows()] == ["a"]


def _write_many(args):
    root, worker, names = args
    store = ResultStore(root, "smoke")
    for name in names:
        store.write(make_row(name, worker=worker, payload=list(range(200))))
    return worker


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path):
    # 4 processes, 40 rows each; every name is written by two different processes.
    names = [f"run-{i}" for i in range(80)]
    jobs = [(str(tmp_path), w, names[(w % 2) * 40 : (w % 2) * 40 + 40][:: 1 if w < 2 else -1])
            for w in range(4)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert sorted(pool.map(_write_many, jobs)) == [0, 1, 2, 3]
    store = ResultStore(tmp_path, "smoke")
    frame = store.frame()
    assert len(frame) == 80
    assert sorted(frame["name"]) == sorted(names)
    assert frame["cache_key"].is_unique
    assert all(len(payload) == 200 for payload in frame["payload"])
    assert [p for p in store.runs_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_unwritable_results_dir_is_a_clear_error_and_creates_nothing(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = ResultStore(blocker / "results", "smoke")
    with pytest.raises(PermissionError, match=r"results directory .*a-file.* is not writable"):
        store.write(make_row("a"))
    with pytest.raises(PermissionError, match="not writable"):
        store.save_scores(key_of("q"), {"scores": np.zeros(3)})
    assert blocker.read_text() == "not a directory"
    assert store.frame().empty


@pytest.mark.parametrize("profile", ["", "../up", "a/b", ".hidden", 3, "smoke\n"])
def test_bad_profile_name(tmp_path, profile):
    with pytest.raises(ValueError, match="profile="):
        ResultStore(tmp_path, profile)


@pytest.mark.parametrize("key", ["abc", "G" * 64, key_of("x").upper(), None, key_of("x") + "\n"])
def test_bad_cache_key(tmp_path, key):
    store = ResultStore(tmp_path, "smoke")
    with pytest.raises(ValueError, match="cache_key"):
        store.write({"cache_key": key})
    assert not store.path.exists()


def test_row_without_cache_key_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="cache_key"):
        ResultStore(tmp_path, "smoke").write({"density": 0.5})


def test_score_cache_round_trip_and_rejects_objects(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    qkey = key_of("query")
    assert store.load_scores(qkey) is None
    scores = np.linspace(0, 1, 7)
    recalls = np.array([0.5, 0.75], dtype=np.float64)
    store.save_scores(qkey, {"scores": scores, "val_recalls": recalls})
    loaded = store.load_scores(qkey)
    assert set(loaded) == {"scores", "val_recalls"}
    np.testing.assert_array_equal(loaded["scores"], scores)
    assert loaded["scores"].dtype == np.float64
    with pytest.raises(ValueError, match=r"arrays\['bad'\] has dtype object"):
        store.save_scores(key_of("other"), {"bad": np.array([{"a": 1}], dtype=object)})
    assert store.load_scores(key_of("other")) is None


def test_corrupt_score_cache_is_ignored_with_a_warning(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    qkey = key_of("query")
    path = store.save_scores(qkey, {"scores": np.arange(5.0)})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.warns(UserWarning, match="ignoring unreadable score cache"):
        assert store.load_scores(qkey) is None


def test_pickled_npz_is_never_loaded(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    qkey = key_of("query")
    store.check_writable()
    with open(store.scores_path(qkey), "wb") as handle:
        np.savez(handle, evil=np.array([object()], dtype=object))
    with pytest.warns(UserWarning, match="ignoring unreadable score cache"):
        assert store.load_scores(qkey) is None


# ----------------------------------------------------------------- issue 14: a store that checks itself


def spec_row(**fields) -> dict:
    """A row as ``run`` writes it: every spec field, the cache key, a metric."""
    from dropkit.spec import RunSpec

    spec = RunSpec(dataset="gaussian", model="mlp", protocol="random", density=0.3, seed=0,
                   epochs=1, device="cpu", **fields)
    return {**spec.to_dict(), "cache_key": spec.cache_key, "test_accuracy": 0.5}


def test_a_row_whose_spec_was_edited_is_reported_and_treated_as_missing(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    row = spec_row()
    path = store.write(row)
    assert store.read(row["cache_key"]) is not None
    path.write_text(path.read_text().replace('"density": 0.3', '"density": 0.5'))
    with pytest.warns(UserWarning, match="spec fields hash to .* not to its file name"):
        assert store.read(row["cache_key"]) is None
    with pytest.warns(UserWarning, match="counts as missing"):
        assert store.keys() == set() and store.frame().empty
    path.write_text(path.read_text().replace('"density": 0.5', '"density": "lots"'))
    with pytest.warns(UserWarning, match="spec fields are not a valid run"):
        assert row["cache_key"] not in store


def test_every_shipped_row_verifies_against_its_file_name():
    from pathlib import Path

    from dropkit.store import spec_key

    runs = Path(__file__).resolve().parents[1] / "results" / "default" / "runs"
    files = sorted(runs.glob("*.json"))
    assert len(files) > 100
    for file in files:
        assert spec_key(json.loads(file.read_text())) == file.stem, file.name


def test_files_get_the_umask_mode_not_0600(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    old = os.umask(0o022)
    try:
        path = store.write(make_row("a"))
        scores = store.save_scores(key_of("q"), {"scores": np.zeros(3)})
        os.umask(0o077)
        private = store.write(make_row("b"))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert scores.stat().st_mode & 0o777 == 0o644
    assert private.stat().st_mode & 0o777 == 0o600


def _hold_lock(root, key, ready, release):
    store = ResultStore(root, "smoke")
    with store.lock(key) as held:
        assert held
        ready.set()
        release.wait(30)


def test_run_lock_excludes_other_processes_and_dies_with_its_holder(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    key = key_of("a")
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(tmp_path, key, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with store.lock(key, wait=False) as held:
            assert held is False  # another process computes it
        holder.kill()  # SIGKILL: its flock dies with it
        holder.join(30)
        with store.lock(key, wait=False) as held:
            assert held is True
            assert store.lock_path(key).exists()
        assert not store.lock_path(key).exists()  # removed on release
        with store.lock(key) as held:  # and free again
            assert held
    finally:
        # Never set() the event after SIGKILL: the killed waiter leaves the event's condition
        # waiting for an acknowledgement that never comes, and set() would block forever.
        if holder.is_alive():
            holder.kill()
        holder.join(30)
