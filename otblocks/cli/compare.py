"""``otblocks compare RUN_DIR...``: mean and confidence interval over seeds, per depth and group."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..reporting import compare_runs
from ..rundir import write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="aggregate finished runs over seeds: tables (Markdown, CSV) and plots")
    p.add_argument("runs", nargs="+", help="run directories, or sweep directories holding runs")
    p.add_argument("--out", help="output directory (default: RUN/compare for a single sweep directory, else ./compare)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the t-intervals (default 0.95)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..reporting.figures import plot_comparison

    comparison = compare_runs(args.runs, args.confidence)
    out = Path(args.out) if args.out else (Path(args.runs[0]) / "compare" if len(args.runs) == 1 else Path("compare"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(comparison.to_markdown())
    (out / "comparison.csv").write_text(comparison.to_csv())
    write_json({"varying_keys": comparison.varying_keys, "groups": [g.to_dict() for g in comparison.groups]}, out / "comparison.json")
    for split in ("test", "val"):
        fig, _ = plot_comparison(comparison, split=split)
        fig.savefig(out / f"accuracy_by_depth_{split}.png", dpi=120)
    if not args.quiet:
        print(comparison.to_markdown())
        print(f"tables and plots in {out}")
    return 0
