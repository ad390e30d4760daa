r"""Closed forms for Gaussians, the oracles of the test ladder.

For :math:`\mu_0 = \mathcal N(m_0, \Sigma_0)` and :math:`\mu_1 = \mathcal N(m_1, \Sigma_1)`:
the 2-Wasserstein distance (Bures-Wasserstein formula), the optimal transport map (affine,
with a symmetric positive semi-definite linear part), the pushforward of a Gaussian by an
affine map, and the Monge gap of an affine map. All inputs are numpy arrays; everything is
computed in float64 with symmetric eigendecompositions (no general ``sqrtm``).

References: ``dowson1982``, ``olkin1982``, ``takatsu2011`` (formula and map),
``uscidda2023`` (Monge gap).
"""

from __future__ import annotations

import numpy as np

__all__ = ["w2", "w2_squared", "ot_map", "pushforward", "monge_gap"]

#: Relative tolerance for symmetry and positive semi-definiteness of a covariance.
_RTOL = 1e-10


def _check_mean_cov(mean, cov, *, func, names=("mean", "cov")):
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if mean.ndim != 1:
        raise ValueError(
            f"The {names[0]!r} parameter of `{func}` must be a 1-D array of shape "
            f"(n_features,); got shape {mean.shape}."
        )
    d = mean.shape[0]
    if cov.shape != (d, d):
        raise ValueError(
            f"The {names[1]!r} parameter of `{func}` must be an array of shape ({d}, {d}) "
            f"matching {names[0]!r}; got shape {cov.shape}."
        )
    if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        raise ValueError(f"The {names[0]!r} and {names[1]!r} parameters of `{func}` must contain only finite values.")
    scale = max(float(np.abs(cov).max()), np.finfo(float).tiny)
    if np.abs(cov - cov.T).max() > _RTOL * scale:
        raise ValueError(
            f"The {names[1]!r} parameter of `{func}` must be symmetric; got an asymmetry "
            f"of {np.abs(cov - cov.T).max():.3g}."
        )
    cov = 0.5 * (cov + cov.T)
    low = float(np.linalg.eigvalsh(cov)[0])
    if low < -_RTOL * scale:
        raise ValueError(
            f"The {names[1]!r} parameter of `{func}` must be positive semi-definite; got a "
            f"smallest eigenvalue of {low:.3g}."
        )
    return mean, cov


def _check_two(mean0, cov0, mean1, cov1, *, func):
    """Both Gaussians checked by :func:`_check_mean_cov`, and in the same dimension."""
    mean0, cov0 = _check_mean_cov(mean0, cov0, func=func, names=("mean0", "cov0"))
    mean1, cov1 = _check_mean_cov(mean1, cov1, func=func, names=("mean1", "cov1"))
    if mean1.shape != mean0.shape:
        raise ValueError(
            f"The 'mean1' parameter of `{func}` must have shape {mean0.shape} like 'mean0'; got {mean1.shape}."
        )
    return mean0, cov0, mean1, cov1


def _check_affine(A, b, d, *, func):
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if A.shape != (d, d) or b.shape != (d,):
        raise ValueError(
            f"The 'A' and 'b' parameters of `{func}` must have shapes ({d}, {d}) and ({d},) "
            f"matching the Gaussian; got {A.shape} and {b.shape}."
        )
    if not (np.isfinite(A).all() and np.isfinite(b).all()):
        raise ValueError(f"The 'A' and 'b' parameters of `{func}` must be finite.")
    return A, b


def _psd_power(S, power):
    """``S ** power`` of a symmetric PSD matrix (negative round-off eigenvalues set to 0)."""
    w, V = np.linalg.eigh(S)
    w = np.clip(w, 0.0, None)
    return (V * w**power) @ V.T


def w2_squared(mean0, cov0, mean1, cov1) -> float:
    r"""Squared 2-Wasserstein distance between two Gaussians.

    .. math::

        W_2^2 = \lVert m_0 - m_1 \rVert^2 + \operatorname{tr}\Bigl(\Sigma_0 + \Sigma_1
        - 2 \bigl(\Sigma_0^{1/2} \Sigma_1 \Sigma_0^{1/2}\bigr)^{1/2}\Bigr)

    Parameters
    ----------
    mean0, mean1 : array-like of shape (d,)
        Means.
    cov0, cov1 : array-like of shape (d, d)
        Covariances (symmetric positive semi-definite; singular is allowed).

    Returns
    -------
    float
        :math:`W_2^2`, in squared units, clipped at 0 against round-off.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis import gaussian
    >>> round(gaussian.w2_squared(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)), 12)
    4.0
    """
    mean0, cov0, mean1, cov1 = _check_two(mean0, cov0, mean1, cov1, func="w2_squared")
    root0 = _psd_power(cov0, 0.5)
    cross = _psd_power(root0 @ cov1 @ root0, 0.5)
    value = np.sum((mean0 - mean1) ** 2) + np.trace(cov0) + np.trace(cov1) - 2 * np.trace(cross)
    return float(max(value, 0.0))


