"""`analysis.collect_blocks`: per-block samples of a chain of blocks, or of named sub-modules of any model."""

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
    # equals a direct forward pass in eval mode. The float32 convolutions may use another
    # algorithm for a batch of 3 than for 10, so entries of size O(1) can differ by a few
    # float32 ulps (1.2e-7 each): rtol 1e-6 plus atol 1e-6 for the entries near 0.
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
    np.testing.assert_allclose(samples[2].x_out, expected.double().numpy(), rtol=1e-6, atol=1e-6)
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
        "index": 0,
        "x_in": [[0.0, 0.0], [0.0, 0.0]],
        "x_out": [[1.0, 1.0], [1.0, 1.0]],
        "name": None,
    }


@pytest.mark.parametrize(
    "blocks, x, exc, match",
    [
        ([], torch.zeros(2, 2), TypeError, "non-empty sequence.*got list of length 0"),
        (torch.nn.Sequential(), torch.zeros(2, 2), TypeError, "non-empty sequence.*got list of length 0"),
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


def test_sequential_and_module_list_are_chains_of_their_children():
    # Residual networks keep their blocks in these containers; they stand for the list of children.
    torch.manual_seed(4)
    blocks = [Residual(2), Residual(2)]
    x = torch.randn(6, 2, 3, 3)
    expected = collect_blocks(blocks, x)
    for container in (torch.nn.Sequential(*blocks), torch.nn.ModuleList(blocks)):
        got = collect_blocks(container, x)
        assert len(got) == 2
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a.x_in, b.x_in)
            np.testing.assert_array_equal(a.x_out, b.x_out)


# --- named sub-modules of a model, through forward hooks -------------------------------------


class Basic(torch.nn.Module):
    """torchvision's BasicBlock, written out: relu(P(x) + bn2(conv2(relu(bn1(conv1(x)))))), with one
    in-place ReLU module applied twice and the shortcut added in place onto bn2's output."""

    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c_out)
        self.relu = torch.nn.ReLU(inplace=True)
        self.conv2 = torch.nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(c_in, c_out, 1, stride, bias=False), torch.nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out += identity
        return self.relu(out)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(inplace=True))
        self.layer = torch.nn.Sequential(Basic(4, 4), Basic(4, 8, stride=2))
        self.unused = torch.nn.Linear(3, 3)
        self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3))

    def forward(self, x):
        return self.head(self.layer(self.stem(x)))


def _trained_net():
    # Non-trivial BatchNorm statistics (a few train-mode passes), so eval mode matters.
    torch.manual_seed(5)
    net = Net()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 1, 6, 6) * 2 + 1)
    return net.eval()


def _manual(net, x):
    """Every tensor of the forward pass, computed by hand from the sub-modules (eval mode)."""
    relu = torch.relu
    b0, b1 = net.layer
    with torch.no_grad():
        h0 = net.stem(x)
        g0 = b0.bn2(b0.conv2(relu(b0.bn1(b0.conv1(h0)))))
        h1 = relu(h0 + g0)
        p1 = b1.downsample(h1)
        g1 = b1.bn2(b1.conv2(relu(b1.bn1(b1.conv1(h1)))))
        h2 = relu(p1 + g1)
    return {
        k: v.reshape(len(x), -1).double().numpy()
        for k, v in {"h0": h0, "g0": g0, "h1": h1, "p1": p1, "g1": g1, "h2": h2}.items()
    }


