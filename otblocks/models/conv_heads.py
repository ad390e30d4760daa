r"""Auxiliary classifiers :math:`F_k` on feature maps ``(n, C, H, W)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AvgPoolTo", "conv_head"]


class AvgPoolTo(nn.Module):
    """Average pooling of ``(n, C, H, W)`` maps to ``(n, C, size, size)``.

    Plain average pooling with ``(H / size, W / size)`` windows when they divide the map (its
    CUDA backward is deterministic, unlike adaptive pooling's), adaptive pooling otherwise;
    the two agree where both apply.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.size == 0 and w % self.size == 0:
            return F.avg_pool2d(x, (h // self.size, w // self.size))
        return F.adaptive_avg_pool2d(x, self.size)


def conv_head(kind: str, channels: int, n_classes: int, hidden: int, pool: int) -> nn.Module:
    r"""The head ``kind`` on ``channels``-channel feature maps.

    - ``linear``: global average pooling, linear layer.
    - ``mlp``: global average pooling, ``Linear(C, hidden)``, ReLU, ``Linear(hidden, n_classes)``.
    - ``conv``: the papers' head (from DGL): 3x3 convolution :math:`C \to C`, ReLU, adaptive
      average pooling to ``pool`` x ``pool``, BatchNorm, flatten, linear layer.
    """
    if kind == "linear":
        return nn.Sequential(AvgPoolTo(1), nn.Flatten(), nn.Linear(channels, n_classes))
    if kind == "mlp":
        return nn.Sequential(
            AvgPoolTo(1), nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )
    if kind == "conv":
        return nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            AvgPoolTo(pool),
            nn.BatchNorm2d(channels),
            nn.Flatten(),
            nn.Linear(channels * pool * pool, n_classes),
        )
    raise ValueError(f"The 'kind' parameter of `conv_head` must be one of {{'linear', 'mlp', 'conv'}}; got {kind!r}.")
