"""The per-source circuit breaker of §3.1.5 and §6.3.8.

One breaker is shared by every branch and iteration using a source, so that once the API
has failed often enough, nobody keeps hammering it: attempts fail at once with kind
`circuit-open` until the reset timeout has passed. Everything runs on one event loop, so
state changes need no lock — no method awaits.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from enum import Enum

from reqon.errors import RunError
from reqon.values import Value

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


def _number(settings: Mapping[str, Value], name: str, default: float) -> float:
    value = settings.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default


class CircuitBreaker:
    """Closed → open after `failureThreshold` counted failures within `failureWindow`;
    open → half-open after `resetTimeout`; half-open → closed after `successThreshold`
    successes, or back to open on the first counted failure.

    Counted failures are attempts ending in a connection error, a timeout or a 5xx
    status; any other answer is a success. Cancelled attempts are reported as neither.
    """

    def __init__(
        self,
        source: str,
        settings: Mapping[str, Value],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.failure_threshold = max(1, int(_number(settings, "failureThreshold", 5)))
        self.failure_window_s = _number(settings, "failureWindow", 60_000) / 1000
        self.reset_timeout_s = _number(settings, "resetTimeout", 30_000) / 1000
        self.success_threshold = max(1, int(_number(settings, "successThreshold", 2)))
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures: deque[float] = deque()
        self._opened_at = 0.0
        self._successes = 0
        self.rejected = 0

    @property
    def state(self) -> BreakerState:
        """The state now; an open circuit whose timeout has passed reads as half-open."""
        if self._state is BreakerState.OPEN:
            if self._clock() - self._opened_at >= self.reset_timeout_s:
                self._state = BreakerState.HALF_OPEN
                self._successes = 0
        return self._state

    def check(self) -> None:
        """Gate (1) of §6.3.9: raise `circuit-open` instead of letting an attempt start."""
        if self.state is not BreakerState.OPEN:
            return
        self.rejected += 1
        wait = self._opened_at + self.reset_timeout_s - self._clock()
        raise RunError(
            "circuit-open",
            f"circuit open for source {self.source}; next trial in {math.ceil(wait)}s",
        )

    def record_success(self) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._successes += 1
            if self._successes >= self.success_threshold:
                self._state = BreakerState.CLOSED
                self._failures.clear()

    def record_failure(self) -> None:
        now = self._clock()
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._open(now)
            return
        if state is BreakerState.OPEN:  # an attempt that started before the circuit opened
            return
        self._failures.append(now)
        horizon = now - self.failure_window_s
        while self._failures and self._failures[0] <= horizon:
            self._failures.popleft()
        if len(self._failures) >= self.failure_threshold:
            self._open(now)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._successes = 0
