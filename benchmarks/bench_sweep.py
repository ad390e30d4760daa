r"""Parallel sweeps: wall-clock time of a 4-run sweep with ``--jobs 2`` against ``--jobs 1``.

Prints one ratio, measured in this one run: the wall-clock seconds of ``run_sweep`` over a
grid of 4 runs (2 values of tau x 2 seeds) with ``jobs=1`` (one process, torch's default
threads) divided by the same sweep with ``jobs=2`` (two spawned worker processes, one torch
thread each). Goal on 2 cores: **>= 1.7x**.

Why it can pay: the small networks of a study do not keep two cores busy in one process
(per-batch Python overhead, small matrix products), so two runs side by side use the
machine better than one run with two threads. What it costs: each worker process starts
Python, imports torch and otblocks (a few seconds), once per worker, not per run; the runs
must be long enough for that to vanish (the default runs, 20,000 points, take about 12 s each;
with 2,000 points they take about 1.3 s and the start-up cost ate the gain: 1.28x).

The two sweeps write different directories; rounds alternate the order (1, 2, 2, 1, ...) so
that a load change on a shared machine touches both, and the ratio of the medians is
printed with every round's times. The summaries of the two sweeps are checked to agree (the
thread count changes only the order of float32 sums).

Usage::

    python benchmarks/bench_sweep.py              # runs of about 12 s each, 2 rounds

Measured on an idle 2-core machine (``--rounds 1``): --jobs 1 51.1 s, --jobs 1 with 1 thread
47.7 s, --jobs 2 26.8 s: 1.91x (1.78x against the one-thread serial sweep).
    python benchmarks/bench_sweep.py --quick      # smaller runs, 1 round (start-up cost shows)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from otblocks.sweep import run_sweep

CONFIG = """
[data]
name = "moons"
n_train = {n_train}
n_val = 500
n_test = 500
[model]
depth = 4
hidden = 32
[train]
epochs = {epochs}
batch_size = 25
lr = 0.02
"""
GRID = ["transport.tau=0.5,inf"]
SEEDS = [0, 1]


VARIANTS = {
    "--jobs 1": (1, None),  # today's serial sweep: one process, torch's default threads
    "--jobs 1, 1 thread": (1, 1),  # the serial sweep with one torch thread (what parallelism alone buys)
    "--jobs 2": (2, None),  # two worker processes, cpu_count // 2 threads each
}


def timed_sweep(config: Path, out: Path, jobs: int, threads: int | None) -> tuple[float, dict]:
    default = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        start = time.perf_counter()
        summaries = run_sweep(config, out, GRID, SEEDS, jobs=jobs, quiet=True, log=lambda line: None)
        return time.perf_counter() - start, summaries
    finally:
        torch.set_num_threads(default)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, one round")
    parser.add_argument("--rounds", type=int, help="rounds of the pair of sweeps (default: 2, quick: 1)")
    args = parser.parse_args(argv)
    n_train, epochs = (2000, 4) if args.quick else (20000, 6)
    rounds = args.rounds or (1 if args.quick else 2)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "c.toml"
        config.write_text(CONFIG.format(n_train=n_train, epochs=epochs))
        summaries = {}
        order = list(VARIANTS)
        for r in range(rounds):
            for i, name in enumerate(order if r % 2 == 0 else order[::-1]):
                jobs, threads = VARIANTS[name]
                seconds, summaries[name] = timed_sweep(config, root / f"round{r}_{i}", jobs, threads)
                times[name].append(seconds)
                print(f"round {r}: {name}: {seconds:.1f} s", flush=True)
        for run in summaries["--jobs 1"]:
            np.testing.assert_allclose(
                summaries["--jobs 2"][run].val_loss_by_depth,
                summaries["--jobs 1"][run].val_loss_by_depth,
                rtol=1e-4,
                err_msg=f"{run}: the parallel sweep disagrees with the serial one",
            )
    median = {name: statistics.median(t) for name, t in times.items()}
    print()
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs visible, load average {load:.1f}; python {sys.version.split()[0]}")
    print(f"4 runs ({n_train} points, depth 4, {epochs} epochs per module), median over {rounds} rounds")
    print("| sweep | seconds |\n| --- | ---: |")
    for name, seconds in median.items():
        print(f"| {name} | {seconds:.1f} |")
    print(f"speed-up --jobs 2 / --jobs 1: {median['--jobs 1'] / median['--jobs 2']:.2f}x (goal >= 1.7x on 2 cores)")
    print(f"speed-up --jobs 2 / --jobs 1 with 1 thread: {median['--jobs 1, 1 thread'] / median['--jobs 2']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
