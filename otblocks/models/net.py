r"""A residual network cut into modules :math:`T_0, \dots, T_{K-1}`, one auxiliary head each.

Every residual block exposes ``shortcut(x)`` and ``residual(x)`` (the branch :math:`g`), and
``forward(x) = shortcut(x) + residual(x)``; the shortcut is the identity except in
dimension-changing blocks. A module :math:`T_k` is a run of consecutive blocks; the network's
``stem`` (input map) runs before module 0 and is trained with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

__all__ = ["BlockModule", "BlockwiseNet"]


class BlockModule(nn.Module):
    r"""Module :math:`T_k = (\mathrm{id} + g_{M-1}) \circ \dots \circ (\mathrm{id} + g_0)`."""

    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def forward_with_residuals(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        r"""The output and every block's residual :math:`g_m(\psi_m)`, computed once."""
        residuals = []
        for block in self.blocks:
            r = block.residual(x)
            residuals.append(r)
            x = block.shortcut(x) + r
        return x, residuals


class BlockwiseNet(nn.Module):
    r"""``stem`` followed by modules :math:`T_k`, with head :math:`F_k` after each.

    Parameters
    ----------
    stem : nn.Module
        Input map applied before module 0 (``nn.Identity`` for width-2 toys).
    block_modules : sequence of BlockModule
        The modules :math:`T_0, \dots, T_{K-1}`.
    heads : sequence of nn.Module
        The auxiliary classifiers :math:`F_0, \dots, F_{K-1}`.
    """

    def __init__(self, stem: nn.Module, block_modules: Sequence[BlockModule], heads: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(block_modules) != len(heads):
            raise ValueError(f"Need one head per module; got {len(block_modules)} modules and {len(heads)} heads.")
        self.stem = stem
        self.block_modules = nn.ModuleList(block_modules)
        self.heads = nn.ModuleList(heads)

    @property
    def n_modules(self) -> int:
        """Number of modules :math:`K`."""
        return len(self.block_modules)

    def blocks(self) -> list[nn.Module]:
        """Every residual block in order, as callables (for the OT analysis)."""
        return [block for module in self.block_modules for block in module.blocks]

    def module_of_block(self) -> list[int]:
        """For each block (in :meth:`blocks` order), the index of its module."""
        return [k for k, module in enumerate(self.block_modules) for _ in module.blocks]

    def trainable(self, k: int) -> Iterator[nn.Parameter]:
        """Parameters trained with module ``k``: the stem (for k = 0), :math:`T_k` and :math:`F_k`."""
        if k == 0:
            yield from self.stem.parameters()
        yield from self.block_modules[k].parameters()
        yield from self.heads[k].parameters()

    def module_input(self, x: torch.Tensor, k: int) -> torch.Tensor:
        r""":math:`G_{k-1}(x)`: the input of module ``k`` (the stem output for ``k = 0``)."""
        x = self.stem(x)
        for module in self.block_modules[:k]:
            x = module(x)
        return x

    def forward(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Logits of the head at ``depth`` (1..K modules; the last one by default)."""
        depth = self.n_modules if depth is None else depth
        if not 1 <= depth <= self.n_modules:
            raise ValueError(f"The 'depth' parameter must be in [1, {self.n_modules}]; got {depth}.")
        return self.heads[depth - 1](self.module_input(x, depth))

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every head, one forward pass."""
        x = self.stem(x)
        logits = []
        for module, head in zip(self.block_modules, self.heads, strict=True):
            x = module(x)
            logits.append(head(x))
        return logits
