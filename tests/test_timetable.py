"""Due times of `every`, `cron` and `at` (LANGUAGE.md §3.7, §8.2) at fixed instants, no clock."""
from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reqon.daemon.policy import policy_of
from reqon.daemon.scheduler import Daemon, DaemonLog, Slot
from reqon.daemon.starts import LastStarts
from reqon.engine.runner import RunOptions
from reqon.loader import load_text
from reqon.timetable import UTC, Timetable, parse_at

NY = ZoneInfo("America/New_York")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def local(when: dt.datetime, tz: dt.tzinfo = NY) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def cron(text: str, tz: dt.tzinfo = UTC) -> Timetable:
    return Timetable("cron", tz, cron=text)


def test_every_follows_the_last_start_not_the_clock() -> None:
    t = Timetable("every", interval_s=900)
    start = utc(2026, 5, 1, 10, 0)
    assert t.next_after(utc(2026, 5, 1, 10, 3), last_start=start) == utc(2026, 5, 1, 10, 15)
    # Several missed intervals: the next due time is the first one still ahead.
    assert t.next_after(utc(2026, 5, 1, 11, 1), last_start=start) == utc(2026, 5, 1, 11, 15)
    assert t.upcoming(utc(2026, 5, 1, 10, 0), 3) == [utc(2026, 5, 1, 10, 15), utc(2026, 5, 1, 10, 30),
                                                    utc(2026, 5, 1, 10, 45)]


def test_cron_day_of_month_or_day_of_week() -> None:
    # The 13th of the month, or any Friday: both are restricted, so either matches (§3.7).
    times = cron("0 0 13 * 5").upcoming(utc(2026, 2, 1), 5)
    assert [t.date().isoformat() for t in times] == ["2026-02-06", "2026-02-13", "2026-02-20", "2026-02-27",
                                                     "2026-03-06"]
    assert [t.strftime("%a") for t in times] == ["Fri", "Fri", "Fri", "Fri", "Fri"]
    times = cron("0 0 13 * 1").upcoming(utc(2026, 4, 1), 4)  # Mondays, and the 13th (a Monday in April)
    assert [t.day for t in times] == [6, 13, 20, 27]
    # Only one restricted: day-of-week alone decides.
    assert [t.day for t in cron("0 0 * * 0").upcoming(utc(2026, 3, 1, 1), 2)] == [8, 15]


def test_cron_steps_ranges_and_lists() -> None:
    times = cron("*/20 9-10 * * 1-5").upcoming(utc(2026, 3, 6, 10, 30), 4)  # a Friday
    assert [t.strftime("%a %H:%M") for t in times] == ["Fri 10:40", "Mon 09:00", "Mon 09:20", "Mon 09:40"]
    times = cron("0-30/15 6 1,15 * *").upcoming(utc(2026, 1, 1), 4)
    assert [t.strftime("%d %H:%M") for t in times] == ["01 06:00", "01 06:15", "01 06:30", "15 06:00"]


def test_cron_in_new_york_across_the_spring_change() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT. 02:30 does not exist that day: it runs at
    # 03:00 local, right after the change, then at 02:30 again the next days.
    daily = cron("30 2 * * *", NY).upcoming(utc(2026, 3, 7, 12), 3)
    assert [local(t) for t in daily] == ["2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT", "2026-03-10 02:30 EDT"]
    # A time on either side of the gap keeps its wall-clock time; the UTC offset moves.
    nine = cron("0 9 * * *", NY).upcoming(utc(2026, 3, 7, 12), 2)
    assert [t.hour for t in nine] == [14, 13]  # 09:00 EST is 14:00 UTC, 09:00 EDT is 13:00 UTC


def test_cron_in_new_york_across_the_autumn_change() -> None:
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST, so 01:30 happens twice; a fixed time runs once.
    daily = cron("30 1 * * *", NY).upcoming(utc(2026, 10, 31, 12), 3)
    assert [local(t) for t in daily] == ["2026-11-01 01:30 EDT", "2026-11-02 01:30 EST", "2026-11-03 01:30 EST"]
    # A wildcard hour runs in both passes through the repeated hour (as cron does).
    half_hourly = cron("*/30 * * * *", NY).upcoming(utc(2026, 11, 1, 4, 50), 5)  # 00:50 EDT
    assert [local(t) for t in half_hourly] == ["2026-11-01 01:00 EDT", "2026-11-01 01:30 EDT",
                                               "2026-11-01 01:00 EST", "2026-11-01 01:30 EST",
                                               "2026-11-01 02:00 EST"]
    # Strictly increasing instants, one hour apart in UTC through the change.
    assert [b - a for a, b in zip(half_hourly, half_hourly[1:])] == [dt.timedelta(minutes=30)] * 4


def test_at_reads_an_offset_less_instant_in_the_zone() -> None:
    assert parse_at("2026-09-01T02:00:00", NY) == dt.datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
    assert parse_at("2026-09-01T02:00:00Z", NY) == utc(2026, 9, 1, 2, 0)
    t = Timetable("at", at=utc(2026, 9, 1, 2))
    assert t.next_after(utc(2026, 8, 31)) == utc(2026, 9, 1, 2)
    assert t.next_after(utc(2026, 9, 1, 2)) is None
    assert t.upcoming(utc(2026, 8, 31), 3) == [utc(2026, 9, 1, 2)]


