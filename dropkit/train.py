"""One training run with the paper's protocol (Appendix A, Table 1).

SGD with momentum, weight decay, a step schedule (learning rate x ``drop_factor`` from each drop
epoch on) and cross-entropy; optional augmentation (random shifts of at most 4 px with zero padding
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

Run ``python -m dropkit.train --help`` for the command-line entry point.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dropkit.metrics import class_recalls
from dropkit.models import MODELS, build_model

if TYPE_CHECKING:  # pragma: no cover
    from dropkit.data import DataSplits

MAX_SHIFT = 4                 # pixels, Appendix A "shifts by at most 4 pixels in any direction"
CDBW_MIN_WEIGHT = 1e-3        # floor on 1 - r_k before renormalisation: no class ever weighs 0
EVAL_BATCH_SIZE = 1024


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run.

    epochs: number of passes over the training subset. lr: initial learning rate.
    drop_epochs: 0-based epoch indices from which the learning rate is multiplied by
    ``drop_factor`` once more (Table 1's "80/120" with 160 epochs is ``(80, 120)``).
    augment: random <= 4 px shifts (zero padding) and horizontal flips, per sample, on the device.
    cdbw: CDB-W class weights from the previous epoch's validation recalls.
    device: torch device string ("cpu", "cuda", "cuda:1").
    channels_last / bf16 / compile: speed options (NHWC memory format, bfloat16 autocast on CPU or
    CUDA, ``torch.compile``). cuda_graphs: on CUDA, replay every full-size training step (forward,
    backward, optimiser step, on-device metric sums) as one captured CUDA graph instead of launching
    its ~200 kernels one by one from Python; the graph is captured after a few eager steps and again
    at each learning-rate change, the epoch's last, smaller batch runs eagerly, and a capture that
    fails falls back to eager steps with a warning. Same arithmetic as the eager loop. On the CPU
    the same static-buffer step runs without capture (so CPU tests exercise it). Not combinable
    with ``compile``. record_per_sample: keep per-epoch per-sample correctness and target
    probability of the training forward pass. eval_every_epoch: measure validation and test recalls
    after every epoch (otherwise after the last one only; CDB-W still evaluates validation each epoch).
    """

    epochs: int = 10
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    drop_epochs: tuple[int, ...] = ()
    drop_factor: float = 0.2
    augment: bool = False
    cdbw: bool = False
    seed: int = 0
    device: str = "cpu"
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    record_per_sample: bool = False
    eval_every_epoch: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs={self.epochs!r} must be a positive integer")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"lr={self.lr!r} must be a positive number")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum={self.momentum!r} must lie in [0, 1)")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay={self.weight_decay!r} must be >= 0")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise ValueError(f"batch_size={self.batch_size!r} must be an integer >= 2 (BatchNorm needs 2 samples)")
        drops = tuple(self.drop_epochs)
        if any(not isinstance(e, int) or e < 1 for e in drops) or list(drops) != sorted(set(drops)):
            raise ValueError(f"drop_epochs={self.drop_epochs!r} must be strictly increasing positive integers")
        object.__setattr__(self, "drop_epochs", drops)
        if not 0 < self.drop_factor <= 1:
            raise ValueError(f"drop_factor={self.drop_factor!r} must lie in (0, 1]")
        try:
            torch.device(self.device)
        except RuntimeError as error:
            raise ValueError(f"device={self.device!r} is not a torch device: {error}") from None
        if self.cuda_graphs and self.compile:
            raise ValueError("cuda_graphs=True and compile=True exclude each other: torch.compile "
                             "manages its own graphs (mode='reduce-overhead'); choose one")


def is_cuda(device: str | torch.device) -> bool:
    """Whether ``device`` ("cpu", "cuda", "cuda:1", a ``torch.device``) is a CUDA device: the one
    place dropkit decides whether a run is a CUDA run."""
    return torch.device(device).type == "cuda"


