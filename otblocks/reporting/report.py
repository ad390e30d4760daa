"""``RUN_DIR/report.md`` and ``RUN_DIR/report.html``: what was measured for each theorem claim.

The report reads only files (the configuration, the summary, the analysis record and the
figures, through :class:`otblocks.rundir.RunPaths`), so it never imports the analysis
package. It states numbers, sample sizes and caveats; it does not stamp verdicts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import tomli_w

from ..atomic import write_text_atomic
from ..rundir import (
    ACCURACY_BY_DEPTH,
    COST_RATIO_BY_BLOCK,
    DISPLACEMENT_BY_BLOCK,
    HOLDER,
    HOLDER_PROFILE,
    POINT_CLOUDS,
    TRANSPORT_ARROWS,
    RunFigure,
    RunPaths,
)
from ..training import RunSummary
from .document import Code, Details, Document, Heading, Image, Para, Table

__all__ = ["build_report", "write_report"]


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


def _figure(doc: Document, paths: RunPaths, figure: RunFigure) -> None:
    if paths.figure(figure).exists():
        doc.add(Image(paths.figure(figure), figure.caption))


def _accuracy(doc: Document, summary: dict[str, Any]) -> None:
    doc.add(Heading("Accuracy by depth"))
    doc.add(
        Para(
            f"Depth k uses modules 0..k-1 and head k-1. The best depth, **{summary['best_depth']}**, is chosen on the "
            f"validation split; its test accuracy is **{_f(summary['test_accuracy_at_best_depth'])}**. The test split "
            "is never used for a choice."
        )
    )
    columns = zip(
        summary["val_accuracy_by_depth"],
        summary["test_accuracy_by_depth"],
        summary["val_loss_by_depth"],
        summary["val_transport_cost_by_depth"],
        strict=True,
    )
    rows = [[str(k + 1), _f(v), _f(t), _f(vl), _f(cost)] for k, (v, t, vl, cost) in enumerate(columns)]
    doc.add(Table(["depth", "val accuracy", "test accuracy", "val loss", "val transport cost of module"], rows))


def _claim_ot(doc: Document, a: dict[str, Any], paths: RunPaths) -> None:
    n = a["n"]
    doc.add(Heading("Claim 1: each block is an optimal transport map"))
    doc.add(
        Para(
            "Theorem 1 of the paper: a minimiser of the Monge-form module problem is an OT map (quadratic cost) between "
            "its input distribution and its output distribution, when the input distribution is absolutely continuous on a "
            "compact domain, the classifier ranges over a compact set and the loss is continuous and non-negative. Trained "
            "blocks are approximate minimisers, so the check is how far each block is from the OT map on samples."
        )
    )
    doc.add(
        Para(
            f"Measured on n = {n} points of the {a['split']} split. `kinetic` is the block's own cost "
            "(1/n) sum ||T(x_i) - x_i||^2; `W2^2` the cost of the exact optimal assignment between the input and output "
            "samples; their ratio is 1 exactly when the block's own pairing is an optimal coupling of the samples "
            "(identity optimal). `re-assigned` is the share of points the optimal assignment sends to another output; "
            "`L2-UVP` the unexplained variance (%) of the block's outputs with respect to the OT assignment; `resolution` "
            "the median displacement over the median nearest-neighbour distance of the inputs."
        )
    )
    rows = []
    for b in a["blocks"]:
        m = b.get("map_vs_ot")
        if m is None:
            rows.append([str(b["index"]), str(b["module"]), *["–"] * 9, b.get("note", "")])
            continue
        j = b.get("jacobian")
        jac = (
            f"{_f(j['asymmetry'], 3)} ± {_f(j.get('asymmetry_se'), 4)} / {_f(j['min_eigenvalue'], 3)} "
            f"({j.get('n', '?')} points)"
            if j
            else "–"
        )
        rows.append(
            [
                str(b["index"]),
                str(b["module"]),
                _f(b["kinetic"]),
                _f(b["w2_squared"]),
                _with_interval(m["cost_ratio"], m.get("cost_ratio_ci"), 4),
                _with_interval(m["monge_gap"], m.get("monge_gap_ci"), 3),
                _f(m["identity_optimal"]),
                _f(m["fraction_reassigned"], 3),
                _f(m["l2_uvp"], 3),
                _f(m["resolution"], 3) + (" (uninformative)" if m["uninformative"] else ""),
                jac,
                b.get("note", ""),
            ]
        )
    doc.add(
        Table(
            [
                "block",
                "module",
                "kinetic",
                "W2^2",
                "cost ratio [95% CI]",
                "Monge gap [95% CI]",
                "identity optimal",
                "re-assigned",
                "L2-UVP %",
                "resolution",
                "Jacobian asym. ± s.e. / min eig.",
                "note",
            ],
            rows,
        )
    )
    sizes = sorted(
        {
            (m["n_subsamples"], m["subsample_size"])
            for m in (b.get("map_vs_ot") for b in a["blocks"])
            if m and m.get("n_subsamples")
        }
    )
    where = ", ".join(f"{k} subsamples of {size} points" for k, size in sizes) or "none computed"
    doc.add(
        Para(
            f"Intervals ({where}). The cost ratio's and the Monge gap's are subsampling intervals (Politis-Romano: "
            "points drawn without replacement, the exact OT solved again on each subsample, the spread rescaled to n). "
            "Subsampling, not the bootstrap: both statistics are biased in n (the gap grows with n) and a bootstrap "
            "resample repeats points, which pairs a point with its own copy at zero cost. An interval states the "
            "sampling variability at n, not the bias. The other numbers of the table are exact on this sample, so they "
            "carry no interval: `kinetic` and `W2^2` are the costs of two pairings of the same n points (their sampling "
            "variability is that of the ratio), `identity optimal`, `re-assigned` and `L2-UVP` are read off the exact "
            "assignment, `resolution` is a flag (a ratio of medians). The Jacobian's asymmetry carries its standard "
            "error (Hutchinson probes and the spread between points, delta method); its minimum eigenvalue is a Lanczos "
            "upper estimate at the points listed (a negative value proves non-convexity there; no interval: it is a "
            "minimum over those points). The Jacobian test runs only where the sample test is uninformative."
        )
    )
    for figure in (TRANSPORT_ARROWS, COST_RATIO_BY_BLOCK, DISPLACEMENT_BY_BLOCK, POINT_CLOUDS):
        _figure(doc, paths, figure)


def _claim_regularity(doc: Document, a: dict[str, Any], paths: RunPaths) -> None:
    doc.add(Heading("Claim 2: regularity and the stability bound"))
    doc.add(
        Para(
            "OT maps between densities bounded away from 0 and infinity on nice domains are eta-Hölder (Figalli), a "
            "statement about ||T(x) - T(y)|| as ||x - y|| -> 0. If a block is eps-close to its OT map, ||T(x) - T(y)|| <= "
            "2 eps + C ||x - y||^eta. eta is measured twice, with eps = 0 (the regularity of the block as a map), as the "
            "small-scale slope of the Hölder profile (the largest ||T(x) - T(y)|| / ||x - y|| by scale, figure below): "
            "from pairs of sample points, in half-octave bands from the sampling resolution (median nearest-neighbour "
            "distance) up (`sample`), and from probes x + delta u through the block, which reach below the sampling "
            "resolution (`probe`). `window` gives the scales of the bands (sample) or radii (probe) the slope is "
            "fitted over; where the profile is not flat there, or there are not enough pairs, the exponent is not "
            "resolved and the report says why (in high dimension pair distances concentrate within a factor of two, "
            "and the sample cannot resolve it). A sample exponent below the probe's on a smooth block means the "
            "sample does not reach the scale where the block's largest local ratio lives. The stability bound uses "
            "the probe exponent when resolved, else the sample's (`bound from`), over the sample's scale range: eps "
            "is the block's largest deviation from the "
            "exact OT assignment (`max_deviation`), C = C(eta, eps) the smallest constant over the measured pairs, and "
            "`satisfied` the share of pairs meeting the bound."
        )
    )
    rows = []
    for b in a["blocks"]:
        if b.get("map_vs_ot") is None:
            continue
        h, p, st = b.get("holder"), b.get("holder_probe"), b.get("stability")
        overlap = b.get("exponents_overlap")
        rows.append(
            [
                str(b["index"]),
                _exponent(h),
                _window(h),
                _exponent(p),
                _window(p),
                "–" if overlap is None else _f(overlap),
                b.get("bound_from") or "–",
                _f(st["eps"], 3) if st else "–",
                _with_interval(st["C"], st.get("C_ci"), 3) if st else "–",
                _f(st["fraction_satisfied"], 4) if st else "–",
                str(st["n_pairs_total"]) if st else "–",
                b.get("note", ""),
            ]
        )
    doc.add(
        Table(
            [
                "block",
                "eta sample [95% CI]",
                "sample window",
                "eta probe [95% CI]",
                "probe radii",
                "overlap",
                "bound from",
                "eps",
                "C(eta, eps) [95% CI]",
                "satisfied",
                "pairs",
                "note",
            ],
            rows,
        )
    )
    c = a.get("composed_bound")
    if c:
        doc.add(
            Para(
                f"Composed along the {len(c['eta'])} blocks: exponent prod eta_k = **{_f(c['exponent'], 4)}**, constant "
                f"{_f(c['constant'], 4)}, floor (accumulated eps, at r = 0) {_f(c['floor'], 4)}. No interval: the "
                "blocks' bootstrap replicates are drawn independently, not jointly, so the per-block intervals above do "
                "not compose into one for the product."
            )
        )
    else:
        doc.add(Para("No composed bound: at least one block has no stability bound (see its note)."))
    doc.add(
        Para(
            "Intervals. eta's are 95% bootstrap percentile intervals (points, or probe anchors, resampled; the pairs' "
            "distances are kept and reweighted); an exponent the profile does not resolve has none, and the reason "
            "is given instead (`not resolved`). `overlap` says whether the sample and probe intervals overlap. C's "
            "interval comes from the same bootstrap; C is a maximum, so its interval lies mostly below the sample "
            "value and the population constant can exceed both. eps (the largest deviation from the exact OT "
            "assignment) and `satisfied` (the share of the measured pairs meeting the bound) are exact on the sample: "
            "no interval. Caveats: the stability bound uses the eps measured against the empirical OT assignment, "
            "itself a sample estimate; the probe's envelope at a radius is a maximum over 256 anchors, which finds a "
            "singularity only if an anchor lies within about that radius of it."
        )
    )
    _figure(doc, paths, HOLDER_PROFILE)
    _figure(doc, paths, HOLDER)


def _claim_movement(doc: Document, a: dict[str, Any]) -> None:
    mm = a["minimizing_movement"]
    doc.add(Heading("Claim 3: minimizing movement"))
    doc.add(
        Para(
            "rho_{k+1} = T_k # rho_k solves argmin_rho Z(rho) + W2^2(rho, rho_k) / (2 tau) with Z(mu) = min_F L(F, mu). "
            "Then Z(rho_k) decreases with k, each step W2(rho_k, rho_{k+1}) shrinks with tau, and the path length "
            "sum_k W2(rho_k, rho_{k+1}) bounds W2(rho_0, rho_K) from above. Z(rho_k) is estimated by the trained head's "
            f"cross-entropy on the {a['n']} points (an upper estimate of the minimum over heads)."
        )
    )
    columns = zip(mm["loss_by_depth"], mm["accuracy_by_depth"], mm["step_w2"], mm["tau"], strict=True)
    rows = [[str(k + 1), _f(loss), _f(acc), _f(step), _f(tau)] for k, (loss, acc, step, tau) in enumerate(columns)]
    headers = ["depth k", "head loss (Z estimate)", "head accuracy", "W2(rho_{k-1}, rho_k)", "tau of module"]
    doc.add(Table(headers, rows))
    doc.add(
        Para(
            f"The loss increases {mm['loss_increases']} time(s) from one depth to the next. Path length "
            f"{_f(mm['path_length'])} against W2(rho_0, rho_K) = {_w2_start_end(mm)} "
            f"(W2 by the `{a['method']}` method; the path length is a sum of per-module W2 on the same points, "
            "no interval)."
        )
    )


def _claim_stagnation(doc: Document, summary: dict[str, Any]) -> None:
    test = summary["test_accuracy_by_depth"]
    val = summary["val_accuracy_by_depth"]
    peak = max(range(len(test)), key=lambda k: test[k])
    doc.add(Heading("Claim 4: no stagnation"))
    doc.add(
        Para(
            "With the transport penalty, accuracy by depth should keep rising or hold, while plain greedy training "
            "(tau = inf) stalls or drops, most visibly with little training data. One run shows one side; compare runs "
            "that differ in tau with `otblocks compare` (mean and 95% interval over seeds)."
        )
    )
    doc.add(
        Para(
            f"This run: test accuracy at the last depth {_f(test[-1])}, highest test accuracy {_f(test[peak])} at depth "
            f"{peak + 1}; validation accuracy at the last depth {_f(val[-1])}, best {_f(max(val))} at depth "
            f"{summary['best_depth']}. Differences of a few tenths of a percent are within seed-to-seed variation unless "
            f"an "
            "interval over seeds says otherwise."
        )
    )


def _with_interval(value: Any, interval: Any, digits: int) -> str:
    return _f(value, digits) + (f" [{_f(interval[0], digits)}, {_f(interval[1], digits)}]" if interval else "")


def _resolved(fit: dict[str, Any] | None) -> bool:
    """Whether a Hölder fit's record holds a resolved, finite exponent."""
    return bool(fit) and fit.get("resolved", True) and isinstance(fit["eta"], float) and math.isfinite(fit["eta"])


