"""Hölder regularity of a block: its profile by scale, exponent, constant and the bound's pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._holder_pairs import BANDS_PER_OCTAVE, probe_pairs, sample_pairs
from ._quantile import quantile_line
from ._results import Result
from ._validation import check_array, check_float, check_int, check_paired

__all__ = ["HolderFit", "HolderProfile", "holder_fit"]

#: Pairs needed to fit an exponent at all.
_MIN_PAIRS = 10
#: Relative slack when testing the bound, so the pair that defines C counts as meeting it.
_SLACK = 1e-12
#: Bands in the small-scale window of the exponent. Sample mode: 1.5 octaves of half-octave
#: bands (three half-octave local exponents); probe mode: the three smallest radii.
WINDOW = 4
PROBE_WINDOW = 3
#: Random halves of the points on which the sample-mode levels are measured again.
N_HALVES = 16
#: A band's level is *converged* when, in the median over :data:`N_HALVES` random halves of
#: the points, the level on a half is at least ``1 - CONVERGENCE_TOL`` times the level: the
#: band's maximum is reached by many pairs, not by a few that a half would lose. Chosen on the
#: ground-truth ladder (tests/analysis/test_holder.py, 20 samples per case): at 0.03 the
#: windows of power maps in 2-D and 3-D sometimes started where the level still fell short of
#: the envelope (exponent up to 0.25 too high); at 0.02 the largest error was 0.10.
CONVERGENCE_TOL = 0.02
#: Largest difference of the exponents over the first and the last octave of the window for
#: the profile to count as flat there. On the ground-truth ladder (20 samples per case) the
#: two differed by at most 0.072 (so 0.1); a map whose ratio changes regime inside the
#: window exceeds it (a saturating branch, a staircase near its step).
FLAT_TOL = 0.1
#: Pairs of largest ratio per band that a bootstrap replicate's band maximum looks at first
#: (:class:`_Bands`); a band none of whose head is in the replicate is scanned whole.
_HEAD = 256
#: Pairs of largest possible bound whose constant a replicate computes first (:class:`_Constants`).
_C_CANDIDATES = 4096
#: Relative margin of :class:`_Constants`' test that no other pair can be larger (the rounding
#: of a power is a few units of 1e-16).
_C_MARGIN = 1e-9
#: Pairs of the range fit (``scales`` given): a seeded random subset of the pairs in range
#: when there are more (the regression's cost grows with the pairs, its error shrinks slowly).
_RANGE_FIT_PAIRS = 20_000


@dataclass(frozen=True)
class HolderProfile(Result):
    r"""The envelope of the Lipschitz ratio by scale: the sample modulus of continuity.

    Pairs are binned by :math:`r = \lVert x - y \rVert` in half-octave bands
    :math:`[\ell_k, u_k) = [r_0 2^{k/2}, r_0 2^{(k+1)/2})` from the sampling resolution
    :math:`r_0` upwards (sample mode), or grouped by probe radius :math:`\delta_k` (probe mode,
    :math:`\ell_k = u_k = \delta_k`). The level of band :math:`k` is

    .. math::

        L_k = \max \Big( \max_{(x, y) \in \text{band } k}
        \frac{\lVert T x - T y \rVert - 2\varepsilon}{\lVert x - y \rVert},\; L_{k+2} \Big),
        \qquad
        \eta_k = 1 + \frac{\log L_{k+1} - \log L_k}{\log u_{k+1} - \log u_k},

    where the second term (sample mode only) carries the level of the band one octave up:
    on a convex domain :math:`S(2r) \le 2 S(r)` for :math:`S(r) = \sup_{\lVert x - y \rVert
    = r} \lVert Tx - Ty \rVert` (midpoint and triangle inequality), so the envelope of the
    ratio one octave down is at least the one here, and a pair seen at :math:`2r` is a lower
    bound at :math:`r` too. Each level is a lower bound of the map's envelope, reached only
    when the band holds pairs near the map's extremal configurations. :math:`\eta_k` is the
    local exponent (:math:`L \propto r^{\eta - 1}`): 1 for a Lipschitz map at scales where
    its ratio is reached, :math:`\alpha` for an :math:`\alpha`-Hölder singularity.

    Attributes
    ----------
    lower, upper : tuple of float
        Band edges (input units), smallest first.
    n_pairs : tuple of int
        Pairs per band.
    level : tuple of float
        :math:`L_k` (output units per input unit); NaN where no pair exceeds
        :math:`2\varepsilon`.
    level_ci : tuple of (float, float) or None
        Bootstrap percentile intervals of ``level`` (a maximum: biased low, and so are its
        intervals); None without bootstrap or for a given ``eta``.
    half_ratio : tuple of float or None
        Sample mode: the median, over :data:`N_HALVES` random halves of the points, of the
        level measured on a half over :math:`L_k`. Near 1 when the band's maximum is reached
        by many pairs (*converged*); well below 1 when a few pairs near a singular or sparsely
        sampled region make it, and the band's level is then still far below the envelope.
        None in probe mode and for a given ``eta`` (the test serves the exponent only).
    slope : tuple of float
        :math:`\eta_k` between band ``k`` and ``k + 1`` (length ``len(level) - 1``).
    slope_ci : tuple of (float, float) or None
        Bootstrap percentile intervals of ``slope``.
    window : tuple of int or None
        First and last band of the small-scale window: in sample mode the first
        :data:`WINDOW` consecutive bands (1.5 octaves) with at least ``min_band_pairs``
        pairs, a level and ``half_ratio >= 1 - CONVERGENCE_TOL``; in probe mode the
        :data:`PROBE_WINDOW` smallest radii. None when there is none.
    window_slope : float
        1 plus the least-squares slope of :math:`\log L_k` on :math:`\log u_k` over the
        window (NaN without a window): the small-scale exponent.
    slope_spread : float
        The same exponent over the window's first octave minus over its last (probe mode:
        the two local exponents), NaN without a window.
    resolved : bool
        Whether the window exists and ``abs(slope_spread) <= FLAT_TOL``: the profile is flat
        at the smallest scales where the sample reaches the envelope, so its slope there is an
        exponent.
    reason : str
        Why the exponent is not resolved ('' when it is).
    resolution : float
        Sample mode: the sampling resolution :math:`r_0` (median nearest-neighbour distance
        of the points whose pairs fill the small bands), the lower edge of the first band.
        Probe mode: the smallest radius.
    mode : str
        ``'sample'`` or ``'probe'``.
    """

    lower: tuple
    upper: tuple
    n_pairs: tuple
    level: tuple
    level_ci: tuple | None
    half_ratio: tuple | None
    slope: tuple
    slope_ci: tuple | None
    window: tuple | None
    window_slope: float
    slope_spread: float
    resolved: bool
    reason: str
    resolution: float
    mode: str


@dataclass(frozen=True)
class HolderFit(Result):
    r"""Fitted Hölder bound :math:`\lVert T x - T y \rVert \le 2 \varepsilon + C \lVert x - y
    \rVert^{\eta}` of a map on a sample, with the scales it was measured at.

    Attributes
    ----------
    eta : float
        Exponent :math:`\eta`. By default the small-scale slope of the profile
        (``eta_method='small_scale'``, ``profile.window_slope``), NaN when the profile is not
        resolved there (``resolved`` False: the sample cannot tell the exponent); with
        ``scales`` the slope of an upper regression quantile of :math:`\log(\lVert Tx - Ty
        \rVert - 2\varepsilon)` on :math:`\log \lVert x - y \rVert` over that range
        (``'range'``); or the given value (``'given'``).
    eta_fitted : bool
        Whether ``eta`` was fitted.
    eta_method : str
        ``'small_scale'``, ``'range'`` or ``'given'``.
    resolved : bool
        False only when the small-scale exponent could not be resolved (``eta`` is then NaN,
        and so are ``C`` and ``fraction_satisfied`` unless ``C`` was given).
    C : float
        Smallest constant over the pairs in the scale range,
        :math:`\max (\lVert Tx - Ty \rVert - 2\varepsilon)_+ / \lVert x - y \rVert^\eta`, or
        the given one (units: output units per input unit to the power :math:`\eta`).
    C_fitted : bool
        Whether ``C`` was computed (rather than given).
    eps : float
        :math:`\varepsilon`, in output units (e.g. ``max_deviation`` of :func:`map_vs_ot`).
    quantile : float
        Quantile level of the range fit (used only with ``eta_method='range'``).
    scale_min : float
        Smallest :math:`\lVert x - y \rVert` (input units) of the range over which ``C`` (and
        a range-fitted ``eta``) were measured: by default the sampling resolution (sample
        mode) or the smallest radius (probe mode). An exponent means nothing without its
        scales: any Lipschitz map is :math:`\eta`-Hölder for every :math:`\eta \le 1` on a
        bounded set; the small-scale exponent's own scales are ``profile.window``.
    scale_max : float
        Largest :math:`\lVert x - y \rVert` of that range.
    n_pairs : int
        Pairs in the scale range (those ``C`` uses).
    n_pairs_total : int
        All pairs measured, in or out of the range.
    fraction_satisfied : float
        Share of all measured pairs (in and out of the scale range) that meet the bound with
        this ``eta``, ``C`` and ``eps``; below 1 when the bound fails outside the range, or
        when ``C`` was given.
        When the k-d tree added all small pairs (see ``n_pairs``), those scales weigh more
        in this share than the subset's pairs.
    eta_ci : tuple of float or None
        Bootstrap percentile interval of ``eta`` (points, or probe anchors, resampled with
        replacement; the pairs and their distances are kept, each weighted by the product
        of its two points' multiplicities); None when not computed (``n_bootstrap=0``,
        ``eta`` given, or not resolved).
    C_ci : tuple of float or None
        Same for ``C``. ``C`` is a maximum, so its bootstrap interval lies mostly below the
        sample value, and the population constant can exceed both.
    confidence : float
        Level of the intervals.
    n_bootstrap : int
        Bootstrap replicates.
    mode : str
        ``'sample'`` (pairs of sample points) or ``'probe'`` (pairs
        :math:`(x_i, x_i + \delta u_i)` through a callable).
    profile : HolderProfile
        The envelope by scale (:meth:`to_dict` nests it as a dict).
    """

    eta: float
    eta_fitted: bool
    eta_method: str
    resolved: bool
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
    profile: HolderProfile

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

    def to_dict(self) -> dict:
        """The fields as JSON-ready plain Python, ``profile`` as a nested dict."""
        out = super().to_dict()
        out["profile"] = self.profile.to_dict()
        return out


def holder_fit(
    x,
    tx,
    eta=None,
    eps=0.0,
    scales=None,
    *,
    C=None,
    quantile=0.99,
    n_pairs=500_000,
    n_bootstrap=100,
    confidence=0.95,
    seed=0,
    batch_size=1024,
    min_band_pairs=50,
) -> HolderFit:
    r"""Fit the Hölder bound of a map from pairs of points, with its profile by scale.

    .. math::

        \lVert T(x) - T(y) \rVert \le 2 \varepsilon + C \lVert x - y \rVert^{\eta},
        \qquad C(\eta, \varepsilon) = \max_{(x, y)}
        \frac{(\lVert T(x) - T(y) \rVert - 2 \varepsilon)_+}{\lVert x - y \rVert^{\eta}}

    where the maximum runs over the measured pairs with :math:`\lVert x - y \rVert` in
    ``[scale_min, scale_max]``, and :math:`\varepsilon` is how far the block is from the OT
    map (the stability bound of METHOD.md, claim 2). Hölder regularity is a small-scale
    property (:math:`\lVert x - y \rVert \to 0`), so by default :math:`\eta` is the slope of
    the profile's upper envelope over its smallest resolved bands (:class:`HolderProfile`).

    Parameters
    ----------
    x : array-like or torch.Tensor of shape (n, d)
        Points (``(n, ...)`` in probe mode).
    tx : array-like or torch.Tensor of shape (n, d), or callable
        The map's values at ``x`` (sample mode), or the map itself (probe mode: pairs
        :math:`(x_i, x_i + \delta u_i)`, one random unit direction :math:`u_i` per anchor
        point for all radii :math:`\delta`).
    eta : float, optional
        Exponent; fitted when None.
    eps : float, default=0.0
        :math:`\varepsilon` (output units, >= 0).
    scales : sequence of float, optional
        Sample mode: ``(scale_min, scale_max)``, the range of ``C`` and of a regression
        quantile fit of ``eta`` (the range mode); default from the sampling resolution
        (median nearest-neighbour distance of the points used) to the largest pair distance,
        with the small-scale exponent. Probe mode: the radii :math:`\delta` (at least two
        distinct positive values; ``eta`` then from the range fit over all of them);
        default ``geomspace(1e-3, 1, 7)`` times the RMS distance of ``x`` to its mean, with
        the small-scale exponent over the three smallest.
    C : float, optional
        A constant to test instead of computing the smallest one.
    quantile : float, default=0.99
        Level of the regression quantile of the range fit.
    n_pairs : int, default=500000
        Sample mode: all pairs of the points when there are at most this many, else all
        pairs of a seeded random subset of :math:`m` points, :math:`m(m - 1)/2 \le`
        ``n_pairs`` (1000 points by default), and, in at most 8 features, every pair of all
        the points in the smallest bands (about ``n_pairs / 2`` more; see Notes). Probe
        mode: pairs split over the radii.
    n_bootstrap : int, default=100
        Bootstrap replicates for the intervals (0 to skip).
    confidence : float, default=0.95
        Level of the intervals.
    seed : int, default=0
        Seed of the subset, the directions and the bootstrap.
    batch_size : int, default=1024
        Points per forward pass of the callable (probe mode).
    min_band_pairs : int, default=50
        Fewest pairs for a band to enter the small-scale window (sample mode; in probe mode
        each radius has one pair per anchor, and all anchors count as enough).

    Returns
    -------
    HolderFit
        Exponent, constant, scale range, pair counts, intervals and the profile.

    Notes
    -----
    *The profile.* In sample mode the bands are half-octaves from the sampling resolution
    :math:`r_0` (no pairs to measure below it); a band's level is the largest ratio
    :math:`(\lVert Tx - Ty \rVert - 2\varepsilon) / \lVert x - y \rVert` of its pairs, or of
    the band one octave up if larger (the envelope of the ratio cannot fall towards small
    scales by more than that on a convex domain; :class:`HolderProfile`).

    *Why not simply the smallest bands.* A level is a maximum over the band's pairs, a lower
    bound of the map's envelope that reaches it only when the band holds pairs near the
    map's extremal configurations. For a singular map these are the pairs straddling the
    singular set (for :math:`\mathrm{sign}(x)|x|^\alpha` coordinate-wise: pairs symmetric
    about a coordinate hyperplane, and, for the largest constant, about the origin), a
    fraction of the pairs that vanishes with the scale: in the smallest bands the maximum
    falls far short of the envelope, less so one band up, so the slope over the smallest
    bands is biased towards 1 (by 0.05 to 0.6 for these maps on 1000 points: the former
    default). The exponent is therefore read where the sample reaches the envelope: each
    band's level is measured again on :data:`N_HALVES` random halves of the points
    (``profile.half_ratio``), and the window is the first :data:`WINDOW` consecutive
    half-octave bands (1.5 octaves) whose level a half reproduces within
    :data:`CONVERGENCE_TOL` (a maximum made by many pairs) and that hold ``min_band_pairs``
    pairs. ``eta`` is the slope there. When the exponents over the window's first and last
    octave differ by more than :data:`FLAT_TOL`, or no such window exists (few points;
    high dimension, where all pair distances concentrate within a factor of two; a map whose
    largest ratios come from a handful of pairs at every scale), ``resolved`` is False and
    ``eta`` NaN: the sample cannot resolve the exponent. The probe mode then reaches below
    the sampling resolution, down to the round-off of the block's dtype (about
    :math:`10^{-4}` of the data's scale in float32); the probe's envelope at a radius is a
    maximum over the anchors, which finds a singularity only if an anchor lies within about
    that radius of it, and its window is the :data:`PROBE_WINDOW` smallest radii.

    *Accuracy, measured* (20 samples per case, ``tests/analysis/test_holder.py``):
    :math:`\mathrm{sign}(x)|x|^\alpha` on 1000 uniform points of :math:`[-1, 1]^d`
    (:math:`d \le 3`, :math:`\alpha \in \{0.3, 0.5, 0.8\}`) reads :math:`\alpha` to within
    :math:`-0.01` and :math:`+0.10` (mean error :math:`+0.01` to :math:`+0.04`); smooth
    residual maps of the plane and maps with a kink read 1 to within 0.01. The error left is
    upward: levels are lower bounds, and in 2-D and 3-D the constant a band reaches grows
    with the scale (pairs near one hyperplane, then near two, then near the origin).
    *Failure mode:* to a sample, a smooth map whose largest ratio few pairs reach (a sparse
    region, one direction) looks like a singular one: its smallest bands are not reached, the
    window moves up, and where the ratio already saturates there the exponent reads below 1
    (0.57 for :math:`x + 0.5 \tanh(2 x W)`, :math:`\lVert W \rVert \approx 3`, on one sample
    of 2000 Gaussian points in 20; 0.48-0.90 on three blocks of the demo's plain greedy run,
    whose probe-mode exponent is 1.00). When ``profile.window`` starts above the smallest
    bands, compare with the probe mode.
    ``C`` is a maximum too. The range fit (``scales`` given) is the regression quantile of
    earlier versions: it mixes scales, and for a map whose Lipschitz ratio varies with scale
    (a saturating residual branch) its slope lands below 1 although the map is smooth.

    *Pairs.* Above ``n_pairs`` pairs in at most 8 features, every pair of *all* the points
    below a radius :math:`\rho` is found by a k-d tree (:func:`analysis._pairwise.close_pairs`)
    and replaces the subset's pairs there: the small bands, which decide the window and hold
    few pairs, are measured exhaustively, down to the resolution of the whole sample.
    :math:`\rho` is the largest band edge below which the subset's pair count, scaled to all
    points, is ``n_pairs / 2``.

    *Cost.* One Gram product per side (:func:`analysis._pairwise.all_pair_distances`:
    :math:`m^2 d` flops, BLAS on the host, torch on a tensor's device); the bootstrap
    reweights the same pairs (no distance is computed twice), and so does the convergence
    test (:data:`N_HALVES` halves). A replicate's maxima do not scan every pair: a band's
    level is the first of the band's largest ratios whose pair the replicate holds, and
    ``C`` is first taken over the pairs whose bound can be largest at the replicates'
    exponents, with a scan of every pair only where these cannot decide (the same values,
    to the bit). Probe mode: the anchors and all their moved copies go through the map in
    batches of ``batch_size`` (two calls by default), not one call per radius.

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
    >>> round(fit.eta, 4), round(fit.C, 4), fit.resolved
    (1.0, 3.0, True)
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
    quantile = check_float(quantile, name="quantile", func=func, low=0.0, high=1.0, low_open=True, high_open=True)
    n_pairs = check_int(n_pairs, name="n_pairs", func=func, low=_MIN_PAIRS)
    n_bootstrap = check_int(n_bootstrap, name="n_bootstrap", func=func, low=0)
    confidence = check_float(confidence, name="confidence", func=func, low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_int(seed, name="seed", func=func, low=0)
    batch_size = check_int(batch_size, name="batch_size", func=func, low=1)
    min_band_pairs = check_int(min_band_pairs, name="min_band_pairs", func=func, low=1)
    scales = _check_scales(scales, probe)
    rng = np.random.default_rng(seed)

    if probe:
        pairs = probe_pairs(tx, x, scales, n_pairs, batch_size, rng)
    else:
        pairs = sample_pairs(x, tx, scales, n_pairs, rng)
    r, s, lo, hi = pairs.r, pairs.s, pairs.lo, pairs.hi
    excess = s - 2.0 * eps
    in_range = (r > 0) if pairs.probe else (r >= lo) & (r <= hi) & (r > 0)
    bands = _Bands(pairs, excess)
    levels = bands.levels(None)
    method = "given" if eta is not None else ("range" if scales is not None else "small_scale")
    # The half-sample test and the bands' bootstrap serve the exponent only: not run for a given eta.
    half_ratio = bands.half_ratio(pairs, levels, rng) if method != "given" else np.ones_like(levels)
    enough = min(min_band_pairs, pairs.n_units) if pairs.probe else min_band_pairs  # every anchor
    width = PROBE_WINDOW if pairs.probe else WINDOW
    window, spread, reason = _window(levels, bands.counts, bands.upper, enough, half_ratio, width)
    if window is None and int((excess[bands.order] > 0).sum()) < _MIN_PAIRS and eta is None and scales is None:
        raise ValueError(
            f"`holder_fit` found {int((excess[bands.order] > 0).sum())} pairs above the "
            f"resolution whose images are more than 2 eps = {2 * eps:g} apart; it needs "
            f"{_MIN_PAIRS}. Lower 'eps', or pass 'eta' to compute C alone."
        )
    resolved = window is not None and abs(spread) <= FLAT_TOL
    if window is not None and not resolved:
        reason = (
            f"the profile is not flat at the smallest resolved scales (the exponents over the "
            f"window's first and last octave differ by {abs(spread):.2f} > {FLAT_TOL}): the "
            f"sample cannot resolve the exponent; use the probe mode (the block as a callable)"
        )
    window_slope = _window_slope(levels, bands.upper, window)

    range_pick = _range_subset(in_range & (excess > 0) & pairs.uniform, rng) if method == "range" else None
    if method == "range" and range_pick.size < _MIN_PAIRS:
        raise ValueError(
            f"`holder_fit` found {range_pick.size} pairs in the scale range whose images are "
            f"more than 2 eps = {2 * eps:g} apart; it needs {_MIN_PAIRS}. Widen 'scales', "
            f"lower 'eps', or pass 'eta' to compute C alone."
        )

    def exponent(units, lv):
        """The exponent of the sample (``units`` None) or of a replicate of unit weights ``units``, levels ``lv``."""
        if method == "given":
            return eta
        if method == "range":
            weights = None if units is None else pairs.weights(units, range_pick)
            return _range_eta(r, excess, range_pick, weights, quantile)
        return _window_slope(lv, bands.upper, window) if resolved else np.nan

    constants = _Constants(pairs, excess, in_range)
    eta_hat = exponent(None, levels)
    C_hat = C if C is not None else float(constants([eta_hat])[0])
    if method == "given" and not in_range.any() and C is None:
        raise ValueError("`holder_fit` found no pair in the scale range; widen 'scales'.")
    positive = r > 0
    if np.isfinite(eta_hat) and np.isfinite(C_hat):
        bound = 2.0 * eps + C_hat * r[positive] ** eta_hat
        satisfied = float(np.mean(s[positive] <= bound * (1.0 + _SLACK)))
    else:
        satisfied = np.nan

    eta_ci = C_ci = level_ci = slope_ci = None
    if n_bootstrap:
        draws = [pairs.draw(rng) for _ in range(n_bootstrap)]  # unit multiplicities, one array per replicate
        if method == "given":
            etas_b = np.full(n_bootstrap, eta)
        else:
            levels_b = np.array([bands.levels(u) for u in draws])  # (B, K)
            etas_b = np.array([exponent(u, lv) for u, lv in zip(draws, levels_b, strict=True)])
            level_ci = _percentiles(levels_b, confidence)
            slope_ci = _percentiles(_slopes(levels_b, bands.upper), confidence)
            if np.isfinite(eta_hat):
                eta_ci = _percentiles(etas_b, confidence)
        if C is None and np.isfinite(C_hat):
            C_ci = _percentiles(constants(etas_b, draws), confidence)

    profile = HolderProfile(
        lower=tuple(bands.lower),
        upper=tuple(bands.upper),
        n_pairs=tuple(bands.counts),
        level=tuple(levels),
        level_ci=level_ci,
        half_ratio=None if pairs.probe or method == "given" else tuple(half_ratio),
        slope=tuple(_slopes(levels, bands.upper)),
        slope_ci=slope_ci,
        window=window,
        window_slope=float(window_slope),
        slope_spread=float(spread),
        resolved=bool(resolved),
        reason="" if resolved else reason,
        resolution=float(bands.lower[0]) if bands.lower.size else float(lo),
        mode="probe" if pairs.probe else "sample",
    )
    return HolderFit(
        eta=float(eta_hat),
        eta_fitted=eta is None,
        eta_method=method,
        resolved=bool(resolved or method != "small_scale"),
        C=float(C_hat),
        C_fitted=C is None,
        eps=eps,
        quantile=quantile,
        scale_min=float(lo),
        scale_max=float(hi),
        n_pairs=int(in_range.sum()),
        n_pairs_total=int(r.size),
        fraction_satisfied=satisfied,
        eta_ci=eta_ci,
        C_ci=C_ci,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        mode="probe" if pairs.probe else "sample",
        profile=profile,
    )


class _Bands:
    """The pairs above the resolution sorted by band, for per-band maxima of the Lipschitz ratio.

    A replicate's band maximum is its first pair in the band's *head*, the band's
    :data:`_HEAD` largest ratios in decreasing order; only a band whose head holds no pair of
    the replicate (or that holds a NaN ratio) is scanned whole. The same maxima as a masked
    maximum over every pair, with work per replicate in proportion to the bands times
    :data:`_HEAD` rather than to the pairs.
    """

    def __init__(self, pairs, excess):
        keep = np.flatnonzero(pairs.band >= 0)
        self.lower, self.upper = pairs.lower, pairs.upper
        n_bands = self.lower.size
        key = pairs.band[keep].astype(np.int16 if n_bands <= np.iinfo(np.int16).max else np.int64)
        self.order = keep[np.argsort(key, kind="stable")]  # 16-bit keys: numpy's radix sort, the same stable order
        self.bounds = np.searchsorted(pairs.band[self.order], np.arange(n_bands + 1))
        self.counts = np.diff(self.bounds)
        self.values = excess[self.order] / pairs.r[self.order]  # Lipschitz ratios
        self.envelope = not pairs.probe
        self.pairs = pairs
        self._heads = None

    def _head(self):
        """``(head, head_band, partial)``: the heads' positions in ``order`` (by band, largest ratio
        first), their bands, and which bands hold more than their head (computed once, when needed)."""
        if self._heads is None:
            heads = []
            for k in range(self.counts.size):
                seg = self.values[self.bounds[k] : self.bounds[k + 1]]
                top = np.arange(0) if np.isnan(seg).any() else np.argpartition(seg, max(seg.size - _HEAD, 0))[-_HEAD:]
                heads.append(self.bounds[k] + top[np.argsort(-seg[top], kind="stable")])
            self._heads = (
                np.concatenate(heads).astype(np.int64),
                np.repeat(np.arange(self.counts.size), [h.size for h in heads]),
                np.array([h.size < c for h, c in zip(heads, self.counts, strict=True)], dtype=bool),
            )
        return self._heads

    def levels(self, units, envelope=None):
        """Per-band maximum of the ratio over the pairs of the sample (``units`` None) or of a
        replicate of unit weights ``units`` (its pairs: those of units of positive weight), then
        (sample mode, unless ``envelope`` is False) the running maximum from one octave up,
        ``L[k] = max(L[k], L[k + BANDS_PER_OCTAVE])``; NaN where no pair is above 0."""
        out = np.full(self.counts.size, -np.inf)
        if units is None:
            full = self.counts > 0
            if full.any():
                out[full] = np.maximum.reduceat(self.values, self.bounds[:-1][full])
        else:
            head, head_band, partial = self._head()
            hit = np.flatnonzero(self.pairs.present(units, self.order[head]))
            found, first = np.unique(head_band[hit], return_index=True)  # the first hit of a band is its largest
            out[found] = self.values[head[hit[first]]]
            missed = partial.copy()
            missed[found] = False
            for k in np.flatnonzero(missed):  # no pair of the head in the replicate: the whole band
                seg = slice(self.bounds[k], self.bounds[k + 1])
                inside = self.pairs.present(units, self.order[seg])
                if inside.any():
                    out[k] = np.max(self.values[seg][inside])
        if self.envelope if envelope is None else envelope:
            for k in range(out.size - BANDS_PER_OCTAVE - 1, -1, -1):
                out[k] = max(out[k], out[k + BANDS_PER_OCTAVE])
        out[~(out > 0)] = np.nan
        return out

    def half_ratio(self, pairs, levels, rng):
        """Median over :data:`N_HALVES` random halves of the units of each band's own maximum
        on the half (without the running maximum) over its level; a band the half leaves
        empty counts 0. Ones in probe mode."""
        if pairs.probe:
            return np.ones(levels.size)
        with np.errstate(invalid="ignore"):
            ratios = [
                np.nan_to_num(self.levels(pairs.half(rng), envelope=False) / levels, nan=0.0) for _ in range(N_HALVES)
            ]
        return np.median(ratios, axis=0)


class _Constants:
    r"""The constant :math:`C(\eta) = \max_p c_p(\eta)`, :math:`c_p(\eta) = (\lVert Tx - Ty
    \rVert - 2\varepsilon)_+ / \lVert x - y \rVert^\eta`, over the in-range pairs :math:`p`
    of the sample or of bootstrap replicates (a replicate's pairs: those of units of positive
    weight).

    :math:`\log c_p(\eta)` is linear in :math:`\eta`, so over the replicates' exponents
    :math:`c_p \le U_p = \max(c_p(\eta_{\min}), c_p(\eta_{\max}))`. A replicate's constant is
    first taken over its pairs among the :data:`_C_CANDIDATES` of largest :math:`U_p`; it is
    the maximum over all its pairs when it is at least every other :math:`U_p` (with a margin
    of :data:`_C_MARGIN` for the rounding of the powers), else all its pairs are scanned. The
    same values as the scan of every pair, with a few thousand powers per replicate instead
    of one per pair.
    """

    def __init__(self, pairs, excess, in_range):
        self.pairs = pairs
        self.idx = np.flatnonzero(in_range)
        self.excess = np.clip(excess[self.idx], 0.0, None)
        self.r = pairs.r[self.idx]

    def _max(self, eta, units, sub):
        r"""Largest :math:`c_p(\eta)` over the pairs ``sub`` (positions in ``idx``; None: all) of the
        replicate ``units`` (None: the sample); NaN when it holds none."""
        sub = np.arange(self.idx.size) if sub is None else sub
        if units is not None:
            sub = sub[self.pairs.present(units, self.idx[sub])]
        if sub.size == 0:
            return np.nan
        return float(np.max(self.excess[sub] / self.r[sub] ** eta))

    def __call__(self, etas, draws=None):
        """``C`` at each exponent of ``etas`` (NaN where it is not finite), ``draws[b]`` the unit
        weights of replicate ``b`` (None: the sample)."""
        etas = np.asarray(etas, dtype=np.float64)
        out = np.full(etas.size, np.nan)
        finite = np.flatnonzero(np.isfinite(etas))
        if finite.size == 0 or self.idx.size == 0:
            return out
        if draws is None:
            for b in finite:
                out[b] = self._max(etas[b], None, None)
            return out
        lo, hi = etas[finite].min(), etas[finite].max()
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            upper = np.maximum(self.excess / self.r**lo, self.excess / self.r**hi)  # U_p
        top, rest = None, -np.inf
        if upper.size > _C_CANDIDATES and not np.isnan(upper).any():  # NaN: no order, scan every pair
            top = np.argpartition(upper, upper.size - _C_CANDIDATES)[-_C_CANDIDATES:]
            others = np.ones(upper.size, dtype=bool)
            others[top] = False
            rest = float(upper[others].max())
        for b in finite:
            c = self._max(etas[b], draws[b], top)
            if top is not None and not c >= rest * (1.0 + _C_MARGIN):  # a pair outside may be larger
                c = self._max(etas[b], draws[b], None)
            out[b] = c
        return out


def _slopes(levels, upper):
    """Local exponents between neighbouring bands (1 + slope of the log ratio), last axis."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 + np.diff(np.log(levels), axis=-1) / np.diff(np.log(upper))


def _window(levels, counts, upper, min_band_pairs, half_ratio, width):
    """The small-scale window ``((k0, k1), spread, reason)``: the first ``width`` consecutive
    bands with enough pairs, a level, and a converged level (``half_ratio`` at least
    ``1 - CONVERGENCE_TOL``); ``spread`` is the exponent over the window's first ``width - 1``
    bands minus that over its last ``width - 1``."""
    ok = (counts >= min_band_pairs) & np.isfinite(levels) & (half_ratio >= 1.0 - CONVERGENCE_TOL)
    for k in range(ok.size - width + 1):
        if ok[k : k + width].all():
            first = _window_slope(levels, upper, (k, k + width - 2))
            last = _window_slope(levels, upper, (k + 1, k + width - 1))
            return (k, k + width - 1), float(first - last), ""
    return (
        None,
        np.nan,
        (
            f"fewer than {width} consecutive bands hold {min_band_pairs} pairs above the sampling "
            f"resolution with a level that a half of the points reproduces within "
            f"{CONVERGENCE_TOL:.0%} (found {int(ok.sum())} such bands of {ok.size}): the sample "
            f"cannot resolve the exponent; use the probe mode (the block as a callable)"
        ),
    )


def _window_slope(levels, upper, window):
    """Least-squares slope of log level on log scale over the window, plus 1 (NaN without one)."""
    if window is None:
        return np.nan
    u = np.log(upper[window[0] : window[1] + 1])
    v = np.log(levels[window[0] : window[1] + 1])
    if not np.isfinite(v).all():
        return np.nan
    u = u - u.mean()
    return 1.0 + float(np.dot(u, v - v.mean()) / np.dot(u, u))


def _percentiles(values, confidence):
    """Percentile intervals over the finite replicates (axis 0); None where none is finite."""
    levels = [50 * (1 - confidence), 50 * (1 + confidence)]
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        ok = values[np.isfinite(values)]
        return tuple(float(v) for v in np.percentile(ok, levels)) if ok.size else None
    cols = [_percentiles(values[:, k], confidence) for k in range(values.shape[1])]
    return tuple(cols)


def _range_subset(use, rng):
    """Indices of the pairs of the range fit (a seeded subset when there are many)."""
    idx = np.flatnonzero(use)
    if idx.size > _RANGE_FIT_PAIRS:
        idx = np.sort(rng.choice(idx, _RANGE_FIT_PAIRS, replace=False))
    return idx


def _range_eta(r, excess, pick, weights, q):
    """Regression-quantile slope over the picked pairs, each repeated by its weight (``weights``: one per pick)."""
    if weights is not None:
        pick = np.repeat(pick, weights.astype(np.int64))
    if pick.size < _MIN_PAIRS or np.ptp(r[pick]) == 0:
        return np.nan
    return quantile_line(np.log(r[pick]), np.log(excess[pick]), q)[0]


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
        if vals.size < 2 or not np.isfinite(vals).all() or vals.min() <= 0 or np.unique(vals).size < 2:
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
