"""``otblocks compare RUN_DIR...``: mean and confidence interval over seeds, per depth and group."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text_atomic
from ..errors import FileSystemError
from ..reporting import Comparison, compare_runs
from ..rundir import RunPaths, read_json, write_json


def _confidence(text: str) -> float:
    """A confidence level: a number strictly between 0 and 1 (NaN refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), e.g. 0.95; got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="aggregate finished runs over seeds: tables (Markdown, CSV) and plots")
    p.add_argument("runs", nargs="+", help="run directories, or sweep directories holding runs")
    p.add_argument("--out", help="output directory (default: RUN/compare for a single sweep directory, else ./compare)")
    p.add_argument(
        "--confidence", type=_confidence, default=0.95, help="confidence level of the t-intervals (default 0.95)"
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(run=run)


OT_QUANTITIES = {
    "kinetic": ("kinetic cost (own pairing)", lambda b: b.get("kinetic"), True),
    "w2": ("$W_2$ between input and output", lambda b: b.get("w2"), True),
    "cost_ratio": ("kinetic / $W_2^2$", lambda b: (b.get("map_vs_ot") or {}).get("cost_ratio"), False),
    "eta": ("fitted Hölder exponent $\\eta$", lambda b: (b.get("holder") or {}).get("eta"), False),
}


def write_comparison(comparison: Comparison, out: Path) -> None:
    """Tables (Markdown, CSV, JSON) and plots of a comparison; OT quantities by block on shared axes
    when every run has been analysed."""
    from analysis.plot import plot_by_block

    from ..reporting.figures import plot_comparison

    if out.exists() and not out.is_dir():
        raise FileSystemError(
            f"The comparison directory '{out}' is a file; expected a directory (choose another --out)."
        )
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "comparison.md", comparison.to_markdown())
    write_text_atomic(out / "comparison.csv", comparison.to_csv())
    write_json(comparison.to_dict(), out / "comparison.json")
    for split in ("test", "val"):
        fig, _ = plot_comparison(comparison, split=split)
        with atomic_path(out / f"accuracy_by_depth_{split}.png") as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    files = {g.label: [RunPaths(r).analysis_json for r in g.runs] for g in comparison.groups}
    if not all(p.exists() for paths in files.values() for p in paths):
        return
    analyses = {label: [read_json(p) for p in paths] for label, paths in files.items()}
    for name, (ylabel, get, log) in OT_QUANTITIES.items():
        series = {}
        for label, runs in analyses.items():
            per_run = np.array([[get(b) for b in a["blocks"]] for a in runs], dtype=float)
            counts = np.isfinite(per_run).sum(axis=0)
            totals = np.where(np.isfinite(per_run), per_run, 0.0).sum(axis=0)
            series[label] = np.divide(totals, counts, out=np.full(counts.shape, np.nan), where=counts > 0)
        reference = 1.0 if name == "cost_ratio" else None
        fig, _ = plot_by_block(series, ylabel=ylabel + " (mean over seeds)", log=log, reference=reference)
        with atomic_path(out / f"ot_{name}_by_block.png") as tmp:
            fig.savefig(tmp, dpi=120, format="png")


def run(args: argparse.Namespace) -> int:
    comparison = compare_runs(args.runs, args.confidence)
    out = Path(args.out) if args.out else (Path(args.runs[0]) / "compare" if len(args.runs) == 1 else Path("compare"))
    write_comparison(comparison, out)
    if not args.quiet:
        print(comparison.to_markdown())
        if comparison.pending:
            print(f"pending (unfinished, left out): {', '.join(comparison.pending)}")
        print(f"tables and plots in {out}")
    return 0
