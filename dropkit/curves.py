"""The book's visual language: what every curve is called and its one colour and line style.

A result row (one run, see :func:`dropkit.sweep.results_frame`) is a *curve* named by its
protocol, score method and training variant (:func:`curve_label`: ``"Random+DRoP"``, ``"EL2N"``,
``"Random+EL2NQ"``, ``"EL2N+CDB-W"`` ...). Each curve name has one colour for the whole book
(the ``color`` column of :func:`labelled`), taken from seaborn's ``deep`` palette for the methods and protocols and
from its ``dark`` palette for the variants of chapters 04-06, which are also drawn dashed; no
colour means two things. :func:`use_book_theme` sets the seaborn theme the figures are drawn in.
"""

from __future__ import annotations

import seaborn as sns

#: The robustness metrics of the paper (Section 2) and their axis labels.
METRICS: dict[str, str] = {
    "test_accuracy": "average test accuracy",
    "test_worst_class": "worst-class accuracy",
    "test_gap": "max - min class accuracy",
    "test_std": "std of class accuracies",
}
#: Group-robustness metrics (chapter 06) and their axis labels.
GROUP_METRICS: dict[str, str] = {
    "test_worst_group": "worst-group accuracy",
    "test_group_gap": "max - min group accuracy",
    "test_group_std": "std of group accuracies",
}
#: Densities over which the paper averages the class-accuracy/class-density correlation (Fig. 13).
#: Display names of the score methods.
METHOD_NAMES: dict[str, str] = {
    "el2n": "EL2N",
    "grand": "GraNd",
    "forgetting": "Forgetting",
    "dynamic_uncertainty": "Dynamic Uncertainty",
    "coreset": "CoreSet",
    "ssp": "SSP",
}
FULL_DATASET = "Full dataset"
#: One colour per score method (its plain Strategy curve) ...
_DEEP = sns.color_palette("deep").as_hex()
_DARK = sns.color_palette("dark").as_hex()
#: One colour per score method (its plain Strategy curve) ...
METHOD_COLORS: dict[str, str] = {
    "el2n": _DEEP[0],
    "grand": _DEEP[1],
    "forgetting": _DEEP[2],
    "dynamic_uncertainty": _DEEP[4],
    "coreset": _DEEP[5],
    "ssp": _DEEP[8],
}
#: ... one per protocol that is not the plain strategy ...
PROTOCOL_COLORS: dict[str, str] = {
    "none": "black",
    "random": _DEEP[7],
    "random+drop": _DEEP[3],
    "random+strategyq": _DEEP[9],
    "strategy+drop": _DEEP[6],
}
CDBW_FULL_DATASET = "CDB-W (full dataset)"
#: The suffix of the curves of CDB-W runs with the authors' weight rule (``cdbw_weights="authors"``:
#: ``1 - r_k`` per batch-normalised loss, ``dropkit.train.cdbw_batch_loss``); the book's own rule
#: (``"paper"``) keeps the plain names.
CDBW_AUTHORS_SUFFIX = " (authors' rule)"
#: :data:`CDBW_FULL_DATASET` with the authors' rule.
CDBW_AUTHORS_FULL_DATASET = "CDB-W (full dataset, authors' rule)"


def cdbw_rule_label(base: str, rule: str) -> str:
    """The curve label of a CDB-W curve ``base`` (``"EL2N+CDB-W"``, ``"CDB-W+EL2N"`` or
    :data:`CDBW_FULL_DATASET`) under CDB-W weight rule ``rule``: ``"paper"`` (the book's, plain
    names) or ``"authors"`` (:data:`CDBW_AUTHORS_SUFFIX`, :data:`CDBW_AUTHORS_FULL_DATASET`)."""
    if rule == "paper":
        return base
    if rule != "authors":
        raise ValueError(f"CDB-W rule {rule!r} is not 'paper' or 'authors'")
    return CDBW_AUTHORS_FULL_DATASET if base == CDBW_FULL_DATASET else base + CDBW_AUTHORS_SUFFIX


#: ... and one per training or quota variant of chapters 04-06 (:func:`curve_label`), drawn dashed.
VARIANT_COLORS: dict[str, str] = {
    CDBW_FULL_DATASET: _DARK[2],
    "EL2N+CDB-W": _DARK[0],
    "CDB-W+EL2N": _DARK[4],
    CDBW_AUTHORS_FULL_DATASET: _DARK[8],
    "EL2N+CDB-W" + CDBW_AUTHORS_SUFFIX: _DARK[5],
    "CDB-W+EL2N" + CDBW_AUTHORS_SUFFIX: _DARK[9],
    "Random+DRoP (rule counts)": _DARK[3],
    "Random+DRoP (group quotas)": _DARK[1],
    "EL2N+DRoP (group quotas)": _DARK[6],
}
_REQUIRED = ("dataset", "model", "protocol", "method", "density", "seed")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def method_label(protocol: str, method: str | None = None) -> str:
    """The name of a curve: ``"Full dataset"``, ``"Random"``, ``"Random+DRoP"``, ``"EL2N"``,
    ``"Random+EL2NQ"`` (random within the strategy's class counts), ``"EL2N+DRoP"``.

    ``method`` is ignored for ``"none"``, ``"random"`` and ``"random+drop"`` (whose method only
    names the query model of the DRoP recalls).
    """
    if protocol == "none":
        return FULL_DATASET
    if protocol == "random":
        return "Random"
    if protocol == "random+drop":
        return "Random+DRoP"
    if protocol not in ("strategy", "random+strategyq", "strategy+drop"):
        raise ValueError(f"protocol={protocol!r} is not a pruning protocol")
    if _missing(method) or method not in METHOD_NAMES:
        raise ValueError(f"method={method!r} is not a score method ({', '.join(METHOD_NAMES)})")
    name = METHOD_NAMES[method]
    return {"strategy": name, "random+strategyq": f"Random+{name}Q", "strategy+drop": f"{name}+DRoP"}[protocol]


