r"""The replay buffer of a stage: the asynchronous variant of decoupled greedy learning.

A stage that would wait (for the previous rank's next batch, or for a credit from the next
rank) trains its modules once more on a batch it has already seen instead of idling. Each
stored batch is replayed at most ``max_uses`` times (``distributed.replay``) and the buffer
holds the ``capacity`` most recent batches (``distributed.max_in_flight``), which bounds both
staleness and memory. Replayed steps update the stage's own modules only: their outputs are not
sent on, and their losses do not enter the epoch's metrics.
"""

from __future__ import annotations

from collections import deque

import torch

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """The most recent inputs of a stage, each replayable a bounded number of times.

    Parameters
    ----------
    capacity : int
        Batches kept; the oldest is dropped when a new one comes.
    max_uses : int
        Replays allowed per batch; 0 disables the buffer.

    Examples
    --------
    >>> buffer = ReplayBuffer(capacity=2, max_uses=1)
    >>> for i in range(3):
    ...     buffer.add(torch.tensor([i]), torch.tensor([i]))
    >>> [int(buffer.take()[0]) for _ in range(len(buffer))]
    [2, 1]
    >>> len(buffer)
    0
    """

    def __init__(self, capacity: int, max_uses: int) -> None:
        if capacity < 1:
            raise ValueError(f"The 'capacity' parameter of `ReplayBuffer` must be a positive integer; got {capacity}.")
        if max_uses < 0:
            raise ValueError(f"The 'max_uses' parameter of `ReplayBuffer` must be an integer >= 0; got {max_uses}.")
        self.max_uses = max_uses
        self._entries: deque[list] = deque(maxlen=capacity)  # [x, y, replays left]

    def __len__(self) -> int:
        """Batches that can still be replayed."""
        return len(self._entries)

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Store a batch just trained on (nothing is kept when ``max_uses`` is 0)."""
        if self.max_uses:
            self._entries.append([x.detach(), y, self.max_uses])

    def take(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The most recent batch with replays left (the least stale); counts one use."""
        if not self._entries:
            raise IndexError("The replay buffer is empty.")
        entry = self._entries[-1]
        entry[2] -= 1
        if entry[2] == 0:
            self._entries.pop()
        return entry[0], entry[1]
