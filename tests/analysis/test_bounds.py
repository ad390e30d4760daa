"""`analysis.compose_bounds`: the composed stability bound."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from analysis import compose_bounds, holder_fit


def test_composition_of_power_maps_is_tight():
    # T_k(x) = C_k sign(x)|x|^eta_k on the line, each with (eps=0) bound C_k r^eta_k at
    # pairs (x, -x); their composition is c sign(x)|x|^(eta_1 eta_2) and the composed bound
    # must dominate it at every pair and be reached at antipodal pairs (tight up to the
    # 2^(1-eta) factor of each block, which we include in C_k).
    e1, e2 = 0.5, 0.6
    c1, c2 = 2 ** (1 - e1), 2 ** (1 - e2)  # each block's smallest constant on R
    bound = compose_bounds([SimpleNamespace(eps=0.0, C=c1, eta=e1), SimpleNamespace(eps=0.0, C=c2, eta=e2)])
    assert bound.exponent == pytest.approx(e1 * e2)
    assert bound.constant == pytest.approx(c2 * c1**e2)
    assert bound.floor == 0.0
    x = np.linspace(-2, 2, 401)
    T = np.sign(x) * np.abs(np.sign(x) * np.abs(x) ** e1) ** e2
    i, j = np.triu_indices(401, 1)
    r, s = np.abs(x[i] - x[j]), np.abs(T[i] - T[j])
    assert np.all(s <= bound.evaluate(r) * (1 + 1e-12))
    anti = np.isclose(x[i], -x[j]) & (r > 0)
    np.testing.assert_allclose(s[anti], 2 * np.abs(x[j][anti]) ** (e1 * e2), rtol=1e-12)


def test_evaluate_follows_the_recursion_with_eps():
    fits = [SimpleNamespace(eps=0.1, C=2.0, eta=0.5), SimpleNamespace(eps=0.05, C=1.5, eta=0.8)]
    bound = compose_bounds(fits)
    r = np.array([0.0, 0.01, 1.0, 9.0])
    expected = 2 * 0.05 + 1.5 * (2 * 0.1 + 2.0 * r**0.5) ** 0.8
    np.testing.assert_allclose(bound.evaluate(r), expected, rtol=1e-15)
    assert bound.floor == pytest.approx(expected[0])
    assert isinstance(bound.evaluate(1.0), float)
    assert np.all(np.diff(bound.evaluate(np.linspace(0, 10, 50))) >= 0)  # monotone


def test_accepts_holder_fits_and_serialises():
    x = np.linspace(0.0, 1.0, 30)[:, None]
    fits = [holder_fit(x, 2 * x, eta=1.0, n_bootstrap=0), holder_fit(x, 3 * x, eta=1.0, eps=0.01, n_bootstrap=0)]
    bound = compose_bounds(fits)
    # second block: smallest C = max (3r - 2 eps)/r = 3 - 0.02 at the largest r = 1
    assert bound.constant == pytest.approx(2.0 * 2.98, rel=1e-12) and bound.exponent == 1.0
    d = json.loads(json.dumps(bound.to_dict()))
    assert d["eps"] == [0.0, 0.01] and d["eta"] == [1.0, 1.0]


@pytest.mark.parametrize(
    "fits, exc, match",
    [
        ([], TypeError, "non-empty sequence"),
        ("abc", TypeError, "non-empty sequence"),
        ([object()], TypeError, r"fits\[0\]"),
        ([SimpleNamespace(eps=-1.0, C=1.0, eta=1.0)], ValueError, "eps >= 0"),
        ([SimpleNamespace(eps=0.0, C=1.0, eta=0.0)], ValueError, "eta > 0"),
        ([SimpleNamespace(eps=0.0, C=np.nan, eta=1.0)], ValueError, "finite"),
    ],
)
def test_bad_fits(fits, exc, match):
    with pytest.raises(exc, match=match):
        compose_bounds(fits)


def test_bad_r():
    bound = compose_bounds([SimpleNamespace(eps=0.0, C=1.0, eta=1.0)])
    with pytest.raises(ValueError, match="'r'"):
        bound.evaluate(-1.0)
