r"""Aggregate finished runs over seeds: accuracy by depth per group, with confidence intervals.

Runs are grouped by their configuration with the seeds (``train.seed``, ``data.seed``) and
the device removed; the keys that differ between groups label them (e.g. ``transport.tau``).
Unfinished runs (no ``summary.json``, e.g. a sweep still training) are left out and counted
as pending.

Paired differences: within runs that agree on everything but :math:`\tau` and the seeds, a
group with a finite :math:`\tau` is paired with the :math:`\tau = \infty` group run by run,
matching ``(train.seed, data.seed)``; the differences

.. math::

    \delta_s = a_s(\tau) - a_s(\infty)

of the test accuracy at the validation-chosen depth get a Student-t interval. Pairing
removes the variance the two runs of one seed share (the draw of the training subset, the
initialisation), so the interval of :math:`\bar\delta` is the one that says whether a gain
is real; the difference of two unpaired intervals overstates the noise.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import read_toml
from ..errors import BrokenFileError, ConfigError, RunDirError
from ..rundir import RunPaths, read_json
from .intervals import Interval, t_interval

__all__ = ["Comparison", "GroupResult", "PairedDifference", "compare_runs", "expand_run_dirs"]

_SEEDS = (("train", "seed"), ("data", "seed"))
_IGNORED = {*_SEEDS, ("train", "device"), ("train", "workers")}
_SUMMARY_FIELDS = ("val_accuracy_by_depth", "test_accuracy_by_depth", "test_accuracy_at_best_depth")
_TAU = "transport.tau"
# keys that name a group when no key varies between the runs compared
_DEFAULT_LABEL_KEYS = ("train.regime", _TAU)


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
    regime : str
        ``train.regime`` of the runs (``e2e`` groups are the baseline rows of the table).
    """

    label: str
    params: dict[str, Any]
    runs: list[str]
    val_accuracy: list[Interval]
    test_accuracy: list[Interval]
    test_at_best_depth: Interval
    regime: str = "sequential"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "params": self.params,
            "regime": self.regime,
            "runs": self.runs,
            "val_accuracy": [i.to_dict() for i in self.val_accuracy],
            "test_accuracy": [i.to_dict() for i in self.test_accuracy],
            "test_at_best_depth": self.test_at_best_depth.to_dict(),
        }


@dataclass(frozen=True)
class PairedDifference:
    r"""Test accuracy at the best depth of ``group`` minus that of ``reference``, paired by seed.

    Attributes
    ----------
    group, reference : str
        Labels of the two groups (``reference`` has :math:`\tau = \infty`).
    seeds : list of tuple
        The ``(train.seed, data.seed)`` pairs present in both groups.
    difference : Interval
        Mean and t-interval of :math:`\delta_s` over those seeds (NaN bounds with one pair).
    """

    group: str
    reference: str
    seeds: list[tuple]
    difference: Interval

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "reference": self.reference,
            "seeds": [list(s) for s in self.seeds],
            "difference": self.difference.to_dict(),
        }


