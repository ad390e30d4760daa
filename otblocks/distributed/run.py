r"""``train_distributed``: the ``parallel`` regime as a pipeline of ranks, into one run directory.

Every rank builds the whole network from the same seed (so the initial weights are those of a
single-process run), keeps its own modules on its device, and trains them with a
:class:`~otblocks.distributed.stage.Stage`. At the end of every epoch an evaluation pass on the
validation split flows through the pipeline, rank 0 gathers every rank's metric records and
writes them to ``metrics.jsonl`` in the single-process order, and, when a checkpoint is due,
every rank writes its own (see :mod:`otblocks.distributed.checkpoint`). At the end, a last
evaluation pass on validation and test gives the summary; rank 0 writes ``summary.json``,
``checkpoints/last.pt`` (every rank's modules merged) and ``pipeline.json``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ..config import RunConfig
from ..data import DataBundle, build_data, iterate_batches
from ..errors import ConfigError, OtblocksError, RunDirError
from ..models import BlockwiseNet, build_model
from ..rundir import MetricsLog, RunPaths, write_config, write_json
from ..training import RunSummary, Trainer, WorkItem
from ..training.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from ..training.memory import peak_memory_bytes, reset_peak_memory
from ..training.run import (
    checkpoint_payload,
    compile_units,
    configure_backends,
    prepare_run_dir,
    summarize,
)
from ..training.tensorboard import TensorBoardLog, require_tensorboard
from .checkpoint import (
    common_position,
    load_rank_state,
    merge_states,
    prune,
    rank_state,
)
from .comm import Link, collective
from .failure import Fault
from .launch import World, join_world
from .placement import Placement, choose_placement, measured_costs, parameter_costs
from .stage import Stage, owned_parts

__all__ = ["train_distributed"]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class _Start:
    """What rank 0 tells every rank before training: the data's shape, the placement, where to start."""

    input_shape: tuple[int, ...]
    n_classes: int
    placement: tuple[int, ...]
    position: int
    finished: dict[str, Any] | None = None


def train_distributed(
    config: RunConfig, out: str | Path, *, resume: bool = False, quiet: bool = False
) -> RunSummary | None:
    r"""Train ``config`` as a pipeline over the processes that ``torchrun`` started; call it on every rank.

    Parameters
    ----------
    config : RunConfig
        Must use ``train.regime = "parallel"``; ``[distributed]`` sets placement, batches in
        flight, replay, timeout and backend.
    out : path
        Run directory, written by rank 0 (every rank writes its checkpoints there too, so on
        several machines it must be on a shared file system).
    resume : bool
        Restart every rank from the latest epoch that all of them checkpointed (a finished run
        returns its summary).
    quiet : bool
        No progress bar (other ranks never show one).

    Returns
    -------
    RunSummary or None
        The summary on rank 0, ``None`` on the other ranks.

    Raises
    ------
    ConfigError
        For another regime, or outside ``torchrun``.
    PipelineError
        On the surviving ranks when another rank fails, dies or stops answering for
        ``distributed.timeout`` seconds.

    Notes
    -----
    With ``replay = 0`` the result is the single-process ``parallel`` regime's, batch for
    batch, whatever ``max_in_flight`` (see :mod:`otblocks.distributed.stage`).
    """
    if config.train.regime != "parallel":
        raise ConfigError(
            "The 'train.regime' config key must be 'parallel' with --distributed (only the parallel regime runs "
            f"as a pipeline); got '{config.train.regime}'."
        )
    if config.train.tensorboard:
        require_tensorboard()  # before anything is written
    fault = Fault.from_env()
    paths = RunPaths(out)
    with join_world(config) as world:
        configure_backends(config.train, world.device)
        data, net, start = _start(config, paths, world, resume)
        if start.finished is not None:
            return RunSummary.from_dict(start.finished, str(paths.summary)) if world.rank == 0 else None
        return _Pipeline(config, paths, world, data, net, start, fault).run(quiet)


def _build_net(config: RunConfig, input_shape: tuple[int, ...], n_classes: int) -> BlockwiseNet:
    """The whole network on the CPU, initialised exactly as a single-process run does."""
    torch.manual_seed(config.train.seed)
    net = build_model(config.model, input_shape, n_classes)
    return net.to(memory_format=torch.channels_last) if config.train.channels_last else net


def _broadcast(world: World, obj: Any, what: str) -> Any:
    box = [obj]
    collective(what, dist.broadcast_object_list, box, src=0, group=world.control)
    return box[0]


