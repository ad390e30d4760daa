"""Time `analysis.map_vs_ot` against a bare POT solve; time the analysis of an image network.

The bare baseline is what a user would write: ``M = ot.dist(x, tx)`` then
``ot.emd2(a, b, M)``. Both get the same iteration cap (``max(100000, 50 n^2)``): with POT's
default cap the bare call stops early on the larger problems (64-D from n of about 2500)
and returns a wrong, cheaper answer. Both are timed in the same run, alternating, and the
median of the repeats is reported (at least 3, more for fast cases); the goal is a
ratio of at most 1.10.

Image case (``--image``, issue 12): every block of a 10-block, 16-channel 28x28 residual
network (random orthogonal init of gain 0.3, inputs: scikit-learn's digits upsampled to
28x28, n = 1000) measured as the run analysis does: ``map_vs_ot`` (with its subsampling
intervals), ``holder_fit`` (sample, 30 bootstrap replicates), the stability bound at that
exponent, ``holder_fit`` in probe mode (256 anchors) and ``jacobian_asymmetry`` on
``--jacobian-points`` points. Goal: at most 60 s in all on 2 cores. Side by side, the
former Hölder path (each bootstrap replicate recomputing its 20,000 pair distances by direct
differences in float64) is timed on the first block, its fit plus ``--baseline-replicates``
replicates extrapolated to 30, against the Gram-product path.

Demo case (``--demo RUN_DIR [RUN_DIR ...]``): the whole ``otblocks analyze`` (report
included) of finished runs, the working tree against a git revision (``--baseline``, default
``HEAD``) checked out in a temporary ``git worktree``: each side runs its own ``otblocks`` and
``analysis`` (``PYTHONPATH`` and the working directory at its own tree) in a fresh process, on
a fresh copy of the runs (their ``analysis/`` folder and report left out). A revision whose
``otblocks`` cannot read the current run directories analyses its own runs
(``--baseline-runs``, trained by that revision, same configurations and seeds). The sides
alternate, ``--repeats`` times each; prints the median wall time of each side (all runs
together) and their ratio (issue 10's goal: at most 1.5 against 92ef1a4).

Usage::

    python benchmarks/bench_analysis.py           # n in {1000, 2000, 4000}, d in {2, 64}
    python benchmarks/bench_analysis.py --quick   # n in {250, 500, 1000}
    python benchmarks/bench_analysis.py --image   # the image network
    otblocks demo --out /tmp/ab/new --quiet          # the runs of each side, by its own code
    git worktree add --detach /tmp/ab/wt 92ef1a4
    (cd /tmp/ab/wt && PYTHONPATH="$PWD" python -c "from otblocks.cli import main; main()" \
        demo --out /tmp/ab/old --quiet)
    git worktree remove --force /tmp/ab/wt
    python benchmarks/bench_analysis.py --demo /tmp/ab/new/tau_inf /tmp/ab/new/tau_0.5 --baseline 92ef1a4 \
        --baseline-runs /tmp/ab/old/tau_inf /tmp/ab/old/tau_0.5 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import ot

from analysis import map_vs_ot

SIZES = (1000, 2000, 4000)
QUICK_SIZES = (250, 500, 1000)
DIMS = (2, 64)


def _block_data(n: int, d: int, seed: int = 0):
    """Inputs and outputs of a residual-like block: tx = x + 0.3 tanh(x W)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    W = rng.standard_normal((d, d)) / np.sqrt(d)
    return x, x + 0.3 * np.tanh(x @ W)


