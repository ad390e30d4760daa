"""Aggregate finished runs over seeds: accuracy by depth per group, with confidence intervals.

Runs are grouped by their configuration with the seeds (``train.seed``, ``data.seed``) and
the device removed; the keys that differ between groups label them (e.g. ``transport.tau``).
"""

from __future__ import annotations

import csv
import io
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import RunDirError
from ..rundir import RunPaths, read_json
from .intervals import Interval, t_interval

__all__ = ["GroupResult", "Comparison", "compare_runs", "expand_run_dirs"]

_IGNORED = {("train", "seed"), ("data", "seed"), ("train", "device"), ("train", "workers")}


@dataclass(frozen=True)
class GroupResult:
    """Runs that differ only by seed.

    Attributes
    ----------
    label : str
        The differing keys, e.g. ``transport.tau=0.5``.
    params : dict
        Those keys and their values.
    runs : list of str
        Run directories in the group.
    val_accuracy, test_accuracy : list of Interval
        Mean and t-interval over the runs, one per depth.
    test_at_best_depth : Interval
        Test accuracy at each run's validation-chosen depth.
    """

    label: str
    params: dict[str, Any]
    runs: list[str]
    val_accuracy: list[Interval]
    test_accuracy: list[Interval]
    test_at_best_depth: Interval

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "params": self.params,
            "runs": self.runs,
            "val_accuracy": [i.to_dict() for i in self.val_accuracy],
            "test_accuracy": [i.to_dict() for i in self.test_accuracy],
            "test_at_best_depth": self.test_at_best_depth.to_dict(),
        }


@dataclass(frozen=True)
class Comparison:
    """Groups of runs and the configuration keys that tell them apart."""

    groups: list[GroupResult]
    varying_keys: list[str]
    confidence: float

    def to_markdown(self) -> str:
        """Test accuracy by depth, ``mean ± half-width`` (``n`` runs) per group; the best depth last."""
        depth = max(len(g.test_accuracy) for g in self.groups)
        pct = f"{self.confidence:.0%}"
        lines = [
            f"Test accuracy by depth: mean ± {pct} t-interval half-width over seeds (n runs).",
            "",
            "| depth | " + " | ".join(g.label for g in self.groups) + " |",
            "| ---: | " + " | ".join("---:" for _ in self.groups) + " |",
        ]
        for k in range(depth):
            cells = [_cell(g.test_accuracy[k]) if k < len(g.test_accuracy) else "" for g in self.groups]
            lines.append(f"| {k + 1} | " + " | ".join(cells) + " |")
        lines.append("| best on val | " + " | ".join(_cell(g.test_at_best_depth) for g in self.groups) + " |")
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """One row per (group, depth, split): mean, low, high, std, n."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["group", *self.varying_keys, "depth", "split", "mean", "low", "high", "std", "n"])
        for g in self.groups:
            values = [g.params.get(k, "") for k in self.varying_keys]
            for split, intervals in (("val", g.val_accuracy), ("test", g.test_accuracy)):
                for k, i in enumerate(intervals):
                    writer.writerow([g.label, *values, k + 1, split, i.mean, i.low, i.high, i.std, i.n])
            i = g.test_at_best_depth
            writer.writerow([g.label, *values, "best", "test", i.mean, i.low, i.high, i.std, i.n])
        return out.getvalue()


def _cell(i: Interval) -> str:
    if math.isnan(i.half_width):
        return f"{i.mean:.4f} (n={i.n})"
    return f"{i.mean:.4f} ± {i.half_width:.4f} (n={i.n})"


def expand_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories from the arguments: a run directory itself, or a sweep directory holding runs."""
    runs: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise RunDirError(f"The run directory '{path}' does not exist.")
        if RunPaths(path).config.exists():
            runs.append(path)
            continue
        children = sorted(p for p in path.iterdir() if RunPaths(p).config.exists())
        if not children:
            raise RunDirError(f"'{path}' is neither a run directory nor a directory of runs (no config.toml found).")
        runs.extend(children)
    return runs


def _flat_config(path: Path) -> dict[str, Any]:
    raw = tomllib.loads(RunPaths(path).config.read_text())
    return {f"{s}.{k}": v for s, values in raw.items() for k, v in values.items() if (s, k) not in _IGNORED}


def _fmt(value: Any) -> str:
    return "inf" if value == math.inf else str(value)


def compare_runs(paths: Sequence[str | Path], confidence: float = 0.95) -> Comparison:
    """Group the finished runs in ``paths`` and aggregate each group over its seeds.

    Raises
    ------
    RunDirError
        When a directory is missing or a run is unfinished (no ``summary.json``).
    """
    runs = expand_run_dirs(paths)
    configs, summaries = {}, {}
    for run in runs:
        if not RunPaths(run).summary.exists():
            raise RunDirError(f"The run directory '{run}' holds no finished run (no summary.json).")
        configs[run] = _flat_config(run)
        summaries[run] = read_json(RunPaths(run).summary)
    keys = sorted({k for c in configs.values() for k in c})
    varying = [k for k in keys if len({repr(c.get(k)) for c in configs.values()}) > 1]
    grouped: dict[tuple, list[Path]] = {}
    for run in runs:
        grouped.setdefault(tuple(repr(configs[run].get(k)) for k in varying), []).append(run)
    groups = []
    for members in grouped.values():
        params = {k: configs[members[0]].get(k) for k in varying}
        label = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items()) or "all runs"
        depth = min(len(summaries[r]["test_accuracy_by_depth"]) for r in members)
        by = lambda key, k: [summaries[r][key][k] for r in members]  # noqa: E731
        groups.append(
            GroupResult(
                label=label,
                params=params,
                runs=[str(r) for r in members],
                val_accuracy=[t_interval(by("val_accuracy_by_depth", k), confidence) for k in range(depth)],
                test_accuracy=[t_interval(by("test_accuracy_by_depth", k), confidence) for k in range(depth)],
                test_at_best_depth=t_interval([summaries[r]["test_accuracy_at_best_depth"] for r in members], confidence),
            )
        )
    return Comparison(groups, varying, confidence)
