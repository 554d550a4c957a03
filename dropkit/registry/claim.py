"""A claim of the paper and what measuring it needs (:class:`Claim`, :class:`Context`), and the
book chapter of each experiment set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from dropkit.claims import Evidence, Rule
from dropkit.profiles import EXPERIMENT_SETS

__all__ = ["Claim", "Context", "CHAPTER_OF"]


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
    def simulated(self) -> bool:
        """Whether the claim reads chapter 01's simulations (replicates: datasets or random
        mixtures, one table, no settings) rather than the result rows of an experiment set."""
        return bool(self.experiments) and self.experiments[0].startswith("theory")

    @property
    def chapter(self) -> str:
        return CHAPTER_OF[self.experiments[0]] if self.experiments else "elsewhere"


#: The book chapter of each experiment set.
CHAPTER_OF = {"theory": "01_theory", "theory_draws": "01_theory", **EXPERIMENT_SETS}
