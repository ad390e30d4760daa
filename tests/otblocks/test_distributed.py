"""The pipeline on torch.distributed (gloo, CPU, loopback only).

Multi-rank runs are launched two ways: once with the real launch line (``python -m
torch.distributed.run ... -m otblocks train ... --distributed``), and otherwise by forking this
already-initialised test process once per rank with the environment torchrun gives (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR=127.0.0.1``, a free ``MASTER_PORT``, and the
rendezvous store hosted by the parent, as torchrun's agent hosts it), which saves each run the
interpreter start-ups and imports. No parent ever kills a survivor: a rank that does not stop
on its own fails the test.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributed import TCPStore

from otblocks import ConfigError, RunDirError, load_config, load_run, train
from otblocks.cli import main
from otblocks.data import build_data
from otblocks.distributed import FAULT_ENV, Fault, balanced_placement, choose_placement, measured_costs, parameter_costs
from otblocks.distributed.checkpoint import common_position, prune
from otblocks.distributed.comm import HEADER_SLOTS, decode_header, encode_header
from otblocks.distributed.replay import ReplayBuffer
from otblocks.models import build_model
from otblocks.rundir import RunPaths, read_json
from otblocks.training import RECORD_TIMING_KEYS, TIMING_KEYS

REPO = Path(__file__).resolve().parents[2]
# 4 modules of one block on two moons, 8 batches per epoch: a run takes about a second.
TOY = """
[data]
name = "moons"
n_train = 200
n_val = 200
n_test = 200
[model]
depth = 4
hidden = 32
[transport]
tau = 0.5
[train]
regime = "parallel"
epochs = 4
batch_size = 25
lr = 0.05
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Rank:
    status: int
    stderr: str


def launch(
    n: int,
    argv: list[str],
    tmp_path: Path,
    env: dict[str, str] | None = None,
    kill_after: set[int] = frozenset(),
    deadline: float = 60.0,
) -> tuple[list[Rank], float]:
    """Fork ``n`` ranks of ``otblocks`` with torchrun's environment; their statuses and stderr, and the wall time.

    Ranks in ``kill_after`` (a hung rank) are killed once every other rank has exited.
    """
    port, pids = _free_port(), []
    store = TCPStore("127.0.0.1", port, n, is_master=True, wait_for_workers=False)  # outlives every rank
    logs = [tmp_path / f"rank{r}-{port}.log" for r in range(n)]
    start = time.monotonic()
    for rank in range(n):
        pid = os.fork()
        if pid == 0:  # the rank: never returns to pytest
            status = 1
            try:
                fd = os.open(logs[rank], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                sys.stdout = sys.stderr = open(fd, "w", buffering=1, closefd=False)
                os.environ.update(
                    RANK=str(rank),
                    WORLD_SIZE=str(n),
                    LOCAL_RANK=str(rank),
                    MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=str(port),
                    TORCHELASTIC_USE_AGENT_STORE="True",
                    **(env or {}),
                )
                status = main(argv)
            except BaseException:  # noqa: BLE001 - reported through the log
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(status)
        pids.append(pid)
    statuses: dict[int, int] = {}
    while len(statuses) < n - len(kill_after):
        if time.monotonic() - start > deadline:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"ranks still running after {deadline} s: {[log.read_text() for log in logs]}")
        for rank, pid in enumerate(pids):
            if rank not in statuses and rank not in kill_after:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    statuses[rank] = os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    wall = time.monotonic() - start
    for rank in kill_after:
        os.kill(pids[rank], signal.SIGKILL)
        statuses[rank] = os.waitstatus_to_exitcode(os.waitpid(pids[rank], 0)[1])
    del store
    return [Rank(statuses[r], logs[r].read_text()) for r in range(n)], wall


def _records(path: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k not in RECORD_TIMING_KEYS}
        for line in path.read_text().splitlines()
    ]


def assert_same_run(run: Path, reference: Path) -> None:
    """Same metric records (losses to float32 rounding) and same summary, timings and devices aside."""
    got, want = _records(run / "metrics.jsonl"), _records(reference / "metrics.jsonl")
    assert [r.keys() for r in got] == [r.keys() for r in want]
    for key, value in want[0].items():
        if isinstance(value, float):
            np.testing.assert_allclose([r[key] for r in got], [r[key] for r in want], rtol=1e-5, atol=1e-7, err_msg=key)
        else:
            assert [r[key] for r in got] == [r[key] for r in want], key
    summary, expected = read_json(run / "summary.json"), read_json(reference / "summary.json")
    assert summary.keys() == expected.keys()
    for key in sorted(expected.keys() - set(TIMING_KEYS) - {"device"}):
        if isinstance(expected[key], str):
            assert summary[key] == expected[key], key
        else:
            np.testing.assert_allclose(
                np.asarray(summary[key], float), np.asarray(expected[key], float), rtol=1e-5, err_msg=key
            )


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> tuple[Path, Path]:
    """The toy configuration file and its single-process ``parallel`` run."""
    root = tmp_path_factory.mktemp("toy")
    config = root / "toy.toml"
    config.write_text(TOY)
    train(load_config(config), root / "reference", quiet=True)
    return config, root / "reference"


