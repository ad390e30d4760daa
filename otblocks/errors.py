"""Errors a user can act on: the CLI prints their one-line message and exits non-zero."""

from __future__ import annotations

__all__ = ["OtblocksError", "ConfigError", "RunDirError", "NonFiniteLossError", "DataNotFoundError"]


class OtblocksError(Exception):
    """Base of the errors the CLI reports as one line (``exit_code`` is its status)."""

    exit_code = 2


class ConfigError(OtblocksError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


class RunDirError(OtblocksError, ValueError):
    """A run directory is missing, unfinished, or would be overwritten."""


class DataNotFoundError(OtblocksError, FileNotFoundError):
    """Data files are not where the configuration says."""


class NonFiniteLossError(OtblocksError, RuntimeError):
    """A training loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1
