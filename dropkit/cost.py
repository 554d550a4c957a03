"""What a run costs before it runs: sample passes, FLOPs, and the machine's measured rates.

A run's work is counted in *sample passes*: one training pass is a forward and a backward pass of
one sample, one forward pass is an evaluation or scoring pass. Multiplying each by the model's
FLOPs per sample (both counted by ``torch.utils.flop_counter.FlopCounterMode`` on the real
forward and backward pass: matrix products and convolutions, a multiply-add being 2 FLOPs; the
backward pass computes no gradient for the input images, so a training pass of the MLP is about
2.25 forward passes, not 3) gives the run's FLOPs; dividing by a rate measured on the spot gives
seconds.

* :func:`query_passes` / :func:`final_passes`: the passes of a spec's query training (EL2N/GraNd:
  ``query_seeds`` short runs of ``query_epochs`` plus one scoring pass each; Forgetting, Dynamic
  Uncertainty, CoreSet, SSP: one full-length run of ``epochs``; all followed by validation and
  test evaluation) and of its final training (``round(density * N)`` samples for
  ``final_epochs``, then validation and test). GraNd's per-sample gradients are counted as one
  training pass per sample; CoreSet's k-center greedy is not counted (it is not a network pass).
* :func:`model_flops`: FLOPs of one sample's forward pass and of one training pass;
  :meth:`Passes.flops` turns passes into FLOPs.
* :func:`matmul_rate`: FLOP/s of float32 matrix products of one shape on this machine with the
  given torch threads, measured for ``seconds``.
* :func:`kernel_rate`: FLOP/s of a model's own training kernels (the matrix products and
  convolutions of one training pass, forward and backward, in their own shapes, called back to
  back with nothing in between): the *floor* of a sweep is its FLOPs at this rate on every core.
* :func:`sweep_jobs` / :func:`project_sweep`: the FLOPs of a sweep's missing query trainings and
  runs, its floor at the kernel rates, and its projected wall time under the sweep's own schedule
  at the measured training rates (what ``dropkit sweep --dry-run`` prints).
* :func:`training_rate`: FLOP/s of the real training step of a model (SGD, the given batch size),
  measured on random data: what a run actually gets; its ratio to :func:`kernel_rate` is the
  step's efficiency (on one thread of the 2-core AVX-512 development machine: the MLP's step
  runs at about the rate of a 512 x 512 product, the small conv net's at about a third).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dropkit.spec import SHORT_QUERY_METHODS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dropkit.spec import RunSpec

__all__ = ["Passes", "ModelFlops", "query_passes", "group_query_passes", "final_passes", "model_flops",
           "matmul_rate", "kernel_rate", "training_rate", "SweepProjection", "sweep_jobs", "project_sweep"]

_RECORD_METHODS = ("forgetting", "dynamic_uncertainty")  # dropkit.scores.RECORD_METHODS (that module imports torch)


@dataclass(frozen=True)
class Passes:
    """train: training sample passes (forward + backward); forward: forward-only sample passes."""

    train: float = 0.0
    forward: float = 0.0

    def __add__(self, other: "Passes") -> "Passes":
        return Passes(self.train + other.train, self.forward + other.forward)

    def flops(self, model: "ModelFlops") -> float:
        """The passes' FLOPs for a model with per-sample costs ``model``."""
        return self.train * model.train + self.forward * model.forward


@dataclass(frozen=True)
class ModelFlops:
    """FLOPs per sample of one forward pass and of one training pass (forward + backward)."""

    forward: float
    train: float


def _query_runs(spec: "RunSpec") -> list[tuple[int, float, bool]]:
    """``(seed offset, epochs, records)`` of each query run of ``spec`` (``dropkit.scores.query_runs``):
    ``query_seeds`` short runs of ``query_epochs`` for EL2N and GraNd, else one of ``epochs``."""
    if spec.method in SHORT_QUERY_METHODS:
        return [(i, spec.query_run_epochs, False) for i in range(spec.query_seeds)]
    return [(0, spec.query_run_epochs, spec.method in _RECORD_METHODS)]


def _scoring_passes(spec: "RunSpec", num_train: int) -> Passes:
    """Passes that score the training set after one query run of ``spec``: GraNd a training pass
    per sample (a per-sample gradient), EL2N, CoreSet and SSP a forward pass, the others none (their
    records come from the training passes)."""
    if spec.method == "grand":
        return Passes(train=num_train)
    return Passes(forward=num_train) if spec.method in ("el2n", "coreset", "ssp") else Passes()


