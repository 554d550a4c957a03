"""CoreSet: greedy k-center selection (Sener & Savarese, 2018) on embeddings.

Greedy k-center starts from one point and repeatedly adds the point farthest from the selected
set (the one with the largest distance to its nearest selected point).  The order is *nested*: the
first ``n`` indices of the order are the greedy selection of size ``n`` for every ``n``, so one
run to the largest budget serves every density.

Score convention of :mod:`dropkit.scores`: higher = more useful = kept first.  The CoreSet score of
a sample is ``N - (its position in the greedy order)``: the starting point scores ``N``, the next
pick ``N - 1``, and so on, so keeping the top ``n`` scores is exactly the greedy selection of size
``n`` (:func:`coreset_scores_from_order`).

Memory is O(N) beyond the features (a running minimum distance per point) plus one block of
``block_size`` columns of distances, never an N x N matrix.  Distances are Euclidean, computed as
``sqrt(max(|x|^2 + |c|^2 - 2 x.c, 0))`` with matrix products, after shifting the features by their
coordinate-wise lower median (a data value, so integer-valued features stay exact; the shift does
not change distances but removes a common offset that would cost float precision).  Two
implementations give the same order in exact arithmetic (and bit-identical orders whenever the
distances are exactly representable, e.g. small integer coordinates); in float arithmetic, points
whose distances agree to rounding error (near-duplicates) may be ordered either way:

* ``"dense"``: every step multiplies the new centre into all points (a matrix-vector product)
  and updates the running minimum.  No host synchronisation: the argmax stays on the device,
  which suits GPUs.
* ``"blocked"``: new centres are applied to all points in blocks of ``block_size`` with one
  matrix-matrix product (far better use of CPU caches and BLAS).  Between two block updates the
  exact next centre is found lazily: the running minimum over the applied centres is an upper
  bound of every point's true distance, so only the few points with the largest bounds are
  refreshed against the pending centres, and a point whose refreshed distance beats every other
  point's bound is provably the farthest one.

``method="auto"`` uses ``"dense"`` on CUDA and ``"blocked"`` elsewhere.
"""

from __future__ import annotations

import numpy as np
import torch

KCENTER_METHODS: tuple[str, ...] = ("auto", "dense", "blocked")


