"""The configuration of one training run and what it returns: :class:`TrainConfig`, the step
schedule (:func:`learning_rate`), CDB-W class weights, :class:`TrainResult`, and the one test of a
CUDA run (:func:`is_cuda`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

CDBW_MIN_WEIGHT = 1e-3        # floor on 1 - r_k before renormalisation: no class ever weighs 0
#: CDB-W weight rules of :func:`cdbw_class_weights`.
CDBW_WEIGHT_RULES: tuple[str, ...] = ("floored", "paper", "authors")
#: The CDB-W rules whose loss is each batch's weighted mean, ``sum_i w_{y_i} l_i / sum_i w_{y_i}``
#: (``F.cross_entropy(..., weight=w)``), instead of ``mean_i w_{y_i} l_i``: see :func:`cdbw_batch_loss`.
CDBW_BATCH_NORMALISED_RULES: tuple[str, ...] = ("authors",)


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run.

    epochs: number of passes over the training subset. lr: initial learning rate.
    drop_epochs: 0-based epoch indices from which the learning rate is multiplied by
    ``drop_factor`` once more (Table 1's "80/120" with 160 epochs is ``(80, 120)``).
    augment: random shifts of at most ``max_shift`` px (zero padding; the paper's 4 by default)
    and, with ``hflip`` (default), horizontal flips, per sample, on the device.
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
    max_shift: int = 4
    hflip: bool = True
    cdbw: bool = False
    seed: int = 0
    device: str = "cpu"
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    record_per_sample: bool = False
    eval_every_epoch: bool = True
    last_epoch_fraction: float = 1.0
    cdbw_weights: str = "floored"

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
        if isinstance(self.max_shift, bool) or not isinstance(self.max_shift, int) or self.max_shift < 0:
            raise ValueError(f"max_shift={self.max_shift!r} must be an integer >= 0 (pixels)")
        if not isinstance(self.hflip, bool):
            raise ValueError(f"hflip={self.hflip!r} must be True or False")
        if not 0 < self.last_epoch_fraction <= 1:
            raise ValueError(f"last_epoch_fraction={self.last_epoch_fraction!r} must lie in (0, 1]")
        if self.cdbw_weights not in CDBW_WEIGHT_RULES:
            raise ValueError(f"cdbw_weights={self.cdbw_weights!r} is not one of {CDBW_WEIGHT_RULES}")
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
    prefixes: the results of the shorter trainings asked of :func:`dropkit.train.train` as
    ``prefixes`` (in that order), each as that training alone returns it (``model`` a copy of the
    snapshot, ``seconds`` the time until the snapshot, the timing columns of ``history`` aside).
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
    prefixes: tuple["TrainResult", ...] = ()


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """Learning rate of 0-based ``epoch``: ``lr * drop_factor ** #{d in drop_epochs: d <= epoch}``."""
    if epoch < 0:
        raise ValueError(f"epoch={epoch!r} must be >= 0")
    drops = sum(1 for d in config.drop_epochs if d <= epoch)
    return config.lr * config.drop_factor ** drops


def last_epoch_batches(config: TrainConfig, batches_per_epoch: int) -> int:
    """Batches of ``config``'s last epoch: the first ``round(last_epoch_fraction * B)`` (at least 1)
    of the ``B = batches_per_epoch`` batches of that epoch's permutation."""
    return max(1, round(config.last_epoch_fraction * batches_per_epoch))


def training_steps(config: TrainConfig, batches_per_epoch: int) -> int:
    """Optimisation steps of a training under ``config`` with ``batches_per_epoch`` batches in a
    whole epoch: ``(epochs - 1) * B`` plus :func:`last_epoch_batches`."""
    return (config.epochs - 1) * batches_per_epoch + last_epoch_batches(config, batches_per_epoch)


#: The :class:`TrainConfig` fields in which a prefix may differ from the training it is taken from
#: (and ``record_per_sample``, one way: a training without records can be taken from one with them).
PREFIX_FREE_FIELDS: tuple[str, ...] = ("epochs", "last_epoch_fraction", "drop_epochs")


def prefix_mismatch(short: TrainConfig, long: TrainConfig) -> str | None:
    """Why a training under ``short`` is not a prefix of one under ``long``, or None when it is.

    It is one when, on the same data, training rows and initial model, ``short``'s model after
    its last step is ``long``'s model after its ``training_steps(short, B)``-th step (the same
    arithmetic, so bit for bit on the CPU), for every number ``B`` of batches per epoch:

    1. every field but :data:`PREFIX_FREE_FIELDS` is equal (the same seed, so the same model
       initialisation and the same permutation/augmentation generator; the same batch size,
       optimiser, CDB-W, augmentation, device, speed options and evaluation), except that
       ``short`` may keep no per-sample records where ``long`` keeps them (records are read from
       the training pass's logits after the step, and change no parameter: the snapshot drops
       them);
    2. ``short`` is no longer: ``(epochs, last_epoch_fraction)`` of ``short`` is at most that of
       ``long`` in lexicographic order (then ``training_steps(short, B) <= training_steps(long, B)``
       for every ``B``, and a cut last epoch of ``short`` is a leading part of the same epoch of
       ``long``);
    3. the same learning rate at every step of ``short``:
       ``learning_rate(short, e) == learning_rate(long, e)`` for every epoch ``e < short.epochs``
       (a drop of ``long`` at or after ``short.epochs`` does not matter; one before it must be
       one of ``short``'s too, and ``short`` may have none that ``long`` lacks there).
    """
    free = {name: getattr(long, name) for name in PREFIX_FREE_FIELDS}
    if long.record_per_sample:  # then short may keep records or not
        free["record_per_sample"] = short.record_per_sample
    different = [f.name for f in dataclasses.fields(TrainConfig)
                 if f.name not in free and getattr(short, f.name) != getattr(long, f.name)]
    if different:
        return f"they differ in {', '.join(different)}"
    if (short.epochs, short.last_epoch_fraction) > (long.epochs, long.last_epoch_fraction):
        return (f"it is longer ({short.epochs} epochs, the last cut to {short.last_epoch_fraction:g}) than "
                f"the other ({long.epochs} epochs, the last cut to {long.last_epoch_fraction:g})")
    rates = [e for e in range(short.epochs) if learning_rate(short, e) != learning_rate(long, e)]
    if rates:
        return (f"the learning rate of epoch {rates[0]} differs ({learning_rate(short, rates[0]):g} "
                f"vs {learning_rate(long, rates[0]):g}: drop epochs {short.drop_epochs} vs {long.drop_epochs})")
    return None