@dataclass(frozen=True)
class Comparison:
    """Groups of runs, the configuration keys that tell them apart, and the runs left out.

    Attributes
    ----------
    groups : list of GroupResult
    varying_keys : list of str
    confidence : float
    pending : list of str
        Run directories without ``summary.json`` (still training, or stopped), not aggregated.
    paired : list of PairedDifference
        Every finite-tau group against its tau = inf group, where both exist.
    """

    groups: list[GroupResult]
    varying_keys: list[str]
    confidence: float
    pending: list[str] = ()
    paired: list[PairedDifference] = ()

    def to_markdown(self) -> str:
        """Test accuracy by depth, ``mean ± half-width`` (``n`` runs) per group; the best depth last.

        ``e2e`` groups are rows below the table (a baseline at full depth, repeated in every
        column); then the paired differences to tau = inf.
        """
        pct = f"{self.confidence:.0%}"
        lines = [f"Test accuracy by depth: mean ± {pct} t-interval half-width over seeds (n runs)."]
        if self.pending:
            n = len(self.pending)
            lines.append(f"{n} run{'s' if n > 1 else ''} pending (unfinished, not included).")
        columns = [g for g in self.groups if g.regime != "e2e"] or list(self.groups)
        baselines = [g for g in self.groups if g.regime == "e2e" and g not in columns]
        depth = max(len(g.test_accuracy) for g in columns)
        lines += [
            "",
            "| depth | " + " | ".join(g.label for g in columns) + " |",
            "| ---: | " + " | ".join("---:" for _ in columns) + " |",
        ]
        for k in range(depth):
            cells = [_cell(g.test_accuracy[k]) if k < len(g.test_accuracy) else "" for g in columns]
            lines.append(f"| {k + 1} | " + " | ".join(cells) + " |")
        lines.append("| best on val | " + " | ".join(_cell(g.test_at_best_depth) for g in columns) + " |")
        for b in baselines:
            name = "e2e baseline" + ("" if b.label == "train.regime=e2e" else f" ({b.label})")
            lines.append(f"| {name} | " + " | ".join(_cell(b.test_accuracy[-1]) for _ in columns) + " |")
        if self.paired:
            lines += [
                "",
                f"Paired by seed: test accuracy at the best depth minus that of tau = inf (mean ± {pct} t-interval).",
                "",
                "| group | minus | difference | pairs |",
                "| --- | --- | ---: | ---: |",
            ]
            for p in self.paired:
                lines.append(f"| {p.group} | {p.reference} | {_cell(p.difference, signed=True)} | {p.difference.n} |")
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "varying_keys": self.varying_keys,
            "confidence": self.confidence,
            "pending": list(self.pending),
            "groups": [g.to_dict() for g in self.groups],
            "paired": [p.to_dict() for p in self.paired],
        }


def _cell(i: Interval, signed: bool = False) -> str:
    mean = f"{i.mean:+.4f}" if signed else f"{i.mean:.4f}"
    if math.isnan(i.half_width):
        return f"{mean} (n={i.n})"
    return f"{mean} ± {i.half_width:.4f} (n={i.n})"


