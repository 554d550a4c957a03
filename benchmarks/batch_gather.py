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
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--setup", default=None, help="one setup of the profile's bias benchmark (default: all)")
    parser.add_argument("--train-size", type=int, default=20000, help="training images per epoch (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each variant (default 5)")
    parser.add_argument("--quick", action="store_true", help="2,000 images, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_size, args.rounds = 2000, 2
    if args.train_size < 2 or args.rounds < 1:
        parser.error("--train-size must be >= 2 and --rounds >= 1")
    return args


def advanced_indexing_batches(train_set, order, bounds):
    """The batches as ``InMemoryTrainSet.batches`` made them before session 8."""
    for start, stop in bounds:
        positions = order[start:stop]
        yield positions, train_set.x[positions], train_set.y[positions]


def measure_setup(profile, setup, args) -> tuple[dict[str, list[float]], bool]:
    """Training seconds of one epoch per variant (``rounds`` values each), and whether both
    variants ended with equal parameters."""
    import numpy as np
    import torch

    from dropkit.data import load_dataset
    from dropkit.train import TrainConfig, train
    from dropkit.train.batches import InMemoryTrainSet

    torch.set_num_threads(profile.threads)
    data = load_dataset(setup.dataset)
    indices = np.sort(np.random.default_rng(0).permutation(data.num_train)[:min(args.train_size, data.num_train)])
    config = TrainConfig(epochs=1, lr=setup.lr, batch_size=setup.batch_size, weight_decay=setup.weight_decay,
                         augment=setup.augment, max_shift=setup.max_shift, hflip=setup.hflip,
                         channels_last=setup.channels_last, eval_every_epoch=False, seed=0)
    variants = {"index_select": InMemoryTrainSet.batches, "advanced_indexing": advanced_indexing_batches}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    states: dict[str, dict] = {}
    train(data, setup.model, config, train_indices=indices[:4 * setup.batch_size], progress=False)  # warm-up
    try:
        for round_index in range(args.rounds):
            names = list(variants) if round_index % 2 == 0 else list(variants)[::-1]
            for name in names:
                InMemoryTrainSet.batches = variants[name]
                result = train(data, setup.model, config, train_indices=indices, progress=False)
                seconds[name].append(float(result.history["train_seconds"].sum()))
                states[name] = result.model.state_dict()
    finally:
        InMemoryTrainSet.batches = variants["index_select"]
    same = all(torch.equal(states["index_select"][key], states["advanced_indexing"][key])
               for key in states["index_select"])
    return seconds, same


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
        median = {variant: statistics.median(values) for variant, values in seconds.items()}
        print(f"{name}: model {setup.model}, batch {setup.batch_size}, {args.train_size} images x 1 epoch, "
              f"{args.rounds} rounds, {profile.threads} thread(s), augmentation {'on' if setup.augment else 'off'}; "
              f"final parameters {'equal' if same else 'DIFFERENT'}")
        for variant, values in seconds.items():
            print(f"  {variant:17s} median {median[variant]:7.3f} s  (rounds: {', '.join(f'{v:.3f}' for v in values)})")
        lines.append(f"{setup.model}_batch_gather_speedup: "
                     f"{median['advanced_indexing'] / median['index_select']:.2f}x (target 1x)")
    for line in lines:
        print(line)
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
