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

from dropkit.registry.claim import CHAPTER_OF, Claim, Context

__all__ = ["Claim", "Context", "CHAPTER_OF", "claims"]


def claims(methods=None, strategies=None) -> tuple[Claim, ...]:
    """Every registered claim, in the paper's order within each chapter. ``methods`` /
    ``strategies``: the bias benchmark's score methods and the DRoP evaluation's strategies to
    register per-method claims for (None: the ``default`` profile's)."""
    from dropkit.registry import bias, cdbw, elsewhere, evaluation, groups, imbalanced, query, theory

    return (*theory.CLAIMS, *bias.claims(methods), *evaluation.claims(strategies), *cdbw.CLAIMS,
            *imbalanced.CLAIMS, *groups.CLAIMS, *query.CLAIMS, *elsewhere.CLAIMS)
