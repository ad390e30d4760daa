r"""Exact optimal transport between uniform samples under squared Euclidean cost, in
O((n + m) k) memory, with a checked certificate of optimality.

The dense network simplex stores every pair (41 bytes each: 382 GiB at n = 100,000). Here
the network simplex runs on a sparse candidate graph, and a global check over all
:math:`n m` pairs, done without storing them (:mod:`analysis._ctransform`), either certifies
the sparse optimum as the optimum of the full problem or returns the pairs that violate its
duals; they are added and the sparse problem solved again (column generation).

Algorithm
---------
1. *Coarse to fine.* Each coarser level holds the centroids of spatially compact pairs
   (groups of ``COARSENING``) of points of the next (:func:`_levels`), down to
   ``DENSE_BASE`` points, which are solved densely; every level is solved and checked like
   the finest (its certificate is discarded). A level's dual :math:`v`, extended to the
   next level by the c-transform pair (:math:`u = v^c` over the coarse sites, then
   :math:`v = u^c` over the new sites), warm-starts the next solve and predicts its pairs.
2. *Candidate graph.* For each :math:`x_i`: its ``K_CANDIDATES`` sites of smallest
   :math:`c_{ij} - v_j` under the extended dual; for each :math:`y_j` its argmin under
   :math:`u`; the pair :math:`(i, i)` when the samples are paired (so a perfect matching
   exists); and the north-west-corner coupling of both samples sorted along their first
   principal axis (a feasible plan for any n, m).
3. *Sparse exact solve.* Square problems (n == m): successive shortest paths
   (:mod:`analysis._assignment`), warm-started from the extended duals and, after the first
   round, from the previous round's assignment, so a round re-solves only the rows whose
   candidates changed. Otherwise POT's network simplex on the graph (``emd_c_sparse``),
   integer supplies :math:`m/g` and :math:`n/g` (:math:`g = \gcd(n, m)`) so the flows are
   exact integers.
4. *Dual repair.* Both solvers update their potentials incrementally and drift by rounding.
   POT's are recomputed along a spanning tree of the tight edges (:func:`_tree_duals`, its
   basis); then a vectorized Bellman-Ford on the candidate graph (the support edges tight,
   every edge feasible) makes either consistent to rounding.
5. *Global check.* :math:`u = v^c` over all pairs (:func:`analysis._ctransform.c_transform`:
   an exact branch and bound over a k-d tree of the sites up to 3 features, a scan above).
   The pair :math:`(v^c, v)` is feasible, so
   :math:`D = \bar u + \bar v \le W_2^2 \le P`, the cost of the plan; the plan's dual
   violation is :math:`\max_{(i, j) \in \operatorname{supp}} c_{ij} - v_j - u_i` and
   :math:`P - D` is the plan-weighted mean of these violations. Certified when the largest
   is within the rounding tolerance :func:`certificate_tolerance`; otherwise each violating
   row's ``K_CANDIDATES`` sites of smallest :math:`c_{ij} - v_j` (``K_BEST`` once few rows
   violate) join the graph.

Each round adds at least one pair absent from the graph or certifies (if every violating
row's argmin is already in the graph, the sparse duals are globally feasible), so the loop
terminates.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import ot
from ot.lp.emd_wrap import emd_c_sparse
from scipy.spatial.distance import cdist

from ._ctransform import c_transform, knn, pair_sq_dists, scan_slack, site_tree
from ._results import Result
from .exceptions import MemoryBudgetError, SolverError

__all__ = [
    "Certificate",
    "SparseSolution",
    "solve_certified",
    "estimate_memory",
    "certificate_tolerance",
]

#: Sites of smallest :math:`c_{ij} - v_j` per point in the first candidate graph of a level, and per violating row.
K_CANDIDATES = 12
#: Points per group of the next finer level in one point of a coarse level.
COARSENING = 2
#: Largest level solved by the dense network simplex.
DENSE_BASE = 2000
#: Sites of smallest :math:`c_{ij} - v_j` added for each violating row once few rows violate.
K_BEST = 32
#: "Few": violating rows times sites at most this (a scan of 3e7 pairs, about a second, where no k-d tree).
_SCAN_BEST_PAIRS = 30_000_000
#: Rounds of the check-and-add loop on the finest level before giving up.
MAX_ROUNDS = 50
#: Sweeps of the dual repair.
_REPAIR_SWEEPS = 2000
#: Bytes per candidate edge: int64 key, row, column and cost (32), POT's arc arrays and the
#: graph's temporaries; an estimate, above the 0.9 GB resident (0.4 GB of it imports)
#: observed at n = m = 100,000 in 2-D with 1.4 million edges.
BYTES_PER_EDGE = 120
#: Bytes per point: coordinates, duals, argmins, the k-d trees (estimate).
BYTES_PER_POINT = 1200


@dataclass(frozen=True)
class Certificate(Result):
    r"""Proof (or not) that a transport plan is optimal for the full n x m problem.

    Attributes
    ----------
    certified : bool
        ``max_violation <= tolerance``: no plan is cheaper by more than float64 rounding.
    max_violation : float
        Largest dual violation found by the global check,
        :math:`\max_{(i, j) \in \operatorname{supp} P} c_{ij} - v_j - v^c_i` (squared units,
        per pair; 0 for an exact dual).
    tolerance : float
        The rounding tolerance of the check (squared units), see
        :func:`certificate_tolerance`.
    lower_bound : float
        :math:`D = \frac1n \sum_i v^c_i + \frac1m \sum_j v_j \le W_2^2` (squared units).
    upper_bound : float
        :math:`P`, the cost of the returned plan, :math:`\ge W_2^2` (squared units).
    rounds : int
        Check-and-add rounds on the finest level.
    candidate_pairs : int
        Edges of the final sparse graph.
    check : str
        ``'tree'`` (1 to 3 features) or ``'scan'``: how the global check ran.
    seconds : float
        Wall time of the solve.
    """

    certified: bool
    max_violation: float
    tolerance: float
    lower_bound: float
    upper_bound: float
    rounds: int
    candidate_pairs: int
    check: str
    seconds: float


@dataclass(frozen=True)
class SparseSolution:
    """An optimal plan in sparse form, its cost and certificate.

    ``rows``, ``cols``, ``mass`` list the plan's support (mass in probability units, summing
    to 1); for n == m it is a permutation and ``assignment[i]`` the partner of ``x_i``.
    ``u`` = :math:`v^c` and ``v`` are the checked dual potentials (squared units).
    """

    rows: np.ndarray = field(repr=False)
    cols: np.ndarray = field(repr=False)
    mass: np.ndarray = field(repr=False)
    cost: float
    certificate: Certificate
    u: np.ndarray = field(repr=False)
    v: np.ndarray = field(repr=False)
    assignment: np.ndarray | None = field(repr=False, default=None)


def estimate_memory(n: int, m: int, d: int) -> int:
    """Bytes the sparse solver is expected to need at its peak for an ``n`` x ``m`` problem."""
    edges = (n + m) * (2 * K_CANDIDATES + 4)
    return int(BYTES_PER_EDGE * edges + (BYTES_PER_POINT + 48 * d) * (n + m))


def certificate_tolerance(d: int, n: int, m: int, max_cost: float, max_potential: float, slack: float = 0.0) -> float:
    r"""Rounding tolerance of the certificate's dual violation (squared units).

    A violation is :math:`(c_{ij} - v_j) - (c_{ik} - v_k)`, two direct-difference squared
    distances and two potentials. Each squared distance has a relative error below
    :math:`(d + 2)\,\epsilon/2`, each subtraction one rounding of the larger operand, and the
    repaired potentials are consistent along the plan to one rounding per relaxation, so
    exact zero violations are computed below

    .. math::

        \tau = 4\,(d + 4)\,\epsilon\,(C + V) + s,

    where :math:`C` is the largest cost of a plan or argmin pair, :math:`V` the largest
    :math:`|v_j|` or :math:`|u_i|`, and :math:`s` the scan's own slack (:func:`scan_slack`,
    0 for the k-d tree). Then :math:`P - D \le \tau`: no plan is cheaper than the
    returned one by more than rounding. ``n`` and ``m`` do not enter: the violation is a
    per-pair quantity, no sum is involved.
    """
    del n, m  # per-pair quantity (documented above)
    eps = np.finfo(np.float64).eps
    return float(4.0 * (d + 4) * eps * (max_cost + max_potential) + slack)


def _principal_order(z: np.ndarray, axis: np.ndarray) -> np.ndarray:
    return np.argsort(z @ axis, kind="stable")


def _northwest_corner(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Support (n + m - 1 pairs) of the monotone coupling along the first principal axis."""
    n, m = len(x), len(y)
    z = np.concatenate([x, y])
    zc = z - z.mean(axis=0)
    axis = np.linalg.svd(zc[:: max(1, len(z) // 4096)], full_matrices=False)[2][0]
    ox, oy = _principal_order(x, axis), _principal_order(y, axis)
    # Cumulative masses in units of 1/(n m): x_i covers [i m, (i+1) m), y_j [j n, (j+1) n).
    cuts = np.union1d(np.arange(n + 1) * m, np.arange(m + 1) * n)[:-1]  # segment starts
    return ox[cuts // m], oy[cuts // n]


def _centroids(z: np.ndarray, groups: int) -> np.ndarray:
    """Centroids of ``groups`` spatially compact groups of ``len(z) // groups`` points each.

    Balanced binary splits: a set holding k groups is cut along its widest coordinate into
    the ``k // 2`` groups' worth of points with the smallest values and the rest; the
    ``len(z) % groups`` points left over end in the last groups and are dropped (a coarse
    level only warm-starts the next one). All sets of one depth are split at once (one
    sort of all points by set and value).
    """
    n = len(z)
    size = n // groups
    order = np.arange(n)
    start, k, first = np.array([0]), np.array([groups]), np.array([0])  # sets in order of position
    while np.any(k > 1):
        pts = z[order]
        width = np.maximum.reduceat(pts, start, axis=0) - np.minimum.reduceat(pts, start, axis=0)
        axis = np.argmax(width, axis=1)
        set_of = np.repeat(np.arange(len(start)), np.diff(np.r_[start, n]))
        key = np.where(k[set_of] > 1, pts[np.arange(n), axis[set_of]], 0.0)  # single groups keep their order
        order = order[np.lexsort((key, set_of))]
        split = k > 1
        half = k // 2
        start = np.column_stack([start, np.where(split, start + half * size, -1)]).ravel()
        k = np.column_stack([np.where(split, half, k), k - half]).ravel()
        first = np.column_stack([first, first + half]).ravel()
        keep = start >= 0
        start, k, first = start[keep], k[keep], first[keep]
    out = np.empty((groups, z.shape[1]))
    out[first] = z[order[start[:, None] + np.arange(size)]].mean(axis=1)
    return out


def _levels(x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The multiscale levels, coarsest first, the samples themselves last.

    Each coarser level holds the centroids of groups of ``COARSENING`` points of the next
    (:func:`_centroids`), down to ``DENSE_BASE`` points per side; always at least one coarse
    level. Aggregating keeps every region's count of the finest samples on the coarse levels,
    which random subsets do not: between two samples the counts differ by about the square
    root of the count, the optimal plan must carry that excess across the region, and a
    coarse level that has it already hands on duals that do (independent 2-D samples of
    16,000: 21 check rounds instead of 46).
    """
    levels = [(x, y)]
    while len(levels) == 1 or max(len(levels[-1][0]), len(levels[-1][1])) > DENSE_BASE:
        lx, ly = levels[-1]
        levels.append(tuple(_centroids(z, max(1, len(z) // COARSENING)) for z in (lx, ly)))
    return levels[::-1]


class _Graph:
    """The candidate edges, deduplicated, with their costs."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.m = len(y)
        self.keys = np.empty(0, dtype=np.int64)

    def add(self, rows, cols) -> int:
        keys = np.sort(np.asarray(rows, dtype=np.int64) * self.m + np.asarray(cols, dtype=np.int64))
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
        pos = np.searchsorted(self.keys, keys)
        present = (
            self.keys[np.minimum(pos, len(self.keys) - 1)] == keys
            if len(self.keys)
            else (np.zeros(len(keys), dtype=bool))
        )
        new = keys[~present]
        if len(new):
            self.keys = np.insert(self.keys, pos[~present], new)  # stays sorted
        return len(new)

    def edges(self):
        rows, cols = np.divmod(self.keys, self.m)
        return rows, cols, pair_sq_dists(self.x, self.y, rows, cols)


def _segments(indptr, ids):
    """Positions of the entries of segments ``ids`` of a CSR layout, and each segment's start."""
    lo = indptr[ids]
    deg = indptr[ids + 1] - lo
    starts = np.cumsum(deg) - deg
    pos = np.repeat(lo - starts, deg) + np.arange(int(deg.sum()))
    return pos, starts


def _csr(keys, size):
    """Sort order of ``keys`` and the CSR pointer of the sorted keys over ``size`` segments."""
    order = np.argsort(keys, kind="stable")
    return order, np.searchsorted(keys[order], np.arange(size + 1))


def _repair(rows, cols, cost, sup_rows, sup_cols, sup_cost, u, v):
    """Bellman-Ford on the candidate graph: every edge feasible, the support edges tight.

    Relaxes ``u_i <- min(u_i, c_ij - v_j)`` over all edges and ``v_j <- max(v_j, c_ij - u_i)``
    over the support until nothing changes, each sweep only over the rows (columns) next to
    a potential that changed in the previous one. The sparse plan is optimal on its graph (no
    negative cycle), so this converges; ``_REPAIR_SWEEPS`` caps rounding cycles between ties.
    """
    n, m = len(u), len(v)
    e_order, e_ptr = _csr(rows, n)  # all edges by row
    ec, ek = cols[e_order], cost[e_order]
    c_order, c_ptr = _csr(cols, m)  # all edges by column
    cr = rows[c_order]
    s_order, s_ptr = _csr(sup_cols, m)  # support by column
    sr, sk = sup_rows[s_order], sup_cost[s_order]
    r_order, r_ptr = _csr(sup_rows, n)  # support by row
    rc = sup_cols[r_order]
    u, v = u.copy(), v.copy()
    # Moves below a few units of rounding are not made: c - (c - v) can exceed v by one unit,
    # and a support edge would otherwise creep its two potentials apart forever.
    thr = 4 * np.finfo(np.float64).eps * (float(cost.max()) + float(np.abs(u).max()) + float(np.abs(v).max()))
    active = np.flatnonzero(np.diff(e_ptr) > 0)  # rows to relax
    for sweep in range(_REPAIR_SWEEPS):
        pos, starts = _segments(e_ptr, active)
        new_u = np.minimum.reduceat(ek[pos] - v[ec[pos]], starts)
        down = new_u < u[active] - thr
        rows_changed = active[down]
        u[rows_changed] = new_u[down]
        pos, _ = _segments(r_ptr, rows_changed)
        cols_todo = np.unique(rc[pos])
        if sweep == 0:
            cols_todo = np.flatnonzero(np.diff(s_ptr) > 0)
        if not len(cols_todo):
            break
        pos, starts = _segments(s_ptr, cols_todo)
        new_v = np.maximum.reduceat(sk[pos] - u[sr[pos]], starts)
        up = new_v > v[cols_todo] + thr
        cols_changed = cols_todo[up]
        v[cols_changed] = new_v[up]
        if not len(cols_changed):
            break
        pos, _ = _segments(c_ptr, cols_changed)
        active = np.unique(cr[pos])
    return u, v


def _tree_duals(rows, cols, cost, sup_rows, sup_cols, u, v):
    """Potentials recomputed along a spanning tree of the (nearly) tight edges.

    POT's potentials drift along long chains of the basis, which the sweeps of
    :func:`_repair` would fix one edge per sweep. Instead: the minimum spanning tree of the
    candidate graph under the weights ``|c_ij - u_i - v_j|`` (the support edges first) is
    (up to ties) the simplex basis; along it ``v_j = c_ij - u_i`` and ``u_i = c_ij - v_j``
    from the root, summed by pointer jumping (log-depth vectorized passes). Each potential
    is then a sum of costs with rounding at the scale of the costs, not of POT's offset.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    n, m = len(u), len(v)
    scale = float(cost.max()) + float(np.abs(u).max()) + float(np.abs(v).max())
    w = np.abs(cost - u[rows] - v[cols]) + 1e-12 * scale  # > 0: csgraph drops zero weights
    keys = rows * m + cols  # sorted (the graph keeps them sorted)
    w[np.searchsorted(keys, sup_rows * m + sup_cols)] = 1e-13 * scale
    graph = coo_matrix((w, (rows, n + cols)), shape=(n + m, n + m)).tocsr()
    order, pred = breadth_first_order(minimum_spanning_tree(graph), 0, directed=False)
    if len(order) != n + m:
        return u, v  # not connected (cannot happen with the north-west-corner pairs)
    node = order[1:]
    par = pred[node]
    is_y = node >= n
    xi = np.where(is_y, par, node)
    yj = np.where(is_y, node, par) - n
    c = cost[np.searchsorted(keys, xi * m + yj)]
    acc = np.zeros(n + m)
    acc[node] = np.where(is_y, c, -c)  # pi(y) = pi(x) + c, pi(x) = pi(y) - c
    up = np.arange(n + m)
    up[node] = par
    while np.any(up != 0):
        acc += acc[up]
        up = up[up]
    pi = acc - u[0]
    return -pi[:n], pi[n:]


def _sparse_solve(graph: _Graph, a, b, u0, v0, previous, func):
    """The optimum of the candidate graph: plan support, masses and duals.

    Square problems (n == m) go to the successive-shortest-path solver, warm-started from
    ``v0`` and the ``previous`` assignment; others to POT's sparse network simplex.
    """
    rows, cols, cost = graph.edges()
    if len(a) == len(b):
        from ._assignment import assign  # numba: imported on first use, not by the dense path

        indptr = np.searchsorted(rows, np.arange(len(a) + 1))
        assignment, u, v, left = assign(indptr, cols, cost, v0, previous)
        if left:
            raise SolverError(f"`{func}`: the candidate graph has no perfect matching ({left} rows unassigned).")
        shift = 0.5 * (np.mean(u) - np.mean(v))  # potentials are defined up to (u - s, v + s)
        return rows, cols, cost, np.arange(len(a)), assignment, np.ones(len(a)), u - shift, v + shift
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs, ft, fv, _, alpha, beta, code = emd_c_sparse(
            a,
            b,
            rows.astype(np.uint64),
            cols.astype(np.uint64),
            cost,
            2**62,
            None if u0 is None else np.ascontiguousarray(u0),
            None if v0 is None else np.ascontiguousarray(v0),
        )
    if int(code) != 1:
        raise SolverError(
            f"`{func}`: the sparse network simplex reported "
            f"{ot.lp.emd_wrap.check_result(code)!r} on {len(rows)} candidate pairs."
        )
    keep = fv > 0
    # POT's potentials carry a large common offset (thousands of squared units) and drift by
    # about 1e-9 of it over the pivots: centred here, recomputed along the basis by the caller.
    alpha, beta = np.asarray(alpha), np.asarray(beta)
    shift = 0.5 * (np.mean(alpha) - np.mean(beta))
    return rows, cols, cost, fs[keep].astype(np.int64), ft[keep].astype(np.int64), fv[keep], alpha - shift, beta + shift


def _dense_solve(x, y, a, b):
    """Dense network simplex on a small level: plan support and duals."""
    M = cdist(x, y, "sqeuclidean")  # direct differences
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        G, log = ot.emd(a, b, M, numItermax=2**62, log=True, center_dual=False)
    sr, sc = np.nonzero(G)
    return sr, sc, G[sr, sc], np.asarray(log["u"]), np.asarray(log["v"])


def _weights(n, m):
    g = math.gcd(n, m)
    return np.full(n, float(m // g)), np.full(m, float(n // g))


def _extend(x, y, ys_coarse, v_coarse, coarse_tree):
    """Duals on a finer level: u = v^c over the coarse sites, then v = u^c over all x (with its argmins)."""
    _, u, _ = c_transform(x, ys_coarse, v_coarse, tree=coarse_tree)
    ix, v, _ = c_transform(y, x, u)
    return u, ix, v


@dataclass(frozen=True)
class _Check:
    jstar: np.ndarray
    uc: np.ndarray
    viol: np.ndarray
    method: str
    worst: float
    tol: float
    scale: float
    lower: float
    upper: float


def _check(x, y, sr, sc, mass, sup_cost, v, start, tree):
    """The global check of a plan (support ``sr``, ``sc``) against the dual ``v``."""
    d = x.shape[1]
    jstar, uc, method = c_transform(x, y, v, start, tree=tree)
    viol = sup_cost - v[sc] - uc[sr]  # (support,) >= 0 up to rounding
    argmin_cost = pair_sq_dists(x, y, np.arange(len(x)), jstar)
    max_cost = max(float(sup_cost.max()), float(argmin_cost.max()))
    max_pot = max(float(np.abs(v).max()), float(np.abs(uc).max()))
    tol = certificate_tolerance(d, len(x), len(y), max_cost, max_pot, scan_slack(x, y) if method == "scan" else 0.0)
    return _Check(
        jstar=jstar,
        uc=uc,
        viol=viol,
        method=method,
        worst=float(viol.max()),
        tol=tol,
        scale=max_cost + max_pot,
        lower=float(uc.mean() + v.mean()),
        upper=float(mass @ sup_cost / mass.sum()),
    )


def solve_certified(
    x: np.ndarray,
    y: np.ndarray,
    *,
    paired: bool,
    max_rounds: int = MAX_ROUNDS,
    quiet: bool = True,
    func: str = "solve_certified",
    memory_budget_gib: float | None = None,
) -> SparseSolution:
    r"""Exact uniform OT between ``x`` and ``y`` under squared Euclidean cost, certified.

    Solves :math:`\min_{P \in \Pi(\mathbf 1_n / n, \mathbf 1_m / m)} \sum_{ij} P_{ij}
    \lVert x_i - y_j \rVert^2` (see the module docstring for the algorithm).

    Parameters
    ----------
    x : ndarray of shape (n, d)
    y : ndarray of shape (m, d)
        Float64 host arrays.
    paired : bool
        ``y[i]`` is the image of ``x[i]`` (then n == m and the pairs (i, i) join the graph).
    max_rounds : int
        Check-and-add rounds on the finest level before returning uncertified.
    quiet : bool
        No progress bar.
    func : str
        Caller name for messages.
    memory_budget_gib : float, optional
        Raise :class:`MemoryBudgetError` before starting when :func:`estimate_memory` exceeds it.

    Returns
    -------
    SparseSolution
        The plan, its cost :math:`P` (squared units) and its :class:`Certificate`. An
        uncertified solution has ``certificate.certified`` False and the bounds
        :math:`[D, P]`; callers must not report its cost as exact.
    """
    t0 = time.perf_counter()
    n, d = x.shape
    m = len(y)
    if memory_budget_gib is not None:
        need = estimate_memory(n, m, d)
        if need > memory_budget_gib * 2**30:
            raise MemoryBudgetError(
                f"`{func}` would need about {need / 2**30:.1f} GiB for n={n} and m={m} samples "
                f"with the sparse exact solver, above memory_budget_gib={memory_budget_gib:g}. "
                f"Use a subsample, or raise memory_budget_gib."
            )
    levels = _levels(x, y)
    progress = _progress(quiet, len(levels), max_rounds, func)

    # Coarsest level: dense.
    sr, sc, mass, u, v = _dense_solve(*levels[0], *_weights(len(levels[0][0]), len(levels[0][1])))
    tree = site_tree(levels[0][1])
    progress.update(1)
    for level, (xl, yl) in enumerate(levels[1:], start=1):
        final = level == len(levels) - 1
        ln, lm = len(xl), len(yl)
        u, ix, v = _extend(xl, yl, levels[level - 1][1], v, tree)
        tree = site_tree(yl)  # the sites of every check on this level
        graph = _Graph(xl, yl)
        # Predicted partners: each point's sites of smallest c - v, and each site's argmin under u.
        best = knn(xl, yl, K_CANDIDATES, v, tree=tree)  # (ln, min(K_CANDIDATES, lm))
        graph.add(np.repeat(np.arange(ln), best.shape[1]), best.ravel())
        graph.add(ix, np.arange(lm))
        if paired and final:
            graph.add(np.arange(ln), np.arange(ln))
        graph.add(*_northwest_corner(xl, yl))
        a, b = _weights(ln, lm)
        previous = None
        for r in range(1, max_rounds + 1):
            rows, cols, cost, sr, sc, mass, u, v = _sparse_solve(graph, a, b, u, v, previous, func)
            previous = sc if ln == lm else None
            sup_cost = pair_sq_dists(xl, yl, sr, sc)
            # POT's potentials recomputed along its basis (the shortest-path solver has no
            # spanning tree of tight edges: forcing one would move whole subtrees), what is
            # left repaired, then checked against all pairs.
            if ln != lm:
                u, v = _tree_duals(rows, cols, cost, sr, sc, u, v)
            u, v = _repair(rows, cols, cost, sr, sc, sup_cost, u, v)
            start = np.empty(ln, dtype=np.int64)
            start[sr] = sc
            chk = _check(xl, yl, sr, sc, mass, sup_cost, v, start, tree)
            progress.set_postfix(level=level, round=r, pairs=len(graph.keys), gap=chk.upper - chk.lower)
            if final:
                progress.update(1)
            if chk.worst <= chk.tol:
                break
            bad = np.unique(sr[chk.viol > chk.tol])
            best = knn(xl[bad], yl, K_BEST if len(bad) * lm <= _SCAN_BEST_PAIRS else K_CANDIDATES, v, tree=tree)
            added = graph.add(np.repeat(bad, best.shape[1]), best.ravel())
            if added == 0:
                break  # every row's best sites are already candidates: rounding, nothing to add
        uc, method, worst, tol, lower, upper = chk.uc, chk.method, chk.worst, chk.tol, chk.lower, chk.upper
        result = (sr, sc, mass, uc, v, r, len(graph.keys), method, worst, tol, lower, upper)
        if not final:
            progress.update(1)
    progress.close()
    sr, sc, mass, uc, v, r, pairs, method, worst, tol, lower, upper = result
    cert = Certificate(
        certified=bool(worst <= tol),
        max_violation=worst,
        tolerance=tol,
        lower_bound=lower,
        upper_bound=upper,
        rounds=int(r),
        candidate_pairs=int(pairs),
        check=method,
        seconds=time.perf_counter() - t0,
    )
    assignment = None
    if n == m and len(sr) == n:
        assignment = np.empty(n, dtype=np.int64)
        assignment[sr] = sc
    return SparseSolution(
        rows=sr, cols=sc, mass=mass / mass.sum(), cost=upper, certificate=cert, u=uc, v=v, assignment=assignment
    )


def _progress(quiet, levels, max_rounds, func):
    from tqdm.auto import tqdm

    return tqdm(total=levels + max_rounds - 1, desc=f"{func} (sparse exact)", disable=quiet, leave=False, unit="step")
