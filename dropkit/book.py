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
(papermill itself only warns about it and runs the chapter with its own values).
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import time
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


def chapter_parameters(root: Path | str, chapter: str) -> tuple[str, ...]:
    """Names assigned in the cell tagged ``parameters`` of ``notebooks/<chapter>.py``, in order."""
    import jupytext

    source = Path(root) / "notebooks" / f"{chapter}.py"
    if not source.is_file():
        raise FileNotFoundError(f"chapter source {source} does not exist")
    cells = [cell for cell in jupytext.read(source).cells
             if "parameters" in cell.metadata.get("tags", ())]
    if not cells:
        raise ValueError(f"chapter {chapter} has no cell tagged 'parameters'")
    names = []
    for node in ast.parse(cells[0].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return tuple(names)


def check_parameters(root: Path | str, chapters, parameters: dict) -> None:
    """``ValueError`` naming the first parameter that a chapter's ``parameters`` cell lacks."""
    for chapter in chapters:
        known = chapter_parameters(root, chapter)
        unknown = [name for name in parameters if name not in known]
        if unknown:
            raise ValueError(f"parameter {unknown[0]!r} is not a parameter of chapter {chapter} "
                             f"(its parameters: {', '.join(known)})")


def parse_value(text: str):
    """A ``-p NAME VALUE`` value: JSON (``5``, ``0.5``, ``[0, 1]``, ``null``), ``None``/``True``/
    ``False`` as in Python, anything else as a string."""
    if text in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def execute_chapter(root: Path, chapter: str, parameters: dict, *, kernel: str = "python3") -> Path:
    """Convert and execute one chapter; return the path of the executed notebook.

    Raises ``FileNotFoundError`` if ``notebooks/<chapter>.py`` is missing and
    ``papermill.PapermillExecutionError`` (naming the failing cell) if the notebook fails.
    """
    import jupytext
    import papermill

    source = root / "notebooks" / f"{chapter}.py"
    if not source.is_file():
        raise FileNotFoundError(f"chapter source {source} does not exist")
    out_dir = root / GENERATED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    unexecuted = out_dir / f".{chapter}.input.ipynb"
    jupytext.write(jupytext.read(source), unexecuted)
    executed = out_dir / f"{chapter}.ipynb"
    papermill.execute_notebook(
        str(unexecuted),
        str(executed),
        parameters=parameters,
        kernel_name=kernel,
        cwd=str(root),
        progress_bar=False,
    )
    unexecuted.unlink()
    remove_injected_parameters(executed)
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
