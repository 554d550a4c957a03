"""Training throughput of ``dropkit.train`` against two conventional PyTorch loops, side by side.

All loops train the same model (same seed, SGD settings, batch size, torch threads, memory format
and, when ``--augment`` is on, augmentation: random shifts of at most ``--max-shift`` px with zero
padding and, unless ``--no-hflip``, horizontal flips) on the same real data. By default the script measures, one after the
other, every training setup of the ``default`` profile's bias benchmark (the MLP and the CNN:
model, batch size, learning rate, weight decay, augmentation with its shift and flips, NHWC, torch threads;
``--setup`` picks one), so the ratios describe what the book's sweeps actually run:

* dropkit: the dataset is one uint8 tensor on the device, batches are sliced by a seeded
  permutation and augmented/normalised on whole batches (``dropkit.train.train``);
* dataloader (what the paper authors' code and DeepCore do): a torchvision ``VisionDataset`` that
  yields PIL images, per-sample transforms (``RandomCrop(size, padding=4) + RandomHorizontalFlip``
  when augmenting) ``+ ToTensor + Normalize`` and a shuffling ``DataLoader``, with the usual
  per-step ``loss.item()``;
* tensor loop (the strongest plain baseline): the training set normalised once into one float32
  tensor in memory, batches sliced by ``torch.randperm``, the same per-sample transforms applied
  in the loop when augmenting, per-step ``loss.item()``.

Each measurement runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its
own, after a few untimed warm-up steps of a throwaway model. Images/s count training passes only
(evaluation excluded); the test accuracy after training
is printed as a check that both loops learn alike. ``--channels-last``/``--bf16`` apply to both
loops and add a plain (fp32, NCHW) dropkit run to compare speed and accuracy against.

    python benchmarks/train_throughput.py            # full Fashion-MNIST, both setups, 1 epoch
    python benchmarks/train_throughput.py --quick    # CI: 4096 images, a few seconds
    python benchmarks/train_throughput.py --setup cnn-fashion-mnist --bf16

The script ends with two lines per setup, ``<model>_speedup_vs_dataloader: <ratio>x (target <t>x)``
and ``<model>_speedup_vs_tensor_loop: <ratio>x (target 1x)`` (report only: at equal arithmetic a
plain in-memory loop has no data-loading overhead left to remove).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_TARGET = {"mlp": 3.0}   # the default model's bar against the DataLoader loop (issue 3)


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
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, augment=args.augment,
                         max_shift=args.max_shift, hflip=args.hflip,
                         weight_decay=args.weight_decay, seed=args.seed, eval_every_epoch=False, device=args.device,
                         channels_last=args.channels_last and not plain, bf16=args.bf16 and not plain)
    result = train(data, args.model, config, train_indices=indices, progress=False)
    seconds = float(result.history["train_seconds"].sum())
    return {"images_per_s": len(indices) * args.epochs / seconds, "seconds_per_epoch": seconds / args.epochs,
            "test_accuracy": float(result.history["test_accuracy"].iloc[-1])}


def run_dataloader(args) -> dict:
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

    normalize = transforms.Normalize(data.mean, data.std)
    train_transform = transforms.Compose([*augmentation(args, data), transforms.ToTensor(), normalize])
    index = torch.from_numpy(indices)
    train_set = ArrayImages(data.x_train[index], data.y_train[index], train_transform)
    test_set = ArrayImages(data.x_test, data.y_test, transforms.Compose([transforms.ToTensor(), normalize]))
    torch.manual_seed(args.seed)
    model = build_model(args.model, num_classes=data.num_classes, input_shape=data.input_shape)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    device = torch.device(args.device)
    model = model.to(device, memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                         num_workers=args.workers, pin_memory=device.type == "cuda",
                                         generator=torch.Generator().manual_seed(args.seed))
    seconds, running_loss = train_epochs(args, model, optimizer, lambda epoch: loader, memory_format)
    test_batches = torch.utils.data.DataLoader(test_set, batch_size=1024)
    return {"images_per_s": len(indices) * args.epochs / seconds, "seconds_per_epoch": seconds / args.epochs,
            "test_accuracy": test_accuracy(args, model, test_batches, memory_format),
            "workers": args.workers, "loss_per_step": running_loss / (len(loader) * args.epochs)}


def augmentation(args, data) -> list:
    """The per-sample torchvision transforms of ``--augment`` (none without it)."""
    from torchvision import transforms

    if not args.augment:
        return []
    crop = transforms.RandomCrop(data.input_shape[-1], padding=args.max_shift)
    return [crop, transforms.RandomHorizontalFlip()] if args.hflip else [crop]


def augmentation_words(args) -> str:
    """``--augment`` in words, e.g. ``"on (shifts <= 2 px, no flips)"``."""
    if not args.augment:
        return "off"
    return f"on (shifts <= {args.max_shift} px, {'flips' if args.hflip else 'no flips'})"


def train_epochs(args, model, optimizer, batches, memory_format) -> tuple[float, float]:
    """The conventional loop: ``batches(epoch)`` yields (x, y); per-step ``loss.item()``.

    Returns (training seconds, summed loss over all steps).
    """
    import torch
    import torch.nn.functional as F

    device = torch.device(args.device)
    seconds, running_loss = 0.0, 0.0
    for epoch in range(args.epochs):
        model.train()
        started = time.perf_counter()
        for x, y in batches(epoch):
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
    return seconds, running_loss


def test_accuracy(args, model, batches, memory_format) -> float:
    """Top-1 accuracy over ``batches`` of (x, y) (evaluation mode, no gradients)."""
    import torch

    device = torch.device(args.device)
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for x, y in batches:
            x = x.to(device).contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                hits += int((model(x).argmax(1).cpu() == y).sum())
            total += len(y)
    return hits / total


def run_tensor_loop(args) -> dict:
    """Train from one pre-normalised float32 tensor in memory, batches sliced by a seeded randperm."""
    import torch
    from torchvision import transforms

    from dropkit.models import build_model

    data, indices = load_subset(args.dataset, args.train_size, args.seed)
    warm_up(args, data, args.channels_last, args.bf16)
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    index = torch.from_numpy(indices)
    x_train = ((data.x_train[index].float() / 255 - mean) / std).contiguous()
    y_train = data.y_train[index].long()
    x_test = (data.x_test.float() / 255 - mean) / std
    per_sample = transforms.Compose(augmentation(args, data))
    generator = torch.Generator().manual_seed(args.seed)

    def batches(epoch):
        order = torch.randperm(len(y_train), generator=generator)
        for start in range(0, len(order), args.batch_size):
            rows = order[start:start + args.batch_size]
            x = x_train[rows]
            if args.augment:
                x = torch.stack([per_sample(image) for image in x])
            yield x, y_train[rows]

    torch.manual_seed(args.seed)
    model = build_model(args.model, num_classes=data.num_classes, input_shape=data.input_shape)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(torch.device(args.device), memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    seconds, running_loss = train_epochs(args, model, optimizer, batches, memory_format)
    steps = -(-len(y_train) // args.batch_size) * args.epochs
    test_batches = [(x_test[i:i + 1024], data.y_test[i:i + 1024]) for i in range(0, len(x_test), 1024)]
    return {"images_per_s": len(indices) * args.epochs / seconds, "seconds_per_epoch": seconds / args.epochs,
            "test_accuracy": test_accuracy(args, model, test_batches, memory_format),
            "loss_per_step": running_loss / steps}


PHASES = {"dropkit": run_dropkit, "dropkit-plain": lambda args: run_dropkit(args, plain=True),
          "dataloader": run_dataloader, "tensor-loop": run_tensor_loop}


def run_phase_in_subprocess(phase: str, argv: list[str]) -> dict:
    """Run one phase in a fresh interpreter; returns its JSON report plus its peak RSS."""
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--phase", phase]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"phase {phase!r} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default",
                        help="take the training setups' settings and the torch threads of this profile "
                             "(default: %(default)s); the options below override them")
    parser.add_argument("--setup", default=None,
                        help="measure only this setup of the profile's bias benchmark (default: each of them)")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=None, help="default: the whole training set")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="random shifts (+ flips, see --hflip) in every loop (default: the setup's setting)")
    parser.add_argument("--max-shift", type=int, default=None, help="largest shift in px (default: the setup's)")
    parser.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=None,
                        help="horizontal flips in the augmentation (default: the setup's setting)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the DataLoader loop")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the profile's)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="NHWC memory format in every loop (default: the setup's setting)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--target", type=float, default=None, help="speedup target (default: 3 for mlp)")
    parser.add_argument("--quick", action="store_true", help="CI size: 4096 training images, 1 epoch")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick and args.train_size is None:
        args.train_size = 4096
    return args


def setup_names(args) -> list[str]:
    """The setups to measure: ``--setup``, else every setup of the profile's bias benchmark."""
    from dropkit.profiles import get_profile

    names = [setup.name for setup in get_profile(args.profile).setups_for("bias_benchmark")]
    if args.setup is not None and args.setup not in names:
        raise SystemExit(f"--setup {args.setup!r} is not a bias-benchmark setup of profile "
                         f"{args.profile!r}; choose one of {', '.join(names)}")
    return names if args.setup is None else [args.setup]


