r"""Which rank trains which modules: consecutive runs of modules, balanced by a cost.

In a pipeline the slowest stage sets the pace, so the default placement minimises the largest
per-rank cost

.. math::

    \min_{0 = b_0 < b_1 < \dots < b_P = K} \; \max_{r < P} \sum_{b_r \le k < b_{r+1}} c_k

where

- :math:`K` is the number of modules and :math:`P` the number of ranks (:math:`P \le K`);
- rank :math:`r` owns modules :math:`b_r, \dots, b_{r+1} - 1`;
- :math:`c_k` is the cost of module :math:`k` (its stem included for :math:`k = 0`): its
  parameter count (``distributed.balance = "parameters"``), or the measured seconds of one
  training step on one batch (``"time"``).

Among placements with the same largest cost, the earlier ranks take fewer modules (rank 0 also
reads the data).
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..config import DistributedConfig, RunConfig
from ..data import DataBundle, iterate_batches
from ..errors import ConfigError
from ..models import BlockwiseNet
from ..training import Trainer
from ..training.stats import Accumulator

__all__ = ["Placement", "balanced_placement", "choose_placement", "measured_costs", "parameter_costs"]


@dataclass(frozen=True)
class Placement:
    """How many consecutive modules each rank owns.

    Attributes
    ----------
    counts : tuple of int
        ``counts[r]`` modules for rank ``r``; all positive.

    Examples
    --------
    >>> Placement((1, 3)).modules(1)
    range(1, 4)
    """

    counts: tuple[int, ...]

    @property
    def n_ranks(self) -> int:
        return len(self.counts)

    @property
    def n_modules(self) -> int:
        return sum(self.counts)

    def modules(self, rank: int) -> range:
        """The modules of ``rank``."""
        start = sum(self.counts[:rank])
        return range(start, start + self.counts[rank])


def balanced_placement(costs: Sequence[float], n_ranks: int) -> Placement:
    r"""The placement minimising the largest per-rank sum of ``costs`` (see the module docstring).

    Parameters
    ----------
    costs : sequence of float, shape (K,)
        Non-negative cost of every module.
    n_ranks : int
        :math:`P`, at most :math:`K`.

    Examples
    --------
    >>> balanced_placement([4, 1, 1, 1, 1], 2).counts
    (1, 4)
    >>> balanced_placement([1, 1, 1], 2).counts
    (1, 2)
    """
    n = len(costs)
    if not 1 <= n_ranks <= n:
        raise ValueError(f"The 'n_ranks' parameter of `balanced_placement` must be in [1, {n}]; got {n_ranks}.")
    prefix = [0.0]
    for c in costs:
        prefix.append(prefix[-1] + float(c))

    def part(i: int, j: int) -> float:
        return prefix[j] - prefix[i]

    # best[p][j]: the smallest largest cost of the first j modules on p ranks
    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(n_ranks + 1)]
    best[0][0] = 0.0
    for p in range(1, n_ranks + 1):
        for j in range(p, n + 1):
            best[p][j] = min(max(best[p - 1][i], part(i, j)) for i in range(p - 1, j))
    target = best[n_ranks][n]
    # from the last rank back, give each rank as many modules as the target allows
    counts, end = [], n
    for p in range(n_ranks, 0, -1):
        start = min(i for i in range(p - 1, end) if max(best[p - 1][i], part(i, end)) <= target)
        counts.append(end - start)
        end = start
    return Placement(tuple(reversed(counts)))


def parameter_costs(net: BlockwiseNet) -> list[float]:
    """Parameters trained with each module (the stem counts for module 0)."""
    return [float(sum(p.numel() for p in net.trainable(k))) for k in range(net.n_modules)]


def measured_costs(
    config: RunConfig,
    net: BlockwiseNet,
    data: DataBundle,
    device: torch.device,
    repeats: int = 3,
) -> list[float]:
    """Median seconds of one training step of each module, on one training batch, on ``device``.

    Steps a copy of ``net`` (whose optimizers are thrown away) after one warm-up step, so
    neither ``net`` nor the global random state change. The whole network must fit on
    ``device``.
    """
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        probe = Trainer(config, copy.deepcopy(net).to(device), data, device)  # its own penalty: multipliers untouched
        x, y = next(iterate_batches(data.train, config.train.batch_size))
        x, y = x.to(device), y.to(device)
        times: list[list[float]] = [[] for _ in range(net.n_modules)]
        for repeat in range(repeats + 1):
            h = x
            for k in range(net.n_modules):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                h = probe.module_step(k, h, y, 0, Accumulator())
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if repeat:
                    times[k].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def choose_placement(cfg: DistributedConfig, n_ranks: int, n_modules: int, costs: Sequence[float] | None) -> Placement:
    """``distributed.placement`` when given, else :func:`balanced_placement` of ``costs``.

    Raises
    ------
    ConfigError
        When the explicit placement has not one entry per rank, or there are more ranks than modules.
    """
    if n_ranks > n_modules:
        raise ConfigError(
            f"A pipeline needs at least one module per rank: {n_modules} modules for {n_ranks} ranks; launch at most "
            f"{n_modules} processes or cut the network into more modules (model.blocks_per_module, model.split_points)."
        )
    if cfg.placement:
        if len(cfg.placement) != n_ranks:
            raise ConfigError(
                f"The 'distributed.placement' config key must have one entry per rank ({n_ranks} ranks); "
                f"got {list(cfg.placement)}."
            )
        return Placement(tuple(cfg.placement))
    if costs is None:
        raise ValueError("The 'costs' parameter of `choose_placement` is needed when no placement is configured.")
    return balanced_placement(costs, n_ranks)
