"""The 2-Wasserstein distance between two empirical distributions.

The module is not named ``wasserstein`` so that ``analysis.wasserstein`` is unambiguously
the function.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import ot
import torch

from . import gaussian
from ._emd import SOLVERS, check_memory, choose_solver, solve_exact, solve_sparse
from ._pairwise import sq_dist_matrix
from ._results import Result
from ._validation import (
    check_float,
    check_int,
    check_option,
    check_same_features,
    check_solver_options,
    is_torch_tensor,
    to_numpy,
)
from .certified_ot import Certificate
from .exceptions import SolverError
from .sample_size import subsample_interval, take_rows

__all__ = ["wasserstein", "WassersteinResult"]

METHODS = ("exact", "sliced", "bures", "sinkhorn")

#: Direction of each method's bias as an estimate of W2 between the populations.
BIAS = {
    "exact": "plug-in: biased high (the empirical distributions of two samples of one law are "
    "O(n^(-1/d)) apart), strongly so in high dimension",
    "sliced": "lower bound of the exact W2 on the same samples",
    "bures": "lower bound of the exact W2 on the same samples (Gelbrich)",
    "sinkhorn": "upper bound of the exact W2 on the same samples, up to the marginal error",
}

#: Dense Sinkhorn memory per pair: cost matrix, Gibbs kernel (log domain) and plan.
_SINKHORN_BYTES_PER_PAIR = 32


@dataclass(frozen=True)
class WassersteinResult(Result):
    r"""The 2-Wasserstein distance between two samples, and how it was obtained.

    Attributes
    ----------
    w2 : float
        :math:`W_2(\hat\mu, \hat\nu)`, in the units of the samples (see ``method`` for what
        each method actually computes).
    w2_squared : float
        Its square, in squared units (the optimal mean squared displacement).
    method : str
        ``'exact'`` (network simplex), ``'sliced'`` (sliced distance, a lower bound of W2),
        ``'bures'`` (W2 between the Gaussians with the samples' means and covariances, a
        lower bound of W2) or ``'sinkhorn'`` (transport cost of the entropic plan, an upper
        bound of W2 up to the solver's marginal error).
    n : int
        Size of the first sample.
    m : int
        Size of the second sample.
    d : int
        Number of features.
    status : str
        ``'optimal'``, ``'max_iter_reached'`` or ``'uncertified'`` (exact), ``'converged'`` or
        ``'max_iter_reached'`` (sinkhorn), ``'closed_form'`` (bures), ``'monte_carlo'``
        (sliced).
    converged : bool
        False only when an iterative solver stopped at its cap or the sparse solver could not
        certify its plan (possible with ``check=False``): then the value is not what the
        method promises.
    w2_ci : tuple of float or None
        Subsampling interval of ``w2`` (see Notes): the sampling variability of the
        estimate at these sample sizes, not its bias. None when ``n_subsamples=0``.
    bias : str
        The known direction of the estimate's bias as an estimate of :math:`W_2(\mu, \nu)`
        between the populations (see Notes).
    n_subsamples : int
        Subsamples behind ``w2_ci``.
    subsample_size : int
        Points per subsample of ``x`` (0 without interval).
    certificate : Certificate or None
        The sparse exact solver's certificate of optimality (None otherwise); see
        :mod:`analysis.certified_ot`.
    """

    w2: float
    w2_squared: float
    method: str
    n: int
    m: int
    d: int
    status: str
    converged: bool
    w2_ci: tuple | None
    bias: str
    n_subsamples: int
    subsample_size: int
    certificate: Certificate | None = None


def wasserstein(
    x,
    y,
    method="exact",
    *,
    max_iter=None,
    check=True,
    memory_budget_gib=4.0,
    n_projections=256,
    reg=None,
    tol=1e-6,
    seed=0,
    n_subsamples=20,
    subsample_fraction=0.5,
    confidence=0.95,
    solver="auto",
    quiet=True,
):
    r"""2-Wasserstein distance between the empirical distributions of two samples.

    .. math::

        W_2^2(\hat\mu, \hat\nu) = \min_{P \in \Pi(a, b)} \sum_{i, j} P_{ij}
        \lVert x_i - y_j \rVert^2

    where

    - :math:`\hat\mu = \frac1n \sum_i \delta_{x_i}` and
      :math:`\hat\nu = \frac1m \sum_j \delta_{y_j}` are the empirical distributions,
    - :math:`\Pi(a, b)` is the set of couplings of the uniform weights
      :math:`a = \mathbf 1_n / n` and :math:`b = \mathbf 1_m / m`.

    Parameters
    ----------
    x : array-like or torch.Tensor of shape (n, d)
        First sample.
    y : array-like or torch.Tensor of shape (m, d)
        Second sample (``m`` may differ from ``n``).
    method : {'exact', 'sliced', 'bures', 'sinkhorn'}, default='exact'
        ``'exact'``: POT's network simplex on the (n, m) cost matrix.
        ``'sliced'``: the sliced distance over ``n_projections`` random directions.
        ``'bures'``: closed form between the Gaussians with the samples' means and
        (biased, ``1/n``) covariances. ``'sinkhorn'``: cost of the entropic plan.
    max_iter : int, optional
        Cap on network-simplex pivots (exact; default ``max(100000, 50 n m)``, see Notes)
        or on Sinkhorn iterations (default 10000).
    check : bool, default=True
        When an iterative solver stops at ``max_iter``, raise :class:`SolverError` (True)
        or return the value with ``status='max_iter_reached'`` and ``converged=False``.
    memory_budget_gib : float, default=4.0
        Largest memory (GiB) an exact or Sinkhorn solve may use; checked before solving.
    n_projections : int, default=256
        Number of directions for ``'sliced'``.
    reg : float, optional
        Entropic regularization for ``'sinkhorn'``, in squared units (default: 5% of the
        mean squared distance between the samples). The entropic cost is biased high, more
        so for larger ``reg``; smaller ``reg`` needs more iterations.
    tol : float, default=1e-6
        Sinkhorn stopping threshold on the marginal violation.
    seed : int, default=0
        Seed of the sliced directions and of the subsamples.
    n_subsamples : int, default=20
        Subsamples (each sample at ``subsample_fraction`` of its size, without replacement)
        for ``w2_ci``; 0 to skip. With the exact method each reuses the full cost matrix
        and costs one solve of its size.
    subsample_fraction : float, default=0.5
        Subsample size as a fraction of each sample's size.
    confidence : float, default=0.95
        Level of ``w2_ci``.
    solver : {'auto', 'dense', 'sparse'}, default='auto'
        Exact method only. ``'dense'``: POT's network simplex on the n x m cost matrix.
        ``'sparse'``: the certified sparse solver (:mod:`analysis.certified_ot`, O((n + m) k)
        memory). ``'auto'``: dense when it fits ``memory_budget_gib``.
    quiet : bool, default=True
        No progress bar for the sparse solver.

    Returns
    -------
    WassersteinResult
        The distance, its square, the method and the solver status.

    Raises
    ------
    SolverError
        The solver stopped before optimality (and ``check=True``).
    MemoryBudgetError
        The dense solve would exceed ``memory_budget_gib``.

    Notes
    -----
    POT's default cap of 100000 pivots is too small beyond a few thousand points (in 2-D,
    Gaussian samples of 5000 points need 112 k pivots; in 64-D, 3000 points already need
    more), and POT then returns a wrong cost with only a warning. The cap here grows with
    ``n m`` and the result code is checked.

    The plug-in estimate :math:`W_2(\hat\mu, \hat\nu)` of :math:`W_2(\mu, \nu)` is biased
    high, strongly so in high dimension (the empirical distributions of two samples of the
    same law are :math:`O(n^{-1/d})` apart). ``'sliced'`` and ``'bures'`` are lower
    bounds of the exact value on the same samples, ``'sinkhorn'`` an upper bound.
    ``bias`` states this for the method used. ``w2_ci`` comes from subsampling (Politis and
    Romano, ``politis1994``): the spread of the estimate on subsamples of size m, scaled by
    :math:`\sqrt{m/(n - m)}`, is its standard error at n (a bootstrap resample would repeat
    points, ties that lower a plug-in transport cost). The interval is the sampling
    variability only: the plug-in bias is of the order of the estimate's drop with n
    (:func:`sample_size_series`), and when the two populations are equal the rate is not
    :math:`n^{-1/2}`, so the interval is rough there.
    Pairwise distances are direct differences in float64; torch tensors on a GPU get their
    cost matrix computed there, the network simplex runs on the CPU.

    References
    ----------
    Network simplex: ``bonneel2011`` via POT, ``flamary2021``. Gelbrich bound:
    ``gelbrich1990``. Entropic OT: ``cuturi2013``.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis import wasserstein
    >>> x = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> round(wasserstein(x, x + [3.0, 4.0]).w2, 12)
    5.0
    """
    func = "wasserstein"
    check_option(method, name="method", func=func, options=METHODS)
    check_option(solver, name="solver", func=func, options=SOLVERS)
    x, y = check_same_features(x, y, func=func)
    max_iter, budget = check_solver_options(max_iter, check, memory_budget_gib, func=func)
    n_subsamples = check_int(n_subsamples, name="n_subsamples", func=func, low=0)
    fraction = check_float(
        subsample_fraction, name="subsample_fraction", func=func, low=0.0, high=1.0, low_open=True, high_open=True
    )
    confidence = check_float(confidence, name="confidence", func=func, low=0.0, high=1.0, low_open=True, high_open=True)
    n, m, d = x.shape[0], y.shape[0], x.shape[1]
    converged = True

    certificate, M = None, None
    if method == "exact" and choose_solver(solver, n, m, d, budget, func=func) == "sparse":
        sol, status = solve_sparse(to_numpy(x), to_numpy(y), paired=False, check=check, quiet=quiet, func=func)
        w2_sq, certificate = sol.cost, sol.certificate
        converged = status == "optimal"
    elif method == "exact":
        M = sq_dist_matrix(x, y)  # (n, m)
        _, w2_sq, status = solve_exact(M, max_iter=max_iter, check=check, func=func)
        converged = status == "optimal"
    elif method == "sinkhorn":
        tol = check_float(tol, name="tol", func=func, low=0.0, low_open=True)
        if reg is not None:
            reg = check_float(reg, name="reg", func=func, low=0.0, low_open=True)
        n_iter = 10_000 if max_iter is None else max_iter
        check_memory(n, m, budget, func=func, bytes_per_pair=_SINKHORN_BYTES_PER_PAIR)
        M = sq_dist_matrix(x, y)  # (n, m)
        if reg is None:
            reg = 0.05 * float(M.mean())
        w2_sq, converged = _sinkhorn(M, reg, n_iter, tol)
        status = "converged" if converged else "max_iter_reached"
        if not converged and check:
            raise SolverError(
                f"`{func}`: Sinkhorn did not reach tol={tol:g} in max_iter={n_iter} "
                f"iterations. Raise max_iter or reg, or pass check=False to get the "
                f"unconverged value."
            )
    elif method == "sliced":
        n_projections = check_int(n_projections, name="n_projections", func=func, low=1)
        seed = check_int(seed, name="seed", func=func, low=0)
        theta = np.random.default_rng(seed).standard_normal((d, n_projections))
        theta /= np.linalg.norm(theta, axis=0)  # (d, n_projections) unit directions
        if is_torch_tensor(x):  # the same directions on the tensors' device
            theta = torch.as_tensor(theta, device=x.device)
        sw = ot.sliced_wasserstein_distance(x, y, projections=theta, p=2)
        w2_sq = float(sw) ** 2
        status = "monte_carlo"
    else:  # bures
        w2_sq = gaussian.w2_squared(*_moments(x), *_moments(y))
        status = "closed_form"
    w2_sq = float(w2_sq)
    w2 = float(np.sqrt(max(w2_sq, 0.0)))
    ci, size = [None], 0
    if n_subsamples:

        def statistic(rows_x, rows_y):  # the full cost matrix and reg; no distance recomputed
            if M is not None:
                M_sub = M[np.ix_(rows_x, rows_y)]
                if method == "exact":
                    _, sq, st = solve_exact(M_sub, max_iter=max_iter, check=False, func=func)
                    ok = st == "optimal"
                else:
                    sq, ok = _sinkhorn(M_sub, reg, n_iter, tol)
                return np.sqrt(max(sq, 0.0)) if ok else np.nan
            sub = wasserstein(
                *take_rows((x, y), (rows_x, rows_y)),
                method,
                n_projections=n_projections,
                seed=seed,
                n_subsamples=0,
                solver=solver,
                check=False,
            )
            return sub.w2 if sub.converged else np.nan

        ci, size = subsample_interval(
            statistic,
            (x, y),
            (w2,),
            n_subsamples=n_subsamples,
            fraction=fraction,
            confidence=confidence,
            seed=seed,
            indices=True,
        )
    return WassersteinResult(
        w2=w2,
        w2_squared=w2_sq,
        method=method,
        n=int(n),
        m=int(m),
        d=int(d),
        status=status,
        converged=bool(converged),
        w2_ci=ci[0],
        bias=BIAS[method],
        n_subsamples=n_subsamples,
        subsample_size=size,
        certificate=certificate,
    )


def _moments(x):
    """Mean and biased (1/n) covariance of a sample, computed on its device."""
    if is_torch_tensor(x):
        mean = x.mean(0)
        centred = x - mean  # (n, d)
        cov = centred.T @ centred / x.shape[0]
        return to_numpy(mean), to_numpy(cov)
    mean = x.mean(axis=0)
    centred = x - mean  # (n, d)
    return mean, centred.T @ centred / x.shape[0]


def _sinkhorn(M, reg, max_iter, tol):
    """Transport cost of the (log-stabilized) Sinkhorn plan, and whether it met ``tol``."""
    n, m = M.shape
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", UserWarning)
        cost, log = ot.sinkhorn2(
            np.full(n, 1.0 / n),
            np.full(m, 1.0 / m),
            M,
            reg,
            method="sinkhorn_stabilized",
            numItermax=max_iter,
            stopThr=tol,
            log=True,
        )
    if not np.isfinite(cost):
        raise SolverError(f"`wasserstein`: Sinkhorn overflowed at reg={reg:g} (squared units); raise reg.")
    return float(cost), bool(log["err"] and log["err"][-1] < tol)
