r"""``otblocks analyze RUN_DIR``: every trained block and module against the exact OT map.

This module joins the trainer and the OT analysis (the core of :mod:`otblocks` never imports
:mod:`analysis`). :func:`analyze_run` is its Python entry point; it writes
``RUN_DIR/analysis/analysis.json`` (schema: ``docs/guide/analyze.md``), ``analysis.csv`` and
the figures under ``RUN_DIR/analysis/figures/``.

For each *unit* (every residual block, then every module of several blocks), with
:math:`x_i` its inputs and :math:`t_i = T(x_i)` its outputs on ``n`` points of the split:

- the displacement: kinetic cost :math:`\frac1n\sum_i \lVert t_i - x_i\rVert^2` and
  :math:`W_2(\hat\mu, \hat\nu)` between the input and output samples (``method``);
- :func:`analysis.map_vs_ot` (exact OT assignment); where its resolution flag says the sample
  cannot tell, :func:`analysis.jacobian_asymmetry` of the unit as a callable;
- the Hölder fit: :math:`\eta` fitted with :math:`\varepsilon = 0` (the regularity of the map
  itself), then :math:`C(\eta, \varepsilon)` and the fraction of pairs meeting the stability
  bound with :math:`\varepsilon` = the unit's ``max_deviation`` from the exact OT map;
  the bounds of the blocks composed along the depth;
- the minimizing-movement checks: the auxiliary loss by depth (an upper estimate of
  :math:`Z(\rho_k) = \min_F \mathcal L(F, \rho_k)`), the per-module step
  :math:`W_2(\rho_k, \rho_{k+1})` against :math:`\tau_k`, and the path length
  :math:`\sum_k W_2(\rho_k, \rho_{k+1})` against :math:`W_2(\rho_0, \rho_K)`.
"""

from __future__ import annotations

import argparse
import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Subset
from tqdm.auto import tqdm

import analysis

from ..data import iterate_batches
from ..errors import ConfigError
from ..runs import LoadedRun, load_run
from ..rundir import write_json

__all__ = ["analyze_run", "SCHEMA_VERSION", "add_parser", "run"]

SCHEMA_VERSION = 1
_JACOBIAN_POINTS = 256
_HOLDER_BOOTSTRAP = 30


@dataclass(frozen=True)
class _Unit:
    kind: str  # "block" or "module"
    index: int
    module: int
    fn: Callable[[torch.Tensor], torch.Tensor]
    shape_in: tuple[int, ...]
    x_in: np.ndarray  # (n, d_in)
    x_out: np.ndarray  # (n, d_out)


