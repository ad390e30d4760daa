"""Block features for the OT analysis: file format, shapes, and agreement with a forward pass.

One tiny conv ResNet is trained on scikit-learn's digits (100 training images, 1 epoch per
module: about a second) and shared by the tests of this file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from otblocks import RunDirError, build_model, load_config, load_run
from otblocks.cli import main
from otblocks.features import read_features, write_run_features
from otblocks.walk import collect_features, compute_features, eval_mode, sample_points

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def run_dir(digits_conv_run):
    return digits_conv_run


def test_cli_writes_the_documented_file(run_dir, capsys):
    assert main(["features", str(run_dir), "--split", "val", "--n", "30", "--seed", "2"]) == 0
    assert f"features written to {run_dir / 'features' / 'val.npz'}" in capsys.readouterr().out
    arrays, meta = read_features(run_dir / "features" / "val.npz")
    expected = {
        "labels",
        "indices",
        "block0_in",
        "block0_out",
        "block1_in",
        "block1_out",
        "block1_shortcut",
        "block2_in",
        "block2_out",
        "module0_in",
        "module0_out",
        "module1_in",
        "module1_out",
    }
    assert set(arrays) == expected
    shapes = {name: a.shape for name, a in arrays.items()}
    assert shapes["block0_in"] == shapes["block0_out"] == shapes["block1_in"] == (30, 4, 8, 8)
    assert shapes["block1_out"] == shapes["block1_shortcut"] == shapes["block2_out"] == (30, 8, 4, 4)  # stride 2
    assert shapes["module1_in"] == (30, 4, 8, 8) and shapes["module1_out"] == (30, 8, 4, 4)
    assert arrays["block0_in"].dtype == np.float32 and arrays["labels"].dtype == np.int64
    assert meta["n"] == 30 and meta["split"] == "val" and meta["seed"] == 2 and meta["pool"] is None
    assert [b["module"] for b in meta["blocks"]] == [0, 1, 1]
    assert [b["has_shortcut_image"] for b in meta["blocks"]] == [False, True, False]
    assert meta["blocks"][1]["in_shape"] == [4, 8, 8] and meta["blocks"][1]["out_shape"] == [8, 4, 4]
    assert np.all(np.diff(arrays["indices"]) > 0)


def test_features_match_a_direct_forward_pass(run_dir):
    path = write_run_features(run_dir, "test", 25, seed=1, out=run_dir / "f_test.npz")
    arrays, _ = read_features(path)
    run = load_run(run_dir)
    x, y = run.data.test.tensors
    index = torch.from_numpy(arrays["indices"])
    points = x[index]
    np.testing.assert_array_equal(arrays["labels"], y[index].numpy())
    net = run.net.eval()
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(arrays["block0_in"]), net.stem(points))
        for i, block in enumerate(net.blocks()):
            x_in = torch.from_numpy(arrays[f"block{i}_in"])
            torch.testing.assert_close(torch.from_numpy(arrays[f"block{i}_out"]), block(x_in))
        shortcut = net.blocks()[1].shortcut(torch.from_numpy(arrays["block1_in"]))
        torch.testing.assert_close(torch.from_numpy(arrays["block1_shortcut"]), shortcut)
        for k in range(net.n_modules):
            torch.testing.assert_close(torch.from_numpy(arrays[f"module{k}_out"]), net.module_input(points, k + 1))
            logits = net.heads[k](torch.from_numpy(arrays[f"module{k}_out"]))
            torch.testing.assert_close(logits, net(points, depth=k + 1))


def test_pooled_and_projected_features_have_the_documented_shapes(run_dir):
    arrays, meta = read_features(write_run_features(run_dir, "val", 40, pool=2, out=run_dir / "pooled.npz"))
    assert arrays["block0_in"].shape == (40, 4, 2, 2) and arrays["block2_out"].shape == (40, 8, 2, 2)
    assert meta["pool"] == 2 and meta["blocks"][1]["stored_out_shape"] == [8, 2, 2]
    arrays, meta = read_features(write_run_features(run_dir, "val", 40, project=100, seed=3, out=run_dir / "proj.npz"))
    assert arrays["block0_in"].shape == (40, 100)  # 4 x 8 x 8 = 256 > 100: projected
    assert arrays["block2_out"].shape == (40, 100)  # 8 x 4 x 4 = 128 > 100: projected
    assert meta["project"] == 100


def test_random_projection_is_shared_by_equal_dimensions_and_keeps_distances():
    torch.manual_seed(0)
    net = build_model(load_config(None, ["model.depth=2", "model.width=512"]).model, (512,), 2)
    x = torch.randn(200, 512)
    features = compute_features(net, x, project=128, seed=0)
    full = compute_features(net, x)
    # block 0's output is block 1's input: one array, one matrix for d = 512
    assert features.block(0)[1] is features.block(1)[0]
    i, j = torch.triu_indices(200, 200, offset=1)

    def squared(t):
        return (t[i] - t[j]).pow(2).sum(1)

    ratio = squared(features.boundaries[1]) / squared(full.boundaries[1])
    # JL with D = 128: each ratio of squared distances is chi2_128 / 128, mean 1 and std 0.125;
    # over 19,900 (dependent) pairs the sample mean is within 0.02 of 1 and the std within 0.02
    assert abs(float(ratio.mean()) - 1) < 0.02 and abs(float(ratio.std()) - 0.125) < 0.02


def test_collect_features_yields_every_block_with_either_reference(run_dir):
    run = load_run(run_dir)
    x, y = run.data.val.tensors[0][:12], run.data.val.tensors[1][:12]
    pairs = list(collect_features(run.net, (x, y)))
    shapes = [(tuple(a.shape[1:]), tuple(b.shape[1:])) for a, b in pairs]
    assert shapes == [((4, 8, 8), (4, 8, 8)), ((4, 8, 8), (8, 4, 4)), ((8, 4, 4), (8, 4, 4))]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=5)
    shortcut_pairs = list(collect_features(run.net, loader, reference="shortcut"))
    assert all(a.shape == b.shape for a, b in shortcut_pairs)
    residual = run.net.blocks()[1].residual(pairs[1][0])
    torch.testing.assert_close(shortcut_pairs[1][1] - shortcut_pairs[1][0], residual.detach(), atol=1e-5, rtol=1e-5)


def test_blocks_are_callables_for_jacobian_checks(run_dir):
    net = load_run(run_dir).net.eval()
    block = net.blocks()[0]  # identity shortcut: J_T = I + J_g
    x = torch.randn(1, 4, 8, 8)
    j_block = torch.autograd.functional.jacobian(lambda t: block(t), x).reshape(256, 256)
    j_g = torch.autograd.functional.jacobian(lambda t: block.residual(t), x).reshape(256, 256)
    torch.testing.assert_close(j_block, torch.eye(256) + j_g)


def test_bad_requests_fail_with_one_line(run_dir, tmp_path, capsys):
    assert main(["features", str(run_dir), "--n", "100000"]) == 2
    assert "The 'n' parameter of `write_run_features` must be an int in [1, " in capsys.readouterr().err
    with pytest.raises(RunDirError, match="does not exist"):
        write_run_features(tmp_path / "missing")


def test_the_sampler_draws_distinct_points_in_the_split_order_and_repeats_with_its_seed(run_dir):
    dataset = load_run(run_dir).data.val
    indices, x, _ = sample_points(dataset, 20, seed=5)
    assert len(set(indices.tolist())) == 20 and np.all(np.diff(indices) > 0) and indices.max() < len(dataset)
    torch.testing.assert_close(x, dataset.tensors[0][torch.from_numpy(indices)])
    np.testing.assert_array_equal(sample_points(dataset, 20, seed=5)[0], indices)
    assert not np.array_equal(sample_points(dataset, 20, seed=6)[0], indices)
    with pytest.raises(ValueError, match=r"The 'n' parameter of `sample_points` must be an int in \[1, "):
        sample_points(dataset, len(dataset) + 1, seed=0)


def test_eval_mode_restores_every_module_s_own_mode(run_dir):
    net = load_run(run_dir).net
    net.train()
    net.heads[0].eval()  # a mixed state, as the trainer leaves it between modules
    before = [m.training for m in net.modules()]
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert [m.training for m in net.modules()] == before
