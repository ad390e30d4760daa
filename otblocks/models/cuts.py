"""Where a network of ``depth`` blocks is cut into modules."""

from __future__ import annotations

import itertools

from ..config import ModelConfig

__all__ = ["module_bounds"]


def module_bounds(cfg: ModelConfig) -> list[tuple[int, int]]:
    """``(first, end)`` block indices of every module, from ``split_points`` or ``blocks_per_module``."""
    if cfg.split_points:
        edges = [0, *cfg.split_points, cfg.depth]
    else:
        edges = list(range(0, cfg.depth + 1, cfg.blocks_per_module))
    return list(itertools.pairwise(edges))
