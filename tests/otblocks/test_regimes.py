"""Each regime learns; sequential freezes; parallel isolates gradients; tau shrinks ||g||."""

from __future__ import annotations

import json

import pytest
import torch

from otblocks import build_model, train
from otblocks.data import build_data
from otblocks.training import Trainer, WorkItem, evaluate_depths
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
    return Trainer(config, net, data, torch.device("cpu"))


def test_sequential_changes_only_the_active_module_and_freezes_the_others(make_config):
    trainer = _trainer(make_config("train.regime=sequential", "train.epochs=1"))
    net = trainer.net
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    modes = []
    original = net.block_modules[0].forward

    def spy(x):  # record module 0's mode whenever module 2 is being trained (validation runs all in eval mode)
        if net.block_modules[2].training:
            modes.append((net.block_modules[0].training, net.heads[0].training))
        return original(x)

    net.block_modules[0].forward = spy
    trainer.run_item(WorkItem(0, 2, 0))
    changed = {name for name, p in net.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith(("block_modules.2.", "heads.2.")) for name in changed)
    assert modes and all(m == (False, False) for m in modes)


def test_parallel_sends_no_gradient_to_earlier_modules(make_config):
    trainer = _trainer(make_config("train.regime=parallel", "transport.tau=0.5"))
    x, y = next(trainer.train_batches(WorkItem(0, None, 0)))
    out0 = trainer.module_step(0, x, y, 0, Accumulator())
    assert not out0.requires_grad
    for p in trainer.net.trainable(0):
        p.grad = None
    trainer.module_step(1, out0, y, 0, Accumulator())
    assert all(p.grad is None for p in trainer.net.trainable(0))
    assert any(p.grad is not None for p in trainer.net.trainable(1))


def test_e2e_probes_do_not_change_the_trunk_gradient(make_config):
    trainer = _trainer(make_config("train.regime=e2e"))
    x, y = next(trainer.train_batches(WorkItem(0, None, 0)))
    net = trainer.net
    accs = [Accumulator() for _ in range(net.n_modules)]
    trainer.opts[0].optimizer.step = lambda: None  # keep the weights; inspect gradients only
    trainer.e2e_step(x, y, 0, accs)
    grads = [p.grad.clone() for p in net.block_modules.parameters()]
    net.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    for g, p in zip(grads, net.block_modules.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


def test_smaller_tau_moves_points_less(make_config, tmp_path):
    free = train(make_config("transport.tau=inf"), tmp_path / "inf", quiet=True)
    tight = train(make_config("transport.tau=0.05"), tmp_path / "tight", quiet=True)
    # mean sum of ||g||^2 per sample on validation, every module
    for k in range(4):
        assert tight.val_transport_cost_by_depth[k] < free.val_transport_cost_by_depth[k]
    assert sum(tight.val_transport_cost_by_depth) < 0.2 * sum(free.val_transport_cost_by_depth)


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


@pytest.mark.parametrize("regime, extra", [("sequential", []), ("multilap", ["train.laps=2", "train.epochs=4"])])
def test_validation_from_cached_inputs_equals_the_pass_through_every_depth(make_config, regime, extra):
    # The validation record of module k comes from the cached G_{k-1}(x_val) (built from module
    # k-1's by one module's forward); the reference is the previous behaviour, a pass through
    # the stem and modules 0..k on the raw split. Same batches, same operations: equal exactly.
    trainer = _trainer(make_config(f"train.regime={regime}", "transport.tau=0.5", *extra))
    for item in trainer.plan:
        records = trainer.run_item(item)
        (val,) = [r for r in records if r["split"] == "val"]
        k = item.module
        reference = evaluate_depths(
            trainer.net,
            trainer.data.val,
            batch_size=trainer.config.train.eval_batch_size,
            device=torch.device("cpu"),
            penalty=trainer.penalty,
            taus=[0.5] * (k + 1),
            upto=k,
        )[k]
        assert (val["loss"], val["transport_cost"], val["accuracy"]) == (
            reference.loss,
            reference.transport_cost,
            reference.accuracy,
        )


def test_eval_every_thins_the_validation_records_and_leaves_the_summary(make_config, tmp_path):
    every = train(make_config("train.epochs=4"), tmp_path / "every", quiet=True)
    thin = train(make_config("train.epochs=4", "train.eval_every=3"), tmp_path / "thin", quiet=True)
    timing = {"train_seconds", "seconds_per_epoch_by_module", "peak_memory_bytes", "peak_memory_bytes_by_module"}
    assert {k: v for k, v in thin.to_dict().items() if k not in timing} == {
        k: v for k, v in every.to_dict().items() if k not in timing
    }
    val = [json.loads(line) for line in (tmp_path / "thin" / "metrics.jsonl").read_text().splitlines()]
    val = [(r["module"], r["epoch"]) for r in val if r["split"] == "val"]
    assert val == [(k, e) for k in range(4) for e in (2, 3)]  # epoch 3 of every 3, and each module's last


def test_penalty_ratio_in_records_and_summary(make_config, tmp_path):
    summary = train(make_config("transport.tau=0.5", "train.epochs=1"), tmp_path / "r", quiet=True)
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        assert r["penalty_ratio"] == pytest.approx(r["penalty"] / r["task_loss"], rel=1e-12)
        assert r["penalty"] == pytest.approx(r["transport_cost"] / (2 * 0.5), rel=1e-6)  # float32 product
    assert len(summary.val_penalty_ratio_by_module) == 4 and all(v > 0 for v in summary.val_penalty_ratio_by_module)
    free = train(make_config("train.epochs=1"), tmp_path / "free", quiet=True)
    assert free.val_penalty_ratio_by_module == [0.0] * 4


def test_tensorboard_scalars_are_the_records(make_config, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = make_config("transport.tau=0.5", "train.epochs=2", "train.tensorboard=true")
    summary = train(config, tmp_path / "r", quiet=True)
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard")).Reload()
    tags = set(events.Tags()["scalars"])
    for field in ("loss", "task_loss", "penalty", "transport_cost", "penalty_ratio", "accuracy", "tau", "lr"):
        assert {f"{field}/{s}/module_{k}" for s in ("train", "val") for k in range(4)} <= tags
    got = [(e.step, e.value) for e in events.Scalars("penalty/train/module_2")]
    want = [r["penalty"] for r in records if r["split"] == "train" and r["module"] == 2]
    assert [step for step, _ in got] == [4, 5]  # positions in the plan: module 2's two epochs
    assert [v for _, v in got] == pytest.approx(want, rel=1e-6)  # stored as float32
    depth = events.Scalars("summary/test_accuracy_by_depth")
    assert [e.step for e in depth] == [1, 2, 3, 4]
    assert [e.value for e in depth] == pytest.approx(summary.test_accuracy_by_depth, rel=1e-6)
