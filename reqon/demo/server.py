"""A small local bookstore JSON API, bundled so missions and tests need no internet.

The same aiohttp application serves three audiences:

* users trying reqon offline (``python -m reqon.demo``),
* the test suite, which needs a real server on 127.0.0.1 that *counts what it saw*
  (arrivals, requests in flight and their peak) to check concurrency limits, retries
  and pagination from the outside,
* the benchmarks, which need cheap handlers so that they measure the client.

Endpoints (all JSON, errors as ``{"error": ...}``; ``GET /`` lists them at run time):

* ``GET /books?page=&per_page=`` -> ``{"items", "page", "total"}``; pages start at 1
* ``GET /books/offset?offset=&limit=`` -> ``{"items"}``
* ``GET /books/cursor?after=&limit=`` -> ``{"items", "next"}``; ``next`` is null at the end
* ``GET /books/{isbn}`` -> one book, or 404 ``{"error": "not found"}``
* ``GET /prices/{isbn}`` -> ``{"isbn", "amount", "currency"}``
* ``GET /stock/{isbn}`` -> ``{"isbn", "on_hand"}``
* ``GET /slow?ms=`` -> ``{"slept"}`` after ``ms`` milliseconds
* ``GET /fail?status=&ms=&retry_after=`` -> status ``status``, ``{"error", "status"}``
* ``GET /flaky?key=&fail=&status=&retry_after=`` -> fails ``fail`` times per key, then 200
* ``POST|PUT|PATCH|DELETE /echo`` -> ``{"method", "path", "query", "headers", "json"}``
* ``GET /items/{n}`` -> ``{"id", "value"}``
* ``GET /pages?page=&size=&total=`` -> ``{"items", "page", "total"}`` over ``total`` items
* ``POST /jobs`` ``{"callback", "ms"}`` -> 202 ``{"job", "state"}``; POSTs ``{"job", "state": "queued"}``
  to ``callback`` before answering and ``{"job", "state": "done"}`` ``ms`` later (loopback URLs only)
* ``GET /openapi.yaml`` -> this API's OpenAPI document (``examples/openapi/bookstore.yaml``)
* ``GET /_stats``, ``POST /_stats/reset`` -> the :class:`Stats`; not counted themselves
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NamedTuple, Self

from aiohttp import web

__all__ = [
    "Arrival",
    "CONFIG_KEY",
    "Catalog",
    "DEFAULT_PORT",
    "RunningServer",
    "STATS_KEY",
    "ServerConfig",
    "Stats",
    "ThreadedServer",
    "main",
    "make_app",
    "make_catalog",
    "serve_in_thread",
    "start_app",
    "start_server",
]

JsonObject = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_PORT = 8765
_MAX_PAGE_SIZE = 100
_MAX_SYNTHETIC_PAGE_SIZE = 1000
_MAX_SLEEP_MS = 60_000
# Closing must not wait for a test's abandoned /slow request the way a production server
# would (aiohttp's default grace is 60 s).
_SHUTDOWN_GRACE_S = 0.5
_STATS_PREFIX = "/_stats"


@dataclass(slots=True, kw_only=True)
class ServerConfig:
    """How the demo server behaves; every field has a test-friendly default.

    ``fail_paths`` maps an exact request path (no query) to the status every request to it
    gets, after the latency, without reaching the handler: failure injection for paths
    that normally succeed.
    """

    latency_ms: float = 0
    seed: int = 0
    books: int = 120
    fail_paths: dict[str, int] = field(default_factory=dict)


class Arrival(NamedTuple):
    """One request as the server first saw it; ``at`` is ``time.monotonic()``.

    CLOCK_MONOTONIC is system-wide on Linux, so ``at`` compares with a client's
    ``time.monotonic()`` even when the server runs in another process.
    """

    at: float
    method: str
    target: str


class Stats:
    """What the server saw, readable from any thread while the server runs.

    The in-flight count spans the whole request, latency included, so ``peak_in_flight``
    is exactly the largest number of requests the client had open at once. A request whose
    client disconnects before the answer is cancelled at once and counted in ``aborted``,
    which is how tests see that a cancelled client really closed its connection.
    ``/_stats`` requests are not counted.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._in_flight = 0
        self._peak = 0
        self._aborted = 0
        self._arrivals: list[Arrival] = []
        self._per_path: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()

    def begin(self, method: str, path: str, target: str) -> None:
        """Record an arriving request; pair every call with :meth:`end`."""
        with self._lock:
            self._total += 1
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            self._arrivals.append(Arrival(time.monotonic(), method, target))
            self._per_path[path] += 1

    def end(self, *, aborted: bool = False) -> None:
        with self._lock:
            self._in_flight -= 1
            if aborted:
                self._aborted += 1

    def next_attempt(self, key: str) -> int:
        """Count one more ``/flaky`` attempt for ``key``; returns the 1-based attempt."""
        with self._lock:
            self._attempts[key] += 1
            return self._attempts[key]

    def reset(self) -> None:
        """Forget everything, flaky attempts included.

        Requests still in flight stay counted in ``in_flight`` (their ``end`` is still to
        come) and become the new peak.
        """
        with self._lock:
            self._total = 0
            self._peak = self._in_flight
            self._aborted = 0
            self._arrivals.clear()
            self._per_path.clear()
            self._attempts.clear()

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        with self._lock:
            return self._peak

    @property
    def aborted(self) -> int:
        """Requests whose client went away before the response was sent."""
        with self._lock:
            return self._aborted

    @property
    def arrivals(self) -> list[Arrival]:
        """A copy, in arrival order."""
        with self._lock:
            return list(self._arrivals)

    @property
    def per_path(self) -> dict[str, int]:
        """Requests per path without query string (a copy)."""
        with self._lock:
            return dict(self._per_path)

    def count(self, path: str) -> int:
        with self._lock:
            return self._per_path[path]

    def snapshot(self) -> JsonObject:
        """Everything at one instant, as served by ``GET /_stats``."""
        with self._lock:
            return {
                "total": self._total,
                "in_flight": self._in_flight,
                "peak_in_flight": self._peak,
                "aborted": self._aborted,
                "arrivals": [list(arrival) for arrival in self._arrivals],
                "per_path": dict(self._per_path),
            }


