"""The scorecard: every claim of :mod:`dropkit.registry` judged by its rule of
:mod:`dropkit.claims` on the book's runs, one row per claim and setting, with Holm's correction
over the whole scorecard ("Does the paper hold here?").

:func:`scorecard` evaluates claims on result tables (experiment set -> rows); :func:`book_scorecard`
does it for a profile's stored rows and chapter 01's simulations, as every chapter and the
scorecard page do, so a verdict is stated once: each chapter shows its own rows of the same table
(:func:`chapter_markdown`, :func:`chapter_box`), after the same correction.

Our setting is not the paper's (the ``default`` profile: an MLP and a small CNN on Fashion-MNIST,
not VGG/ResNet on CIFAR/ImageNet): where the paper gives a number, the row shows it next to our
analogous measurement, never as if they were the same quantity.

Effects are computed per *setting* (a model-dataset pair and its training: the ``setting`` column
of :func:`dropkit.chapter.chapter_results`). A claim about a curve that a setting does not run
(e.g. GraNd in the CNN's bias benchmark) has no row for that setting; :func:`omitted` lists
those pairs and :func:`omissions_markdown` says why.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from dropkit.claims import ALPHA, CONTEXT, NOT_TESTABLE, VERDICTS, Decision, Evidence, holm
from dropkit.curves import labelled
from dropkit.registry import claims as registered_claims
from dropkit.registry.claim import Claim, Context
from dropkit.tables import check_one_setting, split_setups

__all__ = ["NOT_COMPUTED", "ALL_VERDICTS", "CHAPTER_TITLES", "profile_claims", "profile_context",
           "theory_frames", "stored_frames", "evaluate", "scorecard", "omitted", "book_scorecard", "scorecard_cdbw_rule",
           "verdict_counts", "scorecard_markdown", "chapter_markdown", "chapter_box", "omissions_markdown",
           "estimate_text", "family_sentence", "summary_markdown", "chapter_summary_markdown", "replicates_text",
           "seeds_markdown"]

#: The verdict of a claim whose runs are missing (never a verdict of the rule).
NOT_COMPUTED = "not computed"
#: Every verdict a row can show, in the order the pages count them.
ALL_VERDICTS = (*VERDICTS, CONTEXT, NOT_TESTABLE, NOT_COMPUTED)
#: The book's chapter titles by document name.
CHAPTER_TITLES = {
    "01_theory": "01 Gaussian mixture",
    "02_bias_benchmark": "02 Pruning and bias",
    "03_drop_evaluation": "03 DRoP evaluation",
    "04_cdbw": "04 CDB-W",
    "05_imbalanced": "05 Long-tailed data",
    "06_waterbirds": "06 Group robustness",
    "07_pretraining_ablation": "07 Query length",
    "elsewhere": "Not testable here",
}
#: Columns of :func:`scorecard`.
COLUMNS = ("id", "chapter", "setting", "claim", "quote", "where", "quantity", "densities", "hypothesis",
           "margin", "paper", "figure", "measured", "n", "replicate", "unit", "mean", "low", "high", "p",
           "verdict", "holm", "mde", "n_needed", "part", "values", "seeds", "reason")


def profile_claims(profile) -> tuple[Claim, ...]:
    """The registry for a :class:`dropkit.profiles.Profile`: per-method claims for the score
    methods of its bias-benchmark setups and the strategies of its DRoP-evaluation setups."""
    methods = tuple(dict.fromkeys(m for s in profile.setups_for("bias_benchmark")
                                  for m in (profile.methods if s.methods is None else s.methods)))
    strategies = tuple(dict.fromkeys(m for s in profile.setups_for("drop_evaluation") for m in s.strategies))
    return registered_claims(methods or profile.methods, strategies or None)


def profile_context(profile, reference: float = 0.5, cdbw_rule: str = "paper") -> Context:
    """The measurement :class:`~dropkit.registry.Context` of a profile: ``reference`` density, the
    query length of its Figure-15 setup, and the CDB-W rule the CDB-W claims read."""
    setups = profile.setups_for("pretraining_ablation")
    return Context(reference=reference, default_query=setups[0].query_epochs if setups else 1, cdbw_rule=cdbw_rule)


def theory_frames() -> dict[str, pd.DataFrame]:
    """Chapter 01's replicates for its claims (the registry's pre-registered sizes:
    :data:`dropkit.registry.theory.N_DATASETS` datasets, :data:`~dropkit.registry.theory.N_DRAWS`
    mixtures): ``{"theory": ..., "theory_draws": ...}``."""
    from dropkit.registry import theory as registry_theory
    from dropkit.theory import GaussianMixture, figure4a_table, simulation_table

    mixture = GaussianMixture()
    return {"theory": simulation_table(mixture, registry_theory.RUNS, n_datasets=registry_theory.N_DATASETS,
                                       n_points=registry_theory.N_POINTS, seed=0),
            "theory_draws": figure4a_table(mixture.mu0, mixture.mu1, registry_theory.N_DRAWS, seed=0)}


def stored_frames(profile, results_dir="results", *, seeds=None, device=None) -> tuple[dict, dict]:
    """Every experiment set's *stored* rows of ``profile`` (nothing is trained), labelled and
    split into settings as :func:`dropkit.chapter.chapter_results` does. Returns ``(frames,
    missing)``: experiment set -> rows, and experiment set -> number of its runs not stored."""
    from dropkit.chapter import label_settings
    from dropkit.profiles import EXPERIMENT_SETS, experiment_settings
    from dropkit.store import ResultStore
    from dropkit.sweep import results_frame

    store = ResultStore(results_dir, profile.name)
    rows = store.frame()
    frames, missing = {}, {}
    for experiment in EXPERIMENT_SETS:
        by_setting = experiment_settings(profile, experiment, seeds=seeds, device=device)
        specs = list({spec.cache_key: spec for runs in by_setting.values() for spec in runs}.values())
        frame = results_frame(specs, store, rows)
        missing[experiment] = len(specs) - len(frame)
        frames[experiment] = labelled(label_settings(frame, by_setting)) if len(frame) else frame
    return frames, missing


def _frame_for(claim: Claim, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    names = claim.experiments
    absent = [name for name in names if name not in frames or frames[name] is None or frames[name].empty]
    if absent:
        raise ValueError(f"no stored rows of {', '.join(absent)}")
    if len(names) == 1:
        return frames[names[0]]
    frame = pd.concat([frames[name] for name in names], ignore_index=True)
    return frame.drop_duplicates(subset=["cache_key", "setting"], ignore_index=True)


def _settings(claim: Claim, frames) -> list[tuple[str, pd.DataFrame]]:
    frame = _frame_for(claim, frames)
    if claim.simulated:
        return [("", frame)]
    return split_setups(frame)


def _missing_labels(claim: Claim, part: pd.DataFrame) -> tuple[str, ...]:
    if claim.simulated:
        return ()
    present = set(part["label"])
    return tuple(label for label in claim.needs if label not in present)


def evaluate(claim: Claim, frame: pd.DataFrame | None, context: Context = Context()) -> tuple[Evidence, Decision]:
    """The claim's evidence on the rows of one setting (``None`` for a claim that reads none) and
    its rule's decision. ``ValueError`` for a frame of several settings."""
    if claim.measure is None:
        evidence = Evidence()
    else:
        if not claim.simulated:
            check_one_setting(frame)
            frame = labelled(frame)
        evidence = claim.measure(frame, context)
    if claim.rule.needs_margin and evidence.margin is None:
        raise ValueError(f"claim {claim.id!r}: its rule needs a margin and the measure gave none")
    return evidence, claim.rule.decide(evidence)


