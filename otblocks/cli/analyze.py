"""``otblocks analyze RUN_DIR``: argument parsing and printing around :func:`otblocks.analyze.analyze_run`."""

from __future__ import annotations

import argparse
import contextlib

import torch

from ..analyze import analyze_run
from ..errors import ConfigError
from ..rundir import RunPaths

__all__ = ["add_parser", "parse_blocks", "run"]


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
    p.add_argument("--split", default="val", help="val or test (default: val)")
    p.add_argument("--n", type=int, default=1000, help="points of the split to use (default: 1000)")
    p.add_argument("--method", default="exact", help="W2 method: exact, sliced or bures (default: exact)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset, pairs, bootstraps (default: 0)")
    p.add_argument("--blocks", help="analyse only these blocks, e.g. 0,3,7 (default: every block)")
    p.add_argument("--pairs", type=int, default=20_000, help="pairs of points per Hölder fit (default: 20000)")
    p.add_argument("--bootstrap", type=int, default=30,
                   help="bootstrap replicates of the Hölder exponent (default: 30)")
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


def run(args: argparse.Namespace) -> int:
    blocks = parse_blocks(args.blocks) if args.blocks is not None else None
    with _threads(args.threads):
        analyze_run(
            args.run_dir, split=args.split, n=args.n, method=args.method, seed=args.seed, pairs=args.pairs,
            bootstrap=args.bootstrap, blocks=blocks, device=args.device, quiet=args.quiet,
        )
    if not args.no_report:
        from ..reporting.report import write_report

        write_report(args.run_dir)
    if not args.quiet:
        print(f"analysis written to {RunPaths(args.run_dir).analysis}")
    return 0
