"""`otblocks analyze` end to end on a tiny toy run: schema, figures, report, errors."""

from __future__ import annotations

import csv
import json
import math
from importlib import resources

import jsonschema
import numpy as np
import pytest
import torch

from otblocks import train
from otblocks.analyze import analyze_run
from otblocks.cli import main
from otblocks.rundir import FIGURES, RunPaths, read_json, write_json


def _schema(name):
    return json.loads(resources.files("otblocks").joinpath(f"schemas/{name}.schema.json").read_text())


SCHEMA, SUMMARY_SCHEMA, METRICS_SCHEMA = _schema("analysis"), _schema("summary"), _schema("metrics")


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    from otblocks import load_config

    out = tmp_path_factory.mktemp("runs") / "toy"
    config = load_config(
        None,
        [
            "data.n_train=200",
            "data.n_val=120",
            "data.n_test=100",
            "model.depth=3",
            "model.hidden=16",
            "train.epochs=2",
            "train.batch_size=25",
            "transport.tau=0.5",
        ],
    )
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
    for figure in FIGURES:
        path = toy_run / "analysis" / "figures" / figure.name
        assert path.exists() and path.stat().st_size > 1000, figure.name
    report = (toy_run / "report.md").read_text()
    html = (toy_run / "report.html").read_text()
    for claim in ("Claim 1", "Claim 2", "Claim 3", "Claim 4"):
        assert claim in report and claim in html
    for block in range(3):
        assert f"\n| {block} | {block} |" in report  # the OT table names every block (and its module)
    assert "data:image/png;base64," in html and "analysis/figures/" not in html
    # the report leads with the results (one answer per claim, the accuracy figure) and ends with the
    # configuration, collapsed
    results, configuration = html.index('<h2 id="results">'), html.index('<h2 id="configuration">')
    assert results < html.index("Each block an OT map (claim 1)") < html.index("<img") < configuration
    assert html.index("<details>", configuration) > configuration and "<details>" not in html[:configuration]
    assert report.index("## Results") < report.index("## Claim 1") < report.index("## Configuration")
    # issue 10: the claim-1 and claim-2 numbers carry their intervals, the profile figure is shown
    for text in (
        "cost ratio [95% CI]",
        "Monge gap [95% CI]",
        "eta sample [95% CI]",
        "eta probe [95% CI]",
        "C(eta, eps) [95% CI]",
        "Hölder profile by block",
        "95% subsampling interval",
    ):
        assert text in report, text
    block = result["blocks"][0]
    assert len(block["map_vs_ot"]["cost_ratio_ci"]) == 2 and block["holder_probe"]["mode"] == "probe"
    assert block["holder"]["profile"]["mode"] == "sample" and block["bound_from"] in ("sample", "probe")
    assert set(block["seconds"]) >= {"map_vs_ot", "holder", "holder_probe", "stability"}
    assert len(result["minimizing_movement"]["w2_start_end_ci"]) == 2


def test_minimizing_movement_numbers_are_consistent(toy_run):
    result = analyze_run(toy_run, n=80, quiet=True, figures=False)
    mm = result.movement
    assert mm.path_length == pytest.approx(sum(mm.step_w2))
    # triangle inequality for W2: the path is at least as long as the straight line (exact W2 on one sample)
    assert mm.path_length >= mm.w2_start_end - 1e-9
    for block in result.blocks:
        assert block.comparison.cost_ratio >= 1 - 1e-9
        assert block.w2_squared <= block.kinetic + 1e-12


