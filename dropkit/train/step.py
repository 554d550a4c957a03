"""One optimisation step (:class:`TrainStep`) and its replay as a CUDA graph through static
input buffers (:class:`GraphedStep`)."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from dropkit.train.config import TrainConfig, cdbw_batch_loss, is_cuda
from dropkit.train.inference import Normalizer, bf16_autocast


class TrainStep:
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
        self.cdbw_rule = config.cdbw_weights
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
        with bf16_autocast(self.device, self.bf16, cache_enabled=False):
            logits = self.network(self.normalizer(xb))
        logits = logits.float()
        losses = F.cross_entropy(logits, yb, reduction="none")
        loss = (cdbw_batch_loss(logits, yb, losses, self.class_weights, self.cdbw_rule) if self.cdbw
                else losses.mean())
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


class GraphedStep:
    """Runs a :class:`TrainStep` on full-size batches through static input buffers and, on CUDA,
    as a replayed CUDA graph.

    The first ``WARMUP`` full batches run eagerly on a side stream (cuDNN autotuning, momentum
    buffers), as PyTorch's whole-network capture recipe asks; the next one is captured and then
    replayed, and so is every later full batch. The learning rate is a constant of the captured
    optimiser step, so a new rate means a new capture. A batch of another size (an epoch's last)
    runs the step eagerly on the same parameters and optimiser state. On the CPU the static-buffer
    path runs eagerly (nothing to capture), so CPU tests exercise all but the capture.
    """

    WARMUP = 3

    def __init__(self, step: TrainStep, batch_size: int):
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
