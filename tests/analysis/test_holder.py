"""Ground-truth ladder for `analysis.holder_fit`."""

import json

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from analysis import holder_fit


def _power(x, alpha):
    return np.sign(x) * np.abs(x) ** alpha


def _power_constant(alpha, d):
    # sup ||T x - T y|| / ||x - y||^alpha for T = sign(x)|x|^alpha coordinatewise on R^d:
    # 2^(1-alpha) per coordinate (pairs y = -x) times d^((1-alpha)/2) from the power mean
    # inequality (equality when all |x_k - y_k| are equal): antipodal diagonal pairs.
    return 2 ** (1 - alpha) * d ** ((1 - alpha) / 2)


def test_linear_map_has_exponent_one_and_its_slope_as_constant():
    # Rung 0: T(x) = 3x on a line: every pair has ||Tx - Ty|| = 3 ||x - y||, so the fitted
    # exponent is 1 (to the 1e-6 tolerance of the slope search) and C = 3 to round-off.
    x = np.linspace(-1.0, 1.0, 80)[:, None]
    fit = holder_fit(x, 3 * x, n_bootstrap=0)
    assert fit.eta == pytest.approx(1.0, abs=1e-5)
    assert fit.C == pytest.approx(3.0, rel=1e-4)
    assert fit.fraction_satisfied == 1.0 and fit.mode == "sample"


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.8])
def test_power_map_in_one_dimension_recovers_alpha(alpha):
    # Rung 1: sign(x)|x|^alpha on U[-1, 1], 1000 points, 20000 random pairs, default 0.99
    # quantile. In 1-D the upper envelope 2^(1-alpha) r^alpha is reached by pairs straddling 0
    # at every scale, and the 0.99 quantile tracks it: over 5 seeds the error was at most
    # 0.0011, so 0.005. C at eta = alpha is a maximum below its supremum (deterministic
    # upper bound, 1e-12 for round-off) and measured within 1e-4 of it.
    x = np.random.default_rng(0).uniform(-1, 1, (1000, 1))
    fit = holder_fit(x, _power(x, alpha), n_bootstrap=0)
    assert fit.eta == pytest.approx(alpha, abs=0.005)
    at_alpha = holder_fit(x, _power(x, alpha), eta=alpha, n_bootstrap=0)
    C = _power_constant(alpha, 1)
    assert C * (1 - 1e-3) <= at_alpha.C <= C * (1 + 1e-12)
    assert not at_alpha.eta_fitted and at_alpha.eta_ci is None


@pytest.mark.parametrize("alpha", [0.3, 0.8])
def test_power_map_on_the_square_recovers_alpha(alpha):
    # Rung 2: on [-1, 1]^2 the extremal (antipodal diagonal) pairs are rarer, so the
    # quantile estimate is biased towards 1 (the Lipschitz behaviour of typical pairs): with
    # 100000 pairs at quantile 0.999 the bias measured over 5 seeds was +0.005 to +0.009;
    # we allow [alpha - 0.005, alpha + 0.02].
    x = np.random.default_rng(1).uniform(-1, 1, (1000, 2))
    fit = holder_fit(x, _power(x, alpha), quantile=0.999, n_pairs=100_000, n_bootstrap=0)
    assert alpha - 0.005 <= fit.eta <= alpha + 0.02
    at_alpha = holder_fit(x, _power(x, alpha), eta=alpha, n_pairs=100_000, n_bootstrap=0)
    C = _power_constant(alpha, 2)
    assert C * (1 - 2e-3) <= at_alpha.C <= C * (1 + 1e-12)


@pytest.mark.parametrize("d", [2, 3])
def test_constant_is_attained_at_antipodal_diagonal_pairs(d):
    # With the extremal pairs in the sample (points t(1,...,1) and their opposites, plus
    # random points), and all pairs measured (n(n-1)/2 <= n_pairs), C(alpha) equals the
    # closed form 2^(1-alpha) d^((1-alpha)/2) to round-off.
    alpha = 0.5
    rng = np.random.default_rng(2)
    diag = np.linspace(0.1, 1.0, 10)[:, None] * np.ones((1, d))
    x = np.vstack([diag, -diag, rng.uniform(-1, 1, (100, d))])
    fit = holder_fit(x, _power(x, alpha), eta=alpha, n_bootstrap=0)
    assert fit.n_pairs_total == 120 * 119 // 2
    np.testing.assert_allclose(fit.C, _power_constant(alpha, d), rtol=1e-12)


def test_eps_relaxes_the_bound_for_a_perturbed_lipschitz_map():
    # tx_i = 2 x_i + delta_i with |delta_i| <= e: ||t_i - t_j|| <= 2e + 2 ||x_i - x_j|| for
    # every pair, so the bound with eta = 1, eps = e, C = 2 holds for all pairs (fraction 1),
    # and the smallest constant at that eps is at most 2.
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (300, 2))
    delta = rng.standard_normal((300, 2))
    e = 0.05
    delta *= e / np.linalg.norm(delta, axis=1, keepdims=True).max()
    tx = 2 * x + delta
    given = holder_fit(x, tx, eta=1.0, eps=e, C=2.0, n_bootstrap=0)
    assert given.fraction_satisfied == 1.0 and not given.C_fitted
    smallest = holder_fit(x, tx, eta=1.0, eps=e, n_bootstrap=0)
    assert smallest.C <= 2.0
    assert holder_fit(x, tx, eta=1.0, eps=0.0, n_bootstrap=0).C > smallest.C


