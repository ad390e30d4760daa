"""The figures of ``otblocks analyze`` (PNG files under ``RUN_DIR/analysis/figures``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from analysis.plot import plot_by_block, plot_holder, plot_point_clouds, plot_transport_arrows

from ..reporting.figures import plot_accuracy_by_depth

__all__ = ["write_run_figures", "FIGURES"]

MAX_PANELS = 16

FIGURES = {
    "accuracy_by_depth.png": "validation and test accuracy of every depth's head",
    "displacement_by_block.png": "kinetic cost (own pairing) and W2^2 (optimal pairing) by block",
    "cost_ratio_by_block.png": "kinetic / W2^2 by block (1 = the block's pairing is optimal on the sample)",
    "holder.png": "pairs ||T(x)-T(y)|| against ||x-y|| with the fitted stability bound, by block",
    "transport_arrows.png": "2-D blocks: arrows x -> T(x) over the exact-OT arrows (toy data only)",
    "point_clouds.png": "2-D data at every depth coloured by class (toy data only)",
}


def _panels(count: int) -> list[int]:
    """Indices of at most MAX_PANELS evenly spread items."""
    if count <= MAX_PANELS:
        return list(range(count))
    return sorted(set(np.linspace(0, count - 1, MAX_PANELS).round().astype(int).tolist()))


def _grid(count: int, size: float = 3.2) -> tuple[Figure, np.ndarray]:
    ncols = min(4, count)
    nrows = -(-count // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    return fig, np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()


def write_run_figures(result: dict[str, Any], units: Sequence, comparisons: Sequence, labels: np.ndarray, out: Path) -> list[Path]:
    """Write the figures of one analysed run; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig: Figure, name: str) -> None:
        fig.savefig(out / name, dpi=110)
        written.append(out / name)

    acc = result["accuracy"]
    fig, _ = plot_accuracy_by_depth(acc["val_accuracy_by_depth"], acc["test_accuracy_by_depth"], acc["best_depth"])
    save(fig, "accuracy_by_depth.png")

    blocks = [(u, c, r) for u, c, r in zip(units, comparisons, result["blocks"] + result["modules"]) if u.kind == "block"]
    measured = [(u, c, r) for u, c, r in blocks if c is not None and "stability" in r]
    if not any(c is not None for _, c, _ in blocks):
        return written
    fig, _ = plot_by_block(
        {"kinetic: own pairing": [r.get("kinetic", np.nan) for _, _, r in blocks],
         "$W_2^2$: optimal pairing": [r.get("w2_squared", np.nan) for _, _, r in blocks]},
        ylabel="squared displacement (feature units$^2$)", log=True,
    )
    save(fig, "displacement_by_block.png")
    fig, _ = plot_by_block({"cost ratio": [c.cost_ratio if c else np.nan for _, c, _ in blocks]},
                           ylabel="kinetic / $W_2^2$", reference=1.0)
    save(fig, "cost_ratio_by_block.png")

    chosen = _panels(len(measured))
    fig, axes = _grid(max(len(chosen), 1))
    for ax, i in zip(axes, chosen):
        unit, _, record = measured[i]
        s = record["stability"]
        fit = SimpleNamespace(eta=s["eta"], C=s["C"], eps=s["eps"], scale_min=s["scale_min"], scale_max=s["scale_max"])
        plot_holder(unit.x_in, unit.x_out, fit, ax=ax, title=f"block {unit.index}: $\\eta$={fit.eta:.2f}",
                    max_pairs=2000, legend=ax is axes[0])
    for ax in axes[len(chosen):]:
        ax.set_visible(False)
    save(fig, "holder.png")

    if all(u.x_in.shape[1] == 2 and u.x_out.shape[1] == 2 for u, _, _ in blocks):
        chosen = _panels(len(blocks))
        fig, axes = _grid(len(chosen))
        for ax, i in zip(axes, chosen):
            unit, comparison, _ = blocks[i]
            plot_transport_arrows(unit.x_in, unit.x_out, comparison, ax=ax, max_points=250, legend=ax is axes[0],
                                  title=f"block {unit.index}: cost ratio {comparison.cost_ratio:.3f}")
        for ax in axes[len(chosen):]:
            ax.set_visible(False)
        save(fig, "transport_arrows.png")
        clouds = [blocks[0][0].x_in] + [u.x_out for u, _, _ in blocks]
        fig, _ = plot_point_clouds(clouds, labels, titles=["input"] + [f"after block {u.index}" for u, _, _ in blocks])
        save(fig, "point_clouds.png")
    return written
