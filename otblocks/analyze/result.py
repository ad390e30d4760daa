"""The result of a run analysis, :class:`RunAnalysis`, and its record ``analysis.json``.

The record's schema is ``otblocks/schemas/analysis.schema.json`` (documented in
``docs/guide/analyze.md``); non-finite floats follow the tool's one JSON rule
(:func:`otblocks.rundir.jsonable`: the strings ``"inf"``, ``"-inf"``, ``"nan"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis import ComposedBound

from .measure import UnitAnalysis
from .movement import MinimizingMovement
from .options import AnalysisOptions

__all__ = ["SCHEMA_VERSION", "RunAnalysis"]

SCHEMA_VERSION = 1
"""``schema_version`` of the records written; bumped when a field changes meaning or goes away."""


@dataclass(frozen=True)
class RunAnalysis:
    """Every block and module of a finished run measured against the exact OT map.

    Attributes
    ----------
    run_dir : Path
    options : AnalysisOptions
    n : int
        Points actually used (``options.n``, or the whole split when smaller).
    regime : str
        The run's training regime.
    taus : list of float
        :math:`\\tau_k` of every module.
    blocks : tuple of UnitAnalysis
        One per residual block, in order.
    modules : tuple of UnitAnalysis
        One per module; for modules of one block, the block's measurements.
    composed_bound : ComposedBound or None
        The blocks' stability bounds composed along the depth, when every block has one.
    movement : MinimizingMovement
        The claim-3 checks.
    val_accuracy_by_depth, test_accuracy_by_depth : list of float
        From the run's summary.
    best_depth : int
        From the run's summary (chosen on validation).
    indices : ndarray of int64, shape (n,)
        Positions of the analysed points in the split (:func:`otblocks.walk.sample_points`).
    labels : ndarray of shape (n,)
        Labels of the analysed points (for the figures).
    """

    run_dir: Path
    options: AnalysisOptions
    n: int
    regime: str
    taus: list[float]
    blocks: tuple[UnitAnalysis, ...]
    modules: tuple[UnitAnalysis, ...]
    composed_bound: ComposedBound | None
    movement: MinimizingMovement
    val_accuracy_by_depth: list[float]
    test_accuracy_by_depth: list[float]
    best_depth: int
    indices: np.ndarray = field(repr=False, compare=False)
    labels: np.ndarray = field(repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """The content of ``analysis.json``."""
        o = self.options
        return {
            "schema_version": SCHEMA_VERSION,
            "run_dir": str(self.run_dir),
            "split": o.split,
            "n": self.n,
            "method": o.method,
            "seed": o.seed,
            "regime": self.regime,
            "taus": list(self.taus),
            "blocks": [b.record() for b in self.blocks],
            "modules": [m.record() for m in self.modules],
            "composed_bound": self.composed_bound.to_dict() if self.composed_bound is not None else None,
            "minimizing_movement": self.movement.to_dict(),
            "accuracy": {
                "val_accuracy_by_depth": list(self.val_accuracy_by_depth),
                "test_accuracy_by_depth": list(self.test_accuracy_by_depth),
                "best_depth": self.best_depth,
            },
        }