def test_hooks_give_the_tensors_of_a_manual_forward():
    # Ground truth: the same sub-modules applied by hand to the same batch, in the same order, on
    # the CPU: the same float32 operations, so the recorded tensors are bitwise equal. Block 1
    # changes shape, so it is compared with its shortcut image P(h1); with `residuals`, the sample's
    # output is the sum before the final ReLU, P(h1) + g1, added in float64 from the float32 parts.
    # The block's own output relu(P + g) is the float32 sum: relu of our sum matches it up to one
    # float32 rounding of O(1) values (atol 1e-6).
    net = _trained_net()
    x = torch.randn(12, 1, 6, 6)
    m = _manual(net, x)
    s0, s1 = collect_blocks(net, x, names=["layer.0", "layer.1"], shortcuts={"layer.1": "layer.1.downsample"})
    assert (s0.name, s0.index, s1.name, s1.index) == ("layer.0", 0, "layer.1", 1)
    np.testing.assert_array_equal(s0.x_in, m["h0"])
    np.testing.assert_array_equal(s0.x_out, m["h1"])
    np.testing.assert_array_equal(s1.x_in, m["p1"])
    np.testing.assert_array_equal(s1.x_out, m["h2"])
    assert s1.x_in.shape == s1.x_out.shape == (12, 8 * 3 * 3)

    pre = collect_blocks(
        net,
        x,
        names=["layer.0", "layer.1"],
        shortcuts={"layer.1": "layer.1.downsample"},
        residuals={"layer.0": "layer.0.bn2", "layer.1": "layer.1.bn2"},
    )
    # bn2's output is overwritten in place by `out += identity`: the hook must have copied it.
    np.testing.assert_array_equal(pre[0].x_out, m["h0"] + m["g0"])
    np.testing.assert_array_equal(pre[1].x_in, m["p1"])
    np.testing.assert_array_equal(pre[1].x_out, m["p1"] + m["g1"])
    np.testing.assert_allclose(np.maximum(pre[1].x_out, 0.0), m["h2"], rtol=0, atol=1e-6)
    assert (pre[1].x_out < 0).any()  # the pre-activation sum is not the block's output


def test_named_collection_restores_modes_leaves_no_hooks_and_ignores_batch_size():
    # Batches of 5 vs one batch of 12: eval-mode blocks act on each sample independently; the float32
    # convolutions may round differently per batch size (a few ulps of O(1) values: atol 1e-6).
    net = _trained_net().train()
    before = net.layer[0].bn1.running_mean.clone()
    x = torch.randn(12, 1, 6, 6)
    a = collect_blocks(net, x, names=["layer.0"], batch_size=5)[0]
    b = collect_blocks(net, x, names=["layer.0"])[0]
    np.testing.assert_allclose(a.x_out, b.x_out, rtol=1e-6, atol=1e-6)
    assert all(m.training for m in net.modules())
    torch.testing.assert_close(net.layer[0].bn1.running_mean, before)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
    with pytest.raises(ValueError):
        collect_blocks(net, x, names=["layer.1"])
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


@pytest.mark.parametrize(
    "blocks, kwargs, exc, match",
    [
        (
            Net(),
            {"names": ["layer.2"]},
            ValueError,
            r"'names' parameter of `collect_blocks` must name sub-modules.*got 'layer\.2' \(closest: 'layer\.1'",
        ),
        (
            Net(),
            {"names": ["layer.1"]},
            ValueError,
            (
                r"maps shape \(4, 6, 6\) to \(8, 3, 3\): compare a dimension-changing block with its shortcut image, "
                r"shortcuts=\{'layer\.1': 'layer\.1\.downsample'\}"
            ),
        ),
        (
            Net(),
            {"names": ["layer.1"], "shortcuts": {"layer.1": "layer.0.bn2"}},
            ValueError,
            r"'shortcuts'.*output shape \(8, 3, 3\); got 'layer\.0\.bn2' with output shape \(4, 6, 6\)",
        ),
        (
            Net(),
            {
                "names": ["layer.1"],
                "shortcuts": {"layer.1": "layer.1.downsample"},
                "residuals": {"layer.1": "layer.0.bn2"},
            },
            ValueError,
            r"'residuals'.*got 'layer\.0\.bn2' with output shape \(4, 6, 6\)",
        ),
        (Net(), {"names": ["layer.0.relu"]}, ValueError, r"'layer\.0\.relu'.*exactly once.*ran 2 times"),
        (Net(), {"names": ["unused"]}, ValueError, r"'unused'.*exactly once.*ran 0 times"),
        (
            Net(),
            {"names": ["layer.0"], "shortcuts": {"layer.1": "layer.1.downsample"}},
            ValueError,
            r"'shortcuts'.*keys among 'names'.*got 'layer\.1'",
        ),
        (Net(), {"names": ["layer.0", "layer.0"]}, ValueError, "must not repeat"),
        (Net(), {"names": "layer.0"}, TypeError, "'names'.*non-empty sequence of sub-module names"),
        (Net(), {"names": [""]}, ValueError, "must name sub-modules"),
        ([Residual(1)], {"names": ["0"]}, TypeError, r"'blocks'.*must be a torch\.nn\.Module when 'names'"),
        ([Residual(1)], {"shortcuts": {"0": "0.bn"}}, TypeError, r"'shortcuts'.*named sub-modules only"),
    ],
)
def test_bad_names(blocks, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        collect_blocks(blocks, torch.zeros(2, 1, 6, 6), **kwargs)