def _argv(config: Path, out: Path, *sets: str, resume: bool = False) -> list[str]:
    overrides = [arg for s in sets for arg in ("--set", s)]
    return ["train", str(config), "--out", str(out), "--distributed", "--quiet", *overrides] + (
        ["--resume"] if resume else []
    )


# ----------------------------------------------------------------------------- placement
@pytest.mark.parametrize(
    "costs, n_ranks, counts",
    [
        ([1, 1, 1, 1], 2, (2, 2)),
        ([1, 1, 1], 2, (1, 2)),  # a tie: the earlier rank (which also reads the data) takes fewer
        ([4, 1, 1, 1, 1], 2, (1, 4)),
        ([1, 2, 3, 4, 5, 6], 3, (3, 2, 1)),  # largest sum 11 at best; (3, 2, 1) has 6, 9, 6
        ([5, 5], 2, (1, 1)),
        ([3, 1, 2], 1, (3,)),
    ],
)
def test_balanced_placement(costs, n_ranks, counts):
    assert balanced_placement(costs, n_ranks).counts == counts


def test_balanced_placement_is_optimal_against_brute_force():
    # every way of cutting 7 modules into 3 consecutive runs: the best largest sum is found
    rng = np.random.default_rng(0)
    for _ in range(20):
        costs = rng.uniform(0, 10, 7).tolist()
        best = min(max(sum(costs[:a]), sum(costs[a:b]), sum(costs[b:])) for a in range(1, 6) for b in range(a + 1, 7))
        placement = balanced_placement(costs, 3)
        loads = [sum(costs[k] for k in placement.modules(r)) for r in range(3)]
        assert max(loads) == pytest.approx(best)


def test_placement_errors(make_config):
    cfg = make_config("distributed.placement=[1, 3]").distributed
    assert choose_placement(cfg, 2, 4, None).counts == (1, 3)
    with pytest.raises(ConfigError, match=r"must have one entry per rank \(3 ranks\); got \[1, 3\]"):
        choose_placement(cfg, 3, 4, None)
    with pytest.raises(ConfigError, match="at least one module per rank: 4 modules for 5 ranks"):
        choose_placement(make_config().distributed, 5, 4, [1.0] * 4)


