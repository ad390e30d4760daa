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

Names, used the same way in the metrics records and ``summary.json``: the *transport cost*
:math:`c` (:func:`transport_cost`, record field ``transport_cost``), the *weight*
:math:`1/(2\tau)` (:func:`penalty_weight`) and the *penalty* :math:`c/(2\tau)`, the term
added to the loss (record field ``penalty``). :class:`Penalty` owns all three for a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .config import TransportConfig
from .schedules import TauSchedule, check_tau, tau_schedule

__all__ = ["Penalty", "penalty_weight", "transport_cost"]


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


class Penalty:
    r"""The transport penalty of every module of a run: cost, :math:`\tau`, weight, and the term added to the loss.

    The one owner of the penalty: the trainer (:class:`otblocks.training.Trainer`) holds one, and
    the pipeline's stages (:mod:`otblocks.distributed`) train through the trainer. For module
    :math:`k` at epoch :math:`e`,

    .. math::

        \mathrm{term}_k = w_k\, c_k, \qquad w_k = \frac{1}{2\tau_k(e)}
        \quad (w_k = 0 \text{ for } \tau = \infty),

    with :math:`c_k` of :func:`transport_cost`. With ``schedule = "multiplier"`` (method of
    multipliers, Uzawa) :math:`\tau_k` is a state :math:`\lambda_k` instead of a schedule:
    :math:`\lambda_k = \tau` at the start, and after every ``period`` (:math:`s`) optimizer
    steps of module :math:`k`

    .. math::

        \lambda_k \leftarrow \lambda_k + h\, \mathcal{L}_k,

    with :math:`h` = ``step`` and :math:`\mathcal{L}_k` the task loss (cross-entropy) of module
    :math:`k` on the batch of that step. The follow-up paper writes the weight as
    :math:`1/\lambda_k`; here :math:`\lambda_k` takes :math:`\tau`'s place in
    :math:`1/(2\tau)`, so that ``tau`` keeps its units. The task loss is positive, so
    :math:`\lambda_k` grows and the penalty relaxes as training goes on. :math:`\lambda_k` is
    part of :meth:`state_dict` (checkpoints) and recorded as ``tau`` in the metrics.

    Parameters
    ----------
    schedule : callable (k, epoch) -> tau
        :math:`\tau_k(e)`; with a multiplier, only ``schedule(k, 0)`` is used, as :math:`\lambda_k`'s start.
    n_modules : int
    form : {'kinetic', 'monge'}
    normalization : {'sample', 'element'}
    multiplier : (step, period) or None
        :math:`h > 0` and :math:`s \geq 1` of the method of multipliers.
    """

    def __init__(
        self,
        schedule: TauSchedule,
        n_modules: int,
        form: str = "kinetic",
        normalization: str = "sample",
        multiplier: tuple[float, int] | None = None,
    ) -> None:
        self.schedule = schedule
        self.n_modules = n_modules
        self.form = form
        self.normalization = normalization
        self.multiplier = multiplier
        self._lambdas: list[float] = []
        self._steps: list[int] = []
        if multiplier is not None:
            self._lambdas = [check_tau(schedule(k, 0), k, 0) for k in range(n_modules)]
            self._steps = [0] * n_modules

    @classmethod
    def from_config(cls, cfg: TransportConfig, n_modules: int, tau: float | TauSchedule | None = None) -> Penalty:
        r"""The penalty that ``cfg`` describes for :math:`K` = ``n_modules`` modules.

        ``tau`` (Python API) overrides ``cfg``'s :math:`\tau`: a number (every module, every
        epoch) or a callable ``(k, epoch) -> tau``.
        """
        if tau is None:
            schedule = tau_schedule(cfg, n_modules)
        elif callable(tau):
            schedule = tau
        elif isinstance(tau, (int, float)) and not isinstance(tau, bool):
            value = check_tau(tau, 0, 0)

            def schedule(k: int, epoch: int) -> float:
                return value

        else:
            raise TypeError(
                f"The 'tau' parameter of `train` must be a positive number, inf or a callable (k, epoch) -> tau; "
                f"got {type(tau).__name__} {tau!r}."
            )
        multiplier = (cfg.multiplier_step, cfg.multiplier_period) if cfg.schedule == "multiplier" else None
        return cls(schedule, n_modules, cfg.form, cfg.normalization, multiplier)

    def tau(self, k: int, epoch: int) -> float:
        r""":math:`\tau_k` at ``epoch`` (the current :math:`\lambda_k` with a multiplier)."""
        if self.multiplier is not None:
            return self._lambdas[k]
        return check_tau(self.schedule(k, epoch), k, epoch)

    def cost(self, x_in: torch.Tensor, x_out: torch.Tensor, residuals: Sequence[torch.Tensor]) -> torch.Tensor:
        """:func:`transport_cost` with this penalty's form and normalization, in float32 or wider."""
        return transport_cost(x_in, x_out, residuals, self.form, self.normalization).float()

    def evaluate(
        self, x_in: torch.Tensor, x_out: torch.Tensor, residuals: Sequence[torch.Tensor], tau: float
    ) -> tuple[torch.Tensor, torch.Tensor | float]:
        r"""The cost :math:`c` and the term :math:`c/(2\tau)` of one batch (the float 0.0 for :math:`\tau = \infty`).

        Without a penalty the cost is measured without building its graph.
        """
        weight = penalty_weight(tau)
        if not weight:
            with torch.no_grad():
                return self.cost(x_in, x_out, residuals), 0.0
        cost = self.cost(x_in, x_out, residuals)
        return cost, weight * cost

    def observe(self, k: int, task_loss: torch.Tensor) -> None:
        r"""Count one optimizer step of module ``k`` (task loss ``task_loss``); update the multiplier every ``period``.

        A no-op without a multiplier. The loss is read (one device sync) only when
        :math:`\lambda_k` changes.
        """
        if self.multiplier is None:
            return
        step, period = self.multiplier
        self._steps[k] += 1
        if self._steps[k] % period == 0:
            self._lambdas[k] += step * float(task_loss.detach())

    def state_dict(self) -> dict[str, Any]:
        """The multiplier state (:math:`\\lambda_k` and step counts of every module); empty lists without one."""
        return {"lambdas": list(self._lambdas), "steps": list(self._steps)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        n = len(state["lambdas"])
        self.load_module_states({k: {key: values[k] for key, values in state.items()} for k in range(n)})

    def module_state(self, k: int) -> dict[str, Any]:
        """Module ``k``'s part of :meth:`state_dict` (empty without a multiplier): what a pipeline rank checkpoints."""
        return {key: values[k] for key, values in self.state_dict().items() if values}

    def load_module_states(self, states: dict[int, dict[str, Any]]) -> None:
        """Restore :meth:`module_state` of the modules in ``states``; the others are left as they are."""
        for k, state in states.items():
            if self._lambdas and state:
                self._lambdas[k], self._steps[k] = float(state["lambdas"]), int(state["steps"])
