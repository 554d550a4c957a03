"""Issue 14 (hardening): the items that have no better home -- book parameters, notebooks'
progress bars, IPython as an optional dependency of show_figure."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dropkit.book import CHAPTERS, build_book, chapter_parameters, main, parse_value

ROOT = Path(__file__).resolve().parents[1]


def test_every_chapter_has_a_parameters_cell_with_profile():
    for chapter in CHAPTERS:
        assert chapter_parameters(ROOT, chapter)[0] == "profile", chapter


def test_book_refuses_an_unknown_parameter_before_running_anything(tmp_path, capsys):
    code = main(["--root", str(ROOT), "--profile", "smoke", "--chapter", "03_drop_evaluation",
                 "-p", "seed", "5", "--no-render"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: parameter 'seed' is not a parameter of chapter 03_drop_evaluation "
                   "(its parameters: profile, dataset, model, strategy, densities, seeds, device, "
                   "results_dir, workers, data_root, reference)"]
    assert not (ROOT / "book" / "generated" / ".03_drop_evaluation.input.ipynb").exists()
    # 'seed' is a parameter of the theory chapter, but not of every chapter of a whole-book build
    with pytest.raises(ValueError, match="'seed' is not a parameter of chapter 00_results"):
        build_book(ROOT, "smoke", parameters={"seed": 5}, render=False)
    assert main(["--profile", "smoke", "-p", "profile", "paper"]) == 2


def test_book_parameter_values():
    assert parse_value("5") == 5 and parse_value("0.5") == 0.5 and parse_value("[0, 1]") == [0, 1]
    assert parse_value("None") is None and parse_value("True") is True
    assert parse_value("el2n") == "el2n"


def test_notebooks_show_the_sweep_progress_bar():
    """Long sweeps run from a chapter show their progress (issue 14, item 16)."""
    for chapter in CHAPTERS:
        tree = ast.parse((ROOT / "notebooks" / f"{chapter}.py").read_text())
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and getattr(node.func, "id", None) == "chapter_results"]
        for call in calls:
            progress = [k.value for k in call.keywords if k.arg == "progress"]
            assert progress and getattr(progress[0], "value", None) is True, chapter


def test_publishing_without_ipython_is_a_clear_error():
    """Item 18: IPython is a dependency of the book extra, not of the library."""
    code = ("import sys; sys.modules['IPython'] = None; sys.modules['IPython.display'] = None\n"
            "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt\n"
            "from dropkit.publish import publish_figure, show_markdown\n"
            "for call in (lambda: publish_figure('x', plt.figure(), chapter='01_theory', profile='smoke'), lambda: show_markdown('x')):\n"
            "    try:\n        call()\n"
            "    except ImportError as e:\n        print(e)\n")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("publishing into a notebook needs IPython (pip install 'dropkit[book]')") == 2


# ----------------------------------------------------------------- sweeps (items 7, 10, 11, 13)

TWO_SWEEPS_SCRIPT = """
import json, os, sys, time
from pathlib import Path
from dropkit.spec import RunSpec
from dropkit.store import ResultStore
from dropkit.sweep import sweep

def slow_run(spec, store, *, data_root=None):
    with open(os.path.join(sys.argv[1], "started.log"), "a") as log:
        log.write(spec.cache_key + "\\n")
    time.sleep(0.3)
    store.write({**spec.to_dict(), "cache_key": spec.cache_key, "pid": os.getpid()})

if __name__ == "__main__":
    go = Path(sys.argv[1]) / "go"
    (Path(sys.argv[1]) / f"ready-{os.getpid()}").touch()
    while not go.exists():
        time.sleep(0.01)
    specs = [RunSpec("gaussian", "linear", "random", 0.5, seed=s) for s in range(8)]
    report = sweep(specs, ResultStore(sys.argv[1], "smoke"), run_function=slow_run, progress=False)
    print(json.dumps({"ran": report.ran, "found": report.found, "skipped": report.skipped}))