def _start(
    config: RunConfig, paths: RunPaths, world: World, resume: bool
) -> tuple[DataBundle | None, BlockwiseNet, _Start]:
    """Rank 0 checks the directory, reads the data and places the modules; every rank learns the outcome."""
    data, net, start = None, None, None
    if world.rank == 0:
        try:
            data, net, start = _start_on_rank0(config, paths, world, resume)
        except OtblocksError as err:
            start = err
    start = _broadcast(world, start, "the start of the run")
    if isinstance(start, OtblocksError):
        raise start
    if net is None and start.finished is None:
        net = _build_net(config, start.input_shape, start.n_classes)
    return data, net, start


def _start_on_rank0(
    config: RunConfig, paths: RunPaths, world: World, resume: bool
) -> tuple[DataBundle | None, BlockwiseNet | None, _Start]:
    prepare_run_dir(paths, config, resume, distributed=True)
    if resume and paths.summary.exists():
        return None, None, _Start((), 0, (), 0, finished=paths.read_summary())
    stored = _stored_placement(paths)
    if stored is not None and stored.n_ranks != world.size:
        raise RunDirError(
            f"Cannot resume '{paths.root}': it was checkpointed by {stored.n_ranks} ranks; launch as many "
            f"processes (got {world.size})."
        )
    data = build_data(config.data)
    net = _build_net(config, data.input_shape, data.n_classes)
    position = common_position(paths, world.size)
    if position:
        placement = stored
    else:
        costs = None
        if not config.distributed.placement:
            costs = (
                measured_costs(config, net, data, world.device)
                if config.distributed.balance == "time"
                else parameter_costs(net)
            )
        placement = choose_placement(config.distributed, world.size, net.n_modules, costs)
    paths.checkpoints.mkdir(parents=True, exist_ok=True)
    write_config(config, paths.config)
    return data, net, _Start(data.input_shape, data.n_classes, placement.counts, position)


def _stored_placement(paths: RunPaths) -> Placement | None:
    """The placement recorded in the rank checkpoints of the run, if there are any."""
    for files in paths.rank_checkpoints().values():
        for path in files.values():
            return Placement(tuple(load_checkpoint(path)["placement"]))
    return None


