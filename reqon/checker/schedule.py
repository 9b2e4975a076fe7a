"""Validation of `schedule:` specifications (§3.7, E307): cron fields, `at` instants, units, zones.

Pure functions returning a problem message (or None), so the daemon can reuse
them on the same text and agree with the checker.
"""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo

UNITS = ("second", "minute", "hour", "day", "week")
UNIT_WORDS = frozenset(UNITS) | frozenset(u + "s" for u in UNITS)

# name, lowest, highest
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31),
               ("month", 1, 12), ("day of week", 0, 6))

_ITEM = re.compile(r"(?:(\*)|(\d+)(?:-(\d+))?)(?:/(\d+))?")


def cron_problem(text: str) -> str | None:
    """Why `text` is not a five-field cron expression of §3.7, or None."""
    fields = text.split()
    if len(fields) != 5:
        return f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
    for value, (name, low, high) in zip(fields, CRON_FIELDS):
        for item in value.split(","):
            problem = _cron_item_problem(item, name, low, high)
            if problem is not None:
                return problem
    return None


def _cron_item_problem(item: str, name: str, low: int, high: int) -> str | None:
    m = _ITEM.fullmatch(item)
    if m is None:
        return f"'{item}' is not a valid {name} field (use *, a number, a-b, */n or a-b/n)"
    star, first, last, step = m.groups()
    if step is not None and int(step) < 1:
        return f"step '/{step}' of the {name} field must be at least 1"
    if star is not None:
        return None
    if step is not None and last is None:
        return f"'{item}': a step needs * or a range a-b in the {name} field"
    a = int(first)
    b = int(last) if last is not None else a
    for number in (a, b):
        if not low <= number <= high:
            return f"{number} is out of range for the {name} field ({low}-{high})"
    if a > b:
        return f"range {a}-{b} of the {name} field is reversed"
    return None


def at_problem(text: str) -> str | None:
    """Why `text` is not an ISO-8601 date-time, or None."""
    try:
        dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return f"'{text}' is not an ISO-8601 date-time (e.g. 2026-09-01T02:00:00Z)"
    return None


def timezone_problem(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown timezone '{name}' (use an IANA name such as \"Europe/Amsterdam\")"
    return None