def test_modules_of_several_blocks_are_analysed(tmp_path):
    from otblocks import load_config

    config = load_config(
        None,
        [
            "data.n_train=100",
            "data.n_val=60",
            "data.n_test=50",
            "model.depth=4",
            "model.blocks_per_module=2",
            "train.epochs=1",
        ],
    )
    train(config, tmp_path / "r", quiet=True)
    result = analyze_run(tmp_path / "r", n=50, method="sliced", quiet=True, figures=False)
    jsonschema.validate(json.loads(RunPaths(tmp_path / "r").analysis_json.read_text()), SCHEMA)
    assert len(result.blocks) == 4 and len(result.modules) == 2
    assert result.blocks[0].w2_method == "sliced"
    assert len(result.movement.step_w2) == 2


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
    assert main(["analyze", str(toy_run), "--pairs", "0"]) == 2
    assert "The '--pairs' option must be an integer >= 10; got 0." in capsys.readouterr().err
    assert main(["analyze", str(toy_run), "--threads", "0"]) == 2
    assert "The '--threads' option must be an integer >= 1; got 0." in capsys.readouterr().err
    assert main(["analyze", str(toy_run), "--device", "tpu"]) == 2
    assert "The '--device' option must be one of {'auto', 'cpu', 'cuda'}; got 'tpu'." in capsys.readouterr().err


def test_fresh_points_beyond_the_validation_split(toy_run, conv_run, capsys, monkeypatch):
    """--split fresh: n new points of the toy distribution (the val split holds 120), independent of the splits,
    the same for the same configuration; without subsampling intervals above INTERVAL_MAX_N points (the OT
    comparison's and the start-to-end W2's); refused above MAX_FRESH and for image data, in one line, before work."""
    from otblocks import load_config
    from otblocks.data import build_data, fresh_toy_points

    result = analyze_run(toy_run, split="fresh", n=300, pairs=200, bootstrap=0, quiet=True, figures=False)
    assert all(b.comparison.n == 300 for b in result.blocks)
    assert result.movement.w2_start_end_ci is not None
    assert all(b.comparison.cost_ratio_ci is not None for b in result.blocks)
    cfg = load_config(toy_run / "config.toml").data
    fresh = fresh_toy_points(cfg, 300).tensors[0]
    assert torch.equal(fresh, fresh_toy_points(cfg, 300).tensors[0])
    val = build_data(cfg).val.tensors[0]
    assert not (fresh[:, None, :] == val[None, :, :]).all(-1).any()  # no point of the val split
    monkeypatch.setattr("otblocks.analyze.options.INTERVAL_MAX_N", 299)  # above it: no subsampling intervals at all
    result = analyze_run(toy_run, split="fresh", n=300, pairs=200, bootstrap=0, quiet=True, figures=False)
    assert result.movement.w2_start_end_ci is None
    assert all(b.comparison.cost_ratio_ci is None for b in result.blocks)
    assert all("no subsampling intervals on the OT comparison: n = 300 > 299" in b.note for b in result.blocks)
    assert main(["analyze", str(toy_run), "--split", "fresh", "--n", "100001", "--quiet"]) == 2
    assert "The '--n' option must be at most 100000 with '--split fresh'; got 100001." in capsys.readouterr().err
    assert main(["analyze", str(conv_run), "--split", "fresh", "--quiet"]) == 2
    assert "'fresh' draws new points of a toy data set" in capsys.readouterr().err


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
    block = analyze_run(run, n=60, quiet=True, figures=False).blocks[1]
    assert block.kinetic == 0.0
    assert block.comparison.cost_ratio == 1.0 and block.comparison.identity_optimal
    assert block.holder.eta == pytest.approx(1.0, abs=1e-6)


def test_a_collapsing_unit_gets_a_note_not_an_exception():
    """A unit mapping every point to one output has no Hölder fit; the analysis goes on."""
    import numpy as np

    from otblocks.analyze import AnalysisOptions, Unit, measure_unit

    x = np.random.default_rng(0).normal(size=(50, 2))
    unit = Unit("block", 0, 0, "input", x, np.zeros_like(x), lambda z: z * 0)
    measured = measure_unit(unit, AnalysisOptions())
    assert measured.stability is None and measured.holder is None and measured.comparison is not None
    assert measured.note.startswith("no Hölder fit:")
    assert measured.kinetic == pytest.approx(float((x**2).sum(1).mean()))