def default_cuda_graphs(device: str | torch.device, compile: bool = False) -> bool:
    """``TrainConfig.cuda_graphs`` of the runner's trainings and of ``python -m dropkit.train``
    when not given: on for a CUDA device (the same arithmetic with less launch overhead, so it is
    part of no run's identity), off on the CPU and with ``compile`` (which excludes it)."""
    return is_cuda(device) and not compile


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    history: one row per epoch (0-based ``epoch``, ``lr``, mean unweighted ``train_loss``,
    ``train_accuracy`` of the training forward pass, ``val_accuracy``, ``test_accuracy``,
    ``val_worst_recall``, ``test_worst_recall`` (NaN when not evaluated that epoch),
    ``train_seconds`` (the training pass alone) and ``seconds`` (the epoch with evaluation)).
    val_recalls / test_recalls: per-class recalls ``[K]`` after the final epoch;
    val_pred / test_pred: final predictions ``[n_val]`` / ``[n_test]`` (int64).
    val_recalls_per_epoch / test_recalls_per_epoch: ``[E, K]`` (NaN rows where not evaluated).
    correct / target_prob: ``[E, n]`` bool / float32 when ``record_per_sample``, columns in
    ``train_indices`` order, else None. seconds: wall time of the whole run.
    """

    model: nn.Module
    history: pd.DataFrame
    val_recalls: np.ndarray
    test_recalls: np.ndarray
    val_pred: np.ndarray
    test_pred: np.ndarray
    correct: np.ndarray | None
    target_prob: np.ndarray | None
    seconds: float
    val_recalls_per_epoch: np.ndarray
    test_recalls_per_epoch: np.ndarray
    train_indices: np.ndarray


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """Learning rate of 0-based ``epoch``: ``lr * drop_factor ** #{d in drop_epochs: d <= epoch}``."""
    if epoch < 0:
        raise ValueError(f"epoch={epoch!r} must be >= 0")
    drops = sum(1 for d in config.drop_epochs if d <= epoch)
    return config.lr * config.drop_factor ** drops


def cdbw_class_weights(val_recalls: Sequence[float] | np.ndarray) -> np.ndarray:
    """CDB-W class weights ``[K]`` from validation recalls ``r`` ``[K]`` (values in [0, 1]).

    ``w_k = max(1 - r_k, CDBW_MIN_WEIGHT)``, then rescaled to mean 1 so the loss keeps its scale on
    balanced data; the floor keeps every class (and so every batch) at a positive weight even when
    all recalls are 1. A NaN recall (class absent from the validation split) counts as 0 (weight 1
    before rescaling).
    """
    recalls = np.asarray(val_recalls, dtype=np.float64)
    if recalls.ndim != 1 or recalls.size == 0:
        raise ValueError(f"val_recalls must be a non-empty 1-D array, got shape {recalls.shape}")
    finite = recalls[np.isfinite(recalls)]
    if np.any((finite < 0) | (finite > 1)):
        raise ValueError(f"val_recalls must lie in [0, 1], got min {finite.min()} max {finite.max()}")
    weights = np.maximum(1.0 - np.nan_to_num(recalls, nan=0.0), CDBW_MIN_WEIGHT)
    return weights / weights.mean()


def augment_batch(x: torch.Tensor, generator: torch.Generator, max_shift: int = MAX_SHIFT) -> torch.Tensor:
    """Randomly shift each image of ``x`` ``[B, C, H, W]`` by up to ``max_shift`` pixels along each
    axis (vacated pixels are 0, the value of the zero padding) and flip it horizontally with
    probability 1/2. Same dtype and device as ``x`` (apply it to raw uint8 pixels, before
    normalisation, as ``RandomCrop(padding=4, fill=0)`` does). One gather for the whole batch;
    random numbers come from ``generator`` (on ``x``'s device).
    """
    if x.ndim != 4:
        raise ValueError(f"x must be a batch of images [B, C, H, W], got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    device = x.device
    padded = F.pad(x, (max_shift,) * 4)                       # [B, C, H + 2s, W + 2s], zeros
    offsets = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator, device=device)
    flip = torch.randint(0, 2, (b,), generator=generator, device=device).bool()
    rows = offsets[0, :, None] + torch.arange(h, device=device)                     # [B, H]
    columns = torch.arange(w, device=device).expand(b, w)
    columns = torch.where(flip[:, None], columns.flip(1), columns) + offsets[1, :, None]   # [B, W]
    batch = torch.arange(b, device=device)[:, None, None]
    # Advanced indices separated by a slice put their broadcast shape first: [B, H, W, C].
    return padded[batch, :, rows[:, :, None], columns[:, None, :]].permute(0, 3, 1, 2)


