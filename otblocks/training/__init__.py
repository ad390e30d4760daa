"""Block-wise training: regimes, per-module optimizers, checkpoints, the ``train`` entry point."""

from .checkpoint import load_checkpoint, save_atomic
from .evaluate import evaluate_depths
from .plan import WorkItem, make_plan
from .run import TIMING_KEYS, RunSummary, resolve_device, train
from .stats import EpochStats
from .trainer import RECORD_KEYS, RECORD_TIMING_KEYS, Trainer, seed_for, upgrade_record

__all__ = [
    "RECORD_KEYS",
    "RECORD_TIMING_KEYS",
    "TIMING_KEYS",
    "EpochStats",
    "RunSummary",
    "Trainer",
    "WorkItem",
    "evaluate_depths",
    "load_checkpoint",
    "make_plan",
    "resolve_device",
    "save_atomic",
    "seed_for",
    "train",
    "upgrade_record",
]
