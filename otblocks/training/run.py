"""``train``: a whole run, from a configuration to a finished run directory."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..config import RunConfig, config_from_dict
from ..data import build_data
from ..errors import ConfigError, RunDirError
from ..models import build_model
from ..rundir import MetricsLog, RunPaths, read_json, write_config, write_json
from ..schedules import TauSchedule, tau_schedule
from .checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from .plan import WorkItem
from .trainer import Trainer, best_depth, peak_memory_bytes

__all__ = ["RunSummary", "train", "resolve_device", "TIMING_KEYS"]

TIMING_KEYS = ("train_seconds", "seconds_per_epoch_by_module", "peak_memory_bytes")
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
        See :func:`otblocks.training.trainer.peak_memory_bytes`.
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


def _prepare_dir(paths: RunPaths, config: RunConfig, resume: bool) -> dict[str, Any] | None:
    """Check the directory before anything is written; return the checkpoint when resuming."""
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
    ignore = {("train", "device"), ("train", "workers")}
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
    return load_checkpoint(paths.checkpoint) if paths.checkpoint.exists() else None


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
    checkpoint = _prepare_dir(paths, config, resume)
    if resume and paths.summary.exists():
        return RunSummary(**read_json(paths.summary))
    torch.use_deterministic_algorithms(config.train.deterministic, warn_only=True)
    data = build_data(config.data)
    torch.manual_seed(config.train.seed)
    net = build_model(config.model, data.input_shape, data.n_classes).to(device)
    if config.train.channels_last:
        net = net.to(memory_format=torch.channels_last)
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
                    {
                        "version": 1,
                        "config": config.to_dict(),
                        "position": index + 1,
                        "item": asdict(item),
                        "trainer": trainer.state_dict(),
                        "rng": rng_state(),
                        "metrics_lines": log.lines,
                        "train_seconds": elapsed,
                    },
                    paths.checkpoint,
                )
            module = "all" if item.module is None else item.module
            val = [r for r in records if r["split"] == "val"][-1]
            bar.set_postfix(lap=item.lap, module=module, epoch=item.epoch, val_acc=f"{val['accuracy']:.3f}")
            bar.update(1)
            for callback in callbacks:
                callback(index, item, records)
    finally:
        bar.close()

    final = trainer.final_evaluation()
    val, test = final["val"], final["test"]
    best = best_depth(val)
    last_epoch = config.train.epochs - 1
    summary = RunSummary(
        regime=config.train.regime,
        n_modules=net.n_modules,
        val_accuracy_by_depth=[s.accuracy for s in val],
        test_accuracy_by_depth=[s.accuracy for s in test],
        val_loss_by_depth=[s.task_loss for s in val],
        test_loss_by_depth=[s.task_loss for s in test],
        val_kinetic_by_depth=[s.kinetic for s in val],
        taus=[trainer.tau(k, last_epoch) for k in range(net.n_modules)],
        best_depth=best,
        val_accuracy_at_best_depth=val[best - 1].accuracy,
        test_accuracy_at_best_depth=test[best - 1].accuracy,
        train_seconds=elapsed,
        seconds_per_epoch_by_module=trainer.seconds_per_epoch(),
        peak_memory_bytes=peak_memory_bytes(device),
        device=str(device),
    )
    write_json(summary.to_dict(), paths.summary)
    return summary

