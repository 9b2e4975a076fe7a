"""Client CPU cost per request of reqon's candidate HTTP stacks.

Sends ``--n`` GETs of ``/items/{i}`` (each decoded with ``.json()``) to the demo server
running with zero latency in a *separate process*, so the server's work is not billed to
the client's CPU time or event loop. Concurrency is bounded with an ``asyncio.Semaphore``.
Every configuration gets a fresh event loop and client, a warm-up that fills the
connection pool, then ``--repeat`` measured rounds; the table shows the median round.

Also checks how many connections to one origin each pool configuration really opens
(``--pool-check``): the spec (§7.6, "HTTP load") forbids the pool being a hidden bound
below 100 per origin.

    .venv/bin/python -m bench.http_client --n 2000 --concurrency 1 10 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

GetJson = Callable[[str], Awaitable[Any]]
ClientFactory = Callable[[], AbstractAsyncContextManager[GetJson]]

# The same pool size for every client, so only the HTTP stack differs. httpx's default
# keeps only 20 idle connections, which would close and reopen connections at
# concurrency 50 and measure connection churn instead of per-request cost.
POOL_SIZE = 100
HTTPX_LIMITS = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
TIMEOUT_S = 30.0


# --- the server in its own process --------------------------------------------------------


@contextmanager
def server_process(latency_ms: float = 0) -> Iterator[str]:
    """Run ``python -m reqon.demo.server`` and yield its base URL."""
    command = [
        sys.executable, "-m", "reqon.demo.server",
        "--port", "0", "--latency-ms", str(latency_ms),
    ]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if not line.startswith("listening on "):
                raise RuntimeError(f"demo server did not start: {line!r}")
            yield line.removeprefix("listening on ")
        finally:
            process.terminate()
            process.wait(timeout=10)


# --- the clients under test ---------------------------------------------------------------


@asynccontextmanager
async def _httpx_client(transport: httpx.AsyncBaseTransport | None) -> AsyncIterator[GetJson]:
    async with httpx.AsyncClient(
        transport=transport, limits=HTTPX_LIMITS, timeout=TIMEOUT_S
    ) as client:

        async def get_json(url: str) -> Any:
            response = await client.get(url)
            response.raise_for_status()
            return response.json()

        yield get_json


def httpx_default() -> AbstractAsyncContextManager[GetJson]:
    """httpx on its own httpcore transport."""
    return _httpx_client(None)


def httpx_aiohttp() -> AbstractAsyncContextManager[GetJson]:
    """httpx's API on aiohttp's connection pool and HTTP parser."""
    return _httpx_client(AiohttpTransport(limits=HTTPX_LIMITS))


@asynccontextmanager
async def aiohttp_bare() -> AsyncIterator[GetJson]:
    """aiohttp alone: the floor the httpx+aiohttp transport adds its overhead to."""
    connector = aiohttp.TCPConnector(limit=POOL_SIZE)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def get_json(url: str) -> Any:
            async with session.get(url) as response:
                response.raise_for_status()
                return await response.json()

        yield get_json


CLIENTS: dict[str, ClientFactory] = {
    "httpx (httpcore)": httpx_default,
    "httpx + AiohttpTransport": httpx_aiohttp,
    "aiohttp ClientSession": aiohttp_bare,
}


# --- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Round:
    wall_s: float
    cpu_s: float


@dataclass(frozen=True, slots=True)
class Result:
    client: str
    concurrency: int
    requests: int
    wall_s: float
    cpu_s: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s * 1000 / self.requests


async def _send(get_json: GetJson, urls: Sequence[str], concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def one(url: str) -> None:
        async with slots:
            await get_json(url)

    await asyncio.gather(*(one(url) for url in urls))


async def _rounds(
    factory: ClientFactory, base: str, n: int, concurrency: int, repeat: int
) -> list[Round]:
    urls = [f"{base}/items/{i}" for i in range(n)]
    async with factory() as get_json:
        await _send(get_json, urls[: max(4 * concurrency, 50)], concurrency)  # warm-up
        rounds = []
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            await _send(get_json, urls, concurrency)
            rounds.append(Round(time.perf_counter() - wall, time.process_time() - cpu))
    return rounds


def measure(
    name: str, base: str, n: int, concurrency: int, repeat: int,
    clients: dict[str, ClientFactory] | None = None,
) -> Result:
    """The median round of one client at one concurrency, on a fresh event loop."""
    rounds = asyncio.run(_rounds((clients or CLIENTS)[name], base, n, concurrency, repeat))
    return Result(
        client=name,
        concurrency=concurrency,
        requests=n,
        wall_s=statistics.median(r.wall_s for r in rounds),
        cpu_s=statistics.median(r.cpu_s for r in rounds),
    )


def markdown_table(results: Sequence[Result]) -> str:
    lines = [
        "| client | concurrency | requests | wall s | requests/s | client CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.client} | {r.concurrency} | {r.requests} | {r.wall_s:.3f} "
        f"| {r.requests_per_s:,.0f} | {r.cpu_ms_per_request:.3f} |"
        for r in results
    ]
    return "\n".join(lines)


# --- connection pool check ----------------------------------------------------------------


def _aiohttp_session_per_origin(per_origin: int) -> Callable[[], aiohttp.ClientSession]:
    """A session factory: AiohttpTransport calls it lazily, inside the running loop."""

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=per_origin)
        return aiohttp.ClientSession(connector=connector)

    return session


POOL_CONFIGS: dict[str, Callable[[], httpx.AsyncClient]] = {
    "httpx.AsyncClient()": lambda: httpx.AsyncClient(),
    "AiohttpTransport()": lambda: httpx.AsyncClient(transport=AiohttpTransport()),
    "AiohttpTransport(limits=Limits(max_connections=None))": lambda: httpx.AsyncClient(
        transport=AiohttpTransport(limits=httpx.Limits(max_connections=None))
    ),
    "AiohttpTransport(limits=Limits(max_connections=200))": lambda: httpx.AsyncClient(
        transport=AiohttpTransport(limits=httpx.Limits(max_connections=200))
    ),
    "AiohttpTransport(client=<TCPConnector(limit=0, limit_per_host=200)>)": (
        lambda: httpx.AsyncClient(
            transport=AiohttpTransport(client=_aiohttp_session_per_origin(200))
        )
    ),
}


async def _peak_in_flight(make_client: Callable[[], httpx.AsyncClient], base: str) -> int:
    """Fire 150 concurrent slow requests; the server's peak is what the pool let through."""
    async with httpx.AsyncClient() as control:
        await control.post(f"{base}/_stats/reset")
        async with make_client() as client:
            await asyncio.gather(*(client.get(f"{base}/items/{i}") for i in range(150)))
        stats = (await control.get(f"{base}/_stats")).json()
    return int(stats["peak_in_flight"])