STATS_KEY = web.AppKey("stats", Stats)
CONFIG_KEY = web.AppKey("config", ServerConfig)


# --- data set ---------------------------------------------------------------------------

_ADJECTIVES = (
    "Silent", "Crimson", "Hidden", "Last", "Quiet", "Broken", "Golden", "Distant",
    "Winter", "Paper", "Hollow", "Salt", "Iron", "Gentle", "Northern", "Burning",
)  # fmt: skip
_NOUNS = (
    "River", "Garden", "Lighthouse", "Archive", "Orchard", "Harbour", "Library", "Atlas",
    "Clockmaker", "Meadow", "Cartographer", "Station", "Tide", "Observatory", "Bridge",
)  # fmt: skip
_FIRST_NAMES = (
    "Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kofi", "Lena", "Mateo", "Nora", "Oskar", "Priya",
)  # fmt: skip
_LAST_NAMES = (
    "Albers", "Bianchi", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad",
    "Ito", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov",
)  # fmt: skip
_GENRES = ("fiction", "history", "science", "poetry", "travel", "cooking")


@dataclass(frozen=True, slots=True)
class Catalog:
    """The generated books plus the prices and stock served by their own endpoints.

    Prices and stock are kept out of the book records on purpose: missions enrich books
    with one request per ISBN, which is what the parallel-loop examples exercise.
    """

    books: tuple[JsonObject, ...]
    position: dict[str, int]
    prices: dict[str, float]
    stock: dict[str, int]


def _isbn13(rng: random.Random) -> str:
    digits = [9, 7, 8] + [rng.randrange(10) for _ in range(9)]
    weighted = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return "".join(map(str, digits)) + str((10 - weighted % 10) % 10)


def _make_book(rng: random.Random, isbn: str) -> JsonObject:
    title = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    authors = [
        f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
        for _ in range(rng.choice((1, 1, 1, 2, 3)))
    ]
    # Some books have no page count so missions meet nulls in real-looking data.
    pages = None if rng.random() < 0.1 else rng.randrange(80, 900)
    return {
        "isbn": isbn,
        "title": title,
        "authors": authors,
        "pages": pages,
        "year": rng.randrange(1950, 2025),
        "genre": rng.choice(_GENRES),
    }


def make_catalog(seed: int, size: int) -> Catalog:
    """The same seed and size always give the same catalog, in the same order."""
    rng = random.Random(seed)
    isbns: list[str] = []
    seen: set[str] = set()
    while len(isbns) < size:
        isbn = _isbn13(rng)
        if isbn not in seen:
            seen.add(isbn)
            isbns.append(isbn)
    books = tuple(_make_book(rng, isbn) for isbn in isbns)
    return Catalog(
        books=books,
        position={isbn: i for i, isbn in enumerate(isbns)},
        prices={isbn: rng.randrange(399, 6000) / 100 for isbn in isbns},
        stock={isbn: rng.randrange(0, 25) for isbn in isbns},
    )


