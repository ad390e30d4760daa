"""The ``otblocks`` command line: one module per sub-command, each with ``add_parser`` and ``run``.

Every error a user can act on prints one line, ``otblocks: error: ...``, without a traceback,
and exits with the status of :mod:`otblocks.errors`: 2 for usage (bad options, configuration
values or run directories), 3 for input/output (the file system refused, or a file is not in
its format), 4 when another process holds the directory, 1 when training failed on its own
terms, 130 on Ctrl-C. The mapping from exceptions to lines lives here, in :func:`main`, once:

- :class:`otblocks.errors.OtblocksError` prints its message (raised where the value enters);
- a bad option (argparse) is a usage error, printed on one line;
- :class:`OSError` (permission denied, a file where a directory is expected, a full disk)
  names the path and what the system said;
- a file not in its format (TOML, JSON, UTF-8, a checkpoint) names the file where the reader
  knows it, else the format;
- :class:`analysis.MemoryBudgetError` (an exact OT problem beyond the memory budget) says
  which option of the command makes it smaller.

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import pickle
import re
import sys
import tomllib
from collections.abc import Sequence
from typing import NoReturn

from ..errors import OtblocksError, UsageError
from . import analyze, compare, demo, features, sweep, train

__all__ = ["build_parser", "error_line", "main"]

COMMANDS = (train, demo, analyze, sweep, compare, features)

USAGE, IO, INTERRUPTED = 2, 3, 130

# what to say on Ctrl-C: only the commands that write resumable runs can be resumed
_RESUME_HINT = {
    "train": "resume with the same command and --resume",
    "sweep": "run the same sweep command again to resume it (finished runs are skipped)",
}

# the option that shrinks an exact OT problem, per command
_SMALLER_HINT = {
    "analyze": "pass a smaller --n",
    "demo": "pass a smaller --n",
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (raised, then printed by :func:`main`)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`).")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="otblocks",
        description="Block-wise training of residual networks with a transport penalty, and its OT analysis.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _os_error_line(err: OSError) -> str:
    """``cannot write 'PATH': Permission denied`` with what was expected where the errno says it."""
    path = err.filename if err.filename is not None else "?"
    expected = {
        errno.ENOTDIR: "; a part of it is a file where a directory is expected",
        errno.EISDIR: "; it is a directory where a file is expected",
        errno.EEXIST: "; it already exists (as a file?) where a directory is expected",
        errno.ENOSPC: "; the disk is full (the files already written are kept)",
        errno.EROFS: "; the file system is read-only, choose another --out",
        errno.EACCES: "; choose a directory you may write to",
        errno.ENOENT: "",
    }.get(err.errno or -1, "")
    return f"'{path}': {err.strerror or err}{expected}."


def error_line(err: BaseException, command: str | None = None) -> tuple[str, int] | None:
    """The one-line message and exit status for an error at the CLI boundary, or None for a bug."""
    if isinstance(err, OtblocksError):
        return str(err), err.exit_code
    if isinstance(err, OSError):
        return _os_error_line(err), IO
    if isinstance(err, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({err.reason} at byte {err.start}).", IO
    if isinstance(err, tomllib.TOMLDecodeError):
        return f"a TOML file is malformed: {err}.", IO
    if isinstance(err, json.JSONDecodeError):
        return f"a JSON file is malformed: {err}.", IO
    if isinstance(err, (pickle.UnpicklingError, EOFError)):
        return f"a checkpoint is corrupt ({err}); start a fresh run.", IO
    if type(err).__name__ == "MemoryBudgetError":  # analysis.MemoryBudgetError, without importing analysis
        text = " ".join(str(err).split())
        first = text.split(". ")[0].rstrip(".")
        at_most = re.search(r"at most (\d+) points", text)
        hint = _SMALLER_HINT.get(command or "", "use a smaller sample")
        return f"{first}; {hint}{f' (at most {at_most[1]})' if at_most else ''}.", USAGE
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otblocks`` console script; returns the exit status."""
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        hint = _RESUME_HINT.get(command or "")
        print(f"otblocks: interrupted{'; ' + hint if hint else ''}.", file=sys.stderr)
        return INTERRUPTED
    except Exception as err:
        line = error_line(err, command)
        if line is None:
            raise
        message, status = line
        print(f"otblocks: error: {' '.join(message.split())}", file=sys.stderr)
        return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