def pool_check() -> str:
    with server_process(latency_ms=300) as base:
        rows = [
            f"| `{name}` | {asyncio.run(_peak_in_flight(make, base))} |"
            for name, make in POOL_CONFIGS.items()
        ]
    header = ["| client construction | peak in flight of 150 |", "|---|---:|"]
    return "\n".join(header + rows)


# --- command line -------------------------------------------------------------------------


def _machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"httpx {httpx.__version__}, aiohttp {aiohttp.__version__}"
    )


def compare(prog: str, clients: dict[str, ClientFactory], argv: Sequence[str] | None,
            pool_check_option: bool = False) -> int:
    """The command line shared by the client benchmarks: every client at every concurrency."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--n", type=int, default=2000, help="requests per round")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds (median)")
    parser.add_argument("--clients", nargs="+", choices=list(clients), default=list(clients))
    if pool_check_option:
        parser.add_argument("--pool-check", action="store_true", help="also check pool limits")
    args = parser.parse_args(argv)

    print(f"machine: {_machine()}\n")
    with server_process() as base:
        results = [
            measure(name, base, args.n, concurrency, args.repeat, clients)
            for concurrency in args.concurrency
            for name in args.clients
        ]
    print(markdown_table(results))
    if getattr(args, "pool_check", False):
        print()
        print(pool_check())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return compare("python -m bench.http_client", CLIENTS, argv, pool_check_option=True)


if __name__ == "__main__":
    sys.exit(main())
