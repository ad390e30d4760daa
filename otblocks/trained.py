"""A finished run loaded back from its run directory: configuration, trained network, data, summary.

The run directory's files and readers are :mod:`otblocks.rundir`'s; this module rebuilds the
objects they describe (it imports the trainer, which :mod:`otblocks.rundir` must not).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .config import RunConfig
from .data import DataBundle, build_data
from .errors import RunDirError
from .models import BlockwiseNet, build_model
from .rundir import RunPaths
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

    @property
    def paths(self) -> RunPaths:
        """The files of the run directory."""
        return RunPaths(self.path)


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
    summary = paths.read_summary()
    if not paths.checkpoint.exists() or not paths.is_run():
        raise RunDirError(
            f"The run directory '{paths.root}' holds no finished run (no {paths.checkpoint.name} or "
            f"{paths.config.name}); finish it with `otblocks train CONFIG --out DIR --resume`."
        )
    config = paths.read_config()
    data = build_data(config.data)
    net = build_model(config.model, data.input_shape, data.n_classes)
    net.load_state_dict(load_checkpoint(paths.checkpoint)["trainer"]["model"])
    net.to(device).eval()
    return LoadedRun(paths.root, config, RunSummary.from_dict(summary, str(paths.summary)), net, data)
