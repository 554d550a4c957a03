"""Build the Jupyter Book: execute every chapter notebook with papermill, then render it.

The chapters are jupytext ``py:percent`` files in ``notebooks/`` (the source of truth). For each
chapter listed in :data:`CHAPTERS`, :func:`build_book`

1. converts ``notebooks/<chapter>.py`` to an ``.ipynb`` with jupytext,
2. executes it with papermill (``profile`` and any extra parameters injected after the cell
   tagged ``parameters``; the kernel's working directory is the book root, so relative
   ``results_dir`` paths resolve there) into ``book/generated/<chapter>.ipynb``, and
3. runs ``jupyter-book build <root> -W`` (warnings are errors; the notebooks are rendered with
   execution off, as ``_config.yml`` says).

Usage::

    python -m dropkit.book --profile default          # what ``make book`` runs
    python -m dropkit.book --profile smoke --root /tmp/copy-of-repo
    python -m dropkit.book --profile smoke --chapter 03_drop_evaluation -p strategy el2n

A parameter that a chapter's ``parameters`` cell does not define is refused before anything runs
(papermill itself only warns about it and runs the chapter with its own values), and so is a
parameter value that the chapter would refuse (:func:`check_parameter_values`): exit status 2 and
one line naming the parameter and its value, no papermill traceback.

A chapter that fails never replaces a good one: papermill writes into a hidden temporary
notebook, which replaces ``book/generated/<chapter>.ipynb`` only on success; on failure the
previous notebook stays, the failed one is kept beside it as ``<chapter>.failed.ipynb`` (to read
the failing cell), and no hidden file is left behind.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import subprocess
import sys
import time
from numbers import Real
from pathlib import Path

from dropkit.profiles import check_profile

#: Chapter notebook name -> ids of the paper figures it must publish (see dropkit.publish.publish_figure).
CHAPTERS: dict[str, tuple[str, ...]] = {
    "00_results": (),  # the landing page: the scorecard at a glance
    "01_theory": ("3", "4a", "4b"),
    "02_bias_benchmark": ("1", "2", "10", "13", "14"),
    "03_drop_evaluation": ("5", "6", "11", "12"),
    "04_cdbw": ("7",),
    "05_imbalanced": ("8",),
    "06_waterbirds": ("9",),
    "07_pretraining_ablation": ("15",),
    "08_scorecard": (),
}

GENERATED_DIR = Path("book") / "generated"


def _parameters_cell(root: Path | str, chapter: str) -> list:
    """The statements of the cell tagged ``parameters`` of ``notebooks/<chapter>.py``."""
    import jupytext

    source = Path(root) / "notebooks" / f"{chapter}.py"
    if not source.is_file():
        raise FileNotFoundError(f"chapter source {source} does not exist")
    cells = [cell for cell in jupytext.read(source).cells
             if "parameters" in cell.metadata.get("tags", ())]
    if not cells:
        raise ValueError(f"chapter {chapter} has no cell tagged 'parameters'")
    return ast.parse(cells[0].source).body


def chapter_parameters(root: Path | str, chapter: str) -> tuple[str, ...]:
    """Names assigned in the cell tagged ``parameters`` of ``notebooks/<chapter>.py``, in order."""
    names = []
    for node in _parameters_cell(root, chapter):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return tuple(names)


def chapter_defaults(root: Path | str, chapter: str) -> dict:
    """The values the ``parameters`` cell of ``notebooks/<chapter>.py`` assigns (Python literals;
    a name assigned anything else is left out)."""
    defaults = {}
    for node in _parameters_cell(root, chapter):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                defaults[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return defaults


#: The strategies chapter 03 takes as its ``strategy`` parameter (None: each setting's own).
BOOK_STRATEGIES: tuple[str, ...] = ("el2n", "grand", "forgetting")


def _check_optional(kind: str, check):
    """A parameter check that accepts None (the profile's value) or what ``check`` accepts."""
    def checked(name: str, value) -> None:
        if value is not None and not check(value):
            raise ValueError(f"parameter {name}={value!r} must be None (the profile's) or {kind}")
    return checked


def _is_int(value, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_density(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= 1


def _is_device(value) -> bool:
    from dropkit.spec import check_device

    try:
        check_device(value)
    except ValueError:
        return False
    return True


def _is_dataset(value) -> bool:
    from dropkit.data import DATASETS

    return isinstance(value, str) and value in DATASETS


def _is_model(value) -> bool:
    from dropkit.models import MODELS

    return isinstance(value, str) and value in MODELS


def _check_results_dir(name: str, value) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"parameter {name}={value!r} must be a non-empty path")
    if os.path.exists(value) and not os.path.isdir(value):
        raise ValueError(f"parameter {name}={value!r} is a file, not a directory")


def _check_reference(name: str, value) -> None:
    if not _is_density(value):
        raise ValueError(f"parameter {name}={value!r} must be a density in (0, 1]")


def _check_count(minimum: int, maximum: int | None = None):
    def checked(name: str, value) -> None:
        if not _is_int(value, minimum) or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise ValueError(f"parameter {name}={value!r} must be an integer {bound}")
    return checked


def _max_theory_points() -> int:
    from dropkit.chapter import MAX_THEORY_POINTS

    return MAX_THEORY_POINTS


#: The checks of the chapters' common parameters, by name, run before any chapter executes
#: (each chapter checks them again itself). The theory chapter's own parameters are checked by
#: :func:`dropkit.chapter.check_theory_parameters` (see :func:`check_parameter_values`).
PARAMETER_CHECKS = {
    "dataset": _check_optional("a dataset name of dropkit.data.DATASETS", _is_dataset),
    "model": _check_optional("a model name of dropkit.models.MODELS", _is_model),
    "strategy": _check_optional(f"one of {', '.join(BOOK_STRATEGIES)}", lambda v: v in BOOK_STRATEGIES),
    "densities": _check_optional("a non-empty list of densities in (0, 1]", lambda v: isinstance(v, list)
                                 and len(v) > 0 and all(_is_density(d) for d in v)),
    "seeds": _check_optional("a non-empty list of non-negative integers", lambda v: isinstance(v, list)
                             and len(v) > 0 and all(_is_int(s, 0) for s in v)),
    "device": _check_optional("a device: 'cpu', 'cuda', 'cuda:N' or 'mps'", _is_device),
    "workers": _check_optional("a positive integer", lambda v: _is_int(v, 1)),
    "data_root": _check_optional("an existing directory", lambda v: isinstance(v, str) and os.path.isdir(v)),
    "pretrained_path": _check_optional("an existing file", lambda v: isinstance(v, str) and os.path.isfile(v)),
    "results_dir": _check_results_dir,
    "reference": _check_reference,
    "figure3_density": _check_reference,
    "n_datasets": _check_count(1),
    "n_draws": _check_count(1),
    "n_points": lambda name, value: _check_count(2, _max_theory_points())(name, value),
    "seed": _check_count(0),
}


def check_parameter_values(root: Path | str, chapter: str, parameters: dict) -> None:
    """``ValueError`` naming the first parameter value of ``parameters`` that ``chapter`` would
    refuse, before it runs: the checks of :data:`PARAMETER_CHECKS` by name, and for the theory
    chapter :func:`dropkit.chapter.check_theory_parameters` on its defaults updated with
    ``parameters`` (the very check its first cell runs)."""
    from dropkit.chapter import check_theory_parameters

    theory = chapter == "01_theory"
    for name, value in parameters.items():
        if name in PARAMETER_CHECKS and not (theory and name in ("dataset", "model")):
            PARAMETER_CHECKS[name](name, value)
    if theory:
        values = {**chapter_defaults(root, chapter), **parameters}
        values.pop("profile", None)
        try:
            check_theory_parameters(**values)
        except (TypeError, ValueError) as err:
            raise ValueError(f"parameter {' '.join(str(err).split())}") from None


def check_parameters(root: Path | str, chapters, parameters: dict) -> None:
    """``ValueError`` naming the first parameter that a chapter's ``parameters`` cell lacks, or
    whose value the chapter would refuse (:func:`check_parameter_values`)."""
    for chapter in chapters:
        known = chapter_parameters(root, chapter)
        unknown = [name for name in parameters if name not in known]
        if unknown:
            raise ValueError(f"parameter {unknown[0]!r} is not a parameter of chapter {chapter} "
                             f"(its parameters: {', '.join(known)})")
        check_parameter_values(root, chapter, parameters)


def parse_value(text: str):
    """A ``-p NAME VALUE`` value: JSON (``5``, ``0.5``, ``[0, 1]``, ``null``), ``None``/``True``/
    ``False`` as in Python, anything else as a string."""
    if text in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def failed_notebook(root: Path, chapter: str) -> Path:
    """Where the notebook of a failed execution of ``chapter`` is kept: ``<chapter>.failed.ipynb``."""
    return Path(root) / GENERATED_DIR / f"{chapter}.failed.ipynb"


def execute_chapter(root: Path, chapter: str, parameters: dict, *, kernel: str = "python3") -> Path:
    """Convert and execute one chapter; return the path of the executed notebook.

    The executed notebook replaces ``book/generated/<chapter>.ipynb`` only when the chapter
    succeeds (a stale ``<chapter>.failed.ipynb`` is then removed). When it fails, the previous
    notebook is left as it was, the failed one is written to :func:`failed_notebook`, no hidden
    file is left behind, and the error is raised again.

    Raises ``FileNotFoundError`` if ``notebooks/<chapter>.py`` is missing and
    ``papermill.PapermillExecutionError`` (naming the failing cell) if the notebook fails.
    """
    import jupytext
    import papermill

    root = Path(root)
    source = root / "notebooks" / f"{chapter}.py"
    if not source.is_file():
        raise FileNotFoundError(f"chapter source {source} does not exist")
    out_dir = root / GENERATED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    unexecuted = out_dir / f".{chapter}.input.ipynb"
    running = out_dir / f".{chapter}.running.ipynb"
    executed = out_dir / f"{chapter}.ipynb"
    try:
        jupytext.write(jupytext.read(source), unexecuted)
        try:
            papermill.execute_notebook(
                str(unexecuted),
                str(running),
                parameters=parameters,
                kernel_name=kernel,
                cwd=str(root),
                progress_bar=False,
            )
        except BaseException:
            if running.exists():
                os.replace(running, failed_notebook(root, chapter))
            raise
        remove_injected_parameters(running)
        os.replace(running, executed)
        failed_notebook(root, chapter).unlink(missing_ok=True)
    finally:
        unexecuted.unlink(missing_ok=True)
        running.unlink(missing_ok=True)
    return executed


def remove_injected_parameters(notebook: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: the book does not show it, the
    executed notebook keeps it (the parameters cell itself is folded by its ``hide-input`` tag)."""
    import nbformat

    book = nbformat.read(notebook, as_version=4)
    for cell in book.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(book, notebook)


def build_book(root: Path | str = ".", profile: str = "default", *, chapters=None,
               parameters: dict | None = None, render: bool = True) -> Path:
    """Execute ``chapters`` (default: all of :data:`CHAPTERS`) at ``profile`` and render the book.

    Returns the path of the rendered ``_build/html/index.html`` under ``root``.
    """
    check_profile(profile)
    root = Path(root).resolve()
    chapters = list(CHAPTERS) if chapters is None else list(chapters)
    unknown = [c for c in chapters if c not in CHAPTERS]
    if unknown:
        raise ValueError(f"chapters={unknown} are not book chapters; known: {list(CHAPTERS)}")
    params = {"profile": profile, **(parameters or {})}
    check_parameters(root, chapters, params)  # every chapter, before any runs
    for chapter in chapters:
        start = time.perf_counter()
        print(f"[book] executing {chapter} (profile={profile})", flush=True)
        execute_chapter(root, chapter, params)
        print(f"[book] {chapter} done in {time.perf_counter() - start:.0f} s", flush=True)
    index = root / "_build" / "html" / "index.html"
    if render:
        subprocess.run(
            [str(Path(sys.executable).parent / "jupyter-book"), "build", str(root), "-W", "--keep-going"],
            check=True,
        )
    return index


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dropkit.book", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default", help="smoke, default, fast or paper (default: %(default)s)")
    parser.add_argument("--root", default=".", help="book root holding _config.yml (default: %(default)s)")
    parser.add_argument("--chapter", action="append", dest="chapters", help="execute only this chapter (repeatable)")
    parser.add_argument("--no-render", action="store_true", help="execute notebooks only")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="a chapter parameter (repeatable); must be "
                        "defined in the parameters cell of every chapter executed")
    args = parser.parse_args(argv)
    parameters = {name: parse_value(value) for name, value in args.parameter}
    if "profile" in parameters:
        print("error: set the profile with --profile, not -p profile", file=sys.stderr)
        return 2
    try:
        index = build_book(args.root, args.profile, chapters=args.chapters, parameters=parameters,
                           render=not args.no_render)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a chapter failed while executing (papermill names the cell)
        if type(error).__name__ != "PapermillExecutionError":
            raise
        cell = getattr(error, "exec_count", None)
        print(f"error: the chapter being executed failed in cell {cell}: {getattr(error, 'ename', '')}: "
              f"{' '.join(str(getattr(error, 'evalue', '')).split())}", file=sys.stderr)
        print(f"(the previous notebooks are kept; the failed one is under {Path(args.root).resolve() / GENERATED_DIR} "
              "as <chapter>.failed.ipynb)", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"error: jupyter-book build failed (exit {error.returncode})", file=sys.stderr)
        return 1
    if args.no_render:
        print(f"Executed notebooks in {Path(args.root).resolve() / GENERATED_DIR} (not rendered)")
    else:
        print(f"Book rendered: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