def _exponent(fit: dict[str, Any] | None) -> str:
    """A fit's exponent with its interval, or why it has none."""
    if not fit:
        return "–"
    if not _resolved(fit):
        return "not resolved: " + (fit.get("profile") or {}).get("reason", "")
    return _with_interval(fit["eta"], fit.get("eta_ci"), 3) + ("" if fit.get("eta_ci") else " (no bootstrap)")


def _window(fit: dict[str, Any] | None) -> str:
    """The input scales of a fit's small-scale window."""
    profile = (fit or {}).get("profile") or {}
    window = profile.get("window")
    if not window:
        return "–"
    return f"{_f(profile['lower'][window[0]], 3)} – {_f(profile['upper'][window[1]], 3)}"


def _answer_stagnation(summary: dict[str, Any]) -> str:
    test, val = summary["test_accuracy_by_depth"], summary["val_accuracy_by_depth"]
    peak = max(range(len(test)), key=lambda k: test[k])
    best = summary["best_depth"]
    text = (
        f"**Accuracy by depth (claim 4).** Best depth **{best}** of {len(test)} (chosen on validation, "
        f"{_f(val[best - 1])}); test accuracy there **{_f(summary['test_accuracy_at_best_depth'])}**, at the last "
        f"depth {_f(test[-1])}, highest {_f(test[peak])} at depth {peak + 1}. One run, no interval: intervals over "
        f"seeds "
        "come from `otblocks compare` on runs that differ only in their seeds."
    )
    ratios = [r for r in summary.get("val_penalty_ratio_by_module", []) if isinstance(r, float) and math.isfinite(r)]
    if ratios:
        text += (
            f" The penalty pressed at most {_f(max(ratios), 3)} times the task loss at the end of a module "
            f"(median {_f(sorted(ratios)[len(ratios) // 2], 3)})."
        )
    return text


