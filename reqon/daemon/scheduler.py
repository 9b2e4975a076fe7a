"""The daemon's loop (LANGUAGE.md §8.2): every scheduled mission on its own, whenever it is due.

Each mission has its own asyncio task that sleeps until the next due time and starts a
run as another task, so a slow mission never delays another and overlap is a count of
that mission's running tasks. Due times are wall-clock instants (cron and `at` are
calendar times); the last start of each mission is remembered in the data directory, so
a restart keeps every interval and turns any number of missed due times into one run.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from reqon import ast
from reqon.daemon.policy import SchedulePolicy
from reqon.daemon.starts import LastStarts
from reqon.engine.reporting import json_line
from reqon.engine.runner import RunOptions, RunOutcome, execute
from reqon.errors import RunError
from reqon.timetable import UTC

if TYPE_CHECKING:
    from reqon.http.webhooks import WebhookServer

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


def iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DaemonLog:
    """One line per scheduling event: plain text on stderr, or a `--json-log` event."""

    def __init__(self, *, json_log: bool, quiet: bool) -> None:
        self.json_log = json_log
        self.quiet = quiet

    def event(self, event: str, mission: str, message: str, level: str = "info", **fields: Any) -> None:
        if self.json_log:
            print(json_line(event, mission, level, message=message, **fields), file=sys.stderr, flush=True)
        elif not self.quiet or level == "error":
            print(f"{iso(utc_now())} {mission}: {message}", file=sys.stderr, flush=True)


@dataclass
class Slot:
    """One scheduled mission and its running runs."""

    mission: ast.Mission
    policy: SchedulePolicy
    running: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.mission.name.name


class Daemon:
    def __init__(self, slots: list[Slot], files: dict[str, str], options: RunOptions, *, log: DaemonLog,
                 starts: LastStarts, webhooks: WebhookServer | None, stop: asyncio.Event,
                 clock: Clock = utc_now) -> None:
        self.slots = slots
        self.files = files
        # The daemon's own line per run says status, duration and records; a run's summary
        # only with --verbose (failure reports always).
        self.options = replace(options, trigger="schedule", progress=False, quiet=options.quiet or not options.verbose)
        self.log = log
        self.starts = starts
        self.webhooks = webhooks
        self.stop = stop
        self.clock = clock
        self.failed_runs = 0

    async def run(self) -> None:
        """Schedule until `stop` is set, then wait for the runs in progress to end."""
        loops = [asyncio.get_running_loop().create_task(self._mission_loop(slot)) for slot in self.slots]
        await asyncio.gather(*loops)

    # ------------------------------------------------------------ due times
    def first_due(self, slot: Slot, now: dt.datetime) -> dt.datetime | None:
        """When a mission is first due at daemon start (§8.2)."""
        timetable, last = slot.policy.timetable, self.starts.get(slot.name)
        if timetable.kind == "every":
            interval = dt.timedelta(seconds=timetable.interval_s)
            if last is None:
                return now if slot.policy.run_immediately else now + interval
            return max(last + interval, now)  # missed due times: one run, now
        if timetable.kind == "cron":
            if last is not None:
                missed = timetable.next_after(last)
                if missed is not None and missed <= now:
                    return now
            return timetable.next_after(now)
        at = timetable.at
        assert at is not None
        if at <= now:
            if last is None or last < at:
                self.log.event("schedule.past", slot.name, f"'at' {iso(at)} is in the past; it never runs",
                               "warning", at=iso(at))
            return None
        return at

    async def _mission_loop(self, slot: Slot) -> None:
        due = self.first_due(slot, self.clock())
        self._announce(slot, due)
        while due is not None and not self.stop.is_set():
            delay = (due - self.clock()).total_seconds()
            if slot.policy.jitter_s > 0:
                delay += random.uniform(0, slot.policy.jitter_s)
            if await self._sleep(delay):
                break
            now = self.clock()
            if len(slot.running) >= slot.policy.overlap_limit:
                self.log.event("schedule.skip", slot.name, f"due run skipped: {len(slot.running)} run"
                               f"{'s' if len(slot.running) != 1 else ''} still going", due=iso(due))
                due = slot.policy.timetable.next_after(max(now, due), self.starts.get(slot.name))
                continue
            try:
                self.starts.record(slot.name, now)
            except RunError as exc:  # the run goes ahead; a restart may run it early once
                self.log.event("schedule.memory", slot.name, exc.message, "error")
            due = slot.policy.timetable.next_after(max(now, due), now)
            task = asyncio.get_running_loop().create_task(self._run_with_retries(slot, due))
            slot.running.add(task)
            task.add_done_callback(slot.running.discard)
        if slot.running:
            await asyncio.gather(*slot.running)

    def _announce(self, slot: Slot, due: dt.datetime | None) -> None:
        if due is not None:
            self.log.event("schedule.next", slot.name, f"{slot.policy.timetable.describe()}; first due {iso(due)}",
                           nextDue=iso(due))

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True when the daemon is stopping."""
        if seconds > 0:
            try:
                await asyncio.wait_for(self.stop.wait(), seconds)
            except asyncio.TimeoutError:
                pass
        return self.stop.is_set()

    # ------------------------------------------------------------ runs
    async def _run_with_retries(self, slot: Slot, next_due: dt.datetime | None) -> None:
        """A due run, and after a failure the retries of the schedule's policy (§3.7)."""
        retry = 0
        while True:
            outcome = await self._one_run(slot, retry, next_due)
            if outcome.status in ("succeeded", "interrupted", "skipped") or self.stop.is_set():
                return  # a skipped run (every lane held) did not fail: nothing to retry
            self.failed_runs += 1
            if retry >= slot.policy.max_retries:
                if slot.policy.max_retries:
                    self.log.event("schedule.gave-up", slot.name, f"failed {retry + 1} times in a row; "
                                   "waiting for the next due time", "warning", attempts=retry + 1)
                return
            retry += 1
            delay = slot.policy.retry_delay(retry)
            self.log.event("schedule.retry", slot.name, f"retry {retry} of {slot.policy.max_retries} "
                           f"in {delay:g}s", retry=retry, delayS=delay)
            if await self._sleep(delay):
                return

    async def _one_run(self, slot: Slot, retry: int, next_due: dt.datetime | None) -> RunOutcome:
        started = self.clock()
        after = f"; next due {iso(next_due)}" if next_due is not None else "; not due again"
        limit = slot.policy.overlap_limit

        def on_start(lane: int) -> None:
            where = f" in lane {lane + 1}" if limit > 1 else ""
            self.log.event("schedule.run.start", slot.name, "run started" + where +
                           (f" (retry {retry})" if retry else "") + after,
                           trigger="schedule", retry=retry or None, nextDue=iso(next_due),
                           lane=lane + 1 if limit > 1 else None)
        try:
            outcome = await execute(slot.mission, self.files, self.options, webhooks=self.webhooks,
                                    stop=self.stop, timeout_s=slot.policy.timeout_s, lanes=limit, on_start=on_start)
        except Exception as exc:  # noqa: BLE001 - a bug in one run must not stop the daemon
            outcome = RunOutcome("failed", 70, (self.clock() - started).total_seconds(),
                                 message=f"internal error: {type(exc).__name__}: {exc}")
        if outcome.status == "skipped":
            self.log.event("schedule.skip", slot.name, f"due run skipped: {outcome.message}", "warning")
            return outcome
        detail = f": {outcome.message}" if outcome.message else ""
        self.log.event("schedule.run.end", slot.name,
                       f"run {outcome.status} in {outcome.duration_s:.2f}s, {outcome.records} record"
                       f"{'s' if outcome.records != 1 else ''} written{detail}",
                       "info" if outcome.status == "succeeded" else "warning", trigger="schedule",
                       status=outcome.status, durationMs=round(outcome.duration_s * 1000), records=outcome.records)
        return outcome
