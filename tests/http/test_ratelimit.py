"""The per-source rate limiter (§3.1.4, §6.3.7), seen from the server's side."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from reqon.errors import RunError
from reqon.http.client import HttpRequest, HttpRuntime, RetryPolicy, SourceClient, SourceSettings
from reqon.http.ratelimit import RateLimiter, read_reset
from tests.hostile_server import HostileServer

T = TypeVar("T")
pytestmark = pytest.mark.timeout(30)

ONCE = RetryPolicy(max_attempts=1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@asynccontextmanager
async def api(url: str, **settings: Any) -> AsyncIterator[SourceClient]:
    runtime = await HttpRuntime.open([SourceSettings(name="Api", base_url=url, **settings)])
    try:
        yield runtime.source("Api")
    finally:
        await runtime.aclose()


def arrivals(hostile: HostileServer, path: str) -> list[float]:
    return [seen.at for seen in hostile.state.paths(path)]


def spaced(times: list[float], interval: float) -> bool:
    """Whether arrivals are spaced about `interval` apart: each span of k gaps is at least
    k intervals less 0.15 s. The client spaces the starts of its requests exactly; a loaded
    machine delays their arrival at the server by varying amounts (a new connection is
    slower), so adjacent gaps can shrink, but an unlimited client would send all at once."""
    times = sorted(times)
    return all(times[j] - times[i] >= (j - i) * interval - 0.15
               for i in range(len(times)) for j in range(i + 1, len(times)))


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(
        sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times)
    )


async def limit_for(source: SourceClient, seconds: float) -> None:
    """Have the server send `Retry-After: seconds` on a successful answer (fractions are
    not HTTP, but reqon reads them, which keeps these tests short)."""
    await source.send(HttpRequest("GET", f"/respond?h.Retry-After={seconds}&body=%7B%7D"))


# --- requestsPerMinute ------------------------------------------------------------------


def test_five_per_second_shared_by_four_tasks(hostile: HostileServer) -> None:
    async def task(source: SourceClient, n: int) -> None:
        for _ in range(n):
            await source.send(HttpRequest("GET", "/echo"))

    async def go() -> float:
        async with api(hostile.url, rate_limit={"requestsPerMinute": 300}) as source:
            started = time.monotonic()
            await asyncio.gather(*(task(source, 3) for _ in range(4)))
            return time.monotonic() - started

    elapsed = run(go())
    times = arrivals(hostile, "/echo")
    assert len(times) == 12
    assert most_in_any_window(times, 0.8) <= 5  # 0.2 s of slack for arrival jitter
    assert spaced(times, 0.2), times
    assert elapsed < 11 * 0.2 + 5  # spaced, not grossly slower than needed


def test_spacing_applies_whatever_the_strategy(hostile: HostileServer) -> None:
    async def go() -> None:
        settings = {"strategy": "fail", "requestsPerMinute": 200}
        async with api(hostile.url, rate_limit=settings) as source:
            await asyncio.gather(*(source.send(HttpRequest("GET", "/echo")) for _ in range(4)))

    run(go())
    times = arrivals(hostile, "/echo")
    assert len(times) == 4
    assert spaced(times, 0.3), times


def test_throttle_without_headers_uses_fallback_rpm(hostile: HostileServer) -> None:
    async def go() -> None:
        settings = {"strategy": "throttle", "fallbackRpm": 200}
        async with api(hostile.url, rate_limit=settings) as source:
            for _ in range(4):
                await source.send(HttpRequest("GET", "/echo"))

    run(go())
    times = arrivals(hostile, "/echo")
    assert len(times) == 4
    assert spaced(times, 0.3), times


# --- learning from the API --------------------------------------------------------------


def test_retry_after_pauses_every_request_of_the_source(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url) as source:
            await limit_for(source, 1)
            await asyncio.gather(*(source.send(HttpRequest("GET", "/echo")) for _ in range(3)))

    run(go())
    [limited_at] = arrivals(hostile, "/respond")
    assert all(t - limited_at >= 0.95 for t in arrivals(hostile, "/echo"))


def test_retry_after_as_http_date(hostile: HostileServer) -> None:
    date = email.utils.formatdate(time.time() + 4, usegmt=True)  # whole seconds: at least 3 s away

    async def go() -> None:
        async with api(hostile.url) as source:
            await source.send(HttpRequest("GET", f"/respond?h.Retry-After={date}&body=1"))
            await source.send(HttpRequest("GET", "/echo"))

    run(go())
    [limited_at] = arrivals(hostile, "/respond")
    [later] = arrivals(hostile, "/echo")
    assert later - limited_at >= 1.0  # unless the first request took 2 s to arrive


def test_a_server_quota_is_respected_without_429s(hostile: HostileServer) -> None:
    """A quota of 5 per 0.5 s announced with X-RateLimit-Remaining/-Reset: four tasks
    sharing the source never overrun it, although four requests are often in flight."""
    hostile.state.quota, hostile.state.quota_window_s = 5, 0.5

    async def task(source: SourceClient) -> None:
        for _ in range(3):
            await source.send(HttpRequest("GET", "/quota", retry=ONCE))

    async def go() -> None:
        async with api(hostile.url) as source:
            await asyncio.gather(*(task(source) for _ in range(4)))

    run(go())  # a 429 would fail a task: retries are off
    assert len(arrivals(hostile, "/quota")) == 12


def test_fail_strategy_fails_at_once_while_limited(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url, rate_limit={"strategy": "fail"}) as source:
            await limit_for(source, 60)
            await source.send(HttpRequest("GET", "/echo"))

    started = time.monotonic()
    with pytest.raises(RunError) as caught:
        run(go())
    assert caught.value.kind == "rate-limit"
    assert "strategy fail" in caught.value.message
    assert time.monotonic() - started < 20  # not the minute of the limit
    assert not arrivals(hostile, "/echo")


def test_a_wait_longer_than_max_wait_fails(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url, rate_limit={"maxWait": 1000}) as source:
            await source.send(HttpRequest("GET", "/flaky/k?status=429&retry_after=30"))

    started = time.monotonic()
    with pytest.raises(RunError) as caught:
        run(go())
    assert caught.value.kind == "rate-limit"
    assert "more than maxWait 1s" in caught.value.message
    assert time.monotonic() - started < 1
    assert len(arrivals(hostile, "/flaky/k")) == 1


# --- fairness, slots, cancellation ------------------------------------------------------


def test_capacity_returns_to_one_probe_then_the_queue_in_order(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url) as source:
            await limit_for(source, 0.3)
            tasks = []
            for i in range(6):
                request = HttpRequest("GET", f"/slow?ms=200&i={i}")
                tasks.append(asyncio.create_task(source.send(request)))
                await asyncio.sleep(0.01)  # queue them in a known order
            await asyncio.gather(*tasks)

    run(go())
    seen = hostile.state.paths("/slow")
    assert seen[0].query.endswith("i=0")
    probe_answered = seen[0].at + 0.2
    assert len(seen) == 6
    assert all(later.at >= probe_answered - 0.01 for later in seen[1:])


def test_waiting_at_the_limiter_holds_no_slot(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url, max_in_flight=1) as source:
            await limit_for(source, 0.5)
            task = asyncio.create_task(source.send(HttpRequest("GET", "/echo")))
            await asyncio.sleep(0.3)
            assert source.in_flight == 0
            assert not task.done()
            await task

    run(go())
    assert len(arrivals(hostile, "/echo")) == 1


def test_a_limiter_wait_is_cancellable(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url, rate_limit={"requestsPerMinute": 6}) as source:
            await source.send(HttpRequest("GET", "/echo"))
            waiting = asyncio.create_task(source.send(HttpRequest("GET", "/echo")))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert time.monotonic() - started < 0.1
            assert not source.limiter._lock.locked()

    run(go())
    assert len(arrivals(hostile, "/echo")) == 1


# --- header reading ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0),
        ("1.5", 1.5),
        ("1700000030", 30.0),  # epoch seconds
        ("1700000030000", 30.0),  # epoch milliseconds
        ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),
        ("2023-11-14T22:13:50Z", 30.0),
    ],
)
def test_reset_header_forms(text: str, seconds: float) -> None:
    assert read_reset(text, now_wall=1_700_000_000.0) == pytest.approx(seconds)


def test_unreadable_headers_are_ignored() -> None:
    limiter = RateLimiter("Api", None, clock=lambda: 100.0)
    limiter.observe({"retry-after": "soon", "x-ratelimit-remaining": "many"})
    assert limiter.limited_for() == 0.0


def test_remaining_zero_limits_until_the_reset() -> None:
    now = [100.0]
    limiter = RateLimiter("Api", None, clock=lambda: now[0])
    limiter.started(None)
    limiter.observe({"ratelimit-remaining": "0", "ratelimit-reset": "20"})
    limiter.finished()
    assert limiter.limited_for() == pytest.approx(20.0)
    now[0] += 21
    assert limiter.limited_for() == 0.0


def test_throttle_spreads_starts_over_the_rest_of_the_window() -> None:
    """remaining 10 with the reset 1 s away → starts about 0.1 s apart."""

    async def go() -> list[float]:
        limiter = RateLimiter("Api", {"strategy": "throttle"})
        limiter.observe({"x-ratelimit-remaining": "10", "x-ratelimit-reset": "1"})
        starts = []
        for _ in range(3):
            turn = await limiter.acquire()
            limiter.started(turn)
            starts.append(time.monotonic())
            limiter.finished()
            limiter.release(turn)
        return starts

    starts = run(go())
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(0.08 <= gap <= 0.2 for gap in gaps), gaps
