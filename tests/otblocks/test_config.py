"""Configuration: defaults, overrides, and one-line errors for bad values."""

from __future__ import annotations

import math

import pytest

from otblocks import ConfigError, load_config
from otblocks.config import apply_overrides


def test_defaults_and_overrides():
    config = load_config(None, ["transport.tau=0.5", "data.name=spirals", "train.regime=parallel"])
    assert config.transport.tau == 0.5
    assert config.data.name == "spirals"
    assert config.train.regime == "parallel"
    assert config.n_modules == config.model.depth


@pytest.mark.parametrize("text", ["inf", '"inf"', "+inf", "Infinity"])
def test_tau_inf_spellings(text):
    assert load_config(None, [f"transport.tau={text}"]).transport.tau == math.inf


def test_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\ndepth = 6\nblocks_per_module = 2\n[transport]\ntau = "inf"\nschedule = "varying"\n')
    config = load_config(path)
    assert config.n_modules == 3
    assert config.transport.tau == math.inf


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("model.dept=3", "Unknown config key 'model.dept'"),
        ("modle.depth=3", "Unknown config section [modle]"),
        ("model.depth=two", "'model.depth' config key must be an integer; got 'two'"),
        ("model.depth=2.5", "'model.depth' config key must be an integer; got 2.5"),
        ("transport.tau=-1", "'transport.tau' config key must be a positive number; got -1.0"),
        ("transport.tau=0", "'transport.tau' config key must be a positive number; got 0.0"),
        ("transport.tau=nan", "'transport.tau' config key must be a positive number"),
        ("train.regime=seq", "'train.regime' config key must be one of {'e2e', 'sequential', 'multilap', 'parallel'}; got 'seq'"),
        ("model.blocks_per_module=3", "'model.depth' config key must be divisible by 'model.blocks_per_module' (3); got 8"),
        ("train.epochs=0", "'train.epochs' config key must be a positive integer; got 0"),
        ("data.name=imagenet", "'data.name' config key must be one of"),
        ("transport.schedule=list", "'transport.taus' config key must be a list of 8 values"),
        ("train.nesterov=1", "'train.nesterov' config key must be true or false; got 1"),
    ],
)
def test_bad_values_name_key_value_and_allowed(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_multilap_needs_divisible_epochs():
    with pytest.raises(ConfigError, match="'train.epochs' config key must be divisible by 'train.laps' \\(3\\)"):
        load_config(None, ["train.regime=multilap", "train.laps=3", "train.epochs=10"])


def test_laps_only_in_multilap():
    with pytest.raises(ConfigError, match="'train.laps' config key must be 1 unless"):
        load_config(None, ["train.laps=2"])


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["tau=1"])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
