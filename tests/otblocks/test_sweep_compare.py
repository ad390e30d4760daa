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


def _fake_run(path, tau, seed, test):
    path.mkdir(parents=True)
    (path / "config.toml").write_text(f"[transport]\ntau = {tau}\n[train]\nseed = {seed}\n")
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
    for name in ("comparison.md", "comparison.csv", "comparison.json", "accuracy_by_depth_test.png", "accuracy_by_depth_val.png"):
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
    config.write_text('[data]\nn_train = 100\nn_val = 50\nn_test = 50\n[model]\ndepth = 2\nhidden = 8\n[train]\nepochs = 1\n')
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
