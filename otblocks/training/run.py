"""``train``: a whole run, from a configuration to a finished run directory."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..config import RunConfig, TrainConfig, config_from_dict
from ..data import build_data
from ..errors import ConfigError, RunDirError
from ..models import BlockwiseNet, build_model
from ..rundir import MetricsLog, RunPaths, read_json, write_config, write_json
from ..schedules import TauSchedule, tau_schedule
from .checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from .plan import WorkItem
from .stats import EpochStats
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
    val_kinetic_by_depth : list of float
        Mean transport cost :math:`c_k` of each module on the validation set.
    taus : list of float
        :math:`\\tau` of each module at its last epoch (``inf``: no penalty).
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
    val_kinetic_by_depth: list[float]
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


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU; ``cuda`` without a GPU is a :class:`ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("The 'train.device' config key is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'.")
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


def prepare_run_dir(paths: RunPaths, config: RunConfig, resume: bool, *, distributed: bool = False) -> dict[str, Any] | None:
    """Check the directory before anything is written; return ``last.pt`` when resuming from it.

    ``distributed``: the caller is :func:`otblocks.distributed.train_distributed`, which resumes
    from rank checkpoints; ``None`` is returned then.

    Raises
    ------
    RunDirError
        When the directory is not empty (without ``resume``), holds no run, was made with
        another configuration, or holds an unfinished run of the other kind (single-process
        or distributed).
    """
    if not resume:
        if paths.root.exists() and any(paths.root.iterdir()):
            raise RunDirError(
                f"The output directory '{paths.root}' is not empty; pass --resume to continue the run in it, "
                "or choose another --out."
            )
        return None
    if not paths.config.exists():
        raise RunDirError(f"Cannot resume: '{paths.root}' holds no run (no config.toml).")
    import tomllib

    stored = config_from_dict(tomllib.loads(paths.config.read_text()))
    # how the run executes, not what it computes
    ignore = {("train", "device"), ("train", "workers"), ("distributed", "timeout"), ("distributed", "backend")}
    diffs = [
        f"{section}.{key}"
        for section, values in config.to_dict().items()
        for key, value in values.items()
        if (section, key) not in ignore and stored.to_dict()[section][key] != value
    ]
    if diffs:
        raise RunDirError(
            f"Cannot resume '{paths.root}': the configuration differs from its config.toml in {', '.join(diffs)}."
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
    return load_checkpoint(paths.checkpoint) if paths.checkpoint.exists() else None


def checkpoint_payload(
    config: RunConfig, position: int, item: WorkItem, trainer_state: dict[str, Any], metrics_lines: int, train_seconds: float
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
        val_kinetic_by_depth=[s.kinetic for s in val],
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
    tau: TauSchedule | None = None,
    callbacks: Sequence[ItemCallback] = (),
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
    tau : callable (k, epoch) -> float, optional
        A :math:`\tau` schedule overriding ``config.transport`` (Python API only; it is not
        saved, so pass it again to resume).
    callbacks : sequence of callable (index, item, records)
        Called after every epoch, once its records and checkpoint are on disk.
    """
    paths = RunPaths(out)
    device = resolve_device(config.train.device)
    checkpoint = prepare_run_dir(paths, config, resume)
    if resume and paths.summary.exists():
        return RunSummary(**read_json(paths.summary))
    configure_backends(config.train, device)
    data = build_data(config.data)
    torch.manual_seed(config.train.seed)
    net = build_model(config.model, data.input_shape, data.n_classes).to(device)
    if config.train.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if config.train.compile:
        compile_units(net)
    schedule = tau if tau is not None else tau_schedule(config.transport, net.n_modules)
    trainer = Trainer(config, net, data, device, schedule)

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
    bar = tqdm(total=len(trainer.plan), initial=start, disable=quiet, unit="epoch", desc="train", dynamic_ncols=True)
    try:
        for index in range(start, len(trainer.plan)):
            item = trainer.plan[index]
            t0 = time.perf_counter()
            records = trainer.run_item(item)
            elapsed += time.perf_counter() - t0
            for record in records:
                log.write(record)
            if (index + 1) % every == 0 or index + 1 == len(trainer.plan):
                save_atomic(
                    checkpoint_payload(config, index + 1, item, trainer.state_dict(), log.lines, elapsed), paths.checkpoint
                )
            module = "all" if item.module is None else item.module
            val = [r for r in records if r["split"] == "val"][-1]
            bar.set_postfix(lap=item.lap, module=module, epoch=item.epoch, val_acc=f"{val['accuracy']:.3f}")
            bar.update(1)
            for callback in callbacks:
                callback(index, item, records)
    finally:
        bar.close()

    summary = summarize(config, trainer, trainer.final_evaluation(), elapsed, str(device))
    write_json(summary.to_dict(), paths.summary)
    return summary