def _answer_ot(a: dict[str, Any]) -> str:
    measured = [b for b in a["blocks"] if b.get("map_vs_ot")]
    if not measured:
        return "**Each block an OT map (claim 1).** No block could be compared with its OT map (see the notes below)."
    optimal = [b for b in measured if b["map_vs_ot"]["identity_optimal"]]
    worst = max(measured, key=lambda b: b["map_vs_ot"]["cost_ratio"])
    coarse = [str(b["index"]) for b in measured if b["map_vs_ot"]["uninformative"]]
    m = worst["map_vs_ot"]
    text = (
        f"**Each block an OT map (claim 1).** On n = {a['n']} points of the {a['split']} split, {len(optimal)} of "
        f"{len(measured)} measured blocks pair their inputs and outputs optimally (cost ratio 1); the largest cost "
        f"ratio, own cost / W2^2, is **{_with_interval(m['cost_ratio'], m.get('cost_ratio_ci'), 3)}** at block "
        f"{worst['index']} (above 1: evidence against optimality)."
    )
    if m.get("cost_ratio_ci"):
        text += (
            f" Its Monge gap is {_with_interval(m['monge_gap'], m.get('monge_gap_ci'), 3)} (95% subsampling "
            "intervals: sampling variability at n; the gap on a sample is biased low, details below)."
        )
    else:
        text += " No interval (not computed); the Monge gap on a sample is biased low (details below)."
    if coarse:
        text += f" The sample is too coarse to tell for block(s) {', '.join(coarse)}; the Jacobian test stands in"
        tested = [b for b in measured if b.get("jacobian")]
        if tested:
            low = min(tested, key=lambda b: b["jacobian"]["asymmetry"])
            high = max(tested, key=lambda b: b["jacobian"]["asymmetry"])
            text += (
                f": relative asymmetry ||J - J^T|| / ||J|| (± standard error) from "
                f"{_f(low['jacobian']['asymmetry'], 3)} ± {_f(low['jacobian'].get('asymmetry_se'), 4)} "
                f"(block {low['index']}) to {_f(high['jacobian']['asymmetry'], 3)} ± "
                f"{_f(high['jacobian'].get('asymmetry_se'), 4)} (block {high['index']}); 0 for an OT map"
            )
        text += "."
    return text


