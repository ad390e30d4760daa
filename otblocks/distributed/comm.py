r"""Point-to-point messages between neighbouring ranks of the pipeline.

Two kinds of traffic travel between rank :math:`r` and rank :math:`r+1`:

- **batches**, forward only: a fixed-size ``int64`` header (message kind, pass number, batch
  index, then the dtype and shape of every tensor) on the *control* group, followed by the
  tensors themselves on the *data* group. The receiver allocates from the header, so nothing is
  assumed about activation shapes (vectors, images, mixed precision all travel the same way).
- **credits**, backward: one ``int64`` per consumed batch (and a final one when the pass is
  over) on the control group. They carry no activations; they bound the batches in flight.
- **abort**, both ways: a rank that fails during a pass sends an ``ABORT`` header forward and
  an ``ABORT`` credit backward, so that its neighbours stop at once and every receiving thread
  returns before its process exits (gloo cannot cancel a pending receive).

The control group is always gloo (CPU tensors; its waits honour ``distributed.timeout`` and
fail at once when the peer's process is gone). The data group is the default group: gloo on
the CPU, NCCL on CUDA, where the tensors stay on the GPU; with gloo and a CUDA device they
are staged through host memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from .failure import PeerLost

__all__ = [
    "ABORT",
    "BATCH",
    "CREDIT",
    "END",
    "FINAL",
    "Link",
    "Message",
    "Outgoing",
    "collective",
    "decode_header",
    "encode_header",
]

BATCH, END, ABORT = 1, 2, 3
CREDIT, FINAL = 1, 2
HEADER_SLOTS = 32
_HEADER_TAG, _CREDIT_TAG = 1, 2
_DTYPES = (
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
)


@dataclass(frozen=True)
class Message:
    """A message from the previous rank: ``kind`` (``BATCH``, ``END`` or ``ABORT``), the pass it
    belongs to, the batch index within the pass, and its tensors (``(x, y)`` for a batch only)."""

    kind: int
    pass_id: int
    index: int
    tensors: tuple[torch.Tensor, ...]


def encode_header(kind: int, pass_id: int, index: int, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The ``int64`` header, shape ``(HEADER_SLOTS,)``, announcing ``tensors``.

    Layout: ``kind, pass_id, index, n_tensors``, then per tensor ``dtype_code, ndim, *shape``;
    the rest is zero.

    Examples
    --------
    >>> h = encode_header(1, 3, 7, [torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64)])
    >>> decode_header(h)
    (1, 3, 7, [(torch.float32, (4, 2)), (torch.int64, (4,))])
    """
    slots = [kind, pass_id, index, len(tensors)]
    for t in tensors:
        if t.dtype not in _DTYPES:
            raise TypeError(f"Cannot send a tensor of dtype {t.dtype}; supported dtypes are {_DTYPES}.")
        slots += [_DTYPES.index(t.dtype), t.dim(), *t.shape]
    if len(slots) > HEADER_SLOTS:
        raise ValueError(
            f"The tensors of one message need {len(slots)} header slots, more than {HEADER_SLOTS}; "
            f"got shapes {[tuple(t.shape) for t in tensors]}."
        )
    return torch.tensor(slots + [0] * (HEADER_SLOTS - len(slots)), dtype=torch.int64)


def decode_header(header: torch.Tensor) -> tuple[int, int, int, list[tuple[torch.dtype, tuple[int, ...]]]]:
    """``(kind, pass_id, index, [(dtype, shape), ...])`` from a header of :func:`encode_header`."""
    slots = header.tolist()
    kind, pass_id, index, n = slots[:4]
    specs, at = [], 4
    for _ in range(n):
        code, ndim = slots[at], slots[at + 1]
        specs.append((_DTYPES[code], tuple(slots[at + 2 : at + 2 + ndim])))
        at += 2 + ndim
    return kind, pass_id, index, specs


