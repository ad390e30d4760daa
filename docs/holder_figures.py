"""Figures of the Hölder profile and of the sample-size series for the docs (called by docs/figures.py).

Run from the repository root after the demo's runs exist (``docs/figures.py`` makes them)::

    python docs/holder_figures.py

Writes ``docs/_generated/fig/holder_profile_moons.png`` (the profile of the first block of the
demo's plain greedy and regularised runs, read from their ``analysis.json``) and
``docs/_generated/fig/sample_size_monge_gap.png`` (the Monge gap and cost ratio of a
rotating residual block of the plane at n/8 ... n, a synthetic block so that the figure
needs no run).

``python -P docs/holder_figures.py --ladder`` instead prints the error of the small-scale
exponent over 20 samples of each ground-truth case of ``tests/analysis/test_holder.py`` (the
numbers quoted in ``docs/analysis/holder.md`` and in the tests' tolerances; about 2 minutes
on one core).
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from matplotlib.figure import Figure

from analysis import holder_fit, map_vs_ot, sample_size_series
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


def _power(x, alpha):
    return np.sign(x) * np.abs(x) ** alpha


def _ladder_cases():
    """``name -> (make(seed) -> (x, tx), true exponent)``, the maps of the tests."""
    W = np.random.default_rng(0)
    W.standard_normal((2000, 2))
    W = W.standard_normal((2, 2))  # the tests' weight matrix (drawn after their seed-0 points)
    kink_W = np.random.default_rng(2).standard_normal((2, 2))

    def smooth(g, w):
        def make(seed):
            x = np.random.default_rng(seed).standard_normal((2000, 2))
            return x, x + 0.5 * g(w * x @ W)

        return make

    def smooth_random_w(g, w):  # a new weight matrix with every sample, as a new user would draw
        def make(seed):
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((2000, 2))
            return x, x + 0.5 * g(w * x @ rng.standard_normal((2, 2)))

        return make

    def kink(branch):
        def make(seed):
            x = np.random.default_rng(seed).standard_normal((2000, 2))
            g = np.abs(x @ kink_W) if branch == "abs" else 0.8 * np.maximum(x @ kink_W, 0.0)
            return x, x + g

        return make

    def power(d, a):
        def make(seed):
            x = np.random.default_rng(seed).uniform(-1, 1, (1000, d))
            return x, _power(x, a)

        return make

    def near_line(seed, a=0.5, rad=0.2):
        x = np.random.default_rng(seed).uniform(-1, 1, (1000, 2))
        tx = x.copy()
        lin = np.sign(x[:, 0]) * (rad**a + a * rad ** (a - 1) * (np.abs(x[:, 0]) - rad))
        tx[:, 0] = np.where(np.abs(x[:, 0]) < rad, _power(x[:, 0], a), lin)
        return x, tx

    branches = (("sine", np.sin), ("tanh", np.tanh))
    cases = {f"{name} w={w}": (smooth(g, w), 1.0) for name, g in branches for w in (0.5, 1, 2)}
    cases.update({f"{name} w={w}, random W": (smooth_random_w(g, w), 1.0) for name, g in branches for w in (0.5, 1, 2)})
    cases.update({f"kink {b}": (kink(b), 1.0) for b in ("abs", "relu")})
    cases.update({f"power d={d} a={a}": (power(d, a), a) for d in (1, 2, 3) for a in (0.3, 0.5, 0.8)})
    cases["near-line a=0.5"] = (near_line, 0.5)
    return cases


def ladder(n_samples: int = 20) -> None:
    """Print the small-scale exponent's error (mean, min, max) and unresolved count per case."""
    print(f"{'case':26} {'true':>5} {'mean':>7} {'min':>7} {'max':>7}  unresolved (of {n_samples})")
    for name, (make, truth) in _ladder_cases().items():
        err = np.array([holder_fit(*make(seed), n_bootstrap=0).eta for seed in range(n_samples)]) - truth
        ok = err[np.isfinite(err)]
        stats = f"{ok.mean():+7.3f} {ok.min():+7.3f} {ok.max():+7.3f}" if ok.size else f"{'-':>7} {'-':>7} {'-':>7}"
        print(f"{name:26} {truth:5} {stats}  {int(np.isnan(err).sum())}", flush=True)


def main(out: Path = OUT) -> None:
    (out / "fig").mkdir(parents=True, exist_ok=True)
    print(profile_figure(out), sample_size_figure(out), flush=True)


if __name__ == "__main__":
    ladder() if "--ladder" in sys.argv[1:] else main()