"""


def test_two_sweeps_on_one_store_compute_every_run_once_and_say_so(tmp_path):
    """Item 10: 8 runs, two sweeps at once: 8 trainings in all, and honest reports."""
    import json

    script = tmp_path / "two_sweeps.py"
    script.write_text(TWO_SWEEPS_SCRIPT)
    root = tmp_path / "results"
    root.mkdir()
    processes = [subprocess.Popen([sys.executable, str(script), str(root)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    deadline = time.monotonic() + 60
    while len(list(root.glob("ready-*"))) < 2:  # both imported: start them together
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
        time.sleep(0.01)
    (root / "go").touch()
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    started = (root / "started.log").read_text().split()
    assert len(started) == len(set(started)) == 8  # no run computed twice
    assert sum(r["ran"] for r in reports) == 8
    assert all(r["ran"] + r["found"] + r["skipped"] == 8 for r in reports)
    assert all(r["ran"] < 8 for r in reports)  # they shared the work
    from dropkit.store import ResultStore

    assert len(ResultStore(root, "smoke").rows()) == 8
    assert not any((root / "smoke" / "locks").iterdir())  # every lock file removed on release


def fake_run(spec, store, *, data_root=None):
    store.write({**spec.to_dict(), "cache_key": spec.cache_key, "test_accuracy": spec.density})


def test_a_resumed_sweep_reruns_a_row_whose_spec_was_edited(tmp_path):
    """Item 11: the edited row is not counted as done."""
    from dropkit.spec import RunSpec
    from dropkit.store import ResultStore
    from dropkit.sweep import sweep

    store = ResultStore(tmp_path, "smoke")
    specs = [RunSpec("gaussian", "linear", "random", 0.3, seed=s) for s in range(3)]
    sweep(specs, store, run_function=fake_run, progress=False)
    path = store.run_path(specs[1].cache_key)
    path.write_text(path.read_text().replace('"density": 0.3', '"density": 0.5'))
    with pytest.warns(UserWarning, match="spec fields hash to"):
        report = sweep(specs, store, run_function=fake_run, progress=False)
    assert (report.skipped, report.ran, report.found) == (2, 1, 0)
    assert store.read(specs[1].cache_key)["density"] == 0.3


def test_sweep_on_slurm_without_slurm_is_an_error(tmp_path, monkeypatch):
    """Item 7: submitit's cluster detection would run everything here, silently."""
    from dropkit.spec import RunSpec
    from dropkit.store import ResultStore
    from dropkit.sweep import SlurmOptions, sweep

    monkeypatch.setenv("PATH", str(tmp_path))
    store = ResultStore(tmp_path / "results", "smoke")
    specs = [RunSpec("gaussian", "linear", "random", 0.5)]
    for slurm in (None, SlurmOptions()):
        with pytest.raises(RuntimeError, match="no Slurm here .sbatch is not on PATH"):
            sweep(specs, store, executor="slurm", slurm=slurm, run_function=fake_run, progress=False)
    assert not store.path.exists()


@pytest.mark.parametrize("device", ["cpu\n", "cuda:0\n"])
def test_a_device_with_a_trailing_newline_is_refused(device):
    """Item 13 (the device pattern had the same ``re.match`` + ``$`` hole)."""
    from dropkit.spec import RunSpec

    with pytest.raises(ValueError, match="device="):
        RunSpec("gaussian", "linear", "random", 0.5, device=device)


# ======================================================================================== issue 30
# Sealed rows and score caches, every entry point checked. Each test names the cases.

import json
import shutil

import numpy as np

from dropkit.rows import SEAL_FIELD, row_digest
from dropkit.seal import seal_store
from dropkit.spec import RunSpec
from dropkit.store import ResultStore

SHIPPED = ROOT / "results" / "default" / "runs"


def _shipped_row_files(count: int) -> list[Path]:
    """``count`` shipped row files of a pruned run (protocol random+drop), in name order."""
    files = []
    for file in sorted(SHIPPED.glob("*.json")):
        if json.loads(file.read_text())["protocol"] == "random+drop":
            files.append(file)
        if len(files) == count:
            return files
    raise AssertionError("not enough shipped rows")


@pytest.fixture
def shipped_store(tmp_path):
    """A store holding copies of two shipped (sealed) rows."""
    store = ResultStore(tmp_path, "default")
    store.runs_dir.mkdir(parents=True)
    for file in _shipped_row_files(2):
        shutil.copy(file, store.runs_dir / file.name)
    return store


def _edit(path: Path, change) -> None:
    row = json.loads(path.read_text())
    change(row)
    path.write_text(json.dumps(row, sort_keys=True))


