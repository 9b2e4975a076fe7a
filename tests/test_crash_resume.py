"""Exact resume after SIGKILL (docs/reliability.md): nothing twice, nothing lost.

A real `reqon run` process is killed with SIGKILL by the server itself, at the moment the
N-th request arrives (the server's request counter chooses the point, no sleep does), at
20 points spread over a sequential loop of POSTs, a parallel loop, pagination and a
parallel stage, with file, nosql and sql stores. `--resume` then finishes the run. The
final stores must equal those of an uninterrupted run, and the server must have seen every
POST of a completed iteration exactly once: only iterations in flight at the kill (one in
the sequential loop, at most the concurrency of the parallel loop or stage) may repeat.

Four more points lie inside the client rather than at a request's arrival (a second
mission, EDGE_MISSION): right after a POST was answered, while a response that arrived
whole is being decoded, inside the flush of a file store (its temporary file written, not
yet renamed) and inside the transaction of an `sql` store step. The server lands them by
freezing the client (SIGSTOP) and checking, while it cannot move, that it is at the point
before it sends SIGKILL; there, exactly the requests of the unit in flight are repeated.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import termios
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
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


# --- kill points at the edges: inside a flush, inside an SQLite transaction, after a POST --------
# These points are moments inside the client, not request arrivals, so the server lands them
# by freezing the client: it stops it with SIGSTOP, checks *while it is frozen* (it cannot
# move on meanwhile) that it is at the wanted point, and only then sends SIGKILL; otherwise
# it lets it go on (SIGCONT) and looks again. Each window is made tens of milliseconds long
# (a 30 MB flush, a 30 MB transaction, the decoding of a 3 MB response of 100,000 objects)
# against a polling period of about a millisecond, and the test fails, saying so, if a
# window was ever missed.

EDGE_MISSION = """
mission Edges {
  source Api { auth: none, base: env("DEMO_URL"), timeout: 60s }
  store receipts: file("receipts")
  store bulk: file("bulk")
  store ticks: nosql("ticks")
  store rows: sql("rows")

  action Receipts {
    for n in [1, 2, 3, 4, 5] {
      post "/receipt" { params: { id: "r" + n }, body: { n: n }, retry: { maxAttempts: 1 } }
      store { id: "r" + n, n: response.n, lines: length(response.lines) } -> receipts
      get "/ack" { params: { id: "r" + n }, retry: { maxAttempts: 1 } }
    }
  }
  action BulkFile {
    get "/bulk" { params: { id: "file" }, retry: { maxAttempts: 1 } }
    store response -> bulk { key: .id }
  }
  action Ticker {
    for n in [1, 2, 3, 4] {
      post "/echo" { params: { id: "t" + n }, retry: { maxAttempts: 1 } }
      store { id: "t" + n } -> ticks
    }
  }
  action BulkSql {
    get "/bulk" { params: { id: "sql" }, retry: { maxAttempts: 1 } }
    store response -> rows { key: .id }
  }
  run Receipts then [BulkFile, Ticker] then BulkSql
}
"""

EDGE_POSTS = {f"r{n}" for n in range(1, 6)} | {f"t{n}" for n in range(1, 5)}
# /bulk: 3,000 records of 10 kB, so the flush writes (and the transaction spills) about 30 MB
BULK = json.dumps([{"id": f"k{n:04d}", "text": f"{n:04d}" + "x" * 10_000} for n in range(3_000)]).encode()
RECEIPT_LINES = json.dumps([{"line": n, "sku": "sku"} for n in range(100_000)])  # decoding takes a while
POLL_S = 0.001
WINDOW_TIMEOUT_S = 60.0


class Missed(Exception):
    """The client went past the point the scenario wanted to kill it at."""


def _task_states(pid: int) -> list[str]:
    """The state letter of each thread of `pid` ("T" when stopped); empty when it is gone."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            continue
    return states


def _gone(pid: int) -> bool:
    states = _task_states(pid)
    return not states or any(s in "ZX" for s in states)


