"""A run is a frozen :class:`RunSpec` turned into one result row; sweeps run many of them.

Data flow of :func:`run`::

    spec -> data (subset, long tail) -> query model(s) and scores (cached by ``spec.query_key``)
         -> class quotas + selection (``dropkit.protocols.keep_indices``) -> final training
         -> row (spec fields, per-class recalls, robustness summary, class counts, provenance)

The row is written to a :class:`dropkit.store.ResultStore` under ``spec.cache_key``, a sha256 of
every field of the spec (including :data:`SCHEMA_VERSION`), so two specs that differ in anything
never share a result, and the same spec always finds its stored row.

:func:`sweep` runs the specs whose rows are missing, skipping stored ones, on a local process pool
(``executor="local"``) or on Slurm through ``submitit`` (``executor="slurm"``). Each run writes its
own row atomically as soon as it finishes, so a sweep killed at any moment (even with SIGKILL)
resumes where it stopped, without lost, duplicated or corrupt rows.

This module does not import torch at import time: worker processes set their thread counts first.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import multiprocessing
import numbers
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dropkit import __version__
from dropkit.store import ResultStore

__all__ = [
    "SCHEMA_VERSION",
    "PROTOCOLS",
    "SCORE_METHODS",
    "QUOTA_RULES",
    "RunSpec",
    "full_dataset_spec",
    "run",
    "query_outputs",
    "SlurmOptions",
    "SweepReport",
    "sweep",
    "results_frame",
    "run_experiment",
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
                                         "channels_last": False}
#: The RunSpec fields that determine a query training (and so its scores): ``RunSpec.query_key``.
QUERY_FIELDS: tuple[str, ...] = (
    "dataset", "dataset_options", "train_subset", "imbalance_factor", "model",
    "pretrained_path", "method", "seed", "query_epochs", "query_seeds", "query_cdbw",
    "epochs", "drop_epochs", "drop_factor", "lr", "momentum", "batch_size", "weight_decay",
    "device", "bf16", "channels_last", "schema_version",
)  # fmt: skip
_DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:[0-9]+)?|mps)$")


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


# --------------------------------------------------------------------------- the spec


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _choice(name: str, value, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not known; choose one of {', '.join(choices)}")


def _positive_int(name: str, value, minimum: int = 1) -> int:
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


@dataclass(frozen=True)
class RunSpec:
    """Everything that can change a number of one run (data, pruning, query and final training).

    Data:
        dataset: a :data:`dropkit.data.DATASETS` name.
        dataset_options: extra ``load_dataset`` options (e.g. spurious-cue strength), as a mapping
            or pairs; stored as a sorted tuple of ``(name, value)`` pairs.
        train_subset: keep a class-stratified random subset of this many training samples (fixed
            seed 0, independent of ``seed``) before anything else; None = all (smoke profile).
        imbalance_factor: ``I >= 1``; ``I > 1`` makes the training set long-tailed (Cui et al.).
    Pruning:
        protocol: one of :data:`PROTOCOLS`; ``"none"`` trains on the full dataset (density 1).
        method: the score method (:data:`SCORE_METHODS`) for the score protocols and for
            ``strategy+drop``; for ``random+drop`` the method whose query model gives the DRoP
            recalls (default ``"el2n"``: a short query training); None for ``random``/``none``.
        density: fraction of the training set kept, in ``(0, 1]``.
        quota_rule: ``"paper"`` (class density ∝ 1 − recall) or ``"counts"`` (authors' code).
        min_per_class: optional floor of samples per class for DRoP quotas (0 = paper).
        drop_over: ``"classes"`` (the paper: quotas from class sizes and per-class query recalls)
            or ``"groups"`` (group datasets only: quotas from group sizes and the query models'
            per-group validation recalls, selection within each group).
        seed: seed of the selection and the final training; the query runs use seeds from
            :func:`query_seed` (``1000 + seed * query_seeds`` onwards).
    Query model (only for protocols with a method):
        query_epochs: training length of the EL2N/GraNd/DRoP query models (paper: 10% of
            ``epochs``); Forgetting, Dynamic Uncertainty and CoreSet use a full ``epochs`` run.
        query_seeds: number of query trainings averaged (paper: 5) for EL2N/GraNd/DRoP recalls.
        query_cdbw: train the query model(s) with CDB-W class weights.
    Final training (SGD, momentum, step schedule):
        model, pretrained_path (ResNet-50 only; a local state_dict file), epochs, drop_epochs,
        drop_factor, lr, momentum, batch_size, weight_decay, augment (shifts ≤ 4 px + flips),
        cdbw (CDB-W class weights on the final model),
        epoch_scaling: train ``round(epochs / density)`` epochs (drop epochs scaled alike), as
            the authors' code does for small subsets; off by default.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        bf16, channels_last: bfloat16 autocast and NHWC memory format for the query and final
            trainings (the GPU path's speed options, :class:`dropkit.train.TrainConfig`); they
            change numbers slightly, so they are part of the run's identity. Off by default.
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
    query_epochs: int = 1
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
    cdbw: bool = False
    epoch_scaling: bool = False
    device: str = "cpu"
    bf16: bool = False
    channels_last: bool = False
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        put = functools.partial(object.__setattr__, self)
        _choice("dataset", self.dataset, known_datasets())
        _choice("model", self.model, known_models())
        _choice("protocol", self.protocol, PROTOCOLS)
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
            _choice("method", method, SCORE_METHODS)
        elif method is not None:
            raise ValueError(f"method={method!r} must be None for protocol {self.protocol!r}")
        put("method", method)
        put("dataset_options", _canonical_options(self.dataset_options))
        if self.train_subset is not None:
            put("train_subset", _positive_int("train_subset", self.train_subset, minimum=2))
        put("imbalance_factor", _finite_float("imbalance_factor", self.imbalance_factor, low=1.0))
        _choice("quota_rule", self.quota_rule, QUOTA_RULES)
        put("min_per_class", _positive_int("min_per_class", self.min_per_class, minimum=0))
        _choice("drop_over", self.drop_over, DROP_UNITS)
        if self.drop_over != "classes" and self.protocol not in RECALL_PROTOCOLS:
            raise ValueError(f"drop_over={self.drop_over!r} applies to the DRoP protocols "
                             f"{RECALL_PROTOCOLS} only, not to protocol {self.protocol!r}")
        put("query_epochs", _positive_int("query_epochs", self.query_epochs))
        put("query_seeds", _positive_int("query_seeds", self.query_seeds))
        for name in ("query_cdbw", "augment", "cdbw", "epoch_scaling", "bf16", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        if self.pretrained_path is not None:
            if not isinstance(self.pretrained_path, (str, os.PathLike)):
                raise ValueError(f"pretrained_path={self.pretrained_path!r} must be a path")
            put("pretrained_path", str(self.pretrained_path))
        put("epochs", _positive_int("epochs", self.epochs))
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
        put("batch_size", _positive_int("batch_size", self.batch_size, minimum=2))
        put("weight_decay", _finite_float("weight_decay", self.weight_decay, low=0.0))
        if not isinstance(self.device, str) or not _DEVICE_PATTERN.match(self.device):
            raise ValueError(f"device={self.device!r} must be 'cpu', 'cuda', 'cuda:N' or 'mps'")
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

    def _key_fields(self) -> dict[str, Any]:
        """:meth:`to_dict` without the :data:`LATER_FIELD_DEFAULTS` fields left at their default."""
        return {name: value for name, value in self.to_dict().items()
                if not (name in LATER_FIELD_DEFAULTS and value == LATER_FIELD_DEFAULTS[name])}

    @property
    def cache_key(self) -> str:
        """sha256 (64 hex chars) of the canonical JSON of every field: the run's identity.

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
        full = self._key_fields()
        return _digest({name: full[name] for name in QUERY_FIELDS if name in full})

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


# --------------------------------------------------------------------------- one run


def _load_data(spec: RunSpec, data_root: str | os.PathLike | None):
    """The spec's dataset: loaded, optionally subset (stratified, seed 0) and made long-tailed."""
    from dropkit.data import load_dataset, long_tailed_indices

    data = load_dataset(spec.dataset, root=None if data_root is None else str(data_root),
                        **dict(spec.dataset_options))
    if spec.train_subset is not None and spec.train_subset < data.num_train:
        from dropkit.quotas import largest_remainder
        from dropkit.select import select

        labels = data.y_train.numpy()
        sizes = np.bincount(labels, minlength=data.num_classes)
        quotas = largest_remainder(sizes * (spec.train_subset / len(labels)), spec.train_subset)
        keep = select(labels, spec.train_subset / len(labels), quotas=quotas, seed=0)
        data = data.subset_train(keep)
    if spec.imbalance_factor > 1.0:
        data = data.subset_train(
            long_tailed_indices(data.y_train.numpy(), spec.imbalance_factor, seed=0)
        )
    return data


def _train_config(spec: RunSpec, *, epochs: int, drop_epochs: tuple[int, ...], seed: int,
                  augment: bool, cdbw: bool, **extra):
    from dropkit.train import TrainConfig

    return TrainConfig(
        epochs=epochs, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
        batch_size=spec.batch_size, drop_epochs=drop_epochs, drop_factor=spec.drop_factor,
        augment=augment, cdbw=cdbw, seed=seed, device=spec.device, bf16=spec.bf16,
        channels_last=spec.channels_last, cuda_graphs=_on_cuda(spec), **extra,
    )


def _on_cuda(spec: RunSpec) -> bool:
    """CUDA runs replay their training steps as CUDA graphs (``TrainConfig.cuda_graphs``): the same
    arithmetic with less launch overhead, so it is not part of the spec or its keys."""
    return spec.device.startswith("cuda")


def _model_for(spec: RunSpec, data, seed: int):
    """The model name, or a freshly built (seeded) pretrained module when a path is given."""
    if spec.pretrained_path is None:
        return spec.model
    import torch

    from dropkit.models import build_model

    torch.manual_seed(seed)
    return build_model(spec.model, num_classes=data.num_classes, input_shape=data.input_shape,
                       pretrained_path=spec.pretrained_path)


def query_seed(spec: RunSpec) -> int:
    """First seed of the spec's query runs: ``1000 + seed * query_seeds``.

    The short query runs use ``query_seed, query_seed + 1, ...`` (``query_seeds`` of them) and the
    full-length query run uses ``query_seed``; so the query runs of different replicates never
    coincide, nor with a final model's seed.
    """
    return QUERY_SEED_OFFSET + spec.seed * spec.query_seeds


def _query_config(spec: RunSpec):
    """The ``dropkit.scores.QueryConfig`` of the spec's query training.

    Short runs (EL2N, GraNd, DRoP recalls): ``query_epochs`` each, ``query_seeds`` of them; full
    runs (Forgetting, Dynamic Uncertainty, CoreSet, SSP): ``epochs`` with the final model's
    schedule. Same optimiser as the final model, never augmented (Appendix A), CDB-W if
    ``query_cdbw``.
    """
    from dropkit.scores import QueryConfig

    return QueryConfig(
        epochs=spec.query_epochs, full_epochs=spec.epochs, num_seeds=spec.query_seeds,
        seed=query_seed(spec), lr=spec.lr, momentum=spec.momentum,
        weight_decay=spec.weight_decay, batch_size=spec.batch_size,
        drop_epochs=spec.drop_epochs, drop_factor=spec.drop_factor, augment=False,
        cdbw=spec.query_cdbw, device=spec.device, bf16=spec.bf16,
        channels_last=spec.channels_last, cuda_graphs=_on_cuda(spec),
    )


def query_outputs(spec: RunSpec, data, store: ResultStore | None = None, *,
                  progress: bool = False) -> dict[str, np.ndarray]:
    """Scores (float64 ``[N_train]``, higher = keep), query validation recalls (``[K]``) and, for
    group data, the query models' per-group validation recalls ``val_group_recalls`` (``[G]``,
    the mean over the query runs, like ``val_recalls``).

    Cached in ``store`` under ``spec.query_key``: the first spec that needs a query training
    computes it, every other density/protocol of the same query training reads it.
    """
    if not spec.needs_query:
        raise ValueError(f"protocol {spec.protocol!r} uses no query model")
    key = spec.query_key
    needed = {"scores", "val_recalls"}
    if data.num_groups:
        needed.add("val_group_recalls")
    if store is not None:
        cached = store.load_scores(key)
        if cached is not None and needed <= set(cached):
            if cached["scores"].shape == (data.num_train,):
                return cached
    from dropkit.scores import compute_scores

    result = compute_scores(spec.method, data, model=_model_for(spec, data, query_seed(spec)),
                            query=_query_config(spec), progress=progress)
    outputs = {
        "scores": np.asarray(result.scores, dtype=np.float64),
        "val_recalls": np.asarray(result.val_recalls, dtype=np.float64),
    }
    if data.num_groups:
        from dropkit.metrics import group_recalls

        y_val, groups_val = data.y_val.numpy(), data.groups_val.numpy()
        outputs["val_group_recalls"] = np.mean(
            [group_recalls(y_val, r.val_pred, groups_val, data.num_groups) for r in result.runs],
            axis=0)
    if store is not None:
        store.save_scores(key, outputs)
    return outputs


def _keep_indices(spec: RunSpec, labels: np.ndarray, train_groups: np.ndarray | None,
                  query: dict | None) -> np.ndarray:
    if spec.protocol == "none":
        return np.arange(len(labels), dtype=np.int64)
    from dropkit.protocols import keep_indices

    groups, recalls = None, None
    if spec.protocol in RECALL_PROTOCOLS:
        recalls = query["val_recalls"]
        if spec.drop_over == "groups":
            groups, recalls = train_groups, query["val_group_recalls"]
    return np.asarray(keep_indices(
        spec.protocol, labels, spec.density,
        scores=None if query is None or spec.protocol not in SCORE_PROTOCOLS else query["scores"],
        recalls=recalls, groups=groups,
        rule=spec.quota_rule, min_per_class=spec.min_per_class, seed=spec.seed,
    ), dtype=np.int64)


@functools.cache
def git_revision() -> str | None:
    """``git describe --always --dirty`` of the dropkit source tree, or None outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine() or device


def _summary(prefix: str, summary: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}_{name}": float(value) for name, value in summary.items()}


def run(spec: RunSpec, store: ResultStore | None = None, *,
        data_root: str | os.PathLike | None = None, progress: bool = False) -> dict[str, Any]:
    """Run one spec end to end and return its result row (also written to ``store`` if given).

    Returns a flat dict: every :class:`RunSpec` field, ``cache_key``, ``query_key``, and
    ``num_classes``, ``class_names``, ``num_train`` (training-set size N after subset/long tail),
    ``class_sizes`` ([K] N_k), ``class_counts`` ([K] kept per class), ``num_kept``,
    ``query_val_recalls`` ([K] or None), ``test_recalls``/``val_recalls`` ([K] final model,
    final epoch), ``test_accuracy``/``test_worst_class``/``test_gap``/``test_std`` (and ``val_``
    versions, see :func:`dropkit.metrics.robustness_summary`), for group data
    ``test_group_recalls``, ``test_worst_group``…, ``group_counts`` ([G] kept per group) and
    ``query_val_group_recalls`` ([G], runs with a query model), ``final_epochs``, ``seconds`` (wall time of
    the whole run, s), ``train_seconds``, ``device_name``, ``dropkit_version``, ``torch_version``,
    ``numpy_version``, ``python_version``, ``git_revision``, ``finished_at`` (UTC ISO time).
    """
    if not isinstance(spec, RunSpec):
        raise ValueError(f"spec must be a RunSpec, got {type(spec).__name__}")
    if store is not None:
        store.check_writable()
    started = time.perf_counter()
    import torch

    from dropkit.metrics import group_recalls, group_robustness_summary, robustness_summary

    data = _load_data(spec, data_root)
    if spec.drop_over == "groups" and not data.num_groups:  # before any training
        raise ValueError(f"drop_over='groups': dataset {spec.dataset!r} has no groups")
    labels = data.y_train.numpy().astype(np.int64)
    train_groups = data.groups_train.numpy() if data.num_groups else None
    num_classes = int(data.num_classes)
    query = query_outputs(spec, data, store, progress=progress) if spec.needs_query else None
    keep = _keep_indices(spec, labels, train_groups, query)

    config = _train_config(spec, epochs=spec.final_epochs, drop_epochs=spec.final_drop_epochs,
                           seed=spec.seed, augment=spec.augment, cdbw=spec.cdbw,
                           eval_every_epoch=False)
    from dropkit.train import train

    result = train(data, _model_for(spec, data, spec.seed), config, train_indices=keep,
                   progress=progress)

    y_test = data.y_test.numpy()
    y_val = data.y_val.numpy()
    row: dict[str, Any] = spec.to_dict()
    row.update(
        cache_key=spec.cache_key,
        query_key=spec.query_key,
        num_classes=num_classes,
        class_names=list(data.class_names),
        num_train=int(len(labels)),
        class_sizes=np.bincount(labels, minlength=num_classes).tolist(),
        class_counts=np.bincount(labels[keep], minlength=num_classes).tolist(),
        num_kept=int(len(keep)),
        query_val_recalls=None if query is None else query["val_recalls"].tolist(),
        test_recalls=np.asarray(result.test_recalls, dtype=np.float64).tolist(),
        val_recalls=np.asarray(result.val_recalls, dtype=np.float64).tolist(),
        **_summary("test", robustness_summary(y_test, result.test_pred, num_classes)),
        **_summary("val", robustness_summary(y_val, result.val_pred, num_classes)),
        final_epochs=spec.final_epochs,
    )
    if data.groups_test is not None and data.num_groups:
        row["group_counts"] = np.bincount(train_groups[keep], minlength=data.num_groups).tolist()
        if query is not None and "val_group_recalls" in query:
            row["query_val_group_recalls"] = np.asarray(query["val_group_recalls"]).tolist()
        groups = data.groups_test.numpy()
        row["test_group_recalls"] = group_recalls(
            y_test, result.test_pred, groups, data.num_groups
        ).tolist()
        group_summary = group_robustness_summary(y_test, result.test_pred, groups, data.num_groups)
        row.update({f"test_{k}" if k == "worst_group" else f"test_group_{k}": float(v)
                    for k, v in group_summary.items() if k != "accuracy"})
    row.update(
        seconds=time.perf_counter() - started,
        train_seconds=float(result.seconds),
        device_name=_device_name(spec.device),
        dropkit_version=__version__,
        torch_version=torch.__version__,
        numpy_version=np.__version__,
        python_version=platform.python_version(),
        git_revision=git_revision(),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    if store is not None:
        store.write(row)
    return row


# --------------------------------------------------------------------------- sweeps


@dataclass(frozen=True)
class SlurmOptions:
    """Options of ``executor="slurm"`` (passed to ``submitit.AutoExecutor``).

    cluster: None = detect (Slurm when ``sbatch`` exists); ``"local"`` or ``"debug"`` run the
        same job array on this machine (submitit's test executors).
    partition: Slurm partition (None = cluster default).
    time_min: time limit per job in minutes; gpus: GPUs per job; cpus: CPUs per job.
    array_parallelism: how many array tasks may run at once.
    folder: submitit's log folder (default ``<store>/submitit``).
    """

    cluster: str | None = None
    partition: str | None = None
    time_min: int = 60
    gpus: int = 0
    cpus: int = 1
    array_parallelism: int = 64
    folder: str | None = None

    def __post_init__(self) -> None:
        if self.cluster is not None:
            _choice("cluster", self.cluster, ("slurm", "local", "debug"))
        if self.partition is not None and (not isinstance(self.partition, str) or not self.partition):
            raise ValueError(f"partition={self.partition!r} must be a non-empty string")
        _positive_int("time_min", self.time_min)
        _positive_int("gpus", self.gpus, minimum=0)
        _positive_int("cpus", self.cpus)
        _positive_int("array_parallelism", self.array_parallelism)


@dataclass
class SweepReport:
    """What a sweep did: ``total`` distinct specs, ``skipped`` (already stored), ``ran``,
    ``failed`` ([(label, one-line error)]) and ``seconds`` of wall time."""

    total: int
    skipped: int
    ran: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


class SweepError(RuntimeError):
    """A sweep stopped on a failed run; finished runs are stored, re-running resumes."""

    def __init__(self, message: str, report: SweepReport):
        super().__init__(message)
        self.report = report


def _set_threads(threads: int) -> None:
    """Limit this process to ``threads`` intra-op threads.

    Sets ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` (read by torch when it is first imported) and,
    if torch is already imported, ``torch.set_num_threads``.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _exit_when_orphaned(parent: int, interval: float = 1.0) -> None:
    """Watchdog loop of a pool worker: exit as soon as the sweep process that started it is gone.

    Without it, killing the sweep (e.g. SIGKILL) would leave its workers blocked forever on a
    queue nobody feeds. A run in flight is abandoned; its row was never written, so a resumed
    sweep runs it again.
    """
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(interval)


def _worker_init(threads: int) -> None:
    import threading

    _set_threads(threads)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True,
                     name="dropkit-orphan-watchdog").start()


def _run_task(run_function: Callable, spec: RunSpec, root: str, profile: str,
              data_root: str | None, threads: int | None = None) -> str:
    """Executed in a worker (process, Slurm task): run one spec into the store, return its key."""
    if threads is not None:
        _set_threads(threads)
    store = ResultStore(root, profile)
    if spec.cache_key in store:  # another worker finished it meanwhile
        return spec.cache_key
    run_function(spec, store, data_root=data_root)
    return spec.cache_key


def _query_task(spec: RunSpec, root: str, profile: str, data_root: str | None,
                threads: int | None = None) -> str:
    """Executed in a worker: compute (or find) the query outputs of ``spec`` in the store."""
    if threads is not None:
        _set_threads(threads)
    store = ResultStore(root, profile)
    if store.load_scores(spec.query_key) is None:
        query_outputs(spec, _load_data(spec, data_root), store)
    return spec.query_key


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _job_error_line(error: BaseException) -> str:
    """One line for a failed submitit job: the original ``SomeError: message`` of its traceback."""
    lines = [line.strip() for line in str(error).splitlines()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b(: |$)", line):
            return line
    return _one_line(error)


def _check_specs(specs: Iterable[RunSpec]) -> list[RunSpec]:
    unique: dict[str, RunSpec] = {}
    for index, spec in enumerate(specs):
        if not isinstance(spec, RunSpec):
            raise ValueError(f"specs[{index}] is a {type(spec).__name__}, not a RunSpec")
        unique.setdefault(spec.cache_key, spec)
    return list(unique.values())


def sweep(
    specs: Iterable[RunSpec],
    store: ResultStore,
    *,
    executor: str = "local",
    workers: int = 1,
    threads: int = 1,
    data_root: str | os.PathLike | None = None,
    slurm: SlurmOptions | None = None,
    progress: bool = True,
    run_function: Callable[..., Any] | None = None,
) -> SweepReport:
    """Run every spec that has no row in ``store``; skip the others.

    Args:
        specs: the runs (duplicates are run once).
        store: where rows (and cached query scores) go; checked writable before anything runs.
        executor: ``"local"`` (process pool on this machine) or ``"slurm"`` (submitit job arrays).
        workers: local processes; ``workers * threads`` must not exceed ``os.cpu_count()``.
            ``workers=1`` runs in this process (no pool; sets this process's torch threads).
        threads: torch threads per worker (and per Slurm task when ``slurm.cpus`` is 1).
        data_root: passed to ``dropkit.data.load_dataset`` (not part of the cache key).
        slurm: :class:`SlurmOptions` for ``executor="slurm"``.
        progress: show a tqdm progress bar.
        run_function: replaces :func:`run` (same signature ``f(spec, store, data_root=...)``);
            must be importable by name for worker processes. With the default, query trainings
            shared by several specs are computed first, once each.

    Returns:
        A :class:`SweepReport`.

    Raises:
        SweepError: when a run fails; the sweep stops scheduling new runs, finished rows stay
            stored, and re-running the sweep resumes from there.
    """
    if executor not in ("local", "slurm"):
        raise ValueError(f"executor={executor!r} is not known; choose 'local' or 'slurm'")
    if not isinstance(store, ResultStore):
        raise ValueError(f"store must be a ResultStore, got {type(store).__name__}")
    workers = _positive_int("workers", workers)
    threads = _positive_int("threads", threads)
    cpus = os.cpu_count() or 1
    if executor == "local" and workers * threads > cpus:
        raise ValueError(
            f"workers={workers} x threads={threads} oversubscribes the {cpus} CPU cores; "
            f"use workers * threads <= {cpus}"
        )
    if slurm is not None and not isinstance(slurm, SlurmOptions):
        raise ValueError(f"slurm must be a SlurmOptions, got {type(slurm).__name__}")
    if data_root is not None and not Path(data_root).is_dir():
        raise FileNotFoundError(f"data_root={str(data_root)!r} is not a directory")
    unique = _check_specs(specs)
    store.check_writable()
    started = time.perf_counter()
    done = store.keys()
    missing = [spec for spec in unique if spec.cache_key not in done]
    report = SweepReport(total=len(unique), skipped=len(unique) - len(missing))
    if not missing:
        return report
    function = run if run_function is None else run_function
    root, profile = str(store.root), store.profile
    data = None if data_root is None else str(data_root)

    tasks: list[tuple[list[tuple], str]] = []  # phases of (callable, args, label)
    if run_function is None:
        by_query: dict[str, RunSpec] = {}
        for spec in missing:
            if spec.needs_query and spec.query_key not in by_query:
                if store.load_scores(spec.query_key) is None:
                    by_query[spec.query_key] = spec
        if by_query:
            tasks.append(([(_query_task, (s, root, profile, data),
                            f"query {s.method} seed={s.seed}") for s in by_query.values()],
                          "query models"))
    tasks.append(([(_run_task, (function, s, root, profile, data), s.label()) for s in missing],
                  "runs"))

    try:
        for phase, description in tasks:
            if executor == "local":
                _run_local(phase, report, workers=workers, threads=threads, progress=progress,
                           description=description)
            else:
                _run_submitit(phase, report, slurm or SlurmOptions(), store=store,
                              threads=threads, progress=progress, description=description)
            if report.failed:
                break
    finally:
        report.seconds = time.perf_counter() - started
    stored = store.keys()
    report.ran = sum(1 for spec in missing if spec.cache_key in stored)
    if report.failed:
        label, message = report.failed[0]
        raise SweepError(
            f"{len(report.failed)} task(s) failed, first: {label}: {message} "
            f"({report.ran} of {len(missing)} missing runs finished and are stored; "
            "re-run the sweep to resume)",
            report,
        )
    return report


def _progress_bar(total: int, description: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, disable=not enabled, unit="run", dynamic_ncols=True)


def _run_local(phase: list[tuple], report: SweepReport, *, workers: int, threads: int,
               progress: bool, description: str) -> None:
    with _progress_bar(len(phase), description, progress) as bar:
        if workers == 1:
            _set_threads(threads)
            for task, args, label in phase:
                try:
                    task(*args)
                except Exception as err:
                    report.failed.append((label, _one_line(err)))
                    return
                bar.update(1)
            return
        context = multiprocessing.get_context("spawn")
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_worker_init, initargs=(threads,)
        )
        try:
            futures = {pool.submit(task, *args): label for task, args, label in phase}
            for future in concurrent.futures.as_completed(futures):
                error = future.exception()
                if error is not None:
                    report.failed.append((futures[future], _one_line(error)))
                    for other in futures:
                        other.cancel()
                    break
                bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _run_submitit(phase: list[tuple], report: SweepReport, options: SlurmOptions, *,
                  store: ResultStore, threads: int, progress: bool, description: str) -> None:
    import submitit

    folder = options.folder or str(store.path / "submitit")
    executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    parameters: dict[str, Any] = {
        "timeout_min": options.time_min,
        "gpus_per_node": options.gpus,
        "cpus_per_task": max(options.cpus, threads),
        "slurm_array_parallelism": options.array_parallelism,
    }
    if options.partition is not None:
        parameters["slurm_partition"] = options.partition
    executor.update_parameters(**parameters)
    by_task: dict[Callable, list[tuple]] = {}
    for task, args, label in phase:
        by_task.setdefault(task, []).append((args, label))
    jobs = []
    for task, entries in by_task.items():
        columns = list(zip(*[args + (threads,) for args, _ in entries]))
        submitted = executor.map_array(task, *columns)
        jobs.extend(zip(submitted, [label for _, label in entries]))
    with _progress_bar(len(jobs), description, progress) as bar:
        pending = list(jobs)
        while pending:
            still = []
            for job, label in pending:
                if options.cluster == "debug" or job.done():
                    error = job.exception()  # runs a debug job in-process, never opens pdb
                    if error is not None:
                        report.failed.append((label, _job_error_line(error)))
                    bar.update(1)
                else:
                    still.append((job, label))
            pending = still
            if pending:
                time.sleep(1.0)


# --------------------------------------------------------------------------- notebooks


def results_frame(specs: Iterable[RunSpec], store: ResultStore):
    """The stored rows of ``specs`` as a DataFrame (one row per stored spec, specs' order).

    Specs without a stored row are left out; compare ``len`` with the number of specs to check.
    """
    import pandas as pd

    order = {spec.cache_key: index for index, spec in enumerate(_check_specs(specs))}
    frame = store.frame()
    if frame.empty:
        return pd.DataFrame()
    frame = frame[frame["cache_key"].isin(order)]
    positions = frame["cache_key"].map(order)
    return frame.iloc[np.argsort(positions.to_numpy(), kind="stable")].reset_index(drop=True)


def run_experiment(profile, experiment: str, *, results_dir: str | os.PathLike = "results",
                   executor: str = "local", workers: int | None = None,
                   threads: int | None = None, data_root: str | os.PathLike | None = None,
                   slurm: SlurmOptions | None = None, progress: bool = True, **selection):
    """Run (or load) one book chapter's experiment set and return its rows.

    ``profile`` is a name or :class:`dropkit.profiles.Profile`; ``selection`` is passed to
    :func:`dropkit.profiles.experiment_specs` (``dataset``, ``model``, ``densities``, ``seeds``,
    ``device`` and RunSpec overrides). Runs already in ``results_dir/<profile>`` are not
    repeated. ``workers``/``threads`` default to the profile's, limited to the CPU count.
    (Runs are written to the store as they finish; ``results_dir`` is created if needed.)
    Returns :func:`results_frame` of the experiment's specs (every spec has a row).
    """
    from dropkit.profiles import experiment_specs, get_profile

    profile = get_profile(profile) if isinstance(profile, str) else profile
    specs = experiment_specs(profile, experiment, **selection)
    store = ResultStore(results_dir, profile.name)
    threads = min(profile.threads, os.cpu_count() or 1) if threads is None else threads
    if workers is None:
        workers = max(1, min(profile.workers, (os.cpu_count() or 1) // max(1, threads)))
    sweep(specs, store, executor=executor, workers=workers, threads=threads,
          data_root=data_root, slurm=slurm, progress=progress)
    return results_frame(specs, store)
