"""One run per results directory: an exclusive ``flock`` on ``<results>/run.lock``.

The kernel drops the lock when the process that holds it ends, however it ends (Ctrl-C,
SIGTERM, ``kill -9``, a crash), so a dead run never leaves the directory stuck; the file itself
stays behind, empty of meaning once unlocked. The descriptor is close-on-exec, so worker
processes never hold it. ``status``, ``export`` and ``report`` do not take the lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from pathlib import Path


class RunLockBusy(Exception):
    """Another run holds the results directory; the message is one line."""


class RunLock:
    """``with RunLock(results_dir):`` holds the directory for one run."""

    FILENAME = "run.lock"

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / self.FILENAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            who = f" ({holder})" if holder else ""
            raise RunLockBusy(
                f"another `sparsedp run` is using {self.path.parent}{who}; wait for it to "
                "finish or stop it (its trials are kept) and run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
