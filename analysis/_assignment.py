r"""Exact sparse assignment by successive shortest paths, warm-started from dual potentials.

The uniform n x n problem on a candidate graph, :math:`\min_\sigma \sum_i c_{i\sigma(i)}`
over the permutations :math:`\sigma` whose pairs are edges, with dual potentials
:math:`u_i + v_j \le c_{ij}` on every edge and equality on the assignment. From feasible
potentials and the partial assignment of the rows whose cheapest reduced edge is free, each
remaining row :math:`s` is assigned along a shortest alternating path in reduced costs
:math:`r_{ij} = c_{ij} - u_i - v_j \ge 0` (Dijkstra, stopped at the first free column at
distance :math:`D`); then every column settled at distance :math:`d_j` gets
:math:`v_j \mathrel{+}= d_j - D` and every settled row :math:`u_i \mathrel{+}= D - d_i`, which keeps
all reduced costs non-negative and makes the path tight (Jonker and Volgenant, 1987; here
sparse, as LAPMOD). With potentials from a coarser level, the searches stay local: cost
near linear in n for the block-like and sample-to-sample problems of this package.

Compiled with numba; reduced costs rounded below zero are read as zero (the certificate's
global check is what proves optimality, see :mod:`analysis.certified_ot`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["assign"]


@njit(cache=True)
def _heap_push(keys, vals, size, key, val):
    pos = size
    keys[pos] = key
    vals[pos] = val
    while pos > 0:
        parent = (pos - 1) >> 1
        if keys[parent] <= keys[pos]:
            break
        keys[parent], keys[pos] = keys[pos], keys[parent]
        vals[parent], vals[pos] = vals[pos], vals[parent]
        pos = parent
    return size + 1


@njit(cache=True)
def _heap_pop(keys, vals, size):
    key, val = keys[0], vals[0]
    size -= 1
    keys[0], vals[0] = keys[size], vals[size]
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and keys[left + 1] < keys[left]:
            child = left + 1
        if keys[pos] <= keys[child]:
            break
        keys[pos], keys[child] = keys[child], keys[pos]
        vals[pos], vals[child] = vals[child], vals[pos]
        pos = child
    return key, val, size


@njit(cache=True)
def _assign(indptr, cols, cost, u, v, col_of_row, row_of_col):
    """Complete the partial assignment in place; returns the number of rows left unassigned."""
    n = len(indptr) - 1
    m = len(v)
    # Feasible row potentials u_i = min_j c_ij - v_j; kept pairs that are no longer tight
    # are freed; free rows take their cheapest column when it is free.
    for i in range(n):
        best, arg, current = np.inf, -1, np.inf
        for e in range(indptr[i], indptr[i + 1]):
            r = cost[e] - v[cols[e]]
            if r < best:
                best, arg = r, cols[e]
            if cols[e] == col_of_row[i]:
                current = r
        u[i] = best
        if col_of_row[i] >= 0:
            if current <= best:
                continue
            row_of_col[col_of_row[i]] = -1
            col_of_row[i] = -1
        if arg >= 0 and row_of_col[arg] < 0:
            col_of_row[i] = arg
            row_of_col[arg] = i
    dist = np.full(m, np.inf)
    pred = np.full(m, -1, dtype=np.int64)
    done = np.zeros(m, dtype=np.bool_)
    touched = np.empty(m, dtype=np.int64)
    settled_rows = np.empty(n + 1, dtype=np.int64)
    settled_d = np.empty(n + 1)
    # A search scans each settled row once, so it pushes at most one entry per edge.
    keys = np.empty(len(cols) + 1)
    vals = np.empty(len(cols) + 1, dtype=np.int64)
    left = 0
    for s in range(n):
        if col_of_row[s] >= 0:
            continue
        n_touched = 0
        n_rows = 1
        settled_rows[0] = s
        settled_d[0] = 0.0
        size = 0
        i, di = s, 0.0
        end, total = -1, 0.0
        while True:
            for e in range(indptr[i], indptr[i + 1]):
                j = cols[e]
                if done[j]:
                    continue
                r = cost[e] - u[i] - v[j]
                nd = di + (r if r > 0.0 else 0.0)
                if nd < dist[j]:
                    if dist[j] == np.inf:
                        touched[n_touched] = j
                        n_touched += 1
                    dist[j] = nd
                    pred[j] = i
                    size = _heap_push(keys, vals, size, nd, j)
            j = -1
            while size > 0:
                dj, jj, size = _heap_pop(keys, vals, size)
                if not done[jj] and dj <= dist[jj]:
                    j = jj
                    break
            if j < 0:
                break  # no free column reachable: the graph has no perfect matching
            done[j] = True
            if row_of_col[j] < 0:
                end, total = j, dist[j]
                break
            i = row_of_col[j]
            di = dist[j]
            settled_rows[n_rows] = i
            settled_d[n_rows] = di
            n_rows += 1
        if end < 0:
            left += 1
        else:
            for k in range(n_touched):
                j = touched[k]
                if done[j]:
                    v[j] += dist[j] - total
            for k in range(n_rows):
                u[settled_rows[k]] += total - settled_d[k]
            j = end
            while True:
                i = pred[j]
                prev = col_of_row[i]
                col_of_row[i] = j
                row_of_col[j] = i
                if i == s:
                    break
                j = prev
        for k in range(n_touched):
            j = touched[k]
            dist[j] = np.inf
            done[j] = False
            pred[j] = -1
    return left


def assign(
    indptr: np.ndarray,
    cols: np.ndarray,
    cost: np.ndarray,
    v: np.ndarray,
    col_of_row: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    r"""Optimal assignment on a candidate graph (CSR by row), from column potentials ``v``.

    ``col_of_row`` (optional) is a partial assignment to start from: a pair is kept when it
    is tight for ``v`` and :math:`u_i = \min_j c_{ij} - v_j`, else its row is searched again.

    Returns the assignment (column per row, -1 where the graph has no perfect matching), the
    potentials ``u``, ``v`` (feasible on every edge, tight on the assignment up to rounding),
    and the number of rows left unassigned (0 when a perfect matching exists).
    """
    n, m = len(indptr) - 1, len(v)
    u = np.zeros(n)
    v = np.array(v, dtype=np.float64)
    c_of_r = np.full(n, -1, dtype=np.int64) if col_of_row is None else np.array(col_of_row, dtype=np.int64)
    r_of_c = np.full(m, -1, dtype=np.int64)
    kept = np.flatnonzero(c_of_r >= 0)
    r_of_c[c_of_r[kept]] = kept
    left = _assign(indptr.astype(np.int64), cols.astype(np.int64), cost.astype(np.float64), u, v, c_of_r, r_of_c)
    return c_of_r, u, v, int(left)
