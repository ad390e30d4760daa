r"""The measurements of one unit: displacement, the exact OT map, the Jacobian test, the Hölder fits.

For a unit with inputs :math:`x_i` and outputs :math:`t_i = T(x_i)` on ``n`` points:

- the displacement: kinetic cost :math:`\frac1n\sum_i \lVert t_i - x_i\rVert^2` and
  :math:`W_2(\hat\mu, \hat\nu)` between the input and output samples (``method``);
- :func:`analysis.map_vs_ot` (exact OT assignment, with subsampling intervals of the cost
  ratio and the Monge gap); where its resolution flag says the sample cannot tell,
  :func:`analysis.jacobian_asymmetry` of the unit as a callable (with its standard error);
- the Hölder exponent, twice: from the sample (:func:`analysis.holder_fit` on the pairs of
  the points, :math:`\varepsilon = 0`, the small-scale exponent of its profile) and, when the
  unit is callable in its input space, from probes (the unit evaluated at
  :math:`x_i + \delta u_i`, radii :math:`\delta` from :math:`10^{-3}` of the data's spread
  upwards: below the sampling resolution). Each says whether its profile resolves the
  exponent (``resolved``, ``profile.reason``);
- the stability bound: :math:`C(\eta, \varepsilon)` and the fraction of pairs meeting
  :math:`\lVert T x - T y\rVert \le 2\varepsilon + C\lVert x - y\rVert^\eta`, with
  :math:`\varepsilon` = the unit's ``max_deviation`` from the exact OT map, :math:`\eta` the
  probe exponent when resolved, else the sample's (``bound_from``), over the sample fit's
  scale range. The probe comes first because the exponent is a small-scale property and the
  probes reach below the sampling resolution: a smooth block whose largest local ratio only
  few sample pairs reach reads below 1 on the sample (docs/analysis/holder.md, failure
  modes), never on the probes. Neither resolved: no bound, and a note says why.

Every measurement is kept as the object :mod:`analysis` returns; :meth:`UnitAnalysis.record`
turns them into the unit's entry of ``analysis.json`` through their ``to_dict``, so a field
added to a result class reaches the file without a change here. The wall-clock seconds of
each measurement are kept too (``seconds``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch

import analysis
from analysis import HolderFit, JacobianAsymmetry, MapComparison

from . import options as _options
from .options import AnalysisOptions, interval_options
from .units import Unit

__all__ = ["PROBE_ANCHORS", "PROBE_RADII", "UnitAnalysis", "measure_unit", "not_measured", "window_scales"]

PROBE_RADII = 7
"""Radii of the probe-mode Hölder fit (its default ``geomspace(1e-3, 1, 7)`` times the data's spread)."""
PROBE_ANCHORS = 256
"""Anchor points of the probe-mode Hölder fit: ``n_pairs = PROBE_RADII * PROBE_ANCHORS``."""


def _usable(fit: HolderFit | None) -> bool:
    """Whether a fit's exponent can carry a stability bound (resolved, finite, positive)."""
    return fit is not None and fit.resolved and math.isfinite(fit.eta) and fit.eta > 0


def _why_not(fit: HolderFit | None, name: str) -> str:
    """Why a fit's exponent cannot carry the bound."""
    if fit is None:
        return f"{name}: no fit"
    if not fit.resolved:
        return f"{name}: {fit.profile.reason}"
    return f"{name}: exponent {fit.eta:.3g} <= 0"


def window_scales(fit: HolderFit) -> tuple[float, float] | None:
    """The input scales ``(lower edge, upper edge)`` of the profile's small-scale window (``None``: no window)."""
    p = fit.profile
    if p.window is None:
        return None
    return float(p.lower[p.window[0]]), float(p.upper[p.window[1]])


@dataclass(frozen=True)
class UnitAnalysis:
    r"""What was measured on one unit; ``None`` for what could not be.

    Attributes
    ----------
    unit : Unit
        The unit and its samples.
    comparison : MapComparison or None
        The unit's pairing against the exact OT assignment, with subsampling intervals
        (``None``: not comparable or not selected).
    w2, w2_squared : float or None
        :math:`W_2` and :math:`W_2^2` between the input and output samples, by ``w2_method``.
    w2_method : str or None
    jacobian : JacobianAsymmetry or None
        Only where ``comparison.uninformative`` and the unit is callable in its input space.
    holder : HolderFit or None
        Sample mode, :math:`\varepsilon = 0`: the small-scale exponent of the profile.
    holder_probe : HolderFit or None
        Probe mode (the unit as a callable), :math:`\varepsilon = 0`; ``None`` when the unit
        has no callable (a stride-2 block against its shortcut image) or the fit failed.
    stability : HolderFit or None
        The bound at the exponent of ``bound_from`` with :math:`\varepsilon` =
        ``comparison.max_deviation``, over the sample fit's scale range.
    bound_from : {'sample', 'probe'} or None
        Which fit's exponent the bound uses: the probe's when resolved, else the sample's.
    note : str or None
        Why something is missing.
    seconds : dict of str to float
        Wall-clock seconds of each measurement (``map_vs_ot``, ``jacobian``, ``holder``,
        ``holder_probe``, ``stability``, ``w2``).
    """

    unit: Unit
    comparison: MapComparison | None = None
    w2: float | None = None
    w2_squared: float | None = None
    w2_method: str | None = None
    jacobian: JacobianAsymmetry | None = None
    holder: HolderFit | None = None
    holder_probe: HolderFit | None = None
    stability: HolderFit | None = None
    bound_from: str | None = None
    note: str | None = None
    seconds: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def kinetic(self) -> float | None:
        r"""The unit's own cost :math:`\frac1n\sum_i \lVert t_i - x_i\rVert^2` (``None`` when not measured)."""
        return self.comparison.kinetic if self.comparison is not None else None

    @property
    def exponents_overlap(self) -> bool | None:
        """Whether the 95% intervals of the sample and the probe exponents overlap (``None``: one has none)."""
        a = self.holder.eta_ci if self.holder is not None else None
        b = self.holder_probe.eta_ci if self.holder_probe is not None else None
        if a is None or b is None:
            return None
        return bool(a[0] <= b[1] and b[0] <= a[1])

    def as_module(self) -> UnitAnalysis:
        """The same measurements, labelled as the module of a one-block module."""
        return replace(self, unit=replace(self.unit, kind="module", index=self.unit.module))

    def record(self) -> dict[str, Any]:
        """The unit's entry of ``analysis.json`` (non-finite floats are written by the tool's JSON rule)."""
        u = self.unit
        out: dict[str, Any] = {
            "kind": u.kind,
            "index": u.index,
            "module": u.module,
            "reference": u.reference,
            "d_in": int(u.x_in.shape[1]),
            "d_out": int(u.x_out.shape[1]),
            "n": int(u.x_in.shape[0]),
        }
        if self.comparison is not None:
            out["kinetic"] = self.comparison.kinetic
            out["w2"], out["w2_squared"], out["w2_method"] = self.w2, self.w2_squared, self.w2_method
            out["map_vs_ot"] = self.comparison.to_dict()
            out["jacobian"] = self.jacobian.to_dict() if self.jacobian is not None else None
            if self.holder is not None:
                out["holder"] = self.holder.to_dict()
            if self.holder_probe is not None:
                out["holder_probe"] = self.holder_probe.to_dict()
            out["exponents_overlap"] = self.exponents_overlap
            if self.stability is not None:
                out["stability"] = self.stability.to_dict()
                out["bound_from"] = self.bound_from
        if self.note is not None:
            out["note"] = self.note
        if self.seconds:
            out["seconds"] = dict(self.seconds)
        return out


def not_measured(unit: Unit, note: str) -> UnitAnalysis:
    """A unit left out, with the reason."""
    return UnitAnalysis(unit, note=note)


class _Clock:
    """Wall-clock seconds of named steps."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - start


def measure_unit(unit: Unit, options: AnalysisOptions) -> UnitAnalysis:
    """Measure one unit (see the module docstring); a failed Hölder fit becomes a note, not an exception."""
    if not unit.comparable:
        return not_measured(
            unit, "input and output dimensions differ: displacement, OT comparison and Hölder fit are not defined"
        )
    seed, clock, notes = options.seed, _Clock(), []
    intervals = interval_options(len(unit.x_in))
    with clock("map_vs_ot"):
        comparison = analysis.map_vs_ot(unit.x_in, unit.x_out, seed=seed, **intervals)
    if intervals:
        notes.append(
            f"no subsampling intervals on the OT comparison: n = {len(unit.x_in)} > {_options.INTERVAL_MAX_N} "
            "(they would re-solve 20 problems of n/2 points)"
        )
    if options.method == "exact":
        w2, w2_squared = math.sqrt(max(comparison.w2_squared, 0.0)), comparison.w2_squared
    else:
        with clock("w2"):
            w = analysis.wasserstein(unit.x_in, unit.x_out, method=options.method, seed=seed)
        w2, w2_squared = w.w2, w.w2_squared
    jacobian = None
    if comparison.uninformative:
        if unit.fn is None:
            notes.append("sample test uninformative and no Jacobian test against the shortcut image")
        else:
            # float32, the network's own dtype: its round-off floor is the right one for `fraction_negative`, and
            # the asymmetry agrees with the float64 computation to 1e-10 relative (measured on a 28x28 block)
            points = torch.tensor(unit.x_in[: options.jacobian_points_for(unit.x_in.shape[1])], dtype=torch.float32)
            with clock("jacobian"):
                jacobian = analysis.jacobian_asymmetry(unit.fn, points, seed=seed)
    holder = probe = None
    try:
        with clock("holder"):
            holder = analysis.holder_fit(
                unit.x_in, unit.x_out, eps=0.0, n_pairs=options.pairs, n_bootstrap=options.bootstrap, seed=seed
            )
    except ValueError as err:  # e.g. a block that maps (almost) every point to one output
        notes.append(f"no Hölder fit: {err}")
    if unit.fn is not None:
        try:
            with clock("holder_probe"):
                probe = analysis.holder_fit(
                    torch.tensor(unit.x_in),
                    unit.fn,
                    eps=0.0,
                    n_pairs=PROBE_RADII * PROBE_ANCHORS,
                    n_bootstrap=options.bootstrap,
                    seed=seed,
                )
        except ValueError as err:
            notes.append(f"no probe Hölder fit: {err}")
    source = "probe" if _usable(probe) else "sample" if _usable(holder) else None
    stability = None
    if source is None:
        notes.append(
            f"no resolved Hölder exponent ({_why_not(holder, 'sample')}; "
            f"{_why_not(probe, 'probe') if unit.fn is not None else 'probe: the unit is not callable'}): "
            "no stability bound"
        )
    else:
        eta = (holder if source == "sample" else probe).eta
        scales = (holder.scale_min, holder.scale_max) if holder is not None else None
        try:
            with clock("stability"):
                stability = analysis.holder_fit(
                    unit.x_in,
                    unit.x_out,
                    eta=eta,
                    eps=comparison.max_deviation,
                    scales=scales,
                    n_pairs=options.pairs,
                    n_bootstrap=options.bootstrap,
                    seed=seed,
                )
        except ValueError as err:
            notes.append(f"no stability bound: {err}")
    return UnitAnalysis(
        unit,
        comparison,
        w2,
        w2_squared,
        options.method,
        jacobian=jacobian,
        holder=holder,
        holder_probe=probe,
        stability=stability,
        bound_from=source if stability is not None else None,
        note="; ".join(notes) or None,
        seconds=clock.seconds,
    )
