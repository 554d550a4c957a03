"""Chapter 02: the claims of Section 2 (data pruning and classification bias), Figures 1, 2, 10, 13
and 14, and Section 3's remark that existing methods rarely improve worst-class accuracy.

The paper states no density for most of these sentences (its figures span 10-90 %); where it names
"low density levels" we use 0.1 and 0.3, where it names none the reference density 0.5 (the
paper's "pruning half"), and each row says which."""

from __future__ import annotations

from dropkit.claims import AllOf, Equivalence, EveryReplicate, Evidence, NonInferiority, Superiority, paired_effect
from dropkit.curves import FULL_DATASET, METHOD_NAMES
from dropkit.registry.claim import Claim
from dropkit.registry.measures import (
    class_correlation,
    densities_of,
    difference,
    full,
    low_densities,
    min_samples_per_class,
    nearest,
    per_seed,
    pruned_labels,
    seed_spread,
    versus_every,
)

DU, EL2N, GRAND, FORGETTING = (METHOD_NAMES[m] for m in ("dynamic_uncertainty", "el2n", "grand", "forgetting"))
COMPARATORS = ("Dynamic Uncertainty", "CoreSet")
_S2 = "Section 2"
_FULL_DENSITIES = "none stated; the five densities 0.1-0.9 of Figure 13, mean over those present"


def _others(frame, label):
    return [other for other in pruned_labels(frame) if other != label]


def _beats_every(label: str, metric: str, *, lower_is_paper: bool = False):
    """``label``'s ``metric`` at the reference density against every other pruned curve; > 0 on
    the paper's side (``lower_is_paper``: ``label`` is worse)."""
    def measure(frame, ctx):
        return Evidence(versus_every(frame, label, metric, nearest(frame, ctx.reference), label_higher=not lower_is_paper))
    return measure


def _du_removes_classes(frame, ctx):
    d = nearest(frame, ctx.low)
    counts = min_samples_per_class(frame, DU, d)
    return Evidence(computed={str(seed): float(value == 0) for seed, value in counts.items()})


def _du_hard_classes(frame, ctx):
    densities = low_densities(frame, DU)
    r = class_correlation(frame, DU, densities)
    return Evidence({"": paired_effect([r], lambda v: v, "r",
                                       f"correlation of class density with full-dataset class accuracy, "
                                       f"Dynamic Uncertainty, mean over d = {', '.join(f'{d:g}' for d in densities)}")})


def _correlation_versus(label: str, *, below: bool, low_only: bool):
    """``label``'s class-density correlation against every other pruned curve's: ``below``:
    the paper says ``label``'s is lower (prunes easy classes more)."""
    def measure(frame, ctx):
        densities = low_densities(frame, label) if low_only else densities_of(frame, label)
        mine = class_correlation(frame, label, densities)
        parts = {}
        for other in _others(frame, label):
            theirs = class_correlation(frame, other, densities)
            a, b = (theirs, mine) if below else (mine, theirs)
            names = (other, label) if below else (label, other)
            parts[other] = difference(a, b, "r", f"class-density correlation (mean over d = "
                                                 f"{', '.join(f'{d:g}' for d in densities)}), {names[0]} minus {names[1]}")
        return Evidence(parts)
    return measure


def _no_gain(label: str):
    """At every density: full dataset's worst-class accuracy minus ``label``'s > -margin."""
    def measure(frame, ctx):
        margin, source = seed_spread(frame, "test_worst_class")
        reference = full(frame, "test_worst_class")
        parts = {f"d = {d:g}": difference(reference, per_seed(frame, label, "test_worst_class", d), "pp",
                                          f"worst-class accuracy, full dataset minus {label} at d = {d:g}")
                 for d in densities_of(frame, label)}
        return Evidence(parts, margin, source)
    return measure


def _low_bias(label: str):
    def measure(frame, ctx):
        d = nearest(frame, ctx.reference)
        mine = per_seed(frame, label, "test_worst_class", d)
        parts = {other: difference(mine, per_seed(frame, other, "test_worst_class", d), "pp",
                                   f"worst-class accuracy at d = {d:g}, {label} minus {other}")
                 for other in COMPARATORS if (frame["label"] == other).any()}
        return Evidence(parts)
    return measure


def _forgetting_close(frame, ctx):
    d = nearest(frame, ctx.reference)
    margin, source = seed_spread(frame, "test_worst_class")
    mine = per_seed(frame, FORGETTING, "test_worst_class", d)
    parts = {other: difference(mine, per_seed(frame, other, "test_worst_class", d), "pp",
                               f"worst-class accuracy at d = {d:g}, Forgetting minus {other}")
             for other in (EL2N, GRAND)}
    return Evidence(parts, margin, source)


