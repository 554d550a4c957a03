"""Chapter 03: the claims of Section 4 (DRoP: results), Figures 5, 6 and 11 and Section 5.

The reference density is 0.5 (the paper's "when pruning half of CIFAR-100"); "low densities" are
0.1 and 0.3 (the paper's "at these low densities"). "A beats every B" claims are
intersection-union tests over every other pruning protocol the setting runs."""

from __future__ import annotations

from dropkit.claims import AllOf, Context as ContextRule, Evidence, Superiority, paired_effect
from dropkit.curves import METHOD_NAMES
from dropkit.registry.claim import Claim
from dropkit.registry.measures import (
    METRIC_NAMES,
    class_correlation,
    densities_of,
    difference,
    full,
    low_densities,
    nearest,
    per_seed,
    pruned_labels,
    slope,
    versus_every,
)

DROP = "Random+DRoP"
_S4 = "Section 4"
_LOW = "low densities: 0.1 and 0.3"


def _worst_gain(frame, ctx):
    d = nearest(frame, ctx.reference)
    return Evidence({"": difference(per_seed(frame, DROP, "test_worst_class", d), full(frame, "test_worst_class"),
                                    "pp", f"worst-class accuracy, Random+DRoP at d = {d:g} minus full dataset")})


def _all_metrics(frame, ctx):
    d = nearest(frame, ctx.reference)
    parts = {"worst-class": _worst_gain(frame, ctx).parts[""]}
    for metric in ("test_gap", "test_std"):
        parts[METRIC_NAMES[metric]] = difference(full(frame, metric), per_seed(frame, DROP, metric, d), "pp",
                                                 f"{METRIC_NAMES[metric]}, full dataset minus Random+DRoP at d = {d:g}")
    return Evidence(parts)


def _accuracy_cost(frame, ctx):
    d = nearest(frame, ctx.reference)
    return Evidence({"": difference(full(frame, "test_accuracy"), per_seed(frame, DROP, "test_accuracy", d), "pp",
                                    f"average-accuracy cost, full dataset minus Random+DRoP at d = {d:g}")})


def _keeps_improving(frame, ctx):
    densities = [d for d in densities_of(frame, DROP) if d >= 0.3 - 1e-9]
    values = slope(frame, DROP, "test_worst_class", densities)
    return Evidence({"": paired_effect([values], lambda v: -v, "pp per unit density",
                                       f"minus the slope of Random+DRoP's worst-class accuracy on density over "
                                       f"d = {', '.join(f'{d:g}' for d in densities)} (> 0: higher as it prunes)")})


def _others_rise(frame, ctx):
    parts = {}
    for label in pruned_labels(frame):
        if label == DROP:
            continue
        densities = densities_of(frame, label)
        parts[label] = paired_effect([slope(frame, label, "test_worst_class", densities)], lambda v: v,
                                     "pp per unit density",
                                     f"slope of {label}'s worst-class accuracy on density over d = "
                                     f"{', '.join(f'{d:g}' for d in densities)} (> 0: best at high density)")
    return Evidence(parts)


def _accuracy_loss_low(frame, ctx):
    return Evidence({f"d = {d:g}": difference(per_seed(frame, "Random", "test_accuracy", d),
                                              per_seed(frame, DROP, "test_accuracy", d), "pp",
                                              f"average accuracy at d = {d:g}, Random minus Random+DRoP")
                     for d in low_densities(frame)})


def _accuracy_beats_low(frame, ctx):
    parts = {}
    for d in low_densities(frame):
        mine = per_seed(frame, DROP, "test_accuracy", d)
        for other in pruned_labels(frame):
            if other not in (DROP, "Random"):
                parts[f"{other}, d = {d:g}"] = difference(mine, per_seed(frame, other, "test_accuracy", d), "pp",
                                                          f"average accuracy at d = {d:g}, Random+DRoP minus {other}")
    return Evidence(parts)


