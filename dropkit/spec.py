"""The run specification: a frozen :class:`RunSpec`, its validation and its cache key.

A :class:`RunSpec` holds everything that can change a number of one run (data, pruning, query
and final training). Its ``cache_key`` is a sha256 of every field (including
:data:`SCHEMA_VERSION`), so two specs that differ in anything never share a result, and the same
spec always finds its stored row; ``query_key`` names the query training a spec needs, shared by
every density and protocol of the same data, model, method and seed.

This module imports no other module of dropkit at import time (only ``dropkit.data`` and
``dropkit.models``, lazily, for their lists of names), so profiles and notebooks can build specs
without the runner.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "PROTOCOLS",
    "SCORE_METHODS",
    "QUOTA_RULES",
    "RunSpec",
    "full_dataset_spec",
    "query_seed",
]

#: Bumped whenever the meaning of a field or of a result changes; part of every cache key.
SCHEMA_VERSION = 1

#: ``"none"`` is the full-dataset baseline (density 1); the others are Section 4's protocols.
PROTOCOLS: tuple[str, ...] = (
    "none",
    "random",
    "strategy",
    "random+strategyq",
    "strategy+drop",
    "random+drop",
)
#: Protocols that rank samples by the scores of ``method``.
SCORE_PROTOCOLS = ("strategy", "random+strategyq", "strategy+drop")
#: Protocols that need the query model's validation recalls (DRoP quotas).
RECALL_PROTOCOLS = ("strategy+drop", "random+drop")
#: Score methods (``dropkit.scores``); every score is "higher = keep".
SCORE_METHODS: tuple[str, ...] = (
    "el2n",
    "grand",
    "forgetting",
    "dynamic_uncertainty",
    "coreset",
    "ssp",
)
#: The query model used for DRoP recalls when ``random+drop`` names no method (short training).
DEFAULT_RECALL_METHOD = "el2n"
#: Query runs are seeded from ``QUERY_SEED_OFFSET + seed * query_seeds`` (see :func:`query_seed`).
QUERY_SEED_OFFSET = 1000
QUOTA_RULES: tuple[str, ...] = ("paper", "counts")
#: What DRoP's quotas are computed over: the classes (the paper's Algorithm 1) or the groups of a
#: group-robustness dataset (group sizes and the query models' per-group validation recalls).
DROP_UNITS: tuple[str, ...] = ("classes", "groups")
#: Fields added to :class:`RunSpec` after schema version 1, with their defaults. At its default
#: such a field is left out of ``cache_key`` and ``query_key``, so every run stored before it
#: existed keeps its key (the field's default is what those runs did).
LATER_FIELD_DEFAULTS: dict[str, Any] = {"drop_over": "classes", "bf16": False,
                                         "channels_last": False, "recall_query": "method",
                                         "cdbw_weights": "floored", "du_window": 10,
                                         "max_shift": 4, "hflip": True}
#: Where Strategy+DRoP takes its class recalls: ``"method"`` (the strategy's own query model; for
#: Forgetting/Dynamic Uncertainty/CoreSet the full-length run) or ``"short"`` (the paper, Appendix
#: F: "we used 10% of the full training cycle to train the query model for EL2N, GraNd, and DRoP",
#: i.e. the short EL2N query models of Random+DRoP, so both DRoP protocols share their quotas).
RECALL_QUERIES: tuple[str, ...] = ("method", "short")
#: CDB-W class weights (``dropkit.train.cdbw_class_weights``): ``"floored"`` (max(1 - r, 1e-3),
#: rescaled to mean 1 over classes; the first implementation) or ``"paper"`` (Section 4: the
#: weights are "precisely the proportions used by DRoP", (1 - r_k) / Z with DRoP's normaliser
#: Z = sum_k (1 - r_k) N_k / N over the trained-on class sizes N_k, so the mean weight per sample is 1;
#: loss mean_i w_{y_i} l_i) or ``"authors"`` (the authors' public code, ``avysogorets/fair-data-pruning``
#: ``trainer.py``: w_k = 1 - r_k with no floor and no normaliser, and each batch's loss the weighted mean
#: sum_i w_{y_i} l_i / sum_i w_{y_i}, i.e. ``F.cross_entropy(..., weight=w)``; a batch that weighs 0 in
#: all has loss 0, see ``dropkit.train.cdbw_batch_loss``). A rule other than the default ``"floored"``
#: is part of the cache key of CDB-W runs only, so adding ``"authors"`` changed no stored key.
CDBW_WEIGHTS: tuple[str, ...] = ("floored", "paper", "authors")
#: The methods whose query model is the short one (so ``recall_query`` changes nothing for them).
SHORT_QUERY_METHODS: tuple[str, ...] = ("el2n", "grand")
#: Fields that only shape the query training: they cannot change a run without one (full data,
#: Random), so such a run's cache key leaves them out (:attr:`RunSpec.unused_fields`).
QUERY_ONLY_FIELDS: tuple[str, ...] = ("query_epochs", "query_seeds", "query_cdbw")
#: Fields that only shape DRoP's quotas: a protocol without DRoP quotas leaves them out of its key.
QUOTA_ONLY_FIELDS: tuple[str, ...] = ("quota_rule", "min_per_class")
#: Fields that only shape CDB-W trainings: a spec without ``cdbw`` or ``query_cdbw`` leaves them out.
CDBW_ONLY_FIELDS: tuple[str, ...] = ("cdbw_weights",)
#: The RunSpec fields that determine a query training (and so its scores): ``RunSpec.query_key``.
QUERY_FIELDS: tuple[str, ...] = (
    "dataset", "dataset_options", "train_subset", "imbalance_factor", "model",
    "pretrained_path", "method", "seed", "query_epochs", "query_seeds", "query_cdbw",
    "cdbw_weights", "du_window", "epochs", "drop_epochs", "drop_factor", "lr", "momentum", "batch_size", "weight_decay",
    "device", "bf16", "channels_last", "schema_version",
)  # fmt: skip
_DEVICE_PATTERN = re.compile(r"cpu|cuda(:[0-9]+)?|mps")  # fullmatch: "cpu\n" is no device


@functools.cache
def known_datasets() -> tuple[str, ...]:
    """Dataset names accepted by :func:`dropkit.data.load_dataset`."""
    from dropkit.data import DATASETS

    return tuple(DATASETS)


@functools.cache
def known_models() -> tuple[str, ...]:
    """Model names accepted by :func:`dropkit.models.build_model`."""
    from dropkit.models import MODELS

    return tuple(MODELS)


# --------------------------------------------------------------------------- validation


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_choice(name: str, value, choices: Sequence[str]) -> None:
    """Raise ``ValueError`` naming ``choices`` unless ``value`` is one of them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not known; choose one of {', '.join(choices)}")


