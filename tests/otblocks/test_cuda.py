"""CUDA-only paths: mixed precision, channels_last, torch.compile, pinned memory, peak memory.

Skipped without a CUDA device. Each test trains a small conv ResNet on scikit-learn's
digits (a few hundred images, one or two epochs per module).
"""

from __future__ import annotations

import math

import pytest
import torch

from otblocks import load_config, train
from otblocks.data import iterate_batches
from otblocks.training import TIMING_KEYS

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
pytest.importorskip("sklearn")


def cuda_config(*overrides: str):
    base = [
        "data.name=digits",
        "data.per_class=30",
        "model.kind=resnet",
        "model.stem_channels=16",
        "model.stage_blocks=[2, 2]",
        "model.stage_channels=[16, 32]",
        "model.depth=4",
        "model.head=conv",
        "transport.tau=1.0",
        "train.epochs=2",
        "train.batch_size=32",
        "train.device=cuda",
    ]
    return load_config(None, base + list(overrides))


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains(tmp_path, amp):
    summary = train(cuda_config(f"train.amp={amp}"), tmp_path / amp, quiet=True)
    assert summary.device.startswith("cuda")
    assert all(math.isfinite(v) for v in summary.val_loss_by_depth)
    assert summary.val_accuracy_at_best_depth > 0.3  # 10 classes: chance is 0.1


def test_fp16_uses_a_grad_scaler_per_module():
    from otblocks.data import build_data
    from otblocks.models import build_model
    from otblocks.training import Trainer

    config = cuda_config("train.amp=fp16")
    data = build_data(config.data)
    net = build_model(config.model, data.input_shape, data.n_classes).cuda()
    trainer = Trainer(config, net, data, torch.device("cuda"))
    assert all(o.scaler is not None for o in trainer.opts) and len(trainer.opts) == 4


@pytest.mark.slow  # torch.compile of every block part and head takes a minute or two
def test_channels_last_and_compile_train_and_load_back(tmp_path):
    from otblocks import load_run

    config = cuda_config("train.channels_last=true", "train.compile=true", "train.amp=bf16")
    summary = train(config, tmp_path / "fast", quiet=True)
    assert summary.val_accuracy_at_best_depth > 0.3
    run = load_run(tmp_path / "fast", "cuda")  # compiled in place: parameter names unchanged
    x = run.data.val.tensors[0][:8].cuda()
    assert run.net(x).shape == (8, 10)


def test_deterministic_runs_repeat_exactly(tmp_path):
    config = cuda_config("train.deterministic=true")
    first = train(config, tmp_path / "a", quiet=True).to_dict()
    second = train(config, tmp_path / "b", quiet=True).to_dict()
    drop = lambda d: {k: v for k, v in d.items() if k not in TIMING_KEYS}  # noqa: E731
    assert drop(first) == drop(second)


def test_pinned_batches():
    x, y = torch.randn(10, 3), torch.arange(10)
    batches = list(iterate_batches(torch.utils.data.TensorDataset(x, y), 4, pin_memory=True))
    assert all(bx.is_pinned() and by.is_pinned() for bx, by in batches)


def test_sequential_peak_memory_is_below_end_to_end(tmp_path):
    config = [
        "model.stem_channels=32",
        "model.stage_channels=[32, 64]",
        "train.epochs=1",
        "train.batch_size=128",
        "train.cache_frozen=false",
    ]
    seq = train(cuda_config(*config), tmp_path / "seq", quiet=True)
    e2e = train(cuda_config(*config, "train.regime=e2e"), tmp_path / "e2e", quiet=True)
    assert len(seq.peak_memory_bytes_by_module) == 4 and len(e2e.peak_memory_bytes_by_module) == 1
    assert seq.peak_memory_bytes < e2e.peak_memory_bytes
