"""Interruption (LANGUAGE.md §7.7): SIGINT/SIGTERM cancel gracefully, a second signal forces.

Real processes against the demo server: the signal must abort the requests in flight,
leave every store intact and consistent with `--output`, record the run state as
`interrupted` with exactly the iterations that completed, and let `--resume` finish the
rest.
"""
from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from reqon.demo.server import ThreadedServer
from tests.conftest import MakeServer, start_reqon_run

ROOT = Path(__file__).resolve().parents[1]

WALK = """
mission Walk {
  source Api { auth: none, base: env("DEMO_URL"), timeout: 30s }
  store items: file("items")
  store seen: sql("seen")
  store visits: nosql("visits")

  action Load {
    get "/pages" { params: { size: 40, total: 40 } }
    store response.items -> items { key: .id }
  }
  action Visit {
    concurrency: 4
    for item in items parallel {
      get "/slow" { params: { ms: 150, item: item.id } }
      store { id: item.id } -> seen { key: .id }
      store { id: item.id, visited: true } -> visits { key: .id }
    }
  }
  run Load then Visit
}
"""

# 50,000 records make the clean-up after the first signal last long enough (flushing the
# file store, writing --output) for a second signal to arrive in the middle of it.
BIG = """
mission Big {
  source Api { auth: none, base: env("DEMO_URL"), timeout: 30s }
  store rows: file("rows")

  action Load {
    get "/pages" { params: { size: 1000, total: 50000 }, paginate: page(page, 1000) }
    store response -> rows { key: .id }
  }
  action Hang {
    store { id: "extra" } -> rows
    get "/slow" { params: { ms: 20000 } }
  }
  run Load then Hang
}
"""


def start(text: str, tmp_path: Path, server: ThreadedServer, *args: str) -> subprocess.Popen[str]:
    mission = tmp_path / "mission.vague"
    mission.write_text(text, encoding="utf-8")
    return start_reqon_run(mission, tmp_path / "data", tmp_path / "out.json", server.url, *args)


def wait_for(condition: Any, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def sqlite_rows(path: Path, table: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [json.loads(r) for (r,) in connection.execute(f'SELECT record FROM "{table}" ORDER BY key')]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_first_signal_cancels_gracefully_and_resume_finishes(
        tmp_path: Path, make_server: MakeServer, signum: int, code: int) -> None:
    server = make_server()
    process = start(WALK, tmp_path, server)
    wait_for(lambda: server.stats.count("/slow") >= 10, process)
    process.send_signal(signum)
    signalled = time.monotonic()
    _, stderr = process.communicate(timeout=10)
    assert time.monotonic() - signalled < 5
    assert process.returncode == code, stderr
    assert "interrupted — cancelling (press Ctrl-C again to force)" in stderr
    assert "mission Walk interrupted" in stderr and "Traceback" not in stderr
    # Requests in flight were aborted, not awaited.
    wait_for(lambda: server.stats.in_flight == 0, process, timeout=3)
    assert server.stats.aborted >= 1

    data = tmp_path / "data"
    items = json.loads((data / "items.json").read_text("utf-8"))
    visits = json.loads((data / "nosql" / "visits.json").read_text("utf-8"))
    seen = sqlite_rows(data / "reqon.db", "seen")
    output = json.loads((tmp_path / "out.json").read_text("utf-8"))
    assert output == {"items": [items[k] for k in sorted(items)], "seen": seen,
                      "visits": [visits[k] for k in sorted(visits)]}
    visited = {r["id"] for r in visits.values()}
    assert len(items) == 40 and 0 < len(seen) < 40
    assert {r["id"] for r in seen} == visited  # both writes of an iteration, or neither

    state = json.loads((data / "runs" / "Walk.json").read_text("utf-8"))
    assert state["status"] == "interrupted"
    assert [s["status"] for s in state["stages"]] == ["succeeded", "interrupted"]
    [loop] = state["loops"].values()
    order = sorted(items, key=str)  # the loop iterates the store in key order
    assert {int(order[int(i)]) for i in loop["done"]} == visited  # exactly the completed iterations

    before = server.stats.count("/slow")
    resumed = start(WALK, tmp_path, server, "--resume")
    _, stderr = resumed.communicate(timeout=30)
    assert resumed.returncode == 0, stderr
    assert server.stats.count("/slow") - before == 40 - len(visited)
    final = json.loads((tmp_path / "out.json").read_text("utf-8"))
    assert len(final["seen"]) == len(final["visits"]) == 40


def test_a_second_signal_exits_at_once_without_damaging_the_store(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    process = start(BIG, tmp_path, server)
    wait_for(lambda: server.stats.count("/slow") == 1, process, timeout=60)
    rows = tmp_path / "data" / "rows.json"
    assert len(json.loads(rows.read_text("utf-8"))) == 50000  # flushed when Load ended
    process.send_signal(signal.SIGINT)
    assert process.stderr is not None
    assert "interrupted — cancelling" in process.stderr.readline()
    process.send_signal(signal.SIGINT)
    forced = time.monotonic()
    _, stderr = process.communicate(timeout=10)
    assert time.monotonic() - forced < 1
    assert process.returncode == 130
    assert "mission Big interrupted" not in stderr  # the clean-up was cut short, not completed
    assert "Traceback" not in stderr
    # The store file is the old or the new version, never a mixture; --output likewise.
    assert len(json.loads(rows.read_text("utf-8"))) in (50000, 50001)
    output = tmp_path / "out.json"
    if output.exists():
        assert len(json.loads(output.read_text("utf-8"))["rows"]) == 50001
    # A run state left saying "running" is resumed like an interrupted one (§7.7).
    state = json.loads((tmp_path / "data" / "runs" / "Big.json").read_text("utf-8"))
    assert state["status"] in ("running", "interrupted")
