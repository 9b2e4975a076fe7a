"""The fixtures of the daemon tests: a real API that counts what it sees, and daemon processes
that are killed at the end of the test whatever happened."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon.api import DaemonApi
from tests.daemon.processes import Daemon


@pytest.fixture
def api() -> Iterator[DaemonApi]:
    server = DaemonApi()
    yield server
    server.close()


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(mission: Path, data_dir: Path, url: str, *args: str) -> Daemon:
        daemon = Daemon(mission, data_dir, url, *args)
        started.append(daemon)
        return daemon
    yield start
    for daemon in started:
        daemon.close()
