"""One writer per output: an exclusive lock held for the life of a job.

Two jobs writing the same output (or its progress file) would interleave their bytes and
checkpoints. :class:`OutputLock` takes an exclusive, non-blocking lock on a small file next to
the output (``.<output name>.lock``) before anything is opened for writing, and keeps it until
the job ends; a second writer is refused at once with :class:`OutputLockedError`, naming the
process that holds the lock. The operating system releases the lock when its process dies
(``kill -9`` included), so a crashed job never leaves a stale lock behind: ``--resume`` just
takes it again. The lock file records the holder (process id, host, command, start time) and
is removed when the lock is released.

Example:
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
    >>> with OutputLock(out):
    ...     try:
    ...         OutputLock(out).acquire()
    ...     except OutputLockedError as error:
    ...         print("refused")
    refused
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from multimodal_cat.errors import MultimodalCatError

__all__ = ["OutputLock", "OutputLockedError", "lock_path"]


class OutputLockedError(MultimodalCatError, ValueError):
    """Another job is writing the same output (it holds the output's lock)."""


def lock_path(path: str | Path) -> Path:
    """Where the lock of output ``path`` lives."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


class OutputLock:
    """An exclusive lock on one output, taken without waiting.

    Args:
        output: The output file the lock protects (with its progress file).

    Raises:
        OutputLockedError: On :meth:`acquire`, when another process holds the lock.
    """

    def __init__(self, output: str | Path) -> None:
        self.output = Path(output)
        self.path = lock_path(self.output)
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`OutputLockedError` naming its holder."""
        if self._fd is not None:
            return
        for _ in range(50):  # another holder may remove the file between open and lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                holder = _describe_holder(fd)
                os.close(fd)
                raise OutputLockedError(
                    f"{str(self.output)!r} is being written by another job ({holder}); two "
                    "jobs on one output would destroy it: wait for that job to finish, stop "
                    f"it, or choose another -o (lock file {self.path})"
                )
            if _same_file(fd, self.path):
                self._fd = fd
                _record_holder(fd)
                return
            os.close(fd)  # locked a file its holder had just removed: take the new one
        raise OutputLockedError(f"cannot take the lock {self.path}: it keeps changing")

    def release(self) -> None:
        """Remove the lock file and release the lock (no-op when not held)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def _try_lock(fd: int) -> bool:
    """Lock ``fd`` exclusively without waiting; ``False`` when another process holds it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _record_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv)[:500],
    }
    data = json.dumps(holder).encode("utf-8")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)
    os.fsync(fd)


def _describe_holder(fd: int) -> str:
    """``process 123 on host, started ..., running ...`` from the lock file, as far as known."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder: dict[str, Any] = json.loads(os.read(fd, 4096).decode("utf-8"))
    except (OSError, ValueError):
        return "a process that has just started"
    parts = [f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"]
    if holder.get("started"):
        parts.append(f"started {holder['started']}")
    if holder.get("command"):
        parts.append(f"running {holder['command']!r}")
    return ", ".join(parts)
