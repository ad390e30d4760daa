"""One writer per run or sweep directory: a second writer is refused in one line; a stale lock is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from otblocks.cli import main
from otblocks.errors import LockedError
from otblocks.lock import LOCK_NAME, DirLock, read_lock
from otblocks.rundir import read_json
from otblocks.sweep import run_sweep


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _plant(directory, pid, host=None, started=None):
    """A lock file as another writer would have left it."""
    directory.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "host": host or socket.gethostname(), "started": started or time.time(), "token": "other"}
    (directory / LOCK_NAME).write_text(json.dumps(record))


@pytest.fixture
def live_holder():
    """A live process of this host (a sleeping child) to stand for another writer."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child.pid
    child.kill()
    child.wait()


def test_lock_records_holder_and_is_removed(tmp_path):
    with DirLock(tmp_path / "run") as lock:
        holder = read_lock(tmp_path / "run")
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert lock.held
    assert not (tmp_path / "run").exists()  # the lock created it, nothing else was written: removed


def test_second_writer_is_refused_naming_pid_and_host(tmp_path, live_holder):
    _plant(tmp_path / "run", live_holder)
    with pytest.raises(LockedError) as info:
        DirLock(tmp_path / "run").acquire()
    message = str(info.value)
    assert f"PID {live_holder}" in message and socket.gethostname() in message and "\n" not in message
    assert info.value.exit_code == 4
    assert json.loads((tmp_path / "run" / LOCK_NAME).read_text())["pid"] == live_holder  # untouched


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = _dead_pid()
    _plant(tmp_path / "run", dead)
    said = []
    with DirLock(tmp_path / "run", warn=said.append):
        assert read_lock(tmp_path / "run")["pid"] == os.getpid()
    assert len(said) == 1 and f"PID {dead}" in said[0] and "no longer runs" in said[0]


def test_lock_of_another_host_is_not_guessed(tmp_path):
    _plant(tmp_path / "run", 1, host="elsewhere.example")
    with pytest.raises(LockedError, match="elsewhere.example.*remove"):
        DirLock(tmp_path / "run").acquire()


def test_lock_on_a_file_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    from otblocks.errors import FileSystemError

    with pytest.raises(FileSystemError, match="is a file; expected a directory"):
        DirLock(tmp_path / "f").acquire()


def test_train_into_a_live_run_is_refused_and_touches_nothing(tmp_path, live_holder, make_config, capsys):
    from otblocks import train

    config = make_config("train.epochs=1")
    train(config, tmp_path / "run", quiet=True)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*")}
    _plant(tmp_path / "run", live_holder)
    with pytest.raises(LockedError):
        train(config, tmp_path / "run", resume=True, quiet=True)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.name != LOCK_NAME}
    assert after == {k: v for k, v in before.items()}


def test_cli_second_writer_gets_exit_4_and_one_line(tmp_path, live_holder, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[train]\nepochs = 1\n")
    _plant(tmp_path / "run", live_holder)
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("otblocks: error:") and f"PID {live_holder}" in err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_NAME]


def test_two_sweeps_on_one_directory(tmp_path, live_holder):
    config = tmp_path / "c.toml"
    config.write_text("[train]\nepochs = 1\n")
    _plant(tmp_path / "sw", live_holder)
    with pytest.raises(LockedError, match="sweep directory"):
        run_sweep(config, tmp_path / "sw", ["transport.tau=1,inf"], [0], quiet=True, log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "sw").iterdir()) == [LOCK_NAME]  # no sweep.json, no run


@pytest.mark.slow
def test_two_concurrent_trainings_one_wins_whole(tmp_path):
    """Two real processes into one --out: one is refused (exit 4), the other writes every record."""
    config = tmp_path / "c.toml"
    config.write_text(
        "[data]\nn_train = 400\nn_val = 100\nn_test = 100\n[model]\ndepth = 4\nhidden = 16\n"
        "[train]\nepochs = 5\nbatch_size = 25\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "otblocks", "train", str(config), "--quiet", "--out", str(tmp_path / "run")]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 2], [0, 4]), results  # refused by the lock (4) or, if it finished first, as not empty (2)
    loser = next(err for code, err in results if code != 0)
    assert loser.count("\n") == 1 and loser.startswith("otblocks: error:")
    from otblocks import load_config, train

    train(load_config(config), tmp_path / "alone", quiet=True)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len((tmp_path / "alone" / "metrics.jsonl").read_text().splitlines())
    assert read_json(tmp_path / "run" / "summary.json")["n_modules"] == 4
    assert not (tmp_path / "run" / LOCK_NAME).exists()
