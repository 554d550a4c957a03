"""Training throughput of ``dropkit.train`` against a conventional PyTorch loop, side by side.

Both loops train the same model (same seed, SGD settings, batch size and augmentation: random
shifts of at most 4 px with zero padding and horizontal flips) on the same real data:

* dropkit: the dataset is one uint8 tensor on the device, batches are sliced by a seeded
  permutation and augmented/normalised on whole batches (``dropkit.train.train``);
* conventional: a torchvision ``VisionDataset`` that yields PIL images, per-sample transforms
  ``RandomCrop(size, padding=4) + RandomHorizontalFlip + ToTensor + Normalize`` and a shuffling
  ``DataLoader``, with the usual per-step ``loss.item()``.

Each measurement runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its
own, after a few untimed warm-up steps of a throwaway model. Images/s count training passes only
(evaluation excluded); the test accuracy after training
is printed as a check that both loops learn alike. ``--channels-last``/``--bf16`` apply to both
loops and add a plain (fp32, NCHW) dropkit run to compare speed and accuracy against.

    python benchmarks/train_throughput.py            # full Fashion-MNIST, MLP, 1 epoch
    python benchmarks/train_throughput.py --quick    # CI: 4096 images, a few seconds
    python benchmarks/train_throughput.py --model cnn --channels-last --bf16

The last line is ``<model>_speedup: <ratio>x (target <t>x)``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_TARGET = {"mlp": 3.0}   # the default model's bar (issue 3); other models: report only


def load_subset(dataset: str, train_size: int | None, seed: int):
    """The dataset and the training positions used (a seeded random subset, or all)."""
    import numpy as np

    from dropkit.data import load_dataset

    data = load_dataset(dataset)
    if train_size is None or train_size >= data.num_train:
        return data, np.arange(data.num_train)
    return data, np.sort(np.random.default_rng(seed).permutation(data.num_train)[:train_size])


def warm_up(args, data, channels_last: bool, bf16: bool, steps: int = 3) -> None:
    """A few untimed SGD steps of a throwaway model on random input of the batch's shape, with the
    same device and options, so that neither timed loop pays for one-off kernel setup."""
    import torch
    import torch.nn.functional as F

    from dropkit.models import build_model

    device = torch.device(args.device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(args.model, num_classes=data.num_classes, input_shape=data.input_shape)
    model = model.to(device, memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(args.batch_size, *data.input_shape, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(0, data.num_classes, (args.batch_size,), device=device)
    for _ in range(steps):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_dropkit(args, plain: bool = False) -> dict:
    """Train with dropkit.train; report training images/s, s/epoch and test accuracy."""
    from dropkit.train import TrainConfig, train

    data, indices = load_subset(args.dataset, args.train_size, args.seed)
    warm_up(args, data, args.channels_last and not plain, args.bf16 and not plain)
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, augment=True,
                         seed=args.seed, eval_every_epoch=False, device=args.device,
                         channels_last=args.channels_last and not plain, bf16=args.bf16 and not plain)
    result = train(data, args.model, config, train_indices=indices, progress=False)
    seconds = float(result.history["train_seconds"].sum())
    return {"images_per_s": len(indices) * args.epochs / seconds, "seconds_per_epoch": seconds / args.epochs,
            "test_accuracy": float(result.history["test_accuracy"].iloc[-1])}


def run_conventional(args) -> dict:
    """Train with a torchvision Dataset + per-sample transforms + DataLoader."""
    import torch
    import torch.nn.functional as F
    import torchvision
    from PIL import Image
    from torchvision import transforms

    from dropkit.models import build_model

    data, indices = load_subset(args.dataset, args.train_size, args.seed)
    warm_up(args, data, args.channels_last, args.bf16)

    class ArrayImages(torchvision.datasets.VisionDataset):
        """uint8 images held as numpy arrays, returned as PIL images like torchvision's MNIST/CIFAR."""

        def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
            super().__init__(root=None, transform=transform)
            array = images.permute(0, 2, 3, 1).numpy()                       # [N, H, W, C]
            self.images = array[..., 0] if array.shape[-1] == 1 else array
            self.labels = labels.tolist()

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int):
            return self.transform(Image.fromarray(self.images[i])), self.labels[i]

    size = data.input_shape[-1]
    normalize = transforms.Normalize(data.mean, data.std)
    train_transform = transforms.Compose([transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip(),
                                          transforms.ToTensor(), normalize])
    index = torch.from_numpy(indices)
    train_set = ArrayImages(data.x_train[index], data.y_train[index], train_transform)
    test_set = ArrayImages(data.x_test, data.y_test, transforms.Compose([transforms.ToTensor(), normalize]))
    torch.manual_seed(args.seed)
    model = build_model(args.model, num_classes=data.num_classes, input_shape=data.input_shape)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    device = torch.device(args.device)
    model = model.to(device, memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                         num_workers=args.workers, pin_memory=device.type == "cuda",
                                         generator=torch.Generator().manual_seed(args.seed))
    seconds = 0.0
    for _ in range(args.epochs):
        model.train()
        started, running_loss = time.perf_counter(), 0.0
        for x, y in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - started
    model.eval()
    hits = 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(test_set, batch_size=1024):
            x = x.to(device).contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                hits += int((model(x).argmax(1).cpu() == y).sum())
    return {"images_per_s": len(indices) * args.epochs / seconds, "seconds_per_epoch": seconds / args.epochs,
            "test_accuracy": hits / len(test_set), "workers": args.workers,
            "loss_per_step": running_loss / len(loader)}


