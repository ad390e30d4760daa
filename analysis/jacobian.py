"""Is a map the gradient of a convex function? Its Jacobian's asymmetry and curvature."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import jvp, vjp

from ._callables import as_tensor_for, eval_mode
from ._results import Result
from ._validation import check_array, check_callable, check_finite_output, check_int

__all__ = ["JacobianAsymmetry", "jacobian_asymmetry"]


@dataclass(frozen=True)
class JacobianAsymmetry(Result):
    r"""Symmetry and positivity of a map's Jacobian over a sample.

    Attributes
    ----------
    asymmetry : float
        :math:`\bigl(\sum_i \lVert J_i - J_i^\top \rVert_F^2 / \sum_i \lVert J_i
        \rVert_F^2\bigr)^{1/2}` (dimensionless, in [0, 2]), with :math:`J_i` the Jacobian
        at :math:`x_i`, estimated with Hutchinson probes. 0 for a gradient field; a
        rotation by :math:`\theta` in the plane gives :math:`2 \lvert\sin\theta\rvert`.
    asymmetry_se : float
        Standard error of ``asymmetry`` (same units) as an estimate of its population value
        over the points' distribution: the delta method on the ratio of the per-point
        Hutchinson means, so it counts both the probes' noise and the spread between points.
        0 when every per-point estimate of :math:`\lVert J_i - J_i^\top \rVert_F^2` is 0;
        NaN with a single point.
    min_eigenvalue : float
        Smallest, over the points, Lanczos estimate of :math:`\lambda_{\min}\bigl((J_i +
        J_i^\top)/2\bigr)` (units of the Jacobian: output per input unit). Each estimate is
        an upper bound of the true value (exact when ``n_iter >= d``), so a negative value
        proves that the symmetric part is not positive semi-definite there.
    fraction_negative : float
        Share of points whose estimate is below :math:`-\sqrt{\epsilon}\,\lVert J_i
        \rVert_F / \sqrt d` (:math:`\epsilon` the machine epsilon of the map's dtype: the
        round-off floor).
    n : int
        Number of points.
    d : int
        Number of (flattened) features.
    n_probes : int
        Hutchinson probes per point.
    n_iter : int
        Lanczos steps per point (capped at ``d``).
    """

    asymmetry: float
    asymmetry_se: float
    min_eigenvalue: float
    fraction_negative: float
    n: int
    d: int
    n_probes: int
    n_iter: int


def jacobian_asymmetry(fn, x, n_probes=16, *, n_iter=20, seed=0, batch_size=256):
    r"""Relative asymmetry and smallest symmetric eigenvalue of a map's Jacobian.

    A :math:`C^1` map is the gradient of a convex function, hence an optimal transport map
    (Brenier), iff its Jacobian :math:`J` is symmetric positive semi-definite everywhere.
    Unlike the sample test of :func:`map_vs_ot`, this check does not lose power in high
    dimension. With Rademacher probes :math:`v` (:math:`\mathbb E[v v^\top] = I`):

    .. math::

        \lVert J - J^\top \rVert_F^2 = \mathbb E_v \lVert J v - J^\top v \rVert^2,
        \qquad \lVert J \rVert_F^2 = \mathbb E_v \lVert J v \rVert^2,

    where :math:`J v` is a Jacobian-vector product (forward mode) and :math:`J^\top v` a
    vector-Jacobian product (reverse mode). The smallest eigenvalue of
    :math:`S = (J + J^\top)/2` comes from ``n_iter`` Lanczos steps on the products
    :math:`S q = (J q + J^\top q)/2`.

    Parameters
    ----------
    fn : callable
        The map: a torch module or function from ``(b, ...)`` tensors to tensors of the same
        shape, acting on each sample independently (modules are put in eval mode, then
        restored).
    x : array-like or torch.Tensor of shape (n, ...)
        Points at which the Jacobian is taken; converted to the device and dtype of ``fn``'s
        parameters (float64 for plain functions on numpy input).
    n_probes : int, default=16
        Hutchinson probes per point.
    n_iter : int, default=20
        Lanczos steps per point (0 to skip the eigenvalue: then ``min_eigenvalue`` is NaN).
    seed : int, default=0
        Seed of the probes and Lanczos start vectors.
    batch_size : int, default=256
        Points per batch of products.

    Returns
    -------
    JacobianAsymmetry
        Asymmetry, eigenvalue estimate and counts.

    Notes
    -----
    Cost: ``n_probes + n_iter`` Jacobian-vector and as many vector-Jacobian products per
    batch of points (each about two to three forward passes of ``fn``), plus one forward pass
    for the pullback; the Lanczos basis holds ``batch_size * n_iter * d`` numbers. Products
    and the Lanczos basis are in the map's own dtype (float32 for a float32 block), sums of
    squares and the tridiagonal matrix in float64. Float32 is exact enough: with full
    reorthogonalisation the Ritz values carry an error of order :math:`\epsilon_{32}
    \lVert S \rVert` (:math:`\approx 10^{-7}` of the largest eigenvalue), far below the
    negativity floor :math:`\sqrt{\epsilon_{32}}\,\lVert J \rVert_F / \sqrt d` of
    ``fraction_negative``, and the Hutchinson sums lose about :math:`10^{-7}` relative,
    far below their sampling error (``asymmetry_se``); the tests check both against the
    float64 computation. The Hutchinson estimates are unbiased per point and averaged over
    all points, so the relative standard error of ``asymmetry`` is about
    :math:`1/\sqrt{n \cdot n_\text{probes}}` times a factor depending on the Jacobians
    (exact for an orthogonal :math:`J - J^\top`, e.g. a 2-D rotation); ``asymmetry_se``
    measures it. Lanczos Ritz values approach :math:`\lambda_{\min}` from above;
    in high dimension with few steps they may miss a small negative eigenvalue, so a
    positive ``min_eigenvalue`` is evidence, not proof. Needs ``fn`` to support
    forward-mode AD (``torch.func.jvp``).

    References
    ----------
    ``hutchinson1989``, ``lanczos1950``, ``brenier1991``.
    """
    func = "jacobian_asymmetry"
    check_callable(fn, name="fn", func=func)
    check_array(x, name="x", func=func, min_samples=1, max_ndim=None)
    n_probes = check_int(n_probes, name="n_probes", func=func, low=1)
    n_iter = check_int(n_iter, name="n_iter", func=func, low=0)
    seed = check_int(seed, name="seed", func=func, low=0)
    batch_size = check_int(batch_size, name="batch_size", func=func, low=1)

    xt = as_tensor_for([fn], x)  # (n, ...)
    n, d = xt.shape[0], int(np.prod(xt.shape[1:]))
    n_iter = min(n_iter, d)
    gen = torch.Generator().manual_seed(seed)
    lam_min, anti_point, fro_point = [], [], []
    with eval_mode([fn]), warnings.catch_warnings():
        # torch's own forward-mode decompositions call the deprecated torch.jit.script.
        warnings.filterwarnings("ignore", message=".*torch.jit.script", category=FutureWarning)
        with torch.no_grad():
            out = fn(xt[:1])
        if not isinstance(out, torch.Tensor) or out.shape != xt[:1].shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"The 'fn' parameter of `{func}` must map inputs of shape "
                f"{tuple(xt[:1].shape)} to outputs of the same shape (a square Jacobian); "
                f"got {got}."
            )
        for start in range(0, n, batch_size):
            xb = xt[start : start + batch_size]
            with torch.no_grad():
                check_finite_output(fn(xb), name="fn", func=func)
            matvec = _products(fn, xb)
            a, f = _hutchinson(matvec, xb, n_probes, gen)
            anti_point.append(a)
            fro_point.append(f)
            if n_iter:
                lam_min.append(_lanczos_min(matvec, xb, n_iter, gen))
    asym, asym_se = _ratio_root(np.concatenate(anti_point), np.concatenate(fro_point))
    if n_iter:
        lam = np.concatenate(lam_min)
        scale = np.sqrt(np.concatenate(fro_point) / d)  # (n,) RMS eigenvalue size
        floor = np.sqrt(torch.finfo(xt.dtype).eps) * scale
        min_eig, frac = float(lam.min()), float(np.mean(lam < -floor))
    else:
        min_eig, frac = float("nan"), 0.0
    return JacobianAsymmetry(
        asymmetry=asym,
        asymmetry_se=asym_se,
        min_eigenvalue=min_eig,
        fraction_negative=frac,
        n=int(n),
        d=d,
        n_probes=n_probes,
        n_iter=n_iter,
    )


def _ratio_root(a, f):
    r""":math:`\sqrt{\sum a_i / \sum f_i}` and its delta-method standard error over the points.

    With :math:`R = \bar a / \bar f`, :math:`\operatorname{se}(R) \approx
    \operatorname{sd}(a_i - R f_i) / (\sqrt n\, \bar f)` and
    :math:`\operatorname{se}(\sqrt R) = \operatorname{se}(R) / (2 \sqrt R)`.
    """
    n = a.size
    if not f.sum() > 0:
        return 0.0, 0.0
    ratio = float(a.sum() / f.sum())
    if not a.any():
        return 0.0, 0.0
    if n < 2:
        return float(np.sqrt(ratio)), float("nan")
    se_ratio = float(np.std(a - ratio * f, ddof=1) / (np.sqrt(n) * f.mean()))
    return float(np.sqrt(ratio)), se_ratio / (2.0 * np.sqrt(ratio))


def _products(fn, xb):
    """``v -> (J v, J^T v)`` for the batch ``xb`` (block-diagonal Jacobian per sample)."""
    _, pullback = vjp(fn, xb)

    def matvec(v):  # detached: the parameters' graph is not needed
        return jvp(fn, (xb,), (v,))[1].detach(), pullback(v)[0].detach()

    return matvec


def _hutchinson(matvec, xb, n_probes, gen):
    """Per-point estimates of ``||J - J^T||_F^2`` and ``||J||_F^2`` (float64 numpy)."""
    b = xb.shape[0]
    anti = torch.zeros(b, dtype=torch.float64, device=xb.device)
    fro = torch.zeros(b, dtype=torch.float64, device=xb.device)
    for _ in range(n_probes):
        v = (torch.randint(0, 2, xb.shape, generator=gen) * 2 - 1).to(xb.device, xb.dtype)
        jv, jtv = matvec(v)
        anti += (jv - jtv).reshape(b, -1).double().square().sum(1)
        fro += jv.reshape(b, -1).double().square().sum(1)
    return (anti / n_probes).cpu().numpy(), (fro / n_probes).cpu().numpy()


def _lanczos_min(matvec, xb, k, gen):
    """Smallest Ritz value of ``S = (J + J^T)/2`` after ``k`` Lanczos steps, per point.

    Full reorthogonalisation (k is small); on breakdown (an invariant subspace found) the
    next vector is a fresh random one orthogonal to the previous, with a zero coupling, so
    the tridiagonal matrix stays the projection of S on the Krylov basis.
    """
    b = xb.shape[0]
    shape, dev = xb.shape, xb.device
    dt = torch.promote_types(xb.dtype, torch.float32)  # the map's dtype, at least float32
    rel_breakdown = 1e-10 if dt == torch.float64 else 100 * torch.finfo(dt).eps
    Q = torch.zeros(b, k, int(np.prod(shape[1:])), dtype=dt, device=dev)  # (b, k, d)
    alpha = torch.zeros(b, k, dtype=torch.float64, device=dev)
    beta = torch.zeros(b, k, dtype=torch.float64, device=dev)
    q = _orthonormal_random(Q[:, :0], b, Q.shape[2], gen, dev)
    for j in range(k):
        Q[:, j] = q
        jq, jtq = matvec(q.reshape(shape).to(xb.dtype))
        w = 0.5 * (jq + jtq).reshape(b, -1).to(dt)  # (b, d) S q
        alpha[:, j] = (w.double() * q.double()).sum(1)
        for _ in range(2):  # classical Gram-Schmidt, twice
            w = w - torch.einsum("bkd,bk->bd", Q[:, : j + 1], torch.einsum("bkd,bd->bk", Q[:, : j + 1], w))
        if j + 1 == k:
            break
        norm = torch.linalg.vector_norm(w.double(), dim=1)  # (b,)
        scale = torch.linalg.vector_norm(alpha[:, : j + 1], dim=1) + 1e-300
        broke = norm <= rel_breakdown * scale
        fresh = _orthonormal_random(Q[:, : j + 1], b, Q.shape[2], gen, dev)
        beta[:, j] = torch.where(broke, torch.zeros_like(norm), norm)
        q = torch.where(broke[:, None], fresh, (w.double() / norm.clamp_min(1e-300)[:, None]).to(dt))
    T = torch.diag_embed(alpha) + torch.diag_embed(beta[:, :-1], 1) + torch.diag_embed(beta[:, :-1], -1)
    return torch.linalg.eigvalsh(T)[:, 0].cpu().numpy()


def _orthonormal_random(Q, b, d, gen, device):
    """Random unit vectors (b, d) orthogonal to the columns already in ``Q`` (b, j, d), in its dtype."""
    v = torch.randn(b, d, generator=gen, dtype=torch.float64).to(device=device, dtype=Q.dtype)
    for _ in range(2):
        v = v - torch.einsum("bkd,bk->bd", Q, torch.einsum("bkd,bd->bk", Q, v))
    return v / torch.linalg.vector_norm(v, dim=1, keepdim=True).clamp_min(torch.finfo(v.dtype).tiny)
