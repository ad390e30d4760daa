"""Reading a finished run back: its configuration, trained network, data and summary."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import RunConfig, config_from_dict
from .data import DataBundle, build_data
from .errors import RunDirError
from .models import BlockwiseNet, build_model
from .rundir import RunPaths, read_json
from .training import RunSummary, load_checkpoint

__all__ = ["LoadedRun", "load_run"]


@dataclass(frozen=True)
class LoadedRun:
    """A finished run, loaded.

    Attributes
    ----------
    path : Path
    config : RunConfig
    summary : RunSummary
    net : BlockwiseNet
        The trained network, in eval mode, on the requested device.
    data : DataBundle
        The run's data splits, rebuilt from its configuration.
    """

    path: Path
    config: RunConfig
    summary: RunSummary
    net: BlockwiseNet
    data: DataBundle


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Load the finished run in ``run_dir``.

    Raises
    ------
    RunDirError
        When the directory does not exist or holds no finished run (no ``summary.json``).
    """
    paths = RunPaths(run_dir)
    if not paths.root.is_dir():
        raise RunDirError(f"The run directory '{paths.root}' does not exist.")
    if not paths.summary.exists() or not paths.checkpoint.exists() or not paths.config.exists():
        raise RunDirError(
            f"The run directory '{paths.root}' holds no finished run (no summary.json); "
            "finish it with `otblocks train CONFIG --out DIR --resume`."
        )
    config = config_from_dict(tomllib.loads(paths.config.read_text()))
    data = build_data(config.data)
    net = build_model(config.model, data.input_shape, data.n_classes)
    net.load_state_dict(load_checkpoint(paths.checkpoint)["trainer"]["model"])
    net.to(device).eval()
    return LoadedRun(paths.root, config, RunSummary(**read_json(paths.summary)), net, data)
