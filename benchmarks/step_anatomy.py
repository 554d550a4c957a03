"""Where a training step's time goes: its matrix kernels, its other kernels, and the framework.

Issue 18's floor is a sweep's FLOPs at the rate of the model's own FLOP-counted kernels (matrix
products and convolutions, ``dropkit.cost.kernel_rate``). A training step also runs kernels that
count no FLOP (batch norm, ReLU, max pool, cross entropy, the SGD update, copies) and pays the
framework's own cost for every operation (Python, the dispatcher, autograd's bookkeeping, memory
allocation). This script separates the three for each bias-benchmark setup of the ``default``
profile (``--setup`` picks one), at the profile's batch size, learning rate, weight decay, memory
format and torch threads, on a random batch:

* ``step``: the eager SGD step as ``dropkit.cost.training_rate`` times it (zero the gradients,
  forward in training mode, cross entropy, backward, ``torch.optim.SGD`` with momentum 0.9);
* ``all kernels``: every ATen operation that one such step dispatches (recorded once with a
  ``TorchDispatchMode``, ``dropkit.cost._record_calls``, each with copies of its inputs, same
  shapes and strides), called back to back with nothing in between: the step without Python,
  autograd or the optimiser's loop, but with each kernel's own output allocation;
* ``FLOP kernels``: only the FLOP-counted ones among them (``dropkit.cost.kernel_rate``'s work).

With glibc, large temporaries are kept off freshly mapped pages for all three (``fix_allocator``).
It prints milliseconds per step (the median of ``--repeats`` timings of about ``--seconds`` each:
each repeat times the step, then records it and times the two replays), minor page faults per
step, the number of operations, the time of the operations without FLOPs timed one call at a
time (their sum, and the six slowest kinds), and the ratio lines, each ``(target 1x)``:
``<model>_step_over_flop_kernels`` (how far the step is from the floor's kernels),
``<model>_all_kernels_over_flop_kernels`` (how much of that the kernels without FLOPs explain on
their own: 1x would mean they cost nothing) and ``<model>_step_over_all_kernels`` (the rest, the
framework's share). The replay is no strict lower bound of the step: each replayed operation
reads its own copy of its inputs, colder in cache than the output the step hands it, so the last
ratio can fall below 1x, and then the framework costs less than that difference. A sweep's ratio
to its floor cannot be below its step's ratio to the FLOP kernels.

    python benchmarks/step_anatomy.py            # both setups, 5 repeats of 2 s (~1 min)
    python benchmarks/step_anatomy.py --quick    # CI: 2 repeats of 0.2 s
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--setup", default=None, help="one setup of the profile's bias benchmark (default: all)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one timing (default 2 s)")
    parser.add_argument("--repeats", type=int, default=5, help="timings of each part (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 timings of 0.2 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeats = 0.2, 2
    if args.seconds <= 0 or args.repeats < 1:
        parser.error("--seconds must be > 0 and --repeats >= 1")
    return args


def fix_allocator() -> bool:
    """Stop glibc from serving large temporaries from freshly mapped pages (``mallopt``: mmap
    threshold 32 MiB, its largest, and trim threshold 1 GiB, which also ends their adaptive
    adjustment), so that no part of the measurement pays page faults that depend on what else
    the process holds. Returns False where there is no glibc ``mallopt`` (nothing changed)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def per_call_seconds(function, seconds: float) -> tuple[float, float]:
    """Seconds per call of ``function`` over about ``seconds`` after one untimed call, and the
    process's minor page faults per call meanwhile."""
    import resource

    function()
    calls, faults, started = 0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    while True:
        function()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return elapsed / calls, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / calls


