"""The query-model protocol of the paper (Section 2, Appendix A "Data Pruning"): train query
model(s) on the training set, score every training sample, and keep the query models' validation
recalls so DRoP can reuse them without a second query training.

* ``el2n`` / ``grand``: ``num_seeds`` short runs of ``epochs`` epochs; EL2N / GraNd of each
  run's final model, averaged over the runs.
* ``forgetting`` / ``dynamic_uncertainty``: one full run of ``full_epochs`` epochs recording
  per-sample correctness / target probability of every epoch's training pass.
* ``coreset`` / ``ssp``: one full run; greedy k-center order (score ``N - position``) / distance
  to the class mean, on the trained model's penultimate-layer embeddings.
* ``random``: no training; seeded uniform scores.

The paper uses 10% of the final training length for the short runs and 5 seeds
(``QueryConfig(TrainConfig(epochs=E // 10), full_epochs=E, num_seeds=5)``).  Short runs follow the prefix of
the final learning-rate schedule (drop epochs at or after ``epochs`` do not happen in them), so
the short runs of two lengths of one query are the same trainings up to the shorter length:
:func:`compute_prefix_scores` trains the longest and takes the shorter ones as snapshots of it
(:func:`prefix_query_mismatch` states when).
CoreSet and SSP use the penultimate-layer embeddings (``model.embed``) of the fully trained query
model; CoreSet starts its greedy order at the first training sample.

Validation recalls: ``ScoreResult.val_recalls`` is the mean over the query runs of the final
per-class validation recalls.  ``random`` trains nothing, so its ``val_recalls`` is None and
``models`` is empty: Random+DRoP takes its recalls from the query model of the strategy it is
compared with (the paper's setting: the short EL2N/GraNd-style query, e.g.
``compute_scores("el2n", ...).val_recalls``), never from a second training here.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from dropkit.scores.coreset import coreset_scores_from_order, k_center_greedy
from dropkit.scores.dynamic_uncertainty import dynamic_uncertainty_from_probs
from dropkit.scores.el2n import el2n_from_logits
from dropkit.scores.forgetting import NEVER_LEARNED_RULES, forgetting_from_correct
from dropkit.scores.grand import per_sample_grad_norms
from dropkit.scores.ssp import ssp_from_embeddings
from dropkit.scores.uniform import random_scores
from dropkit.train import (PREFIX_FREE_FIELDS, Normalizer, TrainConfig, default_loader_workers, prefix_mismatch,
                           train)

METHODS: tuple[str, ...] = ("random", "el2n", "grand", "forgetting", "dynamic_uncertainty",
                            "coreset", "ssp")
SHORT_QUERY_METHODS: tuple[str, ...] = ("el2n", "grand")
FULL_QUERY_METHODS: tuple[str, ...] = ("forgetting", "dynamic_uncertainty", "coreset", "ssp")
#: The methods that read the per-sample records of their query training's passes.
RECORD_METHODS: tuple[str, ...] = ("forgetting", "dynamic_uncertainty")


@dataclass(frozen=True)
class QueryConfig:
    """How query models are trained and scores computed.

    Attributes:
        training: the :class:`dropkit.train.TrainConfig` of the query runs (optimiser, schedule,
            device, speed options: every training option is declared there, once). Its ``epochs`` is
            the length of each short query run (EL2N, GraNd; the paper: 10% of the final length),
            its ``seed`` the first run's, its ``drop_epochs`` epochs of the full-length schedule (a
            short run keeps those before its end); ``cdbw=True`` trains CDB-W query models (the
            paper's "CDB-W+EL2N"). ``record_per_sample`` and ``eval_every_epoch`` are set per run.
        full_epochs: length of the full query run (Forgetting, Dynamic Uncertainty, CoreSet, SSP);
            None = ``10 * training.epochs``.
        num_seeds: short query runs, seeds ``seed, seed + 1, ...``; their scores and validation
            recalls are averaged (paper: 5).  The full run uses ``seed``.  ``random`` uses ``seed``.
        window: Dynamic Uncertainty window J (He et al.: 10).
        never_learned: Forgetting score of never-learned samples, "most" (default) or "zero" (see
            :mod:`dropkit.scores.forgetting`).
        score_batch_size: samples per batch when computing logits, gradients and embeddings.
    """

    training: TrainConfig = TrainConfig()
    full_epochs: int | None = None
    num_seeds: int = 5
    window: int = 10
    never_learned: str = "most"
    score_batch_size: int = 256

    def __post_init__(self) -> None:
        if not isinstance(self.training, TrainConfig):
            raise ValueError(f"training must be a TrainConfig, got {type(self.training).__name__}")
        for name in ("num_seeds", "score_batch_size", "window"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.full_epochs is not None and (not isinstance(self.full_epochs, int)
                                             or isinstance(self.full_epochs, bool)
                                             or self.full_epochs < 1):
            raise ValueError(f"full_epochs={self.full_epochs!r} must be a positive integer or None")
        seed = self.training.seed
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed={seed!r} must be a non-negative integer")
        if self.window < 2:
            raise ValueError(f"window={self.window!r} must be >= 2")
        if self.never_learned not in NEVER_LEARNED_RULES:
            raise ValueError(f"never_learned={self.never_learned!r} is not one of {NEVER_LEARNED_RULES}")

    @property
    def full_length(self) -> int:
        """Epochs of the full-length query run."""
        return self.full_epochs if self.full_epochs is not None else 10 * self.training.epochs

    def train_config(self, *, full: bool, seed: int | None = None,
                     record_per_sample: bool = False) -> TrainConfig:
        """The :class:`dropkit.train.TrainConfig` of one query run (short unless ``full``)."""
        epochs = self.full_length if full else self.training.epochs
        return dataclasses.replace(
            self.training, epochs=epochs,
            drop_epochs=tuple(d for d in self.training.drop_epochs if d < epochs),
            last_epoch_fraction=1.0 if full else self.training.last_epoch_fraction,
            seed=self.training.seed if seed is None else seed,
            record_per_sample=record_per_sample, eval_every_epoch=False,
        )


@dataclass(frozen=True, eq=False)
class ScoreResult:
    """Scores of one method and what produced them.

    Attributes:
        scores: float64 ``[n]`` in ``train_indices`` order, higher = more useful = kept first.
        val_recalls: float64 ``[K]`` mean final validation recall of the query runs (None for
            ``random``, which trains nothing).
        models: the trained query models (one per run; empty for ``random``), in eval mode.
        method: the scoring method.
        runs: the :class:`dropkit.train.TrainResult` of every query run (histories, test
            recalls, per-sample records).
    """

    scores: np.ndarray
    val_recalls: np.ndarray | None
    models: list[nn.Module]
    method: str = ""
    runs: list = field(default_factory=list)


def _raw_batches(data, indices: np.ndarray, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Raw ``(x, y)`` training batches of ``indices`` in order (in memory or streamed)."""
    if isinstance(getattr(data, "x_train", None), torch.Tensor):
        for start in range(0, len(indices), batch_size):
            idx = torch.from_numpy(indices[start:start + batch_size])
            yield data.x_train[idx], data.y_train[idx]
    else:  # a folder-scale dataset: stream the subset through a DataLoader
        subset = torch.utils.data.Subset(data.train, indices.tolist())
        loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False,
                                             num_workers=default_loader_workers())
        yield from loader


