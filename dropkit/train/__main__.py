"""``python -m dropkit.train``: train one model and print test accuracy and per-class recalls.

Every bad input is refused before any data is loaded or any training starts where it can be
(argument types and ranges, the device, the dataset name, a missing ``--root`` or
``--pretrained-path``), else as soon as it shows (an empty ``--root``, a ``--train-size`` larger
than the data): one line ``python -m dropkit.train: error: <option> <value>: ...`` on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from typing import Sequence

import numpy as np
import torch
from torch import nn

from dropkit.models import MODELS, build_model
from dropkit.train import TrainConfig, default_cuda_graphs, train


def paper_drop_epochs(epochs: int) -> tuple[int, ...]:
    """Table 1's schedule shape: drops at 50% and 75% of training (160 epochs -> (80, 120))."""
    return tuple(sorted({e for e in (epochs // 2, (3 * epochs) // 4) if 0 < e < epochs}))


def _parse_drop_epochs(text: str, epochs: int) -> tuple[int, ...]:
    if text == "auto":
        return paper_drop_epochs(epochs)
    if text == "none":
        return ()
    try:
        drops = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--drop-epochs {text!r} must be 'auto', 'none' or comma-separated integers") from None
    outside = [epoch for epoch in drops if not 0 < epoch < epochs]
    if outside:
        within = f"a drop epoch lies in 1..{epochs - 1}" if epochs > 1 else "--epochs 1 has no epoch to drop at"
        raise ValueError(f"--drop-epochs {text!r}: epoch {outside[0]} is not within training of --epochs "
                         f"{epochs} ({within}; 'none' for no drop)")
    if list(drops) != sorted(set(drops)):
        raise ValueError(f"--drop-epochs {text!r} must be increasing epochs without repeats")
    return drops


def _integer(minimum: int, maximum: int | None = None):
    """An argparse type: an integer in ``[minimum, maximum]``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise argparse.ArgumentTypeError(f"{text!r} must be an integer {bound}")
        return value
    return parse


def _real(low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = False):
    """An argparse type: a finite real number within the given bounds."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
        if value < low or (low_open and value == low) or (high is not None and (
                value > high or (high_open and value == high))):
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"{text!r} must lie in {left}{low:g}, "
                                             f"{'inf)' if high is None else f'{high:g}{right}'}")
        return value
    return parse


def _directory(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    return text


def _file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a file")
    return text


def _device(text: str) -> str:
    if not re.fullmatch(r"cpu|cuda(:[0-9]+)?|mps", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use cpu, cuda, cuda:N or mps")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: no CUDA GPU is available here")
        index = int(text.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    if text == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available here")
    return text


def _dataset(text: str) -> str:
    from dropkit.data import DATASETS

    if text not in DATASETS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a dataset; choose one of {', '.join(sorted(DATASETS))}")
    return text


def recall_table(class_names: Sequence[str], recalls: np.ndarray) -> str:
    """Per-class recalls as aligned text lines, worst class marked."""
    worst = int(np.argmin(recalls))
    width = max(len(name) for name in class_names)
    return "\n".join(f"  {name:<{width}}  {100 * r:6.2f}%{'  <- worst' if k == worst else ''}"
                     for k, (name, r) in enumerate(zip(class_names, recalls)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dropkit.train``: train one model and print test accuracy and per-class recalls."""
    parser = argparse.ArgumentParser(prog="python -m dropkit.train", description=main.__doc__)
    parser.add_argument("--dataset", default="fashion-mnist", type=_dataset, help="a dropkit.data dataset name")
    parser.add_argument("--root", default=None, type=_directory,
                        help="dataset directory (default: the loader's search path)")
    parser.add_argument("--model", default="mlp", choices=MODELS)
    parser.add_argument("--pretrained-path", default=None, type=_file, help="ResNet-50 state_dict file")
    parser.add_argument("--epochs", type=_integer(1), default=TrainConfig.epochs)
    parser.add_argument("--lr", type=_real(0.0, low_open=True), default=TrainConfig.lr)
    parser.add_argument("--momentum", type=_real(0.0, 1.0, high_open=True), default=TrainConfig.momentum)
    parser.add_argument("--weight-decay", type=_real(0.0), default=TrainConfig.weight_decay)
    parser.add_argument("--batch-size", type=_integer(1), default=TrainConfig.batch_size)
    parser.add_argument("--drop-epochs", default="auto",
                        help="'auto' (50%% and 75%% of training, as in Table 1), 'none', or e.g. '80,120'")
    parser.add_argument("--drop-factor", type=_real(0.0, 1.0, low_open=True), default=TrainConfig.drop_factor)
    parser.add_argument("--augment", action="store_true", help="random shifts (<= --max-shift px) and horizontal flips (unless --no-hflip)")
    parser.add_argument("--max-shift", type=_integer(0), default=4, help="largest augmentation shift in pixels (default 4)")
    parser.add_argument("--no-hflip", action="store_true", help="augment without horizontal flips")
    parser.add_argument("--cdbw", action="store_true", help="CDB-W class weights")
    parser.add_argument("--seed", type=_integer(0), default=0)
    parser.add_argument("--train-size", type=_integer(2), default=None, help="train on a random subset of this size")
    parser.add_argument("--device", default="cpu", type=_device, help="cpu, cuda, cuda:N or mps")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                        help="replay training steps as CUDA graphs (default: on for a CUDA device "
                             "unless --compile)")
    parser.add_argument("--threads", type=_integer(1), default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        drop_epochs = _parse_drop_epochs(args.drop_epochs, args.epochs)
    except ValueError as err:
        parser.error(str(err))

    from dropkit.data import load_dataset

    try:
        config = TrainConfig(
            epochs=args.epochs, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
            batch_size=args.batch_size, drop_epochs=drop_epochs,
            drop_factor=args.drop_factor, augment=args.augment, max_shift=args.max_shift, hflip=not args.no_hflip,
            cdbw=args.cdbw, seed=args.seed,
            device=args.device, channels_last=args.channels_last, bf16=args.bf16, compile=args.compile,
            cuda_graphs=(default_cuda_graphs(args.device, args.compile)
                         if args.cuda_graphs is None else args.cuda_graphs),
        )
    except ValueError as err:  # the library's own checks, at the boundary
        parser.error(" ".join(str(err).split()))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        data = load_dataset(args.dataset, root=args.root)
    except (ValueError, OSError) as err:
        where = "" if args.root is None else f" --root {args.root}"
        parser.error(f"--dataset {args.dataset}{where}: {' '.join(str(err).split())}")
    indices = None
    if args.train_size is not None:
        if not args.train_size <= data.num_train:
            parser.error(f"--train-size {args.train_size} must lie in [2, {data.num_train}] "
                         f"(the {data.num_train} training samples of {args.dataset})")
        indices = np.sort(np.random.default_rng(args.seed).permutation(data.num_train)[: args.train_size])
    model: str | nn.Module = args.model
    if args.pretrained_path is not None:
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.seed)
                model = build_model(args.model, num_classes=data.num_classes, input_shape=tuple(data.input_shape),
                                    pretrained_path=args.pretrained_path)
        except (ValueError, OSError, RuntimeError) as err:
            parser.error(f"--pretrained-path {args.pretrained_path}: {' '.join(str(err).split())}")
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
