"""Time `analysis.map_vs_ot` against a bare POT solve on the same data.

The bare baseline is what a user would write: ``M = ot.dist(x, tx)`` then
``ot.emd2(a, b, M)``. Both get the same iteration cap (``max(100000, 50 n^2)``): with POT's
default cap the bare call stops early on the larger problems (64-D from n of about 2500)
and returns a wrong, cheaper answer. Both are timed in the same run, alternating, and the
median of the repeats is reported (at least 3, more for fast cases); the goal is a
ratio of at most 1.10.

Usage::

    python benchmarks/bench_analysis.py           # n in {1000, 2000, 4000}, d in {2, 64}
    python benchmarks/bench_analysis.py --quick   # n in {250, 500, 1000}
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

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
            first = _time(lambda: _bare(x, tx, cap))  # warm-up, also sizes the repeats
            count = int(min(50, max(repeats, min_seconds / max(first, 1e-3))))
            for k in range(count):
                pair = [lambda: ours.append(_time(lambda: map_vs_ot(x, tx))),
                        lambda: bare.append(_time(lambda: _bare(x, tx, cap)))]
                for step in (pair if k % 2 == 0 else pair[::-1]):
                    step()
            rows.append((n, d, statistics.median(ours), statistics.median(bare)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller n (250, 500, 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    args = parser.parse_args(argv)
    rows = run(QUICK_SIZES if args.quick else SIZES, repeats=args.repeats)
    print(f"{'n':>6} {'d':>4} {'map_vs_ot (s)':>14} {'ot.dist+emd2 (s)':>17} {'ratio':>7}")
    for n, d, ours, bare in rows:
        print(f"{n:>6} {d:>4} {ours:>14.3f} {bare:>17.3f} {ours / bare:>7.3f}")


if __name__ == "__main__":
    main()
