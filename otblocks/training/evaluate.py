"""Evaluation of every depth's auxiliary classifier on a split, in one forward pass."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..data import iterate_batches
from ..models import BlockwiseNet
from ..transport import Penalty
from ..walk import eval_mode
from .stats import Accumulator, EpochStats

__all__ = ["evaluate_depths", "evaluate_module"]


@torch.no_grad()
def evaluate_depths(
    net: BlockwiseNet,
    dataset: Dataset,
    *,
    batch_size: int,
    device: torch.device,
    penalty: Penalty,
    taus: Sequence[float],
    upto: int | None = None,
    workers: int = 0,
) -> list[EpochStats]:
    r"""Statistics of heads :math:`F_0 .. F_{\mathrm{upto}}` (all by default) on ``dataset``.

    The network runs in eval mode; its previous train/eval flags are restored afterwards.
    ``task_loss`` is the plain cross-entropy (no label smoothing); ``taus[k]`` gives module
    ``k``'s penalty term.
    """
    upto = net.n_modules - 1 if upto is None else upto
    accs = [Accumulator() for _ in range(upto + 1)]
    with eval_mode(net):
        for x, y in iterate_batches(dataset, batch_size, workers=workers, pin_memory=device.type == "cuda"):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            h = net.stem(x)
            for k in range(upto + 1):
                h = evaluate_module(net, k, h, y, penalty, taus[k], accs[k])
    return [a.result() for a in accs]


@torch.no_grad()
def evaluate_module(
    net: BlockwiseNet, k: int, h: torch.Tensor, y: torch.Tensor, penalty: Penalty, tau: float, acc: Accumulator
) -> torch.Tensor:
    """Add module ``k``'s statistics on one batch to ``acc``; return its output.

    ``h`` is the module's input (the stem output for ``k = 0``); the caller sets eval mode.
    """
    out, residuals = net.block_modules[k].forward_with_residuals(h)
    cost, term = penalty.evaluate(h, out, residuals, tau)
    logits = net.heads[k](out).float()
    acc.add(F.cross_entropy(logits, y), term, cost, logits, y)
    return out
