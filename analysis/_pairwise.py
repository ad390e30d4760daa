"""Pairwise distances in float64, chunked, on the data's device.

Every distance that is *reported* is a direct difference, never
``||x||^2 + ||y||^2 - 2 <x, y>``: that expansion cancels catastrophically for near-identical
points (the displacement of a near-identity block), whereas the difference of two floats
is exact to one rounding, so these distances have a relative error of a few units in the
last place. Numpy inputs use SciPy's ``cdist``, which loops over coordinates without
temporaries and releases the GIL, on row blocks in one thread per CPU (as BLAS would for the
expansion); torch tensors (kept on their GPU) go through row chunks whose ``(rows, m, d)``
difference tensor stays under ``_CHUNK_ELEMENTS``.

The expansion is used for choices (:func:`selection_sq_dists`: the costs from which the
exact solver reads an assignment, nearest-neighbour searches), from 16 features on, where it
is several times cheaper; the distances of the chosen pairs are then measured by direct
differences. :func:`all_pair_distances` (every pair of a sample, for the Hölder profile) also
starts from one Gram product, with a certified error: each entry whose rounding bound is not
small next to its value is measured again by a direct difference.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.spatial.distance import cdist, pdist

from ._validation import is_torch_tensor

__all__ = [
    "all_pair_distances",
    "close_pairs",
    "median_spacing",
    "nn_distances",
    "pair_distances",
    "row_distances",
    "selection_sq_dists",
    "sq_dist_matrix",
]

#: Elements of one temporary difference tensor on the torch path (2**24 float64 = 128 MiB).
_CHUNK_ELEMENTS = 2**24
#: Threads of the host kernel: the CPUs this process may run on.
_N_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
#: Fewest rows per thread block (smaller blocks are not worth a thread).
_MIN_BLOCK_ROWS = 64
#: Fewest coordinate differences (rows x columns x features) worth starting threads for.
_MIN_THREADED_WORK = 2**25


def _host_sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared distances by ``cdist``, row blocks spread over threads."""
    out = np.empty((a.shape[0], b.shape[0]))
    n_blocks = min(4 * _N_THREADS, a.shape[0] // _MIN_BLOCK_ROWS)
    if _N_THREADS == 1 or n_blocks < 2 or a.size * b.shape[0] < _MIN_THREADED_WORK:
        return cdist(a, b, metric="sqeuclidean", out=out)
    edges = np.linspace(0, a.shape[0], n_blocks + 1).astype(int)

    def block(lo, hi):
        cdist(a[lo:hi], b, metric="sqeuclidean", out=out[lo:hi])

    with ThreadPoolExecutor(_N_THREADS) as pool:
        list(pool.map(block, edges[:-1], edges[1:]))
    return out


def _rows_per_chunk(m: int, d: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, m * d))


def _torch_sq_dists(a, b):
    """(len(a), len(b)) squared distances of two tensors, chunked over the rows of ``a``."""
    import torch

    out = torch.empty((a.shape[0], b.shape[0]), dtype=torch.float64, device=a.device)
    step = _rows_per_chunk(b.shape[0], b.shape[1])
    for start in range(0, a.shape[0], step):
        diff = a[start : start + step, None, :] - b[None, :, :]  # (rows, m, d)
        out[start : start + step] = diff.square().sum(-1)
    return out


def sq_dist_matrix(x, y) -> np.ndarray:
    """Squared Euclidean distances ``||x_i - y_j||^2`` as a host float64 array (n, m)."""
    if is_torch_tensor(x):
        return _torch_sq_dists(x, y).cpu().numpy()
    return _host_sq_dists(x, y)


#: From this many features on, :func:`selection_sq_dists` uses BLAS (see there); below, the
#: direct kernel is as fast or faster (SciPy's cdist beats the expansion 5x in 2-D).
EXPANSION_MIN_FEATURES = 16


