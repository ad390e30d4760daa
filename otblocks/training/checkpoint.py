"""Atomic checkpoints: write to a temporary file in the same directory, then rename."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BrokenFileError

__all__ = ["save_atomic", "load_checkpoint", "previous_checkpoint", "rng_state", "set_rng_state"]


def previous_checkpoint(path: Path) -> Path:
    """Where :func:`save_atomic` keeps the checkpoint ``path`` replaced: ``last.pt`` -> ``prev.pt``."""
    path = Path(path)
    return path.with_name("prev" + path.suffix)


def save_atomic(obj: Any, path: Path, *, keep_previous: bool = False) -> None:
    """``torch.save`` to ``path.tmp``, fsync, then ``os.replace``: a crash leaves the old file.

    ``keep_previous``: the file being replaced stays as :func:`previous_checkpoint` (a hard
    link, renamed into place before the new file is), so a good checkpoint is always on disk.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if keep_previous and path.exists():
        prev_tmp = path.with_name(previous_checkpoint(path).name + ".tmp")
        prev_tmp.unlink(missing_ok=True)
        os.link(path, prev_tmp)
        os.replace(prev_tmp, previous_checkpoint(path))
    os.replace(tmp, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_atomic` (a trusted local file).

    Raises
    ------
    BrokenFileError
        When the file is truncated or not a checkpoint; the message names it and the way out.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, OSError, AttributeError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        prev = previous_checkpoint(path)
        way = (
            f"resume from the previous one (mv {prev} {path}) or start a fresh run"
            if prev.exists() and prev != Path(path)
            else "start a fresh run"
        )
        reason = " ".join(str(err).split())[:120]
        raise BrokenFileError(
            f"The checkpoint '{path}' is unreadable ({type(err).__name__}: {reason}); {way}."
        ) from None


def rng_state() -> dict[str, Any]:
    """The global random states: torch (CPU and every CUDA device), NumPy and ``random``."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),  # noqa: NPY002 - the global state other code may draw from
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only where devices exist)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])  # noqa: NPY002 - restores what rng_state saved
    random.setstate(state["python"])
