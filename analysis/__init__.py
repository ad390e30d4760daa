"""Optimal-transport measurements of trained residual blocks.

Works on arrays (numpy or torch) and callables only, so it can analyse any residual
network: :func:`collect_blocks` turns blocks and data into per-block ``(x_in, x_out)``
samples, and each measurement returns a frozen result dataclass with a ``to_dict()``.
Plotting lives in ``analysis.plot`` and is not imported here (no matplotlib at import).
"""

from . import gaussian
from .bounds import ComposedBound, compose_bounds
from .certified_ot import Certificate
from .collect import BlockSample, collect_blocks
from .distance import WassersteinResult, wasserstein
from .exceptions import MemoryBudgetError, SolverError
from .holder import HolderFit, HolderProfile, holder_fit
from .jacobian import JacobianAsymmetry, jacobian_asymmetry
from .map_comparison import MapComparison, map_vs_ot
from .sample_size import SampleSizeSeries, sample_size_series

__all__ = [
    "wasserstein",
    "WassersteinResult",
    "map_vs_ot",
    "MapComparison",
    "jacobian_asymmetry",
    "JacobianAsymmetry",
    "holder_fit",
    "HolderFit",
    "HolderProfile",
    "sample_size_series",
    "SampleSizeSeries",
    "compose_bounds",
    "ComposedBound",
    "collect_blocks",
    "BlockSample",
    "gaussian",
    "SolverError",
    "MemoryBudgetError",
    "Certificate",
]