def test_module_costs_by_parameters_and_by_measured_time(make_config):
    config = make_config("model.depth=3", "model.split_points=[1]")  # modules of 1 and 2 blocks
    data = build_data(config.data)
    net = build_model(config.model, data.input_shape, data.n_classes)
    block = sum(p.numel() for p in net.block_modules[0].parameters())
    head = sum(p.numel() for p in net.heads[0].parameters())
    assert parameter_costs(net) == [block + head, 2 * block + head]
    before = {name: t.clone() for name, t in net.state_dict().items()}
    rng = torch.get_rng_state()
    seconds = measured_costs(config, net, data, torch.device("cpu"))
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    # the probe steps a copy: the network and the global random state are untouched
    assert all(torch.equal(net.state_dict()[name], t) for name, t in before.items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_resume_point_is_the_latest_position_every_rank_holds(tmp_path):
    # a crash during the commit of position 3: rank 0 wrote it, rank 1 did not
    paths = RunPaths(tmp_path)
    paths.checkpoints.mkdir()
    for rank, position in [(0, 2), (0, 3), (1, 2), (2, 2), (2, 3)]:
        paths.rank_checkpoint(rank, position).write_bytes(b"")
    assert common_position(paths, 3) == 2
    assert common_position(paths, 4) == 0  # rank 3 holds nothing
    prune(paths, 0, 2)
    assert sorted(paths.rank_checkpoints()[0]) == [2]
    prune(paths, 2, None)
    assert sorted(paths.rank_checkpoints()) == [0, 1]


# ----------------------------------------------------------------------------- messages, replay, faults
@pytest.mark.parametrize(
    "tensors",
    [
        [torch.zeros(25, 2), torch.zeros(25, dtype=torch.int64)],
        [torch.zeros(8, 16, 32, 32, dtype=torch.bfloat16), torch.zeros(8, dtype=torch.int64)],
        [torch.zeros(3, 5, dtype=torch.float16).t(), torch.ones(3, dtype=torch.bool)],
        [],
    ],
)
def test_header_announces_any_shape_and_dtype(tensors):
    header = encode_header(1, 7, 42, tensors)
    assert header.shape == (HEADER_SLOTS,) and header.dtype == torch.int64
    assert decode_header(header) == (1, 7, 42, [(t.dtype, tuple(t.shape)) for t in tensors])


def test_header_rejects_what_it_cannot_describe():
    with pytest.raises(ValueError, match="need 36 header slots, more than 32"):
        encode_header(1, 0, 0, [torch.zeros([1] * 30)])
    with pytest.raises(TypeError, match="dtype torch.complex64"):
        encode_header(1, 0, 0, [torch.zeros(2, dtype=torch.complex64)])


def test_replay_buffer_reuses_each_batch_at_most_max_uses_times():
    buffer = ReplayBuffer(capacity=2, max_uses=3)
    uses: dict[int, int] = {}
    for i in range(4):
        buffer.add(torch.tensor([i]), torch.tensor([i]))
        for _ in range(2):  # fewer replays than allowed between new batches
            x, _ = buffer.take()
            uses[int(x)] = uses.get(int(x), 0) + 1
    while len(buffer):
        x, _ = buffer.take()
        uses[int(x)] = uses.get(int(x), 0) + 1
    assert max(uses.values()) <= 3
    assert uses == {0: 2, 1: 2, 2: 3, 3: 3}  # 0 and 1 were dropped (capacity 2) with uses left
    assert len(ReplayBuffer(4, 0)) == 0
    off = ReplayBuffer(4, 0)
    off.add(torch.zeros(1), torch.zeros(1))
    assert len(off) == 0


def test_fault_spec_from_environment():
    assert Fault.from_env({}) is None
    assert Fault.from_env({FAULT_ENV: "1:2:3:hang"}) == Fault(1, 2, 3, "hang")
    with pytest.raises(ConfigError, match="must look like 'RANK:EPOCH:BATCH:ACTION'"):
        Fault.from_env({FAULT_ENV: "1:2:explode"})
    with pytest.raises(RuntimeError, match="injected fault"):
        Fault(0, 1, 2, "raise").check(0, 1, 2)
    Fault(0, 1, 2, "raise").check(1, 1, 2)  # another rank: nothing happens


# ----------------------------------------------------------------------------- one-line errors
def test_distributed_needs_the_parallel_regime(toy, tmp_path, capsys):
    config, _ = toy
    status = main(_argv(config, tmp_path / "r", "train.regime=sequential"))
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert err.startswith("otblocks: error: The 'train.regime' config key must be 'parallel' with --distributed")
    assert not (tmp_path / "r").exists()


def test_distributed_needs_torchrun(toy, tmp_path, capsys, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    config, _ = toy
    assert main(_argv(config, tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--distributed needs the environment that torchrun sets (RANK" in err


# ----------------------------------------------------------------------------- the pipeline
def test_two_ranks_reproduce_the_single_process_parallel_regime(toy, tmp_path):
    config, reference = toy
    out = tmp_path / "run"
    ranks, _ = launch(2, _argv(config, out, "distributed.max_in_flight=1"), tmp_path)
    assert [r.status for r in ranks] == [0, 0], [r.stderr for r in ranks]
    assert_same_run(out, reference)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints",
        "config.toml",
        "metrics.jsonl",
        "pipeline.json",
        "summary.json",
    ]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["last.pt"]  # rank files merged, then removed
    assert (out / "config.toml").read_text() == (reference / "config.toml").read_text()
    run = load_run(out)
    expected = load_run(reference)
    for name, tensor in expected.net.state_dict().items():
        torch.testing.assert_close(run.net.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)
    pipeline = read_json(out / "pipeline.json")
    assert [r["modules"] for r in pipeline["ranks"]] == [[0, 1], [2, 3]]  # equal parameter counts
    assert (
        pipeline["ranks"][0]["batches_out"] == pipeline["ranks"][1]["batches_in"] == 4 * 8 + 4 * 8 + 16
    )  # train, val, final
    assert read_json(out / "summary.json")["device"] == "cpu, cpu"


def test_three_ranks_bound_the_batches_in_flight(toy, tmp_path):
    # the last rank has twice the work and pauses before its second batch (a slow rank, whatever
    # the machine's load): the others fill its inbox up to max_in_flight, never more
    config, reference = toy
    out = tmp_path / "run"
    sets = ("distributed.placement=[1, 1, 2]", "distributed.max_in_flight=2")
    ranks, _ = launch(3, _argv(config, out, *sets), tmp_path, env={FAULT_ENV: "2:0:1:pause"})
    assert [r.status for r in ranks] == [0, 0, 0], [r.stderr for r in ranks]
    assert_same_run(out, reference)  # pipelining deeper changes nothing but the timing
    stages = read_json(out / "pipeline.json")["ranks"]
    assert [s["modules"] for s in stages] == [[0], [1], [2, 3]]
    assert max(s["max_in_flight_out"] for s in stages) <= 2
    assert max(s["max_in_flight_in"] for s in stages) <= 2
    assert stages[2]["max_in_flight_in"] == 2  # the bound is reached, so it is the bound that holds


def test_replay_reuses_batches_while_waiting(toy, tmp_path):
    # rank 1 (one module) waits for rank 0 (three): it replays stored batches meanwhile
    config, _ = toy
    out = tmp_path / "run"
    sets = ("distributed.placement=[3, 1]", "distributed.replay=2", "distributed.max_in_flight=1")
    ranks, _ = launch(2, _argv(config, out, *sets), tmp_path)
    assert [r.status for r in ranks] == [0, 0], [r.stderr for r in ranks]
    stages = read_json(out / "pipeline.json")["ranks"]
    train_batches = 4 * 8
    assert 0 < stages[1]["replay_steps"] <= 2 * train_batches
    assert all(s["replay_steps"] <= 2 * train_batches for s in stages)
    assert read_json(out / "summary.json")["val_accuracy_at_best_depth"] > 0.8


@pytest.mark.parametrize(
    "action, how",
    [
        ("raise", "rank 1 failed (RuntimeError: injected fault"),
        ("exit", "rank 1 stopped responding (it closed its connection"),
        # a hung rank is seen either by a neighbour's timeout, or as a closed connection when its
        # own receiving thread times out first (gloo then closes the connection)
        ("hang", "rank 1 stopped responding (it "),
    ],
)
def test_a_failing_rank_stops_the_others_who_name_it(toy, tmp_path, action, how):
    config, _ = toy
    timeout = 3
    argv = _argv(config, tmp_path / "run", f"distributed.timeout={timeout}")
    ranks, wall = launch(
        3, argv, tmp_path, env={FAULT_ENV: f"1:1:2:{action}"}, kill_after={1} if action == "hang" else set()
    )
    for rank in (0, 2):
        assert ranks[rank].status == 1, ranks[rank].stderr
        assert f"otblocks: error: {how}" in ranks[rank].stderr
    if action == "raise":
        assert ranks[1].status == 1 and "RuntimeError: injected fault (OTBLOCKS_FAULT=1:1:2:raise)" in ranks[1].stderr
    assert wall < (2 * timeout if action == "hang" else 0) + 10  # a hang costs each survivor one timeout


def test_a_non_finite_loss_on_one_rank_stops_the_pipeline(toy, tmp_path):
    # module 2 (rank 1's) gets a tau so small that its penalty overflows float32 at the first step
    config, _ = toy
    sets = ("transport.schedule=list", "transport.taus=[1.0, 1.0, 1e-45, 1.0]")
    ranks, _ = launch(2, _argv(config, tmp_path / "run", *sets), tmp_path)
    assert [r.status for r in ranks] == [1, 1]
    assert (
        "otblocks: error: Non-finite training loss (" in ranks[1].stderr and "in module 2 at epoch 0" in ranks[1].stderr
    )
    assert "otblocks: error: rank 1 failed (NonFiniteLossError: Non-finite training loss (" in ranks[0].stderr
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())


def test_resume_after_a_failure_finishes_the_run(toy, tmp_path):
    config, reference = toy
    out = tmp_path / "run"
    ranks, _ = launch(2, _argv(config, out), tmp_path, env={FAULT_ENV: "1:2:3:raise"})
    assert [r.status for r in ranks] == [1, 1]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["rank0-0002.pt", "rank1-0002.pt"]
    assert not (out / "summary.json").exists()

    with pytest.raises(RunDirError, match="holds the rank checkpoints of an unfinished distributed run"):
        train(load_config(config), out, resume=True, quiet=True)
    ranks, _ = launch(3, _argv(config, out, resume=True), tmp_path)
    assert [r.status for r in ranks] == [2, 2, 2]
    assert "it was checkpointed by 2 ranks; launch as many processes (got 3)" in ranks[1].stderr

    ranks, _ = launch(2, _argv(config, out, "distributed.timeout=30", resume=True), tmp_path)  # timeout may change
    assert [r.status for r in ranks] == [0, 0], [r.stderr for r in ranks]
    assert_same_run(out, reference)
    summary = read_json(out / "summary.json")
    assert summary["train_seconds"] > 0 and not math.isnan(summary["seconds_per_epoch_by_module"][3])

    lines = (out / "metrics.jsonl").read_text()
    ranks, _ = launch(2, _argv(config, out, resume=True), tmp_path)  # finished: nothing more happens
    assert [r.status for r in ranks] == [0, 0]
    assert (out / "metrics.jsonl").read_text() == lines and read_json(out / "summary.json") == summary


def test_the_multipliers_survive_a_failure_and_match_the_single_process_run(toy, tmp_path):
    # each rank checkpoints its modules' lambda_k; the resumed pipeline equals one process
    config, _ = toy
    sets = ["transport.schedule=multiplier", "transport.multiplier_step=0.5", "transport.multiplier_period=3"]
    reference = tmp_path / "reference"
    train(load_config(config, sets), reference, quiet=True)
    out = tmp_path / "run"
    ranks, _ = launch(2, _argv(config, out, *sets), tmp_path, env={FAULT_ENV: "1:2:3:raise"})
    assert [r.status for r in ranks] == [1, 1]
    ranks, _ = launch(2, _argv(config, out, *sets, resume=True), tmp_path)
    assert [r.status for r in ranks] == [0, 0], [r.stderr for r in ranks]
    assert_same_run(out, reference)
    assert read_json(out / "summary.json")["taus"] != [0.5] * 4  # the multipliers moved


def test_rank_0_writes_the_tensorboard_scalars(toy, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config, _ = toy
    out = tmp_path / "run"
    ranks, _ = launch(2, _argv(config, out, "train.tensorboard=true"), tmp_path)
    assert [r.status for r in ranks] == [0, 0], [r.stderr for r in ranks]
    events = EventAccumulator(str(out / "tensorboard")).Reload()
    want = [r["accuracy"] for r in _records(out / "metrics.jsonl") if r["split"] == "val" and r["module"] == 3]
    got = [e.value for e in events.Scalars("accuracy/val/module_3")]
    assert got == pytest.approx(want, rel=1e-6)  # every epoch, from the module on rank 1


def test_the_torchrun_launch_line_with_a_failing_rank(toy, tmp_path):
    """``python -m torch.distributed.run ... -m otblocks train ... --distributed``: rank 1 raises, rank 0 names it."""
    config, _ = toy
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", FAULT_ENV: "1:1:3:raise"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=2",
        "--master-addr=127.0.0.1",
        f"--master-port={_free_port()}",
        "-m",
        "otblocks",
        *_argv(config, out),
    ]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "RuntimeError: injected fault (OTBLOCKS_FAULT=1:1:3:raise)" in result.stderr  # rank 1's traceback
    assert "otblocks: error: rank 1 failed (RuntimeError: injected fault" in result.stderr  # rank 0's line
    assert "terminate called" not in result.stderr  # no thread left blocked in a receive at exit
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["rank0-0001.pt", "rank1-0001.pt"]


def test_an_unfinished_single_process_run_is_not_resumed_distributed(toy, tmp_path):
    config, _ = toy
    out = tmp_path / "run"

    def stop(index, item, records):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(load_config(config), out, quiet=True, callbacks=[stop])
    ranks, _ = launch(2, _argv(config, out, resume=True), tmp_path)
    assert [r.status for r in ranks] == [2, 2]
    assert (
        "holds an unfinished single-process run (checkpoints/last.pt); resume it without --distributed"
        in ranks[1].stderr
    )


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_two_gpus_with_nccl_reproduce_the_single_process_run(toy, tmp_path):
    config, _ = toy
    reference = tmp_path / "reference"
    train(load_config(config, ["train.device=cuda"]), reference, quiet=True)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=2",
        "--master-addr=127.0.0.1",
        f"--master-port={_free_port()}",
        "-m",
        "otblocks",
        *_argv(config, out, "train.device=cuda"),
    ]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert read_json(out / "pipeline.json")["backend"] == "nccl"
    assert read_json(out / "summary.json")["device"] == "cuda:0, cuda:1"
    assert_same_run(out, reference)
