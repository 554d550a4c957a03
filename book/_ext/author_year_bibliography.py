"""Bibliography labels that match the book's author-year citations.

sphinxcontrib-bibtex cites ``{cite:p}`` as "(Vysogorets *et al.*, 2025)" (``bibtex_reference_style:
author_year`` in ``_config.yml``), but its default bibliography style labels the entries alpha-style
("[VAK25]"). This extension registers a pybtex formatting style ``authoryear`` whose labels are the
same author-year text ("Vysogorets et al., 2025") and whose entries are sorted by author, year and
title; ``bibtex_default_style: authoryear`` selects it.
"""

from __future__ import annotations

import re

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _last_name(person) -> str:
    return re.sub(r"[{}]", "", " ".join(person.prelast_names + person.last_names))


class AuthorYearLabelStyle(BaseLabelStyle):
    """``"Paul et al., 2021"``, ``"Sener and Savarese, 2018"``, ``"Krizhevsky, 2009"``: the text
    of sphinxcontrib-bibtex's author-year citation of the entry."""

    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield self.format_label(entry)

    def format_label(self, entry) -> str:
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [_last_name(person) for person in persons]
        if not names:
            who = entry.key
        elif len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(UnsrtStyle):
    """pybtex's ``unsrt`` entries with :class:`AuthorYearLabelStyle` labels, sorted by author."""

    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
