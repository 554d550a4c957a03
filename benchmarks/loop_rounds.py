"""dropkit's real training loop in several variants, timed in rounds that alternate their order:
the part that ``batch_gather.py`` and ``sgd_update.py`` share (not a benchmark itself).

Each variant trains ``dropkit.train.train`` on the same real images with one bias-benchmark setup's
settings (model, batch size, lr, weight decay, augmentation with its shifts and flips, NHWC) on the
profile's torch threads. Round ``r`` runs the variants in their order when ``r`` is even and in
reverse when odd, so drift of a shared machine hits all alike.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Callable, Sequence


def add_round_options(parser: argparse.ArgumentParser) -> None:
    """``--profile``, ``--setup``, ``--train-size``, ``--rounds`` and ``--quick``."""
    parser.add_argument("--profile", default="default")
    parser.add_argument("--setup", default=None, help="one setup of the profile's bias benchmark (default: all)")
    parser.add_argument("--train-size", type=int, default=20000, help="training images per epoch (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each variant (default 5)")
    parser.add_argument("--quick", action="store_true", help="2,000 images, 2 rounds")


def parse_round_options(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """``parser``'s arguments, with ``--quick`` applied and the sizes checked."""
    args = parser.parse_args(argv)
    if args.quick:
        args.train_size, args.rounds = 2000, 2
    if args.train_size < 2 or args.rounds < 1:
        parser.error("--train-size must be >= 2 and --rounds >= 1")
    return args


def setup_training(profile, setup, train_size: int, epochs: int = 1):
    """``(data, indices, config)``: the setup's dataset, ``train_size`` of its training images
    (a seeded sample, sorted) and a ``TrainConfig`` of ``epochs`` epochs at the setup's settings,
    without learning-rate drops or per-epoch evaluation. Sets the profile's torch threads."""
    import numpy as np
    import torch

    from dropkit.data import load_dataset
    from dropkit.train import TrainConfig

    torch.set_num_threads(profile.threads)
    data = load_dataset(setup.dataset)
    indices = np.sort(np.random.default_rng(0).permutation(data.num_train)[:min(train_size, data.num_train)])
    config = TrainConfig(epochs=epochs, drop_epochs=(), lr=setup.lr, batch_size=setup.batch_size,
                         weight_decay=setup.weight_decay, augment=setup.augment, max_shift=setup.max_shift,
                         hflip=setup.hflip, channels_last=setup.channels_last, eval_every_epoch=False, seed=0)
    return data, indices, config


def alternate_rounds(variants: Sequence[str], rounds: int, train_variant: Callable[[str], object]
                     ) -> tuple[dict[str, list[float]], dict[str, dict]]:
    """Train every variant ``rounds`` times, alternating the order, with ``train_variant(name)``
    (a ``dropkit.train.TrainResult``). Returns the last epoch's training seconds
    (``history.train_seconds``: the training pass only) of each round per variant, and each
    variant's final parameters (``state_dict``) of its last round."""
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    states: dict[str, dict] = {}
    for round_index in range(rounds):
        for name in (variants if round_index % 2 == 0 else variants[::-1]):
            result = train_variant(name)
            seconds[name].append(float(result.history["train_seconds"].iloc[-1]))
            states[name] = result.model.state_dict()
    return seconds, states


def same_parameters(state: dict, reference: dict) -> bool:
    """Whether two ``state_dict``s hold equal tensors (bit for bit) under the same names."""
    import torch

    return state.keys() == reference.keys() and all(torch.equal(state[key], reference[key]) for key in reference)


def print_rounds(seconds: dict[str, list[float]], notes: dict[str, str] | None = None) -> dict[str, float]:
    """Print each variant's median and rounds (with its note, if any); return the medians."""
    median = {variant: statistics.median(values) for variant, values in seconds.items()}
    width = max(len(variant) for variant in seconds)
    for variant, values in seconds.items():
        note = (notes or {}).get(variant, "")
        print(f"  {variant:{width}s} median {median[variant]:7.3f} s  "
              f"(rounds: {', '.join(f'{v:.3f}' for v in values)}){'  ' + note if note else ''}")
    return median