def _per_sample(fn, model: nn.Module, data, indices: np.ndarray, query: QueryConfig) -> torch.Tensor:
    """``cat(fn(model, normalised x, y))`` over the training rows ``indices`` (on the CPU)."""
    device = next(model.parameters()).device
    normalizer = Normalizer.for_data(data, device)
    was_training = model.training
    model.eval()
    try:
        parts = [fn(model, normalizer(x.to(device)), y.to(device)).cpu()
                 for x, y in _raw_batches(data, indices, query.score_batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def _el2n(model, x, y, num_classes):
    with torch.no_grad():
        return el2n_from_logits(model(x).float(), y, num_classes)


def _embed(model, x, y):
    with torch.no_grad():
        return model.embed(x).float()


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")


def _train_indices(data, train_indices) -> np.ndarray:
    if train_indices is None:
        return np.arange(data.num_train, dtype=np.int64)
    indices = np.asarray(train_indices)
    if indices.ndim != 1 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"train_indices must be a non-empty 1-D integer array, got shape "
                         f"{indices.shape} dtype {indices.dtype}")
    if indices.min() < 0 or indices.max() >= data.num_train:
        raise ValueError(f"train_indices must lie in [0, {data.num_train})")
    return indices.astype(np.int64)


def compute_scores(method: str, data, *, model: str | nn.Module, query: QueryConfig = QueryConfig(),
                   train_indices=None, progress: bool = True) -> ScoreResult:
    """Train the query model(s) of ``method`` and score every training sample.

    Args:
        method: one of :data:`METHODS`.
        data: a :class:`dropkit.data.DataSplits` (or folder-scale ``FolderSplits``).
        model: a name from :data:`dropkit.models.MODELS` (built under each run's seed) or an
            ``nn.Module`` (deep-copied for every run, so all runs share its initialisation).
        query: :class:`QueryConfig`.
        train_indices: training rows to train on and score (default: all, in order).
        progress: tqdm bars of the query trainings.

    Returns:
        :class:`ScoreResult` with ``scores`` in ``train_indices`` order.
    """
    return compute_query_scores(data, model=model, requests=[(method, query)], train_indices=train_indices,
                                progress=progress)[0]


def query_runs(method: str, query: QueryConfig) -> tuple[TrainConfig, ...]:
    """The query runs of ``method`` under ``query``, as the :class:`dropkit.train.TrainConfig` of
    each: ``num_seeds`` short runs (seeds ``seed, seed + 1, ...``) for EL2N and GraNd, one
    full-length run (seed ``seed``; with per-sample records for Forgetting and Dynamic Uncertainty,
    :data:`RECORD_METHODS`) for the others, none for Random."""
    _check_method(method)
    if method == "random":
        return ()
    if method in SHORT_QUERY_METHODS:
        return tuple(query.train_config(full=False, seed=query.training.seed + i) for i in range(query.num_seeds))
    return (query.train_config(full=True, record_per_sample=method in RECORD_METHODS),)


def shared_trainings(runs: Sequence[TrainConfig]) -> list[tuple[TrainConfig, tuple[TrainConfig, ...]]]:
    """The trainings that give every run of ``runs`` once: ``[(trained, snapshots)]``, each distinct
    run either trained or a snapshot of the first longer-or-equal trained run it is a prefix of
    (:func:`dropkit.train.prefix_mismatch` is None: the same seed, options and learning rates, at
    most as long, records only where the trained run keeps them). Runs are taken longest first,
    those with records before those without, in their given order otherwise. Pure."""
    distinct = list(dict.fromkeys(runs))
    order = sorted(range(len(distinct)), key=lambda i: (-distinct[i].epochs, -distinct[i].last_epoch_fraction,
                                                         not distinct[i].record_per_sample, i))
    trainings: list[tuple[TrainConfig, list[TrainConfig]]] = []
    for config in (distinct[i] for i in order):
        lead = next((t for t in trainings if prefix_mismatch(config, t[0]) is None), None)
        if lead is None:
            trainings.append((config, []))
        else:
            lead[1].append(config)
    return [(trained, tuple(snapshots)) for trained, snapshots in trainings]


def compute_query_scores(data, *, model: str | nn.Module, requests: Sequence[tuple[str, QueryConfig]],
                         train_indices=None, progress: bool = True) -> tuple[ScoreResult, ...]:
    """:func:`compute_scores` of several ``(method, query)`` requests on one dataset and model, with
    every distinct query run (:func:`query_runs`) trained once and every run that is a prefix of
    another taken from its snapshot (:func:`shared_trainings`). So EL2N and GraNd of the same
    short query runs share them, a shorter query length is a snapshot of a longer one, and the
    full-length runs of Forgetting, Dynamic Uncertainty, CoreSet and SSP with one seed and schedule
    are one training. Each result equals, bit for bit on the CPU, ``compute_scores(method, data,
    query=query, ...)`` of its request (its query runs are those trainings), at the training cost
    of the distinct longest runs alone.

    Returns:
        one :class:`ScoreResult` per request, in the order given.
    """
    requests = tuple(requests)
    if not requests:
        raise ValueError("requests is empty")
    for request in requests:
        if not isinstance(request, tuple) or len(request) != 2:
            raise ValueError(f"each request must be a (method, QueryConfig) pair, got {request!r}")
        _check_arguments(request[0], request[1], model)
    indices = _train_indices(data, train_indices)
    wanted = [query_runs(method, query) for method, query in requests]
    results: dict[TrainConfig, object] = {}
    for trained, snapshots in shared_trainings([run for runs in wanted for run in runs]):
        result = _train_query(data, model, trained, indices, progress, prefixes=list(snapshots))
        results[trained] = dataclasses.replace(result, prefixes=())  # as this run alone returns it
        for config, snapshot in zip(snapshots, result.prefixes, strict=True):
            snapshot.model.eval()
            results[config] = snapshot
    return tuple(_request_scores(method, query, [results[run] for run in runs], data, indices)
                 for (method, query), runs in zip(requests, wanted, strict=True))


def _request_scores(method: str, query: QueryConfig, runs: list, data, indices: np.ndarray) -> ScoreResult:
    """The :class:`ScoreResult` of ``method`` from its query ``runs`` (``TrainResult`` s, in
    :func:`query_runs`' order)."""
    n = len(indices)
    if method == "random":
        return ScoreResult(random_scores(n, query.training.seed), None, [], method)
    if method in SHORT_QUERY_METHODS:
        total = np.zeros(n, dtype=np.float64)
        for run in runs:
            total += _short_scores(method, run.model, data, indices, query).double().numpy()
        return _score_result(method, total / len(runs), runs, n)
    (result,) = runs
    if method == "forgetting":
        scores = forgetting_from_correct(result.correct, never_learned=query.never_learned)
    elif method == "dynamic_uncertainty":
        scores = dynamic_uncertainty_from_probs(result.target_prob, window=query.window)
    else:
        emb = _per_sample(_embed, result.model, data, indices, query)
        if method == "ssp":
            labels = data.y_train[torch.from_numpy(indices)]
            scores = ssp_from_embeddings(emb, labels).double().numpy()
        else:
            order = k_center_greedy(emb.to(query.training.device), n, first=0)
            scores = coreset_scores_from_order(order, n)
    return _score_result(method, scores, runs, n)


def prefix_query_mismatch(short: QueryConfig, long: QueryConfig) -> str | None:
    """Why the short query runs of ``short`` are not prefixes of those of ``long`` (so cannot be
    snapshots of them), or None when they are: every field but the training's length and drop
    epochs (:data:`dropkit.train.PREFIX_FREE_FIELDS`) equal, so both have the same ``num_seeds``
    runs with the same seeds, and run ``i`` of ``short`` a prefix of run ``i`` of ``long``
    (:func:`dropkit.train.prefix_mismatch`: the same learning rate in every epoch of the shorter
    run, as when both cut one full-length schedule at their ends)."""
    free = {name: getattr(long.training, name) for name in PREFIX_FREE_FIELDS}
    if dataclasses.replace(short, training=dataclasses.replace(short.training, **free)) != long:
        return "they differ in more than the length and schedule of their short runs"
    for i in range(short.num_seeds):
        seed = short.training.seed + i
        reason = prefix_mismatch(short.train_config(full=False, seed=seed), long.train_config(full=False, seed=seed))
        if reason is not None:
            return f"run {i}: {reason}"
    return None


def compute_prefix_scores(method: str, data, *, model: str | nn.Module, queries: Sequence[QueryConfig],
                          train_indices=None, progress: bool = True) -> tuple[ScoreResult, ...]:
    """:func:`compute_scores` of a short-query ``method`` (EL2N, GraNd) for each of ``queries``,
    whose short runs differ in length only: the longest query's runs are trained, and every other
    query's runs are snapshots of them (:func:`prefix_query_mismatch` must be None for each, else
    ``ValueError``; :func:`compute_query_scores` shares what it can without asking). Each result
    equals, bit for bit on the CPU, ``compute_scores(method, data, query=q, ...)`` of its query
    ``q``, at the training cost of the longest alone.

    Returns:
        one :class:`ScoreResult` per query, in the order given.
    """
    queries = tuple(queries)
    if method not in SHORT_QUERY_METHODS:
        raise ValueError(f"method={method!r}: only the short query runs of {SHORT_QUERY_METHODS} have a length "
                         "of their own to take prefixes of")
    if not queries:
        raise ValueError("queries is empty")
    for query in queries:
        _check_arguments(method, query, model)
    longest = max(range(len(queries)), key=lambda i: (queries[i].training.epochs,
                                                      queries[i].training.last_epoch_fraction))
    for index, query in enumerate(queries):
        reason = prefix_query_mismatch(query, queries[longest])
        if reason is not None:
            raise ValueError(f"queries[{index}] is not a prefix of queries[{longest}]: {reason}")
    return compute_query_scores(data, model=model, requests=[(method, query) for query in queries],
                                train_indices=train_indices, progress=progress)


def _check_arguments(method: str, query, model) -> None:
    _check_method(method)
    if not isinstance(query, QueryConfig):
        raise ValueError(f"query must be a QueryConfig, got {type(query).__name__}")
    if not isinstance(model, (str, nn.Module)):
        raise ValueError(f"model must be a model name or an nn.Module, got {type(model).__name__}")


def _train_query(data, model, config: TrainConfig, indices: np.ndarray, progress: bool, prefixes=()):
    """One query run (and its ``prefixes``' snapshots) of ``model`` (a deep copy of a module)."""
    module = copy.deepcopy(model) if isinstance(model, nn.Module) else model
    result = train(data, module, config, train_indices=indices, progress=progress, prefixes=prefixes)
    result.model.eval()
    return result


def _short_scores(method: str, model: nn.Module, data, indices: np.ndarray, query: QueryConfig) -> torch.Tensor:
    """EL2N or GraNd ``[n]`` of one short query run's model."""
    if method == "el2n":
        k = int(data.num_classes)
        return _per_sample(lambda m, x, y: _el2n(m, x, y, k), model, data, indices, query)
    return _per_sample(lambda m, x, y: per_sample_grad_norms(m, x, y, query.score_batch_size).to(x.device),
                       model, data, indices, query)


def _score_result(method: str, scores, runs: list, n: int) -> ScoreResult:
    """The :class:`ScoreResult` of ``scores`` ``[n]`` from the query ``runs`` (checked finite)."""
    val_recalls = np.mean([r.val_recalls for r in runs], axis=0)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (n,) or not np.isfinite(scores).all():
        raise RuntimeError(f"{method} produced invalid scores (shape {scores.shape}, "
                           f"{int((~np.isfinite(scores)).sum())} non-finite)")
    return ScoreResult(scores, val_recalls, [r.model for r in runs], method, runs)
