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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loop_rounds import (add_round_options, alternate_rounds, parse_round_options,  # noqa: E402 (this folder)
                         print_rounds, same_parameters, setup_training)

#: Variant name -> the ``torch.optim.SGD`` keyword arguments it adds.
SGD_VARIANTS: dict[str, dict] = {"for-loop": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_round_options(parser)
    parser.add_argument("--compile", action="store_true",
                        help="also the for-loop update with the network under torch.compile (2 epochs, the 2nd timed)")
    return parse_round_options(parser, argv)


def measure_setup(profile, setup, args) -> tuple[dict[str, list[float]], dict[str, bool]]:
    """Training seconds per variant (``rounds`` values each, the last epoch's), and per variant
    whether its final parameters equal the for-loop update's."""
    import dataclasses

    import torch

    from dropkit.train import train

    data, indices, config = setup_training(profile, setup, args.train_size, epochs=2 if args.compile else 1)
    variants = list(SGD_VARIANTS) + (["compile"] if args.compile else [])
    plain_sgd = torch.optim.SGD

    def train_variant(name):
        torch.optim.SGD = functools.partial(plain_sgd, **SGD_VARIANTS.get(name, {}))
        run_config = dataclasses.replace(config, compile=name == "compile")
        return train(data, setup.model, run_config, train_indices=indices, progress=False)

    train(data, setup.model, config, train_indices=indices[:4 * setup.batch_size], progress=False)  # warm-up
    try:
        seconds, states = alternate_rounds(variants, args.rounds, train_variant)
    finally:
        torch.optim.SGD = plain_sgd
    return seconds, {name: same_parameters(state, states["for-loop"])
                     for name, state in states.items() if name != "for-loop"}


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from dropkit.profiles import get_profile

    from train_throughput import setup_names  # this folder's twin script: the same --setup choice

    profile = get_profile(args.profile)
    lines = []
    for name in setup_names(args):
        setup = profile.setup(name)
        seconds, same = measure_setup(profile, setup, args)
        timed = "the 2nd of 2 epochs timed" if args.compile else "1 epoch"
        print(f"{name}: model {setup.model}, batch {setup.batch_size}, {args.train_size} images, {timed}, "
              f"{args.rounds} rounds, {profile.threads} thread(s), augmentation {'on' if setup.augment else 'off'}")
        median = print_rounds(seconds, {variant: "bit for bit like for-loop" if equal else
                                        "parameters DIFFER from for-loop" for variant, equal in same.items()})
        for variant in same:
            label = "compile" if variant == "compile" else f"{variant}_sgd"
            lines.append(f"{setup.model}_{label}_speedup: {median['for-loop'] / median[variant]:.2f}x (target 1x)")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