def test_the_bound_falls_back_to_the_probe_exponent_where_the_sample_cannot_resolve_it():
    """T(x) = 2x on 60 points in 200-D: pair distances concentrate within one octave, so the sample cannot
    resolve the exponent; the probe (the map as a callable) finds eta = 1 and the bound uses it: C = 2 exactly
    (a linear map; the distances come from Gram products, relative error ~1e-15, hence the 1e-9 tolerance) with
    eps = 0 (x -> 2x is the gradient of a convex function, so the identity pairing is optimal)."""
    from otblocks.analyze import AnalysisOptions, Unit, measure_unit

    x = np.random.default_rng(0).normal(size=(60, 200))
    options = AnalysisOptions(n=60, bootstrap=0)
    measured = measure_unit(Unit("block", 0, 0, "input", x, 2 * x, lambda z: 2 * z), options)
    assert not measured.holder.resolved and "cannot resolve" in measured.holder.profile.reason
    assert measured.holder_probe.resolved and measured.holder_probe.eta == pytest.approx(1.0, abs=1e-6)
    assert measured.bound_from == "probe" and measured.stability.eta == measured.holder_probe.eta
    assert measured.stability.eps == 0.0 and measured.stability.C == pytest.approx(2.0, rel=1e-9)
    assert measured.exponents_overlap is None  # no bootstrap, no intervals to compare
    assert measured.record()["bound_from"] == "probe"
    # without a callable there is no probe: no exponent, no bound, and the note says why
    alone = measure_unit(Unit("block", 0, 0, "input", x, 2 * x, None), options)
    assert alone.stability is None and alone.holder_probe is None and alone.bound_from is None
    assert "no resolved Hölder exponent (sample: fewer than 4 consecutive bands" in alone.note
    assert alone.note.endswith("probe: the unit is not callable): no stability bound")


def test_the_bound_prefers_the_probe_exponent_and_uses_the_sample_without_a_callable():
    """T(x) = x + 0.3 sin(3x) on 800 points of the plane: smooth, so both fits resolve eta = 1 (within their
    tolerances of docs/analysis/holder.md); the bound takes the probe's, which reaches below the sampling
    resolution; without a callable it takes the sample's."""
    from otblocks.analyze import AnalysisOptions, Unit, measure_unit

    x = np.random.default_rng(1).normal(size=(800, 2))
    tx = x + 0.3 * np.sin(3 * x)
    options = AnalysisOptions(n=800, bootstrap=0)
    both = measure_unit(Unit("block", 0, 0, "input", x, tx, lambda z: z + 0.3 * torch.sin(3 * z)), options)
    assert both.holder.resolved and both.holder_probe.resolved
    assert both.bound_from == "probe" and both.stability.eta == both.holder_probe.eta
    sample_only = measure_unit(Unit("block", 0, 0, "input", x, tx, None), options)
    assert sample_only.bound_from == "sample" and sample_only.stability.eta == sample_only.holder.eta


def test_jacobian_points_default_to_fewer_on_large_units():
    from otblocks.analyze import AnalysisOptions
    from otblocks.errors import ConfigError

    assert AnalysisOptions().jacobian_points_for(2) == 256
    assert AnalysisOptions().jacobian_points_for(16 * 28 * 28) == 16
    assert AnalysisOptions(jacobian_points=40).jacobian_points_for(16 * 28 * 28) == 40
    with pytest.raises(ConfigError, match="The '--jacobian-points' option must be an integer >= 1; got 0."):
        AnalysisOptions(jacobian_points=0)


def test_every_json_file_of_an_analysed_run_validates_against_its_schema(toy_run):
    analyze_run(toy_run, n=60, quiet=True, figures=False)
    paths = RunPaths(toy_run)
    jsonschema.validate(json.loads(paths.analysis_json.read_text()), SCHEMA)
    jsonschema.validate(json.loads(paths.summary.read_text()), SUMMARY_SCHEMA)
    for line in paths.metrics.read_text().splitlines():
        jsonschema.validate(json.loads(line), METRICS_SCHEMA)