def _freeze(pid: int) -> bool:
    """SIGSTOP `pid` and wait until every thread has stopped; False if the process is gone.

    A thread inside a system call (a write, an fsync) stops when the call returns, before
    the next line of Python: what the check then sees stays true until the SIGKILL."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _gone(pid):
            return False
        if all(s == "T" for s in _task_states(pid)):
            return True
        time.sleep(0.0002)
    raise AssertionError(f"process {pid} did not stop within 10 s: {_task_states(pid)}")


def kill_when(process: subprocess.Popen[str], near: Callable[[], bool],
              at: Callable[[], bool] | None = None, timeout: float = WINDOW_TIMEOUT_S) -> int:
    """SIGKILL `process` at a moment when `at()` holds while it is frozen.

    `near()` is asked with the client running (cheap, polled about every millisecond);
    when it says yes, the client is frozen and `at()` (by default `near()` again) decides:
    kill, or let it go on. Either raises `Missed` when the client is past the point; so
    does a timeout. Returns how many times the client was frozen."""
    at = at or near
    deadline = time.monotonic() + timeout
    freezes = 0
    while time.monotonic() < deadline:
        if _gone(process.pid):
            raise Missed("the client ended before the kill point")
        if near():
            if not _freeze(process.pid):
                raise Missed("the client exited before the kill point")
            freezes += 1
            try:
                ready = at()
            except BaseException:
                os.kill(process.pid, signal.SIGCONT)
                raise
            if ready:
                os.kill(process.pid, signal.SIGKILL)
                return freezes
            os.kill(process.pid, signal.SIGCONT)
        time.sleep(POLL_S)
    raise Missed(f"the kill point never came within {timeout} s")


def _tcp_queues(local: tuple[str, int], remote: tuple[str, int]) -> tuple[int, int] | None:
    """(send queue, receive queue) of the IPv4 TCP socket `local` -> `remote` (/proc/net/tcp):
    bytes sent and not yet acknowledged, bytes received and not yet read by the process."""
    def address(host: str, port: int) -> str:
        return f"{bytes(reversed(socket.inet_aton(host))).hex().upper()}:{port:04X}"

    wanted = (address(*local), address(*remote))
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == wanted:
            tx, rx = fields[4].split(":")
            return int(tx, 16), int(rx, 16)
    return None


def journal_indexes(data: Path) -> list[int]:
    """The loop indexes in the Edges run journal (lines after the header)."""
    try:
        lines = (data / "runs" / "Edges.journal").read_text("utf-8").splitlines()[1:]
    except FileNotFoundError:
        return []
    return [json.loads(line)["i"] for line in lines if line.endswith("}")]


def _wal_size(data: Path) -> int:
    try:
        return (data / "reqon.db-wal").stat().st_size
    except FileNotFoundError:
        return 0


def _write_locked(database: Path) -> bool:
    """Whether another connection holds SQLite's write lock (is inside a write transaction)."""
    connection = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        return True
    finally:
        connection.close()


