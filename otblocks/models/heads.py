r"""Auxiliary classifiers :math:`F_k` for vector features."""

from __future__ import annotations

from torch import nn

from .mlp import activation

__all__ = ["vector_head"]


def vector_head(kind: str, width: int, n_classes: int, hidden: int, act: str = "relu") -> nn.Module:
    """A ``linear`` head or an ``mlp`` head (one hidden layer) on ``(n, width)`` features."""
    if kind == "linear":
        return nn.Linear(width, n_classes)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(width, hidden), activation(act), nn.Linear(hidden, n_classes))
    raise ValueError(f"The 'head' parameter must be one of {{'linear', 'mlp'}} for vector data; got {kind!r}.")
