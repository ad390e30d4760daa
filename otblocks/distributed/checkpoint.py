"""Checkpoints of a pipeline: one file per rank and epoch, a common point to resume from.

Every ``train.checkpoint_every`` epochs each rank writes ``checkpoints/rank{R}-{P}.pt``
(atomically) with its modules' weights, their optimizers, schedulers and timings, its random
state and the placement; rank 0 adds the number of metric lines written and the training time.
After a barrier, when every rank holds position ``P``, each rank deletes its older files. A
crash can therefore leave at most two positions per rank, and :func:`common_position` resumes
from the latest one that *every* rank holds. When the run finishes, rank 0 merges the ranks'
states into ``checkpoints/last.pt`` in the single-process format (what
:func:`otblocks.load_run` reads) and the rank files are removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..rundir import RunPaths
from ..training import Trainer

__all__ = ["common_position", "load_rank_state", "merge_states", "owned_state", "prune", "rank_state"]


def _owns(name: str, modules: range) -> bool:
    head, _, rest = name.partition(".")
    if head == "stem":
        return 0 in modules
    return head in ("block_modules", "heads") and int(rest.split(".", 1)[0]) in modules


def owned_state(trainer: Trainer, modules: range) -> dict[str, torch.Tensor]:
    """The entries of the network's ``state_dict`` that belong to ``modules`` (stem with module 0), on the CPU."""
    return {name: t.detach().cpu() for name, t in trainer.net.state_dict().items() if _owns(name, modules)}


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def rank_state(trainer: Trainer, modules: range) -> dict[str, Any]:
    """What a rank checkpoints and hands over at the end: its weights, its optimizers and its modules'
    penalty state (the multipliers), on the CPU."""
    return {
        "model": owned_state(trainer, modules),
        "opts": {k: _to_cpu(trainer.opts[k].state_dict()) for k in modules},
        "penalty": {k: trainer.penalty.module_state(k) for k in modules},
    }


def load_rank_state(trainer: Trainer, state: dict[str, Any]) -> None:
    """Restore :func:`rank_state` into ``trainer`` (the other modules are left as they are)."""
    missing = set(state["model"]) - set(trainer.net.state_dict())
    if missing:
        raise KeyError(f"The checkpoint holds weights this network lacks: {sorted(missing)[:5]}.")
    trainer.net.load_state_dict(state["model"], strict=False)
    for k, opt_state in state["opts"].items():
        trainer.opts[k].load_state_dict(opt_state)
    trainer.penalty.load_module_states(state.get("penalty", {}))


def merge_states(states: Sequence[dict[str, Any]], n_modules: int) -> dict[str, Any]:
    """The ranks' :func:`rank_state` as one :meth:`Trainer.state_dict` (the single-process format)."""
    model: dict[str, torch.Tensor] = {}
    opts: dict[int, Any] = {}
    penalty: dict[int, dict[str, Any]] = {}
    for state in states:
        model.update(state["model"])
        opts.update(state["opts"])
        penalty.update(state.get("penalty", {}))
    if sorted(opts) != list(range(n_modules)):
        raise ValueError(f"The rank states cover modules {sorted(opts)}; expected 0 to {n_modules - 1}.")
    keys = sorted({key for values in penalty.values() for key in values})
    merged = (
        {key: [penalty[k][key] for k in range(n_modules)] for key in keys} if keys else {"lambdas": [], "steps": []}
    )
    return {"model": model, "opts": [opts[k] for k in range(n_modules)], "penalty": merged}


def common_position(paths: RunPaths, n_ranks: int) -> int:
    """The latest position every rank has a checkpoint of (0 when there is none)."""
    found = paths.rank_checkpoints()
    held = [set(found.get(rank, {})) for rank in range(n_ranks)]
    common = set.intersection(*held) if held else set()
    return max(common, default=0)


def prune(paths: RunPaths, rank: int, keep: int | None) -> None:
    """Delete ``rank``'s checkpoint files other than position ``keep`` (all of them for ``None``)."""
    for position, path in paths.rank_checkpoints().get(rank, {}).items():
        if position != keep:
            path.unlink(missing_ok=True)
