r"""The block-wise trainer: the four regimes over one network, checkpointed epoch by epoch.

Module :math:`k` minimises, over its blocks and head :math:`F_k`,

.. math::

    \mathcal{L}(F_k, T_k(G_{k-1}(x))) + \frac{1}{2\tau_k}\, c_k(x)

with :math:`c_k` the transport cost of :mod:`otblocks.transport`; the trainer's
:class:`~otblocks.transport.Penalty` owns :math:`\tau_k`, the weight and the term.

- ``sequential``: module :math:`k` trains after modules :math:`< k`, which are frozen (eval
  mode, no gradients). Without augmentation their outputs on the training set are computed
  once per module (``train.cache_frozen``, within ``train.cache_budget_mb``).
- ``multilap``: the same, in ``laps`` passes; optimizers and schedulers persist across laps.
- ``parallel``: each batch goes through all modules; module :math:`k` receives the previous
  output *detached* and steps its own optimizer on its own loss.
- ``e2e``: one loss, the last head's cross-entropy plus every module's penalty, back-propagated
  through everything. The intermediate heads are trained as probes on detached features, so
  every depth can be evaluated without changing the end-to-end gradient.

Validation after an epoch (every ``train.eval_every`` epochs) evaluates only the heads that
trained: in ``sequential`` and ``multilap`` the current head :math:`F_k`, on the validation
set's :math:`G_{k-1}(x)`, kept from module :math:`k-1`'s last validation of the lap (its
outputs) within ``train.cache_budget_mb``; the frozen modules are not recomputed. Heads of
frozen modules do not change, so the depth table is the last record of every module; the
summary's table is computed once at the end (:meth:`Trainer.final_evaluation`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..config import RunConfig
from ..data import DataBundle, iterate_batches
from ..errors import NonFiniteLossError
from ..models import BlockwiseNet
from ..transport import Penalty
from ..walk import eval_mode
from .evaluate import evaluate_depths, evaluate_module
from .memory import peak_memory_bytes, reset_peak_memory
from .optim import make_optimizer, make_scheduler
from .plan import WorkItem, make_plan
from .stats import Accumulator, EpochStats, penalty_ratio

__all__ = ["RECORD_KEYS", "RECORD_TIMING_KEYS", "Trainer", "best_depth", "seed_for", "upgrade_record"]

Record = dict[str, Any]

RECORD_TIMING_KEYS = ("seconds", "peak_memory_bytes")
"""Metric record fields that measure the machine rather than the run; they differ between repeats."""

RECORD_KEYS = (
    "regime",
    "lap",
    "module",
    "epoch",
    "split",
    "loss",
    "task_loss",
    "penalty",
    "transport_cost",
    "penalty_ratio",
    "accuracy",
    "n",
    "tau",
    "lr",
    *RECORD_TIMING_KEYS,
)
r"""The fields of a metric record (``metrics.jsonl``), in order. ``penalty`` is the term
:math:`c/(2\tau)` added to the loss, ``transport_cost`` the cost :math:`c`, ``penalty_ratio``
``penalty / task_loss``; ``tau`` is the module's :math:`\tau` at the end of the epoch (with
``transport.schedule = "multiplier"``, the multiplier :math:`\lambda_k`). Records written before
these names (``transport`` for the penalty, ``kinetic`` for the cost) are read by
:func:`upgrade_record`."""

_RENAMED_RECORD_KEYS = {"transport": "penalty", "kinetic": "transport_cost"}


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """A metric record of an older run directory with the current field names (``penalty_ratio`` computed)."""
    record = {_RENAMED_RECORD_KEYS.get(key, key): value for key, value in record.items()}
    if "penalty_ratio" not in record and "penalty" in record:
        record["penalty_ratio"] = penalty_ratio(record["penalty"], record["task_loss"])
    return record


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
    penalty : Penalty, optional
        The transport penalty; by default ``Penalty.from_config(config.transport, net.n_modules)``.
        Its state (the multiplier) is part of :meth:`state_dict`.
    """

    def __init__(
        self,
        config: RunConfig,
        net: BlockwiseNet,
        data: DataBundle | None,
        device: torch.device,
        penalty: Penalty | None = None,
    ) -> None:
        self.config = config
        self.net = net
        self.data = data
        self.device = device
        self.penalty = Penalty.from_config(config.transport, net.n_modules) if penalty is None else penalty
        tr = config.train
        self.plan: list[WorkItem] = make_plan(tr.regime, net.n_modules, tr.epochs, tr.laps)
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=tr.label_smoothing)
        per_module = [list(net.trainable(k)) for k in range(net.n_modules)]
        groups = [list(net.parameters())] if tr.regime == "e2e" else per_module
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
        self._val_cache: tuple[tuple[int, int], TensorDataset | None] | None = None

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Model, optimizers, schedulers, grad scalers and the penalty's state (not the position; see :func:`run`)."""
        return {
            "model": self.net.state_dict(),
            "opts": [o.state_dict() for o in self.opts],
            "penalty": self.penalty.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        for opt, s in zip(self.opts, state["opts"], strict=True):
            opt.load_state_dict(s)
        if "penalty" in state:  # checkpoints written before the multiplier schedule have none
            self.penalty.load_state_dict(state["penalty"])

    # ----------------------------------------------------------------- helpers
    def tau(self, k: int, epoch: int) -> float:
        r""":math:`\tau` of module ``k`` at ``epoch`` (see :meth:`Penalty.tau`)."""
        return self.penalty.tau(k, epoch)

    def opt_of(self, k: int) -> _ModuleOpt:
        """The optimizer, scheduler and timings that train module ``k`` (e2e: the one of the whole network)."""
        return self.opts[0] if self.config.train.regime == "e2e" else self.opts[k]

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self._autocast_dtype is None or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self._autocast_dtype)

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        if self.config.train.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def train_batches(self, item: WorkItem, dataset: Dataset | None = None):
        """Shuffled training batches of ``item`` (of ``dataset``, the training set by default), on the device.

        The order depends only on the seed and the item, so cached frozen outputs come in the
        same batches as the images they were computed from.
        """
        tr = self.config.train
        seed = seed_for(tr.seed, item.lap, 0 if item.module is None else item.module + 1, item.epoch)
        dataset = self.data.train if dataset is None else dataset
        pin = self.device.type == "cuda"
        batches = iterate_batches(dataset, tr.batch_size, shuffle=True, seed=seed, workers=tr.workers, pin_memory=pin)
        for x, y in batches:
            yield self._to_device(x, y)

    def _fits(self, dataset: Dataset, probe: torch.Tensor) -> bool:
        return len(dataset) * probe.numel() * probe.element_size() <= self.config.train.cache_budget_mb * 2**20

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
        if not self._fits(dataset, probe):
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
            yield from self.train_batches(item, cached)
            return
        for x, y in self.train_batches(item):
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

    def module_step(self, k: int, x_in: torch.Tensor, y: torch.Tensor, epoch: int, acc: Accumulator) -> torch.Tensor:
        """One optimizer step of module ``k`` at its epoch ``epoch`` on its own loss; returns its detached output.

        ``x_in`` is the raw input for ``k = 0`` (the stem is trained with module 0) and the
        previous module's output otherwise; no gradient flows back into it.
        """
        net, penalty = self.net, self.penalty
        opt = self.opts[k]
        opt.optimizer.zero_grad(set_to_none=True)
        tau = penalty.tau(k, epoch)
        with self._autocast():
            h = net.stem(x_in) if k == 0 else x_in.detach()
            out, residuals = net.block_modules[k].forward_with_residuals(h)
            logits = net.heads[k](out)
            task = self.criterion(logits.float(), y)
            cost, term = penalty.evaluate(h, out, residuals, tau)
            loss = task + term
        self._backward_step(opt, loss)
        penalty.observe(k, task)
        acc.add(task, term, cost, logits, y)
        return out.detach()

    def e2e_step(self, x: torch.Tensor, y: torch.Tensor, epoch: int, accs: Sequence[Accumulator]) -> None:
        """One optimizer step of the whole network (``e2e``) at epoch ``epoch``: the last head's loss plus
        every module's penalty; the other heads train as probes on detached features."""
        net, penalty = self.net, self.penalty
        opt = self.opts[0]
        opt.optimizer.zero_grad(set_to_none=True)
        last = net.n_modules - 1
        tasks = []
        with self._autocast():
            h = net.stem(x)
            total = torch.zeros((), device=self.device)
            for k, (module, head) in enumerate(zip(net.block_modules, net.heads, strict=True)):
                out, residuals = module.forward_with_residuals(h)
                cost, term = penalty.evaluate(h, out, residuals, penalty.tau(k, epoch))
                logits = head(out if k == last else out.detach())
                task = self.criterion(logits.float(), y)
                total = total + task + term
                accs[k].add(task, term, cost, logits, y)
                tasks.append(task)
                h = out
        self._backward_step(opt, total)
        for k, task in enumerate(tasks):
            penalty.observe(k, task)

    def set_modes(self, active: int | None) -> None:
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
        """Train one epoch of the plan, validate when due; return its metric records (train, then val)."""
        net = self.net
        reset_peak_memory(self.device)
        start = time.perf_counter()
        modules = range(net.n_modules) if item.module is None else [item.module]
        lrs = {k: self.opt_of(k).optimizer.param_groups[0]["lr"] for k in modules}
        accs = {k: Accumulator() for k in modules}
        self.set_modes(item.module)
        if item.module is not None:
            k = item.module
            for x, y in self._module_inputs(item):
                self.module_step(k, x, y, item.epoch, accs[k])
        elif self.config.train.regime == "parallel":
            for x, y in self.train_batches(item):
                for k in modules:
                    x = self.module_step(k, x, y, item.epoch, accs[k])
        else:
            for x, y in self.train_batches(item):
                self.e2e_step(x, y, item.epoch, accs)
        train = {k: accs[k].result() for k in modules}
        train_seconds = time.perf_counter() - start
        train_peak = peak_memory_bytes(self.device)
        self.end_epoch(item, train, train_seconds, train_peak)

        val, eval_seconds, eval_peak = {}, 0.0, 0
        if self.validates(item):
            reset_peak_memory(self.device)
            eval_start = time.perf_counter()
            val = self._validate(item, modules)
            eval_seconds = time.perf_counter() - eval_start
            eval_peak = peak_memory_bytes(self.device)
        lrs_taus = {k: (lrs[k], self.tau(k, item.epoch)) for k in modules}
        return self.records(item, train, val, lrs_taus, (train_seconds, train_peak), (eval_seconds, eval_peak))

    def end_epoch(self, item: WorkItem, train: dict[int, EpochStats], seconds: float, peak: int) -> None:
        """After the training pass of ``item`` over modules ``train``: stop on a non-finite loss, else
        step the schedulers and record the time and memory of each module."""
        for k, stats in train.items():
            if not stats.finite:
                lap = f", lap {item.lap}" if self.config.train.regime == "multilap" else ""
                kept = (
                    "the last good checkpoint is kept"
                    if self.plan.index(item) >= self.config.train.checkpoint_every
                    else "no checkpoint had been written yet"
                )
                raise NonFiniteLossError(
                    f"Non-finite training loss ({stats.loss}) in module {k} at epoch {item.epoch}{lap}; "
                    f"training stopped and {kept}."
                )
        for k in train:
            self.opt_of(k).seconds.append(seconds / len(train))
        for opt in {id(self.opt_of(k)): self.opt_of(k) for k in train}.values():
            opt.scheduler.step()
            opt.optimizer.zero_grad(set_to_none=True)  # no gradient memory held between epochs
            opt.peaks.append(peak)

    def validates(self, item: WorkItem) -> bool:
        """Whether the validation records of ``item`` are due: every ``train.eval_every`` epochs of a
        module, and always at its last epoch of a lap."""
        return (item.epoch + 1) % self.config.train.eval_every == 0 or self._last_of_lap(item)

    def _last_of_lap(self, item: WorkItem) -> bool:
        """Whether ``item`` is its module's last epoch of the lap (of the run in ``parallel`` and ``e2e``)."""
        tr = self.config.train
        return (item.epoch + 1) % (tr.epochs // (tr.laps if tr.regime == "multilap" else 1)) == 0

    def _validate(self, item: WorkItem, modules: Sequence[int]) -> dict[int, EpochStats]:
        """Validation statistics of the heads of ``modules`` (one module trains: its head, from cached inputs)."""
        tr = self.config.train
        if item.module is None:
            taus = [self.tau(k, item.epoch) for k in range(self.net.n_modules)]
            val = evaluate_depths(
                self.net,
                self.data.val,
                batch_size=tr.eval_batch_size,
                device=self.device,
                penalty=self.penalty,
                taus=taus,
                workers=tr.workers,
            )
            return {k: val[k] for k in modules}
        k = item.module
        inputs = self._val_inputs(item) if tr.cache_frozen else None
        if inputs is None:  # not cached, or over the budget: through the frozen modules, batch by batch
            taus = [self.tau(j, item.epoch) for j in range(k + 1)]
            return {
                k: evaluate_depths(
                    self.net,
                    self.data.val,
                    batch_size=tr.eval_batch_size,
                    device=self.device,
                    penalty=self.penalty,
                    taus=taus,
                    upto=k,
                    workers=tr.workers,
                )[k]
            }
        keep = k + 1 < self.net.n_modules and self._last_of_lap(item)  # module k's outputs are module k + 1's inputs
        tau = self.tau(k, item.epoch)
        stats, outputs = _evaluate_head(self.net, k, inputs, tr.eval_batch_size, self.penalty, tau, keep)
        if keep:
            fits = self._fits(outputs, outputs[0][0][:1])
            self._val_cache = ((item.lap, k + 1), outputs if fits else None)
        return {k: stats}

    def _val_inputs(self, item: WorkItem) -> TensorDataset | None:
        r"""The validation set's :math:`G_{k-1}(x)` for module ``k = item.module`` (the raw images for
        ``k = 0``, whose stem trains), or ``None`` beyond ``train.cache_budget_mb``.

        Kept from module ``k - 1``'s validation at its last epoch of the lap (its outputs, no
        extra pass), else (the first module of a lap, a resumed run) computed in eval mode, in
        batches of ``train.eval_batch_size`` as the depth-by-depth evaluation does: same numbers.
        """
        k, key, tr = item.module, (item.lap, item.module), self.config.train
        if self._val_cache is not None and self._val_cache[0] == key:
            return self._val_cache[1]
        self._val_cache = None
        # k = 0: the images themselves (the stem trains with module 0)
        step = (lambda x: x) if k == 0 else (lambda x: self.net.module_input(x, k))
        with torch.no_grad(), eval_mode(self.net):
            probe = step(next(iterate_batches(self.data.val, 1))[0].to(self.device))
        if not self._fits(self.data.val, probe):
            self._val_cache = (key, None)
            return None
        outputs, labels = [], []
        with torch.no_grad(), eval_mode(self.net):
            for x, y in iterate_batches(self.data.val, tr.eval_batch_size, pin_memory=self.device.type == "cuda"):
                outputs.append(step(x.to(self.device, non_blocking=True)))
                labels.append(y.to(self.device, non_blocking=True))
        self._val_cache = (key, TensorDataset(torch.cat(outputs), torch.cat(labels)))
        return self._val_cache[1]

    def records(
        self,
        item: WorkItem,
        train: dict[int, EpochStats],
        val: dict[int, EpochStats],
        lrs_taus: dict[int, tuple[float, float]],
        train_cost: tuple[float, int],
        eval_cost: tuple[float, int],
    ) -> list[Record]:
        """The metric records of one epoch: a ``train`` record per module of ``train``, then a ``val``
        record per module of ``val`` (``lrs_taus[k]``: the module's learning rate during the epoch and
        :math:`\\tau` at its end; the costs: seconds and peak memory of each pass)."""

        def record(k: int, split: str, stats: EpochStats, cost: tuple[float, int]) -> Record:
            lr, tau = lrs_taus[k]
            values = (
                self.config.train.regime,
                item.lap,
                k,
                item.epoch,
                split,
                stats.loss,
                stats.task_loss,
                stats.penalty,
                stats.transport_cost,
                stats.penalty_ratio,
                stats.accuracy,
                stats.n,
                tau,
                lr,
                *cost,
            )
            return dict(zip(RECORD_KEYS, values, strict=True))

        return [record(k, "train", s, train_cost) for k, s in train.items()] + [
            record(k, "val", s, eval_cost) for k, s in val.items()
        ]

    # ----------------------------------------------------------------- final evaluation
    def final_evaluation(self) -> dict[str, list[EpochStats]]:
        """Every depth on validation and test, with the taus of each module's last epoch."""
        last_epoch = self.config.train.epochs - 1
        taus = [self.tau(k, last_epoch) for k in range(self.net.n_modules)]
        kwargs = {
            "batch_size": self.config.train.eval_batch_size,
            "device": self.device,
            "penalty": self.penalty,
            "taus": taus,
            "workers": self.config.train.workers,
        }
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
    """1-based depth with the highest validation accuracy; ties: the lower validation loss, then the shallower depth."""
    order = sorted(range(len(val)), key=lambda k: (-val[k].accuracy, val[k].task_loss, k))
    return order[0] + 1


@torch.no_grad()
def _evaluate_head(
    net: BlockwiseNet, k: int, inputs: TensorDataset, batch_size: int, penalty: Penalty, tau: float, keep: bool
) -> tuple[EpochStats, TensorDataset | None]:
    """Statistics of head ``k`` on cached module inputs (the stem applied first for ``k = 0``), in
    eval mode; with ``keep``, also module ``k``'s outputs and the labels."""
    acc, outputs, labels = Accumulator(), [], []
    with eval_mode(net):
        for h, y in iterate_batches(inputs, batch_size):
            if k == 0:
                h = net.stem(h)
            out = evaluate_module(net, k, h, y, penalty, tau, acc)
            if keep:
                outputs.append(out)
                labels.append(y)
    return acc.result(), TensorDataset(torch.cat(outputs), torch.cat(labels)) if keep else None
