"""The pairwise kernels: numpy and torch paths agree, and never use the expansion.

The torch path is what runs for tensors already on a GPU; its code is device-agnostic, so
running it here on CPU tensors checks it without a GPU.
"""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from analysis import _pairwise


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    return rng.standard_normal((37, 5)), rng.standard_normal((23, 5))


def test_torch_and_numpy_cost_matrices_agree(xy, monkeypatch):
    # Force several chunks on the torch path (rows per chunk = 2**6 // (23*5) -> 1).
    x, y = xy
    monkeypatch.setattr(_pairwise, "_CHUNK_ELEMENTS", 2**6)
    ref = _pairwise.sq_dist_matrix(x, y)
    np.testing.assert_allclose(ref, cdist(x, y) ** 2, rtol=1e-13)
    got = _pairwise.sq_dist_matrix(torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(got, ref, rtol=1e-14)


def test_nearest_neighbours_and_pairs_agree(xy, monkeypatch):
    x, _ = xy
    D = cdist(x, x)
    np.fill_diagonal(D, np.inf)
    q = np.array([0, 5, 36])
    np.testing.assert_allclose(_pairwise.nn_distances(x), D.min(axis=1), rtol=1e-14)
    np.testing.assert_allclose(_pairwise.nn_distances(torch.tensor(x), q), D[q].min(axis=1), rtol=1e-14)
    i, j = np.array([0, 3, 7]), np.array([1, 3, 30])
    monkeypatch.setattr(_pairwise, "_CHUNK_ELEMENTS", 5)  # one pair per chunk
    expected = np.linalg.norm(x[i] - x[j], axis=1)
    np.testing.assert_allclose(_pairwise.pair_distances(x, i, j), expected, rtol=1e-15)
    np.testing.assert_allclose(_pairwise.pair_distances(torch.tensor(x), i, j), expected, rtol=1e-15)


def test_duplicates_have_zero_nearest_neighbour_distance():
    x = np.array([[1.0, 2.0], [1.0, 2.0], [5.0, 5.0]])
    np.testing.assert_array_equal(_pairwise.nn_distances(x), [0.0, 0.0, 5.0])


def test_near_identical_points_keep_their_distance():
    # |x| = 1e8, displacement ~1e-4: the float64 expansion |x|^2 + |y|^2 - 2<x, y> cancels
    # terms of 1e16 whose rounding (eps * 1e16 ~ 2) swamps the true 1e-8 (here it returns 0,
    # a 100% error); the difference of two floats is exact (Sterbenz), so the direct path
    # is exact to the final squaring.
    x = np.array([[1e8, 0.0]])
    y = x + [1e-4, 0.0]
    true = (y[0, 0] - x[0, 0]) ** 2
    np.testing.assert_allclose(_pairwise.sq_dist_matrix(x, y)[0, 0], true, rtol=1e-15)
    np.testing.assert_allclose(_pairwise.sq_dist_matrix(torch.tensor(x), torch.tensor(y))[0, 0], true, rtol=1e-15)
    expansion = (x**2).sum() + (y**2).sum() - 2 * (x * y).sum()
    assert abs(expansion - true) >= 0.99 * true


def test_threaded_host_kernel_is_bitwise_cdist(monkeypatch):
    # Row blocks on several threads compute the very same cdist values (each row's
    # distances do not depend on the blocking).
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((300, 7)), rng.standard_normal((50, 7))
    monkeypatch.setattr(_pairwise, "_N_THREADS", 3)
    np.testing.assert_array_equal(_pairwise.sq_dist_matrix(x, y), cdist(x, y, "sqeuclidean"))
    monkeypatch.setattr(_pairwise, "_N_THREADS", 1)
    np.testing.assert_array_equal(_pairwise.sq_dist_matrix(x, y), cdist(x, y, "sqeuclidean"))


def test_selection_sq_dists_expansion_stays_within_its_error_bound():
    # From 16 features on: centred BLAS expansion, absolute error at most about
    # (d + 2) eps (|a_i|^2 + |b_j|^2) (dot-product rounding); we check a 4x margin. Below 16
    # features it is the direct kernel itself. The torch path gives the same values up to the
    # BLAS summation order (same bound).
    rng = np.random.default_rng(2)
    for d in (3, 16, 64):
        x, y = rng.standard_normal((80, d)) + 5.0, rng.standard_normal((60, d)) + 5.0
        exact = cdist(x, y, "sqeuclidean")
        got = _pairwise.selection_sq_dists(x, y)
        if d < _pairwise.EXPANSION_MIN_FEATURES:
            np.testing.assert_array_equal(got, exact)
            continue
        c = 0.5 * (x.mean(0) + y.mean(0))
        S = ((x - c) ** 2).sum(1)[:, None] + ((y - c) ** 2).sum(1)[None, :]
        bound = 4 * (d + 2) * np.finfo(float).eps * S
        assert np.all(np.abs(got - exact) <= bound)
        got_t = _pairwise.selection_sq_dists(torch.tensor(x), torch.tensor(y))
        assert np.all(np.abs(got_t - exact) <= bound)


def test_median_spacing_uses_a_fixed_subset_of_large_samples():
    # n <= 256: the exact median over all points; larger: the median over a fixed seeded
    # subset of 256 query points (deterministic), each against all n points.
    rng = np.random.default_rng(3)
    small = rng.standard_normal((200, 2))
    D = cdist(small, small)
    np.fill_diagonal(D, np.inf)
    assert _pairwise.median_spacing(small) == np.median(D.min(axis=1))
    big = rng.standard_normal((2000, 2))
    D = cdist(big, big)
    np.fill_diagonal(D, np.inf)
    q = np.sort(np.random.default_rng(0).choice(2000, 256, replace=False))
    assert _pairwise.median_spacing(big) == np.median(D[q].min(axis=1))
    # In 2-D the NN distances vary most (coefficient of variation ~0.5): the subset median's
    # standard error is ~4% of the full median; 15% is over 3.5 standard errors.
    assert _pairwise.median_spacing(big) == pytest.approx(np.median(D.min(axis=1)), rel=0.15)


def test_nearest_neighbours_in_high_dimension_are_measured_directly():
    # 32-D (the BLAS selection path), far from the origin, with a near-duplicate pair 1e-6
    # apart: the expansion alone would return noise of ~sqrt(d eps) |x| ~ 1e-4 for it; the
    # direct measurement of the chosen neighbour gives 1e-6 exactly (to rounding).
    rng = np.random.default_rng(4)
    x = 1000.0 + rng.standard_normal((50, 32))
    x[1] = x[0]
    x[1, 0] += 1e-6
    got = _pairwise.nn_distances(x)
    D = cdist(x, x)
    np.fill_diagonal(D, np.inf)
    np.testing.assert_allclose(got, D.min(axis=1), rtol=1e-9)
    np.testing.assert_allclose(got[:2], abs(x[1, 0] - x[0, 0]), rtol=1e-12)


def test_all_pair_distances_from_the_gram_product_are_certified():
    # One Gram product in 64-D, against SciPy's direct pdist: every distance within
    # PAIR_RTOL = 1e-8 relative (the certified bound; measured 1e-15 on spread points); exact
    # duplicates and near-duplicates (1e-9 apart, where the expansion cancels) are measured
    # again by direct differences, so they come out exact. The torch path gives the same.
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(12)
    x = rng.standard_normal((150, 64)) + 100.0  # far from the origin: centring matters
    x[1] = x[0]
    x[3] = x[2] + 1e-9
    got = _pairwise.all_pair_distances(x)
    ref = pdist(x)
    np.testing.assert_allclose(got, ref, rtol=_pairwise.PAIR_RTOL)
    assert got[0] == 0.0  # pair (0, 1)
    np.testing.assert_allclose(got[ref < 1e-6], ref[ref < 1e-6], rtol=1e-6)
    np.testing.assert_allclose(_pairwise.all_pair_distances(torch.tensor(x)), got, rtol=1e-12)
