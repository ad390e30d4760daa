r"""Residual MLP blocks for vector data: :math:`x \mapsto x + g(x)`."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLPBlock", "activation"]


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (``tanh``, ``relu`` or ``gelu``)."""
    return {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}[name]()


class MLPBlock(nn.Module):
    r"""A residual block :math:`T(x) = x + g(x)`, :math:`g(x) = W_2\,\sigma(W_1 x + b_1) + b_2`.

    Parameters
    ----------
    width : int
        Dimension :math:`d` of the block's input and output.
    hidden : int
        Hidden units of :math:`g`.
    act : str
        Activation :math:`\sigma`.
    """

    def __init__(self, width: int, hidden: int, act: str = "tanh") -> None:
        super().__init__()
        self.g = nn.Sequential(nn.Linear(width, hidden), activation(act), nn.Linear(hidden, width))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch :math:`g(x)`, shape ``(n, d)``."""
        return self.g(x)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """The identity shortcut."""
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)