def _forgetting_accuracy(frame, ctx):
    d = nearest(frame, ctx.reference)
    mine = per_seed(frame, FORGETTING, "test_accuracy", d)
    return Evidence({other: difference(mine, per_seed(frame, other, "test_accuracy", d), "pp",
                                       f"average accuracy at d = {d:g}, Forgetting minus {other}")
                     for other in (EL2N, GRAND)})


def _forgetting_vs_random(high: bool):
    def measure(frame, ctx):
        densities = [d for d in densities_of(frame, FORGETTING) if (d > 0.4) == high]
        if not densities:
            raise ValueError(f"no density {'above' if high else 'below'} 0.4")
        parts = {}
        for d in densities:
            forgetting = per_seed(frame, FORGETTING, "test_accuracy", d)
            random = per_seed(frame, "Random", "test_accuracy", d)
            parts[f"d = {d:g}"] = (difference(forgetting, random, "pp", f"average accuracy at d = {d:g}, "
                                              "Forgetting minus Random") if high else
                                   difference(random, forgetting, "pp", f"average accuracy at d = {d:g}, "
                                              "Random minus Forgetting"))
        if high:
            margin, source = seed_spread(frame, "test_accuracy")
            return Evidence(parts, margin, source)
        return Evidence(parts)
    return measure


def _forgetting_balanced(frame, ctx):
    d = nearest(frame, ctx.low)
    mine = min_samples_per_class(frame, FORGETTING, d)
    return Evidence({other: difference(mine, min_samples_per_class(frame, other, d), "samples",
                                       f"fewest samples kept by a class at d = {d:g}, Forgetting minus {other}")
                     for other in (EL2N, GRAND)})


