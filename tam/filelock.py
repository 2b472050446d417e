"""An exclusive lock that processes and threads share: ``fcntl.flock`` on a lock file.

``flock`` belongs to an open file description, so every entry that is not
nested opens the lock file afresh: two :class:`FileLock` objects on one path
exclude each other whether they live in two processes or in two threads of one,
and a forked child never inherits a lock it did not take. One :class:`FileLock`
is reentrant for the thread holding it, so an operation that takes the lock may
call another that takes it too. The lock file itself is left in place (an empty
file); removing it while someone waits would let two holders in.
"""
from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from tam.errors import TamError


class FileLock:
    """``with lock:`` holds the lock on ``path`` (created when missing) until the block ends."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._thread_lock = threading.RLock()
        self._depth = 0  # entries of the thread that holds it
        self._fd: int | None = None

    @property
    def depth(self) -> int:
        """How many times the holding thread has entered (0 when free); meaningful to the holder."""
        return self._depth

    def __enter__(self) -> "FileLock":
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                self._fd = self._take()
            self._depth += 1
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                fd, self._fd = self._fd, None
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
        finally:
            self._thread_lock.release()

    def _take(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise TamError(f"cannot lock {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd
