"""Regenerate every figure and table the docs show, from the repository's own commands.

Run from the repository root (the Sphinx build runs it first, see ``docs/conf.py``)::

    python docs/figures.py

Everything lands in ``docs/_generated/`` (not tracked by git): run directories, the figures
the pages show, and Markdown tables the pages include. The commands are listed in
:data:`COMMANDS` and printed on the theory pages, so every number there has a command.
About 5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

from otblocks.rundir import (
    COST_RATIO_BY_BLOCK,
    DISPLACEMENT_BY_BLOCK,
    HOLDER,
    POINT_CLOUDS,
    TRANSPORT_ARROWS,
    RunPaths,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "_generated"
FIG = OUT / "fig"

MOONS_SWEEP = ["transport.tau=0.1,0.5,inf"]
DIGITS_SWEEP = ["transport.tau=1,inf"]
SEEDS = "0,1,2"

COMMANDS = {
    "demo": ["otblocks", "demo", "--out", "docs/_generated/demo", "--quiet"],
    "moons_sweep": [
        "otblocks",
        "sweep",
        "configs/moons_sequential.toml",
        "--set",
        *MOONS_SWEEP,
        "--seeds",
        SEEDS,
        "--out",
        "docs/_generated/moons_sweep",
        "--quiet",
    ],
    "moons_compare": [
        "otblocks",
        "compare",
        "docs/_generated/moons_sweep",
        "--out",
        "docs/_generated/moons_compare",
        "--quiet",
    ],
    "digits_sweep": [
        "otblocks",
        "sweep",
        "configs/digits_sequential.toml",
        "--set",
        *DIGITS_SWEEP,
        "--seeds",
        SEEDS,
        "--out",
        "docs/_generated/digits_sweep",
        "--quiet",
    ],
    "digits_analyze": ["otblocks", "analyze", "docs/_generated/digits_sweep/<run>", "--quiet"],
    "digits_compare": [
        "otblocks",
        "compare",
        "docs/_generated/digits_sweep",
        "--out",
        "docs/_generated/digits_compare",
        "--quiet",
    ],
}


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if math.isinf(value) or math.isnan(value):
        return str(value)
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---:" for _ in headers) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def load(run_dir: Path) -> dict:
    """The run's ``analysis.json`` (non-finite numbers back as floats)."""
    return RunPaths(run_dir).read_analysis()


def ot_table(runs: dict[str, dict]) -> str:
    """Claim 1: per block and run, cost ratio, identity optimal, re-assigned share, resolution."""
    rows = []
    for name, a in runs.items():
        for b in a["blocks"]:
            m = b.get("map_vs_ot")
            if m is None:
                rows.append([name, str(b["index"]), f"{b['d_in']} -> {b['d_out']}", *["–"] * 6])
                continue
            j = b.get("jacobian")
            rows.append(
                [
                    name,
                    str(b["index"]),
                    str(b["d_in"]),
                    fmt(b["kinetic"]),
                    fmt(m["cost_ratio"]),
                    fmt(m["identity_optimal"]),
                    fmt(m["fraction_reassigned"], 3),
                    fmt(m["resolution"], 2) + (" (uninformative)" if m["uninformative"] else ""),
                    f"{fmt(j['asymmetry'], 3)} / {fmt(j['min_eigenvalue'], 3)}" if j else "–",
                ]
            )
    return table(
        [
            "run",
            "block",
            "d",
            "kinetic",
            "cost ratio",
            "identity optimal",
            "re-assigned",
            "resolution",
            "Jacobian asym. / min eig.",
        ],
        rows,
    )


def holder_table(runs: dict[str, dict]) -> str:
    """Claim 2: per block eta with its interval and scale range, eps, C, fraction satisfied; composed bound."""
    rows = []
    for name, a in runs.items():
        for b in a["blocks"]:
            h, s = b.get("holder"), b.get("stability")
            if h is None or s is None:
                continue
            ci = h.get("eta_ci")
            eta = fmt(h["eta"], 3) + (f" [{fmt(ci[0], 3)}, {fmt(ci[1], 3)}]" if ci else "")
            rows.append(
                [
                    name,
                    str(b["index"]),
                    eta,
                    f"{fmt(h['scale_min'], 3)} – {fmt(h['scale_max'], 2)}",
                    fmt(s["eps"], 3),
                    fmt(s["C"], 3),
                    fmt(s["fraction_satisfied"], 4),
                ]
            )
        c = a.get("composed_bound")
        if c:
            rows.append(
                [name, "composed", fmt(c["exponent"], 3), "", f"floor {fmt(c['floor'], 3)}", fmt(c["constant"], 3), ""]
            )
    return table(["run", "block", "eta [95% CI]", "scale range", "eps", "C(eta, eps)", "satisfied"], rows)