def _synthetic_units():
    """Two units with known failures: a re-pairing of the input sample (W2 = 0 < kinetic, so the
    cost ratio is infinite) and a unit collapsing every point to 0 (no Hölder fit)."""
    from otblocks.analyze import AnalysisOptions, Unit, measure_unit

    x = np.sort(np.random.default_rng(0).normal(size=(40, 1)), axis=0)
    options = AnalysisOptions(n=40, pairs=300, bootstrap=0)
    swap = measure_unit(Unit("block", 0, 0, "input", x, x[::-1].copy(), None), options)
    collapse = measure_unit(Unit("block", 1, 1, "input", x, np.zeros_like(x), None), options)
    return swap, collapse


def test_infinite_ratios_and_failed_fits_are_written_by_the_one_json_rule(tmp_path):
    from otblocks.analyze import RunAnalysis
    from otblocks.analyze.movement import minimizing_movement
    from otblocks.analyze.options import AnalysisOptions
    from otblocks.rundir import jsonable

    swap, collapse = _synthetic_units()
    assert swap.comparison.cost_ratio == math.inf and swap.w2_squared == 0.0 < swap.kinetic
    assert collapse.holder is None and collapse.note.startswith("no Hölder fit:")
    # the analysis results and the run directory's writer spell non-finite numbers alike
    assert swap.comparison.to_dict()["cost_ratio"] == jsonable(math.inf) == "inf"
    result = RunAnalysis(
        run_dir=tmp_path,
        options=AnalysisOptions(n=40),
        n=40,
        regime="sequential",
        taus=[math.inf, 0.5],
        blocks=(swap, collapse),
        modules=(swap.as_module(), collapse.as_module()),
        composed_bound=None,
        movement=minimizing_movement([0.7, 0.6], [0.5, 0.6], [swap.w2, collapse.w2], [math.inf, 0.5], None),
        val_accuracy_by_depth=[0.5, 0.6],
        test_accuracy_by_depth=[0.5, 0.6],
        best_depth=2,
        indices=np.arange(40),
        labels=np.zeros(40, dtype=np.int64),
    )
    write_json(result.record(), tmp_path / "analysis.json")
    text = (tmp_path / "analysis.json").read_text()
    jsonschema.validate(json.loads(text), SCHEMA)
    assert "Infinity" not in text and "NaN" not in text
    back = read_json(tmp_path / "analysis.json")
    assert back["blocks"][0]["map_vs_ot"]["cost_ratio"] == math.inf and back["taus"][0] == math.inf
    assert "holder" not in back["blocks"][1] and back["blocks"][1]["note"].startswith("no Hölder fit:")
    assert back["modules"][1]["kind"] == "module"


def test_demo_table_shows_infinite_ratios_and_missing_fits():
    """Regression: the demo's table crashed on an infinite cost ratio and on a unit without a Hölder fit."""
    from otblocks.cli.demo import format_ot_table

    swap, collapse = _synthetic_units()
    table = format_ot_table({"a": [swap, collapse], "b": [swap]})
    rows = table.splitlines()[2:]
    assert rows[0].split()[2] == "inf" and rows[1].split()[3] == "–"  # ratio of a's block 0; eta of a's block 1
    assert rows[1].split()[4:] == ["–", "–", "–"]  # run b has no block 1


@pytest.fixture(scope="module")
def conv_run(digits_conv_run):
    return digits_conv_run


