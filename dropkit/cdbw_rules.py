"""CDB-W's two weight rules compared from result rows (chapter 04): per-seed worst-class
accuracies by rule, the per-epoch class weights and validation recalls of each CDB-W training, and
the count of collapsed runs behind chapter 04's sentence on what causes EL2N+CDB-W's collapse.

The rules (``RunSpec.cdbw_weights``, :func:`dropkit.train.cdbw_class_weights`):
``"paper"`` (the book's: ``w_k = (1 - r_k) / Z`` with DRoP's normaliser, loss
``mean_i w_{y_i} l_i``) and ``"authors"`` (the authors' public code: ``w_k = 1 - r_k``, loss
``sum_i w_{y_i} l_i / sum_i w_{y_i}`` per batch). Pure functions of a result frame (one row per
run, as ``dropkit.store.ResultStore.frame`` or ``chapter_results(...).frame`` give).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dropkit.curves import curve_label

#: The CDB-W curves of chapter 04 under the book's own rule, by what CDB-W weighs.
CDBW_CURVES: tuple[str, ...] = ("EL2N+CDB-W", "CDB-W+EL2N", "CDB-W (full dataset)")
#: A run *collapses* when its worst-class test accuracy is below this fraction of plain EL2N's
#: (no CDB-W) on the same seed and density.
COLLAPSE_FRACTION = 0.5


def _rule(row) -> str:
    value = row.get("cdbw_weights")
    return value if isinstance(value, str) else "floored"


def _cdbw_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of CDB-W runs with ``curve`` (the rule-free curve name of :data:`CDBW_CURVES`)
    and ``rule`` columns."""
    needed = {"protocol", "method", "cdbw", "query_cdbw", "density", "seed"}
    missing = needed - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks the result columns {sorted(missing)}")
    rows = frame[frame["cdbw"].fillna(False).astype(bool) | frame["query_cdbw"].fillna(False).astype(bool)].copy()
    rows["curve"] = [curve_label(r["protocol"], r["method"], cdbw=bool(r["cdbw"]), query_cdbw=bool(r["query_cdbw"]))
                     for r in rows.to_dict("records")]
    rows["rule"] = [_rule(r) for r in rows.to_dict("records")]
    return rows


def worst_class_by_rule(frame: pd.DataFrame, metric: str = "test_worst_class") -> pd.DataFrame:
    """Per-seed ``metric`` (a fraction in [0, 1]) of every CDB-W run, by rule.

    Returns one row per run: ``curve`` (:data:`CDBW_CURVES`), ``rule`` (``"paper"``,
    ``"authors"``...), ``density``, ``seed``, ``value``; and ``el2n`` (plain EL2N's ``metric`` on
    the same seed and density, NaN where the frame has none, e.g. for the full dataset), sorted.
    """
    rows = _cdbw_rows(frame)
    plain = frame[(frame["protocol"] == "strategy") & (frame["method"] == "el2n")
                  & ~frame["cdbw"].fillna(False).astype(bool) & ~frame["query_cdbw"].fillna(False).astype(bool)]
    el2n = {(round(float(d), 6), int(s)): float(v) for d, s, v in zip(plain["density"], plain["seed"], plain[metric])}
    out = pd.DataFrame({
        "curve": rows["curve"].to_numpy(), "rule": rows["rule"].to_numpy(),
        "density": rows["density"].astype(float).to_numpy(), "seed": rows["seed"].astype(int).to_numpy(),
        "value": rows[metric].astype(float).to_numpy(),
    })
    out["el2n"] = [el2n.get((round(d, 6), s), np.nan) for d, s in zip(out["density"], out["seed"])]
    return out.sort_values(["curve", "rule", "density", "seed"]).reset_index(drop=True)


