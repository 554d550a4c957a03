"""One training run with the paper's protocol (Appendix A, Table 1).

SGD with momentum, weight decay, a step schedule (learning rate x ``drop_factor`` from each drop
epoch on) and cross-entropy; optional augmentation (random shifts of at most ``max_shift`` px, 4 by default, with zero padding
and horizontal flips, for the final model only) and optional CDB-W class weights (Sinha et al.,
2022). Per-class validation and test recalls are measured every epoch; per-sample correctness and
target-class probability of the training forward pass can be recorded for Forgetting and Dynamic
Uncertainty.

Speed: an in-memory dataset lives as one tensor on the training device (uint8 images stay uint8);
each batch is sliced by a seeded permutation, augmented on whole batches with tensor indexing,
and normalised on the fly. The loop never synchronises per step: losses and hit counts accumulate
on the device and are read once per epoch.

Determinism: model initialisation, the batch order and the augmentation draw from ``config.seed``
only (a private ``torch.Generator``; the global RNG state is left as it was), so on the CPU the same
seed and thread count give bit-identical weights and metrics. CUDA runs are not bitwise
reproducible (cuDNN and atomic-add kernels), and such differences grow during training.

Prefixes: a shorter training can be a snapshot of a longer one (``train(..., prefixes=...)``,
:func:`prefix_mismatch` states the condition). The loop makes the first steps of a training
independent of its length: the model is initialised from ``seed``; the generator draws, in
order, one permutation per epoch (before the epoch's first batch) and, with augmentation, one
shift-and-flip draw per batch; an epoch's batches are fixed slices ``epoch_batches(n,
batch_size)`` of its permutation, and a last epoch cut to a fraction ``f`` trains the first
``max(1, round(f * B))`` of them (:func:`last_epoch_batches`); the learning rate is set once per
epoch (:func:`learning_rate`); CDB-W weights of epoch ``e`` come from the validation recalls after
the whole epoch ``e - 1``; evaluation (eval mode, no gradients) changes no parameter, buffer,
optimiser state or generator. So two trainings equal in every field but the length and the drop
epochs take the same steps as long as their learning rates agree, and the shorter one's model is
the longer one's after as many steps; its validation/test evaluation, records and history are
taken at that moment by the same code as at a training's end.

The package, one concept per module (this module holds the epoch loop, :func:`train`, and
re-exports the public names):

- :mod:`dropkit.train.config` -- :class:`TrainConfig`, the step schedule, CDB-W weights,
  :class:`TrainResult`, :func:`is_cuda` (the one test of a CUDA run), the prefix condition;
- :mod:`dropkit.train.batches` -- epoch batches of in-memory or streamed training rows,
  on-device augmentation, evaluation batches;
- :mod:`dropkit.train.step` -- one optimisation step and its replay as a CUDA graph;
- :mod:`dropkit.train.inference` -- :class:`Normalizer`, logits and embeddings of a model;
- ``python -m dropkit.train --help`` (:mod:`dropkit.train.__main__`) -- the command line.
"""


from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from dropkit.metrics import class_recalls
from dropkit.models import MODELS, build_model
from dropkit.train.batches import (MAX_SHIFT, InMemoryTrainSet, StreamingTrainSet, augment_batch,
                                   check_train_indices, default_loader_workers, epoch_batches,
                                   eval_batches)
from dropkit.train.config import (CDBW_BATCH_NORMALISED_RULES, CDBW_MIN_WEIGHT, CDBW_WEIGHT_RULES,
                                  PREFIX_FREE_FIELDS, TrainConfig, TrainResult, cdbw_batch_loss, cdbw_class_weights,
                                  default_cuda_graphs, is_cuda, last_epoch_batches,
                                  learning_rate, prefix_mismatch, training_steps)
from dropkit.train.inference import EVAL_BATCH_SIZE, Normalizer, embeddings, map_batches, predict_logits
from dropkit.train.step import GraphedStep, TrainStep

if TYPE_CHECKING:  # pragma: no cover
    from dropkit.data import DataSplits

__all__ = [
    "CDBW_BATCH_NORMALISED_RULES", "CDBW_MIN_WEIGHT", "CDBW_WEIGHT_RULES", "EVAL_BATCH_SIZE", "MAX_SHIFT", "Normalizer", "TrainConfig", "TrainResult",
    "augment_batch", "cdbw_batch_loss", "cdbw_class_weights", "default_cuda_graphs", "default_loader_workers",
    "embeddings", "epoch_batches", "is_cuda", "last_epoch_batches", "learning_rate", "predict_logits",
    "prefix_mismatch", "PREFIX_FREE_FIELDS", "train", "training_steps",
]