def _bare(x, tx, max_iter):
    n = x.shape[0]
    a = np.full(n, 1.0 / n)
    M = ot.dist(x, tx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ot.emd2(a, a, M, numItermax=max_iter)


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(sizes, dims=DIMS, repeats=3, min_seconds=2.0):
    """Median wall times (s) of ``map_vs_ot`` and of the bare solve, per (n, d).

    Each pair is timed ``repeats`` times, or more for fast cases (up to 50) so that each
    method runs for about ``min_seconds`` in total: millisecond timings are noisy.
    """
    rows = []
    for d in dims:
        for n in sizes:
            x, tx = _block_data(n, d)
            cap = max(100_000, 50 * n * n)
            ours, bare = [], []
            solve_ours = partial(map_vs_ot, x, tx, n_subsamples=0)  # the intervals are extra work
            solve_bare = partial(_bare, x, tx, cap)
            first = _time(solve_bare)  # warm-up, also sizes the repeats
            count = int(min(50, max(repeats, min_seconds / max(first, 1e-3))))
            for k in range(count):
                pair = [(ours, solve_ours), (bare, solve_bare)]
                for times, solve in pair if k % 2 == 0 else pair[::-1]:
                    times.append(_time(solve))
            rows.append((n, d, statistics.median(ours), statistics.median(bare)))
    return rows


def _image_network(n_blocks: int, n: int):
    """A residual network of 16-channel 28x28 blocks (eval mode) and its stem's outputs."""
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.g = nn.Sequential(
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1, bias=False),
            )
            for m in self.g:
                if isinstance(m, nn.Conv2d):
                    nn.init.orthogonal_(m.weight, gain=0.3)

        def forward(self, x):
            return x + self.g(x)

    torch.manual_seed(0)
    images = torch.tensor(load_digits().images[:n], dtype=torch.float32)[:, None] / 16.0
    images = nn.functional.interpolate(images, size=(28, 28), mode="bilinear")  # (n, 1, 28, 28)
    stem = nn.Conv2d(1, 16, 3, padding=1)
    with torch.no_grad():
        h0 = stem(images)  # (n, 16, 28, 28)
    return [Block(16).eval() for _ in range(n_blocks)], h0


def _former_holder(x, tx, n_pairs=20_000, n_bootstrap=30, seed=0):
    """The former sample path: random pairs, distances by direct float64 differences, all
    recomputed for every bootstrap replicate (only the distance work, which dominated)."""
    from analysis._pairwise import pair_distances

    rng = np.random.default_rng(seed)
    n = x.shape[0]
    a = rng.integers(0, n, n_pairs)
    c = (a + rng.integers(1, n, n_pairs)) % n
    pair_distances(x, a, c), pair_distances(tx, a, c)
    for _ in range(n_bootstrap):
        pts = rng.integers(0, n, n)
        pair_distances(x, pts[a], pts[c]), pair_distances(tx, pts[a], pts[c])


def run_image(n_blocks=10, n=1000, jacobian_points=64, baseline_replicates=2):
    """Seconds per analysis step summed over the blocks, and the Hölder path side by side."""
    import torch

    from analysis import collect_blocks, holder_fit, jacobian_asymmetry

    blocks, h0 = _image_network(n_blocks, n)
    samples = collect_blocks(blocks, h0)
    totals: dict[str, float] = {}

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        totals[name] = totals.get(name, 0.0) + time.perf_counter() - start
        return out

    for block, s in zip(blocks, samples, strict=True):
        x, tx = s.x_in, s.x_out

        def flat(z, block=block):
            return block(z.reshape(-1, 16, 28, 28).float()).flatten(1)

        cmp = timed("map_vs_ot", partial(map_vs_ot, x, tx))
        fit = timed("holder (sample)", partial(holder_fit, x, tx, n_bootstrap=30))
        eta = fit.eta if np.isfinite(fit.eta) else 1.0
        timed(
            "stability bound",
            partial(
                holder_fit, x, tx, eta=eta, eps=cmp.max_deviation, scales=(fit.scale_min, fit.scale_max), n_bootstrap=0
            ),
        )
        timed("holder (probe)", partial(holder_fit, torch.tensor(x), flat, n_pairs=7 * 256, n_bootstrap=30))
        timed("jacobian", partial(jacobian_asymmetry, flat, torch.tensor(x[:jacobian_points])))
    x, tx = samples[0].x_in, samples[0].x_out
    start = time.perf_counter()
    _former_holder(x, tx, n_bootstrap=baseline_replicates)
    former = (time.perf_counter() - start) * (1 + 30) / (1 + baseline_replicates)
    start = time.perf_counter()
    holder_fit(x, tx, n_bootstrap=30)
    gram = time.perf_counter() - start
    return totals, former, gram


_CLI = "from otblocks.cli import main; raise SystemExit(main())"
"""The command line of either side (``python -m otblocks`` would need the revision to have ``__main__``)."""


