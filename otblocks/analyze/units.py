r"""The units of a run analysis and their samples, from the one block walk.

A *unit* is a residual block, or a module of several blocks. With :math:`\psi_i` the block
boundaries of :func:`otblocks.walk.compute_features` on the chosen points, block :math:`i` is
the sample :math:`(\psi_i, \psi_{i+1})` and module :math:`k` (blocks :math:`a .. b-1`) the sample
:math:`(\psi_a, \psi_b)`, flattened to ``(n, d)`` float64.

A dimension-changing block (stride 2, more channels: :math:`T_i = P_i + g_i` with a
non-identity shortcut :math:`P_i`) cannot be compared with its input point to point. It is
analysed against its shortcut image: :math:`x_{in} = P_i(\psi_i)`, so that
:math:`x_{out} - x_{in} = g_i(\psi_i)` is exactly the residual the transport penalty charges
(``reference = "shortcut"``). Such a unit has no callable in the space of its :math:`x_{in}`
(the Jacobian test needs one). A module whose input and output dimensions differ is recorded
with a note and not measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..models import BlockwiseNet
from ..walk import Features

__all__ = ["Unit", "build_units", "flat"]


@dataclass(frozen=True)
class Unit:
    """One block or module with its samples.

    Attributes
    ----------
    kind : {'block', 'module'}
    index : int
        Block index, or module index.
    module : int
        The module the unit belongs to (its own index for a module).
    reference : {'input', 'shortcut'}
        What ``x_in`` is: the unit's true input, or the shortcut image of a dimension-changing block.
    x_in, x_out : ndarray of shape (n, d_in), (n, d_out)
        The samples, float64, row ``j`` at point ``j``.
    fn : callable or None
        The unit as a map of flattened ``(m, d_in)`` tensors (for the Jacobian test); ``None``
        when ``reference = "shortcut"``.
    """

    kind: str
    index: int
    module: int
    reference: str
    x_in: np.ndarray = field(repr=False)
    x_out: np.ndarray = field(repr=False)
    fn: Callable[[torch.Tensor], torch.Tensor] | None = field(repr=False, compare=False)

    @property
    def comparable(self) -> bool:
        """Whether ``x_in`` and ``x_out`` live in the same space (displacement, OT and Hölder defined)."""
        return self.x_in.shape == self.x_out.shape


def flat(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor ``(n, ...)`` as a float64 array ``(n, d)``."""
    return t.reshape(len(t), -1).to(torch.float64).numpy()


def _flat_fn(fn: Callable, shape_in: tuple[int, ...], device: torch.device) -> Callable:
    def on_flat(z: torch.Tensor) -> torch.Tensor:
        out = fn(z.to(device=device, dtype=torch.float32).reshape(-1, *shape_in)).flatten(1)
        return out.to(device=z.device)  # back where the caller's tensors are (the analysis probes on the CPU)

    return on_flat


def build_units(net: BlockwiseNet, features: Features, device: torch.device) -> list[Unit]:
    """Every block, then (when a module holds several blocks) every module, with its samples.

    ``features`` must be unreduced (no ``pool`` or ``project``): the units' callables act on the
    network's own tensors.
    """
    blocks = net.blocks()
    owner = features.module_of_block
    psi = [flat(b) for b in features.boundaries]  # psi[i]: (n, d_i)
    units = []
    for i, block in enumerate(blocks):
        if features.shapes[i] != features.shapes[i + 1] and i in features.shortcuts:
            units.append(Unit("block", i, owner[i], "shortcut", flat(features.shortcuts[i]), psi[i + 1], None))
        else:
            fn = _flat_fn(block, features.shapes[i], device)
            units.append(Unit("block", i, owner[i], "input", psi[i], psi[i + 1], fn))
    if any(len(m.blocks) > 1 for m in net.block_modules):
        for k, module in enumerate(net.block_modules):
            first = owner.index(k)
            last = len(owner) - 1 - owner[::-1].index(k)
            fn = _flat_fn(module, features.shapes[first], device)
            units.append(Unit("module", k, k, "input", psi[first], psi[last + 1], fn))
    return units
