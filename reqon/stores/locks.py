"""Locks between processes, held by the operating system: released when the holder exits,
however it exits (SIGKILL and out-of-memory included), so there is never a stale lock file
to remove by hand. The lock files themselves stay; they are empty of meaning when no
process holds them.

Two uses, one primitive (`flock(2)` on a file of its own):

* `ProcessLock`: "only one of these may run": one `reqon run` of a mission per data
  directory, and the daemon's single-instance rule. The holder writes its pid, its start
  time and what it is into the lock file, so that the one refused can say who holds it.
* `FileLock`: a short critical section shared by processes, such as a file store's flush;
  taken without blocking the event loop (`acquire_async` polls), released by `release`.

POSIX only (`fcntl`); reqon does not run on Windows.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Self


@dataclass(frozen=True)
class Holder:
    """Who holds a `ProcessLock`: as the holder wrote it into the lock file."""

    pid: int
    started: str
    what: str


class LockHeld(Exception):
    """Another process holds the lock; `holder` is None when it has not said who it is yet."""

    def __init__(self, path: Path, holder: Holder | None) -> None:
        super().__init__(f"{path} is locked by {holder.pid if holder else 'another process'}")
        self.path = path
        self.holder = holder


class FileLock:
    """An exclusive `flock` on `path` (created if missing), for short critical sections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    async def acquire_async(self, poll_s: float = 0.005) -> None:
        """Wait for the lock without blocking the event loop; cancelling leaves it untaken."""
        while not self.try_acquire():
            await asyncio.sleep(poll_s)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor drops the flock

    @property
    def fd(self) -> int | None:
        return self._fd


class ProcessLock:
    """`with ProcessLock(path, "mission M"):` or `acquire()`/`release()`; raises `LockHeld`."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._lock = FileLock(path)

    def acquire(self) -> None:
        if not self._lock.try_acquire():
            holder = read_holder(self.path)
            for _ in range(50):  # the holder writes who it is just after taking the lock
                if holder is not None:
                    break
                time.sleep(0.02)
                holder = read_holder(self.path)
            raise LockHeld(self.path, holder)
        fd = self._lock.fd
        assert fd is not None
        started = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        data = json.dumps({"pid": os.getpid(), "started": started, "what": self.what}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)

    def release(self) -> None:
        fd = self._lock.fd
        if fd is not None:
            os.ftruncate(fd, 0)  # still held while truncating: no reader sees a half-written holder
        self._lock.release()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


def read_holder(path: Path) -> Holder | None:
    """Who holds the lock at `path`, as written there; None when unreadable or empty."""
    try:
        data = json.loads(path.read_bytes() or b"null")
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    return Holder(data["pid"], str(data.get("started", "?")), str(data.get("what", "?")))
