"""Chapter 05: the claims of Section 4's "Imbalanced datasets", Figure 8 (long-tailed data,
imbalance factors I = 2, 5, 20)."""

from __future__ import annotations

import numpy as np

from dropkit.claims import AllOf, Evidence, Superiority, paired_effect
from dropkit.curves import CDBW_FULL_DATASET, FULL_DATASET
from dropkit.registry import Claim
from dropkit.registry.measures import METRIC_NAMES, difference, nearest, per_seed

DROP = "Random+DRoP"
_WHERE = "Section 4 (Imbalanced datasets), Figure 8"
_QUOTE = ("Random+DRoP consistently beats EL2N in terms of both average and robust performance across a range of "
          "imbalance factors (I=2,5,20)")


def _factors(frame) -> list[float]:
    return sorted({float(f) for f in frame["imbalance_factor"]})


def _beats_el2n(metric: str):
    def measure(frame, ctx):
        d = nearest(frame, ctx.reference)
        return Evidence({f"I = {f:g}": difference(per_seed(frame, DROP, metric, d, imbalance_factor=f),
                                                  per_seed(frame, "EL2N", metric, d, imbalance_factor=f), "pp",
                                                  f"{METRIC_NAMES[metric]} at d = {d:g}, I = {f:g}, Random+DRoP minus EL2N")
                         for f in _factors(frame)})
    return measure


def _versus_full(label: str):
    def measure(frame, ctx):
        d = nearest(frame, ctx.reference)
        factors = _factors(frame)
        arms = []
        for f in factors:
            arms += [per_seed(frame, DROP, "test_worst_class", d, imbalance_factor=f),
                     per_seed(frame, label, "test_worst_class", None, imbalance_factor=f)]
        return Evidence({"": paired_effect(arms, lambda *v: float(np.mean([v[i] - v[i + 1] for i in range(0, len(v), 2)])),
                                           "pp", f"worst-class accuracy, Random+DRoP at d = {d:g} minus {label}, "
                                                 f"mean over I = {', '.join(f'{f:g}' for f in factors)}")})
    return measure


CLAIMS = (
    Claim("imbalanced-worst", "On long-tailed data Random+DRoP beats EL2N in worst-class accuracy", _QUOTE, _WHERE,
          "worst-class accuracy, Random+DRoP minus EL2N", "none stated; d = 0.5, at each imbalance factor",
          AllOf(Superiority()), "imbalanced", "paper-figure-8", _beats_el2n("test_worst_class")),
    Claim("imbalanced-accuracy", "On long-tailed data Random+DRoP beats EL2N in average accuracy", _QUOTE, _WHERE,
          "average accuracy, Random+DRoP minus EL2N", "none stated; d = 0.5, at each imbalance factor",
          AllOf(Superiority()), "imbalanced", "paper-figure-8", _beats_el2n("test_accuracy")),
    Claim("imbalanced-vs-full", "Random+DRoP reduces the bias of the unpruned long-tailed data",
          "it almost always reduces bias of the unpruned imbalanced TinyImageNet", _WHERE,
          "worst-class accuracy, Random+DRoP minus plain training on the unpruned data (mean over factors: "
          "\"almost always\")", "none stated; d = 0.5", Superiority(), "imbalanced", "paper-figure-8",
          _versus_full(FULL_DATASET)),
    Claim("imbalanced-vs-cdbw", "Random+DRoP beats CDB-W training on the unpruned long-tailed data",
          "even when training with a robustness-aware CDB-W procedure", _WHERE,
          "worst-class accuracy, Random+DRoP minus CDB-W on the unpruned data (mean over factors)",
          "none stated; d = 0.5", Superiority(), "imbalanced", "paper-figure-8", _versus_full(CDBW_FULL_DATASET)),
)