# --- request helpers --------------------------------------------------------------------


def _error(code: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=code)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": message}), content_type="application/json"
    )


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """A bounded integer query parameter; anything else is the client's error (400)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise _bad_request(f"{name} must be between {low} and {high}")
    return value


def _retry_after_headers(request: web.Request) -> dict[str, str]:
    retry_after = request.query.get("retry_after")
    return {"Retry-After": retry_after} if retry_after is not None else {}


def _catalog(request: web.Request) -> Catalog:
    return request.app[_CATALOG_KEY]


def _known_isbn(request: web.Request) -> str:
    isbn = request.match_info["isbn"]
    if isbn not in _catalog(request).position:
        raise web.HTTPNotFound()
    return isbn


_CATALOG_KEY = web.AppKey("catalog", Catalog)
_JOBS_KEY = web.AppKey("jobs", dict)  # job id -> background task that reports on it
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


# --- middlewares ------------------------------------------------------------------------


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request, add the configured latency, inject configured failures."""
    if request.path.startswith(_STATS_PREFIX):
        return await handler(request)
    config = request.app[CONFIG_KEY]
    stats = request.app[STATS_KEY]
    stats.begin(request.method, request.path, request.path_qs)
    aborted = False
    try:
        if config.latency_ms > 0:
            await asyncio.sleep(config.latency_ms / 1000)
        injected = config.fail_paths.get(request.path)
        if injected is not None:
            return _error(injected, "injected failure", status=injected)
        return await handler(request)
    except asyncio.CancelledError:  # the client disconnected (handler_cancellation)
        aborted = True
        raise
    finally:
        stats.end(aborted=aborted)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give aiohttp's own errors (404 for unknown routes, 405) a JSON body like ours."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return _error(exc.status, exc.reason.lower())


# --- handlers: books --------------------------------------------------------------------


async def _index(request: web.Request) -> web.Response:
    endpoints = {
        f"{route.method} {route.resource.canonical}"
        for route in request.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    return web.json_response({"name": "reqon demo bookstore", "endpoints": sorted(endpoints)})


async def _books_by_page(request: web.Request) -> web.Response:
    books = _catalog(request).books
    page = _int_param(request, "page", 1, 1, 1_000_000)
    per_page = _int_param(request, "per_page", 20, 1, _MAX_PAGE_SIZE)
    start = (page - 1) * per_page
    items = list(books[start : start + per_page])
    return web.json_response({"items": items, "page": page, "total": len(books)})


async def _books_by_offset(request: web.Request) -> web.Response:
    books = _catalog(request).books
    offset = _int_param(request, "offset", 0, 0, 1_000_000)
    limit = _int_param(request, "limit", 20, 1, _MAX_PAGE_SIZE)
    return web.json_response({"items": list(books[offset : offset + limit])})


async def _books_by_cursor(request: web.Request) -> web.Response:
    """The cursor is the ISBN of the last book already seen: opaque to clients."""
    catalog = _catalog(request)
    limit = _int_param(request, "limit", 20, 1, _MAX_PAGE_SIZE)
    after = request.query.get("after")
    if after is None or after == "":
        start = 0
    elif after in catalog.position:
        start = catalog.position[after] + 1
    else:
        raise _bad_request("unknown cursor")
    items = list(catalog.books[start : start + limit])
    more = start + limit < len(catalog.books)
    return web.json_response({"items": items, "next": items[-1]["isbn"] if more else None})


async def _openapi_document(request: web.Request) -> web.Response:
    from reqon.demo.examples import openapi_document
    return web.Response(body=openapi_document().read_bytes(), content_type="application/yaml")


async def _book_by_isbn(request: web.Request) -> web.Response:
    catalog = _catalog(request)
    return web.json_response(catalog.books[catalog.position[_known_isbn(request)]])


async def _price(request: web.Request) -> web.Response:
    isbn = _known_isbn(request)
    amount = _catalog(request).prices[isbn]
    return web.json_response({"isbn": isbn, "amount": amount, "currency": "EUR"})


async def _stock(request: web.Request) -> web.Response:
    isbn = _known_isbn(request)
    return web.json_response({"isbn": isbn, "on_hand": _catalog(request).stock[isbn]})


# --- handlers: behaviour under test -----------------------------------------------------


async def _slow(request: web.Request) -> web.Response:
    ms = _int_param(request, "ms", 100, 0, _MAX_SLEEP_MS)
    await asyncio.sleep(ms / 1000)
    return web.json_response({"slept": ms})


async def _fail(request: web.Request) -> web.Response:
    status = _int_param(request, "status", 500, 400, 599)
    ms = _int_param(request, "ms", 0, 0, _MAX_SLEEP_MS)
    await asyncio.sleep(ms / 1000)
    response = _error(status, "requested failure", status=status)
    response.headers.update(_retry_after_headers(request))
    return response


async def _flaky(request: web.Request) -> web.Response:
    """Fails the first ``fail`` attempts of each ``key``; :meth:`Stats.reset` forgets keys."""
    key = request.query.get("key", "")
    fail = _int_param(request, "fail", 1, 0, 1_000_000)
    status = _int_param(request, "status", 503, 400, 599)
    attempt = request.app[STATS_KEY].next_attempt(key)
    if attempt <= fail:
        response = _error(status, "flaky failure", key=key, attempt=attempt)
        response.headers.update(_retry_after_headers(request))
        return response
    return web.json_response({"key": key, "attempt": attempt})


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        raise _bad_request("body is not JSON") from None
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "json": payload,
        }
    )


