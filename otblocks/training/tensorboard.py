"""Optional TensorBoard scalars of a run, written beside ``metrics.jsonl`` (``train.tensorboard``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["SCALAR_FIELDS", "TensorBoardLog", "require_tensorboard"]

SCALAR_FIELDS = ("loss", "task_loss", "penalty", "transport_cost", "penalty_ratio", "accuracy", "tau", "lr")
"""The record fields written as scalars, tagged ``{field}/{split}/module_{k}``."""


def require_tensorboard() -> type:
    """TensorBoard's ``SummaryWriter``; a :class:`ConfigError` naming the extra to install when it is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "The 'train.tensorboard' config key is true but TensorBoard is not installed; "
            'pip install -e ".[tensorboard]" or set train.tensorboard = false.'
        ) from None
    return SummaryWriter


class TensorBoardLog:
    r"""The metric records as TensorBoard scalars in ``directory`` (the run's ``tensorboard/``).

    Every record of epoch ``index`` of the plan (its position; the x axis, monotone across
    modules and laps) gives one scalar per field of :data:`SCALAR_FIELDS`, tagged
    ``{field}/{split}/module_{k}``; at the end the summary's accuracies and losses by depth are
    written with the depth as the step (``summary/{name}``). A resumed run purges the events
    written after its checkpoint, as ``metrics.jsonl`` is truncated.

    Raises
    ------
    ConfigError
        When TensorBoard is not installed (``pip install -e ".[tensorboard]"``).
    """

    def __init__(self, directory: Path, start: int = 0) -> None:
        self.writer = require_tensorboard()(str(directory), purge_step=start if start else None)

    def write(self, index: int, records: list[dict[str, Any]]) -> None:
        """The scalars of epoch ``index`` of the plan."""
        for record in records:
            for name in SCALAR_FIELDS:
                self.writer.add_scalar(f"{name}/{record['split']}/module_{record['module']}", record[name], index)
        self.writer.flush()

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Accuracy, loss, transport cost and penalty ratio by depth (step = depth, 1-based)."""
        for name in (
            "val_accuracy_by_depth",
            "test_accuracy_by_depth",
            "val_loss_by_depth",
            "test_loss_by_depth",
            "val_transport_cost_by_depth",
            "val_penalty_ratio_by_module",
        ):
            for depth, value in enumerate(summary[name], start=1):
                self.writer.add_scalar(f"summary/{name}", value, depth)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
