"""otblocks: block-wise training of residual networks with a transport penalty.

The public API: load a configuration, train it into a run directory, load the run back.

>>> from otblocks import load_config, train                        # doctest: +SKIP
>>> summary = train(load_config("configs/moons_sequential.toml"), "runs/moons")  # doctest: +SKIP
"""

from .config import DataConfig, ModelConfig, RunConfig, TrainConfig, TransportConfig, load_config
from .errors import (
    BrokenFileError,
    ConfigError,
    DataNotFoundError,
    FileSystemError,
    LockedError,
    NonFiniteLossError,
    OtblocksError,
    RunDirError,
)
from .models import BlockModule, BlockwiseNet, build_model
from .schedules import tau_schedule
from .trained import LoadedRun, load_run
from .training import RunSummary, train
from .transport import Penalty, penalty_weight, transport_cost

__version__ = "0.1.0"

__all__ = [
    "RunConfig",
    "DataConfig",
    "ModelConfig",
    "TransportConfig",
    "TrainConfig",
    "load_config",
    "train",
    "RunSummary",
    "load_run",
    "LoadedRun",
    "build_model",
    "BlockwiseNet",
    "BlockModule",
    "transport_cost",
    "Penalty",
    "penalty_weight",
    "tau_schedule",
    "OtblocksError",
    "ConfigError",
    "RunDirError",
    "DataNotFoundError",
    "NonFiniteLossError",
    "BrokenFileError",
    "FileSystemError",
    "LockedError",
]
