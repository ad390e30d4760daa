"""Joining the process group that ``torchrun`` prepared, and leaving it on every path.

``torchrun`` (``python -m torch.distributed.run``) starts one process per rank with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in its environment.
:func:`join_world` reads them, picks the device (``cuda:LOCAL_RANK`` on a GPU machine, else the
CPU) and the backend (``distributed.backend``; ``auto`` is NCCL on CUDA and gloo on the CPU),
creates the default group and a gloo control group, and on the way out, normally or not,
destroys them. An exception escaping the ``with`` block is recorded for the other ranks (see
:mod:`otblocks.distributed.failure`); a lost neighbour becomes a :class:`PipelineError` naming
the rank that failed. ``SIGTERM`` (what ``torchrun`` sends to the survivors) is turned into
``SystemExit`` so that the group is still destroyed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ..config import RunConfig
from ..errors import ConfigError
from .failure import PeerLost, PipelineError, failure_line, record_failure

__all__ = ["World", "join_world", "ranks_from_env", "resolve_backend", "stage_device"]

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """This process's place in the pipeline.

    Attributes
    ----------
    rank, size, local_rank : int
        Global rank, number of ranks, rank on this machine.
    device : torch.device
        This rank's device.
    backend : str
        Of the default (data) group: ``gloo`` or ``nccl``.
    control : ProcessGroup
        The gloo group for headers, credits and metrics.
    store : Store
        The rendezvous key-value store (failure reports).
    timeout : float
        ``distributed.timeout``, seconds.
    """

    rank: int
    size: int
    local_rank: int
    device: torch.device
    backend: str
    control: dist.ProcessGroup
    store: dist.Store
    timeout: float

    def report(self, err: BaseException) -> str:
        """Record ``err`` as the pipeline's failure unless one is recorded; return the one kept."""
        return record_failure(self.store, failure_line(self.rank, err))

    @property
    def wire_device(self) -> torch.device:
        """Where activations travel: the GPU itself with NCCL, host memory with gloo."""
        return self.device if self.backend == "nccl" else torch.device("cpu")


def ranks_from_env(environ: Mapping[str, str] = os.environ) -> tuple[int, int, int]:
    """``(RANK, WORLD_SIZE, LOCAL_RANK)`` from a ``torchrun`` environment.

    Raises
    ------
    ConfigError
        When the process was not started by ``torchrun`` (a variable is missing).
    """
    missing = [name for name in _ENV if name not in environ]
    if missing:
        raise ConfigError(
            f"--distributed needs the environment that torchrun sets ({', '.join(missing)} missing); launch with "
            "`torchrun --nproc-per-node=K -m otblocks train CONFIG --out DIR --distributed`."
        )
    return int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ["LOCAL_RANK"])


def stage_device(name: str, local_rank: int) -> torch.device:
    """This rank's device for ``train.device = name``: ``cuda:LOCAL_RANK`` or the CPU."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available() or local_rank >= torch.cuda.device_count():
        raise ConfigError(
            f"The 'train.device' config key is '{name}' but local rank {local_rank} has no GPU "
            f"({torch.cuda.device_count()} visible); start at most one process per GPU, or use 'cpu'."
        )
    return torch.device("cuda", local_rank)


def resolve_backend(name: str, device: torch.device) -> str:
    """``distributed.backend``: ``auto`` is NCCL on CUDA and gloo on the CPU; NCCL needs CUDA."""
    if name == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if name == "nccl" and device.type != "cuda":
        raise ConfigError(
            "The 'distributed.backend' config key is 'nccl' but this rank trains on the CPU; use 'gloo' or 'auto'."
        )
    return name


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def join_world(config: RunConfig) -> Iterator[World]:
    """Join the ``torchrun`` process group for the duration of the ``with`` block."""
    rank, size, local_rank = ranks_from_env()
    device = stage_device(config.train.device, local_rank)
    backend = resolve_backend(config.distributed.backend, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=config.distributed.timeout)
    store, _, _ = next(dist.rendezvous("env://", rank, size, timeout=timeout))
    dist.init_process_group(backend, store=store, rank=rank, world_size=size, timeout=timeout)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        control = dist.new_group(backend="gloo", timeout=timeout)
        world = World(rank, size, local_rank, device, backend, control, store, config.distributed.timeout)
        yield world
    except BaseException as err:
        first = record_failure(store, failure_line(rank, err))
        if isinstance(err, PeerLost):
            raise PipelineError(f"{first}; rank {rank} stopped too.") from None
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        dist.destroy_process_group()
