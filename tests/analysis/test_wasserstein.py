"""Ground-truth ladder for `analysis.wasserstein`."""

import json
import warnings

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from analysis import MemoryBudgetError, SolverError, gaussian, wasserstein

EPS = np.finfo(np.float64).eps


def test_identical_samples_are_at_distance_zero():
    # Rung 0: the identity assignment costs exactly 0 (every diagonal distance is an exact 0).
    x = np.random.default_rng(0).standard_normal((200, 3))
    res = wasserstein(x, x)
    assert res.w2 == 0.0 and res.w2_squared == 0.0
    assert res.status == "optimal" and res.converged


def test_translation_gives_the_norm_of_the_shift():
    # Rung 1: for y = x + t the optimal coupling is the translation itself (the gradient of
    # the convex x.t + |x|^2/2), so W2 = |t| = 13 exactly. Tolerance: each of the n squared
    # distances is rounded once per coordinate (relative error <= (d + 2) eps / 2) and the mean
    # adds log2(n) more, so 64 eps relative is a safe bound.
    x = np.random.default_rng(1).standard_normal((300, 2))
    res = wasserstein(x, x + [5.0, 12.0])
    np.testing.assert_allclose(res.w2, 13.0, rtol=64 * EPS)
    np.testing.assert_allclose(res.w2_squared, 169.0, rtol=64 * EPS)


def test_random_assignment_problem_matches_scipy():
    # Rung 2: uniform weights and equal n make W2^2 an assignment problem; SciPy's
    # linear_sum_assignment (Jonker-Volgenant, an independent algorithm) gives the optimum.
    # Both sum the same n costs in a different order: 1e-12 relative covers it.
    rng = np.random.default_rng(2)
    x, y = rng.uniform(size=(400, 5)), rng.uniform(size=(400, 5))
    C = cdist(x, y, "sqeuclidean")
    rows, cols = linear_sum_assignment(C)
    np.testing.assert_allclose(wasserstein(x, y).w2_squared, C[rows, cols].mean(), rtol=1e-12)


def test_unequal_sample_sizes_match_pot():
    # n != m: a transport (not assignment) problem; POT's emd2 on the same costs is the oracle.
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((150, 2)), rng.standard_normal((90, 2)) + 1.0
    expected = ot.emd2(np.full(150, 1 / 150), np.full(90, 1 / 90), cdist(x, y, "sqeuclidean"))
    res = wasserstein(x, y)
    assert (res.n, res.m, res.d) == (150, 90, 2)
    np.testing.assert_allclose(res.w2_squared, expected, rtol=1e-12)


def test_one_dimensional_samples_match_pot_1d_solver():
    # In 1-D the optimal coupling matches sorted samples; POT's closed-form 1-D solver agrees
    # with the network simplex up to summation order (1e-12 relative).
    rng = np.random.default_rng(4)
    x, y = rng.exponential(size=(500, 1)), rng.standard_normal((500, 1))
    expected = ot.wasserstein_1d(x[:, 0], y[:, 0], p=2)
    np.testing.assert_allclose(wasserstein(x, y).w2_squared, expected, rtol=1e-12)


def test_gaussian_samples_approach_the_closed_form():
    # Rung 3: N(m0, S0) vs N(m1, S1), n = 1000 independent points each, in 2-D. For distinct
    # laws the empirical W2 fluctuates at rate n^(-1/2) (del Barrio and Loubes 2019); over
    # 100 seeds we measured a standard deviation of 1.3% and a largest error of 3.5% at this n,
    # so 5% (about 4 sd) holds for any seed. The Bures method is exact for Gaussians up to the
    # same sampling error of the moments.
    m0, S0 = np.array([1.0, 0.0]), np.array([[2.0, 0.6], [0.6, 1.0]])
    m1, S1 = np.array([-1.0, 2.0]), np.array([[1.0, -0.3], [-0.3, 0.5]])
    rng = np.random.default_rng(5)
    x = m0 + rng.standard_normal((1000, 2)) @ np.linalg.cholesky(S0).T
    y = m1 + rng.standard_normal((1000, 2)) @ np.linalg.cholesky(S1).T
    true = gaussian.w2(m0, S0, m1, S1)
    np.testing.assert_allclose(wasserstein(x, y).w2, true, rtol=0.05)
    np.testing.assert_allclose(wasserstein(x, y, method="bures").w2, true, rtol=0.05)