def _copy_metrics_of(other: dict):
    def change(row):
        row.update({k: v for k, v in other.items() if k.startswith(("test_", "val_"))})
    return change


EDITS = {  # issue 30, "Silent wrong results": each edit of a row by hand
    "test_accuracy 0.52 -> 0.99": lambda row: row.update(test_accuracy=0.99),
    "test_accuracy 1.7": lambda row: row.update(test_accuracy=1.7),
    "test_accuracy a string": lambda row: row.update(test_accuracy="0.8"),
    "test_accuracy removed": lambda row: row.pop("test_accuracy"),
    "test_worst_class": lambda row: row.update(test_worst_class=row["test_worst_class"] + 0.05),
    "test_recalls": lambda row: row["test_recalls"].__setitem__(0, 0.123),
    "num_kept": lambda row: row.update(num_kept=row["num_kept"] + 1),
    "seal removed": lambda row: row.pop(SEAL_FIELD),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_row_is_reported_by_path_and_counts_as_missing(shipped_store, edit):
    path = sorted(shipped_store.runs_dir.glob("*.json"))[0]
    key = path.stem
    assert shipped_store.read(key) is not None and SEAL_FIELD not in shipped_store.read(key)
    _edit(path, EDITS[edit])
    with pytest.warns(UserWarning, match=f"ignoring result file {path}.*counts as missing"):
        assert shipped_store.read(key) is None
    with pytest.warns(UserWarning):
        assert shipped_store.keys() == {p.stem for p in shipped_store.runs_dir.glob("*.json")} - {key}


def test_a_row_with_nan_or_another_runs_metrics_counts_as_missing(shipped_store):
    first, second = sorted(shipped_store.runs_dir.glob("*.json"))
    text = first.read_text()
    accuracy = json.loads(text)["test_accuracy"]
    first.write_text(text.replace(f'"test_accuracy": {accuracy!r}', '"test_accuracy": NaN'))
    assert "NaN" in first.read_text()
    with pytest.warns(UserWarning, match="cannot be sealed|does not match its seal"):
        assert shipped_store.read(first.stem) is None
    first.write_text(text)
    _edit(first, _copy_metrics_of(json.loads(second.read_text())))
    with pytest.warns(UserWarning, match="does not match its seal"):
        assert shipped_store.read(first.stem) is None


@pytest.mark.parametrize("change, reason", [
    (lambda row: row.update(test_accuracy=1.7), "test_accuracy=1.7 is not a fraction"),
    (lambda row: row.update(test_accuracy=None), "test_accuracy=None is not a number"),
    (lambda row: row["test_recalls"].__setitem__(0, -0.1), r"test_recalls\[0\]=-0.1 is not a fraction"),
    (lambda row: row.update(num_kept=row["num_kept"] - 1), "class_counts sum to .* not num_kept"),
    (lambda row: row.update(test_recalls=row["test_recalls"][:-1]), "test_recalls has 9 entries"),
    (lambda row: row.update(test_worst_class=0.0), "test_worst_class=0.0 is not what test_recalls give"),
])
def test_a_sealed_row_with_metrics_out_of_range_counts_as_missing_and_is_never_written(
        shipped_store, change, reason):
    """Sealed rows: a seal recomputed over a bad row does not make it a result."""
    path = sorted(shipped_store.runs_dir.glob("*.json"))[0]
    row = json.loads(path.read_text())
    change(row)
    with pytest.raises(ValueError, match=reason):
        shipped_store.write(row)
    path.write_text(json.dumps({**row, SEAL_FIELD: row_digest(row)}, sort_keys=True))
    with pytest.warns(UserWarning, match=f"{path}: {reason}"):
        assert shipped_store.read(path.stem) is None


def test_write_refuses_a_row_whose_spec_does_not_hash_to_its_key(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    spec = RunSpec("gaussian", "linear", "random", 0.5)
    row = {**spec.to_dict(), "cache_key": spec.cache_key, "test_accuracy": 0.5}
    with pytest.raises(ValueError, match="spec fields hash to .* not to its cache_key"):
        store.write({**row, "density": 0.3})
    assert not store.runs_dir.exists() or not any(store.runs_dir.iterdir())
    assert store.read(store.write(row).stem) == row


def test_result_store_on_a_plain_file_is_a_clear_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match="afile is a file, not a directory"):
        ResultStore(tmp_path / "afile", "smoke")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "smoke").write_text("x")
    with pytest.raises(NotADirectoryError, match="smoke is a file"):
        ResultStore(tmp_path / "root", "smoke")
    from dropkit.cli import main as dropkit

    assert dropkit(["results", "--profile", "smoke", "--results-dir", str(tmp_path / "afile")]) == 1


