"""The files of a run directory and how they are written.

``DIR/config.toml``
    The fully resolved configuration (every key, defaults included).
``DIR/metrics.jsonl``
    One JSON object per line: per (lap, module, epoch, split) for training, see
    :class:`otblocks.training.Trainer`.
``DIR/summary.json``
    Written once, when the run finishes: accuracy by depth, best depth, timings.
``DIR/checkpoints/last.pt``
    The latest checkpoint (model, optimizers, schedulers, RNG states, position).
``DIR/checkpoints/rank{R}-{P}.pt``
    While a distributed run (``--distributed``) trains: rank ``R``'s modules and optimizers
    after ``P`` epochs; merged into ``last.pt`` when the run finishes.
``DIR/pipeline.json``
    Distributed runs only: what each rank of the pipeline did (batches, in flight, waits).

JSON is strict (RFC 8259): non-finite floats are written as the strings ``"inf"``,
``"-inf"`` and ``"nan"``.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import tomli_w

from .config import RunConfig

__all__ = ["RunPaths", "jsonable", "write_json", "read_json", "write_config", "MetricsLog"]


class RunPaths:
    """Paths of the files in a run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config = self.root / "config.toml"
        self.metrics = self.root / "metrics.jsonl"
        self.summary = self.root / "summary.json"
        self.checkpoints = self.root / "checkpoints"
        self.checkpoint = self.checkpoints / "last.pt"
        self.pipeline = self.root / "pipeline.json"

    def rank_checkpoint(self, rank: int, position: int) -> Path:
        """Rank ``rank``'s checkpoint after ``position`` epochs of a distributed run."""
        return self.checkpoints / f"rank{rank}-{position:04d}.pt"

    def rank_checkpoints(self) -> dict[int, dict[int, Path]]:
        """The rank checkpoints present: ``{rank: {position: path}}``."""
        found: dict[int, dict[int, Path]] = {}
        for path in self.checkpoints.glob("rank*-*.pt"):
            match = re.fullmatch(r"rank(\d+)-(\d+)\.pt", path.name)
            if match:
                found.setdefault(int(match[1]), {})[int(match[2])] = path
        return found


def jsonable(value: Any) -> Any:
    """A copy of ``value`` with non-finite floats as strings and tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def write_json(obj: Any, path: Path) -> None:
    """Write strict JSON atomically (temporary file, then rename)."""
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _unjsonable(value: Any) -> Any:
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: _unjsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjsonable(v) for v in value]
    return value


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json` (``"inf"``, ``"-inf"``, ``"nan"`` become floats)."""
    return _unjsonable(json.loads(Path(path).read_text()))


def _tomlable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tomlable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tomlable(v) for v in value]
    return value


def write_config(config: RunConfig, path: Path) -> None:
    """Write the resolved configuration as TOML (``inf`` is a TOML float)."""
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_text(tomli_w.dumps(_tomlable(config.to_dict())))
    os.replace(tmp, path)


class MetricsLog:
    """Append-only JSONL metrics; :meth:`truncate` drops lines written after a checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lines = sum(1 for _ in self.path.open()) if self.path.exists() else 0

    def truncate(self, lines: int) -> None:
        """Keep the first ``lines`` records (those covered by the checkpoint being resumed)."""
        kept = self.path.read_text().splitlines(keepends=True)[:lines] if self.path.exists() else []
        self.path.write_text("".join(kept))
        self.lines = len(kept)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        self.lines += 1