def _select(run: LoadedRun, split: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = run.data.split(split)
    total = len(dataset)
    index = np.sort(np.random.default_rng(seed).permutation(total)[: min(n, total)])
    xs, ys = zip(*iterate_batches(Subset(dataset, index.tolist()), 512))
    return torch.cat(xs), torch.cat(ys)


def _flat_fn(fn: Callable, shape_in: tuple[int, ...], device: torch.device) -> Callable:
    def flat(z: torch.Tensor) -> torch.Tensor:
        z = z.to(device=device, dtype=torch.float32)
        return fn(z.reshape(-1, *shape_in)).flatten(1)

    return flat


def _units(run: LoadedRun, x: torch.Tensor, device: torch.device) -> tuple[list[_Unit], np.ndarray]:
    """Every block and (when modules hold several blocks) every module, with its samples."""
    net = run.net
    with torch.no_grad():
        h0 = net.stem(x.to(device))
    blocks = net.blocks()
    shapes, h = [], h0
    with torch.no_grad():
        for block in blocks:
            shapes.append(tuple(h.shape[1:]))
            h = block(h)
    samples = analysis.collect_blocks(blocks, h0)
    owner = net.module_of_block()
    units = [
        _Unit("block", i, owner[i], _flat_fn(blocks[i], shapes[i], device), shapes[i], s.x_in, s.x_out)
        for i, s in enumerate(samples)
    ]
    if any(len(m.blocks) > 1 for m in net.block_modules):
        for k, module in enumerate(net.block_modules):
            first = owner.index(k)
            last = len(owner) - 1 - owner[::-1].index(k)
            units.append(
                _Unit("module", k, k, _flat_fn(module, shapes[first], device), shapes[first],
                      samples[first].x_in, samples[last].x_out)
            )
    return units, samples[0].x_in


def _measure(unit: _Unit, method: str, seed: int) -> tuple[dict[str, Any], Any, Any]:
    out: dict[str, Any] = {
        "kind": unit.kind, "index": unit.index, "module": unit.module,
        "d_in": int(unit.x_in.shape[1]), "d_out": int(unit.x_out.shape[1]), "n": int(unit.x_in.shape[0]),
    }
    if unit.x_in.shape != unit.x_out.shape:
        out["note"] = "input and output dimensions differ: displacement, OT comparison and Hölder fit are not defined"
        return out, None, None
    comparison = analysis.map_vs_ot(unit.x_in, unit.x_out)
    out["kinetic"] = comparison.kinetic
    if method == "exact":
        out["w2"] = math.sqrt(max(comparison.w2_squared, 0.0))
        out["w2_squared"] = comparison.w2_squared
    else:
        w = analysis.wasserstein(unit.x_in, unit.x_out, method=method, seed=seed)
        out["w2"], out["w2_squared"] = w.w2, w.w2_squared
    out["w2_method"] = method
    out["map_vs_ot"] = comparison.to_dict()
    out["jacobian"] = None
    if comparison.uninformative:
        points = torch.tensor(unit.x_in[:_JACOBIAN_POINTS])
        out["jacobian"] = analysis.jacobian_asymmetry(unit.fn, points, seed=seed).to_dict()
    try:
        regularity = analysis.holder_fit(unit.x_in, unit.x_out, eps=0.0, n_bootstrap=_HOLDER_BOOTSTRAP, seed=seed)
    except ValueError as err:  # e.g. a block that maps (almost) every point to one output
        out["note"] = f"no Hölder fit: {err}"
        return out, None, comparison
    out["holder"] = regularity.to_dict()
    if not regularity.eta > 0:
        out["note"] = f"fitted exponent {regularity.eta:.3g} <= 0: no stability bound"
        return out, None, comparison
    bound = analysis.holder_fit(
        unit.x_in, unit.x_out, eta=regularity.eta, eps=comparison.max_deviation,
        scales=(regularity.scale_min, regularity.scale_max), n_bootstrap=0, seed=seed,
    )
    out["stability"] = bound.to_dict()
    return out, bound, comparison


def _head_losses(run: LoadedRun, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[list[float], list[float]]:
    losses, correct = np.zeros(run.net.n_modules), np.zeros(run.net.n_modules)
    with torch.no_grad():
        for start in range(0, len(y), 512):
            xb, yb = x[start : start + 512].to(device), y[start : start + 512].to(device)
            for k, logits in enumerate(run.net.forward_all(xb)):
                losses[k] += F.cross_entropy(logits.float(), yb, reduction="sum").item()
                correct[k] += (logits.argmax(1) == yb).sum().item()
    return (losses / len(y)).tolist(), (correct / len(y)).tolist()


def analyze_run(
    run_dir: str | Path,
    *,
    split: str = "val",
    n: int = 1000,
    method: str = "exact",
    seed: int = 0,
    quiet: bool = False,
    figures: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    r"""Analyse every block and module of the finished run in ``run_dir``; return ``analysis.json``'s content.

    Parameters
    ----------
    run_dir : path
        A finished run (``summary.json`` present).
    split : {'val', 'test'}
        Which split's points are pushed through the network.
    n : int
        Points used (a seeded random subset of the split; all of it when smaller). The exact
        OT solve costs :math:`O(n^2)` memory and roughly :math:`O(n^3)` time.
    method : {'exact', 'sliced', 'bures'}
        How :math:`W_2` between each unit's input and output samples is computed; the
        comparison with the OT map is always exact.
    seed : int
        Seed of the subset, the pair sampling, bootstraps and probes.
    """
    if split not in ("val", "test"):
        raise ConfigError(f"The '--split' option must be one of {{'val', 'test'}}; got {split!r}.")
    if method not in ("exact", "sliced", "bures"):
        raise ConfigError(f"The '--method' option must be one of {{'exact', 'sliced', 'bures'}}; got {method!r}.")
    if n < 2:
        raise ConfigError(f"The '--n' option must be an integer >= 2; got {n}.")
    run = load_run(run_dir, device=device)
    dev = torch.device(device)
    x, y = _select(run, split, n, seed)
    units, rho0 = _units(run, x, dev)
    records, bounds, comparisons = [], [], []
    for unit in tqdm(units, disable=quiet, desc="analyze", unit="unit"):
        record, bound, comparison = _measure(unit, method, seed)
        records.append(record)
        comparisons.append(comparison)
        if unit.kind == "block" and bound is not None:
            bounds.append(bound)
    blocks = [r for r in records if r["kind"] == "block"]
    modules = [r for r in records if r["kind"] == "module"] or [dict(r, kind="module") for r in blocks]
    loss, accuracy = _head_losses(run, x, y, dev)
    steps = [m.get("w2") for m in modules]
    final = units[len(blocks) - 1].x_out
    w2_total = (
        analysis.wasserstein(rho0, final, method=method, seed=seed).w2 if rho0.shape == final.shape else None
    )
    result = {
        "schema_version": SCHEMA_VERSION,
        "run_dir": str(run.path),
        "split": split,
        "n": int(len(y)),
        "method": method,
        "seed": seed,
        "regime": run.config.train.regime,
        "taus": run.summary.taus,
        "blocks": blocks,
        "modules": modules,
        "composed_bound": analysis.compose_bounds(bounds).to_dict() if len(bounds) == len(blocks) and bounds else None,
        "minimizing_movement": {
            "loss_by_depth": loss,
            "accuracy_by_depth": accuracy,
            "loss_increases": int(sum(b > a for a, b in zip(loss, loss[1:]))),
            "step_w2": steps,
            "tau": run.summary.taus,
            "path_length": float(sum(steps)) if all(s is not None for s in steps) else None,
            "w2_start_end": w2_total,
        },
        "accuracy": {
            "val_accuracy_by_depth": run.summary.val_accuracy_by_depth,
            "test_accuracy_by_depth": run.summary.test_accuracy_by_depth,
            "best_depth": run.summary.best_depth,
        },
    }
    out = run.path / "analysis"
    out.mkdir(exist_ok=True)
    write_json(result, out / "analysis.json")
    _write_csv(records, out / "analysis.csv")
    if figures:
        from .analyze_figures import write_run_figures

        write_run_figures(result, units, comparisons, y.numpy(), out / "figures")
    return result


CSV_COLUMNS = [
    "kind", "index", "module", "d_in", "d_out", "n", "kinetic", "w2", "cost_ratio", "monge_gap", "identity_optimal",
    "fraction_reassigned", "l2_uvp", "max_deviation", "resolution", "uninformative", "jacobian_asymmetry",
    "jacobian_min_eigenvalue", "eta", "eta_ci_low", "eta_ci_high", "scale_min", "scale_max", "C", "eps",
    "fraction_satisfied",
]


def _write_csv(records: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in records:
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
            writer.writerow(row)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="OT analysis of every block and module of a finished run")
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument("--split", default="val", help="val or test (default: val)")
    p.add_argument("--n", type=int, default=1000, help="points of the split to use (default: 1000)")
    p.add_argument("--method", default="exact", help="W2 method: exact, sliced or bures (default: exact)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset, pairs, bootstraps (default: 0)")
    p.add_argument("--no-report", action="store_true", help="do not write report.md / report.html")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    analyze_run(args.run_dir, split=args.split, n=args.n, method=args.method, seed=args.seed, quiet=args.quiet)
    if not args.no_report:
        from ..reporting.report import write_report

        write_report(args.run_dir)
    if not args.quiet:
        print(f"analysis written to {Path(args.run_dir) / 'analysis'}")
    return 0
