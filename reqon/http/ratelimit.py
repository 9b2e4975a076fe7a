"""The per-source rate limiter of §3.1.4 and §6.3.7.

One limiter per source is shared by every branch and parallel iteration. It learns the
API's state from response headers (remaining requests, reset instant, `Retry-After`)
and decides, before each attempt, whether the request may start now.

Fairness. Requests that must wait queue on a FIFO lock, the *turn*: only its holder
waits on the clock, so when capacity returns requests leave the queue one at a time in
arrival order instead of all waking at once. The holder keeps the turn until its
request has actually started — after it got its `maxInFlight` slot — so request starts
are spaced as configured even when slots are scarce, while everyone queued behind it
holds no slot (§6.3.9). After a limited period the first request through is a *probe*:
it keeps the turn until its response has been observed, so the next ones start with
fresh knowledge of the remaining quota rather than as a herd.

Requests to a source with no spacing rule and no known limit skip the turn entirely.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reqon.errors import RunError
from reqon.http.codec import parse_http_instant, parse_retry_after
from reqon.values import Value

__all__ = ["WATCHED_HEADERS", "RateLimiter", "Turn", "read_reset"]

DEFAULT_MAX_WAIT_MS = 300_000
DEFAULT_FALLBACK_RPM = 60
# Spacing is stretched by this fraction so that the *server* — which sees starts shifted
# by varying network and scheduling delays — never counts more than n per minute either.
SPACING_MARGIN = 0.01
# Two reset instants closer than this belong to the same rate-limit window.
SAME_WINDOW_S = 0.5

_REMAINING = ("x-ratelimit-remaining", "ratelimit-remaining", "x-rate-limit-remaining")
_RESET = ("x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset")
# The response headers `observe` reads: all a limiter in another process needs to be told.
WATCHED_HEADERS = frozenset(("retry-after", *_REMAINING, *_RESET))


def _first_header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None


def read_reset(text: str, now_wall: float) -> float | None:
    """A reset header as seconds from now (§6.3.7): a number below 10^9 is seconds from
    now, above 10^12 epoch milliseconds, otherwise epoch seconds; else a date."""
    try:
        number = float(text.split(",")[0])
    except ValueError:
        instant = parse_http_instant(text)
        return None if instant is None else instant - now_wall
    if number < 1e9:
        return number
    if number > 1e12:
        return number / 1000 - now_wall
    return number - now_wall


@dataclass(slots=True)
class Turn:
    """The right to start the next request, held by one waiting request at a time."""

    probe: bool
    held: bool = True


class RateLimiter:
    """Shared, fair, adaptive request-start control for one source."""

    def __init__(
        self,
        source: str,
        settings: Mapping[str, Value] | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = settings or {}
        self.source = source
        strategy = settings.get("strategy", "pause")
        self.strategy = strategy if strategy in ("pause", "throttle", "fail") else "pause"
        self.max_wait_s = _positive(settings.get("maxWait"), DEFAULT_MAX_WAIT_MS) / 1000
        self.fallback_rpm = _positive(settings.get("fallbackRpm"), DEFAULT_FALLBACK_RPM)
        rpm = settings.get("requestsPerMinute")
        self.min_spacing_s = 0.0
        if isinstance(rpm, (int, float)) and not isinstance(rpm, bool) and rpm > 0:
            self.min_spacing_s = 60 / rpm * (1 + SPACING_MARGIN)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._queued = 0
        self._last_start = float("-inf")
        self._retry_until = float("-inf")
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._in_flight = 0
        self.waited_s = 0.0

    # -- what the API told us -------------------------------------------------------------

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's headers (any status); call before :meth:`finished`."""
        retry_after = headers.get("retry-after")
        remaining = _first_header(headers, _REMAINING)
        reset = _first_header(headers, _RESET)
        if retry_after is None and remaining is None and reset is None:
            return
        now = self._clock()
        if retry_after is not None:
            seconds = parse_retry_after(retry_after)
            if seconds is not None:
                self._retry_until = max(self._retry_until, now + seconds)
        reset_at = self._reset_at
        if reset is not None:
            seconds = read_reset(reset, time.time())
            if seconds is not None:
                reset_at = now + max(0.0, seconds)
        if remaining is not None:
            try:
                count = int(float(remaining.split(",")[0]))
            except ValueError:
                count = None
            if count is not None:
                self._remaining = self._estimate(count, reset_at, now)
        self._reset_at = reset_at

    def _estimate(self, reported: int, reset_at: float | None, now: float) -> int:
        """The remaining quota, from a count the server reported for one response.

        The server counted that response's request but maybe not the others still in
        flight, so they are assumed spent; within the same window the lower of this and
        the running estimate wins, because responses arrive in any order.
        """
        estimate = max(0, reported - (self._in_flight - 1))
        known, known_reset = self._remaining, self._reset_at
        same_window = (
            known is not None
            and known_reset is not None
            and known_reset > now
            and (reset_at is None or reset_at <= known_reset + SAME_WINDOW_S)
        )
        return min(known, estimate) if same_window and known is not None else estimate

    def limited_for(self, now: float | None = None) -> float:
        """Seconds until the source is no longer limited (0 if it is not)."""
        now = self._clock() if now is None else now
        wait = self._retry_until - now
        if self._remaining == 0 and self._reset_at is not None:
            if self._reset_at > now:
                wait = max(wait, self._reset_at - now)
            else:  # the window has reset: the count is stale
                self._remaining = None
        return max(0.0, wait)

    # -- gate (3) -------------------------------------------------------------------------

    def _spacing(self, now: float) -> float:
        spacing = self.min_spacing_s
        if self.strategy == "throttle":
            remaining, reset_at = self._remaining, self._reset_at
            if remaining and reset_at is not None and reset_at > now:
                spacing = max(spacing, (reset_at - now) / remaining)
            else:
                spacing = max(spacing, 60 / self.fallback_rpm)
        return spacing

    def _free(self) -> bool:
        """No queue, no spacing rule and no limit known: start without taking the turn."""
        return (
            self._queued == 0
            and not self._lock.locked()
            and self.min_spacing_s == 0.0
            and self.strategy != "throttle"
            and self.limited_for() == 0.0
        )

    async def acquire(self) -> Turn | None:
        """Wait until a request may start; None means no turn was needed.

        A returned turn must be passed to :meth:`started` when the request goes out and
        to :meth:`release` when the attempt ends (both tolerate repeats).
        """
        if self._free():
            return None
        self._queued += 1
        try:
            await self._lock.acquire()
        finally:
            self._queued -= 1
        try:
            return await self._wait_for_start()
        except BaseException:
            self._lock.release()
            raise

    async def _wait_for_start(self) -> Turn:
        probe = False
        while True:
            now = self._clock()
            limited = self.limited_for(now)
            if limited > 0 and self.strategy == "fail":
                raise RunError(
                    "rate-limit",
                    f"rate limit reached for source {self.source} (strategy fail); "
                    f"limited for another {limited:.1f}s",
                )
            wait = max(limited, self._last_start + self._spacing(now) - now)
            if wait <= 0:
                return Turn(probe=probe)
            if wait > self.max_wait_s:
                raise RunError(
                    "rate-limit",
                    f"rate limit for source {self.source} needs a wait of {wait:.1f}s, "
                    f"more than maxWait {self.max_wait_s:g}s",
                )
            probe = probe or limited > 0
            self.waited_s += wait
            await asyncio.sleep(wait)

    def started(self, turn: Turn | None) -> None:
        """The request is going out now: record it, and pass the turn on unless this
        request is a probe (which keeps it until its response has been observed)."""
        self._last_start = self._clock()
        self._in_flight += 1
        if self._remaining:
            self._remaining -= 1
        if turn is not None and not turn.probe:
            self.release(turn)

    def finished(self) -> None:
        """A started request has ended (answered, failed or cancelled)."""
        self._in_flight -= 1

    def release(self, turn: Turn | None) -> None:
        if turn is not None and turn.held:
            turn.held = False
            self._lock.release()


def _positive(value: Value, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return float(default)
