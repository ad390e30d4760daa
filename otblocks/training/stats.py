"""Running sums of a module's losses over an epoch, kept on the device (no sync per step)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Accumulator", "EpochStats", "penalty_ratio"]


def penalty_ratio(penalty: float, task_loss: float) -> float:
    """``penalty / task_loss``: how hard the penalty pressed next to the task loss.

    0 without penalty, ``inf`` for a positive penalty over a zero task loss.
    """
    if penalty == 0.0:
        return 0.0
    return penalty / task_loss if task_loss > 0 else math.inf


@dataclass(frozen=True)
class EpochStats:
    r"""Means over the samples of one epoch (or one evaluation pass) for one module.

    Attributes
    ----------
    n : int
        Samples seen.
    loss : float
        ``task_loss + penalty``.
    task_loss : float
        Cross-entropy of the module's head.
    penalty : float
        The term :math:`c/(2\tau)` added to the loss (0 when :math:`\tau = \infty`).
    transport_cost : float
        The transport cost :math:`c` itself (see :mod:`otblocks.transport`), measured whatever :math:`\tau`.
    accuracy : float
        Fraction of correct predictions of the module's head.
    """

    n: int
    loss: float
    task_loss: float
    penalty: float
    transport_cost: float
    accuracy: float

    @property
    def penalty_ratio(self) -> float:
        """:func:`penalty_ratio` of these means."""
        return penalty_ratio(self.penalty, self.task_loss)

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
        self,
        task: torch.Tensor,
        penalty: torch.Tensor | float,
        cost: torch.Tensor,
        logits: torch.Tensor,
        y: torch.Tensor,
    ) -> None:
        """Record one batch: its mean task loss, mean penalty (a tensor, or a float such as
        0.0 without penalty), mean transport cost :math:`c`, and the logits' predictions of ``y``."""
        penalty = penalty.detach() if isinstance(penalty, torch.Tensor) else float(penalty)
        self._values.append((task.detach(), penalty, cost.detach()))
        self._predictions.append(logits.detach().argmax(dim=1))
        self._labels.append(y)
        self._counts.append(y.shape[0])
        self.n += y.shape[0]

    def result(self) -> EpochStats:
        if not self._values:
            raise ValueError("No batch was accumulated: the split is empty.")
        counts = torch.tensor(self._counts, dtype=torch.float64)
        task, penalty, cost = (float((_column(c) * counts).sum()) / self.n for c in zip(*self._values, strict=True))
        correct = int((torch.cat(self._predictions) == torch.cat(self._labels)).sum())
        return EpochStats(self.n, task + penalty, task, penalty, cost, correct / self.n)


def _column(values: tuple[torch.Tensor | float, ...]) -> torch.Tensor:
    """One value per batch as float64 on the CPU (one device sync for tensors)."""
    if all(isinstance(v, float) for v in values):
        return torch.tensor(values, dtype=torch.float64)
    device = next(v.device for v in values if isinstance(v, torch.Tensor))
    stacked = torch.stack(
        [v.reshape(()).float() if isinstance(v, torch.Tensor) else torch.tensor(v, device=device) for v in values]
    )
    return stacked.double().cpu()
