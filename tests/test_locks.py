"""One run of a mission per data directory; runs of different missions share stores safely.

Real `reqon run` processes against the demo server; the server's `/hold` barrier makes two
runs overlap without any timing (reqon/stores/locks.py, docs/reliability.md).
"""
from __future__ import annotations

import json
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from reqon.demo.server import ThreadedServer
from tests.conftest import MakeServer, run_mission_text, start_reqon_run

pytestmark = pytest.mark.timeout(120)

LONG = """
mission Long {
  source Api { auth: none, base: env("DEMO_URL") }
  store done: file("done")
  action Wait {
    get "/slow" { params: { ms: env("SLOW_MS") } }
    store { id: "waited" } -> done
  }
  run Wait
}
"""


def wait_until(condition: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_second_run_of_the_same_mission_is_refused_and_a_killed_run_blocks_nothing(
        tmp_path: Path, make_server: MakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server()
    mission = tmp_path / "mission.vague"
    mission.write_text(LONG, encoding="utf-8")
    monkeypatch.setenv("SLOW_MS", "60000")
    first = start_reqon_run(mission, tmp_path / "data", tmp_path / "first.json", server.url)
    try:
        wait_until(lambda: server.stats.count("/slow") == 1 or first.poll() is not None)
        assert first.poll() is None
        monkeypatch.setenv("SLOW_MS", "0")
        second = run_mission_text(LONG, tmp_path, url=server.url)
        assert second.code == 3
        data = (tmp_path / "data").resolve()
        assert re.fullmatch(rf"reqon: mission Long is already running on data directory {re.escape(str(data))} "
                            rf"\(pid {first.pid}, started \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)\n", second.stderr), \
            second.stderr
        assert server.stats.count("/slow") == 1  # the refused run sent nothing
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    third = run_mission_text(LONG, tmp_path, url=server.url)  # the kill released the lock
    assert third.code == 0, third.stderr
    assert third.stores["done"] == [{"id": "waited"}]


SHARING = """
mission %(name)s {
  source Api { auth: none, base: env("DEMO_URL") }
  store shared: file("shared")
  store table: sql("shared")
  action Meet { get "/hold" { params: { group: "both", n: 2 } } }
%(actions)s
  run Meet then %(stages)s
}
"""


def sharing_mission(name: str) -> str:
    actions = "".join(f"""
  action Part{p} {{
    for n in [{", ".join(str(i) for i in range(10))}] parallel {{
      get "/items/{{n}}"
      store {{ id: "{name}-{p}-" + n, value: response.value }} -> shared
      store {{ id: "{name}-{p}-" + n, value: response.value }} -> table
    }}
  }}""" for p in range(5))
    stages = " then ".join(f"Part{p}" for p in range(5))
    return SHARING % {"name": name, "actions": actions, "stages": stages}


def test_two_missions_sharing_a_file_store_and_an_sql_store_lose_nothing(
        tmp_path: Path, demo_server: ThreadedServer) -> None:
    demo_server.stats.reset()
    data = tmp_path / "data"
    processes = []
    for name in ("Left", "Right"):
        path = tmp_path / f"{name}.vague"
        path.write_text(sharing_mission(name), encoding="utf-8")
        processes.append(start_reqon_run(path, data, tmp_path / f"{name}.json", demo_server.url))
    for process in processes:
        _, stderr = process.communicate(timeout=100)
        assert process.returncode == 0, stderr
    expected = {f"{name}-{p}-{n}" for name in ("Left", "Right") for p in range(5) for n in range(10)}
    shared = json.loads((data / "shared.json").read_text("utf-8"))
    assert set(shared) == expected
    with sqlite3.connect(data / "reqon.db") as connection:
        keys = {key for (key,) in connection.execute('SELECT key FROM "shared"')}
    assert keys == expected
    assert demo_server.stats.count("/hold") == 2  # both runs were in flight at once


def test_temporary_files_of_dead_writers_are_removed_before_the_run(
        tmp_path: Path, make_server: MakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill during a flush leaves `.<file>.<pid>.<hex>.tmp`; the next run removes it (and
    says so with --verbose) unless its writer is still alive (another mission's flush)."""
    import subprocess
    import sys
    server = make_server()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        data = tmp_path / "data"
        (data / "nosql").mkdir(parents=True)
        stale = data / f".done.json.{int(dead.stdout)}.0123abcd.tmp"
        stale.write_text('{"half": ', encoding="utf-8")
        nested = data / "nosql" / f".other.json.{int(dead.stdout)}.89abcdef.tmp"
        nested.write_text("{", encoding="utf-8")
        live = data / f".done.json.{alive.pid}.deadbeef.tmp"
        live.write_text("{", encoding="utf-8")
        unrelated = data / ".notes.tmp"
        unrelated.write_text("mine", encoding="utf-8")
        monkeypatch.setenv("SLOW_MS", "0")
        result = run_mission_text(LONG, tmp_path, "--verbose", url=server.url)
        assert result.code == 0, result.stderr
        assert not stale.exists() and not nested.exists()
        assert live.exists() and unrelated.exists()
        assert f"removed {stale}: a temporary file left by an interrupted write" in result.stderr
        assert f"removed {nested}" in result.stderr
    finally:
        alive.kill()
        alive.wait()
