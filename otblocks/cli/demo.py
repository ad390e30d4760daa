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
from importlib import resources
from pathlib import Path

from ..config import load_config
from ..reporting import compare_runs
from ..reporting.report import write_report
from ..rundir import RunPaths
from ..training import RunSummary, train
from .analyze import analyze_run
from .compare import write_comparison
from .train import overrides_of

DEFAULT_TAU = 0.5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train the embedded toy demo with and without the transport penalty")
    p.add_argument("--out", default="runs/demo", help="directory for the two runs (default: runs/demo)")
    p.add_argument("--tau", type=float, default=DEFAULT_TAU, help=f"the finite tau (default: {DEFAULT_TAU})")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
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


def format_ot_table(analyses: dict[str, dict]) -> str:
    """Per block: kinetic cost, cost ratio and Hölder exponent of each run."""
    names = list(analyses)
    head = "block " + " ".join(f"{n + ' kinetic':>16} {n + ' ratio':>14} {n + ' eta':>12}" for n in names)
    lines = [head, "-" * len(head)]
    for i in range(max(len(a["blocks"]) for a in analyses.values())):
        cells = []
        for a in analyses.values():
            b = a["blocks"][i]
            cells.append(f"{b['kinetic']:>16.4g} {b['map_vs_ot']['cost_ratio']:>14.4f} {b['holder']['eta']:>12.3f}")
        lines.append(f"{i:>5} " + " ".join(cells))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if not args.tau > 0:
        from ..errors import ConfigError

        raise ConfigError(f"The '--tau' option must be a positive number or inf; got {args.tau}.")
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
        analyses[name] = analyze_run(path, n=args.n, quiet=args.quiet)
        write_report(path)
    comparison_dir = out / "compare"
    write_comparison(compare_runs(list(runs.values())), comparison_dir)
    print()
    print(f"Accuracy by depth ({summaries[run_name(math.inf)].n_modules} modules of one block; * = best depth on validation)")
    print(format_table(summaries))
    print()
    print(f"Every block against the exact OT map ({analyses[run_name(math.inf)]['n']} validation points; "
          "cost ratio = own transport cost / W2^2, 1 = optimal pairing on the sample; eta = fitted Hölder exponent)")
    print(format_ot_table(analyses))
    print()
    for name, path in runs.items():
        s = summaries[name]
        print(f"{name}: best depth {s.best_depth}, test accuracy there {s.test_accuracy_at_best_depth:.4f}; "
              f"run directory {path}, report {path / 'report.html'}")
    print(f"comparison of the two runs: {comparison_dir}")
    print(f"demo finished in {time.perf_counter() - start:.1f} s")
    return 0
