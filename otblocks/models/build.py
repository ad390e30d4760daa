"""``build_model``: the network a configuration describes (residual MLP or conv ResNet), initialised."""

from __future__ import annotations

import math

from torch import nn

from ..config import ModelConfig
from .conv import build_conv_model
from .cuts import module_bounds
from .heads import vector_head
from .init import init_weights
from .mlp import MLPBlock
from .net import BlockModule, BlockwiseNet

__all__ = ["build_model"]


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> BlockwiseNet:
    """The network described by ``cfg`` for inputs of ``input_shape`` and ``n_classes`` classes.

    ``kind = "resnet"``: :func:`otblocks.models.conv.build_conv_model`; ``kind = "mlp"``: residual
    MLP blocks. The weights are then initialised by ``cfg.init`` (:func:`init_weights`).
    """
    if cfg.kind == "resnet":
        net = build_conv_model(cfg, input_shape, n_classes)
    else:
        net = _build_mlp_model(cfg, input_shape, n_classes)
    init_weights(net, cfg.init, cfg.init_gain)
    return net


def _build_mlp_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> BlockwiseNet:
    d_in = math.prod(input_shape)
    stem: nn.Module = (
        nn.Identity()
        if d_in == cfg.width and len(input_shape) == 1
        else nn.Sequential(nn.Flatten(), nn.Linear(d_in, cfg.width))
    )
    blocks = [MLPBlock(cfg.width, cfg.hidden, cfg.activation) for _ in range(cfg.depth)]
    modules = [BlockModule(blocks[a:b]) for a, b in module_bounds(cfg)]
    heads = [vector_head(cfg.head, cfg.width, n_classes, cfg.head_hidden) for _ in modules]
    return BlockwiseNet(stem, modules, heads)
