"""The values that cross the HTTP boundary: request options, requests, responses, sources.

They live apart from `http.py` so that the evaluator can build requests without
importing httpx and aiohttp: those imports (and aiohttp's TLS context) cost a
noticeable part of `reqon run`'s start-up and are only paid when a mission has
sources to talk to.
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reqon.values import Value

# --- request options (§4.1.5, §4.1.6) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A retry object of §4.1.5; `explicit` says the step wrote a `retry` option."""

    max_attempts: int = 3
    backoff: str = "exponential"
    initial_delay_ms: float = 1000
    max_delay_ms: float = 30000
    explicit: bool = False

    def delay_ms(self, attempts_done: int) -> float:
        """The wait before attempt `attempts_done + 1`: the §4.1.5 formula, capped at
        `max_delay_ms`, then ±10 % jitter so that branches failing together do not
        retry in lockstep."""
        k = max(1, attempts_done)
        if self.backoff == "constant":
            delay = self.initial_delay_ms
        elif self.backoff == "linear":
            delay = self.initial_delay_ms * k
        else:
            delay = self.initial_delay_ms * 2.0 ** min(k - 1, 64)
        return min(delay, self.max_delay_ms) * random.uniform(0.9, 1.1)


@dataclass(frozen=True, slots=True)
class Allow:
    """The `allow` option of §4.1.6: statuses that count as success."""

    statuses: frozenset[int] = frozenset()
    classes: frozenset[int] = frozenset()  # 4 for "4xx", 5 for "5xx"

    def allows(self, status: int) -> bool:
        return status in self.statuses or status // 100 in self.classes


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One logical request of a step, with its expressions already evaluated."""

    method: str
    path: str
    params: Sequence[tuple[str, Value]] = ()
    extra_params: Sequence[tuple[str, Value]] = ()
    headers: Mapping[str, Value] | None = None
    body: Value = None
    timeout_ms: float | None = None
    retry: RetryPolicy = RetryPolicy()
    allow: Allow = Allow()


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A successful (or allowed) final response, decoded."""

    method: str
    url: str  # the final URL, redacted
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: Value
    attempts: int
    elapsed_ms: float
    reason: str = ""

    def binding(self, pages: int = 1, elapsed_ms: float | None = None) -> dict[str, Value]:
        """The `http` object of §6.3.4; a paginated step passes its page count and the
        duration of the whole step."""
        elapsed = self.elapsed_ms if elapsed_ms is None else elapsed_ms
        return {
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "headers": dict(self.headers),
            "attempts": self.attempts,
            "pages": pages,
            "elapsedMs": round(elapsed),
        }


@dataclass(frozen=True)
class SourceSettings:
    """A source declaration with its expressions evaluated at mission start."""

    name: str
    base_url: str
    headers: dict[str, Value] = field(default_factory=dict)
    timeout_ms: float = 30000
    max_in_flight: int | None = None
    max_response_bytes: int = 64 * 1024 * 1024
    auth_kind: str = "none"
    auth_settings: dict[str, Value] = field(default_factory=dict)
    rate_limit: dict[str, Value] | None = None
    circuit_breaker: dict[str, Value] | None = None