def _answer_regularity(a: dict[str, Any]) -> str:
    measured = [b for b in a["blocks"] if b.get("map_vs_ot")]
    if not measured:
        return "**Regularity (claim 2).** No block has a Hölder fit (see the notes below)."
    parts = []
    for key, name in (("holder", "sample"), ("holder_probe", "probe")):
        have = [b for b in measured if b.get(key)]
        fitted = [b for b in have if _resolved(b[key])]
        if not have:
            continue
        text = f"the {name} exponent is resolved for {len(fitted)} of {len(measured)} blocks"
        if fitted:
            low = min(fitted, key=lambda b: b[key]["eta"])
            high = max(fitted, key=lambda b: b[key]["eta"])
            text += (
                f", from **{_with_interval(low[key]['eta'], low[key].get('eta_ci'), 3)}** (block {low['index']}) "
                f"to {_with_interval(high[key]['eta'], high[key].get('eta_ci'), 3)} (block {high['index']})"
            )
        parts.append(text)
    text = "**Regularity (claim 2).** Small-scale Hölder exponent eta (95% bootstrap interval): " + "; ".join(parts)
    compared = [b for b in measured if b.get("exponents_overlap") is not None]
    if compared:
        apart = [str(b["index"]) for b in compared if not b["exponents_overlap"]]
        text += (
            f". The sample and probe intervals overlap for {len(compared) - len(apart)} of {len(compared)} "
            "blocks" + (f" (not for block(s) {', '.join(apart)})" if apart else "")
        )
    bounded = [b for b in measured if b.get("stability")]
    if bounded:
        satisfied = min(b["stability"]["fraction_satisfied"] for b in bounded)
        text += (
            f". With eps = each block's largest deviation from its OT assignment, the stability bound holds "
            f"for at least {100 * satisfied:.2f}% of the measured pairs of each of the {len(bounded)} blocks "
            "with a bound (a share exact on the sample)"
        )
    if len(bounded) < len(measured):
        text += f"; {len(measured) - len(bounded)} block(s) have no resolved exponent, hence no bound"
    c = a.get("composed_bound")
    if c:
        text += f". Composed along the {len(c['eta'])} blocks: exponent prod eta_k = {_f(c['exponent'], 3)}"
    return text + "."


