r"""Global c-transforms under squared Euclidean cost, in O(n + m) memory.

For query points :math:`q_i`, sites :math:`s_j` and weights :math:`w_j`,

.. math::

    w^c_i = \min_j \lVert q_i - s_j \rVert^2 - w_j,
    \qquad j^*(i) \in \operatorname*{arg\,min}_j \lVert q_i - s_j \rVert^2 - w_j,

i.e. :math:`q_i` lies in the power (Laguerre) cell of site :math:`j^*(i)` for the weights
:math:`w`. This is the global check of the sparse exact solver: a dual :math:`w` certifies an
assignment iff each point's partner is its :math:`j^*`.

Two exact methods:

- ``'tree'`` (1 to 3 features): branch and bound over a k-d tree of the sites, each node
  bounding :math:`\lVert q_i - s_j \rVert^2 - w_j` from below through an affine upper bound
  of the weights on its sites (:class:`analysis._power_tree.PowerTree`); started from a guess
  of the argmin (the current partner), a query visits the few leaves that can beat it. Exact
  up to the rounding of the bound (below the certificate's tolerance); no geometric
  predicate that rounding could get wrong, unlike a triangulation.
- ``'scan'`` (any dimension): chunked BLAS products on data centred at the sites' mean,
  :math:`O(\text{chunk} \cdot m)` memory; the chosen pair's cost is then recomputed by direct
  differences. The expansion's rounding can prefer a site whose value exceeds the minimum by
  at most :func:`scan_slack` (part of the certificate's tolerance).

Values are always recomputed by direct differences (relative error of the squared distance
:math:`\le (d + 2)\,\epsilon/2`), never read off the expansion.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ._pairwise import KDTREE_MAX_FEATURES

__all__ = ["c_transform", "knn", "pair_sq_dists", "scan_slack", "site_tree", "TREE_MAX_FEATURES"]

#: Largest number of features handled by the k-d tree (its bounds loosen with the dimension).
TREE_MAX_FEATURES = 3
#: Elements of one (rows, m) block of the scan (2**23 float64 = 64 MiB).
_SCAN_ELEMENTS = 2**23


def pair_sq_dists(a: np.ndarray, b: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``||a[rows] - b[cols]||^2`` by direct differences, (len(rows),); temporaries of 2**22 coordinates (32 MiB)."""
    out = np.empty(len(rows))
    chunk = max(1, 2**22 // a.shape[1])
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


def knn(q: np.ndarray, s: np.ndarray, k: int, w: np.ndarray | None = None, *, tree=None) -> np.ndarray:
    r"""Indices of the ``k`` sites of smallest :math:`\lVert q_i - s_j \rVert^2 - w_j` per query, (len(q), k).

    ``w`` None: the nearest sites (a KD-tree up to :data:`~analysis._pairwise.KDTREE_MAX_FEATURES` features). With
    site weights ``w``, the sites of smallest power distance: exactly through ``tree``
    (:func:`site_tree` of ``s``) when given, else by a chunked BLAS scan (whose order may
    differ from the exact one by :func:`scan_slack`: a candidate list, not a check).
    """
    k = min(k, len(s))
    if w is None and q.shape[1] <= KDTREE_MAX_FEATURES:
        _, idx = cKDTree(s).query(q, k, workers=-1)
        return idx.reshape(len(q), k)
    if w is not None and tree is not None:
        return tree.smallest(q, w, k)
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


def site_tree(s: np.ndarray):
    """The k-d tree of the sites ``s`` for :func:`c_transform`, or None above ``TREE_MAX_FEATURES`` features."""
    if s.shape[1] > TREE_MAX_FEATURES:
        return None
    from ._power_tree import PowerTree  # numba: imported on first use

    return PowerTree(s)


def c_transform(
    q: np.ndarray, s: np.ndarray, w: np.ndarray, start: np.ndarray | None = None, *, tree=None
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
        A guess of each query's argmin (its current partner): the tree's first bound; kept on
        ties.
    tree : PowerTree, optional
        :func:`site_tree` of ``s``, when several calls share the sites (built here otherwise).

    Returns
    -------
    idx : ndarray of shape (n,)
        :math:`j^*(i)`.
    value : ndarray of shape (n,)
        :math:`\lVert q_i - s_{j^*(i)} \rVert^2 - w_{j^*(i)}` by direct differences.
    method : str
        ``'tree'`` or ``'scan'``.
    """
    if tree is None:
        tree = site_tree(s)
    if tree is not None:
        idx, method = tree.smallest(q, w, 1, start)[:, 0], "tree"
    else:
        idx, method = _scan(q, s, w), "scan"
    value = pair_sq_dists(q, s, np.arange(len(q)), idx) - w[idx]
    return idx, value, method
