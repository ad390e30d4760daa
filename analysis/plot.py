r"""Figures of the OT analysis (matplotlib, object-oriented API).

Not imported by ``import analysis``: the measurements never need matplotlib. Every function
takes ``ax=None`` (a new :class:`~matplotlib.figure.Figure` is made) and returns
``(fig, ax)``; save with ``fig.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ._validation import check_paired, to_numpy
from .holder import HolderFit
from .map_comparison import MapComparison
from .sample_size import SampleSizeSeries

__all__ = [
    "plot_transport_arrows",
    "plot_point_clouds",
    "plot_by_block",
    "plot_holder",
    "plot_holder_profile",
    "plot_sample_size",
]


def _axes(ax: Axes | None, size=(4.5, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def plot_transport_arrows(
    x,
    tx,
    comparison: MapComparison | None = None,
    *,
    max_points: int = 400,
    seed: int = 0,
    title: str | None = None,
    legend: bool = True,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    r"""A 2-D block as arrows :math:`x_i \to T(x_i)`, over the exact-OT arrows :math:`x_i \to t_{\sigma(i)}`.

    Points that the optimal assignment :math:`\sigma` sends elsewhere than their own image
    (:math:`\sigma(i) \neq i`) are circled in red: there the block's own pairing is not optimal.

    Parameters
    ----------
    x, tx : array-like of shape (n, 2)
        Inputs and outputs of the block at the same points.
    comparison : MapComparison, optional
        The result of :func:`analysis.map_vs_ot` on ``(x, tx)``; without it only the block's
        arrows are drawn.
    max_points : int
        At most this many points are drawn (a seeded random subset).
    """
    x, tx = (to_numpy(a) for a in check_paired(x, tx, func="plot_transport_arrows"))
    if x.shape[1] != 2:
        raise ValueError(f"The 'x' parameter of `plot_transport_arrows` must have 2 columns; got shape {x.shape}.")
    fig, ax = _axes(ax)
    n = x.shape[0]
    shown = np.sort(np.random.default_rng(seed).permutation(n)[: min(n, max_points)])
    if comparison is not None:
        sigma = np.asarray(comparison.assignment)
        ot_targets = tx[sigma]
        ax.add_collection(
            LineCollection(
                np.stack([x[shown], ot_targets[shown]], axis=1),
                colors="0.6",
                linewidths=2.5,
                alpha=0.6,
                label="exact OT: $x_i \\to t_{\\sigma(i)}$",
            )
        )
        moved = shown[sigma[shown] != shown]
        ax.scatter(
            x[moved, 0],
            x[moved, 1],
            s=40,
            facecolors="none",
            edgecolors="crimson",
            linewidths=1.2,
            label=f"re-routed by OT ({comparison.fraction_reassigned:.1%} of all)",
            zorder=3,
        )
    d = tx[shown] - x[shown]
    ax.quiver(
        x[shown, 0],
        x[shown, 1],
        d[:, 0],
        d[:, 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        width=0.004,
        color="tab:blue",
        label="block: $x_i \\to T(x_i)$",
        zorder=2,
    )
    ax.scatter(x[shown, 0], x[shown, 1], s=4, color="k", zorder=2)
    ax.update_datalim(np.concatenate([x[shown], tx[shown]]))
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title, fontsize="medium")
    if legend:
        ax.legend(fontsize="x-small", loc="best")
    return fig, ax


def plot_point_clouds(
    clouds: Sequence, labels=None, *, titles: Sequence[str] | None = None, ncols: int = 5, fig: Figure | None = None
) -> tuple[Figure, np.ndarray]:
    """2-D point clouds side by side (e.g. the data at every depth), coloured by class.

    Returns the figure and the array of its axes.
    """
    clouds = [to_numpy(c) for c in clouds]
    if any(c.ndim != 2 or c.shape[1] != 2 for c in clouds):
        raise ValueError("The 'clouds' parameter of `plot_point_clouds` must hold arrays of shape (n, 2).")
    ncols = min(ncols, len(clouds))
    nrows = -(-len(clouds) // ncols)
    fig = fig or Figure(figsize=(2.4 * ncols, 2.4 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    colours = None if labels is None else np.asarray(labels)
    for i, ax in enumerate(axes):
        if i >= len(clouds):
            ax.set_visible(False)
            continue
        c = clouds[i]
        ax.scatter(c[:, 0], c[:, 1], c=colours, s=3, cmap="coolwarm" if colours is not None else None)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize="small")
    return fig, axes


def plot_by_block(
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    xlabel: str = "block",
    log: bool = False,
    reference: float | None = None,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    """One line per labelled series of per-block values (several runs share the axes).

    ``reference`` draws a horizontal line (e.g. 1 for the cost ratio).
    """
    fig, ax = _axes(ax, (5.0, 3.5))
    for label, values in series.items():
        v = np.asarray(values, dtype=float)
        ax.plot(np.arange(len(v)), v, marker="o", label=label)
    if reference is not None:
        ax.axhline(reference, color="0.4", linestyle=":", linewidth=1)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    longest = max((len(v) for v in series.values()), default=0)
    ax.set_xticks(np.arange(longest))
    if len(series) > 1 or any(series):
        ax.legend(fontsize="small")
    return fig, ax


def plot_holder(
    x,
    tx,
    fit: HolderFit,
    *,
    max_pairs: int = 4000,
    seed: int = 0,
    title: str | None = None,
    legend: bool = True,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    r"""Log-log scatter of :math:`\lVert T x - T y\rVert` against :math:`\lVert x - y\rVert`, with the bound.

    The curve is :math:`2\varepsilon + C r^\eta`; the shaded band is the scale range
    ``[fit.scale_min, fit.scale_max]`` over which :math:`\eta` and :math:`C` were measured.
    """
    x, tx = (to_numpy(a) for a in check_paired(x, tx, func="plot_holder"))
    fig, ax = _axes(ax, (5.0, 4.0))
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, n, size=(2, max_pairs))
    keep = i != j
    r_in = np.linalg.norm(x[i[keep]] - x[j[keep]], axis=1)
    r_out = np.linalg.norm(tx[i[keep]] - tx[j[keep]], axis=1)
    positive = (r_in > 0) & (r_out > 0)
    ax.scatter(r_in[positive], r_out[positive], s=3, alpha=0.4, color="tab:blue", label="pairs")
    grid = np.geomspace(r_in[positive].min(), r_in[positive].max(), 100)
    ax.plot(
        grid,
        2 * fit.eps + fit.C * grid**fit.eta,
        color="crimson",
        label=f"$2\\varepsilon + C r^\\eta$: $\\eta$={fit.eta:.2f}, C={fit.C:.3g}, $\\varepsilon$={fit.eps:.3g}",
    )
    ax.axvspan(fit.scale_min, fit.scale_max, color="0.85", alpha=0.6, label="scale range of the fit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\|x - y\|$")
    ax.set_ylabel(r"$\|T(x) - T(y)\|$")
    if title:
        ax.set_title(title, fontsize="medium")
    if legend:
        ax.legend(fontsize="x-small", loc="lower right")
    return fig, ax


def plot_holder_profile(
    fits: HolderFit | Mapping[str, HolderFit],
    *,
    title: str | None = None,
    legend: bool = True,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    r"""The Hölder profile: envelope of the Lipschitz ratio by scale, with bootstrap intervals.

    For each fit (e.g. ``{"sample": fit, "probe": probe_fit}``, or the blocks of two runs), the
    level :math:`L_k = \max (\lVert Tx - Ty \rVert - 2\varepsilon) / \lVert x - y \rVert` of
    each band against its upper edge (sample mode) or radius (probe mode), log-log, with the
    bands of the small-scale window drawn filled. A flat profile means Lipschitz at those
    scales (local exponent 1); a slope :math:`\eta - 1` means :math:`\eta`-Hölder. The
    legend gives each fit's exponent and interval, or "not resolved".
    """
    fig, ax = _axes(ax, (5.0, 3.8))
    if isinstance(fits, HolderFit):
        fits = {fits.mode: fits}
    for k, (label, fit) in enumerate(fits.items()):
        p = fit.profile
        scale, level = np.asarray(p.upper), np.asarray(p.level)
        colour = f"C{k}"
        if fit.eta_method == "small_scale" and not fit.resolved:
            text = "not resolved"
        else:
            ci = "" if fit.eta_ci is None else f" [{fit.eta_ci[0]:.2f}, {fit.eta_ci[1]:.2f}]"
            text = f"$\\eta$ = {fit.eta:.2f}{ci}"
        ax.plot(scale, level, marker="o", mfc="white", color=colour, label=f"{label}: {text}")
        if p.level_ci is not None:
            lo = np.array([np.nan if c is None else c[0] for c in p.level_ci])
            hi = np.array([np.nan if c is None else c[1] for c in p.level_ci])
            ax.fill_between(scale, lo, hi, color=colour, alpha=0.2, linewidth=0)
        if p.window is not None:
            w = slice(p.window[0], p.window[1] + 1)
            ax.plot(scale[w], level[w], marker="o", linestyle="none", color=colour)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"scale $\|x - y\|$ (band upper edge, or probe radius)")
    ax.set_ylabel(r"max $\|T x - T y\| / \|x - y\|$")
    if title:
        ax.set_title(title, fontsize="medium")
    if legend:
        ax.legend(fontsize="x-small", loc="best")
    return fig, ax


def plot_sample_size(
    series: SampleSizeSeries | Mapping[str, SampleSizeSeries],
    *,
    ylabel: str | None = None,
    reference: float | None = None,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    """A statistic against the sample size (mean and range over the subsamples), log n axis.

    Shows the direction of a statistic's bias in n (:func:`analysis.sample_size_series`);
    ``reference`` draws a horizontal line (e.g. 1 for the cost ratio).
    """
    fig, ax = _axes(ax, (4.5, 3.5))
    if isinstance(series, SampleSizeSeries):
        series = {series.statistic: series}
    for label, ser in series.items():
        n = np.asarray(ser.sizes)
        (line,) = ax.plot(n, ser.mean, marker="o", label=label)
        ax.fill_between(n, ser.low, ser.high, color=line.get_color(), alpha=0.2, linewidth=0)
    if reference is not None:
        ax.axhline(reference, color="0.4", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xticks(np.asarray(next(iter(series.values())).sizes))
    ax.set_xticklabels([str(v) for v in next(iter(series.values())).sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("points n")
    ax.set_ylabel(ylabel or next(iter(series.values())).statistic)
    if len(series) > 1:
        ax.legend(fontsize="small")
    return fig, ax
