"""`analysis.collect_blocks`: per-block samples of any sequence of blocks."""

import json

import numpy as np
import pytest
import torch

from analysis import BlockSample, collect_blocks


class Residual(torch.nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(channels)

    def forward(self, x):
        return x + self.bn(self.conv(x))


def test_samples_chain_and_match_a_direct_forward():
    # Each block's output is the next one's input (the same array), and the last output
    # equals a direct forward pass in eval mode (float32 model: 1e-6 relative).
    torch.manual_seed(0)
    blocks = [Residual(2), Residual(2), torch.nn.Flatten()]
    x = torch.randn(10, 2, 4, 4)
    samples = collect_blocks(blocks, x, batch_size=3)
    assert [s.index for s in samples] == [0, 1, 2]
    assert samples[0].x_in.shape == (10, 32) and samples[0].x_in.dtype == np.float64
    assert samples[0].x_out is samples[1].x_in
    with torch.no_grad():
        for b in blocks:
            b.eval()
        expected = blocks[2](blocks[1](blocks[0](x)))
    np.testing.assert_allclose(samples[2].x_out, expected.double().numpy(), rtol=1e-6)
    np.testing.assert_array_equal(samples[0].x_in, x.reshape(10, -1).double().numpy())


def test_modules_are_evaluated_in_eval_mode_and_restored():
    # Train-mode BatchNorm would use batch statistics and update its running averages.
    torch.manual_seed(1)
    block = Residual(1)
    block.train()
    before = block.bn.running_mean.clone()
    collect_blocks([block], torch.randn(8, 1, 3, 3) + 5.0, batch_size=2)
    assert block.training and block.bn.training
    torch.testing.assert_close(block.bn.running_mean, before)


def test_batch_size_does_not_change_the_samples():
    torch.manual_seed(2)
    block = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh())
    x = np.random.default_rng(0).standard_normal((7, 3))
    a = collect_blocks([block], x, batch_size=2)[0].x_out
    b = collect_blocks([block], x, batch_size=100)[0].x_out
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_numpy_input_follows_the_model_dtype_and_functions_get_float64():
    torch.manual_seed(3)
    x = np.random.default_rng(1).standard_normal((5, 2))
    seen = []

    def spy(h):
        seen.append(h.dtype)
        return h

    collect_blocks([spy], x)
    collect_blocks([torch.nn.Linear(2, 2), spy], x)
    assert seen == [torch.float64, torch.float32]


def test_samples_are_read_only_frozen_and_serialisable():
    samples = collect_blocks([lambda h: h + 1], torch.zeros(2, 2))
    with pytest.raises(ValueError):
        samples[0].x_in[0, 0] = 1.0
    with pytest.raises(AttributeError):
        samples[0].index = 3
    assert isinstance(samples[0], BlockSample)
    assert json.loads(json.dumps(samples[0].to_dict())) == {
        "index": 0, "x_in": [[0.0, 0.0], [0.0, 0.0]], "x_out": [[1.0, 1.0], [1.0, 1.0]],
    }


@pytest.mark.parametrize(
    "blocks, x, exc, match",
    [
        ([], torch.zeros(2, 2), TypeError, "non-empty sequence"),
        (torch.nn.Linear(2, 2), torch.zeros(2, 2), TypeError, "non-empty sequence"),
        ([lambda h: h, 3], torch.zeros(2, 2), TypeError, r"'blocks\[1\]'.*callable"),
        ([lambda h: h], torch.zeros(2), ValueError, r"at least 2 dimensions.*got an array of shape \(2,\)"),
        ([lambda h: h], torch.full((2, 2), float("nan")), ValueError, "finite"),
        ([lambda h: h[:1]], torch.zeros(3, 2), ValueError, r"'blocks\[0\]'.*shape \(3, \.\.\.\)"),
        ([lambda h: h.numpy()], torch.zeros(3, 2), ValueError, r"'blocks\[0\]'.*must return a tensor"),
    ],
)
def test_bad_inputs(blocks, x, exc, match):
    with pytest.raises(exc, match=match):
        collect_blocks(blocks, x)


def test_bad_batch_size():
    with pytest.raises(ValueError, match="'batch_size'.*>= 1; got 0"):
        collect_blocks([lambda h: h], torch.zeros(2, 2), batch_size=0)