def check_device(device, name: str = "device") -> str:
    """``device`` if it names a torch device dropkit runs on (``cpu``, ``cuda``, ``cuda:N``,
    ``mps``), else ``ValueError`` naming ``name``."""
    if not isinstance(device, str) or not _DEVICE_PATTERN.fullmatch(device):
        raise ValueError(f"{name}={device!r} must be 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer (not a bool) ``>= minimum``, else ``ValueError``."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def _finite_float(name: str, value, *, low: float | None = None, high: float | None = None,
                  low_open: bool = False) -> float:
    if not _is_real(value) or not np.isfinite(float(value)):
        raise ValueError(f"{name}={value!r} must be a finite real number")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name}={value!r} must be {bound}")
    if high is not None and value > high:
        raise ValueError(f"{name}={value!r} must be <= {high}")
    return value


def _frozen_option(name: str, value):
    """An option value as a hashable JSON-like value: scalars, or (nested) tuples of scalars."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen_option(name, item) for item in value)
    if isinstance(value, np.generic):
        value = value.item()
    if value is not None and not isinstance(value, (str, bool, int, float)):
        raise ValueError(
            f"dataset_options[{name!r}]={value!r}: option values must be str/bool/int/float/None "
            "or lists of them"
        )
    if isinstance(value, float) and not np.isfinite(value):
        raise ValueError(f"dataset_options[{name!r}]={value!r} must be finite")
    return value


def _canonical_options(options) -> tuple[tuple[str, Any], ...]:
    """Dataset options as a sorted tuple of ``(name, value)`` pairs (hashable, canonical)."""
    if options is None:
        return ()
    if isinstance(options, Mapping):
        items = list(options.items())
    else:
        try:
            items = [tuple(pair) for pair in options]
        except TypeError:
            raise ValueError(f"dataset_options={options!r} must map option names to values") from None
        if any(len(pair) != 2 for pair in items):
            raise ValueError(f"dataset_options={options!r} must map option names to values")
    pairs = []
    for name, value in items:
        if not isinstance(name, str) or not name:
            raise ValueError(f"dataset_options has a bad option name {name!r}")
        pairs.append((name, _frozen_option(name, value)))
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"dataset_options={options!r} names an option twice")
    return tuple(sorted(pairs))


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class RunSpec:
    """Everything that can change a number of one run (data, pruning, query and final training).

    The fields come in four groups: the data (``dataset`` to ``imbalance_factor``), the pruning
    (``protocol`` to ``seed``), the query model (``query_epochs`` to ``du_window``, only for
    protocols with a method) and the final training (SGD with momentum and a step schedule).

    Attributes:
        dataset: a :data:`dropkit.data.DATASETS` name.
        dataset_options: extra ``load_dataset`` options (e.g. spurious-cue strength), as a
            mapping or pairs; stored as a sorted tuple of ``(name, value)`` pairs.
        train_subset: keep a class-stratified random subset of this many training samples
            (fixed seed 0, independent of ``seed``) before anything else; None = all.
        imbalance_factor: ``I >= 1``; ``I > 1`` makes the training set long-tailed (Cui et al.).
        protocol: one of :data:`PROTOCOLS`; ``"none"`` trains on the full dataset (density 1).
        method: the score method (:data:`SCORE_METHODS`) for the score protocols and for
            ``strategy+drop``; for ``random+drop`` the method whose query model gives the DRoP
            recalls (default ``"el2n"``: a short query training); None for ``random``/``none``.
        density: fraction of the training set kept, in ``(0, 1]``.
        quota_rule: ``"paper"`` (class density ∝ 1 − recall) or ``"counts"`` (authors' code).
        min_per_class: optional floor of samples per class for DRoP quotas (0 = paper).
        recall_query: where ``strategy+drop`` takes its class recalls (:data:`RECALL_QUERIES`):
            ``"method"`` (the strategy's own query model) or ``"short"`` (the paper: DRoP's
            short EL2N query models, those of ``random+drop``). Unused (left out of the key) for
            the other protocols and for EL2N/GraNd, whose query model is the short one already.
        drop_over: ``"classes"`` (the paper: quotas from class sizes and per-class query
            recalls) or ``"groups"`` (group datasets only: quotas from group sizes and the query
            models' per-group validation recalls, selection within each group).
        seed: seed of the selection and the final training; the query runs use seeds from
            :func:`query_seed` (``1000 + seed * query_seeds`` onwards).
        query_epochs: training length of the EL2N/GraNd/DRoP query models in epochs (paper:
            10% of ``epochs``), a positive integer or a fraction of an epoch (e.g. 0.1: the
            first 10% of the first epoch's batches; integral values are stored as ints, so keys
            stay stable); Forgetting, Dynamic Uncertainty and CoreSet use a full ``epochs`` run.
        query_seeds: number of query trainings averaged (paper: 5) for EL2N/GraNd/DRoP recalls.
        query_cdbw: train the query model(s) with CDB-W class weights.
        du_window: Dynamic Uncertainty's window J in epochs (He et al.: 10); with a 10-epoch
            query run J = 10 leaves one window, J = 5 gives 6 windows. Unused for other methods.
        model: a :data:`dropkit.models.MODELS` name.
        pretrained_path: ResNet-50 only: a local state_dict file; None = random initialisation.
        epochs: final-training epochs (before optional epoch scaling).
        drop_epochs: epochs at which the learning rate is multiplied by ``drop_factor``.
        drop_factor: the step schedule's factor (paper: 0.2).
        lr: initial learning rate of SGD.
        momentum: SGD momentum (paper: 0.9).
        batch_size: samples per SGD step.
        weight_decay: L2 penalty of SGD.
        augment: random shifts of at most ``max_shift`` px and, with ``hflip``, horizontal flips
            on the final training (query trainings are never augmented).
        max_shift: the augmentation's largest shift in pixels along each axis (the paper's
            CIFAR setting, Appendix A: 4; 2 suits 28-px Fashion-MNIST). Unused without augment.
        hflip: horizontal flips in the augmentation (the paper's CIFAR setting: on). Off suits
            data whose images all face one way (Fashion-MNIST's shoes). Unused without augment.
        cdbw: CDB-W class weights on the final model.
        cdbw_weights: the CDB-W weight rule (:data:`CDBW_WEIGHTS`), for ``cdbw`` and
            ``query_cdbw``.
        epoch_scaling: train ``round(epochs / density)`` epochs (drop epochs scaled alike), as
            the authors' code does for small subsets; off by default.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        bf16: bfloat16 autocast for the query and final trainings (the GPU path's speed option,
            :class:`dropkit.train.TrainConfig`); it changes numbers slightly, so it is part of
            the run's identity. Off by default.
        channels_last: NHWC memory format, likewise. Off by default.
        schema_version: :data:`SCHEMA_VERSION`; part of the cache key.
    """

    dataset: str
    model: str
    protocol: str
    density: float
    seed: int = 0
    method: str | None = None
    dataset_options: tuple[tuple[str, Any], ...] = ()
    train_subset: int | None = None
    imbalance_factor: float = 1.0
    quota_rule: str = "paper"
    min_per_class: int = 0
    drop_over: str = "classes"
    recall_query: str = "method"
    query_epochs: int | float = 1
    query_seeds: int = 1
    query_cdbw: bool = False
    pretrained_path: str | None = None
    epochs: int = 10
    drop_epochs: tuple[int, ...] = ()
    drop_factor: float = 0.2
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 256
    weight_decay: float = 5e-4
    augment: bool = False
    max_shift: int = 4
    hflip: bool = True
    cdbw: bool = False
    cdbw_weights: str = "floored"
    du_window: int = 10
    epoch_scaling: bool = False
    device: str = "cpu"
    bf16: bool = False
    channels_last: bool = False
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        put = functools.partial(object.__setattr__, self)
        check_choice("dataset", self.dataset, known_datasets())
        check_choice("model", self.model, known_models())
        check_choice("protocol", self.protocol, PROTOCOLS)
        if not _is_real(self.density):
            raise ValueError(f"density={self.density!r} must be a real number in (0, 1]")
        put("density", _finite_float("density", self.density, low=0.0, high=1.0, low_open=True))
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r} must be a non-negative integer")
        put("seed", int(self.seed))
        if self.protocol == "none" and self.density != 1.0:
            raise ValueError(f"density={self.density!r}: protocol 'none' is the full dataset, density 1.0")
        method = self.method
        if self.protocol == "random+drop" and method is None:
            method = DEFAULT_RECALL_METHOD
        if self.protocol in SCORE_PROTOCOLS + RECALL_PROTOCOLS:
            check_choice("method", method, SCORE_METHODS)
        elif method is not None:
            raise ValueError(f"method={method!r} must be None for protocol {self.protocol!r}")
        put("method", method)
        put("dataset_options", _canonical_options(self.dataset_options))
        if self.train_subset is not None:
            put("train_subset", check_int("train_subset", self.train_subset, minimum=2))
        put("imbalance_factor", _finite_float("imbalance_factor", self.imbalance_factor, low=1.0))
        check_choice("quota_rule", self.quota_rule, QUOTA_RULES)
        put("min_per_class", check_int("min_per_class", self.min_per_class, minimum=0))
        check_choice("drop_over", self.drop_over, DROP_UNITS)
        if self.drop_over != "classes" and self.protocol not in RECALL_PROTOCOLS:
            raise ValueError(f"drop_over={self.drop_over!r} applies to the DRoP protocols "
                             f"{RECALL_PROTOCOLS} only, not to protocol {self.protocol!r}")
        check_choice("recall_query", self.recall_query, RECALL_QUERIES)
        check_choice("cdbw_weights", self.cdbw_weights, CDBW_WEIGHTS)
        put("du_window", check_int("du_window", self.du_window, minimum=2))
        put("max_shift", check_int("max_shift", self.max_shift, minimum=0))
        query_epochs = _finite_float("query_epochs", self.query_epochs, low=0.0, low_open=True)
        put("query_epochs", int(query_epochs) if query_epochs.is_integer() else query_epochs)
        put("query_seeds", check_int("query_seeds", self.query_seeds))
        for name in ("query_cdbw", "augment", "hflip", "cdbw", "epoch_scaling", "bf16", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        if self.pretrained_path is not None:
            if not isinstance(self.pretrained_path, (str, os.PathLike)):
                raise ValueError(f"pretrained_path={self.pretrained_path!r} must be a path")
            put("pretrained_path", str(self.pretrained_path))
        put("epochs", check_int("epochs", self.epochs))
        try:
            drops = tuple(self.drop_epochs)
        except TypeError:
            raise ValueError(f"drop_epochs={self.drop_epochs!r} must be a sequence of epochs") from None
        if not all(_is_int(e) and 0 < e < self.epochs for e in drops) or list(drops) != sorted(set(drops)):
            raise ValueError(
                f"drop_epochs={self.drop_epochs!r} must be increasing epochs in (0, epochs={self.epochs})"
            )
        put("drop_epochs", tuple(int(e) for e in drops))
        put("drop_factor", _finite_float("drop_factor", self.drop_factor, low=0.0, high=1.0, low_open=True))
        put("lr", _finite_float("lr", self.lr, low=0.0, low_open=True))
        put("momentum", _finite_float("momentum", self.momentum, low=0.0))
        if self.momentum >= 1.0:
            raise ValueError(f"momentum={self.momentum!r} must be in [0, 1)")
        put("batch_size", check_int("batch_size", self.batch_size, minimum=2))
        put("weight_decay", _finite_float("weight_decay", self.weight_decay, low=0.0))
        check_device(self.device)
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version={self.schema_version!r}: this dropkit writes version {SCHEMA_VERSION}"
            )

    # ------------------------------------------------------------------ identity
    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON types (``dataset_options`` as a dict, tuples as lists)."""
        out = {}
        for spec_field in dataclasses.fields(self):
            value = getattr(self, spec_field.name)
            if spec_field.name == "dataset_options":
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[spec_field.name] = value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RunSpec":
        """Rebuild a spec from :meth:`to_dict` output or a stored result row (extra keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in names}
        if "drop_epochs" in kwargs and kwargs["drop_epochs"] is not None:
            kwargs["drop_epochs"] = tuple(kwargs["drop_epochs"])
        if isinstance(kwargs.get("dataset_options"), Sequence):
            kwargs["dataset_options"] = tuple(tuple(pair) for pair in kwargs["dataset_options"])
        return cls(**kwargs)

    @property
    def unused_fields(self) -> tuple[str, ...]:
        """Fields that cannot change this run's numbers, so its cache key leaves them out: the
        query fields (:data:`QUERY_ONLY_FIELDS`) of a run without a query model (full data,
        Random), the quota fields (:data:`QUOTA_ONLY_FIELDS`) of a protocol without DRoP
        quotas, ``recall_query`` where it changes nothing, the CDB-W fields of a run without
        CDB-W, ``du_window`` of a method other than Dynamic Uncertainty and ``max_shift`` and
        ``hflip`` without augmentation. Specs that differ only in these fields are one run."""
        unused: tuple[str, ...] = ()
        if not self.needs_query:
            unused += QUERY_ONLY_FIELDS
        if self.protocol not in RECALL_PROTOCOLS:
            unused += QUOTA_ONLY_FIELDS
        if self.protocol != "strategy+drop" or self.method in SHORT_QUERY_METHODS:
            unused += ("recall_query",)
        if not (self.cdbw or self.query_cdbw):
            unused += CDBW_ONLY_FIELDS
        if self.method != "dynamic_uncertainty":
            unused += ("du_window",)
        if not self.augment:
            unused += ("max_shift", "hflip")
        return unused

    def _key_fields(self) -> dict[str, Any]:
        """:meth:`to_dict` without :attr:`unused_fields` and without the
        :data:`LATER_FIELD_DEFAULTS` fields left at their default."""
        unused = self.unused_fields
        return {name: value for name, value in self.to_dict().items()
                if name not in unused
                and not (name in LATER_FIELD_DEFAULTS and value == LATER_FIELD_DEFAULTS[name])}

    @property
    def cache_key(self) -> str:
        """sha256 (64 hex chars) of the canonical JSON of every field that can change the run's
        numbers: the run's identity.

        :attr:`unused_fields` are left out (a full-data run does not depend on the query length).
        Fields added after schema version 1 (:data:`LATER_FIELD_DEFAULTS`) count only when they
        differ from their default, so adding one never changes the keys of stored runs.
        """
        return _digest(self._key_fields())

    @property
    def needs_query(self) -> bool:
        """Whether the protocol uses query-model scores or recalls."""
        return self.method is not None

    @property
    def query_key(self) -> str | None:
        """sha256 of the fields that determine the query training and its scores, or None.

        Density, protocol, quota rule and final-training-only options are excluded, so one query
        training serves every density and protocol of the same data, model, method and seed.
        """
        if not self.needs_query:
            return None
        return self._query_digest()

    @property
    def query_run_epochs(self) -> float | None:
        """Epochs of each of this spec's query runs, or None without a query model:
        ``query_epochs`` for the short runs of EL2N and GraNd (:data:`SHORT_QUERY_METHODS`),
        ``epochs`` (the final model's length) for the full-length run of the others."""
        if not self.needs_query:
            return None
        return float(self.query_epochs if self.method in SHORT_QUERY_METHODS else self.epochs)

    @property
    def query_training_key(self) -> str | None:
        """sha256 of what this spec's query *trainings* depend on, or None without a query model:
        the :attr:`query_key` fields but ``method``, ``du_window`` (how Dynamic Uncertainty reads
        the records) and ``query_epochs``, and whether the query runs are short (EL2N, GraNd:
        :data:`SHORT_QUERY_METHODS`) or full-length (the others).

        Specs that share it train their query runs on the same data, model, seeds (``seed`` and
        ``query_seeds``: :func:`query_seed`), optimiser, schedule, CDB-W, device and speed options,
        and differ at most in length: short runs of ``query_epochs`` keep the drop epochs of the one
        schedule ``drop_epochs`` that fall before their end, so a shorter run is a prefix of a longer
        one with the same seed, and the full-length runs of Forgetting, Dynamic Uncertainty, CoreSet
        and SSP (one of ``epochs``, seed :func:`query_seed`) are one training (Forgetting's and
        Dynamic Uncertainty's per-sample records are read from it; they change no parameter).
        ``dropkit.runner.query_groups`` groups them; ``dropkit.scores.compute_query_scores`` trains
        each distinct run once and takes the others from its snapshots
        (``dropkit.train.prefix_mismatch``, checked again there).
        """
        if not self.needs_query:
            return None
        kind = "short" if self.method in SHORT_QUERY_METHODS else "full"
        return _digest({"query_runs": kind,
                        "fields": self._query_digest(leave_out=("method", "du_window", "query_epochs"))})

    def _query_digest(self, leave_out: tuple[str, ...] = ()) -> str:
        """sha256 of the keyed :data:`QUERY_FIELDS` of this spec but ``leave_out``."""
        full = self._key_fields()
        return _digest({name: full[name] for name in QUERY_FIELDS if name in full and name not in leave_out})

    @property
    def final_epochs(self) -> int:
        """Final-training epochs after optional epoch scaling."""
        if not self.epoch_scaling:
            return self.epochs
        return max(1, round(self.epochs / self.density))

    @property
    def final_drop_epochs(self) -> tuple[int, ...]:
        """Drop epochs after optional epoch scaling."""
        if not self.epoch_scaling:
            return self.drop_epochs
        scale = self.final_epochs / self.epochs
        return tuple(sorted({min(self.final_epochs - 1, max(1, round(e * scale))) for e in self.drop_epochs}))

    def label(self) -> str:
        """A short human-readable name, e.g. ``'el2n strategy+drop d=0.5 seed=0'``."""
        parts = [self.method or "", self.protocol, f"d={self.density:g}", f"seed={self.seed}"]
        return " ".join(p for p in parts if p)


def _digest(values: Mapping[str, Any]) -> str:
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def full_dataset_spec(spec: RunSpec) -> RunSpec:
    """The full-dataset baseline of ``spec``: same data, model and training; protocol "none"."""
    return dataclasses.replace(spec, protocol="none", density=1.0, method=None)


def query_seed(spec: RunSpec) -> int:
    """First seed of the spec's query runs: ``1000 + seed * query_seeds``.

    The short query runs use ``query_seed, query_seed + 1, ...`` (``query_seeds`` of them) and the
    full-length query run uses ``query_seed``; so the query runs of different replicates never
    coincide, nor with a final model's seed.
    """
    return QUERY_SEED_OFFSET + spec.seed * spec.query_seeds