def test_fraction_satisfied_counts_pairs_by_hand():
    # A given constant below the true one: the fraction is the share of (all) pairs with
    # ||Tx - Ty|| <= C ||x - y||, counted here directly on all pairs.
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (60, 2))
    tx = _power(x, 0.5)
    fit = holder_fit(x, tx, eta=1.0, C=1.5, n_bootstrap=0)
    i, j = np.triu_indices(60, 1)
    r = np.linalg.norm(x[i] - x[j], axis=1)
    s = np.linalg.norm(tx[i] - tx[j], axis=1)
    assert fit.fraction_satisfied == pytest.approx(np.mean(s <= 1.5 * r), abs=1e-15)
    assert 0.0 < fit.fraction_satisfied < 1.0


def test_default_scale_range_starts_at_the_sampling_resolution():
    # scale_min is the median nearest-neighbour distance (all points queried when n <= 256),
    # scale_max the largest measured distance; pairs outside are left out of the fit.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((120, 3))
    D = cdist(x, x)
    np.fill_diagonal(D, np.inf)
    fit = holder_fit(x, 2 * x, n_bootstrap=0)
    assert fit.scale_min == pytest.approx(np.median(D.min(axis=1)), rel=1e-12)
    assert fit.scale_max == pytest.approx(D[np.isfinite(D)].max(), rel=1e-12)
    i, j = np.triu_indices(120, 1)
    assert fit.n_pairs == np.sum(D[i, j] >= fit.scale_min)
    narrow = holder_fit(x, 2 * x, scales=(1.0, 2.0), n_bootstrap=0)
    assert (narrow.scale_min, narrow.scale_max) == (1.0, 2.0)
    assert narrow.n_pairs == np.sum((D[i, j] >= 1.0) & (D[i, j] <= 2.0))


def test_bootstrap_intervals():
    # Point bootstrap of the whole fit: ordered, non-degenerate intervals near the truth
    # (1-D power map, where the estimator is accurate to 0.002), and None when skipped or
    # when the quantity was given.
    x = np.random.default_rng(6).uniform(-1, 1, (400, 1))
    fit = holder_fit(x, _power(x, 0.5), n_bootstrap=30, n_pairs=5000)
    lo, hi = fit.eta_ci
    assert 0.45 < lo < hi < 0.55 and fit.n_bootstrap == 30 and fit.confidence == 0.95
    assert fit.C_ci[0] < fit.C_ci[1]
    assert holder_fit(x, _power(x, 0.5), n_bootstrap=0).eta_ci is None
    assert holder_fit(x, _power(x, 0.5), eta=0.5, C=2.0, n_bootstrap=5).C_ci is None


def test_probe_mode_on_a_linear_torch_map():
    # T(h) = h A: every probe pair has ||T(x + d u) - T(x)|| = d ||A' u|| (up to float64
    # round-off), so the log-log slope is 1 up to the sampling noise of the 0.99 quantile of
    # log||A'u|| across scales (< 0.01 over 3 decades), and C (a max of ||A'u||) is at most
    # the spectral norm and, with 3500 random directions in 2-D, within 1% of it.
    A = torch.tensor([[2.0, 0.5], [0.0, 0.5]], dtype=torch.float64)
    x = np.random.default_rng(7).standard_normal((500, 2))
    fit = holder_fit(x, lambda h: h @ A, n_bootstrap=10, n_pairs=3500)
    assert fit.mode == "probe" and fit.n_pairs == fit.n_pairs_total == 3500
    assert fit.eta == pytest.approx(1.0, abs=0.01)
    sigma_max = np.linalg.norm(A.numpy(), 2)
    fixed = holder_fit(x, lambda h: h @ A, eta=1.0, n_bootstrap=0, n_pairs=3500)
    assert sigma_max * 0.99 <= fixed.C <= sigma_max * (1 + 1e-12)
    assert fit.scale_max / fit.scale_min == pytest.approx(1000.0)


def test_probe_mode_respects_scales_and_module_mode():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3), torch.nn.Tanh())
    net.train()
    x = np.random.default_rng(8).standard_normal((64, 3))
    fit = holder_fit(x, net, scales=[0.01, 0.1, 1.0], n_bootstrap=0, n_pairs=60)
    assert (fit.scale_min, fit.scale_max) == pytest.approx((0.01, 1.0))
    assert net.training and all(m.training for m in net.modules())


def test_evaluate_and_serialise():
    x = np.linspace(0.0, 1.0, 20)[:, None]
    fit = holder_fit(x, 2 * x, eta=1.0, eps=0.1, n_bootstrap=0)
    assert fit.evaluate(0.5) == pytest.approx(0.2 + fit.C * 0.5)
    np.testing.assert_allclose(fit.evaluate([0.0, 1.0]), [0.2, 0.2 + fit.C])
    d = json.loads(json.dumps(fit.to_dict()))
    assert d["eta_ci"] is None and d["mode"] == "sample" and d["scale_min"] > 0


def test_too_few_pairs_is_explained():
    x = np.random.default_rng(9).standard_normal((30, 2))
    with pytest.raises(ValueError, match="pass 'eta'"):
        holder_fit(x, np.zeros_like(x), n_bootstrap=0)  # a constant map
    assert holder_fit(x, np.zeros_like(x), eta=0.5, n_bootstrap=0).C == 0.0
