"""Aggregation of runs over seeds, tables, and the figures of the reports.

Figures live in :mod:`otblocks.reporting.figures` (matplotlib is imported only there).
"""

from .compare import Comparison, GroupResult, PairedDifference, compare_runs, expand_run_dirs
from .intervals import Interval, t_interval

__all__ = ["Comparison", "GroupResult", "PairedDifference", "compare_runs", "expand_run_dirs", "Interval", "t_interval"]