def train(data: "DataSplits", model: str | nn.Module, config: TrainConfig = TrainConfig(), *,
          train_indices: Sequence[int] | np.ndarray | None = None,
          callbacks: Sequence[Callable[[int, nn.Module, dict[str, Any]], None]] = (),
          progress: bool = True, loader_workers: int | None = None,
          prefixes: Sequence[TrainConfig] = ()) -> TrainResult:
    """Train ``model`` on ``data``'s training rows ``train_indices`` (default: all, in order) and
    evaluate it on the validation and test splits.

    ``data``: a ``dropkit.data.DataSplits`` (in memory: the fast path) or a ``FolderSplits``
    (streamed through a DataLoader with ``loader_workers`` processes, default
    :func:`default_loader_workers`). ``model``: a name from :data:`dropkit.models.MODELS` (built
    under ``config.seed``) or a module (moved to ``config.device``). Each of ``callbacks`` is called
    after every epoch as ``callback(epoch, model, row)`` with that epoch's history row.
    ``progress`` shows a tqdm bar over epochs. The metrics of the final epoch are the reported ones.
    With ``config.cuda_graphs`` on CUDA, cuDNN's benchmark mode (autotuned convolution algorithms
    for the fixed batch shape) is on for the run, unless ``torch.backends.cudnn.deterministic``
    is set; the global flag is restored afterwards.

    ``prefixes``: configurations of shorter trainings that are prefixes of this one
    (:func:`prefix_mismatch` is None for each, else ``ValueError``). After the last step of each,
    the model (parameters and buffers, BatchNorm statistics included) is copied and evaluated as
    that training would be at its end, and ``TrainResult.prefixes`` holds what that training alone
    would return (bit for bit on the CPU). The snapshots change nothing in this training.
    """
    autotune = config.cuda_graphs and is_cuda(config.device) and not torch.backends.cudnn.deterministic
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = previous or autotune
    try:
        return _train(data, model, config, train_indices=train_indices, callbacks=callbacks,
                      progress=progress, loader_workers=loader_workers, prefixes=tuple(prefixes))
    finally:
        torch.backends.cudnn.benchmark = previous


def _check_prefixes(prefixes: tuple, config: TrainConfig) -> None:
    for index, prefix in enumerate(prefixes):
        if not isinstance(prefix, TrainConfig):
            raise ValueError(f"prefixes[{index}] must be a TrainConfig, got {type(prefix).__name__}")
        reason = prefix_mismatch(prefix, config)
        if reason is not None:
            raise ValueError(f"prefixes[{index}] is not a prefix of this training: {reason}")


@dataclass
class _Records:
    """What a training has recorded so far: per-sample ``correct`` / ``target_prob`` ``[E, n]``
    (None without ``record_per_sample``), per-class ``recalls`` ``[E, K]`` per split (NaN rows
    where not evaluated), the latest ``predictions`` per split, one ``history`` row per epoch."""

    correct: np.ndarray | None
    target_prob: np.ndarray | None
    recalls: dict[str, np.ndarray]
    predictions: dict[str, np.ndarray]
    history: list[dict[str, Any]]

    @classmethod
    def empty(cls, epochs: int, n: int, num_classes: int, record: bool) -> "_Records":
        return cls(correct=np.zeros((epochs, n), dtype=bool) if record else None,
                   target_prob=np.zeros((epochs, n), dtype=np.float32) if record else None,
                   recalls={split: np.full((epochs, num_classes), np.nan) for split in ("val", "test")},
                   predictions={split: np.empty(0, dtype=np.int64) for split in ("val", "test")},
                   history=[])

    def first_epochs(self, epoch: int, epochs: int, record: bool) -> "_Records":
        """The records of a training of ``epochs`` epochs whose epochs before ``epoch`` are this
        one's (copies); with per-sample records only if ``record`` (and this one keeps them)."""
        record = record and self.correct is not None
        out = _Records.empty(epochs, self.correct.shape[1] if record else 0, self.recalls["val"].shape[1], record)
        if record:
            out.correct[:epoch], out.target_prob[:epoch] = self.correct[:epoch], self.target_prob[:epoch]
        for split, recalls in out.recalls.items():
            recalls[:epoch] = self.recalls[split][:epoch]
        out.history = [dict(row) for row in self.history[:epoch]]
        return out

    def result(self, model: nn.Module, seconds: float, indices: np.ndarray,
               prefixes: tuple[TrainResult, ...] = ()) -> TrainResult:
        return TrainResult(
            model=model, history=pd.DataFrame(self.history),
            val_recalls=self.recalls["val"][-1], test_recalls=self.recalls["test"][-1],
            val_pred=self.predictions["val"], test_pred=self.predictions["test"], correct=self.correct,
            target_prob=self.target_prob, seconds=seconds, val_recalls_per_epoch=self.recalls["val"],
            test_recalls_per_epoch=self.recalls["test"], train_indices=indices, prefixes=prefixes,
        )


