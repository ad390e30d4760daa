"""The run directory: every file's path, its format, and the one reader of each.

``DIR/config.toml``
    The fully resolved configuration (every key, defaults included); read back with
    :meth:`RunPaths.read_config`.
``DIR/metrics.jsonl``
    One JSON object per line: per (lap, module, epoch, split) for training, see
    :class:`otblocks.training.Trainer`.
``DIR/summary.json``
    Written once, when the run finishes: accuracy by depth, best depth, timings; read back
    with :meth:`RunPaths.read_summary`.
``DIR/checkpoints/last.pt``
    The latest checkpoint (model, optimizers, schedulers, RNG states, position).
``DIR/checkpoints/rank{R}-{P}.pt``
    While a distributed run (``--distributed``) trains: rank ``R``'s modules and optimizers
    after ``P`` epochs; merged into ``last.pt`` when the run finishes.
``DIR/pipeline.json``
    Distributed runs only: what each rank of the pipeline did (batches, in flight, waits).
``DIR/tensorboard/``
    TensorBoard scalars, when ``train.tensorboard`` is on.
``DIR/config_changes.jsonl``
    The keys a ``--resume --allow-change`` changed (old and new value, from which checkpoint on).
``DIR/analysis/analysis.json``, ``DIR/analysis/analysis.csv``, ``DIR/analysis/figures/*.png``
    Written by ``otblocks analyze`` (:mod:`otblocks.analyze`); the figures are listed, with
    their captions, in :data:`FIGURES`.
``DIR/report.md``, ``DIR/report.html``
    The report (:mod:`otblocks.reporting.report`).
``DIR/features/{split}.npz``
    Written by ``otblocks features`` (:mod:`otblocks.features`).

JSON is strict (RFC 8259), and every JSON file of the tool follows one rule for non-finite
floats: they are written as the strings ``"inf"``, ``"-inf"`` and ``"nan"``
(:func:`jsonable`; the analysis results' ``to_dict`` follows the same rule), and
:func:`read_json` turns them back into floats.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from .config import RunConfig, config_from_dict, read_toml
from .errors import BrokenFileError, RunDirError

__all__ = [
    "FIGURES",
    "MetricsLog",
    "RunFigure",
    "RunPaths",
    "jsonable",
    "read_json",
    "write_config",
    "write_json",
]


@dataclass(frozen=True)
class RunFigure:
    """A figure of ``otblocks analyze``: its file name under ``analysis/figures/`` and its caption."""

    name: str
    caption: str


ACCURACY_BY_DEPTH = RunFigure(
    "accuracy_by_depth.png",
    "Validation (dashed) and test accuracy of every depth's head; dotted line: the best depth on validation.",
)
DISPLACEMENT_BY_BLOCK = RunFigure(
    "displacement_by_block.png",
    "Kinetic cost (the block's own pairing) and W2^2 (the optimal pairing) by block (log scale).",
)
COST_RATIO_BY_BLOCK = RunFigure(
    "cost_ratio_by_block.png",
    "Cost ratio kinetic / W2^2 by block (1: the block's pairing is optimal on the sample).",
)
HOLDER = RunFigure(
    "holder.png",
    "Pairs of points: ||T(x) - T(y)|| against ||x - y||, the bound 2 eps + C r^eta and the fitted scale range, "
    "by block.",
)
HOLDER_PROFILE = RunFigure(
    "holder_profile.png",
    "Hölder profile by block: the largest ||T(x) - T(y)|| / ||x - y|| at each scale, from pairs of sample points "
    "(octave bands of ||x - y|| from the sampling resolution up, at their upper edges) and from probes x + delta u "
    "(the block evaluated below the sampling resolution), with 95% bootstrap bands; filled markers: the small-scale "
    "window whose slope gives eta (flat: Lipschitz, eta = 1; slope eta - 1: eta-Hölder).",
)
TRANSPORT_ARROWS = RunFigure(
    "transport_arrows.png",
    "2-D blocks only. Blue: the block's arrows x -> T(x); grey: exact-OT arrows; red circles: points the optimal "
    "assignment re-routes.",
)
POINT_CLOUDS = RunFigure("point_clouds.png", "2-D data only: the sample at every depth, coloured by class.")

FIGURES = (
    ACCURACY_BY_DEPTH,
    DISPLACEMENT_BY_BLOCK,
    COST_RATIO_BY_BLOCK,
    HOLDER,
    HOLDER_PROFILE,
    TRANSPORT_ARROWS,
    POINT_CLOUDS,
)
"""Every figure ``otblocks analyze`` may write, in the order the report shows them."""


class RunPaths:
    """Every path of a run directory, and the readers of its configuration, summary and analysis."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config = self.root / "config.toml"
        self.metrics = self.root / "metrics.jsonl"
        self.summary = self.root / "summary.json"
        self.checkpoints = self.root / "checkpoints"
        self.checkpoint = self.checkpoints / "last.pt"
        self.pipeline = self.root / "pipeline.json"
        self.tensorboard = self.root / "tensorboard"
        self.config_changes = self.root / "config_changes.jsonl"
        self.analysis = self.root / "analysis"
        self.analysis_json = self.analysis / "analysis.json"
        self.analysis_csv = self.analysis / "analysis.csv"
        self.figures = self.analysis / "figures"
        self.report_md = self.root / "report.md"
        self.report_html = self.root / "report.html"
        self.features = self.root / "features"

    def figure(self, figure: RunFigure) -> Path:
        """The file of one of the :data:`FIGURES`."""
        return self.figures / figure.name

    def features_file(self, split: str) -> Path:
        """The default file of ``otblocks features`` for ``split``."""
        return self.features / f"{split}.npz"

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

    def is_run(self) -> bool:
        """Whether the directory holds a run, finished or not (its ``config.toml`` is there)."""
        return self.config.is_file()

    def is_finished(self) -> bool:
        """Whether the run finished (its ``summary.json`` is there)."""
        return self.summary.is_file()

    def read_config(self) -> RunConfig:
        """The run's resolved configuration, read and validated like :func:`otblocks.config.load_config`
        (a file that is not UTF-8 TOML is a :class:`otblocks.errors.BrokenFileError`)."""
        return config_from_dict(read_toml(self.config, "run's config file", broken=BrokenFileError))

    def read_summary(self) -> dict[str, Any]:
        """The content of ``summary.json`` (see :class:`otblocks.training.RunSummary` for its fields).

        Raises
        ------
        RunDirError
            When the run has not finished (no ``summary.json``).
        """
        if not self.is_finished():
            raise RunDirError(
                f"The run directory '{self.root}' holds no finished run (no summary.json); "
                "finish it with `otblocks train CONFIG --out DIR --resume`."
            )
        return read_json(self.summary)

    def read_analysis(self) -> dict[str, Any] | None:
        """The content of ``analysis/analysis.json``, or ``None`` before ``otblocks analyze`` ran."""
        return read_json(self.analysis_json) if self.analysis_json.is_file() else None


