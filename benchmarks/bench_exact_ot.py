"""Exact OT side by side: POT dense and lazy, SciPy's assignment and the certified sparse solver.

Solvers: POT dense ``ot.emd2`` (uncapped), POT's lazy network simplex ``ot.emd2_lazy``
(costs computed on the fly, O(n) memory), SciPy's ``linear_sum_assignment`` and ours. Each
solver runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its
own; every row reports time, peak memory and the relative difference of its W2^2 from the
first exact reference in the row (POT dense where it fits, else POT lazy, else SciPy, else
none: then the certificate is the only check). Two problem kinds:

- ``pair``: near-identity block-like pairs, ``map_vs_ot(x, T(x))`` with T the gradient of a
  convex potential plus a small rotation (what ``otblocks analyze`` asks);
- ``indep``: two independent Gaussian samples (``wasserstein(x, y, method='exact')``).

Usage (quick: a few seconds; full table: long on shared cores)::

    python benchmarks/bench_exact_ot.py --n 1000 4000 --d 2
    python benchmarks/bench_exact_ot.py --n 1000 2000 4000 8000 16000 100000 --d 2 3 \\
        --dense-max 16000 --lsa-max 8000
    python benchmarks/bench_exact_ot.py --n 4000 20000 --d 64 --kind indep
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_WORKER = r"""
import json, resource, sys, time
import numpy as np
kind, solver, n, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(n + d)
x = rng.standard_normal((n, d)) * np.linspace(1.0, 0.5, d)
if kind == "pair":
    theta = 0.05
    rot = np.eye(d)
    rot[:2, :2] = [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    y = (x + 0.2 * np.tanh(2 * x)) @ rot.T
else:
    y = rng.standard_normal((n, d)) + 0.5
from analysis import map_vs_ot, wasserstein  # imported before the clock starts
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
extra = {}
if solver in ("dense", "sparse"):
    if kind == "pair":
        res = map_vs_ot(x, y, solver=solver, n_subsamples=0, memory_budget_gib=64.0)
        extra = {"identity_optimal": res.identity_optimal, "monge_gap": res.monge_gap}
    else:
        res = wasserstein(x, y, solver=solver, n_subsamples=0, memory_budget_gib=64.0)
    w2 = res.w2_squared
    if res.certificate is not None:
        c = res.certificate
        extra.update(certified=c.certified, rounds=c.rounds, pairs=c.candidate_pairs)
elif solver == "lazy":  # POT's network simplex with costs computed on the fly, O(n) memory
    import ot
    w2, log = ot.emd2_lazy(x, y, numItermax=2**62, log=True)
    if log["result_code"] != 1:
        raise SystemExit(f"emd2_lazy: {log['warning']}")
    w2 = float(w2)
else:  # scipy
    C = cdist(x, y, "sqeuclidean")
    r, c = linear_sum_assignment(C)
    w2 = float(C[r, c].mean())
secs = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"w2": w2, "seconds": secs, "peak_gib": peak / 2**20, "import_gib": base / 2**20,
                  **extra}))
"""


def run(kind, solver, n, d, timeout):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    try:
        out = subprocess.run(
            [sys.executable, "-c", _WORKER, kind, solver, str(n), str(d)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"> {timeout} s"}
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1][:60]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[1000, 4000])
    p.add_argument("--d", type=int, nargs="+", default=[2])
    p.add_argument("--kind", choices=["pair", "indep", "both"], default="both")
    p.add_argument("--dense-max", type=int, default=8000, help="largest n for POT dense")
    p.add_argument("--lsa-max", type=int, default=4000, help="largest n for SciPy's assignment")
    p.add_argument("--lazy-max", type=int, default=4000, help="largest n for POT's lazy network simplex (emd2_lazy)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per solve")
    args = p.parse_args(argv)
    kinds = ["pair", "indep"] if args.kind == "both" else [args.kind]
    print(
        f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; peak = process "
        f"peak RSS (import of numpy/POT/torch included, about 0.4 GiB)"
    )
    print(f"{'kind':>5} {'d':>3} {'n':>7} | {'solver':>6} {'seconds':>8} {'peak GiB':>8} {'rel. diff':>9} | notes")
    for kind in kinds:
        for d in args.d:
            for n in args.n:
                rows = []
                if n <= args.dense_max:
                    rows.append(("dense", run(kind, "dense", n, d, args.timeout)))
                if n <= args.lazy_max:
                    rows.append(("lazy", run(kind, "lazy", n, d, args.timeout)))
                if n <= args.lsa_max:
                    rows.append(("scipy", run(kind, "scipy", n, d, args.timeout)))
                rows.append(("sparse", run(kind, "sparse", n, d, args.timeout)))
                ref = next((r["w2"] for name, r in rows if "w2" in r and name != "sparse"), None)
                for name, r in rows:
                    if "error" in r:
                        print(f"{kind:>5} {d:>3} {n:>7} | {name:>6} {r['error']}")
                        continue
                    rel = f"{abs(r['w2'] - ref) / ref:9.1e}" if ref else f"{'-':>9}"
                    print(
                        f"{kind:>5} {d:>3} {n:>7} | {name:>6} {r['seconds']:8.2f} {r['peak_gib']:8.2f} {rel} "
                        f"| {_notes(r)}",
                        flush=True,
                    )


def _notes(r: dict) -> str:
    """The identity verdict and the certificate, in words."""
    parts = []
    if "identity_optimal" in r:
        parts.append(f"identity_optimal {r['identity_optimal']}")
        if not r["identity_optimal"]:
            parts.append(f"gap {r['monge_gap']:.1e}")
    if "certified" in r:
        parts.append(f"{'certified' if r['certified'] else 'NOT certified'}, {r['rounds']} rounds, {r['pairs']} pairs")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