def query_passes(spec: "RunSpec", num_train: int, num_eval: int) -> Passes:
    """Sample passes of ``spec``'s query training alone (zero for a spec without one): its runs'
    training, one evaluation (validation + test, ``num_eval`` samples) and scoring of each.

    num_train: training-set size N after subset/long tail; num_eval: validation + test samples.
    """
    return group_query_passes((spec,), num_train, num_eval) if spec.needs_query else Passes()


def group_query_passes(group: "Sequence[RunSpec]", num_train: int, num_eval: int) -> Passes:
    """Sample passes of a group of query trainings of ``dropkit.runner.query_groups`` (one
    ``query_training_key``), computed as ``dropkit.scores.compute_query_scores`` does: each query
    seed's longest run trained once (the others are its snapshots), each distinct run
    (seed, length, records) evaluated once, and every query's scoring of each of its runs."""
    longest: dict[int, float] = {}
    runs: set[tuple[int, float, bool]] = set()
    scoring = Passes()
    for spec in group:
        for run in _query_runs(spec):
            longest[run[0]] = max(longest.get(run[0], 0.0), run[1])
            runs.add(run)
            scoring = scoring + _scoring_passes(spec, num_train)
    return Passes(train=sum(longest.values()) * num_train, forward=len(runs) * num_eval) + scoring


def final_passes(spec: "RunSpec", num_train: int, num_eval: int) -> Passes:
    """Sample passes of ``spec``'s final training: ``round(density * N)`` samples for
    ``final_epochs`` epochs (augmentation does not change the count), then one evaluation pass
    over validation and test."""
    kept = num_train if spec.protocol == "none" else max(1, round(spec.density * num_train))
    return Passes(train=spec.final_epochs * kept, forward=num_eval)


def model_flops(model, input_shape: tuple[int, ...], num_classes: int) -> ModelFlops:
    """FLOPs per sample of ``model`` (an ``nn.Module``) on inputs ``[*input_shape]``.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` on a batch of 2 (batch norm needs more
    than one sample): the forward pass in evaluation mode, and a training pass (forward, cross
    entropy, backward with no gradient for the input) in training mode. Elementwise work is not
    counted. Gradients are cleared afterwards and the model's mode restored; batch-norm running
    statistics move by one batch of zeros, so pass a throwaway copy where that matters.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.zeros(2, *input_shape, device=device)
    y = torch.zeros(2, dtype=torch.long, device=device) % num_classes
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        forward = counter.get_total_flops() / 2
        model.train()
        with FlopCounterMode(display=False) as counter:
            F.cross_entropy(model(x), y).backward()
        train = counter.get_total_flops() / 2
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return ModelFlops(forward=float(forward), train=float(train))


def _rate(step, flops_per_step: float, seconds: float) -> float:
    step()  # warm-up: first-call allocations and kernel selection
    done, started = 0, time.perf_counter()
    while True:
        step()
        done += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done * flops_per_step / elapsed


def matmul_rate(threads: int = 1, *, shape: tuple[int, int, int] = (512, 512, 512),
                seconds: float = 0.5) -> float:
    """float32 FLOP/s of ``[m, k] @ [k, n]`` products (``shape = (m, k, n)``) on ``threads`` torch
    threads, measured for about ``seconds``: the matrix floor of a run on that many threads."""
    import torch

    m, k, n = shape
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(m, k, generator=generator)
        b = torch.randn(k, n, generator=generator)
        out = torch.empty(m, n)
        return _rate(lambda: torch.mm(a, b, out=out), 2.0 * m * k * n, seconds)
    finally:
        torch.set_num_threads(previous)


def _random_batch(model, input_shape: tuple[int, ...], num_classes: int, batch_size: int,
                  channels_last: bool) -> tuple:
    """``(model, x, y)``: a random float32 batch ``x [batch_size, *input_shape]`` with labels
    ``y [batch_size]`` (seed 0), and with ``channels_last`` on image input both ``x`` and the
    model (in place) in NHWC memory format, as a run of such a spec trains."""
    import torch

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, *input_shape, generator=generator)
    y = torch.randint(0, num_classes, (batch_size,), generator=generator)
    if channels_last and x.ndim == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, x, y


def _record_calls(function, *, flops_only: bool = False) -> list:
    """The ATen operations that ``function()`` dispatches, in call order, each as ``(op, args,
    kwargs, counts_flops)`` with its tensors copied (same shapes, strides, dtype), so each can be
    called again on its own inputs; ``counts_flops``: ``FlopCounterMode`` counts it (matrix
    products, convolutions and their backward). With ``flops_only`` only those are recorded."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_map
    from torch.utils.flop_counter import flop_registry

    calls = []

    def copy(value):
        return value.detach().clone() if isinstance(value, torch.Tensor) else value

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, op, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            counts_flops = op.overloadpacket in flop_registry
            if counts_flops or not flops_only:
                calls.append((op, *tree_map(copy, (args, kwargs)), counts_flops))
            return op(*args, **kwargs)

    with Recorder():
        function()
    return calls