def selection_sq_dists(x, y) -> np.ndarray:
    r"""Squared distances used only to choose (an assignment, nearest neighbours), (n, m).

    Below :data:`EXPANSION_MIN_FEATURES` features: :func:`sq_dist_matrix` (direct). From
    there on, the float64 expansion on data centred at the common mean :math:`c`,
    :math:`\lVert a_i \rVert^2 + \lVert b_j \rVert^2 - 2 \langle a_i, b_j \rangle` with
    :math:`a = x - c`, :math:`b = y - c`, one BLAS product (about half the CPU time of the
    direct kernel in 64-D). Its absolute error is at most about
    :math:`(d + 2)\,\epsilon\,(\lVert a_i \rVert^2 + \lVert b_j \rVert^2)`, within a
    factor :math:`d / 20` of the network simplex's own optimality tolerance
    (:math:`2.2 \cdot 10^{-15}` times the largest cost or potential), so the assignment is
    as good as the solver can make it (and a nearest neighbour is missed only for a tie
    within that error). The entries may lose a small displacement to cancellation: callers
    measure every reported distance by direct differences.
    """
    if x.shape[1] < EXPANSION_MIN_FEATURES:
        return sq_dist_matrix(x, y)
    if is_torch_tensor(x):
        c = 0.5 * (x.mean(0) + y.mean(0))
        a, b = x - c, y - c  # (n, d), (m, d)
        M = (a.square().sum(1)[:, None] + b.square().sum(1)[None, :]) - 2.0 * (a @ b.T)
        return M.clamp_min_(0.0).cpu().numpy()
    c = 0.5 * (x.mean(axis=0) + y.mean(axis=0))
    a, b = x - c, y - c  # (n, d), (m, d)
    M = a @ b.T  # (n, m)
    M *= -2.0
    M += np.einsum("ij,ij->i", a, a)[:, None]
    M += np.einsum("ij,ij->i", b, b)[None, :]
    return np.maximum(M, 0.0, out=M)


