"""``otblocks analyze RUN_DIR``: argument parsing and printing around :func:`otblocks.analyze.analyze_run`."""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Sequence

import torch

from ..analyze import RunAnalysis, UnitAnalysis, analyze_run
from ..analyze.measure import window_scales
from ..errors import ConfigError
from ..rundir import RunPaths

__all__ = ["add_parser", "format_analysis", "parse_blocks", "run"]


def parse_blocks(text: str) -> tuple[int, ...]:
    """``"0,3,7"`` as ``(0, 3, 7)``."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(
            f"The '--blocks' option must be comma-separated block indices, e.g. 0,3,7; got {text!r}."
        ) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="OT analysis of every block and module of a finished run")
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument(
        "--split",
        default="val",
        help="val, test, or fresh: n new points of a toy data set, for sizes beyond its val split (default: val)",
    )
    p.add_argument(
        "--n",
        type=int,
        default=1000,
        help="points of the split to use (default: 1000; with --split fresh, up to 100000: minutes per run)",
    )
    p.add_argument("--method", default="exact", help="W2 method: exact, sliced or bures (default: exact)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset, pairs, bootstraps (default: 0)")
    p.add_argument("--blocks", help="analyse only these blocks, e.g. 0,3,7 (default: every block)")
    p.add_argument(
        "--pairs",
        type=int,
        default=500_000,
        help="Hölder fit on all pairs of a random subset of m points, m(m-1)/2 <= PAIRS (default: 500000, m = 1000)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=30,
        help="bootstrap replicates of the Hölder fits, sample and probe (default: 30)",
    )
    p.add_argument(
        "--jacobian-points",
        type=int,
        help="points of the Jacobian test, where the sample test is uninformative (default: 256, or 16 "
        "for units of more than 4096 features)",
    )
    p.add_argument("--device", default="auto", help="where the network runs: auto, cpu or cuda (default: auto)")
    p.add_argument("--threads", type=int, help="CPU threads of torch and of the BLAS (default: the libraries' own)")
    p.add_argument("--no-report", action="store_true", help="do not write report.md / report.html")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _threads(threads: int | None) -> contextlib.AbstractContextManager:
    """Limit torch's and (through threadpoolctl, when installed) the BLAS's threads to ``threads``."""
    if threads is None:
        return contextlib.nullcontext()
    if threads < 1:
        raise ConfigError(f"The '--threads' option must be an integer >= 1; got {threads}.")
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # numpy's BLAS then keeps its own thread count (OMP_NUM_THREADS sets it)
        return contextlib.nullcontext()
    return threadpool_limits(threads)


def _num(value: float | None, spec: str = ".3g") -> str:
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    return f"{value:{spec}}"


def _ci(value: float | None, interval: Sequence[float] | None, spec: str = ".3g") -> str:
    """``value [low, high]``, or the value alone where there is no interval."""
    text = _num(value, spec)
    return text + (f" [{_num(interval[0], spec)}, {_num(interval[1], spec)}]" if interval is not None else "")


def _holder_line(name: str, fit, overlap: bool | None = None) -> str:
    window = window_scales(fit)
    text = f"  Hölder, {name}: eta {_ci(fit.eta, fit.eta_ci, '.3f')}, "
    text += "resolved" if fit.resolved else f"not resolved ({fit.profile.reason})"
    if window is not None:
        text += f"; window {_num(window[0])} – {_num(window[1])}"
    if overlap is not None:
        text += "; intervals overlap" if overlap else "; intervals do NOT overlap"
    return text


def _format_unit(u: UnitAnalysis) -> list[str]:
    unit = u.unit
    head = f"{unit.kind} {unit.index}" + (f" (module {unit.module})" if unit.kind == "block" else "")
    if u.comparison is None:
        return [f"{head}: {u.note}"]
    c = u.comparison
    lines = [
        f"{head}: n = {c.n}, d = {c.d}, {sum(u.seconds.values()):.1f} s "
        f"({', '.join(f'{k} {v:.1f}' for k, v in u.seconds.items())})"
    ]
    lines.append(
        f"  map vs OT: cost ratio {_ci(c.cost_ratio, c.cost_ratio_ci, '.4f')}, "
        f"Monge gap {_ci(c.monge_gap, c.monge_gap_ci)} "
        f"(subsampling, {c.n_subsamples} x {c.subsample_size} points); resolution {_num(c.resolution)}"
        + (" (uninformative)" if c.uninformative else "")
    )
    if u.jacobian is not None:
        j = u.jacobian
        lines.append(
            f"  Jacobian: asymmetry {_num(j.asymmetry)} ± {_num(j.asymmetry_se, '.2g')} (s.e., {j.n} points), "
            f"min eigenvalue {_num(j.min_eigenvalue)}"
        )
    if u.holder is not None:
        lines.append(_holder_line("sample", u.holder))
    if u.holder_probe is not None:
        lines.append(_holder_line("probe ", u.holder_probe, u.exponents_overlap))
    if u.stability is not None:
        s = u.stability
        lines.append(
            f"  stability bound (eta {_num(s.eta, '.3f')} from the {u.bound_from} fit): eps {_num(s.eps)}, "
            f"C {_ci(s.C, s.C_ci)}, satisfied by {100 * s.fraction_satisfied:.2f}% of {s.n_pairs_total} pairs"
        )
    if u.note:
        lines.append(f"  note: {u.note}")
    return lines


def format_analysis(result: RunAnalysis) -> str:
    """What ``otblocks analyze`` prints: every unit's numbers with their intervals, then the run's."""
    units = list(result.blocks)
    if len(result.modules) < len(result.blocks):  # some module holds several blocks
        units += result.modules
    lines = [line for u in units for line in _format_unit(u)]
    c = result.composed_bound
    if c is not None:
        lines.append(
            f"composed bound along {len(c.eta)} blocks: exponent prod eta_k = {_num(c.exponent, '.3f')}, "
            f"floor {_num(c.floor)}"
        )
    else:
        lines.append("composed bound: none (not every block has a stability bound; see the notes)")
    mm = result.movement
    if mm.w2_start_end is not None:
        lines.append(
            f"W2(rho_0, rho_K) = {_ci(mm.w2_start_end, mm.w2_start_end_ci)} ({result.options.method}; "
            f"bias: {mm.w2_start_end_bias}); path length {_num(mm.path_length)}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    blocks = parse_blocks(args.blocks) if args.blocks is not None else None
    with _threads(args.threads):
        result = analyze_run(
            args.run_dir,
            split=args.split,
            n=args.n,
            method=args.method,
            seed=args.seed,
            pairs=args.pairs,
            bootstrap=args.bootstrap,
            blocks=blocks,
            jacobian_points=args.jacobian_points,
            device=args.device,
            quiet=args.quiet,
        )
    if not args.no_report:
        from ..reporting.report import write_report

        write_report(args.run_dir)
    if not args.quiet:
        print(format_analysis(result))
        print(f"analysis written to {RunPaths(args.run_dir).analysis}")
    return 0