def jsonable(value: Any) -> Any:
    """A copy of ``value`` with non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"`` and tuples as lists.

    The one rule of the tool's JSON files for non-finite numbers; ``analysis``'s ``to_dict``
    (which cannot import :mod:`otblocks`) writes the same strings.
    """
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
    """Read a JSON file written by :func:`write_json` (``"inf"``, ``"-inf"``, ``"nan"`` become floats).

    A file that is not UTF-8 JSON raises :class:`otblocks.errors.BrokenFileError` naming it.
    """
    try:
        return _unjsonable(json.loads(Path(path).read_text(encoding="utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BrokenFileError(f"The file '{path}' must be JSON written by otblocks; it is not ({err}).") from None


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

    def require(self, lines: int) -> list[str]:
        """The file's lines, after checking it holds at least ``lines`` complete records.

        Raises :class:`otblocks.errors.BrokenFileError` when it holds fewer (the records of the
        checkpoint being resumed were lost, and resuming would leave a gap).
        """
        every = self.path.read_text().splitlines(keepends=True) if self.path.exists() else []
        complete = len(every) - (1 if every and not every[-1].endswith("\n") else 0)
        if complete < lines:
            raise BrokenFileError(
                f"The metrics file '{self.path}' holds {complete} complete records but the checkpoint covers "
                f"{lines}; records were lost, so the run cannot be resumed exactly: start a fresh run."
            )
        return every

    def truncate(self, lines: int) -> None:
        """Keep the first ``lines`` records (those covered by the checkpoint being resumed), atomically."""
        every = self.require(lines)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(every[:lines]))
        os.replace(tmp, self.path)
        self.lines = lines

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        self.lines += 1
