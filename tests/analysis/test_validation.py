"""Every bad input raises a one-line ValueError/TypeError naming the parameter, what was given
and what is allowed, before any heavy work."""

import numpy as np
import pytest
import torch

from analysis import holder_fit, jacobian_asymmetry, map_vs_ot, wasserstein

GOOD = np.zeros((5, 2))
NAN = np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]])
INF = np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]])

# (call, exception, regex the message must match)
CASES = [
    # NaN / inf
    (
        lambda: wasserstein(NAN, GOOD),
        ValueError,
        r"The 'x' parameter of `wasserstein` must contain only finite values; got 1 NaN",
    ),
    (lambda: wasserstein(GOOD, INF), ValueError, r"The 'y' parameter .* finite values"),
    (lambda: map_vs_ot(NAN, NAN), ValueError, r"The 'x' parameter of `map_vs_ot` .* finite"),
    (lambda: map_vs_ot(GOOD[:3], INF), ValueError, r"The 'tx' parameter of `map_vs_ot` .* finite"),
    (lambda: holder_fit(NAN, GOOD[:3]), ValueError, r"The 'x' parameter of `holder_fit` .* finite"),
    (lambda: jacobian_asymmetry(lambda h: h, torch.tensor(NAN)), ValueError, "finite"),
    # not 2-D
    (
        lambda: wasserstein(np.zeros(5), GOOD),
        ValueError,
        r"The 'x' parameter of `wasserstein` must be a 2-D array of shape \(n_samples, n_features\); "
        r"got an array of shape \(5,\)",
    ),
    (lambda: map_vs_ot(np.zeros((5, 2, 1)), GOOD), ValueError, r"2-D array .* got an array of shape \(5, 2, 1\)"),
    (lambda: holder_fit(GOOD, np.zeros(5)), ValueError, r"'tx' .* 2-D array"),
    (lambda: wasserstein(np.zeros((5, 0)), np.zeros((5, 0))), ValueError, "at least one feature"),
    # mismatched n or d
    (
        lambda: map_vs_ot(GOOD, np.zeros((4, 2))),
        ValueError,
        r"The 'tx' parameter of `map_vs_ot` must have the same shape as 'x', \(5, 2\) .*; got \(4, 2\)",
    ),
    (lambda: map_vs_ot(GOOD, np.zeros((5, 3))), ValueError, r"same shape as 'x'"),
    (
        lambda: holder_fit(GOOD, np.zeros((6, 2))),
        ValueError,
        r"'tx' parameter of `holder_fit` must have the same shape",
    ),
    (
        lambda: wasserstein(GOOD, np.zeros((5, 3))),
        ValueError,
        r"The 'y' parameter of `wasserstein` must have as many features as 'x' \(2\); got an array of shape \(5, 3\)",
    ),
    # n < 2
    (lambda: wasserstein(np.zeros((1, 2)), GOOD), ValueError, r"at least 2 samples; got 1"),
    (lambda: map_vs_ot(np.zeros((1, 2)), np.zeros((1, 2))), ValueError, r"at least 2 samples"),
    (lambda: holder_fit(np.zeros((1, 2)), np.zeros((1, 2))), ValueError, r"at least 2 samples"),
    (lambda: jacobian_asymmetry(lambda h: h, np.zeros((0, 2))), ValueError, r"at least 1 samples; got 0"),
    # non-callable / wrong types
    (
        lambda: jacobian_asymmetry("not a function", GOOD),
        TypeError,
        r"The 'fn' parameter of `jacobian_asymmetry` must be a callable .*; got str",
    ),
    (
        lambda: wasserstein("abc", GOOD),
        TypeError,
        r"The 'x' parameter of `wasserstein` must be an array-like of real numbers; got str",
    ),
    (lambda: map_vs_ot(GOOD, GOOD.astype(complex)), TypeError, r"real numbers; got an array of dtype complex128"),
    (
        lambda: map_vs_ot(torch.zeros(3, 2, dtype=torch.complex64), GOOD),
        TypeError,
        r"real numbers; got a tensor of dtype torch.complex64",
    ),
    (lambda: wasserstein([[0.0, 1.0], [2.0]], GOOD), ValueError, r"rectangular array-like .* ragged list"),
    # options and scalars
    (
        lambda: wasserstein(GOOD, GOOD, method="emd"),
        ValueError,
        r"The 'method' parameter of `wasserstein` must be one of \{'exact', 'sliced', 'bures', 'sinkhorn'\}; got 'emd'",
    ),
    (lambda: wasserstein(GOOD, GOOD, max_iter=0), ValueError, r"'max_iter' .* >= 1; got 0"),
    (lambda: wasserstein(GOOD, GOOD, max_iter=2.5), TypeError, r"'max_iter' .* must be an int; got 2.5"),
    (lambda: wasserstein(GOOD, GOOD, check="yes"), TypeError, r"'check' .* must be a bool"),
    (lambda: wasserstein(GOOD, GOOD, memory_budget_gib=-1), ValueError, r"'memory_budget_gib' .* \(0, inf\); got -1"),
    (lambda: wasserstein(GOOD, GOOD, method="sliced", n_projections=0), ValueError, r"'n_projections'"),
    (lambda: wasserstein(GOOD, GOOD + 1, method="sinkhorn", reg=0.0), ValueError, r"'reg' .* \(0, inf\)"),
    (lambda: map_vs_ot(GOOD, GOOD, resolution_threshold=float("nan")), ValueError, r"'resolution_threshold'"),
    (lambda: map_vs_ot(GOOD, GOOD, check=None), TypeError, r"'check'"),
    (
        lambda: holder_fit(GOOD, GOOD, eta=0.0),
        ValueError,
        r"The 'eta' parameter of `holder_fit` must be a finite number in \(0, inf\); got 0.0",
    ),
    (lambda: holder_fit(GOOD, GOOD, eps=-0.1), ValueError, r"'eps' .* \[0, inf\)"),
    (lambda: holder_fit(GOOD, GOOD, quantile=1.0), ValueError, r"'quantile' .* \(0, 1\)"),
    (lambda: holder_fit(GOOD, GOOD, confidence=0), ValueError, r"'confidence'"),
    (lambda: holder_fit(GOOD, GOOD, n_pairs=5), ValueError, r"'n_pairs' .* >= 10"),
    (lambda: holder_fit(GOOD, GOOD, n_bootstrap=-1), ValueError, r"'n_bootstrap'"),
    (lambda: holder_fit(GOOD, GOOD, C="big"), TypeError, r"'C' .* real number"),
    (lambda: holder_fit(GOOD, GOOD, scales=(2.0, 1.0)), ValueError, r"'scales' .* \(scale_min, scale_max\)"),
    (lambda: holder_fit(GOOD, lambda h: h, scales=[0.1]), ValueError, r"'scales' .* two distinct positive radii"),
    (lambda: holder_fit(GOOD, lambda h: h, scales=[0.1, -1.0]), ValueError, r"'scales'"),
    (lambda: holder_fit(GOOD, lambda h: h), ValueError, r"'x' .* must not be constant .* spread of 0"),
    (lambda: jacobian_asymmetry(lambda h: h, GOOD, n_probes=0), ValueError, r"'n_probes'"),
    (lambda: jacobian_asymmetry(lambda h: h, GOOD, n_iter=-1), ValueError, r"'n_iter'"),
    (lambda: jacobian_asymmetry(lambda h: h, GOOD, seed=True), TypeError, r"'seed' .* int; got True"),
]


@pytest.mark.parametrize("call, exc, match", CASES)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_validation_happens_before_heavy_work():
    # A callable that would fail loudly if it were called: argument errors come first.
    def explode(h):
        raise AssertionError("called before validation")

    with pytest.raises(ValueError, match="'n_probes'"):
        jacobian_asymmetry(explode, GOOD, n_probes=0)
    with pytest.raises(ValueError, match="'quantile'"):
        holder_fit(GOOD, explode, quantile=2.0)