def _training_kernels(model, input_shape: tuple[int, ...], num_classes: int, *, batch_size: int,
                      channels_last: bool) -> list:
    """The FLOP-counted kernel calls (those ``FlopCounterMode`` counts: matrix products,
    convolutions and their backward) of one training pass of ``model`` (forward in training mode,
    cross entropy, backward with no gradient for the input) on a random float32 batch, in call
    order, each as ``(op, args, kwargs)`` with its tensors copied (same shapes, strides, dtype)."""
    import torch.nn.functional as F

    model, x, y = _random_batch(model, input_shape, num_classes, batch_size, channels_last)
    was_training = model.training
    model.train()
    try:
        calls = _record_calls(lambda: F.cross_entropy(model(x), y).backward(), flops_only=True)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return [(op, args, kwargs) for op, args, kwargs, _ in calls]


def kernel_rate(model, input_shape: tuple[int, ...], num_classes: int, *, batch_size: int,
                threads: int = 1, seconds: float = 1.0, channels_last: bool = False) -> float:
    """FLOP/s of a training pass's own FLOP-counted kernels on ``threads`` torch threads: the
    matrix products and convolutions (forward and backward) of one training pass of ``model`` on a
    batch of ``batch_size``, recorded once, then called back to back on copies of their inputs
    (same shapes and strides, so the same transposes and memory formats) for about ``seconds``,
    with nothing else in between (no elementwise work, no optimiser, no data).

    Its FLOPs are :func:`model_flops`'s training pass times ``batch_size``, so this is the rate a
    training step would reach if everything but its kernels took no time: the floor of that
    model's training on this machine. (:func:`matmul_rate` in one shape instead measures that
    shape only; the MLP's smaller and transposed products are slower than its largest forward one.)
    Pass a throwaway copy of the model: batch-norm running statistics move by one random batch.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        calls = _training_kernels(model, input_shape, num_classes, batch_size=batch_size,
                                  channels_last=channels_last)

        def replay():
            for op, args, kwargs in calls:
                op(*args, **kwargs)

        with FlopCounterMode(display=False) as counter:
            replay()
        return _rate(replay, counter.get_total_flops(), seconds)
    finally:
        torch.set_num_threads(previous)


def training_rate(model, input_shape: tuple[int, ...], num_classes: int, *, batch_size: int,
                  threads: int = 1, seconds: float = 1.0, channels_last: bool = False) -> float:
    """FLOP/s (counted as :func:`model_flops`'s training pass per sample) of SGD steps
    of ``model`` on random float32 batches of ``batch_size`` on ``threads`` torch threads, in NHWC
    memory format with ``channels_last`` (as the runs of such a spec train); the model is trained
    on noise, so pass a throwaway copy."""
    import torch
    import torch.nn.functional as F

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        flops = model_flops(model, input_shape, num_classes).train * batch_size
        model, x, y = _random_batch(model, input_shape, num_classes, batch_size, channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        model.train()

        def step():
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

        return _rate(step, flops, seconds)
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------- whole sweeps


@dataclass(frozen=True)
class SweepProjection:
    """What the missing work of a sweep costs on this machine.

    queries, runs: groups of query trainings and final runs still to compute; shared_queries:
    further missing queries computed from those groups' trainings (the same runs, or snapshots of
    them: ``dropkit.runner.query_groups``), so they cost their evaluation and scoring only; flops:
    their FLOPs;
    kernel_rates: model name -> measured FLOP/s of its training pass's own kernels on one thread
    (:func:`kernel_rate`); floor_seconds: every job's FLOPs at its model's kernel rate, summed and
    divided by ``workers * threads``: every core running nothing but those kernels all the time, so
    no schedule can beat it; training_rates: model name -> measured FLOP/s of its training step on
    ``threads`` threads (:func:`training_rate`); projected_seconds: the wall time of the sweep's
    own schedule (:func:`dropkit.schedule.simulated_wall`) with every job taking its FLOPs at its
    model's training rate. kcenter_orders: missing CoreSet queries, each a greedy k-center order
    over its query model's embeddings: CPU work without a FLOP count, so neither the floor nor the
    projection includes it (on the ``default`` MLP's 60,000 embeddings it took 6.9 s of one thread
    in session 9's profile, ``benchmarks/README.md``).
    """

    queries: int
    runs: int
    flops: float
    kernel_rates: dict
    floor_seconds: float
    training_rates: dict
    projected_seconds: float
    shared_queries: int = 0
    kcenter_orders: int = 0


def sweep_jobs(specs, *, stored_queries=frozenset(), data_root=None) -> tuple[list, dict]:
    """The jobs (:class:`dropkit.schedule.Job`, cost in FLOPs) of running every spec in ``specs``
    and each distinct query training among them once (those whose query key is in
    ``stored_queries`` excepted; a group of prefixes, ``dropkit.runner.query_groups``, is one job
    named by its longest query, :func:`group_query_passes`), and spec cache key or
    ``"query:<query key>"`` -> model name.

    Loads each distinct training set once (``dropkit.runner.load_data``) for its sizes and builds
    each model once to count its FLOPs.
    """
    from dropkit.runner import query_plan

    specs = list(specs)
    return _plan_jobs(specs, query_plan(specs, stored_queries), data_root)


def _plan_jobs(specs: "Sequence[RunSpec]", plan, data_root) -> tuple[list, dict]:
    """:func:`sweep_jobs` of ``specs`` with their ``dropkit.runner.QueryPlan`` ``plan``: one job
    per group of ``plan.groups`` (in the order the specs first need them) and per spec, each spec
    after the groups of ``plan.waits_for``."""
    from dropkit.models import build_model
    from dropkit.runner import load_data
    from dropkit.schedule import Job

    sizes: dict = {}
    flops: dict = {}
    jobs: dict = {}
    models: dict = {}
    for spec in specs:
        data_key = (spec.dataset, spec.dataset_options, spec.train_subset, spec.imbalance_factor)
        if data_key not in sizes:
            data = load_data(spec, data_root)
            sizes[data_key] = (data.num_train, len(data.y_val) + len(data.y_test), data.input_shape,
                               data.num_classes)
        num_train, num_eval, input_shape, num_classes = sizes[data_key]
        model_key = (spec.model, input_shape, num_classes, spec.channels_last)
        if model_key not in flops:
            network = build_model(spec.model, num_classes=num_classes, input_shape=input_shape)
            flops[model_key] = model_flops(network, input_shape, num_classes)
        after = plan.waits_for[spec.cache_key]  # its own query training and that of its DRoP recalls
        for key in after:
            if key not in jobs:
                jobs[key] = Job(key, group_query_passes(plan.groups[key], num_train, num_eval).flops(flops[model_key]))
                models[key] = model_key
        if spec.cache_key not in jobs:
            jobs[spec.cache_key] = Job(spec.cache_key, final_passes(spec, num_train, num_eval).flops(flops[model_key]),
                                       after)
            models[spec.cache_key] = model_key
    return list(jobs.values()), models


def project_sweep(specs, *, workers: int, threads: int, stored_queries=frozenset(),
                  data_root=None, seconds: float = 0.5) -> SweepProjection:
    """Project the wall time of running ``specs`` (the missing runs of a sweep) on this machine:
    FLOPs from :func:`sweep_jobs`, rates measured now for about ``seconds`` each."""
    import copy

    from dropkit.models import build_model
    from dropkit.runner import query_plan
    from dropkit.schedule import Job, simulated_wall

    specs = list(specs)
    plan = query_plan(specs, stored_queries)
    jobs, models = _plan_jobs(specs, plan, data_root)
    rates, kernels = {}, {}
    for model_key in sorted(set(models.values()), key=str):
        name, input_shape, num_classes, channels_last = model_key
        batch = next(s.batch_size for s in specs if s.model == name)
        network = build_model(name, num_classes=num_classes, input_shape=input_shape)
        measure = dict(batch_size=batch, seconds=seconds, channels_last=channels_last)
        kernels[model_key] = kernel_rate(copy.deepcopy(network), input_shape, num_classes, threads=1, **measure)
        rates[model_key] = training_rate(copy.deepcopy(network), input_shape, num_classes, threads=threads, **measure)
    timed = [Job(job.key, job.cost / rates[models[job.key]], job.after) for job in jobs]

    def label(key):
        return key[0] + (" (NHWC)" if key[3] else "")

    return SweepProjection(
        queries=len(plan.groups), shared_queries=len(plan.group_of) - len(plan.groups),
        runs=sum(not job.key.startswith("query:") for job in jobs),
        flops=sum(job.cost for job in jobs), kernel_rates={label(k): v for k, v in kernels.items()},
        floor_seconds=sum(job.cost / kernels[models[job.key]] for job in jobs) / (workers * threads),
        training_rates={label(k): v for k, v in rates.items()},
        projected_seconds=simulated_wall(timed, workers),
        kcenter_orders=sum(query.method == "coreset" for group in plan.groups.values() for query in group),
    )
