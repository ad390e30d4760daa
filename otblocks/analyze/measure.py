r"""The measurements of one unit: displacement, the exact OT map, the Jacobian test, the Hölder fit.

For a unit with inputs :math:`x_i` and outputs :math:`t_i = T(x_i)` on ``n`` points:

- the displacement: kinetic cost :math:`\frac1n\sum_i \lVert t_i - x_i\rVert^2` and
  :math:`W_2(\hat\mu, \hat\nu)` between the input and output samples (``method``);
- :func:`analysis.map_vs_ot` (exact OT assignment); where its resolution flag says the sample
  cannot tell, :func:`analysis.jacobian_asymmetry` of the unit as a callable;
- the Hölder fit: :math:`\eta` fitted with :math:`\varepsilon = 0` (the regularity of the map
  itself), then :math:`C(\eta, \varepsilon)` and the fraction of pairs meeting the stability
  bound with :math:`\varepsilon` = the unit's ``max_deviation`` from the exact OT map.

Every measurement is kept as the object :mod:`analysis` returns; :meth:`UnitAnalysis.record`
turns them into the unit's entry of ``analysis.json`` through their ``to_dict``, so a field
added to a result class reaches the file without a change here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch

import analysis
from analysis import HolderFit, JacobianAsymmetry, MapComparison

from .options import AnalysisOptions
from .units import Unit

__all__ = ["UnitAnalysis", "measure_unit", "not_measured"]


@dataclass(frozen=True)
class UnitAnalysis:
    r"""What was measured on one unit; ``None`` for what could not be.

    Attributes
    ----------
    unit : Unit
        The unit and its samples.
    comparison : MapComparison or None
        The unit's pairing against the exact OT assignment (``None``: not comparable or not selected).
    w2, w2_squared : float or None
        :math:`W_2` and :math:`W_2^2` between the input and output samples, by ``w2_method``.
    w2_method : str or None
    jacobian : JacobianAsymmetry or None
        Only where ``comparison.uninformative`` and the unit is callable in its input space.
    holder : HolderFit or None
        :math:`\eta` fitted with :math:`\varepsilon = 0`.
    stability : HolderFit or None
        The bound at that :math:`\eta` with :math:`\varepsilon` = ``comparison.max_deviation``.
    note : str or None
        Why something is missing.
    """

    unit: Unit
    comparison: MapComparison | None = None
    w2: float | None = None
    w2_squared: float | None = None
    w2_method: str | None = None
    jacobian: JacobianAsymmetry | None = None
    holder: HolderFit | None = None
    stability: HolderFit | None = None
    note: str | None = None

    @property
    def kinetic(self) -> float | None:
        r"""The unit's own cost :math:`\frac1n\sum_i \lVert t_i - x_i\rVert^2` (``None`` when not measured)."""
        return self.comparison.kinetic if self.comparison is not None else None

    def as_module(self) -> UnitAnalysis:
        """The same measurements, labelled as the module of a one-block module."""
        return replace(self, unit=replace(self.unit, kind="module", index=self.unit.module))

    def record(self) -> dict[str, Any]:
        """The unit's entry of ``analysis.json`` (non-finite floats are written by the tool's JSON rule)."""
        u = self.unit
        out: dict[str, Any] = {
            "kind": u.kind, "index": u.index, "module": u.module, "reference": u.reference,
            "d_in": int(u.x_in.shape[1]), "d_out": int(u.x_out.shape[1]), "n": int(u.x_in.shape[0]),
        }
        if self.comparison is not None:
            out["kinetic"] = self.comparison.kinetic
            out["w2"], out["w2_squared"], out["w2_method"] = self.w2, self.w2_squared, self.w2_method
            out["map_vs_ot"] = self.comparison.to_dict()
            out["jacobian"] = self.jacobian.to_dict() if self.jacobian is not None else None
            if self.holder is not None:
                out["holder"] = self.holder.to_dict()
            if self.stability is not None:
                out["stability"] = self.stability.to_dict()
        if self.note is not None:
            out["note"] = self.note
        return out


def not_measured(unit: Unit, note: str) -> UnitAnalysis:
    """A unit left out, with the reason."""
    return UnitAnalysis(unit, note=note)


def measure_unit(unit: Unit, options: AnalysisOptions) -> UnitAnalysis:
    """Measure one unit (see the module docstring); a failed Hölder fit becomes a note, not an exception."""
    if not unit.comparable:
        return not_measured(
            unit, "input and output dimensions differ: displacement, OT comparison and Hölder fit are not defined"
        )
    seed = options.seed
    comparison = analysis.map_vs_ot(unit.x_in, unit.x_out)
    if options.method == "exact":
        w2, w2_squared = math.sqrt(max(comparison.w2_squared, 0.0)), comparison.w2_squared
    else:
        w = analysis.wasserstein(unit.x_in, unit.x_out, method=options.method, seed=seed)
        w2, w2_squared = w.w2, w.w2_squared
    measured = UnitAnalysis(unit, comparison, w2, w2_squared, options.method)
    notes = []
    if comparison.uninformative:
        if unit.fn is None:
            notes.append("sample test uninformative and no Jacobian test against the shortcut image")
        else:
            points = torch.tensor(unit.x_in[: options.jacobian_points])
            measured = replace(measured, jacobian=analysis.jacobian_asymmetry(unit.fn, points, seed=seed))
    try:
        regularity = analysis.holder_fit(
            unit.x_in, unit.x_out, eps=0.0, n_pairs=options.pairs, n_bootstrap=options.bootstrap, seed=seed
        )
    except ValueError as err:  # e.g. a block that maps (almost) every point to one output
        return replace(measured, note="; ".join([*notes, f"no Hölder fit: {err}"]))
    measured = replace(measured, holder=regularity)
    if not regularity.eta > 0:
        note = f"fitted exponent {regularity.eta:.3g} <= 0: no stability bound"
        return replace(measured, note="; ".join([*notes, note]))
    bound = analysis.holder_fit(
        unit.x_in, unit.x_out, eta=regularity.eta, eps=comparison.max_deviation,
        scales=(regularity.scale_min, regularity.scale_max), n_pairs=options.pairs, n_bootstrap=0, seed=seed,
    )
    return replace(measured, stability=bound, note="; ".join(notes) or None)
