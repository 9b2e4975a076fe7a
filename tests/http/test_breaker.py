"""The circuit breaker (§3.1.5, §6.3.8): its state machine on a fake clock, then its
effect on a real server — fewer requests than attempts, and recovery after the cool-down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from reqon.http.breaker import BreakerState, CircuitBreaker
from reqon.errors import RunError
from reqon.http.client import HttpRequest, HttpRuntime, RetryPolicy, SourceClient, SourceSettings
from tests.hostile_server import HostileServer

T = TypeVar("T")
pytestmark = pytest.mark.timeout(30)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **settings: Any) -> CircuitBreaker:
    return CircuitBreaker("Radar", settings, clock=clock)


# --- the state machine ------------------------------------------------------------------


def test_opens_at_the_threshold_within_the_window() -> None:
    clock = Clock()
    b = breaker(clock, failureThreshold=3, failureWindow=10_000)
    for _ in range(2):
        b.record_failure()
        b.record_success()  # successes do not reset the count
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN


def test_failures_age_out_of_the_window() -> None:
    clock = Clock()
    b = breaker(clock, failureThreshold=3, failureWindow=10_000)
    b.record_failure()
    clock.now += 5
    b.record_failure()
    clock.now += 6  # the first failure is now 11 s old
    b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN


def test_open_refuses_with_the_time_to_the_next_trial() -> None:
    clock = Clock()
    b = breaker(clock, failureThreshold=1, resetTimeout=30_000)
    b.record_failure()
    clock.now += 18.5
    with pytest.raises(RunError) as caught:
        b.check()
    assert caught.value.kind == "circuit-open"
    assert caught.value.message == "circuit open for source Radar; next trial in 12s"
    assert b.rejected == 1


def test_half_open_after_the_reset_timeout_then_closed_by_successes() -> None:
    clock = Clock()
    b = breaker(clock, failureThreshold=1, resetTimeout=30_000, successThreshold=2)
    b.record_failure()
    clock.now += 30
    assert b.state is BreakerState.HALF_OPEN
    b.check()  # passes
    b.record_success()
    assert b.state is BreakerState.HALF_OPEN
    b.record_success()
    assert b.state is BreakerState.CLOSED


def test_a_failure_while_half_open_reopens_and_restarts_the_timer() -> None:
    clock = Clock()
    b = breaker(clock, failureThreshold=2, resetTimeout=10_000)
    b.record_failure()
    b.record_failure()
    clock.now += 10
    b.record_success()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.now += 9
    assert b.state is BreakerState.OPEN
    clock.now += 1
    assert b.state is BreakerState.HALF_OPEN


def test_closing_clears_the_failure_count() -> None:
    clock = Clock()
    b = breaker(clock, failureThreshold=2, resetTimeout=1_000, successThreshold=1)
    b.record_failure()
    b.record_failure()
    clock.now += 1
    b.record_success()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.CLOSED


# --- against a server -------------------------------------------------------------------


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@asynccontextmanager
async def api(url: str, **breaker_settings: Any) -> AsyncIterator[SourceClient]:
    source = SourceSettings(name="Radar", base_url=url, circuit_breaker=breaker_settings)
    runtime = await HttpRuntime.open([source])
    try:
        yield runtime.source("Radar")
    finally:
        await runtime.aclose()


RETRY5 = RetryPolicy(max_attempts=5, initial_delay_ms=10)
FAILING = "/respond?status=503&body=down"


def test_the_server_sees_fewer_requests_than_attempts(hostile: HostileServer) -> None:
    async def go() -> list[BaseException | Any]:
        async with api(hostile.url, failureThreshold=3, resetTimeout=60_000) as source:
            sends = [source.send(HttpRequest("GET", FAILING, retry=RETRY5)) for _ in range(4)]
            return await asyncio.gather(*sends, return_exceptions=True)

    outcomes = run(go())
    kinds = sorted(o.kind for o in outcomes if isinstance(o, RunError))
    assert len(kinds) == 4 and "circuit-open" in kinds
    assert set(kinds) <= {"circuit-open", "http"}
    # 4 requests x 5 attempts = 20 attempts; the server saw the first wave only
    assert len(hostile.state.paths("/respond")) < 8


def test_open_circuit_fails_without_retrying_then_half_opens(hostile: HostileServer) -> None:
    async def go() -> RunError:
        async with api(hostile.url, failureThreshold=2, resetTimeout=300) as source:
            with pytest.raises(RunError) as caught:
                await source.send(HttpRequest("GET", FAILING, retry=RETRY5))
            with pytest.raises(RunError):
                await source.send(HttpRequest("GET", "/echo"))
            await asyncio.sleep(0.35)
            assert source.breaker is not None
            assert source.breaker.state is BreakerState.HALF_OPEN
            await source.send(HttpRequest("GET", "/echo"))
            await source.send(HttpRequest("GET", "/echo"))
            assert source.breaker.state is BreakerState.CLOSED
            return caught.value

    error = run(go())
    assert error.kind == "circuit-open"
    assert "circuit open for source Radar; next trial in 1s" == error.message
    assert len(hostile.state.paths("/respond")) == 2
    assert len(hostile.state.paths("/echo")) == 2  # the refused one never left


def test_timeouts_and_network_failures_count_but_4xx_do_not(hostile: HostileServer) -> None:
    async def go() -> BreakerState:
        async with api(hostile.url, failureThreshold=2) as source:
            for _ in range(3):
                with pytest.raises(RunError):
                    await source.send(HttpRequest("GET", "/respond?status=404&body=x"))
            assert source.breaker is not None
            assert source.breaker.state is BreakerState.CLOSED
            retry = RetryPolicy(max_attempts=2, initial_delay_ms=10)
            request = HttpRequest("GET", "/slow?ms=2000", timeout_ms=50, retry=retry)
            with pytest.raises(RunError):
                await source.send(request)
            return source.breaker.state

    assert run(go()) is BreakerState.OPEN


def test_cancelled_requests_count_neither_way(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url, failureThreshold=1) as source:
            task = asyncio.create_task(source.send(HttpRequest("GET", "/slow?ms=5000")))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert source.breaker is not None
            assert source.breaker.state is BreakerState.CLOSED
            await source.send(HttpRequest("GET", "/echo"))

    run(go())
