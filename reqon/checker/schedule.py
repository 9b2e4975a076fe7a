"""Checks of `schedule:` and the scheduling members (LANGUAGE.md §3.7): E302, E303, E307, W521.

The specification itself (cron text, `at` instant, zone) is judged by `reqon.timetable`,
the module the daemon and `reqon schedule` evaluate it with, so the checker accepts
exactly what can run. A scheduling member may be written next to `schedule:` or in its
option block, never both; `retryOnFailure` is the option `retry` in other words, so the
two together are a duplicate as well.
"""
from __future__ import annotations

from reqon import ast
from reqon.checker import options as opt
from reqon.checker.context import Context, head, suggest

MEMBERS = ("timezone", "skipIfRunning", "retryOnFailure", "runImmediately", "jitter", "timeout")
SCHEDULE_OPTIONS = ("timezone", "skipIfRunning", "maxConcurrency", "retry") + MEMBERS[2:]
SCHEDULE_RETRY_FIELDS = ("maxRetries", "delaySeconds")
FAILURE_RETRY_FIELDS = ("maxAttempts", "backoff", "initialDelay")


def check_schedules(ctx: Context) -> None:
    mission = ctx.mission
    first: ast.Schedule | None = None
    for schedule in mission.schedules:
        where = head(schedule.span, len("schedule"))
        if first is not None:
            ctx.error("E302", where, "'schedule' is given twice", notes=(("first given here", head(first.span, 8)),))
            continue
        first = schedule
        _spec(ctx, schedule)
    settings = _members(ctx, mission.schedule_members, first)
    if first is not None and first.options is not None:
        for key, entry in opt.keyed_entries(ctx, first.options.entries, SCHEDULE_OPTIONS, "schedule option").items():
            _duplicate(ctx, settings, key, entry.key_span, "in the schedule's options")
            opt.no_settings(ctx, entry)
            _value(ctx, key, entry.value, first)


def _spec(ctx: Context, schedule: ast.Schedule) -> None:
    # The timetable (zoneinfo, cronsim) is imported for missions that have a schedule only.
    from reqon.timetable import UNIT_WORDS, at_problem, cron_problem

    unit = schedule.unit
    where = schedule.text_span or head(schedule.span, len("schedule"))
    if unit is not None and unit.name not in UNIT_WORDS:
        ctx.error("E307", unit.span, f"unknown schedule unit '{unit.name}'",
                  *(suggest(unit.name, UNIT_WORDS) or ("units: second, minute, hour, day, week (or plurals)",)))
        return
    problem = None
    if schedule.kind == "cron":
        problem = cron_problem(schedule.text or "")
        problem = None if problem is None else f"invalid cron expression \"{schedule.text}\": {problem}"
    elif schedule.kind == "at":
        problem = at_problem(schedule.text or "")
    elif schedule.unit is not None and (schedule.count or 0) < 1:
        problem = f"'every' needs a count of at least 1, got {schedule.count}"
    elif schedule.unit is None and (schedule.duration_ms or 0) < 1:
        problem = "'every' needs a positive interval"
    if problem is not None:
        ctx.error("E307", where, problem)


def _members(ctx: Context, members: tuple[ast.ScheduleMember, ...],
             schedule: ast.Schedule | None) -> dict[str, tuple[str, ast.Span]]:
    """Check the members next to `schedule:`; returns which setting was given where."""
    given: dict[str, tuple[str, ast.Span]] = {}
    for member in members:
        where = head(member.span, len(member.key))
        if schedule is None:
            ctx.error("E303", where, f"'{member.key}' is a scheduling setting, but the mission has no schedule",
                      "add a schedule, e.g. schedule: every 15 minutes")
            continue
        if _duplicate(ctx, given, member.key, where, "next to the schedule"):
            continue
        _value(ctx, member.key, member.value, schedule)
    return given


def _duplicate(ctx: Context, given: dict[str, tuple[str, ast.Span]], key: str, where: ast.Span,
               place: str) -> bool:
    """E302 for a setting given twice (`retry` and `retryOnFailure` are one setting)."""
    slot = "retryOnFailure" if key == "retry" else key
    if slot in given:
        first_key, first_where = given[slot]
        what = f"'{key}' is" if first_key == key else f"'{first_key}' and '{key}' are one setting,"
        ctx.error("E302", where, f"{what} given twice ({place})", notes=(("first given here", first_where),))
        return True
    given[slot] = (key, where)
    return False


def _value(ctx: Context, key: str, value: ast.Expr, schedule: ast.Schedule) -> None:
    if key == "timezone":
        from reqon.timetable import timezone_problem

        zone = opt.string(ctx, value, key)
        problem = timezone_problem(zone) if zone is not None else None
        if problem is not None:
            ctx.error("E307", value.span, problem)
    elif key in ("skipIfRunning", "runImmediately"):
        opt.boolean(ctx, value, key)
        if key == "runImmediately" and schedule.kind != "every":
            ctx.warn("W521", value.span, f"'runImmediately' has no effect on {'a cron' if schedule.kind == 'cron' else 'an at'} schedule",
                     "it only decides whether an 'every' schedule runs at daemon start")
    elif key == "maxConcurrency":
        opt.integer(ctx, value, key)
    elif key in ("jitter", "timeout"):
        opt.duration(ctx, value, key, positive=key == "timeout")
    elif key == "retry":
        fields = opt.settings_object(ctx, value, SCHEDULE_RETRY_FIELDS, "schedule retry field", "retry")
        for name, field in (fields or {}).items():
            opt.no_settings(ctx, field)
            opt.integer(ctx, field.value, name, minimum=0)
    else:
        fields = opt.settings_object(ctx, value, FAILURE_RETRY_FIELDS, "retryOnFailure field", key)
        if fields is not None:
            opt.retry_fields(ctx, fields, directive=False)
