"""Chapter 07: the claims of Appendix F (the query model's training length), Figure 15."""

from __future__ import annotations

import numpy as np

from dropkit.claims import AllOf, Equivalence, Evidence, Superiority, paired_effect
from dropkit.registry.claim import Claim
from dropkit.registry.measures import densities_of, per_seed, seed_spread

DROP = "Random+DRoP"
_WHERE = "Appendix F, Figure 15"


def _lengths(frame) -> list[float]:
    lengths = sorted({float(q) for q in frame.loc[frame["protocol"] != "none", "query_epochs"]})
    if not lengths:
        raise ValueError("no pruned runs, so no query length")
    return lengths


def _saturates(frame, ctx):
    densities = densities_of(frame, DROP)
    longer = [q for q in _lengths(frame) if q > ctx.default_query]
    if not longer:
        raise ValueError(f"no query length above the default {ctx.default_query:g}")
    margin, source = seed_spread(frame, "test_worst_class")
    parts = {}
    for q in longer:
        arms = []
        for d in densities:
            arms += [per_seed(frame, DROP, "test_worst_class", d, query_epochs=ctx.default_query),
                     per_seed(frame, DROP, "test_worst_class", d, query_epochs=q)]
        parts[f"{q:g} epochs"] = paired_effect(
            arms, lambda *v: float(np.mean([v[i] - v[i + 1] for i in range(0, len(v), 2)])), "pp",
            f"worst-class accuracy of Random+DRoP, query {ctx.default_query:g} minus {q:g} epochs, mean over "
            f"d = {', '.join(f'{d:g}' for d in densities)}")
    return Evidence(parts, margin, source)


def _less_at_large_density(frame, ctx):
    densities = densities_of(frame, DROP)
    shortest = _lengths(frame)[0]
    if shortest >= ctx.default_query or len(densities) < 2:
        raise ValueError("needs a query length below the default and two densities")
    low, high = densities[0], densities[-1]
    arms = [per_seed(frame, DROP, "test_worst_class", d, query_epochs=q)
            for d in (low, high) for q in (ctx.default_query, shortest)]
    return Evidence({"": paired_effect(arms, lambda a, b, c, e: (a - b) - (c - e), "pp",
                                       f"worst-class loss of Random+DRoP from a {shortest:g}-epoch instead of a "
                                       f"{ctx.default_query:g}-epoch query model, at d = {low:g} minus at d = {high:g}")})


CLAIMS = (
    Claim("query-saturates", "DRoP saturates at the default query length (10 % of training)",
          "the downstream performance of DRoP saturates at 10 pre-training epochs or earlier", _WHERE,
          "worst-class accuracy of Random+DRoP, default query length minus each longer one (mean over densities)",
          "every density run", AllOf(Equivalence()), "pretraining_ablation", "paper-figure-15", _saturates,
          margin="the full dataset's seed spread of worst-class accuracy", paper="≤ 10 query epochs"),
    Claim("query-less-at-large-density", "Larger densities need less query training",
          "with lower pruning ratios allowing even less training than more aggressive ones", _WHERE,
          "worst-class loss from the shortest query, at the lowest minus at the highest density",
          "the lowest and highest densities run", Superiority(), "pretraining_ablation", "paper-figure-15",
          _less_at_large_density),
)
