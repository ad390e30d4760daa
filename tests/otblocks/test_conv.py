"""Conv ResNets: shapes through stride-2 blocks, shortcuts, heads, init, and their training.

The training tests run on synthetic image tensors (shape checks, modes, caching) or on
scikit-learn's digits, shrunk to a few hundred images, so each takes about a second.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from otblocks import ConfigError, build_model, load_config, train
from otblocks.data import DataBundle
from otblocks.models import BlockModule
from otblocks.models.conv import BasicBlock, PadShortcut, block_layout
from otblocks.models.conv_heads import AvgPoolTo
from otblocks.training import Trainer, WorkItem
from otblocks.transport import transport_cost


def resnet_config(*overrides: str):
    base = [
        "data.name=cifar10",
        "model.kind=resnet",
        "model.stem_channels=4",
        "model.stage_blocks=[2, 2]",
        "model.stage_channels=[4, 8]",
        "model.depth=4",
        "model.head=linear",
        "train.batch_size=16",
    ]
    return load_config(None, base + list(overrides))


# ---------------------------------------------------------------- blocks and shapes
@pytest.mark.parametrize("shortcut", ["projection", "pad"])
@pytest.mark.parametrize("size, out", [(8, 4), (7, 4)])
def test_stride_two_block_halves_the_map_and_changes_channels(shortcut, size, out):
    block = BasicBlock(4, 8, stride=2, shortcut=shortcut).eval()
    x = torch.randn(3, 4, size, size)
    assert block.changes_shape
    assert block(x).shape == block.shortcut(x).shape == block.residual(x).shape == (3, 8, out, out)
    torch.testing.assert_close(block(x), block.shortcut(x) + block.residual(x))


def test_same_shape_block_has_the_identity_shortcut():
    block = BasicBlock(4, 4).eval()
    x = torch.randn(2, 4, 5, 5)
    assert not block.changes_shape and block.shortcut(x) is x
    torch.testing.assert_close(block(x), x + block.residual(x))


def test_pad_shortcut_is_parameter_free_average_pool_then_zeros():
    pad = PadShortcut(2, 5, stride=2)
    x = torch.arange(2 * 2 * 4 * 4, dtype=torch.float32).view(2, 2, 4, 4)
    y = pad(x)
    assert sum(p.numel() for p in pad.parameters()) == 0 and y.shape == (2, 5, 2, 2)
    torch.testing.assert_close(y[:, :2], nn.functional.avg_pool2d(x, 2))
    assert torch.count_nonzero(y[:, 2:]) == 0
    with pytest.raises(ValueError, match="'c_out' parameter of `PadShortcut` must be >= c_in = 4; got 2"):
        PadShortcut(4, 2, 1)


def test_resnet20_layout_and_shapes_through_the_network():
    cfg = load_config(
        None,
        [
            "data.name=cifar10",
            "model.kind=resnet",
            "model.stage_blocks=[3, 3, 3]",
            "model.stage_channels=[16, 32, 64]",
            "model.depth=9",
            "model.blocks_per_module=3",
            "model.head=conv",
            "model.head_pool=2",
        ],
    ).model
    assert [s for _, _, s in block_layout(cfg)] == [1, 1, 1, 2, 1, 1, 2, 1, 1]
    net = build_model(cfg, (3, 32, 32), 10).eval()
    h = net.stem(torch.randn(2, 3, 32, 32))
    shapes = []
    for block in net.blocks():
        h = block(h)
        shapes.append(tuple(h.shape[1:]))
    assert shapes == [(16, 32, 32)] * 3 + [(32, 16, 16)] * 3 + [(64, 8, 8)] * 3
    assert [tuple(t.shape) for t in net.forward_all(torch.randn(2, 3, 32, 32))] == [(2, 10)] * 3
    # 6n + 2 = 20 weighted layers: the stem, 2 per block, and a linear classifier
    convs = [m for m in net.block_modules.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert 1 + len(convs) + 1 == 20


def test_split_points_cut_the_blocks_into_modules():
    net = build_model(resnet_config("model.split_points=[1, 3]").model, (3, 8, 8), 10)
    assert [len(m.blocks) for m in net.block_modules] == [1, 2, 1]
    assert net.module_of_block() == [0, 1, 1, 2]


def test_single_stage_network_is_k_blocks_after_a_stem():
    cfg = load_config(None, ["data.name=cifar10", "model.kind=resnet", "model.depth=5", "model.stem_channels=6"]).model
    assert block_layout(cfg) == [(6, 6, 1)] * 5


# ---------------------------------------------------------------- the penalty sees g only
def test_penalty_excludes_the_shortcut_of_a_dimension_changing_block():
    # through the module's own forward (what the trainer calls): the penalised residual is
    # T(x) - shortcut(x), never T(x) minus anything the projection contributes
    block = BasicBlock(4, 8, stride=2, shortcut="projection").eval()
    module = BlockModule([block])
    nn.init.zeros_(block.g[-1].weight)  # g = 0: the block is its (non-zero) projection
    x = torch.randn(3, 4, 8, 8)
    out, residuals = module.forward_with_residuals(x)
    cost = transport_cost(x, out, residuals)
    assert float(cost.detach()) == 0.0 and float(out.detach().abs().sum()) > 0
    nn.init.normal_(block.g[-1].weight)
    out, residuals = module.forward_with_residuals(x)
    torch.testing.assert_close(out, block(x))
    cost = transport_cost(x, out, residuals)
    expected = (block(x) - block.shortcut(x)).pow(2).flatten(1).sum(1).mean()
    torch.testing.assert_close(cost, expected)
    cost.backward()
    assert block.proj.weight.grad is None  # the projection gets no gradient from the penalty


# ---------------------------------------------------------------- heads and init
@pytest.mark.parametrize("head", ["linear", "mlp", "conv"])
def test_heads_give_logits(head):
    net = build_model(resnet_config(f"model.head={head}", "model.head_pool=3").model, (3, 8, 8), 7)
    assert net(torch.randn(5, 3, 8, 8), depth=1).shape == (5, 7)


def test_conv_head_is_the_papers_auxiliary_classifier():
    net = build_model(resnet_config("model.head=conv", "model.head_pool=2").model, (3, 8, 8), 10)
    kinds = [type(m).__name__ for m in net.heads[-1]]
    assert kinds == ["Conv2d", "ReLU", "AvgPoolTo", "BatchNorm2d", "Flatten", "Linear"]
    conv, pool, linear = net.heads[-1][0], net.heads[-1][2], net.heads[-1][-1]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (8, 8, (3, 3))
    assert pool.size == 2 and linear.in_features == 8 * 2 * 2


@pytest.mark.parametrize("size, pool", [(8, 2), (7, 2), (6, 1), (5, 3)])
def test_head_pooling_is_adaptive_average_pooling(size, pool):
    x = torch.randn(2, 3, size, size)
    torch.testing.assert_close(AvgPoolTo(pool)(x), nn.AdaptiveAvgPool2d(pool)(x))


def test_orthogonal_init_with_gain():
    net = build_model(resnet_config("model.init=orthogonal", "model.init_gain=0.1").model, (3, 8, 8), 10)
    w = net.blocks()[2].g[2].weight.flatten(1)  # (8, 36): orthogonal rows of norm 0.1
    torch.testing.assert_close(w @ w.T, 0.01 * torch.eye(8), atol=1e-6, rtol=0)
    assert int(torch.count_nonzero(net.heads[0][-1].bias.detach())) == 0  # biases start at zero


def test_kaiming_init_has_he_variance():
    net = build_model(
        resnet_config("model.init=kaiming", "model.stage_channels=[64, 64]", "model.stem_channels=64").model,
        (3, 8, 8),
        10,
    )
    w = net.blocks()[1].g[2].weight  # fan_out = 64 * 9
    np.testing.assert_allclose(float(w.detach().std()), math.sqrt(2 / (64 * 9)), rtol=0.05)


def test_default_init_is_pytorchs():
    torch.manual_seed(0)
    a = build_model(resnet_config().model, (3, 8, 8), 10)
    torch.manual_seed(0)
    b = build_model(resnet_config("model.init=default").model, (3, 8, 8), 10)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


# ---------------------------------------------------------------- configuration errors
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.depth=5"], r"'model.depth' config key must be the sum of model.stage_blocks \(4\); got 5"),
        (["model.stage_channels=[4]"], "'model.stage_channels' config key must be a list of 2 channel counts"),
        (
            ["model.shortcut=pad", "model.stage_channels=[8, 4]"],
            "'model.shortcut' config key must be 'projection' when the channels decrease",
        ),
        (["model.init=xavier"], "'model.init' config key must be one of {'default', 'orthogonal', 'kaiming'}"),
    ],
)
def test_bad_resnet_configs_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resnet_config(*overrides)


def test_model_kind_must_fit_the_data():
    with pytest.raises(
        ConfigError, match="'model.kind' config key must be 'mlp' for the toy data set 'moons'; got 'resnet'"
    ):
        load_config(None, ["model.kind=resnet"])
    with pytest.raises(ConfigError, match=r"'model.head' config key must be one of \{'linear', 'mlp'\}; got 'conv'"):
        load_config(None, ["model.head=conv"])


# ---------------------------------------------------------------- training a conv net
def _synthetic_trainer(*overrides: str, n: int = 64, augmented: bool = False) -> Trainer:
    config = resnet_config("train.epochs=1", "train.regime=sequential", "transport.tau=1.0", *overrides)
    g = torch.Generator().manual_seed(0)
    split = lambda m: TensorDataset(torch.randn(m, 3, 8, 8, generator=g), torch.randint(0, 10, (m,), generator=g))
    data = DataBundle(split(n), split(32), split(32), 10, (3, 8, 8), augmented)
    torch.manual_seed(0)
    net = build_model(config.model, data.input_shape, data.n_classes)
    return Trainer(config, net, data, torch.device("cpu"))


def test_frozen_modules_keep_eval_mode_and_batchnorm_statistics():
    trainer = _synthetic_trainer()
    net = trainer.net
    trainer.run_item(WorkItem(0, 0, 0))
    frozen = {
        k: v.clone()
        for k, v in net.state_dict().items()
        if k.startswith(("stem.", "block_modules.0.", "block_modules.1."))
    }
    modes = []
    original = net.block_modules[1].forward

    def spy(x):
        modes.append([m.training for m in net.block_modules[1].modules()] + [m.training for m in net.stem.modules()])
        return original(x)

    net.block_modules[1].forward = spy
    trainer.run_item(WorkItem(0, 2, 0))
    assert modes and not any(any(m) for m in modes)
    after = net.state_dict()
    for key, value in frozen.items():  # BatchNorm running means, variances and counters included
        torch.testing.assert_close(after[key], value, msg=key)
    assert net.block_modules[2].training


def _count_frozen_passes(trainer: Trainer) -> list[int]:
    calls = []
    original = trainer.net.module_input

    def spy(x, k):  # passes for training only (validation runs with every module in eval mode)
        if any(m.training for m in trainer.net.block_modules):
            calls.append(len(x))
        return original(x, k)

    trainer.net.module_input = spy
    return calls


def test_frozen_outputs_are_cached_once_per_module_and_give_the_same_training():
    cached, fresh = (
        _synthetic_trainer("train.epochs=2"),
        _synthetic_trainer("train.epochs=2", "train.cache_frozen=false"),
    )
    calls_cached, calls_fresh = _count_frozen_passes(cached), _count_frozen_passes(fresh)
    for trainer in (cached, fresh):
        for item in trainer.plan:
            trainer.run_item(item)
    # cached: one probe of 1 image, then the 64 images in one evaluation batch, for modules 1, 2, 3
    assert calls_cached == [1, 64] * 3
    assert calls_fresh == [16] * 4 * 2 * 3  # 4 batches x 2 epochs x 3 modules
    for p, q in zip(cached.net.parameters(), fresh.net.parameters()):
        torch.testing.assert_close(p, q, atol=1e-4, rtol=1e-4)


def test_multilap_recomputes_the_cache_every_lap():
    trainer = _synthetic_trainer("train.regime=multilap", "train.laps=2", "train.epochs=2")
    calls = _count_frozen_passes(trainer)
    for item in trainer.plan:
        trainer.run_item(item)
    assert calls == [1, 64] * 3 * 2  # modules 1, 2, 3 in each of the 2 laps: earlier modules have changed


def test_no_cache_over_budget_or_with_augmentation():
    for trainer in (_synthetic_trainer("train.cache_budget_mb=0"), _synthetic_trainer(augmented=True)):
        calls = _count_frozen_passes(trainer)
        trainer.run_item(WorkItem(0, 1, 0))
        assert all(c == 16 for c in calls[-4:]) and sum(calls) - calls.count(1) == 64


def test_peak_memory_and_seconds_per_module_in_metrics_and_summary(tmp_path):
    pytest.importorskip("sklearn")
    config = load_config(
        None,
        [
            "data.name=digits",
            "data.per_class=10",
            "model.kind=resnet",
            "model.stem_channels=4",
            "model.depth=2",
            "model.head=linear",
            "train.epochs=1",
            "train.batch_size=32",
        ],
    )
    summary = train(config, tmp_path / "r", quiet=True)
    assert len(summary.peak_memory_bytes_by_module) == len(summary.seconds_per_epoch_by_module) == 2
    assert summary.peak_memory_bytes == max(summary.peak_memory_bytes_by_module) > 0
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["peak_memory_bytes"] > 0 and r["seconds"] > 0 for r in records)


def test_resume_of_a_cached_conv_run_equals_the_uninterrupted_run(tmp_path):
    pytest.importorskip("sklearn")
    from otblocks.training import RECORD_TIMING_KEYS, TIMING_KEYS

    config = load_config(
        None,
        [
            "data.name=digits",
            "data.per_class=10",
            "model.kind=resnet",
            "model.stem_channels=4",
            "model.depth=3",
            "model.head=conv",
            "transport.tau=1.0",
            "train.epochs=2",
            "train.batch_size=32",
        ],
    )
    reference = train(config, tmp_path / "ref", quiet=True)

    class Stop(Exception):
        pass

    def stop(index, item, records):
        if index == 2:  # inside module 1, whose cached inputs must be rebuilt on resume
            raise Stop

    with pytest.raises(Stop):
        train(config, tmp_path / "cut", quiet=True, callbacks=[stop])
    resumed = train(config, tmp_path / "cut", resume=True, quiet=True)
    drop = lambda d: {k: v for k, v in d.items() if k not in TIMING_KEYS}
    assert drop(resumed.to_dict()) == drop(reference.to_dict())
    lines = lambda p: [
        {k: v for k, v in json.loads(s).items() if k not in RECORD_TIMING_KEYS} for s in p.read_text().splitlines()
    ]
    assert lines(tmp_path / "cut" / "metrics.jsonl") == lines(tmp_path / "ref" / "metrics.jsonl")
