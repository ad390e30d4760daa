"""Every shipped configuration loads and trains (shrunk to a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otblocks import load_config, train

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))
TOY = [c for c in CONFIGS if load_config(c).data.name in ("moons", "circles", "spirals", "gaussians")]


def test_there_is_a_toy_config_for_every_regime():
    assert {load_config(c).train.regime for c in TOY} == {"e2e", "sequential", "multilap", "parallel"}


@pytest.mark.parametrize("path", TOY, ids=lambda p: p.stem)
def test_toy_config_trains(path, tmp_path):
    config = load_config(path)
    epochs = config.train.laps  # one epoch per lap keeps multilap valid
    shrunk = load_config(path, [f"train.epochs={epochs}", "data.n_train=100", "data.n_val=50", "data.n_test=50"])
    summary = train(shrunk, tmp_path / path.stem, quiet=True)
    assert len(summary.val_accuracy_by_depth) == config.n_modules


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_one_tau_convention_or_the_conversion_stated(path):
    # the per-sample convention everywhere; a config in the authors' element-mean convention
    # must say how its tau converts (tau_sample = D * tau_element) in its comment
    if load_config(path).transport.normalization != "sample":
        assert "tau_sample = D * tau_element" in path.read_text()
