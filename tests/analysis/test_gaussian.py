"""Closed forms of `analysis.gaussian`, checked against POT and against each other."""

import numpy as np
import ot
import pytest

from analysis import gaussian

EPS = np.finfo(np.float64).eps


def _spd(rng, d, floor=0.1):
    B = rng.standard_normal((d, d))
    return B @ B.T + floor * np.eye(d)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_w2_and_map_agree_with_pot(d):
    # POT's ot.gaussian computes the same formulas with a different matrix square root
    # (its own sqrtm): agreement to 1e-9 relative covers the conditioning of these SPD
    # matrices (eigenvalues in [0.1, ~20]).
    rng = np.random.default_rng(d)
    m0, m1 = rng.standard_normal(d), rng.standard_normal(d)
    S0, S1 = _spd(rng, d), _spd(rng, d)
    np.testing.assert_allclose(
        gaussian.w2(m0, S0, m1, S1),
        ot.gaussian.bures_wasserstein_distance(m0, m1, S0, S1),
        rtol=1e-9,
    )
    A, b = gaussian.ot_map(m0, S0, m1, S1)
    A_pot, b_pot = ot.gaussian.bures_wasserstein_mapping(m0[None], m1[None], S0, S1)
    np.testing.assert_allclose(A, A_pot, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b, b_pot.ravel(), rtol=1e-9, atol=1e-12)


def test_map_pushes_forward_to_the_target_and_costs_w2():
    # The OT map is symmetric PSD, pushes N(m0, S0) onto N(m1, S1) exactly (A S0 A = S1), and
    # its own cost E||Ax + b - x||^2 equals W2^2 (it is optimal): Monge gap 0.
    rng = np.random.default_rng(0)
    m0, m1, S0, S1 = rng.standard_normal(3), rng.standard_normal(3), _spd(rng, 3), _spd(rng, 3)
    A, b = gaussian.ot_map(m0, S0, m1, S1)
    np.testing.assert_allclose(A, A.T, atol=0)
    assert np.linalg.eigvalsh(A).min() > 0
    mean, cov = gaussian.pushforward(A, b, m0, S0)
    np.testing.assert_allclose(mean, m1, atol=1e-12)
    np.testing.assert_allclose(cov, S1, atol=1e-10)
    assert gaussian.monge_gap(A, b, m0, S0) == pytest.approx(0.0, abs=1e-10)


def test_commuting_covariances_have_the_diagonal_formula():
    # For diagonal covariances W2^2 = |m0 - m1|^2 + sum (sqrt a_k - sqrt b_k)^2 exactly.
    a, b = np.array([4.0, 1.0, 9.0]), np.array([1.0, 4.0, 0.25])
    m0, m1 = np.zeros(3), np.array([1.0, 2.0, 2.0])
    expected = 9.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert gaussian.w2_squared(m0, np.diag(a), m1, np.diag(b)) == pytest.approx(expected, rel=1e-14)


def test_singular_target_is_allowed_in_w2():
    # A point mass (covariance 0) at m1: W2^2 = |m0 - m1|^2 + tr(S0).
    S0 = np.array([[2.0, 0.5], [0.5, 1.0]])
    value = gaussian.w2_squared(np.zeros(2), S0, np.ones(2), np.zeros((2, 2)))
    assert value == pytest.approx(2.0 + 3.0, rel=1e-14)


def test_monge_gap_of_a_rotation():
    # Rotation by pi/2 of N(0, diag(4, 1)): own cost tr((R - I) S (R - I)') = 10, target
    # N(0, diag(1, 4)), W2^2 = (2 - 1)^2 + (1 - 2)^2 = 2, gap 8. A symmetric PSD map has gap 0.
    R = np.array([[0.0, -1.0], [1.0, 0.0]])
    S = np.diag([4.0, 1.0])
    assert gaussian.monge_gap(R, np.zeros(2), np.zeros(2), S) == pytest.approx(8.0, rel=1e-14)
    P = np.array([[2.0, 0.3], [0.3, 0.5]])
    assert gaussian.monge_gap(P, np.ones(2), np.ones(2), S) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: gaussian.w2(np.zeros((2, 1)), np.eye(2), np.zeros(2), np.eye(2)), "1-D array"),
        (lambda: gaussian.w2(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)), r"shape \(2, 2\)"),
        (lambda: gaussian.w2(np.zeros(2), [[1, 1], [0, 1]], np.zeros(2), np.eye(2)), "symmetric"),
        (lambda: gaussian.w2(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2)), "positive semi-definite"),
        (lambda: gaussian.w2(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)), "mean1"),
        (lambda: gaussian.ot_map(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)), "'mean1' parameter of `ot_map`"),
        (lambda: gaussian.w2(np.full(2, np.nan), np.eye(2), np.zeros(2), np.eye(2)), "finite"),
        (lambda: gaussian.ot_map(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.eye(2)), "positive definite"),
        (lambda: gaussian.pushforward(np.eye(3), np.zeros(3), np.zeros(2), np.eye(2)), "'A' and 'b'"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
