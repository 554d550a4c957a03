"""Cost model of a sweep: exact pass counts, exact FLOPs of a linear network, positive rates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dropkit.cost import (ModelFlops, Passes, final_passes, kernel_rate, matmul_rate, model_flops, query_passes,
                          training_rate)
from dropkit.spec import RunSpec


def _spec(**fields):
    base = dict(dataset="fashion-mnist", model="mlp", epochs=10, drop_epochs=(5, 8), query_epochs=2,
                query_seeds=5)
    base.update(fields)
    return RunSpec(**base)


def test_pass_counts_follow_the_protocol():
    n, n_eval = 1000, 200
    full = _spec(protocol="none", density=1.0)
    assert query_passes(full, n, n_eval) == Passes()
    assert final_passes(full, n, n_eval) == Passes(train=10 * 1000, forward=200)
    el2n = _spec(protocol="strategy", method="el2n", density=0.3)
    assert final_passes(el2n, n, n_eval) == Passes(train=10 * 300, forward=200)
    # 5 short runs of 2 epochs, each scored once and evaluated once
    assert query_passes(el2n, n, n_eval) == Passes(train=5 * 2 * 1000, forward=5 * (1000 + 200))
    grand = _spec(protocol="strategy", method="grand", density=0.3)
    assert query_passes(grand, n, n_eval) == Passes(train=5 * (2 * 1000 + 1000), forward=5 * 200)
    forgetting = _spec(protocol="strategy", method="forgetting", density=0.3)
    assert query_passes(forgetting, n, n_eval) == Passes(train=10 * 1000, forward=200)
    scaled = _spec(protocol="random", density=0.5, epoch_scaling=True)
    assert final_passes(scaled, n, n_eval) == Passes(train=20 * 500, forward=200)


def test_linear_network_flops_are_exact():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3))
    flops = model_flops(model, (3, 2, 2), num_classes=3)
    forward = 2 * (12 * 8 + 8 * 4 + 4 * 3)
    # backward: weight gradients of every layer, input gradients of all but the first
    assert flops == ModelFlops(forward=forward, train=forward + forward + 2 * (8 * 4 + 4 * 3))
    assert Passes(train=10, forward=5).flops(flops) == 10 * flops.train + 5 * forward
    assert all(p.grad is None for p in model.parameters())


def test_measured_rates_are_positive_and_restore_threads():
    threads = torch.get_num_threads()
    assert matmul_rate(1, shape=(64, 32, 16), seconds=0.05) > 0
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    assert training_rate(model, (2, 2), 3, batch_size=8, seconds=0.05) > 0
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("name, channels_last", [("mlp", False), ("cnn", True)])
def test_kernel_floor_replays_exactly_the_counted_kernels_of_a_training_pass(name, channels_last):
    from torch.utils.flop_counter import FlopCounterMode

    from dropkit.cost import _training_kernels
    from dropkit.models import build_model

    model = build_model(name, num_classes=10, input_shape=(1, 28, 28))
    calls = _training_kernels(model, (1, 28, 28), 10, batch_size=16, channels_last=channels_last)
    with FlopCounterMode(display=False) as counter:
        for op, args, kwargs in calls:
            op(*args, **kwargs)
    # the replay does the training pass's FLOPs, no more and no less
    assert counter.get_total_flops() == model_flops(model, (1, 28, 28), 10).train * 16
    ops = {str(op.overloadpacket) for op, _, _ in calls}
    assert ops == ({"aten.mm", "aten.addmm"} if name == "mlp" else
                   {"aten.convolution", "aten.convolution_backward", "aten.mm", "aten.addmm"})
    if channels_last:  # the convolutions see NHWC inputs, as the run's do
        first = next(args[0] for op, args, _ in calls if str(op.overloadpacket) == "aten.convolution")
        assert first.is_contiguous(memory_format=torch.channels_last)
    # autograd's weight gradient multiplies a transposed view: the replay keeps its strides
    first_layer = [args for op, args, _ in calls if str(op.overloadpacket) == "aten.mm"][-1]
    assert not all(a.is_contiguous() for a in first_layer)
    threads = torch.get_num_threads()
    assert kernel_rate(model, (1, 28, 28), 10, batch_size=16, seconds=0.05, channels_last=channels_last) > 0
    assert torch.get_num_threads() == threads
    assert all(p.grad is None for p in model.parameters())


def test_training_rate_trains_in_the_specs_memory_format(monkeypatch):
    from dropkit.models import build_model

    seen = []
    for channels_last in (False, True):
        seen.clear()
        model = build_model("cnn", num_classes=3, input_shape=(3, 8, 8))
        real_forward = model.forward
        monkeypatch.setattr(model, "forward", lambda x, f=real_forward: seen.append(
            x.is_contiguous(memory_format=torch.channels_last)) or f(x))
        training_rate(model, (3, 8, 8), 3, batch_size=4, seconds=0.01, channels_last=channels_last)
        assert seen[-1] == channels_last   # the timed steps (the FLOP count runs first, in NCHW)
        assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_library_models_have_positive_flops(name):
    from dropkit.models import build_model

    flops = model_flops(build_model(name, num_classes=10, input_shape=(1, 28, 28)), (1, 28, 28), 10)
    assert 0 < flops.forward < flops.train <= 3 * flops.forward


def test_sweep_jobs_count_the_drop_recall_query_of_strategy_drop():
    from dropkit.cost import sweep_jobs
    from dropkit.runner import query_specs, recall_spec

    spec = _spec(protocol="strategy+drop", method="forgetting", density=0.5, recall_query="short",
                 train_subset=1000)
    queries = query_specs(spec)
    assert queries == (spec, recall_spec(spec)) and queries[1].method == "el2n"
    jobs, _ = sweep_jobs([spec])
    by_key = {job.key: job for job in jobs}
    wanted = {f"query:{q.query_key}" for q in queries}
    assert wanted <= set(by_key) and set(by_key[spec.cache_key].after) == wanted
    jobs, _ = sweep_jobs([spec], stored_queries={queries[1].query_key})
    assert {job.key for job in jobs} == {spec.cache_key, f"query:{spec.query_key}"}
    assert query_specs(_spec(protocol="none", density=1.0)) == ()
