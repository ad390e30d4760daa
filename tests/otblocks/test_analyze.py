"""`otblocks analyze` end to end on a tiny toy run: schema, figures, report, errors."""

from __future__ import annotations

import csv
import json
from importlib import resources

import jsonschema
import pytest

from otblocks import train
from otblocks.cli import main
from otblocks.cli.analyze import analyze_run
from otblocks.cli.analyze_figures import FIGURES

SCHEMA = json.loads(resources.files("otblocks").joinpath("schemas/analysis.schema.json").read_text())


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    from otblocks import load_config

    out = tmp_path_factory.mktemp("runs") / "toy"
    config = load_config(None, ["data.n_train=200", "data.n_val=120", "data.n_test=100", "model.depth=3",
                                "model.hidden=16", "train.epochs=2", "train.batch_size=25", "transport.tau=0.5"])
    train(config, out, quiet=True)
    return out


def test_analyze_cli_writes_json_csv_figures_and_report(toy_run):
    assert main(["analyze", str(toy_run), "--n", "80", "--quiet"]) == 0
    result = json.loads((toy_run / "analysis" / "analysis.json").read_text())
    jsonschema.validate(result, SCHEMA)
    assert result["n"] == 80 and len(result["blocks"]) == 3
    # one module per block: the module entries repeat the blocks
    assert [m["kind"] for m in result["modules"]] == ["module"] * 3
    rows = list(csv.DictReader((toy_run / "analysis" / "analysis.csv").open()))
    assert [r["index"] for r in rows] == ["0", "1", "2"]
    for name in FIGURES:
        path = toy_run / "analysis" / "figures" / name
        assert path.exists() and path.stat().st_size > 1000, name
    report = (toy_run / "report.md").read_text()
    html = (toy_run / "report.html").read_text()
    for claim in ("Claim 1", "Claim 2", "Claim 3", "Claim 4"):
        assert claim in report and claim in html
    for block in range(3):
        assert f"\n| {block} | {block} |" in report  # the OT table names every block (and its module)
    assert "data:image/png;base64," in html and "analysis/figures/" not in html


def test_minimizing_movement_numbers_are_consistent(toy_run):
    result = analyze_run(toy_run, n=80, quiet=True, figures=False)
    mm = result["minimizing_movement"]
    assert mm["path_length"] == pytest.approx(sum(mm["step_w2"]))
    # triangle inequality for W2: the path is at least as long as the straight line (exact W2 on one sample)
    assert mm["path_length"] >= mm["w2_start_end"] - 1e-9
    for block in result["blocks"]:
        m = block["map_vs_ot"]
        assert m["cost_ratio"] >= 1 - 1e-9
        assert block["w2_squared"] <= block["kinetic"] + 1e-12


def test_modules_of_several_blocks_are_analysed(tmp_path):
    from otblocks import load_config

    config = load_config(None, ["data.n_train=100", "data.n_val=60", "data.n_test=50", "model.depth=4",
                                "model.blocks_per_module=2", "train.epochs=1"])
    train(config, tmp_path / "r", quiet=True)
    result = analyze_run(tmp_path / "r", n=50, method="sliced", quiet=True, figures=False)
    jsonschema.validate(result, SCHEMA)
    assert len(result["blocks"]) == 4 and len(result["modules"]) == 2
    assert result["blocks"][0]["w2_method"] == "sliced"
    assert len(result["minimizing_movement"]["step_w2"]) == 2


def test_missing_and_unfinished_run_dirs_fail_in_one_line(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"otblocks: error: The run directory '{tmp_path / 'nope'}' does not exist."
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.toml").write_text("")
    assert main(["analyze", str(tmp_path / "half")]) == 2
    err = capsys.readouterr().err
    assert "holds no finished run" in err and err.count("\n") == 1


def test_bad_options_fail_before_work(toy_run, capsys):
    assert main(["analyze", str(toy_run), "--method", "fast"]) == 2
    assert "The '--method' option must be one of {'exact', 'sliced', 'bures'}; got 'fast'." in capsys.readouterr().err



def test_an_identity_block_measures_as_the_identity(toy_run, tmp_path):
    """Zeroing g's last layer makes block 1 the identity: no displacement, optimal, eta = 1."""
    import shutil

    import torch

    from otblocks.training import load_checkpoint, save_atomic

    run = tmp_path / "identity"
    shutil.copytree(toy_run, run, ignore=shutil.ignore_patterns("analysis"))
    checkpoint = load_checkpoint(run / "checkpoints" / "last.pt")
    state = checkpoint["trainer"]["model"]
    for key in [k for k in state if k.startswith("block_modules.1.blocks.0.g.2.")]:
        state[key] = torch.zeros_like(state[key])
    save_atomic(checkpoint, run / "checkpoints" / "last.pt")
    block = analyze_run(run, n=60, quiet=True, figures=False)["blocks"][1]
    assert block["kinetic"] == 0.0
    assert block["map_vs_ot"]["cost_ratio"] == 1.0 and block["map_vs_ot"]["identity_optimal"]
    assert block["holder"]["eta"] == pytest.approx(1.0, abs=1e-6)


def test_a_collapsing_unit_gets_a_note_not_an_exception():
    """A unit mapping every point to one output has no Hölder fit; the analysis goes on."""
    import numpy as np

    from otblocks.cli.analyze import _measure, _Unit

    x = np.random.default_rng(0).normal(size=(50, 2))
    unit = _Unit("block", 0, 0, lambda z: z * 0, (2,), x, np.zeros_like(x))
    record, bound, comparison = _measure(unit, "exact", 0)
    assert bound is None and comparison is not None
    assert record["note"].startswith("no Hölder fit:")
    assert record["kinetic"] == pytest.approx(float((x**2).sum(1).mean()))
