"""Residual networks cut into modules, each with its auxiliary classifier."""

from .build import build_model
from .cuts import module_bounds
from .init import init_weights
from .mlp import MLPBlock
from .net import BlockModule, BlockwiseNet

__all__ = ["BlockModule", "BlockwiseNet", "MLPBlock", "build_model", "init_weights", "module_bounds"]