def collapse_counts(frame: pd.DataFrame, fraction: float = COLLAPSE_FRACTION) -> pd.DataFrame:
    """How many seeds of each pruned CDB-W curve collapse, by rule and density: a run collapses
    when its worst-class test accuracy is below ``fraction`` of plain EL2N's on the same seed and
    density.

    Returns one row per (``curve``, ``rule``, ``density``): ``seeds`` (runs with a plain EL2N
    partner), ``collapsed``, ``worst_mean`` and ``el2n_mean`` (mean worst-class accuracies, %),
    ``worst_min`` and ``worst_max`` (%).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction={fraction!r} must lie in (0, 1)")
    values = worst_class_by_rule(frame).dropna(subset=["el2n"])
    values["collapsed"] = values["value"] < fraction * values["el2n"]
    grouped = values.groupby(["curve", "rule", "density"], sort=True)
    return pd.DataFrame({
        "seeds": grouped.size(), "collapsed": grouped["collapsed"].sum().astype(int),
        "worst_mean": 100 * grouped["value"].mean(), "el2n_mean": 100 * grouped["el2n"].mean(),
        "worst_min": 100 * grouped["value"].min(), "worst_max": 100 * grouped["value"].max(),
    }).reset_index()


def class_histories(frame: pd.DataFrame, density: float | None = None, seed: int | None = None) -> pd.DataFrame:
    """The class weights and validation recalls of every CDB-W training, epoch by epoch.

    From the rows' ``cdbw_val_recalls_per_epoch`` (``[E, K]``, the final training of EL2N+CDB-W
    and CDB-W on the full dataset) and ``query_cdbw_val_recalls_per_epoch`` (``[S, E, K]``, each
    query run of CDB-W+EL2N); runs whose row lacks its column are left out. The weights of epoch
    ``e`` are :func:`dropkit.train.cdbw_class_weights` of the recalls after epoch ``e - 1`` under
    the run's rule, over the kept class counts (final trainings) or all class sizes (query runs);
    epoch 0 trains with weights 1.

    Returns one row per (run, training, epoch, class): ``curve``, ``rule``, ``density``, ``seed``,
    ``training`` (``"final"`` or ``"query run i"``), ``epoch`` (0-based), ``class`` (index),
    ``weight`` (used during the epoch), ``val_recall`` (after the epoch, in [0, 1]).
    """
    from dropkit.train import cdbw_class_weights

    rows = _cdbw_rows(frame)
    if density is not None:
        rows = rows[np.isclose(rows["density"].astype(float), density)]
    if seed is not None:
        rows = rows[rows["seed"].astype(int) == seed]
    out: list[dict] = []
    for row in rows.to_dict("records"):
        trainings = []
        if row.get("cdbw") and isinstance(row.get("cdbw_val_recalls_per_epoch"), list):
            trainings.append(("final", row["cdbw_val_recalls_per_epoch"], row["class_counts"]))
        if row.get("query_cdbw") and isinstance(row.get("query_cdbw_val_recalls_per_epoch"), list):
            trainings += [(f"query run {i}", runs, row["class_sizes"])
                          for i, runs in enumerate(row["query_cdbw_val_recalls_per_epoch"])]
        for training, history, sizes in trainings:
            recalls = np.asarray(history, dtype=float)
            weights = np.ones_like(recalls)
            for epoch in range(1, len(recalls)):
                weights[epoch] = cdbw_class_weights(recalls[epoch - 1], row["rule"], sizes)
            for epoch in range(len(recalls)):
                for k in range(recalls.shape[1]):
                    out.append({"curve": row["curve"], "rule": row["rule"], "density": float(row["density"]),
                                "seed": int(row["seed"]), "training": training, "epoch": epoch, "class": k,
                                "weight": float(weights[epoch, k]), "val_recall": float(recalls[epoch, k])})
    return pd.DataFrame(out, columns=["curve", "rule", "density", "seed", "training", "epoch", "class",
                                      "weight", "val_recall"])


def oscillation(histories: pd.DataFrame) -> pd.DataFrame:
    """How much the weights and recalls of each training of :func:`class_histories` move between
    epochs.

    Returns one row per (``curve``, ``rule``, ``density``, ``seed``, ``training``): ``epochs``
    (E), ``worst_class_changes`` (of the E - 1 pairs of consecutive epochs, those after which the
    class of lowest validation recall is another one), ``lowest_recall_min`` (the lowest
    validation recall after an epoch that sets weights, i.e. epochs 0..E-2, in [0, 1]),
    ``weight_ratio_max`` (the largest class weight over the mean class weight of its epoch, the
    largest over epochs 1..E-1: scale-free, so comparable between rules) and ``recall_swing_max``
    (the largest change of one class's validation recall between consecutive epochs, in [0, 1]).
    """
    keys = ["curve", "rule", "density", "seed", "training"]
    out = []
    for key, rows in histories.groupby(keys, sort=True):
        recalls = rows.pivot(index="epoch", columns="class", values="val_recall").to_numpy()
        weights = rows.pivot(index="epoch", columns="class", values="weight").to_numpy()
        if len(recalls) < 2:
            continue
        lowest = np.nanargmin(recalls, axis=1)
        weighted = weights[1:]
        out.append({**dict(zip(keys, key)), "epochs": len(recalls),
                    "worst_class_changes": int((lowest[1:] != lowest[:-1]).sum()),
                    "lowest_recall_min": float(np.nanmin(recalls[:-1])),
                    "weight_ratio_max": float(np.max(weighted.max(1) / weighted.mean(1))),
                    "recall_swing_max": float(np.nanmax(np.abs(np.diff(recalls, axis=0))))})
    return pd.DataFrame(out, columns=keys + ["epochs", "worst_class_changes", "lowest_recall_min",
                                             "weight_ratio_max", "recall_swing_max"])


def _share(count: int, total: int) -> str:
    return f"{count} of {total}"


def collapse_finding(frame: pd.DataFrame, density: float, fraction: float = COLLAPSE_FRACTION) -> str:
    """One Markdown paragraph, from the rows, on what causes EL2N+CDB-W's collapse: its collapse
    counts under both rules (:func:`collapse_counts`) at every density where either rule collapses
    in a seed, which case they give (both rules collapse at some density in most seeds: CDB-W's
    weighting itself; only the book's ``"paper"`` rule: its normalisation; neither), and how much
    both rules' final trainings' weights and recalls move at ``density`` (:func:`oscillation`).
    Raises ``ValueError`` if the frame lacks EL2N+CDB-W under either rule.
    """
    counts = collapse_counts(frame, fraction)
    counts = counts[counts["curve"] == "EL2N+CDB-W"]
    if not {"paper", "authors"} <= set(counts["rule"]):
        raise ValueError("the frame lacks EL2N+CDB-W under both rules ('paper', 'authors')")
    table = counts.pivot(index="density", columns="rule")
    shown = [d for d in table.index if table.loc[d, ("collapsed", "paper")] + table.loc[d, ("collapsed", "authors")] > 0]
    if not shown:
        return (f"Measured: EL2N+CDB-W's worst class never falls below {fraction:.0%} of plain EL2N's (same seed) "
                f"under either rule: **no collapse to explain in these runs**.")

    def listing(rule: str) -> str:
        return " and ".join(f"{_share(int(table.loc[d, ('collapsed', rule)]), int(table.loc[d, ('seeds', rule)]))} "
                            f"at $d = {d:g}$ (worst class {table.loc[d, ('worst_min', rule)]:.1f}-"
                            f"{table.loc[d, ('worst_max', rule)]:.1f} %)" for d in shown)

    def majority(d, rule) -> bool:
        return table.loc[d, ("collapsed", rule)] > table.loc[d, ("seeds", rule)] / 2

    both = [d for d in shown if majority(d, "paper") and majority(d, "authors")]
    ours_only = [d for d in shown if majority(d, "paper") and not majority(d, "authors")]
    theirs_only = [d for d in shown if majority(d, "authors") and not majority(d, "paper")]
    if both:
        cause = (f"**both rules collapse in most seeds (at $d = {', '.join(f'{d:g}' for d in both)}$), so the "
                 f"collapse is CDB-W's weighting itself in this setting, not our normalisation alone**")
        if ours_only:
            cause += f"; at $d = {', '.join(f'{d:g}' for d in ours_only)}$ only our rule collapses in most seeds"
    elif ours_only:
        cause = "**only our rule collapses in most seeds, so the cause is our normalisation**"
    elif theirs_only:
        cause = "**only the authors' rule collapses in most seeds, so the cause is not our normalisation**"
    else:
        cause = "**neither rule collapses in most seeds at any density**"
    moves = oscillation(class_histories(frame, density))
    moves = moves[(moves["curve"] == "EL2N+CDB-W") & (moves["training"] == "final")]
    swings = {rule: rows for rule, rows in moves.groupby("rule")}

    def motion(rule: str) -> str:
        rows = swings.get(rule)
        if rows is None or rows.empty:
            return "not recorded"
        changes, pairs = int(rows["worst_class_changes"].sum()), int((rows["epochs"] - 1).sum())
        return (f"the class of lowest validation recall changes after {_share(changes, pairs)} epochs, "
                f"a class's validation recall moves by up to {100 * rows['recall_swing_max'].max():.0f} pp "
                f"from one epoch to the next, and the largest class weight reaches "
                f"{rows['weight_ratio_max'].max():.1f} times the mean class weight")

    return (f"Measured: EL2N+CDB-W's worst class falls below {fraction:.0%} of plain EL2N's (same seed and density) "
            f"with our rule in {listing('paper')}; with the authors' rule in {listing('authors')}: {cause}. "
            f"Epoch by epoch at $d = {density:g}$, over the seeds' final trainings: with our rule {motion('paper')}; "
            f"with the authors' {motion('authors')}.")


def rule_pairs(frame: pd.DataFrame, curve: str = "EL2N+CDB-W") -> pd.DataFrame:
    """How alike the two rules' runs of ``curve`` on one seed and density started: one row per
    (``density``, ``seed``) run under both ``"paper"`` and ``"authors"``: ``same_counts`` (the
    kept class counts are equal), ``count_diff_max`` (the largest difference of one class's kept
    count, samples) and, where both record their final training's recalls, ``first_epoch_diff_max``
    (the largest difference of one class's validation recall after the unweighted epoch 0, in
    [0, 1]). Runs of one spec but for the rule keep the same data and epoch 0 only if their query
    trainings and epoch 0 computed the same floats."""
    rows = _cdbw_rows(frame)
    rows = rows[rows["curve"] == curve]
    out = []
    for (density, seed), group in rows.groupby(["density", "seed"], sort=True):
        by_rule = {row["rule"]: row for row in group.to_dict("records")}
        if not {"paper", "authors"} <= set(by_rule):
            continue
        ours, theirs = by_rule["paper"], by_rule["authors"]
        counts = np.abs(np.asarray(ours["class_counts"]) - np.asarray(theirs["class_counts"]))
        first = np.nan
        if isinstance(ours.get("cdbw_val_recalls_per_epoch"), list) and isinstance(theirs.get("cdbw_val_recalls_per_epoch"), list):
            first = float(np.nanmax(np.abs(np.asarray(ours["cdbw_val_recalls_per_epoch"][0], dtype=float)
                                           - np.asarray(theirs["cdbw_val_recalls_per_epoch"][0], dtype=float))))
        out.append({"density": float(density), "seed": int(seed), "same_counts": bool(counts.max() == 0),
                    "count_diff_max": int(counts.max()), "first_epoch_diff_max": first})
    return pd.DataFrame(out, columns=["density", "seed", "same_counts", "count_diff_max", "first_epoch_diff_max"])


def same_machine_finding(frame: pd.DataFrame, recomputed: pd.DataFrame,
                         fraction: float = COLLAPSE_FRACTION) -> str:
    """One Markdown paragraph comparing the two rules on the same machine: ``recomputed`` holds
    rows of ``frame``'s runs (same ``cache_key``) computed again elsewhere, e.g. the book's-rule
    EL2N+CDB-W runs on the machine of the authors'-rule rows. They replace their namesakes, and at
    their densities the paragraph gives: how alike the pairs started (:func:`rule_pairs`), the
    collapse counts of both rules (:func:`collapse_counts`), and in how many seeds the two rules
    agree on collapsing, all over the (density, seed) pairs ``recomputed`` holds. Raises
    ``ValueError`` if no recomputed row is one of ``frame``'s EL2N+CDB-W runs."""
    if recomputed.empty or "cache_key" not in recomputed:
        raise ValueError("recomputed holds no rows")
    keys = set(recomputed["cache_key"])
    if not keys & set(frame["cache_key"]):
        raise ValueError("no recomputed row is a run of frame")
    columns = [c for c in frame.columns if c in recomputed.columns]
    merged = pd.concat([frame[~frame["cache_key"].isin(keys)], recomputed[columns]], ignore_index=True)
    densities = sorted({float(d) for d in recomputed["density"]})
    where = {(round(float(d), 6), int(s)) for d, s in zip(recomputed["density"], recomputed["seed"])}

    def recomputed_pairs(table: pd.DataFrame) -> pd.DataFrame:
        return table[[(round(float(d), 6), int(s)) in where for d, s in zip(table["density"], table["seed"])]]

    pairs = recomputed_pairs(rule_pairs(merged))
    values = worst_class_by_rule(merged).dropna(subset=["el2n"])
    values = recomputed_pairs(values[values["curve"] == "EL2N+CDB-W"])
    values["collapsed"] = values["value"] < fraction * values["el2n"]
    table = values.pivot_table(index=["density", "seed"], columns="rule", values="collapsed", aggfunc="first")
    if not {"paper", "authors"} <= set(table.columns):
        raise ValueError("the recomputed densities lack EL2N+CDB-W under both rules")
    table = table.dropna()
    agree = int((table["paper"] == table["authors"]).sum())
    counts = " and ".join(
        f"at $d = {d:g}$ ours {int(table.loc[d, 'paper'].sum())} of {len(table.loc[d])}, the authors' "
        f"{int(table.loc[d, 'authors'].sum())} of {len(table.loc[d])}" for d in densities)
    return (f"Same machine: with the book's-rule EL2N+CDB-W runs recomputed where the authors'-rule rows were "
            f"computed, the pairs kept the same class counts in {int(pairs['same_counts'].sum())} of {len(pairs)} "
            f"(density, seed) pairs and had identical validation recalls after the unweighted epoch 0 in "
            f"{int((pairs['first_epoch_diff_max'] == 0).sum())}; runs that collapse: {counts}; the two rules agree on "
            f"whether a seed collapses in {agree} of {len(table)} pairs.")


#: The learning-rate check of chapter 04 (pre-registered in ``results/default/README.md`` before its
#: rows were computed): the density at which it decides and the most/fewest collapsed seeds of its
#: two outcomes.
LR_CHECK_DENSITY = 0.3
LR_CHECK_AT_MOST = 1
LR_CHECK_AT_LEAST = 3
#: ... its learning rate (the default profile's MLP trains at 0.05), densities and seeds.
LR_CHECK_LR = 0.01
LR_CHECK_DENSITIES = (0.3, 0.5)
LR_CHECK_SEEDS = (0, 1, 2, 3, 4)


def learning_rate_check_specs(profile: str = "default", setup: str = "mlp-fashion-mnist") -> list:
    """The runs of the learning-rate check (:func:`learning_rate_finding`): ``profile``'s cdbw set
    on ``setup`` at :data:`LR_CHECK_DENSITIES` and :data:`LR_CHECK_SEEDS` with lr
    :data:`LR_CHECK_LR` everywhere, plain EL2N and EL2N+CDB-W (every rule the set runs) only:
    30 RunSpecs on the default profile."""
    from dropkit.profiles import experiment_specs

    return [spec for spec in experiment_specs(profile, "cdbw", setup=setup, seeds=LR_CHECK_SEEDS,
                                              densities=LR_CHECK_DENSITIES, lr=LR_CHECK_LR)
            if spec.protocol == "strategy" and spec.method == "el2n" and not spec.query_cdbw]


def learning_rate_finding(frame: pd.DataFrame, lowered: pd.DataFrame, fraction: float = COLLAPSE_FRACTION,
                          density: float = LR_CHECK_DENSITY, expected: list | None = None) -> str:
    """One Markdown paragraph on whether EL2N+CDB-W's collapse is an instability of the learning
    rate: ``lowered`` holds the same runs (plain EL2N and EL2N+CDB-W under both rules) with a
    smaller learning rate everywhere (query models too), ``frame`` the book's. A run collapses as
    in :func:`collapse_counts` (against plain EL2N at its own learning rate, seed and density); the
    book's counts it is set against are of ``lowered``'s seeds only (``frame`` may hold more).

    The pre-registered rule, at ``density``, for each rule of the lowered runs: **the learning
    rate** if EL2N+CDB-W collapses in at most :data:`LR_CHECK_AT_MOST` seeds under both rules;
    **not the learning rate alone** if it collapses in at least :data:`LR_CHECK_AT_LEAST` under
    both; else **mixed**. The other densities of ``lowered`` are reported, not decided. Raises
    ``ValueError`` if ``lowered`` lacks EL2N+CDB-W under both rules at ``density``, holds a single
    learning rate equal to the book's, or lacks any run of ``expected`` (RunSpecs, e.g.
    :func:`learning_rate_check_specs`; matched by ``cache_key``): an incomplete check gives no verdict.
    """
    if expected is not None:
        stored = set(lowered["cache_key"]) if "cache_key" in lowered else set()
        absent = sum(spec.cache_key not in stored for spec in expected)
        if absent:
            raise ValueError(f"the learning-rate check is incomplete: {absent} of its {len(expected)} runs are "
                             "not stored; no verdict")
    rates = sorted({float(v) for v in lowered["lr"]}) if "lr" in lowered else []
    book = sorted({float(v) for v in frame["lr"]}) if "lr" in frame else []
    if len(rates) != 1 or len(book) != 1 or rates[0] >= book[0]:
        raise ValueError(f"lowered must hold one learning rate below the book's {book}, not {rates}")

    def counts_of(rows: pd.DataFrame) -> pd.DataFrame:
        counts = collapse_counts(rows, fraction)
        return counts[counts["curve"] == "EL2N+CDB-W"].set_index(["rule", "density"])

    seeds = sorted({int(s) for s in lowered["seed"]})
    low, high = counts_of(lowered), counts_of(frame[frame["seed"].astype(int).isin(seeds)])
    keys = [(rule, density) for rule in ("paper", "authors")]
    if not all(key in low.index for key in keys):
        raise ValueError(f"lowered lacks EL2N+CDB-W under both rules at d = {density:g}")
    collapsed = {rule: int(low.loc[(rule, density), "collapsed"]) for rule in ("paper", "authors")}
    if all(n <= LR_CHECK_AT_MOST for n in collapsed.values()):
        verdict = (f"**the collapse is an instability of the learning rate in this setting**: at the smaller rate "
                   f"at most {LR_CHECK_AT_MOST} seed collapses under either rule")
    elif all(n >= LR_CHECK_AT_LEAST for n in collapsed.values()):
        verdict = (f"**not the learning rate alone**: at a {book[0] / rates[0]:g}x smaller rate EL2N+CDB-W still "
                   f"collapses in at least {LR_CHECK_AT_LEAST} seeds under both rules")
    else:
        verdict = "**mixed**: the smaller rate neither removes the collapse under both rules nor keeps it under both"
    rule_names = {"paper": "our rule", "authors": "the authors'"}

    def cell(table, rule, d) -> str:
        if (rule, d) not in table.index:
            return "not run"
        row = table.loc[(rule, d)]
        return (f"{int(row['collapsed'])} of {int(row['seeds'])} (worst class {row['worst_min']:.1f}-"
                f"{row['worst_max']:.1f} %, EL2N {row['el2n_mean']:.1f} %)")

    densities = sorted({d for _, d in low.index})
    listing = "; ".join(f"at $d = {d:g}$, " + ", ".join(
        f"{rule_names[rule]} {cell(low, rule, d)} against {cell(high, rule, d)} at lr = {book[0]:g}"
        for rule in ("paper", "authors")) for d in densities)
    return (f"Learning rate: the same EL2N and EL2N+CDB-W runs with lr = {rates[0]:g} instead of {book[0]:g} "
            f"(query models too), seeds {', '.join(map(str, seeds))}, against the book's runs of the same seeds. "
            f"Collapsed seeds at lr = {rates[0]:g}: {listing}. Decided at $d = {density:g}$ by the rule fixed "
            f"before these runs (`dropkit.cdbw_rules.learning_rate_finding`): {verdict}.")
