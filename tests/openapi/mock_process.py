"""`reqon mock` started as a real process on an ephemeral port, for the tests that run
missions against it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class MockProcess:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def log(self) -> list[str]:
        """The request lines printed so far (`METHOD /path?query STATUS operationId`); stops the mock."""
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        return [line for line in out.splitlines() if not line.startswith("reqon mock:")]


@contextmanager
def reqon_mock(spec: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[MockProcess]:
    process = subprocess.Popen(
        [sys.executable, "-m", "reqon.cli", "mock", str(spec), "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # blocks until it listens (or dies)
        found = re.search(r"on (http://127\.0\.0\.1:\d+\S*)", first)
        if found is None:
            process.kill()
            _, err = process.communicate(timeout=30)
            raise AssertionError(f"reqon mock did not start: {first!r} {err!r}")
        yield MockProcess(process, found.group(1))
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
