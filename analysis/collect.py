"""Per-block input/output samples of any sequence of blocks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._callables import as_tensor_for, eval_mode
from ._results import Result
from ._validation import check_array, check_callable, check_int

__all__ = ["collect_blocks", "BlockSample"]


@dataclass(frozen=True, eq=False)
class BlockSample(Result):
    """One block's inputs and outputs at the same points.

    Attributes
    ----------
    index : int
        Position of the block in the sequence (0 for the first).
    x_in : ndarray of shape (n, d_in)
        Inputs of the block, flattened per sample, float64, read-only.
    x_out : ndarray of shape (n, d_out)
        Outputs at the same points, in the same order (read-only; the same array as the
        next block's ``x_in``).
    """

    index: int
    x_in: np.ndarray
    x_out: np.ndarray


def collect_blocks(blocks, x, batch_size=1024):
    r"""Run blocks one after the other and keep every block's inputs and outputs.

    With :math:`\psi_0 = x` and :math:`\psi_{k+1} = T_k(\psi_k)`, block ``k`` gets the
    sample :math:`(\psi_k, \psi_{k+1})`, each flattened to ``(n, d)`` float64.

    Parameters
    ----------
    blocks : sequence of callable
        The blocks :math:`T_0, T_1, \dots` in application order: torch modules or functions
        mapping an ``(n, ...)`` tensor to an ``(n, ...)`` tensor.
    x : array-like or torch.Tensor of shape (n, ...)
        Inputs of the first block. Converted to the device and floating dtype of the first
        parameter found in the modules (float64 on its own device when there is none).
    batch_size : int, default=1024
        Points per forward pass.

    Returns
    -------
    list of BlockSample
        One per block, in order.

    Notes
    -----
    Runs under ``torch.no_grad()`` with every module in eval mode (restored afterwards), so
    BatchNorm uses and keeps its running statistics. Blocks must act on each sample
    independently (true of residual blocks in eval mode), otherwise the batch size changes
    the result. Memory: one float64 ``(n, d)`` array per block boundary (consecutive
    samples share it).

    Examples
    --------
    >>> import torch
    >>> from analysis import collect_blocks
    >>> samples = collect_blocks([lambda h: 2 * h, lambda h: h + 1], torch.zeros(3, 2))
    >>> samples[1].x_in[0].tolist(), samples[1].x_out[0].tolist()
    ([0.0, 0.0], [1.0, 1.0])
    """
    func = "collect_blocks"
    if not isinstance(blocks, Sequence) or isinstance(blocks, (str, bytes)) or not blocks:
        raise TypeError(
            f"The 'blocks' parameter of `{func}` must be a non-empty sequence of callables; "
            f"got {type(blocks).__name__}"
            + (" of length 0." if isinstance(blocks, Sequence) and not blocks else ".")
        )
    for k, block in enumerate(blocks):
        check_callable(block, name=f"blocks[{k}]", func=func)
    check_array(x, name="x", func=func, min_samples=1, max_ndim=None)
    batch_size = check_int(batch_size, name="batch_size", func=func, low=1)

    h_all = as_tensor_for(blocks, x)
    n = h_all.shape[0]
    boundaries = [[] for _ in range(len(blocks) + 1)]
    with torch.no_grad(), eval_mode(blocks):
        for start in range(0, n, batch_size):
            h = h_all[start:start + batch_size]
            boundaries[0].append(_flat(h))
            for k, block in enumerate(blocks):
                out = block(h)
                if not isinstance(out, torch.Tensor) or out.shape[:1] != h.shape[:1]:
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)
                    raise ValueError(
                        f"The 'blocks[{k}]' parameter of `{func}` must return a tensor of "
                        f"shape ({h.shape[0]}, ...) for an input of shape {tuple(h.shape)}; "
                        f"got {got}."
                    )
                boundaries[k + 1].append(_flat(out))
                h = out
    arrays = [np.concatenate(parts) for parts in boundaries]
    for a in arrays:
        a.setflags(write=False)
    return [BlockSample(index=k, x_in=arrays[k], x_out=arrays[k + 1]) for k in range(len(blocks))]


def _flat(t: torch.Tensor) -> np.ndarray:
    return t.detach().reshape(t.shape[0], -1).to(device="cpu", dtype=torch.float64).numpy()
