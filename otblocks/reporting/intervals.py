r"""Means and Student-t confidence intervals over seeds.

For values :math:`v_1, \dots, v_n` the interval is

.. math::

    \bar v \pm t_{1-\alpha/2,\,n-1}\, \frac{s}{\sqrt{n}},

with :math:`s` the sample standard deviation (``ddof = 1``) and :math:`1-\alpha` the
confidence. With :math:`n = 1` the interval is undefined (NaN bounds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

__all__ = ["Interval", "t_interval"]


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with a confidence interval ``[low, high]`` (NaN when ``n < 2``)."""

    mean: float
    low: float
    high: float
    n: int
    std: float
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_dict(self) -> dict:
        return asdict(self)


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The Student-t interval of the mean of ``values`` at ``confidence``."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(
            f"The 'values' parameter of `t_interval` must be a non-empty 1-D list of finite numbers; got {values!r}."
        )
    if not 0 < confidence < 1:
        raise ValueError(f"The 'confidence' parameter of `t_interval` must be in (0, 1); got {confidence!r}.")
    mean = float(v.mean())
    if v.size < 2:
        return Interval(mean, math.nan, math.nan, 1, math.nan, confidence)
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=v.size - 1)) * std / math.sqrt(v.size)
    return Interval(mean, mean - half, mean + half, int(v.size), std, confidence)
