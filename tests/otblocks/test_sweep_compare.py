"""Sweeps skip finished runs; comparisons match SciPy's t-interval; bad run directories fail in one line."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from otblocks import RunDirError
from otblocks.cli import main
from otblocks.reporting import compare_runs, t_interval
from otblocks.rundir import write_json
from otblocks.sweep import expand_grid, run_sweep

TINY_SWEEP = "[data]\nn_train = 100\nn_val = 50\nn_test = 50\n[model]\ndepth = 2\nhidden = 8\n[train]\nepochs = 1\n"


@pytest.mark.parametrize("values", [[0.9, 0.92, 0.95], [0.5, 0.7], [1.0, 2.0, 4.0, 8.0, 16.0]])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_t_interval_matches_scipy(values, confidence):
    ours = t_interval(values, confidence)
    low, high = stats.t.interval(confidence, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    np.testing.assert_allclose([ours.low, ours.high], [low, high], rtol=1e-12)
    assert ours.mean == pytest.approx(np.mean(values))


def test_t_interval_known_numbers():
    # values 1, 2, 3: mean 2, s = 1, t_{0.975, 2} = 4.302652729749462, half-width = 4.3027 / sqrt(3)
    i = t_interval([1.0, 2.0, 3.0])
    assert i.half_width == pytest.approx(4.302652729749462 / math.sqrt(3), rel=1e-12)


def test_t_interval_single_value_has_no_width():
    i = t_interval([0.8])
    assert i.mean == 0.8 and math.isnan(i.low) and i.n == 1


def test_grid_expansion():
    runs = expand_grid(["transport.tau=0.1,1,inf", "transport.taus=[1,2],[3,4]"], [0, 1])
    assert len(runs) == 12
    assert runs[0].name == "tau=0.1_taus=[1,2]_seed=0"
    assert runs[0].overrides == ("transport.tau=0.1", "transport.taus=[1,2]", "train.seed=0")


def _fake_run(path, tau, seed, test, *, regime="sequential", data_seed=0, finished=True):
    path.mkdir(parents=True)
    (path / "config.toml").write_text(
        f"[data]\nseed = {data_seed}\n[transport]\ntau = {tau}\n[train]\nseed = {seed}\nregime = '{regime}'\n"
    )
    if not finished:
        return
    write_json(
        {"val_accuracy_by_depth": test, "test_accuracy_by_depth": test, "test_accuracy_at_best_depth": max(test)},
        path / "summary.json",
    )


def test_compare_groups_by_differing_keys_and_aggregates_seeds(tmp_path):
    for seed, acc in enumerate([[0.8, 0.9], [0.7, 0.95], [0.9, 0.85]]):
        _fake_run(tmp_path / f"a{seed}", 0.5, seed, acc)
    for seed in range(2):
        _fake_run(tmp_path / f"b{seed}", "inf", seed, [0.6, 0.6])
    comparison = compare_runs([tmp_path])
    assert comparison.varying_keys == ["transport.tau"]
    labels = {g.label: g for g in comparison.groups}
    a = labels["transport.tau=0.5"]
    assert a.test_accuracy[0].n == 3
    low, high = stats.t.interval(0.95, 2, loc=0.8, scale=stats.sem([0.8, 0.7, 0.9]))
    np.testing.assert_allclose([a.test_accuracy[0].low, a.test_accuracy[0].high], [low, high])
    assert labels["transport.tau=inf"].test_accuracy[1].mean == pytest.approx(0.6)
    assert "| 2 |" in comparison.to_markdown()
    assert comparison.to_csv().count("\n") == 1 + 2 * (2 * 2 + 1)


def test_compare_cli_writes_tables_and_plots(tmp_path):
    for seed in range(2):
        _fake_run(tmp_path / "runs" / f"s{seed}", 1.0, seed, [0.5, 0.6])
    assert main(["compare", str(tmp_path / "runs"), "--out", str(tmp_path / "cmp"), "--quiet"]) == 0
    written = ("comparison.md", "comparison.csv", "comparison.json")
    written += ("accuracy_by_depth_test.png", "accuracy_by_depth_val.png")
    for name in written:
        assert (tmp_path / "cmp" / name).stat().st_size > 0


def test_compare_rejects_missing_and_unfinished(tmp_path, capsys):
    with pytest.raises(RunDirError, match="does not exist"):
        compare_runs([tmp_path / "nope"])
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.toml").write_text("[train]\nseed = 0\n")
    with pytest.raises(RunDirError, match="holds no finished run"):
        compare_runs([tmp_path / "r"])
    assert main(["compare", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("otblocks: error:")


def test_sweep_skips_finished_runs(tmp_path, make_config):
    config = tmp_path / "c.toml"
    config.write_text(TINY_SWEEP)
    logs = []
    run_sweep(config, tmp_path / "sw", ["transport.tau=0.5,inf"], [0], quiet=True, log=logs.append)
    assert [line.split(": ")[1] for line in logs] == ["training", "training"]
    stamp = (tmp_path / "sw" / "tau=0.5_seed=0" / "summary.json").stat().st_mtime_ns
    logs.clear()
    run_sweep(config, tmp_path / "sw", ["transport.tau=0.5,inf"], [0], quiet=True, log=logs.append)
    assert [line.split(": ")[1] for line in logs] == ["finished, skipped"] * 2
    assert (tmp_path / "sw" / "tau=0.5_seed=0" / "summary.json").stat().st_mtime_ns == stamp


def test_sweep_validates_every_point_first(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[train]\nepochs = 1\n")
    from otblocks import ConfigError

    with pytest.raises(ConfigError, match="transport.tau"):
        run_sweep(config, tmp_path / "sw", ["transport.tau=1,-1"], [0], quiet=True)
    assert not (tmp_path / "sw").exists()


def test_grid_with_data_seeds_names_both_seeds():
    runs = expand_grid(["transport.tau=0.5,inf"], [0, 1], data_seeds=[3, 4])
    assert len(runs) == 8
    assert runs[0].name == "tau=0.5_data.seed=3_train.seed=0"
    assert runs[0].overrides == ("transport.tau=0.5", "data.seed=3", "train.seed=0")
    # one seed, one data seed: both still in the name, so the directories of a later, larger sweep match
    assert expand_grid([], [0], data_seeds=[7])[0].name == "data.seed=7_train.seed=0"
    assert expand_grid([], [2])[0].name == "seed=2"


def test_grid_refuses_seeds_in_set_and_negative_seeds():
    from otblocks import ConfigError

    with pytest.raises(ConfigError, match="--data-seeds, not --set"):
        expand_grid(["data.seed=1,2"], [0])
    with pytest.raises(ConfigError, match="'--seeds' option must list integers >= 0"):
        expand_grid([], [-1])


def test_compare_partial_sweep_counts_pending(tmp_path):
    _fake_run(tmp_path / "a0", 0.5, 0, [0.8, 0.9])
    _fake_run(tmp_path / "a1", 0.5, 1, [0.7, 0.9])
    _fake_run(tmp_path / "a2", 0.5, 2, [0.7, 0.9], finished=False)
    comparison = compare_runs([tmp_path])
    assert comparison.pending == [str(tmp_path / "a2")]
    assert comparison.groups[0].test_accuracy[0].n == 2
    assert "1 run pending" in comparison.to_markdown()
    # nothing varies: the group is named by the keys a study varies, not "all runs"
    assert comparison.groups[0].label == "train.regime=sequential, transport.tau=0.5"


def test_compare_paired_difference_by_seed(tmp_path):
    # accuracies at the best depth: tau=0.5 beats tau=inf by 0.10, 0.20, 0.30 on seeds 0, 1, 2,
    # while the seeds themselves spread the accuracies over 0.5 .. 0.9 (an unpaired interval is wide)
    base = [0.5, 0.7, 0.6]
    for seed, (b, d) in enumerate(zip(base, [0.1, 0.2, 0.3], strict=True)):
        _fake_run(tmp_path / f"inf{seed}", "inf", seed, [b])
        _fake_run(tmp_path / f"t{seed}", 0.5, seed, [b + d])
    _fake_run(tmp_path / "t9", 0.5, 9, [0.99])  # no tau=inf partner: not paired
    comparison = compare_runs([tmp_path])
    (pair,) = comparison.paired
    assert pair.group == "transport.tau=0.5" and pair.reference == "transport.tau=inf"
    assert pair.seeds == [(0, 0), (1, 0), (2, 0)]
    # differences 0.1, 0.2, 0.3: mean 0.2, s = 0.1, half-width t_{0.975, 2} * 0.1 / sqrt(3)
    assert pair.difference.mean == pytest.approx(0.2, abs=1e-12)
    assert pair.difference.half_width == pytest.approx(4.302652729749462 * 0.1 / math.sqrt(3), rel=1e-9)
    assert "Paired by seed" in comparison.to_markdown()
    assert comparison.to_dict()["paired"][0]["difference"]["n"] == 3


def test_compare_pairs_by_data_seed_too(tmp_path):
    for data_seed, d in ((0, 0.1), (1, -0.1)):
        _fake_run(tmp_path / f"inf{data_seed}", "inf", 0, [0.5], data_seed=data_seed)
        _fake_run(tmp_path / f"t{data_seed}", 0.5, 0, [0.5 + d], data_seed=data_seed)
    (pair,) = compare_runs([tmp_path]).paired
    assert pair.seeds == [(0, 0), (0, 1)] and pair.difference.mean == pytest.approx(0.0, abs=1e-12)


def test_compare_e2e_is_a_baseline_row(tmp_path):
    for seed in range(2):
        _fake_run(tmp_path / f"s{seed}", "inf", seed, [0.6, 0.7])
        _fake_run(tmp_path / f"e{seed}", "inf", seed, [0.1, 0.9], regime="e2e")
    comparison = compare_runs([tmp_path])
    table = comparison.to_markdown()
    header = next(line for line in table.splitlines() if line.startswith("| depth"))
    assert "e2e" not in header  # the block-wise groups are the columns
    row = next(line for line in table.splitlines() if line.startswith("| e2e baseline"))
    assert "0.9000" in row  # e2e at full depth


def test_compare_rejects_bad_confidence_and_broken_summary(tmp_path):
    from otblocks import ConfigError
    from otblocks.errors import BrokenFileError

    _fake_run(tmp_path / "a", 0.5, 0, [0.8])
    for confidence in (1.5, math.nan, 0):
        with pytest.raises(ConfigError, match="'confidence' parameter"):
            compare_runs([tmp_path], confidence)
    (tmp_path / "a" / "summary.json").write_text("{not json")
    with pytest.raises(BrokenFileError, match="summary.json"):
        compare_runs([tmp_path])
    (tmp_path / "a" / "summary.json").write_text('{"test_accuracy_by_depth": [0.5]}')
    with pytest.raises(BrokenFileError, match="lacks the field 'val_accuracy_by_depth'"):
        compare_runs([tmp_path])


@pytest.mark.slow
def test_parallel_sweep_gives_the_serial_numbers(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(TINY_SWEEP)
    serial = run_sweep(config, tmp_path / "s1", ["transport.tau=0.5,inf"], [0, 1], quiet=True, log=lambda _: None)
    logs = []
    grid = ["transport.tau=0.5,inf"]
    parallel = run_sweep(config, tmp_path / "s2", grid, [0, 1], jobs=2, quiet=True, log=logs.append)
    assert list(parallel) == list(serial)
    for name in serial:
        # one thread per job against the default threads: only the order of float32 sums differs
        np.testing.assert_allclose(parallel[name].val_loss_by_depth, serial[name].val_loss_by_depth, rtol=1e-4)
        assert parallel[name].test_accuracy_by_depth == pytest.approx(serial[name].test_accuracy_by_depth, abs=0.02)
    assert sum("finished (test accuracy" in line for line in logs) == 4
    again = []
    run_sweep(config, tmp_path / "s2", ["transport.tau=0.5,inf"], [0, 1], jobs=2, quiet=True, log=again.append)
    assert all(line.endswith("finished, skipped") for line in again)
