r"""Schedules of :math:`\tau`: a value for each module :math:`k` (and epoch)."""

from __future__ import annotations

import math
from collections.abc import Callable

from .config import TransportConfig

__all__ = ["TauSchedule", "check_tau", "tau_schedule"]

TauSchedule = Callable[[int, int], float]
"""``schedule(k, epoch) -> tau``: the :math:`\\tau` of module ``k`` at ``epoch`` (``inf`` = no penalty)."""


def tau_schedule(cfg: TransportConfig, n_modules: int) -> TauSchedule:
    r"""The schedule that ``cfg`` describes for :math:`K` = ``n_modules`` modules.

    ``constant``: :math:`\tau` for all; ``varying``: :math:`\tau/2` for the first
    :math:`\lfloor K/2\rfloor` modules and :math:`\tau` after, as published; ``list``: ``taus[k]``;
    ``multiplier``: :math:`\tau` for all, the start of the multipliers :math:`\lambda_k` (their
    updates are :class:`otblocks.transport.Penalty`'s).
    """
    if cfg.schedule in ("constant", "multiplier"):
        values = [cfg.tau] * n_modules
    elif cfg.schedule == "varying":
        values = [cfg.tau / 2 if k < n_modules // 2 else cfg.tau for k in range(n_modules)]
    elif cfg.schedule == "list":
        values = list(cfg.taus)
    else:
        raise ValueError(
            "The 'schedule' parameter must be one of {'constant', 'varying', 'list', 'multiplier'}; "
            f"got {cfg.schedule!r}."
        )

    def schedule(k: int, epoch: int) -> float:
        return values[k]

    return schedule


def check_tau(value: float, k: int, epoch: int) -> float:
    """Validate a value returned by a user schedule."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value <= 0:
        raise ValueError(
            f"The tau schedule must return a positive number or inf; got {value!r} for module {k} at epoch {epoch}."
        )
    return float(value)