def expand_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories from the arguments: a run directory itself, or a sweep directory holding runs."""
    runs: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise RunDirError(
                f"The run directory '{path}' does not exist."
                if not path.exists()
                else f"The run directory '{path}' is a file; expected a directory."
            )
        if RunPaths(path).config.exists():
            runs.append(path)
            continue
        children = sorted(p for p in path.iterdir() if RunPaths(p).config.exists())
        if not children:
            raise RunDirError(f"'{path}' is neither a run directory nor a directory of runs (no config.toml found).")
        runs.extend(children)
    return runs


def _raw_config(path: Path) -> dict[str, dict[str, Any]]:
    raw = read_toml(RunPaths(path).config, "run's config file", broken=BrokenFileError)
    if not all(isinstance(v, dict) for v in raw.values()):
        raise BrokenFileError(f"The run's config file '{RunPaths(path).config}' must hold TOML tables only.")
    return raw


def _flat(raw: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, values in raw.items() for k, v in values.items() if (s, k) not in _IGNORED}


def _seeds(raw: dict[str, dict[str, Any]]) -> tuple:
    return tuple(raw.get(s, {}).get(k, 0) for s, k in _SEEDS)


def _read_summary(run: Path) -> dict[str, Any]:
    """The fields of ``summary.json`` that a comparison uses, checked (one line naming what is wrong)."""
    path = RunPaths(run).summary
    summary = read_json(path)
    if not isinstance(summary, dict):
        raise BrokenFileError(f"The summary '{path}' must hold a JSON object; got {type(summary).__name__}.")
    for key in _SUMMARY_FIELDS:
        if key not in summary:
            raise BrokenFileError(f"The summary '{path}' lacks the field '{key}'; re-run the run or remove it.")
    values = [
        *summary["val_accuracy_by_depth"],
        *summary["test_accuracy_by_depth"],
        summary["test_accuracy_at_best_depth"],
    ]
    if not summary["test_accuracy_by_depth"] or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise BrokenFileError(f"The summary '{path}' must hold finite accuracies; got {values!r}.")
    return summary


def _fmt(value: Any) -> str:
    return "inf" if value == math.inf or value == "inf" else str(value)


def _is_inf(value: Any) -> bool:
    return value == math.inf or value == "inf"


def compare_runs(paths: Sequence[str | Path], confidence: float = 0.95) -> Comparison:
    """Group the finished runs in ``paths`` and aggregate each group over its seeds.

    Unfinished runs are left out and listed in :attr:`Comparison.pending`.

    Raises
    ------
    ConfigError
        When ``confidence`` is not in (0, 1).
    RunDirError
        When a directory is missing, or no run in ``paths`` has finished.
    BrokenFileError
        When a ``config.toml`` or ``summary.json`` is malformed or lacks a field.
    """
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ConfigError(
            f"The 'confidence' parameter of `compare_runs` must be a number in (0, 1); got {confidence!r}."
        )
    runs, pending = [], []
    for run in expand_run_dirs(paths):
        (runs if RunPaths(run).summary.exists() else pending).append(run)
    if not runs:
        raise RunDirError(
            f"The run directory '{pending[0]}' holds no finished run (no summary.json)"
            if len(pending) == 1
            else f"None of the {len(pending)} runs has finished (no summary.json)"
        )
    raws = {run: _raw_config(run) for run in runs}
    configs = {run: _flat(raw) for run, raw in raws.items()}
    summaries = {run: _read_summary(run) for run in runs}
    keys = sorted({k for c in configs.values() for k in c})
    varying = [k for k in keys if len({repr(c.get(k)) for c in configs.values()}) > 1]
    grouped: dict[tuple, list[Path]] = {}
    for run in runs:
        grouped.setdefault(tuple(repr(configs[run].get(k)) for k in varying), []).append(run)
    label_keys = varying or [k for k in _DEFAULT_LABEL_KEYS if k in keys]
    groups = []
    for members in grouped.values():
        params = {k: configs[members[0]].get(k) for k in varying}
        shown = {k: configs[members[0]].get(k) for k in label_keys}
        label = ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items()) or "all runs"
        depth = min(len(summaries[r]["test_accuracy_by_depth"]) for r in members)

        def by(key: str, k: int, members: list[Path] = members) -> list[float]:
            return [summaries[r][key][k] for r in members]

        groups.append(
            GroupResult(
                label=label,
                params=params,
                runs=[str(r) for r in members],
                val_accuracy=[t_interval(by("val_accuracy_by_depth", k), confidence) for k in range(depth)],
                test_accuracy=[t_interval(by("test_accuracy_by_depth", k), confidence) for k in range(depth)],
                test_at_best_depth=t_interval(
                    [summaries[r]["test_accuracy_at_best_depth"] for r in members], confidence
                ),
                regime=str(configs[members[0]].get("train.regime", "sequential")),
            )
        )
    paired = _paired_differences(groups, grouped, raws, summaries, varying, confidence)
    return Comparison(groups, varying, confidence, [str(p) for p in pending], paired)


def _paired_differences(groups, grouped, raws, summaries, varying, confidence) -> list[PairedDifference]:
    """Each finite-tau group minus the tau = inf group that agrees on every other varying key."""
    if _TAU not in varying:
        return []
    members = dict(zip((g.label for g in groups), grouped.values(), strict=True))
    others = [k for k in varying if k != _TAU]

    def family(g: GroupResult) -> tuple:
        return tuple(repr(g.params.get(k)) for k in others)

    references = {family(g): g for g in groups if _is_inf(g.params.get(_TAU))}
    paired = []
    for g in groups:
        ref = references.get(family(g))
        if ref is None or g is ref or g.regime == "e2e":
            continue
        ours = {_seeds(raws[r]): summaries[r]["test_accuracy_at_best_depth"] for r in members[g.label]}
        theirs = {_seeds(raws[r]): summaries[r]["test_accuracy_at_best_depth"] for r in members[ref.label]}
        common = sorted(set(ours) & set(theirs))
        if common:
            diff = t_interval([ours[s] - theirs[s] for s in common], confidence)
            paired.append(PairedDifference(g.label, ref.label, common, diff))
    return paired
