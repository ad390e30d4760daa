"""Small, fast toy configurations for the trainer tests."""

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
