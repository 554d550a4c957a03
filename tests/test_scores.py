"""dropkit.scores: every score on constructed cases with known answers, exact GraNd against a
per-sample autograd loop, greedy k-center against brute force and the optimal radius, and one
small end-to-end ``compute_scores`` per method family on real Fashion-MNIST."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn
import torch.nn.functional as F

from dropkit.scores import (
    METHODS, QueryConfig, ScoreResult, compute_prefix_scores, compute_scores, coreset_scores_from_order,
    dynamic_uncertainty_from_probs, el2n_from_logits, forgetting_from_correct, k_center_greedy,
    per_sample_grad_norms, prefix_query_mismatch, random_scores, ssp_from_embeddings,
)
from dropkit.select import select
from dropkit.train import TrainConfig, train

torch.set_num_threads(1)


# --------------------------------------------------------------------------- EL2N


@pytest.mark.parametrize("k", [2, 3, 10])
def test_el2n_of_a_uniform_predictor_has_the_closed_form(k):
    logits = torch.zeros(7, k, dtype=torch.float64)
    labels = torch.arange(7) % k
    expected = math.sqrt((1 - 1 / k) ** 2 + (k - 1) / k ** 2)
    np.testing.assert_allclose(el2n_from_logits(logits, labels, k).numpy(), expected, rtol=1e-15)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_el2n_refuses_non_finite_logits(bad):
    logits = torch.zeros(4, 3)
    logits[2, 1] = bad
    with pytest.raises(ValueError, match=r"logits hold NaN or infinite values in 1 of 4 rows \(first: row 2\)"):
        el2n_from_logits(logits, torch.tensor([0, 1, 2, 0]), 3)


def test_el2n_of_a_perfect_model_is_zero():
    labels = torch.tensor([0, 3, 9, 9, 5])
    logits = 1000.0 * F.one_hot(labels, 10).double()  # softmax is exactly one-hot
    assert torch.equal(el2n_from_logits(logits, labels, 10), torch.zeros(5, dtype=torch.float64))
    confident = 50.0 * F.one_hot(labels, 10).float()
    assert el2n_from_logits(confident, labels, 10).max() < 1e-20


def test_el2n_hand_computed_and_one_hot_width_from_num_classes():
    # softmax([0, ln 3]) = [1/4, 3/4]; label 1 -> sqrt(1/16 + 1/16)
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    assert el2n_from_logits(logits, torch.tensor([1]), 2).item() == pytest.approx(math.sqrt(2) / 4, rel=1e-14)
    # every label is 0, yet the one-hot has K = 4 columns
    out = el2n_from_logits(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), 4)
    assert out.shape == (3,) and torch.allclose(out, torch.full((3,), math.sqrt(0.75)))


def test_el2n_rejects_bad_input():
    with pytest.raises(ValueError, match="num_classes"):
        el2n_from_logits(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="labels"):
        el2n_from_logits(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="labels"):
        el2n_from_logits(torch.zeros(2, 3), torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="logits"):
        el2n_from_logits(torch.zeros(2), torch.zeros(2, dtype=torch.long), 2)


# --------------------------------------------------------------------------- GraNd


def loop_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The reference: one autograd call per sample, eval mode, all trainable parameters."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    norms = []
    for i in range(len(x)):
        grads = torch.autograd.grad(F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), params)
        norms.append(torch.sqrt(sum(g.double().pow(2).sum() for g in grads)))
    return torch.stack(norms)


def with_running_stats(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Give BatchNorm layers non-trivial running statistics (a few train-mode forwards)."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    return model


class OddConvNet(nn.Module):
    """Strided/padded conv with bias, BN2d, dilated conv, Linear on a [B, L, D] input, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 4, 2, dilation=2, bias=False)
        self.mix = nn.Linear(4, 5)
        self.head = nn.Linear(5 * 4, 3)

    def forward(self, x):
        h = self.conv2(torch.relu(self.bn(self.conv1(x))))          # [B, 4, 2, 2]
        h = torch.relu(self.mix(h.flatten(2).transpose(1, 2)))       # [B, 4, 5]
        return self.head(h.flatten(1))


def grand_models():
    from dropkit.models import build_model

    torch.manual_seed(0)
    yield pytest.param(build_model("mlp", num_classes=10, input_shape=(1, 12, 12)), (1, 12, 12), 10, id="mlp")
    yield pytest.param(build_model("cnn", num_classes=10, input_shape=(1, 12, 12)), (1, 12, 12), 10, id="cnn-bn")
    yield pytest.param(nn.Sequential(nn.Flatten(), nn.Linear(20, 16), nn.ReLU(inplace=True), nn.Linear(16, 4)),
                       (20,), 4, id="mlp-with-bias")
    yield pytest.param(OddConvNet(), (2, 7, 7), 3, id="odd-conv")


