"""``analysis.csv``: one row per unit, the main numbers of :class:`~otblocks.analyze.UnitAnalysis` flat."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .measure import UnitAnalysis

__all__ = ["CSV_COLUMNS", "write_csv"]

CSV_COLUMNS = [
    "kind",
    "index",
    "module",
    "d_in",
    "d_out",
    "n",
    "kinetic",
    "w2",
    "cost_ratio",
    "cost_ratio_ci_low",
    "cost_ratio_ci_high",
    "monge_gap",
    "monge_gap_ci_low",
    "monge_gap_ci_high",
    "identity_optimal",
    "fraction_reassigned",
    "l2_uvp",
    "max_deviation",
    "resolution",
    "uninformative",
    "jacobian_asymmetry",
    "jacobian_asymmetry_se",
    "jacobian_min_eigenvalue",
    "eta",
    "eta_ci_low",
    "eta_ci_high",
    "eta_resolved",
    "eta_probe",
    "eta_probe_ci_low",
    "eta_probe_ci_high",
    "eta_probe_resolved",
    "exponents_overlap",
    "bound_from",
    "scale_min",
    "scale_max",
    "C",
    "C_ci_low",
    "C_ci_high",
    "eps",
    "fraction_satisfied",
    "seconds",
]


def _interval(d: dict[str, Any], key: str) -> tuple[Any, Any]:
    return tuple(d.get(key) or (None, None))


def _row(r: dict[str, Any]) -> dict[str, Any]:
    row = {
        k: r.get(k)
        for k in ("kind", "index", "module", "d_in", "d_out", "n", "kinetic", "w2", "exponents_overlap", "bound_from")
    }
    m = r.get("map_vs_ot") or {}
    for k in (
        "cost_ratio",
        "monge_gap",
        "identity_optimal",
        "fraction_reassigned",
        "l2_uvp",
        "max_deviation",
        "resolution",
        "uninformative",
    ):
        row[k] = m.get(k)
    row["cost_ratio_ci_low"], row["cost_ratio_ci_high"] = _interval(m, "cost_ratio_ci")
    row["monge_gap_ci_low"], row["monge_gap_ci_high"] = _interval(m, "monge_gap_ci")
    j = r.get("jacobian") or {}
    row["jacobian_asymmetry"], row["jacobian_min_eigenvalue"] = j.get("asymmetry"), j.get("min_eigenvalue")
    row["jacobian_asymmetry_se"] = j.get("asymmetry_se")
    h, p, s = r.get("holder") or {}, r.get("holder_probe") or {}, r.get("stability") or {}
    row["eta_ci_low"], row["eta_ci_high"] = _interval(h, "eta_ci")
    row["eta_probe_ci_low"], row["eta_probe_ci_high"] = _interval(p, "eta_ci")
    row["C_ci_low"], row["C_ci_high"] = _interval(s, "C_ci")
    row.update(
        eta=h.get("eta"),
        eta_resolved=h.get("resolved"),
        eta_probe=p.get("eta"),
        eta_probe_resolved=p.get("resolved"),
        scale_min=h.get("scale_min"),
        scale_max=h.get("scale_max"),
        C=s.get("C"),
        eps=s.get("eps"),
        fraction_satisfied=s.get("fraction_satisfied"),
    )
    row["seconds"] = sum((r.get("seconds") or {}).values()) if r.get("seconds") else None
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
