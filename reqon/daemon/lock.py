"""One daemon per data directory (LANGUAGE.md §8.2).

The same OS lock as one `reqon run` of a mission per data directory
(`reqon.stores.locks.ProcessLock`, flock) on `<data-dir>/daemon.lock`: the kernel drops it
when the holder dies, however it dies, so a crashed daemon never blocks the next one. The
holder writes its PID into the lock file, so that the one refused can say who holds the
directory.
"""
from __future__ import annotations

from pathlib import Path

from reqon.errors import ConfigError
from reqon.stores.locks import LockHeld, ProcessLock


class DaemonLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = ProcessLock(data_dir / "daemon.lock", "reqon daemon")

    def acquire(self) -> None:
        """Hold the directory, or ConfigError naming the daemon that holds it."""
        try:
            self._lock.acquire()
        except LockHeld as held:
            who = f"PID {held.holder.pid}" if held.holder is not None else "PID unknown"
            raise ConfigError(f"another reqon daemon is running on the data directory {self.data_dir} "
                              f"({who}); stop it first or use another --data-dir") from None
        except OSError as exc:
            raise ConfigError(f"cannot lock the data directory {self.data_dir}: {exc.strerror or exc}") from None

    def release(self) -> None:
        self._lock.release()
