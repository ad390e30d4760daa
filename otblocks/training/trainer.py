r"""The block-wise trainer: the four regimes over one network, checkpointed epoch by epoch.

Module :math:`k` minimises, over its blocks and head :math:`F_k`,

.. math::

    \mathcal{L}(F_k, T_k(G_{k-1}(x))) + \frac{1}{2\tau_k}\, c_k(x)

with :math:`c_k` the transport cost of :mod:`otblocks.transport`.

- ``sequential``: module :math:`k` trains after modules :math:`< k`, which are frozen (eval
  mode, no gradients). Without augmentation their outputs on the training set are computed
  once per module (``train.cache_frozen``, within ``train.cache_budget_mb``).
- ``multilap``: the same, in ``laps`` passes; optimizers and schedulers persist across laps.
- ``parallel``: each batch goes through all modules; module :math:`k` receives the previous
  output *detached* and steps its own optimizer on its own loss.
- ``e2e``: one loss, the last head's cross-entropy plus every module's penalty, back-propagated
  through everything. The intermediate heads are trained as probes on detached features, so
  every depth can be evaluated without changing the end-to-end gradient.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..config import RunConfig
from ..data import DataBundle, iterate_batches
from ..errors import NonFiniteLossError
from ..models import BlockwiseNet
from ..schedules import TauSchedule, check_tau
from ..transport import penalty_weight, transport_cost
from .evaluate import evaluate_depths
from .memory import peak_memory_bytes, reset_peak_memory
from .optim import make_optimizer, make_scheduler
from .plan import WorkItem, make_plan
from .stats import Accumulator, EpochStats

__all__ = ["Trainer", "best_depth", "seed_for", "RECORD_TIMING_KEYS"]

Record = dict[str, Any]

RECORD_TIMING_KEYS = ("seconds", "peak_memory_bytes")
"""Metric record fields that measure the machine rather than the run; they differ between repeats."""


def seed_for(*keys: int) -> int:
    """A 63-bit seed derived from integers (NumPy's ``SeedSequence``), e.g. (seed, lap, k, epoch)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint64)[0] >> 1)


@dataclass
class _ModuleOpt:
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None = None
    seconds: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "seconds": list(self.seconds),
            "peaks": list(self.peaks),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.seconds = list(state["seconds"])
        self.peaks = list(state["peaks"])


class Trainer:
    """Runs the plan of a regime over ``net``, one epoch (:class:`WorkItem`) at a time.

    Parameters
    ----------
    config : RunConfig
    net : BlockwiseNet
        Already on ``device``.
    data : DataBundle or None
        ``None`` on a pipeline stage that receives its inputs from another rank
        (:mod:`otblocks.distributed`); then only :meth:`module_step` trains.
    device : torch.device
    schedule : callable (k, epoch) -> tau
        The :math:`\\tau` of module ``k`` at its epoch ``epoch``.
    """

    def __init__(
        self,
        config: RunConfig,
        net: BlockwiseNet,
        data: DataBundle | None,
        device: torch.device,
        schedule: TauSchedule,
    ) -> None:
        self.config = config
        self.net = net
        self.data = data
        self.device = device
        self.schedule = schedule
        tr = config.train
        self.plan: list[WorkItem] = make_plan(tr.regime, net.n_modules, tr.epochs, tr.laps)
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=tr.label_smoothing)
        groups = [list(net.parameters())] if tr.regime == "e2e" else [list(net.trainable(k)) for k in range(net.n_modules)]
        use_scaler = tr.amp == "fp16" and device.type == "cuda"
        self.opts = [
            _ModuleOpt(
                make_optimizer(params, tr),
                None,  # type: ignore[arg-type]
                torch.amp.GradScaler("cuda") if use_scaler else None,
            )
            for params in groups
        ]
        for opt in self.opts:
            opt.scheduler = make_scheduler(opt.optimizer, tr, tr.epochs)
        self._autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(tr.amp)
        self._cache: tuple[tuple[int, int], TensorDataset | None] | None = None

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Model, optimizers, schedulers and grad scalers (not the position; see :func:`run`)."""
        return {"model": self.net.state_dict(), "opts": [o.state_dict() for o in self.opts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        for opt, s in zip(self.opts, state["opts"]):
            opt.load_state_dict(s)

    # ----------------------------------------------------------------- helpers
    def tau(self, k: int, epoch: int) -> float:
        return check_tau(self.schedule(k, epoch), k, epoch)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self._autocast_dtype is None or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self._autocast_dtype)

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        if self.config.train.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _batches(self, item: WorkItem, dataset: Dataset | None = None):
        """Shuffled training batches of ``item`` (of ``dataset``, the training set by default), on the device.

        The order depends only on the seed and the item, so cached frozen outputs come in the
        same batches as the images they were computed from.
        """
        tr = self.config.train
        seed = seed_for(tr.seed, item.lap, 0 if item.module is None else item.module + 1, item.epoch)
        dataset = self.data.train if dataset is None else dataset
        pin = self.device.type == "cuda"
        for x, y in iterate_batches(dataset, tr.batch_size, shuffle=True, seed=seed, workers=tr.workers, pin_memory=pin):
            yield self._to_device(x, y)

    def _frozen_outputs(self, item: WorkItem) -> TensorDataset | None:
        r"""The cached :math:`G_{k-1}(x)` of the whole training set for ``item``, or ``None``.

        Cached when ``train.cache_frozen``, the training set is not augmented and the outputs
        fit in ``train.cache_budget_mb`` MiB; computed once per (lap, module), in eval mode,
        in order, kept on the training device. Otherwise the caller recomputes them batch by
        batch.
        """
        tr, k = self.config.train, item.module
        if not tr.cache_frozen or self.data.augmented or not k:
            return None
        key = (item.lap, k)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        self._cache = None  # release the previous module's outputs first
        dataset = self.data.train
        x0, _ = self._to_device(*next(iterate_batches(dataset, 1)))
        with torch.no_grad(), self._autocast():
            probe = self.net.module_input(x0, k)
        if len(dataset) * probe.numel() * probe.element_size() > tr.cache_budget_mb * 2**20:
            self._cache = (key, None)
            return None
        outputs, labels = [], []
        for x, y in iterate_batches(dataset, tr.eval_batch_size, pin_memory=self.device.type == "cuda"):
            x, _ = self._to_device(x, y)
            with torch.no_grad(), self._autocast():
                outputs.append(self.net.module_input(x, k))
            labels.append(y)
        self._cache = (key, TensorDataset(torch.cat(outputs), torch.cat(labels)))
        return self._cache[1]

    def _module_inputs(self, item: WorkItem):
        """Batches ``(G_{k-1}(x), y)`` for module ``k = item.module``: cached, or computed under no_grad."""
        k = item.module
        cached = self._frozen_outputs(item)
        if cached is not None:
            yield from self._batches(item, cached)
            return
        for x, y in self._batches(item):
            if k > 0:
                with torch.no_grad(), self._autocast():
                    x = self.net.module_input(x, k)
            yield x, y

    def _backward_step(self, opt: _ModuleOpt, loss: torch.Tensor) -> None:
        if opt.scaler is not None:
            opt.scaler.scale(loss).backward()
            opt.scaler.step(opt.optimizer)
            opt.scaler.update()
        else:
            loss.backward()
            opt.optimizer.step()

    def module_step(self, k: int, x_in: torch.Tensor, y: torch.Tensor, tau: float, acc: Accumulator) -> torch.Tensor:
        """One optimizer step of module ``k`` on its own loss; returns its detached output.

        ``x_in`` is the raw input for ``k = 0`` (the stem is trained with module 0) and the
        previous module's output otherwise; no gradient flows back into it.
        """
        net, t = self.net, self.config.transport
        opt = self.opts[k]
        opt.optimizer.zero_grad(set_to_none=True)
        weight = penalty_weight(tau)
        with self._autocast():
            h = net.stem(x_in) if k == 0 else x_in.detach()
            out, residuals = net.block_modules[k].forward_with_residuals(h)
            logits = net.heads[k](out)
            task = self.criterion(logits.float(), y)
            with contextlib.nullcontext() if weight else torch.no_grad():
                cost = transport_cost(h, out, residuals, t.form, t.normalization).float()
            loss = task + weight * cost if weight else task
        self._backward_step(opt, loss)
        acc.add(task, weight * cost if weight else 0.0, cost, logits, y)
        return out.detach()

    def _e2e_step(self, x: torch.Tensor, y: torch.Tensor, taus: Sequence[float], accs: Sequence[Accumulator]) -> None:
        net, t = self.net, self.config.transport
        opt = self.opts[0]
        opt.optimizer.zero_grad(set_to_none=True)
        last = net.n_modules - 1
        with self._autocast():
            h = net.stem(x)
            total = torch.zeros((), device=self.device)
            for k, (module, head) in enumerate(zip(net.block_modules, net.heads)):
                out, residuals = module.forward_with_residuals(h)
                weight = penalty_weight(taus[k])
                with contextlib.nullcontext() if weight else torch.no_grad():
                    cost = transport_cost(h, out, residuals, t.form, t.normalization).float()
                logits = head(out if k == last else out.detach())
                task = self.criterion(logits.float(), y)
                total = total + task + (weight * cost if weight else 0.0)
                accs[k].add(task, weight * cost if weight else 0.0, cost, logits, y)
                h = out
        self._backward_step(opt, total)

    def _set_modes(self, active: int | None) -> None:
        """Train mode for the active module (all for ``None``), eval mode for frozen ones."""
        net = self.net
        if active is None:
            net.train()
            return
        net.eval()
        net.block_modules[active].train()
        net.heads[active].train()
        if active == 0:
            net.stem.train()

    # ----------------------------------------------------------------- one epoch
    def run_item(self, item: WorkItem) -> list[Record]:
        """Train one epoch of the plan; return its metric records (train, then val)."""
        net = self.net
        reset_peak_memory(self.device)
        start = time.perf_counter()
        modules = range(net.n_modules) if item.module is None else [item.module]
        taus = [self.tau(k, item.epoch) for k in range(net.n_modules)]
        opt_of = (lambda k: self.opts[0]) if self.config.train.regime == "e2e" else (lambda k: self.opts[k])
        lrs = {k: opt_of(k).optimizer.param_groups[0]["lr"] for k in modules}
        accs = {k: Accumulator() for k in modules}
        self._set_modes(item.module)
        if item.module is not None:
            k = item.module
            for x, y in self._module_inputs(item):
                self.module_step(k, x, y, taus[k], accs[k])
        elif self.config.train.regime == "parallel":
            for x, y in self._batches(item):
                for k in modules:
                    x = self.module_step(k, x, y, taus[k], accs[k])
        else:
            for x, y in self._batches(item):
                self._e2e_step(x, y, taus, accs)
        train_stats = {k: accs[k].result() for k in modules}
        for k, stats in train_stats.items():
            if not stats.finite:
                lap = f", lap {item.lap}" if self.config.train.regime == "multilap" else ""
                raise NonFiniteLossError(
                    f"Non-finite training loss ({stats.loss}) in module {k} at epoch {item.epoch}{lap}; "
                    "training stopped and the last good checkpoint is kept."
                )
        train_seconds = time.perf_counter() - start
        train_peak = peak_memory_bytes(self.device)
        for k in modules:
            opt_of(k).seconds.append(train_seconds / (len(modules) if item.module is None else 1))
        for opt in {id(opt_of(k)): opt_of(k) for k in modules}.values():
            opt.scheduler.step()
            opt.optimizer.zero_grad(set_to_none=True)  # no gradient memory held between epochs
            opt.peaks.append(train_peak)

        reset_peak_memory(self.device)
        eval_start = time.perf_counter()
        upto = max(modules)
        val = evaluate_depths(
            net, self.data.val, batch_size=self.config.train.eval_batch_size, device=self.device,
            transport=self.config.transport, taus=taus, upto=upto, workers=self.config.train.workers,
        )
        eval_seconds = time.perf_counter() - eval_start
        eval_peak = peak_memory_bytes(self.device)
        records = [
            self._record(item, k, "train", train_stats[k], taus[k], lrs[k], train_seconds, train_peak) for k in modules
        ]
        records += [self._record(item, k, "val", val[k], taus[k], lrs[k], eval_seconds, eval_peak) for k in modules]
        return records

    def _record(
        self, item: WorkItem, k: int, split: str, stats: EpochStats, tau: float, lr: float, seconds: float, peak: int
    ) -> Record:
        return {
            "regime": self.config.train.regime,
            "lap": item.lap,
            "module": k,
            "epoch": item.epoch,
            "split": split,
            "loss": stats.loss,
            "task_loss": stats.task_loss,
            "transport": stats.transport,
            "kinetic": stats.kinetic,
            "accuracy": stats.accuracy,
            "n": stats.n,
            "tau": tau,
            "lr": lr,
            "seconds": seconds,
            "peak_memory_bytes": peak,
        }

    # ----------------------------------------------------------------- final evaluation
    def final_evaluation(self) -> dict[str, list[EpochStats]]:
        """Every depth on validation and test, with the taus of each module's last epoch."""
        last_epoch = self.config.train.epochs - 1
        taus = [self.tau(k, last_epoch) for k in range(self.net.n_modules)]
        kwargs = dict(
            batch_size=self.config.train.eval_batch_size, device=self.device, transport=self.config.transport,
            taus=taus, workers=self.config.train.workers,
        )
        return {split: evaluate_depths(self.net, self.data.split(split), **kwargs) for split in ("val", "test")}

    def seconds_per_epoch(self) -> list[float]:
        """Mean training seconds per epoch of each module (e2e: the whole network's)."""
        return [float(np.mean(o.seconds)) if o.seconds else math.nan for o in self.opts]

    def peak_memory_by_module(self) -> list[int]:
        """Peak memory while training each module (e2e: the whole network; parallel: every
        module gets its epochs' peak, all modules being in memory together); 0 if untrained.
        See :mod:`otblocks.training.memory` for what is measured."""
        return [max(o.peaks, default=0) for o in self.opts]


def best_depth(val: Sequence[EpochStats]) -> int:
    """1-based depth with the highest validation accuracy; ties go to the lower validation loss, then the shallower depth."""
    order = sorted(range(len(val)), key=lambda k: (-val[k].accuracy, val[k].task_loss, k))
    return order[0] + 1