def _beats_every(metric: str, higher_is_better: bool = True):
    def measure(frame, ctx):
        return Evidence(versus_every(frame, DROP, metric, nearest(frame, ctx.reference), label_higher=higher_is_better))
    return measure


def _plain(frame) -> list[str]:
    """The existing pruning methods present: Random and the plain score-based strategies."""
    return [label for label in pruned_labels(frame) if label == "Random" or label in METHOD_NAMES.values()]


def _correlation_more_negative(frame, ctx):
    densities = densities_of(frame, DROP)
    mine = class_correlation(frame, DROP, densities)
    return Evidence({other: difference(class_correlation(frame, other, [d for d in densities
                                                                      if d in densities_of(frame, other)]),
                                       mine, "r", f"class-density correlation (mean over densities), {other} minus "
                                                  "Random+DRoP")
                     for other in _plain(frame)})


def _correlation_negative(frame, ctx):
    densities = densities_of(frame, DROP)
    return Evidence({"": paired_effect([class_correlation(frame, DROP, densities)], lambda v: -v, "r",
                                       "minus the class-density correlation of Random+DRoP (mean over d = "
                                       f"{', '.join(f'{d:g}' for d in densities)}; > 0: easy classes pruned more)")})


def _class_density_spread(frame, label: str, density: float) -> dict[int, float]:
    """Per seed: the standard deviation across classes of the class densities (kept / size, in
    percent) of ``label`` at ``density``: 0 for a class-balanced selection of a balanced dataset."""
    import numpy as np

    rows = frame[(frame["label"] == label) & np.isclose(frame["density"].astype(float), density)]
    if rows.empty:
        raise ValueError(f"no runs of {label!r} at density {density:g}")
    return {int(seed): 100 * float(np.mean([np.std(np.asarray(c, float) / np.asarray(n, float))
                                            for c, n in zip(group["class_counts"], group["class_sizes"])]))
            for seed, group in rows.groupby("seed")}


def _imbalanced(frame, ctx):
    d = nearest(frame, ctx.reference)
    mine = _class_density_spread(frame, DROP, d)
    return Evidence({other: difference(mine, _class_density_spread(frame, other, d), "pp",
                                       f"std across classes of the class density at d = {d:g}, Random+DRoP minus {other}")
                     for other in _plain(frame)})


def _versus(first: str, second: str):
    def measure(frame, ctx):
        d = nearest(frame, ctx.reference)
        return Evidence({"": difference(per_seed(frame, first, "test_worst_class", d),
                                        per_seed(frame, second, "test_worst_class", d), "pp",
                                        f"worst-class accuracy at d = {d:g}, {first} minus {second}")})
    return measure


def _random_within(strategies):
    def measure(frame, ctx):
        d = nearest(frame, ctx.reference)
        mine = per_seed(frame, DROP, "test_worst_class", d)
        return Evidence({f"{name}+DRoP": difference(mine, per_seed(frame, f"{name}+DRoP", "test_worst_class", d), "pp",
                                                    f"worst-class accuracy at d = {d:g}, Random+DRoP minus {name}+DRoP")
                         for name in strategies if (frame["label"] == f"{name}+DRoP").any()})
    return measure