def movement_table(runs: dict[str, dict]) -> str:
    """Claim 3: head loss by depth, per-step W2 and tau, path length against W2(rho_0, rho_K)."""
    rows = []
    for name, a in runs.items():
        mm = a["minimizing_movement"]
        rows.append(
            [
                name,
                " ".join(fmt(v, 3) for v in mm["loss_by_depth"]),
                " ".join(fmt(v, 3) for v in mm["step_w2"]),
                str(mm["loss_increases"]),
                fmt(mm["path_length"], 3),
                fmt(mm["w2_start_end"], 3),
            ]
        )
    return table(
        [
            "run",
            "head loss by depth (Z estimate)",
            "step W2 by module",
            "loss increases",
            "path length",
            "W2(rho_0, rho_K)",
        ],
        rows,
    )


def copy(src: Path, name: str) -> None:
    shutil.copyfile(src, FIG / name)


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    FIG.mkdir(parents=True)
    run(COMMANDS["demo"])
    run(COMMANDS["moons_sweep"])
    run(COMMANDS["moons_compare"])
    run(COMMANDS["digits_sweep"])
    digits_runs = sorted(p for p in (OUT / "digits_sweep").iterdir() if RunPaths(p).is_finished())
    for path in digits_runs:
        run(["otblocks", "analyze", str(path.relative_to(ROOT)), "--quiet"])
    run(COMMANDS["digits_compare"])

    demo = {name: load(OUT / "demo" / name) for name in ("tau_inf", "tau_0.5")}
    digits = {p.name: load(p) for p in digits_runs if p.name.endswith("seed=0")}
    (OUT / "claim1_moons.md").write_text(ot_table(demo))
    (OUT / "claim1_digits.md").write_text(ot_table(digits))
    (OUT / "claim2_moons.md").write_text(holder_table(demo))
    (OUT / "claim2_digits.md").write_text(holder_table(digits))
    (OUT / "claim3_moons.md").write_text(movement_table(demo))
    (OUT / "claim3_digits.md").write_text(movement_table(digits))
    (OUT / "claim4_moons.md").write_text((OUT / "moons_compare" / "comparison.md").read_text())
    (OUT / "claim4_digits.md").write_text((OUT / "digits_compare" / "comparison.md").read_text())

    for name in demo:
        paths = RunPaths(OUT / "demo" / name)
        for figure in (TRANSPORT_ARROWS, HOLDER, POINT_CLOUDS, COST_RATIO_BY_BLOCK, DISPLACEMENT_BY_BLOCK):
            copy(paths.figure(figure), f"moons_{name}_{figure.name}")
    for figure in ("kinetic", "w2", "cost_ratio", "eta"):
        copy(OUT / "demo" / "compare" / f"ot_{figure}_by_block.png", f"moons_ot_{figure}_by_block.png")
        copy(OUT / "digits_compare" / f"ot_{figure}_by_block.png", f"digits_ot_{figure}_by_block.png")
    copy(OUT / "moons_compare" / "accuracy_by_depth_test.png", "moons_sweep_accuracy_test.png")
    copy(OUT / "digits_compare" / "accuracy_by_depth_test.png", "digits_sweep_accuracy_test.png")
    for path in digits_runs:
        if path.name.endswith("seed=0"):
            copy(RunPaths(path).figure(HOLDER), f"digits_{path.name}_{HOLDER.name}")
    # docs/holder_figures.py: the Hölder profile and a sample-size series. `-P`: the script's own
    # folder must not lead sys.path, where the pages folder docs/analysis/ would shadow the package.
    subprocess.run([sys.executable, "-P", str(Path(__file__).with_name("holder_figures.py"))], check=True, cwd=ROOT)
    print(f"docs figures and tables written to {OUT}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
