r"""The minimizing-movement checks across depth (claim 3).

:math:`\rho_{k+1} = T_k \# \rho_k` solves
:math:`\arg\min_\rho Z(\rho) + W_2^2(\rho, \rho_k) / (2\tau_k)` with
:math:`Z(\mu) = \min_F \mathcal L(F, \mu)`. Measured: the auxiliary loss by depth (the trained
head's cross-entropy, an upper estimate of :math:`Z(\rho_k)`), the per-module step
:math:`W_2(\rho_k, \rho_{k+1})` against :math:`\tau_k`, and the path length
:math:`\sum_k W_2(\rho_k, \rho_{k+1})` against :math:`W_2(\rho_0, \rho_K)`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..models import BlockwiseNet

__all__ = ["MinimizingMovement", "head_losses", "minimizing_movement"]


@dataclass(frozen=True)
class MinimizingMovement:
    r"""The claim-3 numbers of one run.

    Attributes
    ----------
    loss_by_depth, accuracy_by_depth : list of float
        Cross-entropy (nats) and accuracy of head :math:`k` on the analysed points, per depth.
    loss_increases : int
        How often the loss rises from one depth to the next.
    step_w2 : list of float or None
        :math:`W_2(\rho_k, \rho_{k+1})` per module (feature units); ``None`` where not measured.
    tau : list of float
        :math:`\tau_k` of every module.
    path_length : float or None
        :math:`\sum_k W_2(\rho_k, \rho_{k+1})`, when every step was measured.
    w2_start_end : float or None
        :math:`W_2(\rho_0, \rho_K)`, when the stem's output and the last block's output have one dimension.
    w2_start_end_ci : tuple of float or None
        Subsampling interval of ``w2_start_end`` (:attr:`analysis.WassersteinResult.w2_ci`: the
        sampling variability of the estimate, not its bias).
    w2_start_end_bias : str or None
        The known direction of that estimate's bias (:attr:`analysis.WassersteinResult.bias`).
    """

    loss_by_depth: list[float]
    accuracy_by_depth: list[float]
    loss_increases: int
    step_w2: list[float | None]
    tau: list[float]
    path_length: float | None
    w2_start_end: float | None
    w2_start_end_ci: tuple[float, float] | None = None
    w2_start_end_bias: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def head_losses(
    net: BlockwiseNet, x: torch.Tensor, y: torch.Tensor, device: torch.device
) -> tuple[list[float], list[float]]:
    """Mean cross-entropy and accuracy of every depth's head on ``(x, y)`` (batches of 512, no grad)."""
    losses, correct = np.zeros(net.n_modules), np.zeros(net.n_modules)
    with torch.no_grad():
        for start in range(0, len(y), 512):
            xb, yb = x[start : start + 512].to(device), y[start : start + 512].to(device)
            for k, logits in enumerate(net.forward_all(xb)):
                losses[k] += F.cross_entropy(logits.float(), yb, reduction="sum").item()
                correct[k] += (logits.argmax(1) == yb).sum().item()
    return (losses / len(y)).tolist(), (correct / len(y)).tolist()


def minimizing_movement(
    loss: Sequence[float],
    accuracy: Sequence[float],
    steps: Sequence[float | None],
    taus: Sequence[float],
    w2_start_end: float | None,
    w2_start_end_ci: tuple[float, float] | None = None,
    w2_start_end_bias: str | None = None,
) -> MinimizingMovement:
    """Assemble the claim-3 numbers from the head losses and the modules' :math:`W_2` steps."""
    return MinimizingMovement(
        loss_by_depth=list(loss),
        accuracy_by_depth=list(accuracy),
        loss_increases=int(sum(b > a for a, b in itertools.pairwise(loss))),
        step_w2=list(steps),
        tau=list(taus),
        path_length=float(sum(steps)) if all(s is not None for s in steps) else None,
        w2_start_end=w2_start_end,
        w2_start_end_ci=tuple(w2_start_end_ci) if w2_start_end_ci is not None else None,
        w2_start_end_bias=w2_start_end_bias,
    )
