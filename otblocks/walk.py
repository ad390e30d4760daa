r"""The block walk of otblocks' own networks: which points, in which mode, every block boundary.

One walker and one point sampler serve ``otblocks analyze`` (:mod:`otblocks.analyze`) and
``otblocks features`` (:mod:`otblocks.features`), so the two see the same points for the same
``seed`` and ``n``, pushed through the network once.

- :func:`sample_points`: ``n`` points of a split, drawn without replacement by
  ``numpy.random.default_rng(seed).permutation`` and kept in the split's order.
- :func:`eval_mode`: a network (or any module) in eval mode for the duration of a block, its
  modes restored after (BatchNorm uses, and keeps, its running statistics).
- :func:`compute_features`: one forward pass in eval mode keeping every block boundary.

With :math:`\psi_0` the stem's output and :math:`\psi_{i+1} = T_i(\psi_i)` for the blocks
:math:`T_i = P_i + g_i` in order, block :math:`i` gets the sample :math:`(\psi_i, \psi_{i+1})`
and module :math:`k` (blocks :math:`a .. b-1`) the sample :math:`(\psi_a, \psi_b)`, all at the
same points. The blocks stay available as callables, ``net.blocks()[i]``, for Jacobian checks.

Dimension-changing blocks (stride 2, more channels) map :math:`\mathbb{R}^{d_i}` to another
space, so :math:`x_{in}` and :math:`x_{out}` cannot be compared point to point. For them the
shortcut image :math:`P_i(\psi_i)`, of the output's shape, is kept too: with it as the
reference the displacement :math:`x_{out} - P_i(x_{in}) = g_i(x_{in})` is exactly the residual
the transport penalty charges. ``reference = "input"`` (the default) gives the block's true
input; ``"shortcut"`` gives :math:`P_i(\psi_i)` for those blocks (and :math:`\psi_i` for the
others, whose shortcut is the identity).

Optional reductions, applied alike to every array of a given dimension (so that a block's
input and output, and consecutive blocks, stay comparable):

- ``pool = P``: feature maps ``(C, H, W)`` are average-pooled to ``(C, P, P)``;
- ``project = D``: features of dimension :math:`d > D` are mapped by a random Gaussian
  matrix :math:`W_d \in \mathbb{R}^{d \times D}` with entries :math:`\mathcal{N}(0, 1/D)`,
  one per :math:`d`, seeded by ``(seed, d)``, so squared distances are preserved in
  expectation (Johnson-Lindenstrauss); features of dimension :math:`\le D` are kept.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset, TensorDataset

from .data import iterate_batches
from .models import BlockwiseNet

__all__ = ["Features", "collect_features", "compute_features", "eval_mode", "sample_points"]


def sample_points(dataset: Dataset, n: int, seed: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """``n`` points of ``dataset`` without replacement: their positions, inputs and labels.

    The positions are the first ``n`` of ``numpy.random.default_rng(seed).permutation(len(dataset))``,
    sorted, so the points keep the dataset's order; the same ``(seed, n)`` gives the same points
    to every command.

    Returns
    -------
    indices : ndarray of int64, shape (n,)
    x : torch.Tensor of shape (n, ...)
    y : torch.Tensor of shape (n,)
    """
    total = len(dataset)
    if not 1 <= n <= total:
        raise ValueError(f"The 'n' parameter of `sample_points` must be an int in [1, {total}]; got {n}.")
    indices = np.sort(np.random.default_rng(seed).permutation(total)[:n]).astype(np.int64)
    if isinstance(dataset, TensorDataset):
        x_all, y_all = dataset.tensors
        index = torch.from_numpy(indices)
        return indices, x_all[index], y_all[index]
    xs, ys = zip(*iterate_batches(Subset(dataset, indices.tolist()), 512), strict=True)
    return indices, torch.cat(xs), torch.cat(ys)


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``module`` and all its submodules in eval mode inside the block; every mode restored after."""
    saved = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in saved:
            m.training = training


@dataclass(frozen=True)
class Features:
    r"""Every block boundary of a network on the same points, reduced alike.

    Attributes
    ----------
    boundaries : list of torch.Tensor
        :math:`\psi_0, \dots, \psi_B` (``B`` blocks), float32 on the CPU, each ``(n, ...)``.
    shortcuts : dict of int to torch.Tensor
        :math:`P_i(\psi_i)` for the blocks ``i`` whose shortcut is not the identity, of the
        shape of ``boundaries[i + 1]``.
    labels : torch.Tensor or None
        int64 ``(n,)`` when the data carried labels.
    module_of_block : list of int
        Module index of every block.
    shapes : list of tuple of int
        Per-sample shape of every boundary before reduction.
    pool, project : int or None
        The reductions applied (see the module docstring).
    seed : int
        Seed of the random projections.
    """

    boundaries: list[torch.Tensor]
    shortcuts: dict[int, torch.Tensor]
    labels: torch.Tensor | None
    module_of_block: list[int]
    shapes: list[tuple[int, ...]]
    pool: int | None
    project: int | None
    seed: int

    @property
    def n_blocks(self) -> int:
        return len(self.boundaries) - 1

    def block(self, i: int, reference: str = "input") -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_in, x_out)`` of block ``i``; ``reference = "shortcut"`` puts :math:`P_i(x_{in})` first."""
        if reference not in ("input", "shortcut"):
            raise ValueError(
                "The 'reference' parameter of `Features.block` must be one of {'input', 'shortcut'}; "
                f"got {reference!r}."
            )
        x_in = self.shortcuts.get(i, self.boundaries[i]) if reference == "shortcut" else self.boundaries[i]
        return x_in, self.boundaries[i + 1]

    def module(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(x_in, x_out)`` of module ``k``: :math:`(G_{k-1}(x), G_k(x))`."""
        blocks = [i for i, m in enumerate(self.module_of_block) if m == k]
        if not blocks:
            last = max(self.module_of_block)
            raise ValueError(f"The 'k' parameter of `Features.module` must be in [0, {last}]; got {k}.")
        return self.boundaries[blocks[0]], self.boundaries[blocks[-1] + 1]


