"""What ``otblocks analyze`` measures and how: one frozen object, validated before any work."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError

__all__ = ["AnalysisOptions", "resolve_device"]

METHODS = ("exact", "sliced", "bures")
SPLITS = ("val", "test", "fresh")
MAX_FRESH = 100_000
"""Largest ``n`` of the ``fresh`` split (the exact solver's certified range, see docs/analysis/exact_ot.md)."""
DEVICES = ("auto", "cpu", "cuda")
JACOBIAN_POINTS = 256
"""Default points of the Jacobian test of a unit with at most :data:`LARGE_INPUT` features."""
JACOBIAN_POINTS_LARGE = 16
"""Default points of the Jacobian test above :data:`LARGE_INPUT` features (image blocks)."""
LARGE_INPUT = 4096
"""Features above which a unit counts as large (a 16-channel 28x28 block has 12,544)."""
INTERVAL_MAX_N = 5_000
"""Largest ``n`` at which subsampling intervals are computed (``map_vs_ot``'s and the start-to-end W2's)."""


def interval_options(n: int) -> dict[str, int]:
    """Keyword arguments of an estimator with subsampling intervals at ``n`` points.

    Above :data:`INTERVAL_MAX_N`: ``n_subsamples=0`` (no interval: 20 solves of n/2 points
    would cost about 4 times the solve itself, 4.5 minutes at n = 100,000); else none (the
    estimator's default intervals).
    """
    return {"n_subsamples": 0} if n > INTERVAL_MAX_N else {}


def resolve_device(device: str) -> str:
    """``"auto"`` is ``"cuda"`` when a GPU is visible, else ``"cpu"``; ``"cuda"`` without one is an error."""
    if device not in DEVICES:
        raise ConfigError(f"The '--device' option must be one of {{'auto', 'cpu', 'cuda'}}; got {device!r}.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("The '--device' option is 'cuda' but no CUDA device is visible; use --device cpu.")
    return device


@dataclass(frozen=True)
class AnalysisOptions:
    r"""The options of a run analysis.

    Attributes
    ----------
    split : {'val', 'test', 'fresh'}
        Which points are pushed through the network: a split of the run's data, or (toy data
        sets only) ``fresh``: ``n`` new points of the data distribution
        (:func:`otblocks.data.fresh_toy_points`), for sizes beyond the validation split.
    n : int
        Points used: a seeded random subset of the split (:func:`otblocks.walk.sample_points`,
        the same points as ``otblocks features`` with the same ``seed`` and ``n``), all of it
        when the split is smaller; with ``fresh``, at most :data:`MAX_FRESH`. The exact OT
        comparison is dense while it fits 4 GiB (about 10,000 points) and certified-sparse
        beyond (:func:`analysis.map_vs_ot`, ``solver='auto'``): 15-26 s per unit of the demo
        at n = 100,000 (docs/guide/analyze.md). Above :data:`INTERVAL_MAX_N` points no
        subsampling intervals are computed (they would re-solve 20 problems of n/2 points),
        neither the OT comparison's nor the start-to-end W2's; a note says so.
    method : {'exact', 'sliced', 'bures'}
        How :math:`W_2` between each unit's input and output samples is computed; the
        comparison with the OT map is always exact.
    seed : int
        Seed of the subset, the pair sampling, bootstraps and probes.
    pairs : int
        ``n_pairs`` of the sample-mode Hölder fits (:func:`analysis.holder_fit`): all pairs of
        a seeded random subset of :math:`m` points with :math:`m(m-1)/2 \le` ``pairs``
        (500,000: :math:`m` = 1000, every pair of the default ``n``; at least 10, the fewest
        pairs a fit needs). Its Gram products cost :math:`m^2 d` flops per side.
    bootstrap : int
        Bootstrap replicates of the Hölder fits' intervals, sample and probe (``n_bootstrap``;
        0: none). They reweight pairs already measured, so they cost little.
    blocks : tuple of int or None
        Analyse only these blocks (and the modules all of whose blocks are among them);
        ``None``: every block.
    jacobian_points : int or None
        Points of the Jacobian test, run where the sample test is uninformative. ``None``:
        :data:`JACOBIAN_POINTS` for units of at most :data:`LARGE_INPUT` features,
        :data:`JACOBIAN_POINTS_LARGE` above. Each point costs ``16 + 20`` Jacobian-vector
        and as many vector-Jacobian products, in float32: 16 points of a 16-channel 28x28
        block took 0.6-0.9 s on 2 idle CPU cores (10-20 times more while other processes
        compete for the cores: many small parallel regions), and give the asymmetry to
        1-2% (``asymmetry_se`` states the precision bought).
    """

    split: str = "val"
    n: int = 1000
    method: str = "exact"
    seed: int = 0
    pairs: int = 500_000
    bootstrap: int = 30
    blocks: tuple[int, ...] | None = None
    jacobian_points: int | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"The '--split' option must be one of {{'val', 'test', 'fresh'}}; got {self.split!r}.")
        if self.method not in METHODS:
            raise ConfigError(
                f"The '--method' option must be one of {{'exact', 'sliced', 'bures'}}; got {self.method!r}."
            )
        for name, low in (("n", 2), ("pairs", 10), ("bootstrap", 0), ("jacobian_points", 1)):
            value = getattr(self, name)
            if name == "jacobian_points" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                option = "--" + name.replace("_", "-")
                raise ConfigError(f"The '{option}' option must be an integer >= {low}; got {value!r}.")
        if self.split == "fresh" and self.n > MAX_FRESH:
            raise ConfigError(f"The '--n' option must be at most {MAX_FRESH} with '--split fresh'; got {self.n}.")
        if self.blocks is not None and (
            not self.blocks or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.blocks)
        ):
            raise ConfigError(
                f"The '--blocks' option must be a non-empty list of block indices >= 0; got {self.blocks!r}."
            )

    def check_blocks(self, n_blocks: int) -> None:
        """Raise when ``blocks`` names a block the network does not have."""
        if self.blocks is not None and max(self.blocks) >= n_blocks:
            raise ConfigError(
                f"The '--blocks' option must name blocks in [0, {n_blocks - 1}]; got {','.join(map(str, self.blocks))}."
            )

    def jacobian_points_for(self, d: int) -> int:
        """Points of the Jacobian test of a unit of ``d`` input features (see ``jacobian_points``)."""
        if self.jacobian_points is not None:
            return self.jacobian_points
        return JACOBIAN_POINTS if d <= LARGE_INPUT else JACOBIAN_POINTS_LARGE

    def selects(self, block: int) -> bool:
        """Whether block ``block`` is analysed."""
        return self.blocks is None or block in self.blocks
