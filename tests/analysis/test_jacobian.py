"""Ground-truth ladder for `analysis.jacobian_asymmetry`."""

import json

import numpy as np
import pytest
import torch

from analysis import jacobian_asymmetry


def _rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


@pytest.mark.parametrize("theta", [0.1, 0.7, 2.0])
def test_rotation_is_exact(theta):
    # J = R: with Rademacher probes ||(R - R')v||^2 = 4 sin^2(theta) |v|^2 = 8 sin^2(theta)
    # and ||Rv||^2 = |v|^2 = 2 for EVERY probe, so the estimate is exactly 2|sin(theta)|;
    # S = cos(theta) I, so two Lanczos steps (= d) give lambda_min = cos(theta). Round-off only.
    R = _rotation(theta)
    x = np.random.default_rng(0).standard_normal((50, 2))
    res = jacobian_asymmetry(lambda h: h @ R.T, x, n_probes=3)
    assert res.asymmetry == pytest.approx(2 * abs(np.sin(theta)), rel=1e-12)
    assert res.min_eigenvalue == pytest.approx(np.cos(theta), abs=1e-12)
    assert res.fraction_negative == (1.0 if np.cos(theta) < 0 else 0.0)
    assert (res.n, res.d, res.n_iter) == (50, 2, 2)


def test_symmetric_positive_definite_linear_map():
    # J = A symmetric: asymmetry exactly 0 (Jv and J'v are the same products); Lanczos with
    # n_iter >= d = 4 spans the space, so the Ritz value is lambda_min(A) to round-off.
    rng = np.random.default_rng(1)
    B = rng.standard_normal((4, 4))
    A = torch.tensor(B @ B.T + 0.05 * np.eye(4))
    res = jacobian_asymmetry(lambda h: h @ A, rng.standard_normal((30, 4)))
    assert res.asymmetry == pytest.approx(0.0, abs=1e-14)
    assert res.min_eigenvalue == pytest.approx(torch.linalg.eigvalsh(A)[0].item(), rel=1e-10)
    assert res.fraction_negative == 0.0


def test_gradient_of_convex_potential():
    # T = grad(|x|^2/2 + logsumexp(Wx)): J = I + W'(diag p - pp')W, symmetric with
    # eigenvalues >= 1. Asymmetry 0 to round-off, min eigenvalue >= 1 (minus round-off).
    W = torch.tensor(np.random.default_rng(2).standard_normal((6, 5)))

    def T(h):
        return h + torch.softmax(h @ W.T, dim=1) @ W

    res = jacobian_asymmetry(T, np.random.default_rng(3).standard_normal((40, 5)), n_iter=5)
    assert res.asymmetry < 1e-14
    assert res.min_eigenvalue >= 1.0 - 1e-12 and res.fraction_negative == 0.0


def test_gradient_of_concave_potential_is_symmetric_but_not_psd():
    # T(x) = -x: symmetric (asymmetry 0) but S = -I: not a convex gradient; every point is
    # certified non-PSD.
    res = jacobian_asymmetry(lambda h: -h, np.random.default_rng(4).standard_normal((20, 3)))
    assert res.asymmetry == 0.0
    assert res.min_eigenvalue == pytest.approx(-1.0, abs=1e-12) and res.fraction_negative == 1.0


def test_random_network_against_exact_jacobians():
    # A small tanh residual block in float64: exact Jacobians by autograd give the exact
    # aggregate asymmetry and per-point lambda_min. With n = 64 points x 64 probes the
    # Hutchinson estimate has a relative standard error of about 1/sqrt(n * probes) times a
    # factor of order 1, i.e. ~2%: we allow 8%. Lanczos with n_iter = d = 6 is exact.
    torch.manual_seed(0)
    block = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 6))
    block = block.double()

    def T(h):
        return h + block(h)

    x = torch.randn(64, 6, dtype=torch.float64)
    J = torch.stack([torch.autograd.functional.jacobian(T, xi[None])[0, :, 0] for xi in x])
    exact = torch.sqrt(((J - J.transpose(1, 2)) ** 2).sum() / (J**2).sum()).item()
    lam = torch.linalg.eigvalsh(0.5 * (J + J.transpose(1, 2)))[:, 0]
    res = jacobian_asymmetry(T, x, n_probes=64, n_iter=6)
    assert res.asymmetry == pytest.approx(exact, rel=0.08)
    assert res.min_eigenvalue == pytest.approx(lam.min().item(), abs=1e-10)


