"""Block-wise training: regimes, per-module optimizers, checkpoints, the ``train`` entry point."""

from .checkpoint import load_checkpoint, save_atomic
from .evaluate import evaluate_depths
from .plan import WorkItem, make_plan
from .run import TIMING_KEYS, RunSummary, resolve_device, train
from .stats import EpochStats
from .trainer import RECORD_TIMING_KEYS, Trainer, seed_for

__all__ = [
    "train",
    "RunSummary",
    "TIMING_KEYS",
    "RECORD_TIMING_KEYS",
    "Trainer",
    "WorkItem",
    "make_plan",
    "EpochStats",
    "evaluate_depths",
    "resolve_device",
    "save_atomic",
    "load_checkpoint",
    "seed_for",
]