#: Units printed without a suffix, with two decimals (correlations, thresholds, log ratios).
_BARE_UNITS = ("r", "x", "log10")


def _digits(low: float, high: float, unit: str, decided: bool) -> int:
    digits = 2 if unit in _BARE_UNITS else 1
    if decided:
        while digits < 4 and any(round(v, digits) == 0 for v in (low, high) if np.isfinite(v)):
            digits += 1
    return digits


def estimate_text(row) -> str:
    """``"+9.6 pp [+7.1, +12.0]"`` (mean and 95 % interval, digits such that no bound of a decided
    row reads as 0), or the computed numbers of an exact/observation row."""
    if row["verdict"] in (NOT_TESTABLE, NOT_COMPUTED) or not np.isfinite(row["mean"]):
        return ""
    unit = "" if row["unit"] in (*_BARE_UNITS, "") else f" {row['unit']}"
    if row["hypothesis"].startswith("observation"):
        return f"{row['mean']:.0%} of {row['n']} {row['replicate']}s"
    digits = _digits(row["low"], row["high"], row["unit"], row["verdict"] in ("holds", "contradicted"))
    span = "" if not np.isfinite(row["low"]) else f" [{row['low']:+.{digits}f}, {row['high']:+.{digits}f}]"
    return f"{row['mean']:+.{digits}f}{unit}{span}"


