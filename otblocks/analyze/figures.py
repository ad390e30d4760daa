"""The figures of a run analysis (PNG files under ``RUN_DIR/analysis/figures``), drawn from the result objects.

Each figure's file name and caption are defined once, in :data:`otblocks.rundir.FIGURES`;
the report shows them with those captions. matplotlib is imported only here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from analysis.plot import (
    plot_by_block,
    plot_holder,
    plot_holder_profile,
    plot_point_clouds,
    plot_transport_arrows,
)

from ..atomic import atomic_path
from ..reporting.figures import plot_accuracy_by_depth
from ..rundir import (
    ACCURACY_BY_DEPTH,
    COST_RATIO_BY_BLOCK,
    DISPLACEMENT_BY_BLOCK,
    HOLDER,
    HOLDER_PROFILE,
    POINT_CLOUDS,
    TRANSPORT_ARROWS,
    RunFigure,
    RunPaths,
)
from .result import RunAnalysis

__all__ = ["MAX_PANELS", "write_run_figures"]

MAX_PANELS = 16
"""At most this many blocks get a panel of the per-block grids (evenly spread over the depth)."""

FIGURE_DPI = 150
"""Resolution of the PNG files: the report shows them at up to 60rem (about 960 px) wide."""


def _panels(count: int) -> list[int]:
    """Indices of at most MAX_PANELS evenly spread items."""
    if count <= MAX_PANELS:
        return list(range(count))
    return sorted(set(np.linspace(0, count - 1, MAX_PANELS).round().astype(int).tolist()))


def _grid(count: int, size: float = 4.0) -> tuple[Figure, np.ndarray]:
    ncols = min(4, count)
    nrows = -(-count // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    return fig, np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()


def _panel_figure(items: list, draw: Callable[[Any, Any, bool], None], *, at_least_one: bool = False) -> Figure:
    """One panel per chosen item (see :func:`_panels`), ``draw(ax, item, first)``; spare axes hidden."""
    chosen = _panels(len(items))
    fig, axes = _grid(max(len(chosen), 1) if at_least_one else len(chosen))
    for ax, i in zip(axes, chosen, strict=False):  # the grid may have more axes than panels
        draw(ax, items[i], ax is axes[0])
    for ax in axes[len(chosen) :]:
        ax.set_visible(False)
    return fig


def write_run_figures(result: RunAnalysis, paths: RunPaths) -> list[Path]:
    """Write the figures of one analysed run into ``paths.figures``; return their paths."""
    paths.figures.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig: Figure, figure: RunFigure) -> None:
        with atomic_path(paths.figure(figure)) as tmp:  # readers never see half a PNG
            fig.savefig(tmp, dpi=FIGURE_DPI, format="png")
        written.append(paths.figure(figure))

    fig, _ = plot_accuracy_by_depth(result.val_accuracy_by_depth, result.test_accuracy_by_depth, result.best_depth)
    save(fig, ACCURACY_BY_DEPTH)

    blocks = result.blocks
    if all(b.comparison is None for b in blocks):
        return written
    fig, _ = plot_by_block(
        {
            "kinetic: own pairing": [b.kinetic if b.comparison is not None else np.nan for b in blocks],
            "$W_2^2$: optimal pairing": [b.w2_squared if b.comparison is not None else np.nan for b in blocks],
        },
        ylabel="squared displacement (feature units$^2$)",
        log=True,
    )
    save(fig, DISPLACEMENT_BY_BLOCK)
    ratios = [b.comparison.cost_ratio if b.comparison is not None else np.nan for b in blocks]
    fig, _ = plot_by_block({"cost ratio": ratios}, ylabel="kinetic / $W_2^2$", reference=1.0)
    save(fig, COST_RATIO_BY_BLOCK)

    def holder(ax, b, first):
        plot_holder(
            b.unit.x_in,
            b.unit.x_out,
            b.stability,
            ax=ax,
            max_pairs=2000,
            legend=first,
            title=f"block {b.unit.index}: $\\eta$={b.stability.eta:.2f}",
        )

    def profile(ax, b, first):
        fits = {name: fit for name, fit in (("sample", b.holder), ("probe", b.holder_probe)) if fit is not None}
        plot_holder_profile(fits, ax=ax, title=f"block {b.unit.index}")

    def arrows(ax, b, first):
        plot_transport_arrows(
            b.unit.x_in,
            b.unit.x_out,
            b.comparison,
            ax=ax,
            max_points=250,
            legend=first,
            title=f"block {b.unit.index}: cost ratio {b.comparison.cost_ratio:.3f}",
        )

    save(_panel_figure([b for b in blocks if b.stability is not None], holder, at_least_one=True), HOLDER)
    profiled = [b for b in blocks if b.holder is not None or b.holder_probe is not None]
    if profiled:
        save(_panel_figure(profiled, profile), HOLDER_PROFILE)
    if all(b.unit.x_in.shape[1] == 2 and b.unit.x_out.shape[1] == 2 for b in blocks):
        save(_panel_figure([b for b in blocks if b.comparison is not None], arrows), TRANSPORT_ARROWS)
        clouds = [blocks[0].unit.x_in] + [b.unit.x_out for b in blocks]
        titles = ["input"] + [f"after block {b.unit.index}" for b in blocks]
        fig, _ = plot_point_clouds(clouds, result.labels, titles=titles)
        save(fig, POINT_CLOUDS)
    return written
