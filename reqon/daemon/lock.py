"""One daemon per data directory (LANGUAGE.md §8.2).

An OS lock (`filelock`, flock on POSIX) on `<data-dir>/daemon.lock` is the rule: the
kernel drops it when the holder dies, however it dies, so a crashed daemon never blocks
the next one. The holder's PID sits in `daemon.pid` beside it, only so that the one
refused can say who holds the directory.
"""
from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

from reqon.errors import ConfigError
from reqon.stores.file import write_atomically


class DaemonLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pid_file = data_dir / "daemon.pid"
        self._lock = FileLock(str(data_dir / "daemon.lock"), timeout=0)

    def acquire(self) -> None:
        """Hold the directory, or ConfigError naming the daemon that holds it."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except Timeout:
            raise ConfigError(f"another reqon daemon is running on the data directory {self.data_dir} "
                              f"({self._holder()}); stop it first or use another --data-dir") from None
        except OSError as exc:
            raise ConfigError(f"cannot lock the data directory {self.data_dir}: {exc.strerror or exc}") from None
        write_atomically(self.pid_file, f"{os.getpid()}\n")

    def release(self) -> None:
        if self._lock.is_locked:
            self.pid_file.unlink(missing_ok=True)
            self._lock.release()

    def _holder(self) -> str:
        try:
            pid = self.pid_file.read_text("ascii").strip()
        except OSError:
            return "PID unknown"
        return f"PID {pid}" if pid.isdigit() else "PID unknown"
