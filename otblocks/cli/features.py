"""``otblocks features RUN_DIR``: every block's and module's inputs and outputs on N points, to a file."""

from __future__ import annotations

import argparse

from ..analyze.options import resolve_device
from ..features import read_features, write_run_features


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features", help="write the inputs and outputs of every block of a finished run (for the OT analysis)"
    )
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument(
        "--split", choices=("val", "test"), default="val", help="which split the points come from (default: val)"
    )
    p.add_argument("--n", type=int, default=1000, help="number of points (default: 1000)")
    p.add_argument("--pool", type=int, help="average-pool feature maps to POOL x POOL")
    p.add_argument("--project", type=int, metavar="D", help="randomly project features of dimension > D to D")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the choice of points and of the projections (default: 0)"
    )
    p.add_argument("--out", help="output file (default: RUN_DIR/features/SPLIT.npz)")
    p.add_argument("--device", default="auto", help="where to run the network: auto, cpu or cuda (default: auto)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    try:
        path = write_run_features(
            args.run_dir,
            args.split,
            args.n,
            pool=args.pool,
            project=args.project,
            seed=args.seed,
            out=args.out,
            device=resolve_device(args.device),
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not args.quiet:
        _, metadata = read_features(path)
        blocks = metadata["blocks"]
        shapes = ", ".join(f"{b['stored_in_shape']}->{b['stored_out_shape']}" for b in blocks)
        print(f"{len(blocks)} blocks, {metadata['n']} points of '{args.split}': {shapes}")
        print(f"features written to {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0
