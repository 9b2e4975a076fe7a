"""Per-source rate limits and `maxInFlight` across a cluster: one gatekeeper per run.

A source with `rateLimit` or `maxInFlight` is gated by a small actor that owns the
source's real `RateLimiter` and its slots; every process of the run (the driver and
each worker) asks it before a request starts and tells it when the request ended.
That costs two messages per request, paid only by sources that have such limits,
and keeps §3.1.4 and §6.3.9 exact however many machines send. A request cancelled
while it waits gives up its place (`abandon`); one that ends gives back its slot.
"""
from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Mapping
from typing import Any

from reqon.errors import RunError
from reqon.http.model import SourceSettings
from reqon.http.ratelimit import WATCHED_HEADERS, RateLimiter, Turn


def gated(sources: list[SourceSettings]) -> list[tuple[str, Any, int | None]]:
    """The sources that need a gatekeeper: (name, rateLimit settings, maxInFlight)."""
    return [(s.name, s.rate_limit, s.max_in_flight) for s in sources
            if s.rate_limit is not None or s.max_in_flight]


class GateKeeper:
    """The actor: one limiter and one set of slots per gated source."""

    def __init__(self, sources: list[tuple[str, Any, int | None]]) -> None:
        self._limiters = {name: RateLimiter(name, settings) for name, settings, _ in sources}
        self._slots = {name: asyncio.Semaphore(n) if n else None for name, _, n in sources}
        self._holding: dict[str, tuple[str, Turn | None]] = {}
        self._waiting: dict[str, asyncio.Task[Any]] = {}
        self._abandoned: set[str] = set()

    async def enter(self, source: str, ticket: str) -> str | tuple[str, str] | None:
        """Wait for the turn and a slot: the ticket, a (kind, message) failure, or None if abandoned."""
        if ticket in self._abandoned:
            self._abandoned.discard(ticket)
            return None
        limiter, slots = self._limiters[source], self._slots[source]
        task = asyncio.current_task()
        assert task is not None
        self._waiting[ticket] = task
        turn: Turn | None = None
        try:
            turn = await limiter.acquire()
            if slots is not None:
                await slots.acquire()
        except RunError as exc:
            limiter.release(turn)
            return (exc.kind, exc.message)
        except asyncio.CancelledError:
            limiter.release(turn)
            return None
        finally:
            self._waiting.pop(ticket, None)
        limiter.started(turn)
        self._holding[ticket] = (source, turn)
        return ticket

    def observe(self, source: str, headers: dict[str, str]) -> None:
        self._limiters[source].observe(headers)

    def leave(self, ticket: str) -> None:
        held = self._holding.pop(ticket, None)
        if held is None:
            return
        source, turn = held
        limiter, slots = self._limiters[source], self._slots[source]
        limiter.finished()
        if slots is not None:
            slots.release()
        limiter.release(turn)

    def abandon(self, ticket: str) -> None:
        task = self._waiting.get(ticket)
        if task is not None:
            task.cancel()
        elif ticket in self._holding:
            self.leave(ticket)
        else:
            self._abandoned.add(ticket)  # it has not arrived yet: refuse it when it does


class RemoteGate:
    """What a `SourceClient` calls instead of its own limiter (`share_gates`)."""

    _numbers = itertools.count()

    def __init__(self, keeper: Any, source: str) -> None:
        self.keeper = keeper
        self.source = source
        self._prefix = f"{os.getpid()}-{id(self)}-"

    async def acquire(self) -> str:
        ticket = f"{self._prefix}{next(self._numbers)}"
        try:
            answer = await self.keeper.enter.remote(self.source, ticket)
        except asyncio.CancelledError:
            self.keeper.abandon.remote(ticket)
            raise
        if isinstance(answer, tuple):
            raise RunError(answer[0], answer[1])  # type: ignore[arg-type]
        if answer is None:
            raise asyncio.CancelledError()
        return ticket

    def started(self, ticket: str | None) -> None:
        """The gatekeeper recorded the start when it gave the slot."""

    def observe(self, headers: Mapping[str, str]) -> None:
        watched = {k: v for k, v in headers.items() if k in WATCHED_HEADERS}
        if watched:
            self.keeper.observe.remote(self.source, watched)

    def finished(self) -> None:
        """Told with `release`, which carries the ticket."""

    def release(self, ticket: str | None) -> None:
        if ticket is not None:
            self.keeper.leave.remote(ticket)
