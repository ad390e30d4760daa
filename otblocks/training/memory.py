"""Peak memory of a phase of training (one module's epoch, one evaluation).

- CUDA: the caching allocator's peak of allocated tensor bytes on the device
  (``torch.cuda.max_memory_allocated``), reset by ``torch.cuda.reset_peak_memory_stats``.
- CPU on Linux: the process's peak resident set size (``VmHWM`` in ``/proc/self/status``),
  reset to the current resident size by writing ``5`` to ``/proc/self/clear_refs``. It
  counts everything the process holds (interpreter, libraries, the data set in memory), not
  only tensors, so compare differences between phases or runs, not absolute values.
- CPU elsewhere: ``getrusage``'s ``ru_maxrss``, the peak over the whole process (no reset).
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import torch

__all__ = ["peak_memory_bytes", "reset_peak_memory"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak for ``device`` (a no-op where the platform has no reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


def peak_memory_bytes(device: torch.device) -> int:
    """Peak bytes since the last :func:`reset_peak_memory` (see the module docstring for what is counted)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)