def _train(data, model, config, *, train_indices, callbacks, progress, loader_workers, prefixes) -> TrainResult:
    started = time.perf_counter()
    _check_prefixes(prefixes, config)
    device = torch.device(config.device)
    indices = check_train_indices(train_indices, data.num_train)
    n, num_classes = len(indices), int(data.num_classes)
    in_memory = isinstance(getattr(data, "x_train", None), torch.Tensor)
    workers = default_loader_workers() if loader_workers is None else int(loader_workers)
    if isinstance(model, str):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = build_model(model, num_classes=num_classes, input_shape=tuple(data.input_shape))
    elif not isinstance(model, nn.Module):
        raise ValueError(f"model must be a name from {MODELS} or an nn.Module, got {type(model).__name__}")
    if config.augment and len(data.input_shape) != 3:
        raise ValueError(f"config.augment=True needs image data, but input_shape={tuple(data.input_shape)}")
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    network = torch.compile(model) if config.compile else model

    train_set = (InMemoryTrainSet(data, indices, device) if in_memory
                 else StreamingTrainSet(data, indices, device, workers))
    labels = {"val": data.y_val.cpu().numpy(), "test": data.y_test.cpu().numpy()}
    normalizer = Normalizer.for_data(data, device, config.channels_last)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    epochs = config.epochs
    records = _Records.empty(epochs, n, num_classes, config.record_per_sample)
    eval_inputs: dict[str, torch.Tensor] = {}
    bounds = epoch_batches(n, config.batch_size)
    step = TrainStep(network, optimizer, normalizer, config, num_classes, n,
                     max(stop - start for start, stop in bounds), device)
    run_step = GraphedStep(step, config.batch_size) if config.cuda_graphs else step

    def close_epoch(into: _Records, epoch: int, lr: float, last: bool, epoch_started: float) -> dict[str, Any]:
        """Record the epoch that ends now (per-sample records, sums, evaluations) in ``into``."""
        if into.correct is not None:  # a snapshot of a prefix without records has none
            into.correct[epoch] = step.correct.cpu().numpy()
            into.target_prob[epoch] = step.target_prob.cpu().numpy()
        row: dict[str, Any] = {"epoch": epoch, "lr": lr, "train_loss": step.loss_sum.item() / n,
                               "train_accuracy": step.hit_sum.item() / n,
                               "train_seconds": time.perf_counter() - epoch_started}
        for split in ("val", "test"):
            if config.eval_every_epoch or last or (split == "val" and config.cdbw):
                logits = map_batches(network, network, eval_batches(data, split, device, workers, eval_inputs),
                                     normalizer, device, config.bf16)
                into.predictions[split] = logits.argmax(1).cpu().numpy()
                into.recalls[split][epoch] = class_recalls(labels[split], into.predictions[split], num_classes)
                row[f"{split}_accuracy"] = float(np.mean(into.predictions[split] == labels[split]))
                row[f"{split}_worst_recall"] = float(into.recalls[split][epoch].min())
            else:
                row[f"{split}_accuracy"] = row[f"{split}_worst_recall"] = np.nan
        into.history.append(row)
        return row

    def snapshot(prefix: TrainConfig, epoch: int, lr: float, epoch_started: float) -> TrainResult:
        """What a training under ``prefix``, whose last step was the one just taken, returns."""
        into = records.first_epochs(epoch, prefix.epochs, prefix.record_per_sample)
        close_epoch(into, epoch, lr, True, epoch_started)["seconds"] = time.perf_counter() - epoch_started
        return into.result(copy.deepcopy(model), time.perf_counter() - started, indices)

    snapshot_at: dict[int, list[int]] = {}  # step count -> the prefixes that end with it
    for index, prefix in enumerate(prefixes):
        snapshot_at.setdefault(training_steps(prefix, len(bounds)), []).append(index)
    prefix_results: list[TrainResult | None] = [None] * len(prefixes)
    steps_done = 0
    last_batches = last_epoch_batches(config, len(bounds))
    class_sizes = np.bincount(data.y_train.cpu().numpy()[indices], minlength=num_classes) if config.cdbw else None
    bar = tqdm(range(epochs), desc=f"train {n} samples", unit="epoch", disable=not progress)
    for epoch in bar:
        epoch_started = time.perf_counter()
        lr = learning_rate(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        order = torch.randperm(n, generator=generator, device=device)
        step.reset()
        epoch_bounds = bounds[:last_batches] if epoch == epochs - 1 else bounds
        for positions, xb, yb in train_set.batches(order, epoch_bounds):
            if config.augment:
                xb = augment_batch(xb, generator, config.max_shift, config.hflip)
            run_step(positions, xb, yb)
            steps_done += 1
            for index in snapshot_at.get(steps_done, ()):
                prefix_results[index] = snapshot(prefixes[index], epoch, lr, epoch_started)
        row = close_epoch(records, epoch, lr, epoch == epochs - 1, epoch_started)
        if config.cdbw:
            step.class_weights.copy_(torch.as_tensor(cdbw_class_weights(records.recalls["val"][epoch],
                                                                        config.cdbw_weights, class_sizes),
                                                     dtype=torch.float32))
        row["seconds"] = time.perf_counter() - epoch_started
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_accuracy']:.3f}")
        for callback in callbacks:
            callback(epoch, model, row)

    return records.result(model, time.perf_counter() - started, indices, tuple(prefix_results))
