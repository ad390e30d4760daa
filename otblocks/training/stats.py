"""Running sums of a module's losses over an epoch, kept on the device (no sync per step)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["EpochStats", "Accumulator"]


@dataclass(frozen=True)
class EpochStats:
    r"""Means over the samples of one epoch (or one evaluation pass) for one module.

    Attributes
    ----------
    n : int
        Samples seen.
    loss : float
        ``task_loss + transport``.
    task_loss : float
        Cross-entropy of the module's head.
    transport : float
        The penalty :math:`c/(2\tau)` (0 when :math:`\tau = \infty`).
    kinetic : float
        The cost :math:`c` itself (see :mod:`otblocks.transport`), measured whatever :math:`\tau`.
    accuracy : float
        Fraction of correct predictions of the module's head.
    """

    n: int
    loss: float
    task_loss: float
    transport: float
    kinetic: float
    accuracy: float

    @property
    def finite(self) -> bool:
        """Whether the loss is a finite number."""
        return math.isfinite(self.loss)


class Accumulator:
    """Keeps every batch's means and predictions on the device (no sync per step); :meth:`result` syncs once.

    A step costs one small kernel (the argmax); the ``n``-weighted sums and the count of
    correct predictions are taken at the end of the epoch, in float64.
    """

    def __init__(self) -> None:
        self.n = 0
        self._counts: list[int] = []
        self._values: list[tuple[torch.Tensor, torch.Tensor | float, torch.Tensor]] = []
        self._predictions: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def add(
        self, task: torch.Tensor, transport: torch.Tensor | float, kinetic: torch.Tensor, logits: torch.Tensor, y: torch.Tensor
    ) -> None:
        """Record one batch: its mean task loss, mean penalty (a tensor, or a float such as
        0.0 without penalty), mean cost :math:`c`, and the logits' predictions of ``y``."""
        transport = transport.detach() if isinstance(transport, torch.Tensor) else float(transport)
        self._values.append((task.detach(), transport, kinetic.detach()))
        self._predictions.append(logits.detach().argmax(dim=1))
        self._labels.append(y)
        self._counts.append(y.shape[0])
        self.n += y.shape[0]

    def result(self) -> EpochStats:
        if not self._values:
            raise ValueError("No batch was accumulated: the split is empty.")
        counts = torch.tensor(self._counts, dtype=torch.float64)
        task, transport, kinetic = (float((_column(c) * counts).sum()) / self.n for c in zip(*self._values))
        correct = int((torch.cat(self._predictions) == torch.cat(self._labels)).sum())
        return EpochStats(self.n, task + transport, task, transport, kinetic, correct / self.n)


def _column(values: tuple[torch.Tensor | float, ...]) -> torch.Tensor:
    """One value per batch as float64 on the CPU (one device sync for tensors)."""
    if all(isinstance(v, float) for v in values):
        return torch.tensor(values, dtype=torch.float64)
    device = next(v.device for v in values if isinstance(v, torch.Tensor))
    stacked = torch.stack([v.reshape(()).float() if isinstance(v, torch.Tensor) else torch.tensor(v, device=device) for v in values])
    return stacked.double().cpu()
