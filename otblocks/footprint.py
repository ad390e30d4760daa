"""How much memory a configuration needs at least, and how much this machine gives: checked before any work.

:func:`check_fits` is called by :func:`otblocks.config.validate`, so a data set or a model
far beyond memory stops with one line naming the key, the estimate and the budget, instead
of an allocator error after files were written. The estimate is a *floor* (what must exist
at once, not every temporary), so it never refuses a run that would fit; a run just under
the budget may still fail later.

The budget is the smallest of: the memory available now (``MemAvailable`` of
``/proc/meminfo``, or the physical memory elsewhere), the process's address-space and data
limits (``ulimit -v``, ``ulimit -d``) and the cgroup's limit (containers). Only host memory is
counted: the data are built on the host; a model trained on a GPU also passes through host
memory when it is built and checkpointed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .config import RunConfig

__all__ = ["check_fits", "estimate_bytes", "memory_budget"]

# host bytes per point while a toy set is drawn: a few float64 (n, 2) temporaries and the labels
_TOY_BYTES_PER_POINT = 64
# (channels, height, width) and number of images of the image data sets, kept in float32
_IMAGE_SETS = {
    "mnist": ((1, 28, 28), 70_000),
    "fashionmnist": ((1, 28, 28), 70_000),
    "cifar10": ((3, 32, 32), 60_000),
    "cifar100": ((3, 32, 32), 60_000),
    "stl10": ((3, 96, 96), 13_000),
    "digits": ((1, 8, 8), 1_797),
}
# float32 parameter, its gradient and Adam's two moments
_BYTES_PER_PARAMETER = 16


def _model_parameters(config: RunConfig) -> tuple[int, int]:
    """Parameters of the network and the widest activation of one sample (both lower bounds)."""
    m = config.model
    if m.kind == "mlp":
        per_block = 2 * m.width * m.hidden + m.hidden + m.width
        return m.depth * per_block, m.hidden
    (channels, height, width), _ = _IMAGE_SETS.get(config.data.name, ((3, 32, 32), 0))
    widths = list(m.stage_channels) or [m.stem_channels]
    blocks = list(m.stage_blocks) or [m.depth]
    params = sum(b * 2 * 9 * c * c for b, c in zip(blocks, widths, strict=True)) + 9 * channels * m.stem_channels
    return params, max(widths + [m.stem_channels]) * height * width


def estimate_bytes(config: RunConfig) -> dict[str, int]:
    """A floor on the host memory a run needs: ``{"data": bytes, "model": bytes}``."""
    d, tr = config.data, config.train
    if d.name in _IMAGE_SETS:
        shape, count = _IMAGE_SETS[d.name]
        data = count * math.prod(shape) * 4
    else:
        data = (d.n_train + d.n_val + d.n_test) * _TOY_BYTES_PER_POINT
    params, activation = _model_parameters(config)
    blocks_per_module = config.model.blocks_per_module
    model = params * _BYTES_PER_PARAMETER + tr.batch_size * activation * 4 * blocks_per_module
    return {"data": int(data), "model": int(model)}


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def memory_budget() -> tuple[int, str]:
    """The memory this process may use, in bytes, and where that number comes from."""
    candidates: list[tuple[int, str]] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append((int(line.split()[1]) * 1024, "available memory"))
    except OSError:
        pass
    if not candidates and hasattr(os, "sysconf"):
        try:
            candidates.append((os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "physical memory"))
        except (ValueError, OSError):
            pass
    try:
        import resource

        for limit, name in ((resource.RLIMIT_AS, "ulimit -v"), (resource.RLIMIT_DATA, "ulimit -d")):
            soft = resource.getrlimit(limit)[0]
            if soft != resource.RLIM_INFINITY and soft > 0:
                candidates.append((soft, f"the limit of {name}"))
    except (ImportError, ValueError, OSError):
        pass
    cgroup_max = _read_int("/sys/fs/cgroup/memory.max")
    if cgroup_max is not None:
        used = _read_int("/sys/fs/cgroup/memory.current") or 0
        candidates.append((max(cgroup_max - used, 0), "the container's memory limit"))
    if not candidates:
        return 2**62, "no known limit"
    return min(candidates)


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_fits(config: RunConfig) -> None:
    """Raise :class:`ConfigError` when the floor of :func:`estimate_bytes` exceeds :func:`memory_budget`."""
    need = estimate_bytes(config)
    total = sum(need.values())
    budget, source = memory_budget()
    if total <= budget:
        return
    d, m = config.data, config.model
    if need["data"] >= need["model"]:
        if d.name in _IMAGE_SETS:
            key, value, what = "data.name", d.name, f"the data set '{d.name}' ({_gib(need['data'])})"
        else:
            key, value = "data.n_train", d.n_train
            n = d.n_train + d.n_val + d.n_test
            what = f"{n:,} points of data ({_gib(need['data'])})"
    else:
        key = "model.hidden" if m.kind == "mlp" else "model.stage_channels"
        value = m.hidden if m.kind == "mlp" else (m.stage_channels or m.stem_channels)
        what = f"the model and its optimizer ({_gib(need['model'])})"
    raise ConfigError(
        f"The '{key}' config key must fit in memory; got {value!r}: {what} need at least {_gib(total)}, "
        f"more than the {_gib(budget)} of {source}."
    )
