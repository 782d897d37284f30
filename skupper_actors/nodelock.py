"""One node per site: an exclusive `flock` on `<runtime_dir>/node.lock`.

The kernel drops the lock when the process ends, however it ends, so a node killed with
SIGKILL never leaves a stale lock behind. The file holds the holder's pid, for messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

LOCK_NAME = "node.lock"
#: How long a starting node retries: `holder()` probes take the lock for microseconds.
ACQUIRE_PATIENCE = 0.5


class SiteLocked(Exception):
    """Another process holds the site's lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid else "another process"
        super().__init__(f"another node already runs this site ({holder}; lock {path})")
        self.path = path
        self.pid = pid


def lock_path(runtime_dir: Path | str) -> Path:
    return Path(runtime_dir) / LOCK_NAME


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip() or "0") or None
    return None


def acquire(runtime_dir: Path | str) -> int:
    """Take the site's lock for the life of this process; its file descriptor.

    Raises SiteLocked when another process holds it.
    """
    path = lock_path(runtime_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + ACQUIRE_PATIENCE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            pid = _read_pid(fd)
            os.close(fd)
            raise SiteLocked(path, pid) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def holder(runtime_dir: Path | str) -> int | None:
    """The pid of the node holding the site's lock, or None when no node holds it.

    A holder whose pid is unknown (an empty file) is reported as 0.
    """
    path = lock_path(runtime_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
