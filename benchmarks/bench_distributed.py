"""Training throughput of the 2-rank pipeline against one process, one thread each.

A 2-module network whose modules cost about the same (four residual MLP blocks of width 256
each on batches of 512, about 30 ms per step, so that computing dominates sending a batch,
which costs gloo a few tenths of a millisecond per message on each side; module 0 also trains
the input map, whose gradient flows through its first block: 24 matrix products per step
against 23) is trained in the ``parallel`` regime by one process
(``otblocks train``) and by two ranks (``torchrun --nproc-per-node=2 ... --distributed``),
every process with one thread. Throughput is training samples per second of the training pass
of an epoch (module 0's ``seconds`` in ``metrics.jsonl``: in the pipeline, rank 0's pass lasts
until rank 1 has taken the last batch and finished the pass); the first epoch of every run is a
warm-up and is dropped. The model of the speed-up for K balanced stages and n batches per
epoch is ``K n / (n + K - 1)`` (one fill and one drain per pass), 1.94 here, 1.90 with the
24/23 imbalance.

The machine is shared: the load average is printed first, the kinds of run alternate, and the
medians over repeats and epochs are compared; each repeat's own ratio is printed too. Wall
time measures the machine as much as the pipeline when other work holds the cores, so the CPU
time of the training passes (``pipeline.json``: every thread of a rank, the transport's
included) is compared as well, against a 1-rank pipeline (the same loop without any
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

REPO = Path(__file__).resolve().parents[1]
WIDTH = 256  # features of the residual stream
HIDDEN = 256  # hidden units of each block's g
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
lr = 0.01
[distributed]
max_in_flight = 1
"""
SINGLE, PIPELINE, ONE_RANK = "1 process x 1 thread", "2 processes x 1 thread", "1-rank pipeline (CPU baseline)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_once(config: Path, out: Path, ranks: int) -> tuple[list[float], list[float]]:
    """One run (``ranks = 0``: the plain single-process trainer); the training-pass seconds of
    every epoch after the first, and every rank's CPU seconds per training epoch (pipelines only)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    train = ["-m", "otblocks", "train", str(config), "--out", str(out), "--quiet"]
    if ranks:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={ranks}", "--master-addr=127.0.0.1",
            f"--master-port={_free_port()}", *train, "--distributed",
        ]
    else:
        cmd = [sys.executable, *train]
    subprocess.run(cmd, cwd=REPO, env=env, check=True)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    seconds = [r["seconds"] for r in records if r["split"] == "train" and r["module"] == 0 and r["epoch"] > 0]
    cpu = []
    if ranks:
        cpu = [r["train_cpu_seconds"] / EPOCHS for r in json.loads((out / "pipeline.json").read_text())["ranks"]]
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs (shared machine)")
    print(
        f"network: 2 modules of {BLOCKS_PER_MODULE} residual MLP blocks, width {WIDTH}, hidden {HIDDEN}; batch {BATCH}, "
        f"{BATCHES_PER_EPOCH} batches per epoch, {EPOCHS} epochs (the first dropped), {args.repeats} repeats"
    )
    n, n_samples = BATCHES_PER_EPOCH, BATCH * BATCHES_PER_EPOCH
    seconds: dict[str, list[float]] = {SINGLE: [], PIPELINE: []}
    cpu: dict[str, list[list[float]]] = {PIPELINE: [], ONE_RANK: []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(CONFIG)
        for repeat in range(args.repeats):
            for name, ranks in ((SINGLE, 0), (PIPELINE, 2), (ONE_RANK, 1)):
                start = time.perf_counter()
                epochs, rank_cpu = train_once(config, Path(tmp) / f"{ranks}-{repeat}", ranks)
                if name in seconds:
                    seconds[name] += epochs
                if name in cpu:
                    cpu[name].append(rank_cpu)
                print(
                    f"  repeat {repeat}: {name}: epoch training passes {', '.join(f'{s:.2f}' for s in epochs)} s"
                    + (f"; CPU per epoch by rank {', '.join(f'{c:.2f}' for c in rank_cpu)} s" if rank_cpu else "")
                    + f" (run {time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.2f})"
                )
            single, pipeline = (statistics.median(s[-(EPOCHS - 1):]) for s in seconds.values())
            print(f"  repeat {repeat}: throughput ratio {single / pipeline:.2f}")
    for name, values in seconds.items():
        print(f"{name}: median {statistics.median(values):.3f} s per epoch, {n_samples / statistics.median(values):.0f} samples/s")
    single, pipeline = (statistics.median(s) for s in seconds.values())
    print(f"throughput ratio (median over repeats and epochs): {single / pipeline:.2f}")
    print(f"model: 2 n / (n + 1) = {2 * n / (n + 1):.2f} for n = {n} batches per epoch; goal >= 1.7, limit 2")
    one_rank = statistics.median(c[0] for c in cpu[ONE_RANK])
    busiest = statistics.median(max(c) for c in cpu[PIPELINE])
    print(
        f"CPU per training epoch (medians): 1-rank pipeline {one_rank:.3f} s, busiest rank of 2 {busiest:.3f} s; "
        f"with a free core per rank the ratio would be about {one_rank / busiest * n / (n + 1):.2f}"
    )


if __name__ == "__main__":
    main()
