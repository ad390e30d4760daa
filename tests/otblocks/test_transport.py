"""The transport penalty against hand computations, and the tau schedules."""

from __future__ import annotations

import math

import pytest
import torch

from otblocks import load_config, tau_schedule
from otblocks.models import BlockModule, MLPBlock
from otblocks.transport import penalty_weight, transport_cost


def _module(width=3, n_blocks=2, seed=0):
    torch.manual_seed(seed)
    return BlockModule([MLPBlock(width, 5) for _ in range(n_blocks)])


def test_zero_residual_gives_zero_cost():
    module = _module()
    for block in module.blocks:
        torch.nn.init.zeros_(block.g[2].weight)
        torch.nn.init.zeros_(block.g[2].bias)
    x = torch.randn(7, 3)
    out, residuals = module.forward_with_residuals(x)
    torch.testing.assert_close(out, x)
    for form in ("kinetic", "monge"):
        for normalization in ("sample", "element"):
            assert transport_cost(x, out, residuals, form, normalization).item() == 0.0


def test_kinetic_cost_matches_hand_computation():
    module = _module()
    x = torch.randn(7, 3, dtype=torch.float64)
    module = module.double()
    out, residuals = module.forward_with_residuals(x)
    # by hand: psi_0 = x, g_0 = g(psi_0), psi_1 = psi_0 + g_0, g_1 = g(psi_1)
    g0 = module.blocks[0].g(x)
    g1 = module.blocks[1].g(x + g0)
    per_sample = (g0**2).sum(1) + (g1**2).sum(1)
    torch.testing.assert_close(transport_cost(x, out, residuals, "kinetic", "sample"), per_sample.mean())
    # the authors' normalisation: mean over batch and features, summed over blocks = sample form / d
    torch.testing.assert_close(transport_cost(x, out, residuals, "kinetic", "element"), per_sample.mean() / 3)
    monge = ((x + g0 + g1 - x) ** 2).sum(1).mean()
    torch.testing.assert_close(transport_cost(x, out, residuals, "monge", "sample"), monge)


def test_cost_gradient_is_that_of_the_sum_of_squares():
    # d/dg (1/B) sum ||g_i||^2 = 2 g / B: checked by finite differences in float64 (gradcheck's
    # default tolerances, atol 1e-5 / rtol 1e-3 on a well-conditioned quadratic), and on a 4-D
    # channels-last conv residual against the closed form
    torch.manual_seed(0)
    g = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    for normalization in ("sample", "element"):
        assert torch.autograd.gradcheck(lambda r: transport_cost(r, r, [r], "kinetic", normalization), (g,))
    r = torch.randn(2, 3, 4, 4).to(memory_format=torch.channels_last).requires_grad_()
    transport_cost(r, r, [r], "kinetic", "sample").backward()
    torch.testing.assert_close(r.grad, 2 * r.detach() / 2)


def test_cost_of_half_precision_residuals_is_accumulated_in_float32():
    # 4097 entries of 1.0 in bfloat16: 4097 needs 13 significant bits, bfloat16 has 8, so a
    # bfloat16 result would read 4096
    r = torch.ones(1, 4097, dtype=torch.bfloat16, requires_grad=True)
    cost = transport_cost(r, r, [r], "kinetic", "sample")
    assert cost.dtype == torch.float32 and cost.item() == 4097.0
    cost.backward()
    assert r.grad.dtype == torch.bfloat16 and bool((r.grad == 2).all())


def test_monge_form_needs_equal_shapes():
    with pytest.raises(ValueError, match="input and output shapes agree"):
        transport_cost(torch.zeros(2, 3), torch.zeros(2, 4), [], "monge")


def test_penalty_weight():
    assert penalty_weight(math.inf) == 0.0
    assert penalty_weight(0.25) == 2.0


def test_schedules():
    constant = tau_schedule(load_config(None, ["transport.tau=2"]).transport, 4)
    assert [constant(k, 0) for k in range(4)] == [2.0] * 4
    varying = tau_schedule(load_config(None, ["transport.tau=2", "transport.schedule=varying"]).transport, 5)
    assert [varying(k, 3) for k in range(5)] == [1.0, 1.0, 2.0, 2.0, 2.0]
    listed = load_config(None, ["model.depth=3", "transport.schedule=list", "transport.taus=[1, 2, inf]"])
    assert [tau_schedule(listed.transport, 3)(k, 0) for k in range(3)] == [1.0, 2.0, math.inf]