def test_dropkit_results_leaves_out_an_edited_row_and_names_it(shipped_store, capsys):
    from dropkit.cli import main as dropkit

    path = sorted(shipped_store.runs_dir.glob("*.json"))[0]
    _edit(path, lambda row: row.update(test_accuracy=1.7))
    with pytest.warns(UserWarning, match=str(path)):
        assert dropkit(["results", "--profile", "default", "--results-dir", str(shipped_store.root)]) == 0
    out = capsys.readouterr().out
    assert "1 runs in" in out and "170.0" not in out


def _fake_run(spec, store, *, data_root=None):
    store.write({**spec.to_dict(), "cache_key": spec.cache_key, "test_accuracy": spec.density})


def test_a_sweep_recomputes_an_edited_row(tmp_path):
    from dropkit.sweep import sweep

    store = ResultStore(tmp_path, "smoke")
    specs = [RunSpec("gaussian", "linear", "random", 0.3, seed=s) for s in range(3)]
    sweep(specs, store, run_function=_fake_run, progress=False)
    path = store.run_path(specs[1].cache_key)
    _edit(path, lambda row: row.update(test_accuracy=0.99))
    with pytest.warns(UserWarning, match=f"{path}: its content does not match its seal"):
        report = sweep(specs, store, run_function=_fake_run, progress=False)
    assert (report.skipped, report.ran) == (2, 1)
    assert store.read(specs[1].cache_key)["test_accuracy"] == 0.3


# ----------------------------------------------------------------- the migration (python -m dropkit.seal)


def test_seal_migration_seals_unsealed_rows_changes_nothing_else_and_refuses_bad_ones(tmp_path, capsys):
    from dropkit.seal import main as seal

    store = ResultStore(tmp_path, "default")
    store.runs_dir.mkdir(parents=True)
    originals = {}
    for file in _shipped_row_files(4):
        row = json.loads(file.read_text())
        del row[SEAL_FIELD]  # as rows were before sealing (and as a provenance backfill leaves them)
        row["cpu_model"] = "a field added later"
        originals[file.stem] = row
        (store.runs_dir / file.name).write_text(json.dumps(row, sort_keys=True))
    names = sorted(originals)
    _edit(store.runs_dir / f"{names[2]}.json", lambda row: row.update(density=0.77))   # spec edited
    _edit(store.runs_dir / f"{names[3]}.json", lambda row: row.update(test_accuracy=1.5))  # out of range
    before = {name: (store.runs_dir / f"{name}.json").read_text() for name in names}
    assert seal(["--check", str(store.path)]) == 1  # --check changes nothing
    assert {name: (store.runs_dir / f"{name}.json").read_text() for name in names} == before
    assert seal([str(store.path)]) == 1
    captured = capsys.readouterr()
    assert "sealed 2, verified 0, refused 2" in captured.out
    assert f"refused {store.runs_dir / names[2]}.json: its spec fields hash to" in captured.err
    assert f"refused {store.runs_dir / names[3]}.json: test_accuracy=1.5 is not a fraction" in captured.err
    for name in names[:2]:
        text = (store.runs_dir / f"{name}.json").read_text()
        row = json.loads(text)
        assert {k: v for k, v in row.items() if k != SEAL_FIELD} == originals[name]  # no other field changed
        assert text.replace(f', "{SEAL_FIELD}": "{row[SEAL_FIELD]}"', "") == json.dumps(originals[name], sort_keys=True)
        assert store.read(name) == originals[name]
    for name in names[2:]:
        assert (store.runs_dir / f"{name}.json").read_text() == before[name]  # refused: unchanged
    # idempotent: a second run seals nothing and changes no byte; a tampered sealed row is refused
    sealed = {name: (store.runs_dir / f"{name}.json").read_text() for name in names[:2]}
    report = seal_store(store.path)
    assert (len(report.sealed), report.verified, len(report.refused)) == (0, 2, 2)
    assert {name: (store.runs_dir / f"{name}.json").read_text() for name in names[:2]} == sealed
    _edit(store.runs_dir / f"{names[0]}.json", lambda row: row.update(test_accuracy=0.5))
    report = seal_store(store.path)
    assert [p.stem for p, _ in report.refused][:1] == [names[0]]
    assert "does not match its seal" in report.refused[0][1]


