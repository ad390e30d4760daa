"""The order of work of each regime, as a flat list of epochs (resume = an index into it)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorkItem", "make_plan"]


@dataclass(frozen=True)
class WorkItem:
    """One epoch of work.

    Attributes
    ----------
    lap : int
        Lap index (always 0 outside ``multilap``).
    module : int or None
        The module trained in this epoch; ``None`` when all modules train together
        (``parallel`` and ``e2e``).
    epoch : int
        The module's own epoch index, ``0 .. epochs - 1`` across laps.
    """

    lap: int
    module: int | None
    epoch: int


def make_plan(regime: str, n_modules: int, epochs: int, laps: int = 1) -> list[WorkItem]:
    """Every epoch of a run, in order.

    ``sequential``: module 0 for ``epochs`` epochs, then module 1, ...; ``multilap``: ``laps``
    passes over the modules, each giving every module ``epochs // laps`` epochs;
    ``parallel`` and ``e2e``: ``epochs`` epochs of all modules.
    """
    if regime in ("parallel", "e2e"):
        return [WorkItem(0, None, e) for e in range(epochs)]
    if regime == "sequential":
        laps = 1
    if regime not in ("sequential", "multilap"):
        raise ValueError(
            f"The 'regime' parameter must be one of {{'e2e', 'sequential', 'multilap', 'parallel'}}; got {regime!r}."
        )
    per_lap = epochs // laps
    return [
        WorkItem(lap, k, e)
        for lap in range(laps)
        for k in range(n_modules)
        for e in range(lap * per_lap, (lap + 1) * per_lap)
    ]