class EdgeServer:
    """The server for EDGE_MISSION: serves /receipt, /ack, /bulk, /echo; counts POSTs and
    GETs by id; lands the kill of the scenario in `kill` (one of EDGE_SCENARIOS)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.process: subprocess.Popen[str] | None = None
        self.ready = threading.Event()
        self.kill: str | None = None
        self.seen: Counter[str] = Counter()  # "POST receipt r1", "GET ack r1", "GET bulk sql"
        self.posts: Counter[str] = Counter()
        self.gate = threading.Event()  # the flush scenario: /bulk?id=file waits for t2
        self.observed: dict[str, Any] = {}
        self.missed: BaseException | None = None
        self.settled = threading.Event()  # the kill (or the miss) is done and recorded
        app = make_app(ServerConfig())
        app.middlewares.insert(0, self.middleware)
        app.router.add_post("/receipt", self._receipt)
        app.router.add_get("/ack", self._ack)
        app.router.add_get("/bulk", self._bulk)
        self.server = ThreadedServer(app)

    async def _receipt(self, request: web.Request) -> web.Response:
        n = (await request.json())["n"]
        body = '{"n": %d, "lines": %s}' % (n, RECEIPT_LINES)
        return web.Response(text=body, content_type="application/json")

    async def _ack(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _bulk(self, request: web.Request) -> web.Response:
        if self.kill == "flush" and request.query["id"] == "file":
            # answer only once Ticker's t2 is in flight, so the flush starts while it is
            assert await asyncio.to_thread(self.gate.wait, 30), "t2 never came"
        return web.Response(body=BULK, content_type="application/json")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_stats"):
            return await handler(request)
        what = f"{request.method} {request.path.strip('/')} {request.query.get('id', '')}"
        self.seen[what] += 1
        if request.method == "POST":
            self.posts[request.query["id"]] += 1
        if self.kill is None or what != EDGE_POINTS[self.kill] or self.seen[what] > 1:
            return await handler(request)
        await asyncio.to_thread(self.ready.wait, 30)  # until the test has set `process`
        process = self.process
        assert process is not None
        response: web.StreamResponse = web.json_response({"error": "killed"}, status=503)
        if self.kill == "answered":  # r2's POST was answered: kill with its iteration's GET in flight
            os.kill(process.pid, signal.SIGKILL)
            self.settled.set()
        elif self.kill == "flush":  # t2 stays in flight; /bulk?id=file is answered now
            self.gate.set()
            await self._kill_when(self._flushing_bulk)
        elif self.kill == "transaction":
            self.observed["wal_before"] = _wal_size(self.data)
            response = await self._send(request, await handler(request))
            await self._kill_when(self._in_transaction)
        elif self.kill == "decoding":
            response = await self._send(request, await handler(request))
            transport = request.transport
            assert transport is not None
            ours = transport.get_extra_info("socket")
            local, remote = transport.get_extra_info("sockname")[:2], transport.get_extra_info("peername")[:2]
            await self._kill_when(lambda: self._received(ours.fileno()), lambda: self._decoding(local, remote))
        await asyncio.to_thread(process.wait)
        return response

    async def _send(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        """Send the whole response now, down to the kernel (nothing left in our buffers)."""
        await response.prepare(request)
        await response.write_eof()
        transport = request.transport
        deadline = time.monotonic() + 30
        while transport is not None and transport.get_write_buffer_size() and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
        return response

    async def _kill_when(self, near: Callable[[], bool], at: Callable[[], bool] | None = None) -> None:
        await asyncio.to_thread(self._kill_or_record, near, at)

    def _kill_or_record(self, near: Callable[[], bool], at: Callable[[], bool] | None) -> None:
        """kill_when, keeping a miss (or any failure) for the test, which waits for `settled`:
        the handler awaiting this may be cancelled when the client dies, so nothing may be
        left to it."""
        process = self.process
        assert process is not None
        try:
            self.observed["freezes"] = kill_when(process, near, at)
        except BaseException as exc:
            self.missed = exc
            if not _gone(process.pid):
                os.kill(process.pid, signal.SIGKILL)
        finally:
            self.settled.set()

    def _flushing_bulk(self) -> bool:
        """The bulk store's temporary file exists: the client is between its creation and
        the rename that replaces bulk.json."""
        temporaries = sorted(self.data.glob(".bulk.json.*.tmp"))
        if (self.data / "bulk.json").exists():
            raise Missed("bulk.json was already replaced")
        self.observed["temporaries"] = temporaries
        return bool(temporaries)

    def _in_transaction(self) -> bool:
        """The client holds SQLite's write lock and the WAL has grown by more than half the
        step's records since the step began: deep inside the store step's transaction,
        most of its pages already in the WAL (a step committed in parts would show here)."""
        wal = _wal_size(self.data)
        if wal - self.observed["wal_before"] <= len(BULK) // 2 or not _write_locked(self.data / "reqon.db"):
            return False
        self.observed["wal_at_kill"] = wal
        return True

    def _received(self, fd: int) -> bool:
        """Cheap, with the client running: its kernel acknowledged every byte of r3's
        response (our send queue is empty) and r3's iteration is not journaled yet."""
        if 2 in journal_indexes(self.data):
            raise Missed("the iteration of r3 was journaled before the kill")
        unacknowledged = int.from_bytes(fcntl.ioctl(fd, termios.TIOCOUTQ, bytes(4)), sys.byteorder)
        return unacknowledged == 0

    def _decoding(self, server: tuple[str, int], client: tuple[str, int]) -> bool:
        """Every byte of the response is in the client (nothing unacknowledged at our end,
        nothing unread at its end) and its iteration is not journaled yet."""
        if 2 in journal_indexes(self.data):
            raise Missed("the iteration of r3 was journaled before the kill")
        sent = _tcp_queues(server, client)
        received = _tcp_queues(client, server)
        if sent is None or received is None or sent[0] or received[1]:
            return False
        self.observed["journaled"] = journal_indexes(self.data)
        return True

    def close(self) -> None:
        self.server.close()


def run_edges(tmp_path: Path, spy: EdgeServer, *args: str) -> tuple[int, str]:
    mission = tmp_path / "edges.vague"
    mission.write_text(EDGE_MISSION, encoding="utf-8")
    spy.ready.clear()
    process = start_reqon_run(mission, spy.data, tmp_path / "out.json", spy.server.url, *args)
    spy.process = process
    spy.ready.set()
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def edge_stores(data: Path) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(data / "reqon.db")) as connection:
        rows = {key: json.loads(record) for key, record in connection.execute("SELECT key, record FROM rows")}
    return {
        "receipts": json.loads((data / "receipts.json").read_text("utf-8")),
        "bulk": json.loads((data / "bulk.json").read_text("utf-8")),
        "ticks": json.loads((data / "nosql" / "ticks.json").read_text("utf-8")),
        "rows": rows,
    }


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or not Path("/proc/net/tcp").is_file(),
    reason="landing a kill inside the client reads thread states and TCP queues from Linux's /proc")


