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
coordinate-wise lower median over at most 8192 evenly spaced rows (a data value, so integer-valued
features stay exact; the shift does not change distances but removes a common offset that would
cost float precision).  Two
implementations give the same order in exact arithmetic (and bit-identical orders whenever the
distances are exactly representable, e.g. small integer coordinates); in float arithmetic, points
whose distances agree to rounding error (near-duplicates) may be ordered either way:

* ``"dense"``: every step multiplies the new centre into all points (a matrix-vector product)
  and updates the running minimum.  No host synchronisation: the argmax stays on the device,
  and on CUDA the step is one captured CUDA graph, replayed; this suits GPUs.
* ``"blocked"``: new centres are applied to the points in blocks of ``block_size`` with one
  matrix-matrix product (far better use of CPU caches and BLAS than one product per step).
  Between two block updates the exact next centre is found lazily: the running minimum over the
  applied centres is an upper bound of every point's true distance, so only the few points with
  the largest bounds are refreshed against the pending centres, and a point whose refreshed
  distance beats every other point's bound is provably the farthest one (the refreshed pool, ~100
  points, takes one dot product per step: a handful of numpy calls).  A block update skips
  the points that the triangle inequality proves no pending centre can bring closer (a point at
  distance ``m`` from its centre ``s`` needs a pending centre within ``2 m`` of ``s``), with a
  slack of a few rounding errors so that skipped points are exactly those the full product
  would leave unchanged.  For features wider than 64 the block update goes pair by pair
  instead: a lower bound of every (point, pending centre) distance, from the coordinates on the
  top 32 principal directions plus the norm of the rest (33 numbers per point, computed once in
  float64), rules out the pairs that cannot bring the point closer (about 99.6% of them on
  penultimate-layer embeddings; one small matrix product and one comparison with zero per chunk,
  the thresholds being a column of the product), with a slack of a few rounding errors of the
  squared distances, and only the remaining pairs get exact distances, by a sampled product
  (``torch.sparse.sampled_addmm``), or by the full product of the chunk when over 1/25 of its
  pairs remain (the first blocks).  Temporaries stay ``chunk_size * block_size`` at most.
  (Earlier, per-cluster triangle tests on projected centre distances pruned few rows: every row
  of 128 spread-out pending centres has some near centre, while only ~0.5% of the pairs are near;
  a narrower filter (16 or 24 principal coordinates) or a residual split into several norms was
  measured: 16 coordinates leave 2.5x the pairs, 24 leave 1.4x, four residual norms 0.97x.)

``method="auto"`` uses ``"dense"`` on CUDA and ``"blocked"`` elsewhere.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

