"""The sparse assignment solver against SciPy's, with its duals as an optimality proof."""

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from analysis._assignment import assign


def _graph(n, k, rng, integer=False):
    """k random columns per row plus a hidden permutation, so a perfect matching exists."""
    rows = np.repeat(np.arange(n), k + 1)
    cols = np.concatenate([rng.integers(0, n, size=(n, k)), rng.permutation(n)[:, None]], axis=1).ravel()
    keys = np.unique(rows * n + cols)
    rows, cols = np.divmod(keys, n)
    cost = rng.integers(0, 5, size=len(rows)).astype(float) if integer else rng.random(len(rows))
    return rows, cols, cost


def _reference(n, rows, cols, cost):
    # SciPy drops explicit zeros of a sparse matrix: shift the costs (same optimum).
    graph = csr_matrix((cost + 1.0, (rows, cols)), shape=(n, n))
    r, c = min_weight_full_bipartite_matching(graph)
    return float(graph[r, c].sum()) - n


def _solve(n, rows, cols, cost, v0=None, previous=None):
    indptr = np.searchsorted(rows, np.arange(n + 1))
    return assign(indptr, cols, cost, np.zeros(n) if v0 is None else v0, previous)


def _check_duals(rows, cols, cost, asg, u, v):
    # Feasible on every edge and tight on the assignment: complementary slackness, which
    # proves the assignment optimal whatever the reference says. Rounding: a potential is a
    # sum of at most 2n costs in [0, 5], each sum rounded once: 2n * 5 * eps per potential.
    tol = 4 * len(u) * 5 * np.finfo(float).eps
    assert np.all(cost - u[rows] - v[cols] >= -tol)
    on = np.searchsorted(rows * len(v) + cols, np.arange(len(u)) * len(v) + asg)
    np.testing.assert_allclose(cost[on] - u - v[asg], 0.0, atol=tol)


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("n, k", [(50, 3), (400, 5), (2000, 8)])
def test_same_cost_as_scipy_and_duals_prove_it(n, k, integer):
    rng = np.random.default_rng(n + k + integer)
    rows, cols, cost = _graph(n, k, rng, integer)
    asg, u, v, left = _solve(n, rows, cols, cost)
    assert left == 0 and np.array_equal(np.sort(asg), np.arange(n))
    on = np.searchsorted(rows * n + cols, np.arange(n) * n + asg)
    assert np.array_equal(rows[on] * n + cols[on], np.arange(n) * n + asg)  # every pair an edge
    np.testing.assert_allclose(cost[on].sum(), _reference(n, rows, cols, cost), rtol=1e-12)
    _check_duals(rows, cols, cost, asg, u, v)


def test_warm_start_after_adding_edges_matches_a_cold_solve():
    # The column-generation use: solve, add edges, solve again from the previous assignment
    # and duals (rows whose pair is no longer tight are searched again).
    rng = np.random.default_rng(3)
    n = 1000
    rows, cols, cost = _graph(n, 4, rng)
    asg, u, v, _ = _solve(n, rows, cols, cost)
    extra_r = rng.integers(0, n, size=3000)
    extra_c = rng.integers(0, n, size=3000)
    keys, first = np.unique(np.concatenate([rows * n + cols, extra_r * n + extra_c]), return_index=True)
    cost2 = np.concatenate([cost, rng.random(3000) * 0.2])[first]  # cheap new edges: many rows move
    rows2, cols2 = np.divmod(keys, n)
    warm, u2, v2, _ = _solve(n, rows2, cols2, cost2, v0=v, previous=asg)
    cold = _solve(n, rows2, cols2, cost2)[0]
    on = lambda a: np.searchsorted(keys, np.arange(n) * n + a)  # noqa: E731
    assert np.sum(warm != asg) > 100  # the warm start had work to do
    np.testing.assert_allclose(cost2[on(warm)].sum(), cost2[on(cold)].sum(), rtol=1e-12)
    _check_duals(rows2, cols2, cost2, warm, u2, v2)


def test_no_perfect_matching_is_reported():
    # Rows 0 and 1 both have only column 0.
    rows = np.array([0, 1, 2, 2])
    cols = np.array([0, 0, 1, 2])
    asg, _, _, left = _solve(3, rows, cols, np.ones(4))
    assert left == 1 and np.sum(asg < 0) == 1
