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
        ("transport.tau=-1", "'transport.tau' config key must be a positive number or inf; got -1.0"),
        ("transport.tau=0", "'transport.tau' config key must be a positive number or inf; got 0.0"),
        ("transport.tau=nan", "'transport.tau' config key must be a positive number"),
        (
            "train.regime=seq",
            "'train.regime' config key must be one of {'e2e', 'sequential', 'multilap', 'parallel'}; got 'seq'",
        ),
        (
            "model.blocks_per_module=3",
            "'model.depth' config key must be divisible by 'model.blocks_per_module' (3); got 8",
        ),
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


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("data.seed=-1", "'data.seed' config key must be an integer in [0, 2**32); got -1"),
        ("train.seed=-1", "'train.seed' config key must be an integer in [0, 2**32); got -1"),
        ("data.noise=inf", "'data.noise' config key must be a finite number >= 0; got inf"),
        ("data.noise=nan", "'data.noise' config key must be a finite number >= 0; got nan"),
        ("train.lr=inf", "'train.lr' config key must be a finite positive number; got inf"),
        ("train.lr=nan", "'train.lr' config key must be a finite positive number; got nan"),
        ("train.weight_decay=inf", "'train.weight_decay' config key must be a finite number >= 0; got inf"),
        ("model.init_gain=inf", "'model.init_gain' config key must be a finite positive number; got inf"),
        ("train.gamma=-5", "'train.gamma' config key must be a number in (0, 1]"),
        ("train.gamma=nan", "'train.gamma' config key must be a number in (0, 1]"),
        ("train.momentum=inf", "'train.momentum' config key must be a number in [0, 1); got inf"),
        ("train.label_smoothing=nan", "'train.label_smoothing' config key must be a number in [0, 1); got nan"),
        ("distributed.timeout=inf", "'distributed.timeout' config key must be a finite positive number; got inf"),
    ],
)
def test_values_that_used_to_fail_late(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "override, key",
    [("data.n_train=2000000000", "'data.n_train'"), ("model.hidden=2000000000", "'model.hidden'")],
)
def test_sizes_beyond_memory_stop_before_allocation(override, key, monkeypatch):
    # a fixed 8 GiB budget, so the test does not depend on this machine's memory
    monkeypatch.setattr("otblocks.footprint.memory_budget", lambda: (8 * 2**30, "a test budget"))
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert key in message and "GiB" in message and "8 GiB of a test budget" in message


def test_memory_estimate_is_a_floor_that_admits_the_defaults(monkeypatch):
    from otblocks.footprint import estimate_bytes

    need = estimate_bytes(load_config(None))
    # defaults: 4,000 toy points * 64 B and 8 blocks of 2*2*16+16+2 parameters * 16 B plus a batch
    assert need["data"] == 4000 * 64
    assert need["model"] == 8 * (2 * 2 * 16 + 16 + 2) * 16 + 128 * 16 * 4
    monkeypatch.setattr("otblocks.footprint.memory_budget", lambda: (2**20, "a test budget"))
    load_config(None)  # 0.3 MiB fits in 1 MiB


def test_overrides_must_be_a_list_not_a_string():
    with pytest.raises(TypeError, match="'overrides' parameter of `load_config` must be a list"):
        load_config(None, "transport.tau=0.1")


def test_config_file_not_utf8_or_a_directory(tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes("[data]\nname = 'moons' # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="must be UTF-8 text"):
        load_config(bad)
    with pytest.raises(ConfigError, match="it is a directory"):
        load_config(tmp_path)


def test_config_differences_and_allowed_changes():
    from otblocks.config import check_allowed_keys, config_differences

    old = load_config(None)
    new = load_config(None, ["train.lr=0.001", "train.device=cpu", "transport.tau=0.5"])
    assert config_differences(old, new) == ["transport.tau", "train.lr"]
    assert config_differences(old, new, ["train.lr"]) == ["transport.tau"]
    check_allowed_keys(["train.lr"])
    with pytest.raises(ConfigError, match="'--allow-change' option must name config keys"):
        check_allowed_keys(["train.learning_rate"])


def test_train_refuses_a_dict_config(tmp_path):
    from otblocks import train

    with pytest.raises(TypeError, match="'config' parameter of `train` must be a RunConfig"):
        train({"train": {"epochs": 1}}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_override_of_per_class_replaces_the_files_train_fraction(tmp_path):
    # issue 12: --set data.per_class=N on a config that sets train_fraction used to be refused
    path = tmp_path / "c.toml"
    path.write_text('[data]\nname = "digits"\ntrain_fraction = 0.5\n')
    config = load_config(path, ["data.per_class=20"])
    assert (config.data.per_class, config.data.train_fraction) == (20, 1.0)
    config = load_config(path, [])
    assert (config.data.per_class, config.data.train_fraction) == (0, 0.5)
    with pytest.raises(ConfigError, match="data.per_class"):  # both given at once: still one of them
        load_config(path, ["data.per_class=20", "data.train_fraction=0.5"])


def test_relevant_dict_drops_the_data_keys_a_data_set_does_not_use():
    # issue 12: a report of an MNIST run listed the toy keys (n_classes = 2)
    image = load_config(None, ["data.name=digits", "model.kind=resnet", "model.depth=2"]).relevant_dict()
    toy = load_config(None, ["data.name=moons"]).relevant_dict()
    assert "n_classes" not in image["data"] and "noise" not in image["data"] and "per_class" in image["data"]
    assert "per_class" not in toy["data"] and "root" not in toy["data"] and "n_classes" in toy["data"]
    assert (
        image["model"]
        == load_config(None, ["data.name=digits", "model.kind=resnet", "model.depth=2"]).to_dict()["model"]
    )