def _row(claim: Claim, title: str) -> dict:
    return {"id": claim.id, "chapter": claim.chapter, "setting": title, "claim": claim.short, "quote": claim.quote,
            "where": claim.where, "quantity": claim.quantity, "densities": claim.densities,
            "hypothesis": claim.rule.describe(), "margin": claim.margin, "paper": claim.paper or "",
            "figure": claim.figure or "", "measured": "", "n": 0, "replicate": "", "unit": "", "mean": np.nan,
            "low": np.nan, "high": np.nan, "p": np.nan, "verdict": NOT_COMPUTED, "holm": NOT_COMPUTED,
            "mde": np.nan, "n_needed": None, "part": "", "values": (), "seeds": (), "reason": ""}


def _fill(row: dict, claim: Claim, evidence: Evidence, decision: Decision) -> None:
    deciding = evidence.parts.get(decision.part) or next(iter(evidence.parts.values()), None)
    margin = ""
    if evidence.margin is not None:
        margin = f"±{evidence.margin:.3g} {evidence.unit}: {evidence.margin_source}".replace(" : ", ": ")
    row.update({
        "hypothesis": claim.rule.describe(evidence), "margin": margin or claim.margin,
        "measured": evidence.measure() or claim.quantity, "n": decision.n,
        "replicate": evidence.replicate, "unit": evidence.unit, "mean": decision.mean, "low": decision.low,
        "high": decision.high, "p": decision.p, "verdict": decision.verdict, "mde": decision.mde,
        "n_needed": decision.n_needed, "part": decision.part,
        "values": deciding.values if deciding is not None else (), "seeds": deciding.seeds if deciding is not None else (),
        "reason": getattr(claim.rule, "reason", ""),
    })
    if claim.rule.name == "exact":
        row["measured"] = ", ".join(f"{k} = {v:.2f} %" for k, v in evidence.computed.items())


def scorecard(frames: Mapping[str, pd.DataFrame], claims, context: Context = Context(), *,
              strict: bool = True) -> pd.DataFrame:
    """One row per claim and setting (columns :data:`COLUMNS`), ordered by claim then setting.

    ``frames``: experiment set -> its labelled rows (``"theory"``/``"theory_draws"``:
    :func:`theory_frames`). ``verdict`` is the claim's rule on that setting; ``holm`` the verdict
    after Holm's correction over every row of this table decided by a test (the family); ``p`` the
    p-value entering it. A setting that does not run a curve the claim needs has no row
    (:func:`omitted`). A claim whose rows are missing raises ``ValueError`` if ``strict``; else its
    row says :data:`NOT_COMPUTED` and why (in ``measured``), never a verdict.
    """
    rows = []
    for claim in claims:
        if claim.measure is None:
            row = _row(claim, "")
            _fill(row, claim, *evaluate(claim, None, context))
            rows.append(row)
            continue
        try:
            settings = _settings(claim, frames)
        except ValueError as error:
            if strict:
                raise ValueError(f"claim {claim.id!r}: {error}") from error
            rows.append({**_row(claim, ""), "measured": f"({error})"})
            continue
        for title, part in settings:
            if _missing_labels(claim, part):
                continue
            row = _row(claim, title)
            try:
                _fill(row, claim, *evaluate(claim, part, context))
            except (ValueError, KeyError, IndexError) as error:  # runs or columns missing
                if strict:
                    raise ValueError(f"claim {claim.id!r}{f' on {title}' if title else ''}: {error}") from error
                row["measured"] = f"({error})"
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    rejected = holm(table["p"].to_numpy(dtype=np.float64), ALPHA) if len(table) else np.zeros(0, bool)
    tested = np.isfinite(table["p"].to_numpy(dtype=np.float64))
    table["holm"] = [v if (not t or v not in ("holds", "contradicted") or r) else "inconclusive"
                     for v, t, r in zip(table["verdict"], tested, rejected)]
    return table