@pytest.mark.parametrize("model,shape,k", list(grand_models()))
def test_grand_equals_a_per_sample_autograd_loop(model, shape, k):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(24, *shape, generator=generator)
    y = torch.randint(0, k, (24,), generator=generator)
    with_running_stats(model, torch.randn(32, *shape, generator=generator))
    reference = loop_grad_norms(model, x, y)
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for method in ("identity", "vmap"):
        norms = per_sample_grad_norms(model, x, y, batch_size=10, method=method)
        assert norms.dtype == torch.float64 and norms.shape == (24,)
        torch.testing.assert_close(norms, reference, rtol=1e-5, atol=0)
    assert model.training, "the model's train/eval mode is restored"
    assert all(torch.equal(before[n], p) and p.grad is None for n, p in model.named_parameters())


def test_grand_linear_model_closed_form():
    # logits = W x + b with W = 0, b = 0: grad_W = (p - e_y) x^T, grad_b = p - e_y, p uniform
    model = nn.Linear(6, 4)
    nn.init.zeros_(model.weight), nn.init.zeros_(model.bias)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0])
    expected = math.sqrt(0.75) * torch.sqrt(x.double().pow(2).sum(1) + 1)
    torch.testing.assert_close(per_sample_grad_norms(model, x, y), expected, rtol=1e-6, atol=0)


def test_grand_frozen_parameters_are_left_out():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    model[0].weight.requires_grad_(False)
    x, y = torch.randn(9, 8), torch.randint(0, 3, (9,))
    reference = loop_grad_norms(model, x, y)
    torch.testing.assert_close(per_sample_grad_norms(model, x, y, method="identity"), reference, rtol=1e-5, atol=0)


class ReusedLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(5, 5)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        return self.head(torch.tanh(self.shared(torch.tanh(self.shared(x)))))


def test_grand_reused_layer_falls_back_to_vmap_and_identity_refuses():
    torch.manual_seed(0)
    model = ReusedLayer()
    x, y = torch.randn(7, 5), torch.randint(0, 2, (7,))
    torch.testing.assert_close(per_sample_grad_norms(model, x, y), loop_grad_norms(model, x, y), rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="identity"):
        per_sample_grad_norms(model, x, y, method="identity")
    with pytest.raises(ValueError, match="identity"):
        per_sample_grad_norms(nn.Sequential(nn.Flatten(), nn.LayerNorm(5), nn.Linear(5, 2)), x, y,
                              method="identity")


def test_grand_rejects_bad_input():
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="method"):
        per_sample_grad_norms(model, torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), method="loop")
    with pytest.raises(ValueError, match="same N"):
        per_sample_grad_norms(model, torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="float"):
        per_sample_grad_norms(model, torch.zeros(2, 3, dtype=torch.uint8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="batch_size"):
        per_sample_grad_norms(model, torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), batch_size=0)


