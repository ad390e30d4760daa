r"""One rank's part of the pipeline: consecutive modules, trained on what the previous rank sends.

A *pass* moves every batch of one split through the pipeline once: rank 0 reads the batches,
every rank applies its modules and sends the detached output (with the labels) to the next
rank. In a training pass each module takes one optimizer step per batch on its own loss
(:meth:`otblocks.training.Trainer.module_step`), exactly as in the single-process ``parallel``
regime; in an evaluation pass the modules only accumulate statistics, in eval mode.

Back-pressure: rank :math:`r` sends batch :math:`i` only when fewer than ``max_in_flight``
batches it sent are still waiting in rank :math:`r+1`'s inbox; rank :math:`r+1` returns a
credit when it takes a batch out to train on it, so the next batch travels while it computes.
At the end of a pass every credit has come back, so no batch is in flight between passes.

Why pipelining leaves the result unchanged: module :math:`k` sees the outputs of module
:math:`k-1` in batch order, each computed by module :math:`k-1` before its own step on that
batch, whatever the interleaving of the ranks in time. Its sequence of inputs, hence of
parameters, is the single-process one for any ``max_in_flight``. Replay (``replay > 0``)
breaks this on purpose: how many replayed steps fit in the waits depends on timing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..config import DistributedConfig
from ..models import BlockwiseNet
from ..training import EpochStats, Trainer, WorkItem
from ..training.evaluate import evaluate_module
from ..training.stats import Accumulator
from .comm import ABORT, BATCH, CREDIT, END, FINAL, Link, Outgoing
from .failure import Fault, PeerLost
from .mailbox import Mailbox
from .replay import ReplayBuffer

__all__ = ["Stage", "StageStats", "owned_parts"]

Batch = tuple[torch.Tensor, torch.Tensor]


def owned_parts(net: BlockwiseNet, modules: range) -> list[nn.Module]:
    """The sub-modules of ``net`` that a stage of ``modules`` trains: the stem with module 0, then blocks and heads."""
    return ([net.stem] if 0 in modules else []) + [
        part for k in modules for part in (net.block_modules[k], net.heads[k])
    ]


@dataclass
class StageStats:
    """What a stage did, summed over the run (``pipeline.json``).

    Attributes
    ----------
    batches_in, batches_out : int
        Batches received from the previous rank and sent to the next.
    max_in_flight_in : int
        Most batches received from the previous rank and waiting in the inbox at one time.
    max_in_flight_out : int
        Most batches sent to the next rank and not yet taken by it at one time.
    replay_steps : int
        Training steps on replayed batches.
    wait_seconds : float
        Time spent waiting for the neighbours, replayed steps excluded.
    train_cpu_seconds : float
        CPU time of the whole process (every thread: training, receiving, the transport's own)
        during the training passes; with a core per rank, the largest over the ranks bounds the
        training time from below.
    """

    batches_in: int = 0
    batches_out: int = 0
    max_in_flight_in: int = 0
    max_in_flight_out: int = 0
    replay_steps: int = 0
    wait_seconds: float = 0.0
    train_cpu_seconds: float = 0.0


class Stage:
    """Modules ``modules`` of ``trainer.net`` on this rank, between two links.

    Parameters
    ----------
    trainer : Trainer
        Owns the network, the per-module optimizers and the step; only the modules of this
        stage are used (and on this rank's device).
    modules : range
        Consecutive module indices; the stem goes with module 0.
    rank : int
    upstream, downstream : Link or None
        The previous and next ranks (``None`` at the ends of the pipeline).
    cfg : DistributedConfig
        ``max_in_flight`` and ``replay``.
    report : callable (exception) -> object
        Records a failure for the other ranks (:meth:`otblocks.distributed.launch.World.report`);
        called before the neighbours are told to abort, so that they name this failure.
    fault : Fault or None
        Test-only fault injection (see :mod:`otblocks.distributed.failure`).
    """

    def __init__(
        self,
        trainer: Trainer,
        modules: range,
        rank: int,
        upstream: Link | None,
        downstream: Link | None,
        cfg: DistributedConfig,
        report: Callable[[BaseException], object],
        fault: Fault | None = None,
    ) -> None:
        self.trainer = trainer
        self.modules = modules
        self.rank = rank
        self.upstream = upstream
        self.downstream = downstream
        self.max_in_flight = cfg.max_in_flight
        self.buffer = ReplayBuffer(cfg.max_in_flight, cfg.replay)
        self.report = report
        self.fault = fault
        self.stats = StageStats()
        self._aborts: list[Outgoing] = []  # kept alive until the process ends
        self._pass_id = 0
        self._replay_epoch = 0
        self.parts = owned_parts(trainer.net, modules)

    # ----------------------------------------------------------------- passes
    def train_pass(self, item: WorkItem, batches: Iterable[Batch] | None) -> dict[int, EpochStats]:
        """One epoch of training of this stage's modules; ``batches`` on rank 0 only."""
        trainer = self.trainer
        accs = {k: Accumulator() for k in self.modules}
        self._replay_epoch = item.epoch
        for part in self.parts:
            part.train()

        def step(index: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if self.fault is not None:
                self.fault.check(self.rank, item.epoch, index)
            for k in self.modules:
                x = trainer.module_step(k, x, y, item.epoch, accs[k])
            return x

        cpu = time.process_time()
        self._pass(batches, step, train=True)
        self.stats.train_cpu_seconds += time.process_time() - cpu
        return {k: accs[k].result() for k in self.modules}

    @torch.no_grad()
    def eval_pass(self, batches: Iterable[Batch] | None, taus: dict[int, float]) -> dict[int, EpochStats]:
        """Statistics of this stage's modules on one split, in eval mode; ``batches`` on rank 0 only."""
        net, penalty = self.trainer.net, self.trainer.penalty
        accs = {k: Accumulator() for k in self.modules}
        for part in self.parts:
            part.eval()

        def step(index: int, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if 0 in self.modules:
                h = net.stem(h)
            for k in self.modules:
                h = evaluate_module(net, k, h, y, penalty, taus[k], accs[k])
            return h

        self._pass(batches, step, train=False)
        return {k: accs[k].result() for k in self.modules}

    def _pass(
        self,
        batches: Iterable[Batch] | None,
        step: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor],
        train: bool,
    ) -> None:
        self._pass_id += 1
        box = Mailbox()
        box.start(self.upstream, self.downstream, self.trainer.device)
        try:
            self._exchange(box, batches, step, train)
        except BaseException as err:
            self._abort(box, err)
            raise
        box.join()
        self.stats.batches_in += box.received
        self.stats.max_in_flight_in = max(self.stats.max_in_flight_in, box.max_waiting)

    def _abort(self, box: Mailbox, err: BaseException) -> None:
        """Record ``err``, tell both neighbours to stop, and wait until the pumps have returned."""
        self.report(err)
        sends: list[Callable[[], Outgoing]] = []
        if self.upstream is not None:
            sends.append(lambda: self.upstream.send_credit(ABORT))
        if self.downstream is not None:
            sends.append(lambda: self.downstream.send(ABORT, self._pass_id, 0, ()))
        for send in sends:
            try:
                self._aborts.append(send())
            except PeerLost:  # that neighbour is gone already
                pass
        box.join()  # each pump returns on ABORT, END, a closed connection or its timeout

    def _exchange(
        self,
        box: Mailbox,
        batches: Iterable[Batch] | None,
        step: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor],
        train: bool,
    ) -> None:
        """Receive, step and send every batch of the pass, then drain: no batch stays in flight."""
        credits: list[Outgoing] = []
        inputs = self._received(box, credits, train) if self.upstream is not None else iter(batches or ())
        unacked: deque[Outgoing] = deque()  # sent and not yet credited, oldest first
        sent = 0
        for index, (x, y) in enumerate(inputs):
            out = step(index, x, y)
            if train:
                self.buffer.add(x, y)
            if self.downstream is not None:
                self._wait(box, lambda sent=sent: sent - box.credits < self.max_in_flight, train)
                while len(unacked) > sent - box.credits:  # credited: the next rank has received it
                    unacked.popleft().wait()
                unacked.append(self.downstream.send(BATCH, self._pass_id, index, (out, y)))
                sent += 1
                self.stats.max_in_flight_out = max(self.stats.max_in_flight_out, sent - box.credits)
        if self.upstream is not None:
            credits.append(self.upstream.send_credit(FINAL))
        if self.downstream is not None:
            unacked.append(self.downstream.send(END, self._pass_id, sent, ()))
            self._wait(box, lambda: box.final, train)
        for outgoing in (*unacked, *credits):
            outgoing.wait()
        self.stats.batches_out += sent

    def _received(self, box: Mailbox, credits: list[Outgoing], train: bool) -> Iterator[Batch]:
        """The previous rank's batches of this pass, in order, until its ``END``; each taken batch is credited."""
        while True:
            self._wait(box, lambda: bool(box.messages), train)
            with box.cond:
                message = box.messages.popleft()
                box.taken += message.kind == BATCH
            if message.pass_id != self._pass_id:
                raise RuntimeError(
                    f"Rank {self.rank} is in pass {self._pass_id} but rank {self.upstream.peer} sent a message of "
                    f"pass {message.pass_id}: the ranks disagree on the plan (same configuration on every rank?)."
                )
            if message.kind == END:
                return
            credits.append(self.upstream.send_credit(CREDIT))
            yield message.tensors  # (x, y)

    def _wait(self, box: Mailbox, ready: Callable[[], bool], train: bool) -> None:
        """Block until ``ready()``; in a training pass, replay stored batches meanwhile."""
        start, replaying = time.perf_counter(), 0.0
        while True:
            with box.cond:
                box.raise_error()
                if ready():
                    break
                if not (train and len(self.buffer)):
                    box.cond.wait()
                    continue
            t0 = time.perf_counter()
            self._replay()
            replaying += time.perf_counter() - t0
        self.stats.wait_seconds += time.perf_counter() - start - replaying

    def _replay(self) -> None:
        """One training step of every module of the stage on a stored batch; output discarded."""
        x, y = self.buffer.take()
        for k in self.modules:
            x = self.trainer.module_step(k, x, y, self._replay_epoch, Accumulator())
        self.stats.replay_steps += 1
