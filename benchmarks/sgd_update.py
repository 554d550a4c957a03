"""dropkit's training loop with torch's three SGD implementations (and, with ``--compile``, the
network under ``torch.compile``): how much faster each trains, and whether it trains bit for bit
like the loop the shipped rows come from.

``dropkit.train.train`` builds ``torch.optim.SGD(params, lr, momentum, weight_decay)`` with no
implementation flag, which on the CPU is torch's per-parameter ("for-loop") update. Torch also
has a multi-tensor update (``foreach=True``) and a fused one (``fused=True``: one pass over each
parameter instead of four). Issue 18 (item 3) asks for a cheaper step "each kept only if a
benchmark shows it"; an update that does not reproduce the for-loop's rounding changes every
shipped number, so this script reports both the speed and the equality of the final parameters.

For each bias-benchmark setup of the ``default`` profile (the MLP and the small CNN; ``--setup``
picks one), with the profile's settings (model, batch size, lr, weight decay, augmentation, NHWC,
one torch thread), it trains ``--train-size`` real Fashion-MNIST images in rounds that alternate
the variants' order (so drift of a shared machine hits all alike), and prints the median training
seconds (``history.train_seconds``, the training pass only), the rounds, whether each variant's
final parameters equal the for-loop's, and the ratio lines
``<model>_<variant>_sgd_speedup: <for-loop / variant>x (target 1x)`` (``<model>_compile_speedup``
for the compiled network). With ``--compile`` every
variant trains 2 epochs and only the second is timed (the first holds the compilation).

    python benchmarks/sgd_update.py              # both setups, 20,000 images, 5 rounds (~4 min)
    python benchmarks/sgd_update.py --quick      # CI: 2,000 images, 2 rounds (too short to judge)
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Variant name -> the ``torch.optim.SGD`` keyword arguments it adds (None: ``torch.compile``).
SGD_VARIANTS: dict[str, dict | None] = {"for-loop": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--setup", default=None, help="one setup of the profile's bias benchmark (default: all)")
    parser.add_argument("--train-size", type=int, default=20000, help="training images per epoch (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each variant (default 5)")
    parser.add_argument("--compile", action="store_true",
                        help="also the for-loop update with the network under torch.compile (2 epochs, the 2nd timed)")
    parser.add_argument("--quick", action="store_true", help="2,000 images, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_size, args.rounds = 2000, 2
    if args.train_size < 2 or args.rounds < 1:
        parser.error("--train-size must be >= 2 and --rounds >= 1")
    return args


def measure_setup(profile, setup, args) -> tuple[dict[str, list[float]], dict[str, bool]]:
    """Training seconds per variant (``rounds`` values each, the last epoch's), and per variant
    whether its final parameters equal the for-loop update's."""
    import dataclasses

    import numpy as np
    import torch

    from dropkit.data import load_dataset
    from dropkit.train import TrainConfig, train

    torch.set_num_threads(profile.threads)
    data = load_dataset(setup.dataset)
    indices = np.sort(np.random.default_rng(0).permutation(data.num_train)[:min(args.train_size, data.num_train)])
    config = TrainConfig(epochs=2 if args.compile else 1, drop_epochs=(), lr=setup.lr,
                         batch_size=setup.batch_size, weight_decay=setup.weight_decay, augment=setup.augment,
                         max_shift=setup.max_shift, hflip=setup.hflip, channels_last=setup.channels_last,
                         eval_every_epoch=False, seed=0)
    variants = dict(SGD_VARIANTS, **({"compile": None} if args.compile else {}))
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    states: dict[str, dict] = {}
    plain_sgd = torch.optim.SGD
    train(data, setup.model, config, train_indices=indices[:4 * setup.batch_size], progress=False)  # warm-up
    try:
        for round_index in range(args.rounds):
            names = list(variants) if round_index % 2 == 0 else list(variants)[::-1]
            for name in names:
                options = variants[name]
                torch.optim.SGD = functools.partial(plain_sgd, **(options or {}))
                run_config = dataclasses.replace(config, compile=options is None)
                result = train(data, setup.model, run_config, train_indices=indices, progress=False)
                seconds[name].append(float(result.history["train_seconds"].iloc[-1]))
                states[name] = result.model.state_dict()
    finally:
        torch.optim.SGD = plain_sgd
    reference = states["for-loop"]
    same = {name: all(torch.equal(reference[key], state[key]) for key in reference)
            for name, state in states.items() if name != "for-loop"}
    return seconds, same


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from dropkit.profiles import get_profile

    from train_throughput import setup_names  # this folder's twin script: the same --setup choice

    profile = get_profile(args.profile)
    lines = []
    for name in setup_names(args):
        setup = profile.setup(name)
        seconds, same = measure_setup(profile, setup, args)
        median = {variant: statistics.median(values) for variant, values in seconds.items()}
        timed = "the 2nd of 2 epochs timed" if args.compile else "1 epoch"
        print(f"{name}: model {setup.model}, batch {setup.batch_size}, {args.train_size} images, {timed}, "
              f"{args.rounds} rounds, {profile.threads} thread(s), augmentation {'on' if setup.augment else 'off'}")
        for variant, values in seconds.items():
            equal = "" if variant == "for-loop" else (
                "  bit for bit like for-loop" if same[variant] else "  parameters DIFFER from for-loop")
            print(f"  {variant:9s} median {median[variant]:7.3f} s  "
                  f"(rounds: {', '.join(f'{v:.3f}' for v in values)}){equal}")
        for variant in seconds:
            if variant != "for-loop":
                label = "compile" if variant == "compile" else f"{variant}_sgd"
                lines.append(f"{setup.model}_{label}_speedup: "
                             f"{median['for-loop'] / median[variant]:.2f}x (target 1x)")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
