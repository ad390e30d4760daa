"""``otblocks demo``: the main job on an embedded default, no download.

Trains the embedded configuration (``otblocks/demo.toml``: 8 blocks of the plane on two
moons) block by block twice, with :math:`\\tau = \\infty` (plain greedy) and a finite
:math:`\\tau`; analyses every block of both runs against the exact OT map; compares the two
runs; writes each run's report; prints validation and test accuracy at every depth and the
per-block OT figures for both. Finished runs found in ``--out`` are reused.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from ..analyze import UnitAnalysis, analyze_run
from ..config import load_config
from ..reporting import compare_runs
from ..reporting.report import write_report
from ..rundir import RunPaths
from ..training import RunSummary, train
from .compare import write_comparison
from .train import overrides_of

DEFAULT_TAU = 0.5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train the embedded toy demo with and without the transport penalty")
    p.add_argument("--out", default="runs/demo", help="directory for the two runs (default: runs/demo)")
    p.add_argument("--tau", type=float, default=DEFAULT_TAU, help=f"the finite tau (default: {DEFAULT_TAU})")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a key of the embedded configuration (repeatable)",
    )
    p.add_argument("--n", type=int, default=1000, help="validation points used by the OT analysis (default: 1000)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override train.device")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run_name(tau: float) -> str:
    """Run directory name for a tau: ``tau_inf``, ``tau_0.5``."""
    return "tau_inf" if math.isinf(tau) else f"tau_{tau:g}"


def format_table(summaries: dict[str, RunSummary]) -> str:
    """Accuracy by depth, one pair of columns (val, test) per run; the best depth marked ``*``."""
    names = list(summaries)
    head = "depth " + " ".join(f"{n + ' val':>14} {n + ' test':>14}" for n in names)
    lines = [head, "-" * len(head)]
    depth = max(s.n_modules for s in summaries.values())
    for k in range(depth):
        cells = []
        for s in summaries.values():
            mark = "*" if s.best_depth == k + 1 else " "
            cells.append(f"{s.val_accuracy_by_depth[k]:>13.4f}{mark} {s.test_accuracy_by_depth[k]:>14.4f}")
        lines.append(f"{k + 1:>5} " + " ".join(cells))
    return "\n".join(lines)


def _cell(value: float | None, spec: str, width: int) -> str:
    """``value`` formatted, or ``–`` where it was not measured (``inf``/``nan`` as such)."""
    if value is None:
        return f"{'–':>{width}}"
    if not math.isfinite(value):
        return f"{value!s:>{width}}"
    return f"{value:>{width}{spec}}"


def format_ot_table(blocks: dict[str, Sequence[UnitAnalysis]]) -> str:
    """Per block: kinetic cost, cost ratio and Hölder exponent (the stability bound's) of each run (``–``: none)."""
    names = list(blocks)
    head = "block " + " ".join(f"{n + ' kinetic':>16} {n + ' ratio':>14} {n + ' eta':>12}" for n in names)
    lines = [head, "-" * len(head)]
    for i in range(max(len(b) for b in blocks.values())):
        cells = []
        for run_blocks in blocks.values():
            b = run_blocks[i] if i < len(run_blocks) else None
            ratio = b.comparison.cost_ratio if b is not None and b.comparison is not None else None
            eta = b.stability.eta if b is not None and b.stability is not None else None
            cells.append(
                f"{_cell(b.kinetic if b is not None else None, '.4g', 16)} {_cell(ratio, '.4f', 14)} "
                f"{_cell(eta, '.3f', 12)}"
            )
        lines.append(f"{i:>5} " + " ".join(cells))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if not args.tau > 0:
        from ..errors import ConfigError

        raise ConfigError(f"The '--tau' option must be a positive number or inf; got {args.tau}.")
    from ..analyze.options import AnalysisOptions

    AnalysisOptions(n=args.n)  # --n is checked before anything is trained
    config_path = resources.files("otblocks").joinpath("demo.toml")
    out = Path(args.out)
    summaries: dict[str, RunSummary] = {}
    runs: dict[str, Path] = {}
    start = time.perf_counter()
    for tau in (math.inf, args.tau):
        name = run_name(tau)
        with resources.as_file(config_path) as path:
            config = load_config(path, overrides_of(args) + [f"transport.tau={'inf' if math.isinf(tau) else tau}"])
        runs[name] = out / name
        if not args.quiet:
            print(f"training {name} (tau = {tau:g}) into {runs[name]}")
        resume = RunPaths(runs[name]).config.exists()
        summaries[name] = train(config, runs[name], resume=resume, quiet=args.quiet)
    analyses = {}
    for name, path in runs.items():
        if not args.quiet:
            print(f"analysing every block of {name} against the exact OT map")
        analyses[name] = analyze_run(path, n=args.n, device="cpu", quiet=args.quiet)
        write_report(path)
    comparison_dir = out / "compare"
    write_comparison(compare_runs(list(runs.values())), comparison_dir)
    print()
    n_modules = summaries[run_name(math.inf)].n_modules
    print(f"Accuracy by depth ({n_modules} modules of one block; * = best depth on validation)")
    print(format_table(summaries))
    print()
    print(
        f"Every block against the exact OT map ({analyses[run_name(math.inf)].n} validation points; "
        "cost ratio = own transport cost / W2^2, 1 = optimal pairing on the sample; eta = small-scale Hölder "
        "exponent, from probes through the block, else from the sample; nan: not resolved)"
    )
    print(format_ot_table({name: a.blocks for name, a in analyses.items()}))
    print()
    for name, path in runs.items():
        s = summaries[name]
        print(
            f"{name}: best depth {s.best_depth}, test accuracy there {s.test_accuracy_at_best_depth:.4f}; "
            f"run directory {path}, report {RunPaths(path).report_html}"
        )
    print(f"comparison of the two runs: {comparison_dir}")
    print(f"demo finished in {time.perf_counter() - start:.1f} s")
    return 0
