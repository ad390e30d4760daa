"""Errors raised by :mod:`analysis` beyond the standard ``ValueError``/``TypeError``."""

from __future__ import annotations

__all__ = ["SolverError", "MemoryBudgetError"]


class SolverError(RuntimeError):
    """An optimal-transport solver stopped without reaching its optimum.

    Raised instead of returning a number that is not what the method promises (POT's network
    simplex returns a wrong cost, with only a warning, when it hits its iteration cap). Pass
    ``check=False`` to get the number with a status flag instead.
    """


class MemoryBudgetError(MemoryError):
    """A solve would need more memory than the ``memory_budget_gib`` the caller allowed.

    Raised before anything large is allocated. The message names the alternatives: a
    subsample, an approximation (sliced, Bures), or POT's lazy exact solver.
    """
