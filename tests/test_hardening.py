"""Issue 14 (hardening): the items that have no better home -- book parameters, notebooks'
progress bars, IPython as an optional dependency of show_figure."""

from __future__ import annotations

import ast
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
    with pytest.raises(ValueError, match="'seed' is not a parameter of chapter 02_bias_benchmark"):
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
            "for call in (lambda: publish_figure('x', plt.figure()), lambda: show_markdown('x')):\n"
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