def test_lanczos_ritz_value_is_an_upper_bound_in_high_dimension():
    # d = 50, 8 Lanczos steps: the Ritz value cannot go below lambda_min (interlacing) and
    # lies below the mean eigenvalue (the Rayleigh quotient of the random start, on average).
    rng = np.random.default_rng(5)
    eig = np.linspace(-1.0, 3.0, 50)
    Q, _ = np.linalg.qr(rng.standard_normal((50, 50)))
    A = torch.tensor(Q @ np.diag(eig) @ Q.T)
    res = jacobian_asymmetry(lambda h: h @ A, rng.standard_normal((10, 50)), n_probes=1, n_iter=8)
    assert -1.0 - 1e-12 <= res.min_eigenvalue < eig.mean()


def test_float32_module_restores_mode_and_serialises():
    # A float32 module in train mode with BatchNorm: inputs follow its dtype, the module runs
    # in eval mode (per-sample Jacobians) and comes back in train mode.
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    net.train()
    res = jacobian_asymmetry(net, np.random.default_rng(6).standard_normal((16, 3)), n_iter=3)
    assert net.training and net[1].training
    W = net[0].weight.detach().double() * (1 / torch.sqrt(net[1].running_var.double() + 1e-5))[:, None]
    exact = torch.linalg.matrix_norm(W - W.T) / torch.linalg.matrix_norm(W)
    # Hutchinson on a constant Jacobian: 16 points x 16 probes, relative error ~ 1/16: 30%.
    assert res.asymmetry == pytest.approx(exact.item(), rel=0.3)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["n_iter"] == 3 and d["d"] == 3


def test_images_are_flattened_and_eigenvalue_can_be_skipped():
    x = torch.randn(4, 2, 3, 3)
    res = jacobian_asymmetry(lambda h: 2 * h, x, n_probes=2, n_iter=0)
    assert res.d == 18 and res.asymmetry == 0.0 and np.isnan(res.min_eigenvalue)
    assert res.to_dict()["min_eigenvalue"] == "nan"


def test_non_square_map_is_rejected():
    with pytest.raises(ValueError, match="same shape"):
        jacobian_asymmetry(lambda h: h[:, :1], np.zeros((5, 3)))


def test_standard_error_matches_the_spread_over_probe_draws():
    # A fixed linear map A (same Jacobian at every point, so all the noise is the probes'):
    # over 40 seeds the standard deviation of the estimate and the mean reported standard
    # error agree. The SE of an SE from 40 draws is about 11%, and the delta method is
    # first order; measured ratio 0.89, we allow [0.7, 1.4]. The rotation's estimate is
    # exact for every probe (test_rotation_is_exact), hence its SE is 0.
    A = torch.tensor(np.random.default_rng(5).standard_normal((6, 6)))
    x = np.random.default_rng(6).standard_normal((20, 6))
    runs = [jacobian_asymmetry(lambda h: h @ A, x, n_probes=2, n_iter=0, seed=s) for s in range(40)]
    spread = np.std([r.asymmetry for r in runs], ddof=1)
    assert 0.7 <= np.mean([r.asymmetry_se for r in runs]) / spread <= 1.4
    R = _rotation(0.7)
    assert jacobian_asymmetry(lambda h: h @ R.T, x[:, :2], n_probes=3).asymmetry_se == 0.0
    assert "asymmetry_se" in runs[0].to_dict()


def test_float32_products_agree_with_float64():
    # The same small residual block in float32 and float64, the same probes: the Hutchinson
    # sums differ by the float32 rounding of the products (about 1e-7 relative, far below the
    # standard error), and the Lanczos Ritz value in a float32 basis by about eps_32 ||S||;
    # measured 1e-9 and 1.3e-8 relative; we allow 1e-5, which is still far below the
    # negativity floor sqrt(eps_32) ||J||_F / sqrt(d) (about 3e-4 relative).
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8))

    def block32(h):
        return h + net(h)

    x = np.random.default_rng(7).standard_normal((64, 8))
    res32 = jacobian_asymmetry(block32, torch.tensor(x, dtype=torch.float32), n_iter=8)
    net.double()
    res64 = jacobian_asymmetry(block32, torch.tensor(x), n_iter=8)
    assert res32.asymmetry == pytest.approx(res64.asymmetry, rel=1e-5)
    assert res32.min_eigenvalue == pytest.approx(res64.min_eigenvalue, rel=1e-5)
