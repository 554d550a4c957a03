"""The training step's speed options, each measured against the step without it, in the same run.

``dropkit.train.TrainConfig`` has two speed options that change no number (tests check the
trainings bit for bit):

* ``sgd_foreach``: SGD updates every parameter with torch's multi-tensor (foreach) kernels; torch's
  CPU default updates them one at a time;
* ``normalize_once``: an in-memory uint8 training set without augmentation is normalised into
  float32 once instead of batch by batch (inactive with augmentation, so the CNN setup does not
  use it).

For each bias-benchmark setup of the ``default`` profile (the MLP, the CNN; ``--setup`` picks one)
the script trains with the profile's settings (model, batch size, lr, weight decay, augmentation,
NHWC, torch threads) on the real Fashion-MNIST training set (``--train-size`` images, seeded) for
one epoch with every on/off combination, in rounds that alternate the order (so drift of a
shared machine hits every variant alike), and reports the median training seconds per variant
(the training pass only, ``history.train_seconds``: no evaluation) and, as ratio lines,

``<model>_sgd_foreach_speedup``, ``<model>_normalize_once_speedup`` (MLP only) and
``<model>_speed_options_speedup`` (both against neither): ``<ratio>x (target 1x)``.

An option is worth its default only where its ratio is above 1 beyond the spread of the rounds
(printed). ``--quick``: 2,000 images, 2 rounds (for the test suite; too short to judge).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = {  # name -> (sgd_foreach, normalize_once)
    "neither": (False, False), "sgd_foreach": (True, False), "normalize_once": (False, True), "both": (True, True),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--setup", default=None, help="one setup of the profile's bias benchmark (default: all)")
    parser.add_argument("--train-size", type=int, default=20000, help="training images per epoch (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every variant (default 5)")
    parser.add_argument("--quick", action="store_true", help="2,000 images, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_size, args.rounds = 2000, 2
    if args.train_size < 2 or args.rounds < 1:
        parser.error("--train-size must be >= 2 and --rounds >= 1")
    return args


def measure_setup(profile, setup, args) -> dict[str, list[float]]:
    """Training seconds of one epoch per variant, ``rounds`` values each."""
    import numpy as np
    import torch

    from dropkit.data import load_dataset
    from dropkit.train import TrainConfig, train

    torch.set_num_threads(profile.threads)
    data = load_dataset(setup.dataset)
    indices = np.sort(np.random.default_rng(0).permutation(data.num_train)[:min(args.train_size, data.num_train)])
    base = TrainConfig(epochs=1, lr=setup.lr, batch_size=setup.batch_size, weight_decay=setup.weight_decay,
                       augment=setup.augment, max_shift=setup.max_shift, hflip=setup.hflip,
                       channels_last=setup.channels_last, eval_every_epoch=False, seed=0)
    variants = list(VARIANTS) if not setup.augment else ["neither", "sgd_foreach"]  # normalize_once is inactive
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    train(data, setup.model, base, train_indices=indices[:4 * setup.batch_size], progress=False)  # warm-up
    for round_index in range(args.rounds):
        order = variants if round_index % 2 == 0 else variants[::-1]
        for name in order:
            foreach, once = VARIANTS[name]
            config = TrainConfig(**{**base.__dict__, "sgd_foreach": foreach, "normalize_once": once})
            result = train(data, setup.model, config, train_indices=indices, progress=False)
            seconds[name].append(float(result.history["train_seconds"].sum()))
    return seconds


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from dropkit.profiles import get_profile

    profile = get_profile(args.profile)
    names = [setup.name for setup in profile.setups_for("bias_benchmark")]
    if args.setup is not None:
        if args.setup not in names:
            raise SystemExit(f"--setup {args.setup!r} is not a bias-benchmark setup of profile {args.profile!r}; "
                             f"choose one of {', '.join(names)}")
        names = [args.setup]
    lines = []
    for name in names:
        setup = profile.setup(name)
        seconds = measure_setup(profile, setup, args)
        median = {variant: statistics.median(values) for variant, values in seconds.items()}
        print(f"{name}: model {setup.model}, batch {setup.batch_size}, {args.train_size} images x 1 epoch, "
              f"{args.rounds} rounds, {profile.threads} thread(s), augmentation {'on' if setup.augment else 'off'}")
        for variant, values in seconds.items():
            print(f"  {variant:15s} median {median[variant]:7.3f} s  (rounds: {', '.join(f'{v:.3f}' for v in values)})")
        lines.append(f"{setup.model}_sgd_foreach_speedup: {median['neither'] / median['sgd_foreach']:.2f}x (target 1x)")
        if "both" in median:
            lines.append(f"{setup.model}_normalize_once_speedup: "
                         f"{median['neither'] / median['normalize_once']:.2f}x (target 1x)")
            lines.append(f"{setup.model}_speed_options_speedup: {median['neither'] / median['both']:.2f}x (target 1x)")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