def w2(mean0, cov0, mean1, cov1) -> float:
    r"""2-Wasserstein distance between two Gaussians, :math:`\sqrt{W_2^2}` (see
    :func:`w2_squared`), in the units of the samples.

    Parameters
    ----------
    mean0, mean1 : array-like of shape (d,)
        Means.
    cov0, cov1 : array-like of shape (d, d)
        Covariances.

    Returns
    -------
    float
        :math:`W_2`.
    """
    return float(np.sqrt(w2_squared(mean0, cov0, mean1, cov1)))


def ot_map(mean0, cov0, mean1, cov1):
    r"""Optimal transport map from :math:`\mathcal N(m_0, \Sigma_0)` to
    :math:`\mathcal N(m_1, \Sigma_1)`: :math:`T(x) = A x + b` with

    .. math::

        A = \Sigma_0^{-1/2} \bigl(\Sigma_0^{1/2} \Sigma_1 \Sigma_0^{1/2}\bigr)^{1/2}
        \Sigma_0^{-1/2}, \qquad b = m_1 - A m_0 .

    :math:`A` is symmetric positive semi-definite, so :math:`T` is the gradient of the
    convex function :math:`\tfrac12 x^\top A x + b^\top x` (Brenier).

    Parameters
    ----------
    mean0, mean1 : array-like of shape (d,)
        Means.
    cov0 : array-like of shape (d, d)
        Source covariance, positive definite (the map is unique only then).
    cov1 : array-like of shape (d, d)
        Target covariance, positive semi-definite.

    Returns
    -------
    A : ndarray of shape (d, d)
        Symmetric linear part (apply to row samples as ``x @ A + b``).
    b : ndarray of shape (d,)
        Offset.
    """
    mean0, cov0, mean1, cov1 = _check_two(mean0, cov0, mean1, cov1, func="ot_map")
    w = np.linalg.eigvalsh(cov0)
    if w[0] <= _RTOL * max(w[-1], np.finfo(float).tiny):
        raise ValueError(
            f"The 'cov0' parameter of `ot_map` must be positive definite; got a smallest "
            f"eigenvalue of {w[0]:.3g} (largest {w[-1]:.3g})."
        )
    root0 = _psd_power(cov0, 0.5)
    inv_root0 = _psd_power(cov0, -0.5)
    A = inv_root0 @ _psd_power(root0 @ cov1 @ root0, 0.5) @ inv_root0
    A = 0.5 * (A + A.T)
    return A, mean1 - A @ mean0


def pushforward(A, b, mean, cov):
    r"""Gaussian :math:`T_\# \mathcal N(m, \Sigma)` for the affine map :math:`T(x) = Ax + b`:
    :math:`\mathcal N(A m + b, A \Sigma A^\top)`.

    Parameters
    ----------
    A : array-like of shape (d, d)
        Linear part (any real matrix).
    b : array-like of shape (d,)
        Offset.
    mean : array-like of shape (d,)
        Mean of the input Gaussian.
    cov : array-like of shape (d, d)
        Covariance of the input Gaussian.

    Returns
    -------
    mean : ndarray of shape (d,)
        :math:`A m + b`.
    cov : ndarray of shape (d, d)
        :math:`A \Sigma A^\top` (symmetrised).
    """
    mean, cov = _check_mean_cov(mean, cov, func="pushforward")
    A, b = _check_affine(A, b, mean.shape[0], func="pushforward")
    out = A @ cov @ A.T
    return A @ mean + b, 0.5 * (out + out.T)


def monge_gap(A, b, mean, cov) -> float:
    r"""Monge gap of the affine map :math:`T(x) = Ax + b` on :math:`\mu = \mathcal N(m,
    \Sigma)`: its own transport cost minus the optimal one,

    .. math::

        \mathcal M(T) = \mathbb E_{x \sim \mu} \lVert T(x) - x \rVert^2
        - W_2^2(\mu, T_\# \mu)
        = \lVert (A - I) m + b \rVert^2 + \operatorname{tr}\bigl((A - I) \Sigma
        (A - I)^\top\bigr) - W_2^2(\mu, T_\# \mu) .

    It is 0 iff :math:`T` is an optimal map on :math:`\mu` (for positive definite
    :math:`\Sigma`: iff :math:`A` is symmetric positive semi-definite).

    Parameters
    ----------
    A : array-like of shape (d, d)
        Linear part.
    b : array-like of shape (d,)
        Offset.
    mean : array-like of shape (d,)
        Mean of :math:`\mu`.
    cov : array-like of shape (d, d)
        Covariance of :math:`\mu`.

    Returns
    -------
    float
        The gap, in squared units, clipped at 0 against round-off.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis import gaussian
    >>> rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    >>> round(gaussian.monge_gap(rotation, np.zeros(2), np.zeros(2), np.diag([4.0, 1.0])), 12)
    8.0
    """
    mean, cov = _check_mean_cov(mean, cov, func="monge_gap")
    A, b = _check_affine(A, b, mean.shape[0], func="monge_gap")
    shift = A - np.eye(mean.shape[0])
    own = np.sum((shift @ mean + b) ** 2) + np.trace(shift @ cov @ shift.T)
    mean1, cov1 = pushforward(A, b, mean, cov)
    return float(max(own - w2_squared(mean, cov, mean1, cov1), 0.0))
