"""Ground truth for the certified sparse exact solver (`analysis.certified_ot`).

Every cost is compared with an independent exact solver (POT's dense network simplex with an
iteration cap it never reaches, SciPy's Hungarian-type `linear_sum_assignment`) or with a
closed-form answer. Relative tolerance 1e-12 on costs: both sides are exact optima of the
same problem, and their costs are sums of the same n float64 squared distances in another
order (relative error below n eps ~ 1e-13 at n = 400).
"""

import numpy as np
import ot
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

import analysis._emd as emd
from analysis import MemoryBudgetError, SolverError, map_vs_ot, wasserstein
from analysis.certified_ot import _centroids, _check, _levels, solve_certified

EPS = np.finfo(np.float64).eps


def _dense_w2_sq(x, y):
    M = cdist(x, y, "sqeuclidean")
    return ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), M, numItermax=10**9)


@pytest.mark.parametrize("d", [1, 2, 3, 64])
def test_same_cost_as_pot_and_scipy(d):
    # Independent samples with a shift (large displacements), n == m: POT dense and SciPy's
    # assignment give the same optimum; our plan is a permutation and certified.
    rng = np.random.default_rng(d)
    n = 200 if d == 64 else 400
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d)) + 0.5
    sol = solve_certified(x, y, paired=False)
    assert sol.certificate.certified
    C = cdist(x, y, "sqeuclidean")
    r, c = linear_sum_assignment(C)
    np.testing.assert_allclose(sol.cost, C[r, c].mean(), rtol=1e-12)
    np.testing.assert_allclose(sol.cost, _dense_w2_sq(x, y), rtol=1e-12)
    np.testing.assert_allclose(C[np.arange(n), sol.assignment].mean(), sol.cost, rtol=1e-12)
    assert sol.certificate.lower_bound <= sol.cost * (1 + 1e-12)


@pytest.mark.parametrize("n, m, d", [(500, 300, 2), (257, 411, 3), (300, 200, 64)])
def test_different_sizes_match_pot(n, m, d):
    # n != m: the plan is no permutation (fractional masses); same W2^2 as POT dense, and the
    # masses are a coupling of the uniform weights (exact: integer flows in the solver).
    rng = np.random.default_rng(n + m)
    x, y = rng.uniform(size=(n, d)), 0.5 * rng.standard_normal((m, d))
    res = wasserstein(x, y, solver="sparse", n_subsamples=0)
    assert res.status == "optimal" and res.converged and res.certificate.certified
    np.testing.assert_allclose(res.w2_squared, _dense_w2_sq(x, y), rtol=1e-12)
    dense = wasserstein(x, y, solver="dense", n_subsamples=0)
    np.testing.assert_allclose(res.w2_squared, dense.w2_squared, rtol=1e-12)
    assert dense.certificate is None
    sol = solve_certified(x, y, paired=False)
    np.testing.assert_allclose(np.bincount(sol.rows, sol.mass, minlength=n), 1 / n, rtol=1e-12)
    np.testing.assert_allclose(np.bincount(sol.cols, sol.mass, minlength=m), 1 / m, rtol=1e-12)


def _convex_gradient(x):
    # Gradient of the convex phi(x) = |x|^2 / 2 + 0.1 sum log cosh(2 x_k): an OT map.
    return x + 0.2 * np.tanh(2 * x)


def test_identity_verdict_matches_dense_on_block_like_pairs():
    # Two block-like pairs at n = 800 (informative: displacements of the order of the
    # spacing): an OT map (identity optimal) and a rotation of an anisotropic cloud (not).
    rng = np.random.default_rng(3)
    x = rng.standard_normal((800, 2)) * [1.0, 0.3]
    theta = 0.3
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    for tx, optimal in ((_convex_gradient(x), True), (x @ rot.T, False)):
        dense = map_vs_ot(x, tx, solver="dense", n_subsamples=0)
        sparse = map_vs_ot(x, tx, solver="sparse", n_subsamples=0)
        assert dense.identity_optimal == sparse.identity_optimal == optimal
        np.testing.assert_allclose(sparse.w2_squared, dense.w2_squared, rtol=1e-12)
        assert sparse.certificate.certified and dense.certificate is None
        assert sparse.status == "optimal"


def test_ties_and_duplicated_points():
    # Each point three times, and an integer lattice (many equal distances): the optimum
    # is degenerate; the cost still equals POT's and the certificate holds.
    rng = np.random.default_rng(4)
    base = rng.standard_normal((150, 2))
    x = np.repeat(base, 3, axis=0)
    y = np.repeat(base + rng.normal(scale=0.3, size=base.shape), 3, axis=0)
    sol = solve_certified(x, y, paired=True)
    assert sol.certificate.certified
    np.testing.assert_allclose(sol.cost, _dense_w2_sq(x, y), rtol=1e-12)
    g = np.stack(np.meshgrid(np.arange(20.0), np.arange(20.0)), -1).reshape(-1, 2)
    sol = solve_certified(g, g[rng.permutation(len(g))] + [1.0, 0.0], paired=True)
    assert sol.certificate.certified
    np.testing.assert_allclose(sol.cost, _dense_w2_sq(g, g + [1.0, 0.0]), rtol=1e-12)


