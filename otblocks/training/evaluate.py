"""Evaluation of every depth's auxiliary classifier on a split, in one forward pass."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..config import TransportConfig
from ..data import iterate_batches
from ..models import BlockwiseNet
from ..transport import penalty_weight, transport_cost
from .stats import Accumulator, EpochStats

__all__ = ["evaluate_depths", "evaluate_module"]


@torch.no_grad()
def evaluate_depths(
    net: BlockwiseNet,
    dataset: Dataset,
    *,
    batch_size: int,
    device: torch.device,
    transport: TransportConfig,
    taus: Sequence[float],
    upto: int | None = None,
    workers: int = 0,
) -> list[EpochStats]:
    r"""Statistics of heads :math:`F_0 .. F_{\mathrm{upto}}` (all by default) on ``dataset``.

    The network runs in eval mode; its previous train/eval flags are restored afterwards.
    ``task_loss`` is the plain cross-entropy (no label smoothing).
    """
    upto = net.n_modules - 1 if upto is None else upto
    was_training = [m.training for m in net.modules()]
    net.eval()
    accs = [Accumulator() for _ in range(upto + 1)]
    try:
        for x, y in iterate_batches(dataset, batch_size, workers=workers, pin_memory=device.type == "cuda"):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            h = net.stem(x)
            for k in range(upto + 1):
                h = evaluate_module(net, k, h, y, transport, taus[k], accs[k])
    finally:
        for m, flag in zip(net.modules(), was_training):
            m.train(flag)
    return [a.result() for a in accs]


@torch.no_grad()
def evaluate_module(
    net: BlockwiseNet, k: int, h: torch.Tensor, y: torch.Tensor, transport: TransportConfig, tau: float, acc: Accumulator
) -> torch.Tensor:
    """Add module ``k``'s statistics on one batch to ``acc``; return its output.

    ``h`` is the module's input (the stem output for ``k = 0``); the caller sets eval mode.
    """
    out, residuals = net.block_modules[k].forward_with_residuals(h)
    cost = transport_cost(h, out, residuals, transport.form, transport.normalization)
    logits = net.heads[k](out).float()
    acc.add(F.cross_entropy(logits, y), penalty_weight(tau) * cost, cost, logits, y)
    return out
