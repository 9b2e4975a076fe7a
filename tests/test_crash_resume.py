"""Exact resume after SIGKILL (docs/reliability.md): nothing twice, nothing lost.

A real `reqon run` process is killed with SIGKILL by the server itself, at the moment the
N-th request arrives (the server's request counter chooses the point, no sleep does), at
20 points spread over a sequential loop of POSTs, a parallel loop, pagination and a
parallel stage, with file, nosql and sql stores. `--resume` then finishes the run. The
final stores must equal those of an uninterrupted run, and the server must have seen every
POST of a completed iteration exactly once: only iterations in flight at the kill (one in
the sequential loop, at most the concurrency of the parallel loop or stage) may repeat.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web

from reqon.demo.server import ServerConfig, ThreadedServer, make_app
from tests.conftest import start_reqon_run

pytestmark = pytest.mark.timeout(300)

MISSION = """
mission Crash {
  source Api { auth: none, base: env("DEMO_URL"), timeout: 60s }
  store ledger: file("ledger")
  store paid: sql("paid")
  store notes: nosql("notes")
  store pages: file("pages")

  action Sequential {
    for n in [1, 2, 3, 4, 5, 6, 7, 8] {
      post "/echo" { params: { id: "s" + n }, body: { n: n }, retry: { maxAttempts: 1 } }
      store { id: "s" + n, n: response.json.n } -> ledger
    }
  }
  action Parallel {
    concurrency: 3
    for n in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] parallel {
      post "/echo" { params: { id: "p" + n }, body: { n: n }, retry: { maxAttempts: 1 } }
      store { id: "p" + n, n: response.json.n } -> paid
      store { id: "p" + n, noted: true } -> notes
    }
  }
  action Pages {
    get "/pages" { params: { size: 3, total: 15 }, paginate: page(page, 3) }
    store response -> pages { key: .id }
  }
  action BranchA {
    post "/echo" { params: { id: "a" }, retry: { maxAttempts: 1 } }
    store { id: "a" } -> ledger
  }
  action BranchB {
    post "/echo" { params: { id: "b" }, retry: { maxAttempts: 1 } }
    store { id: "b" } -> notes
  }
  action BranchC {
    post "/echo" { params: { id: "c" }, retry: { maxAttempts: 1 } }
    store { id: "c" } -> paid
  }
  run Sequential then Parallel then Pages then [BranchA, BranchB, BranchC]
}
"""

# Requests of an uninterrupted run, in order: 1-8 sequential POSTs, 9-20 the parallel
# loop, 21-26 pagination (five pages and the empty one that ends it), 27-29 the branches.
KILL_POINTS = [1, 2, 3, 5, 7, 8, 9, 10, 11, 13, 15, 17, 19, 20, 21, 23, 25, 27, 28, 29]


class Killer:
    """Counts requests; at the `kill_at`-th, SIGKILLs the client and waits for it to die
    before answering, so that the answer never reaches it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.kill_at: int | None = None
        self.count = 0
        self.posts: Counter[str] = Counter()
        self.arrived: list[str] = []  # POST ids in arrival order
        self.posted_before_kill: list[str] = []
        self.ready = threading.Event()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_stats"):
            return await handler(request)
        self.count += 1
        if request.method == "POST":
            post_id = parse_qs(urlsplit(request.path_qs).query)["id"][0]
            self.posts[post_id] += 1
            self.arrived.append(post_id)
        if self.count == self.kill_at:
            await asyncio.to_thread(self.ready.wait, 30)  # until the test has set `process`
            assert self.process is not None
            self.posted_before_kill = list(self.arrived)
            os.kill(self.process.pid, signal.SIGKILL)
            await asyncio.to_thread(self.process.wait)
            return web.json_response({"error": "killed"}, status=503)
        return await handler(request)


@pytest.fixture
def killer() -> Iterator[tuple[Killer, ThreadedServer]]:
    killer = Killer()
    app = make_app(ServerConfig())
    app.middlewares.insert(0, killer.middleware)
    server = ThreadedServer(app)
    yield killer, server
    server.close()


def run_once(tmp_path: Path, killer: Killer, server: ThreadedServer, *args: str) -> tuple[int, str]:
    """Run the mission to its end or its kill; the exit code (-9 when killed) and stderr."""
    mission = tmp_path / "crash.vague"
    mission.write_text(MISSION, encoding="utf-8")
    killer.ready.clear()
    process = start_reqon_run(mission, tmp_path / "data", tmp_path / "out.json", server.url, *args)
    killer.process = process
    killer.ready.set()
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def stores(data: Path) -> dict[str, Any]:
    """Every store as it is on disk (the sql table through SQLite itself)."""
    with sqlite3.connect(data / "reqon.db") as connection:
        paid = {key: json.loads(record) for key, record in connection.execute("SELECT key, record FROM paid")}
    return {
        "ledger": json.loads((data / "ledger.json").read_text("utf-8")),
        "pages": json.loads((data / "pages.json").read_text("utf-8")),
        "notes": json.loads((data / "nosql" / "notes.json").read_text("utf-8")),
        "paid": paid,
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The stores after an uninterrupted run."""
    tmp_path = tmp_path_factory.mktemp("reference")
    killer = Killer()
    app = make_app(ServerConfig())
    app.middlewares.insert(0, killer.middleware)
    with ThreadedServer(app) as server:
        code, stderr = run_once(tmp_path, killer, server)
    assert code == 0, stderr
    assert killer.count == 29  # KILL_POINTS and their comments assume it
    return stores(tmp_path / "data")


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_sigkill_then_resume_repeats_only_what_was_in_flight(
        tmp_path: Path, killer: tuple[Killer, ThreadedServer], reference: dict[str, Any], kill_at: int) -> None:
    spy, server = killer
    spy.kill_at = kill_at
    code, _ = run_once(tmp_path, spy, server)
    assert code == -signal.SIGKILL
    spy.kill_at = None
    code, stderr = run_once(tmp_path, spy, server, "--resume")
    assert code == 0, stderr
    assert "Traceback" not in stderr

    assert stores(tmp_path / "data") == reference
    repeated = {post_id for post_id, n in spy.posts.items() if n > 1}
    assert all(n <= 2 for n in spy.posts.values()), spy.posts
    # the sequential loop: at most the iteration whose POST came last before the kill
    sequential = [p for p in spy.posted_before_kill if p.startswith("s")]
    assert {r for r in repeated if r.startswith("s")} <= set(sequential[-1:]), repeated
    # the parallel loop and the parallel stage: at most their concurrency
    assert len({r for r in repeated if r.startswith("p")}) <= 3, repeated
    assert len(repeated & {"a", "b", "c"}) <= 3, repeated
    assert set(spy.posts) == {f"s{n}" for n in range(1, 9)} | {f"p{n}" for n in range(1, 13)} | {"a", "b", "c"}
