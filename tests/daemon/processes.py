"""Daemon processes for the tests of this folder: started, watched and always ended.

A `Daemon` is a real `reqon run … --daemon` process whose stderr goes to a file (so that it
never blocks); `wait_until` polls for an event with a generous deadline, so that a loaded
machine makes the tests slower, not red.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATIENCE_S = 90.0  # how long to wait for something that should happen within seconds


class Daemon:
    """A `reqon run … --daemon` process; stderr goes to a file so that it never blocks."""

    def __init__(self, mission: Path, data_dir: Path, url: str, *args: str) -> None:
        self.log_path = data_dir.parent / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        env = dict(os.environ, API_URL=url)
        env.pop("REQON_DEBUG", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reqon.cli", "run", str(mission), "--data-dir", str(data_dir), *args],
            stdout=subprocess.DEVNULL, stderr=self._log, env=env, cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text("utf-8")

    def signal(self, signum: int) -> float:
        """Send `signum`; returns the seconds until the process exited."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        self.process.wait(timeout=PATIENCE_S)
        return time.monotonic() - sent

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def wait_until(condition: Callable[[], bool], what: str, daemon: Daemon | None = None) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if daemon is not None and daemon.process.poll() is not None:
            raise AssertionError(f"daemon exited with {daemon.process.returncode} before {what}:\n{daemon.log}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f":\n{daemon.log}" if daemon else ""))
        time.sleep(0.05)


def write(tmp_path: Path, text: str, name: str = "missions.vague") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def history(data_dir: Path, mission: str) -> list[dict[str, object]]:
    path = data_dir / "runs" / f"{mission}.history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def store(data_dir: Path, target: str) -> dict[str, object]:
    return json.loads((data_dir / f"{target}.json").read_text("utf-8"))  # type: ignore[no-any-return]
