"""A trained model applied to raw inputs: normalisation (:class:`Normalizer`), logits and
penultimate-layer embeddings in eval mode, batch by batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from dropkit.data import DataSplits

EVAL_BATCH_SIZE = 1024


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


def bf16_autocast(device: torch.device, enabled: bool, cache_enabled: bool = True):
    """bfloat16 autocast on ``device`` when ``enabled`` (a no-op context otherwise)."""
    # A captured CUDA graph must not use autocast's cache of cast weights (PyTorch's CUDA graph
    # notes): the training step passes cache_enabled=False (each weight is cast once per forward
    # anyway, so nothing is lost).
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled,
                          cache_enabled=cache_enabled)


@torch.no_grad()
def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], model: nn.Module,
                batches: Iterable[torch.Tensor], normalizer: Normalizer, device: torch.device,
                bf16: bool) -> torch.Tensor:
    """``cat(fn(normalizer(batch)))`` over ``batches`` with ``model`` in eval mode (then restored)."""
    was_training = model.training
    model.eval()
    try:
        outputs = []
        for batch in batches:
            with bf16_autocast(device, bf16):
                outputs.append(fn(normalizer(batch.to(device, non_blocking=True))).float())
        return torch.cat(outputs) if outputs else torch.empty(0, device=device)
    finally:
        model.train(was_training)


def tensor_batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of ``x`` of ``batch_size`` rows (the last one shorter)."""
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
    return map_batches(model, model, tensor_batches(x, batch_size), normalizer, device, bf16)


def embeddings(model: nn.Module, x: torch.Tensor, *, data: "DataSplits | None" = None,
               mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
               batch_size: int = EVAL_BATCH_SIZE, device: str | torch.device | None = None,
               bf16: bool = False, channels_last: bool = False) -> torch.Tensor:
    """Penultimate features ``model.embed(x)`` ``[N, F]`` (float32, on ``device``); arguments as
    in :func:`predict_logits`."""
    device, normalizer = _inference_setup(model, data, mean, std, device, channels_last)
    return map_batches(model.embed, model, tensor_batches(x, batch_size), normalizer, device, bf16)
