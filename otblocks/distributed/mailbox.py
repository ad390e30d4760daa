"""What arrives at a stage during one pass, received in the background.

Two receiver threads (*pumps*) block on :class:`~otblocks.distributed.comm.Link` receives so
that the training thread never does: one takes the previous rank's messages, one the next
rank's credits. Each pump runs for one pass (it stops after the ``END`` message or the final
credit, or when the neighbour aborts, closes its connection or stays silent for the timeout)
and posts what it got, or the exception that stopped it, to a :class:`Mailbox`; the
training thread waits on the mailbox's condition and can use the time to replay stored
batches. Only one tensor transport exists, ``torch.distributed``: the mailbox just hands
received tensors from one thread of the process to another.
"""

from __future__ import annotations

import threading
from collections import deque

import torch

from .comm import ABORT, END, FINAL, Link, Message
from .failure import PeerLost

__all__ = ["Mailbox"]


class Mailbox:
    """Messages and credits of one pass, shared by the pumps and the training thread.

    Attributes
    ----------
    cond : threading.Condition
        Guards every attribute; notified whenever something is posted.
    messages : deque of Message
        Received from the previous rank, not yet taken.
    credits : int
        Credits received from the next rank in this pass.
    final : bool
        The next rank has finished this pass (its final credit came).
    error : BaseException or None
        What stopped a pump (re-raised by the training thread).
    received, taken : int
        Batches received, and taken out by the training thread.
    max_waiting : int
        Largest ``received - taken`` seen: batches in flight into this rank.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.messages: deque[Message] = deque()
        self.credits = 0
        self.final = False
        self.error: BaseException | None = None
        self.received = 0
        self.taken = 0
        self.max_waiting = 0
        self._threads: list[threading.Thread] = []

    def start(self, upstream: Link | None, downstream: Link | None, device: torch.device) -> None:
        """Start the pumps of the links that exist (none on a single-rank pipeline)."""
        if upstream is not None:
            self._spawn(self._pump_messages, upstream, device)
        if downstream is not None:
            self._spawn(self._pump_credits, downstream, device)

    def join(self) -> None:
        """Wait for the pumps; each returns at the end of the pass, or on ``ABORT``, a closed
        connection or its timeout."""
        for thread in self._threads:
            thread.join()

    def raise_error(self) -> None:
        """Re-raise a pump's exception in the calling thread (call with ``cond`` held)."""
        if self.error is not None:
            raise self.error

    def _spawn(self, target, link: Link, device: torch.device) -> None:
        thread = threading.Thread(target=self._guarded, args=(target, link, device), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _guarded(self, target, link: Link, device: torch.device) -> None:
        try:
            if device.type == "cuda":
                torch.cuda.set_device(device)  # the current device is per thread
            target(link)
        except BaseException as err:  # noqa: BLE001 - handed to the training thread
            with self.cond:
                self.error = err
                self.cond.notify_all()

    def _pump_messages(self, link: Link) -> None:
        while True:
            message = link.recv()
            if message.kind == ABORT:
                raise PeerLost(link.peer, "a batch", "aborted")
            with self.cond:
                self.messages.append(message)
                if message.kind != END:
                    self.received += 1
                    self.max_waiting = max(self.max_waiting, self.received - self.taken)
                self.cond.notify_all()
            if message.kind == END:
                return

    def _pump_credits(self, link: Link) -> None:
        while True:
            kind = link.recv_credit()
            if kind == ABORT:
                raise PeerLost(link.peer, "a credit", "aborted")
            final = kind == FINAL
            with self.cond:
                if final:
                    self.final = True
                else:
                    self.credits += 1
                self.cond.notify_all()
            if final:
                return
