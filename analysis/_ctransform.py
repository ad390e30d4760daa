r"""Global c-transforms under squared Euclidean cost, in O(n + m) memory.

For query points :math:`q_i`, sites :math:`s_j` and weights :math:`w_j`,

.. math::

    w^c_i = \min_j \lVert q_i - s_j \rVert^2 - w_j,
    \qquad j^*(i) \in \operatorname*{arg\,min}_j \lVert q_i - s_j \rVert^2 - w_j,

i.e. :math:`q_i` lies in the power (Laguerre) cell of site :math:`j^*(i)` for the weights
:math:`w`. This is the global check of the sparse exact solver: a dual :math:`w` certifies an
assignment iff each point's partner is its :math:`j^*`.

Two exact methods:

- ``'power_diagram'`` (1 to 3 features): the sites lifted to
  :math:`(s_j, \lVert s_j \rVert^2 - w_j)`; the vertices of the lower convex hull (Qhull,
  through SciPy) are the sites with non-empty cells and its edges join the neighbouring cells
  (the regular triangulation). A site that is not a vertex lies above a convex combination
  of vertices, so its value is never below theirs: the minimum over vertices is the global
  one. Each query walks from a start site to the neighbour of smallest value until none is
  smaller; the values are convex along the triangulation, so the walk stops at the global
  minimum (a point of the cell of the current site is nearer, in power distance, to it than
  to every neighbour). A few hundred queries per call are also checked by a full scan, which
  guards against a triangulation Qhull got wrong by rounding (then the scan is used).
- ``'scan'`` (any dimension): chunked BLAS products on data centred at the sites' mean,
  :math:`O(\text{chunk} \cdot m)` memory; the chosen pair's cost is then recomputed by direct
  differences. The expansion's rounding can prefer a site whose value exceeds the minimum by
  at most :func:`scan_slack` (part of the certificate's tolerance).

Values are always recomputed by direct differences (relative error of the squared distance
:math:`\le (d + 2)\,\epsilon/2`), never read off the expansion.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError, cKDTree

from ._pairwise import KDTREE_MAX_FEATURES

__all__ = ["c_transform", "knn", "pair_sq_dists", "scan_slack", "POWER_DIAGRAM_MAX_FEATURES"]

#: Largest number of features handled by the power diagram (Qhull's cost grows fast with it).
POWER_DIAGRAM_MAX_FEATURES = 3
#: Rows checked by a full scan after each power-diagram query.
_SPOT_CHECKS = 256
#: Elements of one (rows, m) block of the scan (2**23 float64 = 64 MiB).
_SCAN_ELEMENTS = 2**23


def pair_sq_dists(a: np.ndarray, b: np.ndarray, rows: np.ndarray, cols: np.ndarray, chunk: int = 2**20) -> np.ndarray:
    """``||a[rows] - b[cols]||^2`` by direct differences, chunked over the pairs, (len(rows),)."""
    out = np.empty(len(rows))
    for lo in range(0, len(rows), chunk):
        diff = a[rows[lo : lo + chunk]] - b[cols[lo : lo + chunk]]  # (chunk, d)
        out[lo : lo + chunk] = np.einsum("ij,ij->i", diff, diff)
    return out


def scan_slack(q: np.ndarray, s: np.ndarray) -> float:
    r"""Largest amount by which the scan's expansion may miss the minimum (squared units).

    The centred expansion :math:`\lVert a \rVert^2 + \lVert b \rVert^2 - 2\langle a, b
    \rangle` has an absolute error below :math:`(d + 2)\,\epsilon\,(\lVert a \rVert^2 +
    \lVert b \rVert^2)`; two sites compared this way can be swapped when their values differ
    by less than twice that.
    """
    c = s.mean(axis=0)
    qa = float(np.square(q - c).sum(axis=1).max())
    sa = float(np.square(s - c).sum(axis=1).max())
    return 2.0 * (q.shape[1] + 2) * np.finfo(np.float64).eps * (qa + sa)


def _scan(q: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """argmin_j ||q_i - s_j||^2 - w_j by chunked BLAS products, (len(q),)."""
    c = s.mean(axis=0)
    a, b = q - c, s - c  # (n, d), (m, d)
    h = np.einsum("ij,ij->i", b, b) - w  # (m,)
    out = np.empty(len(q), dtype=np.int64)
    step = max(1, _SCAN_ELEMENTS // len(s))
    for lo in range(0, len(q), step):
        g = a[lo : lo + step] @ b.T  # (rows, m)
        g *= -2.0
        g += h
        out[lo : lo + step] = g.argmin(axis=1)
    return out


def knn(q: np.ndarray, s: np.ndarray, k: int, w: np.ndarray | None = None) -> np.ndarray:
    r"""Indices of the ``k`` sites of smallest :math:`\lVert q_i - s_j \rVert^2 - w_j` per query, (len(q), k).

    ``w`` None: the nearest sites (a KD-tree up to :data:`~analysis._pairwise.KDTREE_MAX_FEATURES` features). With
    site weights ``w``, the sites of smallest power distance, by a chunked BLAS scan (their
    order may differ from the exact one by :func:`scan_slack`: a candidate list, not a check).
    """
    k = min(k, len(s))
    if w is None and q.shape[1] <= KDTREE_MAX_FEATURES:
        _, idx = cKDTree(s).query(q, k, workers=-1)
        return idx.reshape(len(q), k)
    c = s.mean(axis=0)
    a, b = q - c, s - c
    h = np.einsum("ij,ij->i", b, b)
    if w is not None:
        h -= w
    out = np.empty((len(q), k), dtype=np.int64)
    step = max(1, _SCAN_ELEMENTS // len(s))
    for lo in range(0, len(q), step):
        g = a[lo : lo + step] @ b.T  # (rows, m)
        g *= -2.0
        g += h
        out[lo : lo + step] = (
            np.argpartition(g, k - 1, axis=1)[:, :k]
            if k < len(s)
            else (np.broadcast_to(np.arange(len(s)), (g.shape[0], k)))
        )
    return out


class _PowerDiagram:
    """The regular triangulation of weighted sites, as vertex adjacency lists (CSR)."""

    def __init__(self, s: np.ndarray, w: np.ndarray):
        c = s.mean(axis=0)
        sc = s - c
        lifted = np.column_stack([sc, np.einsum("ij,ij->i", sc, sc) - w])  # (m, d + 1)
        hull = ConvexHull(lifted, qhull_options="Qt Qbb Qc")
        # Lower facets (outward normal pointing down); near-vertical ones are kept: an extra
        # neighbour only costs one more comparison, a missing one could stop a walk early.
        lower = hull.simplices[hull.equations[:, -2] < 1e-9]  # (f, d + 1)
        d1 = lower.shape[1]
        a = np.repeat(lower, d1, axis=1).ravel()
        b = np.tile(lower, (1, d1)).ravel()
        keep = a != b
        m = len(s)
        order = np.lexsort((b[keep], a[keep]))
        a, b = a[keep][order], b[keep][order]
        first = np.ones(len(a), dtype=bool)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        a, b = a[first], b[first]
        self.indptr = np.zeros(m + 1, dtype=np.int64)
        np.add.at(self.indptr, a + 1, 1)
        np.cumsum(self.indptr, out=self.indptr)
        self.indices = b
        self.is_vertex = np.diff(self.indptr) > 0
        verts = np.flatnonzero(self.is_vertex)
        # Start site for non-vertex sites: the nearest vertex (only a starting guess).
        self.proxy = np.arange(m)
        hidden = np.flatnonzero(~self.is_vertex)
        if len(hidden):
            _, near = cKDTree(s[verts]).query(s[hidden])
            self.proxy[hidden] = verts[near]

    def walk(self, q, s, w, start):
        """Greedy descent over the triangulation from ``start``; the global argmin per row."""
        cur = self.proxy[start]
        val = pair_sq_dists(q, s, np.arange(len(q)), cur) - w[cur]
        active = np.arange(len(q))
        while len(active):
            lo, hi = self.indptr[cur[active]], self.indptr[cur[active] + 1]
            deg = hi - lo
            rows = np.repeat(active, deg)
            offs = np.arange(len(rows)) - np.repeat(np.cumsum(deg) - deg, deg)
            cols = self.indices[np.repeat(lo, deg) + offs]
            vals = pair_sq_dists(q, s, rows, cols) - w[cols]
            starts = np.cumsum(deg) - deg
            best = np.minimum.reduceat(vals, starts)  # deg >= 1 for every vertex
            improved = best < val[active]
            if not improved.any():
                break
            hit = vals == np.repeat(best, deg)
            pos = np.flatnonzero(hit)
            first = pos[np.r_[True, np.diff(rows[pos]) != 0]]  # first argmin per row
            arg = np.empty(len(active), dtype=np.int64)
            arg[np.searchsorted(starts, first, side="right") - 1] = cols[first]
            moved = active[improved]
            cur[moved] = arg[improved]
            val[moved] = best[improved]
            active = moved
        return cur


def c_transform(
    q: np.ndarray, s: np.ndarray, w: np.ndarray, start: np.ndarray | None = None, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, str]:
    r"""The c-transform :math:`w^c` of site weights ``w`` at the query points, with argmins.

    Parameters
    ----------
    q : ndarray of shape (n, d)
        Query points.
    s : ndarray of shape (m, d)
        Sites.
    w : ndarray of shape (m,)
        Site weights (a dual potential, squared units).
    start : ndarray of shape (n,), optional
        A guess of each query's argmin (its current partner): shortens the walks.
    seed : int
        Seed of the spot-checked rows.

    Returns
    -------
    idx : ndarray of shape (n,)
        :math:`j^*(i)`.
    value : ndarray of shape (n,)
        :math:`\lVert q_i - s_{j^*(i)} \rVert^2 - w_{j^*(i)}` by direct differences.
    method : str
        ``'power_diagram'`` or ``'scan'``.
    """
    n, d = q.shape
    method = "scan"
    idx = None
    if d <= POWER_DIAGRAM_MAX_FEATURES and len(s) > d + 2:
        try:
            pd = _PowerDiagram(s, w)
        except QhullError:  # degenerate sites (e.g. all on a line in 2-D): scan instead
            pd = None
        if pd is not None:
            if start is None:
                start = cKDTree(s).query(q, workers=-1)[1]
            idx = pd.walk(q, s, w, np.asarray(start, dtype=np.int64))
            method = "power_diagram"
            rows = np.random.default_rng(seed).choice(n, size=min(n, _SPOT_CHECKS), replace=False)
            ref = _scan(q[rows], s, w)
            got = pair_sq_dists(q, s, rows, idx[rows]) - w[idx[rows]]
            want = pair_sq_dists(q, s, rows, ref) - w[ref]
            if np.any(want < got - scan_slack(q[rows], s)):
                idx, method = None, "scan"  # the triangulation is wrong: trust the scan
    if idx is None:
        idx = _scan(q, s, w)
    value = pair_sq_dists(q, s, np.arange(n), idx) - w[idx]
    return idx, value, method
