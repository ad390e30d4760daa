"""Training throughput of the 2-rank pipeline against one process, one thread each.

A 2-module network whose modules cost about the same (four residual MLP blocks of width 512
each on batches of 512, about 100 ms per module step, so that computing dominates sending a
batch, which costs gloo a few tenths of a millisecond per message on each side; module 0 also
trains the input map, whose gradient flows through its first block: 24 matrix products per
step against 23) is trained in the ``parallel`` regime by one process (``otblocks train``) and
by two ranks (``torchrun --nproc-per-node=2 ... --distributed``), every process with one
thread. Throughput is training samples per second of the training pass of an epoch (module
0's ``seconds`` in ``metrics.jsonl``: in the pipeline, rank 0's pass lasts until rank 1 has
taken the last batch and finished the pass); the first epoch of every run is a warm-up and is
dropped. The model of the speed-up for K balanced stages and n batches per epoch is
``K n / (n + K - 1)`` (one fill and one drain per pass), 1.94 here, 1.90 with the 24/23
imbalance.

Two cores of one machine are not two machines: they share caches and memory bandwidth (and,
on a virtual machine, whatever the host gives them). So every repeat also runs **two
independent single-process trainings at the same time**; their throughput over that of one
alone is the most that any two-process scheme gets on this machine (the *ceiling*), and the
pipeline's ratio is printed against it too. Width 512 rather than 256: on the 2-core machine
these figures were first taken on, two 256-wide trainings side by side slowed each other by
10-50% (memory-bound steps), a ceiling of about 1.5.

The machine may be shared: the load average is printed first, the kinds of run alternate, and
the medians over repeats and epochs are compared; each repeat's own ratios are printed too.
The CPU time of the pipeline's training passes (``pipeline.json``: every thread of a rank,
the transport's included) is compared against a 1-rank pipeline (the same loop without any
communication): with a free core per rank, the pipeline's epoch would last about the largest
rank's CPU time times ``(n + 1) / n``.

    python benchmarks/bench_distributed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from otblocks.rundir import RunPaths

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WIDTH = 512  # features of the residual stream
HIDDEN = 512  # hidden units of each block's g
BLOCKS_PER_MODULE = 4
BATCH = 512
BATCHES_PER_EPOCH = 32
EPOCHS = 3  # the first is a warm-up
CONFIG = f"""
[data]
name = "moons"
n_train = {BATCH * BATCHES_PER_EPOCH}
n_val = 512
n_test = 512
[model]
depth = {2 * BLOCKS_PER_MODULE}
blocks_per_module = {BLOCKS_PER_MODULE}
width = {WIDTH}
hidden = {HIDDEN}
[transport]
tau = 1.0
[train]
regime = "parallel"
epochs = {EPOCHS}
batch_size = {BATCH}
optimizer = "sgd"
lr = 0.002
[distributed]
max_in_flight = 1
"""
SINGLE, PIPELINE, ONE_RANK = "1 process x 1 thread", "2 processes x 1 thread", "1-rank pipeline (CPU baseline)"
PAIR = "2 independent processes at once (ceiling)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(config: Path, out: Path, ranks: int) -> list[str]:
    """``otblocks train`` as one process (``ranks = 0``) or as a pipeline of ``ranks`` under torchrun."""
    train = ["-m", "otblocks", "train", str(config), "--out", str(out), "--quiet"]
    if not ranks:
        return [sys.executable, *train]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={ranks}",
        "--master-addr=127.0.0.1",
        f"--master-port={_free_port()}",
        *train,
        "--distributed",
    ]


def _epoch_seconds(out: Path) -> list[float]:
    """The training-pass seconds of every epoch after the first (module 0's records)."""
    records = [json.loads(line) for line in RunPaths(out).metrics.read_text().splitlines()]
    return [r["seconds"] for r in records if r["split"] == "train" and r["module"] == 0 and r["epoch"] > 0]


def train_at_once(config: Path, outs: list[Path], ranks: int) -> list[list[float]]:
    """Start one run per directory of ``outs`` at the same time; each run's epoch seconds."""
    procs = [subprocess.Popen(_command(config, out, ranks), cwd=REPO, env=ENV) for out in outs]
    for proc in procs:
        if proc.wait():
            raise subprocess.CalledProcessError(proc.returncode, proc.args)
    return [_epoch_seconds(out) for out in outs]


def rank_cpu_seconds(out: Path) -> list[float]:
    """Every rank's CPU seconds per training epoch (``pipeline.json``)."""
    return [r["train_cpu_seconds"] / EPOCHS for r in json.loads(RunPaths(out).pipeline.read_text())["ranks"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs (shared machine)")
    print(
        f"network: 2 modules of {BLOCKS_PER_MODULE} residual MLP blocks, width {WIDTH}, hidden {HIDDEN}; "
        f"batch {BATCH}, "
        f"{BATCHES_PER_EPOCH} batches per epoch, {EPOCHS} epochs (the first dropped), {args.repeats} repeats"
    )
    n, n_samples = BATCHES_PER_EPOCH, BATCH * BATCHES_PER_EPOCH
    seconds: dict[str, list[float]] = {SINGLE: [], PIPELINE: [], PAIR: []}
    cpu: dict[str, list[list[float]]] = {PIPELINE: [], ONE_RANK: []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(CONFIG)
        for repeat in range(args.repeats):
            for name, ranks, copies in ((SINGLE, 0, 1), (PIPELINE, 2, 1), (ONE_RANK, 1, 1), (PAIR, 0, 2)):
                start = time.perf_counter()
                outs = [Path(tmp) / f"{ranks}-{copies}-{repeat}-{i}" for i in range(copies)]
                runs = train_at_once(config, outs, ranks)
                epochs = [s for run in runs for s in run]
                if name in seconds:
                    seconds[name] += epochs
                rank_cpu = rank_cpu_seconds(outs[0]) if ranks else []
                if name in cpu:
                    cpu[name].append(rank_cpu)
                print(
                    f"  repeat {repeat}: {name}: epoch training passes {', '.join(f'{s:.2f}' for s in epochs)} s"
                    + (f"; CPU per epoch by rank {', '.join(f'{c:.2f}' for c in rank_cpu)} s" if rank_cpu else "")
                    + f" (run {time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.2f})"
                )
            single, pipeline, pair = (
                statistics.median(s[-copies * (EPOCHS - 1) :]) for s, copies in zip(seconds.values(), (1, 1, 2))
            )
            print(f"  repeat {repeat}: throughput ratio {single / pipeline:.2f}, ceiling {2 * single / pair:.2f}")
    for name, values in seconds.items():
        rate = (2 if name == PAIR else 1) * n_samples / statistics.median(values)
        print(f"{name}: median {statistics.median(values):.3f} s per epoch, {rate:.0f} samples/s")
    single, pipeline, pair = (statistics.median(s) for s in seconds.values())
    ratio, ceiling = single / pipeline, 2 * single / pair
    print(f"throughput ratio (median over repeats and epochs): {ratio:.2f}")
    print(f"model: 2 n / (n + 1) = {2 * n / (n + 1):.2f} for n = {n} batches per epoch; goal >= 1.7, limit 2")
    print(
        f"ceiling on this machine (two independent processes at once): {ceiling:.2f}; "
        f"pipeline / ceiling {ratio / ceiling:.2f}"
    )
    one_rank = statistics.median(c[0] for c in cpu[ONE_RANK])
    busiest = statistics.median(max(c) for c in cpu[PIPELINE])
    print(
        f"CPU per training epoch (medians): 1-rank pipeline {one_rank:.3f} s, busiest rank of 2 {busiest:.3f} s; "
        f"with a free core per rank the ratio would be about {one_rank / busiest * n / (n + 1):.2f}"
    )


if __name__ == "__main__":
    main()
