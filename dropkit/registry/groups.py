"""Chapter 06: the claims of Section 4's "Group Distributional Robustness: Waterbirds", Figure 9
(here the spurious-cue Fashion-MNIST of chapter 06: groups are label x background cue)."""

from __future__ import annotations

from dropkit.claims import AllOf, Evidence, Superiority
from dropkit.registry import Claim
from dropkit.registry.measures import METRIC_NAMES, difference, full, nearest, per_seed

_WHERE = "Section 4 (Group Distributional Robustness), Figure 9"
_QUOTE = ("Figure 9 shows that Random+DRoP and EL2N+DRoP achieve a significant improvement of the worst-group "
          "accuracy and other metrics")


def _worst_group(label: str):
    def measure(frame, ctx):
        d = nearest(frame, ctx.reference)
        return Evidence({"": difference(per_seed(frame, label, "test_worst_group", d), full(frame, "test_worst_group"),
                                        "pp", f"worst-group accuracy, {label} at d = {d:g} minus full dataset")})
    return measure


def _other_metrics(frame, ctx):
    d = nearest(frame, ctx.reference)
    return Evidence({f"{label}: {METRIC_NAMES[m]}": difference(full(frame, m), per_seed(frame, label, m, d), "pp",
                                                               f"{METRIC_NAMES[m]}, full dataset minus {label} at d = {d:g}")
                     for label in ("Random+DRoP", "EL2N+DRoP") for m in ("test_group_gap", "test_group_std")})


CLAIMS = (
    Claim("groups-random-drop", "Random+DRoP improves worst-group accuracy", _QUOTE, _WHERE,
          "worst-group accuracy, Random+DRoP minus the full dataset", "none stated; d = 0.5", Superiority(),
          "waterbirds", "paper-figure-9", _worst_group("Random+DRoP")),
    Claim("groups-el2n-drop", "EL2N+DRoP improves worst-group accuracy", _QUOTE, _WHERE,
          "worst-group accuracy, EL2N+DRoP minus the full dataset", "none stated; d = 0.5", Superiority(),
          "waterbirds", "paper-figure-9", _worst_group("EL2N+DRoP")),
    Claim("groups-other-metrics", "Random+DRoP and EL2N+DRoP improve the other group metrics", _QUOTE, _WHERE,
          "max-min gap and std of group accuracies, full dataset minus Random+DRoP and EL2N+DRoP",
          "none stated; d = 0.5", AllOf(Superiority()), "waterbirds", "paper-figure-9", _other_metrics),
)
