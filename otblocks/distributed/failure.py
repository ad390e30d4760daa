r"""How a pipeline stops when one of its ranks fails, and the test-only fault injection.

A rank that raises writes one line, ``rank R failed (TypeName: message)``, under a key of the
rendezvous store before it closes its connections. Its neighbours then see their next message
or credit fail ("connection closed by peer") or time out after ``distributed.timeout``
seconds; they read the store and raise :class:`PipelineError` with the first line written
there, so every surviving rank names the rank that failed, not the neighbour it happened to be
waiting for. A rank that dies without writing (``SIGKILL``, ``os._exit``) or hangs is named by
the first rank that lost contact with it.

Fault injection, for tests only: the environment variable ``OTBLOCKS_FAULT=RANK:EPOCH:BATCH:ACTION``
makes rank ``RANK`` act before it trains batch ``BATCH`` of epoch ``EPOCH`` (0-based), where
``ACTION`` is ``raise`` (a ``RuntimeError``), ``exit`` (``os._exit(17)``: the process vanishes
without cleanup, like a killed one), ``hang`` (sleeps until it is killed) or ``pause`` (sleeps
:data:`PAUSE_SECONDS`, then goes on: a slow rank, which changes nothing but the timing). It is read once,
by :func:`otblocks.distributed.train_distributed`, and checked in one place, the training pass
of :class:`otblocks.distributed.stage.Stage`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch.distributed as dist

from ..errors import ConfigError, OtblocksError

__all__ = ["FAULT_ENV", "Fault", "PeerLost", "PipelineError", "failure_line", "record_failure"]

FAULT_ENV = "OTBLOCKS_FAULT"
FAILURE_KEY = "otblocks/failure"
FAULT_ACTIONS = ("raise", "exit", "hang", "pause")
PAUSE_SECONDS = 2.0
"""How long a ``pause`` fault stops its rank: long enough for the ranks before it to fill its inbox."""


class PipelineError(OtblocksError, RuntimeError):
    """Another rank of the pipeline failed or stopped answering; this rank stopped too."""

    exit_code = 1


class PeerLost(Exception):
    """A wait on another rank failed: the connection closed, or nothing came within the timeout.

    Parameters
    ----------
    peer : int or None
        The rank waited for (``None`` in a collective, where any rank may be the one missing).
    what : str
        What was awaited, e.g. ``"a batch"``.
    detail : str
        The transport's own message.
    """

    def __init__(self, peer: int | None, what: str, detail: str) -> None:
        super().__init__(f"{what} from {'a rank' if peer is None else f'rank {peer}'}: {detail}")
        self.peer = peer
        self.what = what
        self.detail = detail

    def describe(self, observer: int) -> str:
        """One line naming the rank that stopped answering, how, and who noticed."""
        detail = self.detail.lower()
        if detail == "aborted":
            how = "it aborted"
        elif "timed out" in detail or "timeout" in detail:
            how = "it sent nothing within distributed.timeout"
        else:
            how = "it closed its connection"
        who = "a rank" if self.peer is None else f"rank {self.peer}"
        return f"{who} stopped responding ({how} while rank {observer} waited for {self.what})"


def failure_line(rank: int, err: BaseException) -> str:
    """How ``err`` on ``rank`` is reported to the other ranks."""
    if isinstance(err, PeerLost):
        return err.describe(rank)
    return f"rank {rank} failed ({type(err).__name__}: {err})"


def record_failure(store: dist.Store, line: str) -> str:
    """Write ``line`` as the pipeline's failure unless one is there already; return the one kept.

    The store lives in the launcher (``torchrun``) or in rank 0; when it is gone too, ``line``
    is returned as is.
    """
    try:
        kept = store.compare_set(FAILURE_KEY, "", line)
    except RuntimeError:
        return line
    return kept.decode() if isinstance(kept, bytes) else str(kept)


@dataclass(frozen=True)
class Fault:
    """An injected fault: ``rank`` does ``action`` before training batch ``batch`` of ``epoch``."""

    rank: int
    epoch: int
    batch: int
    action: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Fault | None:
        """The fault that ``OTBLOCKS_FAULT`` describes, or ``None`` when it is unset."""
        text = environ.get(FAULT_ENV)
        if not text:
            return None
        parts = text.split(":")
        if len(parts) != 4 or parts[3] not in FAULT_ACTIONS or not all(p.isdigit() for p in parts[:3]):
            raise ConfigError(
                f"The '{FAULT_ENV}' environment variable must look like 'RANK:EPOCH:BATCH:ACTION' with ACTION "
                f"one of {{'raise', 'exit', 'hang', 'pause'}}; got {text!r}."
            )
        return cls(int(parts[0]), int(parts[1]), int(parts[2]), parts[3])

    def check(self, rank: int, epoch: int, batch: int) -> None:
        """Act if this is the rank, epoch and batch of the fault."""
        if (rank, epoch, batch) != (self.rank, self.epoch, self.batch):
            return
        if self.action == "exit":
            os._exit(17)
        if self.action == "pause":
            time.sleep(PAUSE_SECONDS)
            return
        if self.action == "hang":
            while True:
                time.sleep(3600)
        raise RuntimeError(f"injected fault ({FAULT_ENV}={self.rank}:{self.epoch}:{self.batch}:{self.action})")