class _Reducer:
    """Pooling then random projection, the same for every tensor of a given dimension."""

    def __init__(self, pool: int | None, project: int | None, seed: int) -> None:
        self.pool, self.project, self.seed = pool, project, seed
        self._matrices: dict[int, torch.Tensor] = {}

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach().float()
        if self.pool is not None and t.dim() == 4:
            t = F.adaptive_avg_pool2d(t, self.pool)
        t = t.cpu().contiguous()
        d = math.prod(t.shape[1:])
        if self.project is None or d <= self.project:
            return t
        if d not in self._matrices:
            generator = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, d]).generate_state(1)[0]))
            self._matrices[d] = torch.randn(d, self.project, generator=generator) / math.sqrt(self.project)
        return t.reshape(len(t), d) @ self._matrices[d]  # (n, D)


def _input_batches(data: Any, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    if isinstance(data, torch.Tensor):
        for start in range(0, len(data), batch_size):
            yield data[start : start + batch_size], None
    elif isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        yield from iterate_batches(TensorDataset(*data), batch_size)
    elif isinstance(data, Dataset):
        yield from iterate_batches(data, batch_size)
    elif isinstance(data, Iterable):
        for batch in data:
            yield (batch, None) if isinstance(batch, torch.Tensor) else (batch[0], batch[1])
    else:
        raise TypeError(
            "The 'data' parameter of `compute_features` must be a tensor of inputs, a tuple (x, y) of tensors, "
            f"a Dataset or an iterable of (x, y) batches (e.g. a DataLoader); got {type(data).__name__}."
        )


@torch.no_grad()
def compute_features(
    net: BlockwiseNet,
    data: Any,
    *,
    pool: int | None = None,
    project: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> Features:
    r"""Run ``net`` in eval mode on ``data`` and keep every block boundary (one forward pass).

    Parameters
    ----------
    net : BlockwiseNet
    data : torch.Tensor (n, ...), tuple (x, y), Dataset, or iterable of (x, y) batches
        The points, raw (the stem is applied first).
    pool : int, optional
        Average-pool feature maps to ``pool`` x ``pool``.
    project : int, optional
        Randomly project features of dimension above ``project`` down to ``project``.
    seed : int
        Seed of the projections.
    batch_size : int
        Points per forward pass (eval mode: it does not change the result).
    device : str or torch.device, optional
        Where to run; by default the device of ``net``'s parameters.

    Notes
    -----
    Memory: the ``B + 1`` boundaries of all points are kept, after reduction, as float32 on
    the CPU; for large feature maps pool or project, or take fewer points.
    """
    if pool is not None and pool < 1:
        raise ValueError(f"The 'pool' parameter of `compute_features` must be a positive int or None; got {pool}.")
    if project is not None and project < 1:
        raise ValueError(
            f"The 'project' parameter of `compute_features` must be a positive int or None; got {project}."
        )
    device = torch.device(device) if device is not None else next(net.parameters()).device
    reduce = _Reducer(pool, project, seed)
    blocks = net.blocks()
    parts: list[list[torch.Tensor]] = [[] for _ in range(len(blocks) + 1)]
    shortcut_parts: dict[int, list[torch.Tensor]] = {}
    labels: list[torch.Tensor] = []
    shapes: list[tuple[int, ...]] = []
    with eval_mode(net):
        for x, y in _input_batches(data, batch_size):
            h = net.stem(x.to(device))
            shapes = [tuple(h.shape[1:])]
            parts[0].append(reduce(h))
            for i, block in enumerate(blocks):
                p = block.shortcut(h)
                if p is not h:
                    shortcut_parts.setdefault(i, []).append(reduce(p))
                h = block(h)
                shapes.append(tuple(h.shape[1:]))
                parts[i + 1].append(reduce(h))
            if y is not None:
                labels.append(torch.as_tensor(y).cpu())
    if not parts[0]:
        raise ValueError("The 'data' parameter of `compute_features` must hold at least one point; got none.")
    return Features(
        boundaries=[torch.cat(p) for p in parts],
        shortcuts={i: torch.cat(p) for i, p in shortcut_parts.items()},
        labels=torch.cat(labels).long() if labels else None,
        module_of_block=net.module_of_block(),
        shapes=shapes,
        pool=pool,
        project=project,
        seed=seed,
    )


def collect_features(
    net: BlockwiseNet, data: Any, *, reference: str = "input", **kwargs: Any
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x_in, x_out)`` of every block in order (``kwargs`` as in :func:`compute_features`).

    ``reference = "shortcut"`` replaces the input of dimension-changing blocks by their
    shortcut image (see the module docstring).

    Examples
    --------
    >>> import torch
    >>> from otblocks import build_model, load_config
    >>> net = build_model(load_config(None).model, (2,), 2)
    >>> pairs = list(collect_features(net, torch.randn(5, 2)))
    >>> len(pairs), tuple(pairs[0][0].shape)
    (8, (5, 2))
    """
    features = compute_features(net, data, **kwargs)
    for i in range(features.n_blocks):
        yield features.block(i, reference)