def test_a_stride_2_block_is_measured_against_its_shortcut_image(conv_run):
    from otblocks import load_run
    from otblocks.walk import sample_points

    result = analyze_run(conv_run, n=30, pairs=500, bootstrap=0, quiet=True, figures=False, device="cpu")
    block = result.blocks[1]
    assert block.unit.reference == "shortcut" and block.unit.fn is None
    assert [b.unit.reference for b in result.blocks] == ["input", "shortcut", "input"]
    # against the shortcut image the displacement is the residual branch: kinetic = mean ||g_1(psi_1)||^2,
    # computed here by a forward pass of its own (float32 sums of 128 terms: relative error ~1e-6)
    run = load_run(conv_run)
    _, x, _ = sample_points(run.data.val, 30, 0)
    with torch.no_grad():
        psi_1 = run.net.blocks()[0](run.net.stem(x))
        g = run.net.blocks()[1].residual(psi_1).flatten(1).double()
    assert block.kinetic == pytest.approx(float(g.pow(2).sum(1).mean()), rel=1e-5)
    record = json.loads(RunPaths(conv_run).analysis_json.read_text())
    jsonschema.validate(record, SCHEMA)
    assert record["blocks"][1]["reference"] == "shortcut" and record["blocks"][1]["d_in"] == 128
    assert record["modules"][1]["note"].startswith("input and output dimensions differ")


def test_analyze_and_features_use_the_same_points(conv_run):
    from otblocks.features import read_features, write_run_features

    arrays, _ = read_features(write_run_features(conv_run, "val", 25, seed=3, out=conv_run / "f.npz"))
    result = analyze_run(
        conv_run, n=25, seed=3, blocks=(0,), pairs=200, bootstrap=0, quiet=True, figures=False, device="cpu"
    )
    np.testing.assert_array_equal(result.indices, arrays["indices"])
    np.testing.assert_array_equal(result.blocks[0].unit.x_in, arrays["block0_in"].reshape(25, -1).astype(np.float64))


def test_a_subset_of_blocks_is_analysed(conv_run, capsys):
    result = analyze_run(conv_run, n=20, blocks=(2,), pairs=200, bootstrap=0, quiet=True, figures=False, device="cpu")
    assert [b.comparison is not None for b in result.blocks] == [False, False, True]
    assert result.blocks[0].note == "not selected by the 'blocks' option"
    assert result.movement.path_length is None and result.composed_bound is None
    assert main(["analyze", str(conv_run), "--blocks", "1,2", "--pairs", "200", "--bootstrap", "0", "--no-report"]) == 0
    captured = capsys.readouterr()
    assert "analyze: the first of 3 units took" in captured.err  # blocks 1 and 2, and module 1 (made of them)
    assert f"analysis written to {conv_run / 'analysis'}" in captured.out
    # the printed numbers: block 1 (stride 2, against its shortcut image) has no probe, block 2 has one
    out = captured.out
    assert "block 0 (module 0): not selected by the 'blocks' option" in out
    block1, block2 = out[out.index("block 1 (module 1)") : out.index("block 2 (module 1)")], out[out.index("block 2") :]
    assert "map vs OT: cost ratio" in block1 and "Hölder, sample: eta" in block1 and "Hölder, probe" not in block1
    assert "Hölder, probe : eta" in block2
    assert "composed bound: none" in out
    assert main(["analyze", str(conv_run), "--blocks", "0,7", "--quiet"]) == 2
    assert "The '--blocks' option must name blocks in [0, 2]; got 0,7." in capsys.readouterr().err
    assert main(["analyze", str(conv_run), "--blocks", "first", "--quiet"]) == 2
    assert "The '--blocks' option must be comma-separated block indices" in capsys.readouterr().err


def test_the_core_of_otblocks_never_imports_analysis():
    """Only the run-analysis layer (otblocks.analyze) and the command line join otblocks and analysis."""
    import subprocess
    import sys

    code = (
        "import sys, otblocks, otblocks.features, otblocks.walk, otblocks.trained, otblocks.rundir, "
        "otblocks.reporting.report; print(sorted(m for m in ('analysis', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.strip() == "[]"
