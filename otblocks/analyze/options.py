"""What ``otblocks analyze`` measures and how: one frozen object, validated before any work."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError

__all__ = ["AnalysisOptions", "resolve_device"]

METHODS = ("exact", "sliced", "bures")
SPLITS = ("val", "test")
DEVICES = ("auto", "cpu", "cuda")


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
    split : {'val', 'test'}
        Which split's points are pushed through the network.
    n : int
        Points used: a seeded random subset of the split (:func:`otblocks.walk.sample_points`,
        the same points as ``otblocks features`` with the same ``seed`` and ``n``), all of it
        when the split is smaller. The exact OT solve costs :math:`O(n^2)` memory and roughly
        :math:`O(n^3)` time per unit.
    method : {'exact', 'sliced', 'bures'}
        How :math:`W_2` between each unit's input and output samples is computed; the
        comparison with the OT map is always exact.
    seed : int
        Seed of the subset, the pair sampling, bootstraps and probes.
    pairs : int
        Pairs of points drawn by each Hölder fit (``n_pairs`` of :func:`analysis.holder_fit`).
    bootstrap : int
        Bootstrap replicates of the Hölder exponent's interval (``n_bootstrap``; 0: none).
    blocks : tuple of int or None
        Analyse only these blocks (and the modules all of whose blocks are among them);
        ``None``: every block.
    jacobian_points : int
        Points of the Jacobian test, run where the sample test is uninformative.
    """

    split: str = "val"
    n: int = 1000
    method: str = "exact"
    seed: int = 0
    pairs: int = 20_000
    bootstrap: int = 30
    blocks: tuple[int, ...] | None = None
    jacobian_points: int = 256

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"The '--split' option must be one of {{'val', 'test'}}; got {self.split!r}.")
        if self.method not in METHODS:
            raise ConfigError(
                f"The '--method' option must be one of {{'exact', 'sliced', 'bures'}}; got {self.method!r}."
            )
        for name, low in (("n", 2), ("pairs", 1), ("bootstrap", 0), ("jacobian_points", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                option = "--" + name.replace("_", "-")
                raise ConfigError(f"The '{option}' option must be an integer >= {low}; got {value!r}.")
        if self.blocks is not None and (not self.blocks or any(isinstance(i, bool) or not isinstance(i, int) or i < 0
                                                               for i in self.blocks)):
            raise ConfigError(
                f"The '--blocks' option must be a non-empty list of block indices >= 0; got {self.blocks!r}."
            )

    def check_blocks(self, n_blocks: int) -> None:
        """Raise when ``blocks`` names a block the network does not have."""
        if self.blocks is not None and max(self.blocks) >= n_blocks:
            raise ConfigError(
                f"The '--blocks' option must name blocks in [0, {n_blocks - 1}]; got {','.join(map(str, self.blocks))}."
            )

    def selects(self, block: int) -> bool:
        """Whether block ``block`` is analysed."""
        return self.blocks is None or block in self.blocks