@pytest.mark.parametrize("conv", [
    nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(1, 2, 1),
    nn.Conv2d(2, 5, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    nn.Conv2d(2, 2, 4, stride=3, padding=2, dilation=2),
], ids=["same", "1x1", "rect-strided-dilated", "big-stride"])
def test_grand_conv_patches_equal_unfold(conv):
    from dropkit.scores.grand import _conv_patches

    a = torch.randn(3, conv.in_channels, 11, 9, generator=torch.Generator().manual_seed(0))
    expected = F.unfold(a, conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
    patches = _conv_patches(conv, a)
    assert torch.equal(patches, expected)
    assert patches.shape[2] == conv(a)[0, 0].numel()  # one patch per output position


def test_grand_cpu_passes_are_cache_sized_and_exact(monkeypatch):
    from dropkit.models import build_model
    from dropkit.scores import grand

    torch.manual_seed(0)
    model = build_model("cnn", num_classes=10, input_shape=(1, 12, 12))
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(50, 1, 12, 12, generator=generator)
    y = torch.randint(0, 10, (50,), generator=generator)
    with_running_stats(model, torch.randn(32, 1, 12, 12, generator=generator))
    reference = loop_grad_norms(model, x, y)
    passes = []
    model.register_forward_pre_hook(lambda module, args: passes.append(args[0].shape[0]))
    # Hooked outputs per sample of this cnn on 12 x 12 inputs: conv + BN outputs of 16 x 12 x 12,
    # 32 x 6 x 6, 64 x 3 x 3 and 64 x 1 x 1, plus 10 logits = 8202 floats.
    monkeypatch.setattr(grand, "CPU_FIRST_ROWS", 4)
    monkeypatch.setattr(grand, "CPU_ACTIVATION_FLOATS", 12 * 8202 + 100)
    small = per_sample_grad_norms(model, x, y, batch_size=20)
    assert passes == [4, 12, 12, 12, 10]
    torch.testing.assert_close(small, reference, rtol=1e-5, atol=0)
    passes.clear()
    monkeypatch.setattr(grand, "CPU_ACTIVATION_FLOATS", 10**9)  # capped by batch_size
    torch.testing.assert_close(per_sample_grad_norms(model, x, y, batch_size=20), reference, rtol=1e-5, atol=0)
    assert passes == [4, 20, 20, 6]


# --------------------------------------------------------------------------- Forgetting


SCRIPT = np.array([  # columns = samples, rows = epochs
    [1, 0, 1, 0, 1, 0],
    [0, 1, 1, 0, 1, 1],
    [1, 1, 1, 0, 1, 0],
    [0, 1, 1, 0, 1, 1],
    [1, 1, 0, 0, 1, 0],
], dtype=bool)


def test_forgetting_counts_correct_to_incorrect_transitions():
    # s0: 1,0,1,0,1 -> 2   s1: 0,1,1,1,1 -> 0   s2: 1,1,1,1,0 -> 1
    # s3: never learned   s4: always correct -> 0   s5: 0,1,0,1,0 -> 2
    np.testing.assert_array_equal(forgetting_from_correct(SCRIPT), [2, 0, 1, 5, 0, 2])
    np.testing.assert_array_equal(forgetting_from_correct(SCRIPT, never_learned="zero"), [2, 0, 1, 0, 0, 2])
    np.testing.assert_array_equal(forgetting_from_correct(SCRIPT.astype(np.uint8)), [2, 0, 1, 5, 0, 2])
    # never-learned outranks every achievable count, even the maximum floor(E / 2)
    alternating = np.array([[1], [0], [1], [0]], dtype=bool)
    assert forgetting_from_correct(np.hstack([alternating, np.zeros((4, 1), bool)])).tolist() == [2.0, 4.0]


def test_forgetting_rejects_bad_input():
    with pytest.raises(ValueError, match="never_learned"):
        forgetting_from_correct(SCRIPT, never_learned="inf")
    with pytest.raises(ValueError, match="2-D"):
        forgetting_from_correct(SCRIPT[0])
    with pytest.raises(ValueError, match="0/1"):
        forgetting_from_correct(SCRIPT.astype(int) * 2)


# --------------------------------------------------------------------------- Dynamic Uncertainty


def test_dynamic_uncertainty_hand_computed():
    p = np.array([  # columns = samples
        [0.5, 0.0, 0.0],
        [0.5, 0.3, 1.0],
        [0.5, 0.6, 0.0],
        [0.5, 0.9, 0.0],
    ])
    # window 3: windows k = 0, 1. s0 constant -> 0; s1 linear steps 0.3 -> sample std 0.3 in both;
    # s2: [0,1,0] and [1,0,0] both have sample std sqrt(1/3)
    np.testing.assert_allclose(dynamic_uncertainty_from_probs(p, window=3), [0, 0.3, math.sqrt(1 / 3)], atol=1e-15)
    # window 2: s2 windows [0,1], [1,0], [0,0] -> (1/sqrt2 + 1/sqrt2 + 0) / 3
    assert dynamic_uncertainty_from_probs(p, window=2)[2] == pytest.approx(2 / math.sqrt(2) / 3, rel=1e-14)


def test_dynamic_uncertainty_short_runs_use_one_window_with_a_warning():
    p = np.array([[0.0], [0.5], [1.0]])
    with pytest.warns(UserWarning, match="window"):
        assert dynamic_uncertainty_from_probs(p, window=10)[0] == pytest.approx(0.5, rel=1e-14)
    with pytest.raises(ValueError, match="at least 2"):
        dynamic_uncertainty_from_probs(p[:1], window=10)
    with pytest.raises(ValueError, match="window"):
        dynamic_uncertainty_from_probs(p, window=1)
    with pytest.raises(ValueError, match="probabilities"):
        dynamic_uncertainty_from_probs(p + 0.5, window=2)


# --------------------------------------------------------------------------- k-center


def brute_force_greedy(x: np.ndarray, n: int, first: int = 0) -> list[int]:
    """Greedy k-center from the full float64 distance matrix; ties to the lowest index."""
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    order, min_dist = [first], d[first].copy()
    min_dist[first] = -1
    while len(order) < n:
        i = int(np.argmax(min_dist))  # first maximum
        order.append(i)
        min_dist = np.minimum(min_dist, d[i])
        min_dist[order] = -1
    return order


def covering_radius(x: np.ndarray, centres) -> float:
    d = np.sqrt(((x[:, None, :] - x[None, list(centres), :]) ** 2).sum(-1))
    return float(d.min(1).max())


@pytest.mark.parametrize("method", ["dense", "blocked"])
def test_k_center_equals_brute_force_on_integer_points_with_many_ties(method):
    rng = np.random.default_rng(0)
    for trial in range(6):
        x = rng.integers(0, 4, size=(120, 3)).astype(np.float32)  # duplicates and exact ties
        first = int(rng.integers(120))
        order = k_center_greedy(torch.from_numpy(x), 120, first=first, method=method, block_size=5)
        assert order.dtype == torch.int64
        assert order.tolist() == brute_force_greedy(x.astype(np.float64), 120, first)


@pytest.mark.parametrize("method", ["dense", "blocked"])
def test_k_center_equals_brute_force_on_gaussian_points(method):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 6))
    order = k_center_greedy(torch.from_numpy(x), 150, method=method, block_size=16)
    expected = brute_force_greedy(x, 150)
    assert order.tolist() == expected
    for m in (1, 10, 150):  # same covering radius at every budget
        assert covering_radius(x, order[:m].tolist()) == covering_radius(x, expected[:m])