@pytest.fixture(scope="module")
def edge_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("edge-reference")
    spy = EdgeServer(tmp_path / "data")
    try:
        code, stderr = run_edges(tmp_path, spy)
    finally:
        spy.close()
    assert code == 0, stderr
    assert set(spy.posts) == EDGE_POSTS and all(n == 1 for n in spy.posts.values()), spy.posts
    return edge_stores(tmp_path / "data")


EDGE_POINTS = {  # scenario: the request at whose arrival the server starts landing the kill
    "answered": "GET ack r2",
    "decoding": "POST receipt r3",
    "flush": "POST echo t2",
    "transaction": "GET bulk sql",
}
EDGE_SCENARIOS = list(EDGE_POINTS)
EDGE_REPEATS = {
    "answered": {"POST receipt r2", "GET ack r2"},  # r2's iteration: its POST answered, its GET in flight
    "decoding": {"POST receipt r3"},  # r3's iteration, killed before its GET
    "flush": {"GET bulk file", "POST echo t2"},  # the branch being flushed; Ticker's iteration in flight
    "transaction": {"GET bulk sql"},  # the branch whose store step was under way
}


@needs_proc
@pytest.mark.parametrize("kill", EDGE_SCENARIOS)
def test_kill_inside_the_client_then_resume_repeats_only_what_was_in_flight(
        tmp_path: Path, edge_reference: dict[str, Any], kill: str) -> None:
    data = tmp_path / "data"
    spy = EdgeServer(data)
    try:
        spy.kill = kill
        code, _ = run_edges(tmp_path, spy)
        assert spy.settled.wait(30), "the server never reached the kill point"
        assert spy.missed is None, f"{kill}: {spy.missed!r}"
        assert code == -signal.SIGKILL
        spy.kill = None
        after_kill: dict[str, Any] = {"journal": journal_indexes(data), "observed": dict(spy.observed)}
        grown = spy.observed.get("wal_at_kill", 0) - spy.observed.get("wal_before", 0)
        print(f"{kill}: killed after {spy.observed.get('freezes', 0)} freeze(s) of the client"
              + (f", the WAL {grown:,} bytes longer than when the step began" if grown else ""))
        check_after_kill = {"answered": _after_answered, "decoding": _after_decoding, "flush": _after_flush,
                            "transaction": _after_transaction}[kill]
        check_after_kill(data, after_kill)
        code, stderr = run_edges(tmp_path, spy, "--resume", "--verbose")
    finally:
        spy.close()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    if kill == "flush":
        for temporary in after_kill["observed"]["temporaries"]:
            assert f"removed {temporary}: a temporary file left by an interrupted write" in stderr, stderr
            assert not temporary.exists()

    assert edge_stores(data) == edge_reference
    assert set(spy.posts) == EDGE_POSTS
    # exactly the requests of the iteration or branch in flight at the kill were sent
    # twice (the one the kill caught, and the ones before it in the same unit); every
    # other request once
    assert set(spy.seen.values()) <= {1, 2}, spy.seen
    repeated = {request for request, n in spy.seen.items() if n == 2}
    assert repeated == EDGE_REPEATS[kill], spy.seen


def _after_answered(data: Path, after: dict[str, Any]) -> None:
    """Killed with GET /ack?id=r2 in flight: r2's POST was answered, its iteration not journaled."""
    assert after["journal"] == [0]


def _after_decoding(data: Path, after: dict[str, Any]) -> None:
    """Killed with r3's whole response in the client, before its iteration was journaled."""
    assert after["observed"]["journaled"] == [0, 1]
    assert after["journal"] == [0, 1]


def _after_flush(data: Path, after: dict[str, Any]) -> None:
    """Killed inside the flush of `bulk`: its temporary file outlived the process, bulk.json
    was never replaced, and the stage's other branch was at its second POST."""
    temporaries = after["observed"]["temporaries"]
    assert len(temporaries) == 1 and temporaries[0].exists(), temporaries
    assert not (data / "bulk.json").exists()
    assert after["journal"] == [0]  # Ticker's t1 (stage 1's entries went with its snapshot)


def _after_transaction(data: Path, after: dict[str, Any]) -> None:
    """Killed inside the store step's transaction: the database is sound and holds none of it."""
    observed = after["observed"]
    assert observed["wal_at_kill"] - observed["wal_before"] > len(BULK) // 2
    assert after["journal"] == []
    with contextlib.closing(sqlite3.connect(data / "reqon.db")) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("SELECT COUNT(*) FROM rows").fetchone()[0] == 0