def test_symmetry_w2_zero_but_pairing_not_optimal():
    # A lattice mapped onto itself by a quarter turn: W2 = 0 (same point set) while the
    # rotation's own pairing moves points, so the identity is not optimal.
    g = np.stack(np.meshgrid(np.arange(-10.0, 11.0), np.arange(-10.0, 11.0)), -1).reshape(-1, 2)
    res = map_vs_ot(g, g @ np.array([[0.0, -1.0], [1.0, 0.0]]).T, solver="sparse", n_subsamples=0)
    assert res.w2_squared == 0.0 and res.kinetic > 0
    assert not res.identity_optimal and res.certificate.certified


def test_perturbed_dual_fails_the_certificate():
    # The returned dual passes the global check; lowered by 1 squared unit at row 0's
    # partner (costs of order 1, tolerance 1e-14), row 0's value there rises by 1 while its
    # next-best site (gap g >= 0, 0 for a degenerate tie) is unchanged: the check must find
    # the violation max(0, 1 - g) exactly, and no other row gets worse.
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    sol = solve_certified(x, y, paired=False)
    sup_cost = ((x[sol.rows] - y[sol.cols]) ** 2).sum(1)
    ok = _check(x, y, sol.rows, sol.cols, sol.mass, sup_cost, sol.v, sol.assignment, None)
    assert ok.worst <= ok.tol and ok.worst == sol.certificate.max_violation
    j = sol.assignment[0]
    bad = sol.v.copy()
    bad[j] -= 1.0
    fail = _check(x, y, sol.rows, sol.cols, sol.mass, sup_cost, bad, sol.assignment, None)
    C = cdist(x[:1], y, "sqeuclidean")[0] - sol.v  # row 0's values before the change
    second = np.partition(C - C[j], 1)[1]  # its gap to the next-best site
    np.testing.assert_allclose(fail.viol.max(), 1.0 - min(1.0, second), rtol=1e-9)
    assert fail.worst > 1e6 * fail.tol and fail.lower < fail.upper


def test_uncertified_is_an_error_or_a_flag(monkeypatch):
    # One round on independent samples cannot certify: the bounds still bracket the true
    # W2^2, check=True raises and check=False flags the status.
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((800, 2)), rng.standard_normal((800, 2)) + 2.0
    truth = _dense_w2_sq(x, y)
    sol = solve_certified(x, y, paired=False, max_rounds=1)
    cert = sol.certificate
    assert not cert.certified and cert.max_violation > cert.tolerance
    assert cert.lower_bound <= truth * (1 + 1e-12) and truth <= cert.upper_bound * (1 + 1e-12)

    def one_round(*args, **kwargs):
        return solve_certified(*args, **kwargs, max_rounds=1)

    monkeypatch.setattr(emd, "solve_certified", one_round)
    with pytest.raises(SolverError, match="could not certify"):
        wasserstein(x, y, solver="sparse", n_subsamples=0)
    res = wasserstein(x, y, solver="sparse", check=False, n_subsamples=0)
    assert res.status == "uncertified" and not res.converged


def test_solver_option_and_memory_budget():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3000, 2))
    with pytest.raises(ValueError, match="The 'solver' parameter of `map_vs_ot` must be one of"):
        map_vs_ot(x, x, solver="lazy")
    # Dense needs 41 * 3000^2 B = 0.34 GiB > 0.1 GiB: auto switches to the sparse solver.
    res = map_vs_ot(x, x + 0.01, memory_budget_gib=0.1, n_subsamples=0)
    assert res.certificate is not None and res.certificate.certified
    np.testing.assert_allclose(res.w2_squared, 2e-4, rtol=1e-9)  # translation: |c|^2
    with pytest.raises(MemoryBudgetError, match="even with the sparse exact solver"):
        wasserstein(x, x, memory_budget_gib=1e-4, n_subsamples=0)
    with pytest.raises(MemoryBudgetError):
        map_vs_ot(x, x, solver="dense", memory_budget_gib=0.1, n_subsamples=0)
    assert "certificate" in res.to_dict() and res.to_dict()["certificate"]["certified"]


