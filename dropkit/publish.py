"""Putting a chapter's figures, tables and verdicts into the book, through myst-nb.

A figure is *glued* (:func:`publish_figure`) under a name and placed by a ``{glue:figure}``
directive in the chapter's Markdown, whose ``:name:`` makes Sphinx number it and lets any chapter
cite it with ``{numref}``; a caption's sentence that depends on the results (the settings a figure
draws) is glued with :func:`publish_text` and placed with the ``{glue:text}`` role. The PNG is
saved at 1.5x the displayed resolution: the book shows it at the text width and a click opens it
at full size (Sphinx links every scaled image to its file). Tables and verdict sentences are shown as Markdown (:func:`show_markdown`), so they render
as numbered tables and prose, not as console output.
"""

from __future__ import annotations

import io

#: Pixels per inch of the displayed figure (the PNG holds ``DPI / CSS_DPI`` times more).
CSS_DPI = 100
DPI = 150
#: PNG text key that records how many panels the figure has side by side (read by the book test).
PANEL_COLUMNS_KEY = "dropkit:panel-columns"


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


def figure_png(fig) -> bytes:
    """``fig`` as PNG bytes at :data:`DPI`, cropped to its content, with :func:`panel_columns`
    recorded under :data:`PANEL_COLUMNS_KEY`."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight",
                metadata={PANEL_COLUMNS_KEY: str(panel_columns(fig))})
    return buffer.getvalue()


def _book_import(module: str, name: str):
    """``name`` from ``module``, a package of the ``book`` extra (IPython, myst_nb), or a clear
    ImportError: the library itself does not need them, only publishing into a notebook does."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        raise ImportError(f"publishing into a notebook needs {module.split('.')[0]} (pip install "
                          "'dropkit[book]'); outside a notebook use figure_png(fig)") from None


def publish_figure(name: str, fig) -> None:
    """Glue ``fig`` under ``name`` for a ``{glue:figure}`` directive and close it.

    The image is displayed :data:`CSS_DPI` pixels per inch of the matplotlib figure (at most the
    text width) and links to the full-resolution PNG. ``name`` is also the figure's label in the
    book by convention (``paper-figure-3``, ``paper-figure-4a`` ...).
    """
    import matplotlib.pyplot as plt

    Image, glue = _book_import("IPython.display", "Image"), _book_import("myst_nb", "glue")

    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} must be a non-empty string")
    png = figure_png(fig)
    plt.close(fig)
    from PIL import Image as PILImage

    width = PILImage.open(io.BytesIO(png)).width
    glue(name, Image(data=png, format="png", width=int(round(width * CSS_DPI / DPI))), display=False)


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


def markdown_table(table, title: str, *, decimals: int = 2) -> str:
    """A pandas table as a MyST ``{table}`` directive titled ``title`` (numbered by Sphinx),
    floats rounded to ``decimals`` and numbers right-aligned, the index levels as the first
    columns (none for a plain 0..n-1 index)."""
    import pandas as pd

    plain = isinstance(table.index, pd.RangeIndex)
    shown = table.copy() if plain else table.reset_index()
    numeric = [pd.api.types.is_numeric_dtype(shown[column].dtype) for column in shown.columns]
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column].dtype):
            shown[column] = shown[column].map(lambda v: "" if v != v else f"{v:.{decimals}f}")
    body = shown.to_markdown(index=False, disable_numparse=True,
                             colalign=["right" if n else "left" for n in numeric])
    return f"```{{table}} {title}\n{body}\n```"


def bullet_list(sentences) -> str:
    """Sentences as a Markdown bullet list."""
    return "\n".join(f"- {sentence}" for sentence in sentences)


def show_markdown(*parts: str) -> None:
    """Display Markdown (MyST) text in a notebook: the book renders it as part of the page."""
    Markdown = _book_import("IPython.display", "Markdown")
    display = _book_import("IPython.display", "display")
    display(Markdown("\n\n".join(parts)))