def test_every_shipped_row_is_sealed_and_verifies():
    """The shipped rows were sealed in place by ``python -m dropkit.seal results/default``."""
    files = list(SHIPPED.glob("*.json"))
    report = seal_store(SHIPPED.parent, check=True)
    assert report.refused == [] and report.sealed == []
    assert report.verified == len(files) >= 1015


# ----------------------------------------------------------------- keyed score caches


def _cache(store, key, scores):
    return store.save_scores(key, {"scores": np.asarray(scores, dtype=np.float64), "val_recalls": np.array([0.5, 0.7])})


def _rewrite_npz(path: Path, change) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    change(arrays)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize("tamper, reason", [
    ("another query's cache", "holds the outputs of query"),
    ("scores permuted", "do not match their digest"),
    ("scores all NaN", "NaN/inf"),
    ("no key (older dropkit)", "records no query key"),
])
def test_a_mismatched_score_cache_is_reported_by_path_and_not_read(tmp_path, tamper, reason):
    store = ResultStore(tmp_path, "smoke")
    key, other = "a" * 64, "b" * 64
    path = _cache(store, key, np.arange(6.0))
    assert np.array_equal(store.load_scores(key)["scores"], np.arange(6.0))
    if tamper == "another query's cache":
        shutil.copy(_cache(store, other, np.arange(6.0)[::-1]), path)
    elif tamper == "scores permuted":
        _rewrite_npz(path, lambda a: a.update(scores=a["scores"][::-1].copy()))
    elif tamper == "scores all NaN":
        _rewrite_npz(path, lambda a: a.update(scores=np.full(6, np.nan)))
    else:
        _rewrite_npz(path, lambda a: a.pop("__query_key__"))
    with pytest.warns(UserWarning, match=f"ignoring score cache {path}: .*{reason}.*recomputed"):
        assert store.load_scores(key) is None


def test_a_score_cache_is_never_written_with_nan(tmp_path):
    store = ResultStore(tmp_path, "smoke")
    with pytest.raises(ValueError, match=r"arrays\['scores'\] holds 1 NaN/inf"):
        _cache(store, "a" * 64, [0.0, np.nan])
    assert not store.scores_dir.exists() or not any(store.scores_dir.iterdir())


TINY_SETUP = dict(name="linear-gaussian", dataset="gaussian", model="linear", epochs=2, drop_epochs=(1,),
                  batch_size=64, lr=0.1, weight_decay=0.0, query_epochs=1, augment=False,
                  dataset_options=(("n_per_class", 100),), strategies=("el2n",))


def _tiny_profile():
    from dropkit.profiles import Profile, TrainingSetup

    return Profile(name="tiny", description="test", setups=(TrainingSetup(**TINY_SETUP),),
                   experiment_setups=(("drop_evaluation", ("linear-gaussian",)),), seeds=(0,),
                   densities=(0.4,), secondary_densities=(0.5,), query_seeds=1, methods=("el2n",),
                   imbalance_factors=(2.0,), query_epoch_grid=(1,), ablation_densities=(0.5,))


def test_chapter_results_recomputes_an_edited_row_and_a_permuted_score_cache(tmp_path):
    """Real runs (a tiny Gaussian profile): an edited row and a tampered query-score cache are
    named in the chapter's lines and computed again, to the same numbers."""
    from dropkit.chapter import chapter_results

    profile = _tiny_profile()
    first = chapter_results(profile, "drop_evaluation", results_dir=str(tmp_path), workers=1)
    store = ResultStore(tmp_path, "tiny")
    rows = {row["cache_key"]: row for row in store.rows()}
    (cache,) = store.scores_dir.glob("*.npz")
    pruned = next(key for key, row in rows.items() if row["protocol"] == "strategy")
    edited = store.run_path(pruned)
    _edit(edited, lambda row: row.update(test_accuracy=0.99))
    _rewrite_npz(cache, lambda a: a.update(scores=a["scores"][::-1].copy()))  # key and digest kept
    again = chapter_results(profile, "drop_evaluation", results_dir=str(tmp_path), workers=1)
    text = "\n".join(again.lines)
    assert f"ignoring result file {edited}" in text
    assert f"ignoring score cache {cache}" in text
    assert again.lines[0].startswith(f"{len(first.specs)} runs: {len(first.specs) - 1} read") and "1 computed" in again.lines[0]
    recomputed = store.read(pruned)
    for name in ("test_accuracy", "test_recalls", "class_counts"):
        assert recomputed[name] == rows[pruned][name]
    assert store.load_scores(cache.stem) is not None  # the cache was written again, sealed


