"""Figures of accuracy by depth (matplotlib, object-oriented API; imported only by what draws)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .compare import Comparison

__all__ = ["plot_accuracy_by_depth", "plot_comparison"]


def _axes(ax: Axes | None, size=(5.0, 3.5)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def plot_accuracy_by_depth(
    val: Sequence[float], test: Sequence[float], best_depth: int, *, label: str = "", ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Validation and test accuracy of every depth's head; the depth chosen on validation marked."""
    fig, ax = _axes(ax, (6.5, 4.0))
    depth = np.arange(1, len(val) + 1)
    line = ax.plot(depth, test, marker="o", label=f"{label} test".strip())[0]
    ax.plot(depth, val, marker=".", linestyle="--", color=line.get_color(), alpha=0.7, label=f"{label} val".strip())
    ax.axvline(best_depth, color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("depth (modules)")
    ax.set_ylabel("accuracy")
    ax.set_xticks(depth)
    ax.legend(fontsize="small")
    return fig, ax


def plot_comparison(comparison: Comparison, *, split: str = "test", ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Mean accuracy by depth per group with its confidence band (the stagnation figure)."""
    fig, ax = _axes(ax, (6.0, 4.0))
    means = []
    for group in comparison.groups:
        intervals = group.test_accuracy if split == "test" else group.val_accuracy
        depth = np.arange(1, len(intervals) + 1)
        mean = np.array([i.mean for i in intervals])
        means.extend(mean)
        line = ax.plot(depth, mean, marker="o", label=f"{group.label} (n={intervals[0].n})")[0]
        low = np.array([i.low for i in intervals])
        if np.all(np.isfinite(low)):
            ax.fill_between(depth, low, [i.high for i in intervals], color=line.get_color(), alpha=0.2)
    spread = max(means) - min(means)
    ax.set_ylim(max(0.0, min(means) - spread - 0.02), min(1.0, max(means) + spread + 0.02))
    ax.set_xticks(np.arange(1, max(len(g.test_accuracy) for g in comparison.groups) + 1))
    ax.set_xlabel("depth (modules)")
    ax.set_ylabel(f"{split} accuracy")
    ax.set_title(f"{split} accuracy by depth, mean and {comparison.confidence:.0%} CI over seeds", fontsize="medium")
    ax.legend(fontsize="small")
    return fig, ax