def claims(strategies=None) -> tuple[Claim, ...]:
    """Chapter 03's claims; per-strategy claims for ``strategies`` (None: EL2N and Forgetting)."""
    names = [METHOD_NAMES[m] for m in (strategies or ("el2n", "forgetting"))]
    out = [
        Claim("drop-worst-gain", "Random+DRoP raises worst-class accuracy above the full dataset's",
              "when pruning half of CIFAR-100, we achieve an increase in the worst-class accuracy of VGG-19 from "
              "35.8% to 45.4%", f"{_S4}, Figure 5", "worst-class accuracy, Random+DRoP minus full dataset", "d = 0.5",
              Superiority(), "drop_evaluation", "paper-figure-5", _worst_gain,
              paper="35.8 → 45.4 % (+9.6 pp), VGG-19 on CIFAR-100 at d = 0.5", needs=(DROP,)),
        Claim("drop-all-metrics", "Random+DRoP improves every robustness metric over the full dataset",
              "Random+DRoP improves all robustness metrics compared to the full dataset on all model-dataset pairs",
              f"{_S4}, Figures 5 and 11", "worst-class accuracy (higher), max-min gap and std of class accuracies "
              "(lower), Random+DRoP against the full dataset", "none stated; d = 0.5", AllOf(Superiority()),
              "drop_evaluation", "paper-figure-11", _all_metrics, needs=(DROP,)),
        Claim("drop-accuracy-cost", "Random+DRoP's average-accuracy cost at d = 0.5 (paper: under 6 points)",
              "an almost 10% change at a price of under 6% of the average performance", f"{_S4}, Figure 5",
              "average-accuracy cost, full dataset minus Random+DRoP", "d = 0.5",
              ContextRule("< 6 pp (VGG-19 on CIFAR-100)"), "drop_evaluation", "paper-figure-5", _accuracy_cost,
              paper="< 6 pp, VGG-19 on CIFAR-100 at d = 0.5", needs=(DROP,)),
        Claim("drop-keeps-improving", "Random+DRoP's worst-class accuracy rises as it prunes (down to 30 %)",
              "our method reduces classification bias induced by the datasets as pruning continues, e.g., up to "
              "30–40% dataset density of TinyImageNet", f"{_S4}, Figure 5",
              "slope of Random+DRoP's worst-class accuracy on density", "0.3 to 0.9", Superiority(),
              "drop_evaluation", "paper-figure-5", _keeps_improving,
              paper="improves down to 30-40 % density, ResNet-18 on TinyImageNet", needs=(DROP,)),
        Claim("drop-others-peak-high", "The other protocols do best at high densities",
              "all other baselines that arguably achieve their highest worst-class accuracy at high dataset "
              "densities (80–90%)", f"{_S4}, Figure 5", "slope of each other protocol's worst-class accuracy on "
              "density", "every density run", AllOf(Superiority()), "drop_evaluation", "paper-figure-5",
              _others_rise, paper="best worst-class accuracy at 80-90 % density", needs=(DROP,)),
        Claim("drop-accuracy-loss-low", "At low densities Random+DRoP loses more average accuracy than Random",
              "Random+DRoP does suffer a slightly larger degradation of the average accuracy as dataset density "
              "decreases compared to global … random pruning", f"{_S4}, Figure 5",
              "average accuracy, Random minus Random+DRoP", _LOW, AllOf(Superiority()), "drop_evaluation",
              "paper-figure-5", _accuracy_loss_low, needs=(DROP, "Random")),
        Claim("drop-accuracy-beats-low", "At low densities Random+DRoP's average accuracy beats every other pruning algorithm's",
              "Yet at these low densities, the average accuracy of Random+DRoP exceeds that of all other pruning "
              "algorithms", f"{_S4}, Figure 5", "average accuracy, Random+DRoP minus each protocol but Random",
              _LOW, AllOf(Superiority()), "drop_evaluation", "paper-figure-5", _accuracy_beats_low, needs=(DROP,)),
        Claim("drop-best-worst-class", "Random+DRoP has the best worst-class accuracy of all pruning protocols",
              "Random+DRoP is by far the state-of-the-art data pruning algorithm in the robustness framework. Not "
              "only is it superior to prior pruning baselines", f"{_S4} (A DRO baseline), Figure 5; Section 5",
              "worst-class accuracy, Random+DRoP minus each other protocol", "none stated; d = 0.5",
              AllOf(Superiority()), "drop_evaluation", "paper-figure-5", _beats_every("test_worst_class"),
              needs=(DROP,)),
        *(Claim(f"drop-best-{key}", f"Random+DRoP has the lowest {text} of all pruning protocols",
                "Random+DroP consistently outperforms all baselines with respect to these additional measures of "
                "distributional robustness besides worst-class accuracy", "Appendix D, Figure 11 (caption)",
                f"{text} of class accuracies, each other protocol minus Random+DRoP", "none stated; d = 0.5",
                AllOf(Superiority()), "drop_evaluation", "paper-figure-11",
                _beats_every(metric, higher_is_better=False), needs=(DROP,))
          for key, metric, text in (("gap", "test_gap", "max-min gap"), ("std", "test_std", "std"))),
        Claim("drop-imbalanced", "DRoP's datasets are more imbalanced than existing methods'",
              "DRoP produces exceptionally imbalanced datasets unless the density d is too low", f"{_S4}, Figure 6",
              "std across classes of the class density (kept / class size), Random+DRoP minus each existing method "
              "(Random and the plain strategies)", "none stated (\"unless d is too low\"); d = 0.5",
              AllOf(Superiority()), "drop_evaluation", "paper-figure-6", _imbalanced, needs=(DROP,)),
        Claim("drop-prunes-easy", "DRoP prunes the easy classes most",
              "DRoP produces exceptionally imbalanced datasets unless the density d is too low by heavily pruning "
              "easy classes while leaving the more difficult ones intact", f"{_S4}, Figure 6",
              "class-density correlation of Random+DRoP (< 0: easy classes pruned more)", "every density run",
              Superiority(), "drop_evaluation", "paper-figure-6", _correlation_negative, needs=(DROP,)),
        Claim("drop-correlation", "DRoP's negative class-density correlation is stronger than existing methods'",
              "the negative correlation between the full-dataset accuracy and density of each class is much more "
              "pronounced for DRoP compared to existing pruning methods", f"{_S4}, Figure 6 vs Figure 13",
              "class-density correlation, each existing method (Random and the plain strategies, also those of "
              "chapter 02) minus Random+DRoP", "every density run", AllOf(Superiority()),
              ("drop_evaluation", "bias_benchmark"), "paper-figure-6", _correlation_more_negative, needs=(DROP,)),
    ]
    for name in names:
        out += [
            Claim(f"strategy-drop-{name.lower()}", f"{name}+DRoP is more robust than {name}",
                  "it also enhances robustness of GraNd and Forgetting: Strategy+DRoP curves often trace a much "
                  "better trade-off between the average and worst-class accuracies than their original counterparts",
                  f"{_S4}, Figure 5", f"worst-class accuracy, {name}+DRoP minus {name}", "none stated; d = 0.5",
                  Superiority(), "drop_evaluation", "paper-figure-5", _versus(f"{name}+DRoP", name),
                  needs=(f"{name}+DRoP", name)),
            Claim(f"strategyq-{name.lower()}", f"Random+{name}Q surpasses {name}",
                  "Random+StrategyQ fares similarly well, surpassing the vanilla algorithms, too", f"{_S4}, Figure 5",
                  f"worst-class accuracy, Random+{name}Q minus {name}", "none stated; d = 0.5", Superiority(),
                  "drop_evaluation", "paper-figure-5", _versus(f"Random+{name}Q", name), needs=(f"Random+{name}Q", name)),
        ]
    out.append(Claim("drop-random-within", "Random selection within classes beats the strategy's, at DRoP's quotas",
                     "robustness is achieved not only from the appropriate class ratios but also from pruning randomly "
                     "as opposed to cherry-picking hard samples", f"{_S4}, Figure 5",
                     "worst-class accuracy, Random+DRoP minus each Strategy+DRoP (same class quotas)",
                     "none stated; d = 0.5", AllOf(Superiority()), "drop_evaluation", "paper-figure-5",
                     _random_within(names), needs=(DROP,)))
    return tuple(out)
