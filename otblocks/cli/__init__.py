"""The ``otblocks`` command line: one module per sub-command, each with ``add_parser`` and ``run``.

Errors a user can fix (:class:`otblocks.errors.OtblocksError`: bad configuration or options,
missing or unfinished run directories, missing data files, a non-finite loss) print one line,
``otblocks: error: ...``, and exit with a non-zero status, without a traceback. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..errors import OtblocksError
from . import analyze, compare, demo, features, sweep, train

__all__ = ["main", "build_parser"]

COMMANDS = (train, demo, analyze, sweep, compare, features)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otblocks",
        description="Block-wise training of residual networks with a transport penalty, and its OT analysis.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otblocks`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except OtblocksError as err:
        print(f"otblocks: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("otblocks: interrupted; resume with --resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
