"""Linear quantile regression with two parameters (slope and intercept)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["quantile_line"]

#: Search interval for the slope. Hölder exponents of interest lie in (0, 1]; the wide
#: interval lets a badly specified scale range show up as an odd slope instead of a clamp.
SLOPE_BOUNDS = (-10.0, 10.0)


def quantile_line(u: np.ndarray, v: np.ndarray, q: float) -> tuple[float, float]:
    r"""Slope and intercept of the ``q``-th regression quantile of ``v`` on ``u``.

    Minimises the pinball loss :math:`\sum_i \rho_q(v_i - a u_i - c)` with
    :math:`\rho_q(z) = \max(q z, (q - 1) z)` (Koenker and Bassett, ``koenker1978``). For a
    fixed slope the best intercept is the ``q``-quantile of :math:`v - a u` (an order
    statistic), and the profiled loss is convex in the slope (a partial minimum of a jointly
    convex function), so a bounded scalar search finds it; each evaluation is O(N).

    Parameters
    ----------
    u, v : ndarray of shape (N,)
        Regressor and response.
    q : float
        Quantile level in (0, 1).

    Returns
    -------
    slope, intercept : float
    """

    def intercept(slope):
        return np.quantile(v - slope * u, q, method="inverted_cdf")

    def loss(slope):
        z = v - slope * u
        z = z - np.quantile(z, q, method="inverted_cdf")
        return float(np.sum(np.maximum(q * z, (q - 1.0) * z)))

    slope = minimize_scalar(loss, bounds=SLOPE_BOUNDS, method="bounded", options={"xatol": 1e-6}).x
    return float(slope), float(intercept(slope))
