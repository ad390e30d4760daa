"""``otblocks train CONFIG --out DIR``: train one run into a run directory.

With ``--distributed``, under ``torchrun``, the ``parallel`` regime runs as a pipeline over
the launched processes (:mod:`otblocks.distributed`); rank 0 prints the summary line.
"""

from __future__ import annotations

import argparse

from ..config import check_allowed_keys, load_config
from ..distributed import train_distributed
from ..training import train


def add_common_run_options(parser: argparse.ArgumentParser) -> None:
    """``--set``, ``--device`` and ``--quiet``, shared by the commands that train."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key (repeatable), e.g. --set transport.tau=0.5",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override train.device")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def overrides_of(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides plus ``--device`` as ``train.device``."""
    return list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a network block by block into a run directory")
    p.add_argument("config", help="TOML configuration file (see configs/)")
    p.add_argument("--out", required=True, help="run directory (must be empty unless --resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument(
        "--allow-change",
        action="append",
        default=[],
        metavar="SECTION.KEY",
        help="with --resume: a config key that may differ from the run's config.toml (repeatable), e.g. "
        "--allow-change train.lr --set train.lr=0.001 after a non-finite loss; recorded in config_changes.jsonl",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="run the parallel regime as a pipeline over the processes torchrun started "
        "(torchrun --nproc-per-node=K -m otblocks train CONFIG --out DIR --distributed)",
    )
    add_common_run_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, overrides_of(args))
    if args.distributed:
        summary = train_distributed(config, args.out, resume=args.resume, quiet=args.quiet)
    else:
        check_allowed_keys(args.allow_change)
        summary = train(config, args.out, resume=args.resume, quiet=args.quiet, allow_change=args.allow_change)
    if summary is not None:  # --quiet hides the progress bars, not the result
        print(
            f"best depth {summary.best_depth}/{summary.n_modules} (validation accuracy "
            f"{summary.val_accuracy_at_best_depth:.4f}, test accuracy {summary.test_accuracy_at_best_depth:.4f}); "
            f"run directory: {args.out}"
        )
    return 0
