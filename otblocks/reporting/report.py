"""``RUN_DIR/report.md`` and ``RUN_DIR/report.html``: what was measured for each theorem claim.

The report reads only files (``config.toml``, ``summary.json``, ``analysis/analysis.json``
and the figures), so it never imports the analysis package. It states numbers, sample sizes
and caveats; it does not stamp verdicts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import RunDirError
from ..rundir import RunPaths, read_json
from .document import Code, Document, Heading, Image, Para, Table

__all__ = ["write_report", "build_report"]


def _f(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    return str(value)


def _figure(doc: Document, figures: Path, name: str, caption: str) -> None:
    if (figures / name).exists():
        doc.add(Image(figures / name, caption))


def _accuracy(doc: Document, summary: dict[str, Any], figures: Path) -> None:
    doc.add(Heading("Accuracy by depth"))
    doc.add(Para(
        f"Depth k uses modules 0..k-1 and head k-1. The best depth, **{summary['best_depth']}**, is chosen on the "
        f"validation split; its test accuracy is **{_f(summary['test_accuracy_at_best_depth'])}**. The test split "
        "is never used for a choice."
    ))
    rows = [
        [str(k + 1), _f(v), _f(t), _f(vl), _f(kin)]
        for k, (v, t, vl, kin) in enumerate(zip(summary["val_accuracy_by_depth"], summary["test_accuracy_by_depth"],
                                                summary["val_loss_by_depth"], summary["val_kinetic_by_depth"]))
    ]
    doc.add(Table(["depth", "val accuracy", "test accuracy", "val loss", "val transport cost of module"], rows))
    _figure(doc, figures, "accuracy_by_depth.png", "Validation (dashed) and test accuracy of every depth; dotted line: best depth on validation.")


def _claim_ot(doc: Document, a: dict[str, Any], figures: Path) -> None:
    n = a["n"]
    doc.add(Heading("Claim 1: each block is an optimal transport map"))
    doc.add(Para(
        "Theorem 1 of the paper: a minimiser of the Monge-form module problem is an OT map (quadratic cost) between its "
        "input distribution and its output distribution, when the input distribution is absolutely continuous on a "
        "compact domain, the classifier ranges over a compact set and the loss is continuous and non-negative. Trained "
        "blocks are approximate minimisers, so the check is how far each block is from the OT map on samples."
    ))
    doc.add(Para(
        f"Measured on n = {n} points of the {a['split']} split. `kinetic` is the block's own cost "
        "(1/n) sum ||T(x_i) - x_i||^2; `W2^2` the cost of the exact optimal assignment between the input and output "
        "samples; their ratio is 1 exactly when the block's own pairing is an optimal coupling of the samples "
        "(identity optimal). `re-assigned` is the share of points the optimal assignment sends to another output; "
        "`L2-UVP` the unexplained variance (%) of the block's outputs with respect to the OT assignment; `resolution` the "
        "median displacement over the median nearest-neighbour distance of the inputs."
    ))
    rows = []
    for b in a["blocks"]:
        m = b.get("map_vs_ot")
        if m is None:
            rows.append([str(b["index"]), str(b["module"]), *["–"] * 8, b.get("note", "")])
            continue
        j = b.get("jacobian")
        jac = f"{_f(j['asymmetry'], 3)} / {_f(j['min_eigenvalue'], 3)}" if j else "–"
        rows.append([
            str(b["index"]), str(b["module"]), _f(b["kinetic"]), _f(b["w2_squared"]), _f(m["cost_ratio"]),
            _f(m["identity_optimal"]), _f(m["fraction_reassigned"], 3), _f(m["l2_uvp"], 3),
            _f(m["resolution"], 3) + (" (uninformative)" if m["uninformative"] else ""), jac, "",
        ])
    doc.add(Table(["block", "module", "kinetic", "W2^2", "cost ratio", "identity optimal", "re-assigned", "L2-UVP %",
                   "resolution", "Jacobian asym. / min eig.", "note"], rows))
    doc.add(Para(
        "Caveats. The empirical Monge gap (kinetic - W2^2) is biased **low**: on a finite sample, a map that is not an "
        "OT map can still have an optimal pairing, all the more when displacements are small next to the sample "
        "spacing (resolution below 1 flags this; there the Jacobian test replaces it: a C^1 map is an OT map iff its "
        "Jacobian is symmetric positive semi-definite). The plug-in W2 is biased **high** in high dimension. A ratio "
        "above 1 on the sample is evidence against optimality; a ratio of 1 is weaker evidence for it."
    ))
    _figure(doc, figures, "transport_arrows.png", "Blue: the block's arrows x -> T(x); grey: exact-OT arrows; red circles: points the optimal assignment re-routes.")
    _figure(doc, figures, "cost_ratio_by_block.png", "Cost ratio kinetic / W2^2 by block (1: optimal pairing on the sample).")
    _figure(doc, figures, "displacement_by_block.png", "Kinetic cost and W2^2 by block (log scale).")
    _figure(doc, figures, "point_clouds.png", "The sample at every depth, coloured by class.")


def _claim_regularity(doc: Document, a: dict[str, Any], figures: Path) -> None:
    doc.add(Heading("Claim 2: regularity and the stability bound"))
    doc.add(Para(
        "OT maps between densities bounded away from 0 and infinity on nice domains are eta-Hölder (Figalli). If a block "
        "is eps-close to its OT map, ||T(x) - T(y)|| <= 2 eps + C ||x - y||^eta. Here eta is fitted with eps = 0 (the "
        "upper envelope of the pairs on log-log axes, over the scale range shown: below the sample spacing there are no "
        "pairs, and any Lipschitz map is eta-Hölder for every eta <= 1 on a bounded set, so the exponent only means "
        "something with its range). eps is the block's largest deviation from the exact OT assignment (`max_deviation`), "
        "C = C(eta, eps) the smallest constant over the measured pairs, and `satisfied` the share of pairs meeting the bound."
    ))
    rows = []
    for b in a["blocks"]:
        h, s = b.get("holder"), b.get("stability")
        if h is None or s is None:
            continue
        ci = h.get("eta_ci")
        rows.append([
            str(b["index"]), _f(h["eta"], 3) + (f" [{_f(ci[0], 3)}, {_f(ci[1], 3)}]" if ci else ""),
            f"{_f(h['scale_min'], 3)} – {_f(h['scale_max'], 3)}", _f(s["eps"], 3), _f(s["C"], 3),
            _f(s["fraction_satisfied"], 4), str(h["n_pairs"]),
        ])
    doc.add(Table(["block", "eta [95% CI]", "scale range", "eps", "C(eta, eps)", "satisfied", "pairs"], rows))
    c = a.get("composed_bound")
    if c:
        doc.add(Para(
            f"Composed along the {len(c['eta'])} blocks: exponent prod eta_k = **{_f(c['exponent'], 4)}**, constant "
            f"{_f(c['constant'], 4)}, floor (accumulated eps, at r = 0) {_f(c['floor'], 4)}."
        ))
    doc.add(Para(
        "Caveats. C is a sample maximum, biased low; the bootstrap interval of eta resamples points. With eps = 0 the bound "
        "is the regularity of the block as a map; the stability bound uses the eps measured against the empirical OT "
        "assignment, itself a sample estimate."
    ))
    _figure(doc, figures, "holder.png", "Pairs of points: ||T(x) - T(y)|| against ||x - y||, the bound 2 eps + C r^eta and the fitted scale range.")


def _claim_movement(doc: Document, a: dict[str, Any]) -> None:
    mm = a["minimizing_movement"]
    doc.add(Heading("Claim 3: minimizing movement"))
    doc.add(Para(
        "rho_{k+1} = T_k # rho_k solves argmin_rho Z(rho) + W2^2(rho, rho_k) / (2 tau) with Z(mu) = min_F L(F, mu). "
        "Then Z(rho_k) decreases with k, each step W2(rho_k, rho_{k+1}) shrinks with tau, and the path length "
        "sum_k W2(rho_k, rho_{k+1}) bounds W2(rho_0, rho_K) from above. Z(rho_k) is estimated by the trained head's "
        f"cross-entropy on the {a['n']} points (an upper estimate of the minimum over heads)."
    ))
    rows = [
        [str(k + 1), _f(loss), _f(acc), _f(step), _f(tau)]
        for k, (loss, acc, step, tau) in enumerate(zip(mm["loss_by_depth"], mm["accuracy_by_depth"], mm["step_w2"], mm["tau"]))
    ]
    doc.add(Table(["depth k", "head loss (Z estimate)", "head accuracy", "W2(rho_{k-1}, rho_k)", "tau of module"], rows))
    doc.add(Para(
        f"The loss increases {mm['loss_increases']} time(s) from one depth to the next. Path length "
        f"{_f(mm['path_length'])} against W2(rho_0, rho_K) = {_f(mm['w2_start_end'])} "
        f"(W2 by the `{a['method']}` method)."
    ))


def _claim_stagnation(doc: Document, summary: dict[str, Any]) -> None:
    test = summary["test_accuracy_by_depth"]
    val = summary["val_accuracy_by_depth"]
    peak = max(range(len(test)), key=lambda k: test[k])
    doc.add(Heading("Claim 4: no stagnation"))
    doc.add(Para(
        "With the transport penalty, accuracy by depth should keep rising or hold, while plain greedy training "
        "(tau = inf) stalls or drops, most visibly with little training data. One run shows one side; compare runs "
        "that differ in tau with `otblocks compare` (mean and 95% interval over seeds)."
    ))
    doc.add(Para(
        f"This run: test accuracy at the last depth {_f(test[-1])}, highest test accuracy {_f(test[peak])} at depth "
        f"{peak + 1}; validation accuracy at the last depth {_f(val[-1])}, best {_f(max(val))} at depth "
        f"{summary['best_depth']}. Differences of a few tenths of a percent are within seed-to-seed variation unless an "
        "interval over seeds says otherwise."
    ))


def build_report(run_dir: str | Path) -> Document:
    """The report of a finished run (its analysis sections only if ``otblocks analyze`` ran)."""
    paths = RunPaths(run_dir)
    if not paths.summary.exists():
        raise RunDirError(f"The run directory '{paths.root}' holds no finished run (no summary.json).")
    summary = read_json(paths.summary)
    analysis_file = paths.root / "analysis" / "analysis.json"
    figures = paths.root / "analysis" / "figures"
    doc = Document(f"otblocks report: {paths.root.name}")
    doc.add(Para(f"Run directory `{paths.root}`; regime `{summary['regime']}`, {summary['n_modules']} modules, "
                 f"device `{summary['device']}`, {_f(summary['train_seconds'], 1)} s of training."))
    doc.add(Heading("Configuration"), Code(paths.config.read_text(), "toml"))
    _accuracy(doc, summary, figures)
    if analysis_file.exists():
        a = read_json(analysis_file)
        _claim_ot(doc, a, figures)
        _claim_regularity(doc, a, figures)
        _claim_movement(doc, a)
    else:
        doc.add(Para("No OT analysis yet: run `otblocks analyze RUN_DIR` for the sections on claims 1-3."))
    _claim_stagnation(doc, summary)
    return doc


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir``; return their paths."""
    root = Path(run_dir)
    doc = build_report(root)
    md, page = root / "report.md", root / "report.html"
    md.write_text(doc.to_markdown(root))
    page.write_text(doc.to_html())
    return md, page

