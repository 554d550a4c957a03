"""dropkit's training loop with its batch gather against the same loop with the gather it replaced.

An in-memory training set (``dropkit.train.batches.InMemoryTrainSet``) hands out each batch as
the rows of a seeded permutation. It gathers them with ``index_select``; until session 8 it used
advanced indexing (``x[positions]``), the same copy, much slower on the CPU for a 4-D uint8
tensor. This script trains dropkit's real loop (``dropkit.train.train``) with both, on the real
Fashion-MNIST training set, for each bias-benchmark setup of the ``default`` profile (the MLP and
the small CNN, ``--setup`` picks one) with the profile's settings (model, batch size, lr, weight
decay, augmentation, NHWC, one torch thread), ``--train-size`` images for one epoch, in rounds that
alternate the order (so drift of a shared machine hits both alike). It checks that both train
bit for bit alike (equal final parameters; it exits 1 if not) and prints the median training
seconds (``history.train_seconds``: the training pass only), the rounds, and per setup the ratio
line ``<model>_batch_gather_speedup: <advanced indexing / index_select>x (target 1x)``; the gather
is worth keeping only where that ratio is above 1 beyond the spread of the rounds.

    python benchmarks/batch_gather.py            # both setups, 20,000 images, 5 rounds (~2 min)
    python benchmarks/batch_gather.py --quick    # CI: 2,000 images, 2 rounds (too short to judge)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loop_rounds import (add_round_options, alternate_rounds, parse_round_options,  # noqa: E402 (this folder)
                         print_rounds, same_parameters, setup_training)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_round_options(parser)
    return parse_round_options(parser, argv)


def advanced_indexing_batches(train_set, order, bounds):
    """The batches as ``InMemoryTrainSet.batches`` made them before session 8."""
    for start, stop in bounds:
        positions = order[start:stop]
        yield positions, train_set.x[positions], train_set.y[positions]


def measure_setup(profile, setup, args) -> tuple[dict[str, list[float]], bool]:
    """Training seconds of one epoch per variant (``rounds`` values each), and whether both
    variants ended with equal parameters."""
    from dropkit.train import train
    from dropkit.train.batches import InMemoryTrainSet

    data, indices, config = setup_training(profile, setup, args.train_size)
    variants = {"index_select": InMemoryTrainSet.batches, "advanced_indexing": advanced_indexing_batches}

    def train_variant(name):
        InMemoryTrainSet.batches = variants[name]
        return train(data, setup.model, config, train_indices=indices, progress=False)

    train(data, setup.model, config, train_indices=indices[:4 * setup.batch_size], progress=False)  # warm-up
    try:
        seconds, states = alternate_rounds(list(variants), args.rounds, train_variant)
    finally:
        InMemoryTrainSet.batches = variants["index_select"]
    return seconds, same_parameters(states["advanced_indexing"], states["index_select"])


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from dropkit.profiles import get_profile

    from train_throughput import setup_names  # this folder's twin script: the same --setup choice

    profile = get_profile(args.profile)
    lines, all_same = [], True
    for name in setup_names(args):
        setup = profile.setup(name)
        seconds, same = measure_setup(profile, setup, args)
        all_same &= same
        print(f"{name}: model {setup.model}, batch {setup.batch_size}, {args.train_size} images x 1 epoch, "
              f"{args.rounds} rounds, {profile.threads} thread(s), augmentation {'on' if setup.augment else 'off'}; "
              f"final parameters {'equal' if same else 'DIFFERENT'}")
        median = print_rounds(seconds)
        lines.append(f"{setup.model}_batch_gather_speedup: "
                     f"{median['advanced_indexing'] / median['index_select']:.2f}x (target 1x)")
    for line in lines:
        print(line)
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