# ----------------------------------------------------------------- one validation for a sweep and its dry run


@pytest.mark.parametrize("options, message", [
    (["--results-dir", "{file}"], "is a file, not a directory"),
    (["--results-dir", "{file}/sub"], "is a file, not a directory"),
    (["--densities", "1e-9"], r"density=1e-09 keeps round\(1e-09 \* 3000\) = 0 of 3000 samples"),
    (["--slurm-time", "-5"], "--slurm-time -5 must be an integer >= 1"),
    (["--slurm-time", "0"], "--slurm-time 0 must be an integer >= 1"),
    (["--slurm-gpus", "-1"], "--slurm-gpus -1 must be an integer >= 0"),
])
def test_dry_run_refuses_exactly_what_the_sweep_refuses_before_any_work(tmp_path, capsys, options, message):
    from dropkit.cli import main as dropkit

    (tmp_path / "afile").write_text("x")
    options = [o.format(file=tmp_path / "afile") for o in options]
    if "--results-dir" not in options:
        options += ["--results-dir", str(tmp_path / "results")]
    command = ["sweep", "--profile", "smoke", "--experiment", "drop_evaluation", "--seeds", "0", *options]
    errors = []
    for dry in (["--dry-run"], []):
        assert dropkit(command + dry + ["--no-progress"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(message, err[0]), err
        errors.append(err[0])
    assert errors[0] == errors[1]
    assert not (tmp_path / "results").exists() and (tmp_path / "afile").read_text() == "x"


def test_sweep_and_check_sweep_refuse_a_store_under_a_file_before_running(tmp_path):
    from dropkit.sweep import check_sweep, sweep

    (tmp_path / "afile").write_text("x")
    store = ResultStore(tmp_path / "afile" / "results", "smoke")
    specs = [RunSpec("gaussian", "linear", "random", 0.5)]
    for call in (lambda: check_sweep(specs, store), lambda: sweep(specs, store, run_function=_fake_run, progress=False)):
        with pytest.raises(PermissionError, match="afile is a file, not a directory"):
            call()


@pytest.mark.parametrize("name", ["device", "dataset", "model", "setup", "densities", "seeds"])
def test_sweep_set_of_a_name_that_is_an_option_points_to_the_option(tmp_path, capsys, name):
    from dropkit.cli import main as dropkit

    code = dropkit(["sweep", "--profile", "smoke", "--experiment", "drop_evaluation", "--dry-run",
                    "--results-dir", str(tmp_path), "--set", f"{name}=x"])
    assert code == 1
    assert f"--set '{name}=x': {name} has its own option; use --{name} instead" in capsys.readouterr().err


# ----------------------------------------------------------------- python -m dropkit.train


TRAIN_INPUTS = [  # issue 30: the 17 inputs, and drop epochs past the end of training
    (["--epochs", "0"], "argument --epochs: '0' must be an integer >= 1"),
    (["--dataset", "bogus"], "argument --dataset: 'bogus' is not a dataset"),
    (["--root", "/nope"], "argument --root: '/nope' is not a directory"),
    (["--root", "{empty}"], "--dataset fashion-mnist --root {empty}: fashion-mnist: the four IDX files"),
    (["--lr", "-1"], "argument --lr: '-1' must lie in (0, inf)"),
    (["--lr", "nan"], "argument --lr: 'nan' must be a finite number"),
    (["--batch-size", "0"], "argument --batch-size: '0' must be an integer >= 1"),
    (["--train-size", "1"], "argument --train-size: '1' must be an integer >= 2"),
    (["--train-size", "1000000000", "--dataset", "gaussian"], "--train-size 1000000000 must lie in [2, "),
    (["--train-size", "1e9"], "argument --train-size: '1e9' is not an integer"),
    (["--drop-epochs", "abc"], "--drop-epochs 'abc' must be 'auto', 'none' or comma-separated integers"),
    (["--drop-epochs", "5", "--epochs", "1"], "--drop-epochs '5': epoch 5 is not within training of --epochs 1"),
    (["--momentum", "2"], "argument --momentum: '2' must lie in [0, 1)"),
    (["--device", "tpu"], "argument --device: 'tpu' is not a device"),
    (["--device", "cuda"], "argument --device: 'cuda': no CUDA GPU is available here"),
    (["--threads", "0"], "argument --threads: '0' must be an integer >= 1"),
    (["--max-shift", "-1"], "argument --max-shift: '-1' must be an integer >= 0"),
    (["--pretrained-path", "/nope.pt"], "argument --pretrained-path: '/nope.pt' is not a file"),
    (["--seed", "-1"], "argument --seed: '-1' must be an integer >= 0"),
]


@pytest.mark.parametrize("arguments, message", TRAIN_INPUTS, ids=[" ".join(a) for a, _ in TRAIN_INPUTS])
def test_train_command_refuses_bad_input_with_exit_2_and_one_line(tmp_path, capsys, monkeypatch, arguments, message):
    import torch

    from dropkit.train.__main__ import main as train_main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "empty").mkdir()
    arguments = [a.format(empty=tmp_path / "empty") for a in arguments]
    with pytest.raises(SystemExit) as exit_:
        train_main(arguments + ["--no-progress"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"python -m dropkit.train: error: {message.format(empty=tmp_path / 'empty')}" in err


# ----------------------------------------------------------------- python -m dropkit.book


BOOK_VALUES = [  # issue 30: 16 bad values, device tpu, and a result chapter's
    ("01_theory", "n_datasets", "-5"), ("01_theory", "n_datasets", "0"), ("01_theory", "n_datasets", "abc"),
    ("01_theory", "n_datasets", "null"), ("01_theory", "n_datasets", "1.5"), ("01_theory", "n_datasets", "[1,2]"),
    ("01_theory", "n_datasets", "true"), ("01_theory", "densities", "1.5"), ("01_theory", "densities", "0"),
    ("01_theory", "densities", "[0.5, 2]"), ("01_theory", "densities", "[]"), ("01_theory", "densities", "NaN"),
    ("01_theory", "figure3_density", "2"), ("01_theory", "dataset", "bogus"), ("01_theory", "seeds", "[-1]"),
    ("01_theory", "n_points", "1e12"), ("01_theory", "n_points", "1000000000000"), ("01_theory", "device", "tpu"),
    ("03_drop_evaluation", "device", "tpu"), ("03_drop_evaluation", "densities", "[0.5, 2]"),
    ("03_drop_evaluation", "strategy", "coreset"), ("03_drop_evaluation", "workers", "0"),
    ("03_drop_evaluation", "dataset", "bogus"), ("03_drop_evaluation", "seeds", "[-1]"),
]


@pytest.mark.parametrize("chapter, name, value", BOOK_VALUES)
def test_book_refuses_a_bad_parameter_value_before_running(capsys, chapter, name, value):
    from dropkit.book import parse_value

    generated = ROOT / "book" / "generated"
    before = {p.name: p.stat().st_mtime_ns for p in generated.glob("*")} if generated.is_dir() else {}
    code = main(["--root", str(ROOT), "--profile", "smoke", "--chapter", chapter, "-p", name, value, "--no-render"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: parameter {name}={parse_value(value)!r}"), err
    after = {p.name: p.stat().st_mtime_ns for p in generated.glob("*")} if generated.is_dir() else {}
    assert after == before  # nothing ran, nothing written


FAILING_CHAPTER = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
profile = "default"
fail = True

# %%
print("the good version" if not fail else "about to fail")
if fail:
    raise RuntimeError("this chapter fails")
'''


def test_a_failed_chapter_keeps_the_previous_notebook(tmp_path, capsys):
    """Issue 30, data loss: a failed execution never replaces a good notebook."""
    from papermill import PapermillExecutionError

    from dropkit.book import execute_chapter, failed_notebook

    chapter = "02_bias_benchmark"  # a stand-in chapter under tmp_path: one that fails when told to
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / f"{chapter}.py").write_text(FAILING_CHAPTER)
    good = execute_chapter(tmp_path, chapter, {"profile": "smoke", "fail": False})
    text = good.read_text()
    assert "the good version" in text
    with pytest.raises(PapermillExecutionError, match="this chapter fails"):
        execute_chapter(tmp_path, chapter, {"profile": "smoke", "fail": True})
    assert good.read_text() == text
    failed = failed_notebook(tmp_path, chapter)
    assert failed.name == f"{chapter}.failed.ipynb" and "this chapter fails" in failed.read_text()
    generated = tmp_path / "book" / "generated"
    assert sorted(p.name for p in generated.iterdir()) == [f"{chapter}.failed.ipynb", f"{chapter}.ipynb"]
    # the command: exit 1, the failing cell named, the previous notebook kept, no hidden file
    failed.unlink()
    assert main(["--root", str(tmp_path), "--profile", "smoke", "--chapter", chapter, "-p", "fail", "true",
                 "--no-render"]) == 1
    err = capsys.readouterr().err
    # cell 3: the parameters cell, papermill's injected parameters, the failing cell
    assert "error: the chapter being executed failed in cell 3: RuntimeError: this chapter fails" in err
    assert "Traceback" not in err
    assert good.read_text() == text
    assert sorted(p.name for p in generated.iterdir()) == [f"{chapter}.failed.ipynb", f"{chapter}.ipynb"]
    execute_chapter(tmp_path, chapter, {"profile": "smoke", "fail": False})  # success clears the failure
    assert sorted(p.name for p in generated.iterdir()) == [f"{chapter}.ipynb"]


# ----------------------------------------------------------------- drop_quotas, keep_indices


def test_drop_quotas_refuses_overflowing_sizes_and_a_density_that_keeps_nothing():
    from dropkit.quotas import drop_quotas

    with pytest.raises(ValueError, match="class_sizes sum to 18446744073709551614 samples, more than 2\\*\\*53"):
        drop_quotas([2**63 - 1, 2**63 - 1], [0.2, 0.8], 0.5)
    with pytest.raises(ValueError, match=r"density=1e-06 keeps round\(1e-06 \* 20\) = 0 of 20 samples"):
        drop_quotas([10, 10], [0.2, 0.8], 1e-6)
    assert drop_quotas([10, 10], [0.2, 0.8], 0.05).tolist() == [1, 0]


@pytest.mark.parametrize("protocol, arguments, message", [
    ("random", {"groups": [0, 1, 0]}, r"groups must have one id per sample \(6\), got 3"),
    ("strategy", {"groups": [0, 1, 0], "scores": np.arange(6.0)}, r"groups must have one id per sample"),
    ("random+strategyq", {"groups": [0] * 7, "scores": np.arange(6.0)}, r"groups must have one id per sample"),
    ("random", {"scores": np.arange(5.0)}, r"scores must have shape \(6,\)"),
    ("random", {"scores": [0, 1, np.nan, 3, 4, 5]}, "scores hold 1 NaN/inf values"),
    ("random", {"scores": [0, 1, np.inf, 3, 4, 5]}, "scores hold 1 NaN/inf values"),
    ("strategy", {"scores": np.arange(6.0), "recalls": [9, 9]}, r"recalls must be finite values in \[0, 1\]"),
    ("random", {"recalls": [0.5, np.nan]}, r"recalls must be finite values in \[0, 1\]"),
])
def test_keep_indices_checks_the_arguments_a_protocol_does_not_use(protocol, arguments, message):
    from dropkit.protocols import keep_indices

    with pytest.raises(ValueError, match=message):
        keep_indices(protocol, [0, 0, 0, 1, 1, 1], 0.5, **arguments)


def test_the_command_line_restores_the_callers_warning_format(tmp_path, capsys):
    """``dropkit.cli.main`` shows warnings as one line while it runs, and gives the calling
    process (a notebook, a test) its own warning format back afterwards, also after an error."""
    import warnings

    from dropkit.cli import main

    before = warnings.formatwarning
    assert main(["sweep", "--profile", "smoke", "--experiment", "pretraining_ablation", "--dry-run",
                 "--results-dir", str(tmp_path)]) == 0
    assert warnings.formatwarning is before
    assert main(["sweep", "--profile", "smoke", "--experiment", "pretraining_ablation", "--densities", "0.5",
                 "--seeds", "x", "--results-dir", str(tmp_path)]) != 0
    assert warnings.formatwarning is before
    capsys.readouterr()
