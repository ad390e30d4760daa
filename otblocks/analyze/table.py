"""``analysis.csv``: one row per unit, the main numbers of :class:`~otblocks.analyze.UnitAnalysis` flat."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .measure import UnitAnalysis

__all__ = ["CSV_COLUMNS", "write_csv"]

CSV_COLUMNS = [
    "kind", "index", "module", "d_in", "d_out", "n", "kinetic", "w2", "cost_ratio", "monge_gap", "identity_optimal",
    "fraction_reassigned", "l2_uvp", "max_deviation", "resolution", "uninformative", "jacobian_asymmetry",
    "jacobian_min_eigenvalue", "eta", "eta_ci_low", "eta_ci_high", "scale_min", "scale_max", "C", "eps",
    "fraction_satisfied",
]


def _row(r: dict[str, Any]) -> dict[str, Any]:
    row = {k: r.get(k) for k in ("kind", "index", "module", "d_in", "d_out", "n", "kinetic", "w2")}
    m = r.get("map_vs_ot") or {}
    for k in ("cost_ratio", "monge_gap", "identity_optimal", "fraction_reassigned", "l2_uvp", "max_deviation",
              "resolution", "uninformative"):
        row[k] = m.get(k)
    j = r.get("jacobian") or {}
    row["jacobian_asymmetry"], row["jacobian_min_eigenvalue"] = j.get("asymmetry"), j.get("min_eigenvalue")
    h, s = r.get("holder") or {}, r.get("stability") or {}
    ci = h.get("eta_ci") or (None, None)
    row.update(eta=h.get("eta"), eta_ci_low=ci[0], eta_ci_high=ci[1], scale_min=h.get("scale_min"),
               scale_max=h.get("scale_max"), C=s.get("C"), eps=s.get("eps"),
               fraction_satisfied=s.get("fraction_satisfied"))
    return row


def write_csv(units: Sequence[UnitAnalysis], path: Path) -> None:
    """Write one row per unit (empty cells: not measured; ``inf``/``nan`` as in the JSON record)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for unit in units:
            writer.writerow(_row(unit.record()))
    tmp.replace(path)
