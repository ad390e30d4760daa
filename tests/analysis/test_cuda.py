"""Tensors already on a GPU are measured there and give the CPU results (skipped without one)."""

import numpy as np
import pytest
import torch

from analysis import collect_blocks, holder_fit, jacobian_asymmetry, map_vs_ot, wasserstein

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 3))
    return x, x @ rng.standard_normal((3, 3)) + 0.5


def test_wasserstein_and_map_vs_ot_on_gpu(data):
    # Same float64 inputs, same direct-difference arithmetic on another device: the cost
    # matrices may differ in the last bit (summation order), hence 1e-12.
    x, tx = data
    xc, tc = torch.tensor(x, device="cuda"), torch.tensor(tx, device="cuda")
    for method in ("exact", "sliced", "bures"):
        np.testing.assert_allclose(
            wasserstein(xc, tc, method=method).w2, wasserstein(x, tx, method=method).w2, rtol=1e-12
        )
    gpu, cpu = map_vs_ot(xc, tc), map_vs_ot(x, tx)
    np.testing.assert_allclose(gpu.w2_squared, cpu.w2_squared, rtol=1e-12)
    assert gpu.identity_optimal == cpu.identity_optimal
    np.testing.assert_allclose(gpu.resolution, cpu.resolution, rtol=1e-12)


def test_holder_fit_on_gpu(data):
    x, tx = data
    gpu = holder_fit(torch.tensor(x, device="cuda"), torch.tensor(tx, device="cuda"), n_bootstrap=5)
    cpu = holder_fit(x, tx, n_bootstrap=5)
    np.testing.assert_allclose(gpu.eta, cpu.eta, rtol=1e-9)
    np.testing.assert_allclose(gpu.C, cpu.C, rtol=1e-9)


def test_callables_on_gpu():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh()).cuda()
    x = np.random.default_rng(1).standard_normal((64, 4))
    samples = collect_blocks([net], x)
    assert samples[0].x_out.shape == (64, 4)
    res = jacobian_asymmetry(net, x, n_probes=4, n_iter=4)
    assert res.d == 4 and np.isfinite(res.min_eigenvalue)
    fit = holder_fit(x, net, n_bootstrap=0, n_pairs=700)
    assert fit.mode == "probe" and 0.5 < fit.eta < 1.5
