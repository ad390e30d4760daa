r"""The run analysis: every trained block and module of a finished run against the exact OT map.

This subpackage is where the two halves of the project meet. The core of :mod:`otblocks`
(models, trainer, run directory, block walk) never imports :mod:`analysis`, and
:mod:`analysis` knows nothing of :mod:`otblocks`; only this run-analysis layer and the command
line join them. ``otblocks analyze RUN_DIR`` is :func:`analyze_run` plus printing.

The rooms:

- :mod:`~otblocks.analyze.options`: :class:`AnalysisOptions`, what is measured and how;
- :mod:`~otblocks.analyze.units`: the units (every block, then every module of several
  blocks) and their samples, from the one block walk :func:`otblocks.walk.compute_features`;
- :mod:`~otblocks.analyze.measure`: :class:`UnitAnalysis`, the measurements of one unit;
- :mod:`~otblocks.analyze.movement`: :class:`MinimizingMovement`, the checks across depth;
- :mod:`~otblocks.analyze.result`: :class:`RunAnalysis`, the whole result, and its record
  (``analysis.json``, schema ``otblocks/schemas/analysis.schema.json``);
- :mod:`~otblocks.analyze.table`: ``analysis.csv``;
- :mod:`~otblocks.analyze.figures`: the figures, drawn from the result objects
  (matplotlib is imported only there);
- :mod:`~otblocks.analyze.runner`: :func:`analyze_run`, from a run directory to its files.

Extending it. A unit's record is built from the result objects' ``to_dict``, so a field added
to :class:`analysis.MapComparison` or :class:`analysis.HolderFit` (an interval, a profile, a
solver certificate) reaches ``analysis.json`` with no change here. A new measurement of a unit
is one field of :class:`UnitAnalysis`, one call in :func:`measure_unit` and one key in
:meth:`UnitAnalysis.record` (as the probe-mode Hölder fit ``holder_probe`` was added); a new lever (a
solver, a bootstrap count) is one field of :class:`AnalysisOptions`, one argument of
:func:`analyze_run` and one option of ``otblocks analyze``. Optional keys keep
``schema_version`` at 1; changing or removing a key bumps it.
"""

from .measure import UnitAnalysis, measure_unit
from .movement import MinimizingMovement
from .options import AnalysisOptions
from .result import SCHEMA_VERSION, RunAnalysis
from .runner import analyze_run
from .units import Unit, build_units

__all__ = [
    "SCHEMA_VERSION",
    "AnalysisOptions",
    "MinimizingMovement",
    "RunAnalysis",
    "Unit",
    "UnitAnalysis",
    "analyze_run",
    "build_units",
    "measure_unit",
]
