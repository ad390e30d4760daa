r"""Convolutional residual networks for images, made of pre-activation basic blocks.

A block maps :math:`x` of shape ``(n, C_in, H, W)`` to

.. math::

    T(x) = P(x) + g(x), \qquad
    g = \mathrm{conv}_{3\times3} \circ \mathrm{ReLU} \circ \mathrm{BN} \circ
        \mathrm{conv}_{3\times3,\,s} \circ \mathrm{ReLU} \circ \mathrm{BN},

where :math:`s` is the stride and :math:`P` the shortcut: the identity when the shape is kept,
otherwise a 1x1 convolution of stride :math:`s` (``projection``) or average pooling by
:math:`s` followed by zero channels (``pad``, parameter-free). There is no activation after
the sum, so every block is exactly "shortcut plus residual" and the transport penalty sees
only :math:`g` (the pre-activation ResNet of He et al., 2016).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .conv_heads import conv_head
from .cuts import module_bounds
from .net import BlockModule, BlockwiseNet

__all__ = ["BasicBlock", "PadShortcut", "block_layout", "build_conv_model"]


class PadShortcut(nn.Module):
    r"""Parameter-free shortcut: average pooling by ``stride``, then ``c_out - c_in`` zero channels."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        if c_out < c_in:
            raise ValueError(f"The 'c_out' parameter of `PadShortcut` must be >= c_in = {c_in}; got {c_out}.")
        self.extra = c_out - c_in
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride, ceil_mode=True)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra)) if self.extra else x


class BasicBlock(nn.Module):
    r"""Pre-activation basic block :math:`T(x) = P(x) + g(x)` (see the module docstring).

    Parameters
    ----------
    c_in, c_out : int
        Channels of the input and the output.
    stride : int
        Stride of the first convolution (2 halves the height and width).
    shortcut : {'projection', 'pad'}
        :math:`P` when the shape changes; the identity otherwise.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, shortcut: str = "projection") -> None:
        super().__init__()
        self.g = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        )
        if c_in == c_out and stride == 1:
            self.proj: nn.Module = nn.Identity()
        elif shortcut == "projection":
            self.proj = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
        elif shortcut == "pad":
            self.proj = PadShortcut(c_in, c_out, stride)
        else:
            raise ValueError(
                f"The 'shortcut' parameter of `BasicBlock` must be one of {{'projection', 'pad'}}; got {shortcut!r}."
            )

    @property
    def changes_shape(self) -> bool:
        """Whether the shortcut is not the identity (stride or channels change)."""
        return not isinstance(self.proj, nn.Identity)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch :math:`g(x)`, shape ``(n, c_out, H/s, W/s)``."""
        return self.g(x)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """The shortcut :math:`P(x)`, of the output's shape; never penalised."""
        return self.proj(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) + self.g(x)


def block_layout(cfg: ModelConfig) -> list[tuple[int, int, int]]:
    """``(c_in, c_out, stride)`` of every block, from the stem and stage settings of ``cfg``."""
    stages = list(zip(cfg.stage_blocks, cfg.stage_channels, strict=True)) or [(cfg.depth, cfg.stem_channels)]
    layout, c_in = [], cfg.stem_channels
    for i, (n_blocks, c_out) in enumerate(stages):
        for j in range(n_blocks):
            layout.append((c_in, c_out, 2 if i > 0 and j == 0 else 1))
            c_in = c_out
    return layout


def build_conv_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> BlockwiseNet:
    """The conv ResNet of ``cfg`` for images of ``input_shape = (C, H, W)``, cut into modules."""
    if len(input_shape) != 3:
        raise ValueError(
            f"The 'input_shape' parameter of `build_conv_model` must be (C, H, W); got {tuple(input_shape)}."
        )
    stem = nn.Conv2d(input_shape[0], cfg.stem_channels, 3, padding=1, bias=False)
    layout = block_layout(cfg)
    blocks = [BasicBlock(c_in, c_out, stride, cfg.shortcut) for c_in, c_out, stride in layout]
    bounds = module_bounds(cfg)
    modules = [BlockModule(blocks[a:b]) for a, b in bounds]
    heads = [conv_head(cfg.head, layout[b - 1][1], n_classes, cfg.head_hidden, cfg.head_pool) for _, b in bounds]
    return BlockwiseNet(stem, modules, heads)