def apply_setup(args, name: str):
    """A copy of ``args`` with the options left unset taken from setup ``name`` of ``args.profile``."""
    from dropkit.profiles import get_profile

    profile = get_profile(args.profile)
    setup = profile.setup(name)
    args = argparse.Namespace(**vars(args))
    args.setup = name
    for option, value in (("dataset", setup.dataset), ("model", setup.model), ("batch_size", setup.batch_size),
                          ("lr", setup.lr), ("weight_decay", setup.weight_decay), ("augment", setup.augment),
                          ("max_shift", setup.max_shift), ("hflip", setup.hflip), ("channels_last", setup.channels_last),
                          ("threads", profile.threads)):
        if getattr(args, option) is None:
            setattr(args, option, value)
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.phase is not None:
        import torch

        args = apply_setup(args, args.setup)
        torch.set_num_threads(args.threads)
        report = PHASES[args.phase](args)
        report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report["threads"] = torch.get_num_threads()
        print(json.dumps(report))
        return 0
    ratio_lines = []
    for name in setup_names(args):
        ratio_lines += measure_setup(apply_setup(args, name), argv)
    for line in ratio_lines:  # every setup's ratio lines together, at the end
        print(line)
    return 0


def measure_setup(args, argv: list[str]) -> list[str]:
    """Run every phase of one setup in its own subprocess, print the table; return its ratio lines."""
    argv = [*argv, "--setup", args.setup] if "--setup" not in argv else argv
    phases = ["dropkit", "dataloader", "tensor-loop"] + (["dropkit-plain"] if args.channels_last or args.bf16 else [])
    reports = {phase: run_phase_in_subprocess(phase, argv) for phase in phases}
    options = "+".join(name for name, on in (("channels_last", args.channels_last), ("bf16", args.bf16)) if on)
    print(f"{args.setup}: {args.dataset}, model {args.model}, batch {args.batch_size}, lr {args.lr:g}, "
          f"{args.epochs} epoch(s), train size {args.train_size or 'all'}, augmentation "
          f"{augmentation_words(args)}, "
          f"threads {reports['dropkit']['threads']} (settings of profile {args.profile!r}), "
          f"options {options or 'fp32'}, device {args.device}, DataLoader workers {args.workers}")
    for phase, report in reports.items():
        print(f"  {phase:<13} {report['images_per_s']:9.0f} images/s  {report['seconds_per_epoch']:7.2f} s/epoch  "
              f"peak RSS {report['peak_rss_mib']:7.0f} MiB  test accuracy {100 * report['test_accuracy']:.2f}%")
    dropkit = reports["dropkit"]
    for phase in ("dataloader", "tensor-loop"):
        gap = 100 * abs(dropkit["test_accuracy"] - reports[phase]["test_accuracy"])
        print(f"accuracy check: dropkit vs {phase} differ by {gap:.2f} points")
    if "dropkit-plain" in reports:
        plain = reports["dropkit-plain"]
        print(f"{options} vs plain fp32 (dropkit): {dropkit['images_per_s'] / plain['images_per_s']:.2f}x images/s, "
              f"test accuracy {100 * dropkit['test_accuracy']:.2f}% vs {100 * plain['test_accuracy']:.2f}%")
    print()
    target = args.target if args.target is not None else DEFAULT_TARGET.get(args.model, 1.0)
    loader_ratio = dropkit["images_per_s"] / reports["dataloader"]["images_per_s"]
    tensor_ratio = dropkit["images_per_s"] / reports["tensor-loop"]["images_per_s"]
    return [f"{args.model}_speedup_vs_dataloader: {loader_ratio:.2f}x (target {target:g}x)",
            f"{args.model}_speedup_vs_tensor_loop: {tensor_ratio:.2f}x (target 1x)"]


if __name__ == "__main__":
    raise SystemExit(main())
