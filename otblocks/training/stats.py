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
    """Sums ``n``-weighted batch means; :meth:`result` syncs once."""

    def __init__(self) -> None:
        self.n = 0
        self._sums: torch.Tensor | None = None

    def add(self, task: torch.Tensor, transport: torch.Tensor, kinetic: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        n = y.shape[0]
        correct = (logits.argmax(dim=1) == y).sum()
        row = torch.stack([task.detach().float() * n, transport.detach().float() * n, kinetic.detach().float() * n, correct.float()])
        self._sums = row if self._sums is None else self._sums + row
        self.n += n

    def result(self) -> EpochStats:
        if self._sums is None:
            raise ValueError("No batch was accumulated: the split is empty.")
        task, transport, kinetic, correct = (self._sums / self.n).tolist()
        return EpochStats(self.n, task + transport, task, transport, kinetic, correct)
