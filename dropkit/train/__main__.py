"""``python -m dropkit.train``: train one model and print test accuracy and per-class recalls."""

from __future__ import annotations

import argparse
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
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--drop-epochs={text!r} must be 'auto', 'none' or comma-separated integers") from None


def recall_table(class_names: Sequence[str], recalls: np.ndarray) -> str:
    """Per-class recalls as aligned text lines, worst class marked."""
    worst = int(np.argmin(recalls))
    width = max(len(name) for name in class_names)
    return "\n".join(f"  {name:<{width}}  {100 * r:6.2f}%{'  <- worst' if k == worst else ''}"
                     for k, (name, r) in enumerate(zip(class_names, recalls)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dropkit.train``: train one model and print test accuracy and per-class recalls."""
    parser = argparse.ArgumentParser(prog="python -m dropkit.train", description=main.__doc__)
    parser.add_argument("--dataset", default="fashion-mnist", help="a dropkit.data dataset name")
    parser.add_argument("--root", default=None, help="dataset directory (default: the loader's search path)")
    parser.add_argument("--model", default="mlp", choices=MODELS)
    parser.add_argument("--pretrained-path", default=None, help="ResNet-50 state_dict file")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--momentum", type=float, default=TrainConfig.momentum)
    parser.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--drop-epochs", default="auto",
                        help="'auto' (50%% and 75%% of training, as in Table 1), 'none', or e.g. '80,120'")
    parser.add_argument("--drop-factor", type=float, default=TrainConfig.drop_factor)
    parser.add_argument("--augment", action="store_true", help="random shifts (<= --max-shift px) and horizontal flips (unless --no-hflip)")
    parser.add_argument("--max-shift", type=int, default=4, help="largest augmentation shift in pixels (default 4)")
    parser.add_argument("--no-hflip", action="store_true", help="augment without horizontal flips")
    parser.add_argument("--cdbw", action="store_true", help="CDB-W class weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=None, help="train on a random subset of this size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                        help="replay training steps as CUDA graphs (default: on for a CUDA device "
                             "unless --compile)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from dropkit.data import load_dataset

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, root=args.root)
    config = TrainConfig(
        epochs=args.epochs, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        batch_size=args.batch_size, drop_epochs=_parse_drop_epochs(args.drop_epochs, args.epochs),
        drop_factor=args.drop_factor, augment=args.augment, max_shift=args.max_shift, hflip=not args.no_hflip, cdbw=args.cdbw, seed=args.seed,
        device=args.device, channels_last=args.channels_last, bf16=args.bf16, compile=args.compile,
        cuda_graphs=(default_cuda_graphs(args.device, args.compile)
                     if args.cuda_graphs is None else args.cuda_graphs),
    )
    indices = None
    if args.train_size is not None:
        if not 1 < args.train_size <= data.num_train:
            raise ValueError(f"--train-size={args.train_size} must lie in [2, {data.num_train}]")
        indices = np.sort(np.random.default_rng(args.seed).permutation(data.num_train)[: args.train_size])
    model: str | nn.Module = args.model
    if args.pretrained_path is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            model = build_model(args.model, num_classes=data.num_classes, input_shape=tuple(data.input_shape),
                                pretrained_path=args.pretrained_path)
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