def low_dimensional_wide_points(seed: int, n: int = 300, width: int = 80) -> np.ndarray:
    """float64 ``[n, width]``: integer lattice points of {0..3}^3 mapped by a 0/1 matrix into
    ``width`` dims (low intrinsic dimension, duplicates, exact ties), plus multiples of 1/64 on one
    coordinate (near-ties); every distance is exact in float64."""
    rng = np.random.default_rng(seed)
    lattice = rng.integers(0, 4, size=(n, 3)).astype(np.float64)
    x = lattice @ rng.integers(0, 2, size=(3, width)).astype(np.float64)
    x[:, 0] += rng.integers(0, 3, size=n) / 64.0
    return x


def test_k_center_pair_filter_prunes_and_stays_exact(monkeypatch):
    """Features wider than 64: block updates go pair by pair through the projected lower bounds
    (_apply_filtered); most pairs are ruled out and the order is still the brute-force one."""
    from dropkit.scores import coreset

    counts = []  # (pairs given exact distances, all pairs) per filtered block update
    original_sampled = torch.sparse.sampled_addmm

    def recording(pairs, mat1, mat2, **kwargs):
        counts.append((pairs.col_indices().numel(), mat1.shape[0] * mat2.shape[1]))
        return original_sampled(pairs, mat1, mat2, **kwargs)

    monkeypatch.setattr(torch.sparse, "sampled_addmm", recording)
    for seed in range(3):
        x = low_dimensional_wide_points(seed)
        assert x.shape[1] > 2 * coreset._BlockedGreedy.PROJECTION_DIMS  # the filter is used
        first = 7 * seed
        expected = brute_force_greedy(x, 300, first)
        blocked = k_center_greedy(torch.from_numpy(x), 300, first=first, method="blocked", block_size=8)
        assert blocked.tolist() == expected
        assert torch.equal(blocked, k_center_greedy(torch.from_numpy(x), 300, first=first, method="dense"))
    assert counts
    assert sum(c for c, _ in counts) < 0.5 * sum(total for _, total in counts)


@pytest.mark.parametrize("dense_fraction", [0, 10**9])
def test_k_center_pair_filter_sparse_and_dense_chunks_stay_exact(monkeypatch, dense_fraction):
    """The filtered block update gives a chunk with many pairs left the full product instead of
    the sampled one (DENSE_FRACTION); either way the order is the brute-force one."""
    from dropkit.scores import coreset

    monkeypatch.setattr(coreset._BlockedGreedy, "DENSE_FRACTION", dense_fraction)
    for seed in (3, 4):
        x = low_dimensional_wide_points(seed, n=250, width=70)
        expected = brute_force_greedy(x, 250, seed)
        for chunk_size in (50, 10**6):  # several chunks; one chunk, buffers sized by N
            order = k_center_greedy(torch.from_numpy(x), 250, first=seed, method="blocked",
                                    block_size=7, chunk_size=chunk_size)
            assert order.tolist() == expected