def _analyze_all(code: Path, runs: list[Path], scratch: Path) -> float:
    """Seconds of ``otblocks analyze`` of fresh copies of ``runs``, one process each, with ``code``'s packages."""
    env = dict(os.environ, PYTHONPATH=str(code))
    total = 0.0
    for i, run_dir in enumerate(runs):
        copy = scratch / f"run{i}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("analysis", "report.md", "report.html"))
        cmd = [sys.executable, "-c", _CLI, "analyze", str(copy), "--quiet"]
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, cwd=code, capture_output=True, text=True)
        total += time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"otblocks analyze failed with {code}:\n{done.stderr[-2000:]}")
    return total


def run_demo(
    runs: list[str], baseline: str = "HEAD", repeats: int = 3, baseline_runs: list[str] | None = None
) -> tuple[float, float]:
    """Median seconds of ``otblocks analyze`` of every run: (baseline revision, working tree).

    The revision is checked out in a temporary ``git worktree`` (removed on exit, also on error);
    it analyses ``baseline_runs`` (default: ``runs``), the working tree ``runs``. The sides
    alternate, the baseline first on even repeats.
    """
    root = Path(__file__).resolve().parents[1]
    if baseline_runs is not None and len(baseline_runs) != len(runs):
        raise ValueError(f"--baseline-runs must name as many runs as --demo ({len(runs)}); got {len(baseline_runs)}.")
    sides = {"working tree": (root, [Path(r) for r in runs])}
    times: dict[str, list[float]] = {"baseline": [], "working tree": []}
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), baseline], cwd=root, check=True, capture_output=True
        )
        try:
            sides["baseline"] = (tree, [Path(r) for r in (baseline_runs or runs)])
            for k in range(repeats):
                for name in ("baseline", "working tree") if k % 2 == 0 else ("working tree", "baseline"):
                    code, run_dirs = sides[name]
                    scratch = Path(tmp) / name.replace(" ", "_")
                    scratch.mkdir(exist_ok=True)
                    times[name].append(_analyze_all(code, run_dirs, scratch))
                    print(f"  repeat {k}: {name} {times[name][-1]:.1f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root, check=True)
    return statistics.median(times["baseline"]), statistics.median(times["working tree"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller n (250, 500, 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    parser.add_argument("--image", action="store_true", help="the 10-block 16-channel 28x28 network")
    parser.add_argument("--blocks", type=int, default=10, help="blocks of the image network")
    parser.add_argument("--jacobian-points", type=int, default=64, help="points of the Jacobian probe")
    parser.add_argument(
        "--baseline-replicates",
        type=int,
        default=2,
        help="bootstrap replicates of the former Hölder path actually timed",
    )
    parser.add_argument("--demo", nargs="+", metavar="RUN_DIR", help="time `otblocks analyze` of these runs")
    parser.add_argument("--baseline", default="HEAD", help="git revision of the baseline side (--demo)")
    parser.add_argument(
        "--baseline-runs", nargs="+", metavar="RUN_DIR", help="the baseline's own runs (default: the --demo runs)"
    )
    args = parser.parse_args(argv)
    if args.demo:
        before, after = run_demo(args.demo, args.baseline, args.repeats, args.baseline_runs)
        print(
            f"otblocks analyze of {len(args.demo)} runs: {args.baseline} {before:.1f} s, working tree {after:.1f} s, "
            f"ratio {after / before:.2f} (median of {args.repeats}, alternating; goal <= 1.5)"
        )
        return
    if args.image:
        totals, former, gram = run_image(
            args.blocks, jacobian_points=args.jacobian_points, baseline_replicates=args.baseline_replicates
        )
        for name, seconds in totals.items():
            print(f"{name:>18} {seconds:>8.1f} s")
        print(f"{'total':>18} {sum(totals.values()):>8.1f} s   (goal: <= 60 s on 2 cores)")
        print(
            f"Hölder fit of block 0 with 30 bootstrap replicates: former path {former:.1f} s "
            f"(extrapolated), Gram path {gram:.1f} s, ratio {former / gram:.1f}"
        )
        return
    rows = run(QUICK_SIZES if args.quick else SIZES, repeats=args.repeats)
    print(f"{'n':>6} {'d':>4} {'map_vs_ot (s)':>14} {'ot.dist+emd2 (s)':>17} {'ratio':>7}")
    for n, d, ours, bare in rows:
        print(f"{n:>6} {d:>4} {ours:>14.3f} {bare:>17.3f} {ours / bare:>7.3f}")


if __name__ == "__main__":
    main()
