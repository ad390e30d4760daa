"""The command line: run-directory files, one-line errors, the demo."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from otblocks.cli import main
from otblocks.rundir import read_json

TOY = [
    "--set",
    "data.n_train=200",
    "--set",
    "data.n_val=200",
    "--set",
    "data.n_test=200",
    "--set",
    "model.depth=2",
    "--set",
    "train.epochs=2",
    "--set",
    "model.hidden=8",
]


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nname = "moons"\n[transport]\ntau = "inf"\n[train]\nregime = "sequential"\n')
    return path


def test_train_writes_the_run_directory(tmp_path, config_file, capsys):
    out = tmp_path / "run"
    assert main(["train", str(config_file), "--out", str(out), "--quiet", *TOY, "--set", "transport.tau=0.5"]) == 0
    assert (out / "config.toml").read_text().count("tau = 0.5") == 1
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # sequential: 2 modules x 2 epochs x (train, val)
    assert len(records) == 8
    required = {
        "regime",
        "lap",
        "module",
        "epoch",
        "split",
        "loss",
        "task_loss",
        "penalty",
        "transport_cost",
        "penalty_ratio",
        "accuracy",
        "tau",
        "lr",
        "seconds",
    }
    assert all(required <= set(r) for r in records)
    assert {r["split"] for r in records} == {"train", "val"}
    assert "best depth" in capsys.readouterr().out  # --quiet hides the bars, not the result
    summary = read_json(out / "summary.json")
    for key in (
        "val_accuracy_by_depth",
        "test_accuracy_by_depth",
        "best_depth",
        "test_accuracy_at_best_depth",
        "train_seconds",
    ):
        assert key in summary
    assert len(summary["val_accuracy_by_depth"]) == 2
    assert (out / "checkpoints" / "last.pt").exists()


def test_inf_tau_is_strict_json(tmp_path, config_file):
    out = tmp_path / "run"
    main(["train", str(config_file), "--out", str(out), "--quiet", *TOY])
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert first["tau"] == "inf"
    assert json.loads((out / "summary.json").read_text())["taus"] == ["inf", "inf"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("transport.tau=-2", "The 'transport.tau' config key must be a positive number or inf; got -2.0."),
        ("train.regime=sequentially", "The 'train.regime' config key must be one of"),
        ("model.depth=3", "The 'model.depth' config key must be divisible by 'model.blocks_per_module' (2); got 3."),
        ("model.colour=1", "Unknown config key 'model.colour'"),
    ],
)
def test_bad_config_fails_before_anything_is_written(tmp_path, config_file, capsys, override, message):
    out = tmp_path / "never"
    extra = ["--set", "model.blocks_per_module=2"] if "depth=3" in override else []
    status = main(["train", str(config_file), "--out", str(out), "--set", override, *extra])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("otblocks: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_console_script_exit_status_and_no_traceback(tmp_path, config_file):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "otblocks",
            "train",
            str(config_file),
            "--out",
            str(tmp_path / "x"),
            "--set",
            "transport.tau=0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "otblocks: error: The 'transport.tau' config key must be a positive number or inf; got 0.0."
    ]
    assert not (tmp_path / "x").exists()


def test_demo_prints_accuracy_by_depth_for_both_taus(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet", "--set", "train.epochs=1", "--set", "model.depth=3"]) == 0
    text = capsys.readouterr().out
    assert "tau_inf val" in text and "tau_0.5 test" in text
    assert len([line for line in text.splitlines() if line.strip()[:1].isdigit() and len(line.split()) == 5]) == 3
    assert (out / "tau_inf" / "summary.json").exists() and (out / "tau_0.5" / "summary.json").exists()
    # a second call reuses the finished runs
    assert main(["demo", "--out", str(out), "--quiet", "--set", "train.epochs=1", "--set", "model.depth=3"]) == 0
