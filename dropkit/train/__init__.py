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

The package, one concept per module (this module holds the epoch loop, :func:`train`, and
re-exports the public names):

- :mod:`dropkit.train.config` -- :class:`TrainConfig`, the step schedule, CDB-W weights,
  :class:`TrainResult`, :func:`is_cuda` (the one test of a CUDA run);
- :mod:`dropkit.train.batches` -- epoch batches of in-memory or streamed training rows,
  on-device augmentation, evaluation batches;
- :mod:`dropkit.train.step` -- one optimisation step and its replay as a CUDA graph;
- :mod:`dropkit.train.inference` -- :class:`Normalizer`, logits and embeddings of a model;
- ``python -m dropkit.train --help`` (:mod:`dropkit.train.__main__`) -- the command line.
"""


from __future__ import annotations

import time
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
from dropkit.train.config import (CDBW_MIN_WEIGHT, CDBW_WEIGHT_RULES, TrainConfig, TrainResult, cdbw_class_weights,
                                  default_cuda_graphs, is_cuda, learning_rate)
from dropkit.train.inference import EVAL_BATCH_SIZE, Normalizer, embeddings, map_batches, predict_logits
from dropkit.train.step import GraphedStep, TrainStep

if TYPE_CHECKING:  # pragma: no cover
    from dropkit.data import DataSplits

__all__ = [
    "CDBW_MIN_WEIGHT", "CDBW_WEIGHT_RULES", "EVAL_BATCH_SIZE", "MAX_SHIFT", "Normalizer", "TrainConfig", "TrainResult",
    "augment_batch", "cdbw_class_weights", "default_cuda_graphs", "default_loader_workers",
    "embeddings", "epoch_batches", "is_cuda", "learning_rate", "predict_logits", "train",
]


def train(data: "DataSplits", model: str | nn.Module, config: TrainConfig = TrainConfig(), *,
          train_indices: Sequence[int] | np.ndarray | None = None,
          callbacks: Sequence[Callable[[int, nn.Module, dict[str, Any]], None]] = (),
          progress: bool = True, loader_workers: int | None = None) -> TrainResult:
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
    """
    autotune = config.cuda_graphs and is_cuda(config.device) and not torch.backends.cudnn.deterministic
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = previous or autotune
    try:
        return _train(data, model, config, train_indices=train_indices, callbacks=callbacks,
                      progress=progress, loader_workers=loader_workers)
    finally:
        torch.backends.cudnn.benchmark = previous


def _train(data, model, config, *, train_indices, callbacks, progress, loader_workers) -> TrainResult:
    started = time.perf_counter()
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
    y_val_np, y_test_np = data.y_val.cpu().numpy(), data.y_test.cpu().numpy()
    normalizer = Normalizer.for_data(data, device, config.channels_last)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    epochs = config.epochs
    correct = np.zeros((epochs, n), dtype=bool) if config.record_per_sample else None
    target_prob = np.zeros((epochs, n), dtype=np.float32) if config.record_per_sample else None
    recalls = {"val": np.full((epochs, num_classes), np.nan), "test": np.full((epochs, num_classes), np.nan)}
    labels = {"val": y_val_np, "test": y_test_np}
    predictions = {"val": np.empty(0, dtype=np.int64), "test": np.empty(0, dtype=np.int64)}
    eval_inputs: dict[str, torch.Tensor] = {}
    history: list[dict[str, Any]] = []
    bounds = epoch_batches(n, config.batch_size)
    step = TrainStep(network, optimizer, normalizer, config, num_classes, n,
                     max(stop - start for start, stop in bounds), device)
    run_step = GraphedStep(step, config.batch_size) if config.cuda_graphs else step

    last_batches = max(1, round(config.last_epoch_fraction * len(bounds)))
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
                xb = augment_batch(xb, generator, config.max_shift)
            run_step(positions, xb, yb)
        if config.record_per_sample:
            correct[epoch] = step.correct.cpu().numpy()
            target_prob[epoch] = step.target_prob.cpu().numpy()
        row: dict[str, Any] = {"epoch": epoch, "lr": lr, "train_loss": step.loss_sum.item() / n,
                               "train_accuracy": step.hit_sum.item() / n,
                               "train_seconds": time.perf_counter() - epoch_started}
        last = epoch == epochs - 1
        for split in ("val", "test"):
            if config.eval_every_epoch or last or (split == "val" and config.cdbw):
                logits = map_batches(network, network, eval_batches(data, split, device, workers, eval_inputs),
                                     normalizer, device, config.bf16)
                predictions[split] = logits.argmax(1).cpu().numpy()
                recalls[split][epoch] = class_recalls(labels[split], predictions[split], num_classes)
                row[f"{split}_accuracy"] = float(np.mean(predictions[split] == labels[split]))
                row[f"{split}_worst_recall"] = float(recalls[split][epoch].min())
            else:
                row[f"{split}_accuracy"] = row[f"{split}_worst_recall"] = np.nan
        if config.cdbw:
            step.class_weights.copy_(torch.as_tensor(cdbw_class_weights(recalls["val"][epoch], config.cdbw_weights,
                                                                        class_sizes),
                                                     dtype=torch.float32))
        row["seconds"] = time.perf_counter() - epoch_started
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_accuracy']:.3f}")
        for callback in callbacks:
            callback(epoch, model, row)

    return TrainResult(
        model=model, history=pd.DataFrame(history),
        val_recalls=recalls["val"][-1], test_recalls=recalls["test"][-1],
        val_pred=predictions["val"], test_pred=predictions["test"], correct=correct, target_prob=target_prob,
        seconds=time.perf_counter() - started,
        val_recalls_per_epoch=recalls["val"], test_recalls_per_epoch=recalls["test"], train_indices=indices,
    )
