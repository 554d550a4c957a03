"""Speed of dropkit's exact GraNd and its O(N)-memory greedy k-center, against the obvious
implementations, in one run.

* **GraNd** (``dropkit.scores.per_sample_grad_norms``) against a per-sample autograd loop (one
  forward and one ``torch.autograd.grad`` over all trainable parameters per sample), on real
  Fashion-MNIST images, for the default model (``mlp``) and the small conv net (``cnn``).  The
  ratio compares time per sample; the loop runs on a subset (it is slow) and both results are
  checked to agree there (max relative difference printed).  The vmap path is timed too, for
  information.
* **k-center** (``dropkit.scores.k_center_greedy``) against a full pairwise-distance-matrix
  implementation (``torch.cdist`` of all N x N pairs, then the greedy loop over rows with a running
  minimum), on penultimate-layer embeddings of an MLP trained for ``--embed-epochs`` epochs on the
  first N Fashion-MNIST training images.  Both are timed for the full greedy order (what
  ``compute_scores("coreset")`` needs) and for a 10% budget (classic CoreSet selection; the
  matrix implementation computes every pair either way).  Each k-center measurement reports its
  peak resident memory above the state before the call (the kernel's high-water mark ``VmHWM``,
  reset just before, after ``malloc_trim`` hands freed heap pages back; on CUDA:
  ``torch.cuda.max_memory_allocated``).  The matrix is built in place (one N x N float32
  buffer, 4 N^2 bytes: 13.4 GiB at N = 60,000) at the largest N that fits in half of the memory
  available when the script starts (``MemAvailable``; on CUDA the device's free memory), or at
  ``--matrix-max``.  The speed ratio lines compare both implementations **at that same N**, and
  the output names it; when it is smaller than ``--kcenter-n`` the script also prints, as prose
  and not as a target line, the N^2 extrapolation of the matrix time to the full N (both its
  matrix and its full greedy loop are quadratic). The memory ratio uses the matrix's exact 4 N^2
  bytes at the full N.

Targets (issue 4): GraNd >= 10x for the default model and >= 3x for a small conv net on CPU;
k-center >= 5x faster than the matrix (at equal N, as large as memory allows up to 60,000) with
O(N) memory, which this script reports as the memory ratio with a bar of 10x.

    python benchmarks/scores.py            # N = 60,000 on one CPU thread (minutes)
    python benchmarks/scores.py --quick    # CI: small sizes, seconds
    python benchmarks/scores.py --device cuda

The last lines are ``<name>: <value>x (target <t>x)``.

Measured (2026-11-28, full run, one thread).  The 2-core shared dev box column is from after the
GraNd cache-sized CPU passes and the k-center changes of that day (GraNd: median of three runs
while the box was shared, so the loop baseline itself varied 2.1-7.3 ms/sample; two later runs
on the then quiet box gave grand_cnn_speedup 4.0x and 4.3x (0.70 / 0.61 vs 2.8 / 2.6 ms) and
kcenter_speedup_full_order 2.0x (26.6 vs 54.5 s)); NOTE: the k-center time ratios of the last
column divide an N^2 extrapolation from N = 15,000 by dropkit's time at N = 60,000, which the
script no longer reports as a target (measured at equal N the issue-18 review found 2.5-3.3x);
its k-center rows are one later run
(``--skip grand``, quiet box: 1-minute load 0.27 at the start, nothing else running) after the
pair filter, the squared-domain slack and the cheaper per-step pool (a second such run on the
final code, also quiet: full order 5.8x (9.1 vs 53.4 s), 10% budget 19.1x, memory 70x); the
other two columns predate all of these:

=============================  =====================  ====================  ======================
line                           16-core x86, idle      H200 (``--device      2-core shared dev box
                               (matrix built at       cuda``)               (matrix
                               N = 60,000)                                  extrapolated)
=============================  =====================  ====================  ======================
grand_mlp_speedup              92x (0.023 vs 2.1 ms)  153x                  59x (0.039 vs 2.3 ms)
grand_cnn_speedup              2.3x (1.0 vs 2.3 ms)   61x                   3.4x (0.72 vs 2.4 ms)
kcenter_speedup_full_order     1.8x (21.8 vs 39.7 s)  1.0x (3.5 vs 3.4 s)   6.3x (9.7 vs 60.8 s)
kcenter_speedup_10pct_budget   6.9x (3.9 vs 27.1 s)   1.0x                  20.4x (1.9 vs 39.8 s)
kcenter_memory_ratio           55x (+252 MiB vs       112x                  58x (+236 MiB)
                               +13.5 GiB)
=============================  =====================  ====================  ======================

The full greedy order has to consider every pair once, as the matrix does; on CPU for features
wider than 64 dropkit rules out ~99.6% of the pairs with a 35-wide product (32 principal
coordinates, the residual norm, bias and threshold columns) and computes exact 256-wide
distances for the rest, which is where its time gain comes from; the memory gain is 13.4 GiB for
the matrix at N = 60,000 against a few copies of the features.  The small conv net's batched
GraNd is bounded by its batched forward and backward passes, which cost about 0.6 ms per sample
on one CPU thread; on CPU it runs in cache-sized passes (about 90 samples for this net), whatever
the batch size.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from pathlib import Path

TARGETS = {"grand_mlp_speedup": 10.0, "grand_cnn_speedup": 3.0,
           "kcenter_speedup_full_order": 5.0, "kcenter_speedup_10pct_budget": 5.0,
           "kcenter_memory_ratio": 10.0}


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- GraNd


def loop_grad_norms(model, x, y):
    """The baseline: one forward and one autograd call per sample."""
    import torch
    import torch.nn.functional as F

    params = [p for p in model.parameters() if p.requires_grad]
    out = torch.empty(len(x), dtype=torch.float64)
    for i in range(len(x)):
        grads = torch.autograd.grad(F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), params)
        out[i] = torch.sqrt(sum(g.double().pow(2).sum() for g in grads))
    return out


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench_grand(args) -> dict:
    import torch

    from dropkit.data import load_dataset
    from dropkit.models import build_model
    from dropkit.scores import per_sample_grad_norms
    from dropkit.train import Normalizer

    data = load_dataset("fashion-mnist")
    device = torch.device(args.device)
    x = Normalizer.for_data(data, device)(data.x_train[:args.grand_n].to(device))
    y = data.y_train[:args.grand_n].to(device)
    results = {}
    for name in ("mlp", "cnn"):
        torch.manual_seed(0)
        model = build_model(name, num_classes=10, input_shape=data.input_shape).to(device)
        model.train()
        with torch.no_grad():  # realistic BatchNorm running statistics
            for start in range(0, min(len(x), 2048), 256):
                model(x[start:start + 256])
        model.eval()
        per_sample_grad_norms(model, x[:64], y[:64])  # warm-up
        per_sample_grad_norms(model, x[:8], y[:8], method="vmap")
        fast, fast_s = timed(lambda: per_sample_grad_norms(model, x, y))  # library default batch
        vmap_n = min(len(x), args.loop_n * 2)
        _, vmap_s = timed(lambda: per_sample_grad_norms(model, x[:vmap_n], y[:vmap_n], batch_size=128,
                                                        method="vmap"))
        loop, loop_s = timed(lambda: loop_grad_norms(model, x[:args.loop_n], y[:args.loop_n]))
        error = float(((fast[:args.loop_n] - loop).abs() / loop).max())
        ours_ms, loop_ms = 1e3 * fast_s / len(x), 1e3 * loop_s / args.loop_n
        vmap_ms = 1e3 * vmap_s / vmap_n
        results[name] = {"ours_ms_per_sample": ours_ms, "vmap_ms_per_sample": vmap_ms,
                         "loop_ms_per_sample": loop_ms, "max_rel_diff": error}
        print(f"GraNd {name}: dropkit {ours_ms:.3f} ms/sample ({len(x)} samples, "
              f"{len(x) / fast_s:.0f} samples/s; 60k in {60000 * ours_ms / 1e3:.1f} s), "
              f"vmap path {vmap_ms:.3f} ms/sample ({loop_ms / vmap_ms:.1f}x), "
              f"loop {loop_ms:.3f} ms/sample ({args.loop_n} samples); max rel. diff {error:.1e}",
              flush=True)
    return results


# --------------------------------------------------------------------------- k-center


def matrix_k_center(x, n_select: int, first: int = 0):
    """The baseline: the full N x N distance matrix, then the greedy loop over its rows."""
    import torch

    squared = (x * x).sum(1)
    dist = torch.mm(x, x.T).mul_(-2)                      # the one N x N buffer, filled in place
    dist.add_(squared[:, None]).add_(squared[None, :]).clamp_min_(0).sqrt_()
    order = torch.empty(n_select, dtype=torch.long, device=x.device)
    min_dist = dist[first].clone()
    idx = torch.tensor([first], device=x.device)
    for i in range(n_select):
        order[i:i + 1] = idx
        if i + 1 < n_select:
            torch.minimum(min_dist, dist.index_select(0, idx)[0], out=min_dist)
            min_dist.index_fill_(0, idx, -1.0)
            idx = min_dist.argmax().view(1)
    return order


def embeddings_for(args):
    """float32 [N, 256] penultimate features of an MLP (trained ``--embed-epochs`` epochs)."""
    import numpy as np
    import torch

    from dropkit.data import load_dataset
    from dropkit.models import build_model
    from dropkit.train import TrainConfig, embeddings, train

    data = load_dataset("fashion-mnist")
    indices = np.arange(min(args.kcenter_n, data.num_train))
    if args.embed_epochs > 0:
        result = train(data, "mlp", TrainConfig(epochs=args.embed_epochs, eval_every_epoch=False,
                                                device=args.device), train_indices=indices, progress=False)
        model = result.model
    else:
        torch.manual_seed(0)
        model = build_model("mlp", num_classes=10, input_shape=data.input_shape).to(args.device)
    return embeddings(model, data.x_train[torch.from_numpy(indices)], data=data).cpu()


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_k_center(which: str, features, fraction: float) -> dict:
    """Time and peak memory above the starting state of one k-center run on ``features``."""
    import gc

    import torch

    from dropkit.scores import k_center_greedy

    x = features.clone()
    budget = max(1, round(fraction * len(x)))
    run = (lambda: k_center_greedy(x, budget)) if which == "dropkit" else (lambda: matrix_k_center(x, budget))
    gc.collect()
    cuda = x.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        ctypes.CDLL("libc.so.6").malloc_trim(0)         # hand freed heap pages back to the OS
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to now
        before = _rss_kb("VmRSS") * 1024
    start = time.perf_counter()
    order = run()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if cuda else _rss_kb("VmHWM") * 1024
    del order
    return {"seconds": seconds, "peak_extra_bytes": max(0, peak - before), "budget": budget}


def matrix_n_that_fits(device: str, n: int, share: float = 0.5) -> int:
    """The largest N <= n whose float32 N x N matrix takes at most ``share`` of the free memory."""
    import math

    import torch

    if device.startswith("cuda"):
        free = torch.cuda.mem_get_info(torch.device(device))[0]
    else:
        free = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemAvailable:"))
    return max(1, min(n, math.isqrt(int(share * free) // 4)))


def bench_kcenter(args) -> dict:
    features = embeddings_for(args)
    n = len(features)
    if args.matrix_max is None:
        matrix_n = matrix_n_that_fits(args.device, n)
        print(f"k-center matrix: N={matrix_n} fits in half of the free memory", flush=True)
    else:
        matrix_n = min(n, args.matrix_max)
    print(f"k-center: {n} x {features.shape[1]} MLP embeddings of Fashion-MNIST "
          f"(query model trained {args.embed_epochs} epoch(s)), device {args.device}, "
          f"{args.threads} thread(s)", flush=True)
    results = {}
    features = features.to(args.device)
    for fraction, label in ((1.0, "full_order"), (0.1, "10pct_budget")):
        ours = measure_k_center("dropkit", features, fraction)
        matrix = measure_k_center("matrix", features[:matrix_n], fraction)
        ours_equal = ours if matrix_n == n else measure_k_center("dropkit", features[:matrix_n], fraction)
        matrix_bytes = 4 * n * n if matrix_n < n else matrix["peak_extra_bytes"]
        print(f"k-center {label} at equal N={matrix_n} ({matrix['budget']} centres): dropkit "
              f"{ours_equal['seconds']:.2f} s, matrix {matrix['seconds']:.2f} s "
              f"(peak +{matrix['peak_extra_bytes'] / 2**20:.0f} MiB): "
              f"{matrix['seconds'] / ours_equal['seconds']:.1f}x", flush=True)
        line = (f"k-center {label} at N={n} ({ours['budget']} centres): dropkit {ours['seconds']:.2f} s, "
                f"peak +{ours['peak_extra_bytes'] / 2**20:.0f} MiB")
        if matrix_n < n:
            scale = (n / matrix_n) ** 2
            line += (f"; the matrix did not fit at N={n} ({matrix_bytes / 2**30:.1f} GiB): its time "
                     f"EXTRAPOLATED as N^2 (x{scale:.1f}) would be {matrix['seconds'] * scale:.1f} s, "
                     f"{matrix['seconds'] * scale / ours['seconds']:.1f}x (not a measurement)")
        print(line, flush=True)
        results[label] = {"speedup": matrix["seconds"] / ours_equal["seconds"], "equal_n": matrix_n,
                          "memory_ratio": matrix_bytes / max(ours["peak_extra_bytes"], 1),
                          "extrapolated": matrix_n < n}
    return results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for CI (seconds)")
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--grand-n", type=int, default=4096, help="samples scored by dropkit's GraNd")
    parser.add_argument("--loop-n", type=int, default=256, help="samples scored by the baseline loop")
    parser.add_argument("--kcenter-n", type=int, default=60000, help="points for k-center")
    parser.add_argument("--matrix-max", type=int, default=None,
                        help="largest N at which the N x N matrix is built (default: the largest that "
                             "fits in half of the free memory)")
    parser.add_argument("--embed-epochs", type=int, default=1, help="training epochs of the embedding MLP")
    parser.add_argument("--skip", choices=("grand", "kcenter"), default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.grand_n, args.loop_n = 256, 32
        args.kcenter_n, args.matrix_max, args.embed_epochs = 3000, 3000, 0
    for name in ("threads", "grand_n", "loop_n", "kcenter_n", "matrix_max"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    args.loop_n = min(args.loop_n, args.grand_n)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    set_threads(args.threads)
    lines = {}
    if args.skip != "grand":
        grand = bench_grand(args)
        for name in ("mlp", "cnn"):
            lines[f"grand_{name}_speedup"] = grand[name]["loop_ms_per_sample"] / grand[name]["ours_ms_per_sample"]
    if args.skip != "kcenter":
        kcenter = bench_kcenter(args)
        lines["kcenter_speedup_full_order"] = kcenter["full_order"]["speedup"]
        lines["kcenter_speedup_10pct_budget"] = kcenter["10pct_budget"]["speedup"]
        lines["kcenter_memory_ratio"] = kcenter["full_order"]["memory_ratio"]
        equal_n = kcenter["full_order"]["equal_n"]
        print(f"(k-center speed ratios measured at equal N={equal_n}"
              + (f", smaller than N={args.kcenter_n}: the matrix did not fit in memory; memory ratio "
                 f"from the matrix's 4 N^2 bytes at N={args.kcenter_n})" if kcenter["full_order"]["extrapolated"]
                 else ")"))
    for name, value in lines.items():
        print(f"{name}: {value:.1f}x (target {TARGETS[name]:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
