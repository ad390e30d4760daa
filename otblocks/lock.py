"""One writer per directory: an exclusive lock file naming its holder.

A run directory (``otblocks train``, ``--resume``) and a sweep directory (``otblocks sweep``)
are written by one process at a time. The writer creates ``DIR/.lock`` with ``O_CREAT |
O_EXCL`` (atomic on local file systems) and writes its PID, host name and start time into
it; a second writer finds the file and stops with one line naming the holder, before it
touches anything. The holder removes the file when it finishes, fails or is interrupted.

A lock left by a process that was killed (``SIGKILL``, a power cut) is *stale*: when its
host is this host and its PID no longer runs, the next writer takes it over and says so.
A lock from another host cannot be checked from here; it is reported as held, with the
command that removes it once the user knows the other process is gone.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from .errors import FileSystemError, LockedError

__all__ = ["LOCK_NAME", "DirLock", "read_lock"]

LOCK_NAME = ".lock"

_UNREADABLE_GRACE_S = 10.0
"""A lock file still empty or unreadable after this long was left by a writer killed between
creating and filling it (its fill takes microseconds): it is stale."""


def read_lock(directory: str | Path) -> dict | None:
    """The holder recorded in ``directory``'s lock (``pid``, ``host``, ``started``, ``token``), or None."""
    return _read_json(Path(directory) / LOCK_NAME)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _describe(holder: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"PID {holder.get('pid')} on host {holder.get('host')!r} (since {started})"


class DirLock:
    """The exclusive lock of a run or sweep directory, as a context manager.

    Parameters
    ----------
    directory : path
        The directory to lock; created when absent (and removed again on release if the
        lock was all that was written into it).
    what : str
        What the directory is, for messages (``"run directory"``, ``"sweep directory"``).
    warn : callable (str) -> None
        Where the stale-lock take-over message goes (default: standard error).

    Raises
    ------
    LockedError
        On entry, when a live process (or a process on another host) holds the lock.
    FileSystemError
        When the directory cannot be created or written.
    """

    def __init__(
        self, directory: str | Path, what: str = "run directory", *, warn: Callable[[str], None] | None = None
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.what = what
        self.warn = warn or (lambda message: print(f"otblocks: {message}", file=sys.stderr))
        self._token: str | None = None
        self._created_dir = False

    def acquire(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise FileSystemError(f"The {self.what} '{self.directory}' is a file; expected a directory.")
        self._created_dir = not self.directory.exists()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FileSystemError(f"Cannot create the {self.what} '{self.directory}': {err.strerror or err}.") from None
        token = uuid.uuid4().hex
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "token": token}
        for _ in range(3):  # a take-over may race with another one; then the winner holds it
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._handle_existing()
                continue
            except OSError as err:
                self._cleanup_dir()
                raise FileSystemError(f"Cannot write the lock '{self.path}': {err.strerror or err}.") from None
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(record))
            self._token = token
            return
        raise LockedError(f"The {self.what} '{self.directory}' is being locked by other processes; try again.")

    def _handle_existing(self) -> None:
        """Raise :class:`LockedError` for a live holder; remove a stale lock (and say so)."""
        holder = read_lock(self.directory)
        here = socket.gethostname()
        if holder is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return  # released meanwhile: try again
            if age < _UNREADABLE_GRACE_S:
                raise LockedError(
                    f"The {self.what} '{self.directory}' is locked by a process that is starting ({self.path}); "
                    "try again in a few seconds."
                )
            reason = f"an unreadable lock file {age:.0f} s old"
        elif holder.get("host") != here:
            raise LockedError(
                f"The {self.what} '{self.directory}' is in use by {_describe(holder)}; wait for it to finish "
                f"(if that process is gone, remove '{self.path}')."
            )
        elif _pid_alive(int(holder.get("pid", -1))):
            raise LockedError(
                f"The {self.what} '{self.directory}' is in use by {_describe(holder)}; wait for it to finish "
                "or stop it first."
            )
        else:
            reason = f"the lock of {_describe(holder)}, which no longer runs"
        # Move the stale file aside under a unique name, then check it is the one judged stale:
        # a concurrent taker may have replaced it with its own live lock in between.
        aside = self.path.with_name(f"{LOCK_NAME}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        moved = _read_json(aside)
        if holder is not None and (moved or {}).get("token") != holder.get("token"):
            try:
                os.link(aside, self.path)  # put the live lock back
            except OSError:
                pass
            aside.unlink(missing_ok=True)
            raise LockedError(f"The {self.what} '{self.directory}' was just locked by another process; try again.")
        aside.unlink(missing_ok=True)
        self.warn(f"taking over the stale lock of the {self.what} '{self.directory}' ({reason}).")

    def release(self) -> None:
        """Remove the lock if this object holds it (a lock taken over by another process stays)."""
        if self._token is None:
            return
        if (read_lock(self.directory) or {}).get("token") == self._token:
            self.path.unlink(missing_ok=True)
        self._token = None
        self._cleanup_dir()

    def _cleanup_dir(self) -> None:
        """Remove the directory this lock created when nothing else was written into it."""
        if self._created_dir:
            try:
                self.directory.rmdir()
            except OSError:
                pass
            self._created_dir = False

    @property
    def held(self) -> bool:
        return self._token is not None

    def __enter__(self) -> DirLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
