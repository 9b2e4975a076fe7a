"""A small real API for daemon tests: it counts runs per mission as the server sees them.

* `GET /tick/{name}` -> `{"id": n}`, n counting calls per name (one call = one run);
* `GET /hold/{name}?ms=` -> holds the request `ms` ms, counting runs in flight per name
  and their peak (what `skipIfRunning` and `maxConcurrency` are about);
* `GET /fail/{name}?times=` -> 500 for the first `times` calls per name, then 200;
* `GET /gate/{name}` -> holds the request until the test calls `open_gates()`, counting
  runs in flight like `/hold` (for "while that run is going", without guessing a duration);
* `GET /batch/{name}?count=` -> `[{"id": "c<n>-1"}, …, {"id": "c<n>-<count>"}]`, n counting
  calls per name: each run gets item ids of its own;
* `GET /item/{name}?id=&stallAt=&stalls=` -> `{"id": id}`, except that the first `stalls`
  requests for an id ending in `-<stallAt>` are held until `open_gates()` (counted as
  `stalled:<name>` in flight): runs stopped in the middle of a loop, at a moment the test
  knows.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, defaultdict

from aiohttp import web

from reqon.demo.server import ThreadedServer


class Seen:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.arrivals: defaultdict[str, list[float]] = defaultdict(list)
        self.in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    def arrive(self, name: str) -> int:
        with self.lock:
            self.calls[name] += 1
            self.arrivals[name].append(time.monotonic())
            return self.calls[name]

    def count(self, name: str) -> int:
        with self.lock:
            return self.calls[name]


class DaemonApi:
    def __init__(self) -> None:
        self.seen = Seen()
        app = web.Application()
        app.router.add_get("/tick/{name}", self._tick)
        app.router.add_get("/hold/{name}", self._hold)
        app.router.add_get("/fail/{name}", self._fail)
        app.router.add_get("/gate/{name}", self._gate)
        app.router.add_get("/batch/{name}", self._batch)
        app.router.add_get("/item/{name}", self._item)
        self.gates_open = threading.Event()
        self.server = ThreadedServer(app, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        return self.server.url

    def open_gates(self) -> None:
        self.gates_open.set()

    def close(self) -> None:
        self.open_gates()  # no handler outlives the test
        self.server.close()

    def in_flight(self, name: str) -> int:
        with self.seen.lock:
            return self.seen.in_flight[name]

    async def _held_until_open(self, name: str) -> None:
        with self.seen.lock:
            self.seen.in_flight[name] += 1
            self.seen.peak[name] = max(self.seen.peak[name], self.seen.in_flight[name])
        try:
            while not self.gates_open.is_set():
                await asyncio.sleep(0.02)
        finally:
            with self.seen.lock:
                self.seen.in_flight[name] -= 1

    async def _gate(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        n = self.seen.arrive(name)
        await self._held_until_open(name)
        return web.json_response({"id": n})

    async def _batch(self, request: web.Request) -> web.Response:
        n = self.seen.arrive(request.match_info["name"])
        count = int(request.query.get("count", "3"))
        return web.json_response([{"id": f"c{n}-{i}"} for i in range(1, count + 1)])

    async def _item(self, request: web.Request) -> web.Response:
        name, item = request.match_info["name"], request.query["id"]
        self.seen.arrive(name)
        if item.endswith(f"-{request.query.get('stallAt', '')}"):
            stalled = self.seen.arrive(f"stalled:{name}")
            if stalled <= int(request.query.get("stalls", "0")):
                await self._held_until_open(f"stalled:{name}")
        return web.json_response({"id": item})

    async def _tick(self, request: web.Request) -> web.Response:
        return web.json_response({"id": self.seen.arrive(request.match_info["name"])})

    async def _hold(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        n = self.seen.arrive(name)
        with self.seen.lock:
            self.seen.in_flight[name] += 1
            self.seen.peak[name] = max(self.seen.peak[name], self.seen.in_flight[name])
        try:
            await asyncio.sleep(int(request.query.get("ms", "1000")) / 1000)
        finally:
            with self.seen.lock:
                self.seen.in_flight[name] -= 1
        return web.json_response({"id": n})

    async def _fail(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        n = self.seen.arrive(name)
        if n <= int(request.query.get("times", "1")):
            return web.json_response({"error": "failing on purpose", "call": n}, status=500)
        return web.json_response({"id": n})