class _Pipeline:
    """One rank's whole run: its stage, its links, the epoch loop, checkpoints and the end."""

    def __init__(
        self,
        config: RunConfig,
        paths: RunPaths,
        world: World,
        data: DataBundle | None,
        net: BlockwiseNet,
        start: _Start,
        fault: Fault | None,
    ) -> None:
        self.config, self.paths, self.world, self.data = config, paths, world, data
        self.placement = Placement(start.placement)
        self.modules = self.placement.modules(world.rank)
        for part in owned_parts(net, self.modules):
            part.to(world.device)
        if config.train.compile:
            compile_units(net)
        self.trainer = Trainer(config, net, data, world.device)
        rank, last = world.rank, world.size - 1

        def link(peer: int) -> Link:
            return Link(peer, world.control, world.device, world.wire_device, world.timeout, config.train.channels_last)

        self.stage = Stage(
            self.trainer,
            self.modules,
            rank,
            link(rank - 1) if rank > 0 else None,
            link(rank + 1) if rank < last else None,
            config.distributed,
            world.report,
            fault,
        )
        self.position, self.elapsed, lines = start.position, 0.0, 0
        if start.position:
            checkpoint = load_checkpoint(paths.rank_checkpoint(rank, start.position))
            load_rank_state(self.trainer, checkpoint["state"])
            set_rng_state(checkpoint["rng"])
            self.elapsed, lines = checkpoint["train_seconds"], checkpoint["metrics_lines"]
        prune(paths, rank, start.position or None)  # what a crash left beyond the common point
        self.log = MetricsLog(paths.metrics) if rank == 0 else None
        board = rank == 0 and config.train.tensorboard
        self.board = TensorBoardLog(paths.tensorboard, start.position) if board else None
        if self.log is not None:
            self.log.truncate(lines)

    # ----------------------------------------------------------------- the run
    def run(self, quiet: bool) -> RunSummary | None:
        plan = self.trainer.plan
        bar = tqdm(
            total=len(plan),
            initial=self.position,
            disable=quiet or self.world.rank != 0,
            unit="epoch",
            desc="train",
            dynamic_ncols=True,
        )
        try:
            for index in range(self.position, len(plan)):
                item = plan[index]
                t0 = time.perf_counter()
                records = self._epoch(item)
                gathered = self._gather(records, f"the metrics of epoch {item.epoch}")
                self.elapsed += time.perf_counter() - t0
                if self.log is not None:
                    ordered = [r for s in ("train", "val") for part in gathered for r in part if r["split"] == s]
                    for record in ordered:
                        self.log.write(record)
                    if self.board is not None:
                        self.board.write(index, ordered)
                if (index + 1) % self.config.train.checkpoint_every == 0 or index + 1 == len(plan):
                    self._checkpoint(index + 1)
                if gathered and gathered[-1][-1]["split"] == "val":
                    bar.set_postfix(epoch=item.epoch, val_acc=f"{gathered[-1][-1]['accuracy']:.3f}")
                bar.update(1)
        finally:
            bar.close()
        return self._finish(plan[-1])

    def _epoch(self, item: WorkItem) -> list[dict[str, Any]]:
        """Train and validate this rank's modules for one epoch; their metric records (train, then val)."""
        trainer, stage, device = self.trainer, self.stage, self.world.device
        lrs = {k: trainer.opts[k].optimizer.param_groups[0]["lr"] for k in self.modules}
        reset_peak_memory(device)
        waited, start = stage.stats.wait_seconds, time.perf_counter()
        train = stage.train_pass(item, trainer.train_batches(item) if self.world.rank == 0 else None)
        train_seconds = time.perf_counter() - start
        busy = train_seconds - (stage.stats.wait_seconds - waited)
        train_peak = peak_memory_bytes(device)
        trainer.end_epoch(item, train, busy, train_peak)

        val, eval_seconds, eval_peak = {}, 0.0, 0
        lrs_taus = {k: (lrs[k], trainer.tau(k, item.epoch)) for k in self.modules}
        if trainer.validates(item):
            reset_peak_memory(device)
            start = time.perf_counter()
            val = stage.eval_pass(self._split("val"), {k: tau for k, (_, tau) in lrs_taus.items()})
            eval_seconds, eval_peak = time.perf_counter() - start, peak_memory_bytes(device)
        return trainer.records(item, train, val, lrs_taus, (train_seconds, train_peak), (eval_seconds, eval_peak))

    def _split(self, name: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]] | None:
        """Rank 0: the batches of split ``name`` in order, on the device; other ranks: ``None``."""
        if self.data is None:
            return None
        tr, device = self.config.train, self.world.device
        batches = iterate_batches(
            self.data.split(name), tr.batch_size, workers=tr.workers, pin_memory=device.type == "cuda"
        )
        return ((x.to(device, non_blocking=True), y.to(device, non_blocking=True)) for x, y in batches)

    def _gather(self, obj: Any, what: str) -> list[Any]:
        """``obj`` of every rank, in rank order, on rank 0 (an empty list elsewhere)."""
        gathered = [None] * self.world.size if self.world.rank == 0 else None
        collective(what, dist.gather_object, obj, gathered, dst=0, group=self.world.control)
        return gathered or []

    def _checkpoint(self, position: int) -> None:
        """Every rank saves its state after ``position`` epochs; once all have, older files go."""
        rank = self.world.rank
        save_atomic(
            {
                "version": 1,
                "rank": rank,
                "placement": list(self.placement.counts),
                "position": position,
                "config": self.config.to_dict(),
                "state": rank_state(self.trainer, self.modules),
                "rng": rng_state(),
                "metrics_lines": self.log.lines if self.log is not None else None,
                "train_seconds": self.elapsed,
            },
            self.paths.rank_checkpoint(rank, position),
        )
        collective(f"the checkpoint after epoch {position}", dist.barrier, group=self.world.control)
        prune(self.paths, rank, position)

    # ----------------------------------------------------------------- the end
    def _finish(self, last_item: WorkItem) -> RunSummary | None:
        """Final evaluation through the pipeline; rank 0 writes the summary, ``last.pt`` and ``pipeline.json``."""
        trainer, world = self.trainer, self.world
        last_epoch = self.config.train.epochs - 1
        taus = {k: trainer.tau(k, last_epoch) for k in self.modules}
        final = {split: self.stage.eval_pass(self._split(split), taus) for split in ("val", "test")}
        handover = {
            "final": final,
            "state": rank_state(trainer, self.modules),
            "stage": {
                "rank": world.rank,
                "device": str(world.device),
                "modules": list(self.modules),
                **dataclasses.asdict(self.stage.stats),
            },
        }
        gathered = self._gather(handover, "the final results")
        summary = None
        if world.rank == 0:
            merged = merge_states([h["state"] for h in gathered], trainer.net.n_modules)
            trainer.load_state_dict(merged)  # rank 0 now holds every module's weights and timings
            stats = {
                split: [h["final"][split][k] for h in gathered for k in sorted(h["final"][split])] for split in final
            }
            devices = ", ".join(h["stage"]["device"] for h in gathered)
            save_atomic(
                checkpoint_payload(self.config, len(trainer.plan), last_item, merged, self.log.lines, self.elapsed),
                self.paths.checkpoint,
            )
            write_json({"backend": world.backend, "ranks": [h["stage"] for h in gathered]}, self.paths.pipeline)
            summary = summarize(self.config, trainer, stats, self.elapsed, devices)
            write_json(summary.to_dict(), self.paths.summary)
            if self.board is not None:
                self.board.write_summary(summary.to_dict())
                self.board.close()
        collective("the end of the run", dist.barrier, group=world.control)
        prune(self.paths, world.rank, None)
        return summary