def measure_setup(profile, setup, args) -> tuple[dict[str, list[float]], dict[str, list[float]], int, int,
                                                dict[str, float]]:
    """Seconds per step of each part (``repeats`` values each), minor page faults per step, the
    numbers of operations a step dispatches and of FLOP-counted ones among them, and the seconds
    per step of each kind of operation without FLOPs (:func:`seconds_by_operation`).

    Every repeat times the step first, then records it and times the two replays (in alternating
    order), then drops the recording. (With glibc's default, adaptive thresholds, the recorded
    copies alone made the MLP step take about 850 page faults and 2 ms more: :func:`fix_allocator`.)"""
    import gc

    import torch
    import torch.nn.functional as F

    from dropkit.cost import _random_batch, _record_calls
    from dropkit.models import build_model

    torch.set_num_threads(profile.threads)
    input_shape, num_classes = (1, 28, 28), 10
    torch.manual_seed(0)
    model = build_model(setup.model, num_classes=num_classes, input_shape=input_shape)
    model, x, y = _random_batch(model, input_shape, num_classes, setup.batch_size, setup.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=setup.lr, momentum=0.9, weight_decay=setup.weight_decay)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    def replay(selected):
        def run():
            for op, op_args, op_kwargs, _ in selected:
                op(*op_args, **op_kwargs)
        return run

    step()  # the momentum buffers exist from the second step on: record a step like every later one
    parts = ("step", "all kernels", "FLOP kernels")
    seconds: dict[str, list[float]] = {name: [] for name in parts}
    faults: dict[str, list[float]] = {name: [] for name in parts}
    for repeat in range(args.repeats):
        timed = {"step": per_call_seconds(step, args.seconds)}
        calls = _record_calls(step)  # (op, args, kwargs, counts_flops), inputs copied
        flop_calls = [call for call in calls if call[3]]
        operations, flop_operations = len(calls), len(flop_calls)
        replays = {"all kernels": replay(calls), "FLOP kernels": replay(flop_calls)}
        for name in (list(replays) if repeat % 2 == 0 else list(replays)[::-1]):
            timed[name] = per_call_seconds(replays[name], args.seconds)
        if repeat == args.repeats - 1:
            by_op = seconds_by_operation(calls, args.seconds)
        del calls, flop_calls, replays
        gc.collect()
        for name, (per_step, per_step_faults) in timed.items():
            seconds[name].append(per_step)
            faults[name].append(per_step_faults)
    return seconds, faults, operations, flop_operations, by_op


def seconds_by_operation(calls: list, seconds: float) -> dict[str, float]:
    """Seconds per step of each kind of operation without FLOPs (``aten::`` name -> seconds),
    timed one call at a time over replays of ``calls`` for about ``seconds``, slowest first."""
    totals: dict[str, float] = {}
    replays, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or replays == 0:
        for op, op_args, op_kwargs, counts_flops in calls:
            before = time.perf_counter()
            op(*op_args, **op_kwargs)
            if not counts_flops:
                name = str(op.overloadpacket)
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - before
        replays += 1
    return dict(sorted(((name, total / replays) for name, total in totals.items()), key=lambda item: -item[1]))


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from dropkit.profiles import get_profile

    from train_throughput import setup_names  # this folder's twin script: the same --setup choice

    profile = get_profile(args.profile)
    fixed = fix_allocator()
    print("allocator: glibc mmap threshold 32 MiB, trim threshold 1 GiB" if fixed else
          "allocator: as found (no glibc mallopt); page faults may differ between the parts")
    lines = []
    for name in setup_names(args):
        setup = profile.setup(name)
        seconds, faults, operations, flop_operations, by_op = measure_setup(profile, setup, args)
        median = {part: statistics.median(values) for part, values in seconds.items()}
        print(f"{name}: model {setup.model}, batch {setup.batch_size}, "
              f"{'NHWC' if setup.channels_last else 'NCHW'}, {profile.threads} thread(s); a step dispatches "
              f"{operations} operations, {flop_operations} of them FLOP-counted")
        for part, values in seconds.items():
            print(f"  {part:12s} median {1e3 * median[part]:8.3f} ms per step  "
                  f"(timings: {', '.join(f'{1e3 * v:.3f}' for v in values)}; "
                  f"{statistics.median(faults[part]):.0f} page faults per step)")
        slowest = list(by_op.items())[:6]
        print(f"  without FLOPs, one call at a time, ms per step: {sum(by_op.values()) * 1e3:.3f} in all; "
              + ", ".join(f"{name.removeprefix('aten.')} {1e3 * value:.3f}" for name, value in slowest))
        for over, under in (("step", "FLOP kernels"), ("all kernels", "FLOP kernels"), ("step", "all kernels")):
            lines.append(f"{setup.model}_{over.replace(' ', '_').lower()}_over_{under.replace(' ', '_').lower()}: "
                         f"{median[over] / median[under]:.2f}x (target 1x)")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