def method_color(protocol: str, method: str | None = None) -> str:
    """The matplotlib colour of :func:`method_label`'s curve; the same everywhere in the book."""
    method_label(protocol, method)  # validates
    if protocol == "strategy":
        return METHOD_COLORS[method]
    return PROTOCOL_COLORS[protocol]


def curve_label(protocol: str, method: str | None = None, *, cdbw: bool = False,
                query_cdbw: bool = False, quota_rule: str = "paper",
                drop_over: str = "classes", cdbw_weights: str = "paper") -> str:
    """:func:`method_label` with the variants of chapters 04-06 spelled out.

    ``cdbw`` (CDB-W on the final model): ``"CDB-W (full dataset)"``, ``"EL2N+CDB-W"``;
    ``query_cdbw`` (CDB-W query models): ``"CDB-W+EL2N"``; with ``cdbw_weights="authors"`` (the
    authors' CDB-W rule) these read ``"CDB-W (full dataset, authors' rule)"``,
    ``"EL2N+CDB-W (authors' rule)"``, ``"CDB-W+EL2N (authors' rule)"``; DRoP with quota rule
    ``"counts"``: ``"Random+DRoP (rule counts)"``; DRoP quotas over groups:
    ``"EL2N+DRoP (group quotas)"``. Runs of the paper's defaults keep :func:`method_label`'s names.
    """
    label = method_label(protocol, method)
    authors = (cdbw or query_cdbw) and cdbw_weights == "authors"
    if protocol == "none":
        if not cdbw:
            return label
        return CDBW_AUTHORS_FULL_DATASET if authors else CDBW_FULL_DATASET
    if query_cdbw:
        label = f"CDB-W+{label}"
    if cdbw:
        label = f"{label}+CDB-W"
    if authors:
        label += CDBW_AUTHORS_SUFFIX
    if protocol in ("random+drop", "strategy+drop"):
        if quota_rule != "paper":
            label += f" (rule {quota_rule})"
        if drop_over != "classes":
            label += f" ({drop_over[:-1] if drop_over.endswith('s') else drop_over} quotas)"
    return label


def _row_value(row, name: str, default):
    value = row.get(name, default)
    return default if _missing(value) else value


def labelled(frame):
    """A copy of ``frame`` with ``label`` and ``color`` columns (see :func:`curve_label`: the
    variant columns ``cdbw``, ``query_cdbw``, ``cdbw_weights``, ``quota_rule`` and ``drop_over`` count when
    present; missing ones take the paper's defaults).

    Raises ``ValueError`` naming the missing columns if ``frame`` lacks the spec columns.
    """
    missing = [c for c in _REQUIRED if c not in frame]
    if missing:
        raise ValueError(f"frame lacks the result columns {missing}")
    out = frame.copy()
    defaults = {"cdbw": False, "query_cdbw": False, "quota_rule": "paper", "drop_over": "classes",
                "cdbw_weights": "paper"}
    labels, colors = [], []
    for row in out.to_dict("records"):
        variant = {name: _row_value(row, name, default) for name, default in defaults.items()}
        label = curve_label(row["protocol"], row["method"], **variant)
        labels.append(label)
        colors.append(VARIANT_COLORS.get(label, method_color(row["protocol"], row["method"])))
    out["label"], out["color"] = labels, colors
    return out


def _with_labels(frame):
    return frame if "label" in frame else labelled(frame)




def curve_style(label: str) -> str:
    """The matplotlib line style of curve ``label``: dashed for the variants of
    :data:`VARIANT_COLORS`, solid otherwise."""
    return "--" if label in VARIANT_COLORS else "-"


def use_book_theme() -> None:
    """Set the seaborn theme every figure of the book is drawn in (white grid, ``notebook``
    context: 11-12 pt text, readable when a two-panel figure fills the text column)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="deep",
                  rc={"figure.dpi": 100, "axes.titlesize": 12, "legend.frameon": False})


def setup_title(dataset: str, model: str) -> str:
    """``"fashion-mnist, MLP"`` style title of a model-dataset pair."""
    return f"{dataset}, {model.upper() if len(model) <= 5 else model}"