def test_pair_filter_bound_is_a_lower_bound_and_tight_on_the_subspace():
    from dropkit.scores.coreset import _pair_filter_features, _principal_basis

    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 100)).astype(np.float32) * rng.uniform(0.1, 3.0, size=100).astype(np.float32)
    u, usq = _pair_filter_features(x, _principal_basis(x, 8, dtype=np.float64))
    assert u.shape == (300, 9)
    lower = np.sqrt(np.maximum(usq[:, None] + usq[None, :] - 2.0 * u.astype(np.float64) @ u.T.astype(np.float64), 0))
    true = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    tolerance = 1e-6 * float(usq.max())  # float32 rounding of the squared norms
    assert (lower ** 2 <= true ** 2 + tolerance).all()
    assert (lower > 0.3 * true).mean() > 0.5  # not vacuous
    # points in a subspace spanned by the basis: the bound is the distance
    flat = (rng.standard_normal((200, 3)) @ rng.standard_normal((3, 100))).astype(np.float32)
    u, usq = _pair_filter_features(flat, _principal_basis(flat, 8, dtype=np.float64))
    lower = np.sqrt(np.maximum(usq[:, None] + usq[None, :] - 2.0 * u.astype(np.float64) @ u.T.astype(np.float64), 0))
    true = np.sqrt(((flat[:, None, :].astype(np.float64) - flat[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(lower, true, atol=1e-3 * true.max())


@pytest.mark.parametrize("width", [8, 65, 130, 300])
def test_k_center_blocked_equals_dense_on_random_points(width):
    rng = np.random.default_rng(width)
    x = torch.from_numpy(rng.standard_normal((2000, width)))  # float64: no near-ties
    for block_size in (16, 128):
        blocked = k_center_greedy(x, 2000, first=3, method="blocked", block_size=block_size, chunk_size=700)
        assert torch.equal(blocked, k_center_greedy(x, 2000, first=3, method="dense"))


def test_k_center_principal_basis_is_orthonormal_and_spans_the_data():
    from dropkit.scores.coreset import _principal_basis

    rng = np.random.default_rng(3)
    directions = np.linalg.qr(rng.standard_normal((40, 2)))[0]  # data in a 2-D subspace of 40 dims
    x = (rng.standard_normal((500, 2)) * [5.0, 1.0]) @ directions.T + 3.0
    basis = _principal_basis(x, 2, chunk=64)
    assert basis.shape == (40, 2)
    np.testing.assert_allclose(basis.T @ basis, np.eye(2), atol=1e-12)
    centred = x - x.mean(0)
    np.testing.assert_allclose(centred @ basis @ basis.T, centred, atol=1e-9)  # nothing lost
    # projected distances never exceed the true ones
    projected = x @ basis
    assert (np.linalg.norm(projected[1:] - projected[0], axis=1)
            <= np.linalg.norm(x[1:] - x[0], axis=1) + 1e-9).all()


def test_k_center_is_within_twice_the_optimal_radius():
    rng = np.random.default_rng(2)
    for trial in range(5):
        x = rng.standard_normal((10, 2))
        for k in (2, 3, 4):
            greedy = covering_radius(x, k_center_greedy(torch.from_numpy(x), k).tolist())
            optimal = min(covering_radius(x, c) for c in itertools.combinations(range(10), k))
            assert optimal <= greedy <= 2 * optimal + 1e-12


def test_k_center_ties_go_to_the_lowest_index_and_orders_are_nested():
    x = torch.tensor([[0.0], [2.0], [-2.0], [1.0]])
    assert k_center_greedy(x, 4).tolist() == [0, 1, 2, 3]
    assert k_center_greedy(x, 4, first=3).tolist() == [3, 2, 0, 1]  # 0 and 1 tie at distance 1
    same = torch.ones(5, 3)
    for method in ("dense", "blocked"):
        assert k_center_greedy(same, 5, first=2, method=method).tolist() == [2, 0, 1, 3, 4]
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    full = k_center_greedy(x, 300, block_size=7)
    assert sorted(full.tolist()) == list(range(300))
    assert torch.equal(k_center_greedy(x, 37, block_size=7), full[:37])
    assert k_center_greedy(x, 0).shape == (0,)


def test_coreset_scores_keep_the_greedy_prefix():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    order = k_center_greedy(x, 50)
    scores = coreset_scores_from_order(order, 50)
    assert scores[order[0]] == 50 and scores[order[-1]] == 1
    labels = np.zeros(50, dtype=np.int64)
    assert select(labels, 0.2, scores=scores).tolist() == sorted(order[:10].tolist())
    partial = coreset_scores_from_order(order[:5], 50)
    assert (partial > 0).sum() == 5
    with pytest.raises(ValueError, match="distinct"):
        coreset_scores_from_order(torch.tensor([1, 1]), 50)


def test_k_center_rejects_bad_input():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="n_select"):
        k_center_greedy(x, 5)
    with pytest.raises(ValueError, match="first"):
        k_center_greedy(x, 2, first=4)
    with pytest.raises(ValueError, match="method"):
        k_center_greedy(x, 2, method="matrix")
    with pytest.raises(ValueError, match="NaN"):
        k_center_greedy(torch.full((3, 2), float("nan")), 2)
    for bad in (float("inf"), -float("inf")):
        y = torch.ones(5, 2)
        y[3, 1] = bad
        with pytest.raises(ValueError, match="infinite"):
            k_center_greedy(y, 2)
    # finite values whose float32 sum overflows are accepted (the sum is only a fast path)
    huge = torch.tensor([[3e38, 0.0], [3e38, 1.0], [0.0, 2.0]])
    assert sorted(k_center_greedy(huge, 3, method="dense").tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="2-D"):
        k_center_greedy(torch.zeros(4), 2)


# --------------------------------------------------------------------------- SSP, random


def test_ssp_is_the_distance_to_the_class_mean():
    emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [-1.0, 0.0], [-1.0, 0.0], [10.0, 10.0], [10.0, 14.0]])
    labels = torch.tensor([0, 0, 0, 0, 2, 2])  # class 1 is absent
    torch.testing.assert_close(ssp_from_embeddings(emb, labels), torch.tensor([0.0, 2.0, 1.0, 1.0, 2.0, 2.0]))
    # the farthest sample of class 0 is kept first, the prototype-like one last
    kept = select(labels.numpy(), 0.5, scores=ssp_from_embeddings(emb, labels).numpy())
    assert 1 in kept and 0 not in kept
    with pytest.raises(ValueError, match="labels"):
        ssp_from_embeddings(emb, labels[:3])


def test_random_scores_are_seeded_uniform():
    a, b = random_scores(1000, 7), random_scores(1000, 7)
    assert np.array_equal(a, b) and not np.array_equal(a, random_scores(1000, 8))
    assert a.dtype == np.float64 and a.min() >= 0 and a.max() < 1 and abs(a.mean() - 0.5) < 0.05
    with pytest.raises(ValueError, match="seed"):
        random_scores(3, -1)


# --------------------------------------------------------------------------- query protocol


def test_query_config_validates_and_builds_train_configs():
    q = QueryConfig(TrainConfig(epochs=2, drop_epochs=(1, 15)), num_seeds=1)
    assert q.full_length == 20
    assert q.train_config(full=False).drop_epochs == (1,)
    full = q.train_config(full=True, seed=4, record_per_sample=True)
    assert (full.epochs, full.drop_epochs, full.seed, full.record_per_sample) == (20, (1, 15), 4, True)
    with pytest.raises(ValueError, match="num_seeds"):
        QueryConfig(num_seeds=0)
    with pytest.raises(ValueError, match="never_learned"):
        QueryConfig(never_learned="inf")
    with pytest.raises(ValueError, match="training must be a TrainConfig"):
        QueryConfig(2)  # the training options live in its TrainConfig only
    with pytest.raises(ValueError, match="method"):
        compute_scores("el2m", None, model="mlp")


@pytest.fixture(scope="module")
def fashion_subset():
    from dropkit.data import load_dataset

    data = load_dataset("fashion-mnist")
    labels = data.y_train.numpy()
    rng = np.random.default_rng(0)
    indices = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:200] for k in range(10)]))
    return data, indices


