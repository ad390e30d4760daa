"""Hölder regularity of a block: exponent, constant and how many pairs meet the bound."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._callables import as_tensor_for, eval_mode
from ._pairwise import median_spacing, pair_distances
from ._quantile import quantile_line
from ._results import Result
from ._validation import check_array, check_float, check_int, check_paired, to_numpy

__all__ = ["holder_fit", "HolderFit"]

#: Pairs needed in the scale range to fit an exponent.
_MIN_PAIRS = 10
#: Relative slack when testing the bound, so the pair that defines C counts as meeting it.
_SLACK = 1e-12


@dataclass(frozen=True)
class HolderFit(Result):
    r"""Fitted Hölder bound :math:`\lVert T x - T y \rVert \le 2 \varepsilon + C \lVert x - y
    \rVert^{\eta}` of a map on a sample, with the scale range it was measured over.

    Attributes
    ----------
    eta : float
        Exponent :math:`\eta`: fitted (upper-quantile regression of
        :math:`\log(\lVert Tx - Ty \rVert - 2\varepsilon)` on :math:`\log \lVert x - y
        \rVert`) or given.
    eta_fitted : bool
        Whether ``eta`` was fitted.
    C : float
        Smallest constant over the pairs in the scale range,
        :math:`\max (\lVert Tx - Ty \rVert - 2\varepsilon)_+ / \lVert x - y \rVert^\eta`, or
        the given one (units: output units per input unit to the power :math:`\eta`).
    C_fitted : bool
        Whether ``C`` was computed (rather than given).
    eps : float
        :math:`\varepsilon`, in output units (e.g. ``max_deviation`` of :func:`map_vs_ot`).
    quantile : float
        Quantile level of the regression that fitted ``eta``.
    scale_min : float
        Smallest :math:`\lVert x - y \rVert` (input units) of the range over which ``eta``
        and ``C`` were measured. An exponent means nothing without its range: any Lipschitz
        map is :math:`\eta`-Hölder for every :math:`\eta \le 1` on a bounded set.
    scale_max : float
        Largest :math:`\lVert x - y \rVert` of that range.
    n_pairs : int
        Pairs in the scale range (those the fit and ``C`` use).
    n_pairs_total : int
        All pairs measured, in or out of the range.
    fraction_satisfied : float
        Share of all measured pairs (in and out of the scale range) that meet the bound with
        this ``eta``, ``C`` and ``eps``; below 1 when the bound fails outside the range, or
        when ``C`` was given.
    eta_ci : tuple of float or None
        Bootstrap percentile interval of ``eta`` (points resampled with replacement, the
        whole fit repeated); None when not computed (``n_bootstrap=0``, or ``eta`` given).
    C_ci : tuple of float or None
        Same for ``C``. ``C`` is a maximum, so its bootstrap interval lies mostly below the
        sample value, and the population constant can exceed both.
    confidence : float
        Level of the intervals.
    n_bootstrap : int
        Bootstrap replicates.
    mode : str
        ``'sample'`` (pairs of sample points) or ``'probe'`` (pairs
        :math:`(x_i, x_i + \delta u)` through a callable).
    """

    eta: float
    eta_fitted: bool
    C: float
    C_fitted: bool
    eps: float
    quantile: float
    scale_min: float
    scale_max: float
    n_pairs: int
    n_pairs_total: int
    fraction_satisfied: float
    eta_ci: tuple | None
    C_ci: tuple | None
    confidence: float
    n_bootstrap: int
    mode: str

    def evaluate(self, r):
        r"""The bound :math:`2 \varepsilon + C r^\eta` at distances ``r`` (>= 0).

        Parameters
        ----------
        r : float or array-like
            Input distances.

        Returns
        -------
        float or ndarray
            Bound on the output distance, same shape as ``r``.
        """
        b = 2.0 * self.eps + self.C * np.asarray(r, dtype=np.float64) ** self.eta
        return float(b) if b.ndim == 0 else b


def holder_fit(x, tx, eta=None, eps=0.0, scales=None, *, C=None, quantile=0.99,
               n_pairs=20_000, n_bootstrap=100, confidence=0.95, seed=0, batch_size=1024):
    r"""Fit the Hölder bound of a map from pairs of points.

    .. math::

        \lVert T(x) - T(y) \rVert \le 2 \varepsilon + C \lVert x - y \rVert^{\eta},
        \qquad C(\eta, \varepsilon) = \max_{(x, y)}
        \frac{(\lVert T(x) - T(y) \rVert - 2 \varepsilon)_+}{\lVert x - y \rVert^{\eta}}

    where the maximum runs over the measured pairs with :math:`\lVert x - y \rVert` in
    ``[scale_min, scale_max]``, and :math:`\varepsilon` is how far the block is from the OT
    map (the stability bound of METHOD.md, claim 2).

    Parameters
    ----------
    x : array-like or torch.Tensor of shape (n, d)
        Points (``(n, ...)`` in probe mode).
    tx : array-like or torch.Tensor of shape (n, d), or callable
        The map's values at ``x`` (sample mode), or the map itself (probe mode: pairs
        :math:`(x_i, x_i + \delta u)` with random unit directions :math:`u`).
    eta : float, optional
        Exponent; fitted when None.
    eps : float, default=0.0
        :math:`\varepsilon` (output units, >= 0).
    scales : sequence of float, optional
        Sample mode: ``(scale_min, scale_max)``; default from the median nearest-neighbour
        distance of ``x`` (the sampling resolution; estimated from 256 random points when
        there are more) to the largest pair distance. Probe
        mode: the radii :math:`\delta` (at least two distinct positive values); default
        ``geomspace(1e-3, 1, 7)`` times the RMS distance of ``x`` to its mean.
    C : float, optional
        A constant to test instead of computing the smallest one.
    quantile : float, default=0.99
        Level of the regression quantile that traces the upper envelope.
    n_pairs : int, default=20000
        Pairs to measure (sample mode: all pairs when there are fewer; probe mode: split
        over the scales).
    n_bootstrap : int, default=100
        Bootstrap replicates for ``eta_ci`` and ``C_ci`` (0 to skip).
    confidence : float, default=0.95
        Level of the intervals.
    seed : int, default=0
        Seed of the pairs, directions and bootstrap.
    batch_size : int, default=1024
        Points per forward pass of the callable (probe mode).

    Returns
    -------
    HolderFit
        Exponent, constant, scale range, pair counts and intervals.

    Notes
    -----
    The exponent is the slope of a high regression quantile of
    :math:`\log(\lVert Tx - Ty \rVert - 2\varepsilon)` against :math:`\log \lVert x - y
    \rVert` over pairs in the scale range (pairs within :math:`2\varepsilon` of each other
    are left out). The quantile is an estimate of the upper envelope: it is biased towards
    1 (the local, Lipschitz behaviour of most pairs) when the extremal pairs are rare, which
    a higher ``quantile`` with more ``n_pairs`` reduces. Below the sampling resolution
    there are no pairs to measure, hence the default ``scale_min``; the probe mode reaches
    smaller scales, down to the round-off of the block's dtype (about :math:`10^{-4}` of
    the data's scale in float32).

    ``C`` is a sample maximum, hence biased low; a block whose constant is attained on a
    set of small measure (e.g. antipodal pairs) needs many pairs to show it.

    References
    ----------
    Hölder regularity of OT maps: ``caffarelli1992``, ``figalli2017``; regression
    quantiles: ``koenker1978``; bootstrap: ``efron1979``.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis import holder_fit
    >>> x = np.linspace(0.0, 1.0, 50)[:, None]
    >>> fit = holder_fit(x, 3 * x, n_bootstrap=0)
    >>> round(fit.eta, 4), round(fit.C, 4)
    (1.0, 3.0)
    """
    func = "holder_fit"
    probe = callable(tx) and not hasattr(tx, "shape")
    if probe:
        x = check_array(x, name="x", func=func, max_ndim=None)
    else:
        x, tx = check_paired(x, tx, func=func)
    if eta is not None:
        eta = check_float(eta, name="eta", func=func, low=0.0, low_open=True)
    eps = check_float(eps, name="eps", func=func, low=0.0)
    if C is not None:
        C = check_float(C, name="C", func=func, low=0.0)
    quantile = check_float(quantile, name="quantile", func=func, low=0.0, high=1.0,
                           low_open=True, high_open=True)
    n_pairs = check_int(n_pairs, name="n_pairs", func=func, low=_MIN_PAIRS)
    n_bootstrap = check_int(n_bootstrap, name="n_bootstrap", func=func, low=0)
    confidence = check_float(confidence, name="confidence", func=func, low=0.0, high=1.0,
                             low_open=True, high_open=True)
    seed = check_int(seed, name="seed", func=func, low=0)
    batch_size = check_int(batch_size, name="batch_size", func=func, low=1)
    scales = _check_scales(scales, probe)
    rng = np.random.default_rng(seed)

    if probe:
        r, s, lo, hi = _probe_pairs(tx, x, scales, n_pairs, batch_size, rng)
        in_range = np.ones(r.shape, dtype=bool)
    else:
        a, c = _index_pairs(x.shape[0], n_pairs, rng)
        r, s = pair_distances(x, a, c), pair_distances(tx, a, c)
        lo, hi = _sample_scales(x, r, scales)
        in_range = (r >= lo) & (r <= hi) & (r > 0)
    eta_hat, C_hat = _fit(r[in_range], s[in_range], eta, eps, C, quantile, strict=True)

    positive = r > 0
    bound = 2.0 * eps + C_hat * r[positive] ** eta_hat
    satisfied = float(np.mean(s[positive] <= bound * (1.0 + _SLACK)))

    def replicate():
        """The whole fit on a resample of the points (with replacement)."""
        if probe:  # rows of (r, s) are anchor points, columns the scales
            rows = rng.integers(0, r.shape[0], r.shape[0])
            return _fit(r[rows].ravel(), s[rows].ravel(), eta, eps, C, quantile, strict=False)
        pts = rng.integers(0, x.shape[0], x.shape[0])
        r_b, s_b = pair_distances(x, pts[a], pts[c]), pair_distances(tx, pts[a], pts[c])
        keep = (r_b >= lo) & (r_b <= hi) & (r_b > 0)
        return _fit(r_b[keep], s_b[keep], eta, eps, C, quantile, strict=False)

    eta_ci = C_ci = None
    if n_bootstrap:
        reps = np.array([replicate() for _ in range(n_bootstrap)])  # (B, 2)
        levels = [50 * (1 - confidence), 50 * (1 + confidence)]
        ok = np.isfinite(reps).all(axis=1)
        if ok.any():
            if eta is None:
                eta_ci = tuple(float(v) for v in np.percentile(reps[ok, 0], levels))
            if C is None:
                C_ci = tuple(float(v) for v in np.percentile(reps[ok, 1], levels))
    return HolderFit(
        eta=float(eta_hat), eta_fitted=eta is None, C=float(C_hat), C_fitted=C is None,
        eps=eps, quantile=quantile, scale_min=float(lo), scale_max=float(hi),
        n_pairs=int(in_range.sum()), n_pairs_total=int(r.size), fraction_satisfied=satisfied,
        eta_ci=eta_ci, C_ci=C_ci, confidence=confidence, n_bootstrap=n_bootstrap,
        mode="probe" if probe else "sample",
    )


def _index_pairs(n, n_pairs, rng):
    """Index pairs ``(a, c)``, ``a != c``: all of them if few enough, else uniform draws."""
    if n * (n - 1) // 2 <= n_pairs:
        return np.triu_indices(n, 1)
    a = rng.integers(0, n, n_pairs)
    return a, (a + rng.integers(1, n, n_pairs)) % n


def _check_scales(scales, probe):
    """Validated ``scales`` as a float64 array, or None for the defaults."""
    if scales is None:
        return None
    func = "holder_fit"
    try:
        vals = np.asarray(scales, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        vals = np.array([np.nan])
    if probe:
        if vals.size < 2 or not np.isfinite(vals).all() or vals.min() <= 0 \
                or np.unique(vals).size < 2:
            raise ValueError(
                f"The 'scales' parameter of `{func}` must hold at least two distinct positive "
                f"radii in probe mode; got {scales!r}."
            )
    elif vals.shape != (2,) or not np.isfinite(vals).all() or not 0 <= vals[0] < vals[1]:
        raise ValueError(
            f"The 'scales' parameter of `{func}` must be (scale_min, scale_max) with "
            f"0 <= scale_min < scale_max in sample mode; got {scales!r}."
        )
    return vals


def _sample_scales(x, r, scales):
    """The fit range: given, or from the sampling resolution to the largest distance."""
    if scales is not None:
        return float(scales[0]), float(scales[1])
    return median_spacing(x), float(r.max())


def _fit(r, s, eta, eps, C, q, strict):
    """``(eta, C)`` on in-range pairs; NaNs (or a ValueError if ``strict``) when too few."""
    if eta is None:
        use = s > 2.0 * eps
        if use.sum() < _MIN_PAIRS or np.ptp(r[use]) == 0:
            if strict:
                raise ValueError(
                    f"`holder_fit` found {int(use.sum())} pairs in the scale range whose "
                    f"images are more than 2 eps = {2 * eps:g} apart, at fewer than two "
                    f"distinct distances; it needs {_MIN_PAIRS}. Widen 'scales', lower 'eps', "
                    f"or pass 'eta' to compute C alone."
                )
            return np.nan, np.nan
        eta, _ = quantile_line(np.log(r[use]), np.log(s[use] - 2.0 * eps), q)
    if C is None:
        if r.size == 0:
            if strict:
                raise ValueError(
                    "`holder_fit` found no pair in the scale range; widen 'scales'."
                )
            return np.nan, np.nan
        C = float(np.max(np.clip(s - 2.0 * eps, 0.0, None) / r**eta))
    return float(eta), float(C)


def _probe_pairs(fn, x, scales, n_pairs, batch_size, rng):
    """Distances ``(r, s)`` of probe pairs, arrays of shape (anchors, scales)."""
    func = "holder_fit"
    n = x.shape[0]
    flat = to_numpy(x).reshape(n, -1)  # (n, d)
    spread = float(np.sqrt(np.square(flat - flat.mean(axis=0)).sum(axis=1).mean()))
    deltas = np.geomspace(1e-3, 1.0, 7) * spread if scales is None else scales
    if not deltas.min() > 0:
        raise ValueError(
            f"The 'x' parameter of `{func}` must not be constant when 'scales' is None in "
            f"probe mode (the default radii scale with its spread); got a spread of 0."
        )
    n_anchor = min(n, max(1, math.ceil(n_pairs / deltas.size)))
    anchors = np.sort(rng.choice(n, n_anchor, replace=False))
    base_in = as_tensor_for([fn], x)[torch.as_tensor(anchors)]  # (n_anchor, ...)
    base_out = _run(fn, base_in, batch_size)
    r = np.empty((n_anchor, deltas.size))
    s = np.empty((n_anchor, deltas.size))
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    for k, delta in enumerate(deltas):
        u = torch.randn(base_in.shape, generator=gen, dtype=torch.float64)
        u = u / torch.linalg.vector_norm(u.reshape(n_anchor, -1), dim=1).reshape(
            (-1,) + (1,) * (u.ndim - 1))
        moved = base_in + (delta * u).to(device=base_in.device, dtype=base_in.dtype)
        out = _run(fn, moved, batch_size)
        r[:, k] = _flat_dist(moved, base_in)
        s[:, k] = _flat_dist(out, base_out)
    return r, s, float(deltas.min()), float(deltas.max())


def _run(fn, h, batch_size):
    with torch.no_grad(), eval_mode([fn]):
        return torch.cat([fn(h[i:i + batch_size]) for i in range(0, h.shape[0], batch_size)])


def _flat_dist(a, b):
    """Row distances of two tensors of shape (n, ...), in float64, by direct difference."""
    diff = a.reshape(a.shape[0], -1).double() - b.reshape(b.shape[0], -1).double()
    return torch.linalg.vector_norm(diff, dim=1).cpu().numpy()
