"""The stability bound of a composition of blocks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._results import Result

__all__ = ["compose_bounds", "ComposedBound"]


@dataclass(frozen=True)
class ComposedBound(Result):
    r"""Stability bound of :math:`T = T_K \circ \dots \circ T_1` from the blocks' bounds.

    Each block satisfies :math:`\lVert T_k x - T_k y \rVert \le f_k(\lVert x - y \rVert)`
    with :math:`f_k(t) = 2 \varepsilon_k + C_k t^{\eta_k}`, nondecreasing in :math:`t`, so

    .. math::

        \lVert T x - T y \rVert \le b_K(r), \qquad b_0(r) = r, \quad
        b_k(r) = 2 \varepsilon_k + C_k\, b_{k-1}(r)^{\eta_k}, \qquad r = \lVert x - y \rVert.

    Attributes
    ----------
    eps : tuple of float
        Per-block :math:`\varepsilon_k` (units of the block's output), first block first.
    C : tuple of float
        Per-block constants :math:`C_k`.
    eta : tuple of float
        Per-block exponents :math:`\eta_k`.
    exponent : float
        :math:`\prod_k \eta_k`, the exponent of the composed bound.
    constant : float
        :math:`C = C_K\, C_{K-1}^{\eta_K} \cdots C_1^{\eta_K \cdots \eta_2}`: with all
        :math:`\varepsilon_k = 0` the bound is exactly :math:`C r^{\prod \eta_k}`, and with
        positive :math:`\varepsilon_k` it is asymptotic to it for large :math:`r`.
    floor : float
        :math:`b_K(0)`, the part of the bound that does not vanish as :math:`r \to 0`
        (accumulated :math:`\varepsilon_k`), in output units.
    """

    eps: tuple
    C: tuple
    eta: tuple
    exponent: float
    constant: float
    floor: float

    def evaluate(self, r):
        r"""The composed bound :math:`b_K(r)`.

        Parameters
        ----------
        r : float or array-like
            Input distances :math:`\lVert x - y \rVert` (>= 0).

        Returns
        -------
        float or ndarray
            Bound on :math:`\lVert T x - T y \rVert`, same shape as ``r``.
        """
        r_arr = np.asarray(r, dtype=np.float64)
        if not np.all(np.isfinite(r_arr)) or np.any(r_arr < 0):
            raise ValueError(
                f"The 'r' parameter of `ComposedBound.evaluate` must hold finite distances >= 0; got {r!r}."
            )
        b = _chain(self.eps, self.C, self.eta, r_arr)
        return float(b) if b.ndim == 0 else b


def _chain(eps, C, eta, r):
    """:math:`b_K(r)` by the recursion, for an array ``r``."""
    b = r
    for e, c, h in zip(eps, C, eta):
        b = 2.0 * e + c * b**h
    return b


def compose_bounds(fits):
    r"""Compose per-block stability bounds into the bound of the whole composition.

    Parameters
    ----------
    fits : sequence of HolderFit
        One per block, in application order (the first block first). Any objects with
        attributes ``eps`` (>= 0), ``C`` (>= 0) and ``eta`` (> 0) work, e.g. the
        :class:`HolderFit` of each block with its ``eps`` from :func:`map_vs_ot`.

    Returns
    -------
    ComposedBound
        Evaluate it with :meth:`ComposedBound.evaluate`.

    Notes
    -----
    Each :math:`f_k` is nondecreasing, so :math:`\lVert T_k \cdots T_1 x - T_k \cdots T_1 y
    \rVert \le f_k(b_{k-1}(r))` by induction. The exponent multiplies: ten blocks with
    :math:`\eta = 0.9` give :math:`0.9^{10} \approx 0.35`, and the floor accumulates the
    :math:`\varepsilon_k` amplified by the later blocks, so a composed bound is only as
    useful as its blocks are close to their OT maps.

    Examples
    --------
    >>> from types import SimpleNamespace as Fit
    >>> from analysis import compose_bounds
    >>> bound = compose_bounds([Fit(eps=0.0, C=2.0, eta=0.5), Fit(eps=0.0, C=3.0, eta=0.5)])
    >>> bound.exponent, round(bound.constant, 12), round(bound.evaluate(16.0), 12)
    (0.25, 4.242640687119, 8.485281374239)
    """
    func = "compose_bounds"
    if isinstance(fits, (str, bytes)) or not isinstance(fits, Sequence) or not fits:
        raise TypeError(
            f"The 'fits' parameter of `{func}` must be a non-empty sequence of HolderFit "
            f"(objects with eps, C and eta); got {fits!r}."
        )
    eps, C, eta = [], [], []
    for k, fit in enumerate(fits):
        try:
            values = (float(fit.eps), float(fit.C), float(fit.eta))
        except (AttributeError, TypeError) as exc:
            raise TypeError(
                f"The 'fits[{k}]' parameter of `{func}` must have numeric attributes eps, C "
                f"and eta; got {type(fit).__name__}."
            ) from exc
        e, c, h = values
        if not (np.isfinite(values).all() and e >= 0 and c >= 0 and h > 0):
            raise ValueError(
                f"The 'fits[{k}]' parameter of `{func}` must have finite eps >= 0, C >= 0 and "
                f"eta > 0; got eps={e!r}, C={c!r}, eta={h!r}."
            )
        eps.append(e)
        C.append(c)
        eta.append(h)
    constant = 1.0
    for c, h in zip(C, eta):
        constant = c * constant**h
    return ComposedBound(
        eps=tuple(eps),
        C=tuple(C),
        eta=tuple(eta),
        exponent=float(np.prod(eta)),
        constant=float(constant),
        floor=float(_chain(eps, C, eta, np.float64(0.0))),
    )
