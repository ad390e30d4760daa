"""``build_data``: the splits a configuration names, toy draws or image files."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from ..config import TOY_DATASETS, DataConfig
from .bundle import DataBundle
from .images import build_image_data
from .toy import make_toy

__all__ = ["build_data", "fresh_toy_points"]


def _toy_split(cfg: DataConfig, n: int, offset: int) -> TensorDataset:
    x, y = make_toy(cfg.name, n, cfg.noise, seed=cfg.seed * 1000 + offset, n_classes=cfg.n_classes)
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(y))


def fresh_toy_points(cfg: DataConfig, n: int) -> TensorDataset:
    """``n`` new points of the toy distribution ``cfg`` names, independent of its three splits.

    Drawn with the seed ``cfg.seed * 1000 + 3`` (the splits use offsets 0, 1, 2), so the same
    configuration and ``n`` give the same points; any ``n``, for measurements that need more
    points than the validation split holds.
    """
    if cfg.name not in TOY_DATASETS:
        raise ValueError(
            f"The 'cfg' parameter of `fresh_toy_points` must name a toy data set {sorted(TOY_DATASETS)}; "
            f"got {cfg.name!r}."
        )
    return _toy_split(cfg, n, 3)


def build_data(cfg: DataConfig) -> DataBundle:
    """Build the three splits named by ``cfg`` (toy draws, or image files under ``cfg.root``)."""
    if cfg.name in TOY_DATASETS:
        return DataBundle(
            train=_toy_split(cfg, cfg.n_train, 0),
            val=_toy_split(cfg, cfg.n_val, 1),
            test=_toy_split(cfg, cfg.n_test, 2),
            n_classes=cfg.n_classes,
            input_shape=(2,),
        )
    return build_image_data(cfg)