def test_approximations_bracket_the_exact_value():
    # Deterministic inequalities on one sample: the sliced distance (each projection is
    # 1-Lipschitz) and the Bures distance of the moments (Gelbrich's bound) are at most the
    # exact W2; the entropic plan is a feasible coupling up to its marginal error (tol), so its
    # cost is at least W2^2 minus tol times the largest cost.
    rng = np.random.default_rng(6)
    x = rng.standard_normal((100, 3))
    y = rng.standard_normal((100, 3)) * [2.0, 1.0, 0.5] + 1.0
    exact = wasserstein(x, y).w2_squared
    assert wasserstein(x, y, method="sliced", n_projections=64).w2_squared <= exact
    assert wasserstein(x, y, method="bures").w2_squared <= exact * (1 + 1e-12)
    sink = wasserstein(x, y, method="sinkhorn")
    assert sink.status == "converged"
    assert sink.w2_squared >= exact - 1e-6 * cdist(x, y, "sqeuclidean").max()
    # and the entropic blur at the default reg (5% of the mean cost) stays moderate
    assert sink.w2_squared <= 1.2 * exact


def test_sliced_is_exact_in_one_dimension():
    # With d = 1 every projection is +-identity, so the sliced distance is the 1-D W2.
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((200, 1)), rng.uniform(size=(200, 1))
    np.testing.assert_allclose(
        wasserstein(x, y, method="sliced", n_projections=4).w2,
        wasserstein(x, y).w2,
        rtol=1e-12,
    )