def collective(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a collective call, turning a transport failure into :class:`PeerLost` (peer unknown)."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as err:
        raise PeerLost(None, what, str(err)) from err


@dataclass
class Outgoing:
    """A message being sent to ``peer``: its pending sends and the tensors they read (kept alive until done)."""

    peer: int
    works: list[dist.Work]
    tensors: tuple[torch.Tensor, ...]

    def wait(self) -> None:
        """Until ``peer`` has received the message (at most the process group's timeout)."""
        for work in self.works:
            try:
                work.wait()
            except RuntimeError as err:
                raise PeerLost(self.peer, "the receipt of a message", str(err)) from err


class Link:
    """This rank's side of the connection with one neighbour.

    Parameters
    ----------
    peer : int
        The neighbour's rank.
    control : ProcessGroup
        The gloo group for headers and credits.
    device : torch.device
        Where received tensors are used.
    wire_device : torch.device
        Where tensors travel: ``device`` with NCCL, the CPU with gloo.
    timeout : float
        Seconds a receive may wait before the neighbour is declared unresponsive.
    channels_last : bool
        Store received 4-D tensors in channels-last order (``train.channels_last``).
    """

    def __init__(
        self,
        peer: int,
        control: dist.ProcessGroup,
        device: torch.device,
        wire_device: torch.device,
        timeout: float,
        channels_last: bool = False,
    ) -> None:
        self.peer = peer
        self.control = control
        self.device = device
        self.wire_device = wire_device
        self.timeout = timedelta(seconds=timeout)
        self.channels_last = channels_last

    def _isend(self, tensor: torch.Tensor, what: str, **kwargs: Any) -> dist.Work:
        """Start sending ``tensor``; a connection the peer already closed raises :class:`PeerLost`."""
        try:
            return dist.isend(tensor, self.peer, **kwargs)
        except RuntimeError as err:
            raise PeerLost(self.peer, f"the sending of {what}", str(err)) from err

    def _recv_into(self, tensor: torch.Tensor, what: str, **kwargs: Any) -> None:
        """Receive into ``tensor`` within the timeout; a closed connection or silence raises :class:`PeerLost`."""
        try:
            dist.irecv(tensor, self.peer, **kwargs).wait(self.timeout)
        except RuntimeError as err:
            raise PeerLost(self.peer, what, str(err)) from err

    # ----------------------------------------------------------------- batches, forward
    def send(self, kind: int, pass_id: int, index: int, tensors: Sequence[torch.Tensor]) -> Outgoing:
        """Start sending one message; wait on the result (or drop it once credited) later."""
        wire = tuple(t.detach().to(self.wire_device).contiguous() for t in tensors)
        header = encode_header(kind, pass_id, index, wire)
        works = [self._isend(header, "a message", group=self.control, tag=_HEADER_TAG)]
        works += [self._isend(t, "a message") for t in wire]
        return Outgoing(self.peer, works, (header, *wire))

    def recv(self) -> Message:
        """Receive the next message (blocking, at most ``timeout`` seconds per part)."""
        header = torch.empty(HEADER_SLOTS, dtype=torch.int64)
        self._recv_into(header, "a message header", group=self.control, tag=_HEADER_TAG)
        kind, pass_id, index, specs = decode_header(header)
        tensors = []
        for dtype, shape in specs:
            t = torch.empty(shape, dtype=dtype, device=self.wire_device)
            self._recv_into(t, "a tensor")
            t = t.to(self.device, non_blocking=True)
            if self.channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            tensors.append(t)
        return Message(kind, pass_id, index, tuple(tensors))

    # ----------------------------------------------------------------- credits, backward
    def send_credit(self, kind: int) -> Outgoing:
        """Tell the previous rank that one of its batches was taken (``CREDIT``), that this rank's
        pass ended (``FINAL``), or that this rank stops (``ABORT``)."""
        credit = torch.tensor([kind], dtype=torch.int64)
        return Outgoing(self.peer, [self._isend(credit, "a credit", group=self.control, tag=_CREDIT_TAG)], (credit,))

    def recv_credit(self) -> int:
        """Receive one credit from the next rank: its kind, ``CREDIT``, ``FINAL`` or ``ABORT``."""
        credit = torch.empty(1, dtype=torch.int64)
        self._recv_into(credit, "a credit", group=self.control, tag=_CREDIT_TAG)
        return int(credit.item())
