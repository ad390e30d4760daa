"""``analyze_run``: from a finished run directory to its analysis files."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

import analysis

from ..config import TOY_DATASETS
from ..data import fresh_toy_points
from ..errors import ConfigError
from ..rundir import RunPaths, write_json
from ..trained import load_run
from ..walk import compute_features, sample_points
from .measure import UnitAnalysis, measure_unit, not_measured
from .movement import head_losses, minimizing_movement
from .options import AnalysisOptions, interval_options, resolve_device
from .result import RunAnalysis
from .table import write_csv
from .units import Unit, build_units, flat

__all__ = ["analyze_run"]

_WALK_BATCH = 1024
"""Points per forward pass of the block walk (eval mode: it does not change the result)."""


def _blocks_of(unit: Unit, module_of_block: list[int]) -> list[int]:
    """The indices of the blocks a unit is made of."""
    if unit.kind == "block":
        return [unit.index]
    return [i for i, module in enumerate(module_of_block) if module == unit.index]


def analyze_run(
    run_dir: str | Path,
    *,
    split: str = "val",
    n: int = 1000,
    method: str = "exact",
    seed: int = 0,
    pairs: int = 500_000,
    bootstrap: int = 30,
    blocks: tuple[int, ...] | None = None,
    jacobian_points: int | None = None,
    device: str = "auto",
    quiet: bool = False,
    figures: bool = True,
) -> RunAnalysis:
    r"""Analyse every block and module of the finished run in ``run_dir`` and write its files.

    Writes ``analysis/analysis.json`` (:meth:`RunAnalysis.record`), ``analysis/analysis.csv``
    and, with ``figures``, the figures of :data:`otblocks.rundir.FIGURES` under
    ``analysis/figures/``.

    Parameters
    ----------
    run_dir : path
        A finished run (``summary.json`` present).
    split, n, method, seed, pairs, bootstrap, blocks, jacobian_points
        See :class:`AnalysisOptions`.
    device : {'auto', 'cpu', 'cuda'}
        Where the network runs (``auto``: a GPU when one is visible). The OT measurements run on
        the CPU (numpy) whatever the device.
    quiet : bool
        No progress bar and no estimate.
    figures : bool
        Draw the figures.

    Returns
    -------
    RunAnalysis
    """
    options = AnalysisOptions(
        split=split,
        n=n,
        method=method,
        seed=seed,
        pairs=pairs,
        bootstrap=bootstrap,
        blocks=tuple(blocks) if blocks is not None else None,
        jacobian_points=jacobian_points,
    )
    dev = torch.device(resolve_device(device))
    run = load_run(run_dir, device=dev)
    options.check_blocks(len(run.net.blocks()))
    if options.split == "fresh":
        if run.config.data.name not in TOY_DATASETS:
            raise ConfigError(
                f"The '--split' option 'fresh' draws new points of a toy data set {sorted(TOY_DATASETS)}; "
                f"this run's data set is {run.config.data.name!r}: use val or test."
            )
        dataset = fresh_toy_points(run.config.data, options.n)
    else:
        dataset = run.data.split(options.split)
    indices, x, y = sample_points(dataset, min(options.n, len(dataset)), options.seed)
    features = compute_features(run.net, x, batch_size=_WALK_BATCH, device=dev)
    units = build_units(run.net, features, dev)
    selected = [all(options.selects(i) for i in _blocks_of(u, features.module_of_block)) for u in units]
    first, last = units[0], units[len(features.boundaries) - 2]  # the first and the last block
    rho0 = first.x_in if first.reference == "input" else flat(features.boundaries[0])  # (n, d_0)
    final = last.x_out  # (n, d_B)
    del features  # the units hold float64 copies of what they need; drop the float32 boundaries
    measured: list[UnitAnalysis] = []
    total, done = sum(selected), 0
    bar = tqdm(units, disable=quiet, desc="analyze", unit="unit")
    for unit, chosen in zip(bar, selected, strict=True):
        if not chosen:
            measured.append(not_measured(unit, "not selected by the 'blocks' option"))
            continue
        start = time.perf_counter()
        measured.append(measure_unit(unit, options))
        done += 1
        if done == 1 and total > 1 and not quiet:
            elapsed = time.perf_counter() - start
            bar.write(
                f"analyze: the first of {total} units took {elapsed:.1f} s; about {elapsed * (total - 1):.0f} s "
                "for the rest",
                file=sys.stderr,
            )
    bar.close()
    block_results = tuple(m for m in measured if m.unit.kind == "block")
    module_results = tuple(m for m in measured if m.unit.kind == "module")
    module_results = module_results or tuple(b.as_module() for b in block_results)  # modules of one block
    bounds = [b.stability for b in block_results if b.stability is not None]
    loss, accuracy = head_losses(run.net, x, y, dev)
    start_end = None
    if rho0.shape == final.shape:
        start_end = analysis.wasserstein(
            rho0, final, method=options.method, seed=options.seed, **interval_options(len(rho0))
        )
    result = RunAnalysis(
        run_dir=run.path,
        options=options,
        n=len(y),
        regime=run.config.train.regime,
        taus=run.summary.taus,
        blocks=block_results,
        modules=module_results,
        composed_bound=analysis.compose_bounds(bounds) if bounds and len(bounds) == len(block_results) else None,
        movement=minimizing_movement(
            loss,
            accuracy,
            [m.w2 for m in module_results],
            run.summary.taus,
            start_end.w2 if start_end is not None else None,
            start_end.w2_ci if start_end is not None else None,
            start_end.bias if start_end is not None else None,
        ),
        val_accuracy_by_depth=run.summary.val_accuracy_by_depth,
        test_accuracy_by_depth=run.summary.test_accuracy_by_depth,
        best_depth=run.summary.best_depth,
        indices=indices,
        labels=y.numpy(),
    )
    paths = RunPaths(run.path)
    paths.analysis.mkdir(exist_ok=True)
    write_json(result.record(), paths.analysis_json)
    write_csv(measured, paths.analysis_csv)
    if figures:
        from .figures import write_run_figures

        write_run_figures(result, paths)
    return result