PHASES = {"dropkit": run_dropkit, "dropkit-plain": lambda args: run_dropkit(args, plain=True),
          "conventional": run_conventional}


def run_phase_in_subprocess(phase: str, argv: list[str]) -> dict:
    """Run one phase in a fresh interpreter; returns its JSON report plus its peak RSS."""
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--phase", phase]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"phase {phase!r} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=None, help="default: the whole training set")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the conventional loop")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--target", type=float, default=None, help="speedup target (default: 3 for mlp)")
    parser.add_argument("--quick", action="store_true", help="CI size: 4096 training images, 1 epoch")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick and args.train_size is None:
        args.train_size = 4096
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.phase is not None:
        report = PHASES[args.phase](args)
        report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report["threads"] = torch.get_num_threads()
        print(json.dumps(report))
        return 0

    phases = ["dropkit", "conventional"] + (["dropkit-plain"] if args.channels_last or args.bf16 else [])
    reports = {phase: run_phase_in_subprocess(phase, argv) for phase in phases}
    options = "+".join(name for name, on in (("channels_last", args.channels_last), ("bf16", args.bf16)) if on)
    print(f"{args.dataset}, model {args.model}, batch {args.batch_size}, {args.epochs} epoch(s), "
          f"train size {args.train_size or 'all'}, augmentation on, threads {reports['dropkit']['threads']}, "
          f"options {options or 'fp32'}, device {args.device}, conventional DataLoader workers {args.workers}")
    for phase, report in reports.items():
        print(f"  {phase:<13} {report['images_per_s']:9.0f} images/s  {report['seconds_per_epoch']:7.2f} s/epoch  "
              f"peak RSS {report['peak_rss_mib']:7.0f} MiB  test accuracy {100 * report['test_accuracy']:.2f}%")
    dropkit, conventional = reports["dropkit"], reports["conventional"]
    gap = 100 * abs(dropkit["test_accuracy"] - conventional["test_accuracy"])
    print(f"accuracy check: dropkit vs conventional differ by {gap:.2f} points")
    if "dropkit-plain" in reports:
        plain = reports["dropkit-plain"]
        print(f"{options} vs plain fp32 (dropkit): {dropkit['images_per_s'] / plain['images_per_s']:.2f}x images/s, "
              f"test accuracy {100 * dropkit['test_accuracy']:.2f}% vs {100 * plain['test_accuracy']:.2f}%")
    target = args.target if args.target is not None else DEFAULT_TARGET.get(args.model, 1.0)
    ratio = dropkit["images_per_s"] / conventional["images_per_s"]
    print(f"{args.model}_speedup: {ratio:.2f}x (target {target:g}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
