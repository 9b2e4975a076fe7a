"""A mission's schedule as the daemon uses it (LANGUAGE.md §3.7): due times plus the rules around them.

The checker has accepted the schedule (literal values of the right types, a valid cron
text and zone), so this module reads literals straight from the tree. Options in the
schedule's block and members next to `schedule:` are one set of settings.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from reqon import ast
from reqon.timetable import UNITS, UTC, Timetable, parse_at, zone

DEFAULT_RETRY_DELAY_S = 60.0
DEFAULT_MAX_RETRIES = 3


@dataclass(frozen=True)
class SchedulePolicy:
    timetable: Timetable
    zone_name: str = "UTC"
    skip_if_running: bool = True
    max_concurrency: int = 1
    max_retries: int = 0
    retry_delay_s: float = DEFAULT_RETRY_DELAY_S
    backoff: str = "constant"
    run_immediately: bool = True
    jitter_s: float = 0.0
    timeout_s: float | None = None

    @property
    def overlap_limit(self) -> int:
        """How many runs of the mission may go at once."""
        return 1 if self.skip_if_running else self.max_concurrency

    def retry_delay(self, retry: int) -> float:
        """Seconds before retry number `retry` (1-based), per the backoff (§4.1.5)."""
        if self.backoff == "exponential":
            return self.retry_delay_s * 2 ** (retry - 1)
        if self.backoff == "linear":
            return self.retry_delay_s * retry
        return self.retry_delay_s


def policy_of(schedule: ast.Schedule) -> SchedulePolicy:
    settings: dict[str, Any] = {e.key: e.value for e in (schedule.options.entries if schedule.options else ())}
    settings.update({m.key: m.value for m in schedule.members})
    zone_name = str(_literal(settings.get("timezone"), "UTC"))
    tz = zone(zone_name)
    retry: dict[str, Any] = {}
    if "retry" in settings:
        fields = _object(settings["retry"])
        retry = {"max_retries": int(fields.get("maxRetries", DEFAULT_MAX_RETRIES)),
                 "retry_delay_s": float(fields.get("delaySeconds", DEFAULT_RETRY_DELAY_S))}
    elif "retryOnFailure" in settings:
        fields = _object(settings["retryOnFailure"])
        retry = {"max_retries": max(0, int(fields.get("maxAttempts", DEFAULT_MAX_RETRIES + 1)) - 1),
                 "retry_delay_s": float(fields.get("initialDelay", DEFAULT_RETRY_DELAY_S * 1000)) / 1000,
                 "backoff": str(fields.get("backoff", "constant"))}
    timeout = _literal(settings.get("timeout"), None)
    return SchedulePolicy(
        timetable=timetable_of(schedule, tz), zone_name=zone_name,
        skip_if_running=bool(_literal(settings.get("skipIfRunning"), True)),
        max_concurrency=int(_literal(settings.get("maxConcurrency"), 1)),
        run_immediately=bool(_literal(settings.get("runImmediately"), True)),
        jitter_s=float(_literal(settings.get("jitter"), 0)) / 1000,
        timeout_s=float(timeout) / 1000 if timeout is not None else None, **retry)


def timetable_of(schedule: ast.Schedule, tz: dt.tzinfo = UTC) -> Timetable:
    if schedule.kind == "cron":
        return Timetable("cron", tz, cron=schedule.text or "")
    if schedule.kind == "at":
        return Timetable("at", tz, at=parse_at(schedule.text or "", tz))
    if schedule.unit is not None:
        unit = schedule.unit.name.removesuffix("s")
        seconds = float((schedule.count or 1) * UNITS[unit])
    else:
        seconds = (schedule.duration_ms or 1000) / 1000
    return Timetable("every", tz, interval_s=seconds)


def _literal(expr: Any, default: Any) -> Any:
    """A literal's value; `-5s` is a unary minus over a literal (the checker refused it)."""
    if expr is None:
        return default
    if isinstance(expr, ast.Literal):
        return expr.value
    if isinstance(expr, ast.Var):
        return expr.name  # a bare word such as `backoff: exponential`
    return default


def _object(expr: Any) -> dict[str, Any]:
    if not isinstance(expr, ast.ObjectLit):
        return {}
    values = {e.key: _literal(e.value, None) for e in expr.entries if isinstance(e, ast.Entry)}
    return {key: value for key, value in values.items() if value is not None}
