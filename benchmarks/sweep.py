"""A representative sub-sweep from scratch: its wall time against the machine's floor, and CPU use.

The sub-sweep is one chapter's experiment set in one setting at one density and one seed
(default: the ``default`` profile's bias benchmark on the MLP at d = 0.1, seed 0: the full-data
run, Random, and every score method's query models and final run: 7 runs and 2 query trainings,
EL2N and GraNd from the same 5 short runs, Forgetting, Dynamic Uncertainty and CoreSet from one
full-length training; ``--setup cnn-fashion-mnist`` for the small CNN, ``--setup all`` for both;
``--densities all --seeds all`` for the whole chapter, several ``--experiment`` sets for several
chapters), run by ``dropkit.sweep.sweep`` into a fresh temporary store with the profile's workers
and threads, as ``dropkit sweep`` would.

* **Floor**: ``dropkit.cost.project_sweep``'s, the floor ``dropkit sweep --dry-run`` prints: the
  sub-sweep's FLOPs (``dropkit.cost``: every query and final training's sample passes times the
  model's FLOPs per forward and training pass, counted with ``FlopCounterMode``) at the rate of
  the model's own training kernels (``dropkit.cost.kernel_rate``: the matrix products of one
  training pass, forward and backward in their own shapes and transposes, called back to back on
  one thread with nothing in between), measured in this run before the sweep starts, on every
  core (``workers x threads``). No schedule on this machine can beat it: it assumes every core
  does nothing but those products at that rate all the time (no elementwise work, optimiser,
  data handling, evaluation bookkeeping, scoring beyond its passes, or process start-up). For
  comparison the script also prints the floor at the rate of the MLP's largest forward product
  alone (batch x 784 @ 784 x 512), which sessions 4-7 used: faster than the step's other
  products, so lower than any training of this MLP can reach.
* **Wall**: the sweep's measured wall time. **Utilisation**: the CPU time of the sweep and its
  workers over ``wall x workers x threads`` (``SweepReport.cpu_utilisation``).

    python benchmarks/sweep.py            # the default sub-sweep (about 2 minutes on 2 cores)
    python benchmarks/sweep.py --densities all --seeds all   # chapter 02's MLP rows (about 15 minutes)
    python benchmarks/sweep.py --quick    # CI: the smoke profile, seconds

The last lines are ``sweep_floor_over_wall: <floor / wall>x (target 0.77x)`` (0.77 = 1/1.3:
wall within 1.3x of the floor) and ``sweep_cpu_utilisation: <u>x (target 0.95x)``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"sweep_floor_over_wall": 1 / 1.3, "sweep_cpu_utilisation": 0.95}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--experiment", nargs="+", default=["bias_benchmark"],
                        help="one or more experiment sets, scheduled together (default %(default)s)")
    parser.add_argument("--densities", default="0.1",
                        help="comma-separated, or 'all' for the profile's (default %(default)s)")
    parser.add_argument("--seeds", default="0", help="comma-separated, or 'all' for the profile's (default %(default)s)")
    parser.add_argument("--setup", default="mlp-fashion-mnist",
                        help="the settings to run, comma-separated: those of each experiment set among them "
                        "(default %(default)s, that of 730 of the default profile's 1015 rows; "
                        "'all' for every setting)")
    parser.add_argument("--workers", type=int, default=None, help="default: the profile's")
    parser.add_argument("--threads", type=int, default=None, help="default: the profile's")
    parser.add_argument("--rate-seconds", type=float, default=1.0,
                        help="seconds per rate measurement, before and after the sweep (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help="CI: the smoke profile at one density")
    args = parser.parse_args(argv)
    if args.quick:
        args.profile, args.densities = "smoke", "0.3"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import os

    from dropkit.cost import matmul_rate, project_sweep
    from dropkit.profiles import experiment_specs, get_profile
    from dropkit.store import ResultStore
    from dropkit.sweep import sweep

    profile = get_profile(args.profile)
    options = {}
    if args.densities != "all":
        options["densities"] = [float(d) for d in args.densities.split(",")]
    if args.seeds != "all":
        options["seeds"] = [int(s) for s in args.seeds.split(",")]
    settings = [(experiment, setup.name) for experiment in args.experiment for setup in profile.setups_for(experiment)
                if args.setup == "all" or setup.name in args.setup.split(",")]
    if not settings:
        raise SystemExit(f"no setting {args.setup!r} in {args.experiment}")
    specs = list({spec.cache_key: spec for experiment, setup in settings
                  for spec in experiment_specs(profile, experiment, setup=setup, **options)}.values())
    experiments = "+".join(args.experiment)
    threads = args.threads or min(profile.threads, os.cpu_count() or 1)
    workers = args.workers or max(1, min(profile.workers, (os.cpu_count() or 1) // threads))
    batch = specs[0].batch_size
    projection = project_sweep(specs, workers=workers, threads=threads, seconds=args.rate_seconds)
    floor, flops = projection.floor_seconds, projection.flops
    mlp = {spec.model for spec in specs} == {"mlp"}
    largest = matmul_rate(1, shape=(batch, 784, 512), seconds=args.rate_seconds) if mlp else None
    kernels = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in projection.kernel_rates.items())
    steps = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in projection.training_rates.items())
    largest_line = (f"; largest forward product alone ({batch} x 784 @ 784 x 512) {largest / 1e9:.1f}"
                    if mlp else "")
    print(f"{profile.name}/{experiments} ({args.setup}) at densities {args.densities}, seeds {args.seeds}: "
          f"{len(specs)} runs and {projection.queries} query trainings ({projection.shared_queries} more queries "
          f"from them), {flops / 1e12:.2f} TFLOP; {workers} worker(s) x {threads} thread(s)\n"
          f"GFLOP/s per thread: training kernels alone {kernels}; training step {steps}{largest_line}\n"
          f"floor {floor:.1f} s (at the training kernels' rate); projected wall {projection.projected_seconds:.1f} s "
          f"(at the training step's rate, under the sweep's schedule)"
          + (f"; neither counts the greedy k-center orders of {projection.kcenter_orders} CoreSet "
             f"quer{'y' if projection.kcenter_orders == 1 else 'ies'}"
             if projection.kcenter_orders else ""), flush=True)
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        report = sweep(specs, ResultStore(root, profile.name), workers=workers, threads=threads,
                       progress=False)
        wall = time.perf_counter() - started
    # the rates again, after the sweep: the floor is the lower of the two (the machine at its fastest)
    again = project_sweep(specs, workers=workers, threads=threads, seconds=args.rate_seconds)
    kernels = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in again.kernel_rates.items())
    print(f"after the sweep: training kernels alone {kernels} GFLOP/s per thread, floor {again.floor_seconds:.1f} s")
    floor = min(floor, again.floor_seconds)
    print(f"sweep: ran {report.ran} runs in {wall:.1f} s wall ({wall / floor:.2f}x the floor), "
          f"CPU {report.cpu_seconds:.0f} s, utilisation {100 * report.cpu_utilisation:.1f}%")
    if mlp:
        largest_floor = flops / (largest * workers * threads)
        print(f"for comparison, at the largest forward product's rate: floor {largest_floor:.1f} s, "
              f"wall {wall / largest_floor:.2f}x that")
    print(f"sweep_floor_over_wall: {floor / wall:.2f}x (target {TARGETS['sweep_floor_over_wall']:.2f}x)")
    print(f"sweep_cpu_utilisation: {report.cpu_utilisation:.2f}x (target {TARGETS['sweep_cpu_utilisation']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
