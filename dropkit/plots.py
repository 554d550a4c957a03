"""Plotting helpers shared by the book's notebooks.

:func:`show_figure` is how every notebook publishes a figure: it renders the matplotlib figure to
PNG and displays one self-contained HTML ``<figure>`` whose ``id`` names the paper figure it
reproduces (``paper-figure-3``, ``paper-figure-4a`` ...) and whose caption states the data, model
and scale. The book's tests look figures up by that ``id``.
"""

from __future__ import annotations

import base64
import html
import io
import re

_FIGURE_ID = re.compile(r"^[0-9]+[a-z]?(-[a-z0-9]+)*$")


def figure_html(fig, paper_figure: str, caption: str, *, dpi: int = 110) -> str:
    """Return the HTML ``<figure id="paper-figure-{paper_figure}">`` for a matplotlib figure.

    ``paper_figure`` is the paper's figure number with an optional panel/suffix, e.g. ``"3"``,
    ``"4a"`` or ``"1-worst"``; ``caption`` is plain text (escaped here).
    """
    if not _FIGURE_ID.match(str(paper_figure)):
        raise ValueError(f"paper_figure={paper_figure!r} must look like '3', '4a' or '1-worst'")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    number = re.match(r"[0-9]+", str(paper_figure)).group(0)
    alt = html.escape(f"Reproduction of paper Figure {paper_figure}", quote=True)
    return (
        f'<figure id="paper-figure-{paper_figure}" class="dropkit-figure">'
        f'<img src="data:image/png;base64,{data}" alt="{alt}" style="max-width:100%"/>'
        f"<figcaption><strong>Paper Figure {number}"
        f"{'' if str(paper_figure) == number else ' (' + html.escape(str(paper_figure)) + ')'}.</strong> "
        f"{html.escape(caption)}</figcaption></figure>"
    )


def show_figure(fig, paper_figure: str, caption: str) -> None:
    """Display ``fig`` in a notebook as a captioned HTML figure and close it (see :func:`figure_html`)."""
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    display(HTML(figure_html(fig, paper_figure, caption)))
    plt.close(fig)