class Normalizer:
    """Maps a raw batch to model input, by dtype:

    * uint8 images ``[B, C, H, W]`` -> ``(x / 255 - mean) / std`` per channel (float32);
    * float feature vectors ``[B, D]`` -> ``(x - mean) / std`` per feature when mean/std are given;
    * float images ``[B, C, H, W]`` are taken as already normalised and pass through.

    With ``channels_last`` 4-D outputs are made NHWC-contiguous.
    """

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None,
                 device: torch.device, channels_last: bool = False):
        self.channels_last = channels_last
        self.mean = self.std = None
        if (mean is None) != (std is None):
            raise ValueError("pass both mean and std, or neither")
        if mean is not None:
            self.mean = torch.as_tensor(tuple(mean), dtype=torch.float32, device=device)
            self.std = torch.as_tensor(tuple(std), dtype=torch.float32, device=device)
            if self.mean.shape != self.std.shape or self.mean.ndim != 1:
                raise ValueError(f"mean and std must be 1-D of equal length, got {tuple(mean)!r}, {tuple(std)!r}")
            if torch.any(self.std <= 0):
                raise ValueError(f"std={tuple(std)!r} must be positive")

    @classmethod
    def for_data(cls, data: "DataSplits", device: torch.device, channels_last: bool = False) -> "Normalizer":
        """The normaliser for ``data`` (its ``mean``/``std``)."""
        return cls(data.mean, data.std, device, channels_last)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            if self.mean is None:
                raise ValueError("x holds uint8 images but no mean/std were given; pass data= or mean=/std=")
            shape = (1, -1) + (1,) * (x.ndim - 2)
            x = x.float() * (1.0 / (255.0 * self.std)).view(shape) - (self.mean / self.std).view(shape)
        elif x.ndim == 2 and self.mean is not None:
            x = (x - self.mean) / self.std
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _autocast(device: torch.device, enabled: bool, cache_enabled: bool = True):
    # A captured CUDA graph must not use autocast's cache of cast weights (PyTorch's CUDA graph
    # notes): the training step passes cache_enabled=False (each weight is cast once per forward
    # anyway, so nothing is lost).
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled,
                          cache_enabled=cache_enabled)


@torch.no_grad()
def _map_batches(fn: Callable[[torch.Tensor], torch.Tensor], model: nn.Module,
                 batches: Iterable[torch.Tensor], normalizer: Normalizer, device: torch.device,
                 bf16: bool) -> torch.Tensor:
    """``cat(fn(normalizer(batch)))`` over ``batches`` with ``model`` in eval mode (then restored)."""
    was_training = model.training
    model.eval()
    try:
        outputs = []
        for batch in batches:
            with _autocast(device, bf16):
                outputs.append(fn(normalizer(batch.to(device, non_blocking=True))).float())
        return torch.cat(outputs) if outputs else torch.empty(0, device=device)
    finally:
        model.train(was_training)


def _tensor_batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be >= 1")
    return (x[start:start + batch_size] for start in range(0, x.shape[0], batch_size))


def _inference_setup(model: nn.Module, data, mean, std, device, channels_last):
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if mean is None and std is None and data is not None:
        return device, Normalizer.for_data(data, device, channels_last)
    return device, Normalizer(mean, std, device, channels_last)


def predict_logits(model: nn.Module, x: torch.Tensor, *, data: "DataSplits | None" = None,
                   mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                   batch_size: int = EVAL_BATCH_SIZE, device: str | torch.device | None = None,
                   bf16: bool = False, channels_last: bool = False) -> torch.Tensor:
    """Logits ``[N, K]`` (float32, on ``device``) of ``model`` in eval mode for raw inputs ``x``.

    ``x``: uint8 images ``[N, C, H, W]`` or float features ``[N, D]``, normalised with ``mean``/``std``
    (default: those of ``data``) as :class:`Normalizer` describes. ``device`` defaults to the
    model's; ``x`` may live elsewhere and is moved batch by batch. The model's train/eval mode is
    restored afterwards.
    """
    device, normalizer = _inference_setup(model, data, mean, std, device, channels_last)
    return _map_batches(model, model, _tensor_batches(x, batch_size), normalizer, device, bf16)


def embeddings(model: nn.Module, x: torch.Tensor, *, data: "DataSplits | None" = None,
               mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
               batch_size: int = EVAL_BATCH_SIZE, device: str | torch.device | None = None,
               bf16: bool = False, channels_last: bool = False) -> torch.Tensor:
    """Penultimate features ``model.embed(x)`` ``[N, F]`` (float32, on ``device``); arguments as
    in :func:`predict_logits`."""
    device, normalizer = _inference_setup(model, data, mean, std, device, channels_last)
    return _map_batches(model.embed, model, _tensor_batches(x, batch_size), normalizer, device, bf16)