def test_descriptions() -> None:
    assert Timetable("every", interval_s=900).describe() == "every 15 minutes"
    assert Timetable("every", interval_s=90).describe() == "every 90 seconds"
    assert Timetable("every", interval_s=86400).describe() == "every 1 day"
    assert cron("30 6 * * 1-5").describe() == 'cron "30 6 * * 1-5": at 06:30 on Monday through Friday'


# ---------------------------------------------------------------- the daemon's first due time

MISSION = """
mission M {{
  schedule: {schedule}
  {members}
  action A {{ let x = 1 }}
  run A
}}
"""


def first_due(tmp_path: Path, schedule: str, now: dt.datetime, *, last: dt.datetime | None = None,
              members: str = "") -> tuple[dt.datetime | None, list[str]]:
    loaded = load_text(MISSION.format(schedule=schedule, members=members))
    mission = loaded.missions[0]
    starts = LastStarts(tmp_path)
    if last is not None:
        starts.record("M", last)
    events: list[str] = []

    class Log(DaemonLog):
        def event(self, event: str, mission: str, message: str, level: str = "info", **fields: object) -> None:
            events.append(f"{event}: {message}")
    daemon = Daemon([], {}, RunOptions(data_dir=tmp_path), log=Log(json_log=False, quiet=True),
                    starts=LastStarts(tmp_path), webhooks=None, stop=asyncio.Event())
    return daemon.first_due(Slot(mission, policy_of(mission.schedules[0])), now), events


def test_at_in_the_past_is_logged_and_never_run(tmp_path: Path) -> None:
    due, events = first_due(tmp_path, 'at "2026-01-01T00:00:00Z"', utc(2026, 6, 1))
    assert due is None
    assert events == ["schedule.past: 'at' 2026-01-01T00:00:00.000Z is in the past; it never runs"]
    due, events = first_due(tmp_path, 'at "2027-01-01T00:00:00Z"', utc(2026, 6, 1))
    assert (due, events) == (utc(2027, 1, 1), [])


def test_every_at_start_runs_now_or_one_interval_later(tmp_path: Path) -> None:
    now = utc(2026, 6, 1, 12)
    assert first_due(tmp_path / "a", "every 15 minutes", now)[0] == now
    assert first_due(tmp_path / "b", "every 15 minutes", now, members="runImmediately: false")[0] == \
        utc(2026, 6, 1, 12, 15)


def test_restart_keeps_the_interval_and_missed_due_times_make_one_run(tmp_path: Path) -> None:
    now = utc(2026, 6, 1, 12)
    # Last started 5 minutes ago: due 10 minutes from now, not at once.
    assert first_due(tmp_path / "a", "every 15 minutes", now, last=utc(2026, 6, 1, 11, 55))[0] == \
        utc(2026, 6, 1, 12, 10)
    # Down for hours: one run now, not one per missed interval.
    assert first_due(tmp_path / "b", "every 15 minutes", now, last=utc(2026, 6, 1, 3))[0] == now
    # Cron: a missed minute since the last start means one run now; none missed, the next one.
    assert first_due(tmp_path / "c", 'cron "0 * * * *"', now + dt.timedelta(minutes=5),
                     last=utc(2026, 6, 1, 10, 0))[0] == now + dt.timedelta(minutes=5)
    assert first_due(tmp_path / "d", 'cron "0 * * * *"', utc(2026, 6, 1, 12, 5),
                     last=utc(2026, 6, 1, 12, 0))[0] == utc(2026, 6, 1, 13, 0)


def test_policy_reads_options_and_members_as_one_set() -> None:
    text = MISSION.format(schedule='every 90s { maxConcurrency: 2 }', members="""
      skipIfRunning: false
      timezone: "America/New_York"
      retryOnFailure: { maxAttempts: 4, backoff: exponential, initialDelay: 2s }
      jitter: 500ms
      timeout: 1m""")
    policy = policy_of(load_text(text).missions[0].schedules[0])
    assert policy.timetable.interval_s == 90
    assert (policy.overlap_limit, policy.max_retries, policy.jitter_s, policy.timeout_s) == (2, 3, 0.5, 60)
    assert [policy.retry_delay(n) for n in (1, 2, 3)] == [2, 4, 8]
    assert policy.zone_name == "America/New_York"
    retry = policy_of(load_text(MISSION.format(schedule="every 1 hour { retry: { maxRetries: 2 } }",
                                               members="")).missions[0].schedules[0])
    assert (retry.max_retries, retry.retry_delay_s, retry.overlap_limit) == (2, 60, 1)


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_cron_times_are_whole_minutes_and_increasing(zone: str) -> None:
    times = cron("*/7 * * * *", ZoneInfo(zone)).upcoming(utc(2026, 3, 28), 300)
    assert all(t.second == 0 for t in times)
    assert all(a < b for a, b in zip(times, times[1:]))