def _answer_movement(a: dict[str, Any]) -> str:
    mm = a["minimizing_movement"]
    steps = len(mm["loss_by_depth"]) - 1
    return (
        f"**Minimizing movement (claim 3).** The heads' loss (the Z estimate) increases {mm['loss_increases']} time(s) "
        f"in {steps} step(s) of depth; path length sum_k W2(rho_k, rho_k+1) = {_f(mm['path_length'], 4)} against "
        f"W2(rho_0, rho_K) = {_w2_start_end(mm)} (`{a['method']}` W2)."
    )


def _w2_start_end(mm: dict[str, Any]) -> str:
    """W2(rho_0, rho_K) with its subsampling interval and the direction of its bias."""
    text = _with_interval(mm["w2_start_end"], mm.get("w2_start_end_ci"), 4)
    if mm.get("w2_start_end_bias"):
        text += f"; 95% subsampling interval, {mm['w2_start_end_bias']}"
    return text


def build_report(run_dir: str | Path) -> Document:
    """The report of a finished run: the results first, then the details, the configuration last (collapsed).

    The analysis sections appear only if ``otblocks analyze`` ran.
    """
    paths = RunPaths(run_dir)
    summary = RunSummary.from_dict(paths.read_summary(), str(paths.summary)).to_dict()  # reads older versions too
    a = paths.read_analysis()
    doc = Document(f"otblocks report: {paths.root.name}")
    doc.add(
        Para(
            f"Run directory `{paths.root}`; regime `{summary['regime']}`, {summary['n_modules']} modules, "
            f"device `{summary['device']}`, {_f(summary['train_seconds'], 1)} s of training."
        )
    )
    doc.add(Heading("Results", anchor="results"), Para(_answer_stagnation(summary)))
    if a is not None:
        doc.add(Para(_answer_ot(a)), Para(_answer_regularity(a)), Para(_answer_movement(a)))
    else:
        doc.add(Para("No OT analysis yet: run `otblocks analyze RUN_DIR` for claims 1-3."))
    _figure(doc, paths, ACCURACY_BY_DEPTH)
    _accuracy(doc, summary)
    if a is not None:
        _claim_ot(doc, a, paths)
        _claim_regularity(doc, a, paths)
        _claim_movement(doc, a)
    _claim_stagnation(doc, summary)
    doc.add(
        Heading("Configuration", anchor="configuration"),
        Details(
            f"The resolved configuration ({paths.config.name}, less the data keys this data set does not use)",
            [Code(tomli_w.dumps(paths.read_config().relevant_dict()), "toml")],
        ),
    )
    return doc


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir``; return their paths."""
    paths = RunPaths(run_dir)
    doc = build_report(paths.root)
    md, page = paths.report_md, paths.report_html
    write_text_atomic(md, doc.to_markdown(paths.root))
    write_text_atomic(page, doc.to_html())
    return md, page