def omitted(frames: Mapping[str, pd.DataFrame], claims) -> pd.DataFrame:
    """The (claim, setting) pairs :func:`scorecard` gives no row because the setting does not run a
    curve the claim needs. Columns: ``id``, ``chapter``, ``setting``, ``missing`` (the labels)."""
    rows = []
    for claim in claims:
        if claim.measure is None or claim.simulated:
            continue
        try:
            settings = _settings(claim, frames)
        except ValueError:
            continue
        for title, part in settings:
            missing = _missing_labels(claim, part)
            if missing:
                rows.append({"id": claim.id, "chapter": claim.chapter, "setting": title, "missing": missing})
    return pd.DataFrame(rows, columns=["id", "chapter", "setting", "missing"])


def scorecard_cdbw_rule(frame) -> str:
    """The CDB-W weight rule the scorecard reads from chapter 04's rows ``frame`` (None: no rows):
    ``"authors"`` where rows of the authors' rule exist (the paper's numbers were computed with the
    authors' code), else ``"paper"`` (ours). Chapter 04's Figure 7 draws the same rule."""
    has_authors = (frame is not None and not frame.empty and "cdbw_weights" in frame
                   and bool((frame["cdbw_weights"] == "authors").any()))
    return "authors" if has_authors else "paper"


