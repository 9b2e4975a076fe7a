"""When a schedule (LANGUAGE.md §3.7) is due: `every`, `cron` and `at`, in a time zone.

Cron arithmetic is cronsim's (the evaluator healthchecks.io runs in production): five
fields, day-of-month OR day-of-week when both are restricted, and daylight-saving changes
handled as Debian's cron does (a time skipped by the spring change runs right after it; a
fixed time repeated by the autumn change runs once, wildcard minutes and hours run in both
passes). Zones are the standard library's `zoneinfo`, with the `tzdata` package as the
database where the system has none. Nothing here parses cron text itself.

Pure functions over explicit instants, so the checker (E307), `reqon schedule` and the
daemon agree, and tests use fixed instants instead of a clock.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from cronsim import CronSim, CronSimError

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
UNIT_WORDS = frozenset(UNITS) | frozenset(u + "s" for u in UNITS)
UTC = dt.timezone.utc


class ScheduleError(ValueError):
    """A schedule that cannot be evaluated; the message is the E307 text."""


def zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown timezone '{name}' (use an IANA name such as \"Europe/Amsterdam\")") from None


def timezone_problem(name: str) -> str | None:
    try:
        zone(name)
    except ScheduleError as exc:
        return str(exc)
    return None


def cron_problem(text: str) -> str | None:
    """Why `text` is not a five-field cron expression, or None."""
    fields = text.split()
    if len(fields) != 5:
        return f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
    try:
        CronSim(text, dt.datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        field = str(exc).removeprefix("Bad ").rstrip(".")
        allowed = _CRON_RANGES.get(field)
        if allowed is None:
            return str(exc)
        return f"the {field} field is not valid (values {allowed}; use *, n, a-b, */n, a-b/n or a list of these)"
    return None


_CRON_RANGES = {"minute": "0-59", "hour": "0-23", "day-of-month": "1-31", "month": "1-12",
                "day-of-week": "0-6, 0 = Sunday"}


def parse_at(text: str, tz: dt.tzinfo) -> dt.datetime:
    """The instant of an `at` schedule; without an offset it is read in `tz`."""
    try:
        when = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ScheduleError(f"'{text}' is not an ISO-8601 date-time (e.g. 2026-09-01T02:00:00Z)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=tz)


def at_problem(text: str) -> str | None:
    try:
        parse_at(text, UTC)
    except ScheduleError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class Timetable:
    """One schedule's due times. `kind` is every, cron or at."""

    kind: str
    tz: dt.tzinfo = UTC
    interval_s: float = 0.0
    cron: str = ""
    at: dt.datetime | None = None

    def next_after(self, instant: dt.datetime, last_start: dt.datetime | None = None) -> dt.datetime | None:
        """The first due time strictly after `instant` (None: never again).

        For `every`, due times follow the last start (one interval later); with no
        start yet, `instant` itself is the reference.
        """
        if self.kind == "every":
            base = last_start if last_start is not None else instant
            due = base + dt.timedelta(seconds=self.interval_s)
            while due <= instant:
                due += dt.timedelta(seconds=self.interval_s)
            return due
        if self.kind == "cron":
            # cronsim works at minute resolution from a zone-aware start; it returns times after it.
            return next(CronSim(self.cron, instant.astimezone(self.tz))).astimezone(UTC)
        assert self.at is not None
        return self.at.astimezone(UTC) if self.at > instant else None

    def upcoming(self, instant: dt.datetime, count: int) -> list[dt.datetime]:
        """The next `count` due times after `instant` (for `reqon schedule`)."""
        times: list[dt.datetime] = []
        current = instant
        while len(times) < count:
            due = self.next_after(current, current if self.kind == "every" and times else None)
            if due is None:
                break
            times.append(due)
            current = due
        return times

    def describe(self) -> str:
        """The schedule in words."""
        if self.kind == "every":
            return "every " + _seconds_in_words(self.interval_s)
        if self.kind == "cron":
            words = CronSim(self.cron, dt.datetime(2000, 1, 1, tzinfo=UTC)).explain()
            return f"cron \"{self.cron}\": {words[0].lower() + words[1:]}"
        assert self.at is not None
        return f"once at {self.at.isoformat()}"


def _seconds_in_words(seconds: float) -> str:
    for unit in ("week", "day", "hour", "minute", "second"):
        size = UNITS[unit]
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"
