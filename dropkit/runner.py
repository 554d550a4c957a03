"""One run: a :class:`dropkit.spec.RunSpec` turned into one result row.

Data flow of :func:`run`::

    spec -> data (subset, long tail) -> query model(s) and scores (cached by ``spec.query_key``;
            query runs shared by methods and lengths trained once, :func:`query_groups`;
            what a sweep still trains and which run waits for what, :func:`query_plan`)
         -> class quotas + selection (``dropkit.protocols.keep_indices``) -> final training
         -> row (spec fields, per-class recalls, robustness summary, class counts, provenance)

The row is written to a :class:`dropkit.store.ResultStore` under ``spec.cache_key``. Sweeps of
many runs are :mod:`dropkit.sweep`'s.

This module does not import torch at import time: worker processes set their thread counts first.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import subprocess
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dropkit import __version__
from dropkit.kernels import kernel_provenance
from dropkit.spec import RECALL_PROTOCOLS, SCORE_PROTOCOLS, RunSpec, query_seed
from dropkit.store import ResultStore

__all__ = ["QueryPlan", "load_data", "query_group_outputs", "query_groups", "query_outputs", "query_plan",
           "query_specs", "recall_spec", "run", "stored_queries"]


def load_data(spec: RunSpec, data_root: str | os.PathLike | None):
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
    """The ``dropkit.train.TrainConfig`` of one of the spec's trainings (query or final).

    CUDA runs replay their training steps as CUDA graphs (:func:`dropkit.train.default_cuda_graphs`):
    the same arithmetic with less launch overhead, so it is not part of the spec or its keys.
    """
    from dropkit.train import TrainConfig, default_cuda_graphs

    return TrainConfig(
        epochs=epochs, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
        batch_size=spec.batch_size, drop_epochs=drop_epochs, drop_factor=spec.drop_factor,
        augment=augment, cdbw=cdbw, seed=seed, device=spec.device, bf16=spec.bf16,
        channels_last=spec.channels_last, cuda_graphs=default_cuda_graphs(spec.device),
        cdbw_weights=spec.cdbw_weights, **extra,
    )


def _model_for(spec: RunSpec, data, seed: int):
    """The model name, or a freshly built (seeded) pretrained module when a path is given."""
    if spec.pretrained_path is None:
        return spec.model
    import torch

    from dropkit.models import build_model

    torch.manual_seed(seed)
    return build_model(spec.model, num_classes=data.num_classes, input_shape=data.input_shape,
                       pretrained_path=spec.pretrained_path)


def _query_config(spec: RunSpec):
    """The ``dropkit.scores.QueryConfig`` of the spec's query training.

    Short runs (EL2N, GraNd, DRoP recalls): ``query_epochs`` each, ``query_seeds`` of them (a
    fractional length ``q`` trains ``ceil(q)`` epochs, the last one cut to its first
    ``q - ceil(q) + 1`` of the batches); full runs (Forgetting, Dynamic Uncertainty, CoreSet, SSP):
    ``epochs`` with the final model's schedule. Same optimiser as the final model, never augmented
    (Appendix A), CDB-W if ``query_cdbw``; Dynamic Uncertainty's window ``du_window``; seeds from
    :func:`dropkit.spec.query_seed`.
    """
    import math

    from dropkit.scores import QueryConfig

    epochs = math.ceil(spec.query_epochs)
    training = _train_config(spec, epochs=epochs, drop_epochs=spec.drop_epochs,
                             seed=query_seed(spec), augment=False, cdbw=spec.query_cdbw,
                             last_epoch_fraction=float(spec.query_epochs - epochs + 1))
    return QueryConfig(training, full_epochs=spec.epochs, num_seeds=spec.query_seeds,
                       window=spec.du_window)


def recall_spec(spec: RunSpec) -> RunSpec:
    """The spec whose query models give ``spec``'s DRoP class recalls: ``spec`` itself, except
    for ``strategy+drop`` with ``recall_query="short"``, which reads those of Random+DRoP (the
    short EL2N query models, Appendix F) so that both DRoP protocols share their class quotas."""
    from dropkit.spec import DEFAULT_RECALL_METHOD, SHORT_QUERY_METHODS

    if spec.protocol != "strategy+drop" or spec.recall_query != "short" or spec.method in SHORT_QUERY_METHODS:
        return spec
    return dataclasses.replace(spec, protocol="random+drop", method=DEFAULT_RECALL_METHOD,
                               recall_query="method")


def query_specs(spec: RunSpec) -> tuple[RunSpec, ...]:
    """The query trainings ``spec`` needs, each once: none without a query model, else its own
    and, when it is another one, that of its DRoP recalls (:func:`recall_spec`)."""
    if not spec.needs_query:
        return ()
    return tuple(dict.fromkeys([spec, recall_spec(spec)]))


def query_groups(queries: Iterable[RunSpec]) -> list[tuple[RunSpec, ...]]:
    """The distinct query trainings of ``queries`` (specs that need one, e.g. from
    :func:`query_specs`; one per ``query_key``, the first given), grouped into what is trained
    together, in order of first appearance.

    A group holds every query with one :attr:`RunSpec.query_training_key`: the same data, model,
    seeds, optimiser and schedule, whatever the method, so its query runs are the same trainings
    or prefixes of one another. Short queries (EL2N, GraNd) of one group share their runs, seed by
    seed, and a shorter ``query_epochs`` is a snapshot of the longest; the full-length queries
    (Forgetting, Dynamic Uncertainty, CoreSet, SSP) of one group are one training.
    :func:`query_group_outputs` trains each distinct run once
    (``dropkit.scores.compute_query_scores``). That is exact: each run is a prefix of the one it
    is taken from (``dropkit.train.prefix_mismatch`` is None, checked again when the group is
    computed), and every query's outputs are those of its own trainings. The longest query comes
    first (the group's name), then the others in order of appearance.
    """
    groups: dict[str, list[RunSpec]] = {}
    for spec in queries:
        if not spec.needs_query:
            raise ValueError(f"{spec.label()}: protocol {spec.protocol!r} uses no query model")
        members = groups.setdefault(spec.query_training_key, [])
        if all(member.query_key != spec.query_key for member in members):
            members.append(spec)
    return [tuple(sorted(members, key=lambda member: member.query_run_epochs, reverse=True))
            for members in groups.values()]


@dataclasses.dataclass(frozen=True)
class QueryPlan:
    """The query trainings that runs still need and which run waits for which (:func:`query_plan`).

    Attributes:
        groups: group name -> group, a ``tuple[RunSpec, ...]`` of :func:`query_groups` (longest
            query first), in :func:`query_groups`' order; the name is ``"query:<query key of the
            first>"``, the sweep's job key of its one training.
        group_of: query key (``str``) of each query still to compute -> the name of its group (a
            snapshot's key maps to the group of the training it is taken from).
        waits_for: cache key (``str``) of each run -> the names of the groups it needs, each once,
            in :func:`query_specs`' order (its own query, then its DRoP recalls'); ``()`` when it
            needs no query model or every query it needs is stored.
    """

    groups: dict[str, tuple[RunSpec, ...]]
    group_of: dict[str, str]
    waits_for: dict[str, tuple[str, ...]]


def query_plan(specs: Iterable[RunSpec], stored_queries: Collection[str] = frozenset()) -> QueryPlan:
    """The :class:`QueryPlan` of running ``specs``: the query trainings of their
    :func:`query_specs` whose query key is not in ``stored_queries`` (the keys whose outputs are
    stored already), grouped by :func:`query_groups`. Pure: reads no store, trains nothing."""
    needs = [(spec, query_specs(spec)) for spec in specs]
    queries = [query for _, queries in needs for query in queries if query.query_key not in stored_queries]
    groups = {f"query:{group[0].query_key}": group for group in query_groups(queries)}
    group_of = {query.query_key: name for name, group in groups.items() for query in group}
    waits_for: dict[str, tuple[str, ...]] = {}
    for spec, queries in needs:
        keys = (query.query_key for query in queries)
        waits_for.setdefault(spec.cache_key, tuple(dict.fromkeys(group_of[key] for key in keys if key in group_of)))
    return QueryPlan(groups, group_of, waits_for)


def stored_queries(specs: Iterable[RunSpec], store: ResultStore) -> set[str]:
    """The query keys of ``specs``' query trainings (:func:`query_specs`: their own and their DRoP
    recalls') whose outputs ``store`` holds readable (``ResultStore.load_scores``; an unreadable
    file is recomputed, so it does not count), each looked up once: the ``stored_queries`` of
    :func:`query_plan`."""
    keys = dict.fromkeys(query.query_key for spec in specs for query in query_specs(spec))
    return {key for key in keys if store.load_scores(key) is not None}


def query_outputs(spec: RunSpec, data, store: ResultStore | None = None, *,
                  progress: bool = False) -> dict[str, np.ndarray]:
    """Scores (float64 ``[N_train]``, higher = keep), query validation recalls (``[K]``) and, for
    group data, the query models' per-group validation recalls ``val_group_recalls`` (``[G]``,
    the mean over the query runs, like ``val_recalls``).

    Cached in ``store`` under ``spec.query_key``: the first spec that needs a query training
    computes it, every other density/protocol of the same query training reads it.
    """
    return query_group_outputs((spec,), data, store, progress=progress)[spec.query_key]


def query_group_outputs(group: Sequence[RunSpec], data, store: ResultStore | None = None, *,
                        progress: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """:func:`query_outputs` of every spec of ``group`` (a group of :func:`query_groups`), by
    ``query_key``: those cached in ``store`` are read, the others computed together, each distinct
    query run trained once and the shorter or equal ones taken from its snapshots
    (``dropkit.scores.compute_query_scores``), each as its own training would give it, and stored
    under its own ``query_key``.
    """
    group = tuple(group)
    if not group:
        raise ValueError("group is empty")
    for spec in group:
        if not spec.needs_query:
            raise ValueError(f"protocol {spec.protocol!r} uses no query model")
    if any(spec.query_training_key != group[0].query_training_key for spec in group):
        raise ValueError("group: these query trainings differ in more than their method and the length of "
                         "short query runs (see query_groups)")
    outputs: dict[str, dict[str, np.ndarray]] = {}
    missing: list[RunSpec] = []
    for spec in group:
        cached = _cached_outputs(spec, data, store)
        if cached is not None:
            outputs[spec.query_key] = cached
        elif all(other.query_key != spec.query_key for other in missing):
            missing.append(spec)
    if not missing:
        return outputs
    from dropkit.scores import compute_query_scores

    lead = missing[0]  # one group: one model, one query seed for all
    results = compute_query_scores(data, model=_model_for(lead, data, query_seed(lead)), progress=progress,
                                   requests=[(spec.method, _query_config(spec)) for spec in missing])
    for spec, result in zip(missing, results, strict=True):
        outputs[spec.query_key] = _outputs(spec, result, data)
        if store is not None:
            store.save_scores(spec.query_key, outputs[spec.query_key])
    return outputs


def _cached_outputs(spec: RunSpec, data, store: ResultStore | None) -> dict[str, np.ndarray] | None:
    """The query outputs of ``spec`` cached in ``store``, if complete for ``data``."""
    if store is None:
        return None
    needed = ({"scores", "val_recalls"} | ({"val_group_recalls"} if data.num_groups else set())
              | ({"cdbw_val_recalls_per_epoch"} if spec.query_cdbw else set()))
    cached = store.load_scores(spec.query_key)
    if cached is not None and needed <= set(cached) and cached["scores"].shape == (data.num_train,):
        return cached
    return None


def _outputs(spec: RunSpec, result, data) -> dict[str, np.ndarray]:
    """The stored query outputs of ``spec``'s ``dropkit.scores.ScoreResult`` (see
    :func:`query_outputs`); with ``query_cdbw`` also ``cdbw_val_recalls_per_epoch`` (float64
    ``[S, E, K]``: each query run's validation recalls after every epoch, which set its next
    epoch's CDB-W weights)."""
    outputs = {
        "scores": np.asarray(result.scores, dtype=np.float64),
        "val_recalls": np.asarray(result.val_recalls, dtype=np.float64),
    }
    if spec.query_cdbw:
        outputs["cdbw_val_recalls_per_epoch"] = np.asarray(
            [r.val_recalls_per_epoch for r in result.runs], dtype=np.float64)
    if data.num_groups:
        from dropkit.metrics import group_recalls

        y_val, groups_val = data.y_val.numpy(), data.groups_val.numpy()
        outputs["val_group_recalls"] = np.mean(
            [group_recalls(y_val, r.val_pred, groups_val, data.num_groups) for r in result.runs],
            axis=0)
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

    from dropkit.train import is_cuda

    if is_cuda(device) and torch.cuda.is_available():
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
    ``query_val_recalls`` ([K] or None), with CDB-W ``cdbw_val_recalls_per_epoch`` ([E, K] the
    final training's validation recalls after each epoch, which set the next epoch's weights) and
    ``query_cdbw_val_recalls_per_epoch`` ([S, E, K], each CDB-W query run's), ``test_recalls``/``val_recalls`` ([K] final model,
    final epoch), ``test_accuracy``/``test_worst_class``/``test_gap``/``test_std`` (and ``val_``
    versions, see :func:`dropkit.metrics.robustness_summary`), for group data
    ``test_group_recalls``, ``test_worst_group``…, ``group_counts`` ([G] kept per group) and
    ``query_val_group_recalls`` ([G], runs with a query model), ``final_epochs``, ``seconds`` (wall
    time of the whole run, s), ``train_seconds``, ``device_name``, the processor and the kernels
    that computed the run (:func:`dropkit.kernels.kernel_provenance`: ``cpu_vendor``,
    ``cpu_model``, ``cpu_flags``, ``cpu_capability`` (ATen's kernels, e.g. ``"AVX2"``),
    ``mkl_code_path`` (e.g. ``"amd-zen"``), ``kernel_environment``: other kernels round some
    sums differently),
    ``dropkit_version``, ``torch_version``, ``numpy_version``, ``python_version``,
    ``git_revision``, ``finished_at`` (UTC ISO time).
    """
    if not isinstance(spec, RunSpec):
        raise ValueError(f"spec must be a RunSpec, got {type(spec).__name__}")
    if store is not None:
        store.check_writable()
    started = time.perf_counter()
    import torch

    from dropkit.metrics import group_recalls, group_robustness_summary, robustness_summary

    data = load_data(spec, data_root)
    if spec.drop_over == "groups" and not data.num_groups:  # before any training
        raise ValueError(f"drop_over='groups': dataset {spec.dataset!r} has no groups")
    labels = data.y_train.numpy().astype(np.int64)
    train_groups = data.groups_train.numpy() if data.num_groups else None
    num_classes = int(data.num_classes)
    query = query_outputs(spec, data, store, progress=progress) if spec.needs_query else None
    recalls_from = recall_spec(spec)
    if recalls_from is not spec:  # DRoP's recalls from the short query models, scores from the strategy's
        short = query_outputs(recalls_from, data, store, progress=progress)
        query = {**query, **{k: v for k, v in short.items() if k != "scores"}}
    keep = _keep_indices(spec, labels, train_groups, query)

    config = _train_config(spec, epochs=spec.final_epochs, drop_epochs=spec.final_drop_epochs,
                           seed=spec.seed, augment=spec.augment, max_shift=spec.max_shift, hflip=spec.hflip,
                           cdbw=spec.cdbw,
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
    if spec.cdbw:  # the validation recalls that set each epoch's CDB-W weights ([E, K])
        row["cdbw_val_recalls_per_epoch"] = np.asarray(result.val_recalls_per_epoch).tolist()
    if spec.query_cdbw and query is not None:  # the same for each CDB-W query run ([S, E, K])
        row["query_cdbw_val_recalls_per_epoch"] = np.asarray(query["cdbw_val_recalls_per_epoch"]).tolist()
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
        **kernel_provenance(),
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


