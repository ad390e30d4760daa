"""Errors a user can act on: the CLI prints their one-line message and exits non-zero.

Exit statuses of the ``otblocks`` command (``exit_code`` of each class):

- 0: success;
- 1: the run failed on its own terms (:class:`NonFiniteLossError`);
- 2: usage: a bad option, configuration value or run directory (:class:`UsageError`,
  :class:`ConfigError`, :class:`RunDirError`, :class:`DataNotFoundError`);
- 3: input/output: the file system refused (permissions, a file where a directory is
  expected, a full disk) or a file is not in its format (:class:`FileSystemError`,
  :class:`BrokenFileError`);
- 4: busy: another process holds the run or sweep directory (:class:`LockedError`);
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

__all__ = [
    "BrokenFileError",
    "ConfigError",
    "DataNotFoundError",
    "FileSystemError",
    "LockedError",
    "NonFiniteLossError",
    "OtblocksError",
    "RunDirError",
    "UsageError",
]


class OtblocksError(Exception):
    """Base of the errors the CLI reports as one line (``exit_code`` is its status)."""

    exit_code = 2


class ConfigError(OtblocksError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


class RunDirError(OtblocksError, ValueError):
    """A run directory is missing, unfinished, or would be overwritten."""


class UsageError(OtblocksError):
    """A bad command-line option or argument (as argparse reports it)."""


class DataNotFoundError(OtblocksError, FileNotFoundError):
    """Data files are not where the configuration says."""


class NonFiniteLossError(OtblocksError, RuntimeError):
    """A training loss became NaN or infinite; training stops and the checkpoints on disk are kept."""

    exit_code = 1


class BrokenFileError(OtblocksError, ValueError):
    """A file exists but is not in the format expected (truncated, corrupt, not UTF-8, a field missing)."""

    exit_code = 3


class FileSystemError(OtblocksError, OSError):
    """The file system refused a read or a write (permissions, not a directory, disk full)."""

    exit_code = 3


class LockedError(OtblocksError, RuntimeError):
    """Another live process holds the lock of a run or sweep directory."""

    exit_code = 4
