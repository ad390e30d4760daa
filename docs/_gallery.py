"""Run before each gallery example (``reset_modules`` in ``conf.py``): sphinx-gallery runs every
example in the build's process, so torch's global state set by one (``otblocks`` sets the thread
count from its configuration) must not carry into the next."""

from __future__ import annotations

import torch

#: torch's own default, read when the build imports this module, before any example runs.
_THREADS = torch.get_num_threads()


def reset_torch(gallery_conf, fname) -> None:
    """Restore torch's default thread count and non-deterministic algorithms."""
    torch.set_num_threads(_THREADS)
    torch.use_deterministic_algorithms(False)
