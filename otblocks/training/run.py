"""``train``: a whole run, from a configuration to a finished run directory."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..config import RunConfig, TrainConfig, check_run_config, config_differences
from ..data import build_data
from ..errors import ConfigError, NonFiniteLossError, RunDirError
from ..lock import LOCK_NAME, DirLock
from ..models import BlockwiseNet, build_model
from ..rundir import MetricsLog, RunPaths, jsonable, write_config, write_json
from ..schedules import TauSchedule
from ..transport import Penalty
from .checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from .plan import WorkItem
from .stats import EpochStats
from .tensorboard import TensorBoardLog, require_tensorboard
from .trainer import Trainer, best_depth

__all__ = [
    "RunSummary",
    "train",
    "resolve_device",
    "TIMING_KEYS",
    "prepare_run_dir",
    "configure_backends",
    "checkpoint_payload",
    "summarize",
]

TIMING_KEYS = ("train_seconds", "seconds_per_epoch_by_module", "peak_memory_bytes", "peak_memory_bytes_by_module")
"""Summary fields that measure the machine rather than the run; they differ between repeats."""

ItemCallback = Callable[[int, WorkItem, list[dict[str, Any]]], None]


@dataclass(frozen=True)
class RunSummary:
    """What ``summary.json`` holds. Depth ``k`` (1-based) means modules ``0 .. k-1`` and head ``k-1``.

    Attributes
    ----------
    regime : str
    n_modules : int
    val_accuracy_by_depth, test_accuracy_by_depth : list of float
        Accuracy of head ``F_{k-1}`` after ``k`` modules, one entry per module.
    val_loss_by_depth, test_loss_by_depth : list of float
        Cross-entropy of the same heads.
    val_transport_cost_by_depth : list of float
        Mean transport cost :math:`c_k` of each module on the validation set (before the
        weight :math:`1/(2\\tau)`; ``val_kinetic_by_depth`` in run directories of version 0.1).
    val_penalty_ratio_by_module : list of float
        How hard the penalty pressed: the penalty :math:`c_k/(2\\tau_k)` over the task loss of
        module :math:`k`'s head on the validation set, at the end (0 for :math:`\\tau = \\infty`;
        NaN when read from a run directory of version 0.1, which did not record it).
    taus : list of float
        :math:`\\tau` of each module at its last epoch (``inf``: no penalty; with
        ``transport.schedule = "multiplier"``, the final multiplier :math:`\\lambda_k`).
    best_depth : int
        Depth with the best validation accuracy (never chosen on test).
    val_accuracy_at_best_depth, test_accuracy_at_best_depth : float
    train_seconds : float
        Wall-clock seconds spent training (resumed runs add their parts).
    seconds_per_epoch_by_module : list of float
        Mean training seconds of one epoch of each module (e2e: one entry).
    peak_memory_bytes : int
        The largest of ``peak_memory_bytes_by_module``.
    peak_memory_bytes_by_module : list of int
        Peak memory while training each module, in bytes (e2e: one entry; parallel: the
        whole network's peak for every module): CUDA's allocator peak, reset per epoch, or
        on the CPU the process's peak resident set size (see :mod:`otblocks.training.memory`).
    device : str
    """

    regime: str
    n_modules: int
    val_accuracy_by_depth: list[float]
    test_accuracy_by_depth: list[float]
    val_loss_by_depth: list[float]
    test_loss_by_depth: list[float]
    val_transport_cost_by_depth: list[float]
    val_penalty_ratio_by_module: list[float]
    taus: list[float]
    best_depth: int
    val_accuracy_at_best_depth: float
    test_accuracy_at_best_depth: float
    train_seconds: float
    seconds_per_epoch_by_module: list[float]
    peak_memory_bytes: int
    peak_memory_bytes_by_module: list[int]
    device: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "summary.json") -> RunSummary:
        """The summary from the content of ``summary.json``, including files written by otblocks 0.1
        (``val_kinetic_by_depth``, no penalty ratio).

        Raises
        ------
        RunDirError
            When a field is missing or unknown, naming it and how to rewrite the file.
        """
        values = dict(values)
        if "val_kinetic_by_depth" in values and "val_transport_cost_by_depth" not in values:
            values["val_transport_cost_by_depth"] = values.pop("val_kinetic_by_depth")
            values.setdefault("val_penalty_ratio_by_module", [math.nan] * len(values["val_transport_cost_by_depth"]))
        names = [f.name for f in fields(cls)]
        missing, unknown = [n for n in names if n not in values], sorted(set(values) - set(names))
        if missing or unknown:
            what = f"lacks {', '.join(missing)}" if missing else f"has unknown fields {', '.join(unknown)}"
            raise RunDirError(
                f"The run summary '{source}' {what}: it was not written by this version of otblocks; "
                "re-run with `otblocks train CONFIG --out NEW_DIR` (or delete summary.json and --resume)."
            )
        return cls(**{n: values[n] for n in names})


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU; ``cuda`` without a GPU is a :class:`ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "The 'train.device' config key is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'."
        )
    return torch.device(name)


def configure_backends(cfg: TrainConfig, device: torch.device) -> None:
    """Threads, determinism and cuDNN autotuning for this process; warn about CUDA-only options on the CPU."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)
    if device.type == "cuda":
        if cfg.deterministic:  # cuBLAS needs a fixed workspace to be deterministic
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = not cfg.deterministic
    elif cfg.amp != "none":
        warnings.warn(f"train.amp = '{cfg.amp}' applies on CUDA only; training on {device} in float32.", stacklevel=3)


def compile_units(net: BlockwiseNet) -> None:
    """``torch.compile`` in place what the trainer calls: the stem, the parts of every block
    (residual branch and shortcut) and every head; parameter names do not change."""
    units = [net.stem, *(part for block in net.blocks() for part in block.children()), *net.heads]
    for unit in units:
        if not isinstance(unit, torch.nn.Identity):
            unit.compile()


def prepare_run_dir(
    paths: RunPaths, config: RunConfig, resume: bool, *, distributed: bool = False, allow_change: Sequence[str] = ()
) -> dict[str, Any] | None:
    """Check the directory before anything is written; return ``last.pt`` when resuming from it.

    ``distributed``: the caller is :func:`otblocks.distributed.train_distributed`, which resumes
    from rank checkpoints; ``None`` is returned then. ``allow_change``: configuration keys that
    may differ from the stored ``config.toml`` when resuming; each change is appended to
    ``config_changes.jsonl`` (old and new value, from which checkpoint on).

    Raises
    ------
    RunDirError
        When the directory is not empty (without ``resume``), holds no run, was made with
        another configuration, or holds an unfinished run of the other kind (single-process
        or distributed).
    """
    if not resume:
        if paths.root.exists() and any(p.name != LOCK_NAME for p in paths.root.iterdir()):
            raise RunDirError(
                f"The output directory '{paths.root}' is not empty; pass --resume to continue the run in it, "
                "or choose another --out."
            )
        return None
    if not paths.config.exists():
        raise RunDirError(f"Cannot resume: '{paths.root}' holds no run (no config.toml).")
    stored = paths.read_config()
    diffs = config_differences(stored, config, allow_change)
    if diffs:
        raise RunDirError(
            f"Cannot resume '{paths.root}': the configuration differs from its config.toml in {', '.join(diffs)} "
            f"(to change them on purpose: --resume --allow-change {diffs[0]})."
        )
    unfinished = not paths.summary.exists()
    if distributed:
        if unfinished and paths.checkpoint.exists() and not paths.rank_checkpoints():
            raise RunDirError(
                f"Cannot resume '{paths.root}' with --distributed: it holds an unfinished single-process run "
                "(checkpoints/last.pt); resume it without --distributed."
            )
        return None
    if unfinished and not paths.checkpoint.exists() and paths.rank_checkpoints():
        raise RunDirError(
            f"Cannot resume '{paths.root}' without --distributed: it holds the rank checkpoints of an unfinished "
            "distributed run; resume it with `torchrun ... -m otblocks train CONFIG --out DIR --distributed --resume`."
        )
    checkpoint = load_checkpoint(paths.checkpoint) if paths.checkpoint.exists() else None
    if checkpoint is not None:
        MetricsLog(paths.metrics).require(checkpoint["metrics_lines"])
    record_config_changes(paths, stored, config)
    return checkpoint


def record_config_changes(paths: RunPaths, stored: RunConfig, config: RunConfig) -> None:
    """Append the keys resumed with a new value (``--allow-change``) to ``config_changes.jsonl``."""
    changed = config_differences(stored, config)
    if changed:
        old, new = stored.to_dict(), config.to_dict()
        value = lambda c, k: c[k.split(".")[0]][k.split(".")[1]]  # noqa: E731
        record = {"keys": {k: [value(old, k), value(new, k)] for k in changed}, "at_checkpoint": str(paths.checkpoint)}
        with paths.config_changes.open("a") as fh:
            fh.write(json.dumps(jsonable(record)) + "\n")


def checkpoint_payload(
    config: RunConfig,
    position: int,
    item: WorkItem,
    trainer_state: dict[str, Any],
    metrics_lines: int,
    train_seconds: float,
) -> dict[str, Any]:
    """The content of ``checkpoints/last.pt`` after ``position`` items of the plan (the last one ``item``)."""
    return {
        "version": 1,
        "config": config.to_dict(),
        "position": position,
        "item": asdict(item),
        "trainer": trainer_state,
        "rng": rng_state(),
        "metrics_lines": metrics_lines,
        "train_seconds": train_seconds,
    }


def summarize(
    config: RunConfig, trainer: Trainer, final: dict[str, list[EpochStats]], train_seconds: float, device: str
) -> RunSummary:
    """The :class:`RunSummary` of a finished run from its final evaluation (``val`` and ``test``, every depth).

    ``trainer`` gives the taus of the last epoch and the timings and memory peaks of every module.
    """
    val, test = final["val"], final["test"]
    best = best_depth(val)
    last_epoch = config.train.epochs - 1
    return RunSummary(
        regime=config.train.regime,
        n_modules=trainer.net.n_modules,
        val_accuracy_by_depth=[s.accuracy for s in val],
        test_accuracy_by_depth=[s.accuracy for s in test],
        val_loss_by_depth=[s.task_loss for s in val],
        test_loss_by_depth=[s.task_loss for s in test],
        val_transport_cost_by_depth=[s.transport_cost for s in val],
        val_penalty_ratio_by_module=[s.penalty_ratio for s in val],
        taus=[trainer.tau(k, last_epoch) for k in range(trainer.net.n_modules)],
        best_depth=best,
        val_accuracy_at_best_depth=val[best - 1].accuracy,
        test_accuracy_at_best_depth=test[best - 1].accuracy,
        train_seconds=train_seconds,
        seconds_per_epoch_by_module=trainer.seconds_per_epoch(),
        peak_memory_bytes=max(trainer.peak_memory_by_module()),
        peak_memory_bytes_by_module=trainer.peak_memory_by_module(),
        device=device,
    )


def train(
    config: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    quiet: bool = False,
    tau: float | TauSchedule | None = None,
    callbacks: Sequence[ItemCallback] = (),
    allow_change: Sequence[str] = (),
) -> RunSummary:
    r"""Train ``config`` into the run directory ``out`` and return its summary.

    Parameters
    ----------
    config : RunConfig
    out : path
        Run directory; must be empty or absent unless ``resume``.
    resume : bool
        Continue from ``out/checkpoints/last.pt`` (a finished run returns its summary).
    quiet : bool
        No progress bar.
    tau : float or callable (k, epoch) -> float, optional
        :math:`\tau` overriding ``config.transport.tau``: a number for every module and epoch,
        or a schedule (Python API only; it is not saved, so pass it again to resume). With
        ``transport.schedule = "multiplier"`` it gives the multipliers' start.
    callbacks : sequence of callable (index, item, records)
        Called after every epoch, once its records and checkpoint are on disk.
    allow_change : sequence of str
        Configuration keys that may differ from the run's ``config.toml`` when resuming (e.g.
        ``train.lr`` after a non-finite loss); recorded in ``config_changes.jsonl``.

    Notes
    -----
    The run directory is locked (:class:`otblocks.lock.DirLock`) while this runs: a second
    writer stops with :class:`otblocks.errors.LockedError` before touching it.
    """
    check_run_config(config, "train")
    penalty = Penalty.from_config(config.transport, config.n_modules, tau)
    if config.train.tensorboard:
        require_tensorboard()  # before anything is written
    paths = RunPaths(out)
    device = resolve_device(config.train.device)
    with DirLock(paths.root, "run directory"):
        try:
            return _train_locked(config, paths, device, resume, quiet, penalty, callbacks, allow_change)
        except NonFiniteLossError as err:
            if not paths.checkpoint.exists():
                raise
            hint = "to continue with a smaller learning rate: --resume --allow-change train.lr --set train.lr=..."
            raise NonFiniteLossError(f"{str(err).rstrip('.')}; {hint}") from None


def _train_locked(config, paths, device, resume, quiet, penalty, callbacks, allow_change) -> RunSummary:
    """The body of :func:`train`, run while this process holds the run directory's lock."""
    checkpoint = prepare_run_dir(paths, config, resume, allow_change=allow_change)
    if resume and paths.summary.exists():
        return RunSummary.from_dict(paths.read_summary(), str(paths.summary))
    configure_backends(config.train, device)
    data = build_data(config.data)
    torch.manual_seed(config.train.seed)
    net = build_model(config.model, data.input_shape, data.n_classes).to(device)
    if config.train.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if config.train.compile:
        compile_units(net)
    trainer = Trainer(config, net, data, device, penalty)

    paths.checkpoints.mkdir(parents=True, exist_ok=True)
    write_config(config, paths.config)
    log = MetricsLog(paths.metrics)
    start, elapsed = 0, 0.0
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint["trainer"])
        set_rng_state(checkpoint["rng"])
        start, elapsed = checkpoint["position"], checkpoint["train_seconds"]
        log.truncate(checkpoint["metrics_lines"])
    else:
        log.truncate(0)

    every = config.train.checkpoint_every
    board = TensorBoardLog(paths.tensorboard, start) if config.train.tensorboard else None
    bar = tqdm(total=len(trainer.plan), initial=start, disable=quiet, unit="epoch", desc="train", dynamic_ncols=True)
    try:
        for index in range(start, len(trainer.plan)):
            item = trainer.plan[index]
            t0 = time.perf_counter()
            records = trainer.run_item(item)
            elapsed += time.perf_counter() - t0
            for record in records:
                log.write(record)
            if board is not None:
                board.write(index, records)
            if (index + 1) % every == 0 or index + 1 == len(trainer.plan):
                save_atomic(
                    checkpoint_payload(config, index + 1, item, trainer.state_dict(), log.lines, elapsed),
                    paths.checkpoint,
                    keep_previous=True,
                )
            module = "all" if item.module is None else item.module
            val = [r for r in records if r["split"] == "val"]
            if val:
                bar.set_postfix(lap=item.lap, module=module, epoch=item.epoch, val_acc=f"{val[-1]['accuracy']:.3f}")
            bar.update(1)
            for callback in callbacks:
                callback(index, item, records)
        summary = summarize(config, trainer, trainer.final_evaluation(), elapsed, str(device))
        if board is not None:
            board.write_summary(summary.to_dict())
    finally:
        bar.close()
        if board is not None:
            board.close()
    write_json(summary.to_dict(), paths.summary)
    return summary
