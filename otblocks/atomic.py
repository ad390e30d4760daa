"""Whole files or none: every file a reader may open is written under a temporary name, then renamed.

``os.replace`` within one directory is atomic on POSIX and Windows, so a reader (``compare``
on a running sweep, the report) sees the old file or the new one, never half of one; a crash
leaves at most a ``.NAME.tmp-*`` file beside it, which nothing reads.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto ``path`` when the block succeeds, removed if not.

    >>> with atomic_path("fig.png") as tmp:     # doctest: +SKIP
    ...     fig.savefig(tmp, format="png")
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
