"""A grid of runs: every combination of ``--set key=v1,v2,...`` values and seeds, resumable."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .config import load_config
from .errors import ConfigError
from .rundir import RunPaths, write_json
from .training import RunSummary, train

__all__ = ["SweepRun", "expand_grid", "run_sweep"]


@dataclass(frozen=True)
class SweepRun:
    """One point of the grid: its directory name and its ``section.key=value`` overrides."""

    name: str
    overrides: tuple[str, ...]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: ``[1,2],3`` -> ``['[1,2]', '3']``."""
    parts, depth, quote, current = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    return [p.strip() for p in parts]


def expand_grid(overrides: Sequence[str], seeds: Sequence[int]) -> list[SweepRun]:
    """The runs of a grid: each override may list values separated by commas; seeds vary last."""
    axes: list[tuple[str, list[str]]] = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"A --set value must look like 'section.key=v1,v2'; got {item!r}.")
        key, values = item.split("=", 1)
        axes.append((key.strip(), _split_top_level(values)))
    if not seeds:
        raise ConfigError("The '--seeds' option must list at least one seed; got an empty list.")
    axes.append(("train.seed", [str(s) for s in seeds]))
    short = [k.rsplit(".", 1)[-1] for k, _ in axes]
    names = [k if short.count(s) > 1 else s for (k, _), s in zip(axes, short)]
    runs = []
    for combo in itertools.product(*(values for _, values in axes)):
        varying = [(n, v) for (n, v), (_, values) in zip(zip(names, combo), axes) if len(values) > 1 or n == "seed"]
        name = "_".join(f"{n}={v}" for n, v in varying)
        runs.append(SweepRun(name, tuple(f"{k}={v}" for (k, _), v in zip(axes, combo))))
    return runs


def run_sweep(
    config_path: str | Path,
    out: str | Path,
    overrides: Sequence[str],
    seeds: Sequence[int],
    *,
    fixed: Sequence[str] = (),
    quiet: bool = False,
    log=print,
) -> dict[str, RunSummary]:
    """Train every run of the grid under ``out`` one after the other.

    Finished runs (``summary.json`` present) are skipped; a started one is resumed. Every
    configuration is validated before the first run starts. ``fixed`` overrides apply to all.
    """
    grid = expand_grid(overrides, seeds)
    configs = {run.name: load_config(config_path, [*fixed, *run.overrides]) for run in grid}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json({"config": str(config_path), "runs": {r.name: list(r.overrides) for r in grid}, "fixed": list(fixed)}, out / "sweep.json")
    summaries = {}
    for index, run in enumerate(grid, 1):
        paths = RunPaths(out / run.name)
        if paths.summary.exists():
            log(f"[{index}/{len(grid)}] {run.name}: finished, skipped")
        else:
            log(f"[{index}/{len(grid)}] {run.name}: {'resuming' if paths.config.exists() else 'training'}")
        summaries[run.name] = train(configs[run.name], paths.root, resume=paths.config.exists(), quiet=quiet)
    return summaries
