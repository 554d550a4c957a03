"""Putting a chapter's figures, tables and verdicts into the book, through myst-nb.

A figure is *glued* (:func:`publish_figure`) under a name and placed by a ``{glue:figure}``
directive in the chapter's Markdown, whose ``:name:`` makes Sphinx number it and lets any chapter
cite it with ``{numref}``; a caption's sentence that depends on the results (the settings a figure
draws) is glued with :func:`publish_text` and placed with the ``{glue:text}`` role. The PNG is
saved at 1.5x the displayed resolution: the book shows it at the text width and a click opens it
at full size (Sphinx links every scaled image to its file). Under each figure the chapter
places, with a ``{glue:md}`` directive named ``<name>-source``, the command that regenerates it
and a link to a CSV file of exactly the numbers it plots (:func:`publish_figure` writes it to
:data:`DATA_DIR`, from :func:`dropkit.plots.figure_data` or the ``data`` it is given). Tables and
verdict sentences are shown as Markdown (:func:`show_markdown`), so they render as numbered
tables and prose, not as console output.
"""

from __future__ import annotations

import io
from pathlib import Path

#: Pixels per inch of the displayed figure (the PNG holds ``DPI / CSS_DPI`` times more).
CSS_DPI = 100
DPI = 150
#: PNG text key that records how many panels the figure has side by side (read by the book test).
PANEL_COLUMNS_KEY = "dropkit:panel-columns"
#: PNG text key that records the height in CSS pixels of the figure's smallest text when the figure
#: is shown at its natural size (read by the book test, which scales it to the displayed width).
MIN_FONT_KEY = "dropkit:min-font-px"
#: Where :func:`publish_figure` writes each figure's CSV, relative to the working directory of the
#: notebook (the book root when ``python -m dropkit.book`` executes it); the chapters
#: (``book/generated/<chapter>``) link it as ``data/<name>.csv``.
DATA_DIR = Path("book") / "generated" / "data"


def panel_columns(fig) -> int:
    """The largest number of panels (axes, colour bars excluded) side by side in ``fig``, in figure
    coordinates (the axes of a subfigure, e.g. one block of panels per setting, are placed within
    it)."""
    to_figure = fig.transFigure.inverted()
    boxes = [ax.get_position().transformed(ax.get_figure(root=False).transSubfigure).transformed(to_figure)
             for ax in fig.get_axes() if ax.get_visible() and ax.axison and not hasattr(ax, "_colorbar")]
    if not boxes:
        return 1
    return max(sum(1 for other in boxes if other.y0 < box.y1 and box.y0 < other.y1) for box in boxes)


def min_font_px(fig) -> float:
    """The size in CSS pixels (:data:`CSS_DPI` per inch) of the smallest visible, non-empty text
    of ``fig`` at its natural size; NaN when it has no text."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * CSS_DPI / 72 if sizes else float("nan")


def figure_png(fig) -> bytes:
    """``fig`` as PNG bytes at :data:`DPI`, cropped to its content, with :func:`panel_columns`
    recorded under :data:`PANEL_COLUMNS_KEY` and :func:`min_font_px` under :data:`MIN_FONT_KEY`."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight",
                metadata={PANEL_COLUMNS_KEY: str(panel_columns(fig)), MIN_FONT_KEY: f"{min_font_px(fig):.2f}"})
    return buffer.getvalue()


def figure_command(chapter: str, profile: str) -> str:
    """The shell command that executes ``chapter`` at ``profile`` and renders the book (run in
    the repository root)."""
    return f".venv/bin/python -m dropkit.book --profile {profile} --chapter {chapter}"


def write_figure_data(name: str, data, directory: Path | str = DATA_DIR) -> Path:
    """Write ``data`` (a non-empty DataFrame: the numbers a figure plots) to
    ``<directory>/<name>.csv`` and return the path; ``ValueError`` for an empty table."""
    if data is None or len(data) == 0:
        raise ValueError(f"figure {name!r}: no plotted numbers to write (pass data=, or draw it with "
                         "dropkit.plots, whose functions record them)")
    path = Path(directory) / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    data.to_csv(path, index=False, float_format="%.6g")
    return path


def figure_source_markdown(name: str, chapter: str, profile: str) -> str:
    """The MyST line placed under figure ``name``: its regeneration command
    (:func:`figure_command`) and a download link to its CSV (``data/<name>.csv``, relative to
    the chapter's page)."""
    return (f"{{download}}`Numbers of this figure (CSV) <data/{name}.csv>` · regenerate it: "
            f"`{figure_command(chapter, profile)}`")


