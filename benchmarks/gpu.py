"""Paper scale on one GPU: dropkit's device-resident training path against a conventional loop.

One run, synthetic CIFAR-shaped data (50,000 x 3 x 32 x 32 uint8, 10 classes; no CIFAR offline):

* images/s of ``dropkit.train.train`` (whole dataset on the device, batches sliced by a seeded
  permutation, shifts <= 4 px + flips on whole batches, channels_last + bf16 autocast, no host
  sync inside an epoch, each full-size step replayed as a CUDA graph, as the runner trains on
  CUDA; also measured without the graphs) against a conventional loop (a ``Dataset`` with per-sample
  ``RandomCrop(32, padding=4) + RandomHorizontalFlip + Normalize`` transforms, a shuffling
  ``DataLoader`` with worker processes and pinned memory, fp32, per-step ``loss.item()``), same
  model, batch size and augmentation: VGG-16 at the paper's batch 128, and the ``fast`` profile's
  ``resnet9`` at batch 512; the conventional loop is also run with the same bf16/channels_last
  settings, to separate the input pipeline from the arithmetic precision;
* achieved TFLOP/s (training ~ 3 x the forward FLOPs counted by ``torch.utils.flop_counter``)
  against a bf16 matrix-product ceiling measured in the same run;
* the projected GPU-hours of the CIFAR-10 sweeps of Figures 1 and 5 (bias benchmark + DRoP
  evaluation: every method/protocol x 9 densities x 3 seeds, the full-dataset runs and every
  query training) for the ``paper`` profile (VGG-16, 160 epochs, fp32 as in the paper: measured
  on dropkit's path without bf16/channels_last) and the ``fast`` profile
  (resnet9, 16 epochs), from the measured images/s. Score computation passes (GraNd gradients,
  embeddings) and evaluation are not counted.

    python benchmarks/gpu.py            # on a GPU (about two minutes)
    python benchmarks/gpu.py --quick    # CI: a tiny size on the CPU, seconds

Ends with ``<name>: <value>x (target <t>x)`` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dropkit.data import DataSplits  # noqa: E402
from dropkit.models import build_model  # noqa: E402
from dropkit.train import TrainConfig, train  # noqa: E402

CIFAR_TRAIN = 50_000
TARGETS = {"vgg16_dropkit_vs_dataloader": 3.0, "fast_cifar10_sweep_within_1_gpu_hour": 1.0}


def synthetic_cifar(n: int, seed: int = 0) -> DataSplits:
    """Random uint8 images ``[n, 3, 32, 32]`` with random labels (10 classes), CIFAR-10's mean/std."""
    generator = torch.Generator().manual_seed(seed)
    n_eval = max(100, min(1000, n // 10))

    def split(size):
        x = torch.randint(0, 256, (size, 3, 32, 32), dtype=torch.uint8, generator=generator)
        y = torch.arange(size) % 10
        return x, y[torch.randperm(size, generator=generator)]

    x_train, y_train = split(n)
    x_val, y_val = split(n_eval)
    x_test, y_test = split(n_eval)
    return DataSplits(
        name="synthetic-cifar10", x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
        x_test=x_test, y_test=y_test, num_classes=10, class_names=tuple(f"class{k}" for k in range(10)),
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dropkit_images_per_second(data, model_name, batch_size, device, *, fast_options: bool, epochs: int,
                              compile: bool = False, cuda_graphs: bool = True) -> float:
    """Images/s of dropkit.train's training passes, epochs after the first (warm-up, autotuning,
    graph capture)."""
    config = TrainConfig(epochs=epochs, lr=0.05, weight_decay=5e-4, batch_size=batch_size,
                         augment=True, device=str(device), channels_last=fast_options,
                         bf16=fast_options, eval_every_epoch=False, seed=0, compile=compile,
                         cuda_graphs=cuda_graphs and not compile)
    result = train(data, model_name, config, progress=False)
    seconds = result.history["train_seconds"].to_numpy()[1:]
    return data.num_train * len(seconds) / float(seconds.sum())


class PerSampleDataset(torch.utils.data.Dataset):
    """The conventional input pipeline: one uint8 image at a time through torchvision transforms."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean, std):
        from torchvision.transforms import v2

        self.x, self.y = x, y
        self.transform = v2.Compose([
            v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std),
        ])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int):
        return self.transform(self.x[index]), self.y[index]


def conventional_images_per_second(data, model_name, batch_size, device, *, fast_options: bool,
                                   max_steps: int, workers: int) -> float:
    """Images/s of a DataLoader + per-sample-transform loop (steps after a warm-up of 10)."""
    torch.manual_seed(0)
    model = build_model(model_name, num_classes=10, input_shape=(3, 32, 32)).to(device)
    memory_format = torch.channels_last if fast_options else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loader = torch.utils.data.DataLoader(
        PerSampleDataset(data.x_train, data.y_train, data.mean, data.std), batch_size=batch_size,
        shuffle=True, num_workers=workers, pin_memory=device.type == "cuda", drop_last=True,
        persistent_workers=workers > 0)
    warm, steps, images, started = min(10, max_steps), 0, 0, None
    model.train()
    while steps < warm + max_steps:
        for x, y in loader:
            if steps == warm:
                synchronize(device)
                started = time.perf_counter()
            x = x.to(device, non_blocking=True).to(memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast_options):
                loss = F.cross_entropy(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()  # the usual per-step logging sync
            steps += 1
            if steps > warm:
                images += len(y)
            if steps >= warm + max_steps:
                break
    synchronize(device)
    return images / (time.perf_counter() - started)


def training_flops_per_image(model_name: str) -> float:
    """~3 x forward FLOPs of one 32x32 image (forward + backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(model_name, num_classes=10, input_shape=(3, 32, 32))
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.randn(8, 3, 32, 32))
    return 3.0 * counter.get_total_flops() / 8


def bf16_matmul_tflops(device: torch.device, size: int) -> float:
    """Measured bf16 matrix-product rate (median of 10 products after 3 warm-ups), TFLOP/s."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    times = []
    for i in range(13):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        if i >= 3:
            times.append(time.perf_counter() - start)
    return 2 * size ** 3 / float(np.median(times)) / 1e12


def sweep_image_passes(profile: str, model: str | None = None) -> tuple[int, int, int]:
    """(final-training image passes, query-training image passes, runs) of the CIFAR-10 sweeps of
    Figures 1 and 5 (bias_benchmark + drop_evaluation) in ``profile``, from its run specs."""
    from dropkit.profiles import experiment_specs
    from dropkit.scores.query import SHORT_QUERY_METHODS

    specs = {}
    for experiment in ("bias_benchmark", "drop_evaluation"):
        for spec in experiment_specs(profile, experiment, dataset="cifar10"):
            specs[spec.cache_key] = spec
    final = sum(spec.final_epochs * round(spec.density * CIFAR_TRAIN) for spec in specs.values())
    queries = {spec.query_key: spec for spec in specs.values() if spec.needs_query}
    query = sum((s.query_seeds * s.query_epochs if s.method in SHORT_QUERY_METHODS else s.epochs) * CIFAR_TRAIN
                for s in queries.values())
    return final, query, len(specs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny size (CI, CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default=None, help="also write the measurements to this file")
    parser.add_argument("--compile", action="store_true", help="also measure dropkit with torch.compile")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    n = 128 if args.quick else CIFAR_TRAIN
    epochs = 2 if args.quick else 3
    steps = 2 if args.quick else 150
    workers = 0 if args.quick else min(8, os.cpu_count() or 1)
    batches = {"vgg16": 32, "resnet9": 64} if args.quick else {"vgg16": 128, "resnet9": 512}
    # bf16 autocast and channels_last are the GPU path's options; CPUs without bf16 units run
    # bf16 several times slower, so on the CPU both loops use fp32.
    fast_options = device.type == "cuda"
    data = synthetic_cifar(n)
    peak = bf16_matmul_tflops(device, 512 if args.quick or device.type != "cuda" else 8192)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}, {n} synthetic 32x32 images, bf16 matmul ceiling {peak:.1f} TFLOP/s", flush=True)

    measured = {"device": str(device), "torch": torch.__version__, "images": n, "bf16_peak_tflops": peak}
    for model_name, batch in batches.items():
        flops = training_flops_per_image(model_name)
        ours = dropkit_images_per_second(data, model_name, batch, device, fast_options=fast_options, epochs=epochs)
        eager = dropkit_images_per_second(data, model_name, batch, device, fast_options=fast_options,
                                          epochs=epochs, cuda_graphs=False)
        # The paper profile trains VGG-16 in fp32 (no bf16, no channels_last), with CUDA graphs.
        paper_path = (dropkit_images_per_second(data, model_name, batch, device, fast_options=False, epochs=epochs)
                      if model_name == "vgg16" else None)
        conventional = conventional_images_per_second(data, model_name, batch, device, fast_options=False,
                                                      max_steps=steps, workers=workers)
        conventional_bf16 = conventional_images_per_second(data, model_name, batch, device, fast_options=fast_options,
                                                           max_steps=steps, workers=workers)
        if args.compile:
            compiled = dropkit_images_per_second(data, model_name, batch, device, fast_options=fast_options,
                                                 epochs=epochs, compile=True)
            print(f"{model_name:8s} batch {batch:4d}: dropkit + torch.compile {compiled:9.0f} img/s "
                  f"({compiled / ours:.2f}x dropkit without compile)", flush=True)
            measured[f"{model_name}_compiled"] = compiled
        tflops = ours * flops / 1e12
        measured[model_name] = dict(batch=batch, dropkit=ours, dropkit_without_graphs=eager,
                                    dropkit_fp32=paper_path, conventional_fp32=conventional,
                                    conventional_bf16=conventional_bf16, train_gflops_per_image=flops / 1e9,
                                    achieved_tflops=tflops)
        print(f"{model_name:8s} batch {batch:4d}: dropkit {ours:9.0f} img/s (without CUDA graphs {eager:9.0f}) "
              f"| conventional fp32 {conventional:9.0f} "
              f"| conventional bf16+CL {conventional_bf16:9.0f} | {tflops:6.1f} TFLOP/s "
              f"({100 * tflops / peak:.0f}% of the measured bf16 ceiling)", flush=True)
        if paper_path is not None:
            print(f"{model_name:8s} batch {batch:4d}: dropkit in fp32 (the paper profile's path) {paper_path:9.0f} img/s",
                  flush=True)

    hours = {}
    # Each profile at the rate of the path its runs train on: paper = fp32 VGG-16, fast = resnet9
    # with bf16 + channels_last (both with CUDA graphs on a GPU).
    for profile, model_name, rate in (("paper", "vgg16", "dropkit_fp32"), ("fast", "resnet9", "dropkit")):
        final, query, runs = sweep_image_passes(profile)
        hours[profile] = (final + query) / measured[model_name][rate] / 3600
        print(f"{profile:5s} CIFAR-10 sweep (Figures 1 + 5): {runs} runs, {(final + query) / 1e9:.2f} G image passes "
              f"({query / (final + query):.0%} query training) -> {hours[profile]:.1f} GPU-hours at the measured "
              f"{model_name} rate of that profile's path (conventional fp32 loop: "
              f"{(final + query) / measured[model_name]['conventional_fp32'] / 3600:.1f} h)", flush=True)
    measured["projected_gpu_hours"] = hours
    if args.json:
        Path(args.json).write_text(json.dumps(measured, indent=2))

    results = {
        "vgg16_dropkit_vs_dataloader": measured["vgg16"]["dropkit"] / measured["vgg16"]["conventional_fp32"],
        "vgg16_dropkit_vs_dataloader_same_precision": measured["vgg16"]["dropkit"] / measured["vgg16"]["conventional_bf16"],
        "vgg16_fp32_dropkit_vs_dataloader": measured["vgg16"]["dropkit_fp32"] / measured["vgg16"]["conventional_fp32"],
        "vgg16_cuda_graphs_vs_eager_steps": measured["vgg16"]["dropkit"] / measured["vgg16"]["dropkit_without_graphs"],
        "resnet9_dropkit_vs_dataloader": measured["resnet9"]["dropkit"] / measured["resnet9"]["conventional_fp32"],
        "fast_cifar10_sweep_within_1_gpu_hour": 1.0 / hours["fast"],
        "fast_vs_paper_sweep": hours["paper"] / hours["fast"],
    }
    for name, value in results.items():
        print(f"{name}: {value:.2f}x (target {TARGETS.get(name, 1.0):g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
