"""Checkpoints: resume reproduces an uninterrupted run; a NaN keeps the last good checkpoint."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from otblocks import NonFiniteLossError, RunDirError, train
from otblocks.rundir import read_json
from otblocks.training import RECORD_TIMING_KEYS, TIMING_KEYS


def _without_timing(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in TIMING_KEYS}


def _metrics(path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k not in RECORD_TIMING_KEYS}
        for line in path.read_text().splitlines()
    ]


class Interrupt(Exception):
    pass


MULTIPLIER = ["transport.schedule=multiplier", "transport.multiplier_step=0.5", "transport.multiplier_period=3"]


@pytest.mark.parametrize(
    "regime, extra",
    [
        ("sequential", []),
        ("multilap", ["train.laps=2", "train.epochs=4"]),
        ("parallel", ["train.epochs=8"]),
        ("sequential", MULTIPLIER),  # the multipliers lambda_k are part of the checkpoint
        ("parallel", ["train.epochs=8", *MULTIPLIER]),
    ],
)
def test_resume_after_interruption_equals_uninterrupted(make_config, tmp_path, regime, extra):
    config = make_config(f"train.regime={regime}", "transport.tau=0.5", *extra)
    reference = train(config, tmp_path / "ref", quiet=True)

    def stop_after_five(index, item, records):
        if index == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config, tmp_path / "cut", quiet=True, callbacks=[stop_after_five])
    assert not (tmp_path / "cut" / "summary.json").exists()
    resumed = train(config, tmp_path / "cut", resume=True, quiet=True)
    assert _without_timing(resumed.to_dict()) == _without_timing(reference.to_dict())
    assert _metrics(tmp_path / "cut" / "metrics.jsonl") == _metrics(tmp_path / "ref" / "metrics.jsonl")


def test_resume_of_finished_run_returns_its_summary(make_config, tmp_path):
    config = make_config()
    first = train(config, tmp_path / "r", quiet=True)
    again = train(config, tmp_path / "r", resume=True, quiet=True)
    assert again == first


def test_existing_run_is_not_overwritten(make_config, tmp_path):
    config = make_config("train.epochs=1")
    train(config, tmp_path / "r", quiet=True)
    with pytest.raises(RunDirError, match="not empty; pass --resume"):
        train(config, tmp_path / "r", quiet=True)


def test_resume_with_other_config_is_refused(make_config, tmp_path):
    train(make_config("train.epochs=1"), tmp_path / "r", quiet=True)
    with pytest.raises(RunDirError, match="differs from its config.toml in train.epochs"):
        train(make_config("train.epochs=2"), tmp_path / "r", resume=True, quiet=True)


def test_nan_stops_and_keeps_last_good_checkpoint(make_config, tmp_path):
    digests = []

    def remember(index, item, records):
        digests.append(hashlib.sha256((tmp_path / "r" / "checkpoints" / "last.pt").read_bytes()).hexdigest())

    # module 1's tau is so small that 1/(2 tau) * cost overflows float32: the loss is inf
    schedule = lambda k, epoch: 1e-45 if k == 1 else 1.0
    with pytest.raises(
        NonFiniteLossError, match="module 1 at epoch 0; training stopped and the last good checkpoint is kept"
    ):
        train(make_config(), tmp_path / "r", quiet=True, tau=schedule, callbacks=[remember])
    assert len(digests) == 3  # module 0's three epochs
    final = hashlib.sha256((tmp_path / "r" / "checkpoints" / "last.pt").read_bytes()).hexdigest()
    assert final == digests[-1]
    assert not (tmp_path / "r" / "summary.json").exists()


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_matches(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        '[data]\nname = "moons"\nn_train = 400\nn_val = 200\nn_test = 200\n'
        "[model]\ndepth = 6\nhidden = 32\n[transport]\ntau = 0.5\n"
        '[train]\nregime = "sequential"\nepochs = 30\nbatch_size = 25\nlr = 0.05\n'
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "otblocks", "train", str(config), "--quiet", "--out"]
    subprocess.run(cmd + [str(tmp_path / "ref")], check=True, env=env, timeout=300)

    victim = subprocess.Popen(cmd + [str(tmp_path / "cut")], env=env)
    checkpoint = tmp_path / "cut" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not checkpoint.exists():
        time.sleep(0.01)
    time.sleep(0.3)  # well inside module 0 or 1 of 6 (each takes seconds)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "cut" / "summary.json").exists(), "the run ended before it was killed"

    subprocess.run(cmd + [str(tmp_path / "cut"), "--resume"], check=True, env=env, timeout=300)
    ref = read_json(tmp_path / "ref" / "summary.json")
    cut = read_json(tmp_path / "cut" / "summary.json")
    assert _without_timing(cut) == _without_timing(ref)
    assert _metrics(tmp_path / "cut" / "metrics.jsonl") == _metrics(tmp_path / "ref" / "metrics.jsonl")


def test_summary_of_version_0_1_is_read_with_the_new_names(make_config, tmp_path):
    # otblocks 0.1 wrote the transport cost as val_kinetic_by_depth and no penalty ratio
    from otblocks.training import RunSummary

    summary = train(make_config("train.epochs=1"), tmp_path / "r", quiet=True).to_dict()
    old = dict(summary)
    old["val_kinetic_by_depth"] = old.pop("val_transport_cost_by_depth")
    del old["val_penalty_ratio_by_module"]
    read = RunSummary.from_dict(old)
    assert read.val_transport_cost_by_depth == summary["val_transport_cost_by_depth"]
    assert len(read.val_penalty_ratio_by_module) == 4 and all(math.isnan(v) for v in read.val_penalty_ratio_by_module)
    del old["best_depth"]
    with pytest.raises(RunDirError, match="lacks best_depth: it was not written by this version of otblocks; re-run"):
        RunSummary.from_dict(old)


def test_metric_records_of_version_0_1_are_read_with_the_new_names():
    from otblocks.training import RECORD_KEYS, upgrade_record

    old = {
        "regime": "sequential",
        "lap": 0,
        "module": 1,
        "epoch": 2,
        "split": "train",
        "loss": 0.75,
        "task_loss": 0.5,
        "transport": 0.25,
        "kinetic": 0.125,
        "accuracy": 0.9,
        "n": 200,
        "tau": 0.25,
        "lr": 0.01,
        "seconds": 1.0,
        "peak_memory_bytes": 0,
    }
    new = upgrade_record(old)
    assert sorted(new) == sorted(RECORD_KEYS)
    assert (new["penalty"], new["transport_cost"], new["penalty_ratio"]) == (0.25, 0.125, 0.5)
