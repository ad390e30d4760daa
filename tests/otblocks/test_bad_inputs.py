"""The bad-input catalogue: every bad value, option and file gets one line, the right status, and nothing written.

Each CLI case runs ``otblocks.cli.main`` in-process and asserts: the exit status (2 usage,
3 input/output, see :mod:`otblocks.errors`), exactly one line on standard error starting
``otblocks: error:`` and naming the value, no traceback, and the files under the test's
directory unchanged (nothing written, nothing half-written, nothing removed). Each Python API
case asserts the documented exception type and a message naming the parameter.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import analysis
from otblocks import load_config, train
from otblocks.cli import error_line, main
from otblocks.errors import BrokenFileError
from otblocks.reporting import t_interval
from otblocks.rundir import read_json

TINY = (
    '[data]\nname = "moons"\nn_train = 200\nn_val = 100\nn_test = 100\n'
    "[model]\ndepth = 2\nhidden = 8\n[train]\nepochs = 2\nbatch_size = 50\n"
)


class _Stop(Exception):
    pass


def _stop_after_first(index, item, records):
    if index == 1:
        raise _Stop


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """A finished run and an unfinished one (stopped after two epochs, checkpoint every epoch)."""
    root = tmp_path_factory.mktemp("templates")
    (root / "c.toml").write_text(TINY)
    config = load_config(root / "c.toml")
    train(config, root / "done", quiet=True)
    with pytest.raises(_Stop):
        train(config, root / "cut", quiet=True, callbacks=[_stop_after_first])
    return root


def _copy(templates: Path, name: str, dest: Path) -> Path:
    shutil.copytree(templates / name, dest)
    return dest


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@dataclass(frozen=True)
class CliCase:
    id: str
    setup: Callable[[Path, Path], list[str]]  # (tmp_path, templates) -> argv, after writing what it needs
    status: int
    fragment: str  # part of the one line: names the value and what is allowed


def _config(tmp: Path, text: str = TINY, name: str = "c.toml") -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def _train(*sets: str) -> Callable[[Path, Path], list[str]]:
    def setup(tmp, templates):
        argv = ["train", _config(tmp), "--out", str(tmp / "run"), "--quiet"]
        for s in sets:
            argv += ["--set", s]
        return argv

    return setup


def _file(tmp: Path, name: str = "afile", content: str = "x") -> Path:
    (tmp / name).write_text(content)
    return tmp / name


def _latin1(tmp: Path) -> str:
    (tmp / "c.toml").write_bytes(b"[train]\nepochs = 1 # caf\xe9\n")
    return str(tmp / "c.toml")


def _nonempty(tmp: Path) -> Path:
    (tmp / "run").mkdir()
    _file(tmp / "run", "notes.txt")
    return tmp / "run"


def _broken_cut(change: Callable[[Path], None]) -> Callable[[Path, Path], list[str]]:
    """``train --resume`` on a copy of the unfinished run after ``change``."""

    def setup(tmp, templates):
        run = _copy(templates, "cut", tmp / "run")
        change(run)
        return ["train", _config(tmp), "--out", str(run), "--resume", "--quiet"]

    return setup


def _on_done(command: list[str], change: Callable[[Path], None] = lambda run: None, after: list[str] = ()):
    def setup(tmp, templates):
        run = _copy(templates, "done", tmp / "run")
        change(run)
        return [*command, str(run), *after]

    return setup


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _sweep(*args: str, out: str = "sw") -> Callable[[Path, Path], list[str]]:
    def setup(tmp, templates):
        return ["sweep", _config(tmp), "--out", str(tmp / out), "--quiet", *args]

    return setup


CLI_CASES = [
    # train: values that used to pass validation and fail later
    CliCase(
        "train data.seed=-1",
        _train("data.seed=-1"),
        2,
        "'data.seed' config key must be an integer in [0, 2**32); got -1",
    ),
    CliCase("train train.seed=-1", _train("train.seed=-1"), 2, "'train.seed' config key must be an integer in [0"),
    CliCase(
        "train data.noise=inf",
        _train("data.noise=inf"),
        2,
        "'data.noise' config key must be a finite number >= 0; got inf",
    ),
    CliCase(
        "train train.lr=inf",
        _train("train.lr=inf"),
        2,
        "'train.lr' config key must be a finite positive number; got inf",
    ),
    CliCase(
        "train train.lr=0",
        _train("train.lr=0"),
        2,
        "'train.lr' config key must be a finite positive number; got 0.0",
    ),
    CliCase(
        "train gamma=-5 multistep",
        _train("train.gamma=-5", "train.lr_schedule=multistep", "train.milestones=[1]"),
        2,
        "'train.gamma' config key must be a number in (0, 1]",
    ),
    CliCase(
        "train momentum=nan",
        _train("train.momentum=nan"),
        2,
        "'train.momentum' config key must be a number in [0, 1); got nan",
    ),
    CliCase(
        "train weight_decay=-1",
        _train("train.weight_decay=-1"),
        2,
        "'train.weight_decay' config key must be a finite number >= 0",
    ),
    CliCase(
        "train label_smoothing=1.5",
        _train("train.label_smoothing=1.5"),
        2,
        "'train.label_smoothing' config key must be",
    ),
    CliCase(
        "train init_gain=nan",
        _train("model.init_gain=nan"),
        2,
        "'model.init_gain' config key must be a finite positive number",
    ),
    CliCase(
        "train tau=nan",
        _train("transport.tau=nan"),
        2,
        "'transport.tau' config key must be a positive number or inf; got nan",
    ),
    CliCase("train n_train=2e9", _train("data.n_train=2000000000"), 2, "'data.n_train' config key must fit in memory"),
    CliCase("train hidden=2e9", _train("model.hidden=2000000000"), 2, "'model.hidden' config key must fit in memory"),
    CliCase("train unknown key", _train("train.learning_rate=0.1"), 2, "Unknown config key 'train.learning_rate'"),
    CliCase("train bad override", _train("tau=1"), 2, "must look like 'section.key=value'"),
    CliCase(
        "train unknown option",
        lambda tmp, t: ["train", _config(tmp), "--out", str(tmp / "run"), "--frobnicate"],
        2,
        "unrecognized arguments: --frobnicate",
    ),
    # train: files
    CliCase(
        "train config not UTF-8",
        lambda tmp, t: ["train", _latin1(tmp), "--out", str(tmp / "run")],
        2,
        "must be UTF-8 text",
    ),
    CliCase(
        "train config not TOML",
        lambda tmp, t: ["train", _config(tmp, "[train\n"), "--out", str(tmp / "run")],
        2,
        "is not valid TOML",
    ),
    CliCase(
        "train config is a directory",
        lambda tmp, t: ["train", str(tmp), "--out", str(tmp / "run")],
        2,
        "it is a directory",
    ),
    CliCase(
        "train --out is a file",
        lambda tmp, t: ["train", _config(tmp), "--out", str(_file(tmp))],
        3,
        "is a file; expected a directory",
    ),
    CliCase(
        "train --out below a file",
        lambda tmp, t: ["train", _config(tmp), "--out", str(_file(tmp) / "run")],
        3,
        "Not a directory",
    ),
    CliCase(
        "train --out not empty",
        lambda tmp, t: ["train", _config(tmp), "--out", str(_nonempty(tmp))],
        2,
        "is not empty",
    ),
    CliCase(
        "train --resume no run",
        lambda tmp, t: ["train", _config(tmp), "--out", str(tmp / "none"), "--resume"],
        2,
        "holds no run",
    ),
    CliCase(
        "train --resume checkpoint random bytes",
        _broken_cut(lambda r: _random_bytes(r / "checkpoints" / "last.pt")),
        3,
        "last.pt' is unreadable",
    ),
    CliCase(
        "train --resume checkpoint truncated",
        _broken_cut(lambda r: _truncate(r / "checkpoints" / "last.pt")),
        3,
        "last.pt' is unreadable",
    ),
    CliCase(
        "train --resume config.toml not TOML",
        _broken_cut(lambda r: (r / "config.toml").write_text("[data\n")),
        3,
        "config.toml' is not valid TOML",
    ),
    CliCase(
        "train --resume metrics cut short",
        _broken_cut(lambda r: (r / "metrics.jsonl").write_text("")),
        3,
        "holds 0 complete records but the checkpoint covers",
    ),
    CliCase(
        "train --resume changed config",
        lambda tmp, t: [*_broken_cut(lambda r: None)(tmp, t), "--set", "train.lr=0.5"],
        2,
        "--allow-change train.lr",
    ),
    CliCase(
        "train --allow-change unknown key",
        lambda tmp, t: [*_broken_cut(lambda r: None)(tmp, t), "--allow-change", "train.learning_rate"],
        2,
        "'--allow-change' option must name config keys",
    ),
    # demo
    CliCase(
        "demo --n 1",
        lambda tmp, t: ["demo", "--n", "1", "--out", str(tmp / "demo"), "--quiet"],
        2,
        "'--n' option must be an integer >= 2; got 1",
    ),
    CliCase(
        "demo --tau -1",
        lambda tmp, t: ["demo", "--tau", "-1", "--out", str(tmp / "demo"), "--quiet"],
        2,
        "'--tau' option must be a positive",
    ),
    CliCase(
        "demo --tau nan",
        lambda tmp, t: ["demo", "--tau", "nan", "--out", str(tmp / "demo"), "--quiet"],
        2,
        "got nan",
    ),
    CliCase("demo --out is a file", lambda tmp, t: ["demo", "--out", str(_file(tmp)), "--quiet"], 3, "afile"),
    CliCase(
        "demo --set train.lr=inf",
        lambda tmp, t: ["demo", "--set", "train.lr=inf", "--out", str(tmp / "d"), "--quiet"],
        2,
        "'train.lr'",
    ),
    # analyze
    CliCase("analyze missing run", lambda tmp, t: ["analyze", str(tmp / "none")], 2, "does not exist"),
    CliCase(
        "analyze --n 1",
        _on_done(["analyze"], after=["--n", "1", "--quiet"]),
        2,
        "'--n' option must be an integer >= 2; got 1",
    ),
    CliCase(
        "analyze --method foo",
        _on_done(["analyze"], after=["--method", "foo", "--quiet"]),
        2,
        "'--method' option must be one of",
    ),
    CliCase(
        "analyze --blocks 99",
        _on_done(["analyze"], after=["--blocks", "99", "--quiet"]),
        2,
        "'--blocks' option must name blocks",
    ),
    CliCase(
        "analyze summary.json malformed",
        _on_done(["analyze"], lambda r: (r / "summary.json").write_text("{oops"), ["--quiet"]),
        3,
        "summary.json' must be JSON",
    ),
    CliCase(
        "analyze checkpoint corrupt",
        _on_done(["analyze"], lambda r: _random_bytes(r / "checkpoints" / "last.pt"), ["--quiet"]),
        3,
        "last.pt' is unreadable",
    ),
    CliCase(
        "analyze analysis is a file",
        _on_done(["analyze"], lambda r: (r / "analysis").write_text("x"), ["--quiet", "--no-report"]),
        3,
        "analysis",
    ),
    # features
    CliCase(
        "features --n 0",
        _on_done(["features"], after=["--n", "0", "--quiet"]),
        2,
        "'n' parameter of `write_run_features` must be an int in [1, 100]; got 0",
    ),
    CliCase(
        "features --out a directory",
        lambda tmp, t: [*_on_done(["features"])(tmp, t), "--out", str(tmp), "--n", "50", "--quiet"],
        3,
        "got a directory",
    ),
    CliCase(
        "features --out below a file",
        lambda tmp, t: [*_on_done(["features"])(tmp, t), "--out", str(_file(tmp) / "f.npz"), "--n", "50", "--quiet"],
        3,
        "got a path below a file",
    ),
    # sweep
    CliCase(
        "sweep --out is a file",
        lambda tmp, t: [*_sweep(out="afile")(tmp, t), "--seeds", _file(tmp).name and "0"],
        3,
        "is a file; expected a directory",
    ),
    CliCase("sweep --seeds -1", _sweep("--seeds", "-1"), 2, "argument --seeds: expected integers >= 0"),
    CliCase("sweep --jobs 0", _sweep("--jobs", "0"), 2, "argument --jobs: expected a positive integer; got '0'"),
    CliCase(
        "sweep bad grid value",
        _sweep("--set", "transport.tau=1,-1"),
        2,
        "'transport.tau' config key must be a positive number or inf",
    ),
    CliCase("sweep data.seed in --set", _sweep("--set", "data.seed=1,2"), 2, "--data-seeds, not --set"),
    CliCase("sweep --data-seeds x", _sweep("--data-seeds", "a,b"), 2, "argument --data-seeds"),
    # compare
    CliCase(
        "compare --confidence 1.5",
        _on_done(["compare"], after=["--confidence", "1.5"]),
        2,
        "argument --confidence: expected a number in (0, 1)",
    ),
    CliCase("compare --confidence nan", _on_done(["compare"], after=["--confidence", "nan"]), 2, "got 'nan'"),
    CliCase("compare missing dir", lambda tmp, t: ["compare", str(tmp / "none")], 2, "does not exist"),
    CliCase("compare a file", lambda tmp, t: ["compare", str(_file(tmp))], 2, "is a file; expected a directory"),
    CliCase(
        "compare summary.json malformed",
        _on_done(["compare"], lambda r: (r / "summary.json").write_text("[1, 2"), ["--out", "cmp"]),
        3,
        "summary.json' must be JSON",
    ),
    CliCase(
        "compare summary.json lacks a field",
        _on_done(
            ["compare"],
            lambda r: (r / "summary.json").write_text('{"test_accuracy_by_depth": [0.5]}'),
            ["--out", "cmp"],
        ),
        3,
        "lacks the field 'val_accuracy_by_depth'",
    ),
    CliCase(
        "compare config.toml not TOML",
        _on_done(["compare"], lambda r: (r / "config.toml").write_text("[x"), ["--out", "cmp"]),
        3,
        "config.toml' is not valid TOML",
    ),
    CliCase(
        "compare --out is a file",
        lambda tmp, t: [*_on_done(["compare"])(tmp, t), "--out", str(_file(tmp)), "--quiet"],
        3,
        "is a file; expected a directory",
    ),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_bad_input(case, tmp_path, templates, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default outputs (compare/, runs/demo) would land here
    monkeypatch.setattr("otblocks.footprint.memory_budget", lambda: (8 * 2**30, "a test budget"))
    argv = case.setup(tmp_path, templates)
    before = _snapshot(tmp_path)
    capsys.readouterr()
    status = main(argv)
    err = capsys.readouterr().err
    assert status == case.status, err
    assert err.count("\n") == 1 and err.startswith("otblocks: error: "), err
    assert "Traceback" not in err
    assert case.fragment in err, err
    assert _snapshot(tmp_path) == before, "files were written, changed or removed"


def test_catalogue_is_large_and_distinct():
    assert len({c.id for c in CLI_CASES}) == len(CLI_CASES) >= 40


# ------------------------------------------------------------------------------------------ Python API
def _nan(n=10, d=2):
    x = np.random.default_rng(0).normal(size=(n, d))
    x[3, 1] = np.nan
    return x


def _pts(n=10, d=2):
    return np.random.default_rng(0).normal(size=(n, d))


def _raises(x):
    raise RuntimeError("the user's map failed")


API_CASES: list[tuple[str, Callable[[Path], Any], type, str]] = [
    (
        "load_config overrides string",
        lambda tmp: load_config(None, "transport.tau=0.1"),
        TypeError,
        "'overrides' parameter of `load_config`",
    ),
    (
        "train dict config",
        lambda tmp: train({"train": {}}, tmp / "r"),
        TypeError,
        "'config' parameter of `train` must be a RunConfig",
    ),
    ("train config None", lambda tmp: train(None, tmp / "r"), TypeError, "got NoneType"),
    (
        "wasserstein NaN",
        lambda tmp: analysis.wasserstein(_nan(), _pts()),
        ValueError,
        "must contain only finite values",
    ),
    ("wasserstein inf", lambda tmp: analysis.wasserstein(_pts(), np.full((10, 2), np.inf)), ValueError, "finite"),
    ("wasserstein 1-D", lambda tmp: analysis.wasserstein(np.zeros(10), _pts()), ValueError, "2-D array"),
    (
        "wasserstein features differ",
        lambda tmp: analysis.wasserstein(_pts(d=2), _pts(d=3)),
        ValueError,
        "as many features",
    ),
    (
        "wasserstein strings",
        lambda tmp: analysis.wasserstein(np.array([["a", "b"]] * 3), _pts()),
        TypeError,
        "real numbers",
    ),
    ("wasserstein method", lambda tmp: analysis.wasserstein(_pts(), _pts(), method="magic"), ValueError, "'method'"),
    ("map_vs_ot n < 2", lambda tmp: analysis.map_vs_ot(_pts(n=1), _pts(n=1)), ValueError, "at least 2 samples"),
    ("map_vs_ot shapes", lambda tmp: analysis.map_vs_ot(_pts(n=10), _pts(n=9)), ValueError, "same shape"),
    ("map_vs_ot NaN", lambda tmp: analysis.map_vs_ot(_pts(), _nan()), ValueError, "finite"),
    ("map_vs_ot complex", lambda tmp: analysis.map_vs_ot(_pts() * 1j, _pts()), TypeError, "real numbers"),
    ("holder_fit NaN", lambda tmp: analysis.holder_fit(_nan(50), _pts(50)), ValueError, "finite"),
    ("holder_fit n < 2", lambda tmp: analysis.holder_fit(_pts(n=1), _pts(n=1)), ValueError, "at least"),
    ("jacobian not callable", lambda tmp: analysis.jacobian_asymmetry(3.0, _pts()), TypeError, "'fn' parameter"),
    (
        "jacobian callable raises",
        lambda tmp: analysis.jacobian_asymmetry(_raises, _pts()),
        RuntimeError,
        "the user's map failed",
    ),
    (
        "jacobian returns NaN",
        lambda tmp: analysis.jacobian_asymmetry(lambda x: x * math.nan, _pts()),
        ValueError,
        "must return finite values",
    ),
    (
        "jacobian n_probes 0",
        lambda tmp: analysis.jacobian_asymmetry(lambda x: x, _pts(), n_probes=0),
        ValueError,
        "'n_probes'",
    ),
    ("t_interval NaN", lambda tmp: t_interval([0.5, math.nan]), ValueError, "finite numbers"),
    ("t_interval confidence", lambda tmp: t_interval([0.5, 0.6], 1.5), ValueError, "'confidence' parameter"),
]


@pytest.mark.parametrize("call, exc, fragment", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_python_api_bad_input(call, exc, fragment, tmp_path):
    with pytest.raises(exc) as info:
        call(tmp_path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert not any(tmp_path.iterdir()), "nothing may be written"


# -------------------------------------------------------------------------- words and broken runs
def test_interrupt_words_depend_on_the_command(monkeypatch, capsys, tmp_path):
    import otblocks.cli.analyze as analyze_cli
    import otblocks.cli.train as train_cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(analyze_cli, "run", interrupted)
    monkeypatch.setattr(train_cli, "run", interrupted)
    assert main(["analyze", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "otblocks: interrupted.\n"  # analyze has no --resume
    assert main(["train", "c.toml", "--out", str(tmp_path)]) == 130
    assert "--resume" in capsys.readouterr().err


def test_memory_budget_error_names_the_option():
    err = analysis.MemoryBudgetError(
        "`map_vs_ot` would need about 9.3 GiB for n=15000 and m=15000 samples (41 bytes per pair), above "
        "memory_budget_gib=4. Use a subsample of at most 10240 points per side, method='sliced'."
    )
    line, status = error_line(err, "analyze")
    assert status == 2 and "\n" not in line and "9.3 GiB" in line
    assert line.endswith("above memory_budget_gib=4; pass a smaller --n (at most 10240).")


def test_nan_at_epoch_0_promises_no_checkpoint(tmp_path, capsys):
    config = _config(tmp_path, TINY)
    status = main(
        [
            "train",
            config,
            "--out",
            str(tmp_path / "run"),
            "--quiet",
            "--set",
            "train.lr=1e30",
            "--set",
            "train.optimizer=sgd",
            "--set",
            "train.momentum=0",
        ]
    )
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1, err
    assert "last good checkpoint" not in err and "Non-finite" in err


def test_short_metrics_refuse_resume_and_keep_the_file(tmp_path, templates):
    run = _copy(templates, "cut", tmp_path / "run")
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text("".join(lines[:-1]))  # a crash cut the last record
    before = _snapshot(run)
    expected = f"holds {len(lines) - 1} complete records but the checkpoint covers {len(lines)}"
    with pytest.raises(BrokenFileError, match=expected):
        train(load_config(templates / "c.toml"), run, resume=True, quiet=True)
    assert _snapshot(run) == before


def test_prev_checkpoint_is_kept_and_resumes_to_the_same_run(tmp_path, templates):
    """A corrupt last.pt names prev.pt; moving prev.pt into place resumes to the uninterrupted numbers."""
    config = load_config(templates / "c.toml")
    run = _copy(templates, "cut", tmp_path / "run")
    last, prev = run / "checkpoints" / "last.pt", run / "checkpoints" / "prev.pt"
    assert prev.is_file()  # two checkpoints were written: the first one is kept
    _truncate(last)
    with pytest.raises(BrokenFileError, match=f"mv {prev} {last}"):
        train(config, run, resume=True, quiet=True)
    os.replace(prev, last)
    resumed = train(config, run, resume=True, quiet=True)
    reference = read_json(templates / "done" / "summary.json")
    assert resumed.test_accuracy_by_depth == reference["test_accuracy_by_depth"]
    assert resumed.val_loss_by_depth == reference["val_loss_by_depth"]
    assert _records(run / "metrics.jsonl") == _records(templates / "done" / "metrics.jsonl")


def test_resume_with_an_allowed_change_is_recorded(tmp_path, templates, capsys):
    run = _copy(templates, "cut", tmp_path / "run")
    argv = ["train", str(templates / "c.toml"), "--out", str(run), "--resume", "--quiet"]
    assert main([*argv, "--allow-change", "train.lr", "--set", "train.lr=0.005"]) == 0
    changes = read_json(run / "config_changes.jsonl")
    assert changes["keys"] == {"train.lr": [0.01, 0.005]}
    assert "lr = 0.005" in (run / "config.toml").read_text()


@pytest.mark.slow
def test_kill_at_random_points_then_resume_matches(tmp_path):
    """SIGKILL at 3 random moments of a run, resume after each: the same summary and records as uninterrupted."""
    config = _config(tmp_path, TINY.replace("epochs = 2", "epochs = 10").replace("n_train = 200", "n_train = 400"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "otblocks", "train", config, "--quiet", "--out"]
    subprocess.run([*cmd, str(tmp_path / "ref")], check=True, env=env, timeout=300)
    rng = np.random.default_rng(13)
    cut, kills = tmp_path / "cut", 0
    for delay in rng.uniform(0.0, 1.5, size=3):
        victim = subprocess.Popen([*cmd, str(cut), *(["--resume"] if (cut / "config.toml").exists() else [])], env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (cut / "checkpoints" / "last.pt").exists():
            time.sleep(0.005)
        time.sleep(delay)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
        kills += victim.returncode == -signal.SIGKILL
    subprocess.run([*cmd, str(cut), "--resume"], check=True, env=env, timeout=300)
    assert kills >= 1, "every run finished before it was killed: the test did not test"
    timing = {"train_seconds", "seconds_per_epoch_by_module", "peak_memory_bytes", "peak_memory_bytes_by_module"}

    def strip(summary: dict) -> dict:
        return {k: v for k, v in summary.items() if k not in timing}

    assert strip(read_json(cut / "summary.json")) == strip(read_json(tmp_path / "ref" / "summary.json"))
    assert _records(cut / "metrics.jsonl") == _records(tmp_path / "ref" / "metrics.jsonl")


def _records(path: Path) -> list[dict]:
    """The records of a metrics file without their timing fields (which differ between repeats)."""
    return [
        {k: v for k, v in json.loads(line).items() if "seconds" not in k and "memory" not in k}
        for line in path.read_text().splitlines()
    ]


@pytest.mark.parametrize(
    "code, strerror, fragment",
    [
        (errno.ENOSPC, "No space left on device", "the disk is full (the files already written are kept)"),
        (errno.EROFS, "Read-only file system", "the file system is read-only, choose another --out"),
        (errno.EACCES, "Permission denied", "choose a directory you may write to"),
    ],
)
def test_file_system_errors_are_one_line_naming_the_path(code, strerror, fragment):
    # a full disk or a read-only mount cannot be made in a test without privileges: the mapping is checked directly
    line, status = error_line(OSError(code, strerror, "/runs/r/metrics.jsonl"))
    assert status == 3 and line.startswith(f"'/runs/r/metrics.jsonl': {strerror}; ") and fragment in line