def claims(methods=None) -> tuple[Claim, ...]:
    """Chapter 02's claims; per-method claims for ``methods`` (None: every score method)."""
    methods = tuple(methods or ("el2n", "grand", "forgetting", "dynamic_uncertainty", "coreset"))
    names = [METHOD_NAMES[m] for m in methods]
    du_quote = ("Dynamic Uncertainty He et al. (2023) achieves superior average test performance with VGG-19 on "
                "CIFAR-100 and ResNet-50 on ImageNet but fails miserably in terms of worst-class accuracy")
    out = [
        Claim("du-best-accuracy", "Dynamic Uncertainty has the best average accuracy", du_quote,
              "Section 1; Section 2, Figure 1", "average accuracy, Dynamic Uncertainty minus each other method",
              "none stated; d = 0.5", AllOf(Superiority()), "bias_benchmark", "paper-figure-1",
              _beats_every(DU, "test_accuracy"), needs=(DU,)),
        Claim("du-worst-class", "Dynamic Uncertainty has the worst worst-class accuracy of all methods", du_quote,
              "Section 1; Section 2, Figure 1", "worst-class accuracy, each other method minus Dynamic Uncertainty",
              "none stated; d = 0.5", AllOf(Superiority()), "bias_benchmark", "paper-figure-1",
              _beats_every(DU, "test_worst_class", lower_is_paper=True), needs=(DU,)),
        Claim("du-removes-classes", "Dynamic Uncertainty removes entire classes at 10 % density",
              "it actually removes entire classes already at 10% of CIFAR-100", f"{_S2}, Figure 2 (left)",
              "fewest samples kept by a class (0: a class removed)", "d = 0.1", EveryReplicate(),
              "bias_benchmark", "paper-figure-2", _du_removes_classes,
              paper="classes removed at 10 % density, VGG-19 on CIFAR-100", needs=(DU,)),
        Claim("du-hard-classes", "At low densities Dynamic Uncertainty prunes the hard classes most",
              "at low density levels, Dynamic Uncertainty … tends to prune classes with lower baseline accuracy "
              "(obtained from training on the full dataset) more aggressively", f"{_S2}, Figures 2 (right) and 13",
              "correlation across classes of class density with full-dataset class accuracy (> 0: hard classes "
              "pruned more)", "low densities: 0.1 and 0.3", Superiority(), "bias_benchmark", "paper-figure-13",
              _du_hard_classes, needs=(DU,)),
        Claim("du-hard-classes-unlike-others", "Dynamic Uncertainty prunes the hard classes more than every other method does",
              "in contrast to other algorithms, at low density levels, Dynamic Uncertainty … tends to prune "
              "classes with lower baseline accuracy (obtained from training on the full dataset) more aggressively", f"{_S2}, Figure 13",
              "class-density correlation, Dynamic Uncertainty minus each other method", "low densities: 0.1 and 0.3",
              AllOf(Superiority()), "bias_benchmark", "paper-figure-13",
              _correlation_versus(DU, below=False, low_only=True), needs=(DU,)),
    ]
    out += [
        Claim(f"no-gain-{m}", f"{name} does not improve worst-class accuracy over the full dataset",
              "they rarely enjoy any improvement of the worst-class performance compared to the original dataset",
              "Section 3 (on Figure 13); Section 2: several methods \"improve ever so slightly over the full "
              "dataset\"", f"worst-class accuracy, full dataset minus {name}", "none stated; every density run",
              AllOf(NonInferiority()), "bias_benchmark", "paper-figure-1", _no_gain(name),
              margin="the full dataset's seed spread of worst-class accuracy", needs=(name,))
        for m, name in zip(methods, names)
    ]
    quote = "EL2N and GraNd achieve a relatively low classification bias, closely followed by Forgetting"
    out += [
        Claim(f"low-bias-{m}", f"{name} has a lower bias than Dynamic Uncertainty and CoreSet", quote,
              f"{_S2}, Figures 1 and 10", f"worst-class accuracy, {name} minus Dynamic Uncertainty and CoreSet",
              "none stated; d = 0.5", AllOf(Superiority()), "bias_benchmark", "paper-figure-10", _low_bias(name),
              needs=(name, *COMPARATORS))
        for m, name in zip(methods, names) if m in ("el2n", "grand")
    ]
    out += [
        Claim("forgetting-close", "Forgetting's bias closely follows EL2N's and GraNd's", quote, f"{_S2}, Figures 1 and 10",
              "worst-class accuracy, Forgetting minus EL2N and minus GraNd", "none stated; d = 0.5",
              AllOf(Equivalence()), "bias_benchmark", "paper-figure-10", _forgetting_close,
              margin="the full dataset's seed spread of worst-class accuracy", needs=(FORGETTING, EL2N, GRAND)),
        Claim("forgetting-accuracy", "Forgetting has a stronger average accuracy than EL2N and GraNd",
              "Forgetting has a substantially stronger average test accuracy compared to these three methods",
              f"{_S2}, Figure 1", "average accuracy, Forgetting minus EL2N and minus GraNd", "none stated; d = 0.5",
              AllOf(Superiority()), "bias_benchmark", "paper-figure-1", _forgetting_accuracy,
              needs=(FORGETTING, EL2N, GRAND)),
        Claim("forgetting-vs-random-high", "Forgetting is not below Random until more than 60 % is pruned",
              "falling short of Random only after pruning more than 60% from CIFAR-100", f"{_S2}, Figure 1",
              "average accuracy, Forgetting minus Random", "every density above 0.4",
              AllOf(NonInferiority()), "bias_benchmark", "paper-figure-1", _forgetting_vs_random(True),
              margin="the full dataset's seed spread of average accuracy",
              paper="Forgetting ≥ Random down to 40 % density, VGG-19 on CIFAR-100", needs=(FORGETTING, "Random")),
        Claim("forgetting-vs-random-low", "Forgetting falls short of Random below 40 % density",
              "falling short of Random only after pruning more than 60% from CIFAR-100", f"{_S2}, Figure 1",
              "average accuracy, Random minus Forgetting", "every density below 0.4", AllOf(Superiority()),
              "bias_benchmark", "paper-figure-1", _forgetting_vs_random(False),
              paper="Forgetting < Random below 40 % density, VGG-19 on CIFAR-100", needs=(FORGETTING, "Random")),
        Claim("forgetting-balanced", "Forgetting produces more balanced datasets than EL2N and GraNd at low density",
              "Forgetting produces more balanced datasets than EL2N and GraNd at low densities (Figure 14)",
              f"{_S2}, Figure 14", "fewest samples kept by a class (the paper's minimum SPC), Forgetting minus "
              "EL2N and minus GraNd", "d = 0.1 (Figure 14 reports the minimum SPC at 10 %)", AllOf(Superiority()),
              "bias_benchmark", "paper-figure-14", _forgetting_balanced, needs=(FORGETTING, EL2N, GRAND)),
        Claim("forgetting-prunes-easy", "Forgetting prunes the easy classes most",
              "tends to prune \"easier\" classes more aggressively compared to all other methods (Figure 13)",
              f"{_S2}, Figure 13", "class-density correlation, each other method minus Forgetting (Forgetting's "
              "lower: easy classes pruned more)", _FULL_DENSITIES, AllOf(Superiority()), "bias_benchmark",
              "paper-figure-13", _correlation_versus(FORGETTING, below=True, low_only=False), needs=(FORGETTING,)),
    ]
    return tuple(c for c in out if all(n in (*names, "Random", *COMPARATORS, FULL_DATASET) for n in c.needs)
                 and not (set(c.needs) & set(COMPARATORS) - set(names)))