async def _item(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    return web.json_response({"id": n, "value": f"item-{n}"})


async def _synthetic_pages(request: web.Request) -> web.Response:
    page = _int_param(request, "page", 1, 1, 1_000_000)
    size = _int_param(request, "size", 20, 1, _MAX_SYNTHETIC_PAGE_SIZE)
    total = _int_param(request, "total", 100, 0, 10_000_000)
    start = min((page - 1) * size, total)
    stop = min(start + size, total)
    items = [{"id": i, "value": f"item-{i}"} for i in range(start, stop)]
    return web.json_response({"items": items, "page": page, "total": total})


# --- handlers: webhooks ------------------------------------------------------------------


async def _jobs(request: web.Request) -> web.Response:
    """Start a job that reports to the caller's `callback` URL, the way print shops and payment
    providers do: `queued` before this answer is sent (so it reaches a `wait` that has not
    started yet), then `done` after `ms` milliseconds. Callbacks go to loopback URLs only."""
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        raise _bad_request("body is not JSON") from None
    callback = body.get("callback") if isinstance(body, dict) else None
    if not isinstance(callback, str) or not any(callback.startswith(f"http://{h}:") for h in _LOOPBACK):
        raise _bad_request("'callback' must be an http:// URL on this machine (127.0.0.1 or localhost)")
    ms = body.get("ms", 200)
    if not isinstance(ms, int) or not 0 <= ms <= _MAX_SLEEP_MS:
        raise _bad_request(f"'ms' must be an integer 0-{_MAX_SLEEP_MS}")
    jobs = request.app[_JOBS_KEY]
    job = f"job-{len(jobs) + 1}"
    jobs[job] = None  # the name is taken before the first await
    from aiohttp import ClientSession  # the client side is needed by this endpoint only

    async def report(state: str, delay_ms: int) -> None:
        await asyncio.sleep(delay_ms / 1000)
        async with ClientSession() as session:
            async with session.post(callback, json={"job": job, "state": state}) as answer:
                await answer.read()

    await report("queued", 0)
    jobs[job] = asyncio.get_running_loop().create_task(report("done", ms))
    return web.json_response({"job": job, "state": "queued"}, status=202)


# --- handlers: introspection ------------------------------------------------------------


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS_KEY].snapshot())


async def _stats_reset(request: web.Request) -> web.Response:
    request.app[STATS_KEY].reset()
    return web.json_response({"reset": True})


