"""Small, fast toy configurations for the trainer tests, and one trained conv run shared by the readers' tests."""

from __future__ import annotations

import pytest

from otblocks import load_config


def toy_config(*overrides: str):
    """Moons, 200 training points, 4 blocks of the plane, few epochs: trains in about a second."""
    base = [
        "data.name=moons",
        "data.n_train=200",
        "data.n_val=200",
        "data.n_test=200",
        "data.noise=0.1",
        "model.depth=4",
        "model.hidden=32",
        "train.epochs=3",
        "train.batch_size=25",
        "train.lr=0.05",
    ]
    return load_config(None, base + list(overrides))


@pytest.fixture
def make_config():
    return toy_config


@pytest.fixture(scope="session")
def digits_conv_run(tmp_path_factory):
    """A tiny conv ResNet trained on scikit-learn's digits: block 1 has stride 2 and more channels (about a second).

    Shared by the analysis and features tests, which write only files of their own names into it.
    """
    pytest.importorskip("sklearn")
    from otblocks import train

    config = load_config(
        None,
        [
            "data.name=digits",
            "data.per_class=10",
            "model.kind=resnet",
            "model.stem_channels=4",
            "model.stage_blocks=[1, 2]",
            "model.stage_channels=[4, 8]",
            "model.depth=3",
            "model.split_points=[1]",
            "model.head=conv",
            "transport.tau=1.0",
            "train.epochs=1",
            "train.batch_size=50",
        ],
    )
    out = tmp_path_factory.mktemp("digits_conv") / "run"
    train(config, out, quiet=True)
    return out