def book_scorecard(profile, results_dir="results", *, seeds=None, device=None, reference: float = 0.5,
                   cdbw_rule: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The book's scorecard from ``profile``'s stored rows (nothing is trained) and chapter 01's
    simulations: ``(table, omitted, missing)`` (:func:`scorecard` with ``strict=False``,
    :func:`omitted`, and experiment set -> runs not stored). ``cdbw_rule`` None: the authors' rule
    where its rows exist (the paper's numbers come from the authors' code), else ours."""
    from dropkit.profiles import get_profile

    settings = profile if not isinstance(profile, str) else get_profile(profile)
    frames, missing = stored_frames(settings, results_dir, seeds=seeds, device=device)
    frames.update(theory_frames())
    if cdbw_rule is None:
        cdbw_rule = scorecard_cdbw_rule(frames.get("cdbw"))
    claims = profile_claims(settings)
    context = profile_context(settings, reference, cdbw_rule)
    return scorecard(frames, claims, context, strict=False), omitted(frames, claims), missing


def verdict_counts(table: pd.DataFrame, column: str = "holm") -> dict[str, int]:
    """How many rows have each verdict of :data:`ALL_VERDICTS` (in ``column``: ``"holm"`` or
    ``"verdict"``)."""
    counts = table[column].value_counts()
    return {v: int(counts.get(v, 0)) for v in ALL_VERDICTS}


# --------------------------------------------------------------------------- rendering

def _escape(text) -> str:
    """Text safe inside a Markdown table cell ("|" would end it, "*" start emphasis)."""
    return str(text).replace("|", "\\|").replace("*", "\\*")


def _power_text(row) -> str:
    if row["verdict"] not in VERDICTS or not np.isfinite(row["mde"]):
        return ""
    digits = 2 if row["unit"] in _BARE_UNITS else 1
    unit = "" if row["unit"] in (*_BARE_UNITS, "") else f" {row['unit']}"
    needed = row["n_needed"]
    need = "never at this mean" if needed is None or pd.isna(needed) else f"{int(needed)}"
    what = "smallest provable margin" if row["hypothesis"].startswith(("equivalence", "intersection-union over")) \
        and "equivalence" in row["hypothesis"] else "MDE"
    return f"{what} {row['mde']:.{digits}f}{unit}; n for 80 %: {need}"


def _verdict_text(row) -> str:
    holm_verdict, raw = row["holm"], row["verdict"]
    if raw == holm_verdict:
        return f"**{holm_verdict}**"
    return f"**{holm_verdict}** (uncorrected: {raw})"


def _definition(row) -> str:
    """The folded definition of a row: quote, quantity, hypothesis, margin, what was measured."""
    lines = [f"> “{row['quote']}” ({row['where']})", "",
             f"- **Quantity:** {row['quantity']}; **densities:** {row['densities']}",
             f"- **Hypothesis:** {row['hypothesis']}" + (f"; **margin:** {row['margin']}" if row["margin"] else "")]
    if row["measured"]:
        lines.append(f"- **Measured here:** {row['measured']}")
    if row["verdict"] in VERDICTS and np.isfinite(row["p"]):
        lines.append(f"- **n** = {row['n']} {row['replicate']}s; p = {row['p']:.3g} (enters Holm's correction)"
                     + (f"; binding part: {row['part']}" if row["part"] else ""))
    if row["reason"]:
        lines.append(f"- **Why not here:** {row['reason']}")
    return "\n".join(lines)


def _table(rows: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "claim": [f"{f'**{s}**: ' if s else ''}{_escape(c)} (`{i}`)" for s, c, i in
                  zip(rows["setting"], rows["claim"], rows["id"])],
        "paper": [_escape(p) for p in rows["paper"]],
        "ours (95 % CI)": [_escape(estimate_text(r)) for _, r in rows.iterrows()],
        "verdict (Holm)": [_verdict_text(r) for _, r in rows.iterrows()],
        "power": [_escape(_power_text(r)) for _, r in rows.iterrows()],
    })
    return shown.to_markdown(index=False, disable_numparse=True)


def _definitions(rows: pd.DataFrame) -> str:
    blocks = []
    for _, row in rows.drop_duplicates(subset=["id", "setting"]).iterrows():
        where = f" on {row['setting']}" if row["setting"] else ""
        title = f"`{row['id']}`{where}: {row['claim']}"
        figure = f"\n\nFigure: {{numref}}`{row['figure']}`" if row["figure"] else ""
        blocks.append(f"**{title}**\n\n{_definition(row)}{figure}")
    body = "\n\n".join(blocks)
    return f":::{{dropdown}} Definitions: quotes, hypotheses, margins and measurements\n{body}\n:::"


def chapter_markdown(table: pd.DataFrame, chapter: str, omissions: pd.DataFrame | None = None, *,
                     label: str = "claims") -> str:
    """One chapter's rows of the scorecard (the same rows and Holm-corrected verdicts as the
    scorecard page): a captioned table (its label ``<label>-<chapter>``, unique in the book),
    the folded definitions, and why a claim has no row for a setting."""
    rows = table[table["chapter"] == chapter]
    if rows.empty:
        raise ValueError(f"no scorecard rows for chapter {chapter!r}")
    which = "that this book cannot test" if chapter == "elsewhere" else f"of chapter {chapter[:2]}"
    title = f"The paper's claims {which}, checked on this book's runs (verdicts Holm-corrected over the scorecard)"
    parts = [f":::{{table}} {title}\n:name: {label}-{chapter}\n\n{_table(rows)}\n:::", _definitions(rows)]
    if omissions is not None:
        note = omissions_markdown(omissions[omissions["chapter"] == chapter])
        if note:
            parts.append(note)
    return "\n\n".join(parts)


def scorecard_markdown(table: pd.DataFrame, omissions: pd.DataFrame | None = None) -> str:
    """The whole scorecard, one section per chapter (:func:`chapter_markdown`)."""
    parts = []
    for chapter in dict.fromkeys(table["chapter"]):
        heading = CHAPTER_TITLES[chapter] if chapter == "elsewhere" else f"{{doc}}`{chapter}`"
        parts.append(f"## {heading}\n\n{chapter_markdown(table, chapter, omissions, label='scorecard')}")
    return "\n\n".join(parts)


def _counts_sentence(rows: pd.DataFrame) -> str:
    counts = verdict_counts(rows)
    shown = [f"{n} {v}" for v, n in counts.items() if n]
    return ", ".join(shown)


def chapter_box(table: pd.DataFrame, chapter: str) -> str:
    """The short box a chapter opens with: what the paper claims (the chapter's claims in a few
    words) and what we find (each claim's Holm-corrected verdict, by setting), computed from the
    scorecard."""
    rows = table[table["chapter"] == chapter]
    if rows.empty:
        raise ValueError(f"no scorecard rows for chapter {chapter!r}")
    lines = []
    for claim_id, group in rows.groupby("id", sort=False):
        verdicts = "; ".join(f"{f'{s}: ' if s else ''}**{v}**" for s, v in zip(group["setting"], group["holm"]))
        lines.append(f"- {group['claim'].iloc[0]} — {verdicts}")
    body = "\n".join(lines)
    return (f":::{{admonition}} What the paper claims, what we find\n:class: tip\n"
            f"{len(rows)} verdicts on {rows['id'].nunique()} claims: {_counts_sentence(rows)} (after Holm's "
            f"correction over the whole scorecard, {{doc}}`08_scorecard`).\n\n{body}\n:::")


def omissions_markdown(table: pd.DataFrame) -> str:
    """Why some claims have no row for some settings, one sentence per chapter and setting."""
    sentences = []
    for (_, setting), rows in table.groupby(["chapter", "setting"], sort=False):
        ids = ", ".join(f"`{i}`" for i in rows["id"])
        missing = list(dict.fromkeys(label for entry in rows["missing"] for label in entry))
        sentences.append(f"**{setting}** has no row for {ids}: it does not run "
                         f"{', '.join(missing[:-1]) + ' or ' + missing[-1] if len(missing) > 1 else missing[0]}.")
    return "\n\n".join(sentences)


def summary_markdown(table: pd.DataFrame, profile_name, missing: Mapping[str, int] | None = None) -> str:
    """The landing page's answer in plain words, computed from the scorecard: how many verdicts of
    each kind (after Holm's correction), which claims hold, which are contradicted, and what the
    inconclusive ones would need."""
    counts = verdict_counts(table)
    tests = table[np.isfinite(table["p"].to_numpy(dtype=np.float64))]
    name = getattr(profile_name, "name", profile_name)

    def claims_with(verdict: str) -> list[str]:
        out = []
        for claim_id, group in table[table["holm"] == verdict].groupby("id", sort=False):
            settings = [s.split(", ")[-1] for s in group["setting"] if s]
            out.append(f"{group['claim'].iloc[0].removeprefix('... ')} ({', '.join(settings) if settings else 'theory'})")
        return out

    parts = [f"**{len(table)} verdicts on {table['id'].nunique()} claims** of the paper (profile `{name}`), after "
             f"Holm's correction over the {len(tests)} statistical tests: "
             + ", ".join(f"**{n} {v}**" for v, n in counts.items() if n) + "."]
    holding, contradicted = claims_with("holds"), claims_with("contradicted")
    if holding:
        parts.append("**What holds here:**\n\n" + "\n".join(f"- {item}" for item in holding))
    if contradicted:
        parts.append("**What the runs contradict:**\n\n" + "\n".join(f"- {item}" for item in contradicted))
    undecided = tests[tests["holm"] == "inconclusive"]
    if len(undecided):
        uncorrected = int((undecided["verdict"] != "inconclusive").sum())
        needed = pd.to_numeric(undecided["n_needed"], errors="coerce")
        replicates = pd.to_numeric(undecided["n"], errors="coerce")
        within = int((needed <= replicates).sum())
        doubled = int(((needed > replicates) & (needed <= 2 * replicates)).sum())
        never = int(needed.isna().sum())
        parts.append(f"**Undecided:** {len(undecided)} tests are inconclusive at their number of replicates; "
                     f"{uncorrected} of them would decide on their own (uncorrected 95 % interval) but not after "
                     f"Holm's correction over the {len(tests)} tests. At their observed mean and spread, an uncorrected "
                     f"test would have 80 % power at their number of replicates for {within}, at up to twice it for "
                     f"{doubled} more, and at no number for {never} (their mean sits at the null or outside an "
                     f"equivalence margin). The scorecard gives each row's minimum detectable effect.")
    absent = {k: v for k, v in (missing or {}).items() if v}
    if absent:
        parts.append("Runs not stored yet: " + ", ".join(f"{n} of `{e}`" for e, n in absent.items()) + ".")
    return "\n\n".join(parts)


def replicates_text(table: pd.DataFrame) -> str:
    """What the scorecard's rows were computed on, from the rows themselves: each setting with its
    number(s) of seeds, and chapter 01's simulated replicates."""
    parts = []
    tested = table[table["n"] > 1]
    for (setting, replicate), rows in tested.groupby(["setting", "replicate"], sort=False):
        numbers = "/".join(str(n) for n in sorted({int(n) for n in rows["n"]}))
        what = setting or "chapter 01's simulations"
        parts.append(f"{what} ({numbers} {replicate}s)")
    return "; ".join(parts)


def _seed_range(seeds) -> str:
    seeds = sorted(seeds)
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def seeds_markdown(profile, seeds=None) -> str:
    """The seeds of ``profile``'s settings: each setup's pre-registered seeds (fixed before their
    rows were computed; :attr:`dropkit.profiles.TrainingSetup.seeds`) and, where a chapter still
    reads fewer (``Profile.experiment_seeds``), which chapters and seeds. A sentence for the
    landing and scorecard pages, computed from the profile; ``seeds`` (a notebook's ``seeds``
    parameter, which overrides the profile's in every chapter) replaces it with that list."""
    from dropkit.profiles import EXPERIMENT_SETS, get_profile

    if seeds is not None:
        return f"Seeds: {seeds} (the `seeds` parameter)."
    profile = get_profile(profile) if isinstance(profile, str) else profile
    used = [s for s in profile.setups if any(s in profile.setups_for(e) for e in EXPERIMENT_SETS)]
    registered = "; ".join(f"`{s.name}` {len(profile.registered_seeds(s.name))} "
                           f"(seed{'s' if len(profile.registered_seeds(s.name)) > 1 else ''} "
                           f"{_seed_range(profile.registered_seeds(s.name))})" for s in used)
    fixed = (f" (pre-registered in `results/{profile.name}/README.md` before their rows were computed)"
             if any(s.seeds is not None for s in used) else "")
    parts = [f"Seeds per setting{fixed}: {registered}."]
    pending = []
    for setup in used:
        short = {}
        for experiment in EXPERIMENT_SETS:
            if setup in profile.setups_for(experiment):
                seeds = profile.seeds_for(experiment, setup.name)
                if set(seeds) != set(profile.registered_seeds(setup.name)):
                    short.setdefault(tuple(seeds), []).append(CHAPTER_TITLES[EXPERIMENT_SETS[experiment]])
        for seeds, chapters in short.items():
            pending.append(f"`{setup.name}` in {', '.join(chapters)}: seeds {_seed_range(seeds)}")
    if pending:
        parts.append("Not all computed yet; until they are, these chapters read fewer seeds (each row states its "
                     "n): " + "; ".join(pending) + ".")
    else:
        parts.append("Every chapter reads all of them.")
    return " ".join(parts)


def chapter_summary_markdown(table: pd.DataFrame) -> str:
    """Per chapter: a link and the number of verdicts of each kind (Holm-corrected)."""
    rows = []
    for chapter, group in table.groupby("chapter", sort=False):
        counts = verdict_counts(group)
        link = "not testable here" if chapter == "elsewhere" else f"{{doc}}`{CHAPTER_TITLES[chapter]} <{chapter}>`"
        rows.append({"chapter": link, **{v: str(counts[v]) for v in VERDICTS},
                     "other": str(sum(counts[v] for v in ALL_VERDICTS if v not in VERDICTS))})
    body = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
    return (f":::{{table}} Verdicts by chapter, after Holm's correction (other: context, not testable, not "
            f"computed)\n:name: results-by-chapter\n\n{body}\n:::")


def family_sentence(table: pd.DataFrame) -> str:
    """States the family of Holm's correction."""
    tests = int(np.isfinite(table["p"].to_numpy(dtype=np.float64)).sum())
    return (f"Holm's step-down correction at family-wise level {ALPHA:g} over the {tests} rows of the scorecard "
            f"decided by a statistical test (every claim and setting; context, observation, exact, not-testable "
            f"and not-computed rows are not tests)")
