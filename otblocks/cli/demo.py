"""``otblocks demo``: the main job on an embedded default, no download.

Trains the embedded configuration (``otblocks/demo.toml``: 8 blocks of the plane on two
moons) block by block twice, with :math:`\\tau = \\infty` (plain greedy) and a finite
:math:`\\tau`, then prints validation and test accuracy at every depth for both. Finished
runs found in ``--out`` are reused, so a second call only prints.
"""

from __future__ import annotations

import argparse
import math
import time
from importlib import resources
from pathlib import Path

from ..config import load_config
from ..rundir import RunPaths
from ..training import RunSummary, train
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
    # The OT analysis of every block, the comparison of the two runs and the report hang here.
    print()
    print(f"Accuracy by depth ({summaries[run_name(math.inf)].n_modules} modules of one block; * = best depth on validation)")
    print(format_table(summaries))
    print()
    for name, path in runs.items():
        s = summaries[name]
        print(f"{name}: best depth {s.best_depth}, test accuracy there {s.test_accuracy_at_best_depth:.4f}; run directory {path}")
    print(f"demo finished in {time.perf_counter() - start:.1f} s")
    return 0