def test_compute_scores_short_queries_el2n_and_grand(fashion_subset):
    from dropkit.train import predict_logits

    data, indices = fashion_subset
    query = QueryConfig(TrainConfig(epochs=1, seed=3), num_seeds=2)
    el2n = compute_scores("el2n", data, model="mlp", query=query, train_indices=indices, progress=False)
    assert isinstance(el2n, ScoreResult) and el2n.scores.shape == (2000,) and len(el2n.models) == 2
    assert el2n.val_recalls.shape == (10,) and np.all((0 <= el2n.val_recalls) & (el2n.val_recalls <= 1))
    np.testing.assert_allclose(el2n.val_recalls, np.mean([r.val_recalls for r in el2n.runs], axis=0))
    x, y = data.x_train[indices], data.y_train[indices]
    expected = np.mean([el2n_from_logits(predict_logits(m, x, data=data), y, 10).numpy() for m in el2n.models], axis=0)
    np.testing.assert_allclose(el2n.scores, expected, rtol=1e-6)
    # the query models learned something: misclassified samples have larger EL2N on average
    wrong = predict_logits(el2n.models[0], x, data=data).argmax(1) != y
    assert el2n.scores[wrong.numpy()].mean() > el2n.scores[~wrong.numpy()].mean() + 0.3

    grand = compute_scores("grand", data, model="mlp", query=query, train_indices=indices, progress=False)
    np.testing.assert_array_equal(grand.val_recalls, el2n.val_recalls)  # same seeds, same query models
    assert np.all(grand.scores > 0)
    assert spearmanr(grand.scores, el2n.scores).statistic > 0.7  # GraNd ~ EL2N (Paul et al.)
    again = compute_scores("grand", data, model="mlp", query=query, train_indices=indices, progress=False)
    np.testing.assert_array_equal(again.scores, grand.scores)


