"""A grid of runs: every combination of ``--set key=v1,v2,...`` values, seeds and data seeds; resumable, parallel.

The sweep directory holds one run directory per grid point and ``sweep.json`` (the base
configuration file and every run's overrides). It is locked (:class:`otblocks.lock.DirLock`)
while a sweep writes it, so two sweeps never write one directory; each run directory is
locked by the process that trains it. With ``jobs > 1`` the runs train in that many worker
processes, each with ``cpu_count // jobs`` torch threads (unless ``train.threads`` is set).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig, load_config
from .errors import ConfigError, FileSystemError
from .lock import DirLock
from .rundir import RunPaths, read_json, write_json
from .training import RunSummary, train

__all__ = ["SWEEP_FILE", "SweepRun", "expand_grid", "run_sweep"]

SWEEP_FILE = "sweep.json"


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


def _check_seeds(name: str, seeds: Sequence[int]) -> None:
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"The '{name}' option must list integers >= 0; got {list(seeds)!r}.")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"The '{name}' option must list distinct seeds; got {list(seeds)!r}.")


def expand_grid(overrides: Sequence[str], seeds: Sequence[int], data_seeds: Sequence[int] = ()) -> list[SweepRun]:
    """The runs of a grid: each override may list values separated by commas; seeds vary last.

    ``data_seeds`` (``data.seed``, which draws the training subset) vary before the training
    seeds when given; then every run name carries both.
    """
    axes: list[tuple[str, list[str]]] = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"A --set value must look like 'section.key=v1,v2'; got {item!r}.")
        key, values = item.split("=", 1)
        if key.strip() in ("train.seed", "data.seed"):
            raise ConfigError(f"Give {key.strip()} with --seeds or --data-seeds, not --set; got {item!r}.")
        axes.append((key.strip(), _split_top_level(values)))
    if not seeds:
        raise ConfigError("The '--seeds' option must list at least one seed; got an empty list.")
    _check_seeds("--seeds", seeds)
    _check_seeds("--data-seeds", data_seeds)
    seed_axes = [("data.seed", [str(s) for s in data_seeds])] if data_seeds else []
    seed_axes.append(("train.seed", [str(s) for s in seeds]))
    axes += seed_axes
    short = [k.rsplit(".", 1)[-1] for k, _ in axes]
    names = [k if short.count(s) > 1 else s for (k, _), s in zip(axes, short, strict=True)]
    always = {k for k, _ in seed_axes}
    runs = []
    for combo in itertools.product(*(values for _, values in axes)):
        varying = [
            (n, v) for n, v, (key, values) in zip(names, combo, axes, strict=True) if len(values) > 1 or key in always
        ]
        name = "_".join(f"{n}={v}" for n, v in varying)
        runs.append(SweepRun(name, tuple(f"{k}={v}" for (k, _), v in zip(axes, combo, strict=True))))
    return runs


def _train_in_worker(config: RunConfig, root: str, resume: bool, threads: int) -> RunSummary:
    """One run in a worker process of :func:`run_sweep`, with ``threads`` torch threads."""
    import torch

    if not config.train.threads:
        torch.set_num_threads(threads)
    return train(config, root, resume=resume, quiet=True)


def _record_grid(out: Path, config_path: str | Path, grid: Sequence[SweepRun], fixed: Sequence[str]) -> None:
    """Write ``sweep.json``, keeping the runs recorded by earlier sweeps into the same directory."""
    path = out / SWEEP_FILE
    known = read_json(path).get("runs", {}) if path.is_file() else {}
    known.update({r.name: list(r.overrides) for r in grid})
    write_json({"config": str(config_path), "runs": known, "fixed": list(fixed)}, path)


def run_sweep(
    config_path: str | Path,
    out: str | Path,
    overrides: Sequence[str],
    seeds: Sequence[int],
    *,
    data_seeds: Sequence[int] = (),
    fixed: Sequence[str] = (),
    jobs: int = 1,
    quiet: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, RunSummary]:
    """Train every run of the grid under ``out``, ``jobs`` at a time.

    Finished runs (``summary.json`` present) are skipped; a started one is resumed. Every
    configuration is validated before the first run starts, and nothing is written when one
    is invalid. ``fixed`` overrides apply to all. With ``jobs > 1`` the workers are started
    with ``multiprocessing``'s ``forkserver`` method, so a script calling this must do so
    under ``if __name__ == "__main__":``.

    Raises
    ------
    ConfigError
        On a bad grid, seed list or configuration value, or ``jobs < 1``.
    FileSystemError
        When ``out`` is a file.
    LockedError
        When another process is writing the sweep directory.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"The '--jobs' option must be a positive integer; got {jobs!r}.")
    grid = expand_grid(overrides, seeds, data_seeds)
    configs = {run.name: load_config(config_path, [*fixed, *run.overrides]) for run in grid}
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileSystemError(f"The sweep directory '{out}' is a file; expected a directory (choose another --out).")
    summaries: dict[str, RunSummary] = {}
    with DirLock(out, "sweep directory"):
        _record_grid(out, config_path, grid, fixed)
        todo = []
        for index, run in enumerate(grid, 1):
            paths = RunPaths(out / run.name)
            if paths.summary.exists():
                log(f"[{index}/{len(grid)}] {run.name}: finished, skipped")
                summaries[run.name] = RunSummary.from_dict(read_json(paths.summary), str(paths.summary))
            else:
                todo.append((index, run, paths.config.exists()))
        if jobs == 1 or len(todo) <= 1:
            for index, run, resume in todo:
                log(f"[{index}/{len(grid)}] {run.name}: {'resuming' if resume else 'training'}")
                summaries[run.name] = train(configs[run.name], out / run.name, resume=resume, quiet=quiet)
        else:
            summaries.update(_run_parallel(out, grid, configs, todo, jobs, log))
    return {run.name: summaries[run.name] for run in grid}


def _run_parallel(out, grid, configs, todo, jobs, log) -> dict[str, RunSummary]:
    """Train the runs of ``todo`` in ``jobs`` worker processes; the first failure cancels the runs not started.

    The workers are forked from a fresh server process that has imported otblocks (the
    ``forkserver`` start method): never from this process, whose torch thread pools may be
    running, and without each worker importing torch again.
    """
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    done: dict[str, RunSummary] = {}
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context)
    try:
        futures = {}
        for index, run, resume in todo:
            log(f"[{index}/{len(grid)}] {run.name}: {'resuming' if resume else 'training'} (queued, {jobs} jobs)")
            futures[pool.submit(_train_in_worker, configs[run.name], str(out / run.name), resume, threads)] = run
        for future in concurrent.futures.as_completed(futures):
            run = futures[future]
            done[run.name] = summary = future.result()
            log(f"{run.name}: finished (test accuracy at the best depth {summary.test_accuracy_at_best_depth:.4f})")
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # the runs started finish (and stay resumable)
        raise
    pool.shutdown(wait=False)  # every result is in; the workers exit on their own
    return done