@pytest.mark.slow
def test_exact_where_pot_default_cap_fails():
    # n = 3000 Gaussian points in 64-D need 209 k network-simplex pivots (measured by
    # bisection on the cap), twice POT's default cap of 1e5: with the default, POT stops early,
    # warns, and returns a cost 1.1% too high. Ours sets the cap from n and must agree with
    # SciPy's assignment solver (1e-12 relative: the same costs summed in another order).
    # (In 2-D the default fails from n = 5000 on: 112 k pivots needed, 3.5x slower to test.)
    n = 3000
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((n, 64)), rng.standard_normal((n, 64))
    C = cdist(x, y, "sqeuclidean")
    a = np.full(n, 1.0 / n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        default_cost, log = ot.emd2(a, a, C, log=True)
    assert log["result_code"] == 3  # MAX_ITER_REACHED
    rows, cols = linear_sum_assignment(C)
    truth = C[rows, cols].mean()
    assert default_cost > truth * (1 + 1e-3)
    res = wasserstein(x, y)
    assert res.status == "optimal"
    np.testing.assert_allclose(res.w2_squared, truth, rtol=1e-12)


def test_iteration_cap_is_an_error_or_a_flag():
    # 50 pivots cannot solve a 300-point problem (at least n pivots are needed): an error by
    # default, a flagged non-optimal value with check=False.
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    with pytest.raises(SolverError, match="max_iter=50"):
        wasserstein(x, y, max_iter=50)
    res = wasserstein(x, y, max_iter=50, check=False)
    assert res.status == "max_iter_reached" and not res.converged
    assert res.w2_squared != pytest.approx(wasserstein(x, y).w2_squared, rel=1e-3)


def test_sinkhorn_cap_is_an_error_or_a_flag():
    # Two iterations cannot balance the marginals of two shifted clouds to 1e-6.
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((50, 2)), rng.standard_normal((50, 2)) + 3.0
    with pytest.raises(SolverError, match="Sinkhorn did not reach"):
        wasserstein(x, y, method="sinkhorn", max_iter=2)
    res = wasserstein(x, y, method="sinkhorn", max_iter=2, check=False)
    assert res.status == "max_iter_reached" and not res.converged


def test_memory_budget_is_checked_before_solving():
    # 20000 x 20000 pairs at 41 bytes is 15.3 GiB; the check must fire before any allocation.
    x = np.zeros((20_000, 2))
    with pytest.raises(MemoryBudgetError, match=r"15\.3 GiB.*sliced.*bures.*emd2_lazy"):
        wasserstein(x, x, solver="dense")  # 'auto' would switch to the sparse solver
    with pytest.raises(MemoryError):
        wasserstein(np.zeros((100, 2)), np.zeros((100, 2)), memory_budget_gib=1e-6)
    # the closed-form methods have no such limit
    assert wasserstein(x, x, method="bures").w2 == 0.0


def test_result_is_frozen_and_serialisable():
    rng = np.random.default_rng(10)
    res = wasserstein(rng.standard_normal((20, 2)), rng.standard_normal((30, 2)))
    with pytest.raises(AttributeError):
        res.w2 = 0.0
    d = json.loads(json.dumps(res.to_dict()))
    assert set(d) == {
        "w2",
        "w2_squared",
        "method",
        "n",
        "m",
        "d",
        "status",
        "converged",
        "w2_ci",
        "bias",
        "n_subsamples",
        "subsample_size",
        "certificate",
    }
    assert d["n"] == 20 and d["m"] == 30 and isinstance(d["w2"], float)


def test_torch_inputs_on_cpu_give_the_numpy_value():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((50, 3)), rng.standard_normal((40, 3))
    expected = wasserstein(x, y).w2_squared
    got = wasserstein(torch.tensor(x, dtype=torch.float32), torch.tensor(y)).w2_squared
    np.testing.assert_allclose(got, expected, rtol=1e-6)  # x went through float32


_samples = arrays(
    np.float64,
    st.tuples(st.integers(2, 12), st.integers(1, 3)),
    elements=st.floats(-100, 100, allow_nan=False, width=64),
)


@settings(max_examples=40, deadline=None)
@given(_samples, st.data())
def test_w2_is_symmetric(x, data):
    # W2(x, y) = W2(y, x): the transposed plan is optimal for the swapped problem. Both
    # solves sum the same optimal costs; tolerance: a few ulps of the largest cost.
    y = data.draw(
        arrays(
            np.float64,
            (data.draw(st.integers(2, 12)), x.shape[1]),
            elements=st.floats(-100, 100, allow_nan=False, width=64),
        )
    )
    scale = cdist(x, y, "sqeuclidean").max() + 1.0
    np.testing.assert_allclose(wasserstein(x, y).w2_squared, wasserstein(y, x).w2_squared, atol=1e-12 * scale)


@settings(max_examples=40, deadline=None)
@given(_samples, st.data())
def test_w2_translation_behaviour(x, data):
    # Translating both samples by t changes nothing; translating a sample's copy by t gives
    # W2^2 = |t|^2 (the translation is the OT map). Tolerance: the shifted coordinates are
    # rounded (absolute error <= eps * 150 each), which moves each cost by far less than
    # 1e-9 of the largest cost.
    d = x.shape[1]
    t = np.array(data.draw(st.lists(st.floats(-50, 50), min_size=d, max_size=d)))
    y = x[::-1] * 0.5
    scale = cdist(x, y, "sqeuclidean").max() + 1.0
    np.testing.assert_allclose(wasserstein(x + t, y + t).w2_squared, wasserstein(x, y).w2_squared, atol=1e-9 * scale)
    np.testing.assert_allclose(wasserstein(x, x + t).w2_squared, float(t @ t), rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.slow
def test_plug_in_interval_and_the_direction_of_its_bias():
    # Interval: 30 independent pairs of samples (200 points each, N(0, I) against N((1, 0),
    # diag(4, 1))): the sd of the plug-in W2 across them against the mean half-width / 1.96
    # of its subsampling interval. Measured 0.90; the sd of an sd from 30 draws is about 13%,
    # so [0.65, 1.4].
    ws, half = [], []
    for s in range(30):
        x = np.random.default_rng(s).standard_normal((200, 2))
        y = np.random.default_rng(100 + s).standard_normal((200, 2)) * [2.0, 1.0] + [1.0, 0.0]
        res = wasserstein(x, y, seed=s)
        ws.append(res.w2)
        half.append((res.w2_ci[1] - res.w2_ci[0]) / (2 * 1.959964))
    assert 0.65 <= np.mean(half) / np.std(ws, ddof=1) <= 1.4
    # Bias: two samples of the same law in 10-D have W2 = 0 between the populations; the
    # plug-in estimate is positive and falls with n (the stated direction: biased high).
    from functools import partial

    from analysis import sample_size_series

    x = np.random.default_rng(0).standard_normal((400, 10))
    y = np.random.default_rng(1).standard_normal((400, 10))
    series = sample_size_series(partial(wasserstein, n_subsamples=0), x, y, statistics=("w2",), n_repeats=3)
    assert np.all(np.diff(series["w2"].mean) < 0) and series["w2"].mean[-1] > 0
    assert "biased high" in wasserstein(x, y, n_subsamples=0).bias
    assert "lower bound" in wasserstein(x, y, method="bures", n_subsamples=0).bias
    assert "lower bound" in wasserstein(x, y, method="sliced", n_subsamples=0).bias