@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 3])
def test_known_answers_at_large_n(d):
    # n = 20,000, where the dense solve would need 15 GiB: a convex gradient is certified
    # optimal, a translation costs |c|^2 (rounding of x + c: 64 eps relative), an
    # anisotropic cloud's rotation is not optimal.
    rng = np.random.default_rng(8 + d)
    n = 20_000
    x = rng.standard_normal((n, d)) * np.linspace(1.0, 0.3, d)
    res = map_vs_ot(x, _convex_gradient(x), n_subsamples=0)
    assert res.certificate.certified and res.identity_optimal and not res.uninformative
    c = np.linspace(0.3, -0.4, d)
    res = map_vs_ot(x, x + c, n_subsamples=0)
    assert res.certificate.certified and res.identity_optimal
    np.testing.assert_allclose(res.w2_squared, np.square(c).sum(), rtol=64 * EPS)
    rot = np.eye(d)
    rot[:2, :2] = [[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]
    res = map_vs_ot(x, x @ rot.T, n_subsamples=0)
    assert res.certificate.certified and not res.identity_optimal and res.monge_gap > 0


@pytest.mark.slow
def test_matches_pot_at_larger_n_in_high_dimension():
    # 2000 points in 64-D (the scan check): same cost as POT dense, 1e-12 relative.
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((2000, 64)), rng.standard_normal((2000, 64))
    res = wasserstein(x, y, solver="sparse", n_subsamples=0)
    assert res.certificate.certified and res.certificate.check == "scan"
    np.testing.assert_allclose(res.w2_squared, _dense_w2_sq(x, y), rtol=1e-12)


def test_coarse_levels_aggregate_compact_groups():
    """A coarse point is the mean of a compact group of the finer points: on a line, the means of
    consecutive runs of 8 (balanced splits of sorted values); every point is used once when the
    size divides (the means average to the mean); levels halve down to the dense base."""
    z = np.random.default_rng(0).permutation(np.arange(64.0))[:, None]
    np.testing.assert_array_equal(np.sort(_centroids(z, 8)[:, 0]), np.arange(8) * 8 + 3.5)
    w = np.random.default_rng(1).standard_normal((4096, 3))
    c = _centroids(w, 512)
    assert np.allclose(c.mean(axis=0), w.mean(axis=0), atol=1e-12)
    sizes = [(len(a), len(b)) for a, b in _levels(np.zeros((20_000, 2)) + np.arange(20_000)[:, None], w)]
    assert sizes == [(1250, 256), (2500, 512), (5000, 1024), (10_000, 2048), (20_000, 4096)]


@pytest.mark.parametrize("d", [2, 64])
def test_weighted_knn_finds_the_smallest_power_distances(d):
    """A point's candidate sites: the k smallest ||q_i - s_j||^2 - w_j, as a brute-force sort finds them."""
    from analysis._ctransform import knn, site_tree

    rng = np.random.default_rng(d)
    q, s, w = rng.standard_normal((40, d)), rng.standard_normal((500, d)), rng.standard_normal(500)
    want = np.argsort(cdist(q, s, "sqeuclidean") - w, axis=1)[:, :7]
    for tree in (None, site_tree(s)):  # the scan; the k-d tree up to 3 features (None above)
        got = knn(q, s, 7, w, tree=tree)
        assert all(set(a) == set(b) for a, b in zip(got, want, strict=True))
    assert not np.array_equal(np.sort(knn(q, s, 7), axis=1), np.sort(want, axis=1))  # the weights matter


@pytest.mark.parametrize("d", [1, 2, 3, 8])
def test_c_transform_is_the_exact_minimum(d):
    """The global check's c-transform (k-d tree branch and bound up to 3 features, scan above) returns
    each query's smallest ||q_i - s_j||^2 - w_j as a brute-force minimum over all pairs finds it: weights
    that hide sites (w spread 4, pair distances of order 1), duplicated sites (ties), a start guess that is
    wrong for most rows, and fewer sites than a tree leaf holds. Values within 1e-13 absolute (values of
    order 10 computed by the same direct differences; the argmin may differ on exact ties only)."""
    from analysis._ctransform import c_transform, site_tree

    rng = np.random.default_rng(d)
    for m in (1, 5, 600):
        q, s, w = rng.standard_normal((300, d)), rng.standard_normal((m, d)), 2 * rng.standard_normal(m)
        s[m // 2 :: 7], w[m // 2 :: 7] = s[0], w[0]  # duplicated sites
        want = (cdist(q, s, "sqeuclidean") - w).min(axis=1)
        for start in (None, rng.integers(0, m, len(q))):
            idx, value, method = c_transform(q, s, w, start, tree=site_tree(s))
            assert method == ("tree" if d <= 3 else "scan")
            np.testing.assert_allclose(value, want, rtol=0, atol=1e-13)
            np.testing.assert_allclose(((q - s[idx]) ** 2).sum(1) - w[idx], want, rtol=0, atol=1e-13)


@pytest.mark.parametrize("n, m, d", [(2, 1, 1), (3, 3, 2), (7, 4, 2), (13, 13, 64)])
def test_tiny_problems_match_pot(n, m, d):
    """Fewer points than the candidates per point (12) or a k-d tree leaf (8): same W2^2 as POT dense, certified."""
    rng = np.random.default_rng(n + m)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    sol = solve_certified(x, y, paired=False)
    assert sol.certificate.certified
    np.testing.assert_allclose(sol.cost, _dense_w2_sq(x, y), rtol=1e-12)