def _book_import(module: str, name: str):
    """``name`` from ``module``, a package of the ``book`` extra (IPython, myst_nb), or a clear
    ImportError: the library itself does not need them, only publishing into a notebook does."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        raise ImportError(f"publishing into a notebook needs {module.split('.')[0]} (pip install "
                          "'dropkit[book]'); outside a notebook use figure_png(fig)") from None


def publish_figure(name: str, fig, *, chapter: str, profile: str, data=None,
                   directory: Path | str = DATA_DIR) -> None:
    """Glue ``fig`` under ``name`` for a ``{glue:figure}`` directive, write the numbers it plots
    to ``<directory>/<name>.csv``, glue the line under it (:func:`figure_source_markdown`) under
    ``<name>-source`` for a ``{glue:md}`` directive, and close the figure (returns None, so the
    notebook cell shows nothing).

    The image is displayed :data:`CSS_DPI` pixels per inch of the matplotlib figure (at most the
    text width) and links to the full-resolution PNG. ``name`` is also the figure's label in the
    book by convention (``paper-figure-3``, ``paper-figure-4a`` ...). ``data``: the plotted
    numbers (a DataFrame), by default :func:`dropkit.plots.figure_data` of ``fig``; ``chapter``
    and ``profile`` make the regeneration command.
    """
    import matplotlib.pyplot as plt

    from dropkit.plots import figure_data

    Image, glue = _book_import("IPython.display", "Image"), _book_import("myst_nb", "glue")
    Markdown = _book_import("IPython.display", "Markdown")

    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} must be a non-empty string")
    write_figure_data(name, figure_data(fig) if data is None else data, directory)
    png = figure_png(fig)
    plt.close(fig)
    from PIL import Image as PILImage

    width = PILImage.open(io.BytesIO(png)).width
    glue(name, Image(data=png, format="png", width=int(round(width * CSS_DPI / DPI))), display=False)
    glue(f"{name}-source", Markdown(figure_source_markdown(name, chapter, profile)), display=False)


def publish_text(name: str, text: str) -> None:
    """Glue the sentence ``text`` under ``name``, for a ``{glue:text}`` role in the chapter's
    Markdown (e.g. a figure caption's sentence about the settings it draws, which depends on the
    results)."""
    glue = _book_import("myst_nb", "glue")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} must be a non-empty string")
    if not isinstance(text, str):
        raise ValueError(f"text={text!r} must be a string")
    glue(name, text, display=False)


#: Suffix of a column holding the standard deviation of the column it extends (``"X sd"`` of ``"X"``).
SD_SUFFIX = " sd"
#: How :func:`markdown_table` heads the column that counts the seeds (runs) behind each row.
COUNT_COLUMNS = {"seeds": "n"}


def _number(value, decimals: int, integer: bool) -> str:
    if value != value:
        return ""
    return f"{value:.0f}" if integer else f"{value:.{decimals}f}"


def markdown_table(table, title: str, *, decimals: int = 2) -> str:
    """A pandas table as a MyST ``{table}`` directive titled ``title`` (numbered by Sphinx),
    the index levels as the first columns (none for a plain, unnamed 0..n-1 index), numbers
    right-aligned. A column ``X`` followed by ``X sd`` is shown as one column ``X`` of
    ``mean ± sd`` (the mean alone where sd is NaN); ``seeds`` is headed ``n``; floats are
    rounded to ``decimals``, and a float column whose values are all whole numbers (e.g. mean
    class counts that do not vary) is shown without decimals."""
    import pandas as pd

    # pandas 3 makes set_index of a 0..n-1 column (e.g. seeds 0-4) a RangeIndex: its name tells them apart
    plain = isinstance(table.index, pd.RangeIndex) and table.index.name is None
    shown = table.copy() if plain else table.reset_index()
    numeric = {column: pd.api.types.is_numeric_dtype(shown[column].dtype) for column in shown.columns}
    for column in list(shown.columns):
        if pd.api.types.is_float_dtype(shown[column].dtype):
            values = shown[column].dropna()
            integer = bool(len(values)) and bool((values == values.round()).all()) and not str(column).endswith(SD_SUFFIX)
            shown[column] = shown[column].map(lambda v, i=integer: _number(v, decimals, i))
    for column in [c for c in shown.columns if f"{c}{SD_SUFFIX}" in shown.columns]:
        sd = shown.pop(f"{column}{SD_SUFFIX}")
        shown[column] = [f"{m} ± {s}" if m and s else m for m, s in zip(shown[column], sd)]
    numeric = [numeric[column] for column in shown.columns]
    shown = shown.rename(columns=COUNT_COLUMNS)
    body = shown.to_markdown(index=False, disable_numparse=True,
                             colalign=["right" if n else "left" for n in numeric])
    # A colon fence: a backtick fence's info string (the caption) may not hold backticks (CommonMark).
    return f":::{{table}} {title}\n{body}\n:::"


def bullet_list(sentences) -> str:
    """Sentences as a Markdown bullet list."""
    return "\n".join(f"- {sentence}" for sentence in sentences)


def show_markdown(*parts: str) -> None:
    """Display Markdown (MyST) text in a notebook: the book renders it as part of the page."""
    Markdown = _book_import("IPython.display", "Markdown")
    display = _book_import("IPython.display", "display")
    display(Markdown("\n\n".join(parts)))
