"""Issue 14 (hardening): the items that have no better home -- book parameters, notebooks'
progress bars, IPython as an optional dependency of show_figure."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def test_show_figure_without_ipython_is_a_clear_error():
    code = ("import sys; sys.modules['IPython'] = None; sys.modules['IPython.display'] = None\n"
            "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt\n"
            "from dropkit.plots import show_figure\n"
            "try:\n    show_figure(plt.figure(), '1', 'x')\n"
            "except ImportError as e:\n    print(e)\n")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "show_figure displays in a notebook and needs IPython" in shown.stdout