# --------------------------------------------------------------------------- prefix snapshots


@pytest.fixture(scope="module")
def tiny_fashion_mnist(tmp_path_factory):
    """The IDX test files of ``tests/dataset_fixtures.py``: 80 training images, 20 validation."""
    import dataset_fixtures as fx
    from dropkit.data import load_dataset

    root = tmp_path_factory.mktemp("fm")
    fx.write_fashion_mnist(root / "fashion-mnist", n_train=80, n_test=40, seed=3)
    return load_dataset("fashion-mnist", root=root, download=False)


def _query(epochs: float, **training) -> QueryConfig:
    """A short query of ``epochs`` as dropkit.runner builds it (ceil(q) epochs, the last one cut),
    batches of 8 (10 per epoch: 0.3 epoch = 3 steps), the final model's drops at 5 and 8."""
    whole = math.ceil(epochs)
    options = dict(epochs=whole, last_epoch_fraction=float(epochs - whole + 1), batch_size=8, drop_epochs=(5, 8),
                   seed=11) | training
    return QueryConfig(TrainConfig(**options), full_epochs=10, num_seeds=2, score_batch_size=16)


@pytest.mark.parametrize("method", ["el2n", "grand"])
def test_prefix_scores_equal_those_of_separate_shorter_query_trainings(tiny_fashion_mnist, method, monkeypatch):
    import dropkit.scores.query as query_module

    trainings = []
    monkeypatch.setattr(query_module, "train", lambda *a, **k: trainings.append(k["prefixes"]) or train(*a, **k))
    lengths = (0.3, 5, 2)                                         # a fraction of an epoch, whole epochs
    together = compute_prefix_scores(method, tiny_fashion_mnist, model="mlp", queries=[_query(q) for q in lengths],
                                     progress=False)
    assert len(trainings) == 2 and all(len(prefixes) == 2 for prefixes in trainings)  # one per query seed
    for length, result in zip(lengths, together, strict=True):
        separate = compute_scores(method, tiny_fashion_mnist, model="mlp", query=_query(length), progress=False)
        assert np.array_equal(result.scores, separate.scores), length
        assert np.array_equal(result.val_recalls, separate.val_recalls), length
        for snapshot, run in zip(result.runs, separate.runs, strict=True):
            assert np.array_equal(snapshot.val_pred, run.val_pred) and np.array_equal(snapshot.test_pred, run.test_pred)
            assert len(snapshot.history) == math.ceil(length) and not snapshot.model.training
    assert len(trainings) == 2 + 3 * 2
    assert not np.array_equal(together[0].scores, together[2].scores)  # the lengths do differ


@pytest.mark.parametrize("short, long, fragment", [
    (_query(2, drop_epochs=(1, 8)), _query(5), "learning rate of epoch 1 differs"),
    (_query(2, seed=12), _query(5), "more than the length"),
    (_query(2, lr=0.05), _query(5), "more than the length"),
    (dataclasses.replace(_query(2), num_seeds=3), _query(5), "more than the length"),
    (_query(2, batch_size=16), _query(5), "more than the length"),
])
def test_query_trainings_that_are_not_prefixes_are_refused(tiny_fashion_mnist, short, long, fragment):
    assert fragment in prefix_query_mismatch(short, long)
    with pytest.raises(ValueError, match="queries\\[0\\] is not a prefix of queries\\[1\\]"):
        compute_prefix_scores("el2n", tiny_fashion_mnist, model="mlp", queries=[short, long], progress=False)
    assert prefix_query_mismatch(_query(2, drop_epochs=(1, 8)), _query(5, drop_epochs=(1, 8))) is None  # one schedule
    assert prefix_query_mismatch(_query(2, drop_epochs=(2, 8)), _query(5, drop_epochs=(3,))) is None  # same rates
    with pytest.raises(ValueError, match="only the short query runs"):
        compute_prefix_scores("forgetting", tiny_fashion_mnist, model="mlp", queries=[_query(1)], progress=False)


