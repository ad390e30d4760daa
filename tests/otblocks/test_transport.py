"""The transport penalty against hand computations, and the tau schedules."""

from __future__ import annotations

import math

import pytest
import torch

from otblocks import load_config, tau_schedule
from otblocks.models import BlockModule, MLPBlock
from otblocks.transport import Penalty, penalty_weight, transport_cost


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
        assert torch.autograd.gradcheck(lambda r, n=normalization: transport_cost(r, r, [r], "kinetic", n), (g,))
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


def test_multiplier_matches_hand_computation():
    # lambda_0 = tau = 1; h = 0.5, s = 2: lambda += 0.5 * (task loss of every 2nd step)
    config = load_config(
        None,
        [
            "transport.tau=1",
            "transport.schedule=multiplier",
            "transport.multiplier_step=0.5",
            "transport.multiplier_period=2",
            "model.depth=2",
        ],
    )
    penalty = Penalty.from_config(config.transport, 2)
    seen = []
    for loss in (1.0, 2.0, 3.0, 4.0, 5.0):
        penalty.observe(0, torch.tensor(loss))
        seen.append(penalty.tau(0, 99))
    assert seen == [1.0, 2.0, 2.0, 4.0, 4.0]  # 1 + 0.5*2 = 2 after step 2; 2 + 0.5*4 = 4 after step 4
    assert penalty.tau(1, 0) == 1.0  # module 1 untouched
    x = torch.ones(4, 3)  # cost c = ||1||^2 = 3 per sample (sample normalization)
    cost, term = penalty.evaluate(x, 2 * x, [x], penalty.tau(0, 0))
    assert (cost.item(), term.item()) == (3.0, 3.0 / (2 * 4.0))
    state = penalty.state_dict()
    fresh = Penalty.from_config(config.transport, 2)
    fresh.load_state_dict(state)
    fresh.observe(0, torch.tensor(6.0))  # step 6: 4 + 0.5*6 = 7, so the step count was restored too
    assert fresh.tau(0, 0) == 7.0


def test_multiplier_in_the_trainer_adds_h_times_every_sth_task_loss(make_config):
    from otblocks.data import build_data
    from otblocks.models import build_model
    from otblocks.training import Trainer, WorkItem

    config = make_config(
        "train.regime=sequential",
        "transport.tau=0.5",
        "transport.schedule=multiplier",
        "transport.multiplier_step=0.25",
        "transport.multiplier_period=3",
    )
    data = build_data(config.data)
    net = build_model(config.model, data.input_shape, data.n_classes)
    trainer = Trainer(config, net, data, torch.device("cpu"))
    losses, weights = [], []
    criterion = trainer.criterion

    def spy(logits, y):  # the task loss of every step, and the weight 1/(2 lambda) it is trained with
        loss = criterion(logits, y)
        losses.append(loss.item())
        weights.append(1 / (2 * trainer.tau(1, 0)))
        return loss

    trainer.criterion = spy
    records = trainer.run_item(WorkItem(0, 1, 0))
    steps = len(losses)  # 200 points in batches of 25: 8 steps
    assert steps == 8
    expected = 0.5 + 0.25 * (losses[2] + losses[5])
    assert trainer.tau(1, 0) == pytest.approx(expected, rel=1e-12)
    assert weights[:3] == [1.0] * 3 and weights[3] == pytest.approx(1 / (2 * (0.5 + 0.25 * losses[2])))
    assert records[0]["tau"] == trainer.tau(1, 0) and trainer.tau(0, 0) == 0.5


def test_tau_of_the_python_api_is_a_number_or_a_callable():
    transport = load_config(None, ["transport.tau=2"]).transport
    assert Penalty.from_config(transport, 3, 0.5).tau(2, 7) == 0.5
    assert Penalty.from_config(transport, 3, lambda k, e: k + 1.0).tau(2, 0) == 3.0
    with pytest.raises(TypeError, match="The 'tau' parameter of `train` must be a positive number, inf or a callable"):
        Penalty.from_config(transport, 3, "0.5")
    with pytest.raises(ValueError, match="positive number or inf"):
        Penalty.from_config(transport, 3, -1.0)


def test_element_tau_is_sample_tau_over_d():
    # the units table of the README: tau_sample = D * tau_element gives the same penalty term
    x, g = torch.randn(5, 4, 3, 3), torch.randn(5, 4, 3, 3)
    d = 4 * 3 * 3
    element = Penalty(lambda k, e: 0.5, 1, normalization="element").evaluate(x, x + g, [g], 0.5)[1]
    sample = Penalty(lambda k, e: 0.5 * d, 1, normalization="sample").evaluate(x, x + g, [g], 0.5 * d)[1]
    torch.testing.assert_close(element, sample, rtol=1e-6, atol=0)  # float32: a few ulps apart


MULTIPLIER = ["transport.tau=1", "transport.schedule=multiplier"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["transport.schedule=multiplier"], "'transport.tau' config key must be a positive number (the multiplier's"),
        (
            [*MULTIPLIER, "transport.multiplier_step=0"],
            "'transport.multiplier_step' config key must be a positive finite",
        ),
        ([*MULTIPLIER, "transport.multiplier_period=0"], "'transport.multiplier_period' config key must be a positive"),
    ],
)
def test_multiplier_config_errors(overrides, message):
    from otblocks import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, overrides)
