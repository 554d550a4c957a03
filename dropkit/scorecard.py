"""The registry of the paper's claims and the scorecard built from it ("Does the paper hold here?").

Each :class:`Claim` names one claim of the paper (in a few words, where the paper makes it, the
paper's number when it gives one, the figure of the book behind it) and how to compute its effect
per seed from the results of one experiment set, oriented so that > 0 is the paper's side. The
verdict is :mod:`dropkit.claims`' rule (95 % t-interval over seeds; holds / contradicted /
inconclusive); :func:`scorecard` evaluates every registered claim, and the chapters show the rows
of their own experiment set with :func:`chapter_markdown` -- the same function, so the book states
each verdict once.

Our setting is not the paper's (the ``default`` profile: an MLP on Fashion-MNIST, not VGG/ResNet
on CIFAR/ImageNet): where the paper gives a number, the row shows it next to our analogous
measurement on our setting, never as if they were the same quantity.

Effects are computed on one *setting* (a model-dataset pair and its training: the ``setting``
column of :func:`dropkit.chapter.chapter_results`; :func:`dropkit.tables.split_setups` splits a
larger table): the scorecard has one row per claim and setting, labelled with the setting. A claim
about a score method that a setting does not run (e.g. GraNd in a bias benchmark of EL2N and
Forgetting only) has no row for that setting; :func:`omitted` lists those pairs and why, and
:func:`omissions_markdown` says so on the page. Densities: the
paper's reference density 0.5 and "low densities" 0.1, or the closest present
(:func:`dropkit.claims.reference_density`); the measure text names the density used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dropkit.claims import DROP_LABEL, Effect, paired_effect, reference_density
from dropkit.curves import CDBW_FULL_DATASET, FULL_DATASET, METHOD_NAMES, labelled, method_label
from dropkit.tables import check_one_setting, class_density_correlation, either, score_methods, split_setups

__all__ = ["Context", "Claim", "NOT_COMPUTED", "registry", "profile_registry", "profile_context",
           "setting_methods", "missing_methods", "evaluate", "scorecard", "omitted", "scorecard_markdown",
           "omissions_markdown", "chapter_markdown"]

#: The verdict column of a claim whose runs this profile does not have (never a verdict).
NOT_COMPUTED = "not computed"


@dataclass(frozen=True)
class Context:
    """What a claim needs besides the results: reference: the paper's reference density (0.5);
    low: its "low density" (0.1); default_query: the query length (epochs) the other chapters
    use (Figure 15's reference)."""

    reference: float = 0.5
    low: float = 0.1
    default_query: float = 1


@dataclass(frozen=True)
class Claim:
    """One claim of the paper.

    id: a stable name; claim: the claim in a few words; where: section/figure of the paper;
    paper: the paper's number (its setting) or None; experiment: the experiment set whose results
    it reads (:data:`dropkit.profiles.EXPERIMENT_SETS`, or ``"theory"``: the table of
    :func:`dropkit.theory.figure4b_thresholds`); figure: the book label of the figure
    behind it (``paper-figure-5``); effect: ``effect(frame, context) -> Effect`` on the labelled
    rows of one setting, > 0 on the paper's side. methods: the score methods whose runs the
    effect reads (``("grand",)`` for "GraNd exacerbates bias"); a setting that does not run one of
    them gets no row for the claim (:func:`missing_methods`).
    """

    id: str
    claim: str
    where: str
    paper: str | None
    experiment: str
    figure: str
    effect: Callable[[pd.DataFrame, Context], Effect]
    methods: tuple[str, ...] = ()


# --------------------------------------------------------------------------- per-seed values


def _at(frame, target: float) -> float:
    return reference_density(frame, target)


def _rows(frame, label: str, density: float | None = None, **where) -> pd.DataFrame:
    rows = frame[frame["label"] == label]
    if density is not None:
        rows = rows[np.isclose(rows["density"].astype(float), density)]
    for column, value in where.items():
        rows = rows[np.isclose(rows[column].astype(float), value)]
    if rows.empty:
        raise ValueError(f"no runs of {label!r} at density={density} {where or ''}")
    return rows


def per_seed(frame, label: str, metric: str, density: float | None = None, **where) -> dict[int, float]:
    """``{seed: value}`` of ``metric`` (x100 for the accuracy metrics: percent) for curve ``label``
    at ``density`` (None: any, e.g. the full dataset), rows matching ``where`` (column == value);
    runs of the same seed are averaged."""
    rows = _rows(frame, label, density, **where)
    scale = 100.0 if metric.startswith("test_") else 1.0
    return {int(s): scale * float(v) for s, v in rows.groupby("seed")[metric].mean().items()}


def _full(frame, metric: str, **where) -> dict[int, float]:
    return per_seed(frame, FULL_DATASET, metric, **where)


def _spread(frame, label: str, density: float | None = None) -> dict[int, float]:
    """Per seed: average minus worst-class accuracy (pp)."""
    acc, worst = per_seed(frame, label, "test_accuracy", density), per_seed(frame, label, "test_worst_class", density)
    return {s: acc[s] - worst[s] for s in acc if s in worst}


def _correlation(frame, label: str) -> dict[int, float]:
    """Per seed: mean over densities of the correlation across classes between full-dataset class
    accuracy and class density (:func:`dropkit.tables.class_density_correlation`)."""
    out = {}
    for seed, rows in frame.groupby("seed"):
        if (rows["label"] == label).any():
            out[int(seed)] = float(class_density_correlation(rows, label)[0])
    return out


def _min_spc(frame, label: str, density: float) -> dict[int, float]:
    rows = _rows(frame, label, density)
    return {int(s): float(min(min(c) for c in group["class_counts"])) for s, group in rows.groupby("seed")}


def _peak(frame, label: str) -> dict[int, float]:
    """Per seed: the density where the worst-class accuracy is highest (the larger on a tie)."""
    rows = frame[(frame["label"] == label) & (frame["protocol"] != "none")]
    out = {}
    for seed, group in rows.groupby("seed"):
        group = group.sort_values("density")
        values = group["test_worst_class"].to_numpy()
        out[int(seed)] = float(group["density"].to_numpy()[np.flatnonzero(values == values.max())[-1]])
    return out


def _pruned_labels(frame) -> list[str]:
    return list(dict.fromkeys(frame.loc[frame["protocol"] != "none", "label"]))


def _difference(a, b, unit: str, measure: str) -> Effect:
    return paired_effect([a, b], lambda x, y: x - y, unit, measure)


def _margin(first, others: dict[str, dict[int, float]], unit: str, measure: str,
            lower_better: bool = False) -> Effect:
    """Per seed: ``first`` minus the best of ``others`` (the smallest margin over all of them)."""
    names = list(others)
    if not names:
        raise ValueError(f"nothing to compare with: {measure}")

    def combine(a, *rest):
        return min((r - a) if lower_better else (a - r) for r in rest)

    return paired_effect([first, *others.values()], combine, unit, f"{measure} (vs {', '.join(names)})")


# --------------------------------------------------------------------------- the effects


def _bias_random(frame, ctx):
    d = _at(frame, ctx.reference)
    return _difference(_spread(frame, "Random", d), _spread(frame, FULL_DATASET), "pp",
                       f"average minus worst-class accuracy, Random at d = {d:g} minus full dataset")


def _bias_method(method):
    label = METHOD_NAMES[method]

    def effect(frame, ctx):
        d = _at(frame, ctx.reference)
        return _difference(_spread(frame, label, d), _spread(frame, "Random", d), "pp",
                           f"average minus worst-class accuracy, {label} minus Random at d = {d:g}")
    return effect


def _du_hard_classes(frame, ctx):
    du = METHOD_NAMES["dynamic_uncertainty"]
    others = {label: _correlation(frame, label) for label in _pruned_labels(frame) if label != du}
    return _margin(_correlation(frame, du), others, "r",
                   "correlation of class density with full-dataset class accuracy (mean over "
                   "densities), Dynamic Uncertainty minus the largest other method's")


def _forgetting_balanced(frame, ctx):
    d = _at(frame, ctx.low)
    others = {METHOD_NAMES[m]: _min_spc(frame, METHOD_NAMES[m], d) for m in ("el2n", "grand")}
    return _margin(_min_spc(frame, METHOD_NAMES["forgetting"], d), others, "samples",
                   f"minimum samples per class at d = {d:g}, Forgetting minus the larger of")


def _drop_worst_gain(frame, ctx):
    d = _at(frame, ctx.reference)
    return _difference(per_seed(frame, DROP_LABEL, "test_worst_class", d), _full(frame, "test_worst_class"),
                       "pp", f"worst-class accuracy, Random+DRoP at d = {d:g} minus full dataset")


def _drop_accuracy_cost(frame, ctx):
    d = _at(frame, ctx.reference)
    return paired_effect([_full(frame, "test_accuracy"), per_seed(frame, DROP_LABEL, "test_accuracy", d)],
                         lambda full, drop: 6.0 - (full - drop), "pp",
                         f"6 minus the average-accuracy loss of Random+DRoP at d = {d:g} from the full dataset")


def _drop_all_metrics(frame, ctx):
    d = _at(frame, ctx.reference)
    arms = [per_seed(frame, DROP_LABEL, m, d) for m in ("test_worst_class", "test_gap", "test_std")]
    arms += [_full(frame, m) for m in ("test_worst_class", "test_gap", "test_std")]
    return paired_effect(arms, lambda w, g, s, fw, fg, fs: min(w - fw, fg - g, fs - s), "pp",
                         f"smallest improvement over the full dataset among worst-class accuracy, gap "
                         f"and std of class accuracies, Random+DRoP at d = {d:g}")


def _drop_beats_pruning(frame, ctx):
    d = _at(frame, ctx.reference)
    others = {label: per_seed(frame, label, "test_worst_class", d) for label in _pruned_labels(frame)
              if label != DROP_LABEL}
    return _margin(per_seed(frame, DROP_LABEL, "test_worst_class", d), others, "pp",
                   f"worst-class accuracy at d = {d:g}, Random+DRoP minus the best other protocol")


def _drop_low_density_accuracy(frame, ctx):
    d = _at(frame, ctx.low)
    others = {label: per_seed(frame, label, "test_accuracy", d) for label in _pruned_labels(frame)
              if label not in (DROP_LABEL, "Random")}
    return _margin(per_seed(frame, DROP_LABEL, "test_accuracy", d), others, "pp",
                   f"average accuracy at d = {d:g}, Random+DRoP minus the best score-based protocol")


def _drop_peak(frame, ctx):
    others = {label: _peak(frame, label) for label in _pruned_labels(frame) if label != DROP_LABEL}
    return _margin(_peak(frame, DROP_LABEL), others, "density",
                   "density of the best worst-class accuracy, lowest other protocol's minus "
                   "Random+DRoP's", lower_better=True)


def _drop_correlation(frame, ctx):
    baselines = {label: _correlation(frame, label) for label in _pruned_labels(frame)
                 if label == "Random" or label in METHOD_NAMES.values()}
    return _margin(_correlation(frame, DROP_LABEL), baselines, "r",
                   "correlation of class density with full-dataset class accuracy, most negative "
                   "of Random and the plain strategies minus Random+DRoP's", lower_better=True)


def _worst_minus(first: str, second: str, note: str = ""):
    """Effect: worst-class accuracy of curve ``first`` minus curve ``second`` at the reference density."""
    def effect(frame, ctx):
        d = _at(frame, ctx.reference)
        return _difference(per_seed(frame, first, "test_worst_class", d),
                           per_seed(frame, second, "test_worst_class", d), "pp",
                           f"worst-class accuracy at d = {d:g}, {first} minus {second}{note}")
    return effect


def _versus_strategy(protocol: str, method: str):
    return _worst_minus(method_label(protocol, method), METHOD_NAMES[method])


def _cdbw_full_gain(frame, ctx):
    return _difference(per_seed(frame, CDBW_FULL_DATASET, "test_worst_class"), _full(frame, "test_worst_class"),
                       "pp", "worst-class accuracy, CDB-W minus plain training on the full dataset")


def _drop_over_cdbw(frame, ctx):
    d = _at(frame, ctx.reference)
    return _difference(per_seed(frame, DROP_LABEL, "test_worst_class", d),
                       per_seed(frame, CDBW_FULL_DATASET, "test_worst_class"), "pp",
                       f"worst-class accuracy, Random+DRoP at d = {d:g} minus CDB-W on the full dataset "
                       f"(> 0: DRoP's gain over plain training exceeds CDB-W's)")


def _el2n_cdbw_inferior(frame, ctx):
    d = _at(frame, ctx.reference)
    return paired_effect([per_seed(frame, label, "test_worst_class", d)
                          for label in ("EL2N+DRoP", DROP_LABEL, "EL2N+CDB-W")],
                         lambda a, b, c: min(a, b) - c, "pp",
                         f"worst-class accuracy at d = {d:g}, the lower of EL2N+DRoP and Random+DRoP "
                         f"minus EL2N+CDB-W")


def _factors(frame) -> list[float]:
    return sorted({float(f) for f in frame["imbalance_factor"]})


def _imbalanced_vs_el2n(metric: str):
    def effect(frame, ctx):
        d = _at(frame, ctx.reference)
        factors = _factors(frame)
        arms = []
        for f in factors:
            arms += [per_seed(frame, DROP_LABEL, metric, d, imbalance_factor=f),
                     per_seed(frame, "EL2N", metric, d, imbalance_factor=f)]
        name = "worst-class" if metric == "test_worst_class" else "average"
        return paired_effect(arms, lambda *v: min(v[i] - v[i + 1] for i in range(0, len(v), 2)), "pp",
                             f"{name} accuracy at d = {d:g}, Random+DRoP minus EL2N, smallest over "
                             f"imbalance factors {', '.join(f'{f:g}' for f in factors)}")
    return effect


def _imbalanced_vs_full(frame, ctx):
    d = _at(frame, ctx.reference)
    factors = _factors(frame)
    arms = []
    for f in factors:
        arms += [per_seed(frame, DROP_LABEL, "test_worst_class", d, imbalance_factor=f),
                 _full(frame, "test_worst_class", imbalance_factor=f),
                 per_seed(frame, CDBW_FULL_DATASET, "test_worst_class", imbalance_factor=f)]
    return paired_effect(arms, lambda *v: float(np.mean([v[i] - max(v[i + 1], v[i + 2])
                                                         for i in range(0, len(v), 3)])), "pp",
                         f"worst-class accuracy, Random+DRoP at d = {d:g} minus the better of plain and "
                         f"CDB-W training on the full data, mean over imbalance factors "
                         f"{', '.join(f'{f:g}' for f in factors)}")


def _waterbirds(first: str):
    def effect(frame, ctx):
        d = _at(frame, ctx.reference)
        others = {label: per_seed(frame, label, "test_worst_group", None if label == FULL_DATASET else d)
                  for label in ("Random", "EL2N", FULL_DATASET)}
        return _margin(per_seed(frame, first, "test_worst_group", d), others, "pp",
                       f"worst-group accuracy at d = {d:g}, {first} minus the best of")
    return effect


def _waterbirds_vs_cdbw(frame, ctx):
    d = _at(frame, ctx.reference)
    return _difference(per_seed(frame, DROP_LABEL, "test_worst_group", d),
                       per_seed(frame, CDBW_FULL_DATASET, "test_worst_group"), "pp",
                       f"worst-group accuracy, Random+DRoP at d = {d:g} minus CDB-W on the full data")


def _query_lengths(frame) -> list[float]:
    return sorted({float(q) for q in frame.loc[frame["protocol"] != "none", "query_epochs"]})


def _query_saturates(frame, ctx):
    densities = sorted({float(d) for d in frame.loc[frame["protocol"] != "none", "density"]})
    longer = [q for q in _query_lengths(frame) if q > ctx.default_query]
    if not longer:
        raise ValueError(f"no query length above the default {ctx.default_query:g}")
    arms = []
    for d in densities:
        arms.append(per_seed(frame, DROP_LABEL, "test_worst_class", d, query_epochs=ctx.default_query))
        arms += [per_seed(frame, DROP_LABEL, "test_worst_class", d, query_epochs=q) for q in longer]
    k = 1 + len(longer)
    return paired_effect(arms, lambda *v: min(v[i] - max(v[i + 1:i + k]) for i in range(0, len(v), k)), "pp",
                         f"worst-class accuracy of Random+DRoP, query {ctx.default_query:g} epoch(s) minus the "
                         f"best longer query ({', '.join(f'{q:g}' for q in longer)}), smallest over d = "
                         f"{', '.join(f'{d:g}' for d in densities)} (0 inside the interval is what "
                         f"saturation predicts; < 0: longer query training helps)")


def _query_less_at_large_density(frame, ctx):
    densities = sorted({float(d) for d in frame.loc[frame["protocol"] != "none", "density"]})
    shortest = _query_lengths(frame)[0]
    if shortest >= ctx.default_query or len(densities) < 2:
        raise ValueError("needs a query length below the default and two densities")
    low, high = densities[0], densities[-1]
    arms = [per_seed(frame, DROP_LABEL, "test_worst_class", d, query_epochs=q)
            for d in (low, high) for q in (ctx.default_query, shortest)]
    return paired_effect(arms, lambda a, b, c, e: (a - b) - (c - e), "pp",
                         f"worst-class loss of Random+DRoP from a {shortest:g}-epoch instead of a "
                         f"{ctx.default_query:g}-epoch query model, at d = {low:g} minus at d = {high:g}")


def _theory_threshold(density: float):
    def effect(frame, ctx):
        rows = frame[np.isclose(frame["density"].astype(float), density)]
        if rows.empty:
            raise ValueError(f"no simulated datasets at d = {density:g}")
        values = {int(r["seed"]): abs(r["threshold"] - r["t_star"]) - abs(r["threshold"] - r["t_hat"])
                  for r in rows.to_dict("records")}
        return paired_effect([values], lambda v: v, "x",
                             f"distance of the ERM threshold T to the average optimum t* minus its distance "
                             f"to the worst-class optimum t̂, after random pruning with DRoP quotas to "
                             f"d = {density:g} (> 0: T nearer t̂)", replicate="dataset")
    return effect


# --------------------------------------------------------------------------- the registry

_S2, _S4 = "Section 2", "Section 4"


def registry(methods=("el2n", "grand", "forgetting", "dynamic_uncertainty", "coreset"),
             strategies=("el2n", "forgetting")) -> tuple[Claim, ...]:
    """Every registered claim of the paper, for the bias benchmark's ``methods`` and the DRoP
    evaluation's ``strategies`` (a profile's :attr:`~dropkit.profiles.Profile.methods` and its
    setups' strategies; the defaults are the ``default`` profile's)."""
    claims = [
        Claim(f"theory-drop-threshold-{round(100 * d)}", f"Random pruning with DRoP quotas to d = {d:g} puts "
              "the ERM threshold near the worst-class optimum", "Section 3, Figure 4b", None, "theory",
              "paper-figure-4b", _theory_threshold(d)) for d in (0.75, 0.5)
    ]
    claims += [
        Claim("bias-random", "Data pruning exacerbates classification bias: Random pruning widens the "
              "average/worst-class distance of the full dataset", f"{_S2}, Figure 1", None,
              "bias_benchmark", "paper-figure-1", _bias_random),
    ]
    claims += [Claim(f"bias-{m}", f"{METHOD_NAMES[m]} exacerbates classification bias beyond what Random "
                     "pruning does", f"{_S2}, Figures 1 and 10", None, "bias_benchmark", "paper-figure-10",
                     _bias_method(m), (m,)) for m in methods]
    if "dynamic_uncertainty" in methods:
        claims.append(Claim("du-hard-classes", "Dynamic Uncertainty prunes the hardest classes most, "
                            "unlike the other methods", f"{_S2}, Figures 2 and 13", None, "bias_benchmark",
                            "paper-figure-13", _du_hard_classes, ("dynamic_uncertainty",)))
    if {"forgetting", "el2n", "grand"} <= set(methods):
        claims.append(Claim("forgetting-balanced", "Forgetting keeps more balanced datasets than EL2N and "
                            "GraNd at low densities", f"{_S2}, Figure 14", None, "bias_benchmark",
                            "paper-figure-14", _forgetting_balanced, ("forgetting", "el2n", "grand")))
    claims += [
        Claim("drop-worst-gain", "Random+DRoP raises worst-class accuracy above the full dataset's at d = 0.5",
              f"{_S4}, Figure 5", "35.8 → 45.4 % (+9.6 pp), VGG-19 on CIFAR-100", "drop_evaluation",
              "paper-figure-5", _drop_worst_gain),
        Claim("drop-accuracy-cost", "... at a price of under 6 points of average accuracy", f"{_S4}, Figure 5",
              "< 6 pp, VGG-19 on CIFAR-100", "drop_evaluation", "paper-figure-5", _drop_accuracy_cost),
        Claim("drop-all-metrics", "Random+DRoP improves every robustness metric over the full dataset",
              f"{_S4}, Figures 5 and 11", None, "drop_evaluation", "paper-figure-11", _drop_all_metrics),
        Claim("drop-beats-pruning", "Random+DRoP has the best worst-class accuracy of all pruning protocols",
              f"{_S4}, Figure 5", None, "drop_evaluation", "paper-figure-5", _drop_beats_pruning),
        Claim("drop-low-density-accuracy", "At low densities Random+DRoP's average accuracy beats every "
              "other pruning algorithm", f"{_S4}, Figure 5", None, "drop_evaluation", "paper-figure-5",
              _drop_low_density_accuracy),
        Claim("drop-peak", "The other protocols peak in worst-class accuracy at high densities, Random+DRoP "
              "keeps improving as it prunes", f"{_S4}, Figure 5", "others peak at 80-90 %", "drop_evaluation",
              "paper-figure-5", _drop_peak),
        Claim("drop-correlation", "DRoP's negative correlation of class density and class accuracy is much "
              "more pronounced than the strategies'", f"{_S4}, Figure 6 vs Figure 13", None,
              "drop_evaluation", "paper-figure-6", _drop_correlation),
    ]
    for m in strategies:
        name = METHOD_NAMES[m]
        claims += [
            Claim(f"strategy-drop-{m}", f"{name}+DRoP is more robust than {name}", f"{_S4}, Figure 5", None,
                  "drop_evaluation", "paper-figure-5", _versus_strategy("strategy+drop", m), (m,)),
            Claim(f"strategyq-{m}", f"Random+{name}Q surpasses {name}", f"{_S4}, Figure 5", None,
                  "drop_evaluation", "paper-figure-5", _versus_strategy("random+strategyq", m), (m,)),
        ]
    claims += [
        Claim("cdbw-full-gain", "CDB-W improves the full dataset's worst-class accuracy",
              f"{_S4} (A DRO baseline), Figure 7", "+5.7 pp, VGG-19 on CIFAR-100", "cdbw", "paper-figure-7",
              _cdbw_full_gain),
        Claim("cdbw-half-of-drop", "CDB-W's gain is about half of Random+DRoP's at d = 0.5",
              f"{_S4} (A DRO baseline), Figure 7", "+5.7 pp vs +9.6 pp", "cdbw", "paper-figure-7",
              _drop_over_cdbw),
        Claim("el2n-cdbw-keeps-bias", "EL2N+CDB-W keeps the original bias", f"{_S4} (A DRO baseline), Figure 7",
              None, "cdbw", "paper-figure-7",
              _worst_minus("EL2N", "EL2N+CDB-W", " (< 0: CDB-W removes EL2N's bias; an interval containing 0 "
                           "is what 'keeps the bias' predicts)")),
        Claim("el2n-cdbw-inferior", "EL2N+CDB-W is inferior to Random+DRoP and EL2N+DRoP",
              f"{_S4} (A DRO baseline), Figure 7", None, "cdbw", "paper-figure-7", _el2n_cdbw_inferior),
        Claim("cdbw-el2n-fails", "CDB-W+EL2N fails spectacularly (one of the worst biases)",
              f"{_S4} (A DRO baseline), Figure 7", None, "cdbw", "paper-figure-7",
              _worst_minus("EL2N", "CDB-W+EL2N")),
        Claim("imbalanced-worst", "On long-tailed data Random+DRoP beats EL2N in worst-class accuracy",
              f"{_S4} (Imbalanced datasets), Figure 8", None, "imbalanced", "paper-figure-8",
              _imbalanced_vs_el2n("test_worst_class")),
        Claim("imbalanced-accuracy", "On long-tailed data Random+DRoP beats EL2N in average accuracy",
              f"{_S4} (Imbalanced datasets), Figure 8", None, "imbalanced", "paper-figure-8",
              _imbalanced_vs_el2n("test_accuracy")),
        Claim("imbalanced-vs-full", "Random+DRoP almost always reduces the bias of the unpruned long-tailed "
              "data, even trained with CDB-W", f"{_S4} (Imbalanced datasets), Figure 8", None, "imbalanced",
              "paper-figure-8", _imbalanced_vs_full),
        Claim("groups-random-drop", "Random+DRoP significantly improves worst-group accuracy",
              f"{_S4} (Group robustness), Figure 9", None, "waterbirds", "paper-figure-9",
              _waterbirds(DROP_LABEL)),
        Claim("groups-el2n-drop", "EL2N+DRoP significantly improves worst-group accuracy",
              f"{_S4} (Group robustness), Figure 9", None, "waterbirds", "paper-figure-9",
              _waterbirds("EL2N+DRoP")),
        Claim("groups-vs-cdbw", "Random+DRoP is more group-robust than CDB-W", f"{_S4} (Group robustness), "
              "Figure 9", None, "waterbirds", "paper-figure-9", _waterbirds_vs_cdbw),
        Claim("query-saturates", "DRoP's performance saturates at the default query length (10 % of training)",
              "Appendix F, Figure 15", "saturates at ≤ 10 query epochs", "pretraining_ablation",
              "paper-figure-15", _query_saturates),
        Claim("query-less-at-large-density", "Larger densities need less query training",
              "Appendix F, Figure 15", None, "pretraining_ablation", "paper-figure-15",
              _query_less_at_large_density),
    ]
    return tuple(claims)


# --------------------------------------------------------------------------- evaluation

def setting_methods(rows: pd.DataFrame) -> tuple[str, ...]:
    """The score methods ``rows`` (one setting's results) run (:func:`dropkit.tables.score_methods`:
    Random+DRoP's query method does not count)."""
    return score_methods(rows)


def missing_methods(claim: Claim, rows: pd.DataFrame) -> tuple[str, ...]:
    """The score methods of ``claim.methods`` that the setting of ``rows`` does not run (empty:
    the claim applies to the setting)."""
    ran = setting_methods(rows)
    return tuple(m for m in claim.methods if m not in ran)


def evaluate(claim: Claim, frame: pd.DataFrame, context: Context = Context()) -> Effect:
    """The claim's :class:`~dropkit.claims.Effect` on the results of one setting (``ValueError``
    for a frame of several: split it with :func:`dropkit.tables.split_setups`)."""
    if claim.experiment == "theory":
        return claim.effect(frame, context)
    check_one_setting(frame)
    return claim.effect(labelled(frame), context)


COLUMNS = ("claim", "where", "paper", "ours (mean, 95 % CI)", "measured here", "verdict", "figure")


def profile_registry(profile) -> tuple[Claim, ...]:
    """:func:`registry` for a :class:`dropkit.profiles.Profile`: the score methods of its
    bias-benchmark setups (each setup's ``methods``, else the profile's) and the strategies of
    its DRoP-evaluation setups, each once."""
    methods = tuple(dict.fromkeys(m for s in profile.setups_for("bias_benchmark")
                                  for m in (profile.methods if s.methods is None else s.methods)))
    strategies = tuple(dict.fromkeys(m for s in profile.setups_for("drop_evaluation") for m in s.strategies))
    return registry(methods or profile.methods, strategies)


def profile_context(profile, reference: float = 0.5) -> Context:
    """:class:`Context` of a profile: ``reference`` and the query length of its Figure-15 setup."""
    setups = profile.setups_for("pretraining_ablation")
    return Context(reference=reference, default_query=setups[0].query_epochs if setups else 1)


def _settings(claim: Claim, frames: Mapping[str, pd.DataFrame]) -> list[tuple[str, pd.DataFrame]]:
    if claim.experiment not in frames:
        raise ValueError(f"claim {claim.id!r} needs the results of {claim.experiment!r}")
    frame = frames[claim.experiment]
    return [("", frame)] if claim.experiment == "theory" else split_setups(frame)


def scorecard(frames: Mapping[str, pd.DataFrame], claims, context: Context = Context(), *,
              strict: bool = True) -> pd.DataFrame:
    """One row per claim and setting of its experiment set (:func:`dropkit.tables.split_setups`),
    with the verdict of the rule on that setting's per-seed values; ``frames``: experiment set ->
    its results. Columns: ``id`` (the claim's), ``setting`` (the setting's title, as above its
    figure rows; empty for the theory chapter's claims), :data:`COLUMNS`, and the per-seed
    ``values`` and ``seeds`` behind the verdict. Rows are ordered by claim, then setting.

    A setting that does not run a score method of the claim (:func:`missing_methods`) has no row
    for it (:func:`omitted` lists those). A claim whose experiment set or runs are missing raises
    ``ValueError`` if ``strict``; else its row says :data:`NOT_COMPUTED` and why (e.g. the smoke
    profile has one Figure-15 density), so a scorecard never shows a verdict it could not compute.
    """
    rows = []
    for claim in claims:
        for title, part in _settings(claim, frames):
            if claim.experiment != "theory" and missing_methods(claim, part):
                continue
            row = {"id": claim.id, "setting": title, "claim": claim.claim, "where": claim.where,
                   "paper": claim.paper or "", "figure": claim.figure}
            try:
                effect = evaluate(claim, part, context)
            except ValueError as error:
                if strict:
                    raise ValueError(f"claim {claim.id!r}{f' on {title}' if title else ''}: {error}") from error
                row.update({"ours (mean, 95 % CI)": "", "measured here": f"({error})",
                            "verdict": NOT_COMPUTED, "values": (), "seeds": ()})
            else:
                row.update({"ours (mean, 95 % CI)": effect.text(2 if effect.unit in ("r", "x") else 1),
                            "measured here": effect.measure, "verdict": effect.verdict,
                            "values": effect.values, "seeds": effect.seeds})
            rows.append(row)
    return pd.DataFrame(rows, columns=["id", "setting", *COLUMNS, "values", "seeds"])


def omitted(frames: Mapping[str, pd.DataFrame], claims) -> pd.DataFrame:
    """The (claim, setting) pairs :func:`scorecard` gives no row because the setting does not run
    a score method of the claim. Columns: ``id``, ``experiment``, ``setting`` (title), ``missing``
    (the claim's methods the setting does not run) and ``ran`` (the score methods it runs)."""
    rows = []
    for claim in claims:
        if claim.experiment == "theory":
            continue
        for title, part in _settings(claim, frames):
            missing = missing_methods(claim, part)
            if missing:
                rows.append({"id": claim.id, "experiment": claim.experiment, "setting": title,
                             "missing": missing, "ran": setting_methods(part)})
    return pd.DataFrame(rows, columns=["id", "experiment", "setting", "missing", "ran"])


def omissions_markdown(table: pd.DataFrame) -> str:
    """Why some claims have no row for some settings (the rows of :func:`omitted`), one sentence
    per experiment set and setting; empty when nothing was omitted."""
    sentences = []
    for (experiment, setting), rows in table.groupby(["experiment", "setting"], sort=False):
        missing = list(dict.fromkeys(m for entry in rows["missing"] for m in entry))
        ran = list(rows["ran"].iloc[0])
        ids = ", ".join(f"`{i}`" for i in rows["id"])
        names = [METHOD_NAMES.get(m, m) for m in ran]
        runs = ("score samples with " + (names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}")
                + " only") if names else "use no score method"
        sentences.append(f"**{setting}** has no row for {ids}: its `{experiment}` runs {runs}, not "
                         f"{either([METHOD_NAMES.get(m, m) for m in missing])}, so these claims cannot be "
                         f"checked on it.")
    return "\n\n".join(sentences)


def scorecard_markdown(table: pd.DataFrame, title: str) -> str:
    """The scorecard as a MyST table: verdicts in bold, figures as ``{numref}`` links. To fit the
    text column, the setting (bold), the claim's id and what was measured share the claim's
    cell."""
    shown = table[["id", "setting", *COLUMNS]].copy()
    for column in shown.columns:  # a "|" inside a cell would end it, a "*" (t*) start emphasis
        shown[column] = [str(v).replace("|", "\\|").replace("*", "\\*") for v in shown[column]]
    shown["claim"] = [f"{f'**{setting}**: ' if setting else ''}{claim} *(`{id_}`; measured here: {measured})*"
                      for setting, claim, id_, measured in zip(shown["setting"], shown["claim"], shown["id"],
                                                               shown["measured here"])]
    shown["verdict"] = [f"**{v}**" for v in shown["verdict"]]
    shown["figure"] = [f"{{numref}}`{f}`" for f in shown["figure"]]
    shown = shown.drop(columns=["id", "setting", "measured here"]).rename(
        columns={"ours (mean, 95 % CI)": "ours (95 % CI)"})
    body = shown.to_markdown(index=False, disable_numparse=True)
    # A colon fence: a backtick fence's info string (the caption) may not hold backticks (CommonMark).
    return f":::{{table}} {title}\n{body}\n:::"


def chapter_markdown(results, experiment: str, reference: float = 0.5) -> str:
    """The scorecard rows of one experiment set, for its chapter: ``results`` is the chapter's
    :class:`dropkit.chapter.ChapterResults`; the same rows as the scorecard page's
    (:func:`scorecard`, claims of :func:`profile_registry`): one per claim and setting, followed
    by why a claim has no row for a setting (:func:`omissions_markdown`)."""
    chosen = [c for c in profile_registry(results.profile) if c.experiment == experiment]
    if not chosen:
        raise ValueError(f"no registered claim reads experiment {experiment!r}")
    frames = {experiment: results.frame}
    table = scorecard(frames, chosen, profile_context(results.profile, reference), strict=False)
    parts = [chapter_table_markdown(table)]
    note = omissions_markdown(omitted(frames, chosen))
    return "\n\n".join([*parts, note] if note else parts)


def chapter_table_markdown(table: pd.DataFrame) -> str:
    """:func:`scorecard_markdown` of a chapter's rows, with the chapter's title."""
    return scorecard_markdown(table, "The paper's claims checked on this chapter's runs (the rule of "
                                     "`dropkit.claims`; the same rows as the scorecard)")