def make_app(config: ServerConfig) -> web.Application:
    """The demo application, with a fresh :class:`Stats` at ``app[STATS_KEY]``."""
    app = web.Application(middlewares=[_observe, _json_errors])
    app[CONFIG_KEY] = config
    app[STATS_KEY] = Stats()
    app[_CATALOG_KEY] = make_catalog(config.seed, config.books)
    app[_JOBS_KEY] = {}
    app.router.add_get("/", _index)
    app.router.add_get("/books", _books_by_page)
    app.router.add_get("/books/offset", _books_by_offset)
    app.router.add_get("/books/cursor", _books_by_cursor)
    app.router.add_get("/books/{isbn}", _book_by_isbn)
    app.router.add_get("/prices/{isbn}", _price)
    app.router.add_get("/stock/{isbn}", _stock)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/fail", _fail)
    app.router.add_get("/flaky", _flaky)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        app.router.add_route(method, "/echo", _echo)
    app.router.add_get(r"/items/{n:\d+}", _item)
    app.router.add_get("/pages", _synthetic_pages)
    app.router.add_post("/jobs", _jobs)
    app.router.add_get("/openapi.yaml", _openapi_document)
    app.router.add_get(_STATS_PREFIX, _stats)
    app.router.add_post(f"{_STATS_PREFIX}/reset", _stats_reset)
    return app


# --- running it -------------------------------------------------------------------------


@dataclass(slots=True)
class RunningServer:
    """A server on the current event loop; ``close()`` it on the same loop."""

    url: str
    port: int
    app: web.Application
    _runner: web.AppRunner

    @property
    def stats(self) -> Stats:
        """What the demo app saw (other apps served with `start_app` have no stats)."""
        return self.app[STATS_KEY]

    async def close(self) -> None:
        await self._runner.cleanup()


async def start_server(
    config: ServerConfig, host: str = "127.0.0.1", port: int = 0
) -> RunningServer:
    """Serve ``make_app(config)`` on ``host:port``; port 0 picks a free ephemeral port."""
    return await start_app(make_app(config), host, port)


async def start_app(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve any aiohttp app the way the demo is served: cancel handlers of clients that
    go away (so tests can count aborts), no access log, no signal handling."""
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        handler_cancellation=True,
        shutdown_timeout=_SHUTDOWN_GRACE_S,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    return RunningServer(url=f"http://{bound_host}:{bound_port}", port=bound_port, app=app, _runner=runner)


class ThreadedServer:
    """A server (the demo app, or any aiohttp app) on its own event loop in a daemon thread.

    For synchronous callers (pytest fixtures, the CLI's demo command) that must not share
    their event loop with the server. Already serving when constructed; ``close()`` or
    leave the ``with`` block to stop it. ``stats`` is safe to read from any thread.
    """

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self._ready = threading.Event()
        self._server: RunningServer | None = None
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(app, host, port),),
            name="reqon-demo-server", daemon=True,
        )  # fmt: skip
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    async def _serve(self, app: web.Application, host: str, port: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            server = await start_app(app, host, port)
        except BaseException as exc:  # reported to the constructor's thread
            self._failure = exc
            self._ready.set()
            return
        self._server = server
        self._ready.set()
        await self._stop.wait()
        await server.close()

    @property
    def _running(self) -> RunningServer:
        assert self._server is not None, "constructor raised"
        return self._server

    @property
    def url(self) -> str:
        return self._running.url

    @property
    def port(self) -> int:
        return self._running.port

    @property
    def stats(self) -> Stats:
        return self._running.stats

    def close(self) -> None:
        """Stop serving and join the thread; calling it again does nothing."""
        if self._thread.is_alive() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve_in_thread(
    config: ServerConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> ThreadedServer:
    """Start serving in a background thread; use as a context manager or ``close()`` it."""
    return ThreadedServer(make_app(config or ServerConfig()), host, port)


# --- command line -----------------------------------------------------------------------


def _fail_path(text: str) -> tuple[str, int]:
    path, sep, status = text.rpartition("=")
    if not sep or not path.startswith("/") or not status.isdigit():
        raise argparse.ArgumentTypeError(f"expected PATH=STATUS, got {text!r}")
    return path, int(status)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reqon.demo", description="Serve the bundled demo bookstore API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="0 picks a free port"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--books", type=int, default=120)
    parser.add_argument(
        "--fail", type=_fail_path, action="append", default=[], metavar="PATH=STATUS",
        help="answer every request to PATH with STATUS (repeatable)",
    )  # fmt: skip
    return parser.parse_args(argv)


async def _serve_until_signalled(config: ServerConfig, host: str, port: int) -> None:
    server = await start_server(config, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening on {server.url}", flush=True)
    await stop.wait()
    await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM, then exit 0."""
    args = _parse_args(argv)
    config = ServerConfig(
        latency_ms=args.latency_ms,
        seed=args.seed,
        books=args.books,
        fail_paths=dict(args.fail),
    )
    try:
        asyncio.run(_serve_until_signalled(config, args.host, args.port))
    except KeyboardInterrupt:  # a signal that arrived before the handlers were installed
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