KCENTER_METHODS: tuple[str, ...] = ("auto", "dense", "blocked")
MEDIAN_ROWS = 8192      # rows sampled for the shift of the features
COVARIANCE_ROWS = 16384  # rows sampled for the principal directions of the pair filter


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
    if not torch.isfinite(x.sum()) and not torch.isfinite(x).all():  # a finite sum: all finite
        raise ValueError("features contain NaN or infinite values")
    if n:
        # lower median of at most MEDIAN_ROWS evenly spaced rows: an actual data value per
        # coordinate (the full median costs more than it gains in centring)
        x = x - x[::-(-n // MEDIAN_ROWS)].median(dim=0).values
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
        chunk_size: rows per matrix product of ``"blocked"``, bounding temporaries to
            ``chunk_size * block_size`` floats (``"dense"`` holds one ``[N]`` vector).

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
        return _k_center_dense(x, sq, int(n_select), int(first))
    return _k_center_blocked(x, sq, int(n_select), int(first), int(block_size), int(chunk_size))


def _k_center_dense(x, sq, n_select, first, *, graph: bool = True):
    """One matrix-vector product per step, everything on the device (no host synchronisation).

    On CUDA the step is captured once into a CUDA graph and replayed (a few microseconds per
    step instead of a dozen kernel launches); ``graph=False`` or a failed capture runs eagerly.
    """
    n = x.shape[0]
    device = x.device
    order = torch.empty(n_select, dtype=torch.long, device=device)
    min_dist = torch.full((n,), float("inf"), dtype=x.dtype, device=device)
    idx = torch.full((1,), first, dtype=torch.long, device=device)   # the next centre
    step = torch.zeros(1, dtype=torch.long, device=device)           # its position in order

    def one_step():
        order.index_copy_(0, step, idx)
        centre = x.index_select(0, idx)[0]
        d = torch.addmv(sq + sq.index_select(0, idx), x, centre, alpha=-2.0)
        torch.minimum(min_dist, d.clamp_min_(0.0).sqrt_(), out=min_dist)
        min_dist.index_fill_(0, idx, -1.0)  # selected points are never picked again
        idx.copy_(min_dist.argmax().view(1))  # first maximum = lowest index on ties
        step.add_(1)

    warmup = 3
    if not (graph and device.type == "cuda" and n_select > warmup + 1):
        for _ in range(n_select):
            one_step()
        return order
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(warmup):  # real steps, also the warm-up the capture needs
            one_step()
    torch.cuda.current_stream(device).wait_stream(side)
    try:
        cuda_graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(cuda_graph):
            one_step()  # recorded, not run
    except RuntimeError:
        cuda_graph = None
    for _ in range(n_select - warmup):
        if cuda_graph is None:
            one_step()
        else:
            cuda_graph.replay()
    return order


def _np_distances(rows: np.ndarray, rows_sq: np.ndarray, centres: np.ndarray,
                  centres_sq: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[R, C]`` between ``rows [R, F]`` and ``centres [C, F]`` (squared norms
    ``rows_sq [R]``, ``centres_sq [C]``), as numpy arrays.

    The product itself goes through torch, which honours ``torch.set_num_threads`` (numpy's
    BLAS would spin up its own thread pool next to torch's).
    """
    d2 = torch.mm(torch.from_numpy(rows), torch.from_numpy(centres).T).numpy()
    d2 *= -2.0
    d2 += rows_sq[:, None]
    d2 += centres_sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    return np.sqrt(d2, out=d2)


def _principal_basis(x: np.ndarray, dims: int, chunk: int = 8192, dtype=None) -> np.ndarray:
    """Orthonormal ``[F, dims]`` basis of the top principal directions of ``x [N, F]`` (float64
    covariance of at most ``COVARIANCE_ROWS`` evenly spaced rows, accumulated over row chunks, so
    no float64 copy of ``x``), in ``x``'s dtype.  Any orthonormal basis gives valid lower bounds;
    the principal directions make them tight.

    torch does the products (it honours ``torch.set_num_threads``, numpy's BLAS would not)."""
    features = torch.from_numpy(x)[::-(-x.shape[0] // COVARIANCE_ROWS)]
    mean = features.mean(dim=0).double()
    cov = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
    for start in range(0, features.shape[0], chunk):
        rows = features[start:start + chunk].double() - mean
        cov.addmm_(rows.T, rows)
    _, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
    return np.ascontiguousarray(vectors.flip(1)[:, :dims].numpy(), dtype=x.dtype if dtype is None else dtype)


def _pair_filter_features(x: np.ndarray, basis: np.ndarray, chunk: int = 8192):
    """Rows ``[N, p + 1]``: the coordinates of ``x - mean`` on the orthonormal float64 ``basis
    [F, p]`` and the norm of the rest, in ``x``'s dtype, and their squared norms ``[N]``.

    For two rows ``u, v`` of the result, ``|u|^2 + |v|^2 - 2 u.v`` is the squared distance of the
    projections plus the squared difference of the residual norms: a lower bound of the squared
    distance of the original points (Cauchy-Schwarz on the residuals), up to the rounding of
    ``u, v`` to ``x``'s dtype.  float64 throughout (the squared residual norm is ``|x - mean|^2 -
    |coordinates|^2``, which float64 keeps to ``~1e-16 |x - mean|^2``), so small residual norms are
    not lost to cancellation.  (Any vector works as ``mean``: a float32 mean.)"""
    features = torch.from_numpy(x)
    mean = features.mean(dim=0).double()
    directions = torch.from_numpy(basis).double()
    out = np.empty((x.shape[0], basis.shape[1] + 1), dtype=x.dtype)
    for start in range(0, x.shape[0], chunk):
        rows = features[start:start + chunk].double() - mean
        coords = rows @ directions
        out[start:start + chunk, :-1] = coords.numpy()
        rest = (rows * rows).sum(dim=1) - (coords * coords).sum(dim=1)
        out[start:start + chunk, -1] = rest.clamp_min_(0.0).sqrt_().numpy()
    rounded = torch.from_numpy(out).double()
    return out, (rounded * rounded).sum(dim=1).numpy().astype(x.dtype)


def _nearest_distances(rows: torch.Tensor, rows_sq: np.ndarray, centres_t: torch.Tensor,
                       neg_half_csq: torch.Tensor, out: torch.Tensor | None = None):
    """Distance of each row to its nearest centre, by one product and a row max.

    The nearest centre ``c`` of ``x`` maximises ``x.c - |c|^2 / 2``, and then
    ``d^2 = |x|^2 - 2 (x.c - |c|^2 / 2)``. ``rows [R, F]``, ``rows_sq [R]``, ``centres_t [F, k]``
    (the centres transposed), ``neg_half_csq [k]`` (``-|c|^2 / 2``). Returns the scores
    ``[R, k]`` (written into ``out`` if given) and the distances ``[R]`` (numpy).
    """
    score = torch.addmm(neg_half_csq, rows, centres_t, out=out)
    best = rows_sq - 2.0 * score.amax(dim=1).numpy()
    np.sqrt(np.maximum(best, 0.0, out=best), out=best)
    return score, best


def _rounding_slack(dtype, max_sq: float) -> float:
    """A few times the rounding error of a distance computed as ``sqrt(|x|^2 + |c|^2 - 2 x.c)``
    in ``dtype`` when squared norms reach ``max_sq``."""
    return 8.0 * float(np.sqrt(np.finfo(dtype).eps * max(max_sq, 1e-30)))


class _BlockedGreedy:
    """State of the blocked greedy over the not-yet-selected ("working") points.

    numpy arrays (the per-step work is on ~100 candidates, where torch's per-call overhead would
    dominate); the block updates use torch matrix products on the same memory.
    """

    POOL_STEP = 64        # candidates refreshed at a time
    POOL_MAX = 1024       # beyond this many candidates, apply the pending block instead
    DENSE_FRACTION = 25   # pair filter: a chunk with over 1 / 25 of its pairs left gets the full product
    PROJECTION_DIMS = 32  # principal directions of the lower bounds (features wider than 64)

    def __init__(self, x: np.ndarray, sq: np.ndarray, block_size: int, chunk_size: int,
                 n_select: int):
        width = x.shape[1]
        self.width, self.block_size, self.chunk_size = width, block_size, chunk_size
        self.active = np.arange(x.shape[0])                 # original indices, ascending
        self.xa, self.sqa = x, sq                            # their features / squared norms
        self.applied = np.full(x.shape[0], np.inf, dtype=x.dtype)  # min over applied centres
        self.num_applied = 0
        self.pending: list[int] = []                         # positions of pending centres
        # Pending centres as rows [c, |c|^2, 1] and pool entries as rows [-2 y, 1, |y|^2]: one dot
        # product of the two is |y|^2 + |c|^2 - 2 y.c, the squared distance.
        self.pending_aug = np.zeros((block_size, width + 2), dtype=x.dtype)
        self.pending_aug[:, width + 1] = 1.0
        self.pending_rows = [torch.from_numpy(row) for row in self.pending_aug]  # per-step operands
        self.pending_radius = np.inf                          # smallest pick radius pending
        self.ranked = np.empty(0, dtype=np.int64)            # positions by decreasing bound
        self.ranked_bound = np.empty(0, dtype=x.dtype)       # their bounds at ranking time
        self.bound_rest = np.inf                              # bound of every point not ranked
        # Absolute slack of the triangle-inequality test: a few times the rounding error of a
        # distance computed as sqrt(|x|^2 + |c|^2 - 2 x.c).
        self.slack = _rounding_slack(x.dtype, float(sq.max(initial=0)))
        self.filtered = width > 2 * self.PROJECTION_DIMS
        if self.filtered:
            # Per-(point, pending centre) lower bounds for the block update (see _apply_filtered).
            features, self.sqt = _pair_filter_features(x, _principal_basis(x, self.PROJECTION_DIMS, dtype=np.float64))
            self.slack_t = _rounding_slack(x.dtype, max(float(sq.max(initial=0)),
                                                        float(self.sqt.max(initial=0))))
            # Rows [u, 1, -t]: the filter features u, then a column for the bias of the pending
            # centres and one for each point's threshold t (rewritten before every block update),
            # so that one matrix product gives u.v - |v|^2 / 2 - t.
            self.xt = np.empty((x.shape[0], features.shape[1] + 2), dtype=x.dtype)
            self.xt[:, :-2], self.xt[:, -2] = features, 1.0
            del features
            # Buffers of the chunked block update: the scores and their signs.
            rows = min(chunk_size, x.shape[0])
            self.score_buf = torch.empty(rows * block_size, dtype=torch.from_numpy(x[:0]).dtype)
            self.hit_buf = np.empty(rows * block_size, dtype=bool)
        else:
            # Cluster bookkeeping of the triangle test (_candidates).
            self.nearest = np.zeros(x.shape[0], dtype=np.int64)  # cluster (applied centre) of each
            self.radius = np.zeros(n_select, dtype=x.dtype)  # upper bounds of cluster radii
            self.centre_x = np.empty((n_select, width), dtype=x.dtype)  # applied centres
            self.centre_sq = np.empty(n_select, dtype=x.dtype)
        # The pool of refreshed candidates lives in preallocated buffers, in position order (so
        # the first maximum is the lowest index); the per-step work is a handful of calls on ~100
        # entries, so call overhead matters: the views of the first ``pool_size`` entries are
        # made once per change of size.
        capacity = self.POOL_MAX + self.POOL_STEP
        self.pool = np.empty(capacity, dtype=np.int64)        # working positions
        self.pool_aug = np.empty((capacity, width + 2), dtype=x.dtype)  # rows [-2 y, 1, |y|^2]
        self.pool_dist = np.empty(capacity, dtype=x.dtype)   # true distances (-1: picked)
        self.pool_tmp = np.empty(capacity, dtype=x.dtype)
        self._reset_pool()

    def _reset_pool(self) -> None:
        self.pool_size = 0                                    # refreshed candidates
        self.used = 0                                         # entries of ranked in the pool
        self._set_bound()

    def _set_bound(self) -> None:
        """Every point outside the pool has a true distance <= ``self.bound``."""
        self.bound = float(self.ranked_bound[self.used] if self.used < self.ranked.size else self.bound_rest)

    def _candidates(self, k: int) -> np.ndarray:
        """Working positions that a pending centre may bring closer (the others provably not).

        A point ``x`` in the cluster of applied centre ``s`` at distance ``m(x)`` can only get
        closer to a pending centre ``c`` if ``d(c, s) < 2 m(x)`` (triangle inequality).  Every
        pending centre is at least its pick radius (>= ``pending_radius``) from every applied
        centre, so only clusters whose radius exceeds ``pending_radius / 2`` are examined.
        """
        m = self.num_applied
        unselected = self.applied >= 0
        if m == 0:
            return np.flatnonzero(unselected)
        relevant = np.flatnonzero(2.0 * self.radius[:m] + self.slack > self.pending_radius)
        to_pending = np.full(m, np.inf, dtype=self.applied.dtype)
        if relevant.size:
            to_pending[relevant] = _np_distances(self.centre_x[relevant], self.centre_sq[relevant],
                                                 self.pending_x, self.pending_sq).min(axis=1)
        return np.flatnonzero(unselected & (to_pending[self.nearest] < 2.0 * self.applied + self.slack))

    def apply_pending(self) -> None:
        """Apply every pending centre to the working points, drop selected points, re-rank."""
        if self.pending:
            k, m, width = len(self.pending), self.num_applied, self.width
            self.pending_x = np.ascontiguousarray(self.pending_aug[:k, :width])
            self.pending_sq = self.pending_aug[:k, width].copy()
            cand = None if self.filtered and m else self._candidates(k)
            # Distances to the nearest pending centre by _nearest_distances (the row max only;
            # the arg max is found again for the few rows that get closer). Chunks are contiguous ranges of working points (views, no gather) unless fewer than
            # half of a range are candidates.
            cx_t = torch.from_numpy(self.pending_x).T
            neg_half_csq = torch.from_numpy(-0.5 * self.pending_sq)
            xa = torch.from_numpy(self.xa)
            if cand is None:
                self._apply_filtered(k)
            else:
                is_cand = np.zeros(self.applied.size, dtype=bool)
                is_cand[cand] = True
            for start in range(0, self.applied.size if cand is not None else 0, self.chunk_size):
                stop = min(start + self.chunk_size, self.applied.size)
                inside = is_cand[start:stop]
                count = int(np.count_nonzero(inside))
                if count == 0:
                    continue
                if 2 * count < stop - start:
                    rows = start + np.flatnonzero(inside)
                    features, inside = torch.from_numpy(self.xa[rows]), None
                else:
                    rows, features = slice(start, stop), xa[start:stop]
                score, best = _nearest_distances(features, self.sqa[rows], cx_t, neg_half_csq)
                closer = best < self.applied[rows]
                if inside is not None:
                    closer &= inside
                closer = np.flatnonzero(closer)
                if closer.size:
                    target = (rows[closer] if inside is None else closer + start)
                    self.applied[target] = best[closer]
                    if not self.filtered:
                        which = score[torch.from_numpy(closer)].argmax(dim=1).numpy()
                        self.nearest[target] = m + which
            if not self.filtered:
                self.centre_x[m:m + k], self.centre_sq[m:m + k] = self.pending_x, self.pending_sq
                radius = torch.zeros(m + k, dtype=torch.from_numpy(self.applied).dtype)
                radius.scatter_reduce_(0, torch.from_numpy(self.nearest),
                                       torch.from_numpy(np.maximum(self.applied, 0)), reduce="amax")
                self.radius[:m + k] = radius.numpy()
            self.num_applied = m + k
            self.pending, self.pending_radius = [], np.inf
        keep = self.applied >= 0
        if 4 * int(keep.sum()) < 3 * keep.size:  # compact once a quarter is selected
            self.active, self.applied = self.active[keep], self.applied[keep]
            self.xa, self.sqa = np.ascontiguousarray(self.xa[keep]), self.sqa[keep]
            if self.filtered:
                self.xt, self.sqt = np.ascontiguousarray(self.xt[keep]), self.sqt[keep]
            else:
                self.nearest = self.nearest[keep]
        count = min(self.POOL_MAX + 1, self.applied.size)
        values, positions = torch.topk(torch.from_numpy(self.applied), count)
        self.ranked = positions[:self.POOL_MAX].numpy()
        self.ranked_bound = values[:self.POOL_MAX].numpy()
        self.bound_rest = float(values[self.POOL_MAX]) if count > self.POOL_MAX else -np.inf
        self._reset_pool()

    def _apply_filtered(self, k: int) -> None:
        """Block update of the pending centres, pair by pair, for features wider than 64.

        A pending centre ``c`` can only bring a point ``x`` closer if ``d(x, c) < m(x)``.  The
        lower bound ``L(x, c)`` of :func:`_pair_filter_features` (projections on the top
        principal directions plus the residual norms: ``p + 1`` coordinates ``u`` of ``x`` and
        ``v`` of ``c`` instead of ``F``) rules out almost every pair.  The test
        ``L^2 < m^2 + 4 slack^2`` (the rounding errors of squared distances are absolute: a few
        ``eps * |x|^2``) is ``u.v - |v|^2 / 2 - t > 0`` with ``t = (|u|^2 - m^2 - 4 slack^2) / 2``:
        one matrix product per chunk of rows, with ``t`` as a column of the features, and one
        comparison with zero.  Only the remaining pairs get their exact distance, by a sampled
        product (``torch.sparse.sampled_addmm``: the dot products of the listed pairs only).
        """
        pending = np.asarray(self.pending)
        applied, xt = self.applied, self.xt
        # the threshold column -t; selected points (applied < 0) are never updated
        neg_t = applied * applied
        neg_t += (2.0 * self.slack_t) ** 2
        neg_t -= self.sqt
        neg_t *= 0.5
        neg_t[applied < 0] = -np.finfo(xt.dtype).max
        xt[:, -1] = neg_t
        centres = np.empty((k, xt.shape[1]), dtype=xt.dtype)  # rows [v, -|v|^2 / 2, 1]
        centres[:, :-2] = xt[pending, :-2]
        centres[:, -2], centres[:, -1] = -0.5 * self.sqt[pending], 1.0
        ct_t = torch.from_numpy(centres).T  # (a transposed operand: a little faster than [p + 3, k])
        xa_t, xt_t = torch.from_numpy(self.xa), torch.from_numpy(xt)
        cx_t = torch.from_numpy(self.pending_x).T
        pending_sq = self.pending_sq
        neg_half_csq = torch.from_numpy(-0.5 * pending_sq)
        for start in range(0, applied.size, self.chunk_size):
            stop = min(start + self.chunk_size, applied.size)
            size = (stop - start) * k
            score = torch.mm(xt_t[start:stop], ct_t, out=self.score_buf[:size].view(stop - start, k))
            hit = self.hit_buf[:size]
            np.greater(score.numpy().reshape(-1), 0.0, out=hit)
            flat = np.flatnonzero(hit)
            if flat.size == 0:
                continue
            if self.DENSE_FRACTION * flat.size > size:
                # many pairs left (the first blocks): the full product of the chunk is cheaper
                _, best = _nearest_distances(xa_t[start:stop], self.sqa[start:stop], cx_t, neg_half_csq,
                                             out=score)
                closer = np.flatnonzero(best < applied[start:stop])  # never a selected point
                applied[start + closer] = best[closer]
                continue
            rows, cols = np.divmod(flat, k)
            counts = np.bincount(rows, minlength=stop - start)
            crow = np.zeros(stop - start + 1, dtype=np.int64)
            np.cumsum(counts, out=crow[1:])
            base = self.sqa[start + rows]  # becomes |x|^2 + |c|^2 - 2 x.c
            base += pending_sq[cols]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                pairs = torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols),
                                                torch.from_numpy(base), size=(stop - start, k),
                                                check_invariants=False)
                d2 = torch.sparse.sampled_addmm(pairs, xa_t[start:stop], cx_t, alpha=-2.0).values().numpy()
            target = np.flatnonzero(counts)  # rows with a pair, in order
            best = np.minimum.reduceat(d2, crow[target])
            np.sqrt(np.maximum(best, 0.0, out=best), out=best)
            target += start
            closer = best < applied[target]
            applied[target[closer]] = best[closer]

    def _grow_pool(self) -> bool:
        """Refresh the next ``POOL_STEP`` ranked points against the pending centres into the pool."""
        if self.used >= self.ranked.size:
            return False
        new = self.ranked[self.used:self.used + self.POOL_STEP]
        self.used += new.size
        self._set_bound()
        new = new[self.applied[new] >= 0]
        if new.size == 0:
            return True
        size, end, width = self.pool_size, self.pool_size + new.size, self.width
        rows = self.pool_aug[size:end]
        np.multiply(self.xa[new], -2.0, out=rows[:, :width])
        rows[:, width] = 1.0
        rows[:, width + 1] = self.sqa[new]
        dist = self.applied[new]
        k = len(self.pending)  # > 0: the pool is only used while centres are pending
        d = torch.mm(torch.from_numpy(rows), torch.from_numpy(self.pending_aug[:k]).T).amin(dim=1).numpy()
        np.sqrt(np.maximum(d, 0.0, out=d), out=d)
        np.minimum(dist, d, out=dist)
        self.pool[size:end], self.pool_dist[size:end] = new, dist
        order = np.argsort(self.pool[:end], kind="stable")  # position order
        self.pool[:end], self.pool_dist[:end] = self.pool[order], self.pool_dist[order]
        self.pool_aug[:end] = self.pool_aug[order]
        self.pool_size = end
        self.pool_view, self.tmp_view = self.pool_dist[:end], self.pool_tmp[:end]
        # torch operands of the per-step product (torch honours torch.set_num_threads; numpy's
        # BLAS would run its own threads on a product this size)
        self.pool_aug_t, self.tmp_t = torch.from_numpy(self.pool_aug[:end]), torch.from_numpy(self.tmp_view)
        return True

    def next_centre(self) -> tuple[int, float]:
        """Position (in the working arrays) of the farthest point (ties to the lowest index) and
        its distance to the selected set."""
        while True:
            if not self.pending:  # bounds are exact: the first maximum is the answer
                pos = int(np.argmax(self.applied))
                return pos, float(self.applied[pos])
            if self.pool_size:
                dist = self.pool_view
                slot = int(dist.argmax())  # first maximum: lowest index; picked entries hold -1
                best = float(dist[slot])
                # Every point outside the pool has true distance <= its bound <= self.bound.
                if best >= 0 and best > self.bound:
                    self.picked_slot = slot
                    return int(self.pool[slot]), best
            if not self._grow_pool():
                self.apply_pending()

    def add_centre(self, pos: int, radius: float) -> None:
        k, width = len(self.pending), self.width
        if radius < self.pending_radius:
            self.pending_radius = radius
        row = self.pending_aug[k]
        row[:width] = self.xa[pos]
        row[width] = self.sqa[pos]
        self.pending.append(pos)
        self.applied[pos] = -1.0
        if self.pool_size:  # then pos was picked from the pool (next_centre's picked_slot)
            dist, d = self.pool_view, self.tmp_view
            dist[self.picked_slot] = -1.0
            torch.mv(self.pool_aug_t, self.pending_rows[k], out=self.tmp_t)  # into d
            np.maximum(d, 0.0, out=d)
            np.sqrt(d, out=d)
            np.minimum(dist, d, out=dist)
        if k + 1 == self.block_size:
            self.apply_pending()


def _k_center_blocked(x, sq, n_select, first, block_size, chunk_size):
    device = x.device
    # The lazy refresh decides on the host after every step: a CPU algorithm.
    state = _BlockedGreedy(x.cpu().numpy(), sq.cpu().numpy(), block_size, chunk_size, n_select)
    order = np.empty(n_select, dtype=np.int64)
    order[0] = first
    state.add_centre(first, np.inf)  # nothing applied yet: every bound is +inf
    if state.pending:
        state.apply_pending()
    for i in range(1, n_select):
        pos, radius = state.next_centre()
        order[i] = state.active[pos]
        state.add_centre(pos, radius)
    return torch.from_numpy(order).to(device)


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