def test_compute_scores_full_queries(fashion_subset):
    from dropkit.train import embeddings

    data, indices = fashion_subset
    query = QueryConfig(TrainConfig(epochs=1, seed=1), full_epochs=3, window=2)
    forget = compute_scores("forgetting", data, model="mlp", query=query, train_indices=indices, progress=False)
    (run,) = forget.runs
    assert run.correct.shape == (3, 2000)
    np.testing.assert_array_equal(forget.scores, forgetting_from_correct(run.correct))
    du = compute_scores("dynamic_uncertainty", data, model="mlp", query=query, train_indices=indices, progress=False)
    np.testing.assert_array_equal(du.scores, dynamic_uncertainty_from_probs(du.runs[0].target_prob, window=2))
    assert du.scores.max() > 0

    query = QueryConfig(TrainConfig(epochs=1, seed=1), full_epochs=1)
    coreset = compute_scores("coreset", data, model="mlp", query=query, train_indices=indices[:600], progress=False)
    emb = embeddings(coreset.models[0], data.x_train[indices[:600]], data=data)
    np.testing.assert_array_equal(coreset.scores, coreset_scores_from_order(k_center_greedy(emb, 600), 600))
    assert sorted(coreset.scores) == list(range(1, 601))
    ssp = compute_scores("ssp", data, model="mlp", query=query, train_indices=indices[:600], progress=False)
    assert ssp.scores.shape == (600,) and np.all(ssp.scores > 0) and ssp.val_recalls.shape == (10,)


def test_compute_scores_random_trains_nothing(fashion_subset):
    data, indices = fashion_subset
    result = compute_scores("random", data, model="mlp", query=QueryConfig(TrainConfig(seed=5)), train_indices=indices)
    assert result.val_recalls is None and result.models == []
    np.testing.assert_array_equal(result.scores, random_scores(2000, 5))
    assert set(METHODS) == {"random", "el2n", "grand", "forgetting", "dynamic_uncertainty", "coreset", "ssp"}


# --------------------------------------------------------------------------- CUDA (skipped without a GPU)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_k_center_on_cuda_keeps_the_argmax_on_the_device_and_matches_the_cpu():
    from dropkit.scores.coreset import _k_center_dense, _prepare

    rng = np.random.default_rng(5)
    x = rng.integers(0, 5, size=(2000, 8)).astype(np.float32)
    expected = k_center_greedy(torch.from_numpy(x), 2000, first=7, method="blocked", block_size=64)
    on_gpu = k_center_greedy(torch.from_numpy(x).cuda(), 2000, first=7)
    assert on_gpu.device.type == "cuda" and torch.equal(on_gpu.cpu(), expected)
    xs, sq = _prepare(torch.from_numpy(x).cuda(), 500, 7, 8192, 1, "dense")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any host synchronisation in the loop raises
    try:
        eager = _k_center_dense(xs, sq, 500, 7, graph=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.equal(eager.cpu(), expected[:500])
    assert torch.equal(_k_center_dense(xs, sq, 500, 7, graph=True).cpu(), expected[:500])


@cuda
def test_grand_on_cuda_equals_the_cpu_loop():
    from dropkit.models import build_model

    torch.manual_seed(0)
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # exact fp32
    try:
        cuda_grand_matches_loop(build_model)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32


def cuda_grand_matches_loop(build_model):
    for name in ("mlp", "cnn"):
        model = build_model(name, num_classes=10, input_shape=(1, 12, 12))
        x, y = torch.randn(40, 1, 12, 12), torch.randint(0, 10, (40,))
        with_running_stats(model, torch.randn(64, 1, 12, 12))
        reference = loop_grad_norms(model.double(), x.double(), y)
        model.float().cuda()
        for method in ("identity", "vmap"):
            torch.testing.assert_close(per_sample_grad_norms(model, x, y, 16, method=method), reference,
                                       rtol=1e-4, atol=0)


@cuda
def test_compute_scores_on_cuda(fashion_subset):
    data, indices = fashion_subset
    query = QueryConfig(TrainConfig(epochs=1, device="cuda"), full_epochs=1, num_seeds=1)
    for method in ("el2n", "grand", "coreset", "forgetting"):
        result = compute_scores(method, data, model="cnn", query=query, train_indices=indices[:1000], progress=False)
        assert result.scores.shape == (1000,) and np.isfinite(result.scores).all()
        assert next(result.models[0].parameters()).device.type == "cuda"