def _check_train_indices(train_indices, num_train: int) -> np.ndarray:
    if train_indices is None:
        return np.arange(num_train, dtype=np.int64)
    indices = np.asarray(train_indices)
    if indices.ndim != 1 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"train_indices must be a non-empty 1-D integer array, got shape {indices.shape} "
                         f"dtype {indices.dtype}")
    if indices.min() < 0 or indices.max() >= num_train:
        raise ValueError(f"train_indices must lie in [0, {num_train}), got [{indices.min()}, {indices.max()}]")
    return indices.astype(np.int64)


def epoch_batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` offsets of the batches of one epoch of ``n`` samples (positions in the
    epoch's permutation). A final batch of a single sample joins the previous batch, because
    BatchNorm cannot train on one sample."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"n={n!r} and batch_size={batch_size!r} must be positive")
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, starts[1:] + [n]))


class _InMemoryTrainSet:
    """The training rows as tensors on the device; a batch is a slice of a permutation."""

    def __init__(self, data: "DataSplits", indices: np.ndarray, device: torch.device):
        index = torch.from_numpy(indices)
        self.x = data.x_train[index].to(device)
        self.y = data.y_train[index].to(device)

    def batches(self, order: torch.Tensor, bounds: list[tuple[int, int]]):
        for start, stop in bounds:
            positions = order[start:stop]
            yield positions, self.x[positions], self.y[positions]


class _StreamingTrainSet:
    """A folder-scale training set (``FolderSplits``) read through a ``DataLoader`` in the order of
    the same seeded permutation; items are uint8 images, moved to the device per batch."""

    def __init__(self, data, indices: np.ndarray, device: torch.device, workers: int):
        self.dataset = torch.utils.data.Subset(data.train, indices.tolist())
        self.device, self.workers = device, workers

    def batches(self, order: torch.Tensor, bounds: list[tuple[int, int]]):
        positions = [order[start:stop].tolist() for start, stop in bounds]
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=positions, num_workers=self.workers,
                                             pin_memory=is_cuda(self.device))
        for batch_positions, (x, y) in zip(positions, loader):
            yield (torch.as_tensor(batch_positions, device=self.device),
                   x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))


def _eval_batches(data, split: str, device: torch.device, workers: int,
                  on_device: dict[str, torch.Tensor]) -> Iterable[torch.Tensor]:
    """Batches of raw validation/test inputs; in-memory splits are moved to ``device`` once and
    kept in ``on_device``."""
    x = getattr(data, f"x_{split}", None)
    if isinstance(x, torch.Tensor):
        if split not in on_device:
            on_device[split] = x.to(device)
        return _tensor_batches(on_device[split], EVAL_BATCH_SIZE)
    loader = torch.utils.data.DataLoader(getattr(data, split), batch_size=EVAL_BATCH_SIZE, num_workers=workers,
                                         pin_memory=is_cuda(device))
    return (images for images, _ in loader)


class _TrainStep:
    """One optimisation step on a batch, with the epoch's metric sums kept on the device.

    ``step(positions, x, y)``: ``x`` raw (already augmented) inputs ``[B, ...]``, ``y`` labels
    ``[B]``, ``positions`` their columns ``[B]`` in the per-sample records. Every tensor it writes
    outside the autograd graph (the sums, the per-sample records, the CDB-W ``class_weights``) is
    allocated once and changed in place only, so a CUDA graph of the step stays valid.
    """

    def __init__(self, network: nn.Module, optimizer: torch.optim.Optimizer, normalizer: Normalizer,
                 config: TrainConfig, num_classes: int, n: int, max_batch: int, device: torch.device):
        self.network, self.optimizer, self.normalizer = network, optimizer, normalizer
        self.device, self.bf16, self.cdbw = device, config.bf16, config.cdbw
        self.class_weights = torch.ones(num_classes, device=device)
        self.loss_sum = torch.zeros((), device=device)
        self.hit_sum = torch.zeros((), dtype=torch.int64, device=device)
        self.record = config.record_per_sample
        self.correct = torch.zeros(n if self.record else 0, dtype=torch.bool, device=device)
        self.target_prob = torch.zeros(n if self.record else 0, dtype=torch.float32, device=device)
        self.rows = torch.arange(max_batch, device=device)

    def reset(self) -> None:
        """Zero the epoch's sums and records (in place)."""
        for tensor in (self.loss_sum, self.hit_sum, self.correct, self.target_prob):
            tensor.zero_()

    def __call__(self, positions: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> None:
        with _autocast(self.device, self.bf16, cache_enabled=False):
            logits = self.network(self.normalizer(xb))
        logits = logits.float()
        losses = F.cross_entropy(logits, yb, reduction="none")
        loss = (losses * self.class_weights[yb]).mean() if self.cdbw else losses.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            hits = logits.argmax(1) == yb
            self.loss_sum += losses.sum()
            self.hit_sum += hits.sum()
            if self.record:
                self.correct[positions] = hits
                self.target_prob[positions] = torch.softmax(logits, 1)[self.rows[: len(yb)], yb]


class _GraphedStep:
    """Runs a :class:`_TrainStep` on full-size batches through static input buffers and, on CUDA,
    as a replayed CUDA graph.

    The first ``WARMUP`` full batches run eagerly on a side stream (cuDNN autotuning, momentum
    buffers), as PyTorch's whole-network capture recipe asks; the next one is captured and then
    replayed, and so is every later full batch. The learning rate is a constant of the captured
    optimiser step, so a new rate means a new capture. A batch of another size (an epoch's last)
    runs the step eagerly on the same parameters and optimiser state. On the CPU the static-buffer
    path runs eagerly (nothing to capture), so CPU tests exercise all but the capture.
    """

    WARMUP = 3

    def __init__(self, step: _TrainStep, batch_size: int):
        self.step, self.batch_size = step, batch_size
        self.static: tuple[torch.Tensor, ...] | None = None
        self.graph: "torch.cuda.CUDAGraph | None" = None
        self.graph_lr: float | None = None
        self.warm_steps = 0
        self.captures = 0
        self.failed = False

    def __call__(self, positions: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> None:
        if len(yb) != self.batch_size or self.failed:
            self.step(positions, xb, yb)
            return
        if self.static is None:
            self.static = (positions.clone(), xb.clone(), yb.clone())
        else:
            for buffer, value in zip(self.static, (positions, xb, yb)):
                buffer.copy_(value)
        if not is_cuda(self.step.device):
            self.step(*self.static)
        elif self.warm_steps < self.WARMUP:
            self._side_stream_step()
        else:
            lr = self.step.optimizer.param_groups[0]["lr"]
            if self.graph is None or self.graph_lr != lr:
                self._capture(lr)
            if self.graph is None:
                self.step(*self.static)
            else:
                self.graph.replay()

    def _side_stream_step(self) -> None:
        current = torch.cuda.current_stream(self.step.device)
        side = torch.cuda.Stream(self.step.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            self.step(*self.static)
        current.wait_stream(side)
        self.warm_steps += 1

    def _capture(self, lr: float) -> None:
        self.graph = None  # frees the previous graph's memory pool
        graph = torch.cuda.CUDAGraph()
        self.step.optimizer.zero_grad(set_to_none=True)  # gradients are allocated inside the graph
        try:
            with torch.cuda.graph(graph):
                self.step(*self.static)  # recorded, not run: replayed by the caller
        except RuntimeError as error:
            warnings.warn(f"CUDA graph capture of the training step failed ({error}); "
                          "training on with eager steps", RuntimeWarning, stacklevel=3)
            self.failed = True
            return
        self.graph, self.graph_lr = graph, lr
        self.captures += 1


def default_loader_workers() -> int:
    """DataLoader worker processes for streamed datasets: all CPUs but one, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


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
    indices = _check_train_indices(train_indices, data.num_train)
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

    train_set = (_InMemoryTrainSet(data, indices, device) if in_memory
                 else _StreamingTrainSet(data, indices, device, workers))
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
    step = _TrainStep(network, optimizer, normalizer, config, num_classes, n,
                      max(stop - start for start, stop in bounds), device)
    run_step = _GraphedStep(step, config.batch_size) if config.cuda_graphs else step

    bar = tqdm(range(epochs), desc=f"train {n} samples", unit="epoch", disable=not progress)
    for epoch in bar:
        epoch_started = time.perf_counter()
        lr = learning_rate(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        order = torch.randperm(n, generator=generator, device=device)
        step.reset()
        for positions, xb, yb in train_set.batches(order, bounds):
            if config.augment:
                xb = augment_batch(xb, generator)
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
                logits = _map_batches(network, network, _eval_batches(data, split, device, workers, eval_inputs),
                                      normalizer, device, config.bf16)
                predictions[split] = logits.argmax(1).cpu().numpy()
                recalls[split][epoch] = class_recalls(labels[split], predictions[split], num_classes)
                row[f"{split}_accuracy"] = float(np.mean(predictions[split] == labels[split]))
                row[f"{split}_worst_recall"] = float(recalls[split][epoch].min())
            else:
                row[f"{split}_accuracy"] = row[f"{split}_worst_recall"] = np.nan
        if config.cdbw:
            step.class_weights.copy_(torch.as_tensor(cdbw_class_weights(recalls["val"][epoch]),
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


# --------------------------------------------------------------------------- command line


def paper_drop_epochs(epochs: int) -> tuple[int, ...]:
    """Table 1's schedule shape: drops at 50% and 75% of training (160 epochs -> (80, 120))."""
    return tuple(sorted({e for e in (epochs // 2, (3 * epochs) // 4) if 0 < e < epochs}))


def _parse_drop_epochs(text: str, epochs: int) -> tuple[int, ...]:
    if text == "auto":
        return paper_drop_epochs(epochs)
    if text == "none":
        return ()
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--drop-epochs={text!r} must be 'auto', 'none' or comma-separated integers") from None


def recall_table(class_names: Sequence[str], recalls: np.ndarray) -> str:
    """Per-class recalls as aligned text lines, worst class marked."""
    worst = int(np.argmin(recalls))
    width = max(len(name) for name in class_names)
    return "\n".join(f"  {name:<{width}}  {100 * r:6.2f}%{'  <- worst' if k == worst else ''}"
                     for k, (name, r) in enumerate(zip(class_names, recalls)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dropkit.train``: train one model and print test accuracy and per-class recalls."""
    parser = argparse.ArgumentParser(prog="python -m dropkit.train", description=main.__doc__)
    parser.add_argument("--dataset", default="fashion-mnist", help="a dropkit.data dataset name")
    parser.add_argument("--root", default=None, help="dataset directory (default: the loader's search path)")
    parser.add_argument("--model", default="mlp", choices=MODELS)
    parser.add_argument("--pretrained-path", default=None, help="ResNet-50 state_dict file")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--momentum", type=float, default=TrainConfig.momentum)
    parser.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--drop-epochs", default="auto",
                        help="'auto' (50%% and 75%% of training, as in Table 1), 'none', or e.g. '80,120'")
    parser.add_argument("--drop-factor", type=float, default=TrainConfig.drop_factor)
    parser.add_argument("--augment", action="store_true", help="random <= 4 px shifts and horizontal flips")
    parser.add_argument("--cdbw", action="store_true", help="CDB-W class weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=None, help="train on a random subset of this size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                        help="replay training steps as CUDA graphs (default: on for a CUDA device "
                             "unless --compile)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from dropkit.data import load_dataset

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, root=args.root)
    config = TrainConfig(
        epochs=args.epochs, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        batch_size=args.batch_size, drop_epochs=_parse_drop_epochs(args.drop_epochs, args.epochs),
        drop_factor=args.drop_factor, augment=args.augment, cdbw=args.cdbw, seed=args.seed,
        device=args.device, channels_last=args.channels_last, bf16=args.bf16, compile=args.compile,
        cuda_graphs=(default_cuda_graphs(args.device, args.compile)
                     if args.cuda_graphs is None else args.cuda_graphs),
    )
    indices = None
    if args.train_size is not None:
        if not 1 < args.train_size <= data.num_train:
            raise ValueError(f"--train-size={args.train_size} must lie in [2, {data.num_train}]")
        indices = np.sort(np.random.default_rng(args.seed).permutation(data.num_train)[: args.train_size])
    model: str | nn.Module = args.model
    if args.pretrained_path is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            model = build_model(args.model, num_classes=data.num_classes, input_shape=tuple(data.input_shape),
                                pretrained_path=args.pretrained_path)
    print(f"{data!r}\n{config}\nthreads={torch.get_num_threads()}", flush=True)
    result = train(data, model, config, train_indices=indices, progress=not args.no_progress)
    final = result.history.iloc[-1]
    epoch_seconds = result.history["seconds"].mean()
    print(f"trained {len(result.train_indices)} samples for {config.epochs} epochs in {result.seconds:.1f} s "
          f"({epoch_seconds:.2f} s/epoch incl. evaluation)")
    print(f"test accuracy {100 * final['test_accuracy']:.2f}%  (validation {100 * final['val_accuracy']:.2f}%)")
    print(f"worst class: {data.class_names[int(np.argmin(result.test_recalls))]} "
          f"{100 * result.test_recalls.min():.2f}%\nper-class test recalls:")
    print(recall_table(data.class_names, result.test_recalls))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
