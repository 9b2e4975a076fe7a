"""A small real API for daemon tests: it counts runs per mission as the server sees them.

* `GET /tick/{name}` -> `{"id": n}`, n counting calls per name (one call = one run);
* `GET /hold/{name}?ms=` -> holds the request `ms` ms, counting runs in flight per name
  and their peak (what `skipIfRunning` and `maxConcurrency` are about);
* `GET /fail/{name}?times=` -> 500 for the first `times` calls per name, then 200.
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
        self.server = ThreadedServer(app, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.server.close()

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
