"""Chapter 04: the claims of Section 4's "A DRO baseline" (CDB-W), Figure 7.

CDB-W's rows come in two weighting rules (chapter 04): ours, ``w_k = (1 - r_k)/Z`` as the paper's
text describes it, and the authors' code's, ``w_k = 1 - r_k`` in a per-batch weighted mean. The
scorecard reads those of ``Context.cdbw_rule`` (:func:`cdbw_label`):
:func:`dropkit.scorecard.book_scorecard` takes the authors' rule wherever its rows exist, since the
paper's Figure 7 numbers were computed with the authors' code."""

from __future__ import annotations

from dropkit.claims import AllOf, Equivalence, Evidence, NonInferiority, Superiority
from dropkit.curves import CDBW_FULL_DATASET, cdbw_rule_label
from dropkit.registry.claim import Claim
from dropkit.registry.measures import densities_of, difference, full, nearest, per_seed, seed_spread

DROP = "Random+DRoP"
_WHERE = "Section 4 (A DRO baseline), Figure 7"


def cdbw_label(base: str, ctx) -> str:
    """The curve label of a CDB-W curve (``"EL2N+CDB-W"``, ``"CDB-W+EL2N"``, ``"CDB-W (full
    dataset)"``) under the context's weighting rule."""
    return cdbw_rule_label(base, ctx.cdbw_rule)


def _full_gain(frame, ctx):
    label = cdbw_label(CDBW_FULL_DATASET, ctx)
    return Evidence({"": difference(per_seed(frame, label, "test_worst_class"), full(frame, "test_worst_class"), "pp",
                                    f"worst-class accuracy, {label} minus plain training on the full dataset")})


def _drop_over_cdbw(frame, ctx):
    d = nearest(frame, ctx.reference)
    label = cdbw_label(CDBW_FULL_DATASET, ctx)
    return Evidence({"": difference(per_seed(frame, DROP, "test_worst_class", d),
                                    per_seed(frame, label, "test_worst_class"), "pp",
                                    f"worst-class accuracy, Random+DRoP at d = {d:g} minus {label} "
                                    "(> 0: DRoP's gain over plain training exceeds CDB-W's)")})


def _keeps_bias(frame, ctx):
    label = cdbw_label("EL2N+CDB-W", ctx)
    margin, source = seed_spread(frame, "test_worst_class")
    parts = {f"d = {d:g}": difference(per_seed(frame, label, "test_worst_class", d),
                                      per_seed(frame, "EL2N", "test_worst_class", d), "pp",
                                      f"worst-class accuracy at d = {d:g}, {label} minus EL2N")
             for d in densities_of(frame, label)}
    return Evidence(parts, margin, source)


def _inferior(frame, ctx):
    label = cdbw_label("EL2N+CDB-W", ctx)
    parts = {}
    for d in densities_of(frame, label):
        theirs = per_seed(frame, label, "test_worst_class", d)
        for better in (DROP, "EL2N+DRoP"):
            parts[f"{better}, d = {d:g}"] = difference(per_seed(frame, better, "test_worst_class", d), theirs, "pp",
                                                       f"worst-class accuracy at d = {d:g}, {better} minus {label}")
    return Evidence(parts)


def _fails(frame, ctx):
    d = nearest(frame, ctx.reference)
    label = cdbw_label("CDB-W+EL2N", ctx)
    return Evidence({"": difference(per_seed(frame, "EL2N", "test_worst_class", d),
                                    per_seed(frame, label, "test_worst_class", d), "pp",
                                    f"worst-class accuracy at d = {d:g}, EL2N minus {label}")})


def _competes(frame, ctx):
    evidence = _drop_over_cdbw(frame, ctx)
    margin, source = seed_spread(frame, "test_worst_class")
    return Evidence(evidence.parts, margin, source)


CLAIMS = (
    Claim("cdbw-full-gain", "CDB-W improves the full dataset's worst-class accuracy",
          "Having access to the full dataset for training, CDB-W improves the worst-class accuracy of VGG-19 on "
          "CIFAR-100 by 5.7% compared to standard optimization", _WHERE,
          "worst-class accuracy, CDB-W minus plain training, full dataset", "full dataset (d = 1)", Superiority(),
          "cdbw", "paper-figure-7", _full_gain, paper="+5.7 pp, VGG-19 on CIFAR-100"),
    Claim("cdbw-below-drop", "CDB-W's gain is smaller than Random+DRoP's at d = 0.5",
          "which is almost twice as short of the increase obtained by removing 50% of the dataset with "
          "Random+DRoP", _WHERE, "worst-class accuracy, Random+DRoP at d = 0.5 minus CDB-W on the full dataset",
          "d = 0.5 for Random+DRoP", Superiority(), "cdbw", "paper-figure-7", _drop_over_cdbw,
          paper="+5.7 pp (CDB-W) vs +9.6 pp (Random+DRoP), VGG-19 on CIFAR-100", needs=(DROP,)),
    Claim("cdbw-el2n-keeps-bias", "EL2N+CDB-W keeps EL2N's bias at every density",
          "When applied to EL2N-pruned datasets, CDB-W maintains that original bias across sparsities", _WHERE,
          "worst-class accuracy, EL2N+CDB-W minus EL2N", "every density run (\"across sparsities\")",
          AllOf(Equivalence()), "cdbw", "paper-figure-7", _keeps_bias,
          margin="the full dataset's seed spread of worst-class accuracy", needs=("EL2N",)),
    Claim("cdbw-el2n-inferior", "EL2N+CDB-W is inferior to Random+DRoP and to EL2N+DRoP",
          "which is clearly inferior not only to Random+DRoP but also to EL2N+DRoP", _WHERE,
          "worst-class accuracy, Random+DRoP and EL2N+DRoP minus EL2N+CDB-W", "every density run",
          AllOf(Superiority()), "cdbw", "paper-figure-7", _inferior, needs=(DROP, "EL2N+DRoP")),
    Claim("cdbw-query-fails", "EL2N scored by a CDB-W query model fails (worse than EL2N)",
          "EL2N with scores computed by a query model trained with CDB-W fails spectacularly, inducing one of the "
          "worst bias observed in this study", _WHERE, "worst-class accuracy, EL2N minus CDB-W+EL2N",
          "none stated; d = 0.5", Superiority(), "cdbw", "paper-figure-7", _fails, needs=("EL2N",)),
    Claim("cdbw-drop-competes", "Random+DRoP competes with CDB-W",
          "Thus, DRoP can compete with other existing methods that directly optimize for worst-class accuracy.",
          _WHERE, "worst-class accuracy, Random+DRoP at d = 0.5 minus CDB-W on the full dataset", "d = 0.5",
          NonInferiority(), "cdbw", "paper-figure-7", _competes,
          margin="the full dataset's seed spread of worst-class accuracy", needs=(DROP,)),
)
