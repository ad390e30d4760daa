"""Each regime learns; sequential freezes; parallel isolates gradients; tau shrinks ||g||."""

from __future__ import annotations

import math

import pytest
import torch

from otblocks import build_model, train
from otblocks.data import build_data
from otblocks.schedules import tau_schedule
from otblocks.training import Trainer, WorkItem
from otblocks.training.stats import Accumulator


@pytest.mark.parametrize(
    "regime, extra",
    [
        ("sequential", ["train.epochs=10"]),
        ("multilap", ["train.laps=2", "train.epochs=10"]),
        ("parallel", ["train.epochs=20"]),
        ("e2e", ["train.epochs=20"]),
    ],
)
def test_each_regime_learns_two_moons(make_config, tmp_path, regime, extra):
    # two moons with noise 0.1 are separable to ~99%; a linear head on the raw plane gets ~87%,
    # so 0.97 at the best depth needs the blocks to have learnt the bend (seen: 0.995-1.0).
    config = make_config(f"train.regime={regime}", *extra)
    summary = train(config, tmp_path / regime, quiet=True)
    assert summary.regime == regime
    assert len(summary.val_accuracy_by_depth) == len(summary.test_accuracy_by_depth) == 4
    assert summary.val_accuracy_at_best_depth >= 0.97
    assert summary.val_accuracy_by_depth[summary.best_depth - 1] == max(summary.val_accuracy_by_depth)


def _trainer(config):
    data = build_data(config.data)
    torch.manual_seed(config.train.seed)
    net = build_model(config.model, data.input_shape, data.n_classes)
    return Trainer(config, net, data, torch.device("cpu"), tau_schedule(config.transport, net.n_modules))


def test_sequential_changes_only_the_active_module_and_freezes_the_others(make_config):
    trainer = _trainer(make_config("train.regime=sequential", "train.epochs=1"))
    net = trainer.net
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    modes = []
    original = net.block_modules[0].forward

    def spy(x):  # record module 0's mode whenever module 2 is being trained
        modes.append((net.block_modules[0].training, net.heads[0].training, net.block_modules[2].training))
        return original(x)

    net.block_modules[0].forward = spy
    trainer.run_item(WorkItem(0, 2, 0))
    changed = {name for name, p in net.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith(("block_modules.2.", "heads.2.")) for name in changed)
    assert modes and all(m == (False, False, True) for m in modes)


def test_parallel_sends_no_gradient_to_earlier_modules(make_config):
    trainer = _trainer(make_config("train.regime=parallel", "transport.tau=0.5"))
    x, y = next(trainer._batches(WorkItem(0, None, 0)))
    out0 = trainer.module_step(0, x, y, 0.5, Accumulator())
    assert not out0.requires_grad
    for p in trainer.net.trainable(0):
        p.grad = None
    trainer.module_step(1, out0, y, 0.5, Accumulator())
    assert all(p.grad is None for p in trainer.net.trainable(0))
    assert any(p.grad is not None for p in trainer.net.trainable(1))


def test_e2e_probes_do_not_change_the_trunk_gradient(make_config):
    trainer = _trainer(make_config("train.regime=e2e"))
    x, y = next(trainer._batches(WorkItem(0, None, 0)))
    net = trainer.net
    accs = [Accumulator() for _ in range(net.n_modules)]
    trainer.opts[0].optimizer.step = lambda: None  # keep the weights; inspect gradients only
    trainer._e2e_step(x, y, [math.inf] * net.n_modules, accs)
    grads = [p.grad.clone() for p in net.block_modules.parameters()]
    net.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    for g, p in zip(grads, net.block_modules.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_smaller_tau_moves_points_less(make_config, tmp_path):
    free = train(make_config("transport.tau=inf"), tmp_path / "inf", quiet=True)
    tight = train(make_config("transport.tau=0.05"), tmp_path / "tight", quiet=True)
    # mean sum of ||g||^2 per sample on validation, every module
    for k in range(4):
        assert tight.val_kinetic_by_depth[k] < free.val_kinetic_by_depth[k]
    assert sum(tight.val_kinetic_by_depth) < 0.2 * sum(free.val_kinetic_by_depth)


def test_callable_tau_schedule_is_used(make_config, tmp_path):
    seen = []

    def schedule(k, epoch):
        seen.append((k, epoch))
        return 0.1 * (k + 1)

    summary = train(make_config("train.epochs=1"), tmp_path / "c", quiet=True, tau=schedule)
    assert summary.taus == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert (3, 0) in seen


def test_callable_tau_must_return_positive(make_config, tmp_path):
    with pytest.raises(ValueError, match="tau schedule must return a positive number or inf; got -1 for module 0"):
        train(make_config("train.epochs=1"), tmp_path / "c", quiet=True, tau=lambda k, e: -1)
