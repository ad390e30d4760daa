"""Shared fixtures: a seed, the devices to test on, matplotlib without a display."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)  # the test models are tiny: one thread is fastest and avoids oversubscription

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def seed() -> int:
    np.random.seed(0)  # noqa: NPY002 - pins code under test that still draws from the global state
    torch.manual_seed(0)
    return 0


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