def cdbw_class_weights(val_recalls: Sequence[float] | np.ndarray, rule: str = "floored",
                       class_sizes: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """CDB-W class weights ``[K]`` from validation recalls ``r`` ``[K]`` (values in [0, 1]).

    A NaN recall (class absent from the validation split) counts as 0.

    * ``rule="floored"``: ``w_k = max(1 - r_k, CDBW_MIN_WEIGHT)``, rescaled to mean 1 over the
      classes; the floor keeps every class at a positive weight even when all recalls are 1.
    * ``rule="paper"``: the paper's Section 4, ``w_{k,t} = 1 - r_{k,t}``, "precisely the
      proportions used by DRoP", normalised like DRoP's quotas ``d_k = d (1 - r_k) / Z`` with
      ``Z = sum_k (1 - r_k) N_k / N``: ``w_k = (1 - r_k) / Z`` over the trained-on class sizes
      ``class_sizes`` ``[K]`` (``N_k``), so the mean weight per training sample is 1. A class at
      recall 1 weighs 0; if every present class is at recall 1 (``Z = 0``) all weights are 1.
    * ``rule="authors"``: the authors' public code (``avysogorets/fair-data-pruning``,
      ``trainer.py``): ``w_k = 1 - r_k``, no floor and no normalisation (``class_sizes`` is not
      used); a class at recall 1 weighs 0. The training divides each batch's weighted loss by the
      batch's weight sum (:func:`cdbw_batch_loss`), which is where the scale is set.
    """
    recalls = np.asarray(val_recalls, dtype=np.float64)
    if recalls.ndim != 1 or recalls.size == 0:
        raise ValueError(f"val_recalls must be a non-empty 1-D array, got shape {recalls.shape}")
    finite = recalls[np.isfinite(recalls)]
    if np.any((finite < 0) | (finite > 1)):
        raise ValueError(f"val_recalls must lie in [0, 1], got min {finite.min()} max {finite.max()}")
    errors = 1.0 - np.nan_to_num(recalls, nan=0.0)
    if rule == "floored":
        weights = np.maximum(errors, CDBW_MIN_WEIGHT)
        return weights / weights.mean()
    if rule == "authors":
        return errors
    if rule != "paper":
        raise ValueError(f"rule={rule!r} is not one of {CDBW_WEIGHT_RULES}")
    if class_sizes is None:
        raise ValueError("rule='paper' needs the trained-on class sizes N_k (class_sizes)")
    sizes = np.asarray(class_sizes, dtype=np.float64)
    if sizes.shape != recalls.shape or (sizes < 0).any() or sizes.sum() <= 0:
        raise ValueError(f"class_sizes must be {recalls.shape} non-negative counts, not all 0")
    z = float((errors * sizes).sum() / sizes.sum())
    return errors / z if z > 0 else np.ones_like(errors)


def cdbw_batch_loss(logits: torch.Tensor, labels: torch.Tensor, losses: torch.Tensor,
                    class_weights: torch.Tensor, rule: str = "floored") -> torch.Tensor:
    """The CDB-W loss of one batch (a 0-d tensor): ``logits`` ``[B, K]``, ``labels`` ``[B]``
    (int64), ``losses`` ``[B]`` the samples' cross-entropies ``l_i`` (nats,
    ``F.cross_entropy(logits, labels, reduction="none")``), ``class_weights`` ``[K]`` (from
    :func:`cdbw_class_weights` under ``rule``).

    * ``"floored"``, ``"paper"``: ``mean_i w_{y_i} l_i`` (the weights carry the normalisation).
    * ``"authors"`` (:data:`CDBW_BATCH_NORMALISED_RULES`): the batch's weighted mean
      ``sum_i w_{y_i} l_i / sum_i w_{y_i}``, computed as ``F.cross_entropy(logits, labels,
      weight=class_weights)`` with the default mean reduction, bit for bit what the authors'
      ``trainer.py`` computes. Edge case: a batch whose samples all weigh 0 (every class in it at
      validation recall 1). There torch returns 0/0 = NaN, with NaN gradients that the optimiser
      step would write into every parameter; here such a batch's loss is 0 with zero gradients
      (the SGD step that follows still applies momentum and weight decay). Decided on the device,
      with no host synchronisation, so the step stays capturable as a CUDA graph.
    """
    import torch.nn.functional as F

    if rule not in CDBW_WEIGHT_RULES:
        raise ValueError(f"rule={rule!r} is not one of {CDBW_WEIGHT_RULES}")
    if rule not in CDBW_BATCH_NORMALISED_RULES:
        return (losses * class_weights[labels]).mean()
    weighed = class_weights[labels].sum() > 0
    safe = torch.where(weighed, class_weights, torch.ones_like(class_weights))
    return F.cross_entropy(logits, labels, weight=safe) * weighed
