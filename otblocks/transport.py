r"""The transport (kinetic-energy) penalty of a module.

For module :math:`k` with blocks :math:`\mathrm{id} + g_m`, :math:`\psi_0 = G_{k-1}(x)` and
:math:`\psi_{m+1} = \psi_m + g_m(\psi_m)`, the penalty added to the module's loss is

.. math::

    \frac{1}{2\tau}\, c(x), \qquad
    c_{\mathrm{kinetic}} = \frac{1}{B}\sum_{i=1}^{B}\sum_{m<M} \lVert g_m(\psi^i_m)\rVert_2^2,
    \qquad
    c_{\mathrm{monge}} = \frac{1}{B}\sum_{i=1}^{B} \lVert T_k(\psi^i_0) - \psi^i_0\rVert_2^2,

where :math:`B` is the batch size and the squared norms sum over all feature dimensions
(``normalization = "sample"``). With ``normalization = "element"`` each squared norm is
replaced by the mean of the squared entries over the batch and the feature dimensions (the
authors' code), so :math:`c` is divided by the number of features :math:`D` of each block.
The shortcut of a dimension-changing block is never penalised: only :math:`g_m` enters.
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["transport_cost", "penalty_weight"]


class _SumOfSquares(torch.autograd.Function):
    r""":math:`\sum_j t_j^2` in float32 or wider, with the one-pass gradient :math:`2 t`.

    The backward is one multiplication over :math:`t`, where autograd's ``t.pow(2)`` followed
    by sums builds the power's derivative and the broadcast gradient first; the penalty's share
    of a training step is measured by ``benchmarks/bench_trainer.py``. Half-precision residuals
    (autocast) are summed in float32.
    """

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(t)
        return torch.linalg.vector_norm(t, dtype=torch.promote_types(t.dtype, torch.float32)).square()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (t,) = ctx.saved_tensors
        return t * (2.0 * grad).to(t.dtype)


def _squared(t: torch.Tensor, normalization: str) -> torch.Tensor:
    total = _SumOfSquares.apply(t)
    return total / (t.shape[0] if normalization == "sample" else t.numel())


def transport_cost(
    x_in: torch.Tensor,
    x_out: torch.Tensor,
    residuals: Sequence[torch.Tensor],
    form: str = "kinetic",
    normalization: str = "sample",
) -> torch.Tensor:
    r"""The cost :math:`c` of one module on one batch (a scalar tensor).

    Parameters
    ----------
    x_in, x_out : torch.Tensor, shape (B, ...)
        The module's input :math:`\psi_0` and output :math:`T_k(\psi_0)`.
    residuals : sequence of torch.Tensor
        :math:`g_m(\psi_m)` for every block of the module.
    form : {'kinetic', 'monge'}
    normalization : {'sample', 'element'}
    """
    if form == "monge":
        if x_in.shape != x_out.shape:
            raise ValueError(
                f"The 'monge' transport form needs a module whose input and output shapes agree; "
                f"got {tuple(x_in.shape)} -> {tuple(x_out.shape)}. Use form = 'kinetic'."
            )
        return _squared(x_out - x_in, normalization)
    if form != "kinetic":
        raise ValueError(f"The 'form' parameter must be one of {{'kinetic', 'monge'}}; got {form!r}.")
    return torch.stack([_squared(r, normalization) for r in residuals]).sum()


def penalty_weight(tau: float) -> float:
    r"""The weight :math:`1/(2\tau)` of the cost (0 for :math:`\tau = \infty`)."""
    return 0.0 if tau == float("inf") else 1.0 / (2.0 * tau)
