"""The package surface: public names, import cost, doctests, serialisation."""

import doctest
import importlib
import json
import subprocess
import sys

import numpy as np
import pytest

import analysis

PUBLIC = {
    "wasserstein",
    "WassersteinResult",
    "map_vs_ot",
    "MapComparison",
    "jacobian_asymmetry",
    "JacobianAsymmetry",
    "holder_fit",
    "HolderFit",
    "compose_bounds",
    "ComposedBound",
    "collect_blocks",
    "BlockSample",
    "gaussian",
    "SolverError",
    "MemoryBudgetError",
    "HolderProfile",
    "sample_size_series",
    "SampleSizeSeries",
    "Certificate",
}


def test_public_api():
    assert set(analysis.__all__) == PUBLIC
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None
    assert issubclass(analysis.SolverError, RuntimeError)
    assert issubclass(analysis.MemoryBudgetError, MemoryError)
    assert callable(analysis.wasserstein)  # the function, not a submodule


def test_import_does_not_load_matplotlib():
    code = "import sys, analysis; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(__import__("pathlib").Path(analysis.__file__).parents[1]),
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "module",
    [
        "analysis.distance",
        "analysis.map_comparison",
        "analysis.gaussian",
        "analysis.holder",
        "analysis.bounds",
        "analysis.collect",
    ],
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_results_are_frozen_dataclasses_with_plain_dicts():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 2))
    results = [
        analysis.wasserstein(x, x + 1),
        analysis.map_vs_ot(x, 2 * x),
        analysis.holder_fit(x, 2 * x, n_bootstrap=3),
        analysis.jacobian_asymmetry(lambda h: 2 * h, x, n_probes=2),
        analysis.compose_bounds([analysis.holder_fit(x, 2 * x, eta=1.0, n_bootstrap=0)]),
    ]
    for res in results:
        assert res.__dataclass_params__.frozen
        d = res.to_dict()
        assert json.loads(json.dumps(d, allow_nan=False)) == d
        for value in d.values():
            assert value is None or isinstance(value, (bool, int, float, str, list, dict))