def _distances(rows: torch.Tensor, rows_sq: torch.Tensor, centres: torch.Tensor,
               centres_sq: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[R, C]`` between ``rows [R, F]`` and ``centres [C, F]``.

    ``rows_sq`` / ``centres_sq`` are the squared norms ``[R]`` / ``[C]``.
    """
    d2 = torch.addmm(rows_sq[:, None] + centres_sq[None, :], rows, centres.T, alpha=-2.0)
    return d2.clamp_min_(0.0).sqrt_()


def _prepare(features, n_select, first, chunk_size, block_size, method):
    x = torch.as_tensor(features)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [N, F], got shape {tuple(x.shape)}")
    n = x.shape[0]
    for name, value in (("chunk_size", chunk_size), ("block_size", block_size)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(n_select, (int, np.integer)) or isinstance(n_select, bool) \
            or not 0 <= n_select <= n:
        raise ValueError(f"n_select must be an int in [0, {n}], got {n_select!r}")
    if not isinstance(first, (int, np.integer)) or isinstance(first, bool) \
            or not 0 <= first < max(n, 1):
        raise ValueError(f"first must be an index in [0, {n}), got {first!r}")
    if method not in KCENTER_METHODS:
        raise ValueError(f"method={method!r} is not one of {KCENTER_METHODS}")
    if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values")
    if n:
        x = x - x.median(dim=0).values  # lower median: an actual data value per coordinate
    x = x.contiguous()
    return x, (x * x).sum(dim=1)


def k_center_greedy(features: torch.Tensor, n_select: int, first: int = 0, *,
                    method: str = "auto", block_size: int = 128,
                    chunk_size: int = 8192) -> torch.Tensor:
    """Greedy k-center order of ``n_select`` points.

    Args:
        features: float ``[N, F]`` points (any device; the work happens there).
        n_select: number of points to select, ``0 <= n_select <= N``.
        first: index of the starting point (deterministic start).
        method: ``"auto"``, ``"dense"`` or ``"blocked"`` (see the module docstring).
        block_size: centres applied per matrix product by ``"blocked"``.
        chunk_size: rows per matrix product, bounding temporaries to ``chunk_size * block_size``
            floats.

    Returns:
        int64 ``[n_select]`` on the features' device: ``order[0] == first`` and ``order[i]`` is
        the point with the largest distance to ``order[:i]`` (ties to the lowest index).  Once
        every remaining point coincides with a selected one, the rest follow index order.
    """
    x, sq = _prepare(features, n_select, first, chunk_size, block_size, method)
    if n_select == 0:
        return torch.empty(0, dtype=torch.long, device=x.device)
    if method == "auto":
        method = "dense" if x.device.type == "cuda" else "blocked"
    if method == "dense":
        return _k_center_dense(x, sq, int(n_select), int(first), int(chunk_size))
    return _k_center_blocked(x, sq, int(n_select), int(first), int(block_size), int(chunk_size))


def _k_center_dense(x, sq, n_select, first, chunk_size):
    n = x.shape[0]
    order = torch.empty(n_select, dtype=torch.long, device=x.device)
    min_dist = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
    idx = torch.tensor([first], dtype=torch.long, device=x.device)
    for i in range(n_select):
        order[i:i + 1] = idx
        centre, centre_sq = x.index_select(0, idx), sq.index_select(0, idx)
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            d = _distances(x[start:stop], sq[start:stop], centre, centre_sq)[:, 0]
            torch.minimum(min_dist[start:stop], d, out=min_dist[start:stop])
        min_dist.index_fill_(0, idx, -1.0)  # selected points are never picked again
        idx = min_dist.argmax().view(1)     # first maximum = lowest index on ties
    return order


class _BlockedGreedy:
    """State of the blocked greedy: working arrays over the not-yet-selected points."""

    POOL_STEP = 64        # candidates refreshed at a time
    POOL_MAX = 2048       # beyond this many candidates, apply the pending block instead

    def __init__(self, x, sq, block_size, chunk_size):
        self.x, self.sq = x, sq
        self.block_size, self.chunk_size = block_size, chunk_size
        self.active = torch.arange(x.shape[0])            # original indices, ascending
        self.xa, self.sqa = x, sq                           # their features / squared norms
        self.applied = torch.full((x.shape[0],), float("inf"), dtype=x.dtype)
        self.pending: list[int] = []                        # positions in xa of pending centres
        self.pending_x = x.new_empty((block_size, x.shape[1]))
        self.pending_sq = sq.new_empty(block_size)
        self.ranked = torch.empty(0, dtype=torch.long)      # positions by decreasing bound
        self.ranked_bound: list[float] = []                 # their bounds at ranking time
        self.bound_rest = float("inf")                      # bound of every point not in ranked
        self._reset_pool()

    def apply_pending(self):
        """Apply every pending centre to all working points, drop selected points, re-rank."""
        if self.pending:
            k = len(self.pending)
            cx, csq = self.pending_x[:k], self.pending_sq[:k]
            for start in range(0, self.xa.shape[0], self.chunk_size):
                stop = min(start + self.chunk_size, self.xa.shape[0])
                d = _distances(self.xa[start:stop], self.sqa[start:stop], cx, csq).amin(dim=1)
                torch.minimum(self.applied[start:stop], d, out=self.applied[start:stop])
            self.pending = []
        keep = self.applied >= 0
        if int(keep.sum()) * 4 < 3 * keep.numel():  # compact once a quarter is selected
            self.active, self.applied = self.active[keep], self.applied[keep]
            self.xa, self.sqa = self.xa[keep], self.sqa[keep]
        count = min(self.POOL_MAX + 1, self.applied.numel())
        values, positions = torch.topk(self.applied, count)
        self.ranked = positions[:self.POOL_MAX]
        self.ranked_bound = values[:self.POOL_MAX].tolist()
        self.bound_rest = float(values[self.POOL_MAX]) if count > self.POOL_MAX else -float("inf")
        self._reset_pool()

    def _reset_pool(self):
        self.pool = torch.empty(0, dtype=torch.long)       # refreshed candidates (positions)
        self.pool_x = self.x.new_empty((0, self.x.shape[1]))
        self.pool_sq = self.x.new_empty(0)
        self.pool_dist = self.x.new_empty(0)               # their true distances (-1: picked)
        self.used = 0                                       # entries of ranked moved to pool

    def _grow_pool(self) -> bool:
        if self.used >= self.ranked.numel():
            return False
        new = self.ranked[self.used:self.used + self.POOL_STEP]
        self.used += new.numel()
        new = new[self.applied[new] >= 0]
        new_x, new_sq = self.xa[new], self.sqa[new]
        dist = self.applied[new]
        if self.pending and new.numel():
            k = len(self.pending)
            d = _distances(new_x, new_sq, self.pending_x[:k], self.pending_sq[:k]).amin(dim=1)
            dist = torch.minimum(dist, d)
        self.pool = torch.cat([self.pool, new])
        self.pool_x = torch.cat([self.pool_x, new_x])
        self.pool_sq = torch.cat([self.pool_sq, new_sq])
        self.pool_dist = torch.cat([self.pool_dist, dist])
        return True

    def next_centre(self) -> int:
        """Position (in the working arrays) of the farthest point; ties to the lowest index."""
        while True:
            if not self.pending:  # bounds are exact: the first maximum is the answer
                return int(self.applied.argmax())
            bound = self.bound_rest
            if self.used < self.ranked.numel():
                bound = self.ranked_bound[self.used]  # bounds every point outside the pool
            if self.pool.numel():
                best = float(self.pool_dist.max())  # picked pool entries hold -1
                # Every point outside the pool has true distance <= its bound <= bound.
                if best >= 0 and (best > bound or bound == -float("inf")):
                    return int(self.pool[self.pool_dist == best].min())  # lowest index
            if not self._grow_pool():
                self.apply_pending()

    def add_centre(self, pos: int) -> None:
        k = len(self.pending)
        self.pending_x[k] = self.xa[pos]
        self.pending_sq[k] = self.sqa[pos]
        self.pending.append(pos)
        self.applied[pos] = -1.0
        if self.pool.numel():
            self.pool_dist[self.pool == pos] = -1.0
            d = _distances(self.pool_x, self.pool_sq, self.pending_x[k:k + 1],
                           self.pending_sq[k:k + 1])[:, 0]
            torch.minimum(self.pool_dist, d, out=self.pool_dist)
        if len(self.pending) == self.block_size:
            self.apply_pending()


def _k_center_blocked(x, sq, n_select, first, block_size, chunk_size):
    device = x.device
    x, sq = x.cpu(), sq.cpu()  # the lazy refresh synchronises often: a CPU algorithm
    state = _BlockedGreedy(x, sq, block_size, chunk_size)
    order = torch.empty(n_select, dtype=torch.long)
    state.applied[first] = -1.0  # nothing applied yet: every bound is +inf except the start
    state.pending_x[0], state.pending_sq[0] = x[first], sq[first]
    state.pending = [first]
    state.apply_pending()
    order[0] = first
    for i in range(1, n_select):
        pos = state.next_centre()
        order[i] = state.active[pos]
        state.add_centre(pos)
    return order.to(device)


def coreset_scores_from_order(order: torch.Tensor, n: int) -> np.ndarray:
    """Scores (float64 ``[n]``) from a greedy order: ``n - position``; unselected points score 0.

    ``order`` is a k-center order of length ``<= n``; keeping the top ``m`` scores reproduces
    ``order[:m]``.
    """
    order = torch.as_tensor(order).cpu().numpy()
    if order.ndim != 1 or len(order) > n:
        raise ValueError(f"order must be 1-D with at most n={n} entries, got shape {order.shape}")
    if len(np.unique(order)) != len(order) or (len(order) and (order.min() < 0 or order.max() >= n)):
        raise ValueError("order must hold distinct indices in [0, n)")
    scores = np.zeros(n, dtype=np.float64)
    scores[order] = n - np.arange(len(order), dtype=np.float64)
    return scores