def nn_distances(x, queries=None) -> np.ndarray:
    """Distance from each query point ``x[q]`` to its nearest *other* point of ``x``.

    The neighbour is chosen with :func:`selection_sq_dists` and its distance measured by a
    direct difference (exact; 0 for duplicates). A rounding tie between two candidates can
    only swap them for one at the same distance up to that rounding.

    Parameters
    ----------
    x : ndarray or torch.Tensor of shape (n, d)
        The sample.
    queries : ndarray of int, optional
        Indices of the query points (default: all).

    Returns
    -------
    ndarray of shape (len(queries),)
        Nearest-neighbour distances (0 for exact duplicates).
    """
    n = x.shape[0]
    queries = np.arange(n) if queries is None else np.asarray(queries)
    out = np.empty(len(queries))
    step = max(1, 2**22 // n)
    for start in range(0, len(queries), step):
        q = queries[start : start + step]
        d2 = selection_sq_dists(x[q], x)  # (rows, n)
        d2[np.arange(len(q)), q] = np.inf
        out[start : start + step] = row_distances(x[q], x[d2.argmin(axis=1)])
    return out


#: Query points for :func:`median_spacing`: a fixed random subset (seed 0) when n is larger.
#: The median of 256 draws has a standard error of about 8% of the standard deviation of
#: the nearest-neighbour distances (about 4% of the median in 2-D, well under 1% in 64-D,
#: where they concentrate): enough for a resolution scale compared with a threshold of 1;
#: the search costs 256 n d operations, a quarter of the cost matrix at n = 1000.
SPACING_QUERIES = 256


def median_spacing(x) -> float:
    """Median nearest-neighbour distance of a sample: its sampling resolution."""
    n = x.shape[0]
    queries = (
        np.arange(n)
        if n <= SPACING_QUERIES
        else np.sort(np.random.default_rng(0).choice(n, SPACING_QUERIES, replace=False))
    )
    return float(np.median(nn_distances(x, queries)))


def row_distances(a, b) -> np.ndarray:
    """``||a_i - b_i||`` for paired rows, as a host float64 array (n,)."""
    if is_torch_tensor(a):
        import torch

        return torch.linalg.vector_norm(a - b, dim=1).cpu().numpy()
    return np.sqrt(np.square(a - b).sum(axis=1))


def pair_distances(x, i, j) -> np.ndarray:
    """``||x_i - x_j||`` for index arrays ``i``, ``j``, chunked so gathers stay small."""
    out = np.empty(len(i))
    step = max(1, _CHUNK_ELEMENTS // x.shape[1])
    for start in range(0, len(i), step):
        ii, jj = i[start : start + step], j[start : start + step]
        if is_torch_tensor(x):
            import torch

            ii = torch.as_tensor(ii, device=x.device)
            jj = torch.as_tensor(jj, device=x.device)
        out[start : start + step] = row_distances(x[ii], x[jj])
    return out


#: Largest relative error of a distance from :func:`all_pair_distances` (see there).
PAIR_RTOL = 1e-8


def all_pair_distances(x) -> np.ndarray:
    r"""Condensed distances :math:`\lVert x_i - x_j \rVert`, :math:`i < j`, from one Gram product.

    Pairs come in SciPy's ``pdist`` order (``np.triu_indices(n, 1)``). On centred data
    :math:`a = x - \bar x`, :math:`\lVert a_i \rVert^2 + \lVert a_j \rVert^2 - 2 \langle a_i,
    a_j \rangle` in float64 (one BLAS product on the host; torch on the tensor's device) has an
    absolute error of at most :math:`e_{ij} = (d + 2)\,\epsilon\,(\lVert a_i \rVert^2 +
    \lVert a_j \rVert^2)`. Every pair with :math:`e_{ij} > 2\,` :data:`PAIR_RTOL`
    :math:`\cdot` (its value) is measured again by a direct difference, so each returned
    distance has a relative error below :data:`PAIR_RTOL` (exact 0 for duplicates). Below
    :data:`EXPANSION_MIN_FEATURES` host features, SciPy's ``pdist`` (direct) is faster. On samples
    spread at their own scale that concerns almost no pair; it costs direct differences only
    for near-duplicates (or a map that collapses them).

    Parameters
    ----------
    x : ndarray or torch.Tensor of shape (n, d)
        The sample, float64.

    Returns
    -------
    ndarray of shape (n (n - 1) / 2,)
        Host float64 distances.
    """
    n, d = x.shape
    if d < EXPANSION_MIN_FEATURES and not is_torch_tensor(x):
        return pdist(x)  # direct differences, faster than the expansion in few dimensions
    i, j = np.triu_indices(n, 1)
    if is_torch_tensor(x):
        import torch

        a = x - x.mean(0)  # (n, d)
        sq_t = a.square().sum(1)  # (n,)
        ti, tj = torch.as_tensor(i, device=x.device), torch.as_tensor(j, device=x.device)
        d2 = (sq_t[ti] + sq_t[tj] - 2.0 * (a @ a.T)[ti, tj]).cpu().numpy()
        sq = sq_t.cpu().numpy()
    else:
        a = x - x.mean(axis=0)  # (n, d)
        sq = np.einsum("ij,ij->i", a, a)  # (n,)
        d2 = (a @ a.T)[i, j]
        d2 *= -2.0
        d2 += sq[i]
        d2 += sq[j]
    bound = (d + 2) * np.finfo(np.float64).eps * (sq[i] + sq[j])
    redo = np.flatnonzero(bound > 2.0 * PAIR_RTOL * d2)
    out = np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2)
    if redo.size:
        out[redo] = pair_distances(x, i[redo], j[redo])
    return out


#: Most features for a k-d tree (:func:`close_pairs`, the exact solver's nearest neighbours):
#: it prunes by one coordinate at a time, so it beats an all-pairs scan only in few dimensions.
KDTREE_MAX_FEATURES = 8


def close_pairs(x, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Every pair :math:`i < j` of a sample with :math:`\lVert x_i - x_j \rVert < r`, by a k-d tree.

    The tree (SciPy's ``cKDTree``, on host float64 coordinates) finds the candidate pairs in
    time proportional to their number (plus :math:`n \log n`), instead of the :math:`n^2 / 2`
    of all pairs; their distances are then measured by direct differences (exact to one
    rounding). Meant for :data:`KDTREE_MAX_FEATURES` features or fewer.

    Parameters
    ----------
    x : ndarray or torch.Tensor of shape (n, d)
        The sample.
    radius : float
        Pairs strictly closer than this are returned.

    Returns
    -------
    i, j : ndarray of int of shape (P,)
        The pairs, :math:`i < j`.
    r : ndarray of shape (P,)
        Their distances.
    nn : ndarray of shape (n,)
        Each point's nearest-neighbour distance (0 for duplicates).
    """
    from scipy.spatial import cKDTree

    host = np.asarray(x.detach().cpu().double() if is_torch_tensor(x) else x, dtype=np.float64)
    tree = cKDTree(host)
    nn = tree.query(host, k=2)[0][:, 1]
    ij = tree.query_pairs(radius, output_type="ndarray")  # (P, 2), i < j; may hold r == radius
    i, j = ij[:, 0].astype(np.int64), ij[:, 1].astype(np.int64)
    r = row_distances(host[i], host[j])
    keep = r < radius
    return i[keep], j[keep], r[keep], nn
