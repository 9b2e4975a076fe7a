"""Client CPU cost per request of `SourceClient.send`, next to the bare stack it runs on.

The same measurement as `bench.http_client` (GETs of ``/items/{i}`` against the demo
server in a separate process, zero latency, median of ``--repeat`` rounds), with reqon's
whole request pipeline — URL building, headers, the gates, the attempt timeout, body
reading with the size limit, decoding, the `HttpResponse` — in place of a bare
``client.get(url).json()`` on httpx + AiohttpTransport.

    .venv/bin/python -m bench.http_send --n 2000 --concurrency 1 10 50
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from bench.http_client import GetJson, compare, httpx_aiohttp
from reqon.http.client import HttpRequest, HttpRuntime, SourceSettings


@asynccontextmanager
async def reqon_send(**settings: Any) -> AsyncIterator[GetJson]:
    """`SourceClient.send` on a source with the given settings (bearer auth by default,
    so that the header path is the realistic one)."""
    source_settings = {"auth_kind": "bearer", "auth_settings": {"token": "t0ken-bench"}}
    source_settings.update(settings)
    runtime: HttpRuntime | None = None
    prefix = ""

    async def get_json(url: str) -> Any:
        nonlocal runtime, prefix
        if runtime is None:
            base, _, _ = url.partition("/items/")
            prefix = base
            runtime = await HttpRuntime.open([SourceSettings("Bench", base, **source_settings)])
        response = await runtime.source("Bench").send(HttpRequest("GET", url[len(prefix) :]))
        return response.body

    try:
        yield get_json
    finally:
        if runtime is not None:
            await runtime.aclose()


def reqon_plain() -> AbstractAsyncContextManager[GetJson]:
    return reqon_send()


def reqon_limited() -> AbstractAsyncContextManager[GetJson]:
    """With `maxInFlight` and a circuit breaker: the gates that cost something per request."""
    return reqon_send(max_in_flight=64, circuit_breaker={"failureThreshold": 5})


CLIENTS = {
    "httpx + AiohttpTransport (bare)": httpx_aiohttp,
    "reqon SourceClient.send": reqon_plain,
    "reqon send + maxInFlight + breaker": reqon_limited,
}


def main(argv: Sequence[str] | None = None) -> int:
    return compare("python -m bench.http_send", CLIENTS, argv)


if __name__ == "__main__":
    sys.exit(main())
