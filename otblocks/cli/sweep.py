"""``otblocks sweep CONFIG --set key=v1,v2 --seeds 0,1 [--data-seeds 0,1] [--jobs N] --out DIR``: a grid of runs.

Resumable: finished runs are skipped, started ones resumed.
"""

from __future__ import annotations

import argparse

from ..sweep import run_sweep


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers >= 0 separated by commas; got {text!r}") from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"expected integers >= 0 separated by commas; got {text!r}")
    return seeds


def _jobs(text: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return jobs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="train a grid of runs (values separated by commas, several seeds)")
    p.add_argument("config", help="TOML configuration file")
    p.add_argument("--out", required=True, help="directory of the runs (one sub-directory per grid point)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=V1,V2",
        help="a config key and its values, e.g. --set transport.tau=0.1,1,inf (repeatable: the grid is the product)",
    )
    p.add_argument("--seeds", type=_seeds, default=[0], help="train.seed values, e.g. 0,1,2 (default: 0)")
    p.add_argument(
        "--data-seeds",
        type=_seeds,
        default=[],
        help="data.seed values (which training subset is drawn), e.g. 0,1,2: intervals then include the draw "
        "(default: the configuration's data.seed)",
    )
    p.add_argument(
        "--jobs",
        type=_jobs,
        default=1,
        help="runs trained at once, in separate processes sharing the cores (default: 1)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override train.device")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    fixed = [f"train.device={args.device}"] if args.device else []
    run_sweep(
        args.config,
        args.out,
        args.overrides,
        args.seeds,
        data_seeds=args.data_seeds,
        fixed=fixed,
        jobs=args.jobs,
        quiet=args.quiet,
    )
    print(f"sweep finished; compare with: otblocks compare {args.out}")
    return 0
