"""Figures of the Hölder profile and of the sample-size series for the docs (called by docs/figures.py).

Run from the repository root after the demo's runs exist (``docs/figures.py`` makes them)::

    python docs/holder_figures.py

Writes ``docs/_generated/fig/holder_profile_moons.png`` (the profile of the first block of the
demo's plain greedy and regularised runs, read from their ``analysis.json``) and
``docs/_generated/fig/sample_size_monge_gap.png`` (the Monge gap and cost ratio of a
rotating residual block of the plane at n/8 ... n, a synthetic block so that the figure
needs no run).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from matplotlib.figure import Figure

from analysis import map_vs_ot, sample_size_series
from analysis.plot import plot_holder_profile, plot_sample_size

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "_generated"
RUNS = {"tau = inf (plain greedy)": "tau_inf", "tau = 0.5": "tau_0.5"}
BLOCK = 0


def _fit_from_record(record: dict) -> SimpleNamespace:
    """The attributes `plot_holder_profile` reads, from a block's ``holder`` record."""
    p = record["profile"]

    def num(v):
        return np.nan if v is None or isinstance(v, str) else float(v)

    level_ci = None if p.get("level_ci") is None else [None if c is None else tuple(map(num, c)) for c in p["level_ci"]]
    profile = SimpleNamespace(
        upper=[num(v) for v in p["upper"]],
        level=[num(v) for v in p["level"]],
        level_ci=level_ci,
        window=None if p["window"] is None else tuple(p["window"]),
    )
    return SimpleNamespace(
        profile=profile,
        eta=num(record["eta"]),
        eta_ci=record.get("eta_ci"),
        eta_method=record["eta_method"],
        resolved=record["resolved"],
        mode=record["mode"],
    )


def profile_figure(out: Path = OUT) -> Path:
    fits = {}
    for label, name in RUNS.items():
        analysis = json.loads((out / "demo" / name / "analysis" / "analysis.json").read_text())
        fits[label] = _fit_from_record(analysis["blocks"][BLOCK]["holder"])
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    plot_holder_profile(fits, title=f"two moons, block {BLOCK}: Hölder profile (sample)", ax=fig.add_subplot())
    path = out / "fig" / "holder_profile_moons.png"
    fig.savefig(path, dpi=120)
    return path


def sample_size_figure(out: Path = OUT, n: int = 800) -> Path:
    x = np.random.default_rng(0).standard_normal((n, 2))
    tx = x + 0.5 * np.tanh(x @ np.array([[0.0, 1.0], [-1.0, 0.0]]))  # a rotating block: not OT
    series = sample_size_series(partial(map_vs_ot, n_subsamples=0), x, tx, n_repeats=5)
    fig = Figure(figsize=(8.0, 3.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    plot_sample_size(series["monge_gap"], ylabel="Monge gap (squared units)", ax=left)
    plot_sample_size(series["cost_ratio"], ylabel="cost ratio", reference=1.0, ax=right)
    fig.suptitle("a rotating residual block of the plane: both grow with n (biased low)", fontsize="medium")
    path = out / "fig" / "sample_size_monge_gap.png"
    fig.savefig(path, dpi=120)
    return path


def main(out: Path = OUT) -> None:
    (out / "fig").mkdir(parents=True, exist_ok=True)
    print(profile_figure(out), sample_size_figure(out), flush=True)


if __name__ == "__main__":
    main()
