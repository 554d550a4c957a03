"""The paper's claims, read line by line from the paper (Sections 2-5 and the appendices), one
module per chapter of the book.

Each :class:`Claim` holds a short verbatim quote and where it stands in the paper, the quantity it
is about in the paper's own metric, the densities the paper states, its hypothesis type (a rule of
:mod:`dropkit.claims`, with the margin and where the margin comes from), the paper's number when it
gives one (with its setting), and how to measure it on one setting's result rows
(``measure(frame, context) -> Evidence``). A statement the paper does not make has no claim; one
this book cannot test has a claim with :class:`dropkit.claims.NotTestable` and the reason.

Modules: :mod:`.theory` (chapter 01), :mod:`.bias` (02), :mod:`.evaluation` (03), :mod:`.cdbw`
(04), :mod:`.imbalanced` (05), :mod:`.groups` (06), :mod:`.query` (07), :mod:`.elsewhere`
(statements that need data or models this book does not have).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from dropkit.claims import Evidence, Rule

__all__ = ["Claim", "Context", "CHAPTER_OF", "claims"]


@dataclass(frozen=True)
class Context:
    """What a measurement needs besides the rows: ``reference``, the paper's reference density
    (0.5: "when pruning half"); ``low``, its "low density" (0.1); ``default_query``, the query
    length (epochs) of the other chapters (Figure 15's reference); ``cdbw_rule``, the CDB-W
    weighting rule whose rows the CDB-W claims read (``"authors"`` where its rows exist, as the
    paper's numbers come from the authors' code; else ``"paper"``)."""

    reference: float = 0.5
    low: float = 0.1
    default_query: float = 1
    cdbw_rule: str = "paper"


@dataclass(frozen=True)
class Claim:
    """One experimental statement of the paper.

    id: a stable name. short: the claim in a few words (the scorecard's text). quote: a short
    verbatim quote. where: section, page element (figure/caption) of the paper. quantity: what is
    compared, in the paper's metric. densities: the densities the paper states (or that it states
    none and which ones are used here). rule: the hypothesis type (a :class:`dropkit.claims.Rule`).
    margin: where a margin comes from (for equivalence and non-inferiority), in words. paper: the
    paper's number with its setting, or None. experiment: the experiment set(s) whose rows it reads
    (``"theory"``/``"theory_draws"`` for chapter 01's simulations, ``None`` for a claim that is not
    testable here). figure: the book label of the figure behind it. measure: ``measure(frame,
    context) -> Evidence`` on the labelled rows of one setting. needs: curve labels that a
    setting must run for the claim to apply (a setting without one gets no row, and the page says
    why).
    """

    id: str
    short: str
    quote: str
    where: str
    quantity: str
    densities: str
    rule: Rule
    experiment: str | tuple[str, ...] | None
    figure: str | None = None
    measure: Callable[[pd.DataFrame, Context], Evidence] | None = None
    margin: str = ""
    paper: str | None = None
    needs: tuple[str, ...] = ()

    @property
    def experiments(self) -> tuple[str, ...]:
        if self.experiment is None:
            return ()
        return (self.experiment,) if isinstance(self.experiment, str) else tuple(self.experiment)

    @property
    def chapter(self) -> str:
        return CHAPTER_OF[self.experiments[0]] if self.experiments else "elsewhere"


#: The book chapter of each experiment set.
CHAPTER_OF = {
    "theory": "01_theory",
    "theory_draws": "01_theory",
    "bias_benchmark": "02_bias_benchmark",
    "drop_evaluation": "03_drop_evaluation",
    "cdbw": "04_cdbw",
    "imbalanced": "05_imbalanced",
    "waterbirds": "06_waterbirds",
    "pretraining_ablation": "07_pretraining_ablation",
}


def claims(methods=None, strategies=None) -> tuple[Claim, ...]:
    """Every registered claim, in the paper's order within each chapter. ``methods`` /
    ``strategies``: the bias benchmark's score methods and the DRoP evaluation's strategies to
    register per-method claims for (None: the ``default`` profile's)."""
    from dropkit.registry import bias, cdbw, elsewhere, evaluation, groups, imbalanced, query, theory

    return (*theory.CLAIMS, *bias.claims(methods), *evaluation.claims(strategies), *cdbw.CLAIMS,
            *imbalanced.CLAIMS, *groups.CLAIMS, *query.CLAIMS, *elsewhere.CLAIMS)
